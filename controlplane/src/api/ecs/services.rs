//! `CreateService`, `DescribeServices`, `ListServices`, `UpdateService`,
//! `DeleteService`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::capacity_providers::{strategy_in, StrategyItem};
use super::tasks::{capacity_in, placement_in};
use super::{page, render, tags_in, ApiError, Tag};
use crate::model::placement::{RawConstraint, RawStrategy};
use crate::model::service::{CircuitBreaker, DeploymentConfiguration, SchedulingStrategy};
use crate::model::LaunchType;
use crate::services::{ServiceSpec, ServiceUpdate};
use crate::state::{Capacity, ControlPlane};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CircuitBreakerInput {
    enable: bool,
    rollback: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentConfigurationInput {
    deployment_circuit_breaker: Option<CircuitBreakerInput>,
    maximum_percent: Option<i64>,
    minimum_healthy_percent: Option<i64>,
}

fn percent(name: &str, v: Option<i64>, current: u32) -> Result<u32, ApiError> {
    match v {
        None => Ok(current),
        Some(n) => u32::try_from(n).map_err(|_| {
            ApiError::invalid(format!(
                "deploymentConfiguration.{name} must not be negative, got {n}."
            ))
        }),
    }
}

/// Members given replace the current ones; members left out keep them.
fn deployment_configuration(
    input: Option<DeploymentConfigurationInput>,
    current: DeploymentConfiguration,
) -> Result<Option<DeploymentConfiguration>, ApiError> {
    let Some(i) = input else {
        return Ok(None);
    };
    Ok(Some(DeploymentConfiguration {
        minimum_healthy_percent: percent(
            "minimumHealthyPercent",
            i.minimum_healthy_percent,
            current.minimum_healthy_percent,
        )?,
        maximum_percent: percent("maximumPercent", i.maximum_percent, current.maximum_percent)?,
        circuit_breaker: i
            .deployment_circuit_breaker
            .map_or(current.circuit_breaker, |c| CircuitBreaker {
                enable: c.enable,
                rollback: c.rollback,
            }),
    }))
}

fn count(name: &str, v: i64) -> Result<u32, ApiError> {
    u32::try_from(v).map_err(|_| ApiError::invalid(format!("{name} must be 0 or more, got {v}.")))
}

fn launch_type(s: Option<&str>) -> Result<Option<LaunchType>, ApiError> {
    s.map(|s| {
        LaunchType::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "launchType '{s}' is not valid; use EC2, FARGATE or EXTERNAL."
            ))
        })
    })
    .transpose()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateInput {
    client_token: Option<String>,
    cluster: Option<String>,
    service_name: String,
    task_definition: Option<String>,
    desired_count: Option<i64>,
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<StrategyItem>>,
    placement_strategy: Option<Vec<RawStrategy>>,
    placement_constraints: Option<Vec<RawConstraint>>,
    scheduling_strategy: Option<String>,
    deployment_configuration: Option<DeploymentConfigurationInput>,
    health_check_grace_period_seconds: Option<i64>,
    enable_execute_command: Option<bool>,
    tags: Option<Vec<Tag>>,
}

/// Service fields Berth keeps and shows as given (the README lists them), most not acted
/// on yet; `propagateTags` and `enableECSManagedTags` decide its tasks' tags.
/// `CreateService` takes all, `UpdateService` those ECS lets it change. Members of `deploymentConfiguration` beyond the ones Berth runs (`alarms`,
/// `strategy`, ...) are kept the same way.
pub const KEPT: [&str; 11] = [
    "loadBalancers",
    "serviceRegistries",
    "networkConfiguration",
    "platformVersion",
    "propagateTags",
    "enableECSManagedTags",
    "serviceConnectConfiguration",
    "volumeConfigurations",
    "availabilityZoneRebalancing",
    "role",
    "deploymentController",
];
/// What `UpdateService` cannot change.
const CREATE_ONLY: [&str; 2] = ["role", "deploymentController"];
const RUN_DEPLOYMENT_FIELDS: [&str; 3] = [
    "maximumPercent",
    "minimumHealthyPercent",
    "deploymentCircuitBreaker",
];

