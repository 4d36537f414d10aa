//! A harness that runs Berth the way a user does: the real control plane and
//! agent binaries, a real containerd and registry (started by
//! `scripts/test-env.sh`), and the real `aws` CLI. Every host resource gets a
//! per-harness prefix, and `Drop` removes it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;

/// A test prerequisite from the environment; panics with a clear message
/// when missing (tests must fail, not skip).
pub fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts containerd and the registry")
    })
}

pub fn require_root() {
    assert!(
        nix_is_root(),
        "these tests need root (network namespaces, cgroups, containerd)"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Where cargo put the daemons (`cargo build --bins` runs first).
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A loopback TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` until it returns Some or the deadline passes.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One control plane and one agent, with their own ports, data dirs,
/// containerd namespace, bridge and task CIDR.
pub struct Berth {
    pub dir: tempfile::TempDir,
    pub namespace: String,
    pub bridge: String,
    pub cidr: String,
    pub api_port: u16,
    pub agent_port: u16,
    pub containerd_sock: String,
    pub registry: String,
    pub demo_image: String,
    /// Extra flags for berth-controlplane (see `start_with`).
    pub controlplane_args: Vec<String>,
    /// Extra flags and environment for every agent of this harness (see
    /// `start_with_agent`).
    pub agent_args: Vec<String>,
    pub agent_env: Vec<(String, String)>,
    controlplane: Option<Child>,
    agent: Option<Child>,
    /// Further agents (`start_extra_agent`), each its own host in effect.
    pub extra_agents: Vec<ExtraAgent>,
    /// Distinguishes this harness's extra agents from other harnesses'.
    tag: String,
    n: u32,
}

/// One more agent on this machine, connected to the same control plane,
/// with its own containerd namespace, bridge, task CIDR and data dir.
pub struct ExtraAgent {
    pub namespace: String,
    pub bridge: String,
    pub cidr: String,
    pub dir: PathBuf,
    /// Its container instance, once connected.
    pub instance_arn: String,
    /// `--capacity-provider`; `None` serves FARGATE as the first agent does.
    pub capacity_provider: Option<String>,
    child: Option<Child>,
}

impl ExtraAgent {
    /// The agent's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the agent with SIGKILL (no shutdown path runs; its tasks'
    /// containers keep running, as on a host whose agent crashed).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

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

    fn log(&self, name: &str) -> Result<std::fs::File> {
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
    fn agent_command(
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

    /// Starts one more agent (at most 4) and waits until the control plane
    /// shows it connected; its index in `extra_agents`.
    pub fn start_extra_agent(&mut self) -> Result<usize> {
        self.start_extra_agent_in(None)
    }

    /// `start_extra_agent`, the agent in `capacity_provider`'s pool.
    pub fn start_extra_agent_in(&mut self, capacity_provider: Option<&str>) -> Result<usize> {
        let k = self.extra_agents.len();
        anyhow::ensure!(k < 4, "at most 4 extra agents per harness");
        // The first agent's CIDRs use 10.200-239.x; extras 10.240-255.x.
        let k8 = u32::try_from(k).unwrap_or(0);
        let cidr = format!(
            "10.{}.{}.0/24",
            240 + (self.n * 4 + k8) % 16,
            std::process::id() % 250
        );
        let log = format!("agent{}.log", k + 1);
        let mut agent = ExtraAgent {
            namespace: format!("{}-{}", self.namespace, k + 1),
            bridge: format!("be{}x{}", self.tag, k + 1),
            cidr,
            dir: self.dir.path().join(format!("agent{}", k + 1)),
            instance_arn: String::new(),
            capacity_provider: capacity_provider.map(str::to_owned),
            child: None,
        };
        let known: Vec<String> =
            self.aws(&["ecs", "list-container-instances", "--cluster", "default"])?
                ["containerInstanceArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
        let child = self
            .agent_command(
                &agent.dir,
                &agent.namespace,
                &agent.bridge,
                &agent.cidr,
                capacity_provider,
            )?
            .stdout(self.log(&log)?)
            .stderr(self.log(&log)?)
            .spawn()
            .context("starting another berth-agent")?;
        agent.child = Some(child);
        self.extra_agents.push(agent);
        let arn = self.wait_extra_connected(k, |arn| !known.iter().any(|a| a == arn))?;
        self.extra_agents[k].instance_arn = arn;
        Ok(k)
    }

    /// Starts extra agent `k` again (same data dir: same container
    /// instance) and waits until it is connected.
    pub fn restart_extra_agent(&mut self, k: usize) -> Result<()> {
        let log = format!("agent{}.log", k + 1);
        let a = &self.extra_agents[k];
        anyhow::ensure!(a.child.is_none(), "extra agent {k} is still running");
        let child = self
            .agent_command(
                &a.dir,
                &a.namespace,
                &a.bridge,
                &a.cidr,
                a.capacity_provider.as_deref(),
            )?
            .stdout(self.log(&log)?)
            .stderr(self.log(&log)?)
            .spawn()
            .context("restarting an extra berth-agent")?;
        self.extra_agents[k].child = Some(child);
        let arn = self.extra_agents[k].instance_arn.clone();
        self.wait_extra_connected(k, |a| a == arn)?;
        Ok(())
    }

    /// Waits until a connected instance matches `is_it`; its ARN.
    fn wait_extra_connected(&mut self, k: usize, is_it: impl Fn(&str) -> bool) -> Result<String> {
        poll(
            "the extra agent to connect",
            Duration::from_secs(30),
            || {
                if let Some(status) = self.extra_agents[k]
                    .child
                    .as_mut()
                    .and_then(|a| a.try_wait().ok().flatten())
                {
                    bail!("berth-agent {} exited early ({status})", k + 1);
                }
                Ok(self.connected_instances()?.into_iter().find(|a| is_it(a)))
            },
        )
    }

    /// The default cluster's container instances whose agent is connected.
    pub fn connected_instances(&self) -> Result<Vec<String>> {
        let arns = self.aws(&["ecs", "list-container-instances", "--cluster", "default"])?;
        let arns: Vec<&str> = arns["containerInstanceArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let mut cmd = vec![
            "ecs",
            "describe-container-instances",
            "--cluster",
            "default",
            "--container-instances",
        ];
        cmd.extend(arns);
        let d = self.aws(&cmd)?;
        Ok(d["containerInstances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["agentConnected"] == true)
            .filter_map(|i| i["containerInstanceArn"].as_str().map(str::to_owned))
            .collect())
    }

    /// The agent's process id, while it runs.
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(Child::id)
    }

    /// Kills the agent with SIGKILL (no shutdown path runs).
    pub fn kill9_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// containerd's view of one container's task: (status, pid), e.g. ("RUNNING", 123).
    pub fn containerd_task(&self, container_id: &str) -> Result<Option<(String, u32)>> {
        let out = Command::new("ctr")
            .args([
                "--address",
                &self.containerd_sock,
                "-n",
                &self.namespace,
                "tasks",
                "ls",
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&container_id)).then(|| {
                (
                    f.get(2).unwrap_or(&"").to_string(),
                    f.get(1).and_then(|p| p.parse().ok()).unwrap_or(0),
                )
            })
        }))
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

    /// The environment `aws.env` gives a user.
    pub fn aws_env(&self) -> Result<Vec<(String, String)>> {
        let text = std::fs::read_to_string(self.data_dir().join("aws.env"))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// Runs the aws CLI; Ok(json) on success, Err with its stderr otherwise.
    pub fn aws(&self, args: &[&str]) -> Result<Value> {
        let out = self.aws_raw(args)?;
        if !out.status.success() {
            bail!(
                "aws {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("aws output: {}", String::from_utf8_lossy(&out.stdout)))
    }

    pub fn aws_raw(&self, args: &[&str]) -> Result<std::process::Output> {
        Command::new("aws")
            .args(args)
            .args(["--output", "json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .envs(self.aws_env()?)
            .stdin(Stdio::null())
            .output()
            .context("running the aws CLI (is awscli installed?)")
    }

    /// Registers a task definition from its JSON with the aws CLI
    /// (`--cli-input-json file://...`).
    /// Every task of a service the control plane still knows (desired
    /// RUNNING or STOPPED, any last status), described.
    pub fn service_tasks(&self, service: &str) -> Result<Vec<Value>> {
        let mut arns = std::collections::BTreeSet::new();
        for desired in ["RUNNING", "STOPPED"] {
            let l = self.aws(&[
                "ecs",
                "list-tasks",
                "--service-name",
                service,
                "--desired-status",
                desired,
            ])?;
            arns.extend(
                l["taskArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let mut cmd = vec!["ecs", "describe-tasks", "--tasks"];
        cmd.extend(arns.iter().map(String::as_str));
        Ok(self.aws(&cmd)?["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    pub fn register_task_definition(&self, def: &Value) -> Result<()> {
        let family = def["family"].as_str().unwrap_or("td");
        let p = self.dir.path().join(format!("{family}.json"));
        std::fs::write(&p, serde_json::to_vec(def)?)?;
        self.aws(&[
            "ecs",
            "register-task-definition",
            "--cli-input-json",
            &format!("file://{}", p.display()),
        ])?;
        Ok(())
    }

    /// Runs one task of `family` in the default cluster; its ARN. Placement failures fail.
    pub fn run_task(&self, family: &str) -> Result<String> {
        let out = self.aws(&["ecs", "run-task", "--task-definition", family])?;
        if out["failures"].as_array().is_some_and(|f| !f.is_empty()) {
            bail!("run-task {family} failed: {out}");
        }
        out["tasks"][0]["taskArn"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no taskArn in {out}"))
    }

    /// Waits until the task (default cluster) has stopped; its description.
    pub fn wait_stopped(&self, arn: &str, timeout: Duration) -> Result<Value> {
        poll(&format!("task {arn} to stop"), timeout, || {
            let t = self.describe_task("default", arn)?;
            Ok((t["lastStatus"] == "STOPPED").then_some(t))
        })
    }

    /// A container's log file on this host.
    pub fn container_log(&self, task_arn: &str, container: &str) -> PathBuf {
        let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
        self.agent_dir()
            .join("tasks")
            .join(id)
            .join(format!("{container}.log"))
    }

    /// Waits until a container's log on this host holds `needle`; the log.
    pub fn wait_log(&self, task_arn: &str, container: &str, needle: &str) -> Result<String> {
        let path = self.container_log(task_arn, container);
        poll(
            &format!("{needle:?} in {}", path.display()),
            Duration::from_secs(20),
            || {
                Ok(std::fs::read_to_string(&path)
                    .ok()
                    .filter(|l| l.contains(needle)))
            },
        )
    }

    /// Runs a boto3 script from `tests/scripts` against this control plane
    /// (with `env` besides the aws.env settings) and checks it exercised each
    /// of `ops`; its JSON summary (`{"checked": [...]}`).
    pub fn boto3_script(&self, script: &str, env: &[(&str, &str)], ops: &[&str]) -> Result<Value> {
        let out = Command::new("python3")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("scripts")
                    .join(script),
            )
            .env("HOME", self.dir.path())
            .envs(self.aws_env()?)
            .envs(env.iter().copied())
            .output()
            .context("running python3")?;
        if !out.status.success() {
            bail!("{script} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let summary: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!("{script} printed: {}", String::from_utf8_lossy(&out.stdout))
        })?;
        for op in ops {
            let done = summary["checked"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x == op));
            if !done {
                bail!("{script} did not exercise {op}: {summary}");
            }
        }
        Ok(summary)
    }

    /// Describes one task (by ARN).
    pub fn describe_task(&self, cluster: &str, arn: &str) -> Result<Value> {
        let d = self.aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            cluster,
            "--tasks",
            arn,
        ])?;
        d["tasks"]
            .get(0)
            .cloned()
            .ok_or_else(|| anyhow!("task {arn} not found: {d}"))
    }

    /// Waits until the task's lastStatus is `status`.
    pub fn wait_task_status(
        &self,
        cluster: &str,
        arn: &str,
        status: &str,
        timeout: Duration,
    ) -> Result<Value> {
        poll(&format!("task {arn} to be {status}"), timeout, || {
            let t = self.describe_task(cluster, arn)?;
            if t["lastStatus"] == status {
                return Ok(Some(t));
            }
            if t["lastStatus"] == "STOPPED" {
                bail!("task stopped instead: {t}");
            }
            Ok(None)
        })
    }

    /// The task cgroup's memory hard limit in bytes (cgroup v1 or v2).
    pub fn task_memory_limit(&self, task_id: &str) -> Result<u64> {
        let rel = Path::new("berth").join(&self.namespace).join(task_id);
        let v1 = Path::new("/sys/fs/cgroup/memory")
            .join(&rel)
            .join("memory.limit_in_bytes");
        let v2 = Path::new("/sys/fs/cgroup").join(&rel).join("memory.max");
        let text = std::fs::read_to_string(&v1)
            .or_else(|_| std::fs::read_to_string(&v2))
            .with_context(|| {
                format!(
                    "no memory limit file for task {task_id} ({} or {})",
                    v1.display(),
                    v2.display()
                )
            })?;
        Ok(text.trim().parse()?)
    }

    /// A file of the task's cgroup: `controller` is the v1 hierarchy
    /// (`pids`), `file` the name (`pids.max`); v2 is tried too.
    pub fn task_cgroup_file(&self, task_id: &str, controller: &str, file: &str) -> Result<String> {
        let rel = Path::new("berth").join(&self.namespace).join(task_id);
        let v1 = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&rel)
            .join(file);
        let v2 = Path::new("/sys/fs/cgroup").join(&rel).join(file);
        std::fs::read_to_string(&v1)
            .or_else(|_| std::fs::read_to_string(&v2))
            .map(|s| s.trim().to_string())
            .with_context(|| format!("neither {} nor {}", v1.display(), v2.display()))
    }

    /// containerd containers left in this harness's namespace.
    pub fn containers(&self) -> Result<Vec<String>> {
        let out = Command::new("ctr")
            .args([
                "--address",
                &self.containerd_sock,
                "-n",
                &self.namespace,
                "containers",
                "ls",
                "-q",
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Host resources a task may leave: netns and veths (the task's, or its
    /// bridge-mode containers'), published-port rules, cgroups, containers.
    pub fn leftovers(&self, task_id: &str) -> Result<Vec<String>> {
        let mut left = vec![];
        for entry in std::fs::read_dir("/var/run/netns")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == format!("berth-{task_id}") || name.starts_with(&format!("berth-{task_id}-"))
            {
                left.push(format!("netns {name}"));
            }
        }
        for entry in std::fs::read_dir("/sys/class/net")?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == format!("bv{}", &task_id[..12])
                || (name.len() == 14 && name.starts_with(&format!("bc{}", &task_id[..10])))
            {
                left.push(format!("veth {name}"));
            }
        }
        let out = Command::new("iptables")
            .args(["-w", "-t", "nat", "-S"])
            .output()?;
        for rule in String::from_utf8_lossy(&out.stdout).lines() {
            if rule.contains(&format!("berth:{}:{task_id}", self.bridge)) {
                left.push(format!("iptables rule {rule}"));
            }
        }
        for entry in std::fs::read_dir("/sys/fs/cgroup")? {
            let p = entry?
                .path()
                .join("berth")
                .join(&self.namespace)
                .join(task_id);
            if p.exists() {
                left.push(format!("cgroup {}", p.display()));
            }
        }
        let unified = Path::new("/sys/fs/cgroup/berth")
            .join(&self.namespace)
            .join(task_id);
        if unified.exists() {
            left.push(format!("cgroup {}", unified.display()));
        }
        for c in self.containers()? {
            if c.starts_with(task_id) {
                left.push(format!("container {c}"));
            }
        }
        Ok(left)
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

/// Removes the network namespaces and host veths of tasks an agent with data
/// dir `agent_dir` still held when it was stopped (the agent leaves running
/// tasks alone on shutdown, by design).
pub fn cleanup_task_networks(agent_dir: &Path) {
    let Ok(tasks) = std::fs::read_dir(agent_dir.join("tasks")) else {
        return;
    };
    for id in tasks
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
    {
        if id.len() >= 12 {
            let _ = Command::new("ip")
                .args(["link", "del", &format!("bv{}", &id[..12])])
                .output();
            // Bridge-mode containers' veths (the first few are enough for tests).
            for i in 0..4 {
                let _ = Command::new("ip")
                    .args(["link", "del", &format!("bc{}{i:02x}", &id[..10])])
                    .output();
            }
        }
        let endpoints =
            std::iter::once(format!("berth-{id}")).chain((0..4).map(|i| format!("berth-{id}-{i}")));
        for name in endpoints {
            let netns = Path::new("/var/run/netns").join(name);
            if netns.exists() {
                let _ = Command::new("umount").arg(&netns).output();
                let _ = std::fs::remove_file(&netns);
            }
        }
    }
}

/// Removes whatever a harness's agent may have left: containers and tasks in
/// its containerd namespace, its namespaces, bridge, iptables rules, cgroups.
pub fn cleanup_host(sock: &str, namespace: &str, bridge: &str) {
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .args(["--address", sock, "-n", namespace])
            .args(args)
            .output()
    };
    if let Ok(out) = ctr(&["containers", "ls", "-q"]) {
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id]);
            let _ = ctr(&["tasks", "delete", "-f", id]);
            let _ = ctr(&["containers", "delete", id]);
        }
    }
    let _ = Command::new("ip").args(["link", "del", bridge]).output();
    for (table, chain) in [
        ("nat", "POSTROUTING"),
        ("nat", "PREROUTING"),
        ("nat", "OUTPUT"),
        ("filter", "FORWARD"),
        ("filter", "INPUT"),
    ] {
        if let Ok(out) = Command::new("iptables")
            .args(["-w", "-t", table, "-S", chain])
            .output()
        {
            for rule in String::from_utf8_lossy(&out.stdout).lines() {
                if rule.contains(&format!("berth:{bridge}")) {
                    let args: Vec<String> = shell_words(rule.replacen("-A ", "-D ", 1).as_str());
                    let _ = Command::new("iptables")
                        .args(["-w", "-t", table])
                        .args(&args)
                        .output();
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let dir = e.path().join("berth").join(namespace);
            remove_cgroup_tree(&dir);
        }
    }
    remove_cgroup_tree(&Path::new("/sys/fs/cgroup/berth").join(namespace));
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Splits an `iptables -S` rule into arguments (it quotes comments with spaces).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// GET `path` from `ip:port` over plain HTTP/1.0; the body.
pub fn http_get(ip: &str, port: u16, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse()?,
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP response: {buf}"))?;
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        bail!("HTTP error: {head}");
    }
    Ok(body.to_string())
}
