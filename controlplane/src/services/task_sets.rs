//! Task sets of services whose deployments an external controller drives (the
//! `deploymentController` EXTERNAL): create, scale, make PRIMARY, delete, describe. The
//! reconciler keeps each at its computed count.

use super::commands::{deployable, launch_types, service_capacity};
use crate::model::service::{new_deployment_id, ServiceStatus};
use crate::model::task_set::{computed_count, StabilityStatus, TaskSet, TaskSetStatus};
use crate::model::Service;
use crate::state::{Capacity, ControlPlane, ItemFailure, State, StateError};

/// A validated `CreateTaskSet` request.
#[derive(Debug, Clone)]
pub struct TaskSetSpec {
    pub cluster: String,
    pub service: String,
    pub task_definition: String,
    pub external_id: Option<String>,
    pub capacity: Capacity,
    pub scale_millipercent: u32,
    pub tags: Vec<(String, String)>,
    pub kept: serde_json::Map<String, serde_json::Value>,
}

/// The service's task set named by id or ARN.
fn find<'a>(s: &'a mut Service, reference: &str) -> Result<&'a mut TaskSet, StateError> {
    let name = s.name.clone();
    s.task_sets
        .iter_mut()
        .find(|t| t.id == reference || t.arn == reference)
        .ok_or_else(|| {
            StateError::TaskSetNotFound(format!(
                "The specified task set '{reference}' does not exist in service '{name}'. List them with DescribeTaskSets."
            ))
        })
}

impl ControlPlane {
    /// The ACTIVE service of `cluster` an external controller drives.
    fn external_service(
        state: &State,
        cluster: &str,
        service: &str,
    ) -> Result<Service, StateError> {
        let cluster = Self::cluster(state, cluster)?.name.clone();
        let s = Self::service_ref(state, &cluster, service)?.clone();
        if s.status != ServiceStatus::Active {
            return Err(StateError::ServiceNotActive(s.name));
        }
        if !s.is_external() {
            return Err(StateError::InvalidParameter(format!(
                "Service '{}' does not use the EXTERNAL deployment controller: task sets are for services created with deploymentController EXTERNAL. Deploy it with UpdateService.",
                s.name
            )));
        }
        Ok(s)
    }

    pub fn create_task_set(&self, spec: &TaskSetSpec) -> Result<TaskSet, StateError> {
        let mut state = self.lock();
        let mut s = Self::external_service(&state, &spec.cluster, &spec.service)?;
        let cluster = Self::cluster(&state, &s.cluster)?.clone();
        let (launch_type, strategy) = service_capacity(&cluster, &spec.capacity)?;
        let td = deployable(
            &state,
            &spec.task_definition,
            &launch_types(launch_type, &strategy),
        )?
        .arn
        .clone();
        let now = self.now_ms();
        let id = new_deployment_id();
        let first = s.task_sets.is_empty();
        let ts = TaskSet {
            arn: self.arns_of(&s.arn).task_set(&s.cluster, &s.name, &id),
            id,
            external_id: spec.external_id.clone(),
            // The first task set serves the service; later ones wait for
            // UpdateServicePrimaryTaskSet.
            status: if first {
                TaskSetStatus::Primary
            } else {
                TaskSetStatus::Active
            },
            task_definition: td.clone(),
            launch_type,
            capacity_provider_strategy: strategy,
            scale_millipercent: spec.scale_millipercent,
            computed_desired_count: computed_count(s.desired_count, spec.scale_millipercent),
            running_count: 0,
            pending_count: 0,
            stability_status: StabilityStatus::Stabilizing,
            stability_status_at_ms: now,
            created_at_ms: now,
            updated_at_ms: now,
            tags: spec.tags.clone(),
            kept: spec.kept.clone(),
        };
        if first {
            s.task_definition = td;
        }
        s.task_sets.push(ts.clone());
        self.put_service(&mut state, &s)?;
        Ok(ts)
    }

