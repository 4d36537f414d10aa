//! The agent's domain types: what a task should be (from the control plane)
//! and what it is (reported back). Protobuf converts to these at the session edge.

use std::time::Duration;

use serde::{Deserialize, Serialize};

// Every status enum is stored (local state) and shown (logs, metadata) by its
// ECS word: serde and strum take the same names. Records a previous agent
// wrote with the Rust variant names ("Running", "Awsvpc") still load, through
// the aliases.

/// ECS's `desiredStatus` of a task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::Display,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    #[serde(alias = "Running")]
    Running,
    #[serde(alias = "Stopped")]
    Stopped,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A task definition's `networkMode`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum NetworkMode {
    #[serde(alias = "Awsvpc")]
    Awsvpc,
    #[serde(alias = "Bridge")]
    Bridge,
    #[serde(alias = "Host")]
    Host,
    #[serde(alias = "None")]
    None,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// ECS's task `lastStatus`, in lifecycle order (`Ord` follows it).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    #[default]
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The task is on its way down (or there): it will not run again.
    pub fn is_stopping(self) -> bool {
        self >= Self::Stopping
    }
}

/// ECS's container `lastStatus`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerState {
    #[default]
    Pending,
    Running,
    Stopped,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// ECS's `healthStatus` of a container or (rolled up) a task.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Unknown,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// ECS's `TaskStopCode`: why a task stopped.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
}

impl StopCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

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

/// A port mapping's `protocol`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Protocol {
    #[serde(alias = "Tcp")]
    Tcp,
    #[serde(alias = "Udp")]
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
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

/// A `dependsOn` condition.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::Display,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Condition {
    #[serde(alias = "Start")]
    Start,
    #[serde(alias = "Complete")]
    Complete,
    #[serde(alias = "Success")]
    Success,
    #[serde(alias = "Healthy")]
    Healthy,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub container: String,
    pub condition: Condition,
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
    pub last_status: ContainerState,
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
    pub last_status: TaskState,
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

    /// The stored (serde) and shown (strum) name of a value, which must agree.
    fn names<T: Serialize + Into<&'static str> + Copy>(v: T) -> (String, &'static str) {
        (serde_json::to_string(&v).unwrap(), v.into())
    }

    #[test]
    fn statuses_are_stored_and_shown_by_their_ecs_words() {
        let cases: Vec<((String, &str), &str)> = vec![
            (names(TaskState::Provisioning), "PROVISIONING"),
            (names(TaskState::Deprovisioning), "DEPROVISIONING"),
            (names(ContainerState::Pending), "PENDING"),
            (names(HealthStatus::Unhealthy), "UNHEALTHY"),
            (names(StopCode::TaskFailedToStart), "TaskFailedToStart"),
            (
                names(StopCode::ServiceSchedulerInitiated),
                "ServiceSchedulerInitiated",
            ),
            (names(DesiredStatus::Stopped), "STOPPED"),
            (names(NetworkMode::Awsvpc), "awsvpc"),
            (names(Condition::Healthy), "HEALTHY"),
            (names(Protocol::Udp), "udp"),
        ];
        for ((stored, shown), ecs) in cases {
            assert_eq!(stored, format!("\"{ecs}\""));
            assert_eq!(shown, ecs);
        }
        assert_eq!(crate::runtime::ContainerState::NoTask.as_str(), "NO_TASK");
    }

    #[test]
    fn task_states_are_ordered_by_the_lifecycle() {
        use TaskState::*;
        let lifecycle = [
            Provisioning,
            Pending,
            Activating,
            Running,
            Deactivating,
            Stopping,
            Deprovisioning,
            Stopped,
        ];
        assert!(lifecycle.windows(2).all(|w| w[0] < w[1]));
        let stopping: Vec<TaskState> = lifecycle.into_iter().filter(|s| s.is_stopping()).collect();
        assert_eq!(stopping, [Stopping, Deprovisioning, Stopped]);
    }

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
