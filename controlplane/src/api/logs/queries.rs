//! Logs Insights: `StartQuery`, `GetQueryResults`, `StopQuery` and `DescribeQueries`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{limit, page, ApiError};
use crate::logs::insights::MAX_ROWS;
use crate::logs::queries::{QueryRecord, QueryRequest, QueryStatus};
use crate::logs::Logs;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StartInput {
    log_group_name: Option<String>,
    #[serde(default)]
    log_group_names: Vec<String>,
    #[serde(default)]
    log_group_identifiers: Vec<String>,
    /// Seconds since the epoch, as Insights takes them.
    start_time: i64,
    end_time: i64,
    query_string: String,
    limit: Option<i64>,
}

pub(super) fn start(logs: &Logs, req: StartInput) -> Result<Value, ApiError> {
    let given = usize::from(req.log_group_name.is_some())
        + usize::from(!req.log_group_names.is_empty())
        + usize::from(!req.log_group_identifiers.is_empty());
    if given > 1 {
        return Err(ApiError::invalid(
            "Give only one of logGroupName, logGroupNames and logGroupIdentifiers.",
        ));
    }
    let mut groups: Vec<String> = req
        .log_group_name
        .into_iter()
        .chain(req.log_group_names)
        .collect();
    for id in &req.log_group_identifiers {
        groups.push(logs.resolve_group(id)?.name);
    }
    let limit = req.limit.map(|l| limit(Some(l), MAX_ROWS)).transpose()?;
    let id = logs.start_query(QueryRequest {
        groups,
        start_ms: req.start_time.saturating_mul(1000),
        end_ms: req.end_time.saturating_mul(1000).saturating_add(999),
        query_string: req.query_string,
        limit,
    })?;
    Ok(json!({ "queryId": id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct QueryIdInput {
    query_id: String,
}

pub(super) fn results(logs: &Logs, req: &QueryIdInput) -> Result<Value, ApiError> {
    let q = logs.query(&req.query_id)?;
    let outcome = q.outcome.unwrap_or_default();
    let results: Vec<Value> = outcome
        .rows
        .iter()
        .map(|row| {
            Value::Array(
                row.iter()
                    .map(|(field, value)| json!({"field": field, "value": value}))
                    .collect(),
            )
        })
        .collect();
    // The model's statistics are doubles; whole numbers read as such.
    Ok(json!({
        "results": results,
        "statistics": {
            "recordsMatched": outcome.records_matched,
            "recordsScanned": outcome.records_scanned,
            "bytesScanned": outcome.bytes_scanned,
        },
        "status": q.status.as_str(),
    }))
}

pub(super) fn stop(logs: &Logs, req: &QueryIdInput) -> Result<Value, ApiError> {
    Ok(json!({ "success": logs.stop_query(&req.query_id)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    log_group_name: Option<String>,
    status: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub(super) fn describe(logs: &Logs, req: &DescribeInput) -> Result<Value, ApiError> {
    let status = req
        .status
        .as_deref()
        .map(|s| {
            QueryStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(format!(
                    "status '{s}' is not one of {}.",
                    berth_ecs::names(<QueryStatus as berth_ecs::EcsEnum>::ALL)
                ))
            })
        })
        .transpose()?;
    let all = logs.queries(req.log_group_name.as_deref(), status);
    let (found, next) = page(
        all,
        req.next_token.as_deref(),
        limit(req.max_results, 1000)?,
    )?;
    let queries: Vec<Value> = found.iter().map(summary).collect();
    let mut out = json!({ "queries": queries });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

fn summary(q: &QueryRecord) -> Value {
    json!({
        "queryId": q.id,
        "queryString": q.query_string,
        "status": q.status.as_str(),
        "createTime": q.create_time_ms,
        "logGroupName": q.groups.first().cloned().unwrap_or_default(),
    })
}
