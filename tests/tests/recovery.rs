//! Agent restart recovery: after kill -9 of the agent, running containers
//! keep running and are adopted, and a container that exited meanwhile is
//! reported with its real exit code.

use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::{poll, Berth};
use serde_json::json;

#[test]
fn kill_9_of_the_agent_leaves_containers_running_and_adopted() -> Result<()> {
    let mut b = Berth::start()?;
    let image = b.demo_image.clone();
    let def = json!({
        "family": "survivor",
        "containerDefinitions": [
            {"name": "long", "image": image, "memory": 32, "stopTimeout": 5, "entryPoint": ["/bin/sh", "-c"],
             "command": ["echo started; trap 'exit 0' TERM; while true; do if [ -f /tmp/fetch ]; then rm /tmp/fetch; echo \"meta $(wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task)\"; fi; sleep 0.2; done"]},
            {"name": "short", "image": image, "memory": 32, "essential": false, "entryPoint": ["/bin/sh", "-c"],
             "command": ["while [ ! -f /tmp/go ]; do sleep 0.1; done; exit 5"]}
        ]
    });
    let p = b.dir.path().join("survivor.json");
    std::fs::write(&p, serde_json::to_vec(&def)?)?;
    b.aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", p.display()),
    ])?;
    let run = b.aws(&["ecs", "run-task", "--task-definition", "survivor"])?;
    let arn = run["tasks"][0]["taskArn"]
        .as_str()
        .context("taskArn")?
        .to_string();
    let id = arn.rsplit('/').next().unwrap_or_default().to_string();
    b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    let (long_id, short_id) = (format!("{id}-long"), format!("{id}-short"));
    let (_, pid_before) = b.containerd_task(&long_id)?.context("long is running")?;

    b.kill9_agent();
    // While the agent is away, `short` exits 5 (told to through its rootfs).
    let rootfs_go = format!(
        "/proc/{}/root/tmp/go",
        b.containerd_task(&short_id)?.context("short")?.1
    );
    std::fs::write(&rootfs_go, b"")?;
    poll(
        "short to exit while the agent is down",
        Duration::from_secs(10),
        || {
            Ok(b.containerd_task(&short_id)?
                .filter(|(s, _)| s == "STOPPED")
                .map(|_| ()))
        },
    )?;

    b.start_agent()?;
    b.wait_connected()?;
    let t = poll("the exit to be reported", Duration::from_secs(30), || {
        let t = b.describe_task("default", &arn)?;
        let short = t["containers"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "short"))
            .cloned();
        Ok(short.filter(|c| c["lastStatus"] == "STOPPED").map(|_| t))
    })?;
    let short = t["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "short")
        .unwrap();
    assert_eq!(short["exitCode"], 5, "{t}");
    assert_eq!(
        t["lastStatus"], "RUNNING",
        "a non-essential exit keeps the task running: {t}"
    );
    // `long` was adopted, not restarted: same process, one start line.
    let (state, pid_after) = b.containerd_task(&long_id)?.context("long still exists")?;
    assert_eq!((state.as_str(), pid_after), ("RUNNING", pid_before));
    let log = std::fs::read_to_string(b.agent_dir().join("tasks").join(&id).join("long.log"))?;
    assert_eq!(log.matches("started").count(), 1, "{log}");

    // Its task metadata endpoint answers again under the URI it was started with.
    std::fs::write(format!("/proc/{pid_after}/root/tmp/fetch"), b"")?;
    let log = b.wait_log(&arn, "long", "meta ")?;
    assert!(log.contains(&format!("\"TaskARN\":\"{arn}\"")), "{log}");

    // The adopted container's exit is still watched: a stop completes and cleans up.
    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    let t = poll("the task to stop", Duration::from_secs(30), || {
        let t = b.describe_task("default", &arn)?;
        Ok((t["lastStatus"] == "STOPPED").then_some(t))
    })?;
    let long_container = t["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "long")
        .unwrap();
    assert_eq!(long_container["exitCode"], 0, "{t}");
    poll(
        "host resources to be removed",
        Duration::from_secs(10),
        || Ok(b.leftovers(&id)?.is_empty().then_some(())),
    )?;
    Ok(())
}

/// The host port a container's first network binding got.
fn host_port(task: &serde_json::Value, container: &str) -> Option<u16> {
    task["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == container)?["networkBindings"][0]["hostPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
}

#[test]
fn kill_9_of_the_agent_mid_bridge_task_keeps_its_published_port() -> Result<()> {
    let mut b = Berth::start()?;
    let def = json!({
        "family": "bridged",
        "networkMode": "bridge",
        "containerDefinitions": [
            {"name": "web", "image": b.demo_image, "memory": 32, "stopTimeout": 2,
             "portMappings": [{"containerPort": 80, "hostPort": 0}]}
        ]
    });
    b.register_task_definition(&def)?;
    let arn = b.run_task("bridged")?;
    let id = arn.rsplit('/').next().unwrap_or_default().to_string();
    let t = b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    let port = host_port(&t, "web").context("a dynamic host port")?;
    let page = |what: &str| {
        poll(what, Duration::from_secs(20), || {
            Ok(berth_e2e::http_get("127.0.0.1", port, "/").ok())
        })
    };
    assert!(page("the page before the crash")?.contains("hello from berth"));
    let (_, pid_before) = b
        .containerd_task(&format!("{id}-web"))?
        .context("web is running")?;

    b.kill9_agent();
    // Nothing the agent made goes away with it: the port still answers.
    assert!(page("the page with the agent down")?.contains("hello from berth"));
    b.start_agent()?;
    b.wait_connected()?;
    let t = b.describe_task("default", &arn)?;
    assert_eq!(t["lastStatus"], "RUNNING", "{t}");
    assert_eq!(host_port(&t, "web"), Some(port), "{t}");
    let (_, pid_after) = b
        .containerd_task(&format!("{id}-web"))?
        .context("web still runs")?;
    assert_eq!(pid_after, pid_before, "adopted, not restarted");

    // The restarted agent still holds the port: a new task gets another one.
    let second = b.run_task("bridged")?;
    let t2 = b.wait_task_status("default", &second, "RUNNING", Duration::from_secs(60))?;
    let port2 = host_port(&t2, "web").context("the second task's port")?;
    assert_ne!(port2, port, "the adopted task's port was handed out again");

    // Stopping the adopted task removes its rules and namespaces.
    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    b.wait_stopped(&arn, Duration::from_secs(30))?;
    poll(
        "the adopted task's host resources to be removed",
        Duration::from_secs(10),
        || Ok(b.leftovers(&id)?.is_empty().then_some(())),
    )?;
    assert!(
        berth_e2e::http_get("127.0.0.1", port, "/").is_err(),
        "port {port} still answers after the stop"
    );
    b.aws(&["ecs", "stop-task", "--task", &second])?;
    b.wait_stopped(&second, Duration::from_secs(30))?;
    Ok(())
}