/// The kept fields of a request body (`KEPT`, less `skip`).
fn kept(body: &[u8], skip: &[&str]) -> serde_json::Map<String, Value> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return serde_json::Map::new();
    };
    let mut out: serde_json::Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| KEPT.contains(&k.as_str()) && !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(Value::Object(conf)) = fields.get("deploymentConfiguration") {
        let extra: serde_json::Map<String, Value> = conf
            .iter()
            .filter(|(k, _)| !RUN_DEPLOYMENT_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !extra.is_empty() {
            out.insert("deploymentConfiguration".into(), Value::Object(extra));
        }
    }
    out
}

/// The kept fields Berth acts on, checked as ECS checks them: `propagateTags` and
/// `enableECSManagedTags` decide a service task's tags.
fn check_tag_settings(kept: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    if let Some(p) = kept.get("propagateTags") {
        if !matches!(p.as_str(), Some("TASK_DEFINITION" | "SERVICE" | "NONE")) {
            return Err(ApiError::invalid(format!(
                "propagateTags must be TASK_DEFINITION, SERVICE or NONE, got {p}."
            )));
        }
    }
    if kept
        .get("enableECSManagedTags")
        .is_some_and(|m| !m.is_boolean())
    {
        return Err(ApiError::invalid(
            "enableECSManagedTags must be true or false.",
        ));
    }
    Ok(())
}

fn grace(v: Option<i64>) -> Result<Option<u32>, ApiError> {
    v.map(|g| count("healthCheckGracePeriodSeconds", g))
        .transpose()
}

/// A DAEMON service's capacity (EC2: one task on each of the cluster's instances) and
/// its refusals: no capacity provider strategy, no placement strategy, no desired count.
fn daemon_capacity(req: &CreateInput, capacity: &Capacity) -> Result<Capacity, ApiError> {
    if req
        .placement_strategy
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(ApiError::invalid(
            "A placement strategy is not supported with the DAEMON scheduling strategy: it places one task on each container instance. Use placement constraints to choose the instances.",
        ));
    }
    if req.desired_count.is_some_and(|n| n != 0) {
        return Err(ApiError::invalid(
            "desiredCount is not supported with the DAEMON scheduling strategy: the service runs one task on each container instance that meets its placement constraints.",
        ));
    }
    match capacity {
        Capacity::ClusterDefault | Capacity::LaunchType(LaunchType::Ec2) => {
            Ok(Capacity::LaunchType(LaunchType::Ec2))
        }
        Capacity::Strategy(_) => Err(ApiError::invalid(
            "A capacity provider strategy is not supported with the DAEMON scheduling strategy: daemon tasks run on the cluster's container instances (launch type EC2).",
        )),
        Capacity::LaunchType(other) => Err(ApiError::invalid(format!(
            "The DAEMON scheduling strategy runs tasks on container instances (launch type EC2), not {other}."
        ))),
    }
}

