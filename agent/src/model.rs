//! The agent's domain types: what a task should be (from the control plane)
//! and what it is (reported back). Protobuf converts to these at the session edge.

use std::time::Duration;

use serde::{Deserialize, Serialize};

// ECS's vocabulary (statuses, stop codes, network modes, protocols, dependency
// conditions) comes from berth-ecs: stored (local state) and shown (logs,
// metadata) by its ECS words; records a previous agent wrote with the Rust
// variant names ("Running", "Awsvpc") still load, through its aliases.
pub use berth_ecs::{
    ContainerCondition, ContainerStatus, DesiredStatus, HealthStatus, NetworkMode, Protocol,
    StopCode, TaskStatus,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDef {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub entry_point: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    pub cpu: i64,
    pub memory_mib: Option<i64>,
    pub memory_reservation_mib: Option<i64>,
    pub essential: bool,
    pub stop_timeout: Option<Duration>,
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// How long dependents wait for this container to reach their condition.
    #[serde(default)]
    pub start_timeout: Option<Duration>,
    #[serde(default)]
    pub options: ContainerOptions,
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
}

/// A `portMappings` entry; `host_port` None asks for a dynamic port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    pub host_port: Option<u16>,
    pub protocol: Protocol,
}

/// A published port, as ECS's `networkBindings` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkBinding {
    pub bind_ip: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: Protocol,
}

/// Container settings applied as given: limits, mounts, capabilities, labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOptions {
    /// Host files of KEY=VALUE lines.
    pub environment_files: Vec<std::path::PathBuf>,
    pub readonly_root_filesystem: bool,
    /// (ECS name such as `nofile`, soft, hard).
    pub ulimits: Vec<(String, i64, i64)>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub init_process_enabled: bool,
    pub shared_memory_size_mib: Option<i64>,
    /// (container path, size MiB, mount options).
    pub tmpfs: Vec<(String, i64, Vec<String>)>,
    pub mount_points: Vec<MountPoint>,
    /// (source container, read only).
    pub volumes_from: Vec<(String, bool)>,
    pub privileged: bool,
    pub docker_labels: Vec<(String, String)>,
    /// `links` (`name` or `name:alias`; bridge mode).
    #[serde(default)]
    pub links: Vec<String>,
    /// `hostname`, replacing the agent's default.
    #[serde(default)]
    pub hostname: Option<String>,
    /// `extraHosts` as (hostname, address).
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    /// Resolved `secrets` and `repositoryCredentials`. Kept in the agent's
    /// state file (root-only, 0600) so a restarted agent can still start an
    /// adopted task's waiting containers; containerd's container record holds
    /// the environment anyway.
    #[serde(default)]
    pub secrets: ContainerSecrets,
    /// `logConfiguration` with the awslogs driver: where this container's output ships.
    #[serde(default)]
    pub awslogs: Option<AwsLogs>,
    /// `firelensConfiguration`: this container is the task's log router.
    #[serde(default)]
    pub firelens_router: Option<crate::firelens::Router>,
    /// `logConfiguration` with the awsfirelens driver: the router output it goes to.
    #[serde(default)]
    pub firelens_route: Option<crate::firelens::Route>,
}

/// The awslogs driver's settings, as the agent ships by them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsLogs {
    pub group: String,
    pub region: String,
    /// `awslogs-stream-prefix`: the stream is `prefix/container/task-id`; without one it
    /// is the container's runtime id, as on ECS.
    pub stream_prefix: Option<String>,
    pub create_group: bool,
    /// `mode: non-blocking`: the most unshipped output kept (`max-buffer-size`); the
    /// oldest beyond it is dropped and counted. None: blocking, nothing is ever dropped.
    pub max_buffer_bytes: Option<u64>,
    /// A regular expression (from `awslogs-multiline-pattern`, or made from
    /// `awslogs-datetime-format`): a line it matches starts a new event, the lines up to
    /// the next such line belong to it.
    pub multiline_pattern: Option<String>,
}

/// A container's secret values as the control plane resolved them. `Debug`
/// shows names only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSecrets {
    /// Environment variables from `secrets` (they win over `environment`).
    pub environment: Vec<(String, String)>,
    /// The login for this container's image registry (`repositoryCredentials`).
    pub registry_login: Option<crate::runtime::RegistryCredentials>,
}

impl std::fmt::Debug for ContainerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.environment.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ContainerSecrets")
            .field("environment", &names)
            .field("registry_login", &self.registry_login)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub source_volume: String,
    pub container_path: String,
    pub read_only: bool,
}

/// A task volume: a host directory, or (none given) one scoped to the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub host_source_path: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub container: String,
    pub condition: ContainerCondition,
}

/// A health check with ECS's defaults already applied by the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// The command to exec: `CMD` args as given, `CMD-SHELL` as `/bin/sh -c <line>`.
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub arn: String,
    pub id: String,
    pub family: String,
    pub revision: i64,
    pub cluster_arn: String,
    pub desired_status: DesiredStatus,
    pub network_mode: NetworkMode,
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
    pub containers: Vec<ContainerDef>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Why the control plane could not resolve the task's secrets: the task
    /// fails to start with this reason.
    #[serde(default)]
    pub secrets_error: Option<String>,
}

impl TaskSpec {
    /// containerd container id of one of this task's containers: deterministic,
    /// so a restarted agent finds what it made.
    pub fn container_id(&self, container: &str) -> String {
        format!("{}-{container}", self.id)
    }
}

/// A container's observed state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerReport {
    pub name: String,
    pub last_status: ContainerStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub runtime_id: Option<String>,
    pub image_digest: Option<String>,
    /// None: the container has no health check.
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    /// The container's metadata endpoint token (kept on this host only, so a
    /// restarted agent serves adopted containers under their old URI).
    #[serde(default)]
    pub metadata_token: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
}

/// A snapshot of a task's observed state; every report carries the whole
/// snapshot, so a lost or repeated report does no harm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReport {
    pub task_arn: String,
    pub last_status: TaskStatus,
    pub containers: Vec<ContainerReport>,
    pub private_ipv4: Option<String>,
    pub mac_address: Option<String>,
    /// Set when the agent decided the stop; None when the control plane asked.
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    pub pull_started_at_ms: Option<i64>,
    pub pull_stopped_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub execution_stopped_at_ms: Option<i64>,
    /// Rolled up from the essential containers' health; None before any
    /// container with a health check runs.
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secret_values() {
        let options = ContainerOptions {
            secrets: ContainerSecrets {
                environment: vec![("DB_PASSWORD".into(), "hunter2".into())],
                registry_login: Some(crate::runtime::RegistryCredentials {
                    username: "alice".into(),
                    password: "s3cret".into(),
                }),
            },
            ..ContainerOptions::default()
        };
        let shown = format!("{options:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(
            shown.contains("DB_PASSWORD") && shown.contains("alice"),
            "{shown}"
        );
        let stored = serde_json::to_string(&options).unwrap();
        let back: ContainerOptions = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, options, "an adopted task keeps its secrets");
    }
}
