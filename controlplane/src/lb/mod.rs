//! Load balancing: ELBv2's model (load balancers, target groups, listeners, rules), its
//! durable configuration, and the embedded data plane that serves it: a health checker
//! and an HTTP proxy in the control plane's process, reaching tasks by their awsvpc IPs.

pub mod commands;
pub mod config;
pub mod dataplane;
pub mod health;
pub mod listeners;
pub mod model;
mod proxy;
pub mod routing;
pub mod targets;
pub mod tls;
mod workers;

pub use commands::LbContext;
pub use config::{Config, LbError, LoadBalancing};
pub use dataplane::DataPlane;

impl crate::services::load_balancers::TargetGroups for LoadBalancing {
    fn facts(&self, arn: &str) -> Option<crate::services::load_balancers::TargetGroupFacts> {
        let config = self.snapshot();
        let tg = config.target_groups.get(arn)?;
        Some(crate::services::load_balancers::TargetGroupFacts {
            by_ip: tg.target_type == model::TargetType::Ip,
            attached: !config.load_balancers_of(arn).is_empty(),
            deregistration_delay_ms: i64::try_from(tg.deregistration_delay_secs() * 1000)
                .unwrap_or(i64::MAX),
        })
    }
}

/// The load balancers' configuration and their data plane, as the API serves them.
#[derive(Clone)]
pub struct LoadBalancers {
    pub config: std::sync::Arc<LoadBalancing>,
    pub dataplane: std::sync::Arc<DataPlane>,
    /// The certificates HTTPS listeners serve (ACM).
    pub certificates: std::sync::Arc<crate::acm::Certificates>,
    /// What every load balancer's `DNSName` says.
    pub dns_name: String,
}

impl LoadBalancers {
    /// Loads the configuration; the data plane binds `listen` (see `DataPlane::start`).
    pub fn open(
        store: std::sync::Arc<dyn crate::store::Store>,
        cp: std::sync::Arc<crate::state::ControlPlane>,
        sealer: std::sync::Arc<crate::sealing::Sealer>,
        listen: std::net::IpAddr,
        dns: Option<&str>,
    ) -> Result<Self, LbError> {
        let certificates =
            crate::acm::Certificates::open(store.clone(), sealer, cp.default_arns.clone())
                .map_err(|e| LbError::new("InternalFailure", e.to_string()))?;
        let certificates = std::sync::Arc::new(certificates);
        let config = std::sync::Arc::new(LoadBalancing::open(store)?);
        cp.set_target_groups(config.clone());
        Ok(Self {
            dataplane: DataPlane::new(config.clone(), cp, certificates.clone(), listen),
            config,
            certificates,
            dns_name: dns_name(dns, listen),
        })
    }
}

/// What load balancers' `DNSName` says: the operator's name, else the listen address,
/// else (listening on every address) this host's name.
fn dns_name(explicit: Option<&str>, listen: std::net::IpAddr) -> String {
    if let Some(name) = explicit {
        return name.to_string();
    }
    if listen.is_unspecified() {
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            return h.trim().to_string();
        }
    }
    listen.to_string()
}
