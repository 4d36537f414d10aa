//! The agent's side of the control-plane session: register, say Hello with
//! the full observed state, apply desired task sets, forward reports,
//! heartbeat, and reconnect with backoff. Protobuf stops here: `convert`
//! turns it into the agent's domain types and back.

mod convert;

use std::time::Duration;

use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_client::AgentServiceClient;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;

use crate::cgroups::CgroupManager;
use crate::model::{TaskReport, TaskSpec};
use crate::network::NetworkSetup;
use crate::runtime::ContainerRuntime;
use crate::tasks::TaskManager;

pub use convert::InvalidTaskError;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("control plane refused {op}: {status}")]
    Rpc {
        op: &'static str,
        status: tonic::Status,
    },
    #[error("no heartbeat from the control plane at {endpoint} for {silence_s}s")]
    Silent { endpoint: String, silence_s: u64 },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
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
        serves_fargate: cfg.capacity_provider.as_deref() == Some(berth_ecs::FARGATE),
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
                Err(_) => return Err(SessionError::Silent { endpoint: cfg.control_plane.url.clone(), silence_s: silence.as_secs() }),
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
                let hb = pb::Heartbeat { sent_at_ms: host.clock.now_ms() };
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
