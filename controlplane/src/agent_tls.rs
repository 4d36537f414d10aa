//! TLS for the agent endpoint. We accept connections ourselves (rather than
//! through tonic's `tls_config`) so that a refused handshake — a certificate
//! from another CA, a client that does not speak TLS — gets a clear log line
//! with the peer's address instead of vanishing at debug level.
//!
//! A client certificate is optional at the TLS layer because `Join` must
//! work without one; `Agents` refuses every other call that lacks it.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use crate::pki::{ClusterCa, Credentials};

/// A handshake that takes longer than this is dropped: a slow or silent
/// peer must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Server side: our certificate chain, client certificates checked against
/// the cluster CA when presented.
pub fn server_config(
    ca: &ClusterCa,
    server: &Credentials,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cfg = |e: &dyn std::fmt::Display| TlsError::Config(e.to_string());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).map_err(|e| cfg(&e))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| cfg(&e))?;
    let chain = CertificateDer::pem_slice_iter(server.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cfg(&e))?;
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).map_err(|e| cfg(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cfg(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| cfg(&e))?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepted, handshaken connections for `serve_with_incoming`. Stops
/// accepting once the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: say so, back off, go on.
                        tracing::warn!(error = %e, "accepting an agent connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            // Small messages (heartbeats, acks, exec keystrokes) go out at once, not
            // after Nagle's wait for the peer's delayed ACK.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(peer = %peer, error = %e, "could not set TCP_NODELAY on an agent connection");
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(peer = %peer, error = %e, "refused an agent connection: TLS handshake failed (a certificate not from this cluster's CA, or a client not using TLS)");
                    }
                    Err(_) => {
                        tracing::warn!(peer = %peer, "refused an agent connection: no TLS handshake within 10 s");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
