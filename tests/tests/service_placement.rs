//! Service placement end to end with the aws CLI and real agents: a
//! capacity provider strategy splits a service over two pools' hosts, and
//! a distinctInstance constraint keeps replicas apart even under binpack.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::{poll, Berth};
use berth_ecs::{InstanceStatus, ServiceStatus};
use serde_json::{json, Value};

fn describe(b: &Berth, name: &str) -> Result<Value> {
    let d = b.aws(&["ecs", "describe-services", "--services", name])?;
    d["services"]
        .get(0)
        .cloned()
        .with_context(|| format!("service {name} not described: {d}"))
}

/// The service's RUNNING tasks, once it and its tasks agree it runs
/// `count`.
fn wait_running(b: &Berth, name: &str, count: usize) -> Result<Vec<Value>> {
    poll(
        &format!("service {name} to run {count} tasks"),
        Duration::from_secs(120),
        || {
            // The service's counts trail its tasks' states by one reconcile.
            if describe(b, name)?["runningCount"] != count {
                return Ok(None);
            }
            let l = b.aws(&["ecs", "list-tasks", "--service-name", name])?;
            let arns: Vec<&str> = l["taskArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if arns.len() != count {
                return Ok(None);
            }
            let mut cmd = vec!["ecs", "describe-tasks", "--tasks"];
            cmd.extend(arns);
            let tasks: Vec<Value> = b.aws(&cmd)?["tasks"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let running = tasks.iter().all(|t| t["lastStatus"] == "RUNNING");
            Ok((running && tasks.len() == count).then_some(tasks))
        },
    )
}

/// Tasks per (container instance, capacity provider).
fn by_host(tasks: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for t in tasks {
        let key = (
            t["containerInstanceArn"].as_str().unwrap_or("").to_owned(),
            t["capacityProviderName"].as_str().unwrap_or("").to_owned(),
        );
        *m.entry(key).or_default() += 1;
    }
    m
}

/// Deletes the service and waits until its tasks have stopped, so the
/// agents stop their containers before the harness goes.
fn delete(b: &Berth, name: &str) -> Result<()> {
    b.aws(&["ecs", "delete-service", "--service", name, "--force"])?;
    poll(
        &format!("service {name} to be INACTIVE"),
        Duration::from_secs(90),
        || Ok((describe(b, name)?["status"] == "INACTIVE").then_some(())),
    )
}

#[test]
fn a_service_strategy_splits_its_tasks_over_the_pools_hosts() -> Result<()> {
    let mut b = Berth::start()?;
    let k = b.start_extra_agent_in(Some("FARGATE_SPOT"))?;
    let spot_host = b.extra_agents[k].instance_arn.clone();
    let fargate_host = b
        .connected_instances()?
        .into_iter()
        .find(|a| *a != spot_host)
        .context("the harness agent's instance")?;
    b.aws(&[
        "ecs",
        "put-cluster-capacity-providers",
        "--cluster",
        "default",
        "--capacity-providers",
        "FARGATE",
        "FARGATE_SPOT",
        "--default-capacity-provider-strategy",
        "[]",
    ])?;
    b.register_task_definition(&json!({
        "family": "split", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{
            "name": "main", "image": b.demo_image, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        }]
    }))?;
    // launchType and a strategy together are refused, as RunTask refuses them.
    let both = b.aws_raw(&[
        "ecs",
        "create-service",
        "--service-name",
        "both",
        "--task-definition",
        "split",
        "--launch-type",
        "FARGATE",
        "--capacity-provider-strategy",
        "capacityProvider=FARGATE,weight=1",
    ])?;
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("InvalidParameterException"));

    // The example: FARGATE base 2 weight 1, FARGATE_SPOT weight 3: 2 + 3.
    let out = b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "cp",
        "--task-definition",
        "split",
        "--desired-count",
        "5",
        "--capacity-provider-strategy",
        "capacityProvider=FARGATE,weight=1,base=2",
        "capacityProvider=FARGATE_SPOT,weight=3,base=0",
    ])?;
    let strategy = json!([
        {"capacityProvider": "FARGATE", "weight": 1, "base": 2},
        {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 0},
    ]);
    assert_eq!(
        out["service"]["capacityProviderStrategy"], strategy,
        "{out}"
    );
    assert_eq!(
        out["service"]["deployments"][0]["capacityProviderStrategy"],
        strategy
    );
    let tasks = wait_running(&b, "cp", 5)?;
    let split = by_host(&tasks);
    assert_eq!(
        split,
        BTreeMap::from([
            ((fargate_host, "FARGATE".to_string()), 2),
            ((spot_host, "FARGATE_SPOT".to_string()), 3),
        ]),
        "{tasks:?}"
    );
    let s = describe(&b, "cp")?;
    assert_eq!(s["runningCount"], 5);
    assert!(s.get("launchType").is_none(), "{s}");
    delete(&b, "cp")
}

/// A second agent beside the harness's, and an idle task definition `family`; the two
/// hosts' instance ARNs (the harness's first).
fn two_hosts(b: &mut Berth, family: &str) -> Result<(String, String)> {
    let k = b.start_extra_agent()?;
    let second = b.extra_agents[k].instance_arn.clone();
    let first = b
        .connected_instances()?
        .into_iter()
        .find(|a| *a != second)
        .context("the harness agent's instance")?;
    b.register_task_definition(&json!({
        "family": family,
        "containerDefinitions": [{
            "name": "app", "image": b.demo_image, "memory": 16, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        }]
    }))?;
    Ok((first, second))
}

