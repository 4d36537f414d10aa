//! `berth wait task-running|task-stopped`: polls `DescribeTasks`, one progress line on stderr.
//! The verdict types are shared with `berth wait service-stable`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use berth_cli::status::{desired_status, last_status};
use berth_ecs::{DesiredStatus, TaskStatus};
use serde_json::{json, Value};

use crate::args::{Output, WaitArgs};
use crate::client::{task_ref, EcsClient};
use crate::progress::Progress;

const POLL: Duration = Duration::from_millis(500);

/// Which status to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Running,
    Stopped,
}

impl Goal {
    fn status(self) -> TaskStatus {
        match self {
            Goal::Running => TaskStatus::Running,
            Goal::Stopped => TaskStatus::Stopped,
        }
    }
}

/// What one observation of the task means for the wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Done,
    Waiting,
    /// The goal can no longer be reached; the text says why.
    Failed(String),
}

pub fn judge(goal: Goal, task: &Value) -> Verdict {
    let Some(last) = last_status(task) else {
        return Verdict::Waiting;
    };
    match (goal, last) {
        (_, last) if last == goal.status() => Verdict::Done,
        (Goal::Running, TaskStatus::Stopped) => Verdict::Failed(format!(
            "task stopped instead of running: {}",
            stop_summary(task)
        )),
        // A task told to stop never reaches RUNNING from before it.
        (Goal::Running, last)
            if last.is_pending() && desired_status(task) == Some(DesiredStatus::Stopped) =>
        {
            Verdict::Failed(format!(
                "task is being stopped before it ran: {}",
                stop_summary(task)
            ))
        }
        _ => Verdict::Waiting,
    }
}

/// `stopCode: stoppedReason` and each container's exit code or reason.
pub fn stop_summary(task: &Value) -> String {
    let mut out = format!(
        "{}: {}",
        task["stopCode"].as_str().unwrap_or("-"),
        task["stoppedReason"].as_str().unwrap_or("-")
    );
    for c in task["containers"].as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or("?");
        match (c["exitCode"].as_i64(), c["reason"].as_str()) {
            (Some(code), Some(reason)) => {
                let _ = write!(out, "; {name} exited {code} ({reason})");
            }
            (Some(code), None) => {
                let _ = write!(out, "; {name} exited {code}");
            }
            (None, Some(reason)) => {
                let _ = write!(out, "; {name}: {reason}");
            }
            (None, None) => {}
        }
    }
    out
}

pub async fn run(client: &EcsClient, goal: Goal, args: &WaitArgs) -> Result<()> {
    let (cluster, id) = task_ref(&args.task, &args.cluster);
    let started = Instant::now();
    let timeout = Duration::from_secs(args.timeout);
    let mut progress = Progress::new();
    loop {
        let task = client.describe_task(cluster, id).await?;
        let last = task["lastStatus"].as_str().unwrap_or("?");
        progress.show(&format!(
            "waiting for task {id} to be {}: {last} ({}s)",
            goal.status(),
            started.elapsed().as_secs()
        ));
        let outcome = match judge(goal, &task) {
            Verdict::Done => Ok(()),
            Verdict::Failed(why) => Err(anyhow!(why)),
            Verdict::Waiting if started.elapsed() >= timeout => Err(anyhow!(
                "timed out after {}s waiting for task {id} to be {} (it is {last})",
                args.timeout,
                goal.status()
            )),
            Verdict::Waiting => {
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        progress.finish();
        match args.output {
            // The last observation, whatever the outcome: a script reads why from it.
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "tasks": [task] }))?
            ),
            Output::Table if outcome.is_ok() => match goal {
                Goal::Running => println!("task {id} is RUNNING"),
                Goal::Stopped => println!("task {id} is STOPPED: {}", stop_summary(&task)),
            },
            Output::Table => {}
        }
        return outcome;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn running_is_reached_or_missed_for_good() {
        let t = |last: &str, desired: &str| json!({"lastStatus": last, "desiredStatus": desired});
        assert_eq!(
            judge(Goal::Running, &t("RUNNING", "RUNNING")),
            Verdict::Done
        );
        assert_eq!(
            judge(Goal::Running, &t("PENDING", "RUNNING")),
            Verdict::Waiting
        );
        assert!(matches!(
            judge(Goal::Running, &t("STOPPED", "STOPPED")),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            judge(Goal::Running, &t("PENDING", "STOPPED")),
            Verdict::Failed(_)
        ));
        assert_eq!(
            judge(Goal::Stopped, &t("RUNNING", "STOPPED")),
            Verdict::Waiting
        );
        assert_eq!(
            judge(Goal::Stopped, &t("STOPPED", "STOPPED")),
            Verdict::Done
        );
    }

    #[test]
    fn a_stop_summary_names_the_reason_and_each_container() {
        let t = json!({
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "containers": [
                {"name": "app", "exitCode": 3},
                {"name": "sidecar", "exitCode": 137, "reason": "OutOfMemoryError"},
                {"name": "init", "reason": "CannotPullContainerError: nope"},
                {"name": "never"}
            ]
        });
        assert_eq!(
            stop_summary(&t),
            "EssentialContainerExited: Essential container in task exited; app exited 3; \
             sidecar exited 137 (OutOfMemoryError); init: CannotPullContainerError: nope"
        );
    }
}
