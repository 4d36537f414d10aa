//! Applies the service reconciler's steps: new tasks through the `RunTask`
//! path, stops, and the service's own changes, each written through the
//! store before it takes effect.

use super::hosts::instance_condition;
use super::{Fleet, InstanceCondition, Step, SCHEDULER_STOP_CODE};
use crate::model::placement::PlacementConstraint;
use crate::model::service::{Deployment, DeploymentStatus, SchedulingStrategy, ServiceStatus};
use crate::model::{
    ContainerInstance, DesiredStatus, InstanceStatus, LaunchType, Service, Task, TaskStatus,
};
use crate::scheduler::{next_tasks_by_capacity_provider, CapacityProviderShare};
use crate::state::tasks::MANAGED_SERVICE_TAG;
use crate::state::{encode, Capacity, ControlPlane, RunTask, State, StateError, TaskLaunch};
use crate::store::{Table, Write};

/// `RunTask` places at most this many tasks per call.
const RUN_TASK_MAX: u32 = 10;

impl ControlPlane {
    /// The service's own tasks, any state: its group, started by one of
    /// its deployments (a user's task in the same group is not adopted).
    fn service_tasks(state: &State, s: &Service) -> Vec<Task> {
        let group = s.group();
        state
            .tasks
            .values()
            .filter(|t| t.cluster == s.cluster && t.group.as_deref() == Some(group.as_str()))
            .filter(|t| {
                t.started_by
                    .as_deref()
                    .is_some_and(|b| b.starts_with("ecs-svc/"))
            })
            .cloned()
            .collect()
    }

    /// Whether any connected ACTIVE instance could take one of the service's tasks.
    fn can_place(state: &State, s: &Service) -> bool {
        state.instances.values().any(|i| {
            i.status == InstanceStatus::Active
                && state.sessions.contains_key(&i.arn)
                && if s.capacity_provider_strategy.is_empty() {
                    match s.launch_type {
                        LaunchType::Fargate => i.serves_fargate(),
                        LaunchType::Ec2 | LaunchType::External => i.cluster == s.cluster,
                    }
                } else {
                    s.capacity_provider_strategy
                        .iter()
                        .any(|p| i.serves_provider(&p.provider, &s.cluster))
                }
        })
    }

    /// Whether `i` serves, is out of contact, lost or draining, as of `now_ms`.
    fn condition(&self, state: &State, i: &ContainerInstance, now_ms: i64) -> InstanceCondition {
        instance_condition(
            i.status,
            state.sessions.contains_key(&i.arn),
            state.last_seen.get(&i.arn).copied(),
            self.lost_policy,
            now_ms,
        )
    }

    /// What the reconciler needs to know of the instances: whether the
    /// service can place a task, and which instances are draining or lost.
    fn fleet(&self, state: &State, s: &Service, now_ms: i64) -> Fleet {
        let instances = state
            .instances
            .values()
            .filter(|i| i.status != InstanceStatus::Inactive)
            .filter_map(|i| {
                let c = self.condition(state, i, now_ms);
                (c != InstanceCondition::Serving).then(|| (i.arn.clone(), c))
            })
            .collect();
        Fleet {
            can_place: Self::can_place(state, s),
            instances,
        }
    }

