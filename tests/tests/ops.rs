//! Operations: the daemons as systemd runs them (`sd_notify` readiness,
//! watchdog, stopping; graceful SIGTERM), checked by playing systemd's part
//! with a real notify socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_e2e::{binary, cleanup_host, free_port, require_env, require_root, terminate, Berth};
use serde_json::Value;

/// The service manager's end of `NOTIFY_SOCKET`.
struct NotifySocket {
    sock: UnixDatagram,
    path: std::path::PathBuf,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Result<Self> {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).context("binding the notify socket")?;
        Ok(Self {
            sock,
            path,
            seen: vec![],
        })
    }

    /// Waits for a datagram with the line `line` (e.g. `READY=1`); every
    /// datagram received on the way is kept in `seen`.
    fn wait_for(&mut self, line: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no {line} within {timeout:?}; received: {:?}", self.seen);
            }
            self.sock.set_read_timeout(Some(left))?;
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.seen.push(msg.clone());
                    if msg.lines().any(|l| l == line) {
                        return Ok(msg);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File> {
    Ok(std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?)
}

/// Kills a daemon still running when a test fails half-way.
struct Daemon(Option<Child>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_controlplane(
    dir: &Path,
    api_port: u16,
    agent_port: u16,
    notify: &NotifySocket,
) -> Result<Daemon> {
    let log = log_file(dir, "controlplane.log")?;
    let child = Command::new(binary("berth-controlplane"))
        .env("BERTH_CONTROLPLANE_CONFIG", "/dev/null")
        .arg("--data-dir")
        .arg(dir.join("cp"))
        .args(["--api-listen", &format!("127.0.0.1:{api_port}")])
        .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
        // The shutdown test speaks raw HTTP/1.1 on the socket (TLS is tested elsewhere).
        .arg("--api-plain-http")
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &notify.path)
        // 0.4 s: pings every 0.2 s, so a few arrive within a second.
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting berth-controlplane")?;
    Ok(Daemon(Some(child)))
}

#[test]
fn controlplane_is_ready_only_when_serving_pings_the_watchdog_and_stops_gracefully() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("berth-ops-").tempdir()?;
    let mut notify = NotifySocket::bind(dir.path())?;
    let (api_port, agent_port) = (free_port(), free_port());
    let mut cp = start_controlplane(dir.path(), api_port, agent_port, &notify)?;

    let ready = notify.wait_for("READY=1", Duration::from_secs(20))?;
    assert!(ready.contains("STATUS="), "{ready}");
    // READY means serving: both listeners accept and aws.env is written.
    std::net::TcpStream::connect(("127.0.0.1", api_port)).context("API after READY=1")?;
    std::net::TcpStream::connect(("127.0.0.1", agent_port)).context("agent port after READY=1")?;
    assert!(dir.path().join("cp/aws.env").exists());

    let started = Instant::now();
    for _ in 0..3 {
        notify.wait_for("WATCHDOG=1", Duration::from_secs(2))?;
    }
    // Three pings at 0.2 s: well under the 0.4 s timeout each.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // A request in flight at SIGTERM: headers and half the body sent.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", api_port))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = br#"{"clusterName": "inflight"}"#;
    let head = |len: usize| {
        format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.CreateCluster\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    // A first, whole request answered on this connection proves the server
    // has taken the connection (no guessing with a sleep).
    write!(conn, "{}", head(body.len()))?;
    conn.write_all(body)?;
    read_one_response(&mut conn)?;
    // The second request asks for "100 Continue", which the server sends only
    // once it has parsed the headers and its handler reads the body: from
    // then on the request is in flight. (Sending SIGTERM before the server
    // has parsed the headers would find an idle connection, which a graceful
    // shutdown rightly closes.)
    let expecting = head(body.len()).replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    write!(conn, "{expecting}")?;
    let continued = read_head(&mut conn)?;
    assert!(continued.starts_with("HTTP/1.1 100"), "{continued}");
    conn.write_all(&body[..10])?;

    let child = cp.0.as_mut().context("control plane")?;
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(sent.success());
    notify.wait_for("STOPPING=1", Duration::from_secs(5))?;
    // No new connections once stopping...
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the API still accepts connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...but the request in flight gets its answer (unsigned, so an error
    // response: what matters is that it is a complete HTTP response).
    conn.write_all(&body[10..])?;
    let mut resp = String::new();
    conn.read_to_string(&mut resp)?;
    assert!(
        resp.starts_with("HTTP/1.1 "),
        "in-flight request got: {resp:?}"
    );
    assert!(resp.contains("MissingAuthenticationToken"), "{resp}");

    let status = wait_exit(
        cp.0.as_mut().context("control plane")?,
        Duration::from_secs(10),
    )?;
    assert!(status.success(), "control plane exited with {status}");
    let log = std::fs::read_to_string(dir.path().join("controlplane.log"))?;
    assert!(log.contains("store closed"), "{log}");

    // The store reopens as it was left.
    let mut cp = start_controlplane(dir.path(), api_port, agent_port, &notify)?;
    notify.wait_for("READY=1", Duration::from_secs(20))?;
    let status = terminate(
        cp.0.as_mut().context("control plane")?,
        Duration::from_secs(10),
    )?;
    assert!(status.success(), "second run exited with {status}");
    Ok(())
}

/// Reads an HTTP/1.1 response's status line and headers, up to the blank line.
fn read_head(conn: &mut std::net::TcpStream) -> Result<String> {
    let mut buf = Vec::new();
    let mut byte = [0_u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte)?;
        buf.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&buf).to_string())
}

