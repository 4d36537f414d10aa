//! Provisioning a task before any container starts: its record, address,
//! network namespace, `/etc/hosts` and `/etc/resolv.conf`, task cgroup, and
//! every image pulled.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::container_spec;
use super::supervisor::{set_container, task_dir, StopCause, Supervisor};
use crate::awslogs::ShipConfig;
use crate::cgroups::{CgroupManager, TaskLimits};
use crate::local_state::TaskRecord;
use crate::model::{
    NetworkBinding, NetworkMode, PortMapping, StopCode, TaskReport, TaskSpec, TaskStatus,
};
use crate::network::{self, NetworkSetup, PortMode, PublishedPort};
use crate::runtime::{ContainerRuntime, Image};

/// A task's network as its containers join it.
#[derive(Debug, Default)]
pub(super) struct Networking {
    /// The task's namespace and address (awsvpc).
    pub netns: Option<PathBuf>,
    pub ipv4: Option<Ipv4Addr>,
    /// Each container's namespace and address, by name (bridge).
    pub containers: HashMap<String, (PathBuf, Ipv4Addr)>,
    /// The containers share the host's namespace (host).
    pub host_network: bool,
}

impl Networking {
    /// Namespace, address and host flag for one container; no namespace
    /// and not host: a fresh namespace with only `lo` (none).
    pub fn of(&self, container: &str) -> (Option<&std::path::Path>, Option<Ipv4Addr>, bool) {
        match self.containers.get(container) {
            Some((path, ip)) => (Some(path.as_path()), Some(*ip), false),
            None => (self.netns.as_deref(), self.ipv4, self.host_network),
        }
    }
}

/// What a provisioned task has on the host.
pub(super) struct Provisioned {
    pub net: Networking,
    pub task_dir: PathBuf,
    /// Pulled images by reference.
    pub images: HashMap<String, Image>,
}

/// A provisioning step failed: the task fails to start, with ECS's prefix.
fn failed(reason: &str) -> StopCause {
    let code = StopCode::TaskFailedToStart;
    StopCause::failed_to_start(format!("{code}: {reason}"))
}

fn user_stopped() -> StopCause {
    // The control plane set the reason when it asked; this one is not reported over it.
    StopCause {
        code: StopCode::UserInitiated,
        reason: "Task stopped before it started".into(),
    }
}

