//! Services end to end: the real daemons and the aws CLI. A service keeps
//! its tasks running, rolls to a new revision within its bounds, and the
//! circuit breaker rolls a failing revision back.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_e2e::{poll, Berth};
use berth_ecs::{StabilityStatus, TaskSetStatus, TaskStatus};
use serde_json::{json, Value};

/// A small task that stops promptly on SIGTERM; `version` makes a new revision.
fn app(b: &Berth, version: &str, script: &str) -> Value {
    json!({
        "family": "svc",
        "containerDefinitions": [{
            "name": "app", "image": b.demo_image, "memory": 16, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": [script],
            "environment": [{"name": "VERSION", "value": version}]
        }]
    })
}

const SERVE: &str = "trap 'exit 0' TERM; while true; do sleep 0.2; done";

fn describe(b: &Berth, name: &str) -> Result<Value> {
    let d = b.aws(&["ecs", "describe-services", "--services", name])?;
    d["services"]
        .get(0)
        .cloned()
        .with_context(|| format!("service {name} not described: {d}"))
}

fn primary(s: &Value) -> Value {
    s["deployments"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["status"] == "PRIMARY"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The service's tasks that have not stopped (desired RUNNING or STOPPED).
fn live_tasks(b: &Berth, name: &str) -> Result<Vec<Value>> {
    Ok(b.service_tasks(name)?
        .into_iter()
        .filter(|t| t["lastStatus"] != "STOPPED")
        .collect())
}

/// The service's tasks that were asked to stop.
fn stopped_tasks(b: &Berth, name: &str) -> Result<Vec<Value>> {
    let l = b.aws(&[
        "ecs",
        "list-tasks",
        "--service-name",
        name,
        "--desired-status",
        "STOPPED",
    ])?;
    let arns: Vec<&str> = l["taskArns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if arns.is_empty() {
        return Ok(vec![]);
    }
    let mut cmd = vec!["ecs", "describe-tasks", "--tasks"];
    cmd.extend(arns);
    Ok(b.aws(&cmd)?["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Waits until the PRIMARY deployment is COMPLETED and alone, with
/// `running` tasks.
fn wait_steady(b: &Berth, name: &str, running: u64) -> Result<Value> {
    poll(
        &format!("service {name} to be steady"),
        Duration::from_secs(90),
        || {
            let s = describe(b, name)?;
            let done = primary(&s)["rolloutState"] == "COMPLETED"
                && s["deployments"].as_array().map(Vec::len) == Some(1)
                && s["runningCount"] == running;
            Ok(done.then_some(s))
        },
    )
}

fn messages(s: &Value) -> Vec<String> {
    s["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

/// The rollout can outpace the polls: the timestamps show the order. No
/// old task was asked to stop before every new one was RUNNING.
fn assert_old_stopped_after_new_ran(b: &Berth, name: &str, live: &[Value]) -> Result<()> {
    let new_running_by = live
        .iter()
        .filter_map(|t| t["startedAt"].as_f64())
        .fold(0.0, f64::max);
    let old = stopped_tasks(b, name)?;
    let old: Vec<&Value> = old
        .iter()
        .filter(|t| t["stopCode"] == "ServiceSchedulerInitiated")
        .collect();
    assert_eq!(old.len(), 2, "{old:?}");
    for t in old {
        let stopping = t["stoppingAt"].as_f64().context("stoppingAt")?;
        assert!(
            stopping >= new_running_by,
            "an old task stopped before the new ones ran: {t}"
        );
        assert!(t["taskDefinitionArn"]
            .as_str()
            .is_some_and(|td| td.ends_with("svc:1")));
    }
    Ok(())
}

/// The service lives in the store: a killed control plane comes back to
/// it, adopts the same tasks and starts none.
fn restart_keeps_the_service(b: &mut Berth, name: &str, deployment: &Value) -> Result<()> {
    let arns = |b: &Berth| -> Result<std::collections::BTreeSet<String>> {
        Ok(live_tasks(b, name)?
            .iter()
            .filter_map(|t| t["taskArn"].as_str().map(str::to_owned))
            .collect())
    };
    let before = arns(b)?;
    b.kill9_controlplane();
    b.start_controlplane()?;
    b.wait_connected()?;
    let s = wait_steady(b, name, 2)?;
    assert_eq!(&primary(&s)["id"], deployment);
    assert_eq!(before, arns(b)?, "the same tasks after the restart");
    Ok(())
}

#[test]
fn a_service_keeps_its_count_rolls_within_bounds_and_is_deleted() -> Result<()> {
    let mut b = Berth::start()?;
    b.register_task_definition(&app(&b, "1", SERVE))?;
    let created = b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "svc",
        "--desired-count",
        "2",
    ])?;
    assert_eq!(created["service"]["status"], "ACTIVE", "{created}");
    let s = wait_steady(&b, "web", 2)?;
    let first = primary(&s);
    let m = messages(&s);
    assert_eq!(m[0], "(service web) has reached a steady state.", "{m:?}");
    assert!(
        m.iter()
            .any(|e| e.starts_with("(service web) has started 2 tasks: (task ")),
        "{m:?}"
    );
    let tasks = live_tasks(&b, "web")?;
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        assert_eq!(t["startedBy"], first["id"], "{t}");
        assert_eq!(t["group"], "service:web");
    }

    // A stopped task is replaced.
    let victim = tasks[0]["taskArn"].as_str().context("taskArn")?.to_string();
    b.aws(&["ecs", "stop-task", "--task", &victim])?;
    poll("a replacement task", Duration::from_secs(60), || {
        let live = live_tasks(&b, "web")?;
        let running: Vec<&Value> = live
            .iter()
            .filter(|t| t["lastStatus"] == "RUNNING" && t["desiredStatus"] == "RUNNING")
            .collect();
        Ok(
            (running.len() == 2 && running.iter().all(|t| t["taskArn"] != victim.as_str()))
                .then_some(()),
        )
    })?;

    restart_keeps_the_service(&mut b, "web", &first["id"])?;

    // Roll to revision 2: at every observation, at least 100% running and
    // at most 200% not yet stopped.
    b.register_task_definition(&app(&b, "2", SERVE))?;
    b.aws(&[
        "ecs",
        "update-service",
        "--service",
        "web",
        "--task-definition",
        "svc:2",
    ])?;
    let s = poll("the rollout to complete", Duration::from_secs(120), || {
        let live = live_tasks(&b, "web")?;
        let running = live.iter().filter(|t| t["lastStatus"] == "RUNNING").count();
        if running < 2 || live.len() > 4 {
            bail!(
                "bounds broken: {running} running, {} in all: {live:?}",
                live.len()
            );
        }
        let s = describe(&b, "web")?;
        let p = primary(&s);
        let done = p["rolloutState"] == "COMPLETED"
            && s["deployments"].as_array().map(Vec::len) == Some(1)
            && p["taskDefinition"]
                .as_str()
                .is_some_and(|td| td.ends_with(":task-definition/svc:2"));
        Ok(done.then_some(s))
    });
    let s = s?;
    assert_eq!(s["runningCount"], 2);
    let live = live_tasks(&b, "web")?;
    assert!(live.iter().all(|t| t["taskDefinitionArn"]
        .as_str()
        .is_some_and(|td| td.ends_with("svc:2"))));
    assert_old_stopped_after_new_ran(&b, "web", &live)?;

    // Deleting needs force while the service wants tasks.
    let refused = b.aws_raw(&["ecs", "delete-service", "--service", "web"])?;
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("InvalidParameterException") && err.contains("scaled above 0"),
        "{err}"
    );
    let deleted = b.aws(&["ecs", "delete-service", "--service", "web", "--force"])?;
    assert_eq!(deleted["service"]["status"], "DRAINING");
    poll("the service to go", Duration::from_secs(60), || {
        let s = describe(&b, "web")?;
        Ok((s["status"] == "INACTIVE" && live_tasks(&b, "web")?.is_empty()).then_some(()))
    })?;
    let listed = b.aws(&["ecs", "list-services"])?;
    assert_eq!(listed["serviceArns"], json!([]));
    Ok(())
}

#[test]
fn a_crashing_revision_trips_the_breaker_and_rolls_back() -> Result<()> {
    let b = Berth::start()?;
    b.register_task_definition(&app(&b, "1", SERVE))?;
    b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "api",
        "--task-definition",
        "svc:1",
        "--desired-count",
        "2",
        "--deployment-configuration",
        r#"{"deploymentCircuitBreaker":{"enable":true,"rollback":true},"maximumPercent":200,"minimumHealthyPercent":100}"#,
    ])?;
    let s = wait_steady(&b, "api", 2)?;
    let good = primary(&s)["id"].as_str().context("id")?.to_string();

    b.register_task_definition(&app(&b, "2", "exit 1"))?;
    let updated = b.aws(&[
        "ecs",
        "update-service",
        "--service",
        "api",
        "--task-definition",
        "svc:2",
    ])?;
    let bad = primary(&updated["service"])["id"]
        .as_str()
        .context("id")?
        .to_string();
    // The rollback can finish between two polls, and the failed deployment
    // leaves the list once its tasks are gone: the events are the record.
    let failure =
        format!("(service api) (deployment {bad}) deployment failed: tasks failed to start.");
    let mut seen_failed = None;
    poll("the breaker to trip", Duration::from_secs(120), || {
        let s = describe(&b, "api")?;
        // The old tasks keep serving while the new ones crash.
        if s["runningCount"].as_u64().unwrap_or(0) < 2 {
            bail!("fewer than 2 running during the failed rollout: {s}");
        }
        if let Some(d) = s["deployments"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["id"] == bad.as_str()))
            .filter(|d| d["rolloutState"] == "FAILED")
        {
            seen_failed = Some(d.clone());
        }
        Ok(messages(&s).contains(&failure).then_some(()))
    })?;
    if let Some(failed) = seen_failed {
        assert!(failed["failedTasks"].as_u64().unwrap_or(0) >= 3, "{failed}");
        assert_eq!(
            failed["rolloutStateReason"],
            "ECS deployment circuit breaker: tasks failed to start."
        );
    }

    let s = wait_steady(&b, "api", 2)?;
    let now = primary(&s);
    assert!(
        now["taskDefinition"]
            .as_str()
            .is_some_and(|td| td.ends_with("svc:1")),
        "{now}"
    );
    assert_eq!(
        now["rolloutStateReason"]
            .as_str()
            .map(|r| r.contains("rolling back")),
        Some(false),
        "completed now: {now}"
    );
    assert!(s["taskDefinition"]
        .as_str()
        .is_some_and(|td| td.ends_with("svc:1")));
    let events = messages(&s);
    assert!(
        events.iter().any(|e| e
            == &format!(
                "(service api) (deployment {bad}) deployment failed: tasks failed to start."
            )),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains(&format!("rolling back to deployment {good}"))),
        "{events:?}"
    );
    b.aws(&["ecs", "delete-service", "--service", "api", "--force"])?;
    Ok(())
}

