//! The gRPC service agents talk to: registration and one long-lived session
//! per agent. Protobuf is converted to domain values here and nowhere else.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_server::AgentService;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::join_tokens::{JoinError, JoinTokens};
use crate::model::container_instance::default_reserved_ports;
use crate::model::ports::{HostPort, NetworkBinding, Protocol};
use crate::model::task::{ContainerReport, TaskReport};
use crate::model::{NetworkMode, Resources, Task};
use crate::pki::ClusterCa;
use crate::secrets::Secrets;
use crate::state::{ControlPlane, InstanceRegistration, StateError};

/// How often each side sends a heartbeat. Short, so a lost host is noticed
/// within seconds (see `MISSED_HEARTBEATS`); the cost is one small message
/// per agent per interval.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// Silence (no message at all) for this many intervals closes the session:
/// `agentConnected` turns false and the instance gets no new placements.
/// Three tolerates a lost packet or a busy agent without false alarms.
pub const MISSED_HEARTBEATS: u32 = 3;

pub struct Agents {
    control_plane: Arc<ControlPlane>,
    ca: Arc<ClusterCa>,
    join_tokens: Arc<JoinTokens>,
    secrets: Arc<Secrets>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Agents {
    pub fn new(
        control_plane: Arc<ControlPlane>,
        ca: Arc<ClusterCa>,
        join_tokens: Arc<JoinTokens>,
        secrets: Arc<Secrets>,
    ) -> Self {
        // A sender dropped at once: its receiver never sees `true`.
        let (_, shutdown) = tokio::sync::watch::channel(false);
        Self {
            control_plane,
            ca,
            join_tokens,
            secrets,
            shutdown,
        }
    }

    /// Sessions end when `shutdown` turns true. Sessions never end on their
    /// own, so without this a graceful server shutdown would wait on them
    /// forever.
    pub fn with_shutdown(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }

    pub fn into_server(self) -> pb::agent_service_server::AgentServiceServer<Self> {
        pb::agent_service_server::AgentServiceServer::new(self)
    }
}

/// The one place control-plane errors become gRPC statuses.
fn status(e: &StateError) -> Status {
    match e {
        StateError::ClusterNotFound(_)
        | StateError::TargetNotFound(_)
        | StateError::ServiceNotFound(_)
        | StateError::ResourceNotFound(_) => Status::not_found(e.to_string()),
        StateError::InvalidParameter(_)
        | StateError::Client(_)
        | StateError::AttributeLimitExceeded(_) => Status::invalid_argument(e.to_string()),
        StateError::ClusterContainsContainerInstances { .. }
        | StateError::ClusterContainsServices { .. }
        | StateError::ClusterContainsTasks { .. }
        | StateError::ServiceNotActive(_)
        | StateError::ResourceInUse(_) => Status::failed_precondition(e.to_string()),
        StateError::Store(_) | StateError::Corrupt { .. } => Status::internal(e.to_string()),
    }
}

/// The caller's address, for log lines.
fn peer<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

/// Every call but `Join` needs a client certificate from the cluster CA
/// (the TLS layer has already checked who signed it).
fn require_agent_certificate<T>(request: &Request<T>, call: &str) -> Result<(), Status> {
    if request.peer_certs().is_some_and(|c| !c.is_empty()) {
        return Ok(());
    }
    let peer = peer(request);
    tracing::warn!(%peer, call, "refused a call without an agent certificate");
    Err(Status::unauthenticated(format!(
        "{call} needs the agent's client certificate: join first with a token from `berth join-token create`"
    )))
}

fn ms(v: i64) -> Option<i64> {
    (v > 0).then_some(v)
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<pb::TaskStatus> for TaskReport {
    fn from(s: pb::TaskStatus) -> Self {
        TaskReport {
            task_arn: s.task_arn,
            last_status: s.last_status,
            containers: s
                .containers
                .into_iter()
                .map(|c| ContainerReport {
                    name: c.name,
                    last_status: c.last_status,
                    exit_code: c.exit_code,
                    reason: non_empty(c.reason),
                    runtime_id: non_empty(c.runtime_id),
                    image_digest: non_empty(c.image_digest),
                    health_status: non_empty(c.health_status),
                    network_bindings: c
                        .network_bindings
                        .into_iter()
                        .filter_map(|b| {
                            Some(NetworkBinding {
                                bind_ip: b.bind_ip,
                                container_port: u16::try_from(b.container_port).ok()?,
                                host_port: u16::try_from(b.host_port).ok()?,
                                protocol: Protocol::parse(&b.protocol)?,
                            })
                        })
                        .collect(),
                })
                .collect(),
            private_ipv4: non_empty(s.private_ipv4_address),
            mac_address: non_empty(s.mac_address),
            stop_code: non_empty(s.stop_code),
            stopped_reason: non_empty(s.stopped_reason),
            pull_started_at_ms: ms(s.pull_started_at_ms),
            pull_stopped_at_ms: ms(s.pull_stopped_at_ms),
            started_at_ms: ms(s.started_at_ms),
            execution_stopped_at_ms: ms(s.execution_stopped_at_ms),
            health_status: non_empty(s.health_status),
        }
    }
}

/// The agent's reserved ports; none named at all means ECS's defaults.
fn reserved_ports(r: &pb::Resources) -> BTreeSet<HostPort> {
    if r.reserved_tcp_ports.is_empty() && r.reserved_udp_ports.is_empty() {
        return default_reserved_ports();
    }
    let ports = |list: &[u32], protocol| {
        list.iter()
            .filter_map(move |p| u16::try_from(*p).ok().map(|p| (protocol, p)))
            .collect::<Vec<_>>()
    };
    ports(&r.reserved_tcp_ports, Protocol::Tcp)
        .into_iter()
        .chain(ports(&r.reserved_udp_ports, Protocol::Udp))
        .collect()
}

fn linux_parameters(l: &crate::model::container_options::LinuxParameters) -> pb::LinuxParameters {
    pb::LinuxParameters {
        cap_add: l.cap_add.clone(),
        cap_drop: l.cap_drop.clone(),
        init_process_enabled: l.init_process_enabled,
        shared_memory_size_mib: l.shared_memory_size_mib.unwrap_or(0),
        tmpfs: l
            .tmpfs
            .iter()
            .map(|t| pb::Tmpfs {
                container_path: t.container_path.clone(),
                size_mib: t.size_mib,
                mount_options: t.mount_options.clone(),
            })
            .collect(),
    }
}

/// A container definition as the agent receives it.
fn container_spec(d: &crate::model::ContainerDefinition) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: d.name.clone(),
        image: d.image.clone(),
        command: d.command.clone(),
        entry_point: d.entry_point.clone(),
        environment: d
            .environment
            .iter()
            .map(|(k, v)| pb::KeyValue {
                name: k.clone(),
                value: v.clone(),
            })
            .collect(),
        working_directory: d.working_directory.clone().unwrap_or_default(),
        user: d.user.clone().unwrap_or_default(),
        cpu: d.cpu,
        memory_mib: d.memory_mib.unwrap_or(0),
        memory_reservation_mib: d.memory_reservation_mib.unwrap_or(0),
        essential: d.essential,
        stop_timeout_secs: d.stop_timeout_secs.unwrap_or(0),
        depends_on: d
            .depends_on
            .iter()
            .map(|(name, condition)| pb::ContainerDependency {
                container_name: name.clone(),
                condition: condition.clone(),
            })
            .collect(),
        health_check: d.health_check.as_ref().map(|h| pb::HealthCheck {
            command: h.command.clone(),
            interval_secs: h.interval_secs,
            timeout_secs: h.timeout_secs,
            retries: h.retries,
            start_period_secs: h.start_period_secs,
        }),
        start_timeout_secs: d.start_timeout_secs.unwrap_or(0),
        environment_files: d.options.environment_files.clone(),
        readonly_root_filesystem: d.options.readonly_root_filesystem,
        ulimits: d
            .options
            .ulimits
            .iter()
            .map(|u| pb::Ulimit {
                name: u.name.clone(),
                soft_limit: u.soft_limit,
                hard_limit: u.hard_limit,
            })
            .collect(),
        linux_parameters: Some(linux_parameters(&d.options.linux_parameters)),
        mount_points: d
            .options
            .mount_points
            .iter()
            .map(|m| pb::MountPoint {
                source_volume: m.source_volume.clone(),
                container_path: m.container_path.clone(),
                read_only: m.read_only,
            })
            .collect(),
        volumes_from: d
            .options
            .volumes_from
            .iter()
            .map(|v| pb::VolumeFrom {
                source_container: v.source_container.clone(),
                read_only: v.read_only,
            })
            .collect(),
        privileged: d.options.privileged,
        docker_labels: d.options.docker_labels.iter().cloned().collect(),
        port_mappings: d
            .port_mappings
            .iter()
            .map(|m| pb::PortMapping {
                container_port: u32::from(m.container_port),
                host_port: u32::from(m.host_port.unwrap_or(0)),
                protocol: m.protocol.as_str().into(),
            })
            .collect(),
        // Filled in by `add_secrets`.
        secret_environment: vec![],
        registry_login: None,
        links: d.options.links.clone(),
        hostname: d.options.hostname.clone().unwrap_or_default(),
        extra_hosts: d
            .options
            .extra_hosts
            .iter()
            .map(|(hostname, ip)| pb::HostEntry {
                hostname: hostname.clone(),
                ip_address: ip.clone(),
            })
            .collect(),
    }
}

