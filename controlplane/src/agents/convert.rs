//! Protobuf to domain values and back: the one place the agent protocol's types meet the
//! control plane's. Unknown and unset enum values are refused, naming the field and task.

use std::collections::BTreeSet;

use berth_proto::convert::{UnknownValue, Wire};
use berth_proto::v1 as pb;
use berth_proto::PROTOCOL_VERSION;

use crate::logs::{AgentBatch, AgentEvent};
use crate::model::container_instance::default_reserved_ports;
use crate::model::container_options::LinuxParameters;
use crate::model::ports::{HostPort, NetworkBinding, Protocol};
use crate::model::task::{ContainerReport, TaskReport};
use crate::model::{ContainerDefinition, Resources, Task};
use crate::state::InstanceRegistration;

/// A message from an agent that does not say what the protocol requires.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    /// An enum field is unset, or holds a value this control plane does not know (an agent
    /// from another version).
    #[error("{message}: {field} is {value}")]
    UnknownValue {
        /// What was being read, e.g. `report of task arn:...`.
        message: String,
        field: &'static str,
        value: UnknownValue,
    },
    #[error("register: resources.cpu and resources.memory_mib must be positive")]
    NoResources,
    /// The agent speaks another version of the protocol.
    #[error(
        "register: the agent speaks protocol version {agent} and this control plane {ours}: \
         upgrade the older of the two (the host's tasks keep running meanwhile)"
    )]
    ProtocolVersion { agent: u32, ours: u32 },
}

fn unknown(message: &str, field: &'static str, value: UnknownValue) -> ConvertError {
    ConvertError::UnknownValue {
        message: message.to_owned(),
        field,
        value,
    }
}

fn ms(v: i64) -> Option<i64> {
    (v > 0).then_some(v)
}

pub(super) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A required enum field, or the error naming it.
fn required<T: Wire>(v: i32, message: &str, field: &'static str) -> Result<T, ConvertError> {
    T::from_wire(v).map_err(|e| unknown(message, field, e))
}

/// An enum field where unset means none.
fn optional<T: Wire>(
    v: i32,
    message: &str,
    field: &'static str,
) -> Result<Option<T>, ConvertError> {
    T::optional_from_wire(v).map_err(|e| unknown(message, field, e))
}

fn container_report(
    c: pb::ContainerStatus,
    message: &str,
) -> Result<ContainerReport, ConvertError> {
    let message = format!("{message}, container {}", c.name);
    Ok(ContainerReport {
        last_status: required(c.last_status, &message, "container last_status")?,
        exit_code: c.exit_code,
        reason: non_empty(c.reason),
        runtime_id: non_empty(c.runtime_id),
        image_digest: non_empty(c.image_digest),
        health_status: optional(c.health_status, &message, "health_status")?,
        network_bindings: c
            .network_bindings
            .into_iter()
            .filter_map(|b| {
                // A port out of range is no binding (as before enums); a bad protocol is refused.
                let container_port = u16::try_from(b.container_port).ok()?;
                let host_port = u16::try_from(b.host_port).ok()?;
                Some(
                    required(b.protocol, &message, "protocol").map(|protocol| NetworkBinding {
                        bind_ip: b.bind_ip,
                        container_port,
                        host_port,
                        protocol,
                    }),
                )
            })
            .collect::<Result<_, _>>()?,
        name: c.name,
    })
}

impl TryFrom<pb::TaskStatus> for TaskReport {
    type Error = ConvertError;

    fn try_from(s: pb::TaskStatus) -> Result<Self, ConvertError> {
        let message = format!("report of task {}", s.task_arn);
        Ok(TaskReport {
            last_status: required(s.last_status, &message, "last_status")?,
            containers: s
                .containers
                .into_iter()
                .map(|c| container_report(c, &message))
                .collect::<Result<_, _>>()?,
            private_ipv4: non_empty(s.private_ipv4_address),
            mac_address: non_empty(s.mac_address),
            stop_code: optional(s.stop_code, &message, "stop_code")?,
            stopped_reason: non_empty(s.stopped_reason),
            pull_started_at_ms: ms(s.pull_started_at_ms),
            pull_stopped_at_ms: ms(s.pull_stopped_at_ms),
            started_at_ms: ms(s.started_at_ms),
            execution_stopped_at_ms: ms(s.execution_stopped_at_ms),
            health_status: optional(s.health_status, &message, "health_status")?,
            task_arn: s.task_arn,
        })
    }
}

