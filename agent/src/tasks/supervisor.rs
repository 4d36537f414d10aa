//! One task's life on this host: provision (network, cgroup, images), start
//! containers as the engine allows, watch exits and health, stop containers
//! in reverse dependency order (SIGTERM, then SIGKILL after each one's stop
//! timeout), clean up everything, and report every transition.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::container_spec::{self, TaskContext};
use super::provision::Provisioned;
use super::Host;
use crate::cgroups::CgroupManager;
use crate::engine::{self, Action, ContainerState, Health, HealthTracker, Phase};
use crate::model::{
    now_ms, ContainerDef, ContainerReport, DesiredStatus, NetworkMode, TaskReport, TaskSpec,
};
use crate::network::NetworkSetup;
use crate::runtime::{ContainerRuntime, ExecOutcome, RuntimeError};

const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;
pub(super) const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// How the task ended, when the agent decided it.
pub(super) struct StopCause {
    pub code: &'static str,
    pub reason: String,
}

/// What happens to a task's containers while it runs.
#[derive(Debug)]
pub(super) enum Event {
    Exited(String, i32),
    HealthCheck(String, bool),
}

pub(super) struct Supervisor<R, N, C> {
    pub host: Arc<Host<R, N, C>>,
    pub spec: TaskSpec,
    pub desired: watch::Receiver<DesiredStatus>,
    pub report: Box<dyn Fn(TaskReport) + Send + Sync>,
}

