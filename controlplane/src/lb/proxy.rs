//! The proxy: one accept loop per listener port, each request routed by the listener's
//! rules and forwarded to a target of the chosen group, with the headers ALB adds and
//! the errors it answers with (502 when the target fails, 503 with no target, 504 when
//! it does not answer within the idle timeout).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use hyper::header::{HeaderName, HeaderValue, HOST, LOCATION};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use super::dataplane::DataPlane;
use super::model::{Action, Redirect};
use super::routing::{pick_weighted, route, total_weight, RequestView};
use super::workers::{Accepted, Upstream, Workers};

/// Headers that belong to one hop, not forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl DataPlane {
    /// Binds and unbinds listener ports as the configuration changes.
    pub async fn serve_listeners(self: Arc<Self>) {
        let workers = match Workers::start(&self) {
            Ok(w) => Arc::new(w),
            Err(e) => {
                tracing::error!(error = %e, "could not start the load balancers' worker threads");
                return;
            }
        };
        let mut changes = self.config.subscribe();
        let mut running: HashMap<u16, JoinHandle<()>> = HashMap::new();
        loop {
            let ports: Vec<u16> = changes
                .borrow_and_update()
                .listeners
                .values()
                .map(|l| l.port)
                .collect();
            running.retain(|port, task| {
                let keep = ports.contains(port) && !task.is_finished();
                if !keep {
                    task.abort();
                }
                keep
            });
            for port in ports {
                if running.contains_key(&port) {
                    continue;
                }
                let addr = SocketAddr::new(self.listen_ip, port);
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(listener) => {
                        tracing::info!(%addr, "load balancer listener serving");
                        let accept = Self::accept(listener, port, workers.clone());
                        running.insert(port, tokio::spawn(accept));
                    }
                    Err(e) => {
                        tracing::error!(%addr, error = %e, "load balancer listener could not bind; retrying every second");
                    }
                }
            }
            // A port that could not be bound (in use) is tried again in a second.
            let unbound = changes
                .borrow()
                .listeners
                .values()
                .any(|l| !running.contains_key(&l.port));
            tokio::select! {
                next = changes.changed() => if next.is_err() { return },
                () = tokio::time::sleep(std::time::Duration::from_secs(1)), if unbound => {}
            }
        }
    }

    async fn accept(listener: tokio::net::TcpListener, port: u16, workers: Arc<Workers>) {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(port, error = %e, "accept failed on a load balancer listener");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            match stream.into_std() {
                Ok(stream) => workers.hand(Accepted {
                    stream,
                    remote,
                    port,
                }),
                Err(e) => tracing::warn!(port, error = %e, "could not hand a connection over"),
            }
        }
    }

    pub(super) async fn handle(
        &self,
        client: &Upstream,
        port: u16,
        remote: SocketAddr,
        req: Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        let config = self.config.snapshot();
        let Some(listener) = config.listeners.values().find(|l| l.port == port) else {
            return error_page(StatusCode::SERVICE_UNAVAILABLE);
        };
        let (action, host_name) = {
            let host = req
                .headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().host())
                .unwrap_or_default();
            let host_name = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let rules = config.rules_of(&listener.arn);
            // Headers are read only for rules that look at them.
            let by_header = rules.iter().any(|r| {
                r.conditions
                    .iter()
                    .any(|c| matches!(c, super::model::Condition::HttpHeader { .. }))
            });
            let view = RequestView {
                method: req.method().as_str(),
                host: host_name,
                path: req.uri().path(),
                query: req.uri().query().unwrap_or_default(),
                headers: if by_header {
                    req.headers()
                        .iter()
                        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
                        .collect()
                } else {
                    Vec::new()
                },
                source: Some(remote.ip()),
            };
            let Some(action) = route(&rules, &listener.default_actions, &view)
                .first()
                .cloned()
            else {
                return error_page(StatusCode::SERVICE_UNAVAILABLE);
            };
            let redirect_host =
                matches!(action, Action::Redirect(_)).then(|| host_name.to_string());
            (action, redirect_host.unwrap_or_default())
        };
        match action {
            Action::FixedResponse {
                status_code,
                content_type,
                body,
            } => fixed(&status_code, content_type.as_deref(), body),
            Action::Redirect(r) => redirect(&r, &listener.protocol, &host_name, port, req.uri()),
            Action::Forward(groups) => {
                let total = total_weight(&groups);
                let chosen = if groups.len() == 1 {
                    Some(groups[0].0.as_str())
                } else if total == 0 {
                    None
                } else {
                    pick_weighted(&groups, rand::random_range(0..total))
                };
                let https = listener.protocol == "HTTPS";
                match chosen {
                    Some(tg) => self.forward(client, tg, (port, https), remote, req).await,
                    None => error_page(StatusCode::SERVICE_UNAVAILABLE),
                }
            }
        }
    }

    /// Sends `req` to a target of `tg`; `listener` is the port and whether it is HTTPS.
    async fn forward(
        &self,
        client: &Upstream,
        tg: &str,
        listener: (u16, bool),
        remote: SocketAddr,
        mut req: Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        let Some(targets) = self.routes(tg).filter(|t| !t.is_empty()) else {
            return error_page(StatusCode::SERVICE_UNAVAILABLE);
        };
        let addr = targets[self.turn.fetch_add(1, Ordering::Relaxed) % targets.len()];
        // A WebSocket (or other) upgrade: the client's side of it, once answered.
        let upgrade = req
            .headers()
            .get(hyper::header::UPGRADE)
            .cloned()
            .map(|protocol| (protocol, hyper::upgrade::on(&mut req)));
        let version = req.version();
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("http://{addr}{path}").parse::<hyper::Uri>() else {
            return error_page(StatusCode::BAD_REQUEST);
        };
        // HTTP/2 carries the host in the URI: targets get it as `Host`, as from ALB.
        if !parts.headers.contains_key(HOST) {
            if let Some(v) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                parts.headers.insert(HOST, v);
            }
        }
        parts.uri = uri;
        parts.version = hyper::Version::HTTP_11;
        add_forwarding_headers(&mut parts.headers, remote, listener);
        if let Some((protocol, _)) = &upgrade {
            parts.headers.insert(
                hyper::header::CONNECTION,
                HeaderValue::from_static("upgrade"),
            );
            parts
                .headers
                .insert(hyper::header::UPGRADE, protocol.clone());
        }
        let upstream = Request::from_parts(parts, Body::new(body));
        match tokio::time::timeout(self.idle_timeout, client.request(upstream)).await {
            Err(_) => error_page(StatusCode::GATEWAY_TIMEOUT),
            Ok(Err(e)) => {
                tracing::debug!(%addr, error = %e, "target failed");
                error_page(StatusCode::BAD_GATEWAY)
            }
            Ok(Ok(mut response)) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                let Some((_, client)) = upgrade else {
                    return error_page(StatusCode::BAD_GATEWAY);
                };
                let target = hyper::upgrade::on(&mut response);
                tokio::spawn(async move {
                    if let (Ok(client), Ok(target)) = (client.await, target.await) {
                        let _ = tokio::io::copy_bidirectional(
                            &mut TokioIo::new(client),
                            &mut TokioIo::new(target),
                        )
                        .await;
                    }
                });
                let (parts, _) = response.into_parts();
                Response::from_parts(parts, Body::empty())
            }
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                // ALB answers in the client's HTTP version, whatever its target spoke.
                parts.version = version;
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
        }
    }

    /// An HTTPS listener's TLS configuration (cached until its certificates or policy
    /// change); None for an HTTP listener.
    pub(super) fn tls_for(
        &self,
        port: u16,
    ) -> Option<Result<Arc<rustls::ServerConfig>, super::LbError>> {
        let config = self.config.snapshot();
        let listener = config.listeners.values().find(|l| l.port == port)?;
        if listener.protocol != "HTTPS" {
            return None;
        }
        let certificates: Result<Vec<_>, _> = listener
            .certificates
            .iter()
            .map(|arn| self.certificates.get(arn))
            .collect();
        let certificates = match certificates {
            Ok(c) => c,
            Err(e) => {
                return Some(Err(super::LbError::new(
                    "CertificateNotFound",
                    e.to_string(),
                )))
            }
        };
        let policy = listener
            .ssl_policy
            .clone()
            .unwrap_or_else(|| super::tls::DEFAULT_POLICY.into());
        let key = certificates.iter().fold(policy.clone(), |k, c| {
            format!("{k}|{}@{}", c.arn, c.imported_at_ms)
        });
        let mut cache = self
            .tls_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, tls)) = cache.get(&port) {
            if *k == key {
                return Some(Ok(tls.clone()));
            }
        }
        let built = super::tls::server_config(&certificates, &policy);
        if let Ok(tls) = &built {
            cache.insert(port, (key, tls.clone()));
        }
        Some(built)
    }
}

fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    // Headers the `Connection` header names are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|n| n.trim().to_ascii_lowercase()))
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// `X-Forwarded-For` (appended), `-Proto`, `-Port`, and an `X-Amzn-Trace-Id` when the
/// request has none.
fn add_forwarding_headers(
    headers: &mut hyper::HeaderMap,
    remote: SocketAddr,
    (port, https): (u16, bool),
) {
    strip_hop_by_hop(headers);
    let xff = HeaderName::from_static("x-forwarded-for");
    let client = remote.ip().to_string();
    let chain = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {client}"),
        None => client,
    };
    let set = |headers: &mut hyper::HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set(headers, "x-forwarded-for", chain);
    set(
        headers,
        "x-forwarded-proto",
        if https { "https" } else { "http" }.into(),
    );
    set(headers, "x-forwarded-port", port.to_string());
    if !headers.contains_key("x-amzn-trace-id") {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = format!("Root=1-{secs:08x}-{:024x}", rand::random::<u128>() >> 32);
        set(headers, "x-amzn-trace-id", id);
    }
}

fn fixed(status: &str, content_type: Option<&str>, body: Option<String>) -> Response<Body> {
    let status = status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(body.unwrap_or_default()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::SERVER,
        HeaderValue::from_static("awselb/2.0"),
    );
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(hyper::header::CONTENT_TYPE, ct);
    }
    response
}