/// Reads exactly one HTTP/1.1 response (headers and a Content-Length body).
fn read_one_response(conn: &mut std::net::TcpStream) -> Result<String> {
    let head = read_head(conn)?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .context("content-length")?
        .parse()?;
    let mut body = vec![0_u8; len];
    conn.read_exact(&mut body)?;
    Ok(head + &String::from_utf8_lossy(&body))
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("still running after {timeout:?}")
}

/// Removes the agent's host resources however the test ends.
struct HostCleanup {
    sock: String,
    namespace: String,
    bridge: String,
}

impl Drop for HostCleanup {
    fn drop(&mut self) {
        cleanup_host(&self.sock, &self.namespace, &self.bridge);
    }
}

#[test]
fn agent_is_ready_with_the_control_plane_down_and_stops_on_sigterm() -> Result<()> {
    require_root();
    let sock = require_env("BERTH_CONTAINERD_SOCK");
    let dir = tempfile::Builder::new().prefix("berth-ops-").tempdir()?;
    let mut notify = NotifySocket::bind(dir.path())?;
    let tag = std::process::id() % 100_000;
    let cleanup = HostCleanup {
        sock: sock.clone(),
        namespace: format!("ops-{tag}"),
        bridge: format!("bo{tag}"),
    };
    let log = log_file(dir.path(), "agent.log")?;
    // Nobody listens on this port: the control plane is down.
    let control_plane = format!("https://127.0.0.1:{}", free_port());
    let child = Command::new(binary("berth-agent"))
        .env("BERTH_AGENT_CONFIG", "/dev/null")
        .arg("--data-dir")
        .arg(dir.path().join("agent"))
        .args(["--control-plane", &control_plane])
        .args(["--containerd-socket", &sock])
        .args(["--containerd-namespace", &cleanup.namespace])
        .args(["--bridge", &cleanup.bridge])
        .args(["--task-cidr", &format!("10.199.{}.0/24", tag % 250)])
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting berth-agent")?;
    let mut agent = Daemon(Some(child));

    let ready = notify.wait_for("READY=1", Duration::from_secs(30));
    let agent_log = || std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();
    ready.with_context(agent_log)?;
    // Ready means the bridge is up.
    assert!(
        Path::new("/sys/class/net").join(&cleanup.bridge).exists(),
        "bridge {} missing after READY=1",
        cleanup.bridge
    );
    notify.wait_for("WATCHDOG=1", Duration::from_secs(2))?;

    let status = terminate(agent.0.as_mut().context("agent")?, Duration::from_secs(10))?;
    assert!(
        status.success(),
        "agent exited with {status}: {}",
        agent_log()
    );
    // Sent before exiting, so it already waits in the socket.
    notify.wait_for("STOPPING=1", Duration::from_secs(1))?;
    Ok(())
}

