//! Load balancers, target groups and targets: ELB's validation and its answers to
//! repeated calls (creating what already exists with the same settings returns it).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::config::{LbError, LoadBalancing};
use super::model::{
    HealthCheck, LoadBalancer, Target, TargetGroup, TargetType, DEFAULT_ATTRIBUTES,
};

/// Where ARNs and addresses come from.
#[derive(Debug, Clone)]
pub struct LbContext {
    pub region: String,
    pub account: String,
    /// What `DNSName` says: the name or address every listener answers on.
    pub dns_name: String,
}

impl LbContext {
    fn arn(&self, resource: &str) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:{resource}",
            self.region, self.account
        )
    }
}

/// 16 hex digits, as ELB's resource ids are.
pub fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// ELB's names: 1-32 alphanumerics and hyphens, no hyphen at either end.
pub fn check_name(what: &str, name: &str) -> Result<(), LbError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(LbError::validation(format!(
            "{what} name '{name}' must have 1 to 32 characters: letters, digits and hyphens, and must not begin or end with a hyphen."
        )))
    }
}

/// What `CreateLoadBalancer` asks for.
#[derive(Debug, Clone, Default)]
pub struct LoadBalancerSpec {
    pub name: String,
    pub kind: Option<String>,
    pub scheme: Option<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub ip_address_type: Option<String>,
    pub tags: Vec<(String, String)>,
}

pub fn create_load_balancer(
    lbs: &LoadBalancing,
    ctx: &LbContext,
    spec: LoadBalancerSpec,
    now_ms: i64,
) -> Result<LoadBalancer, LbError> {
    check_name("Load balancer", &spec.name)?;
    if spec.name.starts_with("internal-") {
        return Err(LbError::validation(
            "Load balancer names must not begin with 'internal-'.",
        ));
    }
    if let Some(other) = spec.kind.as_deref().filter(|k| *k != "application") {
        let why = format!(
            "Berth serves application load balancers only; type '{other}' is not supported."
        );
        return Err(LbError::new("InvalidConfigurationRequest", why));
    }
    let scheme = spec.scheme.unwrap_or_else(|| "internet-facing".into());
    if !matches!(scheme.as_str(), "internet-facing" | "internal") {
        return Err(LbError::new(
            "InvalidScheme",
            format!("Scheme '{scheme}' is not valid: use 'internet-facing' or 'internal'."),
        ));
    }
    lbs.change(|c, ch| {
        if let Some(existing) = c.load_balancers.values().find(|l| l.name == spec.name) {
            // ELB answers a repeated create with the same settings with what exists.
            if existing.scheme == scheme {
                return Ok(existing.clone());
            }
            return Err(LbError::new(
                "DuplicateLoadBalancerName",
                format!(
                    "A load balancer with the name '{}' already exists.",
                    spec.name
                ),
            ));
        }
        let lb = LoadBalancer {
            arn: ctx.arn(&format!("loadbalancer/app/{}/{}", spec.name, new_id())),
            name: spec.name.clone(),
            scheme: scheme.clone(),
            dns_name: ctx.dns_name.clone(),
            created_ms: now_ms,
            subnets: spec.subnets.clone(),
            security_groups: spec.security_groups.clone(),
            ip_address_type: spec
                .ip_address_type
                .clone()
                .unwrap_or_else(|| "ipv4".into()),
            tags: spec.tags.clone(),
        };
        ch.put_load_balancer(c, lb.clone());
        Ok(lb)
    })
}

/// Deleting what does not exist succeeds, as on ELB.
pub fn delete_load_balancer(lbs: &LoadBalancing, arn: &str) -> Result<(), LbError> {
    lbs.change(|c, ch| {
        if c.load_balancers.contains_key(arn) {
            ch.delete_load_balancer(c, arn);
        }
        Ok(())
    })
}

/// What `CreateTargetGroup` asks for; health-check members left out take ELB's defaults.
#[derive(Debug, Clone, Default)]
pub struct TargetGroupSpec {
    pub name: String,
    pub protocol: Option<String>,
    pub protocol_version: Option<String>,
    pub port: Option<u16>,
    pub vpc_id: Option<String>,
    pub target_type: Option<String>,
    pub health: HealthCheckSpec,
    pub tags: Vec<(String, String)>,
}

/// Health-check settings as a create or modify gives them.
#[derive(Debug, Clone, Default)]
pub struct HealthCheckSpec {
    pub enabled: Option<bool>,
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval_secs: Option<u32>,
    pub timeout_secs: Option<u32>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
    pub matcher: Option<String>,
}

fn in_range(what: &str, v: u32, lo: u32, hi: u32) -> Result<(), LbError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(LbError::validation(format!(
            "{what} must be between {lo} and {hi}; {v} was given."
        )))
    }
}

