//! Operator commands on container instances: `UpdateContainerInstancesState`
//! (ACTIVE / DRAINING) and `DeregisterContainerInstance`.

use super::instances::InstanceView;
use super::{encode, ControlPlane, ItemFailure, StateError};
use crate::model::{InstanceStatus, StopCode, TaskStatus};
use crate::store::{Table, Write};

/// The stop reason of tasks stopped by a forced deregistration.
pub const DEREGISTERED_REASON: &str = "Container instance deregistered";

impl ControlPlane {
    /// Sets ACTIVE or DRAINING. DRAINING instances get no new tasks (the
    /// scheduler and `StartTask` skip them); their running tasks stay.
    pub fn update_container_instances_state(
        &self,
        cluster: &str,
        refs: &[String],
        status: InstanceStatus,
    ) -> Result<(Vec<InstanceView>, Vec<ItemFailure>), StateError> {
        if !matches!(status, InstanceStatus::Active | InstanceStatus::Draining) {
            return Err(StateError::InvalidParameter(format!(
                "status '{status}' cannot be set: use ACTIVE or DRAINING (DeregisterContainerInstance makes an instance INACTIVE)."
            )));
        }
        let mut state = self.lock();
        let cluster = Self::cluster(&state, cluster)?;
        let arns = self.arns_of(&cluster.arn);
        let cluster = cluster.name.clone();
        let mut changed = Vec::new();
        let mut failures = Vec::new();
        for r in refs {
            match Self::find_instance(&state, &cluster, r) {
                None => failures.push(ItemFailure {
                    arn: arns.container_instance(&cluster, crate::model::arn::resource_id(r)),
                    reason: "MISSING".into(),
                    detail: None,
                }),
                Some(i) if i.status == InstanceStatus::Inactive => failures.push(ItemFailure {
                    arn: i.arn.clone(),
                    reason: InstanceStatus::Inactive.to_string(),
                    detail: Some(
                        "The container instance is deregistered; its agent must register again."
                            .into(),
                    ),
                }),
                Some(i) => {
                    let mut i = i.clone();
                    if i.status != status {
                        i.status = status;
                        i.version += 1;
                    }
                    if !changed
                        .iter()
                        .any(|c: &crate::model::ContainerInstance| c.arn == i.arn)
                    {
                        changed.push(i);
                    }
                }
            }
        }
        let writes: Vec<Write> = changed
            .iter()
            .map(|i| Write::put(Table::ContainerInstances, i.arn.clone(), encode(i)))
            .collect();
        if !writes.is_empty() {
            self.store.apply(&writes)?;
        }
        for i in &changed {
            state.instances.insert(i.arn.clone(), i.clone());
        }
        let views = changed
            .iter()
            .map(|i| Self::instance_view(&state, i))
            .collect();
        Ok((views, failures))
    }

