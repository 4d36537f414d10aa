//! The `berth` CLI against real daemons: a task run with the aws CLI shows up in
//! `berth tasks`, `berth wait` sees it run and stop, `berth logs` prints (and
//! follows) its output, services show up in `berth services` and `berth wait
//! service-stable` (which fails when the circuit breaker trips), and API errors
//! surface with their ECS error type.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_e2e::{binary, poll, Berth};
use serde_json::{json, Value};

/// `berth` pointed at the harness: its data dir (the agent's logs are under
/// `<dir>/agent`, the CLI's default) and the control plane's `aws.env`.
fn berth(b: &Berth, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary("berth"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_DATA_DIR", b.dir.path())
        .env("BERTH_AWS_ENV", b.data_dir().join("aws.env"))
        .stdin(Stdio::null());
    cmd
}

fn run(b: &Berth, args: &[&str]) -> Result<Output> {
    let out = berth(b, args).output().context("running berth")?;
    eprintln!(
        "berth {}: {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

fn ok(b: &Berth, args: &[&str]) -> Result<String> {
    let out = run(b, args)?;
    if !out.status.success() {
        bail!("berth {} failed", args.join(" "));
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn talker(b: &Berth) -> Result<()> {
    let script =
        "echo hello from berth; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";
    b.register_task_definition(&json!({
        "family": "cli-talker",
        "containerDefinitions": [{
            "name": "talker", "image": b.demo_image, "memory": 32, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": [script]
        }]
    }))
}

#[test]
fn tasks_wait_and_logs_follow_a_task_run_with_the_aws_cli() -> Result<()> {
    let b = Berth::start()?;
    talker(&b)?;
    let arn = b.run_task("cli-talker")?;
    let id = arn.rsplit('/').next().unwrap_or_default().to_owned();

    let out = run(&b, &["wait", "task-running", &arn, "--timeout", "120"])?;
    assert!(out.status.success(), "wait task-running failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("waiting for task {id} to be RUNNING")),
        "no progress line: {stderr}"
    );

    let listed: Value = serde_json::from_str(&ok(&b, &["tasks", "--output", "json"])?)?;
    let task = listed["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["taskArn"] == arn.as_str()))
        .with_context(|| format!("{arn} not in {listed}"))?;
    assert_eq!(task["lastStatus"], "RUNNING");

    let table = ok(&b, &["tasks"])?;
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "TASK",
        "DEFINITION",
        "LAST",
        "DESIRED",
        "HEALTH",
        "IP",
        "STARTED",
    ] {
        assert!(header.contains(column), "{table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .with_context(|| format!("no row for {id}: {table}"))?;
    assert!(
        row.contains("cli-talker:1") && row.contains("RUNNING") && row.contains("ago"),
        "{row}"
    );

    // The shim writes the log as the container runs: poll briefly for the first line.
    poll("the first log lines", Duration::from_secs(10), || {
        let logs = ok(&b, &["logs", &id])?;
        Ok(logs.starts_with("hello from berth\ntick 0\n").then_some(()))
    })?;
    let one = ok(&b, &["logs", &arn, "--container", "talker"])?;
    assert!(one.starts_with("hello from berth\n"), "{one}");

    // --follow keeps printing while the task runs and returns once it has stopped.
    let mut follower = berth(&b, &["logs", "--follow", &arn])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read what it prints as it prints it; stop the task once it has followed a while.
    let stdout = follower.stdout.take().context("follower stdout")?;
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            let _ = line_tx.send(line);
        }
        text
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = line_rx
            .recv_timeout(left)
            .context("logs --follow stopped printing")?;
        if line == "tick 8" {
            break;
        }
    }
    b.aws(&["ecs", "stop-task", "--task", &arn, "--reason", "cli test"])?;
    let stopped = ok(&b, &["wait", "task-stopped", &id, "--timeout", "60"])?;
    assert!(
        stopped.contains("UserInitiated") || stopped.contains("cli test"),
        "{stopped}"
    );

    let follow_out = wait_output(follower, Duration::from_secs(15))?;
    let text = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
    assert!(follow_out.status.success(), "logs --follow: {follow_out:?}");
    assert!(text.starts_with("hello from berth\ntick 0\n"), "{text}");
    let ticks = text.lines().filter(|l| l.starts_with("tick ")).count();
    assert!(ticks >= 8, "follow printed only {ticks} ticks: {text}");
    let on_disk = std::fs::read_to_string(b.container_log(&arn, "talker"))?;
    assert_eq!(text, on_disk, "follow must print the whole file once");

    // Waiting for a stopped task to run fails, saying why.
    let out = run(&b, &["wait", "task-running", &arn, "--timeout", "5"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopped instead of running"),
        "{out:?}"
    );
    Ok(())
}

/// A service task that stops at once on SIGTERM (`exit 1` makes a crashing revision).
fn service_app(b: &Berth, script: &str) -> Result<()> {
    b.register_task_definition(&json!({
        "family": "cli-svc",
        "containerDefinitions": [{
            "name": "app", "image": b.demo_image, "memory": 16, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": [script]
        }]
    }))
}

const SERVE: &str = "trap 'exit 0' TERM; while true; do sleep 0.2; done";

/// `berth services` as a table and as JSON: the eleven services of
/// [`services_lists_every_service_and_wait_service_stable_follows_one`].
fn services_show_all_eleven(b: &Berth) -> Result<()> {
    // Stable first, COMPLETED on a later scheduler pass.
    let table = poll("the rollout to complete", Duration::from_secs(30), || {
        let table = ok(b, &["services"])?;
        let done = table
            .lines()
            .any(|l| l.starts_with("cli-web ") && l.contains("COMPLETED"));
        Ok(done.then_some(table))
    })?;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 12, "a header and eleven services: {table}");
    for column in [
        "SERVICE",
        "STATUS",
        "DEFINITION",
        "DESIRED",
        "RUNNING",
        "PENDING",
        "ROLLOUT",
        "LAST EVENT",
    ] {
        assert!(lines[0].contains(column), "{table}");
    }
    let row: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("cli-web "))
        .context("cli-web row")?
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..7],
        ["cli-web", "ACTIVE", "cli-svc:1", "1", "1", "0", "COMPLETED"],
        "{table}"
    );
    assert!(row[7..].join(" ").contains(" ago: "), "{table}");
    let idle = lines
        .iter()
        .find(|l| l.starts_with("idle-9 "))
        .with_context(|| format!("idle-9 is on the second page: {table}"))?;
    assert_eq!(
        idle.split_whitespace().take(6).collect::<Vec<_>>(),
        ["idle-9", "ACTIVE", "cli-svc:1", "0", "0", "0"],
        "{table}"
    );

    let listed: Value = serde_json::from_str(&ok(b, &["services", "-o", "json"])?)?;
    let mut names: Vec<&str> = listed["services"]
        .as_array()
        .context("services")?
        .iter()
        .filter_map(|s| s["serviceName"].as_str())
        .collect();
    names.sort_unstable();
    let mut want: Vec<String> = (0..10).map(|i| format!("idle-{i}")).collect();
    want.push("cli-web".into());
    want.sort_unstable();
    assert_eq!(names, want);
    Ok(())
}

#[test]
fn services_lists_every_service_and_wait_service_stable_follows_one() -> Result<()> {
    let b = Berth::start()?;
    service_app(&b, SERVE)?;
    // Eleven services: two ListServices pages (10 a page) and two DescribeServices batches.
    // The idle ones want no tasks, so they cost nothing to run.
    for i in 0..10 {
        b.aws(&[
            "ecs",
            "create-service",
            "--service-name",
            &format!("idle-{i}"),
            "--task-definition",
            "cli-svc",
            "--desired-count",
            "0",
        ])?;
    }
    b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "cli-web",
        "--task-definition",
        "cli-svc",
        "--desired-count",
        "1",
    ])?;

    let out = run(
        &b,
        &["wait", "service-stable", "cli-web", "--timeout", "120"],
    )?;
    assert!(out.status.success(), "wait service-stable failed");
    assert_eq!(
        String::from_utf8(out.stdout)?,
        "service cli-web is stable: 1 running, task definition cli-svc:1\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waiting for service cli-web to be stable: "),
        "no progress line: {stderr}"
    );
    assert!(
        stderr.contains("event: (service cli-web) has started 1 tasks: (task "),
        "the service's events are shown as they come: {stderr}"
    );

    services_show_all_eleven(&b)?;

    // Already stable: the JSON of the service as DescribeServices shows it.
    let described: Value = serde_json::from_str(&ok(
        &b,
        &[
            "wait",
            "service-stable",
            "cli-web",
            "--output",
            "json",
            "--timeout",
            "10",
        ],
    )?)?;
    assert_eq!(described["services"][0]["serviceName"], "cli-web");
    assert_eq!(described["services"][0]["runningCount"], 1);

    let out = run(
        &b,
        &[
            "wait",
            "service-stable",
            "no-such-service",
            "--timeout",
            "5",
        ],
    )?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MISSING"),
        "{out:?}"
    );
    Ok(())
}