/// The agent's reserved ports; none named at all means ECS's defaults.
fn reserved_ports(r: &pb::Resources) -> BTreeSet<HostPort> {
    if r.reserved_tcp_ports.is_empty() && r.reserved_udp_ports.is_empty() {
        return default_reserved_ports();
    }
    let ports = |list: &[u32], protocol| {
        list.iter()
            .filter_map(move |p| u16::try_from(*p).ok().map(|p| (protocol, p)))
            .collect::<Vec<_>>()
    };
    ports(&r.reserved_tcp_ports, Protocol::Tcp)
        .into_iter()
        .chain(ports(&r.reserved_udp_ports, Protocol::Udp))
        .collect()
}

impl TryFrom<pb::RegisterRequest> for InstanceRegistration {
    type Error = ConvertError;

    fn try_from(r: pb::RegisterRequest) -> Result<Self, ConvertError> {
        if r.protocol_version != PROTOCOL_VERSION {
            return Err(ConvertError::ProtocolVersion {
                agent: r.protocol_version,
                ours: PROTOCOL_VERSION,
            });
        }
        let resources = r.resources.unwrap_or_default();
        if resources.cpu <= 0 || resources.memory_mib <= 0 {
            return Err(ConvertError::NoResources);
        }
        Ok(InstanceRegistration {
            cluster: if r.cluster.is_empty() {
                "default".into()
            } else {
                r.cluster
            },
            container_instance_arn: non_empty(r.container_instance_arn),
            hostname: r.hostname,
            resources: Resources {
                cpu: resources.cpu,
                memory_mib: resources.memory_mib,
            },
            capacity_provider: non_empty(r.capacity_provider).or_else(|| {
                r.serves_fargate
                    .then(|| crate::model::capacity_provider::FARGATE.to_string())
            }),
            agent_version: r.agent_version,
            attributes: r.attributes.into_iter().collect(),
            reserved_ports: reserved_ports(&resources),
        })
    }
}

fn linux_parameters(l: &LinuxParameters) -> pb::LinuxParameters {
    pb::LinuxParameters {
        cap_add: l.cap_add.clone(),
        cap_drop: l.cap_drop.clone(),
        init_process_enabled: l.init_process_enabled,
        shared_memory_size_mib: l.shared_memory_size_mib.unwrap_or(0),
        tmpfs: l
            .tmpfs
            .iter()
            .map(|t| pb::Tmpfs {
                container_path: t.container_path.clone(),
                size_mib: t.size_mib,
                mount_options: t.mount_options.clone(),
            })
            .collect(),
    }
}

