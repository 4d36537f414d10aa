//! berth-controlplane: read config, open the store, serve the ECS API and the agent gRPC service.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_controlplane::agent_tls;
use berth_controlplane::api::credentials::ApiCredentials;
use berth_controlplane::api::{self, ApiContext};
use berth_controlplane::cluster_tls::ClusterTls;
use berth_controlplane::join_tokens::JoinTokens;
use berth_controlplane::logs::{store::LogStore, Logs};
use berth_controlplane::model::ArnContext;
use berth_controlplane::pki::ClusterCa;
use berth_controlplane::sealing::{MasterKey, Sealer};
use berth_controlplane::state::{ControlPlane, SystemClock};
use berth_controlplane::{secrets::Secrets, store::RedbStore};
use clap::{CommandFactory, Parser};

#[derive(Parser, Debug)]
#[command(
    name = "berth-controlplane",
    version,
    about = "Berth control plane: ECS-compatible API and agent sessions"
)]
struct Args {
    /// Settings file: one key per flag, in `snake_case` (`api_listen = "..."`);
    /// flags and environment variables win over it. Missing is fine unless
    /// named here or in the variable.
    #[arg(
        long,
        env = "BERTH_CONTROLPLANE_CONFIG",
        default_value = "/etc/berth/controlplane.toml"
    )]
    #[allow(dead_code)] // read by berth_daemon::config::load, before parsing
    config: PathBuf,
    /// Where the store and aws.env live.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth")]
    data_dir: PathBuf,
    /// Address of the ECS-compatible HTTP API.
    #[arg(long, env = "BERTH_API_LISTEN", default_value = "127.0.0.1:8500")]
    api_listen: SocketAddr,
    /// The API's TLS certificate chain (PEM), instead of one from the cluster CA; read
    /// again whenever it or the key changes. With --api-tls-key.
    #[arg(
        long,
        env = "BERTH_API_TLS_CERT",
        value_name = "PATH",
        requires = "api_tls_key"
    )]
    api_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --api-tls-cert.
    #[arg(
        long,
        env = "BERTH_API_TLS_KEY",
        value_name = "PATH",
        requires = "api_tls_cert"
    )]
    api_tls_key: Option<PathBuf>,
    /// What `aws.env` gives clients as `AWS_CA_BUNDLE` with --api-tls-cert (default: none,
    /// the system's trust store verifies it).
    #[arg(long, env = "BERTH_API_TLS_CA_BUNDLE", value_name = "PATH")]
    api_tls_ca_bundle: Option<PathBuf>,
    /// Serve the API over plain HTTP (no TLS): refused unless --api-listen is a
    /// loopback address.
    #[arg(long, env = "BERTH_API_PLAIN_HTTP")]
    api_plain_http: bool,
    /// Address of the gRPC service agents connect to.
    #[arg(long, env = "BERTH_AGENT_LISTEN", default_value = "127.0.0.1:8501")]
    agent_listen: SocketAddr,
    /// Region in ARNs and aws.env.
    #[arg(long, env = "BERTH_REGION", default_value = "us-east-1")]
    region: String,
    /// Account id in ARNs.
    #[arg(long, env = "BERTH_ACCOUNT_ID", default_value = "123456789012")]
    account_id: String,
    /// How long stopped tasks stay describable before they are purged.
    #[arg(
        long,
        env = "BERTH_STOPPED_TASK_RETENTION_SECS",
        default_value_t = 3600
    )]
    stopped_task_retention_secs: u64,
    /// How long an `ExecuteCommand` session's token may wait to be redeemed by its
    /// client (`session-manager-plugin`) before it expires. Tokens work once.
    #[arg(long, env = "BERTH_EXEC_TOKEN_TTL_SECS", default_value_t = 300)]
    exec_token_ttl_secs: u64,
    /// How long an agent's client certificate is valid. Agents renew theirs over their
    /// session two thirds in; an agent offline for longer must join again.
    #[arg(long, env = "BERTH_AGENT_CERT_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(3..))]
    agent_cert_ttl_secs: u64,
    /// The master key that wraps the data key sealing secret values at rest (32 bytes:
    /// raw, hex or base64). Default: the systemd credential `berth-master-key` when
    /// given (`LoadCredential=`), else `<data dir>/master.key`, made on first start.
    #[arg(long, env = "BERTH_MASTER_KEY_FILE", value_name = "PATH")]
    master_key_file: Option<PathBuf>,
    /// To rotate the master key: the key the store was sealed with until now. Its data
    /// key is re-wrapped under --master-key-file at start; drop this flag afterwards.
    #[arg(long, env = "BERTH_PREVIOUS_MASTER_KEY_FILE", value_name = "PATH")]
    previous_master_key_file: Option<PathBuf>,
    /// How long an agent may be out of contact (no session, no message)
    /// before its instance's service tasks are replaced elsewhere. Shorter
    /// heals faster after a host loss; longer rides out agent restarts
    /// without replacing tasks that were still running.
    #[arg(long, env = "BERTH_INSTANCE_LOST_AFTER_SECS", default_value_t = 6)]
    instance_lost_after_secs: u64,
    /// Extra names and addresses agents may use to reach the agent endpoint
    /// (its TLS certificate covers them, beside localhost, 127.0.0.1, this
    /// host's name and the listen address).
    #[arg(
        long = "agent-tls-san",
        env = "BERTH_AGENT_TLS_SANS",
        value_delimiter = ','
    )]
    agent_tls_sans: Vec<String>,
    /// The address every load balancer listener binds (ELBv2 `CreateListener`). The
    /// default answers on this host only; `0.0.0.0` serves every interface.
    #[arg(long, env = "BERTH_LB_LISTEN_ADDRESS", default_value = "127.0.0.1")]
    lb_listen_address: std::net::IpAddr,
    /// What load balancers' `DNSName` says: a name or address that reaches
    /// --lb-listen-address (default: that address, or this host's name when it is 0.0.0.0).
    #[arg(long, env = "BERTH_LB_DNS_NAME")]
    lb_dns_name: Option<String>,
}

