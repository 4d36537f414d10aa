//! Agent identity end to end: each agent certificate is bound to one container
//! instance, lives briefly and is renewed over the session, is refused for another
//! instance's tasks, and is revoked with its instance, ending the agent's session at once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use berth_agent::tls::{self, ControlPlaneEndpoint};
use berth_e2e::{binary, poll, Berth};
use berth_ecs::{InstanceStatus, TaskStatus};
use berth_proto::agent_cert::AgentCertificate;
use berth_proto::join_token::JoinToken;
use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_client::AgentServiceClient;
use serde_json::json;
use tokio_stream::StreamExt as _;

fn endpoint(b: &Berth) -> ControlPlaneEndpoint {
    format!("https://127.0.0.1:{}", b.agent_port)
        .parse()
        .unwrap()
}

fn daemon_log(b: &Berth, file: &str) -> String {
    std::fs::read_to_string(b.dir.path().join(file)).unwrap_or_default()
}

fn wait_log(b: &Berth, file: &str, needle: &str, within: Duration) -> Result<()> {
    poll(&format!("'{needle}' in {file}"), within, || {
        Ok(daemon_log(b, file).contains(needle).then_some(()))
    })
}

/// Registers an idle task definition and runs one task of it to RUNNING.
fn idle_task(b: &Berth) -> Result<String> {
    b.register_task_definition(&json!({
        "family": "idle",
        "containerDefinitions": [{
            "name": "main", "image": b.demo_image, "memory": 16, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        }]
    }))?;
    let task = b.run_task("idle")?;
    b.wait_task_status(
        "default",
        &task,
        TaskStatus::Running.as_str(),
        Duration::from_secs(60),
    )?;
    Ok(task)
}

fn register_request(claimed: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        cluster: "default".into(),
        container_instance_arn: claimed.into(),
        hostname: "identity-test".into(),
        protocol_version: berth_proto::PROTOCOL_VERSION,
        resources: Some(pb::Resources {
            cpu: 1024,
            memory_mib: 1024,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn hello(arn: &str, tasks: Vec<pb::TaskStatus>) -> pb::AgentMessage {
    pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
            container_instance_arn: arn.into(),
            tasks,
        })),
    }
}

fn stopped(task_arn: &str) -> pb::TaskStatus {
    pb::TaskStatus {
        task_arn: task_arn.into(),
        last_status: pb::TaskState::Stopped.into(),
        stopped_reason: "forged".into(),
        ..Default::default()
    }
}

#[test]
fn an_agent_speaks_only_for_its_own_instance_until_it_is_revoked() -> Result<()> {
    let mut b = Berth::start()?;
    let theirs = b.wait_connected()?;
    let task = idle_task(&b)?;
    // A worker of its own: the session's stream keeps flowing between the calls below.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let ep = endpoint(&b);
    let token: JoinToken = b.join_token(&[])?.parse()?;
    let dir = tempfile::tempdir()?;
    let id = rt.block_on(tls::identity(dir.path(), &ep, Some(&token), "default"))?;
    let first = AgentCertificate::from_pem(&id.cert_pem)?;
    let mine = first.instance_arn.clone().context("a bound certificate")?;
    ensure!(mine != theirs && mine.contains(":container-instance/default/"));

    let mut client =
        rt.block_on(async { tls::connect(&ep, &id).await.map(AgentServiceClient::new) })?;
    // Registering under the other agent's ARN registers the certificate's own.
    let registered = rt
        .block_on(client.register(register_request(&theirs)))?
        .into_inner();
    assert_eq!(registered.container_instance_arn, mine);
    wait_log(
        &b,
        "controlplane.log",
        "its certificate's is used",
        Duration::from_secs(5),
    )?;

    // A session speaking for the other instance is refused.
    let refused = rt
        .block_on(client.session(tokio_stream::iter(vec![hello(&theirs, vec![])])))
        .expect_err("a session for another instance");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");

    // Its own session, reporting the other instance's task as stopped, in its Hello
    // and again later: both refused, and the task runs on.
    let (out, out_rx) = tokio::sync::mpsc::channel(4);
    rt.block_on(out.send(hello(&mine, vec![stopped(&task)])))?;
    let mut inbound = rt
        .block_on(client.session(tokio_stream::wrappers::ReceiverStream::new(out_rx)))?
        .into_inner();
    rt.block_on(out.send(pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::TaskStatus(stopped(&task))),
    }))?;
    poll(
        "both forged reports to be refused",
        Duration::from_secs(5),
        || {
            let n = daemon_log(&b, "controlplane.log")
                .matches("refused a report on a task of another instance")
                .count();
            Ok((n >= 2).then_some(()))
        },
    )?;
    let described = b.describe_task("default", &task)?;
    assert_eq!(
        described["lastStatus"],
        TaskStatus::Running.as_str(),
        "{described}"
    );

    // Renewal: a fresh certificate for the same instance.
    let renewed = rt.block_on(client.renew(pb::RenewRequest {}))?.into_inner();
    let second = AgentCertificate::from_pem(&renewed.certificate_pem)?;
    assert_eq!(second.instance_arn.as_deref(), Some(mine.as_str()));
    assert!(second.not_after_ms >= first.not_after_ms);
    assert_ne!(renewed.certificate_pem, id.cert_pem);

    // Deregistering the instance revokes its certificate: the open session ends at
    // once, and renewing or registering again is refused.
    let started = Instant::now();
    b.aws(&[
        "ecs",
        "deregister-container-instance",
        "--container-instance",
        &mine,
        "--force",
    ])?;
    let ended = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match inbound.next().await {
                    Some(Ok(_)) => {}
                    Some(Err(s)) => return Ok(s),
                    None => bail!("the session ended without saying why"),
                }
            }
        })
        .await
        .context("the revoked session did not end")?
    })?;
    println!(
        "revoked session ended {:?} after the deregister call began",
        started.elapsed()
    );
    assert_eq!(ended.code(), tonic::Code::PermissionDenied, "{ended}");
    assert!(ended.message().contains("revoked"), "{ended}");
    for refused in [
        rt.block_on(client.renew(pb::RenewRequest {})).err(),
        rt.block_on(client.register(register_request(""))).err(),
    ] {
        let status = refused.context("a revoked certificate was served")?;
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    }
    let described = b.describe_task("default", &task)?;
    assert_eq!(
        described["lastStatus"],
        TaskStatus::Running.as_str(),
        "{described}"
    );
    Ok(())
}