    /// How many tasks a DAEMON service runs: one on each ACTIVE instance of its cluster
    /// whose agent is connected or briefly out of contact (not lost, not DRAINING) and
    /// that meets the service's placement constraints.
    fn daemon_hosts(&self, state: &State, s: &Service, now_ms: i64) -> u32 {
        let n = state
            .instances
            .values()
            .filter(|i| i.cluster == s.cluster && i.status == InstanceStatus::Active)
            .filter(|i| {
                matches!(
                    self.condition(state, i, now_ms),
                    InstanceCondition::Serving | InstanceCondition::Disconnected
                )
            })
            .filter(|i| {
                // Built only when an expression needs it: it walks every task.
                let mut view = None;
                s.placement_constraints.iter().all(|c| match c {
                    PlacementConstraint::MemberOf(e) => {
                        e.eval(view.get_or_insert_with(|| Self::candidate(state, i)))
                    }
                    PlacementConstraint::DistinctInstance => true,
                })
            })
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// One reconciler pass over every ACTIVE and DRAINING service. Returns
    /// how many services changed.
    pub fn reconcile_services(&self) -> Result<usize, StateError> {
        self.finish_draining()?;
        let keys: Vec<String> = self
            .lock()
            .services
            .values()
            .filter(|s| s.status != ServiceStatus::Inactive)
            .map(Service::key)
            .collect();
        let mut changed = 0;
        for key in keys {
            if self.reconcile_service(&key)? {
                changed += 1;
            }
        }
        Ok(changed)
    }

    fn reconcile_service(&self, key: &str) -> Result<bool, StateError> {
        let now = self.now_ms();
        let (snapshot, steps) = {
            let state = self.lock();
            let Some(s) = state.services.get(key) else {
                return Ok(false);
            };
            let mut s = s.clone();
            // A deleted (DRAINING) daemon keeps the zero its deletion set.
            if s.scheduling_strategy == SchedulingStrategy::Daemon
                && s.status == ServiceStatus::Active
            {
                s.desired_count = self.daemon_hosts(&state, &s, now);
            }
            let mut tasks = Self::service_tasks(&state, &s);
            if crate::lb::targets::of_service(&s.kept).is_ok_and(|l| !l.is_empty()) {
                // Behind a load balancer, a task counts as healthy once its targets are:
                // until the checker has seen it, it is not.
                for t in tasks.iter_mut().filter(|t| t.target_health.is_none()) {
                    t.target_health = Some(crate::model::task::TargetHealth {
                        status: crate::model::HealthStatus::Unknown,
                        target_group_arn: String::new(),
                    });
                }
            }
            super::refresh_counts(&mut s, &tasks, now);
            let fleet = self.fleet(&state, &s, now);
            let steps = super::reconcile(&s, &tasks, &fleet, now);
            (s, steps)
        };

        // New tasks go through RunTask, which places and stores them itself.
        let mut events = Vec::new();
        for step in &steps {
            if let Step::Start { deployment, count } = step {
                events.extend(self.start_service_tasks(&snapshot, deployment, *count));
            }
        }

        let mut state = self.lock();
        let Some(mut s) = state.services.get(key).cloned() else {
            return Ok(false);
        };
        let before = s.clone();
        // A DAEMON service's count follows its hosts (as the steps were made for).
        s.desired_count = snapshot.desired_count;
        let mut stopped: Vec<Task> = Vec::new();
        for step in &steps {
            match step {
                Step::Start { .. } => {}
                Step::Stop { .. } | Step::StopLost { .. } => {
                    stopped.extend(Self::stopped_by(&state, step, now).map(|mut t| {
                        if matches!(step, Step::Stop { .. }) {
                            t.drain_until_ms = self.drain_until(&state, &t, now);
                        }
                        t
                    }));
                }
                other => super::apply_to_service(&mut s, other, now),
            }
        }
        for e in events {
            let repeat = e == super::unable_to_place(&s.name)
                && s.events.first().is_some_and(|last| last.message == e);
            if !repeat {
                s.push_event(e, now);
            }
        }
        let mut tasks = Self::service_tasks(&state, &s);
        for t in &stopped {
            if let Some(old) = tasks.iter_mut().find(|o| o.id == t.id) {
                old.clone_from(t);
            }
        }
        super::refresh_counts(&mut s, &tasks, now);
        if s == before && stopped.is_empty() {
            return Ok(false);
        }
        for step in &steps {
            if let Step::Event(m) = step {
                tracing::info!(service = %s.name, cluster = %s.cluster, "{m}");
            }
        }
        let mut writes = vec![Write::put(Table::Services, s.key(), encode(&s))];
        writes.extend(
            stopped
                .iter()
                .map(|t| Write::put(Table::Tasks, t.id.clone(), encode(t))),
        );
        self.store.apply(&writes)?;
        let instances: Vec<String> = stopped
            .iter()
            .filter_map(|t| t.container_instance_arn.clone())
            .collect();
        for t in stopped {
            state.tasks.insert(t.id.clone(), t);
        }
        state.services.insert(s.key(), s);
        Self::notify(&state, instances);
        Ok(true)
    }

    /// The task a `Stop` or `StopLost` step stops, as it is once stopped; None when
    /// there is nothing to change.
    fn stopped_by(state: &State, step: &Step, now: i64) -> Option<Task> {
        match step {
            Step::Stop { task, reason } => {
                let mut t = state.tasks.get(task).cloned()?;
                if !t.request_stop(SCHEDULER_STOP_CODE, reason, now) {
                    return None;
                }
                let connected = t
                    .container_instance_arn
                    .as_ref()
                    .is_some_and(|a| state.sessions.contains_key(a));
                if t.container_instance_arn.is_none()
                    || t.last_status == TaskStatus::Provisioning && !connected
                {
                    // Never reached an agent: nothing runs.
                    t.last_status = TaskStatus::Stopped;
                    t.stopped_at_ms = Some(now);
                }
                Some(t)
            }
            Step::StopLost { task, reason } => {
                let mut t = state.tasks.get(task).cloned()?;
                // Its agent is gone and will not report the stop. If it returns, its
                // desired set no longer holds the task, so it stops whatever still runs.
                t.request_stop(SCHEDULER_STOP_CODE, reason, now);
                if t.is_stopped() {
                    return None;
                }
                t.last_status = TaskStatus::Stopped;
                t.stopped_at_ms = Some(now);
                t.version += 1;
                Some(t)
            }
            _ => None,
        }
    }

    /// How `count` new tasks of a deployment are launched: with its launch
    /// type, or one batch per capacity provider, split so the deployment's
    /// tasks as a whole follow its strategy.
    fn service_batches(&self, s: &Service, d: &Deployment, count: u32) -> Vec<(Capacity, u32)> {
        if d.capacity_provider_strategy.is_empty() {
            return vec![(Capacity::LaunchType(d.launch_type), count)];
        }
        let strategy = &d.capacity_provider_strategy;
        let tasks = {
            let state = self.lock();
            Self::service_tasks(&state, s)
        };
        let have: Vec<u32> = strategy
            .iter()
            .map(|p| {
                let n = tasks
                    .iter()
                    .filter(|t| {
                        t.started_by.as_deref() == Some(d.id.as_str())
                            && t.desired_status != DesiredStatus::Stopped
                            && t.capacity_provider_name.as_deref() == Some(p.provider.as_str())
                    })
                    .count();
                u32::try_from(n).unwrap_or(u32::MAX)
            })
            .collect();
        let desired = if d.status == DeploymentStatus::Primary {
            s.desired_count
        } else {
            d.desired_count
        };
        match next_tasks_by_capacity_provider(strategy, desired, &have, count) {
            Ok(split) => strategy
                .iter()
                .zip(split)
                .filter(|(_, n)| *n > 0)
                .map(|(p, n)| {
                    // One provider per batch: RunTask's own path places it.
                    let only = CapacityProviderShare {
                        provider: p.provider.clone(),
                        base: 0,
                        weight: 1,
                    };
                    (Capacity::Strategy(vec![only]), n)
                })
                .collect(),
            Err(e) => {
                tracing::warn!(service = %s.name, error = %e, "splitting service tasks failed");
                vec![]
            }
        }
    }

    /// Starts `count` tasks of a deployment; the events to record ("has
    /// started", or "unable to place" when placement fell short).
    fn start_service_tasks(&self, s: &Service, deployment: &str, count: u32) -> Vec<String> {
        let Some(d) = launch_of(s, deployment) else {
            return vec![];
        };
        let d = &d;
        let td = d.task_definition.clone();
        // A daemon's tasks go one to an instance: each to an instance without one.
        let mut constraints = s.placement_constraints.clone();
        if s.scheduling_strategy == SchedulingStrategy::Daemon {
            constraints.push(PlacementConstraint::DistinctInstance);
        }
        let (tags, propagate_task_definition_tags, ecs_managed_tags) = service_task_tags(s);
        let mut ids = Vec::new();
        let batches = self.service_batches(s, d, count);
        let mut short = batches.is_empty();
        'batches: for (capacity, n) in batches {
            let mut left = n;
            while left > 0 {
                let n = left.min(RUN_TASK_MAX);
                left -= n;
                let run = RunTask {
                    launch: TaskLaunch {
                        cluster: s.cluster.clone(),
                        task_definition: td.clone(),
                        started_by: Some(deployment.to_string()),
                        group: Some(s.group()),
                        container_overrides: vec![],
                        cpu: None,
                        memory_mib: None,
                        overrides: serde_json::json!({"containerOverrides": []}),
                        tags: tags.clone(),
                        enable_execute_command: s.enable_execute_command,
                        placement_strategy: s.placement_strategy.clone(),
                        placement_constraints: constraints.clone(),
                        propagate_task_definition_tags,
                        ecs_managed_tags,
                    },
                    count: n as usize,
                    capacity: capacity.clone(),
                    client_token: None,
                };
                match self.run_task(&run) {
                    Ok(out) => {
                        ids.extend(out.tasks.iter().map(|t| t.id.clone()));
                        if !out.failures.is_empty() {
                            short = true;
                            break 'batches;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(service = %s.name, error = %e, "starting service tasks failed");
                        short = true;
                        break 'batches;
                    }
                }
            }
        }
        let mut events = Vec::new();
        if !ids.is_empty() {
            events.push(super::started(&s.name, &ids));
        }
        if short {
            events.push(super::unable_to_place(&s.name));
        }
        events
    }
}

/// What the tasks started for `id` run: the deployment, or the task set, of that id.
fn launch_of(s: &Service, id: &str) -> Option<Deployment> {
    if let Some(d) = s.deployments.iter().find(|d| d.id == id) {
        return Some(d.clone());
    }
    let ts = s.task_sets.iter().find(|t| t.id == id)?;
    let mut d = Deployment::new(
        &ts.task_definition,
        ts.computed_desired_count,
        ts.launch_type,
        ts.created_at_ms,
    )
    .with_capacity_provider_strategy(ts.capacity_provider_strategy.clone());
    d.id.clone_from(&ts.id);
    // Not PRIMARY: its own count, not the service's, splits it over providers.
    d.status = DeploymentStatus::Active;
    Some(d)
}

/// A service task's tags, and whether its task definition's and ECS's managed tags are
/// added: `propagateTags` `SERVICE` copies the service's tags, `TASK_DEFINITION` the task
/// definition's; `enableECSManagedTags` adds the cluster and service names.
fn service_task_tags(s: &Service) -> (Vec<(String, String)>, bool, bool) {
    let propagate = s
        .kept
        .get("propagateTags")
        .and_then(serde_json::Value::as_str);
    let managed = s
        .kept
        .get("enableECSManagedTags")
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    let mut tags = if propagate == Some("SERVICE") {
        s.tags.clone()
    } else {
        vec![]
    };
    if managed {
        tags.push((MANAGED_SERVICE_TAG.to_owned(), s.name.clone()));
    }
    (tags, propagate == Some("TASK_DEFINITION"), managed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::service::RolloutState;
    use crate::model::task::TaskReport;
    use crate::model::ArnContext;
    use crate::services::test_support::{redeploy, report_all, service, spec};
    use crate::services::ServiceUpdate;
    use crate::state::test_support::{add_instance, control_plane_with_clock};
    use crate::state::TaskFilter;

    #[test]
    fn service_tasks_are_started_tagged_and_survive_a_restart() {
        let (cp, store, _clock) = control_plane_with_clock();
        let ci = add_instance(&cp, "default");
        cp.create_service(&spec("api", 2)).unwrap();
        assert_eq!(cp.reconcile_services().unwrap(), 1);
        let s = service(&cp);
        let dep = s.deployments[0].id.clone();
        let tasks = cp.desired_tasks(&ci);
        assert_eq!(tasks.len(), 2);
        for t in &tasks {
            assert_eq!(t.started_by.as_deref(), Some(dep.as_str()));
            assert_eq!(t.group.as_deref(), Some("service:api"));
        }
        assert!(s.events[0]
            .message
            .starts_with("(service api) has started 2 tasks: (task "));
        assert_eq!(s.pending_count(), 2);
        // ListTasks serviceName finds them by group.
        let by_service = cp
            .list_tasks(&TaskFilter {
                cluster: "default".into(),
                group: Some("service:api".into()),
                ..TaskFilter::default()
            })
            .unwrap();
        assert_eq!(by_service.len(), 2);

        report_all(&cp, &ci, "RUNNING");
        cp.reconcile_services().unwrap();
        let s = service(&cp);
        assert_eq!(s.running_count(), 2);
        assert_eq!(s.deployments[0].rollout_state, RolloutState::Completed);
        assert_eq!(
            s.events[0].message,
            "(service api) has reached a steady state."
        );
        // Nothing to do: nothing written.
        let writes = store.batches.lock().unwrap().len();
        assert_eq!(cp.reconcile_services().unwrap(), 0);
        assert_eq!(store.batches.lock().unwrap().len(), writes);

        // A new control plane on the same store has the service.
        let again = ControlPlane::open(
            store.clone() as Arc<dyn crate::store::Store>,
            Arc::new(crate::state::SystemClock),
            ArnContext {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        )
        .unwrap();
        assert_eq!(service(&again), s);
    }

    #[test]
    fn a_stopped_task_is_replaced_and_a_new_revision_rolls_out() {
        let (cp, _store, _clock) = control_plane_with_clock();
        let ci = add_instance(&cp, "default");
        cp.create_service(&spec("api", 1)).unwrap();
        cp.reconcile_services().unwrap();
        report_all(&cp, &ci, "RUNNING");
        cp.reconcile_services().unwrap();
        let first = cp.desired_tasks(&ci)[0].clone();
        cp.stop_task("default", &first.id, None).unwrap();
        report_all(&cp, &ci, "STOPPED");
        cp.reconcile_services().unwrap();
        let now: Vec<Task> = cp.desired_tasks(&ci);
        assert_eq!(now.len(), 1);
        assert_ne!(now[0].id, first.id);
        assert_eq!(service(&cp).deployments[0].failed_tasks, 0);

        report_all(&cp, &ci, "RUNNING");
        redeploy(&cp).unwrap();
        cp.reconcile_services().unwrap();
        assert_eq!(cp.desired_tasks(&ci).len(), 2, "new beside old at 200%");
        report_all(&cp, &ci, "RUNNING");
        cp.reconcile_services().unwrap();
        let old = cp
            .describe_tasks("default", std::slice::from_ref(&now[0].id))
            .unwrap()
            .0[0]
            .clone();
        assert_eq!(old.desired_status, "STOPPED");
        assert_eq!(old.stop_code, Some("ServiceSchedulerInitiated".into()));
        report_all(&cp, &ci, "STOPPED");
        cp.reconcile_services().unwrap();
        let s = service(&cp);
        assert_eq!(s.deployments.len(), 1);
        assert_eq!(s.deployments[0].rollout_state, RolloutState::Completed);
    }

    #[test]
    fn no_instance_means_an_event_not_a_task() {
        let (cp, _store, _clock) = control_plane_with_clock();
        cp.create_cluster("default", vec![]).unwrap();
        crate::state::test_support::register_web(&cp);
        cp.create_service(&spec("api", 1)).unwrap();
        cp.reconcile_services().unwrap();
        cp.reconcile_services().unwrap();
        let s = service(&cp);
        assert_eq!(s.events.len(), 1);
        assert!(s.events[0].message.contains("was unable to place a task"));
    }

    #[test]
    fn placement_falling_short_is_the_same_event() {
        let (cp, _store, _clock) = control_plane_with_clock();
        // 1024 MiB: two 512 MiB tasks fit, the third does not.
        let ci = add_instance(&cp, "default");
        cp.create_service(&spec("api", 3)).unwrap();
        cp.reconcile_services().unwrap();
        assert_eq!(cp.desired_tasks(&ci).len(), 2);
        let s = service(&cp);
        assert!(s.events[0].message.contains("was unable to place a task"));
        assert!(s.events[1].message.contains("has started 2 tasks"));
    }

    fn running(cp: &ControlPlane, id: &str) -> Task {
        cp.describe_tasks("default", &[id.to_string()]).unwrap().0[0].clone()
    }

    #[test]
    fn a_lost_instance_s_tasks_move_and_its_returning_agent_drops_them() {
        use crate::services::hosts::DEFAULT_LOST_AFTER_MS;
        use crate::state::test_support::registration;
        let (cp, _store, clock) = control_plane_with_clock();
        crate::state::test_support::register_web(&cp);
        let a = cp
            .register_instance(&registration("default", true))
            .unwrap()
            .arn;
        let session = cp.open_session(&a).unwrap();
        cp.create_service(&spec("api", 1)).unwrap();
        cp.reconcile_services().unwrap();
        report_all(&cp, &a, "RUNNING");
        cp.reconcile_services().unwrap();
        let b = add_instance(&cp, "default");
        let old = cp.desired_tasks(&a)[0].clone();

        // The agent's connection drops; heartbeats had kept it seen.
        clock.advance_ms(1_500);
        cp.agent_seen(&a);
        cp.close_session(&a, &session);
        clock.advance_ms(DEFAULT_LOST_AFTER_MS - 1);
        cp.reconcile_services().unwrap();
        assert_eq!(
            running(&cp, &old.id).last_status,
            "RUNNING",
            "within the grace"
        );
        assert!(cp.desired_tasks(&b).is_empty());

        clock.advance_ms(1);
        cp.reconcile_services().unwrap();
        let gone = running(&cp, &old.id);
        assert_eq!(gone.last_status, "STOPPED");
        assert_eq!(gone.stop_code, Some(SCHEDULER_STOP_CODE));
        assert_eq!(cp.desired_tasks(&b).len(), 1, "started elsewhere");
        assert!(service(&cp).events[0]
            .message
            .starts_with("(service api) has started 1 tasks"));

        // The agent returns and reports the task still running: the control
        // plane keeps it STOPPED, and the desired set it sends leaves it out,
        // so the agent stops it.
        let _back = cp.open_session(&a).unwrap();
        cp.apply_report(
            &a,
            &TaskReport {
                task_arn: old.arn.clone(),
                last_status: "RUNNING".into(),
                ..TaskReport::default()
            },
        )
        .unwrap();
        assert_eq!(running(&cp, &old.id).last_status, "STOPPED");
        assert!(cp.desired_tasks(&a).is_empty());
        report_all(&cp, &b, "RUNNING");
        cp.reconcile_services().unwrap();
        let s = service(&cp);
        assert_eq!((s.running_count(), s.deployments[0].failed_tasks), (1, 0));
        assert_eq!(
            s.events[0].message,
            "(service api) has reached a steady state."
        );
    }

    #[test]
    fn after_a_restart_agents_get_time_to_reconnect() {
        use crate::services::hosts::AFTER_START_GRACE_MS;
        let (cp, store, clock) = control_plane_with_clock();
        let a = add_instance(&cp, "default");
        cp.create_service(&spec("api", 1)).unwrap();
        cp.reconcile_services().unwrap();
        report_all(&cp, &a, "RUNNING");
        cp.reconcile_services().unwrap();
        let id = cp.desired_tasks(&a)[0].id.clone();
        let again = ControlPlane::open(
            store.clone() as Arc<dyn crate::store::Store>,
            clock.clone(),
            ArnContext {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        )
        .unwrap();
        clock.advance_ms(AFTER_START_GRACE_MS - 1);
        again.reconcile_services().unwrap();
        assert_eq!(running(&again, &id).last_status, "RUNNING");
        clock.advance_ms(1);
        again.reconcile_services().unwrap();
        assert_eq!(running(&again, &id).last_status, "STOPPED");
    }

    #[test]
    fn a_draining_instance_s_tasks_move_once_their_replacements_run() {
        let (cp, _store, _clock) = control_plane_with_clock();
        let a = add_instance(&cp, "default");
        cp.create_service(&spec("api", 1)).unwrap();
        cp.reconcile_services().unwrap();
        report_all(&cp, &a, "RUNNING");
        cp.reconcile_services().unwrap();
        let b = add_instance(&cp, "default");
        cp.update_container_instances_state("default", std::slice::from_ref(&a), "DRAINING".into())
            .unwrap();
        cp.reconcile_services().unwrap();
        assert_eq!(cp.desired_tasks(&b).len(), 1);
        assert_eq!(
            cp.desired_tasks(&a)[0].desired_status,
            "RUNNING",
            "until the new one runs"
        );
        report_all(&cp, &b, "RUNNING");
        cp.reconcile_services().unwrap();
        assert_eq!(cp.desired_tasks(&a)[0].desired_status, "STOPPED");
        report_all(&cp, &a, "STOPPED");
        cp.reconcile_services().unwrap();
        assert_eq!(service(&cp).running_count(), 1);
        assert!(cp.desired_tasks(&a).is_empty());
    }

    #[test]
    fn service_tasks_carry_the_tags_the_service_propagates() {
        let (cp, _store, _clock) = control_plane_with_clock();
        let ci = add_instance(&cp, "default");
        let mut tagged = spec("api", 1);
        tagged.tags = vec![("team".into(), "web".into())];
        tagged.kept.insert("propagateTags".into(), "SERVICE".into());
        tagged
            .kept
            .insert("enableECSManagedTags".into(), true.into());
        cp.create_service(&tagged).unwrap();
        cp.reconcile_services().unwrap();
        let tags = cp.desired_tasks(&ci)[0].tags.clone();
        let want: Vec<(String, String)> = [
            ("team", "web"),
            ("aws:ecs:serviceName", "api"),
            ("aws:ecs:clusterName", "default"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(tags, want);
    }

    /// Each instance's tasks of the service that it should run.
    fn running_here(cp: &ControlPlane, instance: &str) -> Vec<Task> {
        cp.desired_tasks(instance)
            .into_iter()
            .filter(|t| t.desired_status == DesiredStatus::Running)
            .collect()
    }

    #[test]
    fn a_daemon_runs_one_task_on_each_instance_and_follows_them() {
        let (cp, _store, _clock) = control_plane_with_clock();
        let a = add_instance(&cp, "default");
        let b = add_instance(&cp, "default");
        let mut daemon = spec("api", 0);
        daemon.scheduling_strategy = SchedulingStrategy::Daemon;
        daemon.deployment_configuration.minimum_healthy_percent = 0;
        daemon.deployment_configuration.maximum_percent = 100;
        cp.create_service(&daemon).unwrap();
        cp.reconcile_services().unwrap();
        assert_eq!(service(&cp).desired_count, 2);
        for i in [&a, &b] {
            assert_eq!(running_here(&cp, i).len(), 1);
            report_all(&cp, i, TaskStatus::Running.as_str());
        }
        cp.reconcile_services().unwrap();
        assert_eq!(service(&cp).running_count(), 2);

        // A new instance gets one; the others keep theirs.
        let c = add_instance(&cp, "default");
        cp.reconcile_services().unwrap();
        assert_eq!(service(&cp).desired_count, 3);
        for i in [&a, &b, &c] {
            assert_eq!(running_here(&cp, i).len(), 1, "{i}");
        }
        report_all(&cp, &c, TaskStatus::Running.as_str());

        // A DRAINING instance loses its task, and nothing replaces it elsewhere.
        cp.update_container_instances_state(
            "default",
            std::slice::from_ref(&a),
            InstanceStatus::Draining.as_str().into(),
        )
        .unwrap();
        cp.reconcile_services().unwrap();
        assert_eq!(service(&cp).desired_count, 2);
        assert!(running_here(&cp, &a).is_empty());
        report_all(&cp, &a, TaskStatus::Stopped.as_str());
        cp.reconcile_services().unwrap();
        for i in [&b, &c] {
            assert_eq!(running_here(&cp, i).len(), 1, "{i}");
        }

        // A new deployment replaces each host's task: stop first, then start (0% / 100%).
        redeploy(&cp).unwrap();
        cp.reconcile_services().unwrap();
        for i in [&b, &c] {
            assert!(running_here(&cp, i).is_empty(), "old stopped first on {i}");
            report_all(&cp, i, TaskStatus::Stopped.as_str());
        }
        cp.reconcile_services().unwrap();
        let primary = service(&cp).deployments[0].id.clone();
        for i in [&b, &c] {
            let here = running_here(&cp, i);
            assert_eq!(here.len(), 1, "{i}");
            assert_eq!(here[0].started_by.as_deref(), Some(primary.as_str()));
        }
        // The count cannot be set by hand.
        let e = cp
            .update_service(&ServiceUpdate {
                cluster: "default".into(),
                service: "api".into(),
                desired_count: Some(5),
                ..ServiceUpdate::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("DAEMON"), "{e}");
        // Deleted, without force (a daemon needs none), it stops them all.
        cp.delete_service("default", "api", false).unwrap();
        cp.reconcile_services().unwrap();
        for i in [&b, &c] {
            assert!(running_here(&cp, i).is_empty(), "{i}");
        }
    }
}
