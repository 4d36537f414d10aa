//! Adopting what a previous agent run left: each recorded task's containers
//! are looked up in containerd; running ones keep running (their exit
//! waiters and health checks resume), ones that exited meanwhile are
//! reported with their real exit codes, and half-created ones start again.

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::provision::{Networking, Provisioned};
use super::supervisor::{task_dir, Event, Running, StopCause, Supervisor};
use crate::cgroups::CgroupManager;
use crate::engine::Phase;
use crate::model::{
    ContainerDef, ContainerReport, ContainerStatus, NetworkMode, TaskReport, TaskSpec,
};
use crate::network::NetworkSetup;
use crate::runtime::{self, ContainerRuntime, RuntimeStatus};

/// Where a recorded container is, from what containerd says of it and what
/// the agent last reported (`None`: no container record).
pub fn phase_of(
    status: Option<RuntimeStatus>,
    last: Option<&ContainerReport>,
    task_started_at_ms: i64,
) -> Phase {
    let started = task_started_at_ms;
    match status.map(|s| (s.state, s.exit_code)) {
        Some((runtime::ContainerState::Running | runtime::ContainerState::Paused, _)) => {
            Phase::Running {
                started_at_ms: started,
            }
        }
        Some((runtime::ContainerState::Stopped, code)) => Phase::Exited {
            started_at_ms: started,
            exit_code: code.and_then(|c| i32::try_from(c).ok()).unwrap_or(-1),
        },
        // Created but never started, or a record without a task: start it again.
        Some(_) => Phase::Waiting,
        None => match last {
            Some(c) if c.last_status == ContainerStatus::Pending => Phase::Waiting,
            // It ran and is gone (deleted by hand?): it exited; keep the code we knew.
            Some(c) => Phase::Exited {
                started_at_ms: started,
                exit_code: c.exit_code.unwrap_or(-1),
            },
            None => Phase::Waiting,
        },
    }
}

/// Phases of a recorded task's containers, read from the runtime. Containers
/// created but never started are deleted, so they can be created again.
pub async fn adopted_phases<R: ContainerRuntime>(
    runtime: &R,
    spec: &TaskSpec,
    report: &TaskReport,
    now_ms: i64,
) -> HashMap<String, Phase> {
    let started = report
        .started_at_ms
        .or(report.pull_stopped_at_ms)
        .unwrap_or(now_ms);
    let mut phases = HashMap::new();
    for def in &spec.containers {
        let id = spec.container_id(&def.name);
        let status = match runtime.status(&id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(container = %id, error = %e, "could not read container status");
                None
            }
        };
        let last = report.containers.iter().find(|c| c.name == def.name);
        let phase = phase_of(status, last, started);
        if phase == Phase::Waiting && status.is_some() {
            let _ = runtime.delete(&id).await;
        }
        phases.insert(def.name.clone(), phase);
    }
    phases
}

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    /// Picks a task up where the previous agent run left it.
    #[allow(clippy::too_many_lines)] // adopting each container, then the network
    pub(super) async fn reattach(
        &mut self,
        report: &mut TaskReport,
        phases: HashMap<String, Phase>,
        run: &mut Running,
        tx: &mpsc::UnboundedSender<Event>,
    ) -> Result<Provisioned, StopCause> {
        let host = self.host.clone();
        let spec = self.spec.clone();
        // Collected first: a filter closure held across the pull's await
        // would make the task's future not `Send`.
        let waiting: Vec<&ContainerDef> = spec
            .containers
            .iter()
            .filter(|c| phases.get(&c.name) == Some(&Phase::Waiting))
            .collect();
        let images = self.pull_images(report, waiting).await?;
        for def in &spec.containers {
            let phase = phases.get(&def.name).copied().unwrap_or(Phase::Waiting);
            match phase {
                Phase::Running { started_at_ms } => {
                    let token = report
                        .containers
                        .iter()
                        .find(|c| c.name == def.name)
                        .and_then(|c| c.metadata_token.clone());
                    if let Some(token) = token {
                        let cgroup_path = host.cgroups.task_path(&spec.id);
                        host.metadata.adopt(
                            &spec,
                            report,
                            &def.name,
                            &cgroup_path,
                            &token,
                            self.now_ms(),
                        );
                        if spec.network_mode == NetworkMode::Bridge {
                            let i = spec.containers.iter().position(|c| c.name == def.name);
                            let endpoint =
                                i.map(|i| crate::network::container_endpoint(&spec.id, i));
                            if let Some(ip) = endpoint.and_then(|e| host.ip_of(&e)) {
                                host.metadata.set_bridge_address(&spec.id, &def.name, ip);
                            }
                        }
                    }
                    self.watch_container(
                        report,
                        def,
                        &spec.container_id(&def.name),
                        started_at_ms,
                        run,
                        tx,
                    );
                    tracing::info!(task_id = %spec.id, container = %def.name, "adopted running container");
                }
                Phase::Exited { exit_code, .. } => {
                    self.record_exit(report, &def.name, exit_code);
                    tracing::info!(task_id = %spec.id, container = %def.name, exit_code, "container exited while the agent was away");
                }
                Phase::Waiting | Phase::Failed => {}
            }
            run.phases.insert(def.name.clone(), phase);
        }
        self.send(report);
        let netns_path = |endpoint: &str| {
            host.config
                .netns_dir
                .join(crate::network::netns_name(endpoint))
        };
        let mut net = Networking {
            host_network: spec.network_mode == NetworkMode::Host,
            ..Networking::default()
        };
        match spec.network_mode {
            NetworkMode::Awsvpc => {
                net.netns = Some(netns_path(&spec.id));
                net.ipv4 = report.private_ipv4.as_deref().and_then(|s| s.parse().ok());
            }
            NetworkMode::Bridge => {
                for (i, def) in spec.containers.iter().enumerate() {
                    let endpoint = crate::network::container_endpoint(&spec.id, i);
                    if let Some(ip) = host.ip_of(&endpoint) {
                        net.containers
                            .insert(def.name.clone(), (netns_path(&endpoint), ip));
                    }
                }
            }
            NetworkMode::Host | NetworkMode::None => {}
        }
        Ok(Provisioned {
            net,
            task_dir: task_dir(&host, &spec.id),
            images,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps)] // phase_of takes what the runtime returns
    fn status(state: runtime::ContainerState, exit_code: Option<u32>) -> Option<RuntimeStatus> {
        Some(RuntimeStatus {
            state,
            pid: 1,
            exit_code,
        })
    }

    #[test]
    fn phases_from_containerd_and_the_last_report() {
        assert_eq!(
            phase_of(status(runtime::ContainerState::Running, None), None, 5),
            Phase::Running { started_at_ms: 5 }
        );
        assert_eq!(
            phase_of(status(runtime::ContainerState::Stopped, Some(3)), None, 5),
            Phase::Exited {
                started_at_ms: 5,
                exit_code: 3
            }
        );
        assert_eq!(
            phase_of(status(runtime::ContainerState::Created, None), None, 5),
            Phase::Waiting
        );
        let pending = ContainerReport {
            name: "a".into(),
            last_status: ContainerStatus::Pending,
            ..ContainerReport::default()
        };
        assert_eq!(phase_of(None, Some(&pending), 5), Phase::Waiting);
        let ran = ContainerReport {
            last_status: ContainerStatus::Running,
            exit_code: None,
            ..pending.clone()
        };
        assert_eq!(
            phase_of(None, Some(&ran), 5),
            Phase::Exited {
                started_at_ms: 5,
                exit_code: -1
            }
        );
    }
}
