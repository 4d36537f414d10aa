//! Protobuf <-> the agent's domain types, both ways: what a `TaskSpec` from
//! the control plane means (validated with `TryFrom`: unknown and
//! UNSPECIFIED enum values are errors, never a default), and how a
//! `TaskReport` goes back as a `TaskStatus`, and what the host registers
//! with. The session only frames these in its messages.

use std::time::Duration;

use berth_ecs::EcsEnum;
use berth_proto::convert::{UnknownValue, Wire};
use berth_proto::v1 as pb;

use crate::model::{
    ContainerCondition, ContainerDef, ContainerOptions, ContainerReport, ContainerSecrets,
    Dependency, DesiredStatus, HealthCheck, MountPoint, NetworkBinding, NetworkMode, PortMapping,
    Protocol, TaskReport, TaskSpec, Volume,
};
use crate::runtime::RegistryCredentials;

/// Why a task from the control plane was refused. `task` is its ARN (its id
/// when the ARN is empty); `field` names the field as ECS does.
// Each variant's doc comment is its message, so it names fields as written.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTaskError {
    /// task {task}: id '{task_id}' must be non-empty and alphanumeric
    #[error("task {task}: id '{task_id}' must be non-empty and alphanumeric")]
    TaskId { task: String, task_id: String },
    /// task {task}: {field} is not set (UNSPECIFIED)
    #[error("task {task}: {field} is not set (UNSPECIFIED)")]
    Unspecified { task: String, field: String },
    /// task {task}: {field} has the unknown value {value}
    #[error("task {task}: {field} has the unknown value {value}")]
    UnknownValue {
        task: String,
        field: String,
        value: i32,
    },
    /// task {task}: {field} {value} is not a port
    #[error("task {task}: {field} {value} is not a port")]
    NotAPort {
        task: String,
        field: String,
        value: u32,
    },
    /// task {task}: container {container}: logConfiguration: {reason}
    #[error("task {task}: container {container}: logConfiguration: {reason}")]
    LogConfiguration {
        task: String,
        container: String,
        reason: String,
    },
    /// task {task}: {field} {command:?} is not CMD or CMD-SHELL
    #[error("task {task}: {field} {command:?} is not CMD or CMD-SHELL")]
    HealthCheckCommand {
        task: String,
        field: String,
        command: Vec<String>,
    },
}

/// Reads the protobuf enum field `raw` as the ECS value it carries.
fn enum_field<T: Wire>(
    task: &str,
    field: &dyn Fn() -> String,
    raw: i32,
) -> Result<T, InvalidTaskError> {
    T::from_wire(raw).map_err(|UnknownValue(value)| {
        if value == 0 {
            InvalidTaskError::Unspecified {
                task: task.to_owned(),
                field: field(),
            }
        } else {
            InvalidTaskError::UnknownValue {
                task: task.to_owned(),
                field: field(),
                value,
            }
        }
    })
}

fn secs(s: u32) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(u64::from(s)))
}

fn positive(v: i64) -> Option<i64> {
    (v > 0).then_some(v)
}

fn non_empty(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

/// Converts one container of task `task` (for error messages).
struct ContainerEdge<'a> {
    task: &'a str,
    container: &'a str,
}

