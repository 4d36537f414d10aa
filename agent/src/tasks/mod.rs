//! The task manager: turns the control plane's desired task set into one
//! supervisor per task, and keeps the latest report of each for the session.

mod adopt;
mod container_spec;
mod host;
mod images;
mod provision;
mod start;
mod stop;
mod supervisor;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::cgroups::CgroupManager;
use crate::model::{
    ContainerReport, ContainerStatus, DesiredStatus, TaskReport, TaskSpec, TaskStatus,
};
use crate::network::{self, NetworkSetup};
use crate::runtime::ContainerRuntime;

pub use host::Host;

struct Entry {
    desired: watch::Sender<DesiredStatus>,
    latest: TaskReport,
}

/// Owns the supervisors. Reports go to `reports` (the session forwards them).
pub struct TaskManager<R, N, C> {
    host: Arc<Host<R, N, C>>,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    reports: mpsc::UnboundedSender<TaskReport>,
}

fn initial_report(spec: &TaskSpec) -> TaskReport {
    TaskReport {
        task_arn: spec.arn.clone(),
        last_status: TaskStatus::Provisioning,
        containers: spec
            .containers
            .iter()
            .map(|c| ContainerReport {
                name: c.name.clone(),
                last_status: ContainerStatus::Pending,
                ..ContainerReport::default()
            })
            .collect(),
        ..TaskReport::default()
    }
}

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> TaskManager<R, N, C> {
    pub fn new(host: Arc<Host<R, N, C>>, reports: mpsc::UnboundedSender<TaskReport>) -> Self {
        Self {
            host,
            entries: Arc::new(Mutex::new(HashMap::new())),
            reports,
        }
    }

    pub fn host(&self) -> &Arc<Host<R, N, C>> {
        &self.host
    }

    /// The latest report of every task this agent holds (for Hello).
    pub fn snapshot(&self) -> Vec<TaskReport> {
        self.entries
            .lock()
            .unwrap()
            .values()
            .map(|e| e.latest.clone())
            .collect()
    }

    fn reporter(&self, task_id: String) -> Box<dyn Fn(TaskReport) + Send + Sync> {
        // Weak: the entries (and with them each supervisor's desired-status
        // sender) go when the manager goes, so supervisors see the manager
        // gone and leave their tasks running, as at agent shutdown.
        let entries = Arc::downgrade(&self.entries);
        let tx = self.reports.clone();
        let host = self.host.clone();
        Box::new(move |r: TaskReport| {
            // Persisted, so a restarted agent knows what each container was.
            if let Err(e) = host.state.update_report(&task_id, &r) {
                tracing::error!(task_id, error = %e, "could not record a task report");
            }
            if let Some(entries) = entries.upgrade() {
                if let Some(e) = entries.lock().unwrap().get_mut(&task_id) {
                    e.latest = r.clone();
                }
            }
            let _ = tx.send(r);
        })
    }

    /// Converges on the desired task set: starts new tasks, stops tasks that
    /// are desired STOPPED or no longer listed, and forgets finished ones the
    /// control plane no longer lists.
    pub fn apply_desired(&self, specs: Vec<TaskSpec>) {
        self.apply_desired_except(specs, &HashSet::new());
    }

    /// `apply_desired`, where the tasks (by id) in `unreadable` were listed with a spec this
    /// agent could not read: they are left as they are, neither started nor stopped.
    pub fn apply_desired_except(&self, specs: Vec<TaskSpec>, unreadable: &HashSet<String>) {
        let mut listed: HashSet<String> = specs.iter().map(|s| s.id.clone()).collect();
        listed.extend(unreadable.iter().cloned());
        let mut entries = self.entries.lock().unwrap();
        entries.retain(|id, e| listed.contains(id) || e.latest.last_status != TaskStatus::Stopped);
        for (id, e) in entries.iter() {
            if !listed.contains(id) {
                e.desired.send_replace(DesiredStatus::Stopped);
            }
        }
        for spec in specs {
            if let Some(e) = entries.get(&spec.id) {
                if spec.desired_status == DesiredStatus::Stopped {
                    e.desired.send_replace(DesiredStatus::Stopped);
                }
                continue;
            }
            if spec.desired_status == DesiredStatus::Stopped {
                // Never started here: nothing to undo; say so.
                let mut r = initial_report(&spec);
                r.last_status = TaskStatus::Stopped;
                for c in &mut r.containers {
                    c.last_status = ContainerStatus::Stopped;
                }
                let _ = self.reports.send(r.clone());
                let (tx, _) = watch::channel(DesiredStatus::Stopped);
                entries.insert(
                    spec.id.clone(),
                    Entry {
                        desired: tx,
                        latest: r,
                    },
                );
                continue;
            }
            let (tx, rx) = watch::channel(DesiredStatus::Running);
            let report = initial_report(&spec);
            entries.insert(
                spec.id.clone(),
                Entry {
                    desired: tx,
                    latest: report.clone(),
                },
            );
            let _ = self.reports.send(report.clone());
            tracing::info!(task_id = %spec.id, family = %spec.family, "starting task");
            let sup = supervisor::Supervisor {
                host: self.host.clone(),
                report: self.reporter(spec.id.clone()),
                spec,
                desired: rx,
            };
            tokio::spawn(sup.run(report, None));
        }
    }

    /// Removes namespaces (on this agent's bridge) and published-port rules
    /// of tasks this agent has no record of: left by a run that crashed
    /// between cleaning a task and forgetting it, or by hand.
    async fn remove_orphans(&self, known: &HashSet<String>) {
        let net = &self.host.network;
        match net.list_task_netns().await {
            Ok(endpoints) => {
                for endpoint in endpoints {
                    let task_id = network::endpoint_task_id(&endpoint);
                    if known.contains(task_id) {
                        continue;
                    }
                    match net.owns_endpoint(&endpoint).await {
                        Ok(true) => {
                            tracing::info!(
                                endpoint,
                                "removing the network of a task that no longer exists"
                            );
                            if let Err(e) = net.teardown_task(&endpoint).await {
                                tracing::error!(endpoint, error = %e, "could not remove an orphaned network");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(endpoint, error = %e, "could not inspect a namespace");
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "could not list task namespaces"),
        }
        match net.list_published().await {
            Ok(tasks) => {
                for task_id in tasks.iter().filter(|t| !known.contains(*t)) {
                    tracing::info!(
                        task_id,
                        "removing published ports of a task that no longer exists"
                    );
                    if let Err(e) = net.unpublish(task_id).await {
                        tracing::error!(task_id, error = %e, "could not remove orphaned port rules");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "could not list published ports"),
        }
    }

    /// Adopts what a previous run of the agent left: every recorded task
    /// gets a supervisor again. Running containers keep running (not
    /// restarted), containers that exited meanwhile are reported with their
    /// exit codes, and tasks that were stopping finish stopping. The control
    /// plane's next desired set then says which tasks to keep.
    pub async fn recover(&self) {
        let records = match self.host.state.tasks() {
            Ok(records) => {
                let known: HashSet<String> = records.iter().map(|r| r.spec.id.clone()).collect();
                self.remove_orphans(&known).await;
                records
            }
            Err(e) => {
                // Without the records nothing can be told apart from an orphan.
                tracing::error!(error = %e, "could not read task records");
                vec![]
            }
        };
        for rec in records {
            let spec = rec.spec;
            let mut report = rec.last_report;
            report.task_arn.clone_from(&spec.arn);
            if let Some(ip) = rec.ipv4 {
                self.host.hold_ip(&spec.id, ip);
            }
            for (endpoint, ip) in &rec.endpoints {
                self.host.hold_ip(endpoint, *ip);
            }
            self.host.hold_ports(
                &spec.id,
                report
                    .containers
                    .iter()
                    .flat_map(|c| &c.network_bindings)
                    .map(|b| (b.protocol, b.host_port)),
            );
            let phases =
                adopt::adopted_phases(&self.host.runtime, &spec, &report, self.host.clock.now_ms())
                    .await;
            let desired = if report.last_status.is_stopping() {
                DesiredStatus::Stopped
            } else {
                DesiredStatus::Running
            };
            tracing::info!(task_id = %spec.id, last_status = %report.last_status, "adopting task from a previous agent run");
            let (tx, rx) = watch::channel(desired);
            self.entries.lock().unwrap().insert(
                spec.id.clone(),
                Entry {
                    desired: tx,
                    latest: report.clone(),
                },
            );
            let sup = supervisor::Supervisor {
                host: self.host.clone(),
                report: self.reporter(spec.id.clone()),
                spec,
                desired: rx,
            };
            tokio::spawn(sup.run(report, Some(phases)));
        }
    }
}
