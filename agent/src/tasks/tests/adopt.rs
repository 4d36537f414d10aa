//! An agent restart: the new agent adopts what the state file and the
//! runtime hold. A container still running keeps running (its exit waiter
//! and health checks resume); one that died meanwhile is reported with its
//! real exit code; one never started is pulled and started as before.

use super::*;
use crate::model::{ContainerCondition, ContainerStatus, HealthStatus, StopCode, TaskStatus};
use crate::runtime::ExecOutcome;

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_adopts_a_running_and_a_dead_container() {
    let mut h = Harness::new();
    let spec = task(vec![def("app"), non_essential("side")]);
    h.run(&spec);
    h.until_status(TaskStatus::Running).await;

    h.shut_down().await;
    tokio::time::sleep(secs(60)).await;
    assert!(
        h.rt.exit(&cid("side"), 3),
        "side dies while no agent watches"
    );
    h.rt.take_calls();
    h.start_again().await;

    let adopted = h.next().await;
    assert_eq!(adopted.last_status, TaskStatus::Running);
    let app = container(&adopted, "app");
    assert_eq!(
        (app.last_status, app.exit_code),
        (ContainerStatus::Running, None)
    );
    let side = container(&adopted, "side");
    assert_eq!(
        (side.last_status, side.exit_code),
        (ContainerStatus::Stopped, Some(3))
    );
    tokio::time::sleep(secs(1)).await;
    assert_eq!(
        h.rt.calls(),
        [
            Call::Status(cid("app")),
            Call::Status(cid("side")),
            Call::Wait(cid("app")),
        ],
        "nothing pulled, created, started or killed; app's exit waiter resumes"
    );
    assert_eq!(h.manager().snapshot(), [adopted]);

    // The resumed waiter sees app's exit: the task stops as it would have.
    assert!(h.rt.exit(&cid("app"), 0));
    let stopped = h.until_status(TaskStatus::Stopped).await;
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(container(&stopped, "app").exit_code, Some(0));
    assert_eq!(container(&stopped, "side").exit_code, Some(3));
    assert!(h.kills("app").is_empty() && h.kills("side").is_empty());
    assert_eq!(
        stopped.execution_stopped_at_ms,
        Some(START_MS + 61_000 + 1),
        "on the new agent's clock (1 ms for the old agent to go)"
    );
    h.assert_cleaned_up(&spec);
}

/// A task whose `side` waits for `app` to be healthy, left by an agent that
/// went away before it was.
async fn left_with_side_waiting(h: &mut Harness) -> TaskSpec {
    let app = health_checked(def("app"), 10, 3, 0);
    let side = depends(non_essential("side"), "app", ContainerCondition::Healthy);
    let spec = task(vec![app, side]);
    h.rt.set_exec_result(&cid("app"), ExecOutcome::Exited(1));
    h.run(&spec);
    h.until(|r| container(r, "app").last_status == ContainerStatus::Running)
        .await;
    h.shut_down().await;
    h.rt.take_calls();
    spec
}

#[tokio::test(start_paused = true)]
async fn an_adopted_task_pulls_and_starts_its_waiting_containers() {
    let mut h = Harness::new();
    let spec = left_with_side_waiting(&mut h).await;
    h.start_again().await;
    let adopted = h.next().await;
    assert_eq!(
        container(&adopted, "app").health_status,
        Some(HealthStatus::Unknown),
        "health checks resume"
    );
    let restarted = h.elapsed();
    h.rt.set_exec_result(&cid("app"), ExecOutcome::Exited(0));

    let running = h.until_status(TaskStatus::Running).await;
    assert_eq!(
        container(&running, "side").last_status,
        ContainerStatus::Running
    );
    assert_eq!(
        h.created_at("side"),
        Some(restarted + secs(10)),
        "after the adopted app's first passing check"
    );
    let pulls: Vec<Call> =
        h.rt.calls()
            .into_iter()
            .filter(|c| matches!(c, Call::PullImage(_)))
            .collect();
    assert_eq!(
        pulls,
        [Call::PullImage("registry.local/side:1".into())],
        "only the waiting container's image"
    );
    h.stop(&spec);
    h.until_status(TaskStatus::Stopped).await;
    h.assert_cleaned_up(&spec);
}

#[tokio::test(start_paused = true)]
async fn an_adopted_task_reports_a_failed_pull_as_a_new_one_does() {
    let mut h = Harness::new();
    let spec = left_with_side_waiting(&mut h).await;
    h.rt.fail_pull("registry.local/side:1", "toomanyrequests: rate limited");
    h.start_again().await;

    let stopped = h.until_status(TaskStatus::Stopped).await;
    let reason =
        "CannotPullContainerError: pull image registry.local/side:1: toomanyrequests: rate limited";
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    assert_eq!(stopped.stopped_reason.as_deref(), Some(reason));
    assert_eq!(container(&stopped, "side").reason.as_deref(), Some(reason));
    assert_eq!(h.created_at("side"), None);
    assert_eq!(h.kills("app")[0].1, 15, "the adopted app is stopped");
    h.assert_cleaned_up(&spec);
}
