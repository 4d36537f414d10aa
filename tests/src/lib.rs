//! A harness that runs Berth the way a user does: the real control plane and
//! agent binaries, a real containerd and registry (started by
//! `scripts/test-env.sh`), and the real `aws` CLI. Every host resource gets a
//! per-harness prefix, and `Drop` removes it.

mod daemons;
mod extra_agents;
mod host;
mod user;

pub use daemons::terminate;
pub use host::{cleanup_host, cleanup_task_networks, http_get};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

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

pub(crate) static NEXT: AtomicU32 = AtomicU32::new(0);

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
    pub(crate) controlplane: Option<Child>,
    pub(crate) agent: Option<Child>,
    /// Further agents (`start_extra_agent`), each its own host in effect.
    pub extra_agents: Vec<ExtraAgent>,
    /// Distinguishes this harness's extra agents from other harnesses'.
    pub(crate) tag: String,
    pub(crate) n: u32,
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
    pub(crate) child: Option<Child>,
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
