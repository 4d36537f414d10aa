//! ECS Exec end to end: the unchanged aws CLI (v1 from pip, v2 from Debian) runs Berth's
//! `session-manager-plugin` against the control plane's data channel, which relays to
//! the agent and a real containerd exec on a terminal; `berth exec` takes the same path.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::{binary, poll, Berth};
use berth_ecs::{ContainerStatus, TaskStatus};
use serde_json::{json, Value};

/// Where `session-manager-plugin` is, for PATH.
fn plugin_dir() -> PathBuf {
    binary("session-manager-plugin")
        .parent()
        .expect("a directory")
        .to_path_buf()
}

fn with_plugin(path: &str) -> String {
    format!("{}:{path}", plugin_dir().display())
}

/// `aws ecs execute-command` through the pip aws CLI (v1).
fn execute_v1(b: &Berth, task: &str, command: &str) -> Result<Output> {
    aws_v1(
        b,
        &[
            "--task",
            task,
            "--container",
            "app",
            "--interactive",
            "--command",
            command,
        ],
    )
}

/// `aws ecs execute-command <args>` through the pip aws CLI (v1), Berth's plugin on PATH.
fn aws_v1(b: &Berth, args: &[&str]) -> Result<Output> {
    Command::new("aws")
        .args(["ecs", "execute-command"])
        .args(args)
        .env_clear()
        .env(
            "PATH",
            with_plugin(&std::env::var("PATH").unwrap_or_default()),
        )
        .env("HOME", b.dir.path())
        .envs(b.aws_env()?)
        .stdin(Stdio::null())
        .output()
        .context("running aws ecs execute-command")
}

/// The same through Debian's aws CLI v2.
fn execute_v2(b: &Berth, task: &str, command: &str) -> Result<Output> {
    let mut c = b.aws_v2(&[
        "ecs",
        "execute-command",
        "--task",
        task,
        "--container",
        "app",
        "--interactive",
        "--command",
        command,
    ])?;
    c.env("PATH", with_plugin("/usr/bin:/bin"));
    c.output().context("running aws (v2) ecs execute-command")
}

fn berth_exec(b: &Berth, task: &str, words: &[&str]) -> Result<Output> {
    Command::new(binary("berth"))
        .args(["exec", task, "--container", "app", "--"])
        .args(words)
        .env_clear()
        .env("BERTH_AWS_ENV", b.data_dir().join("aws.env"))
        .stdin(Stdio::null())
        .output()
        .context("running berth exec")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running task of one long-lived container `app`; its ARN.
fn running_task(b: &Berth, family: &str, enable: bool) -> Result<String> {
    b.register_task_definition(&json!({
        "family": family,
        "networkMode": "awsvpc",
        "containerDefinitions": [{
            "name": "app", "image": b.demo_image, "memory": 32, "essential": true,
            "stopTimeout": 2, "entryPoint": ["/bin/sh", "-c"],
            "command": ["echo exec-target > /etc/motd; exec sleep 600"],
        }],
    }))?;
    let mut args = vec!["ecs", "run-task", "--task-definition", family];
    if enable {
        args.push("--enable-execute-command");
    }
    let out = b.aws(&args)?;
    let arn = out["tasks"][0]["taskArn"]
        .as_str()
        .with_context(|| format!("no task in {out}"))?
        .to_owned();
    b.wait_task_status(
        "default",
        &arn,
        TaskStatus::Running.as_str(),
        Duration::from_secs(60),
    )?;
    Ok(arn)
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[test]
fn the_aws_clis_and_berth_exec_run_commands_in_a_container() -> Result<()> {
    let b = Berth::start()?;
    let arn = running_task(&b, "exec-app", true)?;
    let id = task_id(&arn);
    let t = b.describe_task("default", &arn)?;
    assert_eq!(t["enableExecuteCommand"], true, "{t}");
    let agent = &t["containers"][0]["managedAgents"][0];
    assert_eq!(agent["name"], "ExecuteCommandAgent", "{t}");
    assert_eq!(
        agent["lastStatus"],
        ContainerStatus::Running.as_str(),
        "{t}"
    );

    // The output of the command, and the plugin's banners as Session Manager's prints them.
    for (cli, out) in [
        ("v1", execute_v1(&b, &arn, "cat /etc/motd")?),
        ("v2", execute_v2(&b, &arn, "cat /etc/motd")?),
    ] {
        let all = text(&out);
        assert!(out.status.success(), "aws {cli}: {all}");
        assert!(all.contains("exec-target"), "aws {cli}: {all}");
        assert!(
            all.contains("Starting session with SessionId: ecs-execute-command-"),
            "aws {cli}: {all}"
        );
        assert!(
            all.contains("Exiting session with sessionId: ecs-execute-command-"),
            "aws {cli}: {all}"
        );
    }

    // A failing command fails the CLI (Berth's plugin exits with the command's status).
    let out = execute_v1(&b, id, "sh -c 'echo failing; exit 3'")?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("failing"), "{}", text(&out));

    // `berth exec` runs the words as they are and exits with the command's status.
    let out = berth_exec(
        &b,
        id,
        &["sh", "-c", "echo \"$0 and more\"; exit 7", "quoted words"],
    )?;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("quoted words and more"),
        "{}",
        text(&out)
    );

    // No process of any session is left in the container.
    let ps = b.container_processes(id, "app")?;
    assert_eq!(
        ps.len(),
        1,
        "only the container's own process is left: {ps:?}"
    );
    Ok(())
}

