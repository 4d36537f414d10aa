//! Stopping: an essential container's exit stops the task, containers stop
//! in reverse dependency order, and each gets SIGTERM, then SIGKILL exactly
//! its stopTimeout later if it is still running.

use super::*;
use crate::model::{ContainerCondition, ContainerStatus, StopCode, TaskStatus};
use crate::tasks::supervisor::OOM_REASON;

#[tokio::test(start_paused = true)]
async fn an_essential_exit_stops_the_others_in_reverse_dependency_order() {
    let mut h = Harness::new();
    // Started db, app, side; stopped side, (app exited), db.
    let app = depends(def("app"), "db", ContainerCondition::Start);
    let side = depends(non_essential("side"), "app", ContainerCondition::Start);
    let spec = task(vec![side, def("db"), app]);
    h.rt.exit_after(&cid("app"), secs(3), 2);
    h.run(&spec);

    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    let exits: Vec<(&str, ContainerStatus, Option<i32>)> = stopped
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.last_status, c.exit_code))
        .collect();
    assert_eq!(
        exits,
        [
            ("side", ContainerStatus::Stopped, Some(143)),
            ("db", ContainerStatus::Stopped, Some(143)),
            ("app", ContainerStatus::Stopped, Some(2)),
        ]
    );
    let sigterm_order: Vec<String> =
        h.rt.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Kill { id, signal: 15, .. } => Some(id),
                _ => None,
            })
            .collect();
    assert_eq!(
        sigterm_order,
        [cid("side"), cid("db")],
        "the exited app gets no signal"
    );
    assert_eq!(h.kills("side"), [(secs(3), 15)]);
    h.assert_cleaned_up(&spec);
}

#[tokio::test(start_paused = true)]
async fn sigkill_comes_exactly_one_stop_timeout_after_sigterm() {
    let mut h = Harness::new();
    let mut app = def("app");
    app.stop_timeout = Some(secs(7));
    // side stops first (it depends on app), with the agent's default timeout.
    let side = depends(non_essential("side"), "app", ContainerCondition::Start);
    let spec = task(vec![app, side]);
    h.rt.ignore_sigterm(&cid("app"));
    h.rt.ignore_sigterm(&cid("side"));
    h.run(&spec);
    h.until_status(TaskStatus::Running).await;
    tokio::time::sleep(secs(100)).await;
    h.stop(&spec);

    let stopped = h.until_status(TaskStatus::Stopped).await;
    let t = secs(100);
    assert_eq!(
        h.kills("side"),
        [(t, 15), (t + DEFAULT_STOP_TIMEOUT, 9)],
        "no stopTimeout: the agent's"
    );
    let t = t + DEFAULT_STOP_TIMEOUT;
    assert_eq!(h.kills("app"), [(t, 15), (t + secs(7), 9)]);
    for c in &stopped.containers {
        assert_eq!(c.exit_code, Some(137), "{} was killed", c.name);
    }
    assert_eq!(
        stopped.execution_stopped_at_ms,
        Some(START_MS + 137_000),
        "after both kills: 100 s + 30 s + 7 s"
    );
    h.assert_cleaned_up(&spec);
}

#[tokio::test(start_paused = true)]
async fn an_oom_kill_is_reported_as_ecs_does() {
    let mut h = Harness::new();
    h.rt.exit_after(&cid("app"), secs(1), 137);
    h.host
        .cgroups
        .oom_killed
        .lock()
        .unwrap()
        .insert("app".into());
    h.desire(&[task(vec![def("app")])]);
    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(
        container(&stopped, "app").reason.as_deref(),
        Some(OOM_REASON)
    );
}
