//! Heartbeats: an agent that goes silent (its process frozen, as a hung or
//! partitioned host would be) is marked disconnected within the
//! missed-heartbeat window, gets no placements, and is back once it talks again;
//! and an agent whose control plane goes silent ends its session and reconnects.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth_e2e::{poll, Berth};
use serde_json::json;

fn connected(b: &Berth, arn: &str) -> Result<bool> {
    let d = b.aws(&[
        "ecs",
        "describe-container-instances",
        "--container-instances",
        arn,
    ])?;
    Ok(d["containerInstances"][0]["agentConnected"] == true)
}

/// Resumes the agent even if the test fails half-way.
struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[test]
fn a_silent_agent_is_marked_disconnected_and_comes_back() -> Result<()> {
    let mut b = Berth::start()?;
    let arn = b.wait_connected()?;
    b.register_task_definition(&json!({"family": "tiny", "containerDefinitions": [
        {"name": "a", "image": b.demo_image, "memory": 16}]}))?;
    let pid = b.agent_pid().context("agent running")?;
    assert!(Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()?
        .success());
    let thaw = Thaw(pid);
    let frozen = Instant::now();
    poll(
        "agentConnected to turn false",
        Duration::from_secs(20),
        || Ok((!connected(&b, &arn)?).then_some(())),
    )?;
    let noticed = frozen.elapsed();
    eprintln!("silent agent marked disconnected after {noticed:?}");
    // 3 missed heartbeats of 2 s: 6 s of silence after the last one (sent
    // up to 2 s before the freeze), plus polling.
    assert!(
        noticed >= Duration::from_secs(4),
        "marked disconnected too early: {noticed:?}"
    );
    assert!(
        noticed <= Duration::from_secs(12),
        "took too long: {noticed:?}"
    );
    let out = b.aws_raw(&["ecs", "run-task", "--task-definition", "tiny"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("No Container Instances"),
        "placed on a silent agent: {err}"
    );

    drop(thaw);
    let arn_again = b.wait_connected()?;
    assert_eq!(arn_again, arn, "the agent keeps its container instance");
    Ok(())
}

#[test]
fn an_agent_ends_a_silent_control_planes_session_and_reconnects() -> Result<()> {
    let mut b = Berth::start()?;
    let arn = b.wait_connected()?;
    let pid = b.controlplane_pid().context("control plane running")?;
    assert!(Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()?
        .success());
    let thaw = Thaw(pid);
    // The connection stays open (the process is frozen, not gone): only the
    // heartbeats stop. 3 missed intervals of 2 s.
    let log = b.dir.path().join("agent.log");
    poll(
        "the agent to end the silent session",
        Duration::from_secs(20),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Ok(text
                .contains("no heartbeat from the control plane")
                .then_some(()))
        },
    )?;
    drop(thaw);
    let arn_again = b.wait_connected()?;
    assert_eq!(arn_again, arn, "the agent keeps its container instance");
    Ok(())
}
