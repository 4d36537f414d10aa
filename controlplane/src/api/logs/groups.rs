//! `CreateLogGroup`, `DeleteLogGroup`, `DescribeLogGroups`, `PutRetentionPolicy`,
//! `DeleteRetentionPolicy`, and tags: `TagResource`, `UntagResource`,
//! `ListTagsForResource` (by ARN) and the older `TagLogGroup`, `UntagLogGroup`,
//! `ListTagsLogGroup` (by name).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{limit, page, ApiError};
use crate::logs::model::LogGroup;
use crate::logs::Logs;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateInput {
    log_group_name: String,
    tags: Option<BTreeMap<String, String>>,
    #[allow(dead_code)] // accepted; Berth does not encrypt with KMS keys
    kms_key_id: Option<String>,
    log_group_class: Option<String>,
}

pub(super) fn create(logs: &Logs, region: &str, req: CreateInput) -> Result<Value, ApiError> {
    logs.create_group(
        region,
        &req.log_group_name,
        req.tags.unwrap_or_default(),
        req.log_group_class,
    )?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GroupNameInput {
    log_group_name: String,
}

pub(super) fn delete(logs: &Logs, req: &GroupNameInput) -> Result<Value, ApiError> {
    logs.delete_group(&req.log_group_name)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

/// A log group as `DescribeLogGroups` shows it (botocore's `LogGroup` shape).
fn render(g: &LogGroup, stored_bytes: u64) -> Value {
    let mut v = json!({
        "logGroupName": g.name,
        "creationTime": g.created_ms,
        "metricFilterCount": 0,
        // `arn` ends with `:*` (the group and its streams), `logGroupArn` does not.
        "arn": format!("{}:*", g.arn),
        "logGroupArn": g.arn,
        "storedBytes": stored_bytes,
        "logGroupClass": g.class.as_deref().unwrap_or("STANDARD"),
    });
    if let Some(days) = g.retention_days {
        v["retentionInDays"] = json!(days);
    }
    v
}

pub(super) fn describe(logs: &Logs, req: &DescribeInput) -> Result<Value, ApiError> {
    if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
        return Err(ApiError::invalid(
            "logGroupNamePrefix and logGroupNamePattern are mutually exclusive.",
        ));
    }
    let groups = logs.describe_groups(
        req.log_group_name_prefix.as_deref(),
        req.log_group_name_pattern.as_deref(),
    );
    let (groups, next) = page(groups, req.next_token.as_deref(), limit(req.limit, 50)?)?;
    let mut out = json!({
        "logGroups": groups.iter().map(|(g, bytes)| render(g, *bytes)).collect::<Vec<_>>(),
    });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RetentionInput {
    log_group_name: String,
    retention_in_days: i64,
}

pub(super) fn put_retention(logs: &Logs, req: &RetentionInput) -> Result<Value, ApiError> {
    logs.set_retention(&req.log_group_name, Some(req.retention_in_days))?;
    Ok(json!({}))
}

pub(super) fn delete_retention(logs: &Logs, req: &GroupNameInput) -> Result<Value, ApiError> {
    logs.set_retention(&req.log_group_name, None)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TagResourceInput {
    resource_arn: String,
    tags: BTreeMap<String, String>,
}

pub(super) fn tag_resource(logs: &Logs, req: TagResourceInput) -> Result<Value, ApiError> {
    let group = logs.resolve_group(&req.resource_arn)?;
    logs.change_tags(&group, req.tags, &[])?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

pub(super) fn untag_resource(logs: &Logs, req: &UntagResourceInput) -> Result<Value, ApiError> {
    let group = logs.resolve_group(&req.resource_arn)?;
    logs.change_tags(&group, BTreeMap::new(), &req.tag_keys)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResourceInput {
    resource_arn: String,
}

pub(super) fn list_tags_for_resource(logs: &Logs, req: &ResourceInput) -> Result<Value, ApiError> {
    Ok(json!({ "tags": logs.resolve_group(&req.resource_arn)?.tags }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TagLogGroupInput {
    log_group_name: String,
    tags: BTreeMap<String, String>,
}

pub(super) fn tag_log_group(logs: &Logs, req: TagLogGroupInput) -> Result<Value, ApiError> {
    let group = logs.resolve_group(&req.log_group_name)?;
    logs.change_tags(&group, req.tags, &[])?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UntagLogGroupInput {
    log_group_name: String,
    tags: Vec<String>,
}

pub(super) fn untag_log_group(logs: &Logs, req: &UntagLogGroupInput) -> Result<Value, ApiError> {
    let group = logs.resolve_group(&req.log_group_name)?;
    logs.change_tags(&group, BTreeMap::new(), &req.tags)?;
    Ok(json!({}))
}

pub(super) fn list_tags_log_group(logs: &Logs, req: &GroupNameInput) -> Result<Value, ApiError> {
    Ok(json!({ "tags": logs.resolve_group(&req.log_group_name)?.tags }))
}