fn task_spec(t: &Task) -> pb::TaskSpec {
    let network_mode = match t.network_mode {
        NetworkMode::Awsvpc => pb::NetworkMode::Awsvpc,
        NetworkMode::Bridge => pb::NetworkMode::Bridge,
        NetworkMode::Host => pb::NetworkMode::Host,
        NetworkMode::None => pb::NetworkMode::None,
    };
    let desired = if t.desired_status == "STOPPED" {
        pb::DesiredStatus::Stopped
    } else {
        pb::DesiredStatus::Running
    };
    pb::TaskSpec {
        task_arn: t.arn.clone(),
        task_id: t.id.clone(),
        family: t.family.clone(),
        revision: i64::from(t.revision),
        desired_status: desired.into(),
        network_mode: network_mode.into(),
        cpu: t.cpu.unwrap_or(0),
        memory_mib: t.memory_mib.unwrap_or(0),
        cluster_arn: t.cluster_arn.clone(),
        volumes: t
            .volumes
            .iter()
            .map(|v| pb::Volume {
                name: v.name.clone(),
                host_source_path: v.host_source_path.clone().unwrap_or_default(),
            })
            .collect(),
        containers: t
            .containers
            .iter()
            .map(|c| container_spec(&c.definition))
            .collect(),
        secrets_error: String::new(),
    }
}

