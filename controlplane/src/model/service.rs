//! Services: keep N copies of a task definition running, replaced through
//! deployments. The reconciler in `crate::services` drives them.

use serde::{Deserialize, Serialize};

use super::capacity_provider::CapacityProviderShare;
use super::placement::{PlacementConstraint, PlacementStrategy};
use super::LaunchType;

pub use berth_ecs::{DeploymentStatus, RolloutState, SchedulingStrategy, ServiceStatus};

/// ECS keeps the newest 100 events of a service.
pub const MAX_EVENTS: usize = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentConfiguration {
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub circuit_breaker: CircuitBreaker,
}

impl Default for DeploymentConfiguration {
    fn default() -> Self {
        Self {
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            circuit_breaker: CircuitBreaker::default(),
        }
    }
}

impl DeploymentConfiguration {
    /// The fewest healthy tasks a deployment may leave: ECS rounds up.
    pub fn minimum_healthy(&self, desired: u32) -> u32 {
        (desired * self.minimum_healthy_percent).div_ceil(100)
    }

    /// The most tasks (any state but STOPPED) at once: ECS rounds down.
    pub fn maximum_tasks(&self, desired: u32) -> u32 {
        desired * self.maximum_percent / 100
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.minimum_healthy_percent > 100 {
            return Err(format!(
                "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100, got {}.",
                self.minimum_healthy_percent
            ));
        }
        if !(100..=400).contains(&self.maximum_percent) {
            return Err(format!(
                "deploymentConfiguration.maximumPercent must be between 100 and 400, got {}.",
                self.maximum_percent
            ));
        }
        if self.minimum_healthy_percent == 100 && self.maximum_percent == 100 {
            return Err("deploymentConfiguration: with minimumHealthyPercent 100, maximumPercent must be above 100, or no task could ever be replaced.".into());
        }
        Ok(())
    }
}

/// The deployment circuit breaker's failed-task threshold, as ECS computes
/// it: half the desired count, at least 3 and at most 200.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// Consecutive start failures before restarts are delayed: a one-off pull
/// error or a bad instance should not slow the service down.
pub const FREE_RESTARTS: u32 = 2;
/// The first delay, doubled with each further failure.
pub const RESTART_DELAY_BASE_MS: i64 = 10_000;
/// ECS documents its ceiling as 27 minutes.
pub const RESTART_DELAY_MAX_MS: i64 = 27 * 60 * 1000;

/// ECS's service throttle: when service tasks keep stopping before they
/// ever reach RUNNING (image pull errors, no resources, bad volumes), the
/// time between restarts grows, up to 27 minutes; a task that reaches
/// RUNNING, or a new deployment, ends it. Tasks that fail after RUNNING
/// (a command that exits at once) are not throttled, as in ECS: the
/// deployment circuit breaker is what catches those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartThrottle {
    /// Start failures since the last task that reached RUNNING.
    pub failures: u32,
    pub last_failure_ms: i64,
    /// No service task starts before this time.
    pub not_before_ms: i64,
}

/// The wait before the next start after `failures` consecutive start
/// failures: none for the first `FREE_RESTARTS`, then 10 s doubling.
pub fn restart_delay_ms(failures: u32) -> i64 {
    if failures <= FREE_RESTARTS {
        return 0;
    }
    let doublings = (failures - FREE_RESTARTS - 1).min(20);
    (RESTART_DELAY_BASE_MS << doublings).min(RESTART_DELAY_MAX_MS)
}

impl RestartThrottle {
    pub fn record_failure(&mut self, now_ms: i64) {
        self.failures += 1;
        self.last_failure_ms = now_ms;
        self.not_before_ms = now_ms + restart_delay_ms(self.failures);
    }

    pub fn is_throttling(&self, now_ms: i64) -> bool {
        now_ms < self.not_before_ms
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// `ecs-svc/` and 19 digits; service tasks carry it as `startedBy`.
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition: String,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    pub rollout_state: RolloutState,
    pub rollout_state_reason: String,
    pub launch_type: LaunchType,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Started by the circuit breaker: if it fails too, it is not rolled back again.
    #[serde(default)]
    pub is_rollback: bool,
    /// Non-empty: the deployment's tasks are split over these providers
    /// and `launch_type` is not used, as ECS shows it.
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderShare>,
    /// When it left the service's deployments (its tasks were all replaced, or the
    /// service was deleted).
    #[serde(default)]
    pub finished_at_ms: Option<i64>,
    /// The deployments running when this one started (`sourceServiceRevisions`).
    #[serde(default)]
    pub replaced: Vec<String>,
}

impl Deployment {
    /// A new PRIMARY deployment, `IN_PROGRESS`.
    pub fn new(task_definition: &str, desired: u32, launch_type: LaunchType, now_ms: i64) -> Self {
        let id = new_deployment_id();
        Self {
            rollout_state_reason: format!("ECS deployment {id} in progress."),
            id,
            status: DeploymentStatus::Primary,
            task_definition: task_definition.into(),
            desired_count: desired,
            pending_count: 0,
            running_count: 0,
            failed_tasks: 0,
            rollout_state: RolloutState::InProgress,
            launch_type,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            is_rollback: false,
            finished_at_ms: None,
            replaced: vec![],
            capacity_provider_strategy: vec![],
        }
    }