/// A container definition as the agent receives it.
fn container_spec(d: &ContainerDefinition) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: d.name.clone(),
        image: d.image.clone(),
        command: d.command.clone(),
        entry_point: d.entry_point.clone(),
        environment: d
            .environment
            .iter()
            .map(|(k, v)| pb::KeyValue {
                name: k.clone(),
                value: v.clone(),
            })
            .collect(),
        working_directory: d.working_directory.clone().unwrap_or_default(),
        user: d.user.clone().unwrap_or_default(),
        cpu: d.cpu,
        memory_mib: d.memory_mib.unwrap_or(0),
        memory_reservation_mib: d.memory_reservation_mib.unwrap_or(0),
        essential: d.essential,
        stop_timeout_secs: d.stop_timeout_secs.unwrap_or(0),
        depends_on: d
            .depends_on
            .iter()
            .map(|(name, condition)| pb::ContainerDependency {
                container_name: name.clone(),
                condition: condition.to_wire(),
            })
            .collect(),
        health_check: d.health_check.as_ref().map(|h| pb::HealthCheck {
            command: h.command.clone(),
            interval_secs: h.interval_secs,
            timeout_secs: h.timeout_secs,
            retries: h.retries,
            start_period_secs: h.start_period_secs,
        }),
        start_timeout_secs: d.start_timeout_secs.unwrap_or(0),
        environment_files: d.options.environment_files.clone(),
        readonly_root_filesystem: d.options.readonly_root_filesystem,
        ulimits: d
            .options
            .ulimits
            .iter()
            .map(|u| pb::Ulimit {
                name: u.name.clone(),
                soft_limit: u.soft_limit,
                hard_limit: u.hard_limit,
            })
            .collect(),
        linux_parameters: Some(linux_parameters(&d.options.linux_parameters)),
        mount_points: d
            .options
            .mount_points
            .iter()
            .map(|m| pb::MountPoint {
                source_volume: m.source_volume.clone(),
                container_path: m.container_path.clone(),
                read_only: m.read_only,
            })
            .collect(),
        volumes_from: d
            .options
            .volumes_from
            .iter()
            .map(|v| pb::VolumeFrom {
                source_container: v.source_container.clone(),
                read_only: v.read_only,
            })
            .collect(),
        privileged: d.options.privileged,
        docker_labels: d.options.docker_labels.iter().cloned().collect(),
        port_mappings: d
            .port_mappings
            .iter()
            .map(|m| pb::PortMapping {
                container_port: u32::from(m.container_port),
                host_port: u32::from(m.host_port.unwrap_or(0)),
                protocol: m.protocol.to_wire(),
            })
            .collect(),
        // Filled in by `add_secrets`.
        secret_environment: vec![],
        registry_login: None,
        links: d.options.links.clone(),
        hostname: d.options.hostname.clone().unwrap_or_default(),
        log_configuration: d.options.log_configuration.as_ref().map(log_configuration),
        firelens_configuration: d.options.firelens_configuration.as_ref().map(|f| {
            pb::FirelensConfiguration {
                r#type: f.kind.clone(),
                options: f.options.iter().cloned().collect(),
            }
        }),
        extra_hosts: d
            .options
            .extra_hosts
            .iter()
            .map(|(hostname, ip)| pb::HostEntry {
                hostname: hostname.clone(),
                ip_address: ip.clone(),
            })
            .collect(),
    }
}

fn log_configuration(
    l: &crate::model::container_options::LogConfiguration,
) -> pb::LogConfiguration {
    pb::LogConfiguration {
        log_driver: l.log_driver.clone(),
        options: l.options.iter().cloned().collect(),
    }
}

/// A task as its agent receives it (secrets are added by `desired::add_secrets`).
pub(super) fn task_spec(t: &Task) -> pb::TaskSpec {
    pb::TaskSpec {
        task_arn: t.arn.clone(),
        task_id: t.id.clone(),
        family: t.family.clone(),
        revision: i64::from(t.revision),
        desired_status: t.desired_status.to_wire(),
        network_mode: t.network_mode.to_wire(),
        cpu: t.cpu.unwrap_or(0),
        memory_mib: t.memory_mib.unwrap_or(0),
        cluster_arn: t.cluster_arn.clone(),
        volumes: t
            .volumes
            .iter()
            .map(|v| pb::Volume {
                name: v.name.clone(),
                host_source_path: v.host_source_path.clone().unwrap_or_default(),
            })
            .collect(),
        containers: t
            .containers
            .iter()
            .map(|c| container_spec(&c.definition))
            .collect(),
        secrets_error: String::new(),
    }
}

