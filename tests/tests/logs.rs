//! awslogs end to end: real containers write, the agent ships over its session, and the
//! aws CLI (v1 for get/filter, Debian's v2 for `aws logs tail`) reads the control
//! plane's CloudWatch Logs API.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth_e2e::{poll, Berth};
use serde_json::{json, Value};

fn awslogs_container(name: &str, image: &str, script: &str, options: &Value) -> Value {
    json!({"name": name, "image": image, "memory": 64, "essential": true, "stopTimeout": 2,
           "entryPoint": ["/bin/sh", "-c"], "command": [script],
           "logConfiguration": {"logDriver": "awslogs", "options": options}})
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until the stream holds an event with `last` as its message; all its events.
fn wait_for_event(
    b: &Berth,
    group: &str,
    stream: &str,
    last: &str,
    timeout: Duration,
) -> Result<Vec<Value>> {
    poll(&format!("{last:?} in {group} {stream}"), timeout, || {
        let events = b.log_events(group, stream).unwrap_or_default();
        Ok(messages(&events)
            .iter()
            .any(|m| m == last)
            .then_some(events))
    })
}

#[test]
fn awslogs_output_reaches_get_filter_and_tail_in_order_with_its_times() -> Result<()> {
    let b = Berth::start()?;
    let options = json!({"awslogs-group": "/ecs/e2e", "awslogs-region": "us-east-1",
        "awslogs-stream-prefix": "web", "awslogs-create-group": "true",
        "awslogs-datetime-format": "%Y-%m-%d %H:%M:%S"});
    let script = r#"echo "2026-12-04 10:00:00 INFO starting"
echo "2026-12-04 10:00:01 ERROR request failed"
echo "java.lang.IllegalStateException: boom"
echo "    at web.Handler.run(Handler.java:42)"
echo "2026-12-04 10:00:03 ERROR disk full"
echo "2026-12-04 10:00:04 INFO done""#;
    b.register_task_definition(&json!({"family": "logs-e2e",
        "containerDefinitions": [awslogs_container("app", &b.demo_image, script, &options)]}))?;
    let started = chrono_ms();
    let arn = b.run_task("logs-e2e")?;
    b.wait_stopped(&arn, Duration::from_secs(60))?;
    let stream = format!("web/app/{}", task_id(&arn));
    // stdout only: stderr is copied apart, and multi-line grouping (as Docker's driver
    // does) runs over the combined output, so a stderr line could land inside the
    // stack trace. stderr is checked with the second task below.
    let events = wait_for_event(
        &b,
        "/ecs/e2e",
        &stream,
        "2026-12-04 10:00:04 INFO done",
        Duration::from_secs(30),
    )?;
    assert_eq!(
        messages(&events),
        [
            "2026-12-04 10:00:00 INFO starting",
            "2026-12-04 10:00:01 ERROR request failed\njava.lang.IllegalStateException: boom\n    at web.Handler.run(Handler.java:42)",
            "2026-12-04 10:00:03 ERROR disk full",
            "2026-12-04 10:00:04 INFO done",
        ]
    );
    let now = chrono_ms();
    for e in &events {
        let ts = e["timestamp"].as_i64().context("a timestamp")?;
        assert!(
            ts >= started - 1000 && ts <= now,
            "timestamp {ts} outside [{started}, {now}]: {e}"
        );
        assert!(e["ingestionTime"].as_i64() >= Some(ts), "{e}");
    }

    // GetLogEvents from the head, as the console reads a stream.
    let got = b.aws(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/ecs/e2e",
        "--log-stream-name",
        &stream,
        "--start-from-head",
    ])?;
    assert_eq!(got["events"].as_array().map(Vec::len), Some(4), "{got}");
    let errors = b.aws(&[
        "logs",
        "filter-log-events",
        "--log-group-name",
        "/ecs/e2e",
        "--filter-pattern",
        "ERROR",
    ])?;
    let error_messages = messages(errors["events"].as_array().context("events")?);
    assert_eq!(error_messages.len(), 2, "{errors}");
    assert!(error_messages[1].ends_with("disk full"), "{errors}");

    tail_filters_and_follows(&b, &options)
}

