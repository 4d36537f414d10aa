//! The service reconciler: given a service and its tasks, the steps that
//! move it toward its desired count and PRIMARY deployment. Pure: no store,
//! no clock, no placement; `ControlPlane::reconcile_services` (`apply`) applies them.

mod events;
mod scale_in;
mod step;
mod task_sets;
#[cfg(test)]
mod tests;

pub use events::{started, steady_state, throttled, unable_to_place};
pub use step::{apply_to_service, Step};

use std::collections::{BTreeMap, HashMap, HashSet};

use super::hosts::{Fleet, InstanceCondition};
use crate::model::service::{failure_threshold, DeploymentStatus, RolloutState};
use crate::model::{DesiredStatus, HealthStatus, Service, StopCode, Task, TaskStatus};

/// ECS's stop code for tasks the service scheduler stops.
pub const SCHEDULER_STOP_CODE: StopCode = StopCode::ServiceSchedulerInitiated;

fn has_health_check(t: &Task) -> bool {
    t.containers
        .iter()
        .any(|c| c.definition.health_check.is_some())
}

/// RUNNING, and HEALTHY too when the task has a health check: what counts
/// toward minimumHealthyPercent and a deployment's completion.
pub fn is_healthy(t: &Task) -> bool {
    t.desired_status != DesiredStatus::Stopped
        && t.last_status == TaskStatus::Running
        && (!has_health_check(t) || t.health_status == Some(HealthStatus::Healthy))
        && t.target_health
            .as_ref()
            .is_none_or(|h| h.status == HealthStatus::Healthy)
}

/// Why a task fails its health checks: its containers', or its load balancers'.
fn failing_checks(t: &Task) -> Option<String> {
    if has_health_check(t) && t.health_status == Some(HealthStatus::Unhealthy) {
        return Some("container health checks".into());
    }
    t.target_health
        .as_ref()
        .filter(|h| h.status == HealthStatus::Unhealthy)
        .map(|h| format!("ELB health checks in (target-group {})", h.target_group_arn))
}

/// A stop that the service did not ask for and the user did not either:
/// an essential container exited, the task failed to start, ...
fn is_failure(t: &Task) -> bool {
    t.desired_status == DesiredStatus::Stopped
        && !matches!(
            t.stop_code,
            Some(StopCode::ServiceSchedulerInitiated | StopCode::UserInitiated)
        )
}

fn short_id(t: &Task) -> &str {
    &t.id
}

/// The last segment of an ARN: the id ECS prints in events.
fn arn_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Tasks on lost instances: `StopLost` each, one event per instance.
fn stop_lost<'a>(
    steps: &mut Vec<Step>,
    name: &str,
    tasks: &'a [Task],
    fleet: &Fleet,
) -> HashSet<&'a str> {
    let mut by_instance: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for t in tasks.iter().filter(|t| !t.is_stopped()) {
        let ci = t.container_instance_arn.as_deref();
        if fleet.condition(ci) == InstanceCondition::Lost {
            by_instance
                .entry(ci.unwrap_or_default())
                .or_default()
                .push(t);
        }
    }
    let mut on_lost = HashSet::new();
    for (ci, ts) in by_instance {
        let id = arn_id(ci);
        let list: Vec<String> = ts.iter().map(|t| format!("(task {})", t.id)).collect();
        steps.push(Step::Event(format!(
            "(service {name}) (container-instance {id}) lost contact with its agent; stopped {} tasks to start them elsewhere: {}.",
            ts.len(),
            list.join(" ")
        )));
        for t in ts {
            on_lost.insert(t.id.as_str());
            steps.push(Step::StopLost {
                task: t.id.clone(),
                reason: format!("Host (container-instance {id}) lost: its agent was out of contact past the grace period"),
            });
        }
    }
    on_lost
}

