//! Berth's own operations beside ECS's, on the same endpoint and `SigV4`
//! credentials, under the `X-Amz-Target` prefix `BerthAdmin.` (the `berth`
//! CLI calls them; the aws CLI does not know them).

use std::sync::Arc;
use std::time::Duration;

use berth_aws::{AwsError, AwsService, Call, JsonProtocol, JsonVersion, ServiceInfo};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ErrorType};
use crate::join_tokens::{JoinError, JoinTokens};
use crate::pki::ClusterCa;

/// Berth's own calls, as the edge routes to them.
pub struct Admin {
    tokens: Arc<JoinTokens>,
    ca: Arc<ClusterCa>,
    /// How long a rotated-out CA stays trusted: the agent certificate lifetime, so every
    /// connected agent renews under the new CA first.
    keep_previous_ca: Duration,
}

impl Admin {
    pub fn new(tokens: Arc<JoinTokens>, ca: Arc<ClusterCa>, keep_previous_ca: Duration) -> Self {
        Self {
            tokens,
            ca,
            keep_previous_ca,
        }
    }
}

/// Signed for `ecs`, like the ECS calls the `berth` CLI makes beside them.
const INFO: ServiceInfo = ServiceInfo {
    signing_name: "ecs",
    json: Some(JsonProtocol {
        target_prefix: "BerthAdmin",
        version: JsonVersion::V1_1,
        query_compatible: false,
    }),
    query: None,
};

impl AwsService for Admin {
    fn info(&self) -> &ServiceInfo {
        &INFO
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        let body = call.json_body()?;
        if call.operation == "RotateClusterCa" {
            return Ok(self.rotate_ca(body)?);
        }
        Ok(dispatch(&self.tokens, call.operation, body)?)
    }
}

/// Default and bounds of a join token's lifetime.
const DEFAULT_TTL_SECS: i64 = 3600;
const MAX_TTL_SECS: i64 = 30 * 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateJoinToken {
    ttl_seconds: Option<i64>,
    #[serde(default)]
    reusable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotateClusterCa {
    /// Stop trusting the previous CA at once (its key is compromised): agents holding its
    /// certificates must join again.
    #[serde(default)]
    distrust_previous: bool,
}

impl Admin {
    fn rotate_ca(&self, body: &[u8]) -> Result<Value, ApiError> {
        let req: RotateClusterCa = super::json::parse("RotateClusterCa", body)?;
        let keep = if req.distrust_previous {
            Duration::ZERO
        } else {
            self.keep_previous_ca
        };
        let r = self
            .ca
            .rotate(keep)
            .map_err(|e| ApiError::new(ErrorType::Server, e.to_string()))?;
        #[allow(clippy::cast_precision_loss)] // epoch milliseconds fit an f64 exactly
        let until = r.previous_trusted_until_ms.map(|ms| ms as f64 / 1000.0);
        Ok(json!({
            "caFingerprint": r.fingerprint,
            "previousCaFingerprint": r.previous_fingerprint,
            "previousTrustedUntil": until,
        }))
    }
}

pub fn dispatch(tokens: &JoinTokens, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "CreateJoinToken" => create_join_token(tokens, op, body),
        _ => Err(ApiError::new(
            ErrorType::UnknownOperation,
            format!("Operation 'BerthAdmin.{op}' is not a Berth admin operation."),
        )),
    }
}

fn create_join_token(tokens: &JoinTokens, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    let req: CreateJoinToken = super::json::parse(op, body)?;
    let ttl = req.ttl_seconds.unwrap_or(DEFAULT_TTL_SECS);
    if !(60..=MAX_TTL_SECS).contains(&ttl) {
        return Err(ApiError::invalid(format!(
            "ttlSeconds must be between 60 and {MAX_TTL_SECS} (30 days), got {ttl}."
        )));
    }
    let issued = tokens
        .create(ttl * 1000, req.reusable)
        .map_err(|e| match e {
            JoinError::State(e) => ApiError::from(e),
            other => ApiError::new(ErrorType::Server, other.to_string()),
        })?;
    #[allow(clippy::cast_precision_loss)] // epoch milliseconds fit an f64 exactly
    let expires_at = issued.expires_at_ms as f64 / 1000.0;
    Ok(json!({
        "token": issued.token.to_string(),
        "tokenId": issued.token.id,
        "expiresAt": expires_at,
        "reusable": issued.reusable,
    }))
}