/// `aws logs tail` (CLI v2) on a group that holds two ERROR events: filtered, and with
/// `--follow`, seeing an event that arrives after it started.
fn tail_filters_and_follows(b: &Berth, options: &Value) -> Result<()> {
    // `aws logs tail` (CLI v2): the filtered events, each with its stream.
    let out = b
        .aws_v2(&[
            "logs",
            "tail",
            "/ecs/e2e",
            "--since",
            "10m",
            "--filter-pattern",
            "ERROR",
            "--format",
            "short",
        ])?
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aws logs tail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ERROR request failed") && text.contains("ERROR disk full"),
        "{text}"
    );
    assert!(!text.contains("INFO"), "{text}");

    // `--follow` sees events that arrive after it started.
    let mut follow = b
        .aws_v2(&[
            "logs",
            "tail",
            "/ecs/e2e",
            "--follow",
            "--since",
            "1m",
            "--filter-pattern",
            "FOLLOWED",
        ])?
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let lines = follow.stdout.take().context("tail's stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(lines).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Each line its own event: no datetime format groups these.
    let mut one_line_events = options.clone();
    one_line_events
        .as_object_mut()
        .context("the options object")?
        .remove("awslogs-datetime-format");
    b.register_task_definition(&json!({"family": "logs-follow",
        "containerDefinitions": [awslogs_container("app", &b.demo_image, "echo FOLLOWED one; echo other on stderr >&2", &one_line_events)]}))?;
    let second = b.run_task("logs-follow")?;
    let seen = rx.recv_timeout(Duration::from_secs(60));
    let _ = follow.kill();
    let _ = follow.wait();
    let seen = seen.context("aws logs tail --follow printed nothing within 60 s")?;
    assert!(seen.contains("FOLLOWED one"), "{seen}");
    b.wait_stopped(&second, Duration::from_secs(60))?;
    // stderr ships too.
    let second_stream = format!("web/app/{}", task_id(&second));
    wait_for_event(
        b,
        "/ecs/e2e",
        &second_stream,
        "other on stderr",
        Duration::from_secs(30),
    )?;
    Ok(())
}

#[test]
fn blocking_mode_loses_no_line_while_the_control_plane_is_down() -> Result<()> {
    let mut b = Berth::start()?;
    let options = json!({"awslogs-group": "/ecs/outage", "awslogs-stream-prefix": "w",
        "awslogs-create-group": "true"});
    // Waits for the go file (on a task volume) before writing its 100,000 lines.
    let script = "echo ready; while [ ! -e /data/go ]; do sleep 0.1; done; seq 1 100000; echo finished; exec sleep 600";
    let mut app = awslogs_container("app", &b.demo_image, script, &options);
    app["mountPoints"] = json!([{"sourceVolume": "data", "containerPath": "/data"}]);
    b.register_task_definition(
        &json!({"family": "logs-outage", "volumes": [{"name": "data"}],
        "containerDefinitions": [app]}),
    )?;
    let arn = b.run_task("logs-outage")?;
    b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    let stream = format!("w/app/{}", task_id(&arn));
    wait_for_event(&b, "/ecs/outage", &stream, "ready", Duration::from_secs(30))?;

    b.kill9_controlplane();
    let down = Instant::now();
    let volume = b
        .agent_dir()
        .join("tasks")
        .join(task_id(&arn))
        .join("volumes/data");
    std::fs::write(volume.join("go"), b"")?;
    b.wait_log(&arn, "app", "finished")?;
    // The outage the scenario asks for: 20 s with the container's output waiting.
    std::thread::sleep(Duration::from_secs(20).saturating_sub(down.elapsed()));
    b.start_controlplane()?;

    let events = wait_for_event(
        &b,
        "/ecs/outage",
        &stream,
        "finished",
        Duration::from_secs(120),
    )?;
    let got = messages(&events);
    assert_eq!(
        got.len(),
        100_002,
        "every line once: ready, 1..100000, finished"
    );
    assert_eq!(got[0], "ready");
    for (i, m) in got[1..100_001].iter().enumerate() {
        assert_eq!(
            *m,
            (i + 1).to_string(),
            "line {} out of order or missing",
            i + 1
        );
    }
    let stopped = b.aws(&["ecs", "stop-task", "--task", &arn])?;
    assert!(stopped["task"].is_object(), "{stopped}");
    Ok(())
}

#[test]
fn non_blocking_mode_with_a_tiny_buffer_says_how_many_lines_it_dropped() -> Result<()> {
    let b = Berth::start()?;
    let options = json!({"awslogs-group": "/ecs/lossy", "awslogs-stream-prefix": "w",
        "awslogs-create-group": "true", "mode": "non-blocking", "max-buffer-size": "4k"});
    let script = "seq 1 50000; echo finished";
    b.register_task_definition(&json!({"family": "logs-lossy",
        "containerDefinitions": [awslogs_container("app", &b.demo_image, script, &options)]}))?;
    let arn = b.run_task("logs-lossy")?;
    b.wait_stopped(&arn, Duration::from_secs(60))?;
    let stream = format!("w/app/{}", task_id(&arn));
    let events = wait_for_event(
        &b,
        "/ecs/lossy",
        &stream,
        "finished",
        Duration::from_secs(30),
    )?;
    let got = messages(&events);
    let mut dropped = 0u64;
    let mut delivered = 0u64;
    for m in &got {
        if let Some(rest) = m.strip_prefix("[berth] ") {
            dropped += rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .with_context(|| format!("a drop report without a count: {m}"))?;
        } else {
            delivered += 1;
        }
    }
    assert!(
        dropped > 0,
        "a 4k buffer under 50,000 lines dropped nothing: {} events",
        got.len()
    );
    assert_eq!(
        delivered + dropped,
        50_001,
        "every line delivered or counted as dropped"
    );
    Ok(())
}

