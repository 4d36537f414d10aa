//! `PutLogEvents`, `GetLogEvents` (with its forward and backward tokens) and
//! `FilterLogEvents` (across a group's streams, in time order, with filter patterns).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{limit, ApiError};
use crate::logs::model::{EventId, InputEvent};
use crate::logs::{FilterRead, Logs, StreamPosition, StreamRead};

/// The group a request names, by `logGroupName` or `logGroupIdentifier` (name or ARN);
/// exactly one of them.
pub(super) fn group_name(
    logs: &Logs,
    name: Option<&str>,
    identifier: Option<&str>,
) -> Result<String, ApiError> {
    match (name, identifier) {
        (Some(n), None) => Ok(n.to_owned()),
        (None, Some(id)) => Ok(logs.resolve_group(id)?.name),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "logGroupName and logGroupIdentifier are mutually exclusive.",
        )),
        (None, None) => Err(ApiError::invalid(
            "Either logGroupName or logGroupIdentifier must be given.",
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputEventShape {
    timestamp: i64,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PutInput {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputEventShape>,
    #[allow(dead_code)] // ignored, as CloudWatch Logs now ignores it
    sequence_token: Option<String>,
}

pub(super) fn put(logs: &Logs, req: PutInput) -> Result<Value, ApiError> {
    let events: Vec<InputEvent> = req
        .log_events
        .into_iter()
        .map(|e| InputEvent {
            timestamp_ms: e.timestamp,
            message: e.message,
        })
        .collect();
    let check = logs.put_events(&req.log_group_name, &req.log_stream_name, &events)?;
    let stream = logs.stream(&req.log_group_name, &req.log_stream_name)?;
    let mut out = json!({
        "nextSequenceToken": stream.map_or(0, |s| s.next_seq).to_string(),
    });
    let mut rejected = serde_json::Map::new();
    for (key, index) in [
        ("tooNewLogEventStartIndex", check.too_new_start),
        ("tooOldLogEventEndIndex", check.too_old_end),
        ("expiredLogEventEndIndex", check.expired_end),
    ] {
        if let Some(i) = index {
            rejected.insert(key.into(), json!(i));
        }
    }
    if !rejected.is_empty() {
        out["rejectedLogEventsInfo"] = Value::Object(rejected);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GetInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

/// `f/<timestamp>/<seq>` or `b/<timestamp>/<seq>`, as `GetLogEvents` hands them out.
fn parse_stream_token(token: &str) -> Option<(StreamPosition, bool)> {
    let mut parts = token.splitn(3, '/');
    let forward = match parts.next()? {
        "f" => true,
        "b" => false,
        _ => return None,
    };
    let timestamp_ms = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((StreamPosition { timestamp_ms, seq }, forward))
}

/// A request's `nextToken`, read by `parse`; one it cannot read is refused.
fn next_token<T>(
    token: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    token
        .map(|t| {
            parse(t).ok_or_else(|| {
                ApiError::invalid(format!(
                    "The specified nextToken is invalid: '{t}'. Pass a token from the previous response."
                ))
            })
        })
        .transpose()
}

fn stream_token(p: StreamPosition, forward: bool) -> String {
    format!(
        "{}/{}/{}",
        if forward { "f" } else { "b" },
        p.timestamp_ms,
        p.seq
    )
}

pub(super) fn get(logs: &Logs, req: &GetInput) -> Result<Value, ApiError> {
    let group = group_name(
        logs,
        req.log_group_name.as_deref(),
        req.log_group_identifier.as_deref(),
    )?;
    let from = next_token(req.next_token.as_deref(), parse_stream_token)?;
    let read = StreamRead {
        start_ms: req.start_time,
        end_ms: req.end_time,
        from,
        start_from_head: req.start_from_head.unwrap_or(false),
        limit: limit(req.limit, 10_000)?,
    };
    let page = logs.get_events(&group, &req.log_stream_name, &read)?;
    Ok(json!({
        "events": page.events.iter().map(|e| json!({
            "timestamp": e.id.timestamp_ms,
            "message": e.message,
            "ingestionTime": e.ingestion_ms,
        })).collect::<Vec<_>>(),
        "nextForwardToken": stream_token(page.forward, true),
        "nextBackwardToken": stream_token(page.backward, false),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FilterInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    #[allow(dead_code)] // deprecated: events are always interleaved
    interleaved: Option<bool>,
}

pub(super) fn filter(logs: &Logs, req: FilterInput) -> Result<Value, ApiError> {
    let group = group_name(
        logs,
        req.log_group_name.as_deref(),
        req.log_group_identifier.as_deref(),
    )?;
    if req.log_stream_names.is_some() && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "logStreamNames and logStreamNamePrefix are mutually exclusive.",
        ));
    }
    let after = next_token(req.next_token.as_deref(), EventId::from_token)?;
    let read = FilterRead {
        streams: req.log_stream_names,
        stream_prefix: req.log_stream_name_prefix,
        start_ms: req.start_time,
        end_ms: req.end_time,
        pattern: req.filter_pattern.filter(|p| !p.trim().is_empty()),
        after,
        limit: limit(req.limit, 10_000)?,
    };
    let (events, complete) = logs.filter_events(&group, &read)?;
    let searched: Vec<Value> = match &read.streams {
        Some(names) => names.clone(),
        None => logs.streams(&group)?.into_iter().map(|s| s.name).collect(),
    }
    .into_iter()
    .map(|name| json!({"logStreamName": name, "searchedCompletely": complete}))
    .collect();
    let mut out = json!({
        "events": events.iter().map(|e| json!({
            "logStreamName": e.stream,
            "timestamp": e.id.timestamp_ms,
            "message": e.message,
            "ingestionTime": e.ingestion_ms,
            "eventId": e.id.to_token(),
        })).collect::<Vec<_>>(),
        "searchedLogStreams": searched,
    });
    if !complete {
        if let Some(last) = events.last() {
            out["nextToken"] = json!(last.id.to_token());
        }
    }
    Ok(out)
}
