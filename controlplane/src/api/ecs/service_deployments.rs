//! `ListServiceDeployments`, `DescribeServiceDeployments`, `DescribeServiceRevisions`:
//! a service's deployments (current and the last `MAX_PAST_DEPLOYMENTS`) as ECS's
//! service deployments; each deployment's revision is its task definition and capacity.

use serde::Deserialize;
use serde_json::{json, Value};

use super::render::{capacity, compact, deployment_configuration, epoch};
use super::{page, ApiError};
use crate::model::service::{failure_threshold, Deployment, RolloutState, Service};
use crate::model::service_deployment::ServiceDeploymentStatus;
use crate::model::service_deployment::{self as sd, deployment_arn, revision_arn};
use crate::state::ControlPlane;
use berth_ecs::DeploymentMonitorStatus;

fn revision_summary(s: &Service, d: &Deployment) -> Value {
    json!({
        "arn": revision_arn(&s.arn, &d.id),
        "requestedTaskCount": d.desired_count,
        "runningTaskCount": d.running_count,
        "pendingTaskCount": d.pending_count,
    })
}

fn finished(d: &Deployment) -> Option<i64> {
    d.finished_at_ms
        .or_else(|| (d.rollout_state != RolloutState::InProgress).then_some(d.updated_at_ms))
}

fn brief(s: &Service, d: &Deployment) -> Value {
    let (status, reason) = sd::status(s, d);
    compact(json!({
        "serviceDeploymentArn": deployment_arn(&s.arn, &d.id),
        "serviceArn": s.arn,
        "clusterArn": s.cluster_arn,
        "createdAt": epoch(d.created_at_ms),
        "startedAt": epoch(d.created_at_ms),
        "finishedAt": finished(d).map(epoch),
        "targetServiceRevisionArn": revision_arn(&s.arn, &d.id),
        "status": status.as_str(),
        "statusReason": reason,
    }))
}

/// A `ServiceDeployment`: the brief's fields (less the target's ARN, which it gives
/// whole), and the revisions, configuration, circuit breaker and rollback.
fn full(s: &Service, d: &Deployment) -> Value {
    let conf = &s.deployment_configuration;
    let breaker = match (conf.circuit_breaker.enable, d.rollout_state) {
        (false, _) => DeploymentMonitorStatus::Disabled,
        (true, RolloutState::Failed) => DeploymentMonitorStatus::Triggered,
        (true, RolloutState::Completed) => DeploymentMonitorStatus::MonitoringComplete,
        (true, RolloutState::InProgress) => DeploymentMonitorStatus::Monitoring,
    };
    let rollback = sd::all(s).find(|r| r.is_rollback && r.replaced.contains(&d.id));
    let mut v = brief(s, d);
    if let Some(fields) = v.as_object_mut() {
        fields.remove("targetServiceRevisionArn");
    }
    let more = compact(json!({
        "updatedAt": epoch(d.updated_at_ms),
        "sourceServiceRevisions": sd::all(s)
            .filter(|o| d.replaced.contains(&o.id))
            .map(|o| revision_summary(s, o))
            .collect::<Vec<_>>(),
        "targetServiceRevision": revision_summary(s, d),
        "deploymentConfiguration": deployment_configuration(conf),
        "deploymentCircuitBreaker": {
            "status": breaker.as_str(),
            "failureCount": d.failed_tasks,
            "threshold": failure_threshold(d.desired_count),
        },
        "rollback": rollback.map(|r| json!({
            "reason": r.rollout_state_reason,
            "startedAt": epoch(r.created_at_ms),
            "serviceRevisionArn": revision_arn(&s.arn, &r.id),
        })),
    }));
    if let (Some(fields), Value::Object(more)) = (v.as_object_mut(), more) {
        fields.extend(more);
    }
    v
}

