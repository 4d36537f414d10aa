//! The gRPC service agents talk to: registration and one long-lived session
//! per agent. Protobuf is converted to domain values in `convert` and nowhere else.

mod convert;
mod desired;
mod identity;

use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_server::AgentService;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use self::convert::ConvertError;
use self::desired::{desired_message, Delivered};
use self::identity::{caller, peer, Caller};
use crate::exec::{AgentStream, ExecSessions};
use crate::join_tokens::{JoinError, JoinTokens};
use crate::logs::Logs;
use crate::model::task::TaskReport;
use crate::pki::ClusterCa;
use crate::secrets::Secrets;
use crate::state::{ControlPlane, InstanceRegistration, StateError};

/// How often each side sends a heartbeat. Short, so a lost host is noticed
/// within seconds (see `MISSED_HEARTBEATS`); the cost is one small message
/// per agent per interval.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// Silence (no message at all) for this many intervals closes the session:
/// `agentConnected` turns false and the instance gets no new placements.
/// Three tolerates a lost packet or a busy agent without false alarms.
pub const MISSED_HEARTBEATS: u32 = 3;

pub struct Agents {
    control_plane: Arc<ControlPlane>,
    ca: Arc<ClusterCa>,
    join_tokens: Arc<JoinTokens>,
    secrets: Arc<Secrets>,
    logs: Arc<Logs>,
    exec: Arc<ExecSessions>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    cert_lifetime: Duration,
}

/// How long an agent certificate is valid unless configured otherwise.
pub const DEFAULT_CERT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl Agents {
    pub fn new(
        control_plane: Arc<ControlPlane>,
        ca: Arc<ClusterCa>,
        join_tokens: Arc<JoinTokens>,
        secrets: Arc<Secrets>,
        logs: Arc<Logs>,
    ) -> Self {
        // A sender dropped at once: its receiver never sees `true`.
        let (_, shutdown) = tokio::sync::watch::channel(false);
        Self {
            control_plane,
            ca,
            join_tokens,
            secrets,
            logs,
            exec: Arc::default(),
            shutdown,
            cert_lifetime: DEFAULT_CERT_LIFETIME,
        }
    }

    /// Agent certificates are valid this long; agents renew them two thirds in.
    pub fn with_cert_lifetime(mut self, lifetime: Duration) -> Self {
        self.cert_lifetime = lifetime;
        self
    }

    /// Credentials for `instance_arn`, valid from now for the configured lifetime.
    fn credentials(&self, name: &str, instance_arn: &str) -> Result<pb::JoinResponse, Status> {
        let creds = self
            .ca
            .issue_agent(
                name,
                instance_arn,
                self.control_plane.now_ms(),
                self.cert_lifetime,
            )
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(pb::JoinResponse {
            certificate_pem: creds.chain_pem,
            private_key_pem: creds.key_pem,
            ca_certificate_pem: self.ca.cert_pem().to_owned(),
        })
    }

    /// ECS Exec sessions are started through these (shared with the API's `ExecuteCommand`).
    pub fn with_exec(mut self, exec: Arc<ExecSessions>) -> Self {
        self.exec = exec;
        self
    }

    /// Sessions end when `shutdown` turns true. Sessions never end on their
    /// own, so without this a graceful server shutdown would wait on them
    /// forever.
    pub fn with_shutdown(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }

    pub fn into_server(self) -> pb::agent_service_server::AgentServiceServer<Self> {
        pb::agent_service_server::AgentServiceServer::new(self)
    }
}

/// A malformed message from an agent is its mistake: an invalid argument; an agent of
/// another protocol version is one this control plane will not serve.
impl From<ConvertError> for Status {
    fn from(e: ConvertError) -> Self {
        match e {
            ConvertError::ProtocolVersion { .. } => Status::failed_precondition(e.to_string()),
            ConvertError::UnknownValue { .. } | ConvertError::NoResources => {
                Status::invalid_argument(e.to_string())
            }
        }
    }
}