#[test]
fn agent_sigterm_closes_its_session_and_leaves_tasks_running() -> Result<()> {
    let mut b = Berth::start()?;
    let td = serde_json::json!({
        "family": "stay",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {"name": "web", "image": b.demo_image, "essential": true, "stopTimeout": 2}
        ]
    });
    let p = b.dir.path().join("stay.json");
    std::fs::write(&p, serde_json::to_vec(&td)?)?;
    b.aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", p.display()),
    ])?;
    let run = b.aws(&[
        "ecs",
        "run-task",
        "--launch-type",
        "FARGATE",
        "--task-definition",
        "stay",
    ])?;
    let arn = run["tasks"][0]["taskArn"]
        .as_str()
        .context("taskArn")?
        .to_string();
    b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;

    let stopping = Instant::now();
    let status = b.terminate_agent()?;
    let took = stopping.elapsed();
    assert!(status.success(), "agent exited with {status}");
    eprintln!("agent SIGTERM to exit: {took:?}");

    // The control plane saw a clean close, not a dropped connection...
    let cp_log = std::fs::read_to_string(b.dir.path().join("controlplane.log"))?;
    assert!(cp_log.contains("agent closed its session"), "{cp_log}");
    let instances = b.aws(&["ecs", "list-container-instances"])?;
    let ci = instances["containerInstanceArns"][0]
        .as_str()
        .context("container instance")?
        .to_string();
    let d = b.aws(&[
        "ecs",
        "describe-container-instances",
        "--container-instances",
        &ci,
    ])?;
    assert_eq!(
        d["containerInstances"][0]["agentConnected"],
        Value::Bool(false)
    );

    // ...and the task's container still runs under containerd.
    let id = arn.rsplit('/').next().unwrap_or_default();
    let out = Command::new("ctr")
        .args(["--address", &b.containerd_sock, "-n", &b.namespace])
        .args(["tasks", "ls"])
        .output()?;
    let tasks = String::from_utf8_lossy(&out.stdout);
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with(id) && l.contains("RUNNING")),
        "task {id} not running after the agent stopped:\n{tasks}"
    );
    Ok(())
}

/// The repository root (the workspace).
fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo root")
}

/// A tool the ops checks need: fail loudly, never skip, when it is missing.
fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{name} is missing: run scripts/install-deps.sh (Debian package systemd)"
    );
}

