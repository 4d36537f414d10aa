//! Host failure (lost and DRAINING instances) and the restart throttle,
//! driven through the same fake world.

use super::*;

const A: &str = "arn:aws:ecs:us-east-1:1:container-instance/default/aaa";
const B: &str = "arn:aws:ecs:us-east-1:1:container-instance/default/bbb";

/// A steady service of `desired` on instance A; new tasks go to B from now.
fn steady_on_a(desired: u32, cfg: DeploymentConfiguration) -> World {
    let mut w = World::new(desired, cfg);
    w.place_on = A.into();
    w.tick();
    w.run_all(true);
    w.tick();
    assert_eq!(w.primary().rollout_state, RolloutState::Completed);
    w.place_on = B.into();
    w
}

fn on(w: &World, instance: &str) -> Vec<Task> {
    w.live()
        .into_iter()
        .filter(|t| t.container_instance_arn.as_deref() == Some(instance))
        .cloned()
        .collect()
}

fn starts(steps: &[Step]) -> u32 {
    steps
        .iter()
        .map(|s| match s {
            Step::Start { count, .. } => *count,
            _ => 0,
        })
        .sum()
}

fn stops(steps: &[Step]) -> Vec<&str> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Stop { task, .. } => Some(task.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_disconnected_instance_within_the_grace_keeps_its_tasks() {
    let mut w = steady_on_a(3, DeploymentConfiguration::default());
    w.fleet
        .instances
        .insert(A.into(), InstanceCondition::Disconnected);
    let steps = w.tick();
    assert!(steps.is_empty(), "{steps:?}");
    assert_eq!(on(&w, A).len(), 3);
}

#[test]
fn a_lost_instance_s_tasks_are_stopped_and_started_elsewhere() {
    let mut w = steady_on_a(3, DeploymentConfiguration::default());
    let old: Vec<String> = on(&w, A).iter().map(|t| t.id.clone()).collect();
    w.fleet.instances.insert(A.into(), InstanceCondition::Lost);
    let steps = w.tick();
    assert_eq!(starts(&steps), 3, "{steps:?}");
    assert!(stops(&steps).is_empty(), "nothing for an agent to do");
    for id in &old {
        let t = w.tasks.iter().find(|t| &t.id == id).unwrap();
        assert_eq!(t.last_status, "STOPPED");
        assert_eq!(t.desired_status, "STOPPED");
        assert_eq!(t.stop_code, Some(SCHEDULER_STOP_CODE));
        assert!(
            t.stopped_reason
                .as_deref()
                .unwrap()
                .starts_with("Host (container-instance aaa) lost"),
            "{t:?}"
        );
    }
    assert!(
        w.messages().iter().any(|m| m.starts_with(
            "(service web) (container-instance aaa) lost contact with its agent; stopped 3 tasks"
        )),
        "{:?}",
        w.messages()
    );
    // A lost host is not the revision's fault: no failures, no throttle.
    assert_eq!(w.primary().failed_tasks, 0);
    assert_eq!(w.service.throttle, RestartThrottle::default());
    assert_eq!(on(&w, B).len(), 3);
    w.run_all(true);
    w.tick();
    assert_eq!(w.messages()[0], steady_state("web"));
    // The agent comes back: its old tasks are STOPPED here (its desired set
    // no longer holds them); the service has its 3 and does nothing more.
    w.fleet
        .instances
        .insert(A.into(), InstanceCondition::Serving);
    assert!(w.tick().is_empty());
    assert_eq!(w.live().len(), 3);
}

#[test]
fn a_lost_instance_is_reported_once() {
    let mut w = steady_on_a(2, DeploymentConfiguration::default());
    w.fleet.instances.insert(A.into(), InstanceCondition::Lost);
    w.tick();
    w.run_all(true);
    w.tick();
    let steps = w.tick();
    assert!(steps.is_empty(), "{steps:?}");
    let lost_events = w
        .messages()
        .iter()
        .filter(|m| m.contains("lost contact"))
        .count();
    assert_eq!(lost_events, 1);
}

#[test]
fn tasks_already_stopping_on_a_lost_instance_free_their_room() {
    // At 100/100... not allowed; 50/100: two of four stop first, and their
    // instance is lost before the agent reports them.
    let cfg = DeploymentConfiguration {
        minimum_healthy_percent: 50,
        maximum_percent: 100,
        ..DeploymentConfiguration::default()
    };
    let mut w = steady_on_a(4, cfg);
    w.update("td:2");
    let steps = w.tick();
    assert_eq!(stops(&steps).len(), 2);
    assert_eq!(starts(&steps), 0, "no room above 100%");
    w.fleet.instances.insert(A.into(), InstanceCondition::Lost);
    let steps = w.tick();
    // All four are gone: four new ones, within 100%.
    assert_eq!(starts(&steps), 4, "{steps:?}");
    assert!(w.live().len() <= 4);
    assert_eq!(w.live_of("td:2"), 4);
}

#[test]
fn draining_tasks_are_replaced_within_the_bounds() {
    let mut w = steady_on_a(3, DeploymentConfiguration::default());
    w.fleet
        .instances
        .insert(A.into(), InstanceCondition::Draining);
    let steps = w.tick();
    assert_eq!(starts(&steps), 3, "200% leaves room for all three");
    assert!(stops(&steps).is_empty(), "not before the new ones run");
    // Not RUNNING yet: the draining ones stay.
    assert!(stops(&w.tick()).is_empty());
    w.run_all(true);
    let steps = w.tick();
    assert_eq!(stops(&steps).len(), 3);
    assert!(stops(&steps)
        .iter()
        .all(|id| on(&w, A).iter().any(|t| &t.id == id)));
    assert!(on(&w, A).iter().all(|t| t.desired_status == "STOPPED"));
    w.finish_stops();
    w.tick();
    assert_eq!(w.messages()[0], steady_state("web"));
    assert_eq!(on(&w, B).len(), 3);
}

#[test]
fn draining_at_50_100_never_drops_below_half() {
    let cfg = DeploymentConfiguration {
        minimum_healthy_percent: 50,
        maximum_percent: 100,
        ..DeploymentConfiguration::default()
    };
    let mut w = steady_on_a(4, cfg);
    w.fleet
        .instances
        .insert(A.into(), InstanceCondition::Draining);
    for _ in 0..10 {
        w.tick();
        assert!(w.live().len() <= 4, "over maximum");
        assert!(w.healthy() >= 2, "under minimum");
        w.run_all(true);
        w.finish_stops();
    }
    assert_eq!(on(&w, A).len(), 0);
    assert_eq!(on(&w, B).len(), 4);
}

#[test]
fn an_instance_back_from_draining_leaves_no_surplus() {
    let mut w = steady_on_a(3, DeploymentConfiguration::default());
    w.fleet
        .instances
        .insert(A.into(), InstanceCondition::Draining);
    w.tick();
    w.run_all(true);
    // Set ACTIVE again before the old ones were stopped: six primary tasks
    // for three wanted; the newest three go, never more than 200% at once.
    w.fleet
        .instances
        .insert(A.into(), InstanceCondition::Serving);
    let steps = w.tick();
    let stopped = stops(&steps);
    assert_eq!(stopped.len(), 3);
    assert!(stopped
        .iter()
        .all(|id| on(&w, B).iter().any(|t| &t.id == id)));
    w.finish_stops();
    w.tick();
    assert_eq!(on(&w, A).len(), 3);
    assert_eq!(w.live().len(), 3);
}

/// The agent gives up on a task before it runs (bad image, no resources).
fn fail_to_start(w: &mut World) {
    for t in &mut w.tasks {
        if t.desired_status == "RUNNING" && t.last_status == "PROVISIONING" {
            t.desired_status = "STOPPED".into();
            t.last_status = "STOPPED".into();
            t.stop_code = Some("TaskFailedToStart".into());
        }
    }
}

#[test]
fn tasks_that_never_start_are_restarted_with_growing_delays() {
    let mut w = World::new(1, DeploymentConfiguration::default());
    w.tick();
    // Two free restarts.
    for n in 1..=2 {
        fail_to_start(&mut w);
        assert_eq!(starts(&w.tick()), 1, "restart {n} at once");
    }
    // The third failure: held back 10 s, with ECS's event, once.
    fail_to_start(&mut w);
    let steps = w.tick();
    assert_eq!(starts(&steps), 0);
    assert!(steps.contains(&Step::Event(throttled("web"))), "{steps:?}");
    assert_eq!(w.service.throttle.failures, 3);
    assert!(w.tick().is_empty(), "no repeated event");
    w.now += 7_000; // 9 s since the failure
    assert_eq!(starts(&w.tick()), 0);
    assert_eq!(starts(&w.tick()), 1, "10 s after the failure");
    // The fourth: 20 s.
    fail_to_start(&mut w);
    w.tick();
    w.now += 18_000;
    assert_eq!(starts(&w.tick()), 0);
    assert_eq!(starts(&w.tick()), 1);
    // It runs at last: the throttle ends.
    w.run_all(true);
    let steps = w.tick();
    assert!(steps.contains(&Step::EndThrottle), "{steps:?}");
    assert_eq!(w.service.throttle, RestartThrottle::default());
}

#[test]
fn crashes_after_running_are_not_throttled() {
    let mut w = steady(1, DeploymentConfiguration::default());
    for _ in 0..5 {
        let id = w.live()[0].id.clone();
        w.crash(&id);
        assert_eq!(starts(&w.tick()), 1);
        w.run_all(true);
        w.tick();
    }
    assert_eq!(w.service.throttle.failures, 0);
}

#[test]
fn a_new_deployment_ends_the_throttle() {
    let mut w = World::new(1, DeploymentConfiguration::default());
    w.tick();
    for _ in 0..3 {
        fail_to_start(&mut w);
        w.tick();
    }
    assert!(w.service.throttle.is_throttling(w.now));
    w.update("td:2");
    assert_eq!(w.service.throttle, RestartThrottle::default());
    assert_eq!(starts(&w.tick()), 1);
}
