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
/// id and its service's key.
pub type ServiceTargets = BTreeMap<String, BTreeMap<Target, (String, String)>>;

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
                        .insert(target, (task.id.clone(), service.key()));
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
        for (target, (task, _)) in targets {
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

/// The events ECS writes when its scheduler registers and deregisters a service's
/// targets, from what changed between two looks: (service key, message).
pub fn registration_events(before: &ServiceTargets, now: &ServiceTargets) -> Vec<(String, String)> {
    let mut counts: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let empty = BTreeMap::new();
    let groups: BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    for tg in groups {
        let (old, new) = (
            before.get(tg).unwrap_or(&empty),
            now.get(tg).unwrap_or(&empty),
        );
        for (t, (_, service)) in new {
            if !old.contains_key(t) {
                counts.entry((service.clone(), tg.clone())).or_default().0 += 1;
            }
        }
        for (t, (_, service)) in old {
            if !new.contains_key(t) {
                counts.entry((service.clone(), tg.clone())).or_default().1 += 1;
            }
        }
    }
    let mut events = Vec::new();
    for ((service, tg), (added, removed)) in counts {
        let name = service
            .split_once('/')
            .map_or(service.as_str(), |(_, n)| n)
            .to_string();
        if removed > 0 {
            events.push((
                service.clone(),
                format!("(service {name}) has begun draining connections on {removed} tasks."),
            ));
            events.push((
                service.clone(),
                format!("(service {name}) deregistered {removed} targets in (target-group {tg})"),
            ));
        }
        if added > 0 {
            events.push((
                service.clone(),
                format!("(service {name}) registered {added} targets in (target-group {tg})"),
            ));
        }
    }
    events
}

impl ControlPlane {
    /// Adds events to services (by key), as the load balancers' data plane reports them.
    pub fn push_service_events(
        &self,
        events: &[(String, String)],
    ) -> Result<(), crate::state::StateError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        let mut state = self.lock();
        let mut changed: BTreeMap<String, crate::model::Service> = BTreeMap::new();
        for (key, message) in events {
            let Some(s) = changed
                .get(key)
                .cloned()
                .or_else(|| state.services.get(key).cloned())
            else {
                continue;
            };
            let mut s = s;
            s.push_event(message.clone(), now);
            changed.insert(key.clone(), s);
        }
        let writes: Vec<crate::store::Write> = changed
            .values()
            .map(|s| {
                crate::store::Write::put(
                    crate::store::Table::Services,
                    s.key(),
                    crate::state::encode(s),
                )
            })
            .collect();
        self.store.apply(&writes)?;
        for (key, s) in changed {
            state.services.insert(key, s);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(list: &[(&str, &str)]) -> BTreeMap<Target, (String, String)> {
        list.iter()
            .map(|(ip, task)| {
                (
                    Target {
                        id: (*ip).to_string(),
                        port: 80,
                    },
                    ((*task).to_string(), "default/web".to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn registrations_and_deregistrations_read_as_ecs_events() {
        let before = ServiceTargets::from([("tg-a".to_string(), targets(&[("10.0.0.1", "t1")]))]);
        let now = ServiceTargets::from([(
            "tg-a".to_string(),
            targets(&[("10.0.0.2", "t2"), ("10.0.0.3", "t3")]),
        )]);
        let events: Vec<String> = registration_events(&before, &now)
            .into_iter()
            .map(|(service, m)| {
                assert_eq!(service, "default/web");
                m
            })
            .collect();
        assert_eq!(
            events,
            [
                "(service web) has begun draining connections on 1 tasks.",
                "(service web) deregistered 1 targets in (target-group tg-a)",
                "(service web) registered 2 targets in (target-group tg-a)",
            ]
        );
        assert!(registration_events(&now, &now).is_empty());
    }

    #[test]
    fn a_task_s_target_health_is_its_worst_target_s() {
        use super::super::health::CheckOutcome;
        use super::super::model::HealthCheck;
        let mut table = HealthTable::default();
        let services = ServiceTargets::from([
            (
                "tg-a".to_string(),
                targets(&[("10.0.0.1", "t1"), ("10.0.0.2", "t2")]),
            ),
            ("tg-b".to_string(), targets(&[("10.0.0.1", "t1")])),
        ]);
        for (tg, set) in &services {
            table.sync(tg, &set.keys().cloned().collect(), 0, 0);
        }
        let hc = HealthCheck::default();
        let t1 = Target {
            id: "10.0.0.1".into(),
            port: 80,
        };
        table.observe("tg-a", &t1, &CheckOutcome::Passed, &hc);
        let h = task_health(&services, &table);
        assert_eq!(
            h["t1"].status,
            HealthStatus::Unknown,
            "tg-b not checked yet"
        );
        assert_eq!(h["t1"].target_group_arn, "tg-b");
        assert_eq!(h["t2"].status, HealthStatus::Unknown);
        for _ in 0..2 {
            table.observe("tg-b", &t1, &CheckOutcome::Timeout, &hc);
        }
        assert_eq!(
            task_health(&services, &table)["t1"].status,
            HealthStatus::Unhealthy
        );
        table.observe("tg-b", &t1, &CheckOutcome::Passed, &hc);
        assert_eq!(
            task_health(&services, &table)["t1"].status,
            HealthStatus::Unhealthy,
            "one pass is under the healthy threshold"
        );
    }
}
