//! The gRPC service agents talk to: registration and one long-lived session
//! per agent. Protobuf is converted to domain values in `convert` and nowhere else.

mod convert;
mod desired;
mod identity;
mod session;

use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_server::AgentService;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use self::convert::ConvertError;
use self::desired::Delivered;
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
            ca_certificate_pem: self.ca.trust_bundle_pem(),
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
        | StateError::TaskSetNotFound(_)
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
        let Caller { instance_arn, .. } = caller(&self.control_plane, &self.ca, &request, "Renew")?;
        let id = crate::model::arn::resource_id(&instance_arn);
        let creds = self.credentials(&format!("berth-agent {id}"), &instance_arn)?;
        tracing::info!(container_instance = %instance_arn, "agent certificate renewed");
        Ok(Response::new(creds))
    }

    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let me = caller(&self.control_plane, &self.ca, &request, "Register")?;
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
        let me = caller(&self.control_plane, &self.ca, &request, "Session")?;
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
        let changes = cp.open_session(&arn).map_err(|e| status(&e))?;
        for report in &reports {
            if let Err(e) = cp.apply_report(&arn, report) {
                cp.close_session(&arn, &changes);
                return Err(status(&e));
            }
        }
        let delivered = Delivered::held(
            reports
                .iter()
                .map(|r| crate::model::arn::resource_id(&r.task_arn).to_owned()),
        );
        tracing::info!(container_instance = %arn, "agent session opened");
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (exec_handle, exec_starts) = self.exec.attach_agent(&arn);
        let open = session::Open {
            cp,
            secrets: self.secrets.clone(),
            logs: self.logs.clone(),
            exec: self.exec.clone(),
            ca: self.ca.clone(),
            shutdown: self.shutdown.clone(),
            arn,
            issuer: me.issuer,
            expires_in,
            changes,
            delivered,
            exec_handle,
        };
        tokio::spawn(open.run(inbound, tx, exec_starts));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type ExecStream = ReceiverStream<Result<pb::ExecDown, Status>>;

    async fn exec(
        &self,
        request: Request<Streaming<pb::ExecUp>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let me = caller(&self.control_plane, &self.ca, &request, "Exec")?;
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
