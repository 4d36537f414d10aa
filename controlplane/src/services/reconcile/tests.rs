//! The reconciler driven through whole deployments: a fake world applies
//! its steps, the test moves tasks through their lifecycle and the clock.

use super::*;
use crate::model::service::Deployment;
use crate::model::service::{
    CircuitBreaker, DeploymentConfiguration, RestartThrottle, ServiceEvent, ServiceStatus,
};
use crate::model::task_definition::tests_support::container;
use crate::model::task_definition::HealthCheck;
use crate::model::{LaunchType, NetworkMode, Resources, TaskContainer};

const T0: i64 = 1_700_000_000_000;

struct World {
    service: Service,
    tasks: Vec<Task>,
    now: i64,
    /// Task definitions with a container health check.
    health_checked: HashSet<String>,
    next: u32,
    /// Instance conditions the reconciler sees.
    fleet: Fleet,
    /// The instance new tasks are placed on.
    place_on: String,
}

fn service(desired: u32, cfg: DeploymentConfiguration) -> Service {
    let mut s = Service {
        name: "web".into(),
        arn: "arn:aws:ecs:us-east-1:1:service/default/web".into(),
        cluster: "default".into(),
        cluster_arn: "arn:aws:ecs:us-east-1:1:cluster/default".into(),
        task_definition: String::new(),
        desired_count: desired,
        launch_type: LaunchType::Ec2,
        status: ServiceStatus::Active,
        deployment_configuration: cfg,
        health_check_grace_period_seconds: None,
        enable_execute_command: false,
        tags: vec![],
        deployments: vec![],
        events: vec![],
        last_completed: None,
        counted_failures: vec![],
        throttle: RestartThrottle::default(),
        created_at_ms: T0,
        capacity_provider_strategy: vec![],
        placement_strategy: vec![],
        placement_constraints: vec![],
        past_deployments: vec![],
        kept: serde_json::Map::new(),
        scheduling_strategy: crate::model::service::SchedulingStrategy::Replica,
        task_sets: vec![],
    };
    s.start_deployment(Deployment::new("td:1", desired, LaunchType::Ec2, T0));
    s
}

impl World {
    fn new(desired: u32, cfg: DeploymentConfiguration) -> Self {
        Self {
            service: service(desired, cfg),
            tasks: vec![],
            now: T0,
            health_checked: HashSet::new(),
            next: 0,
            fleet: Fleet::serving(),
            place_on: "arn:ci".into(),
        }
    }

    /// One reconciler pass with its steps applied; the steps.
    fn tick_with(&mut self, instances_ok: bool) -> Vec<Step> {
        self.now += 1000;
        refresh_counts(&mut self.service, &self.tasks, self.now);
        self.fleet.can_place = instances_ok;
        let steps = reconcile(&self.service, &self.tasks, &self.fleet, self.now);
        for step in &steps {
            match step {
                Step::Start { deployment, count } => {
                    let td = self
                        .service
                        .deployments
                        .iter()
                        .find(|d| &d.id == deployment)
                        .unwrap()
                        .task_definition
                        .clone();
                    for _ in 0..*count {
                        let t = self.task(&td, deployment);
                        self.tasks.push(t);
                    }
                }
                Step::Stop { task, reason } => {
                    let t = self.tasks.iter_mut().find(|t| &t.id == task).unwrap();
                    t.request_stop(SCHEDULER_STOP_CODE, reason, self.now);
                }
                Step::StopLost { task, reason } => {
                    let t = self.tasks.iter_mut().find(|t| &t.id == task).unwrap();
                    t.request_stop(SCHEDULER_STOP_CODE, reason, self.now);
                    t.last_status = "STOPPED".into();
                }
                other => apply_to_service(&mut self.service, other, self.now),
            }
        }
        refresh_counts(&mut self.service, &self.tasks, self.now);
        steps
    }

    fn tick(&mut self) -> Vec<Step> {
        self.tick_with(true)
    }