/// A redirect's `Location`: each part the request's own unless the action sets it, with
/// `#{protocol}`, `#{host}`, `#{port}`, `#{path}` and `#{query}` filled in.
fn redirect(
    r: &Redirect,
    protocol: &str,
    host: &str,
    port: u16,
    uri: &hyper::Uri,
) -> Response<Body> {
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    let fill = |template: &str| {
        template
            .replace("#{protocol}", &protocol.to_ascii_lowercase())
            .replace("#{host}", host)
            .replace("#{port}", &port.to_string())
            .replace("#{path}", path.trim_start_matches('/'))
            .replace("#{query}", query)
    };
    // ALB writes the port even when it is the scheme's default.
    let scheme = fill(&r.protocol).to_ascii_lowercase();
    let mut location = format!("{scheme}://{}:{}", fill(&r.host), fill(&r.port));
    let to_path = fill(&r.path);
    if !to_path.starts_with('/') {
        location.push('/');
    }
    location.push_str(&to_path);
    let to_query = fill(&r.query);
    if !to_query.is_empty() {
        location.push('?');
        location.push_str(&to_query);
    }
    let status = if r.status_code == "HTTP_301" {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::FOUND
    };
    let mut response = fixed(status.as_str(), None, None);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

/// ALB's own error page for `status`.
fn error_page(status: StatusCode) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or_default();
    let body = format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n</body>\r\n</html>\r\n",
        code = status.as_u16()
    );
    fixed(status.as_str(), Some("text/html"), Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect_to(r: &Redirect, uri: &str) -> String {
        let response = redirect(r, "HTTP", "example.com", 80, &uri.parse().unwrap());
        response.headers()[LOCATION].to_str().unwrap().to_string()
    }

    #[test]
    fn redirects_fill_in_the_request_parts() {
        let to_https = Redirect {
            protocol: "HTTPS".into(),
            port: "443".into(),
            host: "#{host}".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
            status_code: "HTTP_301".into(),
        };
        assert_eq!(
            redirect_to(&to_https, "/a/b?x=1"),
            "https://example.com:443/a/b?x=1"
        );
        assert_eq!(redirect_to(&to_https, "/"), "https://example.com:443/");
        let elsewhere = Redirect {
            protocol: "#{protocol}".into(),
            port: "8080".into(),
            host: "other.example.com".into(),
            path: "/new".into(),
            query: String::new(),
            status_code: "HTTP_302".into(),
        };
        assert_eq!(
            redirect_to(&elsewhere, "/old?q"),
            "http://other.example.com:8080/new"
        );
    }

    #[test]
    fn forwarding_headers_append_the_client_and_drop_hop_by_hop_ones() {
        let mut h = hyper::HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        add_forwarding_headers(&mut h, "127.0.0.1:5000".parse().unwrap(), (8080, false));
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-port"], "8080");
        assert!(h["x-amzn-trace-id"]
            .to_str()
            .unwrap()
            .starts_with("Root=1-"));
        assert!(!h.contains_key("connection") && !h.contains_key("x-secret"));
    }
}
