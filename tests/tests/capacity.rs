//! Capacity providers end to end: every operation through boto3, and a
//! strategy split over two real agents of different pools.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::{binary, cleanup_host, cleanup_task_networks, poll, Berth};
use serde_json::json;

/// The harness agent's container instance (it joins the FARGATE pool).
fn first_instance(b: &Berth) -> Result<String> {
    let list = b.aws(&["ecs", "list-container-instances"])?;
    list["containerInstanceArns"][0]
        .as_str()
        .map(str::to_owned)
        .context("an instance")
}

#[test]
fn capacity_providers_cluster_capacity_and_tags_with_boto3() -> Result<()> {
    let b = Berth::start()?;
    let instance = first_instance(&b)?;
    b.boto3_script(
        "capacity_boto3.py",
        &[
            ("BERTH_DEMO_IMAGE", &b.demo_image),
            ("BERTH_FARGATE_INSTANCE", &instance),
        ],
        &[
            "create_capacity_provider",
            "describe_capacity_providers",
            "update_capacity_provider",
            "delete_capacity_provider",
            "put_cluster_capacity_providers",
            "create_cluster",
            "run_task",
            "tag_resource",
            "untag_resource",
            "list_tags_for_resource",
        ],
    )?;
    Ok(())
}

/// One more agent on this host, in its own containerd namespace, bridge,
/// task range and data dir; removed (with what it left) on drop.
struct ExtraAgent {
    child: Child,
    dir: PathBuf,
    sock: String,
    namespace: String,
    bridge: String,
}

impl ExtraAgent {
    fn start(b: &Berth, tag: &str, extra: &[&str]) -> Result<Self> {
        let dir = b.dir.path().join(format!("agent-{tag}"));
        let namespace = format!("{}-{tag}", b.namespace);
        let bridge = format!("{}{tag}", b.bridge);
        // The harness's range is 10.X.Y.0/24; this one is 10.X.(Y+1 mod 250).
        let mut octets: Vec<u16> = b
            .cidr
            .split(['.', '/'])
            .filter_map(|o| o.parse().ok())
            .collect();
        octets[2] = (octets[2] + 1) % 250;
        let cidr = format!("10.{}.{}.0/24", octets[1], octets[2]);
        let log = std::fs::File::create(b.dir.path().join(format!("agent-{tag}.log")))?;
        let child = Command::new(binary("berth-agent"))
            .env("BERTH_AGENT_CONFIG", "/dev/null")
            // Sessions are mutual TLS: a new host joins with a token.
            .env("BERTH_JOIN_TOKEN", b.join_token(&[])?)
            .arg("--data-dir")
            .arg(&dir)
            .args([
                "--control-plane",
                &format!("https://127.0.0.1:{}", b.agent_port),
            ])
            .args(["--containerd-socket", &b.containerd_sock])
            .args(["--containerd-namespace", &namespace])
            .args(["--bridge", &bridge])
            .args(["--task-cidr", &cidr])
            .args(["--insecure-registry", &b.registry])
            .args(["--stop-timeout", "5"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the second berth-agent")?;
        Ok(Self {
            child,
            dir,
            sock: b.containerd_sock.clone(),
            namespace,
            bridge,
        })
    }
}

impl Drop for ExtraAgent {
    fn drop(&mut self) {
        let _ = berth_e2e::terminate(&mut self.child, Duration::from_secs(10));
        cleanup_host(&self.sock, &self.namespace, &self.bridge);
        cleanup_task_networks(&self.dir);
    }
}

/// containerd containers in a namespace.
fn containers(sock: &str, namespace: &str) -> Result<Vec<String>> {
    let out = Command::new("ctr")
        .args(["--address", sock, "-n", namespace, "containers", "ls", "-q"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Waits for the instance of the `FARGATE_SPOT` agent to be connected; its ARN.
fn spot_instance(b: &Berth) -> Result<String> {
    poll(
        "the FARGATE_SPOT agent to connect",
        Duration::from_secs(30),
        || {
            let list = b.aws(&["ecs", "list-container-instances"])?;
            let instances: Vec<String> = list["containerInstanceArns"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let mut args = vec![
                "ecs",
                "describe-container-instances",
                "--container-instances",
            ];
            args.extend(instances.iter().map(String::as_str));
            let d = b.aws(&args)?;
            Ok(d["containerInstances"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| {
                    i["capacityProviderName"] == "FARGATE_SPOT" && i["agentConnected"] == true
                })
                .and_then(|i| i["containerInstanceArn"].as_str().map(str::to_owned)))
        },
    )
}

#[test]
fn a_strategy_splits_tasks_over_the_pools_hosts() -> Result<()> {
    let b = Berth::start()?;
    let fargate_host = first_instance(&b)?;
    let spot = ExtraAgent::start(&b, "s", &["--capacity-provider", "FARGATE_SPOT"])?;
    let spot_host = spot_instance(&b)?;
    b.aws(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        "split",
        "--capacity-providers",
        "FARGATE",
        "FARGATE_SPOT",
    ])?;
    b.register_task_definition(&json!({
        "family": "split", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{
            "name": "main", "image": b.demo_image, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        }]
    }))?;
    // The example: FARGATE weight 1 base 2, FARGATE_SPOT weight 3: 5 tasks go 2 + 3.
    let out = b.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "split",
        "--task-definition",
        "split",
        "--count",
        "5",
        "--capacity-provider-strategy",
        "capacityProvider=FARGATE,weight=1,base=2",
        "capacityProvider=FARGATE_SPOT,weight=3,base=0",
    ])?;
    assert_eq!(out["failures"], json!([]), "{out}");
    let tasks = out["tasks"].as_array().context("tasks")?;
    let on = |host: &str, provider: &str| -> Vec<String> {
        tasks
            .iter()
            .filter(|t| t["containerInstanceArn"] == host && t["capacityProviderName"] == provider)
            .filter_map(|t| t["taskArn"].as_str().map(str::to_owned))
            .collect()
    };
    let (on_fargate, on_spot) = (on(&fargate_host, "FARGATE"), on(&spot_host, "FARGATE_SPOT"));
    assert_eq!((on_fargate.len(), on_spot.len()), (2, 3), "{out}");

    // Each host's agent really runs its share: containers in its own namespace.
    for arn in on_fargate.iter().chain(&on_spot) {
        b.wait_task_status("split", arn, "RUNNING", Duration::from_secs(90))?;
    }
    let id = |arn: &String| arn.rsplit('/').next().unwrap_or_default().to_string();
    let spot_containers = containers(&b.containerd_sock, &spot.namespace)?;
    let first_containers = b.containers()?;
    for arn in &on_spot {
        assert!(
            spot_containers.iter().any(|c| c.starts_with(&id(arn))),
            "{arn} not in {spot_containers:?}"
        );
        assert!(!first_containers.iter().any(|c| c.starts_with(&id(arn))));
    }
    for arn in &on_fargate {
        assert!(
            first_containers.iter().any(|c| c.starts_with(&id(arn))),
            "{arn} not in {first_containers:?}"
        );
    }
    for arn in on_fargate.iter().chain(&on_spot) {
        b.aws(&["ecs", "stop-task", "--cluster", "split", "--task", arn])?;
    }
    for arn in on_fargate.iter().chain(&on_spot) {
        b.wait_task_status("split", arn, "STOPPED", Duration::from_secs(60))?;
    }
    Ok(())
}
