//! Domain values rendered as ECS response shapes (botocore's ECS model).
//! Timestamps are epoch seconds, as the JSON protocol sends them.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::model::capacity_provider::is_fargate;
use crate::model::ports::{string_set, HostPort, Protocol};
use crate::model::service::Deployment;
use crate::model::{
    ArnContext, Attribute, CapacityProvider, Cluster, Connectivity, ContainerDefinition,
    HealthStatus, LaunchType, Service, Task, TaskDefinition, TaskStatus,
};
use crate::scheduler::CapacityProviderShare;
use crate::state::{ClusterCounts, InstanceView, ItemFailure};

pub fn epoch(ms: i64) -> Value {
    #[allow(clippy::cast_precision_loss)]
    let secs = ms as f64 / 1000.0;
    json!(secs)
}

fn opt_epoch(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, epoch)
}

pub fn tags(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// Drops null members: botocore treats an absent member and null alike, but
/// the aws CLI prints nulls, and ECS leaves unset members out.
pub fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

pub fn failure(f: &ItemFailure) -> Value {
    compact(json!({ "arn": f.arn, "reason": f.reason, "detail": f.detail }))
}

/// Which optional parts of a cluster a response carries (`include`): one
/// flag per ECS `include` value, so a struct of bools is the plain shape.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterInclude {
    pub tags: bool,
    pub settings: bool,
    pub statistics: bool,
    pub configurations: bool,
}

impl ClusterInclude {
    /// What Create/Update/DeleteCluster return: everything but statistics.
    pub const MUTATION: Self = Self {
        tags: true,
        settings: true,
        statistics: false,
        configurations: true,
    };
}

fn key_values(pairs: &[(&str, String)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect(),
    )
}

pub fn cluster(c: &Cluster, counts: ClusterCounts, include: ClusterInclude) -> Value {
    let mut v = json!({
        "clusterArn": c.arn,
        "clusterName": c.name,
        "status": c.status,
        "registeredContainerInstancesCount": counts.registered_instances,
        "runningTasksCount": counts.running_tasks,
        "pendingTasksCount": counts.pending_tasks,
        "activeServicesCount": counts.active_services,
        "statistics": [],
        "tags": [],
        "settings": [],
        "capacityProviders": c.capacity_providers,
        "defaultCapacityProviderStrategy": capacity_provider_strategy(&c.default_capacity_provider_strategy),
    });
    if include.tags {
        v["tags"] = tags(&c.tags);
    }
    if include.settings {
        v["settings"] = Value::Array(
            c.settings
                .iter()
                .map(|(k, val)| json!({"name": k, "value": val}))
                .collect(),
        );
    }
    if include.statistics {
        v["statistics"] = key_values(&[
            ("runningEC2TasksCount", counts.running_ec2_tasks.to_string()),
            (
                "runningFargateTasksCount",
                counts.running_fargate_tasks.to_string(),
            ),
            ("pendingEC2TasksCount", counts.pending_ec2_tasks.to_string()),
            (
                "pendingFargateTasksCount",
                counts.pending_fargate_tasks.to_string(),
            ),
            ("activeEC2ServiceCount", "0".into()),
            ("activeFargateServiceCount", "0".into()),
            ("drainingEC2ServiceCount", "0".into()),
            ("drainingFargateServiceCount", "0".into()),
        ]);
    }
    if include.configurations {
        if let Some(conf) = &c.configuration {
            v["configuration"] = conf.clone();
        }
    }
    v
}

/// A container definition as ECS returns it: the registered document with
/// ECS's defaults filled in.
fn container_definition(doc: Option<&Value>, def: &ContainerDefinition) -> Value {
    let mut m: Map<String, Value> = doc.and_then(Value::as_object).cloned().unwrap_or_default();
    m.insert("name".into(), json!(def.name));
    m.insert("image".into(), json!(def.image));
    m.insert("cpu".into(), json!(def.cpu));
    m.insert("essential".into(), json!(def.essential));
    for key in ["portMappings", "environment", "mountPoints", "volumesFrom"] {
        m.entry(key).or_insert_with(|| json!([]));
    }
    Value::Object(m)
}

