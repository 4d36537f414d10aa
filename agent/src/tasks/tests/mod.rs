//! Whole tasks through `TaskManager` and `Supervisor`, without root: the
//! recording runtime, network and cgroups, a tempdir for the state file and
//! the task files, and tokio's paused clock (`TokioClock` reads it), so
//! stopTimeouts and health intervals pass in no real time and every
//! timestamp is exact. One file per topic; the harness is here.

mod adopt;
mod depends_on;
mod failures;
mod health;
mod lifecycle;
mod stop;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Host, TaskManager};
use crate::cgroups::RecordingCgroups;
use crate::clock::TokioClock;
use crate::config::AgentConfig;
use crate::local_state::LocalState;
use crate::model::{
    ContainerDef, ContainerOptions, ContainerReport, Dependency, DesiredStatus, HealthCheck,
    NetworkMode, TaskReport, TaskSpec, TaskStatus,
};
use crate::network::{HostPortRange, NetworkConfig, RecordingNetwork, TaskCidr};
use crate::runtime::{Call, RecordingRuntime};

type TestHost = Host<RecordingRuntime, RecordingNetwork, RecordingCgroups>;

pub(super) const TASK_ID: &str = "0123456789abcdef0123456789abcdef";
/// What the test clock reads when a test starts (Unix ms).
pub(super) const START_MS: i64 = 1_700_000_000_000;
/// The agent's stopTimeout for containers without their own.
pub(super) const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// No test waits this long (in virtual time) for a report that should come.
const PATIENCE: Duration = Duration::from_secs(3600);

fn config(data_dir: PathBuf, cidr: TaskCidr) -> AgentConfig {
    AgentConfig {
        data_dir,
        control_plane: "https://127.0.0.1:8501".parse().unwrap(),
        join_token: None,
        cluster: "default".into(),
        capacity_provider: None,
        region: "us-east-1".into(),
        containerd_socket: "/nonexistent/containerd.sock".into(),
        containerd_namespace: "berth-test".into(),
        bridge: "berth0".into(),
        task_cidr: (cidr.network, cidr.prefix_len),
        insecure_registries: vec![],
        default_stop_timeout: DEFAULT_STOP_TIMEOUT,
        cpu: 2048,
        memory_mib: 4096,
        cgroup_parent: "berth/berth-test".into(),
        netns_dir: crate::network::DEFAULT_NETNS_DIR.into(),
        mtu: 1500,
        allow_privileged: false,
        task_pids_limit: 4096,
        init_binary: None,
        dynamic_host_ports: HostPortRange::ECS_DEFAULT,
        reserved_tcp_ports: vec![],
        reserved_udp_ports: vec![],
    }
}

