//! The agent's side of the control-plane session: register, say Hello with
//! the full observed state, apply desired task sets, forward reports,
//! heartbeat, and reconnect with backoff. Protobuf stops here.

use std::time::Duration;

use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_client::AgentServiceClient;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;

use crate::cgroups::CgroupManager;
use crate::model::{
    Condition, ContainerDef, ContainerOptions, ContainerSecrets, Dependency, DesiredStatus,
    HealthCheck, MountPoint, NetworkMode, PortMapping, Protocol, TaskReport, TaskSpec, Volume,
};
use crate::network::NetworkSetup;
use crate::runtime::{ContainerRuntime, RegistryCredentials};
use crate::tasks::TaskManager;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot reach the control plane at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("control plane refused {op}: {status}")]
    Rpc {
        op: &'static str,
        status: tonic::Status,
    },
    #[error("invalid task from the control plane: {0}")]
    InvalidTask(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)] // the protobuf fields, moved in as they are
fn container_options(
    environment_files: Vec<String>,
    readonly_root_filesystem: bool,
    ulimits: Vec<pb::Ulimit>,
    linux: Option<pb::LinuxParameters>,
    mount_points: Vec<pb::MountPoint>,
    volumes_from: Vec<pb::VolumeFrom>,
    privileged: bool,
    docker_labels: std::collections::HashMap<String, String>,
    secrets: ContainerSecrets,
) -> ContainerOptions {
    let linux = linux.unwrap_or_default();
    let mut labels: Vec<(String, String)> = docker_labels.into_iter().collect();
    labels.sort();
    ContainerOptions {
        environment_files: environment_files.into_iter().map(Into::into).collect(),
        readonly_root_filesystem,
        ulimits: ulimits
            .into_iter()
            .map(|u| (u.name, u.soft_limit, u.hard_limit))
            .collect(),
        cap_add: linux.cap_add,
        cap_drop: linux.cap_drop,
        init_process_enabled: linux.init_process_enabled,
        shared_memory_size_mib: (linux.shared_memory_size_mib > 0)
            .then_some(linux.shared_memory_size_mib),
        tmpfs: linux
            .tmpfs
            .into_iter()
            .map(|t| (t.container_path, t.size_mib, t.mount_options))
            .collect(),
        mount_points: mount_points
            .into_iter()
            .map(|m| MountPoint {
                source_volume: m.source_volume,
                container_path: m.container_path,
                read_only: m.read_only,
            })
            .collect(),
        volumes_from: volumes_from
            .into_iter()
            .map(|v| (v.source_container, v.read_only))
            .collect(),
        privileged,
        docker_labels: labels,
        secrets,
        ..ContainerOptions::default()
    }
}

fn port_mapping(m: &pb::PortMapping) -> Result<PortMapping, SessionError> {
    let port = |v: u32, what: &str| {
        u16::try_from(v).map_err(|_| SessionError::InvalidTask(format!("{what} {v} is not a port")))
    };
    let container_port = port(m.container_port, "containerPort")?;
    if container_port == 0 {
        return Err(SessionError::InvalidTask(
            "containerPort must be set".into(),
        ));
    }
    let host_port = port(m.host_port, "hostPort")?;
    Ok(PortMapping {
        container_port,
        host_port: (host_port != 0).then_some(host_port),
        protocol: Protocol::parse(&m.protocol).ok_or_else(|| {
            SessionError::InvalidTask(format!("unknown port protocol '{}'", m.protocol))
        })?,
    })
}

fn secs(s: u32) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(u64::from(s)))
}

/// ECS's health check command forms, as the argv to exec.
fn health_check(h: &pb::HealthCheck) -> Result<HealthCheck, SessionError> {
    let command = match h.command.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
        Some((kind, [line])) if kind == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), line.clone()]
        }
        _ => {
            return Err(SessionError::InvalidTask(format!(
                "health check command {:?} is not CMD or CMD-SHELL",
                h.command
            )))
        }
    };
    Ok(HealthCheck {
        command,
        interval: Duration::from_secs(u64::from(h.interval_secs.max(1))),
        timeout: Duration::from_secs(u64::from(h.timeout_secs.max(1))),
        retries: h.retries.max(1),
        start_period: Duration::from_secs(u64::from(h.start_period_secs)),
    })
}