/// Puts a task's resolved `secrets` and `repositoryCredentials` into its spec
/// (the session is mutual TLS). A reference that does not resolve becomes the
/// spec's `secrets_error`, with the reason ECS gives, and the agent fails the task.
fn add_secrets(spec: &mut pb::TaskSpec, t: &Task, secrets: &Secrets) {
    if t.desired_status == "STOPPED" {
        return;
    }
    let resolved = t
        .containers
        .iter()
        .zip(spec.containers.iter_mut())
        .try_for_each(|(c, out)| {
            let o = &c.definition.options;
            for (name, value_from) in &o.secrets {
                out.secret_environment.push(pb::KeyValue {
                    name: name.clone(),
                    value: secrets.resolve(value_from)?,
                });
            }
            if let Some(p) = &o.repository_credentials {
                let login = secrets.registry_login(p)?;
                out.registry_login = Some(pb::RegistryLogin {
                    username: login.username,
                    password: login.password,
                });
            }
            Ok::<(), String>(())
        });
    if let Err(e) = resolved {
        for c in &mut spec.containers {
            c.secret_environment.clear();
            c.registry_login = None;
        }
        spec.secrets_error =
            format!("ResourceInitializationError: unable to pull secrets or registry auth: {e}");
    }
}

fn desired_message(cp: &ControlPlane, secrets: &Secrets, instance_arn: &str) -> pb::ControlMessage {
    let tasks = cp.map_desired_tasks(instance_arn, |t| {
        let mut spec = task_spec(t);
        add_secrets(&mut spec, t, secrets);
        spec
    });
    pb::ControlMessage {
        kind: Some(pb::control_message::Kind::DesiredTasks(pb::DesiredTasks {
            tasks,
        })),
    }
}

fn now_ms() -> i64 {
    crate::state::Clock::now_ms(&crate::state::SystemClock)
}

