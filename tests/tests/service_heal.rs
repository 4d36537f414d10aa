//! Services across two agents on this machine (each its own containerd
//! namespace, bridge, CIDR and data dir): a health-checked rolling update
//! that holds its bounds at every observation, and a killed agent whose
//! tasks come back on the other one; when the agent returns it stops the
//! copies the control plane replaced.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_e2e::{poll, Berth};
use serde_json::{json, Value};

const SERVE: &str = "trap 'exit 0' TERM; while true; do sleep 0.2; done";

/// A service task with a health check at ECS's shortest interval (5 s).
fn app(b: &Berth, version: &str) -> Value {
    json!({
        "family": "heal",
        "containerDefinitions": [{
            "name": "app", "image": b.demo_image, "memory": 16, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": [SERVE],
            "environment": [{"name": "VERSION", "value": version}],
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 1}
        }]
    })
}

fn describe(b: &Berth) -> Result<Value> {
    let d = b.aws(&["ecs", "describe-services", "--services", "web"])?;
    d["services"]
        .get(0)
        .cloned()
        .with_context(|| format!("service not described: {d}"))
}

fn primary(s: &Value) -> Value {
    s["deployments"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["status"] == "PRIMARY"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Every task of the service the control plane still knows, any state.
fn tasks(b: &Berth) -> Result<Vec<Value>> {
    b.service_tasks("web")
}

fn is_live(t: &Value) -> bool {
    t["lastStatus"] != "STOPPED"
}

/// Serving and wanted: RUNNING, HEALTHY, not asked to stop.
fn is_healthy(t: &Value) -> bool {
    t["lastStatus"] == "RUNNING"
        && t["healthStatus"] == "HEALTHY"
        && t["desiredStatus"] == "RUNNING"
}

fn on(t: &Value, instance: &str) -> bool {
    t["containerInstanceArn"] == instance
}

fn wait_steady(b: &Berth, revision: &str) -> Result<Value> {
    poll("the service to be steady", Duration::from_secs(90), || {
        let s = describe(b)?;
        let p = primary(&s);
        let done = p["rolloutState"] == "COMPLETED"
            && s["deployments"].as_array().map(Vec::len) == Some(1)
            && s["runningCount"] == 3
            && p["taskDefinition"]
                .as_str()
                .is_some_and(|td| td.ends_with(revision));
        Ok(done.then_some(s))
    })
}

/// containerd tasks still running in a namespace.
fn running_containers(b: &Berth, namespace: &str) -> Result<usize> {
    let out = Command::new("ctr")
        .args(["--address", &b.containerd_sock, "-n", namespace])
        .args(["tasks", "ls"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("RUNNING"))
        .count())
}

fn at(t: &Value, field: &str) -> Option<f64> {
    t[field].as_f64()
}

/// The polls see a few moments; the tasks' timestamps show all of them.
/// At every instant from `from` to `to`: at most `max` tasks created and
/// not yet STOPPED, and at least `min` RUNNING and not yet asked to stop.
/// Returns the most live at once.
fn assert_bounds_throughout(tasks: &[Value], from: f64, to: f64, min: usize, max: usize) -> usize {
    let mut most = 0;
    let fields = ["createdAt", "startedAt", "stoppingAt", "stoppedAt"];
    let mut instants: Vec<f64> = tasks
        .iter()
        .flat_map(|t| fields.iter().filter_map(move |f| at(t, f)))
        .filter(|x| (from..=to).contains(x))
        .collect();
    instants.push(from);
    for x in instants {
        let before = |f: &str, t: &Value| at(t, f).is_some_and(|v| v <= x);
        let live = tasks
            .iter()
            .filter(|t| before("createdAt", t) && !before("stoppedAt", t))
            .count();
        let serving = tasks
            .iter()
            .filter(|t| before("startedAt", t) && !before("stoppingAt", t))
            .count();
        assert!(live <= max, "{live} live at {x}: {tasks:?}");
        assert!(serving >= min, "{serving} serving at {x}: {tasks:?}");
        most = most.max(live);
    }
    most
}

fn epoch_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[test]
fn a_service_on_two_agents_rolls_within_bounds_and_survives_losing_one() -> Result<()> {
    let mut b = Berth::start()?;
    b.start_extra_agent()?;
    let second = b.extra_agents[0].instance_arn.clone();
    let instances = b.connected_instances()?;
    assert_eq!(instances.len(), 2, "{instances:?}");
    let first = instances
        .into_iter()
        .find(|i| *i != second)
        .context("the first instance")?;

    b.register_task_definition(&app(&b, "1"))?;
    b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "heal:1",
        "--desired-count",
        "3",
    ])?;
    wait_steady(&b, "heal:1")?;
    let live: Vec<Value> = tasks(&b)?.into_iter().filter(is_live).collect();
    assert!(
        live.iter().any(|t| on(t, &first)) && live.iter().any(|t| on(t, &second)),
        "spread over both agents: {live:?}"
    );

    roll_within_bounds(&b)?;
    lose_an_agent(&mut b, &first, &second)?;
    b.aws(&["ecs", "delete-service", "--service", "web", "--force"])?;
    Ok(())
}