#[test]
fn exec_is_refused_with_ecs_errors() -> Result<()> {
    let b = Berth::start()?;
    let arn = running_task(&b, "exec-off", false)?;
    let out = execute_v1(&b, &arn, "true")?;
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("InvalidParameterException"), "{all}");
    assert!(
        all.contains("execute command was not enabled when the task was run"),
        "{all}"
    );

    let out = aws_v1(
        &b,
        &["--task", &arn, "--command", "true", "--non-interactive"],
    )?;
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("Interactive is the only mode supported currently"),
        "{all}"
    );
    Ok(())
}

/// A session into a service's task is recorded as service events (who, what, how it
/// ended) and, with the cluster's `executeCommandConfiguration` set to OVERRIDE, its
/// output goes to that log group, in a stream named after the session.
#[test]
fn sessions_are_recorded_in_service_events_and_the_clusters_log_group() -> Result<()> {
    let b = Berth::start()?;
    b.aws(&[
        "logs",
        "create-log-group",
        "--log-group-name",
        "/audit/exec",
    ])?;
    b.aws(&["ecs", "update-cluster", "--cluster", "default", "--configuration",
            r#"{"executeCommandConfiguration":{"logging":"OVERRIDE","logConfiguration":{"cloudWatchLogGroupName":"/audit/exec"}}}"#])?;
    running_task(&b, "exec-svc", true)?;
    b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "audited",
        "--task-definition",
        "exec-svc",
        "--desired-count",
        "1",
        "--enable-execute-command",
    ])?;
    let task = poll("the service's task to run", Duration::from_secs(60), || {
        Ok(b.service_tasks("audited")?
            .into_iter()
            .find(|t| t["lastStatus"] == TaskStatus::Running.as_str()))
    })?;
    let arn = task["taskArn"].as_str().context("taskArn")?;
    let out = berth_exec(&b, task_id(arn), &["echo", "audited-output"])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let events = b.aws(&["ecs", "describe-services", "--services", "audited"])?["services"][0]
        ["events"]
        .clone();
    let messages: Vec<&str> = events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    let started = messages
        .iter()
        .find(|m| m.contains("execute-command session") && m.contains("started"));
    let started = started.with_context(|| format!("no start event in {messages:?}"))?;
    assert!(
        started.contains("\"echo audited-output\" in container app"),
        "{started}"
    );
    assert!(started.starts_with("(service audited) "), "{started}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("ended: the command exited with code 0")),
        "{messages:?}"
    );

    let streams = b.aws(&[
        "logs",
        "describe-log-streams",
        "--log-group-name",
        "/audit/exec",
    ])?;
    let stream = streams["logStreams"][0]["logStreamName"]
        .as_str()
        .context("a session stream")?
        .to_owned();
    assert!(stream.starts_with("ecs-execute-command-"), "{streams}");
    let logged = b.log_events("/audit/exec", &stream)?;
    assert!(
        logged.iter().any(|e| e["message"] == "audited-output"),
        "{logged:?}"
    );
    Ok(())
}

/// An interactive shell through each aws CLI on a pseudo-terminal (Python's `pty`): two
/// commands, a window resize that reaches the remote terminal, and `exit`.
#[test]
fn an_interactive_shell_takes_commands_and_window_changes() -> Result<()> {
    let b = Berth::start()?;
    let arn = running_task(&b, "exec-shell", true)?;
    let env = b.aws_env()?;
    let endpoint = b.endpoint()?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/exec_pty.py");
    for (cli, path) in [
        (
            "aws",
            with_plugin(&std::env::var("PATH").unwrap_or_default()),
        ),
        ("/usr/bin/aws", with_plugin("/usr/bin:/bin")),
    ] {
        let argv = json!([
            cli,
            "ecs",
            "execute-command",
            "--endpoint-url",
            endpoint,
            "--task",
            arn,
            "--container",
            "app",
            "--interactive",
            "--command",
            "/bin/sh"
        ]);
        let out = Command::new("python3")
            .arg(&script)
            .arg(argv.to_string())
            .env_clear()
            .env("PATH", path)
            .env("HOME", b.dir.path())
            .env("AWS_PAGER", "")
            .envs(env.clone())
            .output()?;
        assert!(out.status.success(), "{cli}: {}", text(&out));
        let summary: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(summary["exit_status"], 0, "{cli}: {summary}");
    }
    Ok(())
}