#[tonic::async_trait]
impl AgentService for Agents {
    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let peer = peer(&request);
        let r = request.into_inner();
        let token: berth_proto::join_token::JoinToken = r.token.parse().map_err(|e| {
            tracing::warn!(%peer, error = %e, "refused a join");
            Status::invalid_argument(format!("join: {e}"))
        })?;
        let tokens = self.join_tokens.clone();
        let presented = token.clone();
        // Redeeming commits to the store: keep it off the async workers.
        let redeemed = tokio::task::spawn_blocking(move || tokens.redeem(&presented))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if let Err(e) = redeemed {
            tracing::warn!(%peer, token_id = %token.id, hostname = %r.hostname, error = %e, "refused a join");
            return Err(match e {
                JoinError::State(e) => status(&e),
                e => Status::permission_denied(format!("join: {e}")),
            });
        }
        let name = format!("berth-agent {}", r.hostname);
        let creds = self
            .ca
            .issue_agent(&name)
            .map_err(|e| Status::internal(e.to_string()))?;
        tracing::info!(%peer, token_id = %token.id, hostname = %r.hostname, "agent joined: issued its client certificate");
        Ok(Response::new(pb::JoinResponse {
            certificate_pem: creds.chain_pem,
            private_key_pem: creds.key_pem,
            ca_certificate_pem: self.ca.cert_pem().to_owned(),
        }))
    }

    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        require_agent_certificate(&request, "Register")?;
        let r = request.into_inner();
        let resources = r.resources.unwrap_or_default();
        if resources.cpu <= 0 || resources.memory_mib <= 0 {
            return Err(Status::invalid_argument(
                "register: resources.cpu and resources.memory_mib must be positive",
            ));
        }
        let reg = InstanceRegistration {
            cluster: if r.cluster.is_empty() {
                "default".into()
            } else {
                r.cluster
            },
            container_instance_arn: non_empty(r.container_instance_arn),
            hostname: r.hostname,
            resources: Resources {
                cpu: resources.cpu,
                memory_mib: resources.memory_mib,
            },
            capacity_provider: non_empty(r.capacity_provider).or_else(|| {
                r.serves_fargate
                    .then(|| crate::model::capacity_provider::FARGATE.to_string())
            }),
            agent_version: r.agent_version,
            attributes: r.attributes.into_iter().collect(),
            reserved_ports: reserved_ports(&resources),
        };
        let cp = self.control_plane.clone();
        let instance = tokio::task::spawn_blocking(move || cp.register_instance(&reg))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| status(&e))?;
        tracing::info!(container_instance = %instance.arn, cluster = %instance.cluster, "agent registered");
        let cluster_arn = self
            .control_plane
            .arns_of(&instance.arn)
            .cluster(&instance.cluster);
        Ok(Response::new(pb::RegisterResponse {
            container_instance_arn: instance.arn,
            cluster_arn,
            heartbeat_interval_secs: u32::try_from(HEARTBEAT_INTERVAL.as_secs()).unwrap_or(5),
        }))
    }

    type SessionStream = ReceiverStream<Result<pb::ControlMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        require_agent_certificate(&request, "Session")?;
        let mut inbound = request.into_inner();
        let hello = match inbound.next().await {
            Some(Ok(pb::AgentMessage {
                kind: Some(pb::agent_message::Kind::Hello(h)),
            })) => h,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "session: the first message must be Hello",
                ))
            }
        };
        let cp = self.control_plane.clone();
        let arn = hello.container_instance_arn.clone();
        let mut changes = cp.open_session(&arn).map_err(|e| status(&e))?;
        for t in hello.tasks {
            cp.apply_report(&arn, &t.into()).map_err(|e| status(&e))?;
        }
        tracing::info!(container_instance = %arn, "agent session opened");
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut shutdown = self.shutdown.clone();
        let secrets = self.secrets.clone();
        tokio::spawn(async move {
            let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
            // Any message from the agent counts as a sign of life. The
            // session ends the moment the window passes in silence (not on
            // the next heartbeat tick, up to 2 s later): a lost host's
            // service tasks move that much sooner.
            let window = HEARTBEAT_INTERVAL * MISSED_HEARTBEATS;
            let silence = tokio::time::sleep(window);
            tokio::pin!(silence);
            // The first desired set goes out at once.
            if tx
                .send(Ok(desired_message(&cp, &secrets, &arn)))
                .await
                .is_err()
            {
                cp.close_session(&arn, &changes);
                return;
            }
            changes.mark_unchanged();
            loop {
                tokio::select! {
                    alive = changes.changed() => {
                        if alive.is_err() { break; } // replaced by a newer session
                        changes.mark_unchanged();
                        // A peer that stops reading must not hold this loop.
                        let sent = tokio::time::timeout(HEARTBEAT_INTERVAL, tx.send(Ok(desired_message(&cp, &secrets, &arn)))).await;
                        if !matches!(sent, Ok(Ok(()))) { break; }
                    }
                    () = &mut silence => {
                        tracing::warn!(container_instance = %arn, silent_ms = window.as_millis(), "agent missed its heartbeats: marking it disconnected");
                        break;
                    }
                    _ = heartbeat.tick() => {
                        let hb = pb::ControlMessage { kind: Some(pb::control_message::Kind::Heartbeat(pb::Heartbeat { sent_at_ms: now_ms() })) };
                        if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(Ok(hb)) { break; }
                    }
                    msg = inbound.next() => { silence.as_mut().reset(tokio::time::Instant::now() + window); cp.agent_seen(&arn); match msg {
                        Some(Ok(pb::AgentMessage { kind: Some(pb::agent_message::Kind::TaskStatus(s)) })) => {
                            let report: TaskReport = s.into();
                            let cp2 = cp.clone();
                            let arn2 = arn.clone();
                            let r = tokio::task::spawn_blocking(move || cp2.apply_report(&arn2, &report)).await;
                            if let Ok(Err(e)) = r {
                                tracing::error!(container_instance = %arn, error = %e, "could not record a task report");
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => { tracing::info!(container_instance = %arn, error = %e, "agent session ended"); break; }
                        None => { tracing::info!(container_instance = %arn, "agent closed its session"); break; }
                    }},
                    // Ending the response stream lets the agent see a clean
                    // end of session and reconnect to the next control plane.
                    true = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => {
                        tracing::info!(container_instance = %arn, "closing the agent session: shutting down");
                        break;
                    }
                }
            }
            cp.close_session(&arn, &changes);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_lost_once_its_heartbeat_window_has_passed() {
        let window = HEARTBEAT_INTERVAL * MISSED_HEARTBEATS;
        assert_eq!(
            i64::try_from(window.as_millis()).unwrap(),
            crate::services::hosts::DEFAULT_LOST_AFTER_MS
        );
    }

    #[test]
    fn secrets_resolve_into_the_spec_or_fail_it_with_ecss_reason() {
        let secrets = Secrets::open(
            Arc::new(crate::store::MemoryStore::default()),
            Arc::new(crate::state::SystemClock),
            crate::model::ArnContext {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        )
        .unwrap();
        let db = secrets
            .create("us-east-1", "db", r#"{"pw":"hunter2"}"#.into(), None)
            .unwrap();
        secrets
            .create(
                "us-east-1",
                "reg",
                r#"{"username":"u","password":"p"}"#.into(),
                None,
            )
            .unwrap();
        let mut t = crate::model::task::tests_support::task();
        let options = &mut t.containers[0].definition.options;
        options.secrets = vec![("PW".into(), format!("{}:pw::", db.arn))];
        options.repository_credentials = Some("reg".into());
        let resolved = |t: &Task| {
            let mut spec = task_spec(t);
            add_secrets(&mut spec, t, &secrets);
            spec
        };

        let spec = resolved(&t);
        assert_eq!(spec.secrets_error, "");
        let c = &spec.containers[0];
        assert_eq!(
            (
                c.secret_environment[0].name.as_str(),
                c.secret_environment[0].value.as_str()
            ),
            ("PW", "hunter2")
        );
        let login = c.registry_login.as_ref().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("u", "p")
        );

        // One reference that does not resolve: nothing is sent, the task fails.
        t.containers[0].definition.options.repository_credentials = Some("gone".into());
        let spec = resolved(&t);
        assert!(
            spec.secrets_error.starts_with(
                "ResourceInitializationError: unable to pull secrets or registry auth: "
            ) && spec.secrets_error.contains("'gone'"),
            "{}",
            spec.secrets_error
        );
        assert!(spec.containers[0].secret_environment.is_empty());
        assert!(spec.containers[0].registry_login.is_none());

        // A task being stopped needs none.
        t.desired_status = "STOPPED".into();
        let spec = resolved(&t);
        assert_eq!(spec.secrets_error, "");
        assert!(spec.containers[0].secret_environment.is_empty());
    }

    #[test]
    fn status_report_converts_empty_strings_to_none() {
        let r: TaskReport = pb::TaskStatus {
            task_arn: "arn".into(),
            last_status: "RUNNING".into(),
            containers: vec![pb::ContainerStatus {
                name: "web".into(),
                last_status: "RUNNING".into(),
                exit_code: None,
                ..Default::default()
            }],
            started_at_ms: 5,
            ..Default::default()
        }
        .into();
        assert_eq!(r.stop_code, None);
        assert_eq!(r.started_at_ms, Some(5));
        assert_eq!(r.pull_started_at_ms, None);
        assert_eq!(r.containers[0].reason, None);
    }
}
