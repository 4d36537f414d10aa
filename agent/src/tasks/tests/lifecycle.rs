//! A task's whole life when all goes well: statuses in order, timestamps
//! from the injected clock, files and records made, and nothing left after.

use super::*;
use crate::model::{ContainerStatus, TaskStatus};
use crate::tasks::container_spec;

#[tokio::test(start_paused = true)]
async fn a_task_runs_stops_on_request_and_leaves_nothing_behind() {
    let mut h = Harness::new();
    let spec = task(vec![def("app")]);
    h.run(&spec);

    let running = h.until_status(TaskStatus::Running).await;
    assert_eq!(
        h.statuses(),
        [
            TaskStatus::Provisioning,
            TaskStatus::Pending,
            TaskStatus::Pending, // the container started
            TaskStatus::Running,
        ]
    );
    let app = container(&running, "app");
    assert_eq!(app.last_status, ContainerStatus::Running);
    assert_eq!(app.runtime_id.as_deref(), Some(cid("app").as_str()));
    assert!(app.image_digest.as_deref().unwrap().starts_with("sha256:"));
    assert_eq!(running.private_ipv4, Some(FIRST_IP.to_string()));
    assert_eq!(running.pull_started_at_ms, Some(START_MS));
    assert_eq!(running.started_at_ms, Some(START_MS));
    assert_eq!(running.health_status, None, "no health check");
    // Recorded before anything was made; the files the containers mount exist.
    let record = &h.host.state.tasks().unwrap()[0];
    assert_eq!(record.ipv4, Some(FIRST_IP));
    assert_eq!(record.last_report.last_status, TaskStatus::Running);
    let task_dir = h.host.config.log_dir(TASK_ID);
    assert!(container_spec::hosts_path(&task_dir, "app").is_file());
    assert!(task_dir.join("resolv.conf").is_file());
    assert_eq!(
        h.host.cgroups.calls(),
        [format!(
            "create {TASK_ID} TaskLimits {{ cpu: None, memory_mib: Some(256), pids: Some(4096) }}"
        )]
    );

    tokio::time::sleep(secs(60)).await;
    h.stop(&spec);
    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(
        h.statuses()[4..],
        [
            TaskStatus::Stopping,
            TaskStatus::Stopping, // app exited
            TaskStatus::Deprovisioning,
            TaskStatus::Stopped,
        ]
    );
    assert_eq!(stopped.stop_code, None, "the control plane asked");
    assert_eq!(stopped.stopped_reason, None);
    assert_eq!(stopped.execution_stopped_at_ms, Some(START_MS + 60_000));
    let app = container(&stopped, "app");
    assert_eq!(
        (app.last_status, app.exit_code),
        (ContainerStatus::Stopped, Some(143))
    );
    assert_eq!(h.kills("app"), [(secs(60), 15)], "SIGTERM was enough");
    h.assert_cleaned_up(&spec);
    assert!(
        h.manager().snapshot()[0].last_status == TaskStatus::Stopped,
        "kept for the control plane until it forgets the task"
    );
    h.desire(&[]);
    assert!(h.manager().snapshot().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_task_dropped_from_the_desired_set_is_stopped() {
    let mut h = Harness::new();
    let spec = task(vec![def("app")]);
    h.run(&spec);
    h.until_status(TaskStatus::Running).await;
    h.desire(&[]);
    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, None);
    h.assert_cleaned_up(&spec);
}
