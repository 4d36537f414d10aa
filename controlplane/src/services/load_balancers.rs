//! A service's `loadBalancers`, checked as ECS checks them when a service is created or
//! updated: each names a target group that exists, is attached to a load balancer and
//! takes the task's addresses, and a container and port of the task definition.

use std::sync::Arc;

use crate::lb::targets::ServiceLoadBalancer;
use crate::model::{NetworkMode, Task, TaskDefinition, TaskStatus};
use crate::state::{encode, ControlPlane, State, StateError};
use crate::store::{Table, Write};

/// What a service needs to know of a target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetGroupFacts {
    /// Targets are IP addresses (`ip`), as awsvpc tasks need.
    pub by_ip: bool,
    /// A listener or rule of some load balancer forwards to it.
    pub attached: bool,
    /// How long a deregistered target drains.
    pub deregistration_delay_ms: i64,
}

/// The target groups, as the load balancers hold them.
pub trait TargetGroups: Send + Sync {
    fn facts(&self, arn: &str) -> Option<TargetGroupFacts>;
}

impl ControlPlane {
    /// Until when a service task told to stop now keeps running while its targets
    /// drain: the longest deregistration delay of its service's target groups. None for
    /// a task that is not serving behind a load balancer.
    pub(crate) fn drain_until(&self, state: &State, t: &Task, now_ms: i64) -> Option<i64> {
        if t.last_status != TaskStatus::Running || t.private_ipv4.is_none() {
            return None;
        }
        let groups = self.target_groups.get()?;
        let service = state
            .services
            .values()
            .find(|s| s.cluster == t.cluster && t.group.as_deref() == Some(s.group().as_str()))?;
        let delay = crate::lb::targets::of_service(&service.kept)
            .unwrap_or_default()
            .iter()
            .filter_map(|lb| groups.facts(lb.target_group_arn.as_deref()?))
            .map(|f| f.deregistration_delay_ms)
            .max()?;
        (delay > 0).then_some(now_ms + delay)
    }

    /// Lets go of the tasks whose draining is over: their agents are told to stop them.
    pub fn finish_draining(&self) -> Result<usize, StateError> {
        let now = self.now_ms();
        let mut state = self.lock();
        let done: Vec<Task> = state
            .tasks
            .values()
            .filter(|t| t.drain_until_ms.is_some_and(|at| at <= now))
            .map(|t| Task {
                drain_until_ms: None,
                version: t.version + 1,
                ..t.clone()
            })
            .collect();
        if done.is_empty() {
            return Ok(0);
        }
        let writes: Vec<Write> = done
            .iter()
            .map(|t| Write::put(Table::Tasks, t.id.clone(), encode(t)))
            .collect();
        self.store.apply(&writes)?;
        let instances: Vec<String> = done
            .iter()
            .filter_map(|t| t.container_instance_arn.clone())
            .collect();
        let n = done.len();
        for t in done {
            state.tasks.insert(t.id.clone(), t);
        }
        Self::notify(&state, instances);
        Ok(n)
    }

    /// Lets service commands check target groups (set once, at start).
    pub fn set_target_groups(&self, groups: Arc<dyn TargetGroups>) {
        let _ = self.target_groups.set(groups);
    }

