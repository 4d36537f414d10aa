//! Tasks that never get going: a failed pull, a failed start, secrets that
//! did not resolve, and `StopTask` before the containers started. Each stops
//! with ECS's code and reason and leaves nothing behind.

use super::*;
use crate::model::{ContainerCondition, ContainerStatus, StopCode, TaskStatus};

fn created_any(h: &Harness) -> bool {
    h.rt.calls()
        .iter()
        .any(|c| matches!(c, Call::CreateContainer(_) | Call::Start(_)))
}

#[tokio::test(start_paused = true)]
async fn a_pull_failure_fails_the_task_before_anything_is_created() {
    let mut h = Harness::new();
    h.rt.fail_pull("registry.local/app:1", "manifest unknown");
    let spec = task(vec![def("db"), def("app")]);
    h.run(&spec);

    let stopped = h.until_status(TaskStatus::Stopped).await;
    let reason = "CannotPullContainerError: pull image registry.local/app:1: manifest unknown";
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert_eq!(stopped.stopped_reason.as_deref(), Some(reason));
    assert_eq!(container(&stopped, "app").reason.as_deref(), Some(reason));
    assert_eq!(container(&stopped, "db").reason, None);
    assert!(!created_any(&h), "{:#?}", h.rt.calls());
    assert_eq!(
        h.statuses(),
        [
            TaskStatus::Provisioning,
            TaskStatus::Pending,
            TaskStatus::Stopping,
            TaskStatus::Deprovisioning,
            TaskStatus::Stopped,
        ]
    );
    assert_eq!(stopped.pull_stopped_at_ms, None);
    h.assert_cleaned_up(&spec);
}

#[tokio::test(start_paused = true)]
async fn a_start_failure_fails_the_task_and_stops_what_started() {
    let mut h = Harness::new();
    let why = r#"exec: "/app": stat /app: no such file or directory"#;
    h.rt.fail_start(&cid("app"), why);
    let app = depends(def("app"), "db", ContainerCondition::Start);
    let spec = task(vec![def("db"), app]);
    h.run(&spec);

    let stopped = h.until_status(TaskStatus::Stopped).await;
    let reason = format!("CannotStartContainerError: {why}");
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert_eq!(stopped.stopped_reason.as_deref(), Some(reason.as_str()));
    let app = container(&stopped, "app");
    assert_eq!(app.reason.as_deref(), Some(reason.as_str()));
    assert_eq!(app.exit_code, None);
    assert_eq!(container(&stopped, "db").exit_code, Some(143), "SIGTERM");
    assert!(!h.statuses().contains(&TaskStatus::Running));
    h.assert_cleaned_up(&spec);
}

#[tokio::test(start_paused = true)]
async fn a_privileged_container_is_refused_where_the_host_does_not_allow_it() {
    let mut h = Harness::new();
    let mut app = def("app");
    app.options.privileged = true;
    h.desire(&[task(vec![app])]);
    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(stopped
        .stopped_reason
        .unwrap()
        .starts_with("CannotStartContainerError: privileged containers are not allowed"));
    assert!(!created_any(&h));
}

#[tokio::test(start_paused = true)]
async fn unresolved_secrets_fail_the_task_with_nothing_made() {
    let mut h = Harness::new();
    let mut spec = task(vec![def("app")]);
    let why = "ResourceInitializationError: unable to pull secrets: secret db-password not found";
    spec.secrets_error = Some(why.into());
    h.desire(&[spec]);
    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert_eq!(stopped.stopped_reason.as_deref(), Some(why));
    assert!(h.rt.calls().iter().all(|c| matches!(c, Call::Delete(_))));
    assert!(!h
        .host
        .network
        .calls()
        .iter()
        .any(|c| c.starts_with("setup_task")));
    assert!(!h
        .host
        .cgroups
        .calls()
        .iter()
        .any(|c| c.starts_with("create")));
}

#[tokio::test(start_paused = true)]
async fn stop_task_for_a_task_never_started_here_does_nothing() {
    let mut h = Harness::new();
    let mut spec = task(vec![def("app")]);
    spec.desired_status = DesiredStatus::Stopped;
    h.desire(&[spec]);
    let r = h.next().await;
    assert_eq!(r.last_status, TaskStatus::Stopped);
    assert_eq!(container(&r, "app").last_status, ContainerStatus::Stopped);
    assert_eq!(r.stop_code, None);
    // Past every timer a supervisor could have set: a late call would show.
    tokio::time::sleep(DEFAULT_STOP_TIMEOUT * 2).await;
    assert!(h.rt.calls().is_empty());
    assert!(h.host.network.calls().is_empty());
    assert!(h.host.cgroups.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn stop_task_before_a_waiting_container_starts() {
    let mut h = Harness::new();
    // app waits for a sidecar that never exits.
    let app = depends(def("app"), "init", ContainerCondition::Success);
    let spec = task(vec![non_essential("init"), app]);
    h.run(&spec);
    h.until(|r| container(r, "init").last_status == ContainerStatus::Running)
        .await;
    tokio::time::sleep(secs(5)).await;
    h.stop(&spec);

    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(
        stopped.stop_code, None,
        "the control plane gives the reason"
    );
    assert_eq!(h.created_at("app"), None);
    let app = container(&stopped, "app");
    assert_eq!(
        (app.last_status, app.exit_code),
        (ContainerStatus::Stopped, None)
    );
    assert_eq!(container(&stopped, "init").exit_code, Some(143));
    assert!(!h.statuses().contains(&TaskStatus::Running));
    h.assert_cleaned_up(&spec);
}

#[tokio::test(start_paused = true)]
async fn a_running_task_listed_with_an_unreadable_spec_keeps_running() {
    let mut h = Harness::new();
    let spec = task(vec![def("app")]);
    h.run(&spec);
    h.until_status(TaskStatus::Running).await;
    h.rt.take_calls();
    // The control plane still lists it, but its spec could not be read (another
    // protocol version, say): it is not "no longer desired".
    let unreadable = std::collections::HashSet::from([spec.id.clone()]);
    h.manager().apply_desired_except(vec![], &unreadable);
    tokio::time::sleep(DEFAULT_STOP_TIMEOUT * 2).await;
    assert!(h.kills("app").is_empty(), "{:?}", h.rt.calls());
    assert_eq!(h.manager().snapshot()[0].last_status, TaskStatus::Running);
    // Once it is listed no longer, it stops as before.
    h.desire(&[]);
    h.until_status(TaskStatus::Stopped).await;
    assert!(!h.kills("app").is_empty());
}