    fn task(&mut self, td: &str, deployment: &str) -> Task {
        self.next += 1;
        let mut c = container("web");
        if self.health_checked.contains(td) {
            c.health_check = Some(HealthCheck {
                command: vec!["CMD".into(), "true".into()],
                interval_secs: 5,
                timeout_secs: 2,
                retries: 1,
                start_period_secs: 0,
            });
        }
        let id = format!("t{:02}", self.next);
        Task {
            arn: format!("arn:aws:ecs:us-east-1:1:task/default/{id}"),
            cluster: "default".into(),
            cluster_arn: "arn:c".into(),
            task_definition_arn: td.into(),
            family: "td".into(),
            revision: 1,
            container_instance_arn: Some(self.place_on.clone()),
            placement_strategy: vec![],
            placement_constraints: vec![],
            launch_type: LaunchType::Ec2,
            capacity_provider_name: None,
            network_mode: NetworkMode::Bridge,
            desired_status: "RUNNING".into(),
            last_status: "PROVISIONING".into(),
            cpu: None,
            memory_mib: None,
            reserved: Resources::default(),
            containers: vec![TaskContainer {
                health_status: c.health_check.as_ref().map(|_| "UNKNOWN".into()),
                definition: c,
                arn: format!("arn:container/{id}"),
                last_status: "PENDING".into(),
                exit_code: None,
                reason: None,
                runtime_id: None,
                image_digest: None,
                network_bindings: vec![],
            }],
            started_by: Some(deployment.into()),
            group: Some("service:web".into()),
            overrides: serde_json::json!({}),
            tags: vec![],
            enable_execute_command: false,
            created_at_ms: self.now,
            protected_until_ms: None,
            drain_until_ms: None,
            target_health: None,
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            started_at_ms: None,
            stopping_at_ms: None,
            stopped_at_ms: None,
            execution_stopped_at_ms: None,
            stop_code: None,
            stopped_reason: None,
            attachment_id: "att".into(),
            private_ipv4: None,
            mac_address: None,
            version: 1,
            health_status: Some("UNKNOWN".into()),
            volumes: vec![],
            id,
        }
    }

    /// The agent starts every pending task (health checks pass if `healthy`).
    fn run_all(&mut self, healthy: bool) {
        for t in &mut self.tasks {
            if t.desired_status == "RUNNING" && t.last_status == "PROVISIONING" {
                t.last_status = "RUNNING".into();
                t.started_at_ms = Some(self.now);
                if has_health_check(t) && healthy {
                    t.health_status = Some("HEALTHY".into());
                }
            }
        }
    }

    /// The agent finishes every stop it was asked for.
    fn finish_stops(&mut self) {
        for t in &mut self.tasks {
            if t.desired_status == "STOPPED" {
                t.last_status = "STOPPED".into();
            }
        }
    }

    /// An essential container exits: the agent stops the task on its own.
    fn crash(&mut self, id: &str) {
        let t = self.tasks.iter_mut().find(|t| t.id == id).unwrap();
        t.desired_status = "STOPPED".into();
        t.last_status = "STOPPED".into();
        t.stop_code = Some("EssentialContainerExited".into());
    }

    fn live(&self) -> Vec<&Task> {
        self.tasks.iter().filter(|t| !t.is_stopped()).collect()
    }

    fn live_of(&self, td: &str) -> usize {
        self.live()
            .iter()
            .filter(|t| t.task_definition_arn == td && t.desired_status == "RUNNING")
            .count()
    }

    fn healthy(&self) -> usize {
        self.tasks.iter().filter(|t| is_healthy(t)).count()
    }

    fn primary(&self) -> &Deployment {
        self.service.primary().unwrap()
    }

    /// Until the PRIMARY completes: start and stop everything asked, check
    /// the bounds after every pass.
    fn roll(&mut self, min: usize, max: usize) {
        for _ in 0..30 {
            self.tick();
            assert!(
                self.live().len() <= max,
                "over maximum: {}",
                self.live().len()
            );
            assert!(self.healthy() >= min, "under minimum: {}", self.healthy());
            if self.primary().rollout_state == RolloutState::Completed {
                return;
            }
            self.run_all(true);
            self.finish_stops();
        }
        panic!("no steady state: {:?}", self.service.events);
    }

    fn update(&mut self, td: &str) {
        let d = Deployment::new(td, self.service.desired_count, LaunchType::Ec2, self.now);
        self.service.start_deployment(d);
    }

    fn messages(&self) -> Vec<&str> {
        self.service
            .events
            .iter()
            .map(|e| e.message.as_str())
            .collect()
    }
}

