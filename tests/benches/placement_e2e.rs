//! End-to-end placement throughput: `RunTask` through the real ECS API
//! (`SigV4`-signed HTTP) of a real control plane (release build), with 1,000
//! simulated agents, each holding a real mutual-TLS gRPC session on
//! loopback. A task counts as placed when it reaches its agent in a
//! `DesiredTasks` message (the agent would start it next).
//!
//! `cargo build --release --bins && cargo bench -p berth-e2e --bench placement_e2e`
//! Knobs: `BERTH_BENCH_AGENTS` (1000), `BERTH_BENCH_CALLS` (300),
//! `BERTH_BENCH_CONCURRENCY` (16); every call asks for 10 tasks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_agent::tls::{self, ControlPlaneEndpoint};
use berth_cli::client::EcsClient;
use berth_cli::config::AwsEnv;
use berth_e2e::free_port;
use berth_proto::join_token::JoinToken;
use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_client::AgentServiceClient;
use serde_json::json;
use tokio_stream::StreamExt;

const TASKS_PER_CALL: usize = 10;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// First time each task ARN reached an agent.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn release_binary(name: &str) -> Result<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/release")
        .join(name);
    if !p.exists() {
        bail!(
            "{} is missing: run `cargo build --release --bins` first",
            p.display()
        );
    }
    Ok(p)
}

