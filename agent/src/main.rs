//! berth-agent: read flags, build the host parts, recover, then hold the
//! control-plane session.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_agent::awslogs::link::LogLink;
use berth_agent::awslogs::shipper::Shipper;
use berth_agent::cgroups::HostCgroups;
use berth_agent::clock::{Clock, SystemClock};
use berth_agent::config::{host_resources, AgentConfig};
use berth_agent::local_state::LocalState;
use berth_agent::metadata::{self, MetadataRegistry};
use berth_agent::network::{HostPortRange, LinuxNetwork, NetworkConfig, NetworkSetup, TaskCidr};
use berth_agent::runtime::{
    parse_registry_auth, parse_registry_mirror, Containerd, ImageCleanupPolicy, ImagePullBehavior,
    RegistryCredentials, RuntimeConfig,
};
use berth_agent::tasks::{Host, TaskManager};
use berth_agent::tls::ControlPlaneEndpoint;
use berth_proto::join_token::JoinToken;
use clap::{CommandFactory, Parser};

#[derive(Parser, Debug)]
#[command(
    name = "berth-agent",
    version,
    about = "Berth agent: runs tasks on this host through containerd"
)]
struct Args {
    /// Settings file: one key per flag, in `snake_case` (`task_cidr = "..."`);
    /// flags and environment variables win over it. Missing is fine unless
    /// named here or in the variable.
    #[arg(
        long,
        env = "BERTH_AGENT_CONFIG",
        default_value = "/etc/berth/agent.toml"
    )]
    #[allow(dead_code)] // read by berth_daemon::config::load, before parsing
    config: PathBuf,
    /// Local state and task logs.
    #[arg(
        long,
        env = "BERTH_AGENT_DATA_DIR",
        default_value = "/var/lib/berth/agent"
    )]
    data_dir: PathBuf,
    /// The control plane's agent endpoint (always TLS).
    #[arg(
        long,
        env = "BERTH_CONTROL_PLANE",
        default_value = "https://127.0.0.1:8501"
    )]
    control_plane: ControlPlaneEndpoint,
    /// Token from `berth join-token create`, traded for this host's client
    /// certificate on first start (kept under <data-dir>/pki); ignored once joined.
    /// An empty value counts as none (an `EnvironmentFile` line `BERTH_JOIN_TOKEN=`).
    #[arg(long, env = "BERTH_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// Cluster this host joins.
    #[arg(long, env = "BERTH_CLUSTER", default_value = "default")]
    cluster: String,
    /// Capacity provider this host joins: FARGATE or `FARGATE_SPOT` (serves every
    /// cluster), or a named host pool of --cluster (`CreateCapacityProvider`). Unset:
    /// a plain EC2 container instance of --cluster.
    #[arg(
        long,
        env = "BERTH_CAPACITY_PROVIDER",
        conflicts_with = "serves_fargate"
    )]
    capacity_provider: Option<String>,
    /// Same as --capacity-provider FARGATE (kept for existing configs).
    #[arg(long, env = "BERTH_SERVES_FARGATE")]
    serves_fargate: bool,
    #[arg(long, env = "BERTH_REGION", default_value = "us-east-1")]
    region: String,
    #[arg(
        long,
        env = "BERTH_CONTAINERD_SOCK",
        default_value = "/run/containerd/containerd.sock"
    )]
    containerd_socket: PathBuf,
    /// containerd namespace for this agent's containers (unique per agent on a host).
    #[arg(long, env = "BERTH_CONTAINERD_NAMESPACE", default_value = "berth")]
    containerd_namespace: String,
    /// Host bridge for awsvpc tasks.
    #[arg(long, env = "BERTH_BRIDGE", default_value = "berth0")]
    bridge: String,
    /// Addresses for awsvpc tasks; the first host address is the bridge's.
    #[arg(long, env = "BERTH_TASK_CIDR", default_value = "10.131.0.0/24")]
    task_cidr: String,
    /// Registries (host:port) the agent may reach over plain HTTP.
    #[arg(
        long = "insecure-registry",
        env = "BERTH_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    insecure_registries: Vec<String>,
    /// Registry credentials, `host=user:password` (repeat the flag, or comma-separate in
    /// the env var). Used for basic auth and for bearer-token challenges alike.
    #[arg(
        long = "registry-auth",
        env = "BERTH_REGISTRY_AUTH",
        value_delimiter = ',',
        value_parser = parse_registry_auth,
        hide_env_values = true
    )]
    registry_auth: Vec<(String, RegistryCredentials)>,
    /// Pull mirrors, `upstream-host=mirror-host[:port]` (repeatable): images named after the
    /// upstream are fetched from the mirror under the same repository path.
    #[arg(
        long = "registry-mirror",
        env = "BERTH_REGISTRY_MIRRORS",
        value_delimiter = ',',
        value_parser = parse_registry_mirror
    )]
    registry_mirrors: Vec<(String, String)>,
    /// PEM files of CAs to trust for registries besides the system's CA store
    /// (repeatable): for registries behind a private CA.
    #[arg(
        long = "registry-ca",
        env = "BERTH_REGISTRY_CA_FILES",
        value_delimiter = ','
    )]
    registry_ca: Vec<std::path::PathBuf>,
    /// `ECS_IMAGE_PULL_BEHAVIOR`: default, always, once or prefer-cached.
    #[arg(
        long = "image-pull-behavior",
        env = "BERTH_IMAGE_PULL_BEHAVIOR",
        default_value = "default"
    )]
    image_pull_behavior: ImagePullBehavior,
    /// Containers' log files on the host are rotated past this size (`10m`, `512k`,
    /// bytes; 0: never), keeping `--container-log-max-files` files in all.
    #[arg(long = "container-log-max-size", env = "BERTH_CONTAINER_LOG_MAX_SIZE", default_value = "10m", value_parser = parse_size)]
    container_log_max_size: u64,
    #[arg(long = "container-log-max-files", env = "BERTH_CONTAINER_LOG_MAX_FILES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    container_log_max_files: u32,
    /// Seconds between unused-image cleanup passes; 0 turns cleanup off (as does
    /// prefer-cached).
    #[arg(long, env = "BERTH_IMAGE_CLEANUP_INTERVAL", default_value_t = 3 * 3600)]
    image_cleanup_interval: u64,
    /// Seconds an image must go unused (no pull, no container) before cleanup removes it.
    #[arg(long, env = "BERTH_IMAGE_CLEANUP_MAX_AGE", default_value_t = 3600)]
    image_cleanup_max_age: u64,
    /// Percent of containerd's root filesystem in use at which cleanup removes every unused
    /// image (pulled over 2 minutes ago), whatever its age.
    #[arg(
        long,
        env = "BERTH_IMAGE_CLEANUP_DISK_THRESHOLD",
        default_value_t = 90,
        value_parser = clap::value_parser!(u8).range(1..=100)
    )]
    image_cleanup_disk_threshold: u8,
    /// Milliseconds between the awslogs shipper's looks for new container output when it
    /// has caught up (while output waits, batches follow each other at once).
    #[arg(long, env = "BERTH_AWSLOGS_FLUSH_INTERVAL_MS", default_value_t = 500)]
    awslogs_flush_interval_ms: u64,
    /// containerd's root directory (its `root` setting): the filesystem cleanup watches.
    #[arg(
        long,
        env = "BERTH_CONTAINERD_ROOT",
        default_value = "/var/lib/containerd"
    )]
    containerd_root: PathBuf,
    /// Seconds between SIGTERM and SIGKILL when a container has no stopTimeout.
    #[arg(
        long = "stop-timeout",
        env = "BERTH_STOP_TIMEOUT",
        default_value_t = 30
    )]
    stop_timeout_secs: u64,
    /// Memory (MiB) kept back for the host itself.
    #[arg(long, env = "BERTH_RESERVED_MEMORY", default_value_t = 512)]
    reserved_memory_mib: i64,
    /// Most processes one task may run at once (its cgroup's pids limit); 0: no limit.
    #[arg(long, env = "BERTH_TASK_PIDS_LIMIT", default_value_t = 4096)]
    task_pids_limit: i64,
    /// Let task definitions run `privileged` containers on this host.
    #[arg(long, env = "BERTH_ALLOW_PRIVILEGED")]
    allow_privileged: bool,
    /// Static init binary for containers with initProcessEnabled.
    #[arg(
        long,
        env = "BERTH_INIT_BINARY",
        default_value = "/usr/bin/tini-static"
    )]
    init_binary: PathBuf,
    #[arg(long, env = "BERTH_MTU", default_value_t = 1500)]
    mtu: u32,
    /// Host ports for bridge-mode `portMappings` with hostPort 0 or absent, `FIRST-LAST`.
    #[arg(long, env = "BERTH_DYNAMIC_HOST_PORTS", default_value = "32768-61000")]
    dynamic_host_ports: HostPortRange,
    /// TCP host ports no task may take (`ECS_RESERVED_PORTS`).
    #[arg(
        long = "reserved-port",
        env = "BERTH_RESERVED_PORTS",
        value_delimiter = ',',
        default_values_t = berth_agent::network::ECS_RESERVED_TCP_PORTS
    )]
    reserved_ports: Vec<u16>,
    /// UDP host ports no task may take (`ECS_RESERVED_PORTS_UDP`).
    #[arg(
        long = "reserved-udp-port",
        env = "BERTH_RESERVED_PORTS_UDP",
        value_delimiter = ','
    )]
    reserved_udp_ports: Vec<u16>,
    /// Port of the task metadata endpoint, on the bridge's (gateway) address.
    #[arg(long, env = "BERTH_METADATA_PORT", default_value_t = berth_agent::metadata::DEFAULT_PORT)]
    metadata_port: u16,
}

