//! Task networking: network namespaces with one `eth0`, wired by a veth pair to a host bridge that is their gateway (one per task in `awsvpc` mode, one per container in `bridge` mode), and host ports published to them with DNAT.
//!
//! A namespace on the bridge is an *endpoint*, named by an endpoint id: the
//! task id for an `awsvpc` task, `<task id>-<container index>` for a
//! container of a `bridge` task.
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
mod ports;

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use cidr::TaskCidr;
pub use error::NetworkError;
pub use fake::RecordingNetwork;
pub use iptables::PublishedPort;
pub use linux::LinuxNetwork;
pub use ports::{assign, AssignedPort, HostPortRange, PortError, PortMode, ECS_RESERVED_TCP_PORTS};

use crate::model::Protocol;

/// Where `ip netns` keeps its namespace files; using it lets operators run
/// `ip netns exec berth-<task id> ...`.
pub const DEFAULT_NETNS_DIR: &str = "/var/run/netns";
/// Prefix of task namespace names: `berth-<task id>`.
pub const NETNS_PREFIX: &str = "berth-";
/// Prefix of the host end of a task's veth pair: `bv<first 12 chars of the task id>`.
pub const HOST_VETH_PREFIX: &str = "bv";
const HOST_VETH_ID_CHARS: usize = 12;
/// Prefix of the host end of a bridge-mode container's veth pair:
/// `bc<first 10 chars of the task id><container index, 2 hex digits>`.
pub const CONTAINER_VETH_PREFIX: &str = "bc";
const CONTAINER_VETH_ID_CHARS: usize = 10;
/// Most containers a bridge-mode task may have (its index must fit 2 hex digits).
pub const MAX_BRIDGE_CONTAINERS: usize = 256;
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

    /// Create netns `berth-<endpoint>` with `eth0` holding `ip`, `lo` up and
    /// a default route via the gateway, joined to the bridge by a veth pair
    /// whose host end is [`host_veth_name`]. Leftovers of an earlier setup
    /// of the same endpoint are replaced. `endpoint` is a task id or a
    /// [`container_endpoint`].
    fn setup_task(
        &self,
        endpoint: &str,
        ip: Ipv4Addr,
    ) -> impl Future<Output = Result<TaskNetwork, NetworkError>> + Send;

    /// Remove the endpoint's veth and netns; missing pieces are fine.
    fn teardown_task(
        &self,
        endpoint: &str,
    ) -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Endpoint ids that have a `berth-*` netns under the netns dir, to
    /// clean up leftovers when the agent starts.
    fn list_task_netns(&self) -> impl Future<Output = Result<Vec<String>, NetworkError>> + Send;

    /// Whether the endpoint's host veth is a port of this host's bridge:
    /// several agents may share a netns dir, and each cleans only its own.
    fn owns_endpoint(
        &self,
        endpoint: &str,
    ) -> impl Future<Output = Result<bool, NetworkError>> + Send;

    /// Forward each host port to its container (DNAT), with rules tagged
    /// after the task. All or nothing: on failure the task's rules are gone.
    fn publish(
        &self,
        task_id: &str,
        ports: &[PublishedPort],
    ) -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Remove every rule tagged with the task; none is fine.
    fn unpublish(&self, task_id: &str) -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Task ids that have published-port rules for this bridge.
    fn list_published(&self) -> impl Future<Output = Result<Vec<String>, NetworkError>> + Send;

    /// Whether nothing on the host listens on the port (a bind succeeds).
    fn host_port_free(&self, protocol: Protocol, port: u16) -> bool;
}

/// The endpoint id of container `index` of a bridge-mode task.
#[must_use]
pub fn container_endpoint(task_id: &str, index: usize) -> String {
    format!("{task_id}-{index}")
}

/// The task an endpoint id belongs to.
#[must_use]
pub fn endpoint_task_id(endpoint: &str) -> &str {
    endpoint.split_once('-').map_or(endpoint, |(task, _)| task)
}

/// `berth-<task_id>`.
#[must_use]
pub fn netns_name(task_id: &str) -> String {
    format!("{NETNS_PREFIX}{task_id}")
}

/// For a task: `bv` plus the first 12 characters of the task id: 14
/// characters, within the kernel's 15. Task ids are random hex, so 48 bits
/// keep them apart. For a container endpoint: `bc`, 10 characters of the
/// task id and the container index in 2 hex digits.
#[must_use]
pub fn host_veth_name(endpoint: &str) -> String {
    if let Some((task_id, index)) = endpoint.split_once('-') {
        let short: String = task_id.chars().take(CONTAINER_VETH_ID_CHARS).collect();
        let index: usize = index.parse().unwrap_or(0);
        format!(
            "{CONTAINER_VETH_PREFIX}{short}{:02x}",
            index % MAX_BRIDGE_CONTAINERS
        )
    } else {
        let short: String = endpoint.chars().take(HOST_VETH_ID_CHARS).collect();
        format!("{HOST_VETH_PREFIX}{short}")
    }
}

/// A task id, or a task id, `-` and a container index below
/// [`MAX_BRIDGE_CONTAINERS`] (decimal, no leading zeros).
pub(crate) fn validate_endpoint(endpoint: &str) -> Result<(), NetworkError> {
    let Some((task_id, index)) = endpoint.split_once('-') else {
        return validate_task_id(endpoint);
    };
    validate_task_id(task_id)?;
    let ok = index
        .parse::<usize>()
        .is_ok_and(|i| i < MAX_BRIDGE_CONTAINERS && i.to_string() == index);
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidTaskId {
            task_id: endpoint.to_owned(),
            reason: "container index must be a number below 256",
        })
    }
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
            assert!(host_veth_name(&container_endpoint(id, 255)).len() <= MAX_IFNAME_LEN);
        }
    }

    #[test]
    fn container_endpoints_name_their_task_and_index() {
        let e = container_endpoint(TASK_ID, 10);
        assert_eq!(e, format!("{TASK_ID}-10"));
        assert_eq!(endpoint_task_id(&e), TASK_ID);
        assert_eq!(endpoint_task_id(TASK_ID), TASK_ID);
        assert_eq!(netns_name(&e), format!("berth-{TASK_ID}-10"));
        assert_eq!(host_veth_name(&e), "bc01234567890a");
        assert_ne!(
            host_veth_name(&e),
            host_veth_name(&container_endpoint(TASK_ID, 11))
        );
        assert!(validate_endpoint(&e).is_ok());
        assert!(validate_endpoint(TASK_ID).is_ok());
        for bad in ["abc-", "abc-256", "abc-01", "abc-x", "-1", "abc-1-2"] {
            assert!(
                validate_endpoint(bad).is_err(),
                "{bad:?} should be rejected"
            );
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