#[test]
fn wait_service_stable_fails_when_the_circuit_breaker_trips() -> Result<()> {
    let b = Berth::start()?;
    service_app(&b, SERVE)?;
    b.aws(&[
        "ecs", "create-service", "--service-name", "cli-api",
        "--task-definition", "cli-svc:1", "--desired-count", "1",
        "--deployment-configuration",
        r#"{"deploymentCircuitBreaker":{"enable":true,"rollback":true},"maximumPercent":200,"minimumHealthyPercent":100}"#,
    ])?;
    ok(
        &b,
        &["wait", "service-stable", "cli-api", "--timeout", "120"],
    )?;

    service_app(&b, "exit 1")?;
    b.aws(&[
        "ecs",
        "update-service",
        "--service",
        "cli-api",
        "--task-definition",
        "cli-svc:2",
    ])?;
    let out = run(
        &b,
        &["wait", "service-stable", "cli-api", "--timeout", "120"],
    )?;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed rollout fails the wait"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 deployments (PRIMARY cli-svc:2 IN_PROGRESS)"),
        "progress shows the rollout: {stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("berth: service cli-api: rollout")
            && last.contains("tasks failed to start"),
        "the error says why: {stderr}"
    );
    Ok(())
}

#[test]
fn api_errors_print_the_ecs_error_type_and_exit_non_zero() -> Result<()> {
    let b = Berth::start()?;
    let out = run(&b, &["tasks", "--cluster", "no-such-cluster"])?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ClusterNotFoundException"), "{stderr}");

    // A wrong secret: the control plane's verdict, as AWS names it.
    let text = std::fs::read_to_string(b.data_dir().join("aws.env"))?;
    let forged: String = text
        .lines()
        .map(|l| {
            if l.starts_with("AWS_SECRET_ACCESS_KEY=") {
                "AWS_SECRET_ACCESS_KEY=not-the-secret".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let forged_path = b.dir.path().join("forged-aws.env");
    std::fs::write(&forged_path, forged)?;
    let out = berth(&b, &["tasks"])
        .env("BERTH_AWS_ENV", &forged_path)
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("InvalidSignatureException"), "{stderr}");

    // Logs of a task this host never ran: say that logs are local only.
    let out = run(&b, &["logs", "0123456789abcdef0123456789abcdef"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only the local agent's files"),
        "{out:?}"
    );
    Ok(())
}

#[test]
fn host_log_files_rotate_by_size_and_berth_logs_reads_them_in_order() -> Result<()> {
    let b = Berth::start_with_agent(
        &[
            "--container-log-max-size",
            "4k",
            "--container-log-max-files",
            "3",
        ],
        &[],
    )?;
    // 1,000 numbered lines of 32 bytes: about 8 rotations of a 4 KiB file.
    let script = "i=1000; while [ $i -lt 2000 ]; do echo \"line $i ........................\"; i=$((i+1)); done";
    b.register_task_definition(&json!({
        "family": "cli-rotate",
        "containerDefinitions": [{
            "name": "writer", "image": b.demo_image, "memory": 32,
            "entryPoint": ["/bin/sh", "-c"], "command": [script]
        }]
    }))?;
    let arn = b.run_task("cli-rotate")?;
    b.wait_stopped(&arn, Duration::from_secs(60))?;
    let log = b.container_log(&arn, "writer");
    let file = |suffix: &str| {
        let mut p = log.clone().into_os_string();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    let kept: String = [".2", ".1", ""]
        .iter()
        .map(|s| std::fs::read_to_string(file(s)).with_context(|| format!("{:?}", file(s))))
        .collect::<Result<_>>()?;
    assert!(!file(".3").exists(), "three files in all are kept");
    for suffix in [".2", ".1", ""] {
        let len = std::fs::metadata(file(suffix))?.len();
        assert!(len <= 4096, "{suffix}: {len} bytes, past the 4 KiB limit");
    }
    let all: String = (1000..2000)
        .flat_map(|i| ["line ", &i.to_string(), " ........................\n"].map(str::to_owned))
        .collect();
    assert!(
        all.ends_with(&kept) && kept.len() > 7 * 1024 && kept.len() <= 12 * 1024,
        "the kept files are the output's last {} bytes, in order",
        kept.len()
    );
    assert_eq!(ok(&b, &["logs", &arn])?, kept);
    Ok(())
}

/// Waits for a child to exit by itself (killing it after `timeout` and failing).
fn wait_output(mut child: std::process::Child, timeout: Duration) -> Result<Output> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output()?;
    bail!(
        "still running {timeout:?} later; stdout so far: {}",
        String::from_utf8_lossy(&out.stdout)
    )
}
