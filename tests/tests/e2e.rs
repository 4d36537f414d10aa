//! End to end: the real daemons, containerd, registry and aws CLI.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth_e2e::{http_get, poll, Berth};
use serde_json::{json, Value};

fn write_json(b: &Berth, name: &str, v: &Value) -> Result<String> {
    let p = b.dir.path().join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v)?)?;
    Ok(format!("file://{}", p.display()))
}

fn task_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// A web container and a sidecar that reaches it over localhost: both share
/// the task's network namespace.
fn web_with_sidecar(image: &str) -> Value {
    json!({
        "family": "web",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {"name": "web", "image": image, "essential": true, "stopTimeout": 2,
             "portMappings": [{"containerPort": 80, "protocol": "tcp"}]},
            {"name": "sidecar", "image": image, "essential": false, "stopTimeout": 5,
             "entryPoint": ["/bin/sh", "-c"],
             "command": ["trap 'exit 0' TERM; until wget -qO /tmp/page http://localhost:80/; do sleep 0.2; done; echo \"sidecar got: $(cat /tmp/page)\"; while true; do sleep 0.2; done"]}
        ]
    })
}

#[test]
fn run_task_serves_a_page_and_stops_cleanly() -> Result<()> {
    let b = Berth::start()?;
    let c = b.aws(&["ecs", "create-cluster", "--cluster-name", "my-cluster"])?;
    assert_eq!(c["cluster"]["status"], "ACTIVE");
    let td = write_json(&b, "web.json", &web_with_sidecar(&b.demo_image))?;
    let reg = b.aws(&["ecs", "register-task-definition", "--cli-input-json", &td])?;
    assert_eq!(reg["taskDefinition"]["revision"], 1);

    let run = b.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "my-cluster",
        "--launch-type",
        "FARGATE",
        "--task-definition",
        "web",
    ])?;
    assert_eq!(run["failures"], json!([]), "{run}");
    let arn = run["tasks"][0]["taskArn"]
        .as_str()
        .context("taskArn")?
        .to_string();
    let id = task_id(&arn);
    let task = b.wait_task_status("my-cluster", &arn, "RUNNING", Duration::from_secs(60))?;
    let ip = task["attachments"][0]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "privateIPv4Address"))
        .and_then(|d| d["value"].as_str())
        .context("privateIPv4Address in attachments")?
        .to_string();
    assert_eq!(task["containers"].as_array().map(Vec::len), Some(2));
    // The task's memory (512 MiB) is the task cgroup's hard limit.
    assert_eq!(b.task_memory_limit(&id)?, 512 * 1024 * 1024);
    // The agent's default pids limit holds every task.
    assert_eq!(b.task_cgroup_file(&id, "pids", "pids.max")?, "4096");

    // The host reaches the task's own address.
    let page = poll("the page from the task", Duration::from_secs(20), || {
        Ok(http_get(&ip, 80, "/").ok())
    })?;
    assert!(page.contains("hello from berth"), "{page}");
    // The sidecar reached the web container over localhost.
    let log = b.agent_dir().join("tasks").join(&id).join("sidecar.log");
    poll(
        "the sidecar to reach localhost",
        Duration::from_secs(20),
        || {
            Ok(std::fs::read_to_string(&log)
                .ok()
                .filter(|s| s.contains("sidecar got: hello from berth")))
        },
    )?;

    let stopped = b.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        "my-cluster",
        "--task",
        &arn,
        "--reason",
        "done testing",
    ])?;
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    let t = b.wait_task_status("my-cluster", &arn, "STOPPED", Duration::from_secs(60))?;
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "done testing");
    for c in t["containers"].as_array().context("containers")? {
        assert_eq!(c["lastStatus"], "STOPPED", "{c}");
        assert!(
            c["exitCode"].is_i64(),
            "container without an exit code: {c}"
        );
    }
    let sidecar = t["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sidecar")
        .unwrap();
    assert_eq!(
        sidecar["exitCode"], 0,
        "the sidecar traps SIGTERM and exits 0"
    );
    assert!(
        t["stoppedAt"].is_number() && t["executionStoppedAt"].is_number(),
        "{t}"
    );

    let left = poll(
        "host resources to be removed",
        Duration::from_secs(10),
        || {
            let l = b.leftovers(&id)?;
            Ok(l.is_empty().then_some(()))
        },
    );
    assert!(left.is_ok(), "left behind: {:?}", b.leftovers(&id)?);
    Ok(())
}

