//! End to end: the cluster, task-definition and container-instance
//! operations beyond the walking skeleton, and the AWS edge (regions, the
//! services Berth does not serve), driven with the real aws CLI and boto3.

use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::{poll, Berth};
use serde_json::{json, Value};

fn write_json(b: &Berth, name: &str, v: &Value) -> Result<String> {
    let p = b.dir.path().join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v)?)?;
    Ok(format!("file://{}", p.display()))
}

/// Runs a command that must fail; returns its stderr.
fn aws_err(b: &Berth, args: &[&str]) -> Result<String> {
    let out = b.aws_raw(args)?;
    anyhow::ensure!(!out.status.success(), "aws {} succeeded", args.join(" "));
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn register(b: &Berth, family: &str, command: &str) -> Result<()> {
    let td = json!({
        "family": family,
        "containerDefinitions": [{
            "name": "main", "image": b.demo_image, "memory": 32, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": [command]
        }]
    });
    let file = write_json(b, &format!("{family}.json"), &td)?;
    b.aws(&["ecs", "register-task-definition", "--cli-input-json", &file])?;
    Ok(())
}

fn statistic(cluster: &Value, name: &str) -> Option<String> {
    cluster["statistics"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["value"].as_str())
        .map(str::to_owned)
}

fn cluster_settings_and_task_definitions(b: &Berth) -> Result<()> {
    let c = b.aws(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        "ops",
        "--settings",
        "name=containerInsights,value=enhanced",
    ])?;
    assert_eq!(c["cluster"]["settings"][0]["value"], "enhanced", "{c}");
    b.aws(&[
        "ecs",
        "update-cluster-settings",
        "--cluster",
        "ops",
        "--settings",
        "name=containerInsights,value=enabled",
    ])?;
    let d = b.aws(&[
        "ecs",
        "describe-clusters",
        "--clusters",
        "ops",
        "--include",
        "SETTINGS",
        "STATISTICS",
    ])?;
    let ops = &d["clusters"][0];
    assert_eq!(ops["settings"][0]["value"], "enabled", "{d}");
    assert_eq!(statistic(ops, "runningEC2TasksCount").as_deref(), Some("0"));

    register(b, "old", "true")?;
    b.aws(&[
        "ecs",
        "deregister-task-definition",
        "--task-definition",
        "old:1",
    ])?;
    let f = b.aws(&[
        "ecs",
        "list-task-definition-families",
        "--status",
        "INACTIVE",
    ])?;
    assert_eq!(f["families"], json!(["old"]), "{f}");
    let del = b.aws(&[
        "ecs",
        "delete-task-definitions",
        "--task-definitions",
        "old:1",
    ])?;
    assert_eq!(
        del["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS",
        "{del}"
    );
    Ok(())
}

fn attributes_and_filters(b: &Berth, instance: &str) -> Result<()> {
    let attrs = json!([{"name": "stack", "value": "blue", "targetType": "container-instance", "targetId": instance}]);
    b.aws(&["ecs", "put-attributes", "--attributes", &attrs.to_string()])?;
    let l = b.aws(&[
        "ecs",
        "list-attributes",
        "--target-type",
        "container-instance",
        "--attribute-name",
        "stack",
    ])?;
    assert_eq!(l["attributes"][0]["value"], "blue", "{l}");
    assert_eq!(l["attributes"][0]["targetId"], instance);
    let blue = b.aws(&[
        "ecs",
        "list-container-instances",
        "--filter",
        "attribute:stack == blue",
    ])?;
    assert_eq!(blue["containerInstanceArns"], json!([instance]));
    let green = b.aws(&[
        "ecs",
        "list-container-instances",
        "--filter",
        "attribute:stack == green",
    ])?;
    assert_eq!(green["containerInstanceArns"], json!([]));
    let blue_or_green = b.aws(&[
        "ecs",
        "list-container-instances",
        "--filter",
        "attribute:stack in [blue, green] and not attribute:retired exists",
    ])?;
    assert_eq!(blue_or_green["containerInstanceArns"], json!([instance]));
    let err = aws_err(
        b,
        &[
            "ecs",
            "list-container-instances",
            "--filter",
            "attribute:stack in [blue",
        ],
    )?;
    assert!(
        err.contains("InvalidParameterException") && err.contains("attribute:stack in [blue"),
        "{err}"
    );
    Ok(())
}

/// `RunTask` placement: a `memberOf` no instance satisfies is a failure, not an
/// error; a malformed one is refused by name. Nothing is launched.
fn run_task_placement(b: &Berth, instance: &str) -> Result<()> {
    let missed = b.aws(&[
        "ecs",
        "run-task",
        "--task-definition",
        "idle",
        "--placement-strategy",
        r#"[{"type":"spread","field":"attribute:ecs.availability-zone"},{"type":"binpack","field":"memory"}]"#,
        "--placement-constraints",
        r#"[{"type":"memberOf","expression":"attribute:stack == green or task:group == service:db"}]"#,
    ])?;
    assert_eq!(missed["tasks"], json!([]), "{missed}");
    assert_eq!(missed["failures"][0]["reason"], "MemberOf", "{missed}");
    assert_eq!(missed["failures"][0]["arn"], instance, "{missed}");
    let err = aws_err(
        b,
        &[
            "ecs",
            "run-task",
            "--task-definition",
            "idle",
            "--placement-constraints",
            r#"[{"type":"memberOf","expression":"attribute:stack =="}]"#,
        ],
    )?;
    assert!(
        err.contains("InvalidParameterException") && err.contains("attribute:stack =="),
        "{err}"
    );
    Ok(())
}

#[test]
fn clusters_task_definitions_and_instances_as_an_operator_uses_them() -> Result<()> {
    let b = Berth::start()?;
    cluster_settings_and_task_definitions(&b)?;
    let list = b.aws(&["ecs", "list-container-instances"])?;
    let instance = list["containerInstanceArns"][0]
        .as_str()
        .context("an instance")?
        .to_string();
    attributes_and_filters(&b, &instance)?;

    // StartTask on the named instance.
    register(
        &b,
        "idle",
        "trap 'exit 0' TERM; while true; do sleep 0.2; done",
    )?;
    run_task_placement(&b, &instance)?;
    let started = b.aws(&[
        "ecs",
        "start-task",
        "--task-definition",
        "idle",
        "--container-instances",
        &instance,
    ])?;
    assert_eq!(started["failures"], json!([]), "{started}");
    let task = started["tasks"][0]["taskArn"]
        .as_str()
        .context("taskArn")?
        .to_string();
    b.wait_task_status("default", &task, "RUNNING", Duration::from_secs(60))?;
    let described = b.aws(&["ecs", "describe-clusters", "--include", "STATISTICS"])?;
    assert_eq!(
        statistic(&described["clusters"][0], "runningEC2TasksCount").as_deref(),
        Some("1"),
        "{described}"
    );

    // Draining: no new tasks there.
    let updated = b.aws(&[
        "ecs",
        "update-container-instances-state",
        "--container-instances",
        &instance,
        "--status",
        "DRAINING",
    ])?;
    assert_eq!(
        updated["containerInstances"][0]["status"], "DRAINING",
        "{updated}"
    );
    let started = b.aws(&[
        "ecs",
        "start-task",
        "--task-definition",
        "idle",
        "--container-instances",
        &instance,
    ])?;
    assert_eq!(started["failures"][0]["reason"], "DRAINING", "{started}");

    // The cluster cannot go while the instance is registered, nor the
    // instance while its task runs, unless forced.
    let err = aws_err(&b, &["ecs", "delete-cluster", "--cluster", "default"])?;
    assert!(
        err.contains("ClusterContainsContainerInstancesException"),
        "{err}"
    );
    let err = aws_err(
        &b,
        &[
            "ecs",
            "deregister-container-instance",
            "--container-instance",
            &instance,
        ],
    )?;
    assert!(err.contains("force"), "{err}");
    let dr = b.aws(&[
        "ecs",
        "deregister-container-instance",
        "--container-instance",
        &instance,
        "--force",
    ])?;
    assert_eq!(dr["containerInstance"]["status"], "INACTIVE", "{dr}");
    let stopped = poll("the task to stop", Duration::from_secs(60), || {
        let stopped = b.describe_task("default", &task)?;
        Ok((stopped["lastStatus"] == "STOPPED").then_some(stopped))
    })?;
    assert_eq!(stopped["stoppedReason"], "Container instance deregistered");

    let del = b.aws(&["ecs", "delete-cluster", "--cluster", "default"])?;
    assert_eq!(del["cluster"]["status"], "INACTIVE", "{del}");
    let described = b.aws(&["ecs", "describe-clusters", "--clusters", "default", "ops"])?;
    assert_eq!(
        described["clusters"][0]["status"], "INACTIVE",
        "{described}"
    );
    assert_eq!(described["clusters"][1]["status"], "ACTIVE", "{described}");
    Ok(())
}

#[test]
fn stopped_tasks_are_purged_after_the_retention() -> Result<()> {
    let b = Berth::start_with(&["--stopped-task-retention-secs", "2"])?;
    register(&b, "once", "exit 0")?;
    let run = b.aws(&["ecs", "run-task", "--task-definition", "once"])?;
    let task = run["tasks"][0]["taskArn"]
        .as_str()
        .context("taskArn")?
        .to_string();
    poll("the task to stop", Duration::from_secs(60), || {
        let t = b.describe_task("default", &task)?;
        Ok((t["lastStatus"] == "STOPPED").then_some(()))
    })?;
    poll(
        "the stopped task to be purged",
        Duration::from_secs(20),
        || {
            let d = b.aws(&["ecs", "describe-tasks", "--tasks", &task])?;
            Ok((d["failures"][0]["reason"] == "MISSING").then_some(()))
        },
    )?;
    let l = b.aws(&["ecs", "list-tasks", "--desired-status", "STOPPED"])?;
    assert_eq!(l["taskArns"], json!([]), "{l}");
    Ok(())
}

/// The region a client signs for is the region of every ARN its requests create, and a
/// request for an AWS service Berth does not serve gets that protocol's error, naming it.
#[test]
fn arns_follow_the_signed_region_and_unserved_services_are_named() -> Result<()> {
    let b = Berth::start()?;
    let out = b.boto3_script(
        "edge_boto3.py",
        &[],
        &[
            "ecs.create_cluster",
            "elb.describe_load_balancers",
            "cloudwatch.list_metrics",
            "ecr.describe_repositories",
            "logs.create_log_group",
        ],
    )?;
    let in_eu = |key: &str, prefix: &str| {
        let arn = out["arns"][key].as_str().unwrap_or_default();
        assert!(arn.starts_with(prefix), "{key}: {arn}");
    };
    in_eu(
        "cluster",
        "arn:aws:ecs:eu-west-1:123456789012:cluster/edge-eu",
    );
    in_eu(
        "log_group",
        "arn:aws:logs:eu-west-1:123456789012:log-group:/edge/eu",
    );
    in_eu(
        "task_definition",
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/edge-eu:",
    );
    in_eu(
        "secret",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:edge/eu-",
    );

    // The aws CLI, with --region: a task run in the eu cluster is an eu task.
    let td = json!({
        "family": "edge-run", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{"name": "main", "image": b.demo_image, "command": ["true"]}]
    });
    let file = write_json(&b, "edge-run.json", &td)?;
    b.aws(&["ecs", "register-task-definition", "--cli-input-json", &file])?;
    let run = b.aws(&[
        "ecs",
        "run-task",
        "--region",
        "eu-west-1",
        "--cluster",
        "edge-eu",
        "--launch-type",
        "FARGATE",
        "--task-definition",
        "edge-run",
    ])?;
    // (Its host is a FARGATE pool instance of the `default` cluster, which the agent's
    // registration made in the control plane's default region: that ARN stays as it is.)
    let task = &run["tasks"][0];
    for arn in [
        &task["taskArn"],
        &task["clusterArn"],
        &task["containers"][0]["containerArn"],
    ] {
        let arn = arn.as_str().unwrap_or_default();
        assert!(arn.starts_with("arn:aws:ecs:eu-west-1:"), "{arn}: {run}");
    }
    // ...while the default region's requests keep theirs.
    let c = b.aws(&["ecs", "create-cluster", "--cluster-name", "edge-us"])?;
    assert_eq!(
        c["cluster"]["clusterArn"],
        "arn:aws:ecs:us-east-1:123456789012:cluster/edge-us"
    );
    // Classic ELB: the same signing name as ELBv2, an API version Berth does not serve.
    let stderr = aws_err(&b, &["elb", "describe-load-balancers"])?;
    assert!(
        stderr.contains("(InvalidAction)") && stderr.contains("'elasticloadbalancing'"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn account_settings_and_task_protection_through_the_aws_cli() -> Result<()> {
    let mut b = Berth::start()?;
    // The account's default log mode reaches a container that names none.
    b.aws(&[
        "ecs",
        "put-account-setting-default",
        "--name",
        "defaultLogDriverMode",
        "--value",
        "non-blocking",
    ])?;
    b.register_task_definition(&json!({"family": "guarded", "containerDefinitions": [{
        "name": "a", "image": b.demo_image, "memory": 16, "stopTimeout": 2,
        "entryPoint": ["sleep", "300"],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/guarded", "awslogs-create-group": "true"}}}]}))?;
    let arn = b.run_task("guarded")?;
    let settings = b.container_log(&arn, "a").with_extension("awslogs.json");
    let shipped: Value = poll("the awslogs settings", Duration::from_secs(30), || {
        Ok(std::fs::read(&settings)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    })?;
    assert_eq!(shipped["max_buffer_bytes"], 1024 * 1024, "{shipped}");
    let out = b.aws(&[
        "ecs",
        "update-task-protection",
        "--cluster",
        "default",
        "--tasks",
        &arn,
        "--protection-enabled",
        "--expires-in-minutes",
        "30",
    ])?;
    assert_eq!(out["protectedTasks"][0]["protectionEnabled"], true, "{out}");
    let got = b.aws(&[
        "ecs",
        "get-task-protection",
        "--cluster",
        "default",
        "--tasks",
        &arn,
    ])?;
    assert_eq!(got["protectedTasks"][0]["taskArn"], arn.as_str(), "{got}");
    let expires = got["protectedTasks"][0]["expirationDate"]
        .as_f64()
        .context("expirationDate")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    assert!((expires - now - 1800.0).abs() < 60.0, "{got}");

    let set = b.aws(&[
        "ecs",
        "put-account-setting-default",
        "--name",
        "containerInsights",
        "--value",
        "enabled",
    ])?;
    assert_eq!(set["setting"]["type"], "user", "{set}");
    b.kill9_controlplane();
    b.start_controlplane()?;
    let listed = b.aws(&[
        "ecs",
        "list-account-settings",
        "--effective-settings",
        "--name",
        "containerInsights",
    ])?;
    assert_eq!(listed["settings"][0]["value"], "enabled", "{listed}");
    assert!(
        listed["settings"][0]["principalArn"]
            .as_str()
            .is_some_and(|p| p.ends_with(":root")),
        "{listed}"
    );
    let out = b.aws_raw(&[
        "ecs",
        "put-account-setting",
        "--name",
        "containerInsights",
        "--value",
        "maybe",
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("InvalidParameterException"),
        "{stderr}"
    );
    Ok(())
}
