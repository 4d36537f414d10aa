//! Health checks: a container goes UNKNOWN -> HEALTHY on a pass and to
//! UNHEALTHY after `retries` consecutive failures (failures inside the
//! start period do not count); the task's health rolls up from its
//! essential containers only.

use super::*;
use crate::model::{HealthStatus, TaskStatus};
use crate::runtime::ExecOutcome;

/// Each change of what `f` reads from the reports, with when.
fn changes<T: PartialEq>(h: &Harness, f: impl Fn(&TaskReport) -> T) -> Vec<(Duration, T)> {
    let mut out: Vec<(Duration, T)> = Vec::new();
    for (at, r) in &h.seen {
        let now = f(r);
        if out.last().is_none_or(|(_, last)| *last != now) {
            out.push((*at - h.t0, now));
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn health_goes_unknown_healthy_unhealthy_and_rolls_up() {
    use HealthStatus::{Healthy, Unhealthy, Unknown};
    let mut h = Harness::new();
    let app = health_checked(def("app"), 10, 3, 0);
    // A failing non-essential container does not make the task unhealthy.
    let side = health_checked(non_essential("side"), 10, 1, 0);
    h.rt.script_exec(&cid("app"), [0, 1, 1, 1].map(ExecOutcome::Exited));
    h.rt.set_exec_result(&cid("side"), ExecOutcome::Exited(1));
    let spec = task(vec![app, side]);
    h.run(&spec);

    h.until(|r| r.health_status == Some(Unhealthy)).await;
    let app_and_task = |r: &TaskReport| (container(r, "app").health_status, r.health_status);
    assert_eq!(
        changes(&h, app_and_task),
        [
            (secs(0), (None, None)),
            (secs(0), (Some(Unknown), None)), // started
            (secs(10), (Some(Healthy), Some(Healthy))),
            (secs(40), (Some(Unhealthy), Some(Unhealthy))), // the third failure in a row
        ]
    );
    assert_eq!(
        changes(&h, |r| container(r, "side").health_status),
        [
            (secs(0), None),
            (secs(0), Some(Unknown)),
            (secs(10), Some(Unhealthy)),
        ]
    );
    let checks =
        h.rt.calls()
            .iter()
            .filter(|c| matches!(c, Call::Exec { id, .. } if *id == cid("app")))
            .count();
    assert_eq!(checks, 4, "one check per interval");

    // UNHEALTHY is reported, not acted on: the task keeps running.
    assert_eq!(h.seen.last().unwrap().1.last_status, TaskStatus::Running);
    h.stop(&spec);
    h.until_status(TaskStatus::Stopped).await;
    h.assert_cleaned_up(&spec);
}

#[tokio::test(start_paused = true)]
async fn failures_in_the_start_period_do_not_count() {
    let mut h = Harness::new();
    let app = health_checked(def("app"), 10, 1, 25);
    h.rt.set_exec_result(&cid("app"), ExecOutcome::Exited(1));
    h.desire(&[task(vec![app])]);
    h.until(|r| r.health_status == Some(HealthStatus::Unhealthy))
        .await;
    assert_eq!(
        h.elapsed(),
        secs(30),
        "the checks at 10 s and 20 s fell in the 25 s start period"
    );
}