/// With the conversion error above, the one place control-plane errors become gRPC statuses.
fn status(e: &StateError) -> Status {
    match e {
        StateError::ClusterNotFound(_)
        | StateError::TargetNotFound(_)
        | StateError::ServiceNotFound(_)
        | StateError::ResourceNotFound(_) => Status::not_found(e.to_string()),
        StateError::InvalidParameter(_)
        | StateError::Client(_)
        | StateError::AttributeLimitExceeded(_) => Status::invalid_argument(e.to_string()),
        StateError::ClusterContainsContainerInstances { .. }
        | StateError::ClusterContainsServices { .. }
        | StateError::ClusterContainsTasks { .. }
        | StateError::ServiceNotActive(_)
        | StateError::ResourceInUse(_)
        | StateError::Conflict(_) => Status::failed_precondition(e.to_string()),
        StateError::Store(_) | StateError::Corrupt { .. } => Status::internal(e.to_string()),
    }
}

#[tonic::async_trait]
impl AgentService for Agents {
    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let peer = peer(&request);
        let r = request.into_inner();
        let token: berth_proto::join_token::JoinToken = r.token.parse().map_err(|e| {
            tracing::warn!(%peer, error = %e, "refused a join");
            Status::invalid_argument(format!("join: {e}"))
        })?;
        let tokens = self.join_tokens.clone();
        let presented = token.clone();
        // Redeeming commits to the store: keep it off the async workers.
        let redeemed = tokio::task::spawn_blocking(move || tokens.redeem(&presented))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if let Err(e) = redeemed {
            tracing::warn!(%peer, token_id = %token.id, hostname = %r.hostname, error = %e, "refused a join");
            return Err(match e {
                JoinError::State(e) => status(&e),
                e => Status::permission_denied(format!("join: {e}")),
            });
        }
        let cluster = if r.cluster.is_empty() {
            "default"
        } else {
            r.cluster.as_str()
        };
        let instance_arn = self.control_plane.new_instance_arn(cluster);
        let creds = self.credentials(&format!("berth-agent {}", r.hostname), &instance_arn)?;
        tracing::info!(%peer, token_id = %token.id, hostname = %r.hostname, container_instance = %instance_arn, "agent joined: issued its client certificate");
        Ok(Response::new(creds))
    }

    async fn renew(
        &self,
        request: Request<pb::RenewRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let Caller { instance_arn, .. } = caller(&self.control_plane, &request, "Renew")?;
        let id = crate::model::arn::resource_id(&instance_arn);
        let creds = self.credentials(&format!("berth-agent {id}"), &instance_arn)?;
        tracing::info!(container_instance = %instance_arn, "agent certificate renewed");
        Ok(Response::new(creds))
    }

    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let me = caller(&self.control_plane, &request, "Register")?;
        let mut reg = InstanceRegistration::try_from(request.into_inner())?;
        if reg
            .container_instance_arn
            .as_ref()
            .is_some_and(|a| *a != me.instance_arn)
        {
            tracing::warn!(container_instance = %me.instance_arn, claimed = ?reg.container_instance_arn, "an agent registered with another instance's ARN; its certificate's is used");
        }
        reg.container_instance_arn = Some(me.instance_arn);
        let cp = self.control_plane.clone();
        let instance = tokio::task::spawn_blocking(move || cp.register_instance(&reg))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| status(&e))?;
        tracing::info!(container_instance = %instance.arn, cluster = %instance.cluster, "agent registered");
        let cluster_arn = self
            .control_plane
            .arns_of(&instance.arn)
            .cluster(&instance.cluster);
        Ok(Response::new(pb::RegisterResponse {
            container_instance_arn: instance.arn,
            cluster_arn,
            heartbeat_interval_secs: u32::try_from(HEARTBEAT_INTERVAL.as_secs()).unwrap_or(5),
            protocol_version: berth_proto::PROTOCOL_VERSION,
        }))
    }

    type SessionStream = ReceiverStream<Result<pb::ControlMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let me = caller(&self.control_plane, &request, "Session")?;
        let mut inbound = request.into_inner();
        let hello = hello(&me, inbound.next().await)?;
        let cp = self.control_plane.clone();
        let arn = me.instance_arn;
        let expires_in =
            Duration::from_millis(u64::try_from(me.not_after_ms - cp.now_ms()).unwrap_or_default());
        // Every report is read before the session counts as open: a malformed Hello must
        // not leave the instance looking connected.
        let reports = hello
            .tasks
            .into_iter()
            .map(TaskReport::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let mut changes = cp.open_session(&arn).map_err(|e| status(&e))?;
        for report in &reports {
            if let Err(e) = cp.apply_report(&arn, report) {
                cp.close_session(&arn, &changes);
                return Err(status(&e));
            }
        }
        let mut delivered = Delivered::held(
            reports
                .iter()
                .map(|r| crate::model::arn::resource_id(&r.task_arn).to_owned()),
        );
        tracing::info!(container_instance = %arn, "agent session opened");
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut shutdown = self.shutdown.clone();
        let secrets = self.secrets.clone();
        let logs = self.logs.clone();
        let exec = self.exec.clone();
        let (exec_handle, mut exec_starts) = exec.attach_agent(&arn);
        tokio::spawn(async move {
            let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
            // Any message from the agent counts as a sign of life. The
            // session ends the moment the window passes in silence (not on
            // the next heartbeat tick, up to 2 s later): a lost host's
            // service tasks move that much sooner.
            let window = HEARTBEAT_INTERVAL * MISSED_HEARTBEATS;
            let silence = tokio::time::sleep(window);
            tokio::pin!(silence);
            let expired = tokio::time::sleep(expires_in);
            tokio::pin!(expired);
            // The first desired set goes out at once.
            if tx
                .send(Ok(desired_message(&cp, &secrets, &arn, &mut delivered)))
                .await
                .is_err()
            {
                exec.detach_agent(&arn, &exec_handle);
                cp.close_session(&arn, &changes);
                return;
            }
            changes.mark_unchanged();
            // awslogs batches are stored in order by a writer of their own, so the next
            // batch is read while the one before commits.
            let (log_batches, stored) = tokio::sync::mpsc::channel(4);
            tokio::spawn(write_log_batches(cp.clone(), logs, stored, tx.clone()));
            loop {
                tokio::select! {
                    alive = changes.changed() => {
                        if alive.is_err() { break; } // replaced by a newer session
                        changes.mark_unchanged();
                        // A peer that stops reading must not hold this loop.
                        let sent = tokio::time::timeout(HEARTBEAT_INTERVAL, tx.send(Ok(desired_message(&cp, &secrets, &arn, &mut delivered)))).await;
                        if !matches!(sent, Ok(Ok(()))) { break; }
                        // Deregistered: the empty task set above was its last word.
                        if cp.instance_revoked(&arn) {
                            tracing::warn!(container_instance = %arn, "ending the session of a deregistered instance: its certificate is revoked");
                            let _ = tx.try_send(Err(Status::permission_denied(format!("container instance {arn} was deregistered, which revoked this agent's certificate"))));
                            break;
                        }
                    }
                    () = &mut expired => {
                        tracing::warn!(container_instance = %arn, "ending an agent session: its certificate has expired (the agent renews before then and reconnects)");
                        break;
                    }
                    () = &mut silence => {
                        tracing::warn!(container_instance = %arn, silent_ms = window.as_millis(), "agent missed its heartbeats: marking it disconnected");
                        break;
                    }
                    Some(start) = exec_starts.recv() => {
                        let m = pb::ControlMessage { kind: Some(pb::control_message::Kind::ExecStart(start)) };
                        if tx.send(Ok(m)).await.is_err() { break; }
                    }
                    _ = heartbeat.tick() => {
                        let hb = pb::ControlMessage { kind: Some(pb::control_message::Kind::Heartbeat(pb::Heartbeat { sent_at_ms: cp.now_ms() })) };
                        if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(Ok(hb)) { break; }
                    }
                    msg = inbound.next() => { silence.as_mut().reset(tokio::time::Instant::now() + window); cp.agent_seen(&arn); match msg {
                        Some(Ok(pb::AgentMessage { kind: Some(pb::agent_message::Kind::TaskStatus(s)) })) => apply_task_status(&cp, &arn, s).await,
                        Some(Ok(pb::AgentMessage { kind: Some(pb::agent_message::Kind::LogBatch(b)) })) => {
                            if log_batches.send(b).await.is_err() { break; }
                            // Waiting for the writer (a slow disk) is not the agent's silence.
                            silence.as_mut().reset(tokio::time::Instant::now() + window);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => { tracing::info!(container_instance = %arn, error = %e, "agent session ended"); break; }
                        None => { tracing::info!(container_instance = %arn, "agent closed its session"); break; }
                    }},
                    // Ending the response stream lets the agent see a clean
                    // end of session and reconnect to the next control plane.
                    true = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => {
                        tracing::info!(container_instance = %arn, "closing the agent session: shutting down");
                        break;
                    }
                }
            }
            exec.detach_agent(&arn, &exec_handle);
            cp.close_session(&arn, &changes);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type ExecStream = ReceiverStream<Result<pb::ExecDown, Status>>;

    async fn exec(
        &self,
        request: Request<Streaming<pb::ExecUp>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let me = caller(&self.control_plane, &request, "Exec")?;
        let mut output = request.into_inner();
        let opened = match output.next().await {
            Some(Ok(pb::ExecUp {
                kind: Some(pb::exec_up::Kind::Opened(o)),
            })) => o,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "exec: the first message must be ExecOpened",
                ))
            }
        };
        let (input, rx) = tokio::sync::mpsc::channel(64);
        let stream = if opened.error.is_empty() {
            Ok(AgentStream { output, input })
        } else {
            Err(opened.error)
        };
        if !self
            .exec
            .opened(&opened.session_id, &me.instance_arn, stream)
        {
            return Err(Status::not_found(format!(
                "exec session {} is not waiting for its agent",
                opened.session_id
            )));
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The session's first message, which must be the caller's own Hello.
fn hello(
    me: &Caller,
    first: Option<Result<pb::AgentMessage, Status>>,
) -> Result<pb::Hello, Status> {
    let hello = match first {
        Some(Ok(pb::AgentMessage {
            kind: Some(pb::agent_message::Kind::Hello(h)),
        })) => h,
        Some(Err(e)) => return Err(e),
        _ => {
            return Err(Status::invalid_argument(
                "session: the first message must be Hello",
            ))
        }
    };
    if hello.container_instance_arn != me.instance_arn {
        tracing::warn!(container_instance = %me.instance_arn, claimed = %hello.container_instance_arn, "refused a session: an agent spoke for another instance");
        return Err(Status::permission_denied(format!(
            "session: this agent's certificate is for container instance {}, not {}",
            me.instance_arn, hello.container_instance_arn
        )));
    }
    Ok(hello)
}

/// Records an agent's report on one of its tasks (off the async workers: it commits).
async fn apply_task_status(cp: &Arc<ControlPlane>, arn: &str, s: pb::TaskStatus) {
    let report = match TaskReport::try_from(s) {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(container_instance = %arn, error = %e, "ignored a task report");
            return;
        }
    };
    let (cp2, arn2) = (cp.clone(), arn.to_owned());
    let r = tokio::task::spawn_blocking(move || cp2.apply_report(&arn2, &report)).await;
    if let Ok(Err(e)) = r {
        tracing::error!(container_instance = %arn, error = %e, "could not record a task report");
    }
}

/// Stores a session's awslogs batches in the order they came, answering each with its
/// `LogAck`; ends with the session.
async fn write_log_batches(
    cp: Arc<ControlPlane>,
    logs: Arc<Logs>,
    mut batches: tokio::sync::mpsc::Receiver<pb::LogBatch>,
    acks: tokio::sync::mpsc::Sender<Result<pb::ControlMessage, Status>>,
) {
    while let Some(b) = batches.recv().await {
        let ack = store_log_batch(&cp, &logs, b).await;
        if acks.send(Ok(ack)).await.is_err() {
            return;
        }
    }
}

/// Stores an agent's awslogs batch (off the async workers: it commits to disk) and
/// makes the `LogAck` that tells the agent whether it may move past it.
async fn store_log_batch(
    cp: &Arc<ControlPlane>,
    logs: &Arc<Logs>,
    b: pb::LogBatch,
) -> pb::ControlMessage {
    let batch_id = b.batch_id;
    let (task_arn, batch) = convert::log_batch(b);
    let region = cp.arns_of(&task_arn).region;
    let logs = logs.clone();
    let stored = tokio::task::spawn_blocking(move || logs.append_agent_batch(&region, &batch))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = &stored {
        tracing::warn!(task = %task_arn, error = %e, "could not store an awslogs batch; the agent will resend it");
    }
    pb::ControlMessage {
        kind: Some(pb::control_message::Kind::LogAck(pb::LogAck {
            batch_id,
            error: stored.err().unwrap_or_default(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_lost_once_its_heartbeat_window_has_passed() {
        let window = HEARTBEAT_INTERVAL * MISSED_HEARTBEATS;
        assert_eq!(
            i64::try_from(window.as_millis()).unwrap(),
            crate::services::hosts::DEFAULT_LOST_AFTER_MS
        );
    }
}
