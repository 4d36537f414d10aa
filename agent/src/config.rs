//! Agent settings, from flags or the environment.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the agent needs to know about its host and its control plane.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub data_dir: PathBuf,
    pub control_plane: crate::tls::ControlPlaneEndpoint,
    /// Traded for a client certificate on first start; unused once joined.
    pub join_token: Option<berth_proto::join_token::JoinToken>,
    pub cluster: String,
    /// FARGATE, `FARGATE_SPOT` or a named host pool; `None`: plain EC2.
    pub capacity_provider: Option<String>,
    pub region: String,
    pub containerd_socket: PathBuf,
    pub containerd_namespace: String,
    pub bridge: String,
    pub task_cidr: (Ipv4Addr, u8),
    pub insecure_registries: Vec<String>,
    pub default_stop_timeout: Duration,
    /// CPU units and MiB offered to the scheduler.
    pub cpu: i64,
    pub memory_mib: i64,
    pub cgroup_parent: String,
    pub netns_dir: PathBuf,
    pub mtu: u32,
    /// Whether task definitions may run `privileged` containers here.
    pub allow_privileged: bool,
    /// pids limit of every task cgroup; 0: none.
    pub task_pids_limit: i64,
    /// Static init binary for `initProcessEnabled` (Debian's tini-static).
    pub init_binary: Option<PathBuf>,
    /// Where dynamic `hostPort`s (0 or absent, bridge mode) come from.
    pub dynamic_host_ports: crate::network::HostPortRange,
    /// Host ports no task may take (`ECS_RESERVED_PORTS` / `_UDP`).
    pub reserved_tcp_ports: Vec<u16>,
    pub reserved_udp_ports: Vec<u16>,
}

impl AgentConfig {
    pub fn state_path(&self) -> PathBuf {
        self.data_dir.join("agent.redb")
    }

    pub fn log_dir(&self, task_id: &str) -> PathBuf {
        self.data_dir.join("tasks").join(task_id)
    }
}

/// Host capacity as ECS counts it: 1024 CPU units per core, memory in MiB
/// (minus a reserve for the host itself).
pub fn host_resources(reserved_memory_mib: i64) -> (i64, i64) {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<i64>().ok())
                })
        })
        .unwrap_or(0);
    (
        i64::try_from(cores).unwrap_or(1) * 1024,
        (mem_kib / 1024 - reserved_memory_mib).max(0),
    )
}