/// Updates each deployment's counts from its tasks (PRIMARY wants the
/// service's desired count, older ones what they still run) and forgets
/// counted failures whose tasks were purged. Returns whether anything changed.
pub fn refresh_counts(service: &mut Service, tasks: &[Task], now_ms: i64) -> bool {
    let before = service.clone();
    let desired = service.desired_count;
    for d in &mut service.deployments {
        let mine = tasks
            .iter()
            .filter(|t| t.started_by.as_deref() == Some(d.id.as_str()));
        let (mut running, mut pending, mut wanted) = (0, 0, 0);
        for t in mine.filter(|t| t.desired_status != DesiredStatus::Stopped) {
            wanted += 1;
            if t.last_status == TaskStatus::Running {
                running += 1;
            } else if t.is_pending() {
                pending += 1;
            }
        }
        let d_desired = if d.status == DeploymentStatus::Primary {
            desired
        } else {
            wanted
        };
        if (d.running_count, d.pending_count, d.desired_count) != (running, pending, d_desired) {
            d.running_count = running;
            d.pending_count = pending;
            d.desired_count = d_desired;
            d.updated_at_ms = now_ms;
        }
    }
    for ts in &mut service.task_sets {
        let (mut running, mut pending) = (0, 0);
        for t in tasks.iter().filter(|t| {
            t.started_by.as_deref() == Some(ts.id.as_str())
                && t.desired_status != DesiredStatus::Stopped
        }) {
            if t.last_status == TaskStatus::Running {
                running += 1;
            } else if t.is_pending() {
                pending += 1;
            }
        }
        ts.refresh(desired, running, pending, now_ms);
    }
    let ids: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    service
        .counted_failures
        .retain(|id| ids.contains(id.as_str()));
    *service != before
}