/// Names the agent endpoint's certificate is valid for.
fn agent_tls_sans(args: &Args, listen: SocketAddr) -> Vec<String> {
    let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        sans.push(h.trim().to_string());
    }
    if !listen.ip().is_unspecified() {
        sans.push(listen.ip().to_string());
    }
    sans.extend(args.agent_tls_sans.iter().map(|s| s.trim().to_string()));
    sans.retain(|s| !s.is_empty());
    sans.sort();
    sans.dedup();
    sans
}

fn main() -> anyhow::Result<()> {
    // Before any thread starts: the settings file fills in unset variables.
    let settings = berth_daemon::config::load(
        &Args::command(),
        "BERTH_CONTROLPLANE_CONFIG",
        std::path::Path::new("/etc/berth/controlplane.toml"),
    )?;
    run(settings)
}

#[tokio::main]
#[allow(clippy::too_many_lines)] // the start-up steps in order
async fn run(settings: Option<PathBuf>) -> anyhow::Result<()> {
    berth_daemon::init_logging();
    tracing::debug!(open_files = ?berth_daemon::raise_open_files_limit(), "open-files limit");
    if let Some(path) = settings {
        tracing::info!(path = %path.display(), "settings file read");
    }
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = Arc::new(RedbStore::open(&args.data_dir.join("controlplane.redb"))?);
    let arn_context = ArnContext {
        region: args.region.clone(),
        account: args.account_id.clone(),
    };
    let lost_after_ms = i64::try_from(args.instance_lost_after_secs.saturating_mul(1000))
        .context("--instance-lost-after-secs is too large")?;
    let cp = Arc::new(
        ControlPlane::open(store.clone(), Arc::new(SystemClock), arn_context.clone())?
            .with_lost_after_ms(lost_after_ms),
    );
    let sealer = Arc::new(open_sealer(&args, store.as_ref())?);
    let parameters = Arc::new(berth_controlplane::parameters::Parameters::open(
        store.clone(),
        Arc::new(SystemClock),
        arn_context.clone(),
        sealer.clone(),
    )?);
    let secrets = Arc::new(
        Secrets::open(
            store.clone(),
            Arc::new(SystemClock),
            arn_context,
            sealer.clone(),
        )?
        .with_parameters(parameters.clone()),
    );
    // Log events in a file of their own: a flood of lines never slows a state commit.
    let logs = Arc::new(Logs::new(
        LogStore::open(&args.data_dir.join("logs.redb"))?,
        Arc::new(SystemClock),
        &args.account_id,
    ));
    let credentials = ApiCredentials::load_or_create(&cp)?;
    let ca = Arc::new(ClusterCa::load_or_create(cp.clone(), sealer.clone())?);
    let join_tokens = Arc::new(JoinTokens::new(cp.clone(), Arc::new(SystemClock), {
        let ca = ca.clone();
        move || ca.fingerprint()
    }));

    let api_listener = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("binding {}", args.api_listen))?;
    let agent_listener = tokio::net::TcpListener::bind(args.agent_listen)
        .await
        .with_context(|| format!("binding {}", args.agent_listen))?;
    let agents_addr = agent_listener.local_addr()?;
    let sans = agent_tls_sans(&args, agents_addr);
    // The API's certificate comes from the cluster CA unless the operator gives one.
    let cluster_api = (!args.api_plain_http && args.api_tls_cert.is_none()).then(|| {
        (
            agent_tls_sans(&args, args.api_listen),
            args.data_dir.join("ca.pem"),
        )
    });
    let cluster_tls = Arc::new(ClusterTls::new(ca.clone(), sans.clone(), cluster_api)?);
    let tls = cluster_tls.agent_config()?;
    tracing::info!(?sans, ca_fingerprint = %ca.fingerprint(), "agent endpoint speaks mutual TLS");
    let api_tls = api_tls_config(&args, &cluster_tls)?;
    let scheme = if api_tls.is_some() { "https" } else { "http" };
    let endpoint = format!("{scheme}://{}", api_listener.local_addr()?);
    let ca_bundle = match (&api_tls, &args.api_tls_cert) {
        (Some(_), None) => cluster_tls.bundle().map(std::path::Path::to_path_buf),
        (Some(_), Some(_)) => args.api_tls_ca_bundle.clone(),
        (None, _) => None,
    };
    let follow_ca = tokio::spawn(cluster_tls.clone().follow_rotations());
    credentials.write_env_file(
        &args.data_dir.join("aws.env"),
        &endpoint,
        &args.region,
        ca_bundle.as_deref(),
    )?;

    let purge = tokio::spawn(purge_stopped_tasks(
        cp.clone(),
        Duration::from_secs(args.stopped_task_retention_secs),
    ));
    let reconciler = tokio::spawn(reconcile_services(cp.clone()));
    let lb = berth_controlplane::lb::LoadBalancers::open(
        store.clone(),
        cp.clone(),
        sealer.clone(),
        args.lb_listen_address,
        args.lb_dns_name.as_deref(),
    )?;
    let lb_tasks = lb.dataplane.start();
    let log_retention = tokio::spawn(enforce_log_retention(logs.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let exec = std::sync::Arc::new(
        berth_controlplane::exec::ExecSessions::new(Duration::from_secs(args.exec_token_ttl_secs))
            .with_recorder(berth_controlplane::exec::audit::Recorder::new(
                cp.clone(),
                logs.clone(),
            ))
            .with_tls(api_tls.is_some()),
    );
    let ctx = ApiContext {
        control_plane: cp.clone(),
        credentials,
        join_tokens: join_tokens.clone(),
        secrets: secrets.clone(),
        logs: logs.clone(),
        exec: exec.clone(),
        parameters,
        cluster_ca: ca.clone(),
        agent_cert_lifetime: Duration::from_secs(args.agent_cert_ttl_secs),
        load_balancers: lb,
    };
    let exec_sessions = exec.clone();
    let router = api::router(ctx);
    let api: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> =
        if let Some(tls) = api_tls {
            let listener = berth_controlplane::api_tls::TlsListener::new(api_listener, tls)?;
            Box::pin(
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .into_future(),
            )
        } else {
            // Exec sessions' keystrokes and echoes are small writes: no Nagle delay on them.
            let listener = axum::serve::ListenerExt::tap_io(api_listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!(error = %e, "could not set TCP_NODELAY on an API connection");
                }
            });
            Box::pin(
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .into_future(),
            )
        };
    let agents = tonic::transport::Server::builder()
        // Agents stream log batches of up to 3 MiB: windows larger than one batch keep
        // a batch from waiting on flow-control updates halfway through.
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20)
        .max_frame_size(1 << 20)
        .add_service(
            berth_controlplane::agents::Agents::new(
                cp.clone(),
                ca,
                join_tokens,
                secrets,
                logs.clone(),
            )
            .with_shutdown(stop_rx.clone())
            .with_exec(exec_sessions)
            .with_cert_lifetime(Duration::from_secs(args.agent_cert_ttl_secs))
            .into_server(),
        )
        .serve_with_incoming_shutdown(agent_tls::incoming(agent_listener, tls), stopped(stop_rx));
    let mut servers = std::pin::pin!(async {
        tokio::try_join!(async { api.await.context("API server") }, async {
            agents.await.context("agent server")
        },)
    });

    // Both listeners are bound and the store is open: requests are served
    // from here on (the servers start polling below).
    tracing::info!(api = %endpoint, agents = %agents_addr, data_dir = %args.data_dir.display(), "berth-controlplane serving");
    let shutdown = berth_daemon::shutdown_signal();
    berth_daemon::notify_ready(&format!(
        "serving ECS API on {endpoint}, agents (TLS) on {agents_addr}"
    ));
    let watchdog = berth_daemon::spawn_watchdog();

    tokio::select! {
        r = &mut servers => {
            r?;
        }
        () = shutdown => {
            berth_daemon::notify_stopping("finishing in-flight requests");
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            let _ = stop_tx.send(true);
            exec.close_all(Duration::from_secs(2)).await;
            if let Ok(r) = tokio::time::timeout(SHUTDOWN_GRACE, &mut servers).await {
                r?;
            } else {
                tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "requests still in flight after the grace period; stopping anyway");
            }
        }
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    // The timer loops hold the control plane; end them so the store can close.
    purge.abort();
    reconciler.abort();
    follow_ca.abort();
    lb_tasks.iter().for_each(tokio::task::JoinHandle::abort);
    log_retention.abort();
    let _ = purge.await;
    let _ = reconciler.await;
    let _ = follow_ca.await;
    // Exec sessions record through the control plane, and the CA keeps its state there:
    // let go of them too.
    drop(exec);
    drop(cluster_tls);
    close_store(cp, store).await;
    Ok(())
}

