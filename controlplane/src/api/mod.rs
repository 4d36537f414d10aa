//! The ECS-compatible HTTP API: AWS JSON 1.1 over `POST /`, every request
//! SigV4-verified, dispatched on `X-Amz-Target`.

pub mod admin;
pub mod credentials;
pub mod ecs;
pub mod error;
pub mod secrets;
pub mod sigv4;

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use self::credentials::ApiCredentials;
use self::error::{ApiError, ErrorType};
use crate::join_tokens::JoinTokens;
use crate::secrets::Secrets;
use crate::state::ControlPlane;

/// What the HTTP handlers share.
pub struct ApiContext {
    pub control_plane: Arc<ControlPlane>,
    pub credentials: ApiCredentials,
    pub join_tokens: Arc<JoinTokens>,
    pub secrets: Arc<Secrets>,
}

pub fn router(ctx: Arc<ApiContext>) -> axum::Router {
    axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let ctx = ctx.clone();
            async move { handle(&ctx, &method, &uri, &headers, &body) }
        },
    )
}

fn now_unix() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn handle(
    ctx: &ApiContext,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let result = authenticate(ctx, method, uri, headers, body).and_then(|()| {
        if method != Method::POST {
            return Err(ApiError::new(
                ErrorType::UnknownOperation,
                "Only POST is supported: the ECS API speaks AWS JSON 1.1.",
            ));
        }
        if let Some(op) = target.strip_prefix(admin::TARGET_PREFIX) {
            return tokio::task::block_in_place(|| admin::dispatch(&ctx.join_tokens, op, body));
        }
        if let Some(op) = target.strip_prefix(secrets::TARGET_PREFIX) {
            return tokio::task::block_in_place(|| secrets::dispatch(&ctx.secrets, op, body));
        }
        let op = target.strip_prefix(ecs::TARGET_PREFIX).ok_or_else(|| {
            ApiError::new(
                ErrorType::UnknownOperation,
                format!(
                    "X-Amz-Target '{target}' is not an ECS operation: expected '{}<Operation>'.",
                    ecs::TARGET_PREFIX
                ),
            )
        })?;
        // The state machine blocks on durable store commits: keep that off
        // the async workers' hot path by running in place (commits are short).
        tokio::task::block_in_place(|| ecs::dispatch(&ctx.control_plane, op, body))
    });
    let (status, body) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => {
            tracing::info!(target, error_type = e.kind.name(), message = %e.message, "request refused");
            (
                StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
                e.body(),
            )
        }
    };
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

fn authenticate(
    ctx: &ApiContext,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let req = sigv4::SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    let creds = &ctx.credentials;
    sigv4::verify(
        &req,
        |key| (key == creds.access_key_id).then(|| creds.secret_access_key.clone()),
        now_unix(),
    )?;
    Ok(())
}
