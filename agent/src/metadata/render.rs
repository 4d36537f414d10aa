//! The v4 JSON shapes (field names as amazon-ecs-agent serves them), rendered from the registry's domain types.

use std::collections::BTreeMap;

use serde::Serialize;

use super::registry::{ContainerMetadata, HealthMetadata, TaskMetadata, TaskNetwork};
use crate::model::NetworkMode;

#[derive(Debug, Serialize)]
pub struct TaskResponse {
    #[serde(rename = "Cluster")]
    cluster: String,
    #[serde(rename = "TaskARN")]
    task_arn: String,
    #[serde(rename = "Family")]
    family: String,
    /// A string in ECS's v4 response.
    #[serde(rename = "Revision")]
    revision: String,
    #[serde(rename = "DesiredStatus")]
    desired_status: &'static str,
    #[serde(rename = "KnownStatus")]
    known_status: &'static str,
    #[serde(rename = "Limits", skip_serializing_if = "Option::is_none")]
    limits: Option<TaskLimits>,
    #[serde(rename = "PullStartedAt", skip_serializing_if = "Option::is_none")]
    pull_started_at: Option<String>,
    #[serde(rename = "PullStoppedAt", skip_serializing_if = "Option::is_none")]
    pull_stopped_at: Option<String>,
    #[serde(rename = "AvailabilityZone")]
    availability_zone: String,
    #[serde(rename = "LaunchType")]
    launch_type: berth_ecs::LaunchType,
    #[serde(rename = "Containers")]
    containers: Vec<ContainerResponse>,
}

/// Task limits: CPU in vCPUs (units / 1024), memory in MiB.
#[derive(Debug, Serialize)]
struct TaskLimits {
    #[serde(rename = "CPU", skip_serializing_if = "Option::is_none")]
    cpu: Option<f64>,
    #[serde(rename = "Memory", skip_serializing_if = "Option::is_none")]
    memory: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ContainerResponse {
    #[serde(rename = "DockerId")]
    docker_id: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "DockerName")]
    docker_name: String,
    #[serde(rename = "Image")]
    image: String,
    #[serde(rename = "ImageID", skip_serializing_if = "Option::is_none")]
    image_id: Option<String>,
    #[serde(rename = "Labels")]
    labels: BTreeMap<String, String>,
    #[serde(rename = "DesiredStatus")]
    desired_status: &'static str,
    #[serde(rename = "KnownStatus")]
    known_status: &'static str,
    #[serde(rename = "ExitCode", skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(rename = "Limits")]
    limits: ContainerLimits,
    #[serde(rename = "CreatedAt", skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(rename = "StartedAt", skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(rename = "FinishedAt", skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "ContainerARN")]
    container_arn: String,
    #[serde(rename = "Health", skip_serializing_if = "Option::is_none")]
    health: Option<Health>,
    #[serde(rename = "Networks", skip_serializing_if = "Vec::is_empty")]
    networks: Vec<Network>,
}

/// Container limits: CPU in units, memory in MiB.
#[derive(Debug, Serialize)]
struct ContainerLimits {
    #[serde(rename = "CPU")]
    cpu: f64,
    #[serde(rename = "Memory", skip_serializing_if = "Option::is_none")]
    memory: Option<i64>,
}

/// Lower-case keys here, as in ECS's health object.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    #[serde(rename = "statusSince")]
    status_since: String,
}

#[derive(Debug, Serialize)]
struct Network {
    #[serde(rename = "NetworkMode")]
    mode: &'static str,
    #[serde(rename = "IPv4Addresses", skip_serializing_if = "Vec::is_empty")]
    ipv4_addresses: Vec<String>,
    /// The interface's details: awsvpc only, as in ECS.
    #[serde(flatten)]
    interface: Option<Interface>,
}

#[derive(Debug, Serialize)]
struct Interface {
    #[serde(rename = "AttachmentIndex")]
    attachment_index: u32,
    #[serde(rename = "MACAddress")]
    mac_address: String,
    #[serde(rename = "IPv4SubnetCIDRBlock")]
    ipv4_subnet_cidr_block: String,
    #[serde(rename = "PrivateDNSName")]
    private_dns_name: String,
    #[serde(rename = "SubnetGatewayIpv4Address")]
    subnet_gateway_ipv4_address: String,
}

pub fn task(t: &TaskMetadata) -> TaskResponse {
    let limits = (t.cpu.is_some() || t.memory_mib.is_some()).then(|| TaskLimits {
        #[allow(clippy::cast_precision_loss)] // CPU units are small
        cpu: t.cpu.map(|c| c as f64 / 1024.0),
        memory: t.memory_mib,
    });
    TaskResponse {
        cluster: t.cluster.clone(),
        task_arn: t.task_arn.clone(),
        family: t.family.clone(),
        revision: t.revision.to_string(),
        desired_status: t.desired_status.as_str(),
        known_status: t.known_status.as_str(),
        limits,
        pull_started_at: t.pull_started_at_ms.map(rfc3339),
        pull_stopped_at: t.pull_stopped_at_ms.map(rfc3339),
        availability_zone: t.availability_zone.clone(),
        launch_type: t.launch_type,
        containers: t.containers.iter().map(|c| container(c, t)).collect(),
    }
}

pub fn container(c: &ContainerMetadata, t: &TaskMetadata) -> ContainerResponse {
    ContainerResponse {
        docker_id: c.docker_id.clone(),
        name: c.name.clone(),
        docker_name: c.docker_name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        labels: c.labels.clone(),
        desired_status: c.desired_status.as_str(),
        known_status: c.known_status.as_str(),
        exit_code: c.exit_code,
        limits: ContainerLimits {
            #[allow(clippy::cast_precision_loss)] // CPU units are small
            cpu: c.cpu as f64,
            memory: c.memory_mib,
        },
        created_at: c.created_at_ms.map(rfc3339),
        started_at: c.started_at_ms.map(rfc3339),
        finished_at: c.finished_at_ms.map(rfc3339),
        kind: "NORMAL",
        container_arn: c.container_arn.clone(),
        health: c.health.as_ref().map(|h: &HealthMetadata| Health {
            status: h.status.as_str(),
            status_since: rfc3339(h.since_ms),
        }),
        networks: networks(c, t),
    }
}

/// A container's `Networks` as ECS shows them for each network mode.
fn networks(c: &ContainerMetadata, t: &TaskMetadata) -> Vec<Network> {
    match t.network_mode {
        NetworkMode::Awsvpc => t.network.as_ref().map(network).into_iter().collect(),
        NetworkMode::Bridge => vec![Network {
            mode: t.network_mode.as_str(),
            ipv4_addresses: c.bridge_ipv4.iter().map(ToString::to_string).collect(),
            interface: None,
        }],
        NetworkMode::Host | NetworkMode::None => vec![Network {
            mode: t.network_mode.as_str(),
            ipv4_addresses: vec![],
            interface: None,
        }],
    }
}

fn network(n: &TaskNetwork) -> Network {
    Network {
        mode: NetworkMode::Awsvpc.as_str(),
        ipv4_addresses: vec![n.ipv4.to_string()],
        interface: Some(Interface {
            attachment_index: 0,
            mac_address: n.mac.clone(),
            ipv4_subnet_cidr_block: format!("{}/{}", n.subnet.network, n.subnet.prefix_len),
            private_dns_name: n.private_dns_name.clone(),
            subnet_gateway_ipv4_address: format!("{}/{}", n.subnet.gateway(), n.subnet.prefix_len),
        }),
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2024-01-02T03:04:05.678Z`).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    }
}
