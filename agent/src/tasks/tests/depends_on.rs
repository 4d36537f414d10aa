//! dependsOn: a dependent starts only once its dependency reaches the
//! condition (START, COMPLETE, SUCCESS, HEALTHY), and a condition that can
//! no longer be met fails the task before the dependent is created.

use super::*;
use crate::model::{ContainerCondition, ContainerStatus, StopCode, TaskStatus};

fn is_start_of(name: &str) -> impl Fn(&Call) -> bool {
    let id = cid(name);
    move |c| *c == Call::Start(id.clone())
}

fn is_create_of(name: &str) -> impl Fn(&Call) -> bool {
    let id = cid(name);
    move |c| matches!(c, Call::CreateContainer(s) if s.id == id)
}

#[tokio::test(start_paused = true)]
async fn start_waits_for_the_dependency_to_start() {
    let mut h = Harness::new();
    // Listed first, started second.
    let app = depends(def("app"), "db", ContainerCondition::Start);
    h.desire(&[task(vec![app, def("db")])]);
    h.until_status(TaskStatus::Running).await;
    let db_started = h.call_index(is_start_of("db")).unwrap();
    let app_created = h.call_index(is_create_of("app")).unwrap();
    assert!(db_started < app_created, "{:#?}", h.rt.calls());
}

#[tokio::test(start_paused = true)]
async fn complete_waits_for_the_dependency_to_exit_with_any_code() {
    let mut h = Harness::new();
    h.rt.exit_after(&cid("init"), secs(5), 3);
    let app = depends(def("app"), "init", ContainerCondition::Complete);
    h.desire(&[task(vec![non_essential("init"), app])]);
    let running = h.until_status(TaskStatus::Running).await;
    assert_eq!(h.created_at("init"), Some(secs(0)));
    assert_eq!(h.created_at("app"), Some(secs(5)), "right when init exited");
    let init = container(&running, "init");
    assert_eq!(
        (init.last_status, init.exit_code),
        (ContainerStatus::Stopped, Some(3))
    );
    assert_eq!(running.started_at_ms, Some(START_MS + 5_000));
}

#[tokio::test(start_paused = true)]
async fn success_waits_for_a_zero_exit() {
    let mut h = Harness::new();
    h.rt.exit_after(&cid("migrate"), secs(2), 0);
    let app = depends(def("app"), "migrate", ContainerCondition::Success);
    h.desire(&[task(vec![non_essential("migrate"), app])]);
    h.until_status(TaskStatus::Running).await;
    assert_eq!(h.created_at("app"), Some(secs(2)));
}

#[tokio::test(start_paused = true)]
async fn success_fails_the_task_when_the_dependency_exits_non_zero() {
    let mut h = Harness::new();
    h.rt.exit_after(&cid("migrate"), secs(2), 1);
    let app = depends(def("app"), "migrate", ContainerCondition::Success);
    let spec = task(vec![non_essential("migrate"), app]);
    h.run(&spec);
    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Container 'app' cannot start: its dependency 'migrate' exited with code 1 (condition SUCCESS).")
    );
    assert_eq!(h.created_at("app"), None, "the dependent is never created");
    assert!(!h.statuses().contains(&TaskStatus::Running));
    h.assert_cleaned_up(&spec);
}

#[tokio::test(start_paused = true)]
async fn healthy_waits_for_the_first_passing_check() {
    let mut h = Harness::new();
    let db = health_checked(def("db"), 10, 3, 0);
    let app = depends(def("app"), "db", ContainerCondition::Healthy);
    h.desire(&[task(vec![db, app])]);
    let running = h.until_status(TaskStatus::Running).await;
    assert_eq!(h.created_at("db"), Some(secs(0)));
    assert_eq!(
        h.created_at("app"),
        Some(secs(10)),
        "one health-check interval later"
    );
    assert_eq!(
        container(&running, "db").health_status,
        Some(crate::model::HealthStatus::Healthy)
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_timeout_gives_up_on_a_dependency() {
    let mut h = Harness::new();
    let mut db = health_checked(def("db"), 10, 3, 0);
    db.start_timeout = Some(secs(25));
    h.rt.set_exec_result(&cid("db"), crate::runtime::ExecOutcome::Exited(1));
    let app = depends(def("app"), "db", ContainerCondition::Healthy);
    h.desire(&[task(vec![db, app])]);
    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(
        stopped
            .stopped_reason
            .as_deref()
            .unwrap()
            .contains("did not reach the condition within its startTimeout of 25s"),
        "{stopped:?}"
    );
    // Noticed by the dependency re-check, within its 500 ms of the deadline.
    let failed_at = h
        .seen
        .iter()
        .find(|(_, r)| r.last_status == TaskStatus::Stopping);
    let after = failed_at.unwrap().0 - h.t0;
    assert!(
        after >= secs(25) && after <= secs(25) + Duration::from_millis(500),
        "{after:?}"
    );
    assert_eq!(h.created_at("app"), None);
}