/// A service of `desired` at `cfg`, its first deployment completed.
fn steady(desired: u32, cfg: DeploymentConfiguration) -> World {
    let mut w = World::new(desired, cfg);
    let steps = w.tick();
    assert_eq!(
        steps,
        vec![Step::Start {
            deployment: w.primary().id.clone(),
            count: desired
        }]
    );
    w.run_all(true);
    let steps = w.tick();
    assert!(
        steps.contains(&Step::Event(steady_state("web"))),
        "{steps:?}"
    );
    assert_eq!(w.primary().rollout_state, RolloutState::Completed);
    assert_eq!(w.primary().running_count, desired);
    assert_eq!(
        w.service.last_completed,
        Some(("td:1".into(), w.primary().id.clone()))
    );
    w
}

#[test]
fn ecs_doc_example_100_200_goes_v1x3_then_both_then_v2x3() {
    let mut w = steady(3, DeploymentConfiguration::default());
    w.update("td:2");
    w.tick();
    // Three new tasks start beside the three old ones; none stop yet.
    assert_eq!((w.live_of("td:1"), w.live_of("td:2")), (3, 3));
    // Not RUNNING yet: the old ones stay.
    w.tick();
    assert_eq!((w.live_of("td:1"), w.live_of("td:2")), (3, 3));
    w.run_all(true);
    let steps = w.tick();
    let stop_count = steps
        .iter()
        .filter(|s| matches!(s, Step::Stop { .. }))
        .count();
    assert_eq!(stop_count, 3);
    assert_eq!((w.live_of("td:1"), w.live_of("td:2")), (0, 3));
    let stopped: Vec<&Task> = w
        .tasks
        .iter()
        .filter(|t| t.task_definition_arn == "td:1")
        .collect();
    assert!(stopped
        .iter()
        .all(|t| t.stop_code == Some(SCHEDULER_STOP_CODE)));
    assert!(stopped[0]
        .stopped_reason
        .as_deref()
        .unwrap()
        .starts_with("Scaling activity initiated by (deployment ecs-svc/"));
    assert!(w.messages()[0].starts_with("(service web) has stopped 3 running tasks: (task t0"));
    // Still DEACTIVATING: not complete until the old ones are gone.
    assert_eq!(w.primary().rollout_state, RolloutState::InProgress);
    w.finish_stops();
    w.tick();
    assert_eq!(w.primary().rollout_state, RolloutState::Completed);
    assert_eq!(w.service.deployments.len(), 1, "the old deployment retired");
    assert_eq!(w.messages()[0], "(service web) has reached a steady state.");
    assert!(w.messages()[1].ends_with("deployment completed."));
}

#[test]
fn at_50_100_the_service_never_drops_below_half() {
    let cfg = DeploymentConfiguration {
        minimum_healthy_percent: 50,
        maximum_percent: 100,
        ..DeploymentConfiguration::default()
    };
    let mut w = steady(4, cfg);
    w.update("td:2");
    let steps = w.tick();
    // No room above 100%: two old tasks stop first.
    assert!(!steps.iter().any(|s| matches!(s, Step::Start { .. })));
    assert_eq!(w.live_of("td:1"), 2);
    assert_eq!(w.healthy(), 2);
    w.finish_stops();
    w.roll(2, 4);
    assert_eq!(w.live_of("td:2"), 4);
    assert_eq!(w.live().len(), 4);
}

#[test]
fn rolling_bounds_hold_for_odd_sizes() {
    for (desired, min_pct, max_pct) in [(3, 50, 150), (5, 100, 120), (1, 0, 100), (2, 100, 150)] {
        let cfg = DeploymentConfiguration {
            minimum_healthy_percent: min_pct,
            maximum_percent: max_pct,
            ..DeploymentConfiguration::default()
        };
        let mut w = steady(desired, cfg);
        w.update("td:2");
        w.roll(
            cfg.minimum_healthy(desired) as usize,
            cfg.maximum_tasks(desired) as usize,
        );
        assert_eq!(
            w.live_of("td:2"),
            desired as usize,
            "{desired} {min_pct} {max_pct}"
        );
    }
}