pub fn task_definition(td: &TaskDefinition) -> Value {
    let mut m: Map<String, Value> = td.document.as_object().cloned().unwrap_or_default();
    m.remove("tags");
    let docs = td
        .document
        .get("containerDefinitions")
        .and_then(Value::as_array);
    let containers: Vec<Value> = td
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| container_definition(docs.and_then(|d| d.get(i)), c))
        .collect();
    let mut compat = vec![LaunchType::Ec2, LaunchType::External];
    if td.network_mode == crate::model::NetworkMode::Awsvpc
        && td.cpu.is_some()
        && td.memory_mib.is_some()
    {
        compat.push(LaunchType::Fargate);
    }
    let set = |m: &mut Map<String, Value>, k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    set(&mut m, "taskDefinitionArn", json!(td.arn));
    set(&mut m, "family", json!(td.family));
    set(&mut m, "revision", json!(td.revision));
    set(&mut m, "status", json!(td.status));
    set(&mut m, "containerDefinitions", Value::Array(containers));
    set(&mut m, "networkMode", json!(td.network_mode.as_str()));
    set(&mut m, "compatibilities", json!(compat));
    set(
        &mut m,
        "requiresCompatibilities",
        json!(td.requires_compatibilities),
    );
    set(&mut m, "registeredAt", epoch(td.registered_at_ms));
    m.entry("volumes").or_insert_with(|| json!([]));
    m.entry("placementConstraints").or_insert_with(|| json!([]));
    set(&mut m, "requiresAttributes", json!([]));
    if let Some(cpu) = td.cpu {
        set(&mut m, "cpu", json!(cpu.to_string()));
    }
    if let Some(mem) = td.memory_mib {
        set(&mut m, "memory", json!(mem.to_string()));
    }
    if let Some(d) = td.deregistered_at_ms {
        set(&mut m, "deregisteredAt", epoch(d));
    }
    if let Some(d) = td.delete_requested_at_ms {
        set(&mut m, "deleteRequestedAt", epoch(d));
    }
    Value::Object(m)
}

/// ECS Exec's agent on a container of a task run with `enableExecuteCommand`: Berth's
/// agent serves exec itself, so it runs while the container does.
fn managed_agents(t: &Task, c: &crate::model::task::TaskContainer) -> Option<Value> {
    if !t.enable_execute_command {
        return None;
    }
    let mut agent = json!({"name": "ExecuteCommandAgent", "lastStatus": c.last_status});
    if let Some(at) = t.started_at_ms {
        agent["lastStartedAt"] = epoch(at);
    }
    Some(json!([agent]))
}

/// A task's `lastStatus`: DEACTIVATING while it runs on for its load balancer targets to
/// drain, as ECS shows it.
fn shown_status(t: &Task) -> crate::model::TaskStatus {
    if t.drain_until_ms.is_some() && t.last_status == crate::model::TaskStatus::Running {
        crate::model::TaskStatus::Deactivating
    } else {
        t.last_status
    }
}

pub fn task(t: &Task, with_tags: bool) -> Value {
    let containers: Vec<Value> =
        t.containers
            .iter()
            .map(|c| {
                let nic = t.private_ipv4.as_ref().map(
                    |ip| json!([{ "attachmentId": t.attachment_id, "privateIpv4Address": ip }]),
                );
                compact(json!({
                    "containerArn": c.arn,
                    "taskArn": t.arn,
                    "name": c.definition.name,
                    "image": c.definition.image,
                    "imageDigest": c.image_digest,
                    "runtimeId": c.runtime_id,
                    "lastStatus": c.last_status,
                    "exitCode": c.exit_code,
                    "reason": c.reason,
                    "networkBindings": c.network_bindings.iter().map(|b| json!({
                        "bindIP": b.bind_ip,
                        "containerPort": b.container_port,
                        "hostPort": b.host_port,
                        "protocol": b.protocol.as_str(),
                    })).collect::<Vec<_>>(),
                    "networkInterfaces": nic.unwrap_or_else(|| json!([])),
                    "healthStatus": c.health_status,
                    "cpu": c.definition.cpu.to_string(),
                    "memory": c.definition.memory_mib.map(|m| m.to_string()),
                    "memoryReservation": c.definition.memory_reservation_mib.map(|m| m.to_string()),
                    "managedAgents": managed_agents(t, c),
                }))
            })
            .collect();
    let mut attachments = vec![];
    if t.network_mode == crate::model::NetworkMode::Awsvpc {
        let mut details = vec![];
        if let Some(ip) = &t.private_ipv4 {
            details.push(json!({"name": "privateIPv4Address", "value": ip}));
        }
        if let Some(mac) = &t.mac_address {
            details.push(json!({"name": "macAddress", "value": mac}));
        }
        let status = match t.last_status {
            TaskStatus::Provisioning | TaskStatus::Pending if t.private_ipv4.is_none() => {
                "PRECREATED"
            }
            TaskStatus::Stopped => "DELETED",
            _ => "ATTACHED",
        };
        attachments.push(json!({"id": t.attachment_id, "type": "ElasticNetworkInterface", "status": status, "details": details}));
    }
    let mut v = compact(json!({
        "taskArn": t.arn,
        "clusterArn": t.cluster_arn,
        "taskDefinitionArn": t.task_definition_arn,
        "containerInstanceArn": t.container_instance_arn,
        "overrides": if t.overrides.is_object() { t.overrides.clone() } else { json!({"containerOverrides": []}) },
        "lastStatus": shown_status(t),
        "desiredStatus": t.desired_status,
        "cpu": t.cpu.map(|c| c.to_string()),
        "memory": t.memory_mib.map(|m| m.to_string()),
        "containers": containers,
        "startedBy": t.started_by,
        "group": t.group,
        "version": t.version,
        "stopCode": t.stop_code,
        "stoppedReason": t.stopped_reason,
        "connectivity": t.started_at_ms.map(|_| Connectivity::Connected),
        "connectivityAt": opt_epoch(t.started_at_ms),
        "createdAt": epoch(t.created_at_ms),
        "pullStartedAt": opt_epoch(t.pull_started_at_ms),
        "pullStoppedAt": opt_epoch(t.pull_stopped_at_ms),
        "startedAt": opt_epoch(t.started_at_ms),
        "stoppingAt": opt_epoch(t.stopping_at_ms),
        "stoppedAt": opt_epoch(t.stopped_at_ms),
        "executionStoppedAt": opt_epoch(t.execution_stopped_at_ms),
        "launchType": t.launch_type.as_str(),
        "capacityProviderName": t.capacity_provider_name,
        "attachments": attachments,
        "healthStatus": t.health_status.unwrap_or(HealthStatus::Unknown),
        "enableExecuteCommand": t.enable_execute_command,
        "availabilityZone": "local",
    }));
    if t.launch_type == crate::model::LaunchType::Fargate {
        v["platformVersion"] = json!("1.4.0");
        v["platformFamily"] = json!("Linux");
    }
    if with_tags {
        v["tags"] = tags(&t.tags);
    }
    v
}

