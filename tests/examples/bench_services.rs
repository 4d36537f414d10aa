//! Service benchmarks on the real daemons (two agents on this machine):
//! (a) a rolling deploy of 10 health-checked tasks, `UpdateService` to steady
//! state; (b) an agent lost (SIGKILL: its connection drops; SIGSTOP: it goes
//! silent, as a hung or partitioned host) to all 10 tasks RUNNING elsewhere,
//! with the default heartbeat settings. Timing runs in
//! `tests/bench/service_heal.py` (boto3, 20 ms polls); this program runs the
//! daemons, restarts the lost agent between rounds and prints the figures.
//!
//! usage: `bench_services [ROUNDS]` (after `scripts/test-env.sh start DIR`
//! and sourcing DIR/env, as root; see scripts/bench-services.sh)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_e2e::{poll, Berth};

const TASKS: &str = "10";

fn py(b: &Berth, args: &[&str]) -> Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/service_heal.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .envs(b.aws_env()?)
        .output()?;
    if !out.status.success() {
        bail!(
            "service_heal.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn ms(b: &Berth, args: &[&str]) -> Result<f64> {
    let out = py(b, args)?;
    out.parse()
        .with_context(|| format!("not a figure: {out:?}"))
}

fn running_in(b: &Berth, namespace: &str) -> Result<usize> {
    let out = Command::new("ctr")
        .args([
            "--address",
            &b.containerd_sock,
            "-n",
            namespace,
            "tasks",
            "ls",
        ])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("RUNNING"))
        .count())
}

/// After a loss: the agent is back, its replaced copies are gone.
fn recovered(b: &Berth) -> Result<()> {
    let ns = b.extra_agents[0].namespace.clone();
    let arn = b.extra_agents[0].instance_arn.clone();
    poll(
        "the agent back and its orphans stopped",
        Duration::from_secs(60),
        || Ok((b.connected_instances()?.contains(&arn) && running_in(b, &ns)? == 0).then_some(())),
    )
}

fn summary(name: &str, xs: &mut [f64]) {
    xs.sort_by(f64::total_cmp);
    let median = xs[xs.len() / 2];
    println!(
        "{name}: median_ms={median:.0} min_ms={:.0} max_ms={:.0} n={} all={xs:?}",
        xs[0],
        xs[xs.len() - 1],
        xs.len()
    );
}

fn main() -> Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(Ok(3), |a| a.parse())
        .context("ROUNDS")?;
    let mut b = Berth::start()?;
    b.start_extra_agent()?;
    let image = b.demo_image.clone();
    py(&b, &["setup", &image, TASKS])?;

    let mut rolls = vec![];
    for _ in 0..rounds {
        rolls.push(ms(&b, &["roll", &image, TASKS])?);
    }
    summary(
        "rolling deploy, 10 tasks, health check every 5 s",
        &mut rolls,
    );

    for (sig, name) in [
        ("SIGKILL", "agent killed"),
        ("SIGSTOP", "agent frozen (silent)"),
    ] {
        let mut lost = vec![];
        for _ in 0..rounds {
            // A deploy first spreads the tasks onto the agent about to go.
            ms(&b, &["roll", &image, TASKS])?;
            let pid = b.extra_agents[0].pid().context("agent running")?;
            let arn = b.extra_agents[0].instance_arn.clone();
            lost.push(ms(&b, &["lose", &pid.to_string(), sig, TASKS, &arn])?);
            if sig == "SIGKILL" {
                b.extra_agents[0].kill9();
                b.restart_extra_agent(0)?;
            } else {
                Command::new("kill")
                    .args(["-CONT", &pid.to_string()])
                    .status()?;
            }
            recovered(&b)?;
        }
        summary(&format!("{name} -> 10 tasks running elsewhere"), &mut lost);
    }
    Ok(())
}
