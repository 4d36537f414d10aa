//! The load balancers' data plane: the health checker and the proxy's shared state. It
//! follows the configuration and the ECS services' tasks, keeps every target's health,
//! and serves every listener (`proxy`).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use hyper_util::rt::TokioIo;

use super::config::{Config, LoadBalancing};
use super::health::{CheckOutcome, HealthTable, State, TargetHealth};
use super::model::{HealthCheck, Target, TargetGroup};
use super::targets;
use crate::state::ControlPlane;

/// How often the checker looks for due checks and new targets.
const TICK: Duration = Duration::from_millis(500);

pub struct DataPlane {
    pub(super) config: Arc<LoadBalancing>,
    cp: Arc<ControlPlane>,
    pub(super) certificates: Arc<crate::acm::Certificates>,
    health: Mutex<HealthTable>,
    /// The address every listener binds.
    pub(super) listen_ip: IpAddr,
    /// Round-robin position, shared by every target group.
    pub(super) turn: AtomicUsize,
    /// How long a request may wait on its target (ALB's idle timeout).
    pub(super) idle_timeout: Duration,
    /// Where each target group sends requests now (see `HealthTable::routable`), kept
    /// current by the checker so a request only clones an `Arc`.
    routes: std::sync::RwLock<Arc<HashMap<String, Arc<[SocketAddr]>>>>,
    /// HTTPS listeners' TLS configurations, by port, with what they were built from.
    pub(super) tls_cache: Mutex<HashMap<u16, (String, Arc<rustls::ServerConfig>)>>,
}

/// A target's health as `DescribeTargetHealth` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub target: Target,
    pub health_check_port: String,
    pub health: TargetHealth,
}