/// The namespaces a task has on the bridge: one per task (awsvpc), one per
/// container (bridge), none (host, none).
pub(super) fn network_endpoints(spec: &TaskSpec) -> Vec<String> {
    match spec.network_mode {
        NetworkMode::Awsvpc => vec![spec.id.clone()],
        NetworkMode::Bridge => (0..spec.containers.len())
            .map(|i| network::container_endpoint(&spec.id, i))
            .collect(),
        NetworkMode::Host | NetworkMode::None => vec![],
    }
}

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    #[allow(clippy::too_many_lines)] // the provisioning steps in order
    pub(super) async fn provision(
        &mut self,
        report: &mut TaskReport,
    ) -> Result<Provisioned, StopCause> {
        let host = self.host.clone();
        let spec = self.spec.clone();
        if let Some(reason) = &spec.secrets_error {
            // Nothing is made on the host for a task whose secrets did not resolve.
            return Err(StopCause::failed_to_start(reason.clone()));
        }
        let task_dir = task_dir(&host, &spec.id);
        std::fs::create_dir_all(&task_dir)
            .map_err(|e| failed(&format!("could not create {}: {e}", task_dir.display())))?;

        let net = self.provision_network(report).await?;
        let write = |path: PathBuf, text: &str| {
            std::fs::write(&path, text)
                .map_err(|e| failed(&format!("could not write {}: {e}", path.display())))
        };
        // Every address is known before any container starts, so each
        // container's /etc/hosts can name its links.
        for def in &spec.containers {
            let (_, own, _) = net.of(&def.name);
            let links: Vec<(Ipv4Addr, &str, &str)> = def
                .options
                .links
                .iter()
                .filter_map(|link| {
                    let (name, alias) = link.split_once(':').unwrap_or((link, link));
                    let (_, ip, _) = net.of(name);
                    ip.map(|ip| (ip, alias, name))
                })
                .collect();
            let text = container_spec::hosts_file(
                own,
                &container_spec::container_hostname(def, own, &spec.id),
                &links,
                &def.options.extra_hosts,
            );
            write(container_spec::hosts_path(&task_dir, &def.name), &text)?;
        }
        // Before any container starts: its log driver journals only if this is there.
        for def in &spec.containers {
            if let Some(settings) = &def.options.awslogs {
                let stream = berth_ecs::awslogs::stream_name(
                    settings.stream_prefix.as_deref(),
                    &def.name,
                    &spec.id,
                    &spec.container_id(&def.name),
                );
                let log = container_spec::log_path(&task_dir, &def.name);
                ShipConfig::new(settings, stream, &spec.arn, &def.name)
                    .write(&log)
                    .map_err(|e| {
                        failed(&format!(
                            "could not write the awslogs settings of {}: {e}",
                            def.name
                        ))
                    })?;
            }
        }
        crate::firelens::provision(&spec, &task_dir, |c| container_spec::log_path(&task_dir, c))
            .map_err(|e| failed(&format!("could not write the FireLens files: {e}")))?;
        write(
            task_dir.join("resolv.conf"),
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        )?;

        for v in spec.volumes.iter().filter(|v| v.host_source_path.is_none()) {
            let dir = container_spec::task_volume_dir(&task_dir, &v.name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| failed(&format!("could not create volume {}: {e}", dir.display())))?;
        }
        host.cgroups
            .create_task(
                &spec.id,
                TaskLimits {
                    cpu: spec.cpu,
                    memory_mib: spec.memory_mib,
                    pids: Some(host.config.task_pids_limit),
                },
            )
            .map_err(|e| failed(&e.to_string()))?;
        if self.stop_requested() {
            return Err(user_stopped());
        }

        report.last_status = TaskStatus::Pending;
        report.pull_started_at_ms = Some(self.now_ms());
        self.send(report);
        let images = self.pull_images(report, &spec.containers).await?;
        report.pull_stopped_at_ms = Some(self.now_ms());
        for c in &mut report.containers {
            let image = spec
                .containers
                .iter()
                .find(|d| d.name == c.name)
                .and_then(|d| images.get(&d.image));
            c.image_digest = image.map(|i| i.manifest_digest.clone());
        }
        if self.stop_requested() {
            return Err(user_stopped());
        }
        Ok(Provisioned {
            net,
            task_dir,
            images,
        })
    }

    /// Addresses first, recorded before any namespace exists; then the
    /// namespaces (one per task in awsvpc mode, one per container in bridge
    /// mode), then the host ports, recorded (in the report) before their
    /// rules exist.
    #[allow(clippy::too_many_lines)] // the network steps in order
    async fn provision_network(&self, report: &mut TaskReport) -> Result<Networking, StopCause> {
        let host = &self.host;
        let spec = &self.spec;
        let mut net = Networking {
            host_network: spec.network_mode == NetworkMode::Host,
            ..Networking::default()
        };
        let endpoints = network_endpoints(spec);
        if endpoints.len() > network::MAX_BRIDGE_CONTAINERS {
            return Err(failed("a bridge-mode task may have at most 256 containers"));
        }
        let mut addresses = Vec::with_capacity(endpoints.len());
        for endpoint in &endpoints {
            let ip = host
                .allocate_ip(endpoint)
                .ok_or_else(|| failed("no free address left in the task CIDR"))?;
            addresses.push((endpoint.clone(), ip));
        }
        let record = |report: &TaskReport| {
            host.record(&TaskRecord {
                spec: spec.clone(),
                ipv4: (spec.network_mode == NetworkMode::Awsvpc)
                    .then(|| addresses.first().map(|(_, ip)| *ip))
                    .flatten(),
                last_report: report.clone(),
                endpoints: if spec.network_mode == NetworkMode::Bridge {
                    addresses.clone()
                } else {
                    vec![]
                },
            });
        };
        record(report);
        for (i, (endpoint, ip)) in addresses.iter().enumerate() {
            let wired = host
                .network
                .setup_task(endpoint, *ip)
                .await
                .map_err(|e| failed(&format!("network setup failed: {e}")))?;
            if spec.network_mode == NetworkMode::Awsvpc {
                report.private_ipv4 = Some(wired.ipv4.to_string());
                report.mac_address = Some(wired.mac.clone());
                net.netns = Some(wired.netns_path);
                net.ipv4 = Some(*ip);
            } else {
                net.containers
                    .insert(spec.containers[i].name.clone(), (wired.netns_path, *ip));
            }
        }

        let mode = match spec.network_mode {
            NetworkMode::Bridge => PortMode::Bridge,
            NetworkMode::Host => PortMode::Host,
            // awsvpc tasks are reached at their own address; none has no ports.
            NetworkMode::Awsvpc | NetworkMode::None => return Ok(net),
        };
        let mappings: Vec<(usize, PortMapping)> = spec
            .containers
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.port_mappings.iter().map(move |m| (i, *m)))
            .collect();
        if mappings.is_empty() {
            return Ok(net);
        }
        let assigned = host
            .reserve_ports(&spec.id, &mappings, mode)
            .map_err(|e| failed(&format!("cannot publish the task's ports: {e}")))?;
        for a in &assigned {
            let name = &spec.containers[a.container].name;
            set_container(report, name, |r| {
                r.network_bindings.push(NetworkBinding {
                    bind_ip: "0.0.0.0".into(),
                    container_port: a.container_port,
                    host_port: a.host_port,
                    protocol: a.protocol,
                });
            });
        }
        record(report);
        if mode == PortMode::Bridge {
            let published: Vec<PublishedPort> = assigned
                .iter()
                .map(|a| PublishedPort {
                    protocol: a.protocol,
                    host_port: a.host_port,
                    container_ip: addresses[a.container].1,
                    container_port: a.container_port,
                })
                .collect();
            host.network
                .publish(&spec.id, &published)
                .await
                .map_err(|e| failed(&format!("cannot publish the task's ports: {e}")))?;
        }
        Ok(net)
    }
}
