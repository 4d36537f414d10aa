//! The targets each target group has: those registered with `RegisterTargets`, and the
//! running tasks of every ECS service that names the group in its `loadBalancers`
//! (as ECS registers them: a task joins once it is RUNNING, and leaves, to drain, once it
//! is told to stop).

use std::collections::{BTreeMap, BTreeSet};

use berth_ecs::{DesiredStatus, TaskStatus};
use serde::Deserialize;

use super::config::Config;
use super::model::Target;
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

/// The targets ECS services put in target groups now, by group ARN.
pub fn service_targets(cp: &ControlPlane) -> BTreeMap<String, BTreeSet<Target>> {
    let state = cp.lock();
    let mut out: BTreeMap<String, BTreeSet<Target>> = BTreeMap::new();
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
                    out.entry(tg.clone()).or_default().insert(Target {
                        id: ip.clone(),
                        port,
                    });
                }
            }
        }
    }
    out
}

/// Every target group's targets: registered ones and the services'.
pub fn effective(
    config: &Config,
    services: &BTreeMap<String, BTreeSet<Target>>,
) -> BTreeMap<String, BTreeSet<Target>> {
    config
        .target_groups
        .values()
        .map(|tg| {
            let mut targets: BTreeSet<Target> = tg.targets.iter().cloned().collect();
            if let Some(s) = services.get(&tg.arn) {
                targets.extend(s.iter().cloned());
            }
            (tg.arn.clone(), targets)
        })
        .collect()
}