    /// The deployment places its tasks with this capacity provider strategy.
    #[must_use]
    pub fn with_capacity_provider_strategy(mut self, strategy: Vec<CapacityProviderShare>) -> Self {
        self.capacity_provider_strategy = strategy;
        self
    }
}

/// `ecs-svc/` and 19 random digits, as ECS names deployments.
pub fn new_deployment_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let digits: String = (0..19)
        .map(|i| {
            // No leading zero, so the number keeps its 19 digits.
            let d: u8 = if i == 0 {
                rng.random_range(1..10)
            } else {
                rng.random_range(0..10)
            };
            char::from(b'0' + d)
        })
        .collect();
    format!("ecs-svc/{digits}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub id: String,
    pub created_at_ms: i64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub arn: String,
    pub cluster: String,
    pub cluster_arn: String,
    /// The PRIMARY deployment's task definition ARN.
    pub task_definition: String,
    pub desired_count: u32,
    pub launch_type: LaunchType,
    pub status: ServiceStatus,
    pub deployment_configuration: DeploymentConfiguration,
    pub health_check_grace_period_seconds: Option<u32>,
    pub enable_execute_command: bool,
    pub tags: Vec<(String, String)>,
    /// PRIMARY first.
    pub deployments: Vec<Deployment>,
    /// Newest first, at most `MAX_EVENTS`.
    pub events: Vec<ServiceEvent>,
    /// The task definition of the last deployment that COMPLETED, and its
    /// id: what a circuit-breaker rollback goes back to.
    pub last_completed: Option<(String, String)>,
    /// Tasks already counted as failures of their deployment, so a failure
    /// counts once; pruned as stopped tasks are purged.
    pub counted_failures: Vec<String>,
    pub created_at_ms: i64,
    /// Restart backoff for tasks that fail to start.
    #[serde(default)]
    pub throttle: RestartThrottle,
    /// Non-empty: tasks are split over these providers (the cluster's
    /// default strategy when the service named neither it nor a launch
    /// type), and `launch_type` is not used.
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderShare>,
    /// How the service's tasks are placed, as `RunTask` places them.
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    /// Deployments that have left `deployments`, newest first, at most
    /// `MAX_PAST_DEPLOYMENTS`: what `ListServiceDeployments` shows besides the current.
    #[serde(default)]
    pub past_deployments: Vec<Deployment>,
    /// Fields a client gave that Berth keeps and shows but does not act on yet
    /// (`loadBalancers`, `propagateTags`, ...; see `api::ecs::services::KEPT`), so that
    /// nothing sent is dropped silently.
    #[serde(default)]
    pub kept: serde_json::Map<String, serde_json::Value>,
    /// DAEMON: one task on each eligible instance, and `desired_count` follows them.
    #[serde(default)]
    pub scheduling_strategy: SchedulingStrategy,
    /// With the EXTERNAL deployment controller, the service's tasks are its task sets'
    /// (and it has no deployments).
    #[serde(default)]
    pub task_sets: Vec<super::task_set::TaskSet>,
}

/// How many finished deployments a service keeps for `ListServiceDeployments`.
pub const MAX_PAST_DEPLOYMENTS: usize = 25;

impl Service {
    /// The store key: unique per cluster.
    pub fn key(&self) -> String {
        key(&self.cluster, &self.name)
    }

    /// The group service tasks carry.
    pub fn group(&self) -> String {
        format!("service:{}", self.name)
    }

    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
    }

