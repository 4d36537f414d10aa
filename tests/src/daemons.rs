//! Starting and stopping the daemons of a `Berth`, and its cleanup on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::host::{cleanup_host, cleanup_task_networks};
use crate::{binary, free_port, poll, require_env, require_root, Berth, NEXT};

impl Berth {
    /// Starts both daemons and waits until the agent's instance is connected.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Like `start`, with extra berth-controlplane flags.
    pub fn start_with(controlplane_args: &[&str]) -> Result<Self> {
        Self::start_full(controlplane_args, &[], &[])
    }

    /// Like `start`, with extra flags and environment for this harness's agents.
    pub fn start_with_agent(agent_args: &[&str], agent_env: &[(&str, &str)]) -> Result<Self> {
        Self::start_full(&[], agent_args, agent_env)
    }

    fn start_full(
        controlplane_args: &[&str],
        agent_args: &[&str],
        agent_env: &[(&str, &str)],
    ) -> Result<Self> {
        require_root();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{}{}", pid % 100_000, n);
        let mut b = Berth {
            dir: tempfile::Builder::new().prefix("berth-e2e-").tempdir()?,
            namespace: format!("e2e-{tag}"),
            bridge: format!("be{tag}"),
            cidr: format!("10.{}.{}.0/24", 200 + (n % 40), pid % 250),
            api_port: free_port(),
            agent_port: free_port(),
            containerd_sock: require_env("BERTH_CONTAINERD_SOCK"),
            registry: require_env("BERTH_REGISTRY"),
            demo_image: require_env("BERTH_DEMO_IMAGE"),
            controlplane_args: controlplane_args.iter().map(|a| (*a).to_string()).collect(),
            agent_args: agent_args.iter().map(|a| (*a).to_string()).collect(),
            agent_env: agent_env
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            controlplane: None,
            agent: None,
            extra_agents: vec![],
            tag,
            n,
        };
        b.start_controlplane()?;
        b.start_agent()?;
        b.wait_connected()?;
        Ok(b)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("cp")
    }

    pub fn agent_dir(&self) -> PathBuf {
        self.dir.path().join("agent")
    }