/// A task's tags (`DescribeTasks` with TAGS), as `key=value` strings, sorted.
fn task_tags(b: &Berth, arn: &str) -> Result<Vec<String>> {
    let d = b.aws(&["ecs", "describe-tasks", "--tasks", arn, "--include", "TAGS"])?;
    let mut tags: Vec<String> = d["tasks"][0]["tags"]
        .as_array()
        .context("no tags")?
        .iter()
        .map(|t| {
            format!(
                "{}={}",
                t["key"].as_str().unwrap_or(""),
                t["value"].as_str().unwrap_or("")
            )
        })
        .collect();
    tags.sort();
    Ok(tags)
}

#[test]
fn tasks_get_the_tags_their_service_or_run_task_propagates() -> Result<()> {
    let b = Berth::start()?;
    let mut def = app(&b, "1", SERVE);
    def["tags"] = json!([{"key": "team", "value": "td"}, {"key": "env", "value": "td"}]);
    b.register_task_definition(&def)?;
    let run = b.aws(&[
        "ecs",
        "run-task",
        "--task-definition",
        "svc",
        "--propagate-tags",
        "TASK_DEFINITION",
        "--enable-ecs-managed-tags",
        "--tags",
        "key=env,value=run",
    ])?;
    let arn = run["tasks"][0]["taskArn"].as_str().context("taskArn")?;
    assert_eq!(
        task_tags(&b, arn)?,
        ["aws:ecs:clusterName=default", "env=run", "team=td"]
    );
    b.aws(&["ecs", "stop-task", "--task", arn])?;

    b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "tagged",
        "--task-definition",
        "svc",
        "--desired-count",
        "1",
        "--propagate-tags",
        "SERVICE",
        "--enable-ecs-managed-tags",
        "--tags",
        "key=owner,value=ops",
    ])?;
    let task = poll("the service's task", Duration::from_secs(60), || {
        Ok(live_tasks(&b, "tagged")?.first().cloned())
    })?;
    let arn = task["taskArn"].as_str().context("taskArn")?;
    assert_eq!(
        task_tags(&b, arn)?,
        [
            "aws:ecs:clusterName=default",
            "aws:ecs:serviceName=tagged",
            "owner=ops"
        ]
    );
    let bad = b.aws_raw(&[
        "ecs",
        "create-service",
        "--service-name",
        "bad",
        "--task-definition",
        "svc",
        "--propagate-tags",
        "EVERYTHING",
    ])?;
    assert!(String::from_utf8_lossy(&bad.stderr).contains("InvalidParameterException"));
    Ok(())
}