    pub fn deployment_mut(&mut self, id: &str) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.id == id)
    }

    /// Records an event (newest first, capped as ECS caps them).
    pub fn push_event(&mut self, message: String, now_ms: i64) {
        self.events.insert(
            0,
            ServiceEvent {
                id: uuid::Uuid::new_v4().to_string(),
                created_at_ms: now_ms,
                message,
            },
        );
        self.events.truncate(MAX_EVENTS);
    }

    /// Makes `deployment` the PRIMARY one; the previous PRIMARY goes on as
    /// ACTIVE until its tasks are replaced.
    pub fn start_deployment(&mut self, mut deployment: Deployment) {
        deployment.replaced = self.deployments.iter().map(|d| d.id.clone()).collect();
        for d in &mut self.deployments {
            d.status = DeploymentStatus::Active;
        }
        self.task_definition.clone_from(&deployment.task_definition);
        self.deployments.insert(0, deployment);
        // As in ECS, a new deployment ends the throttle at once.
        self.throttle = RestartThrottle::default();
    }

    /// Starts a deployment back to `task_definition` (a rollback: it is not rolled back
    /// again if it fails), `reason` its rollout reason.
    pub fn start_rollback(&mut self, task_definition: &str, reason: String, now_ms: i64) {
        let mut d = Deployment::new(
            task_definition,
            self.desired_count,
            self.launch_type,
            now_ms,
        )
        .with_capacity_provider_strategy(self.capacity_provider_strategy.clone());
        d.rollout_state_reason = reason;
        d.is_rollback = true;
        self.start_deployment(d);
    }

    /// Moves the deployments `retire` picks to the past ones, finished at `now_ms`.
    pub fn retire_deployments(&mut self, now_ms: i64, retire: impl Fn(&Deployment) -> bool) {
        let (gone, kept): (Vec<Deployment>, Vec<Deployment>) =
            std::mem::take(&mut self.deployments)
                .into_iter()
                .partition(retire);
        self.deployments = kept;
        for mut d in gone {
            d.finished_at_ms = Some(now_ms);
            self.past_deployments.insert(0, d);
        }
        self.past_deployments.truncate(MAX_PAST_DEPLOYMENTS);
    }

    pub fn running_count(&self) -> u32 {
        self.deployments
            .iter()
            .map(|d| d.running_count)
            .sum::<u32>()
            + self.task_sets.iter().map(|t| t.running_count).sum::<u32>()
    }

    pub fn pending_count(&self) -> u32 {
        self.deployments
            .iter()
            .map(|d| d.pending_count)
            .sum::<u32>()
            + self.task_sets.iter().map(|t| t.pending_count).sum::<u32>()
    }

    /// Whether an external controller drives its deployments through task sets.
    pub fn is_external(&self) -> bool {
        is_external(&self.kept)
    }
}

/// Whether kept service fields name the EXTERNAL deployment controller.
pub fn is_external(kept: &serde_json::Map<String, serde_json::Value>) -> bool {
    kept.get("deploymentController")
        .and_then(|c| c.get("type"))
        .and_then(serde_json::Value::as_str)
        == Some("EXTERNAL")
}

pub fn key(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

/// ECS's rules for service names: 1-255 letters, digits, hyphens and underscores.
pub fn validate_service_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "serviceName '{name}' is not valid: use 1-255 letters, numbers, hyphens and underscores."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_threshold_as_ecs() {
        let c = DeploymentConfiguration::default();
        assert_eq!((c.minimum_healthy(3), c.maximum_tasks(3)), (3, 6));
        let half = DeploymentConfiguration {
            minimum_healthy_percent: 50,
            maximum_percent: 100,
            ..c
        };
        // 1.5 rounds up, 3 * 150% = 4.5 rounds down.
        assert_eq!(half.minimum_healthy(3), 2);
        let odd = DeploymentConfiguration {
            maximum_percent: 150,
            ..c
        };
        assert_eq!(odd.maximum_tasks(3), 4);
        assert_eq!(failure_threshold(1), 3);
        assert_eq!(failure_threshold(10), 5);
        assert_eq!(failure_threshold(1000), 200);
        assert!(half.validate().is_ok());
        let stuck = DeploymentConfiguration {
            maximum_percent: 100,
            ..c
        };
        assert!(stuck.validate().is_err());
    }

    #[test]
    fn restart_delay_grows_to_the_ecs_ceiling() {
        assert_eq!(restart_delay_ms(1), 0);
        assert_eq!(restart_delay_ms(2), 0);
        assert_eq!(restart_delay_ms(3), 10_000);
        assert_eq!(restart_delay_ms(4), 20_000);
        assert_eq!(restart_delay_ms(5), 40_000);
        assert_eq!(restart_delay_ms(12), RESTART_DELAY_MAX_MS);
        assert_eq!(restart_delay_ms(u32::MAX), RESTART_DELAY_MAX_MS);
        let mut t = RestartThrottle::default();
        for _ in 0..3 {
            t.record_failure(100);
        }
        assert!(t.is_throttling(100 + 9_999));
        assert!(!t.is_throttling(100 + 10_000));
    }

    #[test]
    fn deployment_ids_look_like_ecs() {
        let id = new_deployment_id();
        let digits = id.strip_prefix("ecs-svc/").unwrap();
        assert_eq!(digits.len(), 19);
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
        assert!(validate_service_name("web_1-a").is_ok());
        assert!(validate_service_name("web 1").is_err());
    }
}
