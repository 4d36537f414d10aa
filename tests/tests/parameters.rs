//! End to end: SSM Parameter Store through the real aws CLI and boto3, and parameters
//! named in a task definition's `secrets[].valueFrom` (by ARN, and by name) filling a
//! real container's environment.

use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::Berth;
use serde_json::{json, Value};

fn put(b: &Berth, name: &str, value: &str, kind: &str) -> Result<Value> {
    b.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        name,
        "--value",
        value,
        "--type",
        kind,
    ])
}

/// `aws <args>` must fail with AWS error `code`.
fn fails_with(b: &Berth, args: &[&str], code: &str) -> Result<()> {
    let out = b.aws_raw(args)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        !out.status.success() && stderr.contains(code),
        "aws {args:?}: expected {code}: {stderr}"
    );
    Ok(())
}

#[test]
fn parameter_store_through_the_aws_cli() -> Result<()> {
    let b = Berth::start()?;
    assert_eq!(
        put(&b, "/app/db/url", "postgres://db:5432", "String")?["Version"],
        1
    );
    put(&b, "/app/db/password", "hunter2", "SecureString")?;
    put(&b, "/app/feature/flags", "a,b,c", "StringList")?;
    put(&b, "/other/x", "1", "String")?;

    // Existing names need --overwrite, which makes version 2.
    fails_with(
        &b,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/db/url",
            "--value",
            "v",
            "--type",
            "String",
        ],
        "ParameterAlreadyExists",
    )?;
    let v2 = b.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        "/app/db/url",
        "--value",
        "postgres://db2:5432",
        "--overwrite",
    ])?;
    assert_eq!(v2["Version"], 2);

    // SecureString: hidden unless decrypted.
    let hidden = b.aws(&["ssm", "get-parameter", "--name", "/app/db/password"])?;
    assert_eq!(hidden["Parameter"]["Type"], "SecureString");
    assert_ne!(hidden["Parameter"]["Value"], "hunter2", "{hidden}");
    let shown = b.aws(&[
        "ssm",
        "get-parameter",
        "--name",
        "/app/db/password",
        "--with-decryption",
    ])?;
    assert_eq!(shown["Parameter"]["Value"], "hunter2");
    assert_eq!(
        shown["Parameter"]["ARN"], "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password",
        "{shown}"
    );

    let old = b.aws(&["ssm", "get-parameter", "--name", "/app/db/url:1"])?;
    assert_eq!(old["Parameter"]["Value"], "postgres://db:5432", "{old}");
    let history = b.aws(&["ssm", "get-parameter-history", "--name", "/app/db/url"])?;
    assert_eq!(
        history["Parameters"].as_array().map(Vec::len),
        Some(2),
        "{history}"
    );

    listing_and_deleting(&b)
}

/// Listing by path and by filter, reading several at once, errors, deletes.
fn listing_and_deleting(b: &Berth) -> Result<()> {
    // The CLI pages through GetParametersByPath (at most 10 a page) and DescribeParameters.
    let under = b.aws(&[
        "ssm",
        "get-parameters-by-path",
        "--path",
        "/app",
        "--recursive",
    ])?;
    let mut names: Vec<&str> = under["Parameters"]
        .as_array()
        .context("Parameters")?
        .iter()
        .filter_map(|p| p["Name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["/app/db/password", "/app/db/url", "/app/feature/flags"]
    );
    let one_level = b.aws(&["ssm", "get-parameters-by-path", "--path", "/app"])?;
    assert_eq!(
        one_level["Parameters"].as_array().map(Vec::len),
        Some(0),
        "{one_level}"
    );
    let secure = b.aws(&[
        "ssm",
        "describe-parameters",
        "--parameter-filters",
        "Key=Type,Values=SecureString",
    ])?;
    assert_eq!(
        secure["Parameters"].as_array().map(Vec::len),
        Some(1),
        "{secure}"
    );
    assert_eq!(
        secure["Parameters"][0]["KeyId"], "alias/aws/ssm",
        "{secure}"
    );

    let many = b.aws(&["ssm", "get-parameters", "--names", "/other/x", "/nope"])?;
    assert_eq!(many["InvalidParameters"], json!(["/nope"]), "{many}");
    fails_with(
        b,
        &["ssm", "get-parameter", "--name", "/nope"],
        "ParameterNotFound",
    )?;
    fails_with(
        b,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "aws-reserved",
            "--value",
            "v",
            "--type",
            "String",
        ],
        "ValidationException",
    )?;

    fails_with(
        b,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/x",
            "--value",
            "v",
            "--type",
            "Number",
        ],
        "ValidationException",
    )?;

    let deleted = b.aws(&["ssm", "delete-parameters", "--names", "/other/x", "/nope"])?;
    assert_eq!(
        deleted["DeletedParameters"],
        json!(["/other/x"]),
        "{deleted}"
    );
    b.aws(&["ssm", "delete-parameter", "--name", "/app/feature/flags"])?;
    let left = b.aws(&["ssm", "describe-parameters"])?;
    assert_eq!(
        left["Parameters"].as_array().map(Vec::len),
        Some(2),
        "{left}"
    );
    Ok(())
}