#[test]
fn essential_exit_stops_the_task_with_ecs_reason() -> Result<()> {
    let b = Berth::start()?;
    let td = json!({
        "family": "once",
        "containerDefinitions": [
            {"name": "main", "image": b.demo_image, "memory": 32, "entryPoint": ["/bin/sh", "-c"], "command": ["exit 3"]}
        ]
    });
    let td = write_json(&b, "once.json", &td)?;
    b.aws(&["ecs", "register-task-definition", "--cli-input-json", &td])?;
    let run = b.aws(&["ecs", "run-task", "--task-definition", "once"])?;
    let arn = run["tasks"][0]["taskArn"]
        .as_str()
        .context("taskArn")?
        .to_string();
    let t = poll("the task to stop", Duration::from_secs(60), || {
        let t = b.describe_task("default", &arn)?;
        Ok((t["lastStatus"] == "STOPPED").then_some(t))
    })?;
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(t["containers"][0]["exitCode"], 3);
    assert!(b.leftovers(&task_id(&arn))?.is_empty());
    Ok(())
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario: each bad input, then "nothing half-created"
fn failures_and_errors_as_ecs_reports_them() -> Result<()> {
    let b = Berth::start()?;
    // Too big for the host: a failure entry, no task.
    let td = json!({"family": "huge", "containerDefinitions": [{"name": "a", "image": b.demo_image, "memory": 10_000_000}]});
    let td = write_json(&b, "huge.json", &td)?;
    b.aws(&["ecs", "register-task-definition", "--cli-input-json", &td])?;
    let run = b.aws(&["ecs", "run-task", "--task-definition", "huge"])?;
    assert_eq!(run["tasks"], json!([]));
    assert_eq!(run["failures"][0]["reason"], "RESOURCE:MEMORY", "{run}");

    // Unknown cluster and task definition, through the CLI.
    let out = b.aws_raw(&[
        "ecs",
        "run-task",
        "--cluster",
        "nope",
        "--task-definition",
        "huge",
    ])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ClusterNotFoundException") && err.contains("'nope'"),
        "{err}"
    );
    let out = b.aws_raw(&["ecs", "run-task", "--task-definition", "ghost:7"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("InvalidParameterException") && err.contains("ghost:7"),
        "{err}"
    );
    let out = b.aws_raw(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "ghost",
    ])?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("ClientException"));

    // What the CLI would not send: raw, botocore-signed requests.
    let raw = |op: &str, body: &str, mode: &str| -> Result<Value> {
        let out = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/raw_ecs_request.py"
            ))
            .args([op, body, mode])
            .envs(b.aws_env()?)
            .output()?;
        assert!(
            out.status.success(),
            "raw request failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let r = raw("LaunchRockets", "{}", "")?;
    assert_eq!(
        (r["status"].as_i64(), r["body"]["__type"].as_str()),
        (Some(400), Some("UnknownOperationException"))
    );
    let r = raw("CreateCluster", "{not json", "")?;
    assert_eq!(r["body"]["__type"], "SerializationException");
    let r = raw(
        "RegisterTaskDefinition",
        r#"{"containerDefinitions": []}"#,
        "",
    )?;
    assert_eq!(r["body"]["__type"], "InvalidParameterException");
    assert!(
        r["body"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("\"family\""),
        "{r}"
    );
    let r = raw(
        "RegisterTaskDefinition",
        r#"{"family": "x", "containerDefinitions": []}"#,
        "",
    )?;
    assert!(
        r["body"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("at least one container"),
        "{r}"
    );
    let r = raw("ListClusters", "{}", "--unsigned")?;
    assert_eq!(
        (r["status"].as_i64(), r["body"]["__type"].as_str()),
        (Some(403), Some("MissingAuthenticationTokenException"))
    );
    let r = raw("ListClusters", "{}", "--bad-secret")?;
    assert_eq!(
        (r["status"].as_i64(), r["body"]["__type"].as_str()),
        (Some(403), Some("InvalidSignatureException"))
    );

    // Nothing half-created: only the one good definition and no tasks.
    let defs = b.aws(&["ecs", "list-task-definitions"])?;
    assert_eq!(
        defs["taskDefinitionArns"].as_array().map(Vec::len),
        Some(1),
        "{defs}"
    );
    let clusters = b.aws(&["ecs", "list-clusters"])?;
    assert_eq!(
        clusters["clusterArns"].as_array().map(Vec::len),
        Some(1),
        "{clusters}"
    );
    let tasks = b.aws(&["ecs", "list-tasks"])?;
    assert_eq!(tasks["taskArns"], json!([]));
    Ok(())
}

#[test]
fn acknowledged_state_survives_kill_9_of_the_control_plane() -> Result<()> {
    let mut b = Berth::start()?;
    b.aws(&["ecs", "create-cluster", "--cluster-name", "durable"])?;
    let td = json!({"family": "keep", "containerDefinitions": [{"name": "a", "image": b.demo_image, "memory": 16}]});
    let td = write_json(&b, "keep.json", &td)?;
    b.aws(&["ecs", "register-task-definition", "--cli-input-json", &td])?;
    b.kill9_controlplane();
    let started = Instant::now();
    b.start_controlplane()?;
    let clusters = b.aws(&["ecs", "describe-clusters", "--clusters", "durable"])?;
    assert_eq!(clusters["clusters"][0]["status"], "ACTIVE");
    let td = b.aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "keep:1",
    ])?;
    assert_eq!(
        td["taskDefinition"]["containerDefinitions"][0]["memory"],
        16
    );
    // The agent reconnects by itself, keeping its container-instance ARN.
    let arn = b.wait_connected()?;
    let all = b.aws(&["ecs", "list-container-instances", "--cluster", "default"])?;
    assert_eq!(all["containerInstanceArns"], json!([arn]));
    eprintln!(
        "control plane restart to agent reconnected: {:?}",
        started.elapsed()
    );
    Ok(())
}
