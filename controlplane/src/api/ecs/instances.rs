//! `ListContainerInstances`, `DescribeContainerInstances`,
//! `UpdateContainerInstancesState`, `DeregisterContainerInstance`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{page, render, ApiError};
use crate::model::query::Expression;
use crate::model::InstanceStatus;
use crate::state::ControlPlane;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    cluster: Option<String>,
    status: Option<String>,
    filter: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list(cp: &ControlPlane, req: ListInput) -> Result<Value, ApiError> {
    // ECS's ContainerInstanceStatus: INACTIVE is shown, not filtered on.
    let filterable = [
        InstanceStatus::Active,
        InstanceStatus::Draining,
        InstanceStatus::Registering,
        InstanceStatus::Deregistering,
        InstanceStatus::RegistrationFailed,
    ];
    let status = req
        .status
        .as_deref()
        .map(|s| super::one_of("status", s, &filterable))
        .transpose()?;
    let filter = req
        .filter
        .as_deref()
        .map(Expression::parse)
        .transpose()
        .map_err(ApiError::invalid)?;
    let cluster = req.cluster.unwrap_or_else(|| "default".into());
    let arns = cp.list_container_instances(&cluster, status, filter.as_ref())?;
    page(
        &arns,
        req.max_results,
        req.next_token.as_deref(),
        "containerInstanceArns",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    cluster: Option<String>,
    container_instances: Vec<String>,
    include: Option<Vec<String>>,
}

pub(super) fn describe(cp: &ControlPlane, req: DescribeInput) -> Result<Value, ApiError> {
    if req.container_instances.is_empty() {
        return Err(ApiError::invalid("Container instances cannot be empty."));
    }
    let cluster = req.cluster.unwrap_or_else(|| "default".into());
    let with_tags = req.include.unwrap_or_default().iter().any(|i| i == "TAGS");
    let (found, failures) = cp.describe_container_instances(&cluster, &req.container_instances)?;
    Ok(json!({
        "containerInstances": found.iter().map(|v| render::container_instance(v, with_tags)).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateStateInput {
    cluster: Option<String>,
    container_instances: Vec<String>,
    status: String,
}

pub(super) fn update_state(cp: &ControlPlane, req: UpdateStateInput) -> Result<Value, ApiError> {
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(ApiError::invalid(format!(
            "containerInstances must name 1 to 10 container instances, got {}.",
            req.container_instances.len()
        )));
    }
    let cluster = req.cluster.unwrap_or_else(|| "default".into());
    let settable = [InstanceStatus::Active, InstanceStatus::Draining];
    let status = super::one_of("status", &req.status, &settable)?;
    let (found, failures) =
        cp.update_container_instances_state(&cluster, &req.container_instances, status)?;
    Ok(json!({
        "containerInstances": found.iter().map(|v| render::container_instance(v, false)).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeregisterInput {
    cluster: Option<String>,
    container_instance: String,
    force: Option<bool>,
}

pub(super) fn deregister(cp: &ControlPlane, req: DeregisterInput) -> Result<Value, ApiError> {
    let cluster = req.cluster.unwrap_or_else(|| "default".into());
    let view = cp.deregister_container_instance(
        &cluster,
        &req.container_instance,
        req.force.unwrap_or(false),
    )?;
    Ok(json!({ "containerInstance": render::container_instance(&view, false) }))
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::fleet;

    #[test]
    fn drain_filter_and_deregister() {
        let (cp, arn) = fleet();
        let body = format!(r#"{{"containerInstances":["{arn}"],"status":"DRAINING"}}"#);
        let out = dispatch(
            &cp,
            "us-east-1",
            "UpdateContainerInstancesState",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(out["containerInstances"][0]["status"], "DRAINING");
        let body = format!(r#"{{"containerInstances":["{arn}"],"status":"INACTIVE"}}"#);
        let e = dispatch(
            &cp,
            "us-east-1",
            "UpdateContainerInstancesState",
            body.as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);

        let out = dispatch(
            &cp,
            "us-east-1",
            "ListContainerInstances",
            br#"{"filter":"attribute:ecs.os-type == linux","status":"DRAINING"}"#,
        )
        .unwrap();
        assert_eq!(out["containerInstanceArns"][0], arn.as_str());
        let out = dispatch(
            &cp,
            "us-east-1",
            "ListContainerInstances",
            br#"{"filter":"attribute:ecs.os-type in [linux, windows] and not attribute:x exists"}"#,
        )
        .unwrap();
        assert_eq!(out["containerInstanceArns"][0], arn.as_str());
        let e = dispatch(
            &cp,
            "us-east-1",
            "ListContainerInstances",
            br#"{"filter":"attribute:ecs.os-type in [linux"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        assert!(
            e.message.contains("'attribute:ecs.os-type in [linux'"),
            "{}",
            e.message
        );

        let body = format!(r#"{{"containerInstance":"{arn}"}}"#);
        let out = dispatch(
            &cp,
            "us-east-1",
            "DeregisterContainerInstance",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(out["containerInstance"]["status"], "INACTIVE");
        let out = dispatch(
            &cp,
            "us-east-1",
            "DeleteCluster",
            br#"{"cluster":"default"}"#,
        )
        .unwrap();
        assert_eq!(out["cluster"]["status"], "INACTIVE");
    }
}