/// ECS's resource list: CPU and MEMORY, and `PORTS` / `PORTS_UDP` as the ports
/// taken (registered: reserved; remaining: reserved plus those of tasks).
fn resources(cpu: i64, memory: i64, ports: &BTreeSet<HostPort>) -> Value {
    json!([
        {"name": "CPU", "type": "INTEGER", "integerValue": cpu, "doubleValue": 0.0, "longValue": 0},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory, "doubleValue": 0.0, "longValue": 0},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": string_set(ports, Protocol::Tcp), "doubleValue": 0.0, "longValue": 0, "integerValue": 0},
        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": string_set(ports, Protocol::Udp), "doubleValue": 0.0, "longValue": 0, "integerValue": 0},
    ])
}

pub fn container_instance(v: &InstanceView, with_tags: bool) -> Value {
    let i = &v.instance;
    let attributes: Vec<Value> = i
        .all_attributes()
        .iter()
        .map(|(k, val)| compact(json!({"name": k, "value": val})))
        .collect();
    compact(json!({
        "containerInstanceArn": i.arn,
        "ec2InstanceId": i.hostname,
        "capacityProviderName": i.capacity_provider,
        "version": i.version,
        "versionInfo": {"agentVersion": i.agent_version, "agentHash": "berth", "dockerVersion": "containerd"},
        "remainingResources": resources(v.remaining.cpu, v.remaining.memory_mib, &v.used_ports),
        "registeredResources": resources(i.registered.cpu, i.registered.memory_mib, &i.reserved_ports),
        "status": i.status,
        "agentConnected": v.agent_connected,
        "runningTasksCount": v.running_tasks,
        "pendingTasksCount": v.pending_tasks,
        "attributes": attributes,
        "registeredAt": epoch(i.registered_at_ms),
        "attachments": [],
        "tags": if with_tags { tags(&i.tags) } else { json!([]) },
    }))
}

/// A capacity provider (botocore's `CapacityProvider` shape). Built-in
/// Fargate providers have no Auto Scaling group and no update status.
pub fn capacity_provider(p: &CapacityProvider, with_tags: bool) -> Value {
    let kind = if is_fargate(&p.name) {
        p.name.as_str()
    } else {
        "EC2_AUTOSCALING"
    };
    let mut v = compact(json!({
        "capacityProviderArn": p.arn,
        "name": p.name,
        "status": p.status,
        "type": kind,
        "autoScalingGroupProvider": p.auto_scaling_group_provider,
        "updateStatus": p.update_status,
    }));
    if with_tags {
        v["tags"] = tags(&p.tags);
    }
    v
}

