//! The reconciler's steps, and what each does to the service itself (the caller carries
//! out the rest: starting and stopping tasks).

use crate::model::service::RolloutState;
use crate::model::Service;

/// One thing the reconciler wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start `count` tasks of the deployment (its task definition).
    Start {
        deployment: String,
        count: u32,
    },
    /// Stop a task with stopCode `ServiceSchedulerInitiated`.
    Stop {
        task: String,
        reason: String,
    },
    /// The task's instance is lost: mark it STOPPED now (stopCode
    /// `ServiceSchedulerInitiated`), since no agent will report it.
    StopLost {
        task: String,
        reason: String,
    },
    /// A task stopped before it ever reached RUNNING: the restart throttle
    /// counts it.
    StartFailed {
        task: String,
    },
    /// A task started after the last start failure reached RUNNING: the
    /// throttle ends.
    EndThrottle,
    /// A stopped (or unhealthy) task that counts against its deployment.
    CountFailure {
        deployment: String,
        task: String,
    },
    SetRollout {
        deployment: String,
        state: RolloutState,
        reason: String,
    },
    /// The circuit breaker rolls back: a new PRIMARY deployment of the last
    /// COMPLETED deployment's task definition.
    Rollback {
        task_definition: String,
        to_deployment: String,
    },
    /// An older deployment without tasks leaves the service.
    Retire {
        deployment: String,
    },
    /// A DRAINING service with no tasks left becomes INACTIVE.
    Inactive,
    /// A DRAINING task set with no tasks left leaves the service.
    RetireTaskSet {
        task_set: String,
    },
    Event(String),
}

/// Applies the steps that change only the service (rollout, events,
/// failures, rollback, retirement, throttle); `Start` and the stops need
/// the control plane and are skipped here.
pub fn apply_to_service(service: &mut Service, step: &Step, now_ms: i64) {
    match step {
        Step::Start { .. } | Step::Stop { .. } | Step::StopLost { .. } => {}
        Step::StartFailed { .. } => service.throttle.record_failure(now_ms),
        Step::EndThrottle => service.throttle = crate::model::service::RestartThrottle::default(),
        Step::CountFailure { deployment, task } => {
            if let Some(d) = service.deployment_mut(deployment) {
                d.failed_tasks += 1;
                d.updated_at_ms = now_ms;
            }
            service.counted_failures.push(task.clone());
        }
        Step::SetRollout {
            deployment,
            state,
            reason,
        } => {
            let mut completed = None;
            if let Some(d) = service.deployment_mut(deployment) {
                d.rollout_state = *state;
                d.rollout_state_reason.clone_from(reason);
                d.updated_at_ms = now_ms;
                if *state == RolloutState::Completed {
                    completed = Some((d.task_definition.clone(), d.id.clone()));
                }
            }
            if completed.is_some() {
                service.last_completed = completed;
            }
        }
        Step::Rollback {
            task_definition,
            to_deployment,
        } => service.start_rollback(
            task_definition,
            format!(
                "ECS deployment circuit breaker: rolling back to deploymentId {to_deployment}."
            ),
            now_ms,
        ),
        Step::Retire { deployment } => service.retire_deployments(now_ms, |d| &d.id == deployment),
        Step::RetireTaskSet { task_set } => service.task_sets.retain(|t| &t.id != task_set),
        Step::Inactive => {
            service.status = crate::model::service::ServiceStatus::Inactive;
            service.retire_deployments(now_ms, |_| true);
        }
        Step::Event(m) => service.push_event(m.clone(), now_ms),
    }
}