fn berth_cli(b: &Berth, args: &[&str]) -> Result<String> {
    let out = Command::new(binary("berth"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_DATA_DIR", b.dir.path())
        .env("BERTH_AWS_ENV", b.data_dir().join("aws.env"))
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success(),
        "berth {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn a_short_lived_certificate_is_renewed_and_revoking_cuts_the_agent_off() -> Result<()> {
    // Six seconds: the agent renews every four.
    let mut b = Berth::start_with(&["--agent-cert-ttl-secs", "6"])?;
    let arn = b.wait_connected()?;
    let task = idle_task(&b)?;
    let pem = || std::fs::read_to_string(b.agent_dir().join("pki/agent.pem"));
    let first = tls::AgentIdentity::load(&b.agent_dir())?.context("the agent's identity")?;
    let mut seen = vec![pem()?];
    poll(
        "the agent to renew its certificate three times",
        Duration::from_secs(40),
        || {
            let p = pem()?;
            if seen.last() != Some(&p) {
                seen.push(p);
            }
            Ok((seen.len() >= 4).then_some(()))
        },
    )?;
    for p in &seen {
        let cert = AgentCertificate::from_pem(p)?;
        assert_eq!(cert.instance_arn.as_deref(), Some(arn.as_str()));
        assert_eq!(cert.not_after_ms - cert.not_before_ms, 6_000);
    }
    // The first certificate has expired by now: refused at the handshake.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let expired = rt.block_on(async {
        let channel = tls::connect(&endpoint(&b), &first).await?;
        AgentServiceClient::new(channel)
            .register(register_request(&arn))
            .await
            .map_err(anyhow::Error::from)
    });
    assert!(expired.is_err(), "an expired certificate was accepted");
    wait_log(
        &b,
        "controlplane.log",
        "refused an agent connection: TLS handshake failed",
        Duration::from_secs(5),
    )?;
    // Always renewed in time: no session outlived its certificate.
    let cp_log = daemon_log(&b, "controlplane.log");
    assert!(!cp_log.contains("its certificate has expired"), "{cp_log}");
    assert!(daemon_log(&b, "agent.log").contains("agent certificate renewed"));
    let t = b.describe_task("default", &task)?;
    assert_eq!(t["lastStatus"], TaskStatus::Running.as_str(), "{t}");
    b.wait_connected()?;

    // `berth instance revoke`: the agent's session ends within a second of the call,
    // its task counts as stopped, and the agent stops its container.
    let started = Instant::now();
    let said = berth_cli(&b, &["instance", "revoke", &arn])?;
    let returned = started.elapsed();
    assert!(said.contains("revoked"), "{said}");
    poll("the agent to be cut off", Duration::from_secs(1), || {
        Ok(daemon_log(&b, "agent.log")
            .contains("revoked this agent's certificate")
            .then_some(()))
    })?;
    println!(
        "berth instance revoke returned after {returned:?}; the agent had been cut off by {:?}",
        started.elapsed()
    );
    let t = b.describe_task("default", &task)?;
    assert_eq!(t["lastStatus"], TaskStatus::Stopped.as_str(), "{t}");
    let task_id = task.rsplit('/').next().unwrap_or_default().to_owned();
    poll(
        "the agent to stop the revoked instance's container",
        Duration::from_secs(30),
        || Ok((!b.containers()?.iter().any(|c| c.starts_with(&task_id))).then_some(())),
    )?;
    let d = b.aws(&[
        "ecs",
        "describe-container-instances",
        "--container-instances",
        &arn,
    ])?;
    assert_eq!(d["containerInstances"][0]["agentConnected"], false, "{d}");
    assert_eq!(
        d["containerInstances"][0]["status"],
        InstanceStatus::Inactive.as_str(),
        "{d}"
    );
    // Its retries are refused.
    wait_log(
        &b,
        "controlplane.log",
        "refused an agent call",
        Duration::from_secs(15),
    )
}