#[test]
fn a_stopped_task_is_replaced_and_only_crashes_count_as_failures() {
    let mut w = steady(2, DeploymentConfiguration::default());
    let first = w.tasks[0].id.clone();
    // The user stops one: replaced, not a failure.
    w.tasks[0].request_stop(StopCode::UserInitiated, "bye", w.now);
    w.finish_stops();
    let steps = w.tick();
    assert!(steps.contains(&Step::Start {
        deployment: w.primary().id.clone(),
        count: 1
    }));
    assert_eq!(w.primary().failed_tasks, 0);
    w.run_all(true);
    w.tick();
    assert_eq!(w.messages()[0], steady_state("web"));
    // An essential container exits: replaced, and counted once.
    let second = w.tasks[1].id.clone();
    assert_ne!(first, second);
    w.crash(&second);
    let steps = w.tick();
    assert!(steps.contains(&Step::CountFailure {
        deployment: w.primary().id.clone(),
        task: second.clone()
    }));
    w.tick();
    assert_eq!(w.primary().failed_tasks, 1);
    // A completed deployment is not failed by later crashes.
    assert_eq!(w.primary().rollout_state, RolloutState::Completed);
    // Purged stopped tasks are forgotten.
    w.tasks.retain(|t| t.id != second);
    w.tick();
    assert!(w.service.counted_failures.is_empty());
}

#[test]
fn health_checked_tasks_must_be_healthy_before_old_ones_stop() {
    let mut w = steady(2, DeploymentConfiguration::default());
    w.health_checked.insert("td:2".into());
    w.update("td:2");
    w.tick();
    w.run_all(false);
    // RUNNING but health UNKNOWN: the old ones stay.
    let steps = w.tick();
    assert!(
        !steps.iter().any(|s| matches!(s, Step::Stop { .. })),
        "{steps:?}"
    );
    for t in &mut w.tasks {
        if t.task_definition_arn == "td:2" {
            t.health_status = Some("HEALTHY".into());
        }
    }
    w.tick();
    assert_eq!(w.live_of("td:1"), 0);
}

#[test]
fn unhealthy_tasks_are_replaced_after_the_grace_period() {
    let mut w = World::new(1, DeploymentConfiguration::default());
    w.health_checked.insert("td:1".into());
    w.service.health_check_grace_period_seconds = Some(10);
    w.tick();
    w.run_all(false);
    w.tasks[0].health_status = Some("UNHEALTHY".into());
    // Within the grace period: left alone.
    let steps = w.tick();
    assert!(!steps.iter().any(|s| matches!(s, Step::Stop { .. })));
    w.now += 9_000;
    let steps = w.tick();
    let id = w.tasks[0].id.clone();
    assert!(steps.contains(&Step::Stop {
        task: id.clone(),
        reason: "Task failed container health checks".into()
    }));
    assert!(steps.contains(&Step::Event(format!(
        "(service web) (task {id}) failed container health checks."
    ))));
    assert_eq!(w.primary().failed_tasks, 1);
    // The replacement starts once the unhealthy one is gone (max 200%
    // leaves room at once), and the stop is not counted twice.
    assert!(w
        .tasks
        .iter()
        .any(|t| t.id != id && t.desired_status == "RUNNING"));
    w.finish_stops();
    w.tick();
    assert_eq!(w.primary().failed_tasks, 1);
}

#[test]
fn tasks_whose_targets_fail_elb_health_checks_are_replaced_after_the_grace_period() {
    use crate::model::task::TargetHealth;
    let mut w = World::new(1, DeploymentConfiguration::default());
    w.service.health_check_grace_period_seconds = Some(10);
    w.tick();
    w.run_all(false);
    let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";
    let health = |status: &str| {
        Some(TargetHealth {
            status: status.into(),
            target_group_arn: tg.into(),
        })
    };
    w.tasks[0].target_health = health("UNKNOWN");
    assert!(!is_healthy(&w.tasks[0]), "not checked yet: not healthy");
    w.tasks[0].target_health = health("HEALTHY");
    assert!(is_healthy(&w.tasks[0]));
    w.tasks[0].target_health = health("UNHEALTHY");
    let steps = w.tick();
    assert!(
        !steps.iter().any(|s| matches!(s, Step::Stop { .. })),
        "in the grace period"
    );
    w.now += 10_000;
    let steps = w.tick();
    let id = w.tasks[0].id.clone();
    assert!(steps.contains(&Step::Stop {
        task: id.clone(),
        reason: format!("Task failed ELB health checks in (target-group {tg})")
    }));
    assert!(steps.contains(&Step::Event(format!(
        "(service web) (task {id}) failed ELB health checks in (target-group {tg})."
    ))));
}