#[test]
fn distinct_instance_keeps_a_service_s_tasks_apart() -> Result<()> {
    let mut b = Berth::start()?;
    let (first, second) = two_hosts(&mut b, "apart")?;
    // binpack alone would stack both tasks on one host.
    let out = b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "apart",
        "--task-definition",
        "apart",
        "--desired-count",
        "2",
        "--launch-type",
        "EC2",
        "--placement-strategy",
        "type=binpack,field=memory",
        "--placement-constraints",
        "type=distinctInstance",
    ])?;
    assert_eq!(
        out["service"]["placementConstraints"],
        json!([{"type": "distinctInstance"}]),
        "{out}"
    );
    assert_eq!(
        out["service"]["placementStrategy"],
        json!([{"type": "binpack", "field": "memory"}])
    );
    let tasks = wait_running(&b, "apart", 2)?;
    let mut hosts: Vec<&str> = tasks
        .iter()
        .filter_map(|t| t["containerInstanceArn"].as_str())
        .collect();
    hosts.sort_unstable();
    let mut want = vec![first.as_str(), second.as_str()];
    want.sort_unstable();
    assert_eq!(hosts, want, "one task on each instance");
    delete(&b, "apart")
}

/// The container instances the tasks run on, sorted.
fn hosts_of(tasks: &[Value]) -> Vec<String> {
    let mut hosts: Vec<String> = tasks
        .iter()
        .filter_map(|t| t["containerInstanceArn"].as_str().map(str::to_owned))
        .collect();
    hosts.sort_unstable();
    hosts
}

fn refused(b: &Berth, args: &[&str], code: &str) -> Result<String> {
    let out = b.aws_raw(args)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    anyhow::ensure!(
        !out.status.success() && stderr.contains(code),
        "{args:?}: {stderr}"
    );
    Ok(stderr)
}

#[test]
fn a_daemon_service_runs_one_task_on_each_instance_and_follows_the_fleet() -> Result<()> {
    let mut b = Berth::start()?;
    let (first, second) = two_hosts(&mut b, "node-agent")?;
    let create = |extra: &[&str]| {
        let mut args = vec![
            "ecs",
            "create-service",
            "--service-name",
            "node-agent",
            "--task-definition",
            "node-agent",
            "--scheduling-strategy",
            "DAEMON",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    for extra in [
        &["--launch-type", "FARGATE"][..],
        &["--desired-count", "3"],
        &["--placement-strategy", "type=spread,field=instanceId"],
    ] {
        let args = create(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let why = refused(&b, &args, "InvalidParameterException")?;
        assert!(why.contains("DAEMON"), "{why}");
    }
    let args = create(&[]);
    let out = b.aws(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    assert_eq!(out["service"]["schedulingStrategy"], "DAEMON", "{out}");
    assert_eq!(out["service"]["launchType"], "EC2", "{out}");
    assert_eq!(
        out["service"]["deploymentConfiguration"]["maximumPercent"], 100,
        "{out}"
    );
    assert_eq!(
        out["service"]["deploymentConfiguration"]["minimumHealthyPercent"], 0,
        "{out}"
    );

    let mut both = vec![first.clone(), second.clone()];
    both.sort_unstable();
    assert_eq!(hosts_of(&wait_running(&b, "node-agent", 2)?), both);
    assert_eq!(describe(&b, "node-agent")?["desiredCount"], 2);

    // A host that joins gets one.
    let k = b.start_extra_agent()?;
    let third = b.extra_agents[k].instance_arn.clone();
    let tasks = wait_running(&b, "node-agent", 3)?;
    assert!(hosts_of(&tasks).contains(&third), "{tasks:?}");
    assert_eq!(hosts_of(&tasks).len(), 3);

    // A DRAINING host loses its task, and the count follows.
    b.aws(&[
        "ecs",
        "update-container-instances-state",
        "--container-instances",
        &first,
        "--status",
        InstanceStatus::Draining.as_str(),
    ])?;
    let tasks = wait_running(&b, "node-agent", 2)?;
    assert!(!hosts_of(&tasks).contains(&first), "{tasks:?}");
    assert_eq!(describe(&b, "node-agent")?["desiredCount"], 2);

    let daemons = b.aws(&["ecs", "list-services", "--scheduling-strategy", "DAEMON"])?;
    assert_eq!(daemons["serviceArns"].as_array().map(Vec::len), Some(1));
    let replicas = b.aws(&["ecs", "list-services", "--scheduling-strategy", "REPLICA"])?;
    assert_eq!(replicas["serviceArns"], json!([]));
    let why = refused(
        &b,
        &[
            "ecs",
            "update-service",
            "--service",
            "node-agent",
            "--desired-count",
            "4",
        ],
        "InvalidParameterException",
    )?;
    assert!(why.contains("DAEMON"), "{why}");
    // A daemon is deleted without --force, and its tasks stop.
    b.aws(&["ecs", "delete-service", "--service", "node-agent"])?;
    poll("the daemon to be INACTIVE", Duration::from_secs(90), || {
        Ok(
            (describe(&b, "node-agent")?["status"] == ServiceStatus::Inactive.as_str())
                .then_some(()),
        )
    })?;
    Ok(())
}
