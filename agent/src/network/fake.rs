//! `RecordingNetwork`: a `NetworkSetup` that touches nothing and records each call, for tests of the code that drives task networking.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    host_veth_name, netns_name, NetworkConfig, NetworkError, NetworkSetup, PublishedPort, TaskCidr,
    TaskNetwork, DEFAULT_NETNS_DIR,
};
use crate::model::Protocol;

/// Records calls as `ensure_host`, `setup_task <endpoint> <ip>`,
/// `teardown_task <endpoint>`, `list_task_netns`, `owns_endpoint <endpoint>`,
/// `publish <task id> <proto>:<host port>-><ip>:<port>,...`,
/// `unpublish <task id>` and `list_published`.
#[derive(Debug)]
pub struct RecordingNetwork {
    pub calls: Mutex<Vec<String>>,
    /// Task ids that have a namespace, as `list_task_netns` reports them.
    /// Seed it to simulate leftovers from an earlier agent run.
    pub netns: Mutex<BTreeSet<String>>,
    /// When set, `setup_task` records the call and then fails.
    pub fail_setup: AtomicBool,
    /// When set, `publish` records the call and then fails.
    pub fail_publish: AtomicBool,
    /// Published ports per task id; seed it to simulate leftover rules.
    pub published: Mutex<BTreeMap<String, Vec<PublishedPort>>>,
    /// Host ports something outside Berth listens on.
    pub busy_ports: Mutex<BTreeSet<(Protocol, u16)>>,
    pub cidr: TaskCidr,
}

impl RecordingNetwork {
    #[must_use]
    pub fn new(cidr: TaskCidr) -> Self {
        Self {
            calls: Mutex::default(),
            netns: Mutex::default(),
            fail_setup: AtomicBool::new(false),
            fail_publish: AtomicBool::new(false),
            published: Mutex::default(),
            busy_ports: Mutex::default(),
            cidr,
        }
    }

    /// A copy of the calls so far.
    #[must_use]
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    fn record(&self, call: String) {
        lock(&self.calls).push(call);
    }
}

impl Default for RecordingNetwork {
    fn default() -> Self {
        Self::new(NetworkConfig::default().cidr)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NetworkSetup for RecordingNetwork {
    async fn ensure_host(&self) -> Result<(), NetworkError> {
        self.record("ensure_host".to_owned());
        Ok(())
    }

    async fn setup_task(&self, task_id: &str, ip: Ipv4Addr) -> Result<TaskNetwork, NetworkError> {
        self.record(format!("setup_task {task_id} {ip}"));
        if self.fail_setup.load(Ordering::SeqCst) {
            return Err(NetworkError::BridgeMissing {
                bridge: "recording".to_owned(),
            });
        }
        lock(&self.netns).insert(task_id.to_owned());
        let [a, b, c, d] = ip.octets();
        Ok(TaskNetwork {
            netns_path: Path::new(DEFAULT_NETNS_DIR).join(netns_name(task_id)),
            ipv4: ip,
            prefix_len: self.cidr.prefix_len,
            gateway: self.cidr.gateway(),
            mac: format!("02:be:{a:02x}:{b:02x}:{c:02x}:{d:02x}"),
            host_veth: host_veth_name(task_id),
        })
    }

    async fn teardown_task(&self, task_id: &str) -> Result<(), NetworkError> {
        self.record(format!("teardown_task {task_id}"));
        lock(&self.netns).remove(task_id);
        Ok(())
    }

    async fn list_task_netns(&self) -> Result<Vec<String>, NetworkError> {
        self.record("list_task_netns".to_owned());
        Ok(lock(&self.netns).iter().cloned().collect())
    }

    async fn owns_endpoint(&self, endpoint: &str) -> Result<bool, NetworkError> {
        self.record(format!("owns_endpoint {endpoint}"));
        Ok(lock(&self.netns).contains(endpoint))
    }

    async fn publish(&self, task_id: &str, ports: &[PublishedPort]) -> Result<(), NetworkError> {
        let list: Vec<String> = ports
            .iter()
            .map(|p| {
                format!(
                    "{}:{}->{}:{}",
                    p.protocol.as_str(),
                    p.host_port,
                    p.container_ip,
                    p.container_port
                )
            })
            .collect();
        self.record(format!("publish {task_id} {}", list.join(",")));
        if self.fail_publish.load(Ordering::SeqCst) {
            return Err(NetworkError::InvalidConfig(
                "recording: publish fails".into(),
            ));
        }
        lock(&self.published).insert(task_id.to_owned(), ports.to_vec());
        Ok(())
    }

    async fn unpublish(&self, task_id: &str) -> Result<(), NetworkError> {
        self.record(format!("unpublish {task_id}"));
        lock(&self.published).remove(task_id);
        Ok(())
    }

    async fn list_published(&self) -> Result<Vec<String>, NetworkError> {
        self.record("list_published".to_owned());
        Ok(lock(&self.published).keys().cloned().collect())
    }

    fn host_port_free(&self, protocol: Protocol, port: u16) -> bool {
        !lock(&self.busy_ports).contains(&(protocol, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_calls_and_tracks_namespaces() {
        let net = RecordingNetwork::default();
        net.ensure_host().await.unwrap();
        let ip = Ipv4Addr::new(10, 131, 0, 5);
        let task = net.setup_task("abc", ip).await.unwrap();
        assert_eq!(task.ipv4, ip);
        assert_eq!(task.gateway, Ipv4Addr::new(10, 131, 0, 1));
        assert_eq!(task.host_veth, "bvabc");
        assert_eq!(net.list_task_netns().await.unwrap(), ["abc"]);
        net.teardown_task("abc").await.unwrap();
        assert!(net.list_task_netns().await.unwrap().is_empty());
        assert_eq!(
            net.calls(),
            [
                "ensure_host",
                "setup_task abc 10.131.0.5",
                "list_task_netns",
                "teardown_task abc",
                "list_task_netns",
            ]
        );
    }

    #[tokio::test]
    async fn can_be_told_to_fail_setup() {
        let net = RecordingNetwork::default();
        net.fail_setup.store(true, Ordering::SeqCst);
        assert!(net
            .setup_task("abc", Ipv4Addr::new(10, 131, 0, 5))
            .await
            .is_err());
        assert_eq!(net.calls(), ["setup_task abc 10.131.0.5"]);
        assert!(net.list_task_netns().await.unwrap().is_empty());
    }
}