/// The join token, if one was given; empty means none.
fn join_token(args: &Args) -> anyhow::Result<Option<JoinToken>> {
    match args.join_token.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => Ok(Some(t.parse().context("--join-token / BERTH_JOIN_TOKEN")?)),
    }
}

/// The agent's settings from its flags and the host's capacity.
fn agent_config(args: &Args, cidr: TaskCidr) -> AgentConfig {
    let (cpu, memory_mib) = host_resources(args.reserved_memory_mib);
    AgentConfig {
        data_dir: args.data_dir.clone(),
        control_plane: args.control_plane.clone(),
        join_token: None,
        cluster: args.cluster.clone(),
        capacity_provider: args
            .capacity_provider
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| args.serves_fargate.then(|| berth_ecs::FARGATE.to_string())),
        region: args.region.clone(),
        containerd_socket: args.containerd_socket.clone(),
        containerd_namespace: args.containerd_namespace.clone(),
        bridge: args.bridge.clone(),
        task_cidr: (cidr.network, cidr.prefix_len),
        insecure_registries: args.insecure_registries.clone(),
        default_stop_timeout: Duration::from_secs(args.stop_timeout_secs),
        cpu,
        memory_mib,
        cgroup_parent: format!("berth/{}", args.containerd_namespace),
        netns_dir: PathBuf::from(berth_agent::network::DEFAULT_NETNS_DIR),
        mtu: args.mtu,
        allow_privileged: args.allow_privileged,
        task_pids_limit: args.task_pids_limit,
        init_binary: args.init_binary.exists().then(|| args.init_binary.clone()),
        dynamic_host_ports: args.dynamic_host_ports,
        reserved_tcp_ports: args.reserved_ports.clone(),
        reserved_udp_ports: args.reserved_udp_ports.clone(),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    berth_ecs::awslogs::parse_size(s)
        .ok_or_else(|| format!("'{s}' is not a size such as 10m, 512k or 4096"))
}