/// The API's TLS: the operator's files, a certificate from the cluster CA (default), or
/// none when plain HTTP is asked for on a loopback address.
fn api_tls_config(
    args: &Args,
    cluster_tls: &ClusterTls,
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    if args.api_plain_http {
        anyhow::ensure!(
            args.api_listen.ip().is_loopback(),
            "--api-plain-http serves the API without TLS, which is only allowed on a loopback address, not {}",
            args.api_listen
        );
        tracing::warn!(api = %args.api_listen, "serving the API over plain HTTP (loopback only)");
        return Ok(None);
    }
    // clap gives both operator files or neither; with neither, the cluster CA serves.
    let config = match (&args.api_tls_cert, &args.api_tls_key) {
        (Some(cert), Some(key)) => berth_controlplane::api_tls::from_files(cert, key)?,
        _ => berth_controlplane::api_tls::from_resolver(
            cluster_tls
                .api_cert()
                .context("the API certificate from the cluster CA")?,
        )?,
    };
    Ok(Some(config))
}

/// The sealer of secret values, its master key from --master-key-file, the systemd
/// credential, or the data directory (made there on first start).
fn open_sealer(
    args: &Args,
    store: &dyn berth_controlplane::store::Store,
) -> anyhow::Result<Sealer> {
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join("berth-master-key"))
        .filter(|p| p.exists());
    let master = match args.master_key_file.as_ref().or(credential.as_ref()) {
        Some(path) => MasterKey::read(path)?,
        None => MasterKey::read_or_create(&args.data_dir.join("master.key"))?,
    };
    let previous = args
        .previous_master_key_file
        .as_deref()
        .map(MasterKey::read)
        .transpose()?;
    Ok(Sealer::open(store, &master, previous.as_ref())?)
}

