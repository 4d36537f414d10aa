//! Starting one container of a running task (its metadata URI, checks of
//! what the host allows, environment files, create and start), and watching
//! it once it runs: the exit waiter and the health checker.

use tokio::sync::mpsc;

use super::container_spec::{self, TaskContext};
use super::provision::Provisioned;
use super::supervisor::{set_container, Event, Running, StopCause, Supervisor};
use crate::cgroups::CgroupManager;
use crate::engine::{HealthTracker, Phase};
use crate::model::{ContainerDef, ContainerStatus, HealthStatus, NetworkMode, TaskReport};
use crate::network::NetworkSetup;
use crate::runtime::{ContainerRuntime, ExecOutcome, RuntimeError};

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    pub(super) async fn start_container(
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
                .container_uri(&self.spec, report, &def.name, &cgroup_path, self.now_ms());
        if let (NetworkMode::Bridge, Some(ip)) = (self.spec.network_mode, ipv4) {
            host.metadata
                .set_bridge_address(&self.spec.id, &def.name, ip);
        }
        let token = metadata_uri.rsplit('/').next().map(str::to_owned);
        set_container(report, &def.name, |r| r.metadata_token = token);
        if def.options.privileged && !host.config.allow_privileged {
            return Err(start_failed(
                report,
                &def.name,
                "privileged containers are not allowed on this host (start the agent with --allow-privileged)",
            ));
        }
        if def.options.init_process_enabled && host.config.init_binary.is_none() {
            return Err(start_failed(
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
                    return Err(start_failed(
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
            return Err(start_failed(report, &def.name, &start_message(&e)));
        }
        let started_at = self.now_ms();
        run.phases.insert(
            def.name.clone(),
            Phase::Running {
                started_at_ms: started_at,
            },
        );
        set_container(report, &def.name, |r| {
            r.last_status = ContainerStatus::Running;
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
                r.health_status = Some(HealthStatus::Unknown);
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
}

/// Marks a container that could not start; the task fails with ECS's reason.
fn start_failed(report: &mut TaskReport, name: &str, why: &str) -> StopCause {
    let reason = format!("CannotStartContainerError: {why}");
    set_container(report, name, |r| {
        r.reason = Some(reason.clone());
        r.last_status = ContainerStatus::Stopped;
    });
    StopCause::failed_to_start(reason)
}

/// What runc said, without our own "start container <id>:" wrapping.
fn start_message(e: &RuntimeError) -> String {
    match e {
        RuntimeError::Start { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `KEY=VALUE` lines of an environment file; blank lines and `#` comments skipped.
fn env_file_entries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        })
        .collect()
}
