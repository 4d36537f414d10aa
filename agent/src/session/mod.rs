//! The agent's side of the control-plane session: register, say Hello with
//! the full observed state, apply desired task sets, forward reports,
//! heartbeat, and reconnect with backoff. Protobuf stops here: `convert`
//! turns it into the agent's domain types and back.

mod convert;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_client::AgentServiceClient;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::StreamExt;

use crate::awslogs::link::Outgoing;
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
    /// The control plane speaks another version of the protocol: nothing of it is read
    /// (the host's tasks keep running) until one side is upgraded.
    #[error(
        "the control plane at {endpoint} speaks protocol version {theirs} and this agent \
         {ours}: upgrade the older of the two (tasks keep running meanwhile)"
    )]
    ProtocolVersion {
        endpoint: String,
        theirs: u32,
        ours: u32,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

fn msg(kind: pb::agent_message::Kind) -> pb::AgentMessage {
    pb::AgentMessage { kind: Some(kind) }
}

/// How long a closing session waits for the control plane to acknowledge
/// the close by ending its side.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How soon a failed certificate renewal is tried again.
const RENEW_RETRY: Duration = Duration::from_secs(30);
/// How long a renewal may take before it counts as failed.
const RENEW_LIMIT: Duration = Duration::from_secs(5);

/// The instant to renew at, for a renewal due at `renew_at_ms` (now, if overdue).
fn renew_deadline(now_ms: i64, renew_at_ms: i64) -> tokio::time::Instant {
    let wait = u64::try_from(renew_at_ms.saturating_sub(now_ms)).unwrap_or_default();
    tokio::time::Instant::now() + Duration::from_millis(wait)
}

/// Runs sessions, reconnecting with capped exponential backoff, until
/// `shutdown` turns true; then closes the session in progress and returns.
/// Tasks are left running either way.
pub async fn run<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager>(
    manager: &TaskManager<R, N, C>,
    reports: &mut mpsc::UnboundedReceiver<TaskReport>,
    logs: &mut mpsc::Receiver<Outgoing>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    while !*shutdown.borrow() {
        match session(manager, reports, logs, &mut shutdown).await {
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

/// Goes no further with a control plane of another protocol version (older ones send
/// none): it could misread this agent's reports, and this agent its tasks.
fn same_protocol(resp: &pb::RegisterResponse, endpoint: &str) -> Result<(), SessionError> {
    if resp.protocol_version == berth_proto::PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(SessionError::ProtocolVersion {
            endpoint: endpoint.to_owned(),
            theirs: resp.protocol_version,
            ours: berth_proto::PROTOCOL_VERSION,
        })
    }
}

/// One session; returns Ok when either side closed it cleanly.
async fn session<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager>(
    manager: &TaskManager<R, N, C>,
    reports: &mut mpsc::UnboundedReceiver<TaskReport>,
    logs: &mut mpsc::Receiver<Outgoing>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let host = manager.host();
    let cfg = &host.config;
    let connect = tokio::select! {
        c = crate::tls::session_channel(&cfg.data_dir, &cfg.control_plane, cfg.join_token.as_ref(), &cfg.cluster) => c,
        _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
    };
    let (channel, identity) = connect?;
    let mut renew_at = renew_deadline(
        host.clock.now_ms(),
        identity.certificate(&cfg.data_dir)?.renew_at_ms(),
    );
    let mut client = AgentServiceClient::new(channel);
    let (arn, resp) = register(manager, &mut client).await?;
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
    // Log batches sent and not yet acknowledged; dropped with the session, so their
    // shipper sends them again on the next one.
    let mut unacked: HashMap<u64, oneshot::Sender<Result<(), String>>> = HashMap::new();
    let mut batch_ids = 0u64..;
    // One deadline, moved on by every message from the control plane (re-arming a
    // timeout on each pass would never fire: the heartbeat tick ends passes sooner).
    let silent = tokio::time::sleep(silence);
    tokio::pin!(silent);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(renew_at) => {
                // A fresh certificate; the next session uses it. Until then this one
                // goes on (its certificate is still valid), so a failure only retries.
                if let Some(retry) = renew(&mut client, host).await {
                    renew_at = retry;
                } else {
                    close(out_tx, &mut inbound, reports).await;
                    return Ok(());
                }
            }
            () = &mut silent => {
                return Err(SessionError::Silent { endpoint: cfg.control_plane.url.clone(), silence_s: silence.as_secs() });
            }
            m = inbound.next() => {
                silent.as_mut().reset(tokio::time::Instant::now() + silence);
                match m {
                    None => return Ok(()),
                    Some(Err(status)) => return Err(SessionError::Rpc { op: "Session", status }),
                    Some(Ok(pb::ControlMessage { kind: Some(pb::control_message::Kind::DesiredTasks(d)) })) => {
                        apply_desired(manager, d);
                    }
                    Some(Ok(pb::ControlMessage { kind: Some(pb::control_message::Kind::ExecStart(s)) })) => start_exec(manager, &client, s),
                    Some(Ok(pb::ControlMessage { kind: Some(pb::control_message::Kind::LogAck(a)) })) => {
                        if let Some(ack) = unacked.remove(&a.batch_id) {
                            let _ = ack.send(if a.error.is_empty() { Ok(()) } else { Err(a.error) });
                        }
                    }
                    Some(Ok(_)) => {}
                }
            }
            Some(out) = logs.recv() => {
                // Its shipper stopped waiting (it will send the batch again).
                if out.ack.is_closed() { continue; }
                let id = batch_ids.next().unwrap_or_default();
                unacked.insert(id, out.ack);
                if out_tx.send(msg(pb::agent_message::Kind::LogBatch(convert::log_batch(id, out.batch)))).await.is_err() {
                    return Ok(());
                }
            }
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

/// Registers the host; its container instance ARN and the control plane's answer.
async fn register<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager>(
    manager: &TaskManager<R, N, C>,
    client: &mut AgentServiceClient<tonic::transport::Channel>,
) -> Result<(String, pb::RegisterResponse), SessionError> {
    let host = manager.host();
    let cfg = &host.config;
    let known = host
        .state
        .container_instance_arn()
        .ok()
        .flatten()
        .unwrap_or_default();
    let resp = client
        .register(convert::register_request(cfg, known))
        .await
        .map_err(|status| SessionError::Rpc {
            op: "Register",
            status,
        })?
        .into_inner();
    same_protocol(&resp, &cfg.control_plane.url)?;
    let arn = resp.container_instance_arn.clone();
    if let Err(e) = host.state.set_container_instance_arn(&arn) {
        tracing::error!(error = %e, "could not record the container-instance ARN");
    }
    tracing::info!(container_instance = %arn, "registered");
    Ok((arn, resp))
}

/// Renews the agent certificate: None when the session should reconnect with the new
/// one, else when to try again.
async fn renew<R, N, C>(
    client: &mut AgentServiceClient<tonic::transport::Channel>,
    host: &crate::tasks::Host<R, N, C>,
) -> Option<tokio::time::Instant> {
    let retry = tokio::time::Instant::now() + RENEW_RETRY;
    let dir = &host.config.data_dir;
    // Bounded: the session loop waits for it, and heartbeats with it.
    let renewed = tokio::time::timeout(RENEW_LIMIT, crate::tls::renew(client, dir)).await;
    let due = match renewed {
        Ok(Ok(id)) => id.certificate(dir).map(|c| c.renew_at_ms()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(crate::tls::TlsError::RenewRefused(format!(
            "no answer within {}s",
            RENEW_LIMIT.as_secs()
        ))),
    };
    match due {
        Ok(due) if due <= host.clock.now_ms() => {
            // Reconnecting now would renew again at once, and again.
            tracing::warn!(retry_in_s = RENEW_RETRY.as_secs(), "the renewed agent certificate is already due for renewal by this host's clock: is this host's clock, or the control plane's, off?");
            Some(retry)
        }
        Ok(_) => {
            tracing::info!("agent certificate renewed: reconnecting with it");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, retry_in_s = RENEW_RETRY.as_secs(), "could not renew the agent certificate");
            Some(retry)
        }
    }
}

/// Serves an ECS Exec session on a stream of its own; the session loop goes on at once.
fn start_exec<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager>(
    manager: &TaskManager<R, N, C>,
    client: &AgentServiceClient<tonic::transport::Channel>,
    start: pb::ExecStart,
) {
    let target = crate::exec::resolve(&manager.snapshot(), &start);
    let host = manager.host().clone();
    let client = client.clone();
    tracing::info!(session = %start.session_id, task = %start.task_id, container = %start.container, "exec session starting");
    tokio::spawn(async move {
        let dir = host.config.data_dir.join("exec");
        crate::exec::serve(&host.runtime, client, target, start.session_id, dir).await;
    });
}

/// Applies the control plane's desired task set.
fn apply_desired<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager>(
    manager: &TaskManager<R, N, C>,
    desired: pb::DesiredTasks,
) {
    let mut specs = Vec::with_capacity(desired.tasks.len());
    let mut unreadable = HashSet::new();
    for t in desired.tasks {
        let id = t.task_id.clone();
        match TaskSpec::try_from(t) {
            Ok(s) => specs.push(s),
            Err(e) => {
                // Listed, but not readable: whatever this host runs of it
                // keeps running; nothing new is started.
                tracing::error!(error = %e, "ignoring a task");
                unreadable.insert(id);
            }
        }
    }
    manager.apply_desired_except(specs, &unreadable);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_plane_of_another_protocol_version_is_refused() {
        let resp = |protocol_version| pb::RegisterResponse {
            protocol_version,
            ..pb::RegisterResponse::default()
        };
        assert!(same_protocol(&resp(berth_proto::PROTOCOL_VERSION), "https://cp").is_ok());
        let e = same_protocol(&resp(0), "https://cp").unwrap_err();
        assert!(matches!(
            e,
            SessionError::ProtocolVersion {
                theirs: 0,
                ours: 2,
                ..
            }
        ));
        assert!(
            e.to_string().contains("upgrade the older of the two"),
            "{e}"
        );
    }
}