/// One simulated agent: join, register, hold the session, record every
/// task it is sent, heartbeat. Returns once the session is open.
async fn agent(
    n: usize,
    dir: PathBuf,
    ep: ControlPlaneEndpoint,
    token: JoinToken,
    seen: Seen,
    ready: Arc<AtomicUsize>,
) -> Result<()> {
    let (channel, _) = tls::session_channel(&dir, &ep, Some(&token), "bench").await?;
    let mut client = AgentServiceClient::new(channel);
    let arn = client
        .register(pb::RegisterRequest {
            cluster: "bench".into(),
            hostname: format!("sim-{n}"),
            protocol_version: berth_proto::PROTOCOL_VERSION,
            resources: Some(pb::Resources {
                cpu: 16_384,
                memory_mib: 65_536,
                ..Default::default()
            }),
            agent_version: "bench".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .container_instance_arn;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
            container_instance_arn: arn,
            tasks: Vec::new(),
        })),
    })
    .await?;
    let mut inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    ready.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                m = inbound.next() => match m {
                    Some(Ok(pb::ControlMessage { kind: Some(pb::control_message::Kind::DesiredTasks(d)) })) => {
                        let now = Instant::now();
                        let mut seen = seen.lock().unwrap();
                        for t in d.tasks {
                            seen.entry(t.task_arn).or_insert(now);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                _ = heartbeat.tick() => {
                    let hb = pb::AgentMessage { kind: Some(pb::agent_message::Kind::Heartbeat(pb::Heartbeat { sent_at_ms: 0 })) };
                    if tx.send(hb).await.is_err() { return; }
                }
            }
        }
    });
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[allow(clippy::too_many_lines)] // one linear story: start, join, run, measure
#[tokio::main]
async fn main() -> Result<()> {
    let agents = knob("BERTH_BENCH_AGENTS", 1000);
    let calls = knob("BERTH_BENCH_CALLS", 300);
    let concurrency = knob("BERTH_BENCH_CONCURRENCY", 16);
    let dir = tempfile::Builder::new().prefix("berth-bench-").tempdir()?;
    let (api_port, agent_port) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("controlplane.log"))?;
    let _cp = Daemon(
        Command::new(release_binary("berth-controlplane")?)
            .arg("--data-dir")
            .arg(dir.path().join("cp"))
            .args(["--api-listen", &format!("127.0.0.1:{api_port}")])
            .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting berth-controlplane")?,
    );
    let env_path = dir.path().join("cp/aws.env");
    let deadline = Instant::now() + Duration::from_secs(20);
    let api = loop {
        if env_path.exists() {
            let c = EcsClient::new(AwsEnv::load(&env_path)?)?;
            if c.call("ListClusters", &json!({})).await.is_ok() {
                break c;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the control plane did not start (log: {})",
                dir.path().join("controlplane.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    api.call("CreateCluster", &json!({"clusterName": "bench"}))
        .await?;
    let token: JoinToken = api
        .admin(
            "CreateJoinToken",
            &json!({"ttlSeconds": 3600, "reusable": true}),
        )
        .await?["token"]
        .as_str()
        .context("token")?
        .parse()?;

    // The fleet: joins and sessions, 50 at a time.
    let ep: ControlPlaneEndpoint = format!("https://127.0.0.1:{agent_port}").parse()?;
    let seen: Seen = Arc::default();
    let ready = Arc::new(AtomicUsize::new(0));
    let t_join = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(50));
    let mut joins = tokio::task::JoinSet::new();
    for n in 0..agents {
        let (ep, token, seen, ready, gate) = (
            ep.clone(),
            token.clone(),
            seen.clone(),
            ready.clone(),
            gate.clone(),
        );
        let adir = dir.path().join(format!("agent-{n}"));
        joins.spawn(async move {
            let _permit = gate.acquire().await;
            agent(n, adir, ep, token, seen, ready).await
        });
    }
    while let Some(r) = joins.join_next().await {
        r??;
    }
    let join_time = t_join.elapsed();

    api.call(
        "RegisterTaskDefinition",
        &json!({
            "family": "bench",
            "containerDefinitions": [{"name": "app", "image": "bench/app:1", "cpu": 16, "memory": 32}]
        }),
    )
    .await?;

    // The load: `calls` RunTask calls of 10 tasks, `concurrency` at a time.
    let api = Arc::new(api);
    let next = Arc::new(AtomicUsize::new(0));
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let failures = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (api, next, started, latencies, failures) = (
            api.clone(),
            next.clone(),
            started.clone(),
            latencies.clone(),
            failures.clone(),
        );
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < calls {
                let t = Instant::now();
                let out = api
                    .call(
                        "RunTask",
                        &json!({"cluster": "bench", "taskDefinition": "bench", "count": TASKS_PER_CALL}),
                    )
                    .await?;
                latencies.lock().unwrap().push(t.elapsed());
                failures.fetch_add(
                    out["failures"].as_array().map_or(0, Vec::len),
                    Ordering::SeqCst,
                );
                let mut started = started.lock().unwrap();
                for task in out["tasks"].as_array().into_iter().flatten() {
                    if let Some(arn) = task["taskArn"].as_str() {
                        started.insert(arn.to_string(), t);
                    }
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    let api_done = t0.elapsed();
    let started = Arc::try_unwrap(started).unwrap().into_inner().unwrap();
    let placed = started.len();

    // Every placed task must reach its agent.
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let snapshot = seen.lock().unwrap().clone();
        let missing = started
            .keys()
            .filter(|a| !snapshot.contains_key(*a))
            .count();
        if missing == 0 {
            break snapshot;
        }
        if Instant::now() > deadline {
            bail!("{missing} of {placed} placed tasks never reached an agent");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let last = started
        .keys()
        .map(|a| delivered[a])
        .max()
        .context("no tasks placed")?;
    let end_to_end = last - t0;
    let mut to_agent: Vec<Duration> = started
        .iter()
        .map(|(a, t)| delivered[a].saturating_duration_since(*t))
        .collect();
    to_agent.sort();
    let mut call_latency = Arc::try_unwrap(latencies).unwrap().into_inner().unwrap();
    call_latency.sort();

    #[allow(clippy::cast_precision_loss)]
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!("placement end to end: {agents} simulated agents (mutual TLS, gRPC on loopback), release control plane");
    println!(
        "  fleet: {agents} joins + registrations + sessions in {:.2} s",
        join_time.as_secs_f64()
    );
    println!(
        "  RunTask: {calls} calls x {TASKS_PER_CALL} tasks, {concurrency} in flight: {placed} placed, {} failures",
        failures.load(Ordering::SeqCst)
    );
    println!(
        "  API acknowledged: {:.0} tasks/s ({:.2} s); RunTask latency p50 {:.1} ms, p99 {:.1} ms",
        rate(placed, api_done),
        api_done.as_secs_f64(),
        percentile(&call_latency, 0.5).as_secs_f64() * 1e3,
        percentile(&call_latency, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "  delivered to agents: {:.0} tasks/s ({:.2} s from the first call to the last delivery); call start -> agent p50 {:.1} ms, p99 {:.1} ms",
        rate(placed, end_to_end),
        end_to_end.as_secs_f64(),
        percentile(&to_agent, 0.5).as_secs_f64() * 1e3,
        percentile(&to_agent, 0.99).as_secs_f64() * 1e3
    );
    println!("  target: >= 1,000 tasks/s end to end (anchors: Fargate 20 tasks/s sustained, kube-scheduler 100 pods/s, Nomad C1M 3,750/s on 5 servers)");
    Ok(())
}
