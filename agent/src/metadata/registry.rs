//! The metadata registry: what the endpoint serves, per task and container, kept current by the supervisor.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use crate::model::{
    ContainerStatus, DesiredStatus, HealthStatus, NetworkMode, TaskReport, TaskSpec, TaskStatus,
};
use crate::network::TaskCidr;

/// A task as the metadata endpoint describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMetadata {
    pub task_id: String,
    pub cluster: String,
    pub task_arn: String,
    pub family: String,
    pub revision: i64,
    pub desired_status: DesiredStatus,
    pub known_status: TaskStatus,
    /// Task-level CPU units and MiB, when the task definition sets them.
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
    pub pull_started_at_ms: Option<i64>,
    pub pull_stopped_at_ms: Option<i64>,
    pub availability_zone: String,
    pub launch_type: berth_ecs::LaunchType,
    pub network_mode: NetworkMode,
    /// The task's own address (awsvpc).
    pub ipv4: Option<Ipv4Addr>,
    pub network: Option<TaskNetwork>,
    pub containers: Vec<ContainerMetadata>,
}

/// The task's `awsvpc` interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNetwork {
    pub ipv4: Ipv4Addr,
    pub mac: String,
    pub subnet: TaskCidr,
    pub private_dns_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMetadata {
    pub name: String,
    /// The containerd container id.
    pub docker_id: String,
    pub docker_name: String,
    pub image: String,
    pub image_id: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub desired_status: DesiredStatus,
    pub known_status: ContainerStatus,
    /// CPU units and MiB of the container definition.
    pub cpu: i64,
    pub memory_mib: Option<i64>,
    pub created_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub container_arn: String,
    pub health: Option<HealthMetadata>,
    /// The container's cgroup, relative to the hierarchy root (for stats).
    pub cgroup_path: String,
    /// The container's own address on the bridge (bridge mode).
    pub bridge_ipv4: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthMetadata {
    pub status: HealthStatus,
    pub since_ms: i64,
}

/// What a token resolves to: the token's container and its whole task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub container: String,
    pub task: TaskMetadata,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, TaskMetadata>,
    /// token -> (task id, container name)
    tokens: HashMap<String, (String, String)>,
}

/// Shared between the supervisors (writers) and the HTTP server (reader).
#[derive(Clone)]
pub struct MetadataRegistry {
    endpoint: SocketAddrV4,
    cidr: TaskCidr,
    region: String,
    inner: Arc<Mutex<Inner>>,
}

/// A fresh unguessable token: 128 random bits as 32 hex digits.
fn new_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// ECS's container ARN shape, from the task ARN and the container name
/// (deterministic, so it needs no round trip to the control plane).
fn container_arn(task_arn: &str, name: &str) -> String {
    format!("{}/{name}", task_arn.replacen(":task/", ":container/", 1))
}

fn desired_of(report: &TaskReport) -> DesiredStatus {
    if report.last_status.is_stopping() {
        DesiredStatus::Stopped
    } else {
        DesiredStatus::Running
    }
}

impl MetadataRegistry {
    /// `endpoint` is where the server listens (the task bridge's gateway);
    /// `cidr` is the task subnet, reported as the tasks' subnet.
    pub fn new(endpoint: SocketAddrV4, cidr: TaskCidr, region: impl Into<String>) -> Self {
        Self {
            endpoint,
            cidr,
            region: region.into(),
            inner: Arc::default(),
        }
    }

    pub fn endpoint(&self) -> SocketAddrV4 {
        self.endpoint
    }

    /// `ECS_CONTAINER_METADATA_URI_V4` for one container. Registers the task
    /// and its containers (each with its own token) on first use and brings
    /// it up to date with `report`, so call it before the container starts:
    /// the task's address must be known before the container can ask.
    /// `cgroup_task_path` is the task cgroup.
    pub fn container_uri(
        &self,
        spec: &TaskSpec,
        report: &TaskReport,
        container: &str,
        cgroup_task_path: &str,
        now_ms: i64,
    ) -> String {
        self.register(spec, report, container, cgroup_task_path, None, now_ms)
    }

