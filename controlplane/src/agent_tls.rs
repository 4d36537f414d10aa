//! TLS for the agent endpoint. We accept connections ourselves (rather than
//! through tonic's `tls_config`) so that a refused handshake — a certificate
//! from another CA, a client that does not speak TLS — gets a clear log line
//! with the peer's address instead of vanishing at debug level.
//!
//! A client certificate is optional at the TLS layer because `Join` must
//! work without one; `Agents` refuses every other call that lacks it.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use crate::tls_accept::{spawn_accept_loop, Refused};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Config(String),
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
