//! End to end: Secrets Manager secrets through the real aws CLI, resolved into
//! a task's environment (`secrets`) and its registry login
//! (`repositoryCredentials`) for an image on a loopback registry that wants
//! htpasswd credentials.

#[path = "../../agent/tests/common/auth_registry.rs"]
mod auth_registry;

use std::time::Duration;

use anyhow::{Context, Result};
use auth_registry::{AuthRegistry, PASSWORD, USER};
use berth_e2e::Berth;
use serde_json::{json, Value};

fn create_secret(b: &Berth, name: &str, value: &str) -> Result<String> {
    let out = b.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        name,
        "--secret-string",
        value,
    ])?;
    out["ARN"]
        .as_str()
        .map(str::to_owned)
        .context("create-secret returned no ARN")
}

fn container(task: &Value, name: &str) -> Value {
    task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn secrets_manager_operations_with_boto3() -> Result<()> {
    let b = Berth::start()?;
    b.boto3_script(
        "secrets_boto3.py",
        &[],
        &[
            "create_secret",
            "get_secret_value",
            "put_secret_value",
            "describe_secret",
            "list_secrets",
            "delete_secret",
        ],
    )?;
    Ok(())
}

#[test]
fn secrets_fill_the_environment_and_repository_credentials_pull_a_private_image() -> Result<()> {
    let registry = AuthRegistry::start();
    let b = Berth::start_with_agent(&["--insecure-registry", &registry.host], &[])?;
    let r = secrets(&b, &registry);
    b.logs_on_failure(r)
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
fn secrets(b: &Berth, registry: &AuthRegistry) -> Result<()> {
    registry.push(&b.demo_image, "private/demo:1", "oci");
    let image = format!("{}/private/demo:1", registry.host);
    let login = create_secret(
        b,
        "registry/login",
        &json!({"username": USER, "password": PASSWORD}).to_string(),
    )?;
    let db = create_secret(b, "app/db", r#"{"user":"app","password":"hunter2"}"#)?;

    // The aws CLI reads the secret back; Secrets Manager's errors keep their names.
    let got = b.aws(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "app/db",
    ])?;
    assert_eq!(got["ARN"], json!(db));
    let missing = b.aws_raw(&["secretsmanager", "get-secret-value", "--secret-id", "nope"])?;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");

    // Without repositoryCredentials the private registry refuses the pull
    // (first: once the image is cached, the default pull behaviour would
    // fall back to it, as ECS's does).
    let anonymous = json!({"name": "app", "image": image, "memory": 32});
    b.register_task_definition(
        &json!({"family": "anonymous", "containerDefinitions": [anonymous]}),
    )?;
    let arn = b.run_task("anonymous")?;
    let t = b.wait_stopped(&arn, Duration::from_secs(60))?;
    let reason = t["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("CannotPullContainerError:") && reason.contains("401"),
        "{t}"
    );

    let app = json!({
        "name": "app",
        "image": image,
        "memory": 32,
        "entryPoint": ["/bin/sh", "-c"],
        "command": ["echo \"pw=$DB_PASSWORD json=$DB_JSON\""],
        "repositoryCredentials": {"credentialsParameter": login},
        "secrets": [
            {"name": "DB_PASSWORD", "valueFrom": format!("{db}:password::")},
            {"name": "DB_JSON", "valueFrom": db},
        ],
    });
    b.register_task_definition(&json!({"family": "private", "containerDefinitions": [app]}))?;
    // DescribeTaskDefinition shows the references as registered.
    let td = b.aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "private",
    ])?;
    let c = &td["taskDefinition"]["containerDefinitions"][0];
    assert_eq!(
        c["repositoryCredentials"]["credentialsParameter"],
        json!(login),
        "{td}"
    );
    assert_eq!(c["secrets"][0]["name"], "DB_PASSWORD", "{td}");

    let arn = b.run_task("private")?;
    let t = b.wait_stopped(&arn, Duration::from_secs(60))?;
    assert_eq!(container(&t, "app")["exitCode"], 0, "{t}");
    let log = std::fs::read_to_string(b.container_log(&arn, "app"))?;
    assert!(
        log.contains(r#"pw=hunter2 json={"user":"app","password":"hunter2"}"#),
        "{log}"
    );
    assert!(
        !t.to_string().contains("hunter2"),
        "DescribeTasks shows a secret: {t}"
    );

    // A secret that does not exist fails the task as ECS does, before anything runs.
    let gone = json!({
        "name": "app",
        "image": b.demo_image,
        "memory": 32,
        "secrets": [{"name": "X", "valueFrom": "arn:aws:secretsmanager:us-east-1:000000000000:secret:gone-AbCdEf"}],
    });
    b.register_task_definition(&json!({"family": "gone", "containerDefinitions": [gone]}))?;
    let arn = b.run_task("gone")?;
    let t = b.wait_stopped(&arn, Duration::from_secs(60))?;
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("ResourceInitializationError: unable to pull secrets or registry auth:")
            && reason.contains("gone-AbCdEf"),
        "{t}"
    );
    assert!(container(&t, "app")["exitCode"].is_null(), "{t}");

    // A reference to neither a secret nor an SSM parameter is refused at registration,
    // with the reason.
    let kms = json!({
        "name": "app", "image": b.demo_image, "memory": 32,
        "secrets": [{"name": "X", "valueFrom": "arn:aws:kms:us-east-1:000000000000:key/x"}],
    });
    let p = b.dir.path().join("kms.json");
    std::fs::write(
        &p,
        json!({"family": "kms", "containerDefinitions": [kms]}).to_string(),
    )?;
    let out = b.aws_raw(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", p.display()),
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "registered a KMS key as a secret");
    assert!(
        stderr.contains("InvalidParameterException")
            && stderr.contains("not a Secrets Manager secret ARN"),
        "{stderr}"
    );
    Ok(())
}
