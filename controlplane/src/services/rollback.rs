//! `StopServiceDeployment` with `ROLLBACK`: a deployment in progress is replaced by
//! one back to the service's last completed revision, as the circuit breaker's
//! rollback does (and shown as a rollback by the service deployments).

use crate::model::service::{RolloutState, ServiceStatus};
use crate::model::service_deployment as sd;
use crate::state::{ControlPlane, StateError};

impl ControlPlane {
    /// Rolls back the deployment `arn` names, if it is the one in progress.
    pub fn roll_back_service_deployment(&self, arn: &str) -> Result<(), StateError> {
        let missing = || {
            StateError::ResourceNotFound(format!("The service deployment '{arn}' does not exist."))
        };
        let (service_arn, id) = sd::parse(arn).ok_or_else(missing)?;
        let (cluster, name) = service_arn
            .split_once(":service/")
            .and_then(|(_, rest)| rest.split_once('/'))
            .ok_or_else(missing)?;
        let now = self.now_ms();
        let mut state = self.lock();
        let mut s = Self::service_ref(&state, cluster, name)
            .map_err(|_| missing())?
            .clone();
        if s.arn != service_arn || !sd::all(&s).any(|d| d.id == id) {
            return Err(missing());
        }
        let in_progress = s.status == ServiceStatus::Active
            && s.primary()
                .is_some_and(|p| p.id == id && p.rollout_state == RolloutState::InProgress);
        if !in_progress {
            return Err(StateError::InvalidParameter(format!(
                "The service deployment '{arn}' is not in progress: only the deployment in progress can be stopped."
            )));
        }
        let Some((td, to)) = s.last_completed.clone() else {
            return Err(StateError::InvalidParameter(
                "The service has no completed deployment to roll back to.".into(),
            ));
        };
        if let Some(p) = s.deployment_mut(&id) {
            p.rollout_state = RolloutState::Failed;
            p.rollout_state_reason = "Stopped by the user (StopServiceDeployment).".into();
            p.updated_at_ms = now;
        }
        s.start_rollback(
            &td,
            format!("Service deployment stopped by the user: rolling back to deploymentId {to}."),
            now,
        );
        self.put_service(&mut state, &s)
    }
}

#[cfg(test)]
mod tests {
    use berth_ecs::{ServiceDeploymentStatus, TaskStatus};

    use crate::model::service::{DeploymentStatus, RolloutState};
    use crate::model::service_deployment::{deployment_arn, status};
    use crate::services::test_support::{redeploy, report_all, service, spec};
    use crate::state::test_support::{add_instance, control_plane_with_clock};

    #[test]
    fn a_deployment_in_progress_rolls_back_to_the_last_completed_one() {
        let (cp, _, _) = control_plane_with_clock();
        let ci = add_instance(&cp, "default");
        cp.create_service(&spec("api", 1)).unwrap();
        cp.reconcile_services().unwrap();
        report_all(&cp, &ci, TaskStatus::Running.as_str());
        cp.reconcile_services().unwrap();
        let first = service(&cp).deployments[0].clone();
        assert_eq!(first.rollout_state, RolloutState::Completed);
        redeploy(&cp).unwrap();
        let s = service(&cp);
        let second = s.deployments[0].clone();
        let arn = deployment_arn(&s.arn, &second.id);
        // The completed one cannot be stopped; the one in progress can.
        let done = deployment_arn(&s.arn, &first.id);
        assert!(cp.roll_back_service_deployment(&done).is_err());
        cp.roll_back_service_deployment(&arn).unwrap();
        let s = service(&cp);
        let back = &s.deployments[0];
        assert!(back.is_rollback);
        assert_eq!(back.status, DeploymentStatus::Primary);
        assert_eq!(back.task_definition, first.task_definition);
        let stopped = s.deployments.iter().find(|d| d.id == second.id).unwrap();
        assert_eq!(
            status(&s, stopped).0,
            ServiceDeploymentStatus::RollbackInProgress
        );
        assert!(cp.roll_back_service_deployment(&arn).is_err(), "once");
    }
}
