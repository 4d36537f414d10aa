//! The host-side parts every supervisor shares: the runtime, network and
//! cgroup seams, the local state, the clock, the metadata registry, and the
//! books of which task holds which address and host port.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, SystemClock};
use crate::config::AgentConfig;
use crate::local_state::{LocalState, TaskRecord};
use crate::metadata::MetadataRegistry;
use crate::model::{PortMapping, Protocol};
use crate::network::{self, AssignedPort, NetworkSetup, PortError, PortMode, TaskCidr};

/// The host-side parts every supervisor uses.
pub struct Host<R, N, C> {
    pub runtime: R,
    pub network: N,
    pub cgroups: C,
    pub state: LocalState,
    pub config: AgentConfig,
    pub cidr: TaskCidr,
    /// What the task metadata endpoint serves; supervisors keep it current.
    pub metadata: MetadataRegistry,
    /// Where every timestamp the agent reports comes from.
    pub clock: Arc<dyn Clock>,
    /// Addresses held by endpoints (task id or container endpoint -> address).
    addresses: Mutex<HashMap<String, Ipv4Addr>>,
    /// Host ports held by tasks.
    ports: Mutex<PortBook>,
}

/// Which task holds each host port, and where the next dynamic search starts.
#[derive(Default)]
struct PortBook {
    held: HashMap<(Protocol, u16), String>,
    cursor: u16,
}

impl<R, N, C> Host<R, N, C> {
    pub fn new(
        runtime: R,
        network: N,
        cgroups: C,
        state: LocalState,
        config: AgentConfig,
        cidr: TaskCidr,
    ) -> Self {
        let metadata = MetadataRegistry::new(
            std::net::SocketAddrV4::new(cidr.gateway(), crate::metadata::DEFAULT_PORT),
            cidr,
            config.region.clone(),
        );
        Self {
            runtime,
            network,
            cgroups,
            state,
            config,
            cidr,
            metadata,
            clock: Arc::new(SystemClock),
            addresses: Mutex::new(HashMap::new()),
            ports: Mutex::new(PortBook::default()),
        }
    }

    /// Holds `ip` for an endpoint (an address recorded by a previous agent run).
    pub fn hold_ip(&self, task_id: &str, ip: Ipv4Addr) {
        self.addresses
            .lock()
            .unwrap()
            .insert(task_id.to_string(), ip);
    }

    /// The address an endpoint holds.
    pub fn ip_of(&self, endpoint: &str) -> Option<Ipv4Addr> {
        self.addresses.lock().unwrap().get(endpoint).copied()
    }

    /// Serves task metadata from `metadata` (e.g. on another port) instead.
    pub fn with_metadata(mut self, metadata: MetadataRegistry) -> Self {
        self.metadata = metadata;
        self
    }

    /// Tells the time with `clock` instead of the host's (tests).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The lowest free task address, held for the endpoint until its task is
    /// forgotten.
    pub fn allocate_ip(&self, task_id: &str) -> Option<Ipv4Addr> {
        let mut addresses = self.addresses.lock().unwrap();
        if let Some(ip) = addresses.get(task_id) {
            return Some(*ip);
        }
        let used: HashSet<Ipv4Addr> = addresses.values().copied().collect();
        let ip = crate::ipam::allocate(&self.cidr, &used)?;
        addresses.insert(task_id.to_string(), ip);
        Some(ip)
    }

    pub(super) fn record(&self, record: &TaskRecord) {
        if let Err(e) = self.state.put_task(record) {
            tracing::error!(task_id = %record.spec.id, error = %e, "could not record task");
        }
    }

    /// Holds host ports a previous agent run gave the task.
    pub fn hold_ports(&self, task_id: &str, ports: impl IntoIterator<Item = (Protocol, u16)>) {
        let mut book = self.ports.lock().unwrap();
        for p in ports {
            book.held.insert(p, task_id.to_string());
        }
    }

    /// Decides and holds the host ports of a task's `mappings` (with their
    /// container indexes): refused if a static one is reserved, held by
    /// another task, or bound by something on the host.
    pub fn reserve_ports(
        &self,
        task_id: &str,
        mappings: &[(usize, PortMapping)],
        mode: PortMode,
    ) -> Result<Vec<AssignedPort>, PortError>
    where
        N: NetworkSetup,
    {
        let mut book = self.ports.lock().unwrap();
        let reserved = |protocol, port| match protocol {
            Protocol::Tcp => self.config.reserved_tcp_ports.contains(&port),
            Protocol::Udp => self.config.reserved_udp_ports.contains(&port),
        };
        let assigned = network::assign(
            mappings,
            mode,
            self.config.dynamic_host_ports,
            book.cursor,
            |protocol, port| {
                book.held
                    .get(&(protocol, port))
                    .is_some_and(|holder| holder != task_id)
                    || reserved(protocol, port)
                    || !self.network.host_port_free(protocol, port)
            },
        )?;
        for a in &assigned {
            book.held
                .insert((a.protocol, a.host_port), task_id.to_string());
            if self.config.dynamic_host_ports.contains(a.host_port) {
                book.cursor = a.host_port.wrapping_add(1);
            }
        }
        Ok(assigned)
    }

    pub(super) fn forget(&self, task_id: &str) {
        self.addresses
            .lock()
            .unwrap()
            .retain(|endpoint, _| network::endpoint_task_id(endpoint) != task_id);
        self.ports
            .lock()
            .unwrap()
            .held
            .retain(|_, holder| holder != task_id);
        if let Err(e) = self.state.remove_task(task_id) {
            tracing::error!(task_id, error = %e, "could not remove task record");
        }
    }
}