impl TryFrom<pb::TaskSpec> for TaskSpec {
    type Error = SessionError;

    #[allow(clippy::too_many_lines)] // one protobuf field after another
    fn try_from(t: pb::TaskSpec) -> Result<Self, Self::Error> {
        if t.task_id.is_empty() || !t.task_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SessionError::InvalidTask(format!(
                "task id '{}' must be non-empty and alphanumeric",
                t.task_id
            )));
        }
        let desired_status = match pb::DesiredStatus::try_from(t.desired_status) {
            Ok(pb::DesiredStatus::Stopped) => DesiredStatus::Stopped,
            _ => DesiredStatus::Running,
        };
        let network_mode = match pb::NetworkMode::try_from(t.network_mode) {
            Ok(pb::NetworkMode::Bridge) => NetworkMode::Bridge,
            Ok(pb::NetworkMode::Host) => NetworkMode::Host,
            Ok(pb::NetworkMode::None) => NetworkMode::None,
            _ => NetworkMode::Awsvpc,
        };
        let pos = |v: i64| (v > 0).then_some(v);
        let containers = t
            .containers
            .into_iter()
            .map(|c| {
                let secrets = ContainerSecrets {
                    environment: c
                        .secret_environment
                        .into_iter()
                        .map(|kv| (kv.name, kv.value))
                        .collect(),
                    registry_login: c.registry_login.map(|l| RegistryCredentials {
                        username: l.username,
                        password: l.password,
                    }),
                };
                Ok(ContainerDef {
                    name: c.name,
                    image: c.image,
                    command: c.command,
                    entry_point: c.entry_point,
                    environment: c
                        .environment
                        .into_iter()
                        .map(|kv| (kv.name, kv.value))
                        .collect(),
                    working_directory: Some(c.working_directory).filter(|s| !s.is_empty()),
                    user: Some(c.user).filter(|s| !s.is_empty()),
                    cpu: c.cpu,
                    memory_mib: pos(c.memory_mib),
                    memory_reservation_mib: pos(c.memory_reservation_mib),
                    essential: c.essential,
                    stop_timeout: secs(c.stop_timeout_secs),
                    depends_on: c
                        .depends_on
                        .into_iter()
                        .map(|d| {
                            Condition::parse(&d.condition)
                                .map(|condition| Dependency {
                                    container: d.container_name.clone(),
                                    condition,
                                })
                                .ok_or_else(|| {
                                    SessionError::InvalidTask(format!(
                                        "unknown dependsOn condition '{}'",
                                        d.condition
                                    ))
                                })
                        })
                        .collect::<Result<_, _>>()?,
                    health_check: c.health_check.as_ref().map(health_check).transpose()?,
                    start_timeout: secs(c.start_timeout_secs),
                    options: ContainerOptions {
                        links: c.links,
                        hostname: Some(c.hostname).filter(|h| !h.is_empty()),
                        extra_hosts: c
                            .extra_hosts
                            .into_iter()
                            .map(|h| (h.hostname, h.ip_address))
                            .collect(),
                        ..container_options(
                            c.environment_files,
                            c.readonly_root_filesystem,
                            c.ulimits,
                            c.linux_parameters,
                            c.mount_points,
                            c.volumes_from,
                            c.privileged,
                            c.docker_labels,
                            secrets,
                        )
                    },
                    port_mappings: c
                        .port_mappings
                        .iter()
                        .map(port_mapping)
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<Vec<_>, SessionError>>()?;
        Ok(TaskSpec {
            arn: t.task_arn,
            id: t.task_id,
            family: t.family,
            revision: t.revision,
            cluster_arn: t.cluster_arn,
            desired_status,
            network_mode,
            cpu: pos(t.cpu),
            memory_mib: pos(t.memory_mib),
            containers,
            volumes: t
                .volumes
                .into_iter()
                .map(|v| Volume {
                    name: v.name,
                    host_source_path: Some(v.host_source_path)
                        .filter(|p| !p.is_empty())
                        .map(Into::into),
                })
                .collect(),
            secrets_error: Some(t.secrets_error).filter(|e| !e.is_empty()),
        })
    }
}

impl From<TaskReport> for pb::TaskStatus {
    fn from(r: TaskReport) -> Self {
        pb::TaskStatus {
            task_arn: r.task_arn,
            last_status: r.last_status,
            containers: r
                .containers
                .into_iter()
                .map(|c| pb::ContainerStatus {
                    name: c.name,
                    last_status: c.last_status,
                    exit_code: c.exit_code,
                    reason: c.reason.unwrap_or_default(),
                    runtime_id: c.runtime_id.unwrap_or_default(),
                    image_digest: c.image_digest.unwrap_or_default(),
                    health_status: c.health_status.unwrap_or_default(),
                    network_bindings: c
                        .network_bindings
                        .into_iter()
                        .map(|b| pb::NetworkBinding {
                            bind_ip: b.bind_ip,
                            container_port: u32::from(b.container_port),
                            host_port: u32::from(b.host_port),
                            protocol: b.protocol.as_str().into(),
                        })
                        .collect(),
                })
                .collect(),
            private_ipv4_address: r.private_ipv4.unwrap_or_default(),
            mac_address: r.mac_address.unwrap_or_default(),
            stop_code: r.stop_code.unwrap_or_default(),
            stopped_reason: r.stopped_reason.unwrap_or_default(),
            pull_started_at_ms: r.pull_started_at_ms.unwrap_or(0),
            pull_stopped_at_ms: r.pull_stopped_at_ms.unwrap_or(0),
            started_at_ms: r.started_at_ms.unwrap_or(0),
            execution_stopped_at_ms: r.execution_stopped_at_ms.unwrap_or(0),
            health_status: r.health_status.unwrap_or_default(),
        }
    }
}

fn msg(kind: pb::agent_message::Kind) -> pb::AgentMessage {
    pb::AgentMessage { kind: Some(kind) }
}

/// How long a closing session waits for the control plane to acknowledge
/// the close by ending its side.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Runs sessions, reconnecting with capped exponential backoff, until
/// `shutdown` turns true; then closes the session in progress and returns.
/// Tasks are left running either way.
pub async fn run<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager>(
    manager: &TaskManager<R, N, C>,
    reports: &mut mpsc::UnboundedReceiver<TaskReport>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    while !*shutdown.borrow() {
        match session(manager, reports, &mut shutdown).await {
            Ok(()) if *shutdown.borrow() => {}
            Ok(()) => {
                tracing::info!("session ended; reconnecting");
                backoff = Duration::from_millis(250);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis(), "session failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// What this host registers with: its capacity, and the capacity provider
/// it joins (also as the older `serves_fargate` flag, for control planes
/// that know only that).
fn register_request(cfg: &crate::config::AgentConfig, known: String) -> pb::RegisterRequest {
    pb::RegisterRequest {
        cluster: cfg.cluster.clone(),
        container_instance_arn: known,
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        resources: Some(resources(cfg)),
        serves_fargate: cfg.capacity_provider.as_deref() == Some("FARGATE"),
        capacity_provider: cfg.capacity_provider.clone().unwrap_or_default(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        attributes: std::iter::once((
            "berth.network-modes".to_string(),
            "awsvpc bridge host none".to_string(),
        ))
        .collect(),
    }
}

/// What the host offers the scheduler: CPU, memory and its reserved ports.
fn resources(cfg: &crate::config::AgentConfig) -> pb::Resources {
    let ports = |list: &[u16]| list.iter().map(|p| u32::from(*p)).collect();
    pb::Resources {
        cpu: cfg.cpu,
        memory_mib: cfg.memory_mib,
        reserved_tcp_ports: ports(&cfg.reserved_tcp_ports),
        reserved_udp_ports: ports(&cfg.reserved_udp_ports),
    }
}

/// One session; returns Ok when either side closed it cleanly.
async fn session<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager>(
    manager: &TaskManager<R, N, C>,
    reports: &mut mpsc::UnboundedReceiver<TaskReport>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let host = manager.host();
    let cfg = &host.config;
    let connect = tokio::select! {
        c = crate::tls::session_channel(&cfg.data_dir, &cfg.control_plane, cfg.join_token.as_ref()) => c,
        _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
    };
    let mut client = AgentServiceClient::new(connect?);
    let known = host
        .state
        .container_instance_arn()
        .ok()
        .flatten()
        .unwrap_or_default();
    let resp = client
        .register(register_request(cfg, known))
        .await
        .map_err(|status| SessionError::Rpc {
            op: "Register",
            status,
        })?
        .into_inner();
    let arn = resp.container_instance_arn;
    if let Err(e) = host.state.set_container_instance_arn(&arn) {
        tracing::error!(error = %e, "could not record the container-instance ARN");
    }
    tracing::info!(container_instance = %arn, "registered");

    let (out_tx, out_rx) = mpsc::channel(64);
    let hello = pb::Hello {
        container_instance_arn: arn.clone(),
        tasks: manager.snapshot().into_iter().map(Into::into).collect(),
    };
    out_tx
        .send(msg(pb::agent_message::Kind::Hello(hello)))
        .await
        .ok();
    let mut inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(out_rx))
        .await
        .map_err(|status| SessionError::Rpc {
            op: "Session",
            status,
        })?
        .into_inner();
    let interval = Duration::from_secs(u64::from(resp.heartbeat_interval_secs.max(1)));
    let mut heartbeat = tokio::time::interval(interval);
    // No word from the control plane for three intervals: the session is dead.
    let silence = interval * 3;
    loop {
        tokio::select! {
            m = tokio::time::timeout(silence, inbound.next()) => match m {
                Err(_) => return Err(SessionError::Connect { endpoint: cfg.control_plane.url.clone(), message: "no heartbeat from the control plane".into() }),
                Ok(None) => return Ok(()),
                Ok(Some(Err(status))) => return Err(SessionError::Rpc { op: "Session", status }),
                Ok(Some(Ok(pb::ControlMessage { kind: Some(pb::control_message::Kind::DesiredTasks(d)) }))) => {
                    let mut specs = Vec::with_capacity(d.tasks.len());
                    for t in d.tasks {
                        match TaskSpec::try_from(t) {
                            Ok(s) => specs.push(s),
                            Err(e) => tracing::error!(error = %e, "ignoring a task"),
                        }
                    }
                    manager.apply_desired(specs);
                }
                Ok(Some(Ok(_))) => {}
            },
            Some(r) = reports.recv() => {
                if out_tx.send(msg(pb::agent_message::Kind::TaskStatus(r.into()))).await.is_err() {
                    return Ok(());
                }
            }
            _ = heartbeat.tick() => {
                let hb = pb::Heartbeat { sent_at_ms: crate::model::now_ms() };
                if out_tx.send(msg(pb::agent_message::Kind::Heartbeat(hb))).await.is_err() {
                    return Ok(());
                }
            }
            true = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => {
                close(out_tx, &mut inbound, reports).await;
                return Ok(());
            }
        }
    }
}

/// Closes a session the way the control plane expects: the reports already
/// queued go out, then our stream ends (the control plane logs "agent closed
/// its session" and marks the instance disconnected at once, not after the
/// heartbeat timeout), and we wait briefly for its side to end too.
async fn close(
    out_tx: mpsc::Sender<pb::AgentMessage>,
    inbound: &mut tonic::Streaming<pb::ControlMessage>,
    reports: &mut mpsc::UnboundedReceiver<TaskReport>,
) {
    while let Ok(r) = reports.try_recv() {
        if out_tx
            .send(msg(pb::agent_message::Kind::TaskStatus(r.into())))
            .await
            .is_err()
        {
            break;
        }
    }
    drop(out_tx);
    let drained = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = inbound.next().await {}
    })
    .await;
    if drained.is_ok() {
        tracing::info!("session closed");
    } else {
        tracing::warn!("the control plane did not end the session in time; leaving anyway");
    }
}