/// Rolls to revision 2 at 100/200: at every observation at least 3
/// healthy (RUNNING, HEALTHY, wanted) and at most 6 not yet stopped.
fn roll_within_bounds(b: &Berth) -> Result<()> {
    b.register_task_definition(&app(b, "2"))?;
    let updated_at = epoch_secs();
    b.aws(&[
        "ecs",
        "update-service",
        "--service",
        "web",
        "--task-definition",
        "heal:2",
    ])?;
    let mut observations = 0;
    // A new revision runs beside the old one at 200%.
    poll("the rollout to complete", Duration::from_secs(90), || {
        let all = tasks(b)?;
        let live = all.iter().filter(|t| is_live(t)).count();
        let healthy = all.iter().filter(|t| is_healthy(t)).count();
        if healthy < 3 || live > 6 {
            bail!("bounds broken: {healthy} healthy, {live} live: {all:?}");
        }
        observations += 1;
        let s = describe(b)?;
        let p = primary(&s);
        Ok((p["rolloutState"] == "COMPLETED"
            && s["deployments"].as_array().map(Vec::len) == Some(1)
            && p["taskDefinition"]
                .as_str()
                .is_some_and(|td| td.ends_with("heal:2")))
        .then_some(()))
    })?;
    eprintln!("rollout: {observations} observations");
    let most = assert_bounds_throughout(&tasks(b)?, updated_at, epoch_secs(), 3, 6);
    assert!(most > 3, "the new tasks ran beside the old ones");
    Ok(())
}

/// Kills the second agent: its containers keep running, unseen. Past the
/// grace its tasks are stopped and started on the first agent.
fn lose_an_agent(b: &mut Berth, first: &str, second: &str) -> Result<()> {
    let before: Vec<Value> = tasks(b)?
        .into_iter()
        .filter(|t| is_live(t) && on(t, second))
        .collect();
    assert!(!before.is_empty());
    let killed = Instant::now();
    b.extra_agents[0].kill9();
    poll(
        "the tasks to come back on the first agent",
        Duration::from_secs(60),
        || {
            let live: Vec<Value> = tasks(b)?.into_iter().filter(is_live).collect();
            let serving = live
                .iter()
                .filter(|t| on(t, first) && t["lastStatus"] == "RUNNING")
                .count();
            Ok((serving == 3 && live.len() == 3).then_some(()))
        },
    )?;
    eprintln!(
        "agent killed -> 3 running on the other agent in {:?}",
        killed.elapsed()
    );
    for t in &before {
        let arn = t["taskArn"].as_str().context("taskArn")?;
        let now = b.describe_task("default", arn)?;
        assert_eq!(now["lastStatus"], "STOPPED", "{now}");
        assert_eq!(now["stopCode"], "ServiceSchedulerInitiated");
        assert!(
            now["stoppedReason"]
                .as_str()
                .is_some_and(|r| r.starts_with("Host (container-instance ") && r.contains(" lost")),
            "{now}"
        );
    }
    let s = describe(b)?;
    assert!(
        s["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains("lost contact with its agent"))),
        "{s}"
    );
    assert_eq!(
        primary(&s)["failedTasks"],
        0,
        "a lost host is not a failed task"
    );

    // The orphans still run in the second agent's namespace until its
    // agent returns and learns the control plane no longer wants them.
    let namespace = b.extra_agents[0].namespace.clone();
    assert_eq!(running_containers(b, &namespace)?, before.len());
    b.restart_extra_agent(0)?;
    poll(
        "the returning agent to stop its replaced tasks",
        Duration::from_secs(60),
        || Ok((running_containers(b, &namespace)? == 0).then_some(())),
    )?;
    let live: Vec<Value> = tasks(b)?.into_iter().filter(is_live).collect();
    assert_eq!(live.len(), 3, "{live:?}");
    assert!(live
        .iter()
        .all(|t| on(t, first) && t["lastStatus"] == "RUNNING"));
    Ok(())
}

#[test]
fn the_timeline_check_catches_a_moment_the_polls_missed() {
    let task = |created: f64, started: f64, stopping: Option<f64>| {
        json!({"createdAt": created, "startedAt": started, "stoppingAt": stopping,
               "stoppedAt": stopping.map(|s| s + 1.0)})
    };
    // One old task asked to stop at 10 while the new one ran from 6: fine.
    let ok = [task(0.0, 1.0, Some(10.0)), task(5.0, 6.0, None)];
    assert_eq!(assert_bounds_throughout(&ok, 2.0, 20.0, 1, 2), 2);
    // Asked to stop at 4, before the new one ran: no task serving at 4.
    let early = [task(0.0, 1.0, Some(4.0)), task(3.0, 6.0, None)];
    let caught = std::panic::catch_unwind(|| assert_bounds_throughout(&early, 2.0, 20.0, 1, 2));
    assert!(caught.is_err());
}
