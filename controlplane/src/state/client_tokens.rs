//! Idempotent `RunTask`: its `clientToken` (which boto3 and the aws CLI send with every
//! call, and send again when they retry) names the tasks the first call started. A retry
//! with the same token and the same request gets those tasks back instead of new ones;
//! the same token with another request is a `ConflictException`, as on ECS. Tokens are
//! scoped to a cluster and kept 24 hours. The record is written in the same commit as
//! the tasks, so a retry after a crash finds it whenever the tasks exist.

use serde::{Deserialize, Serialize};

use super::{ItemFailure, RunTaskOutcome, State, StateError};
use crate::model::Task;
use crate::store::{Table, Write};

/// How long a token is remembered (ECS: 24 hours).
pub const TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A request's token and a digest of what it asked for (everything but the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientToken {
    pub token: String,
    pub request: String,
}

/// What a token's first call did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub request: String,
    pub task_ids: Vec<String>,
    /// (arn, reason, detail) of the first call's failures.
    pub failures: Vec<(String, String, Option<String>)>,
    pub created_ms: i64,
}

/// The key of a `RunTask` token in a cluster.
pub fn key(cluster_arn: &str, token: &str) -> String {
    format!("RunTask/{cluster_arn}/{token}")
}

/// The first call's tasks and failures for a retry of it; a conflict for another
/// request under the same token; None for a token not seen (or expired).
pub fn replay(
    state: &State,
    key: &str,
    token: &ClientToken,
    now_ms: i64,
) -> Result<Option<RunTaskOutcome>, StateError> {
    let Some(rec) = state
        .client_tokens
        .get(key)
        .filter(|r| now_ms - r.created_ms < TTL_MS)
    else {
        return Ok(None);
    };
    if rec.request != token.request {
        return Err(StateError::Conflict(format!(
            "The clientToken '{}' was already used for a different RunTask request in this cluster; use a new token for a new request.",
            token.token
        )));
    }
    let tasks = rec
        .task_ids
        .iter()
        .filter_map(|id| state.tasks.get(id).cloned())
        .collect();
    let failures = rec
        .failures
        .iter()
        .map(|(arn, reason, detail)| ItemFailure {
            arn: arn.clone(),
            reason: reason.clone(),
            detail: detail.clone(),
        })
        .collect();
    Ok(Some(RunTaskOutcome { tasks, failures }))
}

/// The writes that record a token's first call, and forget expired tokens.
pub fn record(
    state: &State,
    key: &str,
    token: &ClientToken,
    tasks: &[Task],
    failures: &[ItemFailure],
    now_ms: i64,
) -> (TokenRecord, Vec<Write>) {
    let rec = TokenRecord {
        request: token.request.clone(),
        task_ids: tasks.iter().map(|t| t.id.clone()).collect(),
        failures: failures
            .iter()
            .map(|f| (f.arn.clone(), f.reason.clone(), f.detail.clone()))
            .collect(),
        created_ms: now_ms,
    };
    let mut writes: Vec<Write> = state
        .client_tokens
        .iter()
        .filter(|(_, r)| now_ms - r.created_ms >= TTL_MS)
        .map(|(k, _)| Write::delete(Table::ClientTokens, k.clone()))
        .collect();
    writes.push(Write::put(
        Table::ClientTokens,
        key.to_owned(),
        super::encode(&rec),
    ));
    (rec, writes)
}

/// Applies what `record` wrote to the in-memory state.
pub fn remember(state: &mut State, key: String, rec: TokenRecord, now_ms: i64) {
    state
        .client_tokens
        .retain(|_, r| now_ms - r.created_ms < TTL_MS);
    state.client_tokens.insert(key, rec);
}