fn revision(s: &Service, d: &Deployment) -> Value {
    let mut v = json!({
        "serviceRevisionArn": revision_arn(&s.arn, &d.id),
        "serviceArn": s.arn,
        "clusterArn": s.cluster_arn,
        "taskDefinition": d.task_definition,
        "loadBalancers": [],
        "serviceRegistries": [],
        "createdAt": epoch(d.created_at_ms),
    });
    capacity(&mut v, d.launch_type, &d.capacity_provider_strategy);
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    service: String,
    cluster: Option<String>,
    status: Option<Vec<String>>,
    created_at: Option<CreatedAt>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// `createdAt` as botocore sends timestamps in JSON: epoch seconds.
#[derive(Deserialize)]
struct CreatedAt {
    before: Option<f64>,
    after: Option<f64>,
}

pub(super) fn list(cp: &ControlPlane, req: &ListInput) -> Result<Value, ApiError> {
    let cluster = req.cluster.as_deref().unwrap_or("default");
    let (found, _) = cp.describe_services(cluster, std::slice::from_ref(&req.service))?;
    let s = found.first().ok_or_else(|| {
        ApiError::new(
            crate::api::error::ErrorType::ServiceNotFound,
            format!(
                "Service not found: '{}' in cluster '{cluster}'.",
                req.service
            ),
        )
    })?;
    #[allow(clippy::cast_precision_loss)]
    let secs = |d: &Deployment| d.created_at_ms as f64 / 1000.0;
    let wanted = req
        .status
        .as_ref()
        .map(|names| {
            names
                .iter()
                .map(|n| {
                    ServiceDeploymentStatus::parse(n).ok_or_else(|| {
                        ApiError::invalid(format!(
                            "status '{n}' is not one of {}.",
                            berth_ecs::names(<ServiceDeploymentStatus as berth_ecs::EcsEnum>::ALL)
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let briefs: Vec<Value> = sd::all(s)
        .filter(|d| {
            wanted
                .as_ref()
                .is_none_or(|w| w.contains(&sd::status(s, d).0))
        })
        .filter(|d| {
            req.created_at.as_ref().is_none_or(|c| {
                c.before.is_none_or(|b| secs(d) < b) && c.after.is_none_or(|a| secs(d) > a)
            })
        })
        .map(|d| brief(s, d))
        .collect();
    page(
        &briefs,
        req.max_results,
        req.next_token.as_deref(),
        "serviceDeployments",
    )
}

/// The deployment an ARN names, with its service; a `MISSING` failure otherwise.
fn lookup(cp: &ControlPlane, arn: &str) -> Result<(Service, String), Value> {
    let missing = || json!({"arn": arn, "reason": "MISSING"});
    let (service_arn, id) = sd::parse(arn).ok_or_else(missing)?;
    let (cluster, name) = service_arn
        .split_once(":service/")
        .and_then(|(_, rest)| rest.split_once('/'))
        .ok_or_else(missing)?;
    let (found, _) = cp
        .describe_services(cluster, &[name.to_owned()])
        .map_err(|_| missing())?;
    let s = found.into_iter().next().ok_or_else(missing)?;
    if s.arn != service_arn || !sd::all(&s).any(|d| d.id == id) {
        return Err(missing());
    }
    Ok((s, id))
}

fn describe_each(
    cp: &ControlPlane,
    arns: &[String],
    key: &str,
    show: fn(&Service, &Deployment) -> Value,
) -> Result<Value, ApiError> {
    if arns.is_empty() || arns.len() > 20 {
        return Err(ApiError::invalid(format!(
            "Name 1 to 20 ARNs, got {}.",
            arns.len()
        )));
    }
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for arn in arns {
        match lookup(cp, arn) {
            Ok((s, id)) => {
                let d = sd::all(&s).find(|d| d.id == id).expect("looked up");
                found.push(show(&s, d));
            }
            Err(f) => failures.push(f),
        }
    }
    Ok(json!({ key: found, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    service_deployment_arns: Vec<String>,
}

pub(super) fn describe(cp: &ControlPlane, req: &DescribeInput) -> Result<Value, ApiError> {
    describe_each(cp, &req.service_deployment_arns, "serviceDeployments", full)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RevisionsInput {
    service_revision_arns: Vec<String>,
}

pub(super) fn revisions(cp: &ControlPlane, req: &RevisionsInput) -> Result<Value, ApiError> {
    describe_each(cp, &req.service_revision_arns, "serviceRevisions", revision)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StopInput {
    service_deployment_arn: String,
    stop_type: Option<String>,
}

/// `StopServiceDeployment`: `ROLLBACK` (the default) goes back to the last completed
/// revision; `ABORT` belongs to blue/green deployments, which Berth does not run yet.
pub(super) fn stop(cp: &ControlPlane, req: &StopInput) -> Result<Value, ApiError> {
    match req.stop_type.as_deref() {
        None | Some("ROLLBACK") => {}
        Some("ABORT") => {
            return Err(ApiError::new(
                crate::api::error::ErrorType::Client,
                "stopType ABORT applies to blue/green deployments, which Berth does not run yet; use ROLLBACK.",
            ))
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "stopType '{other}' is not ROLLBACK or ABORT."
            )))
        }
    }
    cp.roll_back_service_deployment(&req.service_deployment_arn)?;
    Ok(json!({ "serviceDeploymentArn": req.service_deployment_arn }))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use berth_ecs::ServiceDeploymentStatus;

    use crate::api::ecs::dispatch;
    use crate::api::error::ApiError;
    use crate::api::error::ErrorType;
    use crate::state::test_support::fleet;
    use crate::state::ControlPlane;

    fn call(cp: &ControlPlane, op: &str, body: &Value) -> Result<Value, ApiError> {
        dispatch(cp, "us-east-1", op, body.to_string().as_bytes())
    }

    /// A fleet with the service `api` of one `web` task.
    fn with_api_service() -> ControlPlane {
        let (cp, _) = fleet();
        call(
            &cp,
            "CreateService",
            &json!({"serviceName": "api", "taskDefinition": "web", "desiredCount": 1}),
        )
        .unwrap();
        cp
    }

    #[test]
    fn a_service_s_deployments_and_revisions_as_ecs_shows_them() {
        let cp = with_api_service();
        let call = |op: &str, body: Value| call(&cp, op, &body);
        let list = || call("ListServiceDeployments", json!({"service": "api"})).unwrap();
        let first = list();
        assert_eq!(
            first["serviceDeployments"][0]["status"],
            ServiceDeploymentStatus::InProgress.as_str(),
            "{first}"
        );
        let first_arn = first["serviceDeployments"][0]["serviceDeploymentArn"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            first_arn.contains(":service-deployment/default/api/"),
            "{first_arn}"
        );
        call(
            "UpdateService",
            json!({"service": "api", "forceNewDeployment": true}),
        )
        .unwrap();
        let both = list();
        let briefs = both["serviceDeployments"].as_array().unwrap();
        assert_eq!(briefs.len(), 2, "{both}");
        assert_eq!(
            briefs[0]["status"],
            ServiceDeploymentStatus::InProgress.as_str()
        );
        assert_eq!(briefs[1]["serviceDeploymentArn"], first_arn.as_str());
        assert_eq!(
            briefs[1]["status"],
            ServiceDeploymentStatus::Stopped.as_str()
        );
        assert!(
            briefs[1]["statusReason"]
                .as_str()
                .unwrap()
                .contains("replaced it"),
            "{both}"
        );
        let only_stopped = call(
            "ListServiceDeployments",
            json!({"service": "api", "status": [ServiceDeploymentStatus::Stopped.as_str()]}),
        )
        .unwrap();
        assert_eq!(
            only_stopped["serviceDeployments"].as_array().unwrap().len(),
            1
        );

        let second_arn = briefs[0]["serviceDeploymentArn"]
            .as_str()
            .unwrap()
            .to_owned();
        let out = call(
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": [second_arn, "arn:aws:ecs:us-east-1:123456789012:service-deployment/default/api/42"]}),
        )
        .unwrap();
        let shown = &out["serviceDeployments"][0];
        assert_eq!(shown["targetServiceRevision"]["requestedTaskCount"], 1);
        assert_eq!(
            shown["sourceServiceRevisions"][0]["arn"],
            briefs[1]["targetServiceRevisionArn"]
        );
        assert!(
            shown["deploymentCircuitBreaker"]["status"].is_string(),
            "{shown}"
        );
        assert_eq!(out["failures"][0]["reason"], "MISSING");
        let rev = call(
            "DescribeServiceRevisions",
            json!({"serviceRevisionArns": [briefs[0]["targetServiceRevisionArn"]]}),
        )
        .unwrap();
        let revision = &rev["serviceRevisions"][0];
        assert!(
            revision["taskDefinition"]
                .as_str()
                .unwrap()
                .ends_with("task-definition/web:1"),
            "{revision}"
        );
        assert_eq!(revision["launchType"], "EC2");

        let err = call("ListServiceDeployments", json!({"service": "ghost"})).unwrap_err();
        assert_eq!(err.kind, ErrorType::ServiceNotFound);
        let err = call(
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": []}),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorType::InvalidParameter);
    }

    #[test]
    fn stop_service_deployment_needs_somewhere_to_roll_back_to() {
        let cp = with_api_service();
        let call = |op: &str, body: Value| call(&cp, op, &body);
        let listed = call("ListServiceDeployments", json!({"service": "api"})).unwrap();
        let arn = listed["serviceDeployments"][0]["serviceDeploymentArn"].clone();
        let err = call(
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": arn}),
        )
        .unwrap_err();
        assert!(
            err.message.contains("no completed deployment"),
            "{}",
            err.message
        );
        let err = call(
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": arn, "stopType": "ABORT"}),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorType::Client);
    }
}
