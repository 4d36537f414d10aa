//! Task commands: describe, list, stop and purge; creation (run, start)
//! lives in `launch`.

mod capacity;
mod launch;
mod prepare;
mod protection;

use super::{encode, ControlPlane, ItemFailure, State, StateError};
use crate::model::{arn, DesiredStatus, LaunchType, Resources, StopCode, Task, TaskStatus};
use crate::store::{Table, Write};

pub use capacity::Capacity;
pub(crate) use capacity::Pool;
pub use launch::{
    ContainerOverride, RunTask, RunTaskOutcome, StartTask, TaskLaunch, MANAGED_SERVICE_TAG,
};

/// `ListTasks` filters.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub cluster: String,
    pub family: Option<String>,
    pub container_instance: Option<String>,
    pub started_by: Option<String>,
    /// `service:<name>` for a service's tasks (`ListTasks` `serviceName`).
    pub group: Option<String>,
    /// RUNNING by default; anything but STOPPED lists the tasks not stopped.
    pub desired_status: Option<DesiredStatus>,
    pub launch_type: Option<LaunchType>,
}

impl ControlPlane {
    pub(super) fn remaining(state: &State, instance_arn: &str, registered: Resources) -> Resources {
        state
            .tasks
            .values()
            .filter(|t| {
                t.container_instance_arn.as_deref() == Some(instance_arn) && !t.is_stopped()
            })
            .fold(registered, |left, t| left.saturating_sub(t.reserved))
    }

    /// Host ports of an instance that no new task may take: its reserved
    /// ports and the ports of the tasks on it that have not stopped.
    pub(in crate::state) fn used_ports(
        state: &State,
        i: &crate::model::ContainerInstance,
    ) -> std::collections::BTreeSet<crate::model::ports::HostPort> {
        let mut used = i.reserved_ports.clone();
        for t in state.tasks.values().filter(|t| {
            t.container_instance_arn.as_deref() == Some(i.arn.as_str()) && !t.is_stopped()
        }) {
            used.extend(t.host_ports());
        }
        used
    }

    /// Looks tasks up by id or ARN within a cluster.
    pub fn describe_tasks(
        &self,
        cluster: &str,
        tasks: &[String],
    ) -> Result<(Vec<Task>, Vec<ItemFailure>), StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, cluster)?;
        Ok(self.lookup_tasks(&state, cluster, tasks))
    }

    /// The named tasks (ids or ARNs) of a cluster, and a `MISSING` failure for each other.
    fn lookup_tasks(
        &self,
        state: &State,
        cluster: &crate::model::Cluster,
        tasks: &[String],
    ) -> (Vec<Task>, Vec<ItemFailure>) {
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for t in tasks {
            let id = arn::resource_id(t);
            match state
                .tasks
                .get(id)
                .filter(|task| task.cluster == cluster.name)
            {
                Some(task) => found.push(task.clone()),
                None => failures.push(ItemFailure {
                    arn: if t.starts_with("arn:") {
                        t.clone()
                    } else {
                        self.arns_of(&cluster.arn).task(&cluster.name, id)
                    },
                    reason: "MISSING".into(),
                    detail: None,
                }),
            }
        }
        (found, failures)
    }

    pub fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<String>, StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, &filter.cluster)?;
        let want_stopped = filter.desired_status == Some(DesiredStatus::Stopped);
        let mut tasks: Vec<&Task> = state
            .tasks
            .values()
            .filter(|t| t.cluster == cluster.name)
            .filter(|t| (t.desired_status == DesiredStatus::Stopped) == want_stopped)
            .filter(|t| filter.family.as_deref().is_none_or(|f| t.family == f))
            .filter(|t| {
                filter
                    .started_by
                    .as_deref()
                    .is_none_or(|s| t.started_by.as_deref() == Some(s))
            })
            .filter(|t| {
                filter
                    .group
                    .as_deref()
                    .is_none_or(|g| t.group.as_deref() == Some(g))
            })
            .filter(|t| filter.launch_type.is_none_or(|l| t.launch_type == l))
            .filter(|t| {
                filter.container_instance.as_deref().is_none_or(|ci| {
                    t.container_instance_arn
                        .as_deref()
                        .is_some_and(|a| arn::resource_id(a) == arn::resource_id(ci))
                })
            })
            .collect();
        tasks.sort_by_key(|t| (t.created_at_ms, t.id.clone()));
        Ok(tasks.into_iter().map(|t| t.arn.clone()).collect())
    }

    /// Sets desired status STOPPED (stopCode `UserInitiated`) and wakes the agent.
    pub fn stop_task(
        &self,
        cluster: &str,
        task: &str,
        reason: Option<&str>,
    ) -> Result<Task, StateError> {
        let mut state = self.lock();
        let cluster = Self::cluster(&state, cluster)?.name.clone();
        let id = arn::resource_id(task).to_string();
        let mut t = state
            .tasks
            .get(&id)
            .filter(|t| t.cluster == cluster)
            .cloned()
            .ok_or_else(|| {
                StateError::InvalidParameter(format!(
                    "The referenced task was not found: '{task}' in cluster '{cluster}'."
                ))
            })?;
        let reason = reason
            .filter(|r| !r.is_empty())
            .unwrap_or("Task stopped by user");
        if t.request_stop(StopCode::UserInitiated, reason, self.now_ms()) {
            t.drain_until_ms = self.drain_until(&state, &t, self.now_ms());
            if t.container_instance_arn.is_none()
                || t.last_status == TaskStatus::Provisioning && !Self::agent_connected(&state, &t)
            {
                // Never reached an agent: nothing runs, so it is stopped now.
                t.last_status = TaskStatus::Stopped;
                t.stopped_at_ms = Some(self.now_ms());
            }
            self.store
                .apply(&[Write::put(Table::Tasks, id.clone(), encode(&t))])?;
            state.tasks.insert(id, t.clone());
            Self::notify(&state, t.container_instance_arn.clone());
        }
        Ok(t)
    }

    fn agent_connected(state: &State, t: &Task) -> bool {
        t.container_instance_arn
            .as_ref()
            .is_some_and(|a| state.sessions.contains_key(a))
    }

    /// Forgets tasks that stopped at least `retention_ms` ago (ECS keeps
    /// stopped tasks describable for about an hour). Returns how many went.
    pub fn purge_stopped_tasks(&self, retention_ms: i64) -> Result<usize, StateError> {
        let mut state = self.lock();
        let cutoff = self.now_ms().saturating_sub(retention_ms);
        let expired: Vec<String> = state
            .tasks
            .values()
            .filter(|t| t.is_stopped() && t.stopped_at_ms.unwrap_or(t.created_at_ms) <= cutoff)
            .map(|t| t.id.clone())
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let writes: Vec<Write> = expired
            .iter()
            .map(|id| Write::delete(Table::Tasks, id.clone()))
            .collect();
        self.store.apply(&writes)?;
        for id in &expired {
            state.tasks.remove(id);
        }
        Ok(expired.len())
    }
}

