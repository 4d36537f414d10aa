//! berth-controlplane: read config, open the store, serve the ECS API and the agent gRPC service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_controlplane::api::credentials::ApiCredentials;
use berth_controlplane::api::{self, ApiContext};
use berth_controlplane::model::ArnContext;
use berth_controlplane::state::{ControlPlane, SystemClock};
use berth_controlplane::store::RedbStore;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "berth-controlplane",
    version,
    about = "Berth control plane: ECS-compatible API and agent sessions"
)]
struct Args {
    /// Where the store and aws.env live.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "/var/lib/berth")]
    data_dir: PathBuf,
    /// Address of the ECS-compatible HTTP API.
    #[arg(long, env = "BERTH_API_LISTEN", default_value = "127.0.0.1:8500")]
    api_listen: SocketAddr,
    /// Address of the gRPC service agents connect to.
    #[arg(long, env = "BERTH_AGENT_LISTEN", default_value = "127.0.0.1:8501")]
    agent_listen: SocketAddr,
    /// Region in ARNs and aws.env.
    #[arg(long, env = "BERTH_REGION", default_value = "us-east-1")]
    region: String,
    /// Account id in ARNs.
    #[arg(long, env = "BERTH_ACCOUNT_ID", default_value = "123456789012")]
    account_id: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = RedbStore::open(&args.data_dir.join("controlplane.redb"))?;
    let arn_context = ArnContext {
        region: args.region.clone(),
        account: args.account_id.clone(),
    };
    let cp = Arc::new(ControlPlane::open(
        Arc::new(store),
        Arc::new(SystemClock),
        arn_context,
    )?);
    let credentials = ApiCredentials::load_or_create(&cp)?;

    let api_listener = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("binding {}", args.api_listen))?;
    let agent_listener = tokio::net::TcpListener::bind(args.agent_listen)
        .await
        .with_context(|| format!("binding {}", args.agent_listen))?;
    let endpoint = format!("http://{}", api_listener.local_addr()?);
    credentials.write_env_file(&args.data_dir.join("aws.env"), &endpoint, &args.region)?;
    tracing::info!(api = %endpoint, agents = %agent_listener.local_addr()?, data_dir = %args.data_dir.display(), "berth-controlplane serving");

    let ctx = Arc::new(ApiContext {
        control_plane: cp.clone(),
        credentials,
    });
    let api = axum::serve(api_listener, api::router(ctx));
    let agents = tonic::transport::Server::builder()
        .add_service(berth_controlplane::agents::Agents::new(cp).into_server())
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
            agent_listener,
        ));
    tokio::select! {
        r = api => r.context("API server")?,
        r = agents => r.context("agent server")?,
        () = shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
