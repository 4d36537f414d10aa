//! Task scale-in protection (`UpdateTaskProtection`, `GetTaskProtection`): a protected
//! task is left alone by its service's scale-in and deployments until the protection
//! expires (see `services::reconcile`).

use super::super::{encode, ControlPlane, ItemFailure, StateError};
use crate::model::Task;
use crate::store::{Table, Write};

/// ECS's bounds and default for `expiresInMinutes`.
pub const DEFAULT_MINUTES: i64 = 120;
pub const MAX_MINUTES: i64 = 2880;

impl ControlPlane {
    /// Protects (or unprotects) `tasks` of `cluster`; the tasks as they are now, and a
    /// failure for each that is not there or has stopped.
    pub fn update_task_protection(
        &self,
        cluster: &str,
        tasks: &[String],
        enabled: bool,
        expires_in_minutes: Option<i64>,
    ) -> Result<(Vec<Task>, Vec<ItemFailure>), StateError> {
        let minutes = expires_in_minutes.unwrap_or(DEFAULT_MINUTES);
        if !(1..=MAX_MINUTES).contains(&minutes) {
            return Err(StateError::InvalidParameter(format!(
                "expiresInMinutes must be between 1 and {MAX_MINUTES}, got {minutes}."
            )));
        }
        if !(1..=10).contains(&tasks.len()) {
            return Err(StateError::InvalidParameter(format!(
                "tasks must name 1 to 10 tasks, got {}.",
                tasks.len()
            )));
        }
        let now = self.now_ms();
        let mut state = self.lock();
        let cluster = Self::cluster(&state, cluster)?.clone();
        let (mut found, failures) = self.lookup_tasks(&state, &cluster, tasks);
        let (stopped, mut live): (Vec<Task>, Vec<Task>) =
            found.drain(..).partition(Task::is_stopped);
        let mut failures = failures;
        failures.extend(stopped.iter().map(|t| ItemFailure {
            arn: t.arn.clone(),
            reason: "TASK_NOT_VALID".into(),
            detail: Some("The task has stopped: only running tasks can be protected.".into()),
        }));
        for t in &mut live {
            t.protected_until_ms = enabled.then_some(now + minutes * 60_000);
        }
        let writes: Vec<Write> = live
            .iter()
            .map(|t| Write::put(Table::Tasks, t.id.clone(), encode(t)))
            .collect();
        if !writes.is_empty() {
            self.store.apply(&writes)?;
        }
        for t in &live {
            state.tasks.insert(t.id.clone(), t.clone());
        }
        Ok((live, failures))
    }

    /// The protection of `tasks` of `cluster` (None: the cluster's protected tasks).
    pub fn task_protection(
        &self,
        cluster: &str,
        tasks: Option<&[String]>,
    ) -> Result<(Vec<Task>, Vec<ItemFailure>), StateError> {
        let now = self.now_ms();
        let state = self.lock();
        let cluster = Self::cluster(&state, cluster)?.clone();
        Ok(match tasks {
            Some(names) => self.lookup_tasks(&state, &cluster, names),
            None => (
                state
                    .tasks
                    .values()
                    .filter(|t| t.cluster == cluster.name && t.is_protected(now))
                    .cloned()
                    .collect(),
                vec![],
            ),
        })
    }
}
