//! Who an agent is: the container instance its client certificate is bound to. Every
//! call but `Join` is made as that instance, and refused once the certificate has
//! expired or the instance was deregistered (which revokes it).

use berth_proto::agent_cert::AgentCertificate;
use tonic::{Request, Status};

use crate::pki::ClusterCa;
use crate::state::ControlPlane;

/// The instance a call comes from, as its certificate says.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub instance_arn: String,
    /// When the certificate expires (Unix ms): a session ends then, unless the
    /// agent has renewed and reconnected before.
    pub not_after_ms: i64,
    /// The CA that signed the certificate: a session ends once that CA is no longer trusted.
    pub issuer: String,
}

/// The caller's address, for log lines.
pub(super) fn peer<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

/// The calling agent's instance, checked: a client certificate from the cluster CA (the
/// TLS layer has checked the signature and the dates at the handshake), bound to an
/// instance, not expired since (a connection can outlive its certificate), signed by a CA
/// still trusted (the CA may have rotated since), and not revoked.
pub(super) fn caller<T>(
    cp: &ControlPlane,
    ca: &ClusterCa,
    request: &Request<T>,
    call: &str,
) -> Result<Caller, Status> {
    let refuse = |status: Status| {
        let peer = peer(request);
        tracing::warn!(%peer, call, reason = status.message(), "refused an agent call");
        Err(status)
    };
    let Some(der) = request.peer_certs().and_then(|c| c.first().cloned()) else {
        return refuse(Status::unauthenticated(format!(
            "{call} needs the agent's client certificate: join first with a token from `berth join-token create`"
        )));
    };
    let cert = match AgentCertificate::parse(&der) {
        Ok(c) => c,
        Err(e) => return refuse(Status::unauthenticated(format!("{call}: {e}"))),
    };
    let Some(instance_arn) = cert.instance_arn else {
        return refuse(Status::unauthenticated(format!(
            "{call}: the agent's certificate names no container instance (it is from before certificates were bound to instances): remove the agent's pki directory and join again with a new token"
        )));
    };
    if cert.not_after_ms <= cp.now_ms() {
        return refuse(Status::unauthenticated(format!(
            "{call}: the agent's certificate for {instance_arn} has expired: an agent renews it before then; one that could not must join again with a new token"
        )));
    }
    if !ca.trusts_issuer(&cert.issuer) {
        return refuse(Status::unauthenticated(format!(
            "{call}: the agent's certificate for {instance_arn} is from a cluster CA that is no longer trusted (it was rotated): join again with a new token"
        )));
    }
    if cp.instance_revoked(&instance_arn) {
        return refuse(Status::permission_denied(format!(
            "{call}: container instance {instance_arn} was deregistered, which revoked its agent's certificate"
        )));
    }
    Ok(Caller {
        instance_arn,
        not_after_ms: cert.not_after_ms,
        issuer: cert.issuer,
    })
}