/// One agent on fakes, and every report it sent.
pub(super) struct Harness {
    pub host: Arc<TestHost>,
    /// The runtime the host holds (a clone sharing its state).
    pub rt: RecordingRuntime,
    manager: Option<TaskManager<RecordingRuntime, RecordingNetwork, RecordingCgroups>>,
    reports: mpsc::UnboundedReceiver<TaskReport>,
    /// Every report received, with when (tokio's clock).
    pub seen: Vec<(Instant, TaskReport)>,
    /// When the test started, on tokio's clock.
    pub t0: Instant,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Call from a `#[tokio::test(start_paused = true)]`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cidr = NetworkConfig::default().cidr;
        let state = LocalState::open(&dir.path().join("agent.redb")).unwrap();
        let rt = RecordingRuntime::new();
        let host = Host::new(
            rt.clone(),
            RecordingNetwork::new(cidr),
            RecordingCgroups::default(),
            state,
            config(dir.path().to_path_buf(), cidr),
            cidr,
        )
        .with_clock(TokioClock::starting_at(START_MS));
        let host = Arc::new(host);
        let (tx, reports) = mpsc::unbounded_channel();
        Self {
            manager: Some(TaskManager::new(host.clone(), tx)),
            host,
            rt,
            reports,
            seen: Vec::new(),
            t0: Instant::now(),
            _dir: dir,
        }
    }

    pub fn manager(&self) -> &TaskManager<RecordingRuntime, RecordingNetwork, RecordingCgroups> {
        self.manager.as_ref().expect("the agent is running")
    }

    /// The control plane's desired set: exactly these tasks.
    pub fn desire(&self, specs: &[TaskSpec]) {
        self.manager().apply_desired(specs.to_vec());
    }

    /// The control plane wants `spec` (and only it) running.
    pub fn run(&self, spec: &TaskSpec) {
        self.desire(std::slice::from_ref(spec));
    }

    /// The control plane asks for `spec` to stop (`StopTask`).
    pub fn stop(&self, spec: &TaskSpec) {
        let mut stopped = spec.clone();
        stopped.desired_status = DesiredStatus::Stopped;
        self.desire(&[stopped]);
    }

    /// The agent goes away: its manager is dropped, and its supervisors,
    /// seeing that, leave their tasks as they are (as at shutdown). They
    /// must be past provisioning and not stopping, or they would go on.
    pub async fn shut_down(&mut self) {
        drop(self.manager.take());
        // Let the old supervisors see their manager gone.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    /// A new agent starts on the same host: it adopts what the state file
    /// and the runtime hold. Reports from now on come from it.
    pub async fn start_again(&mut self) {
        let (tx, reports) = mpsc::unbounded_channel();
        self.reports = reports;
        let manager = TaskManager::new(self.host.clone(), tx);
        manager.recover().await;
        self.manager = Some(manager);
    }

    /// The next report, on paused time.
    pub async fn next(&mut self) -> TaskReport {
        let r = tokio::time::timeout(PATIENCE, self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("no report within {PATIENCE:?}; seen {:#?}", self.seen))
            .expect("the reports channel is open");
        self.seen.push((Instant::now(), r.clone()));
        r
    }

    /// Reports until one satisfies `pred`; returns it.
    pub async fn until(&mut self, pred: impl Fn(&TaskReport) -> bool) -> TaskReport {
        loop {
            let r = self.next().await;
            if pred(&r) {
                return r;
            }
        }
    }

    pub async fn until_status(&mut self, status: TaskStatus) -> TaskReport {
        self.until(|r| r.last_status == status).await
    }

    /// Time since the test started (tokio's clock).
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// The task statuses reported so far, in order.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.seen.iter().map(|(_, r)| r.last_status).collect()
    }

    /// When (since the test started) the runtime was first called as `pred` says.
    pub fn call_time(&self, pred: impl Fn(&Call) -> bool) -> Option<Duration> {
        self.rt
            .timed_calls()
            .into_iter()
            .find(|(_, c)| pred(c))
            .map(|(at, _)| at - self.t0)
    }

    /// Where in the runtime's call list the first call `pred` matches is.
    pub fn call_index(&self, pred: impl Fn(&Call) -> bool) -> Option<usize> {
        self.rt.calls().iter().position(pred)
    }

    /// When container `name` was created, since the test started.
    pub fn created_at(&self, name: &str) -> Option<Duration> {
        let id = cid(name);
        self.call_time(|c| matches!(c, Call::CreateContainer(s) if s.id == id))
    }

    /// Signals sent to container `name`, with when (since the test started).
    pub fn kills(&self, name: &str) -> Vec<(Duration, u32)> {
        let id = cid(name);
        self.rt
            .timed_calls()
            .into_iter()
            .filter_map(|(at, c)| match c {
                Call::Kill { id: k, signal, .. } if k == id => Some((at - self.t0, signal)),
                _ => None,
            })
            .collect()
    }

    /// Everything the task made on the host is gone: containers deleted,
    /// cgroup removed, network torn down, addresses released, record and
    /// metadata forgotten.
    pub fn assert_cleaned_up(&self, spec: &TaskSpec) {
        for def in &spec.containers {
            let id = spec.container_id(&def.name);
            assert!(
                self.rt.calls().contains(&Call::Delete(id.clone())),
                "{id} deleted"
            );
            assert_eq!(self.rt.state_of(&id), None, "{id} gone from the runtime");
        }
        assert!(
            self.host
                .cgroups
                .calls()
                .contains(&format!("remove {}", spec.id)),
            "cgroup removed: {:?}",
            self.host.cgroups.calls()
        );
        if spec.network_mode == NetworkMode::Awsvpc {
            assert!(
                self.host
                    .network
                    .calls()
                    .contains(&format!("teardown_task {}", spec.id)),
                "network torn down: {:?}",
                self.host.network.calls()
            );
            assert_eq!(self.host.ip_of(&spec.id), None, "address released");
        }
        assert!(
            self.host.network.netns.lock().unwrap().is_empty(),
            "no namespace left"
        );
        assert!(
            self.host.state.tasks().unwrap().is_empty(),
            "task record forgotten"
        );
    }
}

/// An essential container running `registry.local/<name>:1`.
pub(super) fn def(name: &str) -> ContainerDef {
    ContainerDef {
        name: name.into(),
        image: format!("registry.local/{name}:1"),
        command: vec![],
        entry_point: vec![],
        environment: vec![],
        working_directory: None,
        user: None,
        cpu: 0,
        memory_mib: Some(64),
        memory_reservation_mib: None,
        essential: true,
        stop_timeout: None,
        depends_on: vec![],
        health_check: None,
        start_timeout: None,
        options: ContainerOptions::default(),
        port_mappings: vec![],
    }
}

pub(super) fn non_essential(name: &str) -> ContainerDef {
    ContainerDef {
        essential: false,
        ..def(name)
    }
}

/// `def` that depends on `on` with `condition`.
pub(super) fn depends(
    def: ContainerDef,
    on: &str,
    condition: crate::model::ContainerCondition,
) -> ContainerDef {
    let mut def = def;
    def.depends_on.push(Dependency {
        container: on.into(),
        condition,
    });
    def
}

/// `def` with a health check every `interval_s` seconds.
pub(super) fn health_checked(
    def: ContainerDef,
    interval_s: u64,
    retries: u32,
    start_period_s: u64,
) -> ContainerDef {
    ContainerDef {
        health_check: Some(HealthCheck {
            command: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            interval: Duration::from_secs(interval_s),
            timeout: Duration::from_secs(5),
            retries,
            start_period: Duration::from_secs(start_period_s),
        }),
        ..def
    }
}

/// An awsvpc task with these containers, desired RUNNING.
pub(super) fn task(containers: Vec<ContainerDef>) -> TaskSpec {
    TaskSpec {
        arn: format!("arn:aws:ecs:us-east-1:000000000000:task/default/{TASK_ID}"),
        id: TASK_ID.into(),
        family: "web".into(),
        revision: 1,
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/default".into(),
        desired_status: DesiredStatus::Running,
        network_mode: NetworkMode::Awsvpc,
        cpu: None,
        memory_mib: Some(256),
        containers,
        volumes: vec![],
        secrets_error: None,
    }
}

/// The runtime id of container `name` of the test task.
pub(super) fn cid(name: &str) -> String {
    format!("{TASK_ID}-{name}")
}

pub(super) fn container<'r>(report: &'r TaskReport, name: &str) -> &'r ContainerReport {
    report
        .containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name} in {report:#?}"))
}

/// The first task address of the default CIDR.
pub(super) const FIRST_IP: Ipv4Addr = Ipv4Addr::new(10, 131, 0, 2);

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