    pub(crate) fn log(&self, name: &str) -> Result<std::fs::File> {
        Ok(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(name))?)
    }

    pub fn start_controlplane(&mut self) -> Result<()> {
        let child = Command::new(binary("berth-controlplane"))
            // Never the host's /etc/berth settings: only what the harness says.
            .env("BERTH_CONTROLPLANE_CONFIG", "/dev/null")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--api-listen", &format!("127.0.0.1:{}", self.api_port)])
            .args(["--agent-listen", &format!("127.0.0.1:{}", self.agent_port)])
            .args(&self.controlplane_args)
            .env("RUST_LOG", "info")
            .stdout(self.log("controlplane.log")?)
            .stderr(self.log("controlplane.log")?)
            .spawn()
            .context("starting berth-controlplane")?;
        self.controlplane = Some(child);
        let env = self.data_dir().join("aws.env");
        let port = self.api_port;
        poll("the control plane API", Duration::from_secs(20), || {
            Ok(
                (env.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
                    .then_some(()),
            )
        })
    }

    /// A join token from `berth join-token create`, as an operator makes one.
    pub fn join_token(&self, extra: &[&str]) -> Result<String> {
        let out = Command::new(binary("berth"))
            .arg("--aws-env")
            .arg(self.data_dir().join("aws.env"))
            .args(["join-token", "create"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .context("running berth join-token create")?;
        ensure!(
            out.status.success(),
            "berth join-token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// berth-agent with this harness's flags, for an agent with its own
    /// data dir, containerd namespace, bridge and task CIDR. On its first
    /// start (no client certificate yet) it joins with a fresh single-use token.
    pub(crate) fn agent_command(
        &self,
        dir: &Path,
        namespace: &str,
        bridge: &str,
        cidr: &str,
        capacity_provider: Option<&str>,
    ) -> Result<Command> {
        let mut cmd = Command::new(binary("berth-agent"));
        // Never the host's /etc/berth settings: only what the harness says.
        cmd.env("BERTH_AGENT_CONFIG", "/dev/null");
        if !dir.join("pki/agent.key").exists() {
            cmd.env("BERTH_JOIN_TOKEN", self.join_token(&[])?);
        }
        cmd.arg("--data-dir")
            .arg(dir)
            .args([
                "--control-plane",
                &format!("https://127.0.0.1:{}", self.agent_port),
            ])
            .args(["--containerd-socket", &self.containerd_sock])
            .args(["--containerd-namespace", namespace])
            .args(["--bridge", bridge])
            .args(["--task-cidr", cidr])
            .args(["--insecure-registry", &self.registry])
            .args(["--stop-timeout", "5"])
            .args(&self.agent_args)
            .envs(self.agent_env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info");
        match capacity_provider {
            Some(p) => cmd.args(["--capacity-provider", p]),
            None => cmd.arg("--serves-fargate"),
        };
        Ok(cmd)
    }

    pub fn start_agent(&mut self) -> Result<()> {
        let child = self
            .agent_command(
                &self.agent_dir(),
                &self.namespace,
                &self.bridge,
                &self.cidr,
                None,
            )?
            .stdout(self.log("agent.log")?)
            .stderr(self.log("agent.log")?)
            .spawn()
            .context("starting berth-agent")?;
        self.agent = Some(child);
        Ok(())
    }

    /// The agent's process id, while it runs.
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(Child::id)
    }

    /// The control plane's process id, while it runs.
    pub fn controlplane_pid(&self) -> Option<u32> {
        self.controlplane.as_ref().map(Child::id)
    }

    /// Kills the agent with SIGKILL (no shutdown path runs).
    pub fn kill9_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the control plane with SIGKILL (no shutdown path runs).
    pub fn kill9_controlplane(&mut self) {
        if let Some(mut c) = self.controlplane.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the agent with SIGTERM, as systemd does, and waits for it to
    /// exit (SIGKILL after 10 s); its exit status.
    pub fn terminate_agent(&mut self) -> Result<std::process::ExitStatus> {
        let mut child = self.agent.take().context("the agent is not running")?;
        terminate(&mut child, Duration::from_secs(10))
    }

    /// Stops the control plane with SIGTERM, as systemd does, and waits for it to exit
    /// (SIGKILL after 10 s); its exit status.
    pub fn terminate_controlplane(&mut self) -> Result<std::process::ExitStatus> {
        let mut child = self
            .controlplane
            .take()
            .context("the control plane is not running")?;
        terminate(&mut child, Duration::from_secs(10))
    }

    pub fn wait_connected(&mut self) -> Result<String> {
        poll("the agent to connect", Duration::from_secs(30), || {
            if let Some(status) = self
                .agent
                .as_mut()
                .and_then(|a| a.try_wait().ok().flatten())
            {
                bail!("berth-agent exited early ({status})");
            }
            let arns = self.aws(&["ecs", "list-container-instances", "--cluster", "default"])?;
            let Some(arn) = arns["containerInstanceArns"]
                .get(0)
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                return Ok(None);
            };
            let d = self.aws(&[
                "ecs",
                "describe-container-instances",
                "--cluster",
                "default",
                "--container-instances",
                &arn,
            ])?;
            Ok((d["containerInstances"][0]["agentConnected"] == true).then_some(arn))
        })
    }

    fn stop_child(child: &mut Option<Child>) {
        if let Some(mut c) = child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `r`, after printing the daemons' logs if it is an error: a test's scenario runs in
    /// a function of its own and hands its result through this.
    pub fn logs_on_failure<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.dump_logs();
        }
        r
    }

    /// Prints the daemons' logs (for a failing test).
    pub fn dump_logs(&self) {
        let extra: Vec<String> = (1..=self.extra_agents.len())
            .map(|k| format!("agent{k}.log"))
            .collect();
        let names = ["controlplane.log", "agent.log"]
            .into_iter()
            .chain(extra.iter().map(String::as_str));
        for name in names {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("---- {name} (last lines) ----");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        // Captured by the test harness, so shown only when a test fails.
        self.dump_logs();
        Self::stop_child(&mut self.agent);
        for a in &mut self.extra_agents {
            Self::stop_child(&mut a.child);
        }
        Self::stop_child(&mut self.controlplane);
        cleanup_host(&self.containerd_sock, &self.namespace, &self.bridge);
        cleanup_task_networks(&self.agent_dir());
        for a in &self.extra_agents {
            cleanup_host(&self.containerd_sock, &a.namespace, &a.bridge);
            cleanup_task_networks(&a.dir);
        }
    }
}

/// Sends SIGTERM to `child` and waits up to `grace` for it to exit, then
/// SIGKILLs it (and fails: a daemon that ignores SIGTERM is a bug).
pub fn terminate(child: &mut Child, grace: Duration) -> Result<std::process::ExitStatus> {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    anyhow::ensure!(sent.success(), "kill -TERM {} failed", child.id());
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("pid {} still running {grace:?} after SIGTERM", child.id())
}