/// The steps that move `service` toward its desired state. `tasks` are the
/// service's tasks (any state); `fleet` says whether any instance could take
/// a task now and which instances are draining or lost.
#[allow(clippy::too_many_lines)]
pub fn reconcile(service: &Service, tasks: &[Task], fleet: &Fleet, now_ms: i64) -> Vec<Step> {
    if service.is_external() {
        return task_sets::reconcile(service, tasks, fleet);
    }
    let name = &service.name;
    let mut steps = Vec::new();
    let Some(primary) = service.primary() else {
        return steps;
    };
    let cfg = service.deployment_configuration;
    let on_lost = stop_lost(&mut steps, name, tasks, fleet);
    let draining = |t: &Task| {
        fleet.condition(t.container_instance_arn.as_deref()) == InstanceCondition::Draining
    };

    // The restart throttle: a task started since the last start failure
    // that reached RUNNING ends it; new start failures extend it.
    let mut throttle = service.throttle;
    if throttle.failures > 0
        && tasks
            .iter()
            .any(|t| t.started_at_ms.is_some() && t.created_at_ms >= throttle.last_failure_ms)
    {
        throttle = crate::model::service::RestartThrottle::default();
        steps.push(Step::EndThrottle);
    }

    // Stops not yet counted: failures of their deployment.
    let mut new_failures: HashMap<&str, u32> = HashMap::new();
    for t in tasks.iter().filter(|t| is_failure(t)) {
        let Some(dep) = t.started_by.as_deref() else {
            continue;
        };
        if service.counted_failures.contains(&t.id)
            || !service.deployments.iter().any(|d| d.id == dep)
        {
            continue;
        }
        *new_failures.entry(dep).or_default() += 1;
        steps.push(Step::CountFailure {
            deployment: dep.into(),
            task: t.id.clone(),
        });
        if t.started_at_ms.is_none() {
            throttle.record_failure(now_ms);
            steps.push(Step::StartFailed { task: t.id.clone() });
        }
    }

    // Tasks to stop this round; they count toward maximumPercent until the
    // agent reports them STOPPED, and no longer toward the healthy ones.
    let mut stopping: HashSet<&str> = HashSet::new();
    let mut stop_reasons: Vec<(&Task, String)> = Vec::new();

    // Unhealthy tasks past the grace period are replaced, and failures.
    let grace_ms = i64::from(service.health_check_grace_period_seconds.unwrap_or(0)) * 1000;
    for t in tasks
        .iter()
        .filter(|t| t.desired_status != DesiredStatus::Stopped && !on_lost.contains(t.id.as_str()))
    {
        let Some(checks) = failing_checks(t) else {
            continue;
        };
        let since = t.started_at_ms.unwrap_or(t.created_at_ms);
        if now_ms < since + grace_ms {
            continue;
        }
        stopping.insert(&t.id);
        stop_reasons.push((t, format!("Task failed {checks}")));
        steps.push(Step::Event(format!(
            "(service {name}) (task {}) failed {checks}.",
            short_id(t)
        )));
        if let Some(dep) = t.started_by.as_deref() {
            *new_failures.entry(dep).or_default() += 1;
            steps.push(Step::CountFailure {
                deployment: dep.into(),
                task: t.id.clone(),
            });
        }
    }

    // The deployment circuit breaker.
    let mut primary_failed = primary.rollout_state == RolloutState::Failed;
    let failed = primary.failed_tasks + new_failures.get(primary.id.as_str()).copied().unwrap_or(0);
    if primary.rollout_state == RolloutState::InProgress
        && cfg.circuit_breaker.enable
        && failed >= failure_threshold(service.desired_count)
    {
        primary_failed = true;
        steps.push(Step::SetRollout {
            deployment: primary.id.clone(),
            state: RolloutState::Failed,
            reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
        });
        steps.push(Step::Event(format!(
            "(service {name}) (deployment {}) deployment failed: tasks failed to start.",
            primary.id
        )));
        if let (true, false, Some((td, to))) = (
            cfg.circuit_breaker.rollback,
            primary.is_rollback,
            service.last_completed.as_ref(),
        ) {
            steps.push(Step::Event(format!(
                "(service {name}) (deployment {}) rolling back to deployment {to}.",
                primary.id
            )));
            steps.push(Step::Rollback {
                task_definition: td.clone(),
                to_deployment: to.clone(),
            });
            push_stops(&mut steps, name, &stop_reasons);
            return steps;
        }
    }

    let desired = service.desired_count;
    let active = service.status == crate::model::service::ServiceStatus::Active;
    let max_total = cfg.maximum_tasks(desired) as usize;
    let min_healthy = cfg.minimum_healthy(desired) as usize;
    let live: Vec<&Task> = tasks
        .iter()
        .filter(|t| !t.is_stopped() && !on_lost.contains(t.id.as_str()))
        .collect();
    let wanted = |t: &Task, stopping: &HashSet<&str>| {
        t.desired_status != DesiredStatus::Stopped && !stopping.contains(t.id.as_str())
    };
    // Tasks on a DRAINING instance are replaced as old deployments' are.
    let in_primary =
        |t: &&Task| t.started_by.as_deref() == Some(primary.id.as_str()) && !draining(t);

    // Scale in: the PRIMARY deployment runs more than desired.
    let mut primary_tasks: Vec<&Task> = live
        .iter()
        .copied()
        .filter(|t| in_primary(t) && wanted(t, &stopping))
        .collect();
    // Keep healthy and older tasks: stop unhealthy, then newest first.
    primary_tasks.sort_by_key(|t| (is_healthy(t), std::cmp::Reverse(t.created_at_ms)));
    let surplus = primary_tasks.len().saturating_sub(desired as usize);
    let scale_in = format!("Scaling activity initiated by (deployment {})", primary.id);
    // Protected tasks (UpdateTaskProtection) count, but are not stopped until it expires
    // (a service being deleted stops them all).
    let protected = |t: &Task| active && t.is_protected(now_ms);
    primary_tasks.retain(|t| !protected(t));
    let surplus = surplus.min(primary_tasks.len());
    for t in scale_in::victims(&primary.capacity_provider_strategy, &primary_tasks, surplus) {
        stopping.insert(&t.id);
        stop_reasons.push((t, scale_in.clone()));
    }

    // Replace older deployments' tasks within minimumHealthyPercent. A
    // FAILED deployment without rollback stops replacing them.
    if !primary_failed {
        let mut healthy = live
            .iter()
            .filter(|t| wanted(t, &stopping) && is_healthy(t))
            .count();
        let mut old: Vec<&Task> = live
            .iter()
            .copied()
            .filter(|t| !in_primary(t) && wanted(t, &stopping) && !protected(t))
            .collect();
        // Tasks that are not healthy go first: stopping them costs nothing.
        old.sort_by_key(|t| (is_healthy(t), t.created_at_ms));
        for t in old {
            if is_healthy(t) {
                if healthy <= min_healthy {
                    break;
                }
                healthy -= 1;
            }
            stopping.insert(&t.id);
            stop_reasons.push((t, scale_in.clone()));
        }
    }

    // Start PRIMARY tasks within maximumPercent.
    let primary_wanted = live
        .iter()
        .filter(|t| in_primary(t) && wanted(t, &stopping))
        .count();
    let need = (desired as usize).saturating_sub(primary_wanted);
    let room = max_total.saturating_sub(live.len());
    let start = need.min(room);
    if start > 0 && active && !primary_failed && throttle.is_throttling(now_ms) {
        let msg = throttled(name);
        if service.events.first().map(|e| &e.message) != Some(&msg) {
            steps.push(Step::Event(msg));
        }
    } else if start > 0 && active && !primary_failed {
        if fleet.can_place {
            steps.push(Step::Start {
                deployment: primary.id.clone(),
                count: u32::try_from(start).unwrap_or(u32::MAX),
            });
        } else {
            let msg = unable_to_place(name);
            if service.events.first().map(|e| &e.message) != Some(&msg) {
                steps.push(Step::Event(msg));
            }
        }
    }
    push_stops(&mut steps, name, &stop_reasons);

    // Older deployments with nothing left leave; the PRIMARY completes once
    // it alone runs, all healthy.
    let mut old_left = false;
    for d in service.deployments.iter().filter(|d| d.id != primary.id) {
        if live
            .iter()
            .any(|t| t.started_by.as_deref() == Some(d.id.as_str()))
        {
            old_left = true;
        } else {
            steps.push(Step::Retire {
                deployment: d.id.clone(),
            });
        }
    }
    let strays = live.iter().any(|t| {
        t.started_by
            .as_deref()
            .is_none_or(|s| !service.deployments.iter().any(|d| d.id == s))
    });
    let primary_healthy = live
        .iter()
        .filter(|t| in_primary(t) && wanted(t, &stopping) && is_healthy(t))
        .count();
    let settled = !old_left
        && !strays
        && stop_reasons.is_empty()
        && primary_healthy == desired as usize
        && live.len() == desired as usize;
    if settled && active && primary.rollout_state == RolloutState::InProgress {
        steps.push(Step::SetRollout {
            deployment: primary.id.clone(),
            state: RolloutState::Completed,
            reason: format!("ECS deployment {} completed.", primary.id),
        });
        steps.push(Step::Event(format!(
            "(service {name}) (deployment {}) deployment completed.",
            primary.id
        )));
    }
    if settled && active && !primary_failed {
        let msg = steady_state(name);
        let last = steps
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Event(m) => Some(m),
                _ => None,
            })
            .or(service.events.first().map(|e| &e.message));
        if last != Some(&msg) {
            steps.push(Step::Event(msg));
        }
    }
    if service.status == crate::model::service::ServiceStatus::Draining && live.is_empty() {
        steps.push(Step::Inactive);
    }
    steps
}

/// One `Stop` per task, and one event naming them all, as ECS words it.
fn push_stops(steps: &mut Vec<Step>, name: &str, to_stop: &[(&Task, String)]) {
    if to_stop.is_empty() {
        return;
    }
    let running = to_stop
        .iter()
        .filter(|(t, _)| t.last_status == TaskStatus::Running)
        .count();
    let list: Vec<String> = to_stop
        .iter()
        .map(|(t, _)| format!("(task {})", short_id(t)))
        .collect();
    let what = if running == to_stop.len() {
        "running tasks"
    } else {
        "tasks"
    };
    steps.push(Step::Event(format!(
        "(service {name}) has stopped {} {what}: {}.",
        to_stop.len(),
        list.join(" ")
    )));
    for (t, reason) in to_stop {
        steps.push(Step::Stop {
            task: t.id.clone(),
            reason: reason.clone(),
        });
    }
}
