//! `CreateLogStream`, `DeleteLogStream`, `DescribeLogStreams`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{limit, page, ApiError};
use crate::logs::model::LogStream;
use crate::logs::Logs;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StreamInput {
    log_group_name: String,
    log_stream_name: String,
}

pub(super) fn create(logs: &Logs, req: &StreamInput) -> Result<Value, ApiError> {
    logs.create_stream(&req.log_group_name, &req.log_stream_name)?;
    Ok(json!({}))
}

pub(super) fn delete(logs: &Logs, req: &StreamInput) -> Result<Value, ApiError> {
    logs.delete_stream(&req.log_group_name, &req.log_stream_name)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

/// A stream as `DescribeLogStreams` shows it (botocore's `LogStream` shape).
pub(super) fn render(s: &LogStream) -> Value {
    let mut v = json!({
        "logStreamName": s.name,
        "creationTime": s.created_ms,
        "arn": s.arn,
        "storedBytes": s.stored_bytes,
        "uploadSequenceToken": s.next_seq.to_string(),
    });
    for (key, value) in [
        ("firstEventTimestamp", s.first_event_ms),
        ("lastEventTimestamp", s.last_event_ms),
        ("lastIngestionTime", s.last_ingestion_ms),
    ] {
        if let Some(ms) = value {
            v[key] = json!(ms);
        }
    }
    v
}

pub(super) fn describe(logs: &Logs, req: &DescribeInput) -> Result<Value, ApiError> {
    let group = super::events::group_name(
        logs,
        req.log_group_name.as_deref(),
        req.log_group_identifier.as_deref(),
    )?;
    let by_time = match req.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "orderBy '{o}' is not valid; use LogStreamName or LastEventTime."
            )))
        }
    };
    if by_time && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let mut streams: Vec<LogStream> = logs
        .streams(&group)?
        .into_iter()
        .filter(|s| {
            req.log_stream_name_prefix
                .as_deref()
                .is_none_or(|p| s.name.starts_with(p))
        })
        .collect();
    if by_time {
        streams.sort_by_key(|s| (s.last_event_ms.unwrap_or(s.created_ms), s.name.clone()));
    }
    if req.descending.unwrap_or(false) {
        streams.reverse();
    }
    let (streams, next) = page(streams, req.next_token.as_deref(), limit(req.limit, 50)?)?;
    let mut out = json!({ "logStreams": streams.iter().map(render).collect::<Vec<_>>() });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}