impl HealthCheckSpec {
    /// `base` with these settings applied, checked as ELB checks them.
    pub fn apply(&self, base: &HealthCheck) -> Result<HealthCheck, LbError> {
        let mut hc = base.clone();
        if let Some(v) = self.enabled {
            hc.enabled = v;
        }
        if let Some(p) = &self.protocol {
            if p != "HTTP" {
                return Err(LbError::new(
                    "UnsupportedProtocol",
                    format!("Health check protocol '{p}' is not served: Berth checks targets over HTTP."),
                ));
            }
            hc.protocol.clone_from(p);
        }
        if let Some(p) = &self.port {
            if p != "traffic-port" && p.parse::<u16>().map_or(true, |n| n == 0) {
                return Err(LbError::validation(format!(
                    "Health check port '{p}' must be 'traffic-port' or a port from 1 to 65535."
                )));
            }
            hc.port.clone_from(p);
        }
        if let Some(p) = &self.path {
            if !p.starts_with('/') || p.len() > 1024 {
                return Err(LbError::validation(format!(
                    "Health check path '{p}' must begin with '/' and have at most 1024 characters."
                )));
            }
            hc.path.clone_from(p);
        }
        hc.interval_secs = self.interval_secs.unwrap_or(hc.interval_secs);
        hc.timeout_secs = self.timeout_secs.unwrap_or(hc.timeout_secs);
        hc.healthy_threshold = self.healthy_threshold.unwrap_or(hc.healthy_threshold);
        hc.unhealthy_threshold = self.unhealthy_threshold.unwrap_or(hc.unhealthy_threshold);
        in_range("Health check interval", hc.interval_secs, 5, 300)?;
        in_range("Health check timeout", hc.timeout_secs, 2, 120)?;
        in_range("Healthy threshold count", hc.healthy_threshold, 2, 10)?;
        in_range("Unhealthy threshold count", hc.unhealthy_threshold, 2, 10)?;
        if hc.timeout_secs >= hc.interval_secs {
            return Err(LbError::validation(format!(
                "Health check timeout ({} s) must be smaller than the interval ({} s).",
                hc.timeout_secs, hc.interval_secs
            )));
        }
        if let Some(m) = &self.matcher {
            let probe = HealthCheck {
                matcher: m.clone(),
                ..HealthCheck::default()
            };
            if !(200..500).any(|code| probe.matches(code)) {
                return Err(LbError::validation(format!(
                    "Health check matcher '{m}' must name HTTP codes from 200 to 499: a code, a list (200,202) or a range (200-299)."
                )));
            }
            hc.matcher.clone_from(m);
        }
        Ok(hc)
    }
}

pub fn create_target_group(
    lbs: &LoadBalancing,
    ctx: &LbContext,
    spec: &TargetGroupSpec,
) -> Result<TargetGroup, LbError> {
    check_name("Target group", &spec.name)?;
    let target_type = match spec.target_type.as_deref() {
        None => TargetType::Instance,
        Some(t) => TargetType::parse(t).ok_or_else(|| {
            LbError::validation(format!(
                "Target type '{t}' is not served by Berth: use 'ip' (awsvpc tasks) or 'instance'."
            ))
        })?,
    };
    let protocol = spec.protocol.clone().unwrap_or_else(|| "HTTP".into());
    if protocol != "HTTP" {
        return Err(LbError::new(
            "UnsupportedProtocol",
            format!("Protocol '{protocol}' is not served for target groups: Berth's load balancers reach targets over HTTP (listeners may be HTTPS)."),
        ));
    }
    let Some(port) = spec.port.filter(|p| *p > 0) else {
        return Err(LbError::validation(
            "A port from 1 to 65535 must be specified for a target group of type ip or instance.",
        ));
    };
    let health = spec.health.apply(&HealthCheck {
        protocol: protocol.clone(),
        ..HealthCheck::default()
    })?;
    lbs.change(|c, ch| {
        if let Some(existing) = c.target_groups.values().find(|t| t.name == spec.name) {
            if existing.protocol == protocol
                && existing.port == Some(port)
                && existing.target_type == target_type
                && existing.health_check == health
            {
                return Ok(existing.clone());
            }
            return Err(LbError::new(
                "DuplicateTargetGroupName",
                format!(
                    "A target group with the name '{}' already exists.",
                    spec.name
                ),
            ));
        }
        let tg = TargetGroup {
            arn: ctx.arn(&format!("targetgroup/{}/{}", spec.name, new_id())),
            name: spec.name.clone(),
            protocol: protocol.clone(),
            protocol_version: spec
                .protocol_version
                .clone()
                .unwrap_or_else(|| "HTTP1".into()),
            port: Some(port),
            vpc_id: spec.vpc_id.clone(),
            target_type,
            health_check: health.clone(),
            attributes: DEFAULT_ATTRIBUTES
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            targets: Vec::new(),
            tags: spec.tags.clone(),
        };
        ch.put_target_group(c, tg.clone());
        Ok(tg)
    })
}

pub fn target_group_not_found(arn: &str) -> LbError {
    LbError::new(
        "TargetGroupNotFound",
        format!("Target group '{arn}' not found"),
    )
}