fn main() -> anyhow::Result<()> {
    // Started by a containerd shim as a container's log writer: two copy
    // threads, no async runtime (one such process runs per container).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((log_path, rotation)) = berth_agent::log_driver::requested(&argv) {
        return berth_agent::log_driver::run(&log_path, rotation)
            .with_context(|| format!("writing the container log {}", log_path.display()));
    }
    // Before any thread starts: the settings file fills in unset variables.
    let settings = berth_daemon::config::load(
        &Args::command(),
        "BERTH_AGENT_CONFIG",
        Path::new("/etc/berth/agent.toml"),
    )?;
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(agent_main(settings))
}

async fn agent_main(settings: Option<PathBuf>) -> anyhow::Result<()> {
    berth_daemon::init_logging();
    tracing::debug!(open_files = ?berth_daemon::raise_open_files_limit(), "open-files limit");
    if let Some(path) = settings {
        tracing::info!(path = %path.display(), "settings file read");
    }
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let cidr: TaskCidr = args
        .task_cidr
        .parse()
        .with_context(|| format!("--task-cidr {}", args.task_cidr))?;
    let mut config = agent_config(&args, cidr);
    config.join_token = join_token(&args)?;
    let mut net_config = NetworkConfig::new(args.bridge, cidr);
    net_config.mtu = args.mtu;
    let network = LinuxNetwork::new(net_config)?;
    network
        .ensure_host()
        .await
        .context("setting up the host bridge")?;
    let mut rt_config = RuntimeConfig::new(args.containerd_socket, args.containerd_namespace);
    rt_config.insecure_registries = args.insecure_registries;
    rt_config.registry_auth = args.registry_auth.into_iter().collect();
    rt_config.registry_mirrors = args.registry_mirrors.into_iter().collect();
    rt_config.registry_ca_pems = registry_cas(&args.registry_ca)?;
    rt_config.pull_behavior = args.image_pull_behavior;
    rt_config.log_rotation = berth_agent::log_driver::Rotation {
        max_bytes: args.container_log_max_size,
        max_files: args.container_log_max_files,
    };
    rt_config.log_driver =
        Some(std::env::current_exe().context("finding the agent's executable (the log driver)")?);
    let pull_behavior = args.image_pull_behavior;
    let runtime = Containerd::connect(rt_config)
        .await
        .context("connecting to containerd")?;
    let state = LocalState::open(&config.state_path())?;
    let cgroups = HostCgroups::new(config.cgroup_parent.clone());
    let metadata = MetadataRegistry::new(
        SocketAddrV4::new(cidr.gateway(), args.metadata_port),
        cidr,
        config.region.clone(),
    );
    // After ensure_host: the gateway address exists only once the bridge does.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    metadata::start(metadata.clone(), PathBuf::from("/sys/fs/cgroup"), clock)
        .await
        .context("starting the task metadata endpoint")?;
    let host = Host::new(runtime, network, cgroups, state, config, cidr).with_metadata(metadata);
    let host = Arc::new(host);
    if args.image_cleanup_interval == 0 || pull_behavior == ImagePullBehavior::PreferCached {
        tracing::info!("unused image cleanup is off");
    } else {
        let mut policy = ImageCleanupPolicy::new(args.containerd_root);
        policy.interval = Duration::from_secs(args.image_cleanup_interval);
        policy.max_age = Duration::from_secs(args.image_cleanup_max_age);
        policy.disk_threshold_percent = args.image_cleanup_disk_threshold;
        let host = host.clone();
        tokio::spawn(async move { host.runtime.run_image_cleanup(policy).await });
    }
    let (reports_tx, mut reports_rx) = tokio::sync::mpsc::unbounded_channel();
    let manager = TaskManager::new(host, reports_tx);
    manager.recover().await;
    // Exec sessions a dead agent left behind: their commands are killed.
    berth_agent::exec::sweep(&manager.host().runtime, &args.data_dir.join("exec")).await;
    // Ready once containerd answers and the bridge exists, before any
    // session: a control plane that is down must not hold up the host's
    // boot, and the agent reconnects to it on its own.
    tracing::info!("berth-agent started");
    let shutdown = berth_daemon::shutdown_signal();
    berth_daemon::notify_ready("connected to containerd; host bridge up");
    let watchdog = berth_daemon::spawn_watchdog();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (log_link, mut log_rx) = LogLink::new();
    let shipper = Shipper::new(
        args.data_dir.join("tasks"),
        log_link,
        Arc::new(SystemClock),
        Duration::from_millis(args.awslogs_flush_interval_ms),
    );
    tokio::spawn(shipper.run(stop_rx.clone()));
    let mut session = std::pin::pin!(berth_agent::session::run(
        &manager,
        &mut reports_rx,
        &mut log_rx,
        stop_rx
    ));
    tokio::select! {
        () = &mut session => {}
        () = shutdown => {
            berth_daemon::notify_stopping("closing the control-plane session; tasks keep running");
            tracing::info!("shutting down; tasks keep running");
            let _ = stop_tx.send(true);
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut session).await.is_err() {
                tracing::warn!("the session did not close in time; exiting anyway");
            }
        }
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    Ok(())
}

/// The `--registry-ca` files, each checked to hold a PEM certificate.
fn registry_cas(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut pems = Vec::with_capacity(paths.len());
    for path in paths {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading --registry-ca {}", path.display()))?;
        anyhow::ensure!(
            String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----"),
            "--registry-ca {}: no PEM certificate in it",
            path.display()
        );
        pems.push(pem);
    }
    Ok(pems)
}

/// Bound on closing the session after SIGTERM (it needs about one round trip).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped settings file documents exactly this daemon's settings,
    /// and its defaults parse as the flags would.
    #[test]
    fn the_shipped_settings_file_is_every_setting_with_its_default() {
        berth_daemon::config::check_shipped_defaults(
            &Args::command(),
            std::path::Path::new("systemd/agent.toml"),
            include_str!("../../systemd/agent.toml"),
        )
        .unwrap();
    }
}