/// `aws ecs list-clusters` verifying the API with the CA bundle `bundle`; whether it did.
fn api_verifies_with(b: &Berth, bundle: &std::path::Path) -> Result<bool> {
    let out = Command::new("aws")
        .args(["ecs", "list-clusters", "--output", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", b.dir.path())
        .envs(b.aws_env()?)
        .env("AWS_CA_BUNDLE", bundle)
        .stdin(Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() || stderr.contains("SSL"),
        "failed, but not on the certificate: {stderr}"
    );
    Ok(out.status.success())
}

/// The CA certificates an agent trusts, by their SHA-256 (DER), as join tokens pin them.
fn agent_trusts(b: &Berth) -> Result<Vec<String>> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let pem = std::fs::read_to_string(b.agent_dir().join("pki/ca.pem"))?;
    pem.split("-----END CERTIFICATE-----")
        .filter_map(|block| block.split("-----BEGIN CERTIFICATE-----").nth(1))
        .map(|b64| {
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.split_whitespace().collect::<String>())?;
            Ok(hex::encode(sha2::Sha256::digest(der)))
        })
        .collect()
}

#[test]
fn the_cluster_ca_rotates_without_downtime_and_can_be_distrusted_at_once() -> Result<()> {
    // Six-second certificates: agents renew every four, and a rotated-out CA is trusted
    // for six.
    let mut b = Berth::start_with(&["--agent-cert-ttl-secs", "6"])?;
    b.wait_connected()?;
    let task = idle_task(&b)?;
    let first_pin: JoinToken = b.join_token(&[])?.parse()?;
    let old_bundle = b.dir.path().join("old-ca.pem");
    std::fs::copy(b.data_dir().join("ca.pem"), &old_bundle)?;

    let said = berth_cli(&b, &["ca", "rotate"])?;
    let token: JoinToken = b.join_token(&[])?.parse()?;
    assert_ne!(token.ca_fingerprint, first_pin.ca_fingerprint);
    assert!(said.contains(&token.ca_fingerprint), "{said}");
    // API clients with the old bundle, or the new one aws.env points at, verify the API.
    assert!(api_verifies_with(&b, &old_bundle)?);
    assert!(api_verifies_with(&b, &b.data_dir().join("ca.pem"))?);
    // The agent renews under the new CA and learns it, without losing its session.
    poll(
        "the agent to trust the new CA",
        Duration::from_secs(20),
        || {
            Ok(agent_trusts(&b)?
                .contains(&token.ca_fingerprint)
                .then_some(()))
        },
    )?;
    let cert = AgentCertificate::from_pem(&std::fs::read_to_string(
        b.agent_dir().join("pki/agent.pem"),
    )?)?;
    assert_ne!(cert.issuer, "Berth cluster CA", "{cert:?}");
    // Six seconds on, the previous CA is dropped: the old bundle no longer verifies.
    wait_log(
        &b,
        "controlplane.log",
        "the previous cluster CA is no longer trusted",
        Duration::from_secs(15),
    )?;
    assert!(!api_verifies_with(&b, &old_bundle)?);
    assert!(api_verifies_with(&b, &b.data_dir().join("ca.pem"))?);
    b.wait_connected()?;
    let described = b.describe_task("default", &task)?;
    assert_eq!(
        described["lastStatus"],
        TaskStatus::Running.as_str(),
        "{described}"
    );
    assert!(!daemon_log(&b, "controlplane.log").contains("its certificate has expired"));

    // A leaked CA key: rotate and distrust it at once. The agent, whose certificate it
    // signed, is cut off and stays out.
    let said = berth_cli(&b, &["ca", "rotate", "--distrust-previous"])?;
    assert!(said.contains("no longer trusted"), "{said}");
    wait_log(
        &b,
        "controlplane.log",
        "its certificate's CA is no longer trusted",
        Duration::from_secs(5),
    )?;
    wait_log(
        &b,
        "controlplane.log",
        "refused an agent connection: TLS handshake failed",
        Duration::from_secs(15),
    )
}
