//! The agent's container runtime: the `ContainerRuntime` trait, its domain types, the real
//! containerd implementation and a recording fake for tests.
//!
//! containerd 1.6 has no server-side pull, so `Containerd` fetches images itself (`image`),
//! writes them into the content store (`content`), unpacks them into snapshots, and runs
//! containers through the Containers and Tasks services (`containers`) with an OCI spec
//! built by `spec`.

mod cleanup;
mod containers;
mod content;
mod error;
mod exec;
mod fake;
mod fetch;
mod image;
mod manifest;
mod pull;
mod registry;
mod spec;
mod terminal;
mod unpack;
mod user;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::Request;

pub use cleanup::{disk_usage, images_to_remove, DiskUsage, ImageCleanupPolicy, StoredImage};
pub use error::RuntimeError;
pub use exec::{exec_process, ExecOutcome};
pub use fake::{Call, RecordingRuntime};
pub use pull::ImagePullBehavior;
pub use registry::{parse_registry_auth, parse_registry_mirror, RegistryCredentials};
pub use spec::{
    add_cgroup_namespace, build_spec, process_args, process_env, ProcessUser, DEFAULT_CAPABILITIES,
    DEFAULT_PATH, INIT_PATH,
};
pub use terminal::terminal_process;
pub use unpack::chain_id;
pub use user::{resolve_user, resolve_user_with, UserError};

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// The shim every Berth container runs under.
pub const RUNC_RUNTIME: &str = "io.containerd.runc.v2";

/// How the agent reaches containerd and registries.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// containerd's gRPC socket.
    pub socket: PathBuf,
    /// containerd namespace holding everything Berth creates (images, containers, snapshots).
    pub namespace: String,
    /// Snapshotter for image layers and container rootfs, normally `overlayfs`.
    pub snapshotter: String,
    /// Registries (`host:port`) that may be reached over plain http. A mirror is reached
    /// over plain http only if it is listed here itself.
    pub insecure_registries: Vec<String>,
    /// Credentials by registry host (the host contacted: a mirror's own host).
    pub registry_auth: HashMap<String, RegistryCredentials>,
    /// Upstream registry host -> mirror host serving the same repositories.
    pub registry_mirrors: HashMap<String, String>,
    /// PEM certificates trusted for registries besides the system's CA store
    /// (`/etc/ssl/certs`; `SSL_CERT_FILE` / `SSL_CERT_DIR` override it).
    pub registry_ca_pems: Vec<Vec<u8>>,
    pub pull_behavior: ImagePullBehavior,
    /// Executable that writes container logs (`crate::log_driver`): the
    /// agent's own. `None` falls back to containerd's `file://` logs, whose
    /// 1.6 shim can lose the end of one stream.
    pub log_driver: Option<PathBuf>,
    /// When that log driver rotates the host's log files.
    pub log_rotation: crate::log_driver::Rotation,
    /// Give each container its own cgroup namespace: by default on cgroup
    /// v2 hosts (detected), as Docker and containerd's CRI plugin do.
    pub cgroup_namespace: bool,
}

impl RuntimeConfig {
    #[must_use]
    pub fn new(socket: impl Into<PathBuf>, namespace: impl Into<String>) -> Self {
        Self {
            socket: socket.into(),
            namespace: namespace.into(),
            snapshotter: "overlayfs".to_owned(),
            insecure_registries: Vec::new(),
            registry_auth: HashMap::new(),
            registry_mirrors: HashMap::new(),
            registry_ca_pems: Vec::new(),
            pull_behavior: ImagePullBehavior::default(),
            log_driver: None,
            log_rotation: crate::log_driver::Rotation::default(),
            cgroup_namespace: crate::cgroups::unified_hierarchy(),
        }
    }
}

/// The parts of an image's config a container inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// A pulled and unpacked image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    /// The reference exactly as requested; also the containerd image record's name.
    pub reference: String,
    /// Digest of the platform manifest (not of an index that pointed at it).
    pub manifest_digest: String,
    /// Chain id of the top layer: the committed snapshot a container's rootfs starts from.
    pub chain_id: String,
    pub config: ImageConfig,
}