/// Runs scripts/install.sh into `destdir` with the debug binaries.
fn install_into(destdir: &Path, extra: &[&str]) -> Result<std::process::Output> {
    let bin_dir = binary("berth-agent")
        .parent()
        .context("target dir")?
        .to_path_buf();
    let out = Command::new(repo().join("scripts/install.sh"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .args(extra)
        .env("DESTDIR", destdir)
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "install.sh failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

/// `systemd-analyze verify` on copies of the units whose `ExecStart` points
/// into `root` (it checks that the binary is there and executable); every
/// line it prints about a unit. It only warns (exit 0) about unknown keys,
/// so the output is what matters, not the exit code.
fn verify_units(root: &Path, units: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let dir = tempfile::Builder::new().prefix("berth-verify-").tempdir()?;
    let mut copies = vec![];
    for u in units {
        let text = std::fs::read_to_string(u)?.replace(
            "ExecStart=/usr/local/bin/",
            &format!("ExecStart={}/usr/local/bin/", root.display()),
        );
        let copy = dir.path().join(u.file_name().context("unit name")?);
        std::fs::write(&copy, text)?;
        copies.push(copy);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&copies)
        .current_dir(dir.path())
        .output()
        .context("running systemd-analyze")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut problems: Vec<String> = text
        .lines()
        .filter(|l| l.contains("berth-"))
        .map(str::to_owned)
        .collect();
    if !out.status.success() && problems.is_empty() {
        problems.push(format!(
            "systemd-analyze verify exited {}: {text}",
            out.status
        ));
    }
    Ok(problems)
}

#[test]
fn units_pass_systemd_analyze_verify_with_no_warnings() -> Result<()> {
    require_tool("systemd-analyze");
    let root = tempfile::Builder::new().prefix("berth-root-").tempdir()?;
    install_into(root.path(), &[])?;
    let units: Vec<_> = ["berth-controlplane.service", "berth-agent.service"]
        .iter()
        .map(|u| root.path().join("etc/systemd/system").join(u))
        .collect();
    let problems = verify_units(root.path(), &units)?;
    assert!(
        problems.is_empty(),
        "systemd-analyze verify:\n{}",
        problems.join("\n")
    );

    // The check itself catches what verify only warns about.
    let bad = root.path().join("bad");
    std::fs::create_dir(&bad)?;
    let broken = bad.join("berth-agent.service");
    let text = std::fs::read_to_string(&units[1])?
        .replace("KillMode=process", "KillMode=process\nKilMode=typo");
    std::fs::write(&broken, text)?;
    let problems = verify_units(root.path(), &[broken])?;
    assert!(
        problems.iter().any(|l| l.contains("KilMode")),
        "a misspelt key went unnoticed: {problems:?}"
    );

    // The control plane's sandbox stays tight (1.8 when written; 10 is none).
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&units[0])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("berth-controlplane.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no exposure level in: {text}"))?;
    assert!(score <= 2.5, "control plane exposure {score} (was 1.8)");
    Ok(())
}

#[test]
fn settings_files_document_every_setting_the_daemons_read() -> Result<()> {
    for (daemon, file, own) in [
        (
            "berth-controlplane",
            "controlplane.toml",
            "BERTH_CONTROLPLANE_CONFIG",
        ),
        ("berth-agent", "agent.toml", "BERTH_AGENT_CONFIG"),
    ] {
        let help = Command::new(binary(daemon)).arg("--help").output()?;
        let help = String::from_utf8_lossy(&help.stdout);
        // Each flag's long name and its variable, from `--help`.
        let mut flags = vec![];
        let mut long = None;
        for line in help.lines() {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix("--") {
                long = rest.split([' ', ',']).next().map(str::to_owned);
            }
            for part in line.split("[env: ").skip(1) {
                let env = part.split(['=', ']']).next().unwrap_or_default();
                flags.push((long.clone().unwrap_or_default(), env.to_owned()));
            }
        }
        assert!(flags.len() >= 5, "no settings in {daemon} --help: {help}");
        let doc = std::fs::read_to_string(repo().join("systemd").join(file))?;
        for (long, env) in flags.iter().filter(|(_, env)| env != own) {
            let key = long.replace('-', "_");
            assert!(
                doc.lines()
                    .any(|l| l.starts_with(&format!("#{key} = "))
                        && l.ends_with(&format!("# or {env}"))),
                "{file} does not document {key} ({env})"
            );
        }
    }
    Ok(())
}

#[test]
fn install_sh_fills_a_destdir_and_keeps_existing_settings() -> Result<()> {
    let root = tempfile::Builder::new().prefix("berth-root-").tempdir()?;
    let r = root.path();

    // --dry-run changes nothing.
    let out = install_into(r, &["--dry-run"])?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("would run: install"));
    assert_eq!(std::fs::read_dir(r)?.count(), 0, "--dry-run wrote files");

    install_into(r, &[])?;
    let mode = |p: &str| -> Result<u32> {
        use std::os::unix::fs::PermissionsExt;
        Ok(std::fs::metadata(r.join(p))
            .with_context(|| format!("{p} not installed"))?
            .permissions()
            .mode()
            & 0o7777)
    };
    assert_eq!(mode("usr/local/bin/berth-controlplane")?, 0o755);
    assert_eq!(mode("usr/local/bin/berth-agent")?, 0o755);
    assert_eq!(mode("usr/local/bin/session-manager-plugin")?, 0o755);
    assert_eq!(
        mode("etc/systemd/system/berth-controlplane.service")?,
        0o644
    );
    assert_eq!(mode("etc/systemd/system/berth-agent.service")?, 0o644);
    assert_eq!(mode("etc/berth/controlplane.toml")?, 0o644);
    assert_eq!(mode("etc/berth/agent.toml")?, 0o644);
    assert!(r.join("var/lib/berth").is_dir());
    let same = |installed: &str, source: &Path| -> Result<bool> {
        Ok(std::fs::read(r.join(installed))? == std::fs::read(source)?)
    };
    assert!(same(
        "etc/systemd/system/berth-agent.service",
        &repo().join("systemd/berth-agent.service")
    )?);
    assert!(same("usr/local/bin/berth-agent", &binary("berth-agent"))?);

    // The operator's settings survive a re-install.
    let settings = r.join("etc/berth/agent.toml");
    std::fs::write(&settings, "cluster = \"mine\"\n")?;
    let out = install_into(r, &[])?;
    assert_eq!(std::fs::read_to_string(&settings)?, "cluster = \"mine\"\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("keeping"));
    Ok(())
}

/// berth-controlplane started with only `--config FILE` (and `env`); it
/// runs until READY or exits (its exit status and log, then).
fn controlplane_with_settings(
    dir: &Path,
    settings: &str,
    env: &[(&str, &str)],
) -> Result<(Daemon, NotifySocket)> {
    let file = dir.join("controlplane.toml");
    std::fs::write(&file, settings)?;
    let notify = NotifySocket::bind(dir)?;
    let log = log_file(dir, "controlplane.log")?;
    let child = Command::new(binary("berth-controlplane"))
        .arg("--config")
        .arg(&file)
        .envs(env.iter().copied())
        .env("NOTIFY_SOCKET", &notify.path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting berth-controlplane")?;
    Ok((Daemon(Some(child)), notify))
}

#[test]
fn the_controlplane_reads_its_settings_file_and_the_environment_wins() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("berth-settings-")
        .tempdir()?;
    let (api, agents) = (free_port(), free_port());
    let settings = format!(
        "data_dir = \"{}\"\napi_listen = \"127.0.0.1:{api}\"\nagent_listen = \"127.0.0.1:{agents}\"\n\
         region = \"eu-west-3\"\naccount_id = \"000000000042\"\nagent_tls_san = [\"lab.example\", \"10.9.9.9\"]\n",
        dir.path().join("cp").display()
    );
    let (mut cp, mut notify) =
        controlplane_with_settings(dir.path(), &settings, &[("BERTH_REGION", "ap-south-1")])?;
    notify.wait_for("READY=1", Duration::from_secs(20))?;
    // The file's listen address and data dir; the variable's region.
    std::net::TcpStream::connect(("127.0.0.1", api)).context("the API on the file's port")?;
    let env = std::fs::read_to_string(dir.path().join("cp/aws.env"))?;
    assert!(env.contains("AWS_REGION=ap-south-1\n"), "{env}");
    let log = std::fs::read_to_string(dir.path().join("controlplane.log"))?;
    assert!(log.contains("settings file read"), "{log}");
    assert!(
        log.contains("lab.example") && log.contains("10.9.9.9"),
        "{log}"
    );
    let status = terminate(
        cp.0.as_mut().context("control plane")?,
        Duration::from_secs(10),
    )?;
    assert!(status.success(), "{status}");
    drop(notify);
    std::fs::remove_file(dir.path().join("notify.sock"))?;

    // A misspelt key stops the daemon at once, naming the key and the file.
    let (mut cp, _notify) = controlplane_with_settings(dir.path(), "api_lisen = \"x\"\n", &[])?;
    let status = wait_exit(
        cp.0.as_mut().context("control plane")?,
        Duration::from_secs(10),
    )?;
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.path().join("controlplane.log"))?;
    assert!(
        log.contains("unknown setting 'api_lisen'") && log.contains("api_listen"),
        "{log}"
    );
    Ok(())
}
