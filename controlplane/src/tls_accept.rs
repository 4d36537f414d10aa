//! Accepting TLS connections for both endpoints (agents, API): each handshake runs on a
//! task of its own with a time limit, so a slow or silent peer holds nothing for long
//! and never delays the next one; accept errors (out of file descriptors and the like)
//! are logged and retried after a pause.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A handshake that takes longer than this is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection was not handed on: the handshake failed (the error), or took too long.
pub enum Refused<'a> {
    Failed(&'a std::io::Error),
    TimedOut,
}

/// Accepts on `listener` until `handshaken` closes, sending each handshaken connection
/// with its peer; `refused` says how a failed one is logged. `TCP_NODELAY` is set on all:
/// small messages (heartbeats, acks, exec keystrokes) go out at once.
pub fn spawn_accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    refused: fn(SocketAddr, Refused<'_>),
) {
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = handshaken.closed() => return,
            };
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(%peer, error = %e, "could not set TCP_NODELAY");
            }
            let (acceptor, handshaken) = (acceptor.clone(), handshaken.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = handshaken.send((tls, peer)).await;
                    }
                    Ok(Err(e)) => refused(peer, Refused::Failed(&e)),
                    Err(_) => refused(peer, Refused::TimedOut),
                }
            });
        }
    });
}
