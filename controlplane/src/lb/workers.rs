//! The proxy's worker threads. Each runs a single-threaded runtime with its own pool of
//! connections to targets and serves whole client connections, so a request and its
//! upstream exchange never cross threads; the acceptor hands connections out in turn.
//! (On one shared multi-threaded runtime, hyper's pooled client wakes tasks across
//! threads for every request, and that cost the proxy a third of its throughput.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

use super::dataplane::DataPlane;

/// A worker's pool of connections to targets.
pub(super) type Upstream = Client<HttpConnector, Body>;

/// A client connection for a worker to serve.
pub(super) struct Accepted {
    pub stream: std::net::TcpStream,
    pub remote: SocketAddr,
    /// The listener's port.
    pub port: u16,
}

pub(super) struct Workers {
    senders: Vec<mpsc::UnboundedSender<Accepted>>,
    next: AtomicUsize,
}

fn upstream() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

impl Workers {
    /// One worker per core. They end when this is dropped.
    pub(super) fn start(dp: &Arc<DataPlane>) -> std::io::Result<Self> {
        let n = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let mut senders = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, mut rx) = mpsc::unbounded_channel::<Accepted>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let dp = dp.clone();
            std::thread::Builder::new()
                .name(format!("lb-proxy-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let client = upstream();
                        while let Some(a) = rx.recv().await {
                            match tokio::net::TcpStream::from_std(a.stream) {
                                Ok(stream) => {
                                    tokio::spawn(serve(dp.clone(), client.clone(), stream, a.remote, a.port));
                                }
                                Err(e) => tracing::warn!(error = %e, "could not adopt a load balancer connection"),
                            }
                        }
                    });
                })?;
            senders.push(tx);
        }
        Ok(Self {
            senders,
            next: AtomicUsize::new(0),
        })
    }

    /// Gives `a` to the next worker.
    pub(super) fn hand(&self, a: Accepted) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        if self.senders[i].send(a).is_err() {
            tracing::warn!("a load balancer worker is gone; connection dropped");
        }
    }
}

/// Serves one client connection: TLS first on an HTTPS listener, then HTTP/1.1 or
/// HTTP/2, upgrades allowed.
async fn serve(
    dp: Arc<DataPlane>,
    client: Upstream,
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    port: u16,
) {
    let _ = stream.set_nodelay(true);
    let tls = dp.tls_for(port);
    let handler = dp.clone();
    let service = hyper::service::service_fn(move |req| {
        let (dp, client) = (handler.clone(), client.clone());
        async move { Ok::<_, std::convert::Infallible>(dp.handle(&client, port, remote, req).await) }
    });
    match tls {
        // HTTP listeners speak HTTP/1.1, as ALB's do (HTTP/2 comes by ALPN over TLS).
        None => {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(dp.idle_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        }
        Some(Ok(config)) => {
            // The API's and agents' limit: a slow handshake holds nothing for long.
            let accepted = tokio::time::timeout(
                crate::tls_accept::HANDSHAKE_TIMEOUT,
                tokio_rustls::TlsAcceptor::from(config).accept(stream),
            )
            .await;
            if let Ok(Ok(tls)) = accepted {
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(dp.idle_timeout);
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            }
        }
        Some(Err(e)) => {
            tracing::warn!(port, error = %e, "HTTPS listener has no usable certificate");
        }
    }
}
