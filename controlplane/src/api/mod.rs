//! The AWS services Berth serves, on one HTTP endpoint. The shared AWS edge (`berth_aws`)
//! checks signatures, tells the protocols apart, routes, and renders; each service here is
//! one module that turns decoded requests into commands on the control plane. Adding a
//! service is a module and one line in `services`.

pub mod acm;
pub mod admin;
pub mod credentials;
pub mod ecs;
pub mod elbv2;
pub mod error;
pub mod json;
pub mod logs;
pub mod secretsmanager;
pub mod ssm;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use berth_aws::{AwsService, Edge, HttpRequest};

use self::credentials::ApiCredentials;
use crate::join_tokens::JoinTokens;
use crate::logs::Logs;
use crate::secrets::Secrets;
use crate::state::ControlPlane;

/// What the services need from the rest of the control plane.
pub struct ApiContext {
    pub control_plane: Arc<ControlPlane>,
    pub credentials: ApiCredentials,
    pub join_tokens: Arc<JoinTokens>,
    pub secrets: Arc<Secrets>,
    pub logs: Arc<Logs>,
    pub exec: Arc<crate::exec::ExecSessions>,
    pub parameters: Arc<crate::parameters::Parameters>,
    pub cluster_ca: Arc<crate::pki::ClusterCa>,
    /// The agent certificate lifetime: how long a rotated-out CA stays trusted.
    pub agent_cert_lifetime: std::time::Duration,
    /// The load balancers' configuration and data plane (ELBv2).
    pub load_balancers: crate::lb::LoadBalancers,
}

/// Every AWS service this endpoint serves.
fn services(ctx: &ApiContext) -> Vec<Arc<dyn AwsService>> {
    vec![
        Arc::new(ecs::Ecs::new(ctx.control_plane.clone(), ctx.exec.clone())),
        Arc::new(secretsmanager::SecretsManager::new(ctx.secrets.clone())),
        Arc::new(admin::Admin::new(
            ctx.join_tokens.clone(),
            ctx.cluster_ca.clone(),
            ctx.agent_cert_lifetime,
        )),
        Arc::new(logs::CloudWatchLogs::new(ctx.logs.clone())),
        Arc::new(ssm::Ssm::new(ctx.parameters.clone())),
        Arc::new(elbv2::Elbv2::new(
            ctx.load_balancers.clone(),
            ctx.control_plane.default_arns.account.clone(),
        )),
        Arc::new(acm::Acm::new(
            ctx.load_balancers.certificates.clone(),
            ctx.load_balancers.config.clone(),
            Arc::new(crate::state::SystemClock),
        )),
    ]
}

/// The edge over `ctx`'s services, accepting `ctx`'s access key.
pub fn edge(ctx: ApiContext) -> Edge {
    let services = services(&ctx);
    let creds = ctx.credentials;
    Edge::new(services, move |key| {
        (key == creds.access_key_id).then(|| creds.secret_access_key.clone())
    })
}

/// The HTTP service; it owns `ctx`, so the control plane's store closes when it ends.
pub fn router(ctx: ApiContext) -> axum::Router {
    // Signatures are checked against the control plane's clock, like everything else.
    let clock = ctx.control_plane.clone();
    let exec = ctx.exec.clone();
    let edge = Arc::new(edge(ctx));
    axum::Router::new()
        .route(
            "/v1/data-channel/{session_id}",
            axum::routing::get(
                move |ws: axum::extract::WebSocketUpgrade,
                      axum::extract::Path(session_id): axum::extract::Path<String>| {
                    let exec = exec.clone();
                    async move {
                        ws.on_upgrade(move |socket| {
                            crate::exec::channel::serve(socket, exec, session_id)
                        })
                    }
                },
            ),
        )
        .fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (edge, clock) = (edge.clone(), clock.clone());
            async move {
                let req = HttpRequest {
                    method: &method,
                    uri: &uri,
                    headers: &headers,
                    body: &body,
                };
                let request_id = uuid::Uuid::new_v4().to_string();
                // Services block on durable store commits: keep that off the async
                // workers' hot path by running in place (commits are short).
                let now_unix = clock.now_ms().div_euclid(1000);
                let response: Response<Body> =
                    tokio::task::block_in_place(|| edge.handle(&req, &request_id, now_unix))
                        .map(Body::from);
                response
            }
        },
    )
}
