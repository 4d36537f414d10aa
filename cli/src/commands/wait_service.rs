//! `berth wait service-stable`: polls `DescribeServices` until the service is stable as
//! `aws ecs wait services-stable` means it (one deployment, `runningCount == desiredCount`),
//! failing early when that cannot come: the service is going away, or a rollout failed.
//! Progress on stderr: a status line, and the service's events as they come.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use berth_cli::status::service_status;
use berth_ecs::ServiceStatus;
use serde_json::{json, Value};

use super::wait::Verdict;
use crate::args::{Output, WaitServiceArgs};
use crate::client::{service_ref, EcsClient};
use crate::progress::Progress;

const POLL: Duration = Duration::from_secs(1);

/// botocore's `ServicesStable` success: exactly one deployment and every desired task running.
pub fn is_stable(service: &Value) -> bool {
    service["deployments"].as_array().map(Vec::len) == Some(1)
        && service["runningCount"].as_u64().is_some()
        && service["runningCount"] == service["desiredCount"]
}

/// What the wait has seen so far: it needs memory because a circuit-breaker rollback can
/// complete between two polls, and the failed deployment then leaves the list; its event
/// stays.
#[derive(Debug, Default)]
pub struct ServiceWatch {
    /// Deployments seen as PRIMARY during the wait, oldest first.
    primaries: Vec<String>,
    /// The newest event already shown.
    last_event: Option<String>,
}

