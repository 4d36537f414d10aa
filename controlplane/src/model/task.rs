//! Tasks: one placement of a task definition, desired status set by the
//! control plane, last status reported by the agent.

use serde::{Deserialize, Serialize};

use super::placement::{PlacementConstraint, PlacementStrategy};
use super::{ContainerDefinition, Resources};
use berth_ecs::{ContainerStatus, DesiredStatus, HealthStatus, StopCode, TaskStatus};

pub use berth_ecs::LaunchType;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskContainer {
    /// The effective definition: the task definition's container with `RunTask` overrides applied.
    pub definition: ContainerDefinition,
    pub arn: String,
    pub last_status: ContainerStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub runtime_id: Option<String>,
    pub image_digest: Option<String>,
    /// None without a health check.
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    /// Host ports the agent published the container's ports on.
    #[serde(default)]
    pub network_bindings: Vec<super::ports::NetworkBinding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub arn: String,
    pub cluster: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub family: String,
    pub revision: u32,
    pub container_instance_arn: Option<String>,
    pub launch_type: LaunchType,
    /// The capacity provider whose host runs the task, when a strategy
    /// placed it (`capacityProviderName`).
    #[serde(default)]
    pub capacity_provider_name: Option<String>,
    pub network_mode: super::NetworkMode,
    pub desired_status: DesiredStatus,
    pub last_status: TaskStatus,
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
    /// What the scheduler reserved on the instance.
    pub reserved: Resources,
    pub containers: Vec<TaskContainer>,
    pub started_by: Option<String>,
    pub group: Option<String>,
    /// The request's placement strategy and constraints, as placed.
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    /// `RunTask` `overrides` as given, echoed back by `DescribeTasks`.
    pub overrides: serde_json::Value,
    pub tags: Vec<(String, String)>,
    pub enable_execute_command: bool,
    pub created_at_ms: i64,
    pub pull_started_at_ms: Option<i64>,
    pub pull_stopped_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub stopping_at_ms: Option<i64>,
    pub stopped_at_ms: Option<i64>,
    pub execution_stopped_at_ms: Option<i64>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    pub attachment_id: String,
    pub private_ipv4: Option<String>,
    pub mac_address: Option<String>,
    pub version: i64,
    /// Rolled up from the essential containers' health checks.
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    /// The task definition's volumes, for the agent.
    #[serde(default)]
    pub volumes: Vec<super::container_options::Volume>,
    /// Scale-in protection (`UpdateTaskProtection`) until this time.
    #[serde(default)]
    pub protected_until_ms: Option<i64>,
    /// Told to stop while behind a load balancer: its agent keeps it running until
    /// this time, while its targets drain (ECS's DEACTIVATING).
    #[serde(default)]
    pub drain_until_ms: Option<i64>,
    /// Its load balancer targets' health, for a service task behind load balancers.
    #[serde(default)]
    pub target_health: Option<TargetHealth>,
}

/// A task's targets' health as its load balancers' checks see it: HEALTHY when every
/// target is, UNHEALTHY (naming the group) when one is, else UNKNOWN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub status: HealthStatus,
    pub target_group_arn: String,
}

/// An agent's report of a container, as a domain value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerReport {
    pub name: String,
    pub last_status: ContainerStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub runtime_id: Option<String>,
    pub image_digest: Option<String>,
    pub health_status: Option<HealthStatus>,
    pub network_bindings: Vec<super::ports::NetworkBinding>,
}

/// An agent's report of a task transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    pub task_arn: String,
    pub last_status: TaskStatus,
    pub containers: Vec<ContainerReport>,
    pub private_ipv4: Option<String>,
    pub mac_address: Option<String>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    pub pull_started_at_ms: Option<i64>,
    pub pull_stopped_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub execution_stopped_at_ms: Option<i64>,
    pub health_status: Option<HealthStatus>,
}

impl ContainerReport {
    /// A report of `name` at `last_status`, nothing else known.
    pub fn new(name: &str, last_status: ContainerStatus) -> Self {
        Self {
            name: name.to_owned(),
            last_status,
            exit_code: None,
            reason: None,
            runtime_id: None,
            image_digest: None,
            health_status: None,
            network_bindings: vec![],
        }
    }
}