/// A host path bind-mounted into a container (volumes, `/etc/resolv.conf`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// Everything needed to create one container. Empty `args`/`cwd`/`user` fall back to the
/// image's config; `env` entries override the image's variables of the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// containerd container id; also the key of its rootfs snapshot. Unique per host.
    pub id: String,
    pub image: Image,
    /// Full argv. Empty means the image's entrypoint + cmd.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// `""`, `uid`, `uid:gid`, `name`, `name:group` (names resolved from the image's
    /// `/etc/passwd` and `/etc/group`).
    pub user: String,
    pub hostname: String,
    /// Network namespace to join (must exist before `create_container`); `None` gives the
    /// container a fresh, unconnected one (only `lo`), unless `host_network`.
    pub netns_path: Option<PathBuf>,
    /// Share the host's network namespace (ECS `host` mode); wins over `netns_path`.
    pub host_network: bool,
    /// e.g. `/berth/<ns>/<task>/<container>`.
    pub cgroups_path: String,
    pub memory_limit_bytes: Option<i64>,
    pub memory_reservation_bytes: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub readonly_rootfs: bool,
    pub mounts: Vec<BindMount>,
    /// stdout and stderr both go to this file (appended; absolute; its directory is
    /// created). Empty discards the output.
    pub log_path: PathBuf,
    pub labels: HashMap<String, String>,
    /// Linux settings beyond the defaults (ulimits, capabilities, tmpfs, ...).
    pub linux: LinuxOptions,
}

/// ECS `ulimits`, `linuxParameters` and `privileged`, as runc takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxOptions {
    /// (`RLIMIT_NOFILE`-style name, soft, hard).
    pub rlimits: Vec<(String, u64, u64)>,
    /// Capability names with or without `CAP_`; `ALL` in `cap_drop` drops every default one.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Every capability, no masked paths, all devices: for the agent's config to allow.
    pub privileged: bool,
    /// (container path, size in bytes, extra mount options).
    pub tmpfs: Vec<(String, u64, Vec<String>)>,
    pub shm_size_bytes: Option<u64>,
    /// A static init binary on the host, run as PID 1 in front of the process.
    pub init_binary: Option<PathBuf>,
}

/// What containerd says about a container's task (shown in its words: `NO_TASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// The task exists but has not been started.
    Created,
    Running,
    /// The task exited and has not been deleted yet.
    Stopped,
    Paused,
    /// The container record exists but has no task: creation failed half-way, or the task
    /// was already deleted.
    NoTask,
    Unknown,
}

impl ContainerState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
            Self::Paused => "PAUSED",
            Self::NoTask => "NO_TASK",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// containerd's view of a container: its task's state, pid and exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeStatus {
    pub state: ContainerState,
    /// Host pid of the container's init process (0 when there is none).
    pub pid: u32,
    /// Exit status once `Stopped`.
    pub exit_code: Option<u32>,
}