impl DataPlane {
    pub fn new(
        config: Arc<LoadBalancing>,
        cp: Arc<ControlPlane>,
        certificates: Arc<crate::acm::Certificates>,
        listen_ip: IpAddr,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            cp,
            certificates,
            health: Mutex::new(HealthTable::default()),
            listen_ip,
            turn: AtomicUsize::new(0),
            idle_timeout: Duration::from_secs(60),
            routes: std::sync::RwLock::default(),
            tls_cache: Mutex::new(HashMap::new()),
        })
    }

    /// Runs the listeners and the health checker until the handles are aborted.
    pub fn start(self: &Arc<Self>) -> [tokio::task::JoinHandle<()>; 2] {
        [
            tokio::spawn(self.clone().serve_listeners()),
            tokio::spawn(self.clone().check_forever()),
        ]
    }

    pub fn now_ms(&self) -> i64 {
        self.cp.now_ms()
    }

    pub(super) fn health(&self) -> MutexGuard<'_, HealthTable> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The health of `tg`'s targets now: `unused` while no listener sends to the group,
    /// `unavailable` with health checks off.
    pub fn describe(&self, tg: &TargetGroup) -> Vec<Reported> {
        let config = self.config.snapshot();
        let _ = self.sync(&config, self.cp.now_ms());
        self.refresh_routes();
        let in_use = !config.load_balancers_of(&tg.arn).is_empty();
        let table = self.health();
        table
            .group(&tg.arn)
            .map(|(t, h)| {
                let mut health = h.clone();
                if health.state != State::Draining {
                    if !in_use {
                        health.state = State::Unused;
                        health.reason = Some("Target.NotInUse");
                        health.description = Some("Target group is not configured to receive traffic from the load balancer".into());
                    } else if !tg.health_check.enabled {
                        health.state = State::Unavailable;
                        health.reason = Some("Target.HealthCheckDisabled");
                        health.description = Some("Health checks are disabled".into());
                    }
                }
                Reported {
                    target: t.clone(),
                    health_check_port: health_check_port(&tg.health_check, t).to_string(),
                    health,
                }
            })
            .collect()
    }

    /// Brings the health table in step with the configuration and the services' tasks;
    /// returns the services' targets.
    fn sync(&self, config: &Config, now_ms: i64) -> targets::ServiceTargets {
        let services = targets::service_targets(&self.cp);
        let effective = targets::effective(config, &services);
        let mut table = self.health();
        for (arn, set) in &effective {
            let delay_ms = config.target_groups[arn].deregistration_delay_secs() * 1000;
            let delay_ms = i64::try_from(delay_ms).unwrap_or(i64::MAX);
            table.sync(arn, set, now_ms, delay_ms);
        }
        table.retain_groups(|arn| config.target_groups.contains_key(arn));
        services
    }

    /// Tells the control plane how the services' targets fare, and which it registered
    /// or deregistered since `before`.
    fn report_to_services(
        &self,
        before: &targets::ServiceTargets,
        services: &targets::ServiceTargets,
    ) {
        let health = targets::task_health(services, &self.health());
        if let Err(e) = self.cp.set_target_health(&health) {
            tracing::warn!(error = %e, "could not record target health; retrying on the next tick");
        }
        let events = targets::registration_events(before, services);
        for (service, message) in &events {
            tracing::info!(service = %service, "{message}");
        }
        if let Err(e) = self.cp.push_service_events(&events) {
            tracing::warn!(error = %e, "could not record target registration events");
        }
    }

    /// Checks every target of every group in use, each on its group's interval.
    pub async fn check_forever(self: Arc<Self>) {
        let mut due: HashMap<(String, Target), tokio::time::Instant> = HashMap::new();
        let mut before = targets::service_targets(&self.cp);
        let mut changes = self.config.subscribe();
        loop {
            let config = self.config.snapshot();
            let now = tokio::time::Instant::now();
            let services = self.sync(&config, self.cp.now_ms());
            self.refresh_routes();
            self.report_to_services(&before, &services);
            before = services;
            let mut checks = Vec::new();
            for tg in config.target_groups.values() {
                if !tg.health_check.enabled || config.load_balancers_of(&tg.arn).is_empty() {
                    continue;
                }
                let targets: BTreeSet<Target> = self
                    .health()
                    .group(&tg.arn)
                    .filter(|(_, h)| h.state != State::Draining)
                    .map(|(t, _)| t.clone())
                    .collect();
                for t in targets {
                    let key = (tg.arn.clone(), t.clone());
                    if due.get(&key).is_some_and(|at| *at > now) {
                        continue;
                    }
                    due.insert(
                        key,
                        now + Duration::from_secs(tg.health_check.interval_secs.into()),
                    );
                    checks.push((tg.arn.clone(), tg.health_check.clone(), t));
                }
            }
            // A draining target that comes back is checked at once, as a new one is.
            due.retain(|(tg, t), _| {
                self.health()
                    .get(tg, t)
                    .is_some_and(|h| h.state != State::Draining)
            });
            for (tg, hc, target) in checks {
                let me = self.clone();
                tokio::spawn(async move {
                    let outcome = check(&hc, &target).await;
                    me.health().observe(&tg, &target, &outcome, &hc);
                    me.refresh_routes();
                });
            }
            // A configuration change (a target registered) is looked at once; the tick
            // finds new service tasks and due checks.
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// The addresses `tg` sends requests to now.
    pub(super) fn routes(&self, tg: &str) -> Option<Arc<[SocketAddr]>> {
        let routes = self
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        routes.get(tg).cloned()
    }

    /// Recomputes every group's routes from the health table.
    fn refresh_routes(&self) {
        let table = self.health();
        let routes: HashMap<String, Arc<[SocketAddr]>> = table
            .groups()
            .map(|tg| {
                let addrs: Vec<SocketAddr> = table
                    .routable(tg)
                    .iter()
                    .filter_map(|t| address(t, t.port).ok())
                    .collect();
                (tg.to_string(), Arc::from(addrs))
            })
            .collect();
        drop(table);
        *self
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(routes);
    }
}

/// Where a target's health is checked: its traffic port or the group's fixed port.
fn health_check_port(hc: &HealthCheck, target: &Target) -> u16 {
    hc.port.parse().unwrap_or(target.port)
}

/// The address of a target. Berth names targets by IP address; an instance id does not
/// resolve (ECS services here run awsvpc tasks, registered by IP).
pub(super) fn address(target: &Target, port: u16) -> Result<SocketAddr, String> {
    target
        .id
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, port))
        .map_err(|_| {
            format!(
                "target '{}' is not an IP address Berth can reach",
                target.id
            )
        })
}

/// One health check: `GET <path>` on a fresh connection, within the timeout.
async fn check(hc: &HealthCheck, target: &Target) -> CheckOutcome {
    let addr = match address(target, health_check_port(hc, target)) {
        Ok(a) => a,
        Err(why) => return CheckOutcome::Failed(why),
    };
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connection to {addr} failed: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = hyper::Request::get(hc.path.as_str())
            .header(hyper::header::HOST, addr.to_string())
            .header(hyper::header::USER_AGENT, "ELB-HealthChecker/2.0")
            .header(hyper::header::CONNECTION, "close")
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no valid HTTP answer: {e}"))?;
        Ok::<u16, String>(response.status().as_u16())
    };
    match tokio::time::timeout(Duration::from_secs(hc.timeout_secs.into()), attempt).await {
        Err(_) => CheckOutcome::Timeout,
        Ok(Err(why)) => CheckOutcome::Failed(why),
        Ok(Ok(code)) if hc.matches(code) => CheckOutcome::Passed,
        Ok(Ok(code)) => CheckOutcome::CodeMismatch(code),
    }
}
