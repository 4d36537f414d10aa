//! `RunTask`, `StartTask`, `DescribeTasks`, `ListTasks`, `StopTask`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::task_definitions::{environment, KeyValue};
use super::{page, render, tags_in, ApiError, Tag};
use crate::model::task_definition::{parse_cpu, parse_memory};
use crate::model::LaunchType;
use crate::state::{
    ContainerOverride, ControlPlane, RunTask, RunTaskOutcome, StartTask, TaskFilter, TaskLaunch,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerOverrideInput {
    name: Option<String>,
    command: Option<Vec<String>>,
    environment: Option<Vec<KeyValue>>,
    cpu: Option<i64>,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OverridesInput {
    container_overrides: Option<Vec<ContainerOverrideInput>>,
    cpu: Option<String>,
    memory: Option<String>,
}

/// The members `RunTask` and `StartTask` share.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LaunchInput {
    cluster: Option<String>,
    task_definition: String,
    started_by: Option<String>,
    group: Option<String>,
    overrides: Option<OverridesInput>,
    tags: Option<Vec<Tag>>,
    enable_execute_command: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunInput {
    #[serde(flatten)]
    launch: LaunchInput,
    count: Option<i64>,
    launch_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StartInput {
    #[serde(flatten)]
    launch: LaunchInput,
    container_instances: Vec<String>,
}

fn launch_type(s: Option<&str>) -> Result<LaunchType, ApiError> {
    match s {
        None => Ok(LaunchType::Ec2),
        Some(s) => LaunchType::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "launchType '{s}' is not valid; use EC2, FARGATE or EXTERNAL."
            ))
        }),
    }
}

/// Validates the shared members; `body` is the raw request, whose
/// `overrides` are echoed back verbatim by `DescribeTasks`.
fn launch_in(req: LaunchInput, body: &[u8]) -> Result<TaskLaunch, ApiError> {
    let raw: Value = serde_json::from_slice(body).unwrap_or_default();
    let overrides = req.overrides.unwrap_or_default();
    if req.started_by.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(ApiError::invalid(
            "startedBy must be at most 128 characters.",
        ));
    }
    let container_overrides = overrides
        .container_overrides
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            Ok(ContainerOverride {
                name: o.name.ok_or_else(|| {
                    ApiError::invalid("Each containerOverrides entry must name its container.")
                })?,
                command: o.command,
                environment: environment(o.environment),
                cpu: o.cpu,
                memory_mib: o.memory,
                memory_reservation_mib: o.memory_reservation,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(TaskLaunch {
        cluster: req.cluster.unwrap_or_else(|| "default".into()),
        task_definition: req.task_definition,
        started_by: req.started_by,
        group: req.group,
        container_overrides,
        cpu: overrides
            .cpu
            .as_deref()
            .map(parse_cpu)
            .transpose()
            .map_err(|e| ApiError::invalid(format!("overrides.{}", e.0)))?,
        memory_mib: overrides
            .memory
            .as_deref()
            .map(parse_memory)
            .transpose()
            .map_err(|e| ApiError::invalid(format!("overrides.{}", e.0)))?,
        overrides: raw
            .get("overrides")
            .cloned()
            .unwrap_or_else(|| json!({"containerOverrides": []})),
        tags: tags_in(req.tags)?,
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
    })
}

fn outcome(out: &RunTaskOutcome) -> Value {
    json!({
        "tasks": out.tasks.iter().map(|t| render::task(t, false)).collect::<Vec<_>>(),
        "failures": out.failures.iter().map(render::failure).collect::<Vec<_>>(),
    })
}

pub(super) fn run(cp: &ControlPlane, req: RunInput, body: &[u8]) -> Result<Value, ApiError> {
    let count = req.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid(format!(
            "count must be between 1 and 10, got {count}."
        )));
    }
    let run = RunTask {
        launch_type: launch_type(req.launch_type.as_deref())?,
        launch: launch_in(req.launch, body)?,
        count: usize::try_from(count).unwrap_or(1),
    };
    Ok(outcome(&cp.run_task(&run)?))
}

