//! `CreateTaskSet`, `DescribeTaskSets`, `UpdateTaskSet`, `DeleteTaskSet` and
//! `UpdateServicePrimaryTaskSet`: the calls an external deployment controller drives a
//! service with.

use serde::Deserialize;
use serde_json::{json, Value};

use super::capacity_providers::StrategyItem;
use super::tasks::capacity_in;
use super::{render, tags_in, ApiError, Tag};
use crate::model::task_set::{TaskSet, FULL_SCALE};
use crate::services::TaskSetSpec;
use crate::state::ControlPlane;

/// What `CreateTaskSet` keeps and shows as given.
const KEPT: [&str; 4] = [
    "networkConfiguration",
    "loadBalancers",
    "serviceRegistries",
    "platformVersion",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ScaleInput {
    value: Option<f64>,
    unit: Option<String>,
}

/// A scale in thousandths of a percent; ECS's default is 100 percent.
fn scale_in(scale: Option<ScaleInput>) -> Result<u32, ApiError> {
    let Some(s) = scale else {
        return Ok(FULL_SCALE);
    };
    if s.unit.as_deref().is_some_and(|u| u != "PERCENT") {
        return Err(ApiError::invalid("scale.unit must be PERCENT."));
    }
    let value = s.value.unwrap_or(100.0);
    if !(0.0..=100.0).contains(&value) {
        return Err(ApiError::invalid(format!(
            "scale.value must be between 0 and 100 percent, got {value}."
        )));
    }
    // 0..=100 percent, to a thousandth: fits u32.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((value * 1000.0).round() as u32)
}

/// A task set as ECS shows it, under its service and cluster (ARNs).
pub(super) fn render(t: &TaskSet, owner: (&str, &str), with_tags: bool) -> Value {
    let mut v = json!({
        "id": t.id,
        "taskSetArn": t.arn,
        "serviceArn": owner.0,
        "clusterArn": owner.1,
        "status": t.status.as_str(),
        "taskDefinition": t.task_definition,
        "computedDesiredCount": t.computed_desired_count,
        "pendingCount": t.pending_count,
        "runningCount": t.running_count,
        "createdAt": render::epoch(t.created_at_ms),
        "updatedAt": render::epoch(t.updated_at_ms),
        "scale": {"value": f64::from(t.scale_millipercent) / 1000.0, "unit": "PERCENT"},
        "stabilityStatus": t.stability_status.as_str(),
        "stabilityStatusAt": render::epoch(t.stability_status_at_ms),
        "loadBalancers": [],
        "serviceRegistries": [],
    });
    render::capacity(&mut v, t.launch_type, &t.capacity_provider_strategy);
    if let Some(e) = &t.external_id {
        v["externalId"] = json!(e);
        v["startedBy"] = json!(e);
    }
    for (k, val) in &t.kept {
        v[k] = val.clone();
    }
    if with_tags {
        v["tags"] = render::tags(&t.tags);
    }
    v
}

/// A service an external controller drives shows its task sets (its deployments); until
/// one is PRIMARY it has no task definition to show.
pub(super) fn add_to_service(v: &mut Value, s: &crate::model::Service) {
    if !s.is_external() {
        return;
    }
    v["taskSets"] = s
        .task_sets
        .iter()
        .map(|t| render(t, (&s.arn, &s.cluster_arn), false))
        .collect();
    if s.task_definition.is_empty() {
        if let Some(o) = v.as_object_mut() {
            o.remove("taskDefinition");
        }
    }
}

fn owner(cp: &ControlPlane, cluster: &str, service: &str) -> Result<(String, String), ApiError> {
    let (found, _) = cp.describe_services(cluster, &[service.to_owned()])?;
    let s = found.first().ok_or_else(|| {
        ApiError::from(crate::state::StateError::ServiceNotFound(
            service.to_owned(),
        ))
    })?;
    Ok((s.arn.clone(), s.cluster_arn.clone()))
}

fn one(cp: &ControlPlane, cluster: &str, service: &str, t: &TaskSet) -> Result<Value, ApiError> {
    let (s, c) = owner(cp, cluster, service)?;
    Ok(json!({ "taskSet": render(t, (&s, &c), false) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateInput {
    service: String,
    cluster: String,
    task_definition: String,
    external_id: Option<String>,
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<StrategyItem>>,
    scale: Option<ScaleInput>,
    tags: Option<Vec<Tag>>,
}

pub(super) fn create(cp: &ControlPlane, req: CreateInput, body: &[u8]) -> Result<Value, ApiError> {
    let raw: Value = serde_json::from_slice(body).unwrap_or_default();
    let kept = KEPT
        .iter()
        .filter_map(|k| raw.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    let spec = TaskSetSpec {
        cluster: req.cluster.clone(),
        service: req.service.clone(),
        task_definition: req.task_definition,
        external_id: req.external_id,
        capacity: capacity_in(req.launch_type.as_deref(), req.capacity_provider_strategy)?,
        scale_millipercent: scale_in(req.scale)?,
        tags: tags_in(req.tags)?,
        kept,
    };
    let t = cp.create_task_set(&spec)?;
    one(cp, &req.cluster, &req.service, &t)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateInput {
    cluster: String,
    service: String,
    task_set: String,
    scale: ScaleInput,
}

pub(super) fn update(cp: &ControlPlane, req: UpdateInput) -> Result<Value, ApiError> {
    let t = cp.update_task_set(
        &req.cluster,
        &req.service,
        &req.task_set,
        scale_in(Some(req.scale))?,
    )?;
    one(cp, &req.cluster, &req.service, &t)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PrimaryInput {
    cluster: String,
    service: String,
    primary_task_set: String,
}

pub(super) fn make_primary(cp: &ControlPlane, req: &PrimaryInput) -> Result<Value, ApiError> {
    let t =
        cp.update_service_primary_task_set(&req.cluster, &req.service, &req.primary_task_set)?;
    one(cp, &req.cluster, &req.service, &t)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteInput {
    cluster: String,
    service: String,
    task_set: String,
    force: Option<bool>,
}

pub(super) fn delete(cp: &ControlPlane, req: &DeleteInput) -> Result<Value, ApiError> {
    let t = cp.delete_task_set(
        &req.cluster,
        &req.service,
        &req.task_set,
        req.force.unwrap_or(false),
    )?;
    one(cp, &req.cluster, &req.service, &t)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    cluster: String,
    service: String,
    task_sets: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

pub(super) fn describe(cp: &ControlPlane, req: DescribeInput) -> Result<Value, ApiError> {
    let with_tags = req.include.unwrap_or_default().iter().any(|i| i == "TAGS");
    let (found, failures) = cp.describe_task_sets(
        &req.cluster,
        &req.service,
        &req.task_sets.unwrap_or_default(),
    )?;
    let (s, c) = owner(cp, &req.cluster, &req.service)?;
    Ok(json!({
        "taskSets": found.iter().map(|t| render(t, (&s, &c), with_tags)).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}
