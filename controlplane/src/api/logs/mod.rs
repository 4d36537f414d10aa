//! CloudWatch Logs (`Logs_20140328`, AWS JSON 1.1), as botocore's model shapes it: log
//! groups and streams, events in and out, retention, tags and Logs Insights queries. Each handler parses its
//! input, calls `crate::logs::Logs`, and renders the model's output shape.

mod events;
mod groups;
mod queries;
mod streams;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use berth_aws::{AwsError, AwsService, Call, JsonProtocol, JsonVersion, ServiceInfo};
use serde_json::Value;

use super::error::{ApiError, ErrorType};
use super::json::parse;
use crate::logs::store::LogStoreError;
use crate::logs::{Logs, LogsError};

/// CloudWatch Logs, as the edge routes to it.
pub struct CloudWatchLogs {
    logs: Arc<Logs>,
}

impl CloudWatchLogs {
    pub fn new(logs: Arc<Logs>) -> Self {
        Self { logs }
    }
}

const INFO: ServiceInfo = ServiceInfo {
    signing_name: "logs",
    json: Some(JsonProtocol {
        target_prefix: "Logs_20140328",
        version: JsonVersion::V1_1,
        query_compatible: false,
    }),
    query: None,
};

impl AwsService for CloudWatchLogs {
    fn info(&self) -> &ServiceInfo {
        &INFO
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        Ok(dispatch(
            &self.logs,
            call.region,
            call.operation,
            call.json_body()?,
        )?)
    }
}

impl From<LogsError> for ApiError {
    fn from(e: LogsError) -> Self {
        let kind = match &e {
            LogsError::Store(
                LogStoreError::GroupNotFound(_) | LogStoreError::StreamNotFound { .. },
            )
            | LogsError::QueryNotFound(_) => ErrorType::ResourceNotFound,
            LogsError::Store(
                LogStoreError::GroupExists(_) | LogStoreError::StreamExists { .. },
            ) => ErrorType::ResourceAlreadyExists,
            LogsError::InvalidParameter(_) | LogsError::FilterPattern(_) => {
                ErrorType::InvalidParameter
            }
            LogsError::MalformedQuery(_) => ErrorType::MalformedQuery,
            LogsError::TooManyTags(_) => ErrorType::TooManyTags,
            LogsError::Store(LogStoreError::Db(_)) => {
                tracing::error!(error = %e, "a logs request failed inside the control plane");
                ErrorType::ServiceUnavailable
            }
        };
        Self::new(kind, e.to_string())
    }
}

/// Runs one CloudWatch Logs operation signed for `region`. Testable without HTTP.
pub fn dispatch(logs: &Logs, region: &str, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "CreateLogGroup" => groups::create(logs, region, parse(op, body)?),
        "DeleteLogGroup" => groups::delete(logs, &parse(op, body)?),
        "DescribeLogGroups" => groups::describe(logs, &parse(op, body)?),
        "PutRetentionPolicy" => groups::put_retention(logs, &parse(op, body)?),
        "DeleteRetentionPolicy" => groups::delete_retention(logs, &parse(op, body)?),
        "TagResource" => groups::tag_resource(logs, parse(op, body)?),
        "UntagResource" => groups::untag_resource(logs, &parse(op, body)?),
        "ListTagsForResource" => groups::list_tags_for_resource(logs, &parse(op, body)?),
        "TagLogGroup" => groups::tag_log_group(logs, parse(op, body)?),
        "UntagLogGroup" => groups::untag_log_group(logs, &parse(op, body)?),
        "ListTagsLogGroup" => groups::list_tags_log_group(logs, &parse(op, body)?),
        "CreateLogStream" => streams::create(logs, &parse(op, body)?),
        "DeleteLogStream" => streams::delete(logs, &parse(op, body)?),
        "DescribeLogStreams" => streams::describe(logs, &parse(op, body)?),
        "PutLogEvents" => events::put(logs, parse(op, body)?),
        "GetLogEvents" => events::get(logs, &parse(op, body)?),
        "FilterLogEvents" => events::filter(logs, parse(op, body)?),
        "StartQuery" => queries::start(logs, parse(op, body)?),
        "GetQueryResults" => queries::results(logs, &parse(op, body)?),
        "StopQuery" => queries::stop(logs, &parse(op, body)?),
        "DescribeQueries" => queries::describe(logs, &parse(op, body)?),
        _ => Err(ApiError::new(
            ErrorType::UnknownOperation,
            format!(
                "Operation 'Logs_20140328.{op}' is not served: Berth implements the log group, \
                 log stream, event, retention, tag and Logs Insights query operations of CloudWatch Logs."
            ),
        )),
    }
}

/// `limit` within `1..=max`, `max` when absent.
fn limit(value: Option<i64>, max: usize) -> Result<usize, ApiError> {
    match value {
        None => Ok(max),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!("limit must be between 1 and {max}, got {n}."))
            }),
    }
}

/// A page of `items` from the index in `next_token`.
fn page<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match next_token {
        None | Some("") => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            ApiError::invalid(format!(
                "nextToken '{t}' is not valid; pass the token from the previous response."
            ))
        })?,
    };
    let total = items.len();
    let end = start.saturating_add(limit).min(total);
    let page: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    Ok((page, (end < total).then(|| end.to_string())))
}
