//! FireLens end to end: a log router container (the tests' forward-protocol receiver,
//! since no Fluent Bit image is reachable here), a container routed to it over the
//! Fluentd forward protocol, and one routed to CloudWatch Logs, which lands in Berth's
//! store. The router's own output (what it received) is read back through awslogs.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_e2e::{binary, poll, Berth};
use serde_json::{json, Value};

/// Builds and pushes the receiver image to the test registry; its reference.
fn receiver_image(b: &Berth) -> Result<String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/build-receiver-image.sh"
    );
    let out = Command::new(script)
        .arg(&b.registry)
        .arg(binary("berth-forward-receiver"))
        .output()
        .context("running build-receiver-image.sh")?;
    if !out.status.success() {
        bail!(
            "building the receiver image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(format!("{}/berth/forward-receiver:latest", b.registry))
}

/// Every message of a stream, oldest first.
fn stream_messages(b: &Berth, group: &str, stream: &str) -> Result<Vec<String>> {
    Ok(b.log_events(group, stream)?
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect())
}

#[test]
fn firelens_routes_to_the_router_with_metadata_and_cloudwatch_routes_to_the_store() -> Result<()> {
    let b = Berth::start()?;
    let image = receiver_image(&b)?;
    let router = json!({"name": "log_router", "image": image, "memory": 64, "essential": true,
        "stopTimeout": 2,
        "firelensConfiguration": {"type": "fluentbit",
            "options": {"enable-ecs-log-metadata": "true"}},
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/firelens", "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "firelens", "awslogs-create-group": "true"}}});
    // The app starts once `api` has completed, so both have run before the task stops.
    let app = json!({"name": "app", "image": b.demo_image, "memory": 64, "essential": true,
        "entryPoint": ["/bin/sh", "-c"],
        "command": ["for i in $(seq 1 300); do echo \"line $i\"; done; echo oops >&2"],
        "dependsOn": [{"containerName": "api", "condition": "COMPLETE"}],
        "logConfiguration": {"logDriver": "awsfirelens", "options": {
            "Name": "es", "Host": "search.internal", "Port": "443", "Index": "app"}}});
    let api = json!({"name": "api", "image": b.demo_image, "memory": 64, "essential": false,
        "entryPoint": ["/bin/sh", "-c"], "command": ["echo to-the-store; echo second"],
        "logConfiguration": {"logDriver": "awsfirelens", "options": {
            "Name": "cloudwatch_logs", "region": "us-east-1",
            "log_group_name": "/ecs/routed-$(ecs_cluster)", "log_stream_prefix": "from-fluent-bit-",
            "auto_create_group": "true"}}});
    b.register_task_definition(&json!({"family": "firelens-e2e",
        "containerDefinitions": [router, app, api]}))?;
    let arn = b.run_task("firelens-e2e")?;
    let task = b.wait_stopped(&arn, Duration::from_secs(90))?;
    let id = arn.rsplit('/').next().context("task id")?;
    assert_eq!(task["stopCode"], "EssentialContainerExited", "{task}");

    // The router received every line, in order per stream, tagged and with ECS's
    // metadata, after printing the configuration it was given.
    let router_stream = format!("firelens/log_router/{id}");
    let lines = poll("the router's output", Duration::from_secs(30), || {
        let m = stream_messages(&b, "/ecs/firelens", &router_stream).unwrap_or_default();
        Ok((m.iter().filter(|l| l.contains("\"tag\"")).count() >= 301).then_some(m))
    })?;
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).with_context(|| format!("router output {l:?}")))
        .collect::<Result<_>>()?;
    let config = parsed[0]["config"].as_str().context("the config first")?;
    assert!(
        config.contains(&format!(
            "[OUTPUT]\n    Name es\n    Match app-firelens-{id}*\n    Host search.internal\n    Index app\n    Port 443\n"
        )),
        "{config}"
    );
    assert!(
        config.contains("    Name forward\n    unix_path /var/run/fluent.sock\n"),
        "{config}"
    );
    assert!(
        config.contains("# api: cloudwatch_logs is delivered by the Berth agent"),
        "{config}"
    );
    let records: Vec<&Value> = parsed.iter().filter(|v| v.get("tag").is_some()).collect();
    assert_eq!(records.len(), 301, "{lines:?}");
    let logs = |source: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["record"]["source"] == source)
            .map(|r| r["record"]["log"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let expected: Vec<String> = (1..=300).map(|i| format!("line {i}")).collect();
    assert_eq!(logs("stdout"), expected);
    assert_eq!(logs("stderr"), ["oops"]);
    let r = records[0];
    assert_eq!(r["tag"], format!("app-firelens-{id}"));
    assert_eq!(r["record"]["ecs_cluster"], "default");
    assert_eq!(r["record"]["ecs_task_arn"], arn.as_str());
    assert_eq!(r["record"]["ecs_task_definition"], "firelens-e2e:1");
    assert!(
        r["record"]["container_id"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{r}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let t = u128::try_from(r["time_ms"].as_i64().context("time_ms")?)?;
    assert!(t <= now && now - t < 120_000, "record time {t}, now {now}");

    // The CloudWatch Logs route is in the store, under the names Fluent Bit would use.
    let group = "/ecs/routed-default";
    let stream = format!("from-fluent-bit-api-firelens-{id}");
    let got = poll("the routed stream", Duration::from_secs(30), || {
        let m = stream_messages(&b, group, &stream).unwrap_or_default();
        Ok((m.len() >= 2).then_some(m))
    })?;
    assert_eq!(got, ["to-the-store", "second"]);
    Ok(())
}

#[test]
fn firelens_task_definitions_get_ecs_errors() -> Result<()> {
    let b = Berth::start()?;
    let def =
        |containers: Value| json!({"family": "bad-firelens", "containerDefinitions": containers});
    let no_router = def(json!([{"name": "app", "image": b.demo_image, "memory": 64,
        "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "es"}}}]));
    let err = b
        .register_task_definition(&no_router)
        .expect_err("registered without a router")
        .to_string();
    assert!(
        err.contains("InvalidParameterException") && err.contains("needs a log router"),
        "{err}"
    );
    Ok(())
}