/// Runs containers on this host. Every side effect of the task manager on containerd goes
/// through here, so the manager can be tested against `RecordingRuntime`.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Pulls and unpacks `reference` (idempotent). Whether a cached image is used instead of
    /// (or when) contacting the registry follows the configured `ImagePullBehavior`.
    fn pull_image(&self, reference: &str) -> impl Future<Output = Result<Image>> + Send {
        self.pull_image_as(reference, None)
    }
    /// `pull_image` with a task's own registry login (`repositoryCredentials`), which wins
    /// over the agent's configured credentials for the image's registry.
    fn pull_image_as(
        &self,
        reference: &str,
        login: Option<&RegistryCredentials>,
    ) -> impl Future<Output = Result<Image>> + Send;
    /// Prepares the rootfs, creates the container record and its (not yet started) task.
    fn create_container(&self, spec: &ContainerSpec) -> impl Future<Output = Result<()>> + Send;
    /// Starts the task; returns the host pid.
    fn start(&self, id: &str) -> impl Future<Output = Result<u32>> + Send;
    /// Blocks until the task exits; returns its exit status (128+signal when killed).
    fn wait(&self, id: &str) -> impl Future<Output = Result<u32>> + Send;
    /// Signals the task's init process (`all`: every process in the container). After the
    /// task exited, a plain kill is `NotFound` while `all` succeeds (containerd 1.6).
    fn kill(&self, id: &str, signal: u32, all: bool) -> impl Future<Output = Result<()>> + Send;
    /// Deletes the (stopped) task, the container record and its snapshot. Missing pieces are
    /// not an error.
    fn delete(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn list_containers(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// `None` when no container record exists.
    fn status(&self, id: &str) -> impl Future<Output = Result<Option<RuntimeStatus>>> + Send;
    /// Runs `args` inside the running container `id` (as its user, with its
    /// environment), killing it after `timeout`.
    fn exec(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecOutcome>> + Send;
    /// Starts `args` in the running container `id` as exec `exec_id` on a pseudo-terminal
    /// whose input and output are the FIFOs `stdin` and `stdout` (ECS Exec).
    fn exec_terminal(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        stdin: &Path,
        stdout: &Path,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (exec_id, args, stdin, stdout);
        let container = id.to_owned();
        async move {
            Err(RuntimeError::Start {
                container,
                message: "this runtime runs no commands on a terminal".to_owned(),
            })
        }
    }
    /// Sets the terminal size of a terminal exec.
    fn resize_exec(
        &self,
        id: &str,
        exec_id: &str,
        cols: u32,
        rows: u32,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (id, exec_id, cols, rows);
        async { Ok(()) }
    }
    /// Blocks until exec `exec_id` exits; its exit status.
    fn wait_exec(&self, id: &str, exec_id: &str) -> impl Future<Output = Result<u32>> + Send {
        let _ = id;
        let exec_id = exec_id.to_owned();
        async move {
            Err(RuntimeError::NotFound {
                kind: "process",
                id: exec_id,
            })
        }
    }
    /// Kills exec `exec_id` if it still runs, then deletes it once its output is copied.
    fn end_exec(&self, id: &str, exec_id: &str) -> impl Future<Output = ()> + Send {
        let _ = (id, exec_id);
        async {}
    }
}

/// `ContainerRuntime` over containerd's gRPC socket.
pub struct Containerd {
    channel: Channel,
    config: RuntimeConfig,
    namespace: MetadataValue<Ascii>,
    registry: oci_client::Client,
    /// One lock per reference being pulled, so concurrent pulls of an image share one fetch.
    pulls: Mutex<HashMap<String, Arc<image::PullSlot>>>,
    /// When each image was last pulled or seen in use by this process: keeps the cleanup
    /// from removing an image between its pull and its container's creation.
    last_used: Mutex<HashMap<String, SystemTime>>,
}

impl Containerd {
    /// Connects to containerd (the socket must accept a connection now; later reconnects are
    /// automatic).
    pub async fn connect(config: RuntimeConfig) -> Result<Self> {
        let connect_error = |message: String| RuntimeError::Connect {
            socket: config.socket.clone(),
            message,
        };
        let namespace = config
            .namespace
            .parse::<MetadataValue<Ascii>>()
            .map_err(|e| connect_error(format!("invalid namespace {:?}: {e}", config.namespace)))?;
        let channel = containerd_client::connect(&config.socket)
            .await
            .map_err(|e| connect_error(error::chain(&e)))?;
        let registry = fetch::registry_client(&config);
        Ok(Self {
            channel,
            config,
            namespace,
            registry,
            pulls: Mutex::new(HashMap::new()),
            last_used: Mutex::new(HashMap::new()),
        })
    }

    #[must_use]
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    fn mark_used(&self, reference: &str) {
        self.last_used
            .lock()
            .expect("last-used map poisoned")
            .insert(reference.to_owned(), SystemTime::now());
    }

    /// A request in our namespace.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("containerd-namespace", self.namespace.clone());
        request
    }

    /// A request in our namespace whose new resources belong to `lease` until it is deleted.
    fn leased<T>(&self, message: T, lease: &content::Lease) -> Request<T> {
        let mut request = self.request(message);
        request
            .metadata_mut()
            .insert("containerd-lease", lease.header());
        request
    }
}

impl ContainerRuntime for Containerd {
    async fn pull_image_as(
        &self,
        reference: &str,
        login: Option<&RegistryCredentials>,
    ) -> Result<Image> {
        self.do_pull_image(reference, login).await
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<()> {
        self.do_create_container(spec).await
    }

    async fn start(&self, id: &str) -> Result<u32> {
        self.do_start(id).await
    }

    async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome> {
        self.do_exec(id, exec_id, args, timeout).await
    }

    async fn wait(&self, id: &str) -> Result<u32> {
        self.do_wait(id).await
    }

    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        self.do_kill(id, signal, all).await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.do_delete(id).await
    }

    async fn list_containers(&self) -> Result<Vec<String>> {
        self.do_list_containers().await
    }

    async fn status(&self, id: &str) -> Result<Option<RuntimeStatus>> {
        self.do_status(id).await
    }

    async fn exec_terminal(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        stdin: &Path,
        stdout: &Path,
    ) -> Result<()> {
        self.do_exec_terminal(id, exec_id, args, stdin, stdout)
            .await
    }

    async fn resize_exec(&self, id: &str, exec_id: &str, cols: u32, rows: u32) -> Result<()> {
        self.do_resize_exec(id, exec_id, cols, rows).await
    }

    async fn wait_exec(&self, id: &str, exec_id: &str) -> Result<u32> {
        self.do_wait_exec(id, exec_id).await
    }

    async fn end_exec(&self, id: &str, exec_id: &str) {
        self.do_end_exec(id, exec_id).await;
    }
}