#[cfg(test)]
mod tests {
    use crate::model::task::TaskReport;
    use crate::model::LaunchType;
    use crate::state::test_support::{control_plane_with_clock, register_web, registration, run};
    use crate::state::TaskFilter;

    #[test]
    fn stopped_tasks_are_purged_after_the_retention() {
        let (cp, store, clock) = control_plane_with_clock();
        register_web(&cp);
        let ci = cp
            .register_instance(&registration("default", false))
            .unwrap();
        let _rx = cp.open_session(&ci.arn).unwrap();
        let out = cp.run_task(&run("default", LaunchType::Ec2, 2)).unwrap();
        let (done, live) = (&out.tasks[0], &out.tasks[1]);
        let stopped = TaskReport {
            task_arn: done.arn.clone(),
            last_status: "STOPPED".into(),
            ..TaskReport::default()
        };
        cp.apply_report(&ci.arn, &stopped).unwrap();
        // A stop was asked for the other, but it has not stopped yet.
        cp.stop_task("default", &live.id, None).unwrap();

        let hour = 3_600_000;
        clock.advance_ms(hour - 1);
        assert_eq!(cp.purge_stopped_tasks(hour).unwrap(), 0);
        let (found, _) = cp
            .describe_tasks("default", std::slice::from_ref(&done.arn))
            .unwrap();
        assert_eq!(found.len(), 1, "still describable within the hour");

        clock.advance_ms(1);
        let batches = store.batches.lock().unwrap().len();
        assert_eq!(cp.purge_stopped_tasks(hour).unwrap(), 1);
        assert_eq!(store.batches.lock().unwrap().len(), batches + 1);
        let (found, failures) = cp
            .describe_tasks("default", std::slice::from_ref(&done.arn))
            .unwrap();
        assert!(found.is_empty());
        assert_eq!(failures[0].reason, "MISSING");
        let stopped_list = TaskFilter {
            cluster: "default".into(),
            desired_status: Some("STOPPED".into()),
            ..TaskFilter::default()
        };
        assert_eq!(
            cp.list_tasks(&stopped_list).unwrap(),
            vec![live.arn.clone()]
        );
        // Nothing more to do: no write.
        assert_eq!(cp.purge_stopped_tasks(hour).unwrap(), 0);
        assert_eq!(store.batches.lock().unwrap().len(), batches + 1);
    }
}
