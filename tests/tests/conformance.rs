//! Every response Berth sends in a broad boto3 scenario (ECS, Secrets Manager, SSM,
//! CloudWatch Logs, ACM, ELBv2) matches the output shape of its operation in botocore's
//! model: no member the model lacks, the model's types and enum values, required members.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use berth_e2e::{free_port, Berth};
use serde_json::Value;

#[test]
fn responses_match_botocores_output_shapes() -> Result<()> {
    let b = Berth::start()?;
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/conformance_boto3.py"))
        .env("HOME", b.dir.path())
        .envs(b.aws_env()?)
        .env("BERTH_DEMO_IMAGE", &b.demo_image)
        .env("CONF_LB_PORT", free_port().to_string())
        .output()
        .context("running python3")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "the script printed {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let violations = summary["violations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        serde_json::to_string_pretty(&violations)?
    );
    let checked = summary["checked"].as_array().map_or(0, Vec::len);
    assert!(
        checked >= 90,
        "only {checked} operations were exercised: {summary}"
    );
    for op in [
        "ecs.CreateTaskSet",
        "ecs.DescribeTaskSets",
        "ecs.UpdateTaskSet",
        "ecs.UpdateServicePrimaryTaskSet",
        "ecs.DeleteTaskSet",
        "acm.DescribeCertificate",
        "elbv2.CreateLoadBalancer",
        "elbv2.DescribeRules",
        "elbv2.DescribeTargetHealth",
        "elbv2.DescribeTags",
    ] {
        assert!(
            summary["checked"]
                .as_array()
                .is_some_and(|c| c.iter().any(|o| o == op)),
            "{op} not checked: {summary}"
        );
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
