//! Container fields an ECS task definition sets, honoured on real containers:
//! environmentFiles, readonlyRootFilesystem, ulimits, linuxParameters
//! (capabilities, initProcessEnabled, sharedMemorySize, tmpfs), task volumes
//! with mountPoints and volumesFrom, dockerLabels, and privileged refused.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::{poll, Berth};
use serde_json::json;

fn log(b: &Berth, arn: &str, container: &str) -> String {
    let id = arn.rsplit('/').next().unwrap_or(arn);
    std::fs::read_to_string(
        b.agent_dir()
            .join("tasks")
            .join(id)
            .join(format!("{container}.log")),
    )
    .unwrap_or_default()
}

#[test]
#[allow(clippy::too_many_lines)] // one task exercises every field; splitting would start more daemons
fn task_definition_fields_reach_the_containers() -> Result<()> {
    let b = Berth::start()?;
    let env_file = b.dir.path().join("app.env");
    std::fs::write(
        &env_file,
        "# settings\nFROM_FILE=file-value\nOVERRIDDEN=from-file\n",
    )?;
    let writer_script = [
        "echo \"env FROM_FILE=$FROM_FILE OVERRIDDEN=$OVERRIDDEN\"",
        "echo \"nofile $(ulimit -n) $(ulimit -Hn)\"",
        "touch /rootfs-file 2>/dev/null && echo rootfs-writable || echo rootfs-readonly",
        "echo shared > /data/shared",
        "echo \"shm $(df -k /dev/shm | tail -1 | awk '{print $2}')\"",
        "echo \"scratch $(df -k /scratch | tail -1 | awk '{print $2}')\"",
        "echo \"pid1 $(cat /proc/1/comm)\"",
        "grep CapBnd /proc/self/status",
        "echo done-writing",
        "exec sleep 600",
    ]
    .join("; ");
    let def = json!({
        "family": "fields",
        "volumes": [{"name": "data"}],
        "containerDefinitions": [
            {"name": "writer", "image": b.demo_image, "memory": 64, "stopTimeout": 2,
             "entryPoint": ["/bin/sh", "-c"], "command": [writer_script],
             "environment": [{"name": "OVERRIDDEN", "value": "from-definition"}],
             "environmentFiles": [{"value": env_file.display().to_string(), "type": "s3"}],
             "readonlyRootFilesystem": true,
             "ulimits": [{"name": "nofile", "softLimit": 1000, "hardLimit": 2000}],
             "linuxParameters": {"capabilities": {"drop": ["NET_RAW"]}, "initProcessEnabled": true,
                                 "sharedMemorySize": 128, "tmpfs": [{"containerPath": "/scratch", "size": 16}]},
             "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}],
             "dockerLabels": {"team": "payments"}},
            {"name": "reader", "image": b.demo_image, "memory": 32, "essential": false, "stopTimeout": 2,
             "volumesFrom": [{"sourceContainer": "writer", "readOnly": true}],
             "entryPoint": ["/bin/sh", "-c"],
             "command": ["until [ -f /data/shared ]; do sleep 0.1; done; echo \"read $(cat /data/shared)\"; touch /data/x 2>/dev/null && echo volume-writable || echo volume-readonly; exec sleep 600"]}
        ]
    });
    b.register_task_definition(&def)?;
    let arn = b.run_task(def["family"].as_str().unwrap_or_default())?;
    b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    let writer = poll("the writer's report", Duration::from_secs(20), || {
        Ok(Some(log(&b, &arn, "writer")).filter(|l| l.contains("done-writing")))
    })?;
    let reader = poll("the reader's report", Duration::from_secs(20), || {
        Ok(Some(log(&b, &arn, "reader")).filter(|l| l.contains("volume-")))
    })?;
    assert!(
        writer.contains("env FROM_FILE=file-value OVERRIDDEN=from-definition"),
        "{writer}"
    );
    assert!(writer.contains("nofile 1000 2000"), "{writer}");
    assert!(writer.contains("rootfs-readonly"), "{writer}");
    assert!(writer.contains("shm 131072"), "{writer}");
    assert!(writer.contains("scratch 16384"), "{writer}");
    assert!(
        writer.contains("pid1 berth-init"),
        "initProcessEnabled: {writer}"
    );
    let capbnd = writer
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .context("CapBnd line")?;
    assert_eq!(capbnd & (1 << 13), 0, "CAP_NET_RAW was dropped: {capbnd:x}");
    assert_ne!(capbnd & 1, 0, "CAP_CHOWN (a default) stays: {capbnd:x}");
    assert_eq!(
        capbnd & (1 << 21),
        0,
        "CAP_SYS_ADMIN is not a default: {capbnd:x}"
    );
    assert!(reader.contains("read shared"), "{reader}");
    assert!(reader.contains("volume-readonly"), "{reader}");

    let id = arn.rsplit('/').next().unwrap_or_default().to_string();
    let info = Command::new("ctr")
        .args([
            "--address",
            &b.containerd_sock,
            "-n",
            &b.namespace,
            "containers",
            "info",
            &format!("{id}-writer"),
        ])
        .output()?;
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("\"team\": \"payments\""),
        "dockerLabels on the container: {info}"
    );

    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    poll("the task to stop", Duration::from_secs(30), || {
        Ok((b.describe_task("default", &arn)?["lastStatus"] == "STOPPED").then_some(()))
    })?;
    assert!(
        !b.agent_dir()
            .join("tasks")
            .join(&id)
            .join("volumes")
            .exists(),
        "task volume removed with the task"
    );
    Ok(())
}

#[test]
fn privileged_is_refused_unless_the_agent_allows_it() -> Result<()> {
    let b = Berth::start()?;
    let def = json!({"family": "priv", "containerDefinitions": [
        {"name": "a", "image": b.demo_image, "memory": 16, "privileged": true}]});
    b.register_task_definition(&def)?;
    let arn = b.run_task(def["family"].as_str().unwrap_or_default())?;
    let t = poll("the task to stop", Duration::from_secs(60), || {
        let t = b.describe_task("default", &arn)?;
        Ok((t["lastStatus"] == "STOPPED").then_some(t))
    })?;
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("CannotStartContainerError:") && reason.contains("--allow-privileged"),
        "{reason}"
    );
    Ok(())
}