pub(super) fn start(cp: &ControlPlane, req: StartInput, body: &[u8]) -> Result<Value, ApiError> {
    if !(1..=10).contains(&req.container_instances.len()) {
        return Err(ApiError::invalid(format!(
            "containerInstances must name 1 to 10 container instances, got {}.",
            req.container_instances.len()
        )));
    }
    let start = StartTask {
        launch: launch_in(req.launch, body)?,
        container_instances: req.container_instances,
    };
    Ok(outcome(&cp.start_task(&start)?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    cluster: Option<String>,
    tasks: Vec<String>,
    include: Option<Vec<String>>,
}

pub(super) fn describe(cp: &ControlPlane, req: DescribeInput) -> Result<Value, ApiError> {
    if req.tasks.len() > 100 {
        return Err(ApiError::invalid(format!(
            "At most 100 tasks can be described at once, got {}.",
            req.tasks.len()
        )));
    }
    let with_tags = req.include.unwrap_or_default().iter().any(|i| i == "TAGS");
    let (found, failures) =
        cp.describe_tasks(req.cluster.as_deref().unwrap_or("default"), &req.tasks)?;
    Ok(json!({
        "tasks": found.iter().map(|t| render::task(t, with_tags)).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<String>,
    launch_type: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list(cp: &ControlPlane, req: ListInput) -> Result<Value, ApiError> {
    if let Some(s) = req.desired_status.as_deref() {
        if !matches!(s, "RUNNING" | "PENDING" | "STOPPED") {
            return Err(ApiError::invalid(format!(
                "desiredStatus '{s}' is not valid; use RUNNING, PENDING or STOPPED."
            )));
        }
    }
    let filter = TaskFilter {
        cluster: req.cluster.unwrap_or_else(|| "default".into()),
        family: req.family,
        container_instance: req.container_instance,
        started_by: req.started_by,
        group: req.service_name.map(|s| format!("service:{s}")),
        desired_status: req.desired_status,
        launch_type: req
            .launch_type
            .as_deref()
            .map(|l| launch_type(Some(l)))
            .transpose()?,
    };
    page(
        &cp.list_tasks(&filter)?,
        req.max_results,
        req.next_token.as_deref(),
        "taskArns",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StopInput {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

pub(super) fn stop(cp: &ControlPlane, req: &StopInput) -> Result<Value, ApiError> {
    if req.reason.as_ref().is_some_and(|r| r.len() > 255) {
        return Err(ApiError::invalid("reason must be at most 255 characters."));
    }
    let t = cp.stop_task(
        req.cluster.as_deref().unwrap_or("default"),
        &req.task,
        req.reason.as_deref(),
    )?;
    Ok(json!({ "task": render::task(&t, false) }))
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::fleet;

    #[test]
    fn start_task_on_named_instances() {
        let (cp, arn) = fleet();
        let body = format!(
            r#"{{"taskDefinition":"web","containerInstances":["{arn}","ffff"],"startedBy":"me",
                "overrides":{{"containerOverrides":[{{"name":"web","command":["sleep","1"]}}]}}}}"#
        );
        let out = dispatch(&cp, "StartTask", body.as_bytes()).unwrap();
        let t = &out["tasks"][0];
        assert_eq!(t["containerInstanceArn"], arn.as_str());
        assert_eq!(t["startedBy"], "me");
        assert_eq!(t["launchType"], "EC2");
        assert_eq!(
            t["overrides"]["containerOverrides"][0]["command"],
            serde_json::json!(["sleep", "1"])
        );
        assert_eq!(out["failures"][0]["reason"], "MISSING");
        let e = dispatch(
            &cp,
            "StartTask",
            br#"{"taskDefinition":"web","containerInstances":[]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        let e = dispatch(&cp, "StartTask", br#"{"taskDefinition":"web"}"#).unwrap_err();
        assert!(
            e.message.contains("\"containerInstances\""),
            "{}",
            e.message
        );
    }
}