impl ServiceWatch {
    pub fn observe(&mut self, service: &Value) -> Verdict {
        let name = service["serviceName"].as_str().unwrap_or("?");
        if let Some(status @ (ServiceStatus::Draining | ServiceStatus::Inactive)) =
            service_status(service)
        {
            return Verdict::Failed(format!(
                "service {name} is {status}: it is being deleted and will not become stable"
            ));
        }
        let deployments = service["deployments"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        if let Some(id) = deployments
            .iter()
            .find(|d| d["status"] == "PRIMARY")
            .and_then(|d| d["id"].as_str())
        {
            if !self.primaries.iter().any(|p| p == id) {
                self.primaries.push(id.to_owned());
            }
        }
        if let Some(failed) = deployments.iter().find(|d| d["rolloutState"] == "FAILED") {
            return Verdict::Failed(format!(
                "rollout of {} failed (deployment {}): {}",
                family_revision(&failed["taskDefinition"]),
                failed["id"].as_str().unwrap_or("?"),
                failed["rolloutStateReason"]
                    .as_str()
                    .unwrap_or("no reason given")
            ));
        }
        // A deployment this wait watched failed and is already gone (rolled back).
        for id in &self.primaries {
            let marker = format!("(deployment {id}) deployment failed");
            if let Some(message) = events(service)
                .filter_map(|e| e["message"].as_str())
                .find(|m| m.contains(&marker))
            {
                return Verdict::Failed(format!("rollout failed and was rolled back: {message}"));
            }
        }
        if is_stable(service) {
            Verdict::Done
        } else {
            Verdict::Waiting
        }
    }

    /// The messages of events not shown yet, oldest first. The first call returns only the
    /// newest event, for context.
    pub fn new_events(&mut self, service: &Value) -> Vec<String> {
        let newest_first: Vec<&Value> = events(service).collect();
        let Some(newest) = newest_first.first() else {
            return vec![];
        };
        let shown = self.last_event.as_deref();
        // Nothing shown yet, or so many events since that the last one shown has dropped
        // off the end: the newest is enough.
        let fresh = newest_first
            .iter()
            .position(|e| shown.is_some() && e["id"].as_str() == shown)
            .unwrap_or(1);
        self.last_event = newest["id"].as_str().map(str::to_owned);
        newest_first[..fresh]
            .iter()
            .rev()
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect()
    }
}

/// ECS lists a service's events newest first.
fn events(service: &Value) -> impl Iterator<Item = &Value> {
    service["events"].as_array().into_iter().flatten()
}

fn family_revision(arn: &Value) -> &str {
    arn.as_str()
        .map_or("?", |a| a.rsplit_once('/').map_or(a, |(_, fr)| fr))
}

/// `2/3 running, 1 pending, 2 deployments (PRIMARY svc:2 IN_PROGRESS)`.
pub fn status_line(service: &Value) -> String {
    let n = |k: &str| service[k].as_u64().unwrap_or(0);
    let deployments = service["deployments"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let primary = deployments
        .iter()
        .find(|d| d["status"] == "PRIMARY")
        .map(|d| {
            format!(
                " (PRIMARY {} {})",
                family_revision(&d["taskDefinition"]),
                d["rolloutState"].as_str().unwrap_or("?")
            )
        })
        .unwrap_or_default();
    format!(
        "{}/{} running, {} pending, {} deployment{}{primary}",
        n("runningCount"),
        n("desiredCount"),
        n("pendingCount"),
        deployments.len(),
        if deployments.len() == 1 { "" } else { "s" }
    )
}

pub async fn run(client: &EcsClient, args: &WaitServiceArgs) -> Result<()> {
    let (cluster, name) = service_ref(&args.service, &args.cluster);
    let started = Instant::now();
    let timeout = Duration::from_secs(args.timeout);
    let mut progress = Progress::new();
    let mut watch = ServiceWatch::default();
    loop {
        let service = client.describe_service(cluster, name).await?;
        for message in watch.new_events(&service) {
            progress.note(&format!("event: {message}"));
        }
        let status = status_line(&service);
        progress.show(&format!(
            "waiting for service {name} to be stable: {status} ({}s)",
            started.elapsed().as_secs()
        ));
        let outcome = match watch.observe(&service) {
            Verdict::Done => Ok(()),
            Verdict::Failed(why) => Err(anyhow!("service {name}: {why}")),
            Verdict::Waiting if started.elapsed() >= timeout => Err(anyhow!(
                "timed out after {}s waiting for service {name} to be stable (it has {status})",
                args.timeout
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
                serde_json::to_string_pretty(&json!({ "services": [service] }))?
            ),
            Output::Table if outcome.is_ok() => println!(
                "service {name} is stable: {} running, task definition {}",
                service["runningCount"],
                family_revision(&service["taskDefinition"])
            ),
            Output::Table => {}
        }
        return outcome;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD1: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1";
    const TD2: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2";

    fn service(running: u64, deployments: &Value, events: &Value) -> Value {
        json!({
            "serviceName": "web", "status": "ACTIVE", "taskDefinition": TD2,
            "desiredCount": 2, "runningCount": running, "pendingCount": 2 - running,
            "deployments": deployments, "events": events,
        })
    }

    fn deployment(id: &str, status: &str, td: &str, rollout: &str, reason: &str) -> Value {
        json!({"id": id, "status": status, "taskDefinition": td,
               "rolloutState": rollout, "rolloutStateReason": reason})
    }

    fn event(id: &str, message: &str) -> Value {
        json!({"id": id, "createdAt": 0.0, "message": message})
    }

    #[test]
    fn stable_is_one_deployment_with_every_desired_task_running() {
        let one = json!([deployment("d2", "PRIMARY", TD2, "IN_PROGRESS", "")]);
        let two = json!([
            deployment("d2", "PRIMARY", TD2, "IN_PROGRESS", ""),
            deployment("d1", "ACTIVE", TD1, "COMPLETED", "")
        ]);
        assert!(is_stable(&service(2, &one, &json!([]))));
        assert!(!is_stable(&service(1, &one, &json!([]))));
        assert!(!is_stable(&service(2, &two, &json!([]))));
        assert!(!is_stable(&json!({"serviceName": "web"})));

        let mut watch = ServiceWatch::default();
        assert_eq!(
            watch.observe(&service(2, &two, &json!([]))),
            Verdict::Waiting
        );
        assert_eq!(watch.observe(&service(2, &one, &json!([]))), Verdict::Done);
    }

    #[test]
    fn a_service_going_away_fails_the_wait() {
        let mut s = service(0, &json!([]), &json!([]));
        s["status"] = json!("DRAINING");
        let Verdict::Failed(why) = ServiceWatch::default().observe(&s) else {
            panic!("a draining service is not waited for")
        };
        assert!(why.contains("is DRAINING"), "{why}");
    }

    #[test]
    fn a_failed_rollout_fails_the_wait_with_its_reason() {
        let s = service(
            2,
            &json!([
                deployment(
                    "d1r",
                    "PRIMARY",
                    TD1,
                    "IN_PROGRESS",
                    "ECS deployment circuit breaker: rolling back to deploymentId d1."
                ),
                deployment(
                    "d2",
                    "ACTIVE",
                    TD2,
                    "FAILED",
                    "ECS deployment circuit breaker: tasks failed to start."
                )
            ]),
            &json!([]),
        );
        assert_eq!(
            ServiceWatch::default().observe(&s),
            Verdict::Failed(
                "rollout of web:2 failed (deployment d2): \
                 ECS deployment circuit breaker: tasks failed to start."
                    .into()
            )
        );
    }

    #[test]
    fn a_rollback_finished_between_polls_still_fails_the_wait() {
        let mut watch = ServiceWatch::default();
        let rolling = service(
            2,
            &json!([
                deployment("d2", "PRIMARY", TD2, "IN_PROGRESS", ""),
                deployment("d1", "ACTIVE", TD1, "COMPLETED", "")
            ]),
            &json!([]),
        );
        assert_eq!(watch.observe(&rolling), Verdict::Waiting);
        // Next poll: rolled back and steady again, only the events tell.
        let failed = "(service web) (deployment d2) deployment failed: tasks failed to start.";
        let back = service(
            2,
            &json!([deployment("d3", "PRIMARY", TD1, "COMPLETED", "")]),
            &json!([
                event("e3", "(service web) has reached a steady state."),
                event(
                    "e2",
                    "(service web) (deployment d2) rolling back to deployment d1."
                ),
                event("e1", failed)
            ]),
        );
        assert_eq!(
            watch.observe(&back),
            Verdict::Failed(format!("rollout failed and was rolled back: {failed}"))
        );
        // A wait that starts after the rollback sees a stable service, as the aws CLI does.
        assert_eq!(ServiceWatch::default().observe(&back), Verdict::Done);
    }

    #[test]
    fn events_are_shown_once_oldest_first_after_the_newest_for_context() {
        let mut watch = ServiceWatch::default();
        let s = |events: Value| service(0, &json!([]), &events);
        assert_eq!(watch.new_events(&s(json!([]))), Vec::<String>::new());
        assert_eq!(
            watch.new_events(&s(json!([event("e2", "two"), event("e1", "one")]))),
            ["two"]
        );
        assert_eq!(
            watch.new_events(&s(json!([event("e2", "two"), event("e1", "one")]))),
            Vec::<String>::new()
        );
        assert_eq!(
            watch.new_events(&s(json!([
                event("e4", "four"),
                event("e3", "three"),
                event("e2", "two")
            ]))),
            ["three", "four"]
        );
    }

    #[test]
    fn the_status_line_names_counts_deployments_and_the_primary_rollout() {
        let s = service(
            1,
            &json!([
                deployment("d2", "PRIMARY", TD2, "IN_PROGRESS", ""),
                deployment("d1", "ACTIVE", TD1, "COMPLETED", "")
            ]),
            &json!([]),
        );
        assert_eq!(
            status_line(&s),
            "1/2 running, 1 pending, 2 deployments (PRIMARY web:2 IN_PROGRESS)"
        );
        assert_eq!(
            status_line(&json!({"desiredCount": 1, "deployments": []})),
            "0/1 running, 0 pending, 0 deployments"
        );
    }
}
