//! The API over TLS: by default with a certificate from the cluster CA, which the aws
//! CLI verifies through `aws.env`'s `AWS_CA_BUNDLE` (and refuses with another bundle);
//! with the operator's certificate files, picked up when they change, without a restart;
//! plain HTTP only when asked for, and only on loopback.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use berth_e2e::{binary, free_port, poll, Berth};

fn openssl(args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .context("running openssl")?;
    anyhow::ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// An operator's CA in `dir` (`ca.crt`, `ca.key`).
fn operator_ca(dir: &Path) -> Result<String> {
    let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=operator CA",
        "-keyout",
        &key.display().to_string(),
        "-out",
        &crt.display().to_string(),
    ])?;
    Ok(crt.display().to_string())
}

/// A server certificate for 127.0.0.1 named `name`, issued by `operator_ca`; its files.
fn leaf(dir: &Path, name: &str) -> Result<(String, String)> {
    let path = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
    let ext = path("ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )?;
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &path("key"),
        "-out",
        &path("csr"),
    ])?;
    let (ca_crt, ca_key) = (
        dir.join("ca.crt").display().to_string(),
        dir.join("ca.key").display().to_string(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("csr"),
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &path("crt"),
    ])?;
    Ok((path("crt"), path("key")))
}

/// The subject CN of the certificate the API presents now.
fn presented_cn(port: u16) -> Result<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -subject"))
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn the_api_speaks_tls_the_aws_cli_verifies_it_and_refuses_another_ca() -> Result<()> {
    let b = Berth::start()?;
    let endpoint = b.aws_env_var("AWS_ENDPOINT_URL").context("no endpoint")?;
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let bundle = b
        .aws_env_var("AWS_CA_BUNDLE")
        .context("aws.env has no AWS_CA_BUNDLE")?;
    assert!(std::fs::read_to_string(&bundle)?.contains("BEGIN CERTIFICATE"));
    b.aws(&["ecs", "list-clusters"])?;

    // The system's bundle does not know the cluster CA: the CLI refuses the server.
    let out = Command::new("aws")
        .args(["ecs", "list-clusters"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", b.dir.path())
        .envs(
            b.aws_env()?
                .into_iter()
                .filter(|(k, _)| k != "AWS_CA_BUNDLE"),
        )
        .env("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("CERTIFICATE_VERIFY_FAILED")
            || stderr.contains("certificate verify failed"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn operator_certificates_are_reloaded_when_they_change() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = operator_ca(dir.path())?;
    let (first_cert, first_key) = leaf(dir.path(), "first")?;
    let (cert, key) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    std::fs::copy(&first_cert, &cert)?;
    std::fs::copy(&first_key, &key)?;
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut b = Berth::start_with(&[
        "--api-tls-cert",
        &cert,
        "--api-tls-key",
        &key,
        "--api-tls-ca-bundle",
        &ca,
    ])?;
    assert_eq!(b.aws_env_var("AWS_CA_BUNDLE").as_deref(), Some(ca.as_str()));
    b.aws(&["ecs", "list-clusters"])?;
    assert!(
        presented_cn(b.api_port)?.contains("first"),
        "{}",
        presented_cn(b.api_port)?
    );

    // New files in place (as a renewal does): served from the next handshake on.
    let (new_cert, new_key) = leaf(dir.path(), "second")?;
    std::fs::copy(&new_key, &key)?;
    std::fs::copy(&new_cert, &cert)?;
    poll(
        "the renewed certificate",
        std::time::Duration::from_secs(10),
        || Ok(presented_cn(b.api_port)?.contains("second").then_some(())),
    )?;
    b.aws(&["ecs", "list-clusters"])
        .context("the renewed certificate verifies")?;
    b.kill9_agent();
    Ok(())
}

#[test]
fn plain_http_is_for_loopback_only() -> Result<()> {
    let b = Berth::start_with(&["--api-plain-http"])?;
    let endpoint = b.aws_env_var("AWS_ENDPOINT_URL").context("no endpoint")?;
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_eq!(b.aws_env_var("AWS_CA_BUNDLE"), None);
    b.aws(&["ecs", "list-clusters"])?;

    let data = tempfile::tempdir()?;
    let out = Command::new(binary("berth-controlplane"))
        .env("BERTH_CONTROLPLANE_CONFIG", "/dev/null")
        .arg("--data-dir")
        .arg(data.path())
        .args(["--api-listen", &format!("0.0.0.0:{}", free_port())])
        .args(["--agent-listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--api-plain-http")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("only allowed on a loopback address"),
        "{stderr}"
    );
    Ok(())
}