/// The running task's bookkeeping.
pub(super) struct Running {
    pub phases: HashMap<String, Phase>,
    pub health: HashMap<String, HealthTracker>,
    pub checkers: Vec<JoinHandle<()>>,
}

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    pub(super) fn stop_requested(&self) -> bool {
        *self.desired.borrow() == DesiredStatus::Stopped
    }

    pub(super) fn send(&self, r: &TaskReport) {
        self.host.metadata.sync(&self.spec, r, now_ms());
        (self.report)(r.clone());
    }

    /// Runs the task; `adopted` holds the phases of containers a previous
    /// agent run left (None for a new task).
    pub async fn run(mut self, mut report: TaskReport, adopted: Option<HashMap<String, Phase>>) {
        let task_id = self.spec.id.clone();
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut running = Running {
            phases: HashMap::new(),
            health: HashMap::new(),
            checkers: Vec::new(),
        };
        let provisioned = match adopted {
            Some(phases) if phases.values().any(|p| *p != Phase::Waiting) => {
                self.reattach(&mut report, phases, &mut running, &tx).await
            }
            _ => self.provision(&mut report).await,
        };
        let cause = match provisioned {
            Ok(p) => {
                self.drive(&mut report, &p, &mut running, &tx, &mut events)
                    .await
            }
            Err(cause) => Some(cause),
        };
        for c in running.checkers.drain(..) {
            c.abort();
        }
        if let Some(cause) = cause {
            report.stop_code = Some(cause.code.to_string());
            report.stopped_reason = Some(cause.reason);
        }
        report.last_status = "STOPPING".into();
        self.send(&report);
        drop(tx);
        self.stop_containers(&mut report, &mut events).await;
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

    /// Runs the engine until the task must stop. Returns the agent's own
    /// cause, or None when the control plane asked.
    async fn drive(
        &mut self,
        report: &mut TaskReport,
        p: &Provisioned,
        run: &mut Running,
        tx: &mpsc::UnboundedSender<Event>,
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) -> Option<StopCause> {
        let spec = self.spec.clone();
        for d in &spec.containers {
            run.phases.entry(d.name.clone()).or_insert(Phase::Waiting);
        }
        let mut running_reported = report.last_status == "RUNNING";
        loop {
            if self.stop_requested() {
                return None;
            }
            let states: Vec<ContainerState<'_>> = spec
                .containers
                .iter()
                .map(|d| ContainerState {
                    def: d,
                    phase: run.phases[&d.name],
                    health: run.health.get(&d.name).map(HealthTracker::status),
                })
                .collect();
            let actions = engine::next_actions(&states, now_ms());
            let all_started = engine::all_started(&states);
            let waiting = states.iter().any(|s| s.phase == Phase::Waiting);
            drop(states);
            let mut started_any = false;
            for action in actions {
                match action {
                    Action::StopTask { stop_code, reason } => {
                        return Some(StopCause {
                            code: stop_code,
                            reason,
                        })
                    }
                    Action::Start(name) => {
                        let def = spec
                            .containers
                            .iter()
                            .find(|d| d.name == name)
                            .expect("engine names a known container");
                        if let Err(cause) = self.start_container(report, p, def, run, tx).await {
                            run.phases.insert(name, Phase::Failed);
                            return Some(cause);
                        }
                        started_any = true;
                    }
                }
            }
            if started_any {
                self.send(report);
                continue; // a start may satisfy another container's START condition
            }
            if all_started && !running_reported {
                running_reported = true;
                report.last_status = "RUNNING".into();
                report.started_at_ms = Some(now_ms());
                self.send(report);
            }
            tokio::select! {
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        // The manager is gone (agent shutting down): leave the task running.
                        std::future::pending::<()>().await;
                    }
                }
                ev = events.recv() => match ev {
                    Some(Event::Exited(name, code)) => self.on_exit(report, run, &name, code),
                    Some(Event::HealthCheck(name, passed)) => self.on_health(report, run, &name, passed),
                    None => {}
                },
                // Dependencies with a startTimeout are re-evaluated as time passes.
                () = tokio::time::sleep(Duration::from_millis(500)), if waiting => {}
            }
        }
    }

    async fn start_container(
        &self,
        report: &mut TaskReport,
        p: &Provisioned,
        def: &ContainerDef,
        run: &mut Running,
        tx: &mpsc::UnboundedSender<Event>,
    ) -> Result<(), StopCause> {
        let host = &self.host;
        let cgroup_path = host.cgroups.task_path(&self.spec.id);
        let (netns_path, ipv4, host_network) = p.net.of(&def.name);
        let ctx = TaskContext {
            spec: &self.spec,
            region: &host.config.region,
            netns_path,
            ipv4,
            host_network,
            cgroup_path: &cgroup_path,
            task_dir: &p.task_dir,
            init_binary: host.config.init_binary.as_deref(),
        };
        let metadata_uri =
            host.metadata
                .container_uri(&self.spec, report, &def.name, &cgroup_path, now_ms());
        if let (NetworkMode::Bridge, Some(ip)) = (self.spec.network_mode, ipv4) {
            host.metadata
                .set_bridge_address(&self.spec.id, &def.name, ip);
        }
        let token = metadata_uri.rsplit('/').next().map(str::to_owned);
        set_container(report, &def.name, |r| r.metadata_token = token);
        if def.options.privileged && !host.config.allow_privileged {
            return Err(Self::start_failed(
                report,
                &def.name,
                "privileged containers are not allowed on this host (start the agent with --allow-privileged)",
            ));
        }
        if def.options.init_process_enabled && host.config.init_binary.is_none() {
            return Err(Self::start_failed(
                report,
                &def.name,
                "initProcessEnabled needs an init binary on the host (install tini)",
            ));
        }
        // environmentFiles: read now; the definition's own environment wins over them.
        let mut def = def.clone();
        let mut from_files = Vec::new();
        for f in &def.options.environment_files {
            match std::fs::read_to_string(f) {
                Ok(text) => from_files.extend(env_file_entries(&text)),
                Err(e) => {
                    return Err(Self::start_failed(
                        report,
                        &def.name,
                        &format!("environment file {}: {e}", f.display()),
                    ));
                }
            }
        }
        from_files.append(&mut def.environment);
        def.environment = from_files;
        let def = &def;
        let cs = container_spec::container_spec(&ctx, def, &p.images[&def.image], &metadata_uri);
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
        let started_at = now_ms();
        run.phases.insert(
            def.name.clone(),
            Phase::Running {
                started_at_ms: started_at,
            },
        );
        set_container(report, &def.name, |r| {
            r.last_status = "RUNNING".into();
            r.runtime_id = Some(cs.id.clone());
        });
        self.watch_container(report, def, &cs.id, started_at, run, tx);
        tracing::info!(task_id = %self.spec.id, container = %def.name, "container started");
        Ok(())
    }

    /// Spawns the exit waiter and, with a health check, the checker of a
    /// running container (started now, or adopted after an agent restart).
    pub(super) fn watch_container(
        &self,
        report: &mut TaskReport,
        def: &ContainerDef,
        id: &str,
        started_at: i64,
        run: &mut Running,
        tx: &mpsc::UnboundedSender<Event>,
    ) {
        let host = &self.host;
        // The exit waiter.
        let (rt, id_owned, name, etx) =
            (host.clone(), id.to_string(), def.name.clone(), tx.clone());
        tokio::spawn(async move {
            let id = id_owned;
            let code = match rt.runtime.wait(&id).await {
                Ok(code) => i32::try_from(code).unwrap_or(-1),
                Err(e) => {
                    tracing::error!(container = %id, error = %e, "waiting for container failed");
                    -1
                }
            };
            let _ = etx.send(Event::Exited(name, code));
        });
        // The health checker: one exec every interval, bounded by its timeout.
        if let Some(hc) = def.health_check.clone() {
            run.health.insert(
                def.name.clone(),
                HealthTracker::new(hc.retries, hc.start_period, started_at),
            );
            set_container(report, &def.name, |r| {
                r.health_status = Some(Health::Unknown.as_str().into());
            });
            let (rt, id, name, htx) = (host.clone(), id.to_string(), def.name.clone(), tx.clone());
            run.checkers.push(tokio::spawn(async move {
                for n in 1u64.. {
                    tokio::time::sleep(hc.interval).await;
                    let outcome = rt
                        .runtime
                        .exec(&id, &format!("health-{n}"), &hc.command, hc.timeout)
                        .await;
                    let passed = matches!(outcome, Ok(ExecOutcome::Exited(0)));
                    if htx.send(Event::HealthCheck(name.clone(), passed)).is_err() {
                        break;
                    }
                }
            }));
        }
    }

    /// Marks a container that could not start; the task fails with ECS's reason.
    fn start_failed(report: &mut TaskReport, name: &str, why: &str) -> StopCause {
        let reason = format!("CannotStartContainerError: {why}");
        set_container(report, name, |r| {
            r.reason = Some(reason.clone());
            r.last_status = "STOPPED".into();
        });
        StopCause {
            code: "TaskFailedToStart",
            reason,
        }
    }

    fn on_exit(&self, report: &mut TaskReport, run: &mut Running, name: &str, code: i32) {
        let started_at_ms = run.phases.get(name).and_then(|p| match p {
            Phase::Running { started_at_ms } => Some(*started_at_ms),
            _ => None,
        });
        run.phases.insert(
            name.to_string(),
            Phase::Exited {
                started_at_ms: started_at_ms.unwrap_or(0),
                exit_code: code,
            },
        );
        let oom = self.host.cgroups.oom_killed(&self.spec.id, name);
        set_container(report, name, |r| {
            r.last_status = "STOPPED".into();
            r.exit_code = Some(code);
            if oom {
                r.reason = Some(OOM_REASON.into());
            }
        });
        tracing::info!(task_id = %self.spec.id, container = %name, exit_code = code, oom, "container exited");
        self.send(report);
    }

    fn on_health(&self, report: &mut TaskReport, run: &mut Running, name: &str, passed: bool) {
        let Some(tracker) = run.health.get_mut(name) else {
            return;
        };
        if !matches!(run.phases.get(name), Some(Phase::Running { .. })) {
            return;
        }
        let before = tracker.status();
        let after = tracker.record(passed, now_ms());
        if before == after {
            return;
        }
        set_container(report, name, |r| {
            r.health_status = Some(after.as_str().into());
        });
        let essential = self
            .spec
            .containers
            .iter()
            .filter(|d| d.essential)
            .filter_map(|d| run.health.get(&d.name).map(HealthTracker::status));
        report.health_status = Some(engine::task_health(essential).as_str().into());
        tracing::info!(task_id = %self.spec.id, container = %name, health = after.as_str(), "health changed");
        self.send(report);
    }

    /// Stops running containers in reverse dependency order: SIGTERM, then
    /// SIGKILL once the container's stop timeout has passed.
    async fn stop_containers(
        &self,
        report: &mut TaskReport,
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) {
        for name in engine::stop_order(&self.spec.containers) {
            let running = report
                .containers
                .iter()
                .any(|c| c.name == name && c.last_status == "RUNNING");
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
            if let Err(e) = self.host.runtime.kill(&id, SIGTERM, false).await {
                tracing::warn!(container = %id, error = %e, "SIGTERM failed");
            }
            if !self.wait_for_exit(report, events, &name, timeout).await {
                tracing::info!(container = %id, timeout_s = timeout.as_secs(), "stop timeout passed, sending SIGKILL");
                if let Err(e) = self.host.runtime.kill(&id, SIGKILL, true).await {
                    tracing::warn!(container = %id, error = %e, "SIGKILL failed");
                }
                if !self
                    .wait_for_exit(report, events, &name, Duration::from_secs(10))
                    .await
                {
                    tracing::error!(container = %id, "container did not exit after SIGKILL");
                }
            }
            self.send(report);
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
                    let oom = self.host.cgroups.oom_killed(&self.spec.id, &n);
                    set_container(report, &n, |r| {
                        r.last_status = "STOPPED".into();
                        r.exit_code = Some(code);
                        if oom {
                            r.reason = Some(OOM_REASON.into());
                        }
                    });
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
    async fn cleanup(&self) {
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
        let endpoints: Vec<String> = match spec.network_mode {
            NetworkMode::Awsvpc => vec![spec.id.clone()],
            NetworkMode::Bridge => (0..spec.containers.len())
                .map(|i| crate::network::container_endpoint(&spec.id, i))
                .collect(),
            NetworkMode::Host | NetworkMode::None => vec![],
        };
        for endpoint in endpoints {
            if let Err(e) = host.network.teardown_task(&endpoint).await {
                tracing::error!(task_id = %spec.id, endpoint, error = %e, "could not remove task network");
            }
        }
        host.metadata.remove_task(&spec.id);
        host.forget(&spec.id);
    }
}

pub(super) fn set_container(
    report: &mut TaskReport,
    name: &str,
    f: impl FnOnce(&mut ContainerReport),
) {
    if let Some(c) = report.containers.iter_mut().find(|c| c.name == name) {
        f(c);
    }
}

fn start_message(e: &RuntimeError) -> String {
    match e {
        RuntimeError::Start { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `KEY=VALUE` lines of an environment file; blank lines and `#` comments skipped.
pub(super) fn env_file_entries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Where a provisioned task's files live.
pub(super) fn task_dir<R, N, C>(host: &Host<R, N, C>, task_id: &str) -> PathBuf {
    host.config.log_dir(task_id)
}