impl ContainerEdge<'_> {
    fn field(&self, what: &str) -> String {
        format!("container '{}' {what}", self.container)
    }

    fn port_mapping(&self, m: &pb::PortMapping) -> Result<PortMapping, InvalidTaskError> {
        let port = |value: u32, what: &str| {
            u16::try_from(value).map_err(|_| InvalidTaskError::NotAPort {
                task: self.task.to_owned(),
                field: self.field(what),
                value,
            })
        };
        let container_port = port(m.container_port, "portMappings containerPort")?;
        if container_port == 0 {
            return Err(InvalidTaskError::NotAPort {
                task: self.task.to_owned(),
                field: self.field("portMappings containerPort"),
                value: 0,
            });
        }
        let host_port = port(m.host_port, "portMappings hostPort")?;
        let protocol = enum_field::<Protocol>(
            self.task,
            &|| self.field(&format!("portMappings {container_port} protocol")),
            m.protocol,
        )?;
        Ok(PortMapping {
            container_port,
            host_port: (host_port != 0).then_some(host_port),
            protocol,
        })
    }

    fn dependency(&self, d: &pb::ContainerDependency) -> Result<Dependency, InvalidTaskError> {
        let condition = enum_field::<ContainerCondition>(
            self.task,
            &|| self.field(&format!("dependsOn '{}' condition", d.container_name)),
            d.condition,
        )?;
        Ok(Dependency {
            container: d.container_name.clone(),
            condition,
        })
    }

    /// ECS's health check command forms, as the argv to exec.
    fn health_check(&self, h: &pb::HealthCheck) -> Result<HealthCheck, InvalidTaskError> {
        let command = match h.command.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
            Some((kind, [line])) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".into(), "-c".into(), line.clone()]
            }
            _ => {
                return Err(InvalidTaskError::HealthCheckCommand {
                    task: self.task.to_owned(),
                    field: self.field("healthCheck command"),
                    command: h.command.clone(),
                })
            }
        };
        Ok(HealthCheck {
            command,
            interval: Duration::from_secs(u64::from(h.interval_secs.max(1))),
            timeout: Duration::from_secs(u64::from(h.timeout_secs.max(1))),
            retries: h.retries.max(1),
            start_period: Duration::from_secs(u64::from(h.start_period_secs)),
        })
    }

    /// The container's logging: awslogs settings, or its FireLens route, or (as the
    /// router) its FireLens settings.
    fn logging(&self, c: &pb::ContainerSpec) -> Result<ContainerOptions, InvalidTaskError> {
        let refused = |reason: String| InvalidTaskError::LogConfiguration {
            task: self.task.to_owned(),
            container: c.name.clone(),
            reason,
        };
        let driver = |name: &str| {
            c.log_configuration
                .as_ref()
                .filter(|l| l.log_driver == name)
                .map(|l| &l.options)
        };
        Ok(ContainerOptions {
            awslogs: driver("awslogs")
                .map(crate::awslogs::settings)
                .transpose()
                .map_err(refused)?,
            firelens_route: driver("awsfirelens")
                .map(crate::firelens::Route::new)
                .transpose()
                .map_err(refused)?,
            firelens_router: c
                .firelens_configuration
                .as_ref()
                .map(|f| crate::firelens::Router::new(&f.r#type, &f.options))
                .transpose()
                .map_err(refused)?,
            ..ContainerOptions::default()
        })
    }

    fn container(&self, c: pb::ContainerSpec) -> Result<ContainerDef, InvalidTaskError> {
        let depends_on = c
            .depends_on
            .iter()
            .map(|d| self.dependency(d))
            .collect::<Result<_, _>>()?;
        let health_check = c
            .health_check
            .as_ref()
            .map(|h| self.health_check(h))
            .transpose()?;
        let port_mappings = c
            .port_mappings
            .iter()
            .map(|m| self.port_mapping(m))
            .collect::<Result<_, _>>()?;
        Ok(ContainerDef {
            environment: c
                .environment
                .iter()
                .map(|kv| (kv.name.clone(), kv.value.clone()))
                .collect(),
            working_directory: non_empty(c.working_directory.clone()),
            user: non_empty(c.user.clone()),
            cpu: c.cpu,
            memory_mib: positive(c.memory_mib),
            memory_reservation_mib: positive(c.memory_reservation_mib),
            essential: c.essential,
            stop_timeout: secs(c.stop_timeout_secs),
            depends_on,
            health_check,
            start_timeout: secs(c.start_timeout_secs),
            port_mappings,
            options: ContainerOptions {
                ..container_options(&c, self.logging(&c)?)
            },
            name: c.name,
            image: c.image,
            command: c.command,
            entry_point: c.entry_point,
        })
    }
}

/// The settings applied as given: limits, mounts, capabilities, labels,
/// names, and the resolved secrets.
fn container_options(c: &pb::ContainerSpec, logging: ContainerOptions) -> ContainerOptions {
    let linux = c.linux_parameters.clone().unwrap_or_default();
    let mut labels: Vec<(String, String)> = c
        .docker_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.sort();
    ContainerOptions {
        environment_files: c.environment_files.iter().map(Into::into).collect(),
        readonly_root_filesystem: c.readonly_root_filesystem,
        ulimits: c
            .ulimits
            .iter()
            .map(|u| (u.name.clone(), u.soft_limit, u.hard_limit))
            .collect(),
        cap_add: linux.cap_add,
        cap_drop: linux.cap_drop,
        init_process_enabled: linux.init_process_enabled,
        shared_memory_size_mib: positive(linux.shared_memory_size_mib),
        tmpfs: linux
            .tmpfs
            .into_iter()
            .map(|t| (t.container_path, t.size_mib, t.mount_options))
            .collect(),
        mount_points: c
            .mount_points
            .iter()
            .map(|m| MountPoint {
                source_volume: m.source_volume.clone(),
                container_path: m.container_path.clone(),
                read_only: m.read_only,
            })
            .collect(),
        volumes_from: c
            .volumes_from
            .iter()
            .map(|v| (v.source_container.clone(), v.read_only))
            .collect(),
        privileged: c.privileged,
        docker_labels: labels,
        links: c.links.clone(),
        hostname: non_empty(c.hostname.clone()),
        extra_hosts: c
            .extra_hosts
            .iter()
            .map(|h| (h.hostname.clone(), h.ip_address.clone()))
            .collect(),
        secrets: ContainerSecrets {
            environment: c
                .secret_environment
                .iter()
                .map(|kv| (kv.name.clone(), kv.value.clone()))
                .collect(),
            registry_login: c.registry_login.as_ref().map(|l| RegistryCredentials {
                username: l.username.clone(),
                password: l.password.clone(),
            }),
        },
        ..logging
    }
}

impl TryFrom<pb::TaskSpec> for TaskSpec {
    type Error = InvalidTaskError;

    fn try_from(t: pb::TaskSpec) -> Result<Self, Self::Error> {
        let task = if t.task_arn.is_empty() {
            t.task_id.clone()
        } else {
            t.task_arn.clone()
        };
        if t.task_id.is_empty() || !t.task_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(InvalidTaskError::TaskId {
                task,
                task_id: t.task_id,
            });
        }
        let desired_status =
            enum_field::<DesiredStatus>(&task, &|| "desiredStatus".into(), t.desired_status)?;
        let network_mode =
            enum_field::<NetworkMode>(&task, &|| "networkMode".into(), t.network_mode)?;
        let containers = t
            .containers
            .into_iter()
            .map(|c| {
                let name = c.name.clone();
                ContainerEdge {
                    task: &task,
                    container: &name,
                }
                .container(c)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut containers = containers;
        crate::firelens::add_router_dependencies(&mut containers);
        Ok(TaskSpec {
            arn: t.task_arn,
            id: t.task_id,
            family: t.family,
            revision: t.revision,
            cluster_arn: t.cluster_arn,
            desired_status,
            network_mode,
            cpu: positive(t.cpu),
            memory_mib: positive(t.memory_mib),
            containers,
            volumes: t
                .volumes
                .into_iter()
                .map(|v| Volume {
                    name: v.name,
                    host_source_path: non_empty(v.host_source_path).map(Into::into),
                })
                .collect(),
            secrets_error: non_empty(t.secrets_error),
        })
    }
}

impl From<NetworkBinding> for pb::NetworkBinding {
    fn from(b: NetworkBinding) -> Self {
        pb::NetworkBinding {
            bind_ip: b.bind_ip,
            container_port: u32::from(b.container_port),
            host_port: u32::from(b.host_port),
            protocol: b.protocol.to_wire(),
        }
    }
}

impl From<ContainerReport> for pb::ContainerStatus {
    fn from(c: ContainerReport) -> Self {
        pb::ContainerStatus {
            name: c.name,
            last_status: c.last_status.to_wire(),
            exit_code: c.exit_code,
            reason: c.reason.unwrap_or_default(),
            runtime_id: c.runtime_id.unwrap_or_default(),
            image_digest: c.image_digest.unwrap_or_default(),
            health_status: Wire::optional_to_wire(c.health_status),
            network_bindings: c.network_bindings.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<TaskReport> for pb::TaskStatus {
    fn from(r: TaskReport) -> Self {
        pb::TaskStatus {
            task_arn: r.task_arn,
            last_status: r.last_status.to_wire(),
            containers: r.containers.into_iter().map(Into::into).collect(),
            private_ipv4_address: r.private_ipv4.unwrap_or_default(),
            mac_address: r.mac_address.unwrap_or_default(),
            stop_code: Wire::optional_to_wire(r.stop_code),
            stopped_reason: r.stopped_reason.unwrap_or_default(),
            pull_started_at_ms: r.pull_started_at_ms.unwrap_or(0),
            pull_stopped_at_ms: r.pull_stopped_at_ms.unwrap_or(0),
            started_at_ms: r.started_at_ms.unwrap_or(0),
            execution_stopped_at_ms: r.execution_stopped_at_ms.unwrap_or(0),
            health_status: Wire::optional_to_wire(r.health_status),
        }
    }
}

/// What this host registers with: its capacity, and the capacity provider
/// it joins (also as the older `serves_fargate` flag, for control planes
/// that know only that).
pub(super) fn register_request(
    cfg: &crate::config::AgentConfig,
    known: String,
) -> pb::RegisterRequest {
    pb::RegisterRequest {
        cluster: cfg.cluster.clone(),
        container_instance_arn: known,
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        resources: Some(resources(cfg)),
        serves_fargate: cfg.capacity_provider.as_deref() == Some(berth_ecs::FARGATE),
        capacity_provider: cfg.capacity_provider.clone().unwrap_or_default(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        attributes: std::iter::once((
            "berth.network-modes".to_string(),
            NetworkMode::ALL
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ))
        .collect(),
        protocol_version: berth_proto::PROTOCOL_VERSION,
    }
}

/// What the host offers the scheduler: CPU, memory and its reserved ports.
fn resources(cfg: &crate::config::AgentConfig) -> pb::Resources {
    let ports = |list: &[u16]| list.iter().map(|p| u32::from(*p)).collect();
    pb::Resources {
        cpu: cfg.cpu,
        memory_mib: cfg.memory_mib,
        reserved_tcp_ports: ports(&cfg.reserved_tcp_ports),
        reserved_udp_ports: ports(&cfg.reserved_udp_ports),
    }
}

/// A batch of log events, as the `LogBatch` that carries it.
pub fn log_batch(batch_id: u64, b: crate::awslogs::link::Batch) -> pb::LogBatch {
    pb::LogBatch {
        batch_id,
        log_group: b.group,
        log_stream: b.stream,
        create_group: b.create_group,
        events: b
            .events
            .into_iter()
            .map(|e| pb::LogEvent {
                timestamp_ms: e.timestamp_ms,
                message: e.message,
                journal_end: e.end,
            })
            .collect(),
        journal_start: b.journal_start,
        journal_end: b.journal_end,
        dropped_events: b.dropped_events,
        task_arn: b.task_arn,
        container: b.container,
    }
}

#[cfg(test)]
mod tests;
