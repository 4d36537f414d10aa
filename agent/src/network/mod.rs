//! Task networking in the style of ECS `awsvpc`: each task gets its own network namespace with one `eth0`, wired by a veth pair to a host bridge that is the tasks' gateway.
//!
//! [`NetworkSetup`] is the seam the rest of the agent uses; [`LinuxNetwork`]
//! does it for real (rtnetlink, bind-mounted namespace files, iptables), and
//! [`RecordingNetwork`] only records calls, for tests.

mod cidr;
mod error;
mod fake;
mod iptables;
mod linux;
mod netlink;
mod netns;

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use cidr::TaskCidr;
pub use error::NetworkError;
pub use fake::RecordingNetwork;
pub use linux::LinuxNetwork;

/// Where `ip netns` keeps its namespace files; using it lets operators run
/// `ip netns exec berth-<task id> ...`.
pub const DEFAULT_NETNS_DIR: &str = "/var/run/netns";
/// Prefix of task namespace names: `berth-<task id>`.
pub const NETNS_PREFIX: &str = "berth-";
/// Prefix of the host end of a task's veth pair: `bv<first 12 chars of the task id>`.
pub const HOST_VETH_PREFIX: &str = "bv";
const HOST_VETH_ID_CHARS: usize = 12;
/// Linux interface names hold at most 15 bytes (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Host bridge the task veths attach to, e.g. `berth0`.
    pub bridge: String,
    /// Subnet of the task addresses; the bridge takes its first host address.
    pub cidr: TaskCidr,
    /// Directory holding the namespace files, [`DEFAULT_NETNS_DIR`] normally.
    pub netns_dir: PathBuf,
    /// MTU of the bridge and of both veth ends.
    pub mtu: u32,
    /// Set `net.ipv4.ip_forward` in `ensure_host` so tasks can reach past
    /// the host. Tests that must not change host-wide settings turn it off.
    pub enable_ip_forward: bool,
}

impl NetworkConfig {
    /// A config with the default netns dir, MTU 1500 and forwarding enabled.
    #[must_use]
    pub fn new(bridge: impl Into<String>, cidr: TaskCidr) -> Self {
        Self {
            bridge: bridge.into(),
            cidr,
            netns_dir: PathBuf::from(DEFAULT_NETNS_DIR),
            mtu: 1500,
            enable_ip_forward: true,
        }
    }

    pub fn validate(&self) -> Result<(), NetworkError> {
        let bridge_ok = !self.bridge.is_empty()
            && self.bridge.len() <= MAX_IFNAME_LEN
            && self
                .bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !bridge_ok {
            return Err(NetworkError::InvalidConfig(format!(
                "bridge name {:?} must be 1 to {MAX_IFNAME_LEN} characters of [A-Za-z0-9._-]",
                self.bridge
            )));
        }
        if !(68..=65535).contains(&self.mtu) {
            return Err(NetworkError::InvalidConfig(format!(
                "mtu {} is outside 68..=65535",
                self.mtu
            )));
        }
        if !self.netns_dir.is_absolute() {
            return Err(NetworkError::InvalidConfig(format!(
                "netns dir {} is not absolute",
                self.netns_dir.display()
            )));
        }
        Ok(())
    }
}

impl Default for NetworkConfig {
    /// `berth0` on `10.131.0.0/16`.
    fn default() -> Self {
        Self::new(
            "berth0",
            TaskCidr {
                network: Ipv4Addr::new(10, 131, 0, 0),
                prefix_len: 16,
            },
        )
    }
}

/// What a task's network looks like once set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNetwork {
    /// Namespace file to hand to the container runtime as the task's netns.
    pub netns_path: PathBuf,
    pub ipv4: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// MAC of the task's `eth0`, `xx:xx:xx:xx:xx:xx`.
    pub mac: String,
    /// Host end of the veth pair.
    pub host_veth: String,
}

pub trait NetworkSetup: Send + Sync + 'static {
    /// Create (idempotently) the host bridge with the gateway address, up,
    /// and the egress NAT and FORWARD rules.
    fn ensure_host(&self) -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Create netns `berth-<task_id>` with `eth0` holding `ip`, `lo` up and a
    /// default route via the gateway, joined to the bridge by a veth pair
    /// whose host end is `bv<first 12 chars of task_id>`. Leftovers of an
    /// earlier setup of the same task are replaced.
    fn setup_task(
        &self,
        task_id: &str,
        ip: Ipv4Addr,
    ) -> impl Future<Output = Result<TaskNetwork, NetworkError>> + Send;

    /// Remove the veth and the netns; missing pieces are fine.
    fn teardown_task(&self, task_id: &str)
        -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Task ids that have a `berth-*` netns under the netns dir, to clean up
    /// leftovers when the agent starts.
    fn list_task_netns(&self) -> impl Future<Output = Result<Vec<String>, NetworkError>> + Send;
}

/// `berth-<task_id>`.
#[must_use]
pub fn netns_name(task_id: &str) -> String {
    format!("{NETNS_PREFIX}{task_id}")
}

/// `bv` plus the first 12 characters of the task id: 14 characters, within
/// the kernel's 15. Task ids are random hex, so 48 bits keep them apart.
#[must_use]
pub fn host_veth_name(task_id: &str) -> String {
    let short: String = task_id.chars().take(HOST_VETH_ID_CHARS).collect();
    format!("{HOST_VETH_PREFIX}{short}")
}

/// Task ids become file and interface names, so only lowercase letters and
/// digits are allowed (ECS task ids are 32 lowercase hex characters).
pub(crate) fn validate_task_id(task_id: &str) -> Result<(), NetworkError> {
    let invalid = |reason| NetworkError::InvalidTaskId {
        task_id: task_id.to_owned(),
        reason,
    };
    if task_id.is_empty() || task_id.len() > 64 {
        return Err(invalid("must be 1 to 64 characters"));
    }
    if !task_id
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return Err(invalid("must be lowercase letters and digits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK_ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn names_derive_from_the_task_id() {
        assert_eq!(netns_name(TASK_ID), format!("berth-{TASK_ID}"));
        assert_eq!(host_veth_name(TASK_ID), "bv0123456789ab");
        assert_eq!(host_veth_name("abc"), "bvabc");
    }

    #[test]
    fn host_veth_name_fits_ifnamsiz() {
        for id in [TASK_ID, "f", &"f".repeat(64)] {
            assert!(host_veth_name(id).len() <= MAX_IFNAME_LEN);
        }
    }

    #[test]
    fn task_ids_must_be_safe_names() {
        assert!(validate_task_id(TASK_ID).is_ok());
        for bad in ["", "../etc", "ABCDEF", "a b", "a/b", &"a".repeat(65)] {
            assert!(validate_task_id(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn errors_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<NetworkError>();
    }

    #[test]
    fn config_validation() {
        let mut config = NetworkConfig::default();
        assert!(config.validate().is_ok());
        config.bridge = "a-bridge-name-too-long".into();
        assert!(config.validate().is_err());
        config.bridge = "berth0".into();
        config.mtu = 20;
        assert!(config.validate().is_err());
        config.mtu = 1500;
        config.netns_dir = "relative".into();
        assert!(config.validate().is_err());
    }
}