/// `ExecuteCommand` through boto3: the `session` it returns.
fn open_session(b: &Berth, arn: &str) -> Result<Value> {
    let script = format!(
        "import boto3, json\nout = boto3.client('ecs').execute_command(cluster='default', task='{arn}', container='app', command='cat /etc/motd', interactive=True)\nprint(json.dumps(out['session']))"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .env("HOME", b.dir.path())
        .envs(b.aws_env()?)
        .output()?;
    anyhow::ensure!(out.status.success(), "{}", text(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Berth's plugin run as the aws CLI runs it (with the user's environment, which has
/// `AWS_CA_BUNDLE`), on `session`.
fn plugin(b: &Berth, session: &Value) -> Result<Output> {
    Command::new(binary("session-manager-plugin"))
        .envs(b.aws_env()?)
        .arg(session.to_string())
        .args([
            "us-east-1",
            "StartSession",
            "",
            r#"{"Target":"ecs:x"}"#,
            "http://unused",
        ])
        .stdin(Stdio::null())
        .output()
        .context("running session-manager-plugin")
}

/// A session's token works once: the same session given to the plugin again is refused,
/// and the second run says why.
#[test]
fn a_replayed_token_is_refused() -> Result<()> {
    let b = Berth::start()?;
    let arn = running_task(&b, "exec-replay", true)?;
    let session = open_session(&b, &arn)?;
    let first = plugin(&b, &session)?;
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("exec-target"), "{}", text(&first));
    let again = plugin(&b, &session)?;
    assert!(!again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("token was already used"),
        "{}",
        text(&again)
    );
    Ok(())
}

/// A token not redeemed in time is refused (here its lifetime is 0 s: it has expired by
/// the time anyone presents it, so nothing has to wait).
#[test]
fn an_expired_token_is_refused() -> Result<()> {
    let b = Berth::start_with(&["--exec-token-ttl-secs", "0"])?;
    let arn = running_task(&b, "exec-expired", true)?;
    let session = open_session(&b, &arn)?;
    let late = plugin(&b, &session)?;
    assert!(!late.status.success(), "{}", text(&late));
    assert!(text(&late).contains("expired"), "{}", text(&late));
    Ok(())
}

/// `berth exec ... -- sleep 500` in the background, once its process runs in the container.
fn sleeping_session(b: &Berth, id: &str) -> Result<std::process::Child> {
    let session = Command::new(binary("berth"))
        .args(["exec", id, "--container", "app", "--", "sleep", "500"])
        .env_clear()
        .env("BERTH_AWS_ENV", b.data_dir().join("aws.env"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    poll(
        "the session's process in the container",
        Duration::from_secs(30),
        || Ok((b.container_processes(id, "app")?.len() == 2).then_some(())),
    )?;
    Ok(session)
}

/// Killing the agent mid-session ends the session with a reason, and the agent, back,
/// leaves no process of it in the container.
#[test]
fn a_session_ends_cleanly_when_the_agent_dies() -> Result<()> {
    let mut b = Berth::start()?;
    let arn = running_task(&b, "exec-kill", true)?;
    let id = task_id(&arn).to_owned();
    let mut session = sleeping_session(&b, &id)?;
    b.kill9_agent();
    let status = poll("the session to end", Duration::from_secs(30), || {
        Ok(session.try_wait()?)
    })?;
    let out = session.wait_with_output()?;
    assert!(!status.success(), "{}", text(&out));
    assert!(text(&out).contains("went away"), "{}", text(&out));
    // containerd keeps the command running without its client; the agent, back (systemd
    // restarts it), ends it.
    b.start_agent()?;
    b.wait_connected()?;
    poll(
        "no process of the session left",
        Duration::from_secs(30),
        || Ok((b.container_processes(&id, "app")?.len() == 1).then_some(())),
    )?;
    let left = std::fs::read_dir(b.agent_dir().join("exec"))?.count();
    assert_eq!(left, 0, "the session's FIFOs are gone");
    Ok(())
}

/// A control plane stopping (SIGTERM) ends open sessions with a reason, so clients exit
/// at once; their commands stop with them.
#[test]
fn a_stopping_control_plane_closes_sessions_and_their_commands_stop() -> Result<()> {
    let mut b = Berth::start()?;
    let arn = running_task(&b, "exec-stop-cp", true)?;
    let id = task_id(&arn).to_owned();
    let mut session = sleeping_session(&b, &id)?;
    let status = b.terminate_controlplane()?;
    assert!(
        status.success(),
        "the control plane exits cleanly: {status}"
    );
    let ended = poll("the session to end", Duration::from_secs(10), || {
        Ok(session.try_wait()?)
    })?;
    let out = session.wait_with_output()?;
    assert!(!ended.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the control plane is shutting down"),
        "{}",
        text(&out)
    );
    poll(
        "no process of the session left",
        Duration::from_secs(30),
        || Ok((b.container_processes(&id, "app")?.len() == 1).then_some(())),
    )?;
    b.start_controlplane()?;
    b.wait_connected()?;
    Ok(())
}
