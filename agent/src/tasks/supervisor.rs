//! One task's life on this host: provision (network, cgroup, images),
//! start containers, watch them, stop them (SIGTERM, then SIGKILL after the
//! stop timeout), clean up everything, and report every transition.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::container_spec::{self, TaskContext};
use super::Host;
use crate::cgroups::{CgroupManager, TaskLimits};
use crate::local_state::TaskRecord;
use crate::model::{now_ms, ContainerReport, DesiredStatus, NetworkMode, TaskReport, TaskSpec};
use crate::network::NetworkSetup;
use crate::runtime::{ContainerRuntime, RuntimeError};

const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;

/// How the task ended, when the agent decided it.
struct StopCause {
    code: &'static str,
    reason: String,
}

/// A container exit: (container name, exit code).
type Exit = (String, i32);

pub(super) struct Supervisor<R, N, C> {
    pub host: Arc<Host<R, N, C>>,
    pub spec: TaskSpec,
    pub desired: watch::Receiver<DesiredStatus>,
    pub report: Box<dyn Fn(TaskReport) + Send + Sync>,
}

/// Where container waiters send exits, and where the supervisor reads them.
struct Exits {
    tx: mpsc::UnboundedSender<Exit>,
    rx: mpsc::UnboundedReceiver<Exit>,
}

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    fn stop_requested(&self) -> bool {
        *self.desired.borrow() == DesiredStatus::Stopped
    }

    fn send(&self, r: &TaskReport) {
        (self.report)(r.clone());
    }

    pub async fn run(mut self, mut report: TaskReport) {
        let task_id = self.spec.id.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut exits = Exits { tx, rx };
        let cause = match self.start(&mut report, &exits.tx).await {
            Ok(()) => self.watch(&mut report, &mut exits.rx).await,
            Err(cause) => Some(cause),
        };
        if let Some(cause) = cause {
            report.stop_code = Some(cause.code.to_string());
            report.stopped_reason = Some(cause.reason);
        }
        report.last_status = "STOPPING".into();
        self.send(&report);
        drop(exits.tx);
        self.stop_containers(&mut report, &mut exits.rx).await;
        report.last_status = "DEPROVISIONING".into();
        report.execution_stopped_at_ms = Some(now_ms());
        self.send(&report);
        self.cleanup().await;
        report.last_status = "STOPPED".into();
        for c in &mut report.containers {
            c.last_status = "STOPPED".into();
        }
        self.send(&report);
        tracing::info!(task_id, stop_code = ?report.stop_code, "task stopped");
    }

    /// Provisions and starts; each started container's exit goes to `exit_tx`.
    #[allow(clippy::too_many_lines)] // one ordered sequence of start steps; split, the order is harder to see
    async fn start(
        &mut self,
        report: &mut TaskReport,
        exit_tx: &mpsc::UnboundedSender<Exit>,
    ) -> Result<(), StopCause> {
        let host = self.host.clone();
        let spec = self.spec.clone();
        let task_dir = host.config.log_dir(&spec.id);
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

        host.cgroups
            .create_task(
                &spec.id,
                TaskLimits {
                    cpu: spec.cpu,
                    memory_mib: spec.memory_mib,
                },
            )
            .map_err(|e| failed(&e.to_string()))?;
        if self.stop_requested() {
            return Err(user_stopped());
        }

        // Images.
        report.last_status = "PENDING".into();
        report.pull_started_at_ms = Some(now_ms());
        self.send(report);
        let mut images = HashMap::new();
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
            c.image_digest = images
                .get(
                    &spec
                        .containers
                        .iter()
                        .find(|d| d.name == c.name)
                        .map(|d| d.image.clone())
                        .unwrap_or_default(),
                )
                .map(|i| i.manifest_digest.clone());
        }
        if self.stop_requested() {
            return Err(user_stopped());
        }

        // Containers, in definition order.
        let cgroup_path = host.cgroups.task_path(&spec.id);
        let ctx = TaskContext {
            spec: &spec,
            region: &host.config.region,
            netns_path: netns.as_deref(),
            ipv4,
            cgroup_path: &cgroup_path,
            task_dir: &task_dir,
        };
        for def in &spec.containers {
            let cs = container_spec::container_spec(&ctx, def, &images[&def.image]);
            let started = async {
                host.runtime.create_container(&cs).await?;
                host.runtime.start(&cs.id).await
            }
            .await;
            if let Err(e) = started {
                let reason = format!("CannotStartContainerError: {}", start_message(&e));
                set_container(report, &def.name, |r| {
                    r.reason = Some(reason.clone());
                    r.last_status = "STOPPED".into();
                });
                return Err(StopCause {
                    code: "TaskFailedToStart",
                    reason,
                });
            }
            set_container(report, &def.name, |r| {
                r.last_status = "RUNNING".into();
                r.runtime_id = Some(cs.id.clone());
            });
            let rt = host.clone();
            let (id, name, tx) = (cs.id.clone(), def.name.clone(), exit_tx.clone());
            tokio::spawn(async move {
                let code = match rt.runtime.wait(&id).await {
                    Ok(code) => i32::try_from(code).unwrap_or(-1),
                    Err(e) => {
                        tracing::error!(container = %id, error = %e, "waiting for container failed");
                        -1
                    }
                };
                let _ = tx.send((name, code));
            });
        }
        report.last_status = "RUNNING".into();
        report.started_at_ms = Some(now_ms());
        self.send(report);
        Ok(())
    }

    /// Watches a running task until it must stop. Returns the agent's own
    /// cause, or None when the control plane asked.
    async fn watch(
        &mut self,
        report: &mut TaskReport,
        exits: &mut mpsc::UnboundedReceiver<Exit>,
    ) -> Option<StopCause> {
        loop {
            if self.stop_requested() {
                return None;
            }
            tokio::select! {
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        // The manager is gone (agent shutting down): leave the task running.
                        std::future::pending::<()>().await;
                    }
                }
                exit = exits.recv() => {
                    let Some((name, code)) = exit else { continue };
                    set_container(report, &name, |r| {
                        r.last_status = "STOPPED".into();
                        r.exit_code = Some(code);
                    });
                    self.send(report);
                    let essential = self.spec.containers.iter().any(|c| c.name == name && c.essential);
                    let all_done = report.containers.iter().all(|c| c.last_status == "STOPPED");
                    if essential || all_done {
                        return Some(StopCause {
                            code: "EssentialContainerExited",
                            reason: "Essential container in task exited".into(),
                        });
                    }
                }
            }
        }
    }
}

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    /// Stops running containers in reverse definition order: SIGTERM, then
    /// SIGKILL once the container's stop timeout has passed.
    async fn stop_containers(
        &self,
        report: &mut TaskReport,
        exits: &mut mpsc::UnboundedReceiver<Exit>,
    ) {
        for def in self.spec.containers.iter().rev() {
            let running = report
                .containers
                .iter()
                .any(|c| c.name == def.name && c.last_status == "RUNNING");
            if !running {
                continue;
            }
            let id = self.spec.container_id(&def.name);
            let timeout = stop_timeout(def.stop_timeout, self.host.config.default_stop_timeout);
            if let Err(e) = self.host.runtime.kill(&id, SIGTERM, false).await {
                tracing::warn!(container = %id, error = %e, "SIGTERM failed");
            }
            if !wait_for_exit(report, exits, &def.name, timeout).await {
                tracing::info!(container = %id, timeout_s = timeout.as_secs(), "stop timeout passed, sending SIGKILL");
                if let Err(e) = self.host.runtime.kill(&id, SIGKILL, true).await {
                    tracing::warn!(container = %id, error = %e, "SIGKILL failed");
                }
                if !wait_for_exit(report, exits, &def.name, Duration::from_secs(10)).await {
                    tracing::error!(container = %id, "container did not exit after SIGKILL");
                }
            }
            self.send(report);
        }
    }

    /// Removes everything the task made on the host, then its record.
    async fn cleanup(&self) {
        let spec = &self.spec;
        let host = &self.host;
        for def in &spec.containers {
            let id = spec.container_id(&def.name);
            if let Err(e) = host.runtime.delete(&id).await {
                tracing::error!(container = %id, error = %e, "could not delete container");
            }
        }
        if let Err(e) = host.cgroups.remove_task(&spec.id) {
            tracing::error!(task_id = %spec.id, error = %e, "could not remove task cgroup");
        }
        if spec.network_mode == NetworkMode::Awsvpc {
            if let Err(e) = host.network.teardown_task(&spec.id).await {
                tracing::error!(task_id = %spec.id, error = %e, "could not remove task network");
            }
        }
        host.forget(&spec.id);
    }
}

/// Records exits until `name`'s arrives or `timeout` passes; true if it exited.
async fn wait_for_exit(
    report: &mut TaskReport,
    exits: &mut mpsc::UnboundedReceiver<Exit>,
    name: &str,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, exits.recv()).await {
            Ok(Some((n, code))) => {
                set_container(report, &n, |r| {
                    r.last_status = "STOPPED".into();
                    r.exit_code = Some(code);
                });
                if n == name {
                    return true;
                }
            }
            Ok(None) | Err(_) => return false,
        }
    }
}

fn set_container(report: &mut TaskReport, name: &str, f: impl FnOnce(&mut ContainerReport)) {
    if let Some(c) = report.containers.iter_mut().find(|c| c.name == name) {
        f(c);
    }
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
        RuntimeError::Pull {
            message, reference, ..
        } => format!("pull image {reference}: {message}"),
        other => other.to_string(),
    }
}

fn start_message(e: &RuntimeError) -> String {
    match e {
        RuntimeError::Start { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// How long a container gets between SIGTERM and SIGKILL.
pub(super) fn stop_timeout(def: Option<Duration>, default: Duration) -> Duration {
    def.unwrap_or(default)
}