pub(super) fn create(
    cp: &ControlPlane,
    mut req: CreateInput,
    body: &[u8],
) -> Result<Value, ApiError> {
    let scheduling_strategy = match req.scheduling_strategy.as_deref() {
        None => SchedulingStrategy::Replica,
        Some(s) => SchedulingStrategy::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "schedulingStrategy must be REPLICA or DAEMON, got '{s}'."
            ))
        })?,
    };
    let daemon = scheduling_strategy == SchedulingStrategy::Daemon;
    let mut capacity = capacity_in(
        req.launch_type.as_deref(),
        req.capacity_provider_strategy.take(),
    )?;
    // ECS's defaults for daemons: stop a host's old task, then start its new one.
    let mut deployment_base = DeploymentConfiguration::default();
    if daemon {
        capacity = daemon_capacity(&req, &capacity)?;
        deployment_base.minimum_healthy_percent = 0;
        deployment_base.maximum_percent = 100;
    }
    // An external controller deploys through task sets, which name the task definition.
    let external = crate::model::service::is_external(&kept(body, &[]));
    let task_definition = match (req.task_definition, external) {
        (Some(td), false) => td,
        (None, true) => String::new(),
        (None, false) => {
            return Err(ApiError::invalid(
                "Missing required parameter in CreateService input: \"taskDefinition\".",
            ))
        }
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "taskDefinition is not set on a service with the EXTERNAL deployment controller: its task sets name their own (CreateTaskSet).",
            ))
        }
    };
    if external && daemon {
        return Err(ApiError::invalid(
            "The DAEMON scheduling strategy is not supported with the EXTERNAL deployment controller.",
        ));
    }
    let (placement_strategy, placement_constraints) =
        placement_in(req.placement_strategy, req.placement_constraints)?;
    let spec = ServiceSpec {
        cluster: req.cluster.unwrap_or_else(|| "default".into()),
        name: req.service_name,
        task_definition,
        desired_count: count("desiredCount", req.desired_count.unwrap_or(0))?,
        capacity,
        placement_strategy,
        placement_constraints,
        deployment_configuration: deployment_configuration(
            req.deployment_configuration,
            deployment_base,
        )?
        .unwrap_or(deployment_base),
        health_check_grace_period_seconds: grace(req.health_check_grace_period_seconds)?,
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
        tags: tags_in(req.tags)?,
        client_token: req
            .client_token
            .map(|t| super::client_token(t, 36, body))
            .transpose()?,
        kept: kept(body, &[]),
        scheduling_strategy,
    };
    check_tag_settings(&spec.kept)?;
    let s = cp.create_service(&spec)?;
    Ok(json!({ "service": render::service(&s, false) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    cluster: Option<String>,
    services: Vec<String>,
    include: Option<Vec<String>>,
}

pub(super) fn describe(cp: &ControlPlane, req: DescribeInput) -> Result<Value, ApiError> {
    if req.services.is_empty() || req.services.len() > 10 {
        return Err(ApiError::invalid(format!(
            "services must name 1 to 10 services, got {}.",
            req.services.len()
        )));
    }
    let with_tags = req.include.unwrap_or_default().iter().any(|i| i == "TAGS");
    let (found, failures) =
        cp.describe_services(req.cluster.as_deref().unwrap_or("default"), &req.services)?;
    Ok(json!({
        "services": found.iter().map(|s| render::service(s, with_tags)).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    cluster: Option<String>,
    launch_type: Option<String>,
    scheduling_strategy: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list(cp: &ControlPlane, req: &ListInput) -> Result<Value, ApiError> {
    let strategy = req
        .scheduling_strategy
        .as_deref()
        .map(|s| {
            SchedulingStrategy::parse(s).ok_or_else(|| {
                ApiError::invalid(format!(
                    "schedulingStrategy must be REPLICA or DAEMON, got '{s}'."
                ))
            })
        })
        .transpose()?;
    let arns = cp.list_services(
        req.cluster.as_deref().unwrap_or("default"),
        launch_type(req.launch_type.as_deref())?,
        strategy,
    )?;
    // ECS returns 10 services a page unless asked for more.
    page(
        &arns,
        Some(req.max_results.unwrap_or(10)),
        req.next_token.as_deref(),
        "serviceArns",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateInput {
    cluster: Option<String>,
    service: String,
    desired_count: Option<i64>,
    task_definition: Option<String>,
    force_new_deployment: Option<bool>,
    deployment_configuration: Option<DeploymentConfigurationInput>,
    health_check_grace_period_seconds: Option<i64>,
    enable_execute_command: Option<bool>,
    capacity_provider_strategy: Option<Vec<StrategyItem>>,
    placement_strategy: Option<Vec<RawStrategy>>,
    placement_constraints: Option<Vec<RawConstraint>>,
}

pub(super) fn update(cp: &ControlPlane, req: UpdateInput, body: &[u8]) -> Result<Value, ApiError> {
    let cluster = req.cluster.unwrap_or_else(|| "default".into());
    // Partial configurations merge into the current one.
    let current = match &req.deployment_configuration {
        Some(_) => {
            let (found, _) = cp.describe_services(&cluster, std::slice::from_ref(&req.service))?;
            found
                .first()
                .map(|s| s.deployment_configuration)
                .unwrap_or_default()
        }
        None => DeploymentConfiguration::default(),
    };
    let update = ServiceUpdate {
        cluster,
        service: req.service,
        task_definition: req.task_definition,
        desired_count: req
            .desired_count
            .map(|n| count("desiredCount", n))
            .transpose()?,
        force_new_deployment: req.force_new_deployment.unwrap_or(false),
        deployment_configuration: deployment_configuration(req.deployment_configuration, current)?,
        health_check_grace_period_seconds: grace(req.health_check_grace_period_seconds)?,
        enable_execute_command: req.enable_execute_command,
        capacity_provider_strategy: req
            .capacity_provider_strategy
            .map(|s| strategy_in("capacityProviderStrategy", s))
            .transpose()?,
        // Given ones replace the service's; an empty list removes them.
        placement_strategy: req
            .placement_strategy
            .map(|p| placement_in(Some(p), None).map(|(s, _)| s))
            .transpose()?,
        placement_constraints: req
            .placement_constraints
            .map(|p| placement_in(None, Some(p)).map(|(_, c)| c))
            .transpose()?,
        kept: kept(body, &CREATE_ONLY),
    };
    check_tag_settings(&update.kept)?;
    let s = cp.update_service(&update)?;
    Ok(json!({ "service": render::service(&s, false) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteInput {
    cluster: Option<String>,
    service: String,
    force: Option<bool>,
}

pub(super) fn delete(cp: &ControlPlane, req: &DeleteInput) -> Result<Value, ApiError> {
    let s = cp.delete_service(
        req.cluster.as_deref().unwrap_or("default"),
        &req.service,
        req.force.unwrap_or(false),
    )?;
    Ok(json!({ "service": render::service(&s, false) }))
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::api::error::ErrorType;
    use crate::state::test_support::fleet;

    #[test]
    fn a_retried_create_service_with_its_client_token_gets_the_service() {
        let (cp, _) = fleet();
        let create = |body: &str| dispatch(&cp, "us-east-1", "CreateService", body.as_bytes());
        let first =
            create(r#"{"serviceName":"api","taskDefinition":"web","clientToken":"c-1"}"#).unwrap();
        // A retry (its fields in another order) gets the service, not "not idempotent".
        let again =
            create(r#"{"clientToken":"c-1","taskDefinition":"web","serviceName":"api"}"#).unwrap();
        assert_eq!(
            again["service"]["serviceArn"],
            first["service"]["serviceArn"]
        );
        // Another request under the token, and the same name without one: refused.
        let e = create(
            r#"{"serviceName":"api","taskDefinition":"web","desiredCount":2,"clientToken":"c-1"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        assert!(e.message.contains("not idempotent"), "{}", e.message);
        let e = create(r#"{"serviceName":"api","taskDefinition":"web"}"#).unwrap_err();
        assert!(e.message.contains("not idempotent"), "{}", e.message);
        let long = "x".repeat(37);
        let e = create(&format!(
            r#"{{"serviceName":"b","taskDefinition":"web","clientToken":"{long}"}}"#
        ))
        .unwrap_err();
        assert!(e.message.contains("1 to 36"), "{}", e.message);
    }

    #[test]
    fn fields_berth_does_not_act_on_are_kept_and_shown_as_given() {
        let (cp, _) = fleet();
        let call = |op: &str, body: serde_json::Value| {
            dispatch(&cp, "us-east-1", op, body.to_string().as_bytes())
        };
        let reg = serde_json::json!([{"registryArn": "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-0123456789abcdef"}]);
        let out = call(
            "CreateService",
            serde_json::json!({"serviceName": "api", "taskDefinition": "web",
                "serviceRegistries": reg, "propagateTags": "SERVICE", "enableECSManagedTags": true,
                "deploymentController": {"type": "CODE_DEPLOY"},
                "deploymentConfiguration": {"maximumPercent": 150,
                    "alarms": {"alarmNames": ["high-5xx"], "enable": true, "rollback": true}}}),
        )
        .unwrap();
        let s = &out["service"];
        assert_eq!(s["serviceRegistries"], reg);
        assert_eq!(s["propagateTags"], "SERVICE");
        assert_eq!(s["enableECSManagedTags"], true);
        assert_eq!(s["deploymentController"]["type"], "CODE_DEPLOY");
        assert_eq!(s["deploymentConfiguration"]["maximumPercent"], 150);
        assert_eq!(
            s["deploymentConfiguration"]["alarms"]["alarmNames"][0],
            "high-5xx"
        );
        let out = call(
            "UpdateService",
            serde_json::json!({"service": "api", "propagateTags": "TASK_DEFINITION"}),
        )
        .unwrap();
        assert_eq!(out["service"]["propagateTags"], "TASK_DEFINITION");
        assert_eq!(
            out["service"]["serviceRegistries"], reg,
            "what the update did not name stays"
        );
        let e = call(
            "CreateService",
            serde_json::json!({"serviceName": "ext", "taskDefinition": "web",
                "deploymentController": {"type": "EXTERNAL"}}),
        )
        .unwrap_err();
        assert!(e.message.contains("task sets"), "{}", e.message);
    }

    #[test]
    fn service_round_trip_in_ecs_shapes() {
        let (cp, _) = fleet();
        let out = dispatch(&cp, "us-east-1",
            "CreateService",
            br#"{"serviceName":"api","taskDefinition":"web","desiredCount":1,
                "deploymentConfiguration":{"deploymentCircuitBreaker":{"enable":true,"rollback":true},"minimumHealthyPercent":50}}"#,
        )
        .unwrap();
        let s = &out["service"];
        assert_eq!(s["serviceName"], "api");
        assert_eq!(s["status"], "ACTIVE");
        assert_eq!(s["launchType"], "EC2");
        assert_eq!(s["schedulingStrategy"], "REPLICA");
        let conf = &s["deploymentConfiguration"];
        assert_eq!(conf["maximumPercent"], 200);
        assert_eq!(conf["minimumHealthyPercent"], 50);
        assert_eq!(conf["deploymentCircuitBreaker"]["rollback"], true);
        let d = &s["deployments"][0];
        assert_eq!(d["status"], "PRIMARY");
        assert_eq!(d["rolloutState"], "IN_PROGRESS");
        assert!(d["id"].as_str().unwrap().starts_with("ecs-svc/"));
        assert_eq!(d["failedTasks"], 0);

        cp.reconcile_services().unwrap();
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeServices",
            br#"{"services":["api","ghost"],"include":["TAGS"]}"#,
        )
        .unwrap();
        assert_eq!(out["services"][0]["pendingCount"], 1);
        assert!(out["services"][0]["events"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("(service api) has started 1 tasks"));
        assert_eq!(out["failures"][0]["reason"], "MISSING");
        let tasks = dispatch(&cp, "us-east-1", "ListTasks", br#"{"serviceName":"api"}"#).unwrap();
        assert_eq!(tasks["taskArns"].as_array().unwrap().len(), 1);

        let out = dispatch(
            &cp,
            "us-east-1",
            "UpdateService",
            br#"{"service":"api","deploymentConfiguration":{"maximumPercent":150}}"#,
        )
        .unwrap();
        let conf = &out["service"]["deploymentConfiguration"];
        assert_eq!(conf["minimumHealthyPercent"], 50, "kept");
        assert_eq!(conf["maximumPercent"], 150);

        let e = dispatch(&cp, "us-east-1", "DeleteService", br#"{"service":"api"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        assert_eq!(
            e.message,
            "The service cannot be stopped while it is scaled above 0."
        );
        let out = dispatch(
            &cp,
            "us-east-1",
            "DeleteService",
            br#"{"service":"api","force":true}"#,
        )
        .unwrap();
        assert_eq!(out["service"]["status"], "DRAINING");
        let e = dispatch(
            &cp,
            "us-east-1",
            "UpdateService",
            br#"{"service":"api","desiredCount":2}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind.name(), "ServiceNotActiveException");
        let e = dispatch(&cp, "us-east-1", "UpdateService", br#"{"service":"ghost"}"#).unwrap_err();
        assert_eq!(e.kind.name(), "ServiceNotFoundException");
        let e = dispatch(&cp, "us-east-1", "ListServices", br#"{"cluster":"ghost"}"#).unwrap_err();
        assert_eq!(e.kind.name(), "ClusterNotFoundException");
    }

    #[test]
    fn list_services_pages_by_ten() {
        let (cp, _) = fleet();
        for i in 0..12 {
            let body = format!(r#"{{"serviceName":"s{i:02}","taskDefinition":"web"}}"#);
            dispatch(&cp, "us-east-1", "CreateService", body.as_bytes()).unwrap();
        }
        let first = dispatch(&cp, "us-east-1", "ListServices", b"{}").unwrap();
        assert_eq!(first["serviceArns"].as_array().unwrap().len(), 10);
        let token = first["nextToken"].as_str().unwrap();
        let body = format!(r#"{{"nextToken":"{token}"}}"#);
        let rest = dispatch(&cp, "us-east-1", "ListServices", body.as_bytes()).unwrap();
        assert_eq!(rest["serviceArns"].as_array().unwrap().len(), 2);
        assert!(rest.get("nextToken").is_none());
        let e = dispatch(
            &cp,
            "us-east-1",
            "CreateService",
            br#"{"serviceName":"s00","taskDefinition":"web"}"#,
        )
        .unwrap_err();
        assert_eq!(e.message, "Creation of service was not idempotent.");
        let e = dispatch(
            &cp,
            "us-east-1",
            "CreateService",
            br#"{"taskDefinition":"web"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("\"serviceName\""), "{}", e.message);
    }

    #[test]
    fn placement_and_capacity_provider_strategy_in_ecs_shapes() {
        let (cp, _) = fleet();
        dispatch(&cp, "us-east-1",
            "PutClusterCapacityProviders",
            br#"{"cluster":"default","capacityProviders":["FARGATE","FARGATE_SPOT"],"defaultCapacityProviderStrategy":[]}"#,
        )
        .unwrap();
        let e = dispatch(
            &cp,
            "us-east-1",
            "CreateService",
            br#"{"serviceName":"both","taskDefinition":"web","launchType":"EC2",
                "capacityProviderStrategy":[{"capacityProvider":"FARGATE","weight":1}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorType::InvalidParameter);
        assert!(e
            .message
            .starts_with("Specifying both a launch type and capacity provider strategy"));
        let e = dispatch(&cp, "us-east-1",
            "CreateService",
            br#"{"serviceName":"bad","taskDefinition":"web","placementStrategy":[{"type":"spread"}]}"#,
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("placementStrategy[0]: "),
            "{}",
            e.message
        );

        let out = dispatch(
            &cp,
            "us-east-1",
            "CreateService",
            br#"{"serviceName":"api","taskDefinition":"web","desiredCount":1,
                "capacityProviderStrategy":[{"capacityProvider":"FARGATE","weight":1,"base":1}],
                "placementStrategy":[{"type":"spread","field":"instanceId"},{"type":"random"}],
                "placementConstraints":[{"type":"distinctInstance"}]}"#,
        )
        .unwrap();
        let s = &out["service"];
        let strategy = serde_json::json!([{"capacityProvider":"FARGATE","weight":1,"base":1}]);
        assert_eq!(s["capacityProviderStrategy"], strategy);
        assert!(s.get("launchType").is_none(), "one or the other, as ECS");
        assert_eq!(
            s["placementStrategy"],
            serde_json::json!([{"type":"spread","field":"instanceId"},{"type":"random"}])
        );
        assert_eq!(
            s["placementConstraints"],
            serde_json::json!([{"type":"distinctInstance"}])
        );
        let d = &s["deployments"][0];
        assert_eq!(d["capacityProviderStrategy"], strategy);
        assert!(d.get("launchType").is_none());

        let out = dispatch(
            &cp,
            "us-east-1",
            "UpdateService",
            br#"{"service":"api","placementConstraints":[],
                "capacityProviderStrategy":[{"capacityProvider":"FARGATE_SPOT","weight":2}]}"#,
        )
        .unwrap();
        let s = &out["service"];
        assert_eq!(s["placementConstraints"], serde_json::json!([]));
        assert_eq!(s["placementStrategy"].as_array().unwrap().len(), 2, "kept");
        assert_eq!(s["deployments"].as_array().unwrap().len(), 2);
        assert_eq!(
            s["deployments"][0]["capacityProviderStrategy"][0]["capacityProvider"],
            "FARGATE_SPOT"
        );
        assert_eq!(
            s["deployments"][1]["capacityProviderStrategy"][0]["capacityProvider"],
            "FARGATE"
        );
        // A launch-type service shows its launch type on its deployments.
        let out = dispatch(
            &cp,
            "us-east-1",
            "CreateService",
            br#"{"serviceName":"typed","taskDefinition":"web","launchType":"EC2"}"#,
        )
        .unwrap();
        assert_eq!(out["service"]["deployments"][0]["launchType"], "EC2");
        assert!(out["service"].get("capacityProviderStrategy").is_none());
    }
}
