//! Resource limits on real cgroups: a task's CPU quota holds a busy loop to
//! its share, measured from the cgroup's own CPU usage counter.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth_e2e::Berth;
use serde_json::json;

/// The task cgroup's CPU time used so far, in nanoseconds (v1 cpuacct or v2 cpu.stat).
fn cpu_usage_ns(b: &Berth, task_id: &str) -> Result<u64> {
    if let Ok(v) = b.task_cgroup_file(task_id, "cpuacct", "cpuacct.usage") {
        return Ok(v.parse()?);
    }
    let stat = b.task_cgroup_file(task_id, "cpu", "cpu.stat")?;
    let usec: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .context("usage_usec in cpu.stat")?
        .parse()?;
    Ok(usec * 1000)
}

#[test]
fn a_cpu_quota_holds_a_busy_loop_to_its_share() -> Result<()> {
    let b = Berth::start()?;
    // 256 CPU units = a quarter of one core, as a hard CFS quota on the task.
    b.register_task_definition(&json!({
        "family": "busy", "cpu": "256", "memory": "64",
        "containerDefinitions": [{"name": "spin", "image": b.demo_image, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": ["while :; do :; done"]}]
    }))?;
    let arn = b.run_task("busy")?;
    let id = arn.rsplit('/').next().unwrap_or_default().to_string();
    b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    let (u0, t0) = (cpu_usage_ns(&b, &id)?, Instant::now());
    // Sample over a fixed window: this measures a rate, nothing waits on it.
    std::thread::sleep(Duration::from_secs(3));
    let (u1, wall) = (cpu_usage_ns(&b, &id)?, t0.elapsed());
    #[allow(clippy::cast_precision_loss)]
    let share = (u1 - u0) as f64 / wall.as_nanos() as f64;
    eprintln!("busy loop with cpu 256 used {share:.3} of a core");
    assert!(
        share <= 0.25 * 1.2,
        "quota not enforced: {share:.3} of a core"
    );
    assert!(
        share >= 0.25 * 0.5,
        "the loop should get its quarter core: {share:.3}"
    );
    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    b.wait_stopped(&arn, Duration::from_secs(30))?;
    Ok(())
}