/// An awslogs batch from an agent, and the task it came from.
pub fn log_batch(b: pb::LogBatch) -> (String, AgentBatch) {
    let batch = AgentBatch {
        group: b.log_group,
        stream: b.log_stream,
        create_group: b.create_group,
        events: b
            .events
            .into_iter()
            .map(|e| AgentEvent {
                timestamp_ms: e.timestamp_ms,
                message: e.message,
                journal_end: e.journal_end,
            })
            .collect(),
        journal_start: b.journal_start,
        journal_end: b.journal_end,
        dropped_events: b.dropped_events,
    };
    (b.task_arn, batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContainerStatus, DesiredStatus, HealthStatus, StopCode, TaskStatus};
    use berth_ecs::ContainerCondition;

    fn report(last_status: pb::TaskState) -> pb::TaskStatus {
        pb::TaskStatus {
            task_arn: "arn".into(),
            last_status: last_status.into(),
            containers: vec![pb::ContainerStatus {
                name: "web".into(),
                last_status: pb::ContainerState::Running.into(),
                health_status: pb::HealthStatus::Healthy.into(),
                ..Default::default()
            }],
            started_at_ms: 5,
            ..Default::default()
        }
    }

    #[test]
    fn a_status_report_converts_enums_and_empty_fields_to_none() {
        let r = TaskReport::try_from(report(pb::TaskState::Running)).unwrap();
        assert_eq!(r.last_status, TaskStatus::Running);
        assert_eq!(r.stop_code, None);
        assert_eq!(r.health_status, None);
        assert_eq!(r.started_at_ms, Some(5));
        assert_eq!(r.pull_started_at_ms, None);
        let c = &r.containers[0];
        assert_eq!(
            (c.last_status, c.health_status, c.reason.as_deref()),
            (ContainerStatus::Running, Some(HealthStatus::Healthy), None)
        );
        let stopped = pb::TaskStatus {
            stop_code: pb::StopCode::EssentialContainerExited.into(),
            ..report(pb::TaskState::Stopped)
        };
        let r = TaskReport::try_from(stopped).unwrap();
        assert_eq!(r.stop_code, Some(StopCode::EssentialContainerExited));
    }

    #[test]
    fn unset_or_unknown_statuses_are_refused_by_field_and_task() {
        let e = TaskReport::try_from(report(pb::TaskState::Unspecified)).unwrap_err();
        assert_eq!(e.to_string(), "report of task arn: last_status is unset");
        let mut r = report(pb::TaskState::Running);
        r.containers[0].last_status = 42;
        let e = TaskReport::try_from(r).unwrap_err();
        assert!(
            e.to_string()
                .contains("container web: container last_status is 42"),
            "{e}"
        );
        let mut r = report(pb::TaskState::Running);
        r.containers[0].network_bindings.push(pb::NetworkBinding {
            bind_ip: "0.0.0.0".into(),
            container_port: 80,
            host_port: 8080,
            protocol: 0,
        });
        assert!(TaskReport::try_from(r).is_err());
    }

    #[test]
    fn a_registration_needs_resources_and_defaults_its_cluster() {
        let r = pb::RegisterRequest {
            protocol_version: PROTOCOL_VERSION,
            resources: Some(pb::Resources {
                cpu: 2048,
                memory_mib: 4096,
                ..Default::default()
            }),
            serves_fargate: true,
            ..Default::default()
        };
        let reg = InstanceRegistration::try_from(r.clone()).unwrap();
        assert_eq!(reg.cluster, "default");
        assert_eq!(reg.capacity_provider.as_deref(), Some("FARGATE"));
        assert_eq!(reg.reserved_ports, default_reserved_ports());
        let none = pb::RegisterRequest {
            resources: None,
            ..r.clone()
        };
        assert_eq!(
            InstanceRegistration::try_from(none).unwrap_err(),
            ConvertError::NoResources
        );
        // An agent from before statuses were enums sends no version: refused before any
        // task could be misread, with a message that says what to do.
        let old = pb::RegisterRequest {
            protocol_version: 0,
            ..r
        };
        let e = InstanceRegistration::try_from(old).unwrap_err();
        assert_eq!(e, ConvertError::ProtocolVersion { agent: 0, ours: 2 });
        assert!(
            e.to_string().contains("upgrade the older of the two"),
            "{e}"
        );
    }

    #[test]
    fn specs_carry_enums_the_agent_reads() {
        let mut t = crate::model::task::tests_support::task();
        t.desired_status = DesiredStatus::Stopped;
        t.containers[0].definition.depends_on = vec![("db".into(), ContainerCondition::Healthy)];
        let spec = task_spec(&t);
        assert_eq!(spec.desired_status, i32::from(pb::DesiredStatus::Stopped));
        assert_eq!(spec.network_mode, i32::from(pb::NetworkMode::Awsvpc));
        assert_eq!(
            spec.containers[0].depends_on[0].condition,
            i32::from(pb::DependencyCondition::Healthy)
        );
    }
}