    /// Sets a task set's scale (percent of the service's desired count).
    pub fn update_task_set(
        &self,
        cluster: &str,
        service: &str,
        task_set: &str,
        scale_millipercent: u32,
    ) -> Result<TaskSet, StateError> {
        let mut state = self.lock();
        let mut s = Self::external_service(&state, cluster, service)?;
        let desired = s.desired_count;
        let now = self.now_ms();
        let ts = find(&mut s, task_set)?;
        if ts.status == TaskSetStatus::Draining {
            return Err(StateError::InvalidParameter(format!(
                "Task set '{}' is being deleted; it cannot be scaled.",
                ts.id
            )));
        }
        ts.scale_millipercent = scale_millipercent;
        ts.computed_desired_count = computed_count(desired, scale_millipercent);
        ts.updated_at_ms = now;
        let out = ts.clone();
        self.put_service(&mut state, &s)?;
        Ok(out)
    }

    /// Makes the task set PRIMARY (the service's task definition is now its); the PRIMARY
    /// one before becomes ACTIVE.
    pub fn update_service_primary_task_set(
        &self,
        cluster: &str,
        service: &str,
        task_set: &str,
    ) -> Result<TaskSet, StateError> {
        let mut state = self.lock();
        let mut s = Self::external_service(&state, cluster, service)?;
        let now = self.now_ms();
        let id = find(&mut s, task_set)?.id.clone();
        let mut primary = None;
        for ts in &mut s.task_sets {
            if ts.id == id {
                if ts.status == TaskSetStatus::Draining {
                    return Err(StateError::InvalidParameter(format!(
                        "Task set '{id}' is being deleted; it cannot become the primary task set."
                    )));
                }
                ts.status = TaskSetStatus::Primary;
                primary = Some(ts.clone());
            } else if ts.status == TaskSetStatus::Primary {
                ts.status = TaskSetStatus::Active;
            } else {
                continue;
            }
            ts.updated_at_ms = now;
        }
        let primary = primary.expect("found above");
        s.task_definition.clone_from(&primary.task_definition);
        self.put_service(&mut state, &s)?;
        Ok(primary)
    }

    /// Starts deleting a task set: DRAINING, its tasks stop, then it leaves the
    /// service. Without `force` it must be scaled to zero first, as in ECS.
    pub fn delete_task_set(
        &self,
        cluster: &str,
        service: &str,
        task_set: &str,
        force: bool,
    ) -> Result<TaskSet, StateError> {
        let mut state = self.lock();
        let mut s = Self::external_service(&state, cluster, service)?;
        let now = self.now_ms();
        let ts = find(&mut s, task_set)?;
        if ts.computed_desired_count > 0 && !force {
            return Err(StateError::InvalidParameter(format!(
                "Task set '{}' is scaled above zero: scale it to 0 with UpdateTaskSet, or delete it with force.",
                ts.id
            )));
        }
        ts.status = TaskSetStatus::Draining;
        ts.computed_desired_count = 0;
        ts.updated_at_ms = now;
        let out = ts.clone();
        self.put_service(&mut state, &s)?;
        Ok(out)
    }

