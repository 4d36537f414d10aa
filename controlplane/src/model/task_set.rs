//! Task sets: the tasks of a service whose deployments an external controller drives
//! (`deploymentController` EXTERNAL). Each runs one task definition at a share of the
//! service's desired count; the controller creates them, scales them, makes one PRIMARY
//! and deletes the others. The service scheduler only keeps each at its count.

use serde::{Deserialize, Serialize};

pub use berth_ecs::{StabilityStatus, TaskSetStatus};

use super::capacity_provider::CapacityProviderShare;
use super::LaunchType;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSet {
    /// `ecs-svc/` and 19 digits, as ECS names them; its tasks carry it as `startedBy`.
    pub id: String,
    pub arn: String,
    pub external_id: Option<String>,
    pub status: TaskSetStatus,
    pub task_definition: String,
    pub launch_type: LaunchType,
    pub capacity_provider_strategy: Vec<CapacityProviderShare>,
    /// `scale.value` (unit PERCENT of the service's desired count), in thousandths of a
    /// percent: exact, where a float would not be.
    pub scale_millipercent: u32,
    pub computed_desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub stability_status: StabilityStatus,
    pub stability_status_at_ms: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub tags: Vec<(String, String)>,
    /// `networkConfiguration`, `loadBalancers`, `serviceRegistries`, `platformVersion`:
    /// kept and shown as given.
    pub kept: serde_json::Map<String, serde_json::Value>,
}

/// 100 percent, in thousandths of a percent.
pub const FULL_SCALE: u32 = 100_000;

/// The tasks a task set runs for a service that wants `desired`: its share, rounded up
/// as ECS rounds it.
pub fn computed_count(desired: u32, millipercent: u32) -> u32 {
    let share = (u64::from(desired) * u64::from(millipercent.min(FULL_SCALE)))
        .div_ceil(u64::from(FULL_SCALE));
    u32::try_from(share).unwrap_or(desired)
}

impl TaskSet {
    /// Updates its counts from its tasks' (running, pending) and the service's desired
    /// count; whether anything changed.
    pub fn refresh(&mut self, desired: u32, running: u32, pending: u32, now_ms: i64) -> bool {
        let computed = if self.status == TaskSetStatus::Draining {
            0
        } else {
            computed_count(desired, self.scale_millipercent)
        };
        let stability = if running == computed && pending == 0 {
            StabilityStatus::SteadyState
        } else {
            StabilityStatus::Stabilizing
        };
        let before = (
            self.computed_desired_count,
            self.running_count,
            self.pending_count,
            self.stability_status,
        );
        self.computed_desired_count = computed;
        self.running_count = running;
        self.pending_count = pending;
        if stability != self.stability_status {
            self.stability_status = stability;
            self.stability_status_at_ms = now_ms;
        }
        let changed = before != (computed, running, pending, self.stability_status);
        if changed {
            self.updated_at_ms = now_ms;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_rounds_up_and_never_passes_the_service() {
        assert_eq!(computed_count(10, 50_000), 5);
        assert_eq!(computed_count(3, 50_000), 2);
        assert_eq!(computed_count(3, FULL_SCALE), 3);
        assert_eq!(computed_count(3, 0), 0);
        assert_eq!(computed_count(7, 33_300), 3);
        assert_eq!(computed_count(0, FULL_SCALE), 0);
        assert_eq!(computed_count(3, 200_000), 3, "never more than the service");
    }
}
