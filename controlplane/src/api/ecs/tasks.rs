//! `RunTask`, `StartTask`, `DescribeTasks`, `ListTasks`, `StopTask`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::capacity_providers::{strategy_in, StrategyItem};
use super::task_definitions::{environment, KeyValue};
use super::{one_of, page, render, tags_in, ApiError, Tag};
use crate::model::placement::{
    PlacementConstraint, PlacementStrategy, RawConstraint, RawStrategy, MAX_CONSTRAINTS,
    MAX_STRATEGIES,
};
use crate::model::task_definition::{parse_cpu, parse_memory};
use crate::model::{DesiredStatus, LaunchType};
use crate::state::{
    Capacity, ContainerOverride, ControlPlane, RunTask, RunTaskOutcome, StartTask, TaskFilter,
    TaskLaunch,
};
use berth_ecs::EcsEnum;

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
    placement_strategy: Option<Vec<RawStrategy>>,
    placement_constraints: Option<Vec<RawConstraint>>,
    propagate_tags: Option<String>,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunInput {
    #[serde(flatten)]
    launch: LaunchInput,
    count: Option<i64>,
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<StrategyItem>>,
    client_token: Option<String>,
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

/// `placementStrategy` and `placementConstraints`, checked here so a bad
/// one is refused before anything is looked up.
pub(super) fn placement_in(
    strategies: Option<Vec<RawStrategy>>,
    constraints: Option<Vec<RawConstraint>>,
) -> Result<(Vec<PlacementStrategy>, Vec<PlacementConstraint>), ApiError> {
    let strategies = strategies.unwrap_or_default();
    if strategies.len() > MAX_STRATEGIES {
        return Err(ApiError::invalid(format!(
            "placementStrategy can have at most {MAX_STRATEGIES} entries, got {}.",
            strategies.len()
        )));
    }
    let constraints = constraints.unwrap_or_default();
    if constraints.len() > MAX_CONSTRAINTS {
        return Err(ApiError::invalid(format!(
            "placementConstraints can have at most {MAX_CONSTRAINTS} entries, got {}.",
            constraints.len()
        )));
    }
    let strategies = strategies
        .into_iter()
        .enumerate()
        .map(|(n, s)| {
            PlacementStrategy::try_from(s)
                .map_err(|e| ApiError::invalid(format!("placementStrategy[{n}]: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let constraints = constraints
        .into_iter()
        .enumerate()
        .map(|(n, c)| {
            PlacementConstraint::try_from(c)
                .map_err(|e| ApiError::invalid(format!("placementConstraints[{n}]: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok((strategies, constraints))
}

/// Validates the shared members; `body` is the raw request, whose
/// `overrides` are echoed back verbatim by `DescribeTasks`.
fn launch_in(req: LaunchInput, body: &[u8]) -> Result<TaskLaunch, ApiError> {
    let raw: Value = serde_json::from_slice(body).unwrap_or_default();
    let overrides = req.overrides.unwrap_or_default();
    let (placement_strategy, placement_constraints) =
        placement_in(req.placement_strategy, req.placement_constraints)?;
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
        placement_strategy,
        placement_constraints,
        propagate_task_definition_tags: match req.propagate_tags.as_deref() {
            None | Some("NONE") => false,
            Some("TASK_DEFINITION") => true,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "propagateTags must be TASK_DEFINITION or NONE for a task, got '{other}' (SERVICE is for a service's tasks)."
                )))
            }
        },
        ecs_managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
    })
}

fn outcome(out: &RunTaskOutcome) -> Value {
    json!({
        "tasks": out.tasks.iter().map(|t| render::task(t, false)).collect::<Vec<_>>(),
        "failures": out.failures.iter().map(render::failure).collect::<Vec<_>>(),
    })
}

/// `launchType` or `capacityProviderStrategy` (ECS allows one), or
/// neither: the cluster's default strategy. `RunTask` and `CreateService`
/// share it.
pub(super) fn capacity_in(
    launch: Option<&str>,
    strategy: Option<Vec<StrategyItem>>,
) -> Result<Capacity, ApiError> {
    Ok(match (launch, strategy) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
            ))
        }
        (Some(l), None) => Capacity::LaunchType(launch_type(Some(l))?),
        (None, Some(s)) if s.is_empty() => {
            return Err(ApiError::invalid(
                "capacityProviderStrategy must name at least one capacity provider.",
            ))
        }
        (None, Some(s)) => Capacity::Strategy(strategy_in("capacityProviderStrategy", s)?),
        (None, None) => Capacity::ClusterDefault,
    })
}

pub(super) fn run(cp: &ControlPlane, req: RunInput, body: &[u8]) -> Result<Value, ApiError> {
    let count = req.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid(format!(
            "count must be between 1 and 10, got {count}."
        )));
    }
    let capacity = capacity_in(req.launch_type.as_deref(), req.capacity_provider_strategy)?;
    let client_token = req
        .client_token
        .map(|t| super::client_token(t, 64, body))
        .transpose()?;
    let run = RunTask {
        capacity,
        launch: launch_in(req.launch, body)?,
        count: usize::try_from(count).unwrap_or(1),
        client_token,
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
    if req.tasks.is_empty() {
        return Err(ApiError::invalid("Tasks cannot be empty."));
    }
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
    let filter = TaskFilter {
        cluster: req.cluster.unwrap_or_else(|| "default".into()),
        family: req.family,
        container_instance: req.container_instance,
        started_by: req.started_by,
        group: req.service_name.map(|s| format!("service:{s}")),
        desired_status: req
            .desired_status
            .as_deref()
            .map(|s| one_of("desiredStatus", s, DesiredStatus::ALL))
            .transpose()?,
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
    use crate::state::test_support::{add_instance, fleet};

    #[test]
    fn start_task_on_named_instances() {
        let (cp, arn) = fleet();
        let body = format!(
            r#"{{"taskDefinition":"web","containerInstances":["{arn}","ffff"],"startedBy":"me",
                "overrides":{{"containerOverrides":[{{"name":"web","command":["sleep","1"]}}]}}}}"#
        );
        let out = dispatch(&cp, "us-east-1", "StartTask", body.as_bytes()).unwrap();
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
            "us-east-1",
            "StartTask",
            br#"{"taskDefinition":"web","containerInstances":[]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        let e = dispatch(
            &cp,
            "us-east-1",
            "StartTask",
            br#"{"taskDefinition":"web"}"#,
        )
        .unwrap_err();
        assert!(
            e.message.contains("\"containerInstances\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_retried_run_task_with_its_client_token_gets_the_same_tasks() {
        let (cp, _) = fleet();
        let run = |body: &str| dispatch(&cp, "us-east-1", "RunTask", body.as_bytes());
        let arns = |out: &serde_json::Value| -> Vec<String> {
            out["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["taskArn"].as_str().unwrap().to_owned())
                .collect()
        };
        let first = run(r#"{"taskDefinition":"web","count":1,"clientToken":"tok-1"}"#).unwrap();
        // The same request again (its fields in another order): the same task.
        let again = run(r#"{"clientToken":"tok-1","count":1,"taskDefinition":"web"}"#).unwrap();
        assert_eq!(arns(&first).len(), 1);
        assert_eq!(arns(&first), arns(&again));
        let listed = dispatch(&cp, "us-east-1", "ListTasks", b"{}").unwrap();
        assert_eq!(listed["taskArns"].as_array().unwrap().len(), 1);
        // The same token for another request: ECS's ConflictException.
        let e = run(r#"{"taskDefinition":"web","count":2,"clientToken":"tok-1"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorType::Conflict);
        assert!(e.message.contains("tok-1"), "{}", e.message);
        // A new token is a new request.
        let other = run(r#"{"taskDefinition":"web","clientToken":"tok-2"}"#).unwrap();
        assert!(!arns(&first).contains(&arns(&other)[0]));
        for bad in ["", "has space", &"x".repeat(65)] {
            let e = run(&format!(
                r#"{{"taskDefinition":"web","clientToken":"{bad}"}}"#
            ))
            .unwrap_err();
            assert_eq!(e.kind, ErrorType::InvalidParameter, "{bad:?}");
        }
    }

    #[test]
    fn run_task_places_with_strategies_and_constraints() {
        let (cp, a) = fleet();
        let b = add_instance(&cp, "default");
        let put =
            format!(r#"{{"attributes":[{{"name":"stack","value":"prod","targetId":"{b}"}}]}}"#);
        dispatch(&cp, "us-east-1", "PutAttributes", put.as_bytes()).unwrap();
        let body = br#"{"taskDefinition":"web","count":2,
            "placementStrategy":[{"type":"spread","field":"attribute:stack"},{"type":"binpack","field":"memory"}],
            "placementConstraints":[{"type":"distinctInstance"}]}"#;
        let out = dispatch(&cp, "us-east-1", "RunTask", body).unwrap();
        let on: Vec<_> = out["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["containerInstanceArn"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(on.len(), 2, "{out}");
        assert_ne!(on[0], on[1], "distinctInstance");
        // A third of the group has nowhere to go.
        let again =
            br#"{"taskDefinition":"web","placementConstraints":[{"type":"distinctInstance"}]}"#;
        let out = dispatch(&cp, "us-east-1", "RunTask", again).unwrap();
        assert_eq!(out["tasks"], serde_json::json!([]));
        assert_eq!(out["failures"][0]["reason"], "DistinctInstance");

        let prod = br#"{"taskDefinition":"web","group":"batch",
            "placementConstraints":[{"type":"memberOf","expression":"attribute:stack == prod"}]}"#;
        let out = dispatch(&cp, "us-east-1", "RunTask", prod).unwrap();
        assert_eq!(out["tasks"][0]["containerInstanceArn"], b.as_str());
        let t = cp
            .describe_tasks(
                "default",
                &[out["tasks"][0]["taskArn"].as_str().unwrap().to_string()],
            )
            .unwrap()
            .0;
        assert_eq!(t[0].placement_constraints.len(), 1);
        let nowhere = br#"{"taskDefinition":"web","group":"batch",
            "placementConstraints":[{"type":"memberOf","expression":"attribute:stack in [dev, test]"}]}"#;
        let out = dispatch(&cp, "us-east-1", "RunTask", nowhere).unwrap();
        let reasons: Vec<_> = out["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["reason"].clone())
            .collect();
        // b is full by now (1024 MiB, two tasks): resources are checked first.
        assert_eq!(out["tasks"], serde_json::json!([]));
        assert!(
            reasons.contains(&serde_json::json!("MemberOf")),
            "{reasons:?}"
        );
        let _ = a;
    }

    #[test]
    fn bad_placement_parameters_are_refused_by_name() {
        let (cp, a) = fleet();
        for (body, needle) in [
            (
                r#""placementStrategy":[{"type":"binpack","field":"disk"}]"#,
                "placementStrategy[0]",
            ),
            (r#""placementStrategy":[{"type":"pack"}]"#, "'pack'"),
            (
                r#""placementStrategy":[{"type":"random"},{"type":"random"},{"type":"random"},{"type":"random"},{"type":"random"},{"type":"random"}]"#,
                "at most 5",
            ),
            (
                r#""placementConstraints":[{"type":"memberOf","expression":"attribute:a in [b"}]"#,
                "'attribute:a in [b'",
            ),
            (
                r#""placementConstraints":[{"type":"memberOf"}]"#,
                "needs an expression",
            ),
            (
                r#""placementConstraints":[{"type":"sameZone"}]"#,
                "'sameZone'",
            ),
        ] {
            let run = format!(r#"{{"taskDefinition":"web",{body}}}"#);
            let e = dispatch(&cp, "us-east-1", "RunTask", run.as_bytes()).unwrap_err();
            assert_eq!(e.kind, ErrorType::InvalidParameter, "{body}");
            assert!(e.message.contains(needle), "{}", e.message);
            let start =
                format!(r#"{{"taskDefinition":"web","containerInstances":["{a}"],{body}}}"#);
            let e = dispatch(&cp, "us-east-1", "StartTask", start.as_bytes()).unwrap_err();
            assert!(e.message.contains(needle), "{}", e.message);
        }
        let eleven: Vec<_> = (0..11).map(|_| r#"{"type":"distinctInstance"}"#).collect();
        let run = format!(
            r#"{{"taskDefinition":"web","placementConstraints":[{}]}}"#,
            eleven.join(",")
        );
        let e = dispatch(&cp, "us-east-1", "RunTask", run.as_bytes()).unwrap_err();
        assert!(e.message.contains("at most 10"), "{}", e.message);
    }

    #[test]
    fn start_task_checks_constraints_on_the_named_instances() {
        let (cp, a) = fleet();
        let body = format!(
            r#"{{"taskDefinition":"web","containerInstances":["{a}","{a}"],
                "placementConstraints":[{{"type":"distinctInstance"}}]}}"#
        );
        let out = dispatch(&cp, "us-east-1", "StartTask", body.as_bytes()).unwrap();
        assert_eq!(out["tasks"].as_array().unwrap().len(), 1);
        assert_eq!(out["failures"][0]["reason"], "DistinctInstance");
        assert_eq!(out["failures"][0]["arn"], a.as_str());
    }
}
