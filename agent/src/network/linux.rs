//! `LinuxNetwork`: the real `NetworkSetup`, putting together the namespace files, rtnetlink requests and iptables rules.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{debug, info, warn};

use super::netlink::{self, Netlink};
use super::{
    host_veth_name, iptables, netns, netns_name, validate_endpoint, validate_task_id,
    NetworkConfig, NetworkError, NetworkSetup, PublishedPort, TaskNetwork,
};
use crate::model::Protocol;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

pub struct LinuxNetwork {
    config: NetworkConfig,
    /// Whether the netns dir is known to be a shared mount point; the lock
    /// also keeps two setups from bind-mounting it twice.
    netns_dir_ready: std::sync::Mutex<bool>,
    /// Serialises `ensure_host`/`remove_host`, whose check-then-add of
    /// iptables rules would otherwise race into duplicates.
    host_lock: tokio::sync::Mutex<()>,
}

impl LinuxNetwork {
    pub fn new(config: NetworkConfig) -> Result<Self, NetworkError> {
        config.validate()?;
        Ok(Self {
            config,
            netns_dir_ready: std::sync::Mutex::new(false),
            host_lock: tokio::sync::Mutex::new(()),
        })
    }

    #[must_use]
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// `<netns_dir>/berth-<task_id>`.
    #[must_use]
    pub fn netns_path(&self, task_id: &str) -> PathBuf {
        self.config.netns_dir.join(netns_name(task_id))
    }

    /// Deletes the iptables rules and the bridge (for `down` scripts and
    /// tests). Task namespaces are left alone: tear those down first.
    pub async fn remove_host(&self) -> Result<(), NetworkError> {
        let _guard = self.host_lock.lock().await;
        for rule in iptables::host_rules(&self.config.bridge, self.config.cidr) {
            rule.remove().await?;
        }
        let nl = Netlink::connect("the host")?;
        nl.delete_link(&self.config.bridge).await?;
        info!(bridge = %self.config.bridge, "removed host network");
        Ok(())
    }

    fn prepare_netns_dir(&self) -> Result<(), NetworkError> {
        let mut ready = self
            .netns_dir_ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*ready {
            let dir = &self.config.netns_dir;
            netns::prepare_dir(dir).map_err(|source| NetworkError::NetnsDir {
                path: dir.clone(),
                source,
            })?;
            *ready = true;
        }
        Ok(())
    }

    async fn create_netns(&self, task_id: &str, path: &Path) -> Result<(), NetworkError> {
        let thread_path = path.to_owned();
        netns::on_fresh_thread("berth-netns-add", move || {
            netns::create_on_this_thread(&thread_path)
        })
        .await
        .ok_or_else(|| NetworkError::ThreadPanicked {
            what: format!("creating the netns of task {task_id}"),
        })?
        .map_err(|source| NetworkError::Netns {
            op: "creating",
            task_id: task_id.to_owned(),
            path: path.to_owned(),
            source,
        })
    }

    async fn wire_task(
        &self,
        task_id: &str,
        ip: Ipv4Addr,
        netns_path: &Path,
        host_veth: &str,
    ) -> Result<String, NetworkError> {
        let netns_file = File::open(netns_path).map_err(|source| NetworkError::Netns {
            op: "opening",
            task_id: task_id.to_owned(),
            path: netns_path.to_owned(),
            source,
        })?;
        let host = Netlink::connect("the host")?;
        let bridge = &self.config.bridge;
        let bridge_index = host
            .link(bridge)
            .await?
            .ok_or_else(|| NetworkError::BridgeMissing {
                bridge: bridge.clone(),
            })?
            .header
            .index;
        host.add_task_veth(
            host_veth,
            bridge_index,
            netns_file.as_fd(),
            netlink::mac_for(ip),
            self.config.mtu,
        )
        .await?;
        drop(host);

        // The inside must be configured over a socket opened inside the
        // namespace, so on a thread that enters it and then ends.
        let prefix_len = self.config.cidr.prefix_len;
        let gateway = self.config.cidr.gateway();
        let context = format!("the netns of task {task_id}");
        let thread_context = context.clone();
        netns::on_fresh_thread("berth-netns-cfg", move || {
            netns::enter(&netns_file).map_err(|source| NetworkError::NetlinkSocket {
                context: thread_context.clone(),
                source,
            })?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| NetworkError::NetlinkSocket {
                    context: thread_context.clone(),
                    source,
                })?;
            runtime.block_on(async {
                let inside = Netlink::connect(&thread_context)?;
                inside.configure_task_side(ip, prefix_len, gateway).await
            })
        })
        .await
        .ok_or(NetworkError::ThreadPanicked {
            what: format!("configuring {context}"),
        })?
    }
}

