//! The HTTP edge: `GET /v4/<token>[/task][/stats]`, answered by a pure `handle` over the registry.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::registry::{Lookup, MetadataRegistry};
use super::{render, stats, MetadataError};
use crate::clock::Clock;

/// The four v4 resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Container,
    Task,
    ContainerStats,
    TaskStats,
}

/// What the endpoint answers: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// Answers one request. A token that is unknown, or that belongs to a task
/// other than the caller's (by peer address), is a 404 either way, so a
/// leaked token tells another task nothing.
pub fn handle(
    registry: &MetadataRegistry,
    cgroup_root: &Path,
    token: &str,
    resource: Resource,
    peer: IpAddr,
    now_ms: i64,
) -> Reply {
    let Some(Lookup { container, task }) = registry.lookup(token, peer) else {
        return Reply {
            status: 404,
            body: json!("V4 metadata handler: no task metadata for this request"),
        };
    };
    let read = render::rfc3339(now_ms);
    let stats_of = |c: &super::registry::ContainerMetadata| {
        stats::read_cgroup(cgroup_root, &c.cgroup_path).map_or(Value::Null, |s| {
            stats::render(&s, &c.docker_id, &c.name, &read)
        })
    };
    let this = task.containers.iter().find(|c| c.name == container);
    let body = match (resource, this) {
        (Resource::Task, _) => json!(render::task(&task)),
        (Resource::TaskStats, _) => Value::Object(
            task.containers
                .iter()
                .map(|c| (c.docker_id.clone(), stats_of(c)))
                .collect(),
        ),
        (Resource::Container, Some(c)) => json!(render::container(c, &task)),
        (Resource::ContainerStats, Some(c)) => stats_of(c),
        (_, None) => Value::Null,
    };
    Reply { status: 200, body }
}

struct Shared {
    registry: MetadataRegistry,
    cgroup_root: PathBuf,
    clock: Arc<dyn Clock>,
}

fn respond(s: &Shared, token: &str, resource: Resource, peer: SocketAddr) -> Response {
    let r = handle(
        &s.registry,
        &s.cgroup_root,
        token,
        resource,
        peer.ip(),
        s.clock.now_ms(),
    );
    if r.status != 200 {
        tracing::debug!(peer = %peer, ?resource, "metadata request refused");
    }
    (
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        r.body.to_string(),
    )
        .into_response()
}

fn router(shared: Arc<Shared>) -> Router {
    let route = |resource: Resource| {
        get(
            move |State(s): State<Arc<Shared>>,
                  ConnectInfo(peer): ConnectInfo<SocketAddr>,
                  UrlPath(token): UrlPath<String>| async move {
                respond(&s, &token, resource, peer)
            },
        )
    };
    Router::new()
        .route("/v4/{token}", route(Resource::Container))
        .route("/v4/{token}/task", route(Resource::Task))
        .route("/v4/{token}/stats", route(Resource::ContainerStats))
        .route("/v4/{token}/task/stats", route(Resource::TaskStats))
        .with_state(shared)
}

/// Binds the registry's endpoint and serves it in the background.
/// `cgroup_root` is where cgroupfs is mounted (`/sys/fs/cgroup`); `clock`
/// dates the stats it reads.
pub async fn start(
    registry: MetadataRegistry,
    cgroup_root: PathBuf,
    clock: Arc<dyn Clock>,
) -> Result<tokio::task::JoinHandle<()>, MetadataError> {
    let addr = registry.endpoint();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetadataError::Bind { addr, source })?;
    let app = router(Arc::new(Shared {
        registry,
        cgroup_root,
        clock,
    }));
    tracing::info!(%addr, "task metadata endpoint listening");
    Ok(tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!(error = %e, "task metadata endpoint stopped");
        }
    }))
}