    /// Serves an adopted container again under the token it already has in
    /// its environment (from a previous agent run).
    pub fn adopt(
        &self,
        spec: &TaskSpec,
        report: &TaskReport,
        container: &str,
        cgroup_task_path: &str,
        token: &str,
        now_ms: i64,
    ) {
        self.register(
            spec,
            report,
            container,
            cgroup_task_path,
            Some(token),
            now_ms,
        );
    }

    fn register(
        &self,
        spec: &TaskSpec,
        report: &TaskReport,
        container: &str,
        cgroup_task_path: &str,
        known_token: Option<&str>,
        now_ms: i64,
    ) -> String {
        let mut inner = self.inner.lock().unwrap();
        if !inner.tasks.contains_key(&spec.id) {
            let task = self.new_task(spec, cgroup_task_path);
            inner.tasks.insert(spec.id.clone(), task);
        }
        let existing = inner
            .tokens
            .iter()
            .find(|(_, (t, c))| *t == spec.id && c == container)
            .map(|(token, _)| token.clone());
        let token = existing
            .or_else(|| known_token.map(str::to_owned))
            .unwrap_or_else(|| {
                let token = new_token();
                inner
                    .tokens
                    .insert(token.clone(), (spec.id.clone(), container.to_string()));
                token
            });
        if let Some(c) = inner
            .tasks
            .get_mut(&spec.id)
            .and_then(|t| t.containers.iter_mut().find(|c| c.name == container))
        {
            c.created_at_ms.get_or_insert(now_ms);
        }
        if let Some(task) = inner.tasks.get_mut(&spec.id) {
            self.apply(task, spec, report, now_ms);
        }
        inner
            .tokens
            .insert(token.clone(), (spec.id.clone(), container.to_string()));
        format!("http://{}/v4/{token}", self.endpoint)
    }

    fn new_task(&self, spec: &TaskSpec, cgroup_task_path: &str) -> TaskMetadata {
        let cgroup_task_path = cgroup_task_path.trim_matches('/');
        TaskMetadata {
            task_id: spec.id.clone(),
            cluster: spec.cluster_arn.clone(),
            task_arn: spec.arn.clone(),
            family: spec.family.clone(),
            revision: spec.revision,
            desired_status: DesiredStatus::Running,
            known_status: TaskStatus::Provisioning,
            cpu: spec.cpu,
            memory_mib: spec.memory_mib,
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            availability_zone: format!("{}a", self.region),
            launch_type: berth_ecs::LaunchType::Ec2,
            network_mode: spec.network_mode,
            ipv4: None,
            network: None,
            containers: spec
                .containers
                .iter()
                .map(|d| {
                    let id = spec.container_id(&d.name);
                    ContainerMetadata {
                        name: d.name.clone(),
                        docker_name: id.clone(),
                        docker_id: id,
                        image: d.image.clone(),
                        image_id: None,
                        labels: [
                            ("com.amazonaws.ecs.cluster", spec.cluster_arn.as_str()),
                            ("com.amazonaws.ecs.container-name", d.name.as_str()),
                            ("com.amazonaws.ecs.task-arn", spec.arn.as_str()),
                            ("com.amazonaws.ecs.task-definition-family", &spec.family),
                            (
                                "com.amazonaws.ecs.task-definition-version",
                                &spec.revision.to_string(),
                            ),
                        ]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                        desired_status: DesiredStatus::Running,
                        known_status: ContainerStatus::Pending,
                        cpu: d.cpu,
                        memory_mib: d.memory_mib,
                        created_at_ms: None,
                        started_at_ms: None,
                        finished_at_ms: None,
                        exit_code: None,
                        container_arn: container_arn(&spec.arn, &d.name),
                        health: None,
                        cgroup_path: format!("{cgroup_task_path}/{}", d.name),
                        bridge_ipv4: None,
                    }
                })
                .collect(),
        }
    }