#[test]
fn parameters_fill_a_tasks_environment_by_arn_and_by_name() -> Result<()> {
    let b = Berth::start()?;
    put(&b, "/app/db/password", "hunter2", "SecureString")?;
    put(&b, "api-token", "t0k3n", "String")?;
    let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password";
    // The seed's mix: a Secrets Manager secret beside the parameters, each by ARN.
    let secret = b.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "app/api",
        "--secret-string",
        r#"{"key":"s3cr3t-key"}"#,
    ])?;
    let secret_arn = secret["ARN"].as_str().context("the secret's ARN")?;
    let app = json!({
        "name": "app", "image": b.demo_image, "memory": 32,
        "entryPoint": ["/bin/sh", "-c"],
        "command": ["echo \"pw=$DB_PASSWORD token=$TOKEN key=$API_KEY\"; \
            echo \"meta=$(wget -qO- $ECS_CONTAINER_METADATA_URI_V4) $(wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task)\""],
        "secrets": [
            {"name": "DB_PASSWORD", "valueFrom": arn},
            {"name": "TOKEN", "valueFrom": "api-token"},
            {"name": "API_KEY", "valueFrom": format!("{secret_arn}:key::")},
        ],
    });
    b.register_task_definition(&json!({"family": "ssm-env", "containerDefinitions": [app]}))?;
    let task = b.run_task("ssm-env")?;
    let t = b.wait_stopped(&task, Duration::from_secs(60))?;
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    let line = b.wait_log(&task, "app", "pw=")?;
    assert!(
        line.contains("pw=hunter2 token=t0k3n key=s3cr3t-key"),
        "{line}"
    );
    // Nor does the task metadata endpoint show them (the container's and the task's).
    let meta = b.wait_log(&task, "app", "meta=")?;
    let meta = &meta[meta.find("meta=").unwrap_or_default()..];
    assert!(
        meta.contains("\"DockerName\"") && meta.contains("\"TaskARN\""),
        "{meta}"
    );
    for value in ["hunter2", "t0k3n", "s3cr3t-key"] {
        assert!(!meta.contains(value), "{meta}");
    }
    // The values reach the container and nothing else a user or operator reads.
    let described = b
        .aws(&["ecs", "describe-tasks", "--tasks", &task])?
        .to_string()
        + &b.aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            "ssm-env",
        ])?
        .to_string();
    for log in ["controlplane.log", "agent.log"] {
        let text = std::fs::read_to_string(b.dir.path().join(log))?;
        for value in ["hunter2", "t0k3n", "s3cr3t-key"] {
            assert!(!text.contains(value), "{log} shows a secret value");
            assert!(
                !described.contains(value),
                "the API shows a secret value: {described}"
            );
        }
    }

    // A parameter that is gone fails the next task with ECS's reason, before it starts.
    b.aws(&["ssm", "delete-parameter", "--name", "/app/db/password"])?;
    let task = b.run_task("ssm-env")?;
    let t = b.wait_stopped(&task, Duration::from_secs(60))?;
    let reason = t["stoppedReason"].as_str().unwrap_or_default();
    assert!(reason.contains("/app/db/password"), "{t}");
    Ok(())
}
