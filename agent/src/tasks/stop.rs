//! Stopping a task: its running containers in reverse dependency order
//! (SIGTERM, then SIGKILL once the container's stopTimeout has passed), then
//! everything it made on the host, then its record.

use std::time::Duration;

use tokio::sync::mpsc;

use super::provision::network_endpoints;
use super::supervisor::{task_dir, Event, Supervisor};
use crate::cgroups::CgroupManager;
use crate::engine;
use crate::model::{ContainerStatus, NetworkMode, TaskReport};
use crate::network::NetworkSetup;
use crate::runtime::ContainerRuntime;

const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;
/// How long a container may take to exit after SIGKILL before we give up on it.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// How long the log router's stop waits for its senders' last lines.
const ROUTER_DRAIN: Duration = Duration::from_secs(10);

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    /// Stops running containers in reverse dependency order: SIGTERM, then
    /// SIGKILL once the container's stop timeout has passed.
    pub(super) async fn stop_containers(
        &self,
        report: &mut TaskReport,
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) {
        for name in engine::stop_order(&self.spec.containers) {
            let running = report
                .containers
                .iter()
                .any(|c| c.name == name && c.last_status == ContainerStatus::Running);
            if !running {
                continue;
            }
            let def = self
                .spec
                .containers
                .iter()
                .find(|d| d.name == name)
                .expect("stop order names known containers");
            let id = self.spec.container_id(&name);
            let timeout = def
                .stop_timeout
                .unwrap_or(self.host.config.default_stop_timeout);
            if def.options.firelens_router.is_some() {
                self.wait_for_firelens_senders().await;
            }
            if let Err(e) = self.host.runtime.kill(&id, SIGTERM, false).await {
                tracing::warn!(container = %id, error = %e, "SIGTERM failed");
            }
            if !self.wait_for_exit(report, events, &name, timeout).await {
                tracing::info!(container = %id, timeout_s = timeout.as_secs(), "stop timeout passed, sending SIGKILL");
                if let Err(e) = self.host.runtime.kill(&id, SIGKILL, true).await {
                    tracing::warn!(container = %id, error = %e, "SIGKILL failed");
                }
                if !self.wait_for_exit(report, events, &name, KILL_GRACE).await {
                    tracing::error!(container = %id, "container did not exit after SIGKILL");
                }
            }
            self.send(report);
        }
    }

    /// The log router stops last, and only once its senders have sent their last lines.
    async fn wait_for_firelens_senders(&self) {
        let dir = task_dir(&self.host, &self.spec.id);
        let logs: Vec<_> = self
            .spec
            .containers
            .iter()
            .filter(|c| {
                c.options
                    .firelens_route
                    .as_ref()
                    .is_some_and(|r| !r.is_cloudwatch())
            })
            .map(|c| super::container_spec::log_path(&dir, &c.name))
            .collect();
        if !crate::firelens::forward::drained(&logs, ROUTER_DRAIN).await {
            tracing::warn!(task = %self.spec.id, "FireLens senders still sending after {ROUTER_DRAIN:?}; stopping the router");
        }
    }

    /// Records exits until `name`'s arrives or `timeout` passes; true if it exited.
    async fn wait_for_exit(
        &self,
        report: &mut TaskReport,
        events: &mut mpsc::UnboundedReceiver<Event>,
        name: &str,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(Event::Exited(n, code))) => {
                    self.record_exit(report, &n, code);
                    if n == name {
                        return true;
                    }
                }
                Ok(Some(Event::HealthCheck(..))) => {}
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Removes everything the task made on the host, then its record.
    pub(super) async fn cleanup(&self) {
        let spec = &self.spec;
        let host = &self.host;
        for def in &spec.containers {
            let id = spec.container_id(&def.name);
            if let Err(e) = host.runtime.delete(&id).await {
                tracing::error!(container = %id, error = %e, "could not delete container");
            }
        }
        // Task-scoped volumes go with the task (logs stay for a post-mortem).
        let _ = std::fs::remove_dir_all(task_dir(host, &spec.id).join("volumes"));
        if let Err(e) = host.cgroups.remove_task(&spec.id) {
            tracing::error!(task_id = %spec.id, error = %e, "could not remove task cgroup");
        }
        // Rules first: a DNAT rule must not outlive the address it points at.
        if spec.network_mode == NetworkMode::Bridge {
            if let Err(e) = host.network.unpublish(&spec.id).await {
                tracing::error!(task_id = %spec.id, error = %e, "could not remove published ports");
            }
        }
        for endpoint in network_endpoints(spec) {
            if let Err(e) = host.network.teardown_task(&endpoint).await {
                tracing::error!(task_id = %spec.id, endpoint, error = %e, "could not remove task network");
            }
        }
        host.metadata.remove_task(&spec.id);
        host.forget(&spec.id);
    }
}