/// Runs `f` on a copy of the target group `arn` and stores what it made of it.
fn change_target_group<T>(
    lbs: &LoadBalancing,
    arn: &str,
    f: impl FnOnce(&mut TargetGroup) -> Result<T, LbError>,
) -> Result<T, LbError> {
    lbs.change(|c, ch| {
        let mut tg = c
            .target_groups
            .get(arn)
            .cloned()
            .ok_or_else(|| target_group_not_found(arn))?;
        let out = f(&mut tg)?;
        ch.put_target_group(c, tg);
        Ok(out)
    })
}

/// Changes a target group's health check.
pub fn modify_target_group(
    lbs: &LoadBalancing,
    arn: &str,
    health: &HealthCheckSpec,
) -> Result<TargetGroup, LbError> {
    change_target_group(lbs, arn, |tg| {
        tg.health_check = health.apply(&tg.health_check)?;
        Ok(tg.clone())
    })
}

/// Refused while a listener or rule forwards to it, as on ELB.
pub fn delete_target_group(lbs: &LoadBalancing, arn: &str) -> Result<(), LbError> {
    lbs.change(|c, ch| {
        if !c.target_groups.contains_key(arn) {
            return Ok(());
        }
        if !c.load_balancers_of(arn).is_empty() {
            return Err(LbError::new(
                "ResourceInUse",
                format!("Target group '{arn}' is currently in use by a listener or a rule"),
            ));
        }
        ch.delete_target_group(c, arn);
        Ok(())
    })
}

/// Attribute keys Berth acts on or keeps, with the values each takes.
fn check_attribute(key: &str, value: &str) -> Result<(), LbError> {
    let number = |lo: u64, hi: u64| value.parse::<u64>().is_ok_and(|n| (lo..=hi).contains(&n));
    let ok = match key {
        "deregistration_delay.timeout_seconds" => number(0, 3600),
        "slow_start.duration_seconds" => value == "0" || number(30, 900),
        "stickiness.enabled" => matches!(value, "true" | "false"),
        "stickiness.type" => matches!(value, "lb_cookie" | "app_cookie"),
        "stickiness.lb_cookie.duration_seconds" => number(1, 604_800),
        "load_balancing.algorithm.type" => {
            matches!(value, "round_robin" | "least_outstanding_requests")
        }
        _ => {
            return Err(LbError::validation(format!(
                "Target group attribute key '{key}' is not recognized."
            )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(LbError::validation(format!(
            "Target group attribute '{key}' cannot take the value '{value}'."
        )))
    }
}

pub fn modify_attributes(
    lbs: &LoadBalancing,
    arn: &str,
    attributes: &[(String, String)],
) -> Result<BTreeMap<String, String>, LbError> {
    for (k, v) in attributes {
        check_attribute(k, v)?;
    }
    change_target_group(lbs, arn, |tg| {
        for (k, v) in attributes {
            tg.attributes.insert(k.clone(), v.clone());
        }
        Ok(tg.attributes.clone())
    })
}

/// A target as `RegisterTargets` names it; the port defaults to the group's.
pub fn resolve_target(tg: &TargetGroup, id: &str, port: Option<u16>) -> Result<Target, LbError> {
    let port = port.or(tg.port).filter(|p| *p > 0).ok_or_else(|| {
        LbError::new(
            "InvalidTarget",
            format!("Target '{id}' needs a port from 1 to 65535."),
        )
    })?;
    let valid = match tg.target_type {
        TargetType::Ip => id.parse::<Ipv4Addr>().is_ok(),
        TargetType::Instance => !id.is_empty(),
    };
    if !valid {
        return Err(LbError::new(
            "InvalidTarget",
            format!(
                "The following targets are not valid for a target group of type {}: '{id}'",
                tg.target_type.as_str()
            ),
        ));
    }
    Ok(Target {
        id: id.to_string(),
        port,
    })
}

/// Adds targets (registering one twice is harmless).
pub fn register_targets(
    lbs: &LoadBalancing,
    arn: &str,
    targets: &[(String, Option<u16>)],
) -> Result<(), LbError> {
    change_target_group(lbs, arn, |tg| {
        for (id, port) in targets {
            let t = resolve_target(tg, id, *port)?;
            if !tg.targets.contains(&t) {
                tg.targets.push(t);
            }
        }
        tg.targets.sort();
        Ok(())
    })
}

/// Removes targets; the data plane drains them for the group's deregistration delay.
pub fn deregister_targets(
    lbs: &LoadBalancing,
    arn: &str,
    targets: &[(String, Option<u16>)],
) -> Result<(), LbError> {
    change_target_group(lbs, arn, |tg| {
        for (id, port) in targets {
            let t = resolve_target(tg, id, *port)?;
            if !tg.targets.contains(&t) {
                return Err(LbError::new(
                    "InvalidTarget",
                    format!(
                        "The following targets are not registered in target group '{arn}': '{}:{}'",
                        t.id, t.port
                    ),
                ));
            }
            tg.targets.retain(|x| *x != t);
        }
        Ok(())
    })
}