    /// The service's task sets (all when `refs` is empty); unknown ones are `MISSING`.
    pub fn describe_task_sets(
        &self,
        cluster: &str,
        service: &str,
        refs: &[String],
    ) -> Result<(Vec<TaskSet>, Vec<ItemFailure>), StateError> {
        let state = self.lock();
        let s = Self::external_service(&state, cluster, service)?;
        if refs.is_empty() {
            return Ok((s.task_sets.clone(), vec![]));
        }
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for r in refs {
            match s.task_sets.iter().find(|t| t.id == *r || t.arn == *r) {
                Some(t) => found.push(t.clone()),
                None => failures.push(ItemFailure {
                    arn: if r.starts_with("arn:") {
                        r.clone()
                    } else {
                        self.arns_of(&s.arn).task_set(&s.cluster, &s.name, r)
                    },
                    reason: "MISSING".into(),
                    detail: None,
                }),
            }
        }
        Ok((found, failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task_set::FULL_SCALE;
    use crate::model::{DesiredStatus, LaunchType, Task, TaskStatus};
    use crate::services::test_support::{redeploy, report_all, service, spec};
    use crate::services::ServiceUpdate;
    use crate::state::test_support::{add_instance, control_plane_with_clock};

    fn task_set(td: &str, scale: u32) -> TaskSetSpec {
        TaskSetSpec {
            cluster: "default".into(),
            service: "api".into(),
            task_definition: td.into(),
            external_id: Some("deploy-1".into()),
            capacity: Capacity::LaunchType(LaunchType::Ec2),
            scale_millipercent: scale,
            tags: vec![],
            kept: serde_json::Map::new(),
        }
    }

    /// Every instance's agent reaches `status` for the tasks that should reach it.
    fn report(cp: &ControlPlane, instances: &[String], status: TaskStatus) {
        for i in instances {
            report_all(cp, i, status.as_str());
        }
    }

    /// The tasks of the task set the instances should run.
    fn of(cp: &ControlPlane, instances: &[String], ts: &TaskSet) -> Vec<Task> {
        instances
            .iter()
            .flat_map(|i| cp.desired_tasks(i))
            .filter(|t| t.started_by.as_deref() == Some(ts.id.as_str()))
            .filter(|t| t.desired_status == DesiredStatus::Running)
            .collect()
    }

    #[test]
    fn an_external_controller_drives_a_service_through_its_task_sets() {
        let (cp, _store, _clock) = control_plane_with_clock();
        // Room for two `web` tasks on each.
        let ci = [add_instance(&cp, "default"), add_instance(&cp, "default")];
        // Not for a service the ECS controller deploys.
        cp.create_service(&spec("other", 1)).unwrap();
        let mut refused = task_set("web", FULL_SCALE);
        refused.service = "other".into();
        assert!(cp
            .create_task_set(&refused)
            .unwrap_err()
            .to_string()
            .contains("EXTERNAL"));

        let mut external = spec("api", 2);
        external.task_definition = String::new();
        external.kept.insert(
            "deploymentController".into(),
            serde_json::json!({"type": "EXTERNAL"}),
        );
        let s = cp.create_service(&external).unwrap();
        assert!(s.deployments.is_empty());
        let blue = cp.create_task_set(&task_set("web", FULL_SCALE)).unwrap();
        assert_eq!(blue.status, TaskSetStatus::Primary, "the first one serves");
        assert_eq!(blue.computed_desired_count, 2);
        let green = cp.create_task_set(&task_set("web", 50_000)).unwrap();
        assert_eq!(green.status, TaskSetStatus::Active);
        cp.reconcile_services().unwrap();
        assert_eq!(of(&cp, &ci, &blue).len(), 2);
        assert_eq!(of(&cp, &ci, &green).len(), 1, "half of 2");
        report(&cp, &ci, TaskStatus::Running);
        cp.reconcile_services().unwrap();
        let s = service(&cp);
        assert_eq!(s.running_count(), 3);
        assert!(s
            .task_sets
            .iter()
            .all(|t| t.stability_status == StabilityStatus::SteadyState));

        // Green takes over; blue is scaled to nothing, deleted, and leaves.
        let g = cp
            .update_service_primary_task_set("default", "api", &green.arn)
            .unwrap();
        assert_eq!(g.status, TaskSetStatus::Primary);
        cp.update_task_set("default", "api", &green.id, FULL_SCALE)
            .unwrap();
        let e = cp
            .delete_task_set("default", "api", &blue.id, false)
            .unwrap_err();
        assert!(e.to_string().contains("scale it to 0"), "{e}");
        cp.update_task_set("default", "api", &blue.id, 0).unwrap();
        cp.delete_task_set("default", "api", &blue.id, false)
            .unwrap();
        cp.reconcile_services().unwrap();
        assert!(of(&cp, &ci, &blue).is_empty());
        report(&cp, &ci, TaskStatus::Stopped);
        cp.reconcile_services().unwrap();
        assert_eq!(of(&cp, &ci, &green).len(), 2);
        report(&cp, &ci, TaskStatus::Running);
        cp.reconcile_services().unwrap();
        let s = service(&cp);
        assert_eq!(s.task_sets.len(), 1, "the drained task set left");
        assert_eq!(s.running_count(), 2);
        let (found, missing) = cp
            .describe_task_sets("default", "api", &[blue.id.clone(), green.id.clone()])
            .unwrap();
        assert_eq!((found.len(), missing.len()), (1, 1));

        // The ECS controller's levers are refused; the count is not.
        let e = redeploy(&cp).unwrap_err();
        assert!(e.to_string().contains("task sets"), "{e}");
        cp.update_service(&ServiceUpdate {
            cluster: "default".into(),
            service: "api".into(),
            desired_count: Some(1),
            ..ServiceUpdate::default()
        })
        .unwrap();
        cp.reconcile_services().unwrap();
        assert_eq!(of(&cp, &ci, &green).len(), 1, "100% of the new count");
        assert!(cp
            .delete_task_set("default", "api", "ecs-svc/1", true)
            .is_err());
    }
}
