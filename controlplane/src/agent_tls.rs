//! TLS for the agent endpoint. We accept connections ourselves (rather than
//! through tonic's `tls_config`) so that a refused handshake — a certificate
//! from another CA, a client that does not speak TLS — gets a clear log line
//! with the peer's address instead of vanishing at debug level.
//!
//! A client certificate is optional at the TLS layer because `Join` must
//! work without one; `Agents` refuses every other call that lacks it.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use crate::pki::{ClusterCa, Credentials};
use crate::tls_accept::{spawn_accept_loop, Refused};

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
) -> impl tokio_stream::Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    spawn_accept_loop(
        listener,
        TlsAcceptor::from(config),
        tx,
        |peer, why| match why {
            Refused::Failed(e) => {
                tracing::warn!(%peer, error = %e, "refused an agent connection: TLS handshake failed (a certificate not from this cluster's CA, or a client not using TLS)");
            }
            Refused::TimedOut => {
                tracing::warn!(%peer, "refused an agent connection: no TLS handshake within 10 s");
            }
        },
    );
    tokio_stream::StreamExt::map(ReceiverStream::new(rx), |(tls, _)| Ok(tls))
}
