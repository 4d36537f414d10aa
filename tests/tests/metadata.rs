//! Task metadata endpoint v4 from inside real tasks: the task's own metadata
//! and stats through `ECS_CONTAINER_METADATA_URI_V4`, and isolation from
//! another task that holds the first task's URI.

use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::{poll, Berth};
use serde_json::{json, Value};

/// The line of `container`'s log that starts with `prefix`, without it;
/// waits for it to appear.
fn log_line(b: &Berth, arn: &str, container: &str, prefix: &str) -> Result<String> {
    let id = arn.rsplit('/').next().unwrap_or(arn);
    let path = b
        .agent_dir()
        .join("tasks")
        .join(id)
        .join(format!("{container}.log"));
    poll(
        &format!("{prefix:?} in {}", path.display()),
        Duration::from_secs(60),
        || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            Ok(text
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .map(str::to_owned))
        },
    )
}

fn sh(name: &str, image: &str, script: &str) -> Value {
    json!({"name": name, "image": image, "memory": 32, "essential": true, "stopTimeout": 2,
           "entryPoint": ["/bin/sh", "-c"], "command": [script]})
}

#[test]
fn a_task_reads_its_own_metadata_and_stats_and_no_other_task_can() -> Result<()> {
    let b = Berth::start()?;
    let image = b.demo_image.clone();
    let reader = sh(
        "reader",
        &image,
        r#"U="$ECS_CONTAINER_METADATA_URI_V4"
echo "URI $U"
echo "TASK $(wget -qO- "$U/task")"
echo "STATS $(wget -qO- "$U/stats")"
exec sleep 120"#,
    );
    b.register_task_definition(&json!({"family": "meta-reader", "networkMode": "awsvpc", "containerDefinitions": [reader]}),
    )?;
    let arn = b.run_task("meta-reader")?;
    let t = b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    let ip = t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
        .as_str()
        .with_context(|| format!("no task address: {t}"))?
        .to_string();

    let uri = log_line(&b, &arn, "reader", "URI ")?;
    let gateway = b.cidr.trim_end_matches("0/24").to_string() + "1";
    assert!(
        uri.starts_with(&format!("http://{gateway}:51679/v4/")),
        "{uri}"
    );
    let task: Value = serde_json::from_str(&log_line(&b, &arn, "reader", "TASK ")?)
        .context("the /task response")?;
    assert_eq!(task["TaskARN"], arn.as_str(), "{task}");
    assert_eq!(task["Family"], "meta-reader", "{task}");
    let c = &task["Containers"][0];
    assert_eq!(c["Name"], "reader", "{task}");
    assert_eq!(c["Networks"][0]["IPv4Addresses"][0], ip.as_str(), "{task}");
    assert_eq!(c["Limits"]["Memory"], 32, "{task}");
    let stats: Value = serde_json::from_str(&log_line(&b, &arn, "reader", "STATS ")?)
        .context("the /stats response")?;
    assert_eq!(stats["memory_stats"]["limit"], 32 * 1024 * 1024, "{stats}");
    assert!(stats["memory_stats"]["usage"].as_u64() > Some(0), "{stats}");

    // Another task, given the first task's URI, is refused, while its own
    // URI (same server) answers: the refusal is the peer check, not reachability.
    let mut thief = sh(
        "thief",
        &image,
        r#"OUT=$(wget -qO- "$STOLEN/task" 2>&1); echo "STOLEN rc=$? $OUT"
wget -qO- "$ECS_CONTAINER_METADATA_URI_V4" >/dev/null; echo "OWN rc=$?"
exec sleep 120"#,
    );
    thief["environment"] = json!([{"name": "STOLEN", "value": uri}]);
    b.register_task_definition(
        &json!({"family": "meta-thief", "networkMode": "awsvpc", "containerDefinitions": [thief]}),
    )?;
    let thief_arn = b.run_task("meta-thief")?;
    let stolen = log_line(&b, &thief_arn, "thief", "STOLEN ")?;
    assert!(
        !stolen.starts_with("rc=0") && stolen.contains("404"),
        "the other task read the first task's metadata: {stolen}"
    );
    assert_eq!(log_line(&b, &thief_arn, "thief", "OWN ")?, "rc=0");

    for a in [&arn, &thief_arn] {
        b.aws(&["ecs", "stop-task", "--task", a])?;
    }
    for a in [&arn, &thief_arn] {
        poll("the task to stop", Duration::from_secs(30), || {
            let t = b.describe_task("default", a)?;
            Ok((t["lastStatus"] == "STOPPED").then_some(()))
        })?;
    }
    Ok(())
}
