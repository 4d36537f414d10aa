//! End to end: bridge, host and none network modes with the real daemons, containerd and the aws CLI. Published ports are reached from the host over loopback only.

use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::{free_port, http_get, poll, Berth};
use serde_json::{json, Value};

fn task_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// The host ports of a container's networkBindings, by container port order.
fn bindings(task: &Value, container: &str) -> Vec<(u64, u64, String)> {
    task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == container)
        .flat_map(|c| c["networkBindings"].as_array().cloned().unwrap_or_default())
        .map(|b| {
            assert_eq!(b["bindIP"], "0.0.0.0", "{b}");
            (
                b["containerPort"].as_u64().unwrap_or(0),
                b["hostPort"].as_u64().unwrap_or(0),
                b["protocol"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn resource(instance: &Value, which: &str, name: &str) -> Vec<String> {
    instance[which]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .and_then(|r| r["stringSetValue"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn bridge_mode_publishes_static_and_dynamic_ports_and_cleans_up() -> Result<()> {
    let b = Berth::start()?;
    let r = bridge_mode(&b);
    b.logs_on_failure(r)
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
fn bridge_mode(b: &Berth) -> Result<()> {
    let static_port = free_port();
    b.register_task_definition(&json!({
        "family": "published",
        "networkMode": "bridge",
        "containerDefinitions": [
            {"name": "web", "image": b.demo_image, "memory": 32, "stopTimeout": 2,
             "portMappings": [
                 {"containerPort": 80, "hostPort": static_port, "protocol": "tcp"},
                 {"containerPort": 80}
             ]},
            {"name": "other", "image": b.demo_image, "memory": 32, "essential": false,
             "stopTimeout": 2, "portMappings": [{"containerPort": 80, "hostPort": 0}]},
            {"name": "meta", "image": b.demo_image, "memory": 32, "essential": false,
             "entryPoint": ["/bin/sh", "-c"],
             "command": ["echo \"meta $(wget -qO- $ECS_CONTAINER_METADATA_URI_V4)\""]},
            {"name": "client", "image": b.demo_image, "memory": 32, "essential": false,
             "links": ["web:site"], "hostname": "client-1",
             "extraHosts": [{"hostname": "extra.example", "ipAddress": "192.0.2.7"}],
             "entryPoint": ["/bin/sh", "-c"],
             "command": ["echo \"hostname $(hostname)\"; cat /etc/hosts; echo \"page $(wget -qO- http://site/)\""]}
        ]
    }))?;
    let arn = b.run_task("published")?;
    let id = task_id(&arn);
    let task = b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;

    let web = bindings(&task, "web");
    assert_eq!(web.len(), 2, "{task}");
    assert_eq!(web[0], (80, u64::from(static_port), "tcp".into()));
    let dynamic = web[1].1;
    assert!((32768..=61000).contains(&dynamic), "dynamic port {dynamic}");
    let other = bindings(&task, "other");
    assert_eq!(other.len(), 1, "{task}");
    assert_ne!(other[0].1, dynamic, "each dynamic port is its own");
    assert!(
        task["attachments"].as_array().is_none_or(Vec::is_empty),
        "no ENI in bridge mode: {task}"
    );

    // The host reaches every published port over loopback.
    for port in [u64::from(static_port), dynamic, other[0].1] {
        let port = u16::try_from(port)?;
        let page = poll(
            &format!("the page on 127.0.0.1:{port}"),
            Duration::from_secs(20),
            || Ok(http_get("127.0.0.1", port, "/").ok()),
        )?;
        assert!(page.contains("hello from berth"), "{page}");
    }

    // A bridge container reads its task metadata, which shows its own address.
    let log = b.wait_log(&arn, "meta", "meta ")?;
    let json = log.split_once("meta ").map_or("", |(_, j)| j.trim());
    let meta: Value = serde_json::from_str(json).with_context(|| format!("meta log: {log}"))?;
    assert_eq!(meta["Name"], "meta", "{meta}");
    assert_eq!(meta["Networks"][0]["NetworkMode"], "bridge", "{meta}");
    let ip = meta["Networks"][0]["IPv4Addresses"][0]
        .as_str()
        .unwrap_or("");
    let subnet = b.cidr.rsplit_once('.').map_or("", |(net, _)| net);
    assert!(ip.starts_with(subnet), "{ip} not in {}", b.cidr);

    // links, hostname and extraHosts: the client reaches web by its alias.
    let log = b.wait_log(&arn, "client", "page ")?;
    assert!(log.contains("hostname client-1\n"), "{log}");
    assert!(log.contains("192.0.2.7\textra.example\n"), "{log}");
    assert!(log.contains("\tsite web\n"), "{log}");
    assert!(log.contains("page hello from berth"), "{log}");

    // The instance shows the ports as taken.
    let arns = b.aws(&["ecs", "list-container-instances"])?;
    let ci = arns["containerInstanceArns"][0]
        .as_str()
        .context("an instance")?;
    let d = b.aws(&[
        "ecs",
        "describe-container-instances",
        "--container-instances",
        ci,
    ])?;
    let instance = &d["containerInstances"][0];
    let registered = resource(instance, "registeredResources", "PORTS");
    let remaining = resource(instance, "remainingResources", "PORTS");
    for reserved in ["22", "2375", "2376", "51678", "51679"] {
        assert!(registered.iter().any(|p| p == reserved), "{registered:?}");
    }
    assert!(
        !registered.contains(&static_port.to_string()),
        "{registered:?}"
    );
    for used in [static_port.to_string(), dynamic.to_string(), "22".into()] {
        assert!(remaining.contains(&used), "{used} in {remaining:?}");
    }

    // A second task wanting the same static port has nowhere to go.
    let out = b.aws(&["ecs", "run-task", "--task-definition", "published"])?;
    assert_eq!(out["tasks"], json!([]), "{out}");
    assert_eq!(out["failures"][0]["reason"], "RESOURCE:PORTS", "{out}");

    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    b.wait_stopped(&arn, Duration::from_secs(60))?;
    let left = poll(
        "the task's host resources to go",
        Duration::from_secs(20),
        || {
            let left = b.leftovers(&id)?;
            Ok(left.is_empty().then_some(()))
        },
    );
    assert!(left.is_ok(), "left behind: {:?}", b.leftovers(&id)?);
    assert!(
        http_get("127.0.0.1", static_port, "/").is_err(),
        "nothing answers on the static port once the task stopped"
    );
    Ok(())
}

#[test]
fn host_and_none_modes() -> Result<()> {
    let b = Berth::start()?;
    let r = host_and_none(&b);
    b.logs_on_failure(r)
}

fn host_and_none(b: &Berth) -> Result<()> {
    let port = free_port();
    b.register_task_definition(&json!({
        "family": "onhost",
        "networkMode": "host",
        "containerDefinitions": [
            {"name": "web", "image": b.demo_image, "memory": 32, "stopTimeout": 2,
             "command": ["httpd", "-f", "-p", port.to_string(), "-h", "/www"],
             "portMappings": [{"containerPort": port}]}
        ]
    }))?;
    let arn = b.run_task("onhost")?;
    let task = b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    assert_eq!(
        bindings(&task, "web"),
        [(u64::from(port), u64::from(port), "tcp".to_string())]
    );
    // The container listens in the host's own namespace.
    let page = poll(
        "the page on the host's port",
        Duration::from_secs(20),
        || Ok(http_get("127.0.0.1", port, "/").ok()),
    )?;
    assert!(page.contains("hello from berth"), "{page}");
    // Host mode: hostPort must equal containerPort.
    let bad = b.aws_raw(&[
        "ecs",
        "register-task-definition",
        "--family",
        "badhost",
        "--network-mode",
        "host",
        "--container-definitions",
        &json!([{"name": "w", "image": b.demo_image, "memory": 32,
                 "portMappings": [{"containerPort": 80, "hostPort": 8080}]}])
        .to_string(),
    ])?;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must match"));
    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    b.wait_stopped(&arn, Duration::from_secs(60))?;

    // none: a namespace of its own with only lo.
    b.register_task_definition(&json!({
        "family": "isolated",
        "networkMode": "none",
        "containerDefinitions": [
            {"name": "main", "image": b.demo_image, "memory": 32,
             "entryPoint": ["/bin/sh", "-c"],
             "command": ["echo \"links: $(ls /sys/class/net | tr '\\n' ' ')\""]}
        ]
    }))?;
    let arn = b.run_task("isolated")?;
    let stopped = b.wait_stopped(&arn, Duration::from_secs(60))?;
    assert_eq!(stopped["containers"][0]["exitCode"], 0, "{stopped}");
    let log = std::fs::read_to_string(b.container_log(&arn, "main"))?;
    assert!(log.contains("links: lo "), "only lo: {log}");
    assert!(b.leftovers(&task_id(&arn))?.is_empty());
    Ok(())
}
