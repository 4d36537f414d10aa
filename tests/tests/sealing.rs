//! Secrets at rest: Secrets Manager values and SSM parameters never reach the store file
//! in clear; the master key lives apart from it, can be rotated, and a wrong one is
//! refused at start with what to do.

use std::process::Command;

use anyhow::Result;
use berth_e2e::{binary, free_port, Berth};

const SECRET: &str = "hunter2-at-rest-7c1e";
const PARAMETER: &str = "param-at-rest-93ab";

fn store_holds(b: &Berth, needle: &str) -> Result<bool> {
    let bytes = std::fs::read(b.data_dir().join("controlplane.redb"))?;
    Ok(bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

fn values_read_back(b: &Berth) -> Result<()> {
    let s = b.aws(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "app/db",
    ])?;
    assert_eq!(s["SecretString"], SECRET, "{s}");
    let p = b.aws(&[
        "ssm",
        "get-parameter",
        "--name",
        "/app/token",
        "--with-decryption",
    ])?;
    assert_eq!(p["Parameter"]["Value"], PARAMETER, "{p}");
    Ok(())
}

#[test]
fn secret_values_are_sealed_at_rest_and_the_master_key_rotates() -> Result<()> {
    let mut b = Berth::start()?;
    b.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "app/db",
        "--secret-string",
        SECRET,
    ])?;
    b.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        "/app/token",
        "--value",
        PARAMETER,
        "--type",
        "SecureString",
    ])?;
    values_read_back(&b)?;
    b.terminate_controlplane()?;
    assert!(
        !store_holds(&b, SECRET)?,
        "the secret's value is in the store file"
    );
    assert!(
        !store_holds(&b, PARAMETER)?,
        "the parameter's value is in the store file"
    );
    let old_key = b.data_dir().join("master.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&old_key)?.permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "the master key is the control plane's alone"
    );

    // Rotation: a new key, and the old one named as previous, once.
    let new_key = b.dir.path().join("new-master.key");
    std::fs::write(&new_key, "11".repeat(32))?;
    let new = new_key.display().to_string();
    b.controlplane_args = vec![
        "--master-key-file".into(),
        new.clone(),
        "--previous-master-key-file".into(),
        old_key.display().to_string(),
    ];
    b.start_controlplane()?;
    values_read_back(&b)?;
    b.terminate_controlplane()?;
    b.controlplane_args = vec!["--master-key-file".into(), new];
    b.start_controlplane()?;
    values_read_back(&b)?;
    b.terminate_controlplane()?;

    // The old key no longer opens the store: the control plane says so and stops.
    let out = Command::new(binary("berth-controlplane"))
        .env("BERTH_CONTROLPLANE_CONFIG", "/dev/null")
        .arg("--data-dir")
        .arg(b.data_dir())
        .args(["--api-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--agent-listen", &format!("127.0.0.1:{}", free_port())])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not open with the master key"),
        "{stderr}"
    );
    assert!(stderr.contains("--previous-master-key-file"), "{stderr}");
    Ok(())
}
