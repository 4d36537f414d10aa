//! One task's life on this host: provision (or adopt), then run the engine
//! (start containers as it allows, fold in exits and health results) until
//! the task must stop, then stop and clean up, reporting every transition.
//! Starting a container is `start`; stopping and cleaning up is `stop`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::provision::Provisioned;
use super::Host;
use crate::cgroups::CgroupManager;
use crate::engine::{self, Action, ContainerView, HealthTracker, Phase};
use crate::model::{
    ContainerReport, ContainerStatus, DesiredStatus, StopCode, TaskReport, TaskSpec, TaskStatus,
};
use crate::network::NetworkSetup;
use crate::runtime::ContainerRuntime;

/// How often a task with waiting containers re-evaluates their
/// dependencies, so a startTimeout passes even when nothing else happens.
const DEPENDENCY_RECHECK: Duration = Duration::from_millis(500);

/// ECS's reason for a container the kernel's OOM killer ended.
pub(super) const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// How the task ended, when the agent decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StopCause {
    pub code: StopCode,
    pub reason: String,
}

impl StopCause {
    /// The task never got going: ECS's `TaskFailedToStart`.
    pub fn failed_to_start(reason: String) -> Self {
        Self {
            code: StopCode::TaskFailedToStart,
            reason,
        }
    }
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
#[derive(Default)]
pub(super) struct Running {
    pub phases: HashMap<String, Phase>,
    pub health: HashMap<String, HealthTracker>,
    pub checkers: Vec<JoinHandle<()>>,
}

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    pub(super) fn stop_requested(&self) -> bool {
        *self.desired.borrow() == DesiredStatus::Stopped
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.host.clock.now_ms()
    }

    pub(super) fn send(&self, r: &TaskReport) {
        self.host.metadata.sync(&self.spec, r, self.now_ms());
        (self.report)(r.clone());
    }

    /// Runs the task; `adopted` holds the phases of containers a previous
    /// agent run left (None for a new task).
    pub async fn run(mut self, mut report: TaskReport, adopted: Option<HashMap<String, Phase>>) {
        let task_id = self.spec.id.clone();
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut running = Running::default();
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
            report.stop_code = Some(cause.code);
            report.stopped_reason = Some(cause.reason);
        }
        report.last_status = TaskStatus::Stopping;
        self.send(&report);
        drop(tx);
        self.stop_containers(&mut report, &mut events).await;
        report.last_status = TaskStatus::Deprovisioning;
        report.execution_stopped_at_ms = Some(self.now_ms());
        self.send(&report);
        self.cleanup().await;
        report.last_status = TaskStatus::Stopped;
        for c in &mut report.containers {
            c.last_status = ContainerStatus::Stopped;
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
        let mut running_reported = report.last_status == TaskStatus::Running;
        loop {
            if self.stop_requested() {
                return None;
            }
            let states: Vec<ContainerView<'_>> = spec
                .containers
                .iter()
                .map(|d| ContainerView {
                    def: d,
                    phase: run.phases[&d.name],
                    health: run.health.get(&d.name).map(HealthTracker::status),
                })
                .collect();
            let actions = engine::next_actions(&states, self.now_ms());
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
                report.last_status = TaskStatus::Running;
                report.started_at_ms = Some(self.now_ms());
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
                () = tokio::time::sleep(DEPENDENCY_RECHECK), if waiting => {}
            }
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
        let oom = self.record_exit(report, name, code);
        tracing::info!(task_id = %self.spec.id, container = %name, exit_code = code, oom, "container exited");
        self.send(report);
    }

    /// Reports container `name` STOPPED with `code` (and ECS's OOM reason
    /// when the kernel killed it); returns whether it did.
    pub(super) fn record_exit(&self, report: &mut TaskReport, name: &str, code: i32) -> bool {
        let oom = self.host.cgroups.oom_killed(&self.spec.id, name);
        set_container(report, name, |r| {
            r.last_status = ContainerStatus::Stopped;
            r.exit_code = Some(code);
            if oom {
                r.reason = Some(OOM_REASON.into());
            }
        });
        oom
    }

    fn on_health(&self, report: &mut TaskReport, run: &mut Running, name: &str, passed: bool) {
        let Some(tracker) = run.health.get_mut(name) else {
            return;
        };
        if !matches!(run.phases.get(name), Some(Phase::Running { .. })) {
            return;
        }
        let before = tracker.status();
        let after = tracker.record(passed, self.now_ms());
        if before == after {
            return;
        }
        set_container(report, name, |r| r.health_status = Some(after));
        let essential = self
            .spec
            .containers
            .iter()
            .filter(|d| d.essential)
            .filter_map(|d| run.health.get(&d.name).map(HealthTracker::status));
        report.health_status = Some(engine::task_health(essential));
        tracing::info!(task_id = %self.spec.id, container = %name, health = %after, "health changed");
        self.send(report);
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

/// Where a provisioned task's files live.
pub(super) fn task_dir<R, N, C>(host: &Host<R, N, C>, task_id: &str) -> std::path::PathBuf {
    host.config.log_dir(task_id)
}