pub fn attribute(a: &Attribute) -> Value {
    compact(json!({
        "name": a.name,
        "value": a.value,
        "targetType": "container-instance",
        "targetId": a.target_id,
    }))
}

/// botocore's `CapacityProviderStrategy` list.
fn capacity_provider_strategy(strategy: &[CapacityProviderShare]) -> Value {
    strategy
        .iter()
        .map(|s| {
            json!({
                "capacityProvider": s.provider,
                "weight": s.weight,
                "base": s.base,
            })
        })
        .collect()
}

/// A list of ECS `PlacementStrategy` or `PlacementConstraint` shapes,
/// members without a value left out.
fn placement<T: serde::Serialize>(items: &[T]) -> Value {
    items
        .iter()
        .map(|i| compact(serde_json::to_value(i).unwrap_or_default()))
        .collect()
}

/// `launchType`, or `capacityProviderStrategy` when there is one: ECS
/// shows one or the other on services and deployments.
pub fn capacity(v: &mut Value, launch_type: LaunchType, strategy: &[CapacityProviderShare]) {
    if strategy.is_empty() {
        v["launchType"] = json!(launch_type.as_str());
    } else {
        v["capacityProviderStrategy"] = capacity_provider_strategy(strategy);
    }
}

fn deployment(d: &Deployment) -> Value {
    let mut v = json!({
        "id": d.id,
        "status": d.status.as_str(),
        "taskDefinition": d.task_definition,
        "desiredCount": d.desired_count,
        "pendingCount": d.pending_count,
        "runningCount": d.running_count,
        "failedTasks": d.failed_tasks,
        "createdAt": epoch(d.created_at_ms),
        "updatedAt": epoch(d.updated_at_ms),
        "rolloutState": d.rollout_state.as_str(),
        "rolloutStateReason": d.rollout_state_reason,
    });
    capacity(&mut v, d.launch_type, &d.capacity_provider_strategy);
    v
}

/// A service's `deploymentConfiguration` as ECS shows it.
pub fn deployment_configuration(conf: &crate::model::service::DeploymentConfiguration) -> Value {
    json!({
        "deploymentCircuitBreaker": {
            "enable": conf.circuit_breaker.enable,
            "rollback": conf.circuit_breaker.rollback,
        },
        "maximumPercent": conf.maximum_percent,
        "minimumHealthyPercent": conf.minimum_healthy_percent,
    })
}

/// A service as `DescribeServices` shows it (botocore's `Service` shape).
pub fn service(s: &Service, with_tags: bool) -> Value {
    let conf = &s.deployment_configuration;
    let mut v = compact(json!({
        "serviceArn": s.arn,
        "serviceName": s.name,
        "clusterArn": s.cluster_arn,
        "loadBalancers": [],
        "serviceRegistries": [],
        "status": s.status.as_str(),
        "desiredCount": s.desired_count,
        "runningCount": s.running_count(),
        "pendingCount": s.pending_count(),
        "taskDefinition": s.task_definition,
        "deploymentConfiguration": deployment_configuration(conf),
        "deployments": s.deployments.iter().map(deployment).collect::<Vec<_>>(),
        "events": s.events.iter().map(|e| json!({
            "id": e.id,
            "createdAt": epoch(e.created_at_ms),
            "message": e.message,
        })).collect::<Vec<_>>(),
        "createdAt": epoch(s.created_at_ms),
        "placementConstraints": placement(&s.placement_constraints),
        "placementStrategy": placement(&s.placement_strategy),
        "healthCheckGracePeriodSeconds": s.health_check_grace_period_seconds,
        "schedulingStrategy": s.scheduling_strategy.as_str(),
        "deploymentController": {"type": "ECS"},
        "createdBy": ArnContext::of(&s.arn).map(|a| format!("arn:aws:iam::{}:root", a.account)),
        "enableECSManagedTags": false,
        "propagateTags": "NONE",
        "enableExecuteCommand": s.enable_execute_command,
    }));
    capacity(&mut v, s.launch_type, &s.capacity_provider_strategy);
    if s.launch_type == crate::model::LaunchType::Fargate {
        v["platformVersion"] = json!("LATEST");
        v["platformFamily"] = json!("Linux");
    }
    if with_tags {
        v["tags"] = tags(&s.tags);
    }
    // What the client gave and Berth keeps as it was given.
    for (k, given) in &s.kept {
        match (k.as_str(), given) {
            ("deploymentConfiguration", Value::Object(extra)) => {
                for (m, x) in extra {
                    v["deploymentConfiguration"][m] = x.clone();
                }
            }
            _ => v[k] = given.clone(),
        }
    }
    super::task_sets::add_to_service(&mut v, s);
    v
}
