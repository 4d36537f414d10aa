//! TLS for the user-facing API (every AWS service Berth serves, and the exec data
//! channels): a server certificate from the cluster CA by default (clients trust it
//! through `AWS_CA_BUNDLE`, which `aws.env` sets), or the operator's certificate and key
//! files, read again whenever they change (no restart to renew). Connections are accepted
//! and handshaken here, each on a task of its own with a time limit, so a client that
//! never finishes its handshake holds nothing for long.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::agent_tls::TlsError;
use crate::cluster_tls::certified_key;
use crate::tls_accept::{spawn_accept_loop, Refused};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The operator's certificate and key files, read again when either changes.
#[derive(Debug)]
struct FileCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Option<SystemTime>, Arc<CertifiedKey>)>,
}

fn modified(paths: [&Path; 2]) -> Option<SystemTime> {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max()
}

impl FileCert {
    fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| TlsError::Config(format!("{}: {e}", p.display())))
        };
        Ok(Arc::new(certified_key(&read(cert)?, &read(key)?)?))
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = modified([&self.cert, &self.key]);
        if now != current.0 {
            match Self::load(&self.cert, &self.key) {
                Ok(k) => {
                    tracing::info!(cert = %self.cert.display(), "API certificate reloaded");
                    *current = (now, k);
                }
                // Half-written files, most likely: keep serving the last good pair.
                Err(e) => {
                    tracing::warn!(error = %e, "API certificate files changed but do not load; keeping the previous ones");
                }
            }
        }
        Some(current.1.clone())
    }
}

fn config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serving the cluster CA's certificate for the API (`ClusterTls` keeps it current).
pub fn from_resolver(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    config(resolver)
}

/// Serving the operator's files, reloaded when they change.
pub fn from_files(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let first = FileCert::load(cert, key)?;
    config(Arc::new(FileCert {
        cert: cert.to_owned(),
        key: key.to_owned(),
        current: Mutex::new((modified([cert, key]), first)),
    }))
}

/// Handshaken connections, for `axum::serve`.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        spawn_accept_loop(
            listener,
            TlsAcceptor::from(config),
            tx,
            |peer, why| match why {
                Refused::Failed(e) => {
                    tracing::debug!(%peer, error = %e, "API TLS handshake failed");
                }
                Refused::TimedOut => tracing::debug!(%peer, "API TLS handshake timed out"),
            },
        );
        Ok(Self { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop ended (the listener is gone): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