fn breaker(rollback: bool) -> DeploymentConfiguration {
    DeploymentConfiguration {
        circuit_breaker: CircuitBreaker {
            enable: true,
            rollback,
        },
        ..DeploymentConfiguration::default()
    }
}

/// Rolls `td:bad` whose tasks crash as they start, until the breaker trips.
fn crash_until_failed(w: &mut World) -> String {
    w.update("td:bad");
    let bad = w.primary().id.clone();
    for _ in 0..10 {
        w.tick();
        if w.service
            .deployments
            .iter()
            .any(|d| d.id == bad && d.rollout_state == RolloutState::Failed)
        {
            return bad;
        }
        let crashing: Vec<String> = w
            .live()
            .iter()
            .filter(|t| t.task_definition_arn == "td:bad")
            .map(|t| t.id.clone())
            .collect();
        for id in crashing {
            w.crash(&id);
        }
        // The old tasks keep serving throughout.
        assert_eq!(w.live_of("td:1"), 2);
    }
    panic!("the breaker never tripped: {:?}", w.messages());
}

#[test]
fn circuit_breaker_fails_the_deployment_at_the_threshold_and_rolls_back() {
    let mut w = steady(2, breaker(true));
    let good = w.primary().id.clone();
    let bad = crash_until_failed(&mut w);
    let failed = w.service.deployments.iter().find(|d| d.id == bad).unwrap();
    // Threshold for 2 tasks: 0.5 x 2 = 1, clamped to 3; tasks crash in
    // pairs here, so the pass that trips it has seen 4.
    assert_eq!(failed.failed_tasks, 4);
    assert_eq!(
        failed.rollout_state_reason,
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert_eq!(failed.status, DeploymentStatus::Active);
    let primary = w.primary().clone();
    assert_eq!(primary.task_definition, "td:1");
    assert_eq!(w.service.task_definition, "td:1");
    assert_eq!(
        primary.rollout_state_reason,
        format!("ECS deployment circuit breaker: rolling back to deploymentId {good}.")
    );
    let m = w.messages();
    assert!(m.contains(
        &format!("(service web) (deployment {bad}) deployment failed: tasks failed to start.")
            .as_str()
    ));
    // The rollback deployment converges like any other.
    w.roll(2, 4);
    assert_eq!(w.service.deployments.len(), 1);
    assert_eq!(w.primary().id, primary.id);
}

#[test]
fn circuit_breaker_trips_at_exactly_the_threshold() {
    // 10 tasks: 0.5 x 10 = 5 failures.
    let mut w = steady(10, breaker(false));
    w.update("td:bad");
    w.tick();
    for n in 1..=5 {
        let id = w
            .live()
            .iter()
            .find(|t| t.task_definition_arn == "td:bad")
            .map(|t| t.id.clone())
            .unwrap();
        w.crash(&id);
        w.tick();
        let expected = if n < 5 {
            RolloutState::InProgress
        } else {
            RolloutState::Failed
        };
        assert_eq!(w.primary().rollout_state, expected, "after {n} failures");
        assert_eq!(w.primary().failed_tasks, n);
    }
}

#[test]
fn circuit_breaker_without_rollback_stops_launching_and_keeps_old_tasks() {
    let mut w = steady(2, breaker(false));
    let bad = crash_until_failed(&mut w);
    assert_eq!(w.primary().id, bad);
    assert_eq!(w.primary().rollout_state, RolloutState::Failed);
    for _ in 0..3 {
        let steps = w.tick();
        assert!(
            !steps
                .iter()
                .any(|s| matches!(s, Step::Start { .. } | Step::Stop { .. })),
            "{steps:?}"
        );
    }
    assert_eq!(w.live_of("td:1"), 2);
}

#[test]
fn a_failing_rollback_is_not_rolled_back_again() {
    let mut w = steady(2, breaker(true));
    w.service.last_completed = Some(("td:bad".into(), "ecs-svc/1".into()));
    let bad = crash_until_failed(&mut w);
    assert_ne!(w.primary().id, bad, "rolled back once");
    assert!(w.primary().is_rollback);
    // The rollback (to td:bad again) fails too: it stays FAILED.
    let rollback = w.primary().id.clone();
    for _ in 0..10 {
        w.tick();
        let crashing: Vec<String> = w
            .live()
            .iter()
            .filter(|t| t.task_definition_arn == "td:bad")
            .map(|t| t.id.clone())
            .collect();
        for id in crashing {
            w.crash(&id);
        }
    }
    assert_eq!(w.primary().id, rollback);
    assert_eq!(w.primary().rollout_state, RolloutState::Failed);
}

#[test]
fn circuit_breaker_disabled_keeps_trying() {
    let mut w = steady(2, DeploymentConfiguration::default());
    w.update("td:bad");
    for _ in 0..6 {
        // They never reach RUNNING: the restart throttle spaces the tries
        // out (up to 27 minutes), but never ends them.
        w.now += crate::model::service::RESTART_DELAY_MAX_MS;
        w.tick();
        let ids: Vec<String> = w
            .live()
            .iter()
            .filter(|t| t.task_definition_arn == "td:bad")
            .map(|t| t.id.clone())
            .collect();
        for id in ids {
            w.crash(&id);
        }
    }
    assert_eq!(w.primary().rollout_state, RolloutState::InProgress);
    assert!(w.primary().failed_tasks >= 6);
}

#[test]
fn no_instance_is_an_event_once_not_a_start() {
    let mut w = World::new(2, DeploymentConfiguration::default());
    let steps = w.tick_with(false);
    assert_eq!(steps, vec![Step::Event(unable_to_place("web"))]);
    assert!(w.tick_with(false).is_empty(), "not repeated");
    assert!(matches!(w.tick()[0], Step::Start { count: 2, .. }));
}

#[test]
fn scale_in_stops_unhealthy_then_newest() {
    let mut w = steady(3, DeploymentConfiguration::default());
    w.service.desired_count = 1;
    w.tasks[0].created_at_ms = T0 - 10; // the oldest stays
    let steps = w.tick();
    let stopped: Vec<&str> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Stop { task, .. } => Some(task.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(stopped.len(), 2);
    assert!(!stopped.contains(&w.tasks[0].id.as_str()));
    w.finish_stops();
    w.tick();
    assert_eq!(w.primary().running_count, 1);
    assert_eq!(w.primary().desired_count, 1);
}

#[test]
fn scale_in_and_deployments_leave_protected_tasks_until_it_expires() {
    let stopped = |steps: &[Step]| -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Stop { task, .. } => Some(task.clone()),
                _ => None,
            })
            .collect()
    };
    let mut w = steady(3, DeploymentConfiguration::default());
    w.service.desired_count = 1;
    let until = w.now + 10_000;
    w.tasks[1].protected_until_ms = Some(until);
    w.tasks[2].protected_until_ms = Some(until);
    // Two too many, but only one unprotected task to take.
    assert_eq!(stopped(&w.tick()), [w.tasks[0].id.clone()]);
    w.finish_stops();
    assert!(stopped(&w.tick()).is_empty(), "protected tasks stay");
    w.now = until;
    assert_eq!(stopped(&w.tick()).len(), 1, "expired: scale-in goes on");
}