    /// Brings a registered task up to date with its latest report; a task not
    /// registered (or already removed) is left alone. Timestamps the report
    /// does not carry are taken from `now_ms` as transitions are seen.
    pub fn sync(&self, spec: &TaskSpec, report: &TaskReport, now_ms: i64) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(task) = inner.tasks.get_mut(&spec.id) {
            self.apply(task, spec, report, now_ms);
        }
    }

    fn apply(&self, task: &mut TaskMetadata, spec: &TaskSpec, report: &TaskReport, now_ms: i64) {
        let desired = desired_of(report);
        task.desired_status = desired;
        task.known_status = report.last_status;
        task.pull_started_at_ms = report.pull_started_at_ms;
        task.pull_stopped_at_ms = report.pull_stopped_at_ms;
        let ipv4 = report
            .private_ipv4
            .as_deref()
            .and_then(|s| s.parse::<Ipv4Addr>().ok());
        task.ipv4 = ipv4;
        task.network = match (spec.network_mode, ipv4) {
            (NetworkMode::Awsvpc, Some(ip)) => Some(TaskNetwork {
                ipv4: ip,
                mac: report.mac_address.clone().unwrap_or_default(),
                subnet: self.cidr,
                private_dns_name: format!(
                    "ip-{}.{}.compute.internal",
                    ip.to_string().replace('.', "-"),
                    self.region
                ),
            }),
            _ => None,
        };
        for c in &mut task.containers {
            let Some(r) = report.containers.iter().find(|r| r.name == c.name) else {
                continue;
            };
            c.desired_status = desired;
            if r.last_status == ContainerStatus::Running && c.started_at_ms.is_none() {
                c.started_at_ms = Some(now_ms);
            }
            if r.last_status == ContainerStatus::Stopped
                && c.finished_at_ms.is_none()
                && c.started_at_ms.is_some()
            {
                c.finished_at_ms = Some(now_ms);
            }
            c.known_status = r.last_status;
            c.exit_code = r.exit_code;
            c.image_id.clone_from(&r.image_digest);
            c.health = match (r.health_status, c.health.take()) {
                (None, _) => None,
                (Some(s), Some(h)) if s == h.status => Some(h),
                (Some(status), _) => Some(HealthMetadata {
                    status,
                    since_ms: now_ms,
                }),
            };
        }
    }

    /// Records a bridge-mode container's own address: where it calls from,
    /// and what its metadata shows under `Networks`.
    pub fn set_bridge_address(&self, task_id: &str, container: &str, ip: Ipv4Addr) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(c) = inner
            .tasks
            .get_mut(task_id)
            .and_then(|t| t.containers.iter_mut().find(|c| c.name == container))
        {
            c.bridge_ipv4 = Some(ip);
        }
    }

    /// Forgets a task and revokes its tokens.
    pub fn remove_task(&self, task_id: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.tasks.remove(task_id);
        inner.tokens.retain(|_, (t, _)| t != task_id);
    }

    /// Resolves a token for a caller at `peer`: None unless the token is
    /// known and the caller is the token's own task.
    pub fn lookup(&self, token: &str, peer: IpAddr) -> Option<Lookup> {
        let inner = self.inner.lock().unwrap();
        let (task_id, container) = inner.tokens.get(token)?;
        let task = inner.tasks.get(task_id)?;
        // The caller's own address: the task's (awsvpc), the container's
        // (bridge), or the host's side of the bridge, which host-network
        // containers call from. A none-mode container cannot reach us.
        let own = match task.network_mode {
            NetworkMode::Awsvpc => task.ipv4?,
            NetworkMode::Bridge => {
                task.containers
                    .iter()
                    .find(|c| c.name == *container)?
                    .bridge_ipv4?
            }
            NetworkMode::Host => *self.endpoint.ip(),
            NetworkMode::None => return None,
        };
        let peer_ok = match peer {
            IpAddr::V4(ip) => ip == own,
            IpAddr::V6(ip) => ip.to_ipv4_mapped() == Some(own),
        };
        peer_ok.then(|| Lookup {
            container: container.clone(),
            task: task.clone(),
        })
    }
}
