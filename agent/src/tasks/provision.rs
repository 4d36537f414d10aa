//! Provisioning a task before any container starts: its record, address,
//! network namespace, `/etc/hosts` and `/etc/resolv.conf`, task cgroup, and
//! every image pulled.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::container_spec;
use super::supervisor::{set_container, task_dir, StopCause, Supervisor};
use crate::cgroups::{CgroupManager, TaskLimits};
use crate::local_state::TaskRecord;
use crate::model::{now_ms, NetworkMode, TaskReport};
use crate::network::NetworkSetup;
use crate::runtime::{ContainerRuntime, Image, RuntimeError};

/// What a provisioned task has on the host.
pub(super) struct Provisioned {
    pub netns: Option<PathBuf>,
    pub ipv4: Option<Ipv4Addr>,
    pub task_dir: PathBuf,
    /// Pulled images by reference.
    pub images: HashMap<String, Image>,
}

fn failed(reason: &str) -> StopCause {
    StopCause {
        code: "TaskFailedToStart",
        reason: format!("TaskFailedToStart: {reason}"),
    }
}

fn user_stopped() -> StopCause {
    // The control plane set the reason when it asked; this one is not reported over it.
    StopCause {
        code: "UserInitiated",
        reason: "Task stopped before it started".into(),
    }
}

fn pull_message(e: &RuntimeError) -> String {
    match e {
        RuntimeError::Pull { message, reference } => format!("pull image {reference}: {message}"),
        other => other.to_string(),
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
        let task_dir = task_dir(&host, &spec.id);
        std::fs::create_dir_all(&task_dir)
            .map_err(|e| failed(&format!("could not create {}: {e}", task_dir.display())))?;

        // Network: address first, recorded before the namespace exists.
        let mut netns = None;
        let mut ipv4 = None;
        if spec.network_mode == NetworkMode::Awsvpc {
            let ip = host
                .allocate_ip(&spec.id)
                .ok_or_else(|| failed("no free address left in the task CIDR"))?;
            host.record(&TaskRecord {
                spec: spec.clone(),
                ipv4: Some(ip),
                last_report: report.clone(),
            });
            let net = host
                .network
                .setup_task(&spec.id, ip)
                .await
                .map_err(|e| failed(&format!("network setup failed: {e}")))?;
            report.private_ipv4 = Some(net.ipv4.to_string());
            report.mac_address = Some(net.mac.clone());
            netns = Some(net.netns_path);
            ipv4 = Some(ip);
        } else {
            host.record(&TaskRecord {
                spec: spec.clone(),
                ipv4: None,
                last_report: report.clone(),
            });
        }
        let hostname = container_spec::hostname(ipv4, &spec.id);
        let write = |name: &str, text: &str| {
            std::fs::write(task_dir.join(name), text)
                .map_err(|e| failed(&format!("could not write {name}: {e}")))
        };
        write("hosts", &container_spec::hosts_file(ipv4, &hostname))?;
        write(
            "resolv.conf",
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

        report.last_status = "PENDING".into();
        report.pull_started_at_ms = Some(now_ms());
        self.send(report);
        let mut images: HashMap<String, Image> = HashMap::new();
        for c in &spec.containers {
            if images.contains_key(&c.image) {
                continue;
            }
            match host.runtime.pull_image(&c.image).await {
                Ok(image) => {
                    images.insert(c.image.clone(), image);
                }
                Err(e) => {
                    let reason = format!("CannotPullContainerError: {}", pull_message(&e));
                    set_container(report, &c.name, |r| r.reason = Some(reason.clone()));
                    return Err(StopCause {
                        code: "TaskFailedToStart",
                        reason,
                    });
                }
            }
        }
        report.pull_stopped_at_ms = Some(now_ms());
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
            netns,
            ipv4,
            task_dir,
            images,
        })
    }
}