/// A task-set call (or any call taking `--service`) on the service `ext` of `default`.
fn on_ext(b: &Berth, op: &str, args: &[&str]) -> Result<std::process::Output> {
    let mut all = vec!["ecs", op, "--cluster", "default", "--service", "ext"];
    all.extend_from_slice(args);
    b.aws_raw(&all)
}

/// `on_ext`, which must succeed; its JSON.
fn on_ext_ok(b: &Berth, op: &str, args: &[&str]) -> Result<Value> {
    let out = on_ext(b, op, args)?;
    if !out.status.success() {
        bail!("{op} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A task set as `DescribeTaskSets` shows it.
fn task_set(b: &Berth, id: &str) -> Result<Value> {
    let d = on_ext_ok(b, "describe-task-sets", &["--task-sets", id])?;
    d["taskSets"]
        .get(0)
        .cloned()
        .with_context(|| format!("task set {id}: {d}"))
}

/// The service's tasks of one task set that run.
fn running_of(b: &Berth, task_set_id: &str) -> Result<usize> {
    Ok(live_tasks(b, "ext")?
        .iter()
        .filter(|t| {
            t["startedBy"] == task_set_id && t["lastStatus"] == TaskStatus::Running.as_str()
        })
        .count())
}

#[test]
fn an_external_controller_shifts_a_service_between_task_sets() -> Result<()> {
    let b = Berth::start()?;
    b.register_task_definition(&app(&b, "1", SERVE))?;
    b.register_task_definition(&app(&b, "2", SERVE))?;
    let created = b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "ext",
        "--desired-count",
        "2",
        "--deployment-controller",
        "type=EXTERNAL",
    ])?;
    assert_eq!(created["service"]["deployments"], json!([]), "{created}");
    let create = |td: &str, percent: &str| -> Result<(String, Value)> {
        let scale = format!("value={percent},unit=PERCENT");
        let args = [
            "--task-definition",
            td,
            "--external-id",
            td,
            "--scale",
            &scale,
        ];
        let ts = on_ext_ok(&b, "create-task-set", &args)?["taskSet"].clone();
        Ok((ts["id"].as_str().context("id")?.to_owned(), ts))
    };
    let (blue_id, blue) = create("svc:1", "100")?;
    assert_eq!(blue["status"], TaskSetStatus::Primary.as_str(), "{blue}");
    assert_eq!(blue["computedDesiredCount"], 2, "{blue}");
    let (green_id, green) = create("svc:2", "50")?;
    assert_eq!(green["status"], TaskSetStatus::Active.as_str(), "{green}");
    poll(
        "both task sets to be stable",
        Duration::from_secs(90),
        || {
            let steady = |id: &str| -> Result<bool> {
                Ok(task_set(&b, id)?["stabilityStatus"] == StabilityStatus::SteadyState.as_str())
            };
            Ok((running_of(&b, &blue_id)? == 2
                && running_of(&b, &green_id)? == 1
                && steady(&blue_id)?
                && steady(&green_id)?)
            .then_some(()))
        },
    )?;
    let s = describe(&b, "ext")?;
    assert_eq!(s["taskSets"].as_array().map(Vec::len), Some(2), "{s}");
    assert_eq!(s["runningCount"], 3, "{s}");

    // Green becomes primary at full scale; blue goes to zero and is deleted.
    let p = on_ext_ok(
        &b,
        "update-service-primary-task-set",
        &["--primary-task-set", &green_id],
    )?;
    assert_eq!(
        p["taskSet"]["status"],
        TaskSetStatus::Primary.as_str(),
        "{p}"
    );
    let scale = |id: &str, v: &str| {
        let scale = format!("value={v},unit=PERCENT");
        on_ext(
            &b,
            "update-task-set",
            &["--task-set", id, "--scale", &scale],
        )
    };
    scale(&green_id, "100")?;
    scale(&blue_id, "0")?;
    let d = on_ext_ok(&b, "delete-task-set", &["--task-set", &blue_id])?;
    assert_eq!(
        d["taskSet"]["status"],
        TaskSetStatus::Draining.as_str(),
        "{d}"
    );
    poll(
        "green to carry the service alone",
        Duration::from_secs(90),
        || {
            let s = describe(&b, "ext")?;
            let sets = s["taskSets"].as_array().map_or(0, Vec::len);
            Ok(
                (sets == 1 && running_of(&b, &green_id)? == 2 && running_of(&b, &blue_id)? == 0)
                    .then_some(()),
            )
        },
    )?;
    let missing = on_ext_ok(&b, "describe-task-sets", &["--task-sets", &blue_id])?;
    assert_eq!(missing["failures"][0]["reason"], "MISSING", "{missing}");
    let refused = on_ext(&b, "update-service", &["--task-definition", "svc:1"])?;
    assert!(String::from_utf8_lossy(&refused.stderr).contains("InvalidParameterException"));
    let gone = scale(&blue_id, "10")?;
    assert!(String::from_utf8_lossy(&gone.stderr).contains("TaskSetNotFoundException"));
    Ok(())
}
