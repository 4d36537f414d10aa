//! Privileged tests of the containerd runtime against a real containerd and registry.
//!
//! Needs root and the environment written by `scripts/test-env.sh start DIR`
//! (`set -a; . DIR/env; set +a`): `BERTH_CONTAINERD_SOCK`, `BERTH_REGISTRY`, `BERTH_DEMO_IMAGE`.
//! Each test works in its own containerd namespace and removes what it made on drop.

mod common;

use common::{remove_namespace, test_env, unique_namespace, TestEnv};

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, Containerd, ExecOutcome, Image,
    ImagePullBehavior, RuntimeConfig, RuntimeError,
};
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::ListSnapshotsRequest;
use containerd_client::services::v1::InfoRequest;
use containerd_client::with_namespace;
use tonic::Request;

const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;

/// A runtime in a fresh namespace; dropping it kills and deletes every container in that
/// namespace and removes the images it pulled.
struct Fixture {
    env: TestEnv,
    config: RuntimeConfig,
    rt: Arc<Containerd>,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let env = test_env();
        let mut config = RuntimeConfig::new(&env.socket, unique_namespace("rt"));
        // The agent's own log writer, as berth-agent runs it.
        config.log_driver = Some(env!("CARGO_BIN_EXE_berth-agent").into());
        config.insecure_registries = vec![env.registry.clone()];
        let rt = Containerd::connect(config.clone())
            .await
            .expect("connect to containerd");
        Self {
            env,
            config,
            rt: Arc::new(rt),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    async fn demo(&self) -> Image {
        self.rt
            .pull_image(&self.env.image)
            .await
            .expect("pull demo image")
    }

    fn spec(&self, image: &Image, name: &str, args: &[&str]) -> ContainerSpec {
        let id = format!("{}-{name}", self.config.namespace);
        ContainerSpec {
            cgroups_path: format!("/berth-test-{id}"),
            log_path: self.dir.path().join(format!("{name}.log")),
            id,
            image: image.clone(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            hostname: name.to_owned(),
            labels: HashMap::from([("berth.test".to_owned(), "runtime".to_owned())]),
            ..ContainerSpec::default()
        }
    }

    /// Creates, starts and waits for the container; returns its exit status and log.
    async fn run(&self, spec: &ContainerSpec) -> (u32, String) {
        self.rt.create_container(spec).await.expect("create");
        self.rt.start(&spec.id).await.expect("start");
        let code = tokio::time::timeout(Duration::from_secs(30), self.rt.wait(&spec.id))
            .await
            .expect("container exits within 30s")
            .expect("wait");
        // The shim copies output on its own, so it can land just after the
        // exit: wait (bounded) for the log to have something in it.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let log = loop {
            let log = std::fs::read_to_string(&spec.log_path).unwrap_or_default();
            if !log.is_empty() || std::time::Instant::now() > deadline {
                break log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        (code, log)
    }

    async fn snapshot_keys(&self) -> Vec<String> {
        let channel = containerd_client::connect(&self.env.socket).await.unwrap();
        let ns = self.config.namespace.as_str();
        let mut stream = SnapshotsClient::new(channel)
            .list(with_namespace!(
                ListSnapshotsRequest {
                    snapshotter: "overlayfs".into(),
                    filters: vec![],
                },
                ns
            ))
            .await
            .unwrap()
            .into_inner();
        let mut keys = Vec::new();
        while let Some(page) = stream.message().await.unwrap() {
            keys.extend(page.info.into_iter().map(|i| i.name));
        }
        keys
    }

    async fn content_labels(&self, digest: &str) -> HashMap<String, String> {
        let channel = containerd_client::connect(&self.env.socket).await.unwrap();
        let ns = self.config.namespace.as_str();
        ContentClient::new(channel)
            .info(with_namespace!(
                InfoRequest {
                    digest: digest.into()
                },
                ns
            ))
            .await
            .unwrap()
            .into_inner()
            .info
            .unwrap()
            .labels
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let config = self.config.clone();
        let socket = self.env.socket.clone();
        let namespace = self.config.namespace.clone();
        // Drop cannot await, and the test's runtime may be shutting down: clean up on a
        // runtime of our own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok(runtime) = Containerd::connect(config).await else {
                    return;
                };
                for id in runtime.list_containers().await.unwrap_or_default() {
                    let _ = runtime.kill(&id, SIGKILL, true).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), runtime.wait(&id)).await;
                    if let Err(e) = runtime.delete(&id).await {
                        eprintln!("cleanup: cannot delete container {id}: {e}");
                    }
                }
                remove_namespace(&socket, &namespace).await;
            });
        });
        let _ = cleanup.join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_is_idempotent_and_second_pull_is_local() {
    let f = Fixture::new().await;
    let first = f.demo().await;
    assert!(first.manifest_digest.starts_with("sha256:"));
    assert!(first.chain_id.starts_with("sha256:"));
    assert!(!first.config.cmd.is_empty(), "demo image has a cmd");

    // A runtime that may not use plain http cannot reach the registry: with `once` it
    // succeeds only if the second pull never leaves containerd.
    let mut https_only = f.config.clone();
    https_only.insecure_registries.clear();
    https_only.pull_behavior = ImagePullBehavior::Once;
    let local = Containerd::connect(https_only).await.unwrap();
    let started = Instant::now();
    let second = local.pull_image(&f.env.image).await.expect("second pull");
    let elapsed = started.elapsed();
    assert_eq!(first, second);
    assert!(
        elapsed < Duration::from_millis(500),
        "local pull took {elapsed:?}"
    );

    // The GC labels tie manifest -> config/layers -> snapshot.
    let manifest = f.content_labels(&first.manifest_digest).await;
    let config_digest = &manifest["containerd.io/gc.ref.content.config"];
    assert!(
        manifest.contains_key("containerd.io/gc.ref.content.l.0"),
        "{manifest:?}"
    );
    let config = f.content_labels(config_digest).await;
    assert_eq!(
        config["containerd.io/gc.ref.snapshot.overlayfs"],
        first.chain_id
    );
    let layer = f
        .content_labels(&manifest["containerd.io/gc.ref.content.l.0"])
        .await;
    assert!(layer["containerd.io/uncompressed"].starts_with("sha256:"));
    assert!(f.snapshot_keys().await.contains(&first.chain_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_share_one_fetch() {
    let f = Fixture::new().await;
    let pulls: Vec<_> = (0..4)
        .map(|_| {
            let rt = f.rt.clone();
            let image = f.env.image.clone();
            tokio::spawn(async move { rt.pull_image(&image).await })
        })
        .collect();
    let mut images = Vec::new();
    for pull in pulls {
        images.push(pull.await.unwrap().expect("concurrent pull"));
    }
    assert!(images.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_of_missing_tag_reports_registry_message() {
    let f = Fixture::new().await;
    let reference = format!("{}/berth/demo:no-such-tag", f.env.registry);
    match f.rt.pull_image(&reference).await {
        Err(RuntimeError::Pull {
            reference: r,
            message,
        }) => {
            assert_eq!(r, reference);
            assert!(message.contains("manifest unknown"), "message: {message}");
        }
        other => panic!("expected a Pull error, got {other:?}"),
    }
    let err = f.rt.pull_image(&reference).await.unwrap_err().to_string();
    assert!(err.contains("no-such-tag"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_from_unreachable_registry_is_a_pull_error() {
    let f = Fixture::new().await;
    // Nothing listens on port 1 of loopback.
    let reference = "127.0.0.1:1/berth/demo:latest";
    let mut config = f.config.clone();
    config.insecure_registries = vec!["127.0.0.1:1".into()];
    let rt = Containerd::connect(config).await.unwrap();
    match rt.pull_image(reference).await {
        Err(RuntimeError::Pull { message, .. }) => {
            eprintln!("unreachable registry: {message}");
            assert!(message.contains("127.0.0.1:1"), "message: {message}");
        }
        other => panic!("expected a Pull error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_to_exit_code_with_output_in_log() {
    let f = Fixture::new().await;
    let image = f.demo().await;
    let spec = f.spec(
        &image,
        "echo",
        // stderr last, right before exit: containerd 1.6's own `file://`
        // logs lost that write about 1 run in 8; our log writer must not.
        &["/bin/sh", "-c", "echo hi; echo oops >&2; exit 3"],
    );
    let (code, _) = f.run(&spec).await;
    assert_eq!(code, 3);
    // The shim copies output on its own: it may land just after the exit.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = std::fs::read_to_string(&spec.log_path).unwrap_or_default();
        if (log.contains("hi") && log.contains("oops")) || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(log.contains("hi"), "log: {log:?}");
    assert!(log.contains("oops"), "stderr goes to the same log: {log:?}");
    let status = f.rt.status(&spec.id).await.unwrap().unwrap();
    assert_eq!(
        (status.state, status.exit_code),
        (ContainerState::Stopped, Some(3))
    );
    f.rt.delete(&spec.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_reaches_the_process() {
    let f = Fixture::new().await;
    let image = f.demo().await;
    let mut spec = f.spec(
        &image,
        "env",
        &[
            "/bin/sh",
            "-c",
            "echo user=$(id -u):$(id -g) host=$(hostname) cwd=$(pwd) mode=$MODE; \
             cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    spec.user = "nobody".into();
    spec.cwd = "/tmp".into();
    spec.env = vec!["MODE=test".into()];
    spec.memory_limit_bytes = Some(64 << 20);
    let (code, log) = f.run(&spec).await;
    assert_eq!(code, 0, "log: {log}");
    assert!(
        log.contains("user=65534:65534 host=env cwd=/tmp mode=test"),
        "log: {log}"
    );
    assert!(log.contains("67108864"), "memory limit applied: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_is_a_start_error() {
    let f = Fixture::new().await;
    let image = f.demo().await;
    let mut spec = f.spec(&image, "nouser", &["/bin/true"]);
    spec.user = "no-such-user".into();
    match f.rt.create_container(&spec).await {
        Err(RuntimeError::Start { message, .. }) => {
            assert!(
                message.contains("unable to find user no-such-user"),
                "{message}"
            );
        }
        other => panic!("expected a Start error, got {other:?}"),
    }
    assert!(
        f.rt.status(&spec.id).await.unwrap().is_none(),
        "rolled back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_executable_is_a_start_error_and_leaves_nothing() {
    let f = Fixture::new().await;
    let image = f.demo().await;
    let spec = f.spec(&image, "noexec", &["/nonexistent"]);
    // runc 1.1 looks the executable up during `runc create`, so the error comes from
    // create_container (Tasks.Create); start is only the fallback for other runtimes.
    let result = match f.rt.create_container(&spec).await {
        Ok(()) => {
            eprintln!("missing executable: create succeeded, trying start");
            f.rt.start(&spec.id).await.map(|_| ())
        }
        Err(e) => Err(e),
    };
    match result {
        Err(RuntimeError::Start { container, message }) => {
            eprintln!("missing executable: {message}");
            assert_eq!(container, spec.id);
            assert!(message.contains("/nonexistent"), "message: {message}");
            assert!(
                message.contains("no such file or directory"),
                "message: {message}"
            );
        }
        other => panic!("expected a Start error, got {other:?}"),
    }
    // A failed create rolls back; delete after it is still fine.
    assert!(f.rt.status(&spec.id).await.unwrap().is_none());
    assert!(!f.rt.list_containers().await.unwrap().contains(&spec.id));
    assert!(!f.snapshot_keys().await.contains(&spec.id));
    f.rt.delete(&spec.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_reaches_a_child_but_not_pid_one() {
    let f = Fixture::new().await;
    let image = f.demo().await;

    // `sleep` as pid 1 of its namespace has no SIGTERM handler, so the kernel drops the
    // signal (why ECS's StopTask escalates to SIGKILL).
    let pid1 = f.spec(&image, "pid1", &["sleep", "1000"]);
    f.rt.create_container(&pid1).await.unwrap();
    let pid = f.rt.start(&pid1.id).await.unwrap();
    assert!(pid > 0);
    f.rt.kill(&pid1.id, SIGTERM, false).await.unwrap();
    // Proving a non-event: the exit, if it came, would end this wait at once.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), f.rt.wait(&pid1.id))
            .await
            .is_err(),
        "pid 1 without a handler must survive SIGTERM"
    );
    let status = f.rt.status(&pid1.id).await.unwrap().unwrap();
    assert_eq!(status.state, ContainerState::Running);
    assert_eq!(status.pid, pid);
    f.rt.kill(&pid1.id, SIGKILL, false).await.unwrap();
    assert_eq!(f.rt.wait(&pid1.id).await.unwrap(), 137);
    // Killing an exited task: containerd 1.6 says "process already finished: not found",
    // unless `all` is set.
    assert!(matches!(
        f.rt.kill(&pid1.id, SIGKILL, false).await,
        Err(RuntimeError::NotFound { .. })
    ));
    f.rt.kill(&pid1.id, SIGKILL, true).await.unwrap();

    // A shell waiting on `sleep` reports the child's death by SIGTERM: 128 + 15.
    let child = f.spec(
        &image,
        "child",
        &[
            "/bin/sh",
            "-c",
            "sleep 1000 & echo started; wait $!; exit $?",
        ],
    );
    f.rt.create_container(&child).await.unwrap();
    f.rt.start(&child.id).await.unwrap();
    // Signal only once the child exists (the shell says so in its log).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&child.log_path)
        .unwrap_or_default()
        .contains("started")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the shell never started its child"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.rt.kill(&child.id, SIGTERM, true).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(10), f.rt.wait(&child.id))
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(code, 143);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_idempotent_and_complete() {
    let f = Fixture::new().await;
    let image = f.demo().await;
    let spec = f.spec(&image, "true", &["/bin/true"]);
    let (code, _) = f.run(&spec).await;
    assert_eq!(code, 0);
    assert!(f.rt.list_containers().await.unwrap().contains(&spec.id));
    assert!(f.snapshot_keys().await.contains(&spec.id));

    f.rt.delete(&spec.id).await.unwrap();
    f.rt.delete(&spec.id).await.unwrap();
    assert!(!f.rt.list_containers().await.unwrap().contains(&spec.id));
    assert!(!f.snapshot_keys().await.contains(&spec.id));
    assert!(f.rt.status(&spec.id).await.unwrap().is_none());
    assert!(matches!(
        f.rt.wait(&spec.id).await,
        Err(RuntimeError::NotFound { .. })
    ));
    assert!(f.rt.delete("never-existed").await.is_ok());
}

/// A network namespace made with `ip netns`, removed on drop.
struct NetNs(String);

impl NetNs {
    fn new(name: String) -> Self {
        let status = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "`ip netns add {name}` failed (needs root and iproute2)"
        );
        Self(name)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_the_given_network_namespace() {
    use std::os::unix::fs::MetadataExt;

    let f = Fixture::new().await;
    let image = f.demo().await;
    let netns = NetNs::new(format!("berth-{}", f.config.namespace));
    let inode = std::fs::metadata(netns.path()).unwrap().ino();
    let mut spec = f.spec(&image, "netns", &["readlink", "/proc/self/ns/net"]);
    spec.netns_path = Some(netns.path());
    let (code, log) = f.run(&spec).await;
    assert_eq!(code, 0, "log: {log}");
    assert_eq!(log.trim(), format!("net:[{inode}]"));
    f.rt.delete(&spec.id).await.unwrap();
}

/// Lifecycle latency: create + start + wait + delete of `/bin/true`. Compare with
/// `scripts/bench-ctr-run.sh` (`ctr run --rm`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_latency() {
    let f = Fixture::new().await;
    let image = f.demo().await;
    let mut samples = Vec::new();
    for i in 0..20 {
        let spec = f.spec(&image, &format!("lat{i}"), &["/bin/true"]);
        let started = Instant::now();
        f.rt.create_container(&spec).await.unwrap();
        f.rt.start(&spec.id).await.unwrap();
        assert_eq!(f.rt.wait(&spec.id).await.unwrap(), 0);
        f.rt.delete(&spec.id).await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    let median = (samples[9] + samples[10]) / 2;
    eprintln!(
        "berth lifecycle /bin/true: median_ms={} min_ms={} max_ms={} n=20",
        median.as_millis(),
        samples[0].as_millis(),
        samples[19].as_millis()
    );
    assert!(median < Duration::from_secs(2), "median {median:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_inside_the_container_with_a_deadline() {
    let f = Fixture::new().await;
    let image = f.demo().await;
    let spec = f.spec(
        &image,
        "execd",
        &["/bin/sh", "-c", "echo ready > /tmp/ready; exec sleep 1000"],
    );
    f.rt.create_container(&spec).await.unwrap();
    f.rt.start(&spec.id).await.unwrap();
    let sh = |script: &str| vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()];
    // The exec sees the container's filesystem (the file the container wrote).
    let ok = poll_exec(&f, &spec.id, &sh("test -f /tmp/ready")).await;
    assert_eq!(ok, ExecOutcome::Exited(0));
    // A check that writes to stdout and stderr (like `wget -O-`) still passes.
    let out =
        f.rt.exec(
            &spec.id,
            "e1",
            &sh("echo out; echo err >&2"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(out, ExecOutcome::Exited(0));
    let out =
        f.rt.exec(&spec.id, "e2", &sh("exit 3"), Duration::from_secs(5))
            .await
            .unwrap();
    assert_eq!(out, ExecOutcome::Exited(3));
    let started = std::time::Instant::now();
    let out =
        f.rt.exec(&spec.id, "e3", &sh("sleep 30"), Duration::from_secs(1))
            .await
            .unwrap();
    assert_eq!(out, ExecOutcome::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timed-out exec took {:?}",
        started.elapsed()
    );
    // The same exec id can be used again: finished processes are deleted.
    let out =
        f.rt.exec(&spec.id, "e2", &sh("true"), Duration::from_secs(5))
            .await
            .unwrap();
    assert_eq!(out, ExecOutcome::Exited(0));
    f.rt.kill(&spec.id, SIGKILL, true).await.unwrap();
    f.rt.wait(&spec.id).await.unwrap();
}

/// Execs `args` until it exits 0 or 5 s pass (the container may still be starting).
async fn poll_exec(f: &Fixture, id: &str, args: &[String]) -> ExecOutcome {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    loop {
        n += 1;
        let out =
            f.rt.exec(id, &format!("poll-{n}"), args, Duration::from_secs(5))
                .await;
        match out {
            Ok(ExecOutcome::Exited(0)) => return ExecOutcome::Exited(0),
            other if std::time::Instant::now() > deadline => {
                panic!("exec never succeeded: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