impl TaskReport {
    /// A report of the task `task_arn` at `last_status`, nothing else known.
    pub fn new(task_arn: &str, last_status: TaskStatus) -> Self {
        Self {
            task_arn: task_arn.to_owned(),
            last_status,
            containers: vec![],
            private_ipv4: None,
            mac_address: None,
            stop_code: None,
            stopped_reason: None,
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            started_at_ms: None,
            execution_stopped_at_ms: None,
            health_status: None,
        }
    }
}

/// For tests: a report of nothing in particular, to fill in with `..`.
#[cfg(test)]
impl Default for TaskReport {
    fn default() -> Self {
        Self::new("", TaskStatus::Provisioning)
    }
}

#[cfg(test)]
impl Default for ContainerReport {
    fn default() -> Self {
        Self::new("", ContainerStatus::Pending)
    }
}

impl Task {
    /// Protected from scale-in and deployments at `now_ms`.
    pub fn is_protected(&self, now_ms: i64) -> bool {
        self.protected_until_ms.is_some_and(|until| until > now_ms)
    }

    pub fn is_stopped(&self) -> bool {
        self.last_status == TaskStatus::Stopped
    }

    /// On its way up: placed, not yet RUNNING (ECS's pending count).
    pub fn is_pending(&self) -> bool {
        self.last_status.is_pending()
    }

    /// Sets desired status STOPPED with ECS's stop code and reason, unless the
    /// task is already on its way down (the first reason wins, as in ECS).
    /// Returns whether anything changed.
    pub fn request_stop(&mut self, stop_code: StopCode, reason: &str, now_ms: i64) -> bool {
        if self.desired_status == DesiredStatus::Stopped {
            return false;
        }
        self.desired_status = DesiredStatus::Stopped;
        self.stop_code = Some(stop_code);
        self.stopped_reason = Some(reason.into());
        self.stopping_at_ms = Some(now_ms);
        self.version += 1;
        true
    }

    /// Host ports the task holds on its instance: its static ones, and the
    /// ones the agent reports it published (dynamic ones included).
    pub fn host_ports(&self) -> Vec<super::ports::HostPort> {
        let mut ports = super::ports::static_host_ports(
            self.containers.iter().map(|c| &c.definition),
            self.network_mode,
        );
        ports.extend(
            self.containers
                .iter()
                .flat_map(|c| &c.network_bindings)
                .map(|b| (b.protocol, b.host_port)),
        );
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Folds an agent report into the task. Returns whether anything changed.
    pub fn apply_report(&mut self, report: &TaskReport, now_ms: i64) -> bool {
        let before = self.clone();
        self.last_status = self.last_status.max(report.last_status);
        for c in &report.containers {
            if let Some(tc) = self
                .containers
                .iter_mut()
                .find(|tc| tc.definition.name == c.name)
            {
                tc.last_status = tc.last_status.max(c.last_status);
                tc.exit_code = c.exit_code.or(tc.exit_code);
                if c.reason.is_some() {
                    tc.reason.clone_from(&c.reason);
                }
                if c.runtime_id.is_some() {
                    tc.runtime_id.clone_from(&c.runtime_id);
                }
                if c.image_digest.is_some() {
                    tc.image_digest.clone_from(&c.image_digest);
                }
                if c.health_status.is_some() {
                    tc.health_status = c.health_status;
                }
                if !c.network_bindings.is_empty() {
                    tc.network_bindings.clone_from(&c.network_bindings);
                }
            }
        }
        if report.health_status.is_some() {
            self.health_status = report.health_status;
        }
        if report.private_ipv4.is_some() {
            self.private_ipv4.clone_from(&report.private_ipv4);
            self.mac_address.clone_from(&report.mac_address);
        }
        self.pull_started_at_ms = self.pull_started_at_ms.or(report.pull_started_at_ms);
        self.pull_stopped_at_ms = self.pull_stopped_at_ms.or(report.pull_stopped_at_ms);
        self.started_at_ms = self.started_at_ms.or(report.started_at_ms);
        if self.last_status == TaskStatus::Stopped {
            // The agent stopped it on its own (essential exit, failed start):
            // its reason becomes the task's, unless someone asked first.
            if self.desired_status != DesiredStatus::Stopped {
                self.desired_status = DesiredStatus::Stopped;
                self.stop_code = report.stop_code;
                self.stopped_reason.clone_from(&report.stopped_reason);
            }
            self.execution_stopped_at_ms = self
                .execution_stopped_at_ms
                .or(report.execution_stopped_at_ms)
                .or(Some(now_ms));
            self.stopping_at_ms = self.stopping_at_ms.or(Some(now_ms));
            self.stopped_at_ms = self.stopped_at_ms.or(Some(now_ms));
        }
        let changed = *self != before;
        if changed {
            self.version += 1;
        }
        changed
    }
}

/// A placed, provisioning task of one container (`web`), for unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::model::NetworkMode;