#[test]
fn bad_logs_input_gets_cloudwatch_logs_errors() -> Result<()> {
    let b = Berth::start()?;
    let refused = |args: &[&str], code: &str| -> Result<()> {
        let out = b.aws_raw(args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(code),
            "{args:?}: {stderr}"
        );
        Ok(())
    };
    refused(
        &["logs", "describe-log-streams", "--log-group-name", "/nope"],
        "ResourceNotFoundException",
    )?;
    b.aws(&["logs", "create-log-group", "--log-group-name", "/ecs/bad"])?;
    refused(
        &["logs", "create-log-group", "--log-group-name", "/ecs/bad"],
        "ResourceAlreadyExistsException",
    )?;
    b.aws(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        "/ecs/bad",
        "--log-stream-name",
        "s",
    ])?;
    refused(
        &[
            "logs",
            "filter-log-events",
            "--log-group-name",
            "/ecs/bad",
            "--filter-pattern",
            "{ $.level = ",
        ],
        "InvalidParameterException",
    )?;
    let now = chrono_ms();
    let unsorted = format!("timestamp={now},message=b timestamp={},message=a", now - 10);
    let mut args = vec![
        "logs",
        "put-log-events",
        "--log-group-name",
        "/ecs/bad",
        "--log-stream-name",
        "s",
        "--log-events",
    ];
    args.extend(unsorted.split(' '));
    refused(&args, "InvalidParameterException")?;
    // A task definition whose awslogs options are wrong is refused at registration.
    let bad = json!({"family": "logs-bad", "containerDefinitions": [awslogs_container("app", &b.demo_image, "true",
        &json!({"awslogs-group": "/ecs/x", "mode": "sometimes"}))]});
    let err = b.register_task_definition(&bad).unwrap_err().to_string();
    assert!(
        err.contains("InvalidParameterException") && err.contains("mode 'sometimes'"),
        "{err}"
    );
    Ok(())
}

fn chrono_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

#[test]
fn insights_queries_answer_through_the_aws_cli() -> Result<()> {
    let b = Berth::start()?;
    b.aws(&["logs", "create-log-group", "--log-group-name", "/ecs/api"])?;
    b.aws(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        "/ecs/api",
        "--log-stream-name",
        "s",
    ])?;
    let now = chrono_ms();
    let events: Vec<Value> = [
        ("web", 120),
        ("web", 300),
        ("db", 40),
        ("web", 180),
        ("db", 60),
    ]
    .iter()
    .enumerate()
    .map(|(i, (service, latency))| {
        json!({"timestamp": now - 5000 + i64::try_from(i).unwrap_or(0),
                   "message": json!({"service": service, "latency": latency}).to_string()})
    })
    .collect();
    let file = b.dir.path().join("events.json");
    std::fs::write(&file, serde_json::to_vec(&events)?)?;
    b.aws(&[
        "logs",
        "put-log-events",
        "--log-group-name",
        "/ecs/api",
        "--log-stream-name",
        "s",
        "--log-events",
        &format!("file://{}", file.display()),
    ])?;
    let secs = now / 1000;
    let started = b.aws(&[
        "logs", "start-query", "--log-group-name", "/ecs/api",
        "--start-time", &(secs - 600).to_string(), "--end-time", &(secs + 1).to_string(),
        "--query-string", "stats avg(latency) as avg, max(latency) as max, count(*) as n by service | sort service asc",
    ])?;
    let id = started["queryId"].as_str().context("a queryId")?.to_owned();
    let results = poll("the query to finish", Duration::from_secs(30), || {
        let r = b.aws(&["logs", "get-query-results", "--query-id", &id])?;
        Ok((r["status"] != "Running").then_some(r))
    })?;
    assert_eq!(results["status"], "Complete", "{results}");
    let rows: Vec<Vec<(String, String)>> = results["results"]
        .as_array()
        .context("results")?
        .iter()
        .map(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap_or_default().to_owned(),
                        f["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .collect();
    let row = |service: &str, avg: &str, max: &str, n: &str| {
        [("service", service), ("avg", avg), ("max", max), ("n", n)]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec()
    };
    assert_eq!(
        rows,
        [row("db", "50", "60", "2"), row("web", "200", "300", "3")]
    );
    let out = b.aws_raw(&[
        "logs",
        "start-query",
        "--log-group-name",
        "/ecs/api",
        "--start-time",
        "0",
        "--end-time",
        "1",
        "--query-string",
        "fields @message | dedup @message",
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MalformedQueryException") && stderr.contains("dedup"),
        "{stderr}"
    );
    Ok(())
}