    /// ECS's checks of `lbs` against `td` and the target groups.
    pub(crate) fn check_load_balancers(
        &self,
        lbs: &[ServiceLoadBalancer],
        td: &TaskDefinition,
    ) -> Result<(), StateError> {
        let invalid = |m: String| Err(StateError::InvalidParameter(m));
        for lb in lbs {
            let Some(arn) = &lb.target_group_arn else {
                return invalid("loadBalancers: targetGroupArn must be specified; Berth serves target groups (elbv2), not Classic Load Balancers.".into());
            };
            let (Some(name), Some(port)) = (&lb.container_name, lb.container_port) else {
                return invalid(format!("loadBalancers: containerName and containerPort must be specified for target group {arn}."));
            };
            let Some(container) = td.containers.iter().find(|c| c.name == *name) else {
                return invalid(format!(
                    "The container {name} does not exist in the task definition."
                ));
            };
            if !container
                .port_mappings
                .iter()
                .any(|p| p.container_port == port)
            {
                return invalid(format!(
                    "The container {name} did not have a container port {port} defined."
                ));
            }
            let Some(groups) = self.target_groups.get() else {
                continue;
            };
            let Some(facts) = groups.facts(arn) else {
                return invalid(format!("The target group with targetGroupArn {arn} does not exist: create it with elbv2 CreateTargetGroup."));
            };
            if !facts.attached {
                return invalid(format!(
                    "The target group with targetGroupArn {arn} does not have an associated load balancer."
                ));
            }
            if td.network_mode == NetworkMode::Awsvpc && !facts.by_ip {
                return invalid(format!("The provided target group {arn} has target type instance, which is incompatible with the awsvpc network mode specified in the task definition."));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::task::TaskReport;
    use crate::model::task_definition::tests_support::container;
    use crate::model::task_definition::Registration;
    use crate::state::test_support::{add_instance, control_plane_with_clock, FixedClock};

    struct Groups(BTreeMap<&'static str, TargetGroupFacts>);

    impl TargetGroups for Groups {
        fn facts(&self, arn: &str) -> Option<TargetGroupFacts> {
            self.0.get(arn).copied()
        }
    }

    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";

    fn facts(by_ip: bool, attached: bool) -> TargetGroupFacts {
        TargetGroupFacts {
            by_ip,
            attached,
            deregistration_delay_ms: 5_000,
        }
    }

    fn setup() -> (ControlPlane, Arc<FixedClock>) {
        let (cp, _, clock) = control_plane_with_clock();
        add_instance(&cp, "default");
        let mut c = container("web");
        c.memory_mib = Some(64);
        c.port_mappings = vec![crate::model::ports::PortMapping {
            container_port: 80,
            host_port: None,
            protocol: crate::model::ports::Protocol::Tcp,
        }];
        let td = Registration {
            family: "web".into(),
            network_mode: Some("awsvpc".into()),
            containers: vec![c],
            ..Registration::default()
        };
        cp.register_task_definition("us-east-1", &td, serde_json::json!({}), vec![])
            .unwrap();
        cp.set_target_groups(Arc::new(Groups(BTreeMap::from([
            (TG, facts(true, true)),
            ("loose", facts(true, false)),
            ("by-instance", facts(false, true)),
        ]))));
        (cp, clock)
    }

    fn create(cp: &ControlPlane, name: &str, lb: &serde_json::Value) -> Result<(), String> {
        let body = serde_json::json!({"serviceName": name, "taskDefinition": "web",
            "desiredCount": 1, "loadBalancers": [lb]});
        crate::api::ecs::dispatch(
            cp,
            "us-east-1",
            "CreateService",
            body.to_string().as_bytes(),
        )
        .map(|_| ())
        .map_err(|e| e.message)
    }

    #[test]
    fn load_balancers_are_checked_as_ecs_checks_them() {
        let (cp, _) = setup();
        let lb = |tg: &str, name: &str, port: u16| serde_json::json!({"targetGroupArn": tg, "containerName": name, "containerPort": port});
        assert_eq!(
            create(&cp, "a", &lb(TG, "db", 80)).unwrap_err(),
            "The container db does not exist in the task definition."
        );
        assert_eq!(
            create(&cp, "b", &lb(TG, "web", 8080)).unwrap_err(),
            "The container web did not have a container port 8080 defined."
        );
        assert!(create(&cp, "c", &lb("nope", "web", 80))
            .unwrap_err()
            .contains("does not exist"));
        assert_eq!(
            create(&cp, "d", &lb("loose", "web", 80)).unwrap_err(),
            "The target group with targetGroupArn loose does not have an associated load balancer."
        );
        assert!(create(&cp, "e", &lb("by-instance", "web", 80))
            .unwrap_err()
            .contains("incompatible with the awsvpc network mode"));
        let bad = serde_json::json!({"targetGroupArn": TG, "containerName": "web", "containerPort": "http"});
        assert!(create(&cp, "f", &bad)
            .unwrap_err()
            .contains("loadBalancers is not valid"));
        create(&cp, "ok", &lb(TG, "web", 80)).unwrap();
    }

    #[test]
    fn a_service_task_behind_a_load_balancer_drains_before_its_agent_stops_it() {
        let (cp, clock) = setup();
        let lb =
            serde_json::json!({"targetGroupArn": TG, "containerName": "web", "containerPort": 80});
        create(&cp, "web", &lb).unwrap();
        cp.reconcile_services().unwrap();
        let task = cp.lock().tasks.values().next().cloned().unwrap();
        let instance = task.container_instance_arn.clone().unwrap();
        let running = TaskReport {
            private_ipv4: Some("10.0.0.9".into()),
            ..TaskReport::new(&task.arn, TaskStatus::Running)
        };
        cp.apply_report(&instance, &running).unwrap();
        cp.update_service(&crate::services::ServiceUpdate {
            cluster: "default".into(),
            service: "web".into(),
            desired_count: Some(0),
            ..crate::services::ServiceUpdate::default()
        })
        .unwrap();
        cp.reconcile_services().unwrap();
        let old = cp.lock().tasks[&task.id].clone();
        assert_eq!(old.desired_status, crate::model::DesiredStatus::Stopped);
        let until = old.drain_until_ms.expect("draining");
        assert_eq!(until, cp.now_ms() + 5_000, "the target group's delay");
        let spec = |cp: &ControlPlane| {
            let t = cp.desired_tasks(&instance);
            assert_eq!(t.len(), 1, "the agent still holds it");
            t[0].drain_until_ms
        };
        assert!(spec(&cp).is_some());
        assert_eq!(cp.finish_draining().unwrap(), 0, "not yet");
        clock.advance_ms(5_000);
        assert_eq!(cp.finish_draining().unwrap(), 1);
        assert_eq!(spec(&cp), None, "now its agent is told to stop it");
    }
}