#[test]
fn draining_stops_everything_then_goes_inactive() {
    let mut w = steady(2, DeploymentConfiguration::default());
    w.service.status = ServiceStatus::Draining;
    w.service.desired_count = 0;
    let steps = w.tick();
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(s, Step::Stop { .. }))
            .count(),
        2
    );
    assert!(!steps.contains(&Step::Inactive));
    w.finish_stops();
    assert_eq!(w.tick(), vec![Step::Inactive]);
    assert_eq!(w.service.status, ServiceStatus::Inactive);
}

#[test]
fn events_are_newest_first_and_capped() {
    let mut s = service(1, DeploymentConfiguration::default());
    for i in 0..150 {
        s.push_event(format!("e{i}"), T0 + i);
    }
    assert_eq!(s.events.len(), 100);
    assert_eq!(
        s.events.first().map(|e: &ServiceEvent| e.message.as_str()),
        Some("e149")
    );
    assert_eq!(s.events.last().unwrap().message, "e50");
}

#[test]
fn event_wording_is_ecs() {
    assert_eq!(
        started("web", &["abc".into()]),
        "(service web) has started 1 tasks: (task abc)."
    );
    assert_eq!(
        steady_state("web"),
        "(service web) has reached a steady state."
    );
    assert!(unable_to_place("web").starts_with("(service web) was unable to place a task because no container instance met all of its requirements."));
}

mod heal;