    /// Makes the instance INACTIVE: it leaves the cluster's counts and gets
    /// no tasks, and its agent's certificate is revoked (its session gets an
    /// empty task set, then ends). With tasks still on it this is refused unless
    /// `force`, which also stops them, so nothing keeps running unaccounted for:
    /// they count as stopped at once, since their agent reports nothing more.
    pub fn deregister_container_instance(
        &self,
        cluster: &str,
        reference: &str,
        force: bool,
    ) -> Result<InstanceView, StateError> {
        let mut state = self.lock();
        let cluster = Self::cluster(&state, cluster)?.name.clone();
        let mut instance = Self::find_instance(&state, &cluster, reference)
            .cloned()
            .ok_or_else(|| {
                StateError::InvalidParameter(format!(
                    "Container instance '{reference}' was not found in cluster '{cluster}'. List them with ListContainerInstances."
                ))
            })?;
        if instance.status == InstanceStatus::Inactive {
            return Ok(Self::instance_view(&state, &instance));
        }
        let mut tasks: Vec<_> = state
            .tasks
            .values()
            .filter(|t| {
                t.container_instance_arn.as_deref() == Some(instance.arn.as_str())
                    && !t.is_stopped()
            })
            .cloned()
            .collect();
        if !tasks.is_empty() && !force {
            return Err(StateError::InvalidParameter(format!(
                "Container instance '{}' has {} task(s) that have not stopped: stop them, or deregister with force to stop them with it.",
                instance.id,
                tasks.len()
            )));
        }
        let now = self.now_ms();
        for t in &mut tasks {
            t.request_stop(StopCode::UserInitiated, DEREGISTERED_REASON, now);
            t.last_status = TaskStatus::Stopped;
            t.stopped_at_ms = t.stopped_at_ms.or(Some(now));
        }
        instance.status = InstanceStatus::Inactive;
        instance.version += 1;
        let mut writes = vec![Write::put(
            Table::ContainerInstances,
            instance.arn.clone(),
            encode(&instance),
        )];
        writes.extend(
            tasks
                .iter()
                .map(|t| Write::put(Table::Tasks, t.id.clone(), encode(t))),
        );
        self.store.apply(&writes)?;
        state
            .instances
            .insert(instance.arn.clone(), instance.clone());
        for t in tasks {
            state.tasks.insert(t.id.clone(), t);
        }
        Self::notify(&state, [instance.arn.clone()]);
        Ok(Self::instance_view(&state, &instance))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LaunchType;
    use crate::state::test_support::{add_instance, fleet, registration, run};

    #[test]
    fn draining_instances_get_no_new_tasks() {
        let (cp, a) = fleet();
        let b = add_instance(&cp, "default");
        let (views, failures) = cp
            .update_container_instances_state(
                "default",
                &[a.clone(), "nope".into()],
                "DRAINING".into(),
            )
            .unwrap();
        assert_eq!(views[0].instance.status, "DRAINING");
        assert_eq!(views[0].instance.version, 2);
        assert_eq!(failures[0].reason, "MISSING");
        for _ in 0..2 {
            let out = cp.run_task(&run("default", LaunchType::Ec2, 1)).unwrap();
            assert_eq!(
                out.tasks[0].container_instance_arn.as_deref(),
                Some(b.as_str())
            );
        }
        // Now b is full and a drains: nothing can take a third task.
        let out = cp.run_task(&run("default", LaunchType::Ec2, 1)).unwrap();
        assert_eq!(out.failures[0].reason, "RESOURCE:MEMORY");
        let listed = cp
            .list_container_instances("default", Some("DRAINING".into()), None)
            .unwrap();
        assert_eq!(listed, vec![a.clone()]);
        cp.update_container_instances_state("default", std::slice::from_ref(&a), "ACTIVE".into())
            .unwrap();
        let out = cp.run_task(&run("default", LaunchType::Ec2, 1)).unwrap();
        assert_eq!(
            out.tasks[0].container_instance_arn.as_deref(),
            Some(a.as_str())
        );
        assert!(matches!(
            cp.update_container_instances_state("default", &[a], "INACTIVE".into()),
            Err(StateError::InvalidParameter(m)) if m.contains("DeregisterContainerInstance")
        ));
    }

    #[test]
    fn deregister_refuses_live_tasks_unless_forced() {
        let (cp, a) = fleet();
        let task = cp
            .run_task(&run("default", LaunchType::Ec2, 1))
            .unwrap()
            .tasks
            .remove(0);
        let err = cp
            .deregister_container_instance("default", &a, false)
            .unwrap_err();
        assert!(err.to_string().contains("force"), "{err}");
        let view = cp
            .deregister_container_instance("default", &a, true)
            .unwrap();
        assert_eq!(view.instance.status, "INACTIVE");
        let (tasks, _) = cp
            .describe_tasks("default", std::slice::from_ref(&task.arn))
            .unwrap();
        assert_eq!(tasks[0].desired_status, "STOPPED");
        assert_eq!(
            tasks[0].stopped_reason.as_deref(),
            Some(DEREGISTERED_REASON)
        );
        // Its agent's certificate is revoked, so no report comes: the task counts as
        // stopped now, and the agent's last task set is empty (it stops what it runs).
        assert_eq!(tasks[0].last_status, TaskStatus::Stopped);
        assert!(cp.desired_tasks(&a).is_empty());
        assert!(cp.instance_revoked(&a));
        assert!(cp
            .list_container_instances("default", None, None)
            .unwrap()
            .is_empty());
        let (found, _) = cp.describe_clusters("us-east-1", &["default".into()]);
        assert_eq!(found[0].1.registered_instances, 0);
        // Deregistering again is harmless; unknown ones are named.
        assert!(cp
            .deregister_container_instance("default", &a, false)
            .is_ok());
        assert!(matches!(
            cp.deregister_container_instance("default", "ghost", false),
            Err(StateError::InvalidParameter(m)) if m.contains("'ghost'")
        ));
    }

    #[test]
    fn a_deregistered_instance_stays_revoked() {
        let (cp, a) = fleet();
        let task = cp
            .run_task(&run("default", LaunchType::Ec2, 1))
            .unwrap()
            .tasks
            .remove(0);
        let rx = cp.open_session(&a).unwrap();
        cp.close_session(&a, &rx);
        cp.deregister_container_instance("default", &a, true)
            .unwrap();
        let (tasks, _) = cp.describe_tasks("default", &[task.arn]).unwrap();
        assert_eq!(tasks[0].last_status, "STOPPED");
        assert!(cp.desired_tasks(&a).is_empty());
        // The agent comes back with its certificate's ARN: refused, as is a session.
        let mut r = registration("default", true);
        r.container_instance_arn = Some(a.clone());
        let e = cp.register_instance(&r).unwrap_err().to_string();
        assert!(e.contains("revoked") && e.contains("join again"), "{e}");
        assert!(cp.open_session(&a).is_err());
        // A certificate made for another cluster does not register here.
        r.container_instance_arn = Some(cp.new_instance_arn("other"));
        let e = cp.register_instance(&r).unwrap_err().to_string();
        assert!(e.contains("not of cluster 'default'"), "{e}");
        // One made for this cluster registers under the ARN it names.
        let fresh = cp.new_instance_arn("default");
        r.container_instance_arn = Some(fresh.clone());
        assert_eq!(cp.register_instance(&r).unwrap().arn, fresh);
        assert!(!cp.instance_revoked(&fresh));
    }
}
