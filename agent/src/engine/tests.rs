//! Engine rules, one test per rule.

use std::time::Duration;

use super::*;
use crate::model::Dependency;

fn def(name: &str, essential: bool, deps: &[(&str, ContainerCondition)]) -> ContainerDef {
    ContainerDef {
        name: name.into(),
        image: "img".into(),
        command: vec![],
        entry_point: vec![],
        environment: vec![],
        working_directory: None,
        user: None,
        cpu: 0,
        memory_mib: Some(16),
        memory_reservation_mib: None,
        essential,
        stop_timeout: None,
        depends_on: deps
            .iter()
            .map(|(c, cond)| Dependency {
                container: (*c).into(),
                condition: *cond,
            })
            .collect(),
        health_check: None,
        start_timeout: None,
        options: crate::model::ContainerOptions::default(),
        port_mappings: vec![],
    }
}

fn st(def: &ContainerDef, phase: Phase, health: Option<HealthStatus>) -> ContainerView<'_> {
    ContainerView { def, phase, health }
}

const RUN: Phase = Phase::Running { started_at_ms: 0 };
fn exited(code: i32) -> Phase {
    Phase::Exited {
        started_at_ms: 0,
        exit_code: code,
    }
}
fn start(name: &str) -> Action {
    Action::Start(name.into())
}
fn stop_code(actions: &[Action]) -> Option<StopCode> {
    match actions {
        [Action::StopTask { stop_code, .. }] => Some(*stop_code),
        _ => None,
    }
}
fn reason(actions: &[Action]) -> String {
    match actions {
        [Action::StopTask { reason, .. }] => reason.clone(),
        other => panic!("expected a stop, got {other:?}"),
    }
}

#[test]
fn containers_without_dependencies_start_together() {
    let (a, b) = (def("a", true, &[]), def("b", false, &[]));
    let got = next_actions(
        &[st(&a, Phase::Waiting, None), st(&b, Phase::Waiting, None)],
        0,
    );
    assert_eq!(got, vec![start("a"), start("b")]);
}

#[test]
fn start_condition_waits_for_the_dependency_to_start() {
    let (db, app) = (
        def("db", true, &[]),
        def("app", true, &[("db", ContainerCondition::Start)]),
    );
    assert_eq!(
        next_actions(
            &[
                st(&db, Phase::Waiting, None),
                st(&app, Phase::Waiting, None)
            ],
            0
        ),
        vec![start("db")]
    );
    assert_eq!(
        next_actions(&[st(&db, RUN, None), st(&app, Phase::Waiting, None)], 0),
        vec![start("app")]
    );
}

#[test]
fn complete_condition_accepts_any_exit_code() {
    let (init, app) = (
        def("init", false, &[]),
        def("app", true, &[("init", ContainerCondition::Complete)]),
    );
    assert_eq!(
        next_actions(&[st(&init, RUN, None), st(&app, Phase::Waiting, None)], 0),
        vec![]
    );
    assert_eq!(
        next_actions(
            &[st(&init, exited(7), None), st(&app, Phase::Waiting, None)],
            0
        ),
        vec![start("app")]
    );
}

#[test]
fn success_condition_needs_exit_zero_and_fails_the_task_otherwise() {
    let (init, app) = (
        def("init", false, &[]),
        def("app", true, &[("init", ContainerCondition::Success)]),
    );
    assert_eq!(
        next_actions(
            &[st(&init, exited(0), None), st(&app, Phase::Waiting, None)],
            0
        ),
        vec![start("app")]
    );
    let got = next_actions(
        &[st(&init, exited(2), None), st(&app, Phase::Waiting, None)],
        0,
    );
    assert_eq!(stop_code(&got), Some(StopCode::TaskFailedToStart));
    let r = reason(&got);
    assert!(
        r.contains("'app'")
            && r.contains("'init'")
            && r.contains("code 2")
            && r.contains("SUCCESS"),
        "{r}"
    );
}

#[test]
fn healthy_condition_gates_on_health() {
    let (web, app) = (
        def("web", true, &[]),
        def("app", true, &[("web", ContainerCondition::Healthy)]),
    );
    assert_eq!(
        next_actions(
            &[
                st(&web, RUN, Some(HealthStatus::Unknown)),
                st(&app, Phase::Waiting, None)
            ],
            0
        ),
        vec![]
    );
    assert_eq!(
        next_actions(
            &[
                st(&web, RUN, Some(HealthStatus::Healthy)),
                st(&app, Phase::Waiting, None)
            ],
            0
        ),
        vec![start("app")]
    );
    let got = next_actions(
        &[
            st(&web, RUN, Some(HealthStatus::Unhealthy)),
            st(&app, Phase::Waiting, None),
        ],
        0,
    );
    assert!(reason(&got).contains("UNHEALTHY"));
    let web2 = def("web", false, &[]);
    let got = next_actions(
        &[
            st(&web2, exited(0), Some(HealthStatus::Unknown)),
            st(&app, Phase::Waiting, None),
        ],
        0,
    );
    assert!(reason(&got).contains("before it was healthy"));
    let got = next_actions(&[st(&web, RUN, None), st(&app, Phase::Waiting, None)], 0);
    assert!(reason(&got).contains("no health check"));
}

