//! The targets each target group has: those registered with `RegisterTargets`, and the
//! running tasks of every ECS service that names the group in its `loadBalancers`
//! (as ECS registers them: a task joins once it is RUNNING, and leaves, to drain, once it
//! is told to stop).

use std::collections::{BTreeMap, BTreeSet};

use berth_ecs::{DesiredStatus, TaskStatus};
use serde::Deserialize;

use super::config::Config;
use super::health::{HealthTable, State};
use super::model::Target;
use crate::model::task::TargetHealth;
use crate::model::HealthStatus;
use crate::state::ControlPlane;

/// One `loadBalancers` entry of a service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLoadBalancer {
    pub target_group_arn: Option<String>,
    pub container_name: Option<String>,
    pub container_port: Option<u16>,
}

/// A service's `loadBalancers`, as it keeps them.
pub fn of_service(
    kept: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<ServiceLoadBalancer>, String> {
    match kept.get("loadBalancers") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| format!("loadBalancers is not valid: {e}")),
    }
}

/// The targets ECS services put in target groups now, by group ARN, each with its task's
/// id.
pub type ServiceTargets = BTreeMap<String, BTreeMap<Target, String>>;

pub fn service_targets(cp: &ControlPlane) -> ServiceTargets {
    let state = cp.lock();
    let mut out = ServiceTargets::new();
    for service in state.services.values() {
        let lbs = of_service(&service.kept).unwrap_or_default();
        if lbs.is_empty() {
            continue;
        }
        let group = service.group();
        let running = state.tasks.values().filter(|t| {
            t.cluster == service.cluster
                && t.group.as_deref() == Some(group.as_str())
                && t.last_status == TaskStatus::Running
                && t.desired_status == DesiredStatus::Running
        });
        for task in running {
            let Some(ip) = &task.private_ipv4 else {
                continue;
            };
            for lb in &lbs {
                if let (Some(tg), Some(port)) = (&lb.target_group_arn, lb.container_port) {
                    let target = Target {
                        id: ip.clone(),
                        port,
                    };
                    out.entry(tg.clone())
                        .or_default()
                        .insert(target, task.id.clone());
                }
            }
        }
    }
    out
}

/// Every target group's targets: registered ones and the services'.
pub fn effective(config: &Config, services: &ServiceTargets) -> BTreeMap<String, BTreeSet<Target>> {
    config
        .target_groups
        .values()
        .map(|tg| {
            let mut targets: BTreeSet<Target> = tg.targets.iter().cloned().collect();
            if let Some(s) = services.get(&tg.arn) {
                targets.extend(s.keys().cloned());
            }
            (tg.arn.clone(), targets)
        })
        .collect()
}

/// Each service task's targets' health: UNHEALTHY (with the group) when one of its
/// targets is, HEALTHY when all are, else UNKNOWN (not yet checked, or draining).
pub fn task_health(
    services: &ServiceTargets,
    table: &HealthTable,
) -> BTreeMap<String, TargetHealth> {
    let mut out: BTreeMap<String, TargetHealth> = BTreeMap::new();
    for (tg, targets) in services {
        for (target, task) in targets {
            let status = match table.get(tg, target).map(|h| h.state) {
                Some(State::Healthy) => HealthStatus::Healthy,
                Some(State::Unhealthy) => HealthStatus::Unhealthy,
                _ => HealthStatus::Unknown,
            };
            let rank = |s: HealthStatus| match s {
                HealthStatus::Unhealthy => 2,
                HealthStatus::Unknown => 1,
                HealthStatus::Healthy => 0,
            };
            let entry = out.entry(task.clone()).or_insert_with(|| TargetHealth {
                status,
                target_group_arn: tg.clone(),
            });
            if rank(status) > rank(entry.status) {
                *entry = TargetHealth {
                    status,
                    target_group_arn: tg.clone(),
                };
            }
        }
    }
    out
}

impl ControlPlane {
    /// Records service tasks' target health where it changed (the reconciler replaces
    /// tasks whose targets stay unhealthy past the grace period).
    pub fn set_target_health(
        &self,
        health: &BTreeMap<String, TargetHealth>,
    ) -> Result<(), crate::state::StateError> {
        let mut state = self.lock();
        let changed: Vec<crate::model::Task> = health
            .iter()
            .filter_map(|(id, h)| {
                let t = state.tasks.get(id)?;
                (t.target_health.as_ref() != Some(h)).then(|| crate::model::Task {
                    target_health: Some(h.clone()),
                    ..t.clone()
                })
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let writes: Vec<crate::store::Write> = changed
            .iter()
            .map(|t| {
                crate::store::Write::put(
                    crate::store::Table::Tasks,
                    t.id.clone(),
                    crate::state::encode(t),
                )
            })
            .collect();
        self.store.apply(&writes)?;
        for t in changed {
            state.tasks.insert(t.id.clone(), t);
        }
        Ok(())
    }
}
