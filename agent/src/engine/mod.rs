//! The task engine: ECS's container rules as pure functions. Given the
//! task's containers and where each one is, it says which to start next and
//! when the task must stop; it also orders the stop and rolls up health.
//! No I/O, no clock of its own: `now_ms` comes in.

mod health;

use crate::model::{ContainerCondition, ContainerDef, HealthStatus, StopCode};

pub use health::{task_health, HealthTracker};

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet (waiting for its dependencies).
    Waiting,
    Running {
        started_at_ms: i64,
    },
    Exited {
        started_at_ms: i64,
        exit_code: i32,
    },
    /// Will never start: its start failed.
    Failed,
}

impl Phase {
    fn started_at(self) -> Option<i64> {
        match self {
            Phase::Running { started_at_ms } | Phase::Exited { started_at_ms, .. } => {
                Some(started_at_ms)
            }
            Phase::Waiting | Phase::Failed => None,
        }
    }
}

/// One container as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView<'a> {
    pub def: &'a ContainerDef,
    pub phase: Phase,
    pub health: Option<HealthStatus>,
}

/// What the supervisor should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start(String),
    StopTask { stop_code: StopCode, reason: String },
}

pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";

enum DependencyState {
    Met,
    Pending,
    Never(String),
}

fn dependency_state(
    dependent: &str,
    dep: &ContainerView<'_>,
    condition: ContainerCondition,
    now_ms: i64,
) -> DependencyState {
    let name = &dep.def.name;
    let cond = condition.as_str();
    let never = |why: String| {
        DependencyState::Never(format!("Container '{dependent}' cannot start: its dependency '{name}' {why} (condition {cond})."))
    };
    let met = match (condition, dep.phase) {
        (_, Phase::Failed) => return never("failed to start".into()),
        (_, Phase::Waiting)
        | (ContainerCondition::Complete | ContainerCondition::Success, Phase::Running { .. }) => {
            false
        }
        (ContainerCondition::Start, _)
        | (ContainerCondition::Complete, Phase::Exited { .. })
        | (ContainerCondition::Success, Phase::Exited { exit_code: 0, .. }) => true,
        (ContainerCondition::Success, Phase::Exited { exit_code, .. }) => {
            return never(format!("exited with code {exit_code}"))
        }
        (ContainerCondition::Healthy, Phase::Exited { exit_code, .. }) => {
            return never(format!(
                "stopped (exit code {exit_code}) before it was healthy"
            ))
        }
        (ContainerCondition::Healthy, Phase::Running { .. }) => match dep.health {
            Some(HealthStatus::Healthy) => true,
            Some(HealthStatus::Unhealthy) => return never("is UNHEALTHY".into()),
            None => return never("has no health check".into()),
            Some(HealthStatus::Unknown) => false,
        },
    };
    if met {
        return DependencyState::Met;
    }
    match (dep.def.start_timeout, dep.phase.started_at()) {
        (Some(limit), Some(started))
            if now_ms - started >= i64::try_from(limit.as_millis()).unwrap_or(i64::MAX) =>
        {
            never(format!(
                "did not reach the condition within its startTimeout of {}s",
                limit.as_secs()
            ))
        }
        _ => DependencyState::Pending,
    }
}

/// The next actions for a task whose containers are in `containers`
/// (definition order). A `StopTask`, when present, is the only action.
pub fn next_actions(containers: &[ContainerView<'_>], now_ms: i64) -> Vec<Action> {
    if containers
        .iter()
        .any(|c| c.def.essential && matches!(c.phase, Phase::Exited { .. }))
    {
        return vec![Action::StopTask {
            stop_code: StopCode::EssentialContainerExited,
            reason: ESSENTIAL_EXITED.into(),
        }];
    }
    if let Some(c) = containers
        .iter()
        .find(|c| c.def.essential && c.phase == Phase::Failed)
    {
        return vec![Action::StopTask {
            stop_code: StopCode::TaskFailedToStart,
            reason: format!("Essential container '{}' failed to start.", c.def.name),
        }];
    }
    let mut starts = Vec::new();
    for c in containers.iter().filter(|c| c.phase == Phase::Waiting) {
        let mut all_met = true;
        for dep in &c.def.depends_on {
            let Some(target) = containers.iter().find(|t| t.def.name == dep.container) else {
                return vec![Action::StopTask {
                    stop_code: StopCode::TaskFailedToStart,
                    reason: format!(
                        "Container '{}' depends on unknown container '{}'.",
                        c.def.name, dep.container
                    ),
                }];
            };
            match dependency_state(&c.def.name, target, dep.condition, now_ms) {
                DependencyState::Met => {}
                DependencyState::Pending => all_met = false,
                DependencyState::Never(reason) => {
                    return vec![Action::StopTask {
                        stop_code: StopCode::TaskFailedToStart,
                        reason,
                    }];
                }
            }
        }
        if all_met {
            starts.push(Action::Start(c.def.name.clone()));
        }
    }
    starts
}

/// True once every container has left `Waiting`: the task is RUNNING.
pub fn all_started(containers: &[ContainerView<'_>]) -> bool {
    containers.iter().all(|c| c.phase != Phase::Waiting)
}

/// The order to stop containers in: a container stops only after every
/// container that depends on it (reverse dependency order; ties in reverse
/// definition order).
pub fn stop_order(defs: &[ContainerDef]) -> Vec<String> {
    // Start order: repeatedly take the first definition whose dependencies are placed.
    let mut placed: Vec<&str> = Vec::with_capacity(defs.len());
    while placed.len() < defs.len() {
        let next = defs.iter().find(|d| {
            !placed.contains(&d.name.as_str())
                && d.depends_on.iter().all(|dep| {
                    placed.contains(&dep.container.as_str())
                        || !defs.iter().any(|x| x.name == dep.container)
                })
        });
        match next {
            Some(d) => placed.push(&d.name),
            // A cycle (rejected at registration): fall back to definition order.
            None => {
                for d in defs {
                    if !placed.contains(&d.name.as_str()) {
                        placed.push(&d.name);
                    }
                }
            }
        }
    }
    placed.iter().rev().map(|s| (*s).to_string()).collect()
}

#[cfg(test)]
mod tests;