#[test]
fn start_timeout_gives_up_on_a_slow_dependency() {
    let mut init = def("init", false, &[]);
    init.start_timeout = Some(Duration::from_secs(10));
    let app = def("app", true, &[("init", ContainerCondition::Complete)]);
    let running = Phase::Running {
        started_at_ms: 1_000,
    };
    assert_eq!(
        next_actions(
            &[st(&init, running, None), st(&app, Phase::Waiting, None)],
            10_999
        ),
        vec![]
    );
    let got = next_actions(
        &[st(&init, running, None), st(&app, Phase::Waiting, None)],
        11_000,
    );
    assert!(reason(&got).contains("startTimeout of 10s"), "{got:?}");
    // Met in time: no timeout applies.
    let done = Phase::Exited {
        started_at_ms: 1_000,
        exit_code: 0,
    };
    assert_eq!(
        next_actions(
            &[st(&init, done, None), st(&app, Phase::Waiting, None)],
            60_000
        ),
        vec![start("app")]
    );
}

#[test]
fn failed_dependency_fails_the_task() {
    let (db, app) = (
        def("db", false, &[]),
        def("app", true, &[("db", ContainerCondition::Start)]),
    );
    let got = next_actions(
        &[st(&db, Phase::Failed, None), st(&app, Phase::Waiting, None)],
        0,
    );
    assert!(reason(&got).contains("failed to start"));
}

#[test]
fn essential_exit_stops_the_task_non_essential_does_not() {
    let (web, side) = (def("web", true, &[]), def("side", false, &[]));
    assert_eq!(
        next_actions(&[st(&web, RUN, None), st(&side, exited(1), None)], 0),
        vec![]
    );
    let got = next_actions(&[st(&web, exited(0), None), st(&side, RUN, None)], 0);
    assert_eq!(stop_code(&got), Some(StopCode::EssentialContainerExited));
    assert_eq!(reason(&got), ESSENTIAL_EXITED);
}

#[test]
fn essential_failed_start_stops_the_task() {
    let web = def("web", true, &[]);
    let got = next_actions(&[st(&web, Phase::Failed, None)], 0);
    assert_eq!(stop_code(&got), Some(StopCode::TaskFailedToStart));
}

#[test]
fn running_once_nothing_waits() {
    let (a, b) = (def("a", true, &[]), def("b", false, &[]));
    assert!(!all_started(&[
        st(&a, RUN, None),
        st(&b, Phase::Waiting, None)
    ]));
    assert!(all_started(&[st(&a, RUN, None), st(&b, exited(0), None)]));
}

#[test]
fn stop_order_is_reverse_dependency_order() {
    let defs = vec![
        def(
            "app",
            true,
            &[
                ("db", ContainerCondition::Healthy),
                ("init", ContainerCondition::Success),
            ],
        ),
        def("db", true, &[]),
        def("init", false, &[]),
        def("log", false, &[]),
    ];
    // Start order: db, init, app, log -> stop order reversed.
    assert_eq!(stop_order(&defs), vec!["log", "app", "init", "db"]);
    let chain = vec![
        def("c", true, &[("b", ContainerCondition::Start)]),
        def("b", true, &[("a", ContainerCondition::Start)]),
        def("a", true, &[]),
    ];
    assert_eq!(stop_order(&chain), vec!["c", "b", "a"]);
}

#[test]
fn health_tracker_rules() {
    let mut h = HealthTracker::new(3, Duration::from_secs(10), 0);
    assert_eq!(h.status(), HealthStatus::Unknown);
    // Failures in the start period do not count.
    for t in [1_000, 2_000, 3_000, 4_000] {
        assert_eq!(h.record(false, t), HealthStatus::Unknown);
    }
    assert_eq!(h.record(false, 10_000), HealthStatus::Unknown);
    assert_eq!(h.record(false, 11_000), HealthStatus::Unknown);
    assert_eq!(h.record(false, 12_000), HealthStatus::Unhealthy);
    assert_eq!(h.record(true, 13_000), HealthStatus::Healthy);
    assert_eq!(h.record(false, 14_000), HealthStatus::Healthy);
    // A pass inside the start period counts.
    let mut h = HealthTracker::new(1, Duration::from_secs(60), 0);
    assert_eq!(h.record(true, 1), HealthStatus::Healthy);
    assert_eq!(h.record(false, 61_000), HealthStatus::Unhealthy);
}

#[test]
fn task_health_rollup() {
    use HealthStatus::*;
    assert_eq!(task_health([]), Unknown);
    assert_eq!(task_health([Healthy, Healthy]), Healthy);
    assert_eq!(task_health([Healthy, Unknown]), Unknown);
    assert_eq!(task_health([Unknown, Unhealthy]), Unhealthy);
}