impl NetworkSetup for LinuxNetwork {
    async fn ensure_host(&self) -> Result<(), NetworkError> {
        let _guard = self.host_lock.lock().await;
        let config = &self.config;
        let gateway = config.cidr.gateway();
        let nl = Netlink::connect("the host")?;
        let index = nl
            .ensure_bridge(&config.bridge, netlink::mac_for(gateway), config.mtu)
            .await?;
        nl.ensure_address(index, &config.bridge, gateway, config.cidr.prefix_len)
            .await?;
        drop(nl);
        for rule in iptables::host_rules(&config.bridge, config.cidr) {
            rule.ensure().await?;
        }
        // So host clients can use 127.0.0.1:<hostPort> (see the OUTPUT DNAT
        // rules); scoped to this bridge, and guarded by an INPUT rule.
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", config.bridge),
            "1",
        )?;
        if config.enable_ip_forward {
            enable_ip_forward()?;
        }
        self.prepare_netns_dir()?;
        info!(bridge = %config.bridge, cidr = %config.cidr, "host network ready");
        Ok(())
    }

    async fn setup_task(&self, task_id: &str, ip: Ipv4Addr) -> Result<TaskNetwork, NetworkError> {
        let started = Instant::now();
        validate_endpoint(task_id)?;
        let cidr = self.config.cidr;
        if !cidr.is_task_address(ip) {
            return Err(NetworkError::AddressNotInCidr {
                task_id: task_id.to_owned(),
                ip,
                cidr,
            });
        }
        self.prepare_netns_dir()?;
        let netns_path = self.netns_path(task_id);
        let host_veth = host_veth_name(task_id);
        if netns_path.exists()
            || Netlink::connect("the host")?
                .link(&host_veth)
                .await?
                .is_some()
        {
            warn!(task_id, "replacing leftover network of the task");
            self.teardown_task(task_id).await?;
        }

        self.create_netns(task_id, &netns_path).await?;
        let mac = match self.wire_task(task_id, ip, &netns_path, &host_veth).await {
            Ok(mac) => mac,
            Err(e) => {
                if let Err(cleanup) = self.teardown_task(task_id).await {
                    warn!(task_id, error = %cleanup, "cleanup after failed network setup failed");
                }
                return Err(e);
            }
        };
        debug!(task_id, %ip, elapsed = ?started.elapsed(), "task network set up");
        Ok(TaskNetwork {
            netns_path,
            ipv4: ip,
            prefix_len: cidr.prefix_len,
            gateway: cidr.gateway(),
            mac,
            host_veth,
        })
    }

    async fn teardown_task(&self, task_id: &str) -> Result<(), NetworkError> {
        let started = Instant::now();
        validate_endpoint(task_id)?;
        // Deleting the host end removes the pair at once; leaving it to the
        // namespace's destruction would happen later, in the background.
        Netlink::connect("the host")?
            .delete_link(&host_veth_name(task_id))
            .await?;
        let path = self.netns_path(task_id);
        netns::remove(&path).map_err(|source| NetworkError::Netns {
            op: "removing",
            task_id: task_id.to_owned(),
            path,
            source,
        })?;
        debug!(task_id, elapsed = ?started.elapsed(), "task network torn down");
        Ok(())
    }

    async fn list_task_netns(&self) -> Result<Vec<String>, NetworkError> {
        let dir = &self.config.netns_dir;
        netns::list(dir).map_err(|source| NetworkError::NetnsDir {
            path: dir.clone(),
            source,
        })
    }

    async fn owns_endpoint(&self, endpoint: &str) -> Result<bool, NetworkError> {
        validate_endpoint(endpoint)?;
        let nl = Netlink::connect("the host")?;
        let Some(bridge) = nl.link(&self.config.bridge).await? else {
            return Ok(false);
        };
        Ok(nl
            .link(&host_veth_name(endpoint))
            .await?
            .is_some_and(|veth| netlink::controller(&veth) == Some(bridge.header.index)))
    }

    async fn publish(&self, task_id: &str, ports: &[PublishedPort]) -> Result<(), NetworkError> {
        validate_task_id(task_id)?;
        for rule in iptables::publish_rules(&self.config.bridge, task_id, ports) {
            if let Err(e) = rule.ensure().await {
                if let Err(cleanup) = self.unpublish(task_id).await {
                    warn!(task_id, error = %cleanup, "removing half-published ports failed");
                }
                return Err(e);
            }
        }
        debug!(task_id, ports = ports.len(), "ports published");
        Ok(())
    }

    async fn unpublish(&self, task_id: &str) -> Result<(), NetworkError> {
        validate_task_id(task_id)?;
        for (task, rule) in iptables::task_rules("nat", &self.config.bridge).await? {
            if task == task_id {
                rule.remove().await?;
            }
        }
        Ok(())
    }

    async fn list_published(&self) -> Result<Vec<String>, NetworkError> {
        let mut ids: Vec<String> = iptables::task_rules("nat", &self.config.bridge)
            .await?
            .into_iter()
            .map(|(task, _)| task)
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn host_port_free(&self, protocol: Protocol, port: u16) -> bool {
        let any = std::net::Ipv4Addr::UNSPECIFIED;
        match protocol {
            Protocol::Tcp => std::net::TcpListener::bind((any, port)).is_ok(),
            Protocol::Udp => std::net::UdpSocket::bind((any, port)).is_ok(),
        }
    }
}

fn write_sysctl(path: &str, value: &str) -> Result<(), NetworkError> {
    std::fs::write(path, value).map_err(|source| NetworkError::Sysctl {
        path: path.into(),
        source,
    })
}

fn enable_ip_forward() -> Result<(), NetworkError> {
    let sysctl_error = |source| NetworkError::Sysctl {
        path: IP_FORWARD.into(),
        source,
    };
    if std::fs::read_to_string(IP_FORWARD)
        .map_err(sysctl_error)?
        .trim()
        != "1"
    {
        std::fs::write(IP_FORWARD, "1").map_err(sysctl_error)?;
        info!("enabled net.ipv4.ip_forward");
    }
    Ok(())
}
