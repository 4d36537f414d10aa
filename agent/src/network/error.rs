//! `NetworkError`: everything that can go wrong while wiring a task's network, with the task, interface or path it concerns.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::TaskCidr;

// Each variant's doc comment is its message, so it names fields as written.
#[allow(clippy::doc_markdown)]
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// invalid task id {task_id:?}: {reason}
    #[error("invalid task id {task_id:?}: {reason}")]
    InvalidTaskId {
        task_id: String,
        reason: &'static str,
    },

    /// invalid CIDR {cidr:?}: {reason}
    #[error("invalid CIDR {cidr:?}: {reason}")]
    InvalidCidr { cidr: String, reason: &'static str },

    /// invalid network config: {0}
    #[error("invalid network config: {0}")]
    InvalidConfig(String),

    /// address {ip} for task {task_id} is not a task address in {cidr}
    #[error("address {ip} for task {task_id} is not a task address in {cidr}")]
    AddressNotInCidr {
        task_id: String,
        ip: Ipv4Addr,
        cidr: TaskCidr,
    },

    /// bridge {bridge} does not exist (ensure_host was not run?)
    #[error("bridge {bridge} does not exist (ensure_host was not run?)")]
    BridgeMissing { bridge: String },

    /// interface {interface} exists but is not a bridge
    #[error("interface {interface} exists but is not a bridge")]
    NotABridge { interface: String },

    /// netlink {op} on {interface} failed
    #[error("netlink {op} on {interface} failed")]
    Netlink {
        op: &'static str,
        interface: String,
        #[source]
        source: rtnetlink::Error,
    },

    /// opening a netlink socket for {context} failed
    #[error("opening a netlink socket for {context} failed")]
    NetlinkSocket {
        context: String,
        #[source]
        source: io::Error,
    },

    /// preparing network namespace directory {path} failed
    #[error("preparing network namespace directory {path} failed")]
    NetnsDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// {op} network namespace {path} of task {task_id} failed
    #[error("{op} network namespace {path} of task {task_id} failed")]
    Netns {
        op: &'static str,
        task_id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// running `iptables {args}` failed
    #[error("running `iptables {args}` failed")]
    IptablesSpawn {
        args: String,
        #[source]
        source: io::Error,
    },

    /// `iptables {args}` exited with {status}: {stderr}
    #[error("`iptables {args}` exited with {status}: {stderr}")]
    Iptables {
        args: String,
        status: std::process::ExitStatus,
        stderr: String,
    },

    /// writing {path} failed
    #[error("writing {path} failed")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// the thread doing {what} panicked
    #[error("the thread doing {what} panicked")]
    ThreadPanicked { what: String },
}

impl NetworkError {
    pub(crate) fn netlink(
        op: &'static str,
        interface: impl Into<String>,
    ) -> impl FnOnce(rtnetlink::Error) -> Self {
        let interface = interface.into();
        move |source| Self::Netlink {
            op,
            interface,
            source,
        }
    }
}