/// Forgets stopped tasks once they are older than `retention`. Runs at
/// least once a minute, and more often for short retentions, so a task
/// outlives its retention by at most one period.
async fn purge_stopped_tasks(cp: Arc<ControlPlane>, retention: Duration) {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let mut tick =
        tokio::time::interval(retention.clamp(Duration::from_secs(1), Duration::from_secs(60)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cp = cp.clone();
        // The purge commits to the store: keep it off the async workers.
        match tokio::task::spawn_blocking(move || cp.purge_stopped_tasks(retention_ms)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(purged = n, "purged stopped tasks past their retention"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "purging stopped tasks failed; retrying next period");
            }
            Err(e) => tracing::error!(error = %e, "the stopped-task purge panicked"),
        }
    }
}

/// Runs the service reconciler once a second: services converge on their
/// desired count and deployments within about a second of any change.
async fn reconcile_services(cp: Arc<ControlPlane>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cp = cp.clone();
        // It commits to the store: keep it off the async workers.
        match tokio::task::spawn_blocking(move || cp.reconcile_services()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reconciling services failed; retrying next second");
            }
            Err(e) => tracing::error!(error = %e, "the service reconciler panicked"),
        }
    }
}

/// Deletes the log events each group's retention no longer keeps, once a minute.
async fn enforce_log_retention(logs: Arc<Logs>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let logs = logs.clone();
        match tokio::task::spawn_blocking(move || logs.enforce_retention()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(deleted = n, "deleted log events past their retention"),
            Ok(Err(e)) => tracing::warn!(error = %e, "log retention failed; retrying next minute"),
            Err(e) => tracing::error!(error = %e, "log retention panicked"),
        }
    }
}

/// How long in-flight requests get to finish after SIGTERM; below systemd's
/// `TimeoutStopSec` (90 s default) so the daemon, not SIGKILL, ends them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Drops the last reference to the store so redb closes it cleanly (a clean
/// close spares the next start a repair pass). Session tasks may still hold
/// the control plane for a moment after the servers return.
async fn close_store(cp: Arc<ControlPlane>, store: Arc<RedbStore>) {
    drop(cp);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&store) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Ok(store) = Arc::try_unwrap(store) {
        drop(store);
        tracing::info!("store closed");
    } else {
        tracing::warn!("store still in use at exit; every write was already committed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped settings file documents exactly this daemon's settings,
    /// and its defaults parse as the flags would.
    #[test]
    fn the_shipped_settings_file_is_every_setting_with_its_default() {
        berth_daemon::config::check_shipped_defaults(
            &Args::command(),
            std::path::Path::new("systemd/controlplane.toml"),
            include_str!("../../systemd/controlplane.toml"),
        )
        .unwrap();
    }
}
