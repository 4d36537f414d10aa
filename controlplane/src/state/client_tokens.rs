//! Idempotent `RunTask` and `CreateService`: their `clientToken` (which boto3 and the aws
//! CLI send with every `RunTask`, and send again when they retry) names what the first
//! call made. A retry with the same token and the same request gets that back instead of
//! new tasks or an error; the same token with another request is refused, as on ECS.
//! Tokens are scoped to a cluster and kept 24 hours. The record is written in the same
//! commit as what the call made, so a retry after a crash finds it whenever that exists.

use serde::{Deserialize, Serialize};

use super::{ItemFailure, RunTaskOutcome, State, StateError};
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
    /// What it made: task ids (`RunTask`), the service's key (`CreateService`).
    pub ids: Vec<String>,
    /// (arn, reason, detail) of the first call's failures.
    pub failures: Vec<(String, String, Option<String>)>,
    pub created_ms: i64,
}

/// The key of an operation's token in a cluster.
pub fn key(op: &str, cluster_arn: &str, token: &str) -> String {
    format!("{op}/{cluster_arn}/{token}")
}

/// The token was used before for another request.
#[derive(Debug)]
pub struct Reused;

/// The record of the token's first call, if it is a retry of it (None: a token not seen,
/// or expired); `Reused` if the token came with another request.
pub fn find<'s>(
    state: &'s State,
    key: &str,
    token: &ClientToken,
    now_ms: i64,
) -> Result<Option<&'s TokenRecord>, Reused> {
    match state
        .client_tokens
        .get(key)
        .filter(|r| now_ms - r.created_ms < TTL_MS)
    {
        Some(rec) if rec.request != token.request => Err(Reused),
        found => Ok(found),
    }
}

/// The first call's tasks and failures for a retry of a `RunTask`; a conflict for
/// another request under the same token; None for a token not seen (or expired).
pub fn replay(
    state: &State,
    key: &str,
    token: &ClientToken,
    now_ms: i64,
) -> Result<Option<RunTaskOutcome>, StateError> {
    let Some(rec) = find(state, key, token, now_ms).map_err(|Reused| {
        StateError::Conflict(format!(
            "The clientToken '{}' was already used for a different RunTask request in this cluster; use a new token for a new request.",
            token.token
        ))
    })?
    else {
        return Ok(None);
    };
    let tasks = rec
        .ids
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

/// The writes that record a token's first call (what it made: `ids`), and forget
/// expired tokens.
pub fn record(
    state: &State,
    key: &str,
    token: &ClientToken,
    ids: Vec<String>,
    failures: &[ItemFailure],
    now_ms: i64,
) -> (TokenRecord, Vec<Write>) {
    let rec = TokenRecord {
        request: token.request.clone(),
        ids,
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