    pub(crate) fn task() -> Task {
        Task {
            id: "t1".into(),
            arn: "arn:t1".into(),
            cluster: "default".into(),
            cluster_arn: "arn:c".into(),
            task_definition_arn: "arn:td".into(),
            family: "web".into(),
            revision: 1,
            container_instance_arn: Some("arn:ci".into()),
            launch_type: LaunchType::Ec2,
            capacity_provider_name: None,
            network_mode: NetworkMode::Awsvpc,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Provisioning,
            cpu: None,
            memory_mib: None,
            reserved: Resources::default(),
            containers: vec![TaskContainer {
                definition: crate::model::task_definition::tests_support::container("web"),
                arn: "arn:c/web".into(),
                last_status: ContainerStatus::Pending,
                exit_code: None,
                reason: None,
                runtime_id: None,
                image_digest: None,
                health_status: None,
                network_bindings: vec![],
            }],
            started_by: None,
            group: None,
            placement_strategy: vec![],
            placement_constraints: vec![],
            overrides: serde_json::json!({}),
            tags: vec![],
            enable_execute_command: false,
            created_at_ms: 0,
            protected_until_ms: None,
            drain_until_ms: None,
            target_health: None,
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            started_at_ms: None,
            stopping_at_ms: None,
            stopped_at_ms: None,
            execution_stopped_at_ms: None,
            stop_code: None,
            stopped_reason: None,
            attachment_id: "att".into(),
            private_ipv4: None,
            mac_address: None,
            version: 1,
            health_status: None,
            volumes: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::task;
    use super::*;

    #[test]
    fn status_never_moves_backwards() {
        let mut t = task();
        let running = TaskReport::new("arn:t1", TaskStatus::Running);
        assert!(t.apply_report(&running, 5));
        let pending = TaskReport::new("arn:t1", TaskStatus::Pending);
        assert!(!t.apply_report(&pending, 6));
        assert_eq!(t.last_status, TaskStatus::Running);
        assert_eq!(t.version, 2);
    }

    #[test]
    fn agent_stop_carries_its_reason_unless_user_stopped_first() {
        let mut t = task();
        let stopped = TaskReport {
            stop_code: Some(StopCode::EssentialContainerExited),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: vec![ContainerReport {
                exit_code: Some(3),
                ..ContainerReport::new("web", ContainerStatus::Stopped)
            }],
            ..TaskReport::new("arn:t1", TaskStatus::Stopped)
        };
        t.apply_report(&stopped, 9);
        assert_eq!(t.desired_status, DesiredStatus::Stopped);
        assert_eq!(t.stop_code, Some(StopCode::EssentialContainerExited));
        assert_eq!(t.containers[0].exit_code, Some(3));
        assert_eq!(t.stopped_at_ms, Some(9));

        let mut t = task();
        assert!(t.request_stop(StopCode::UserInitiated, "bye", 3));
        assert!(!t.request_stop(StopCode::UserInitiated, "again", 4));
        t.apply_report(&stopped, 9);
        assert_eq!(t.stop_code, Some(StopCode::UserInitiated));
        assert_eq!(t.stopped_reason.as_deref(), Some("bye"));
    }
}
