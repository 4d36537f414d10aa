//! Agent sessions over mutual TLS: joining with a token, and what is
//! refused — a reused or wrong token, a token for another cluster's CA, a
//! call without a client certificate, a certificate from another CA — each
//! with a clear log line and no change of state.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use berth_agent::tls::{self, AgentIdentity, ControlPlaneEndpoint, TlsError};
use berth_e2e::{poll, Berth};
use berth_proto::join_token::JoinToken;
use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_client::AgentServiceClient;

fn endpoint(b: &Berth) -> ControlPlaneEndpoint {
    format!("https://127.0.0.1:{}", b.agent_port)
        .parse()
        .unwrap()
}

fn controlplane_log(b: &Berth) -> String {
    std::fs::read_to_string(b.dir.path().join("controlplane.log")).unwrap_or_default()
}

fn instance_count(b: &Berth) -> Result<usize> {
    let v = b.aws(&["ecs", "list-container-instances", "--cluster", "default"])?;
    Ok(v["containerInstanceArns"].as_array().map_or(0, Vec::len))
}

fn register_request() -> pb::RegisterRequest {
    pb::RegisterRequest {
        cluster: "default".into(),
        hostname: "tls-test".into(),
        protocol_version: berth_proto::PROTOCOL_VERSION,
        resources: Some(pb::Resources {
            cpu: 1024,
            memory_mib: 1024,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An agent of another protocol version (those before the field send none) is refused
/// before anything is registered or sent, saying why.
async fn refuses_protocol_version_0(ep: &ControlPlaneEndpoint, id: &AgentIdentity) -> Result<()> {
    let mut c = AgentServiceClient::new(tls::connect(ep, id).await?);
    let old = pb::RegisterRequest {
        protocol_version: 0,
        ..register_request()
    };
    match c.register(old).await {
        Ok(_) => anyhow::bail!("an agent of protocol version 0 was registered"),
        Err(s) if s.code() == tonic::Code::FailedPrecondition => {
            ensure!(s.message().contains("protocol version 0"), "{s}");
            Ok(())
        }
        Err(s) => anyhow::bail!("refused, but not as FAILED_PRECONDITION: {s}"),
    }
}

/// Joins (or loads the identity saved in `dir`) for the default cluster.
fn join(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    ep: &ControlPlaneEndpoint,
    token: Option<&JoinToken>,
) -> Result<AgentIdentity, TlsError> {
    rt.block_on(tls::identity(dir, ep, token, "default"))
}

/// Waits for a line in the control plane's log (it is written asynchronously).
fn wait_log(b: &Berth, needle: &str) -> Result<()> {
    poll(
        &format!("'{needle}' in the control plane's log"),
        Duration::from_secs(10),
        || Ok(controlplane_log(b).contains(needle).then_some(())),
    )
}

#[test]
fn joining_with_tokens_and_what_is_refused() -> Result<()> {
    let b = Berth::start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ep = endpoint(&b);
    let before = instance_count(&b)?;

    // A good join: certificate saved, and it opens Register.
    let token: JoinToken = b.join_token(&[])?.parse()?;
    let joined = tempfile::tempdir()?;
    let id = join(&rt, joined.path(), &ep, Some(&token))?;
    assert!(joined.path().join("pki/agent.key").exists());
    let resp = rt.block_on(async {
        let mut c = AgentServiceClient::new(tls::connect(&ep, &id).await?);
        anyhow::Ok(c.register(register_request()).await?.into_inner())
    })?;
    assert!(resp.container_instance_arn.contains(":container-instance/"));
    assert_eq!(resp.protocol_version, berth_proto::PROTOCOL_VERSION);
    assert_eq!(instance_count(&b)?, before + 1);
    rt.block_on(refuses_protocol_version_0(&ep, &id))?;
    assert_eq!(instance_count(&b)?, before + 1);
    // A saved identity is used as it is: no token needed again.
    let again = join(&rt, joined.path(), &ep, None)?;
    assert_eq!(again.cert_pem, id.cert_pem);

    // The same single-use token again: refused, nothing written.
    let second = tempfile::tempdir()?;
    let err = join(&rt, second.path(), &ep, Some(&token))
        .expect_err("a used single-use token must be refused");
    assert!(
        matches!(&err, TlsError::Refused(m) if m.contains("already used")),
        "{err}"
    );
    assert!(!second.path().join("pki").exists());
    wait_log(&b, "refused a join")?;

    // A wrong secret: refused, and the token is not used up by it.
    let fresh: JoinToken = b.join_token(&[])?.parse()?;
    let mut wrong = fresh.clone();
    wrong.secret = "0".repeat(32);
    let err =
        join(&rt, second.path(), &ep, Some(&wrong)).expect_err("a wrong secret must be refused");
    assert!(
        matches!(&err, TlsError::Refused(m) if m.contains("wrong secret")),
        "{err}"
    );
    join(&rt, second.path(), &ep, Some(&fresh))
        .context("the right secret still joins after a wrong one")?;

    // A token pinning another CA: the agent stops before sending anything.
    let mut foreign_pin: JoinToken = b.join_token(&[])?.parse()?;
    foreign_pin.ca_fingerprint = "ab".repeat(32);
    let third = tempfile::tempdir()?;
    let err = join(&rt, third.path(), &ep, Some(&foreign_pin))
        .expect_err("a CA mismatch must stop the join");
    assert!(matches!(err, TlsError::CaMismatch { .. }), "{err}");
    // (The join log lines, accepted or refused, name the token and the host.)
    assert!(
        !controlplane_log(&b).contains(&format!("token_id={} hostname", foreign_pin.id)),
        "the token went to a server whose CA did not match"
    );

    // No client certificate: TLS works, Register is refused.
    let ca_only = rt.block_on(async {
        let ca = std::fs::read_to_string(joined.path().join("pki/ca.pem"))?;
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca))
            .domain_name("127.0.0.1");
        let ch = tonic::transport::Endpoint::from_shared(ep.url.clone())?
            .tls_config(tls)?
            .connect()
            .await?;
        anyhow::Ok(
            AgentServiceClient::new(ch)
                .register(register_request())
                .await,
        )
    })?;
    let status = ca_only.expect_err("Register without a client certificate");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
    wait_log(&b, "needs the agent's client certificate")?;

    // A certificate from another cluster's CA: the handshake is refused.
    let other = Berth::start()?;
    let other_dir = tempfile::tempdir()?;
    let other_token: JoinToken = other.join_token(&[])?.parse()?;
    let foreign_id = join(&rt, other_dir.path(), &endpoint(&other), Some(&other_token))?;
    let foreign = AgentIdentity {
        // Trust our CA (so the server side is what refuses), present theirs.
        ca_pem: id.ca_pem.clone(),
        ..foreign_id
    };
    let refused = rt.block_on(async {
        let mut c = AgentServiceClient::new(tls::connect(&ep, &foreign).await?);
        anyhow::Ok(c.register(register_request()).await?)
    });
    assert!(
        refused.is_err(),
        "a certificate from another CA was accepted"
    );
    wait_log(&b, "refused an agent connection: TLS handshake failed")?;
    assert_eq!(
        instance_count(&b)?,
        before + 1,
        "refusals must not register instances"
    );
    Ok(())
}
