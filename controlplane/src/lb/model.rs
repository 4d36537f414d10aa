//! Load balancing's domain types: load balancers, target groups, listeners and rules as
//! ELBv2 describes them, validated at the API edge and stored as they are here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An application load balancer: a name, an address its listeners answer on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    /// `internet-facing` or `internal`: kept, as subnets and security groups are.
    pub scheme: String,
    pub dns_name: String,
    pub created_ms: i64,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub ip_address_type: String,
    pub tags: Vec<(String, String)>,
}

/// How targets are named: by IP address (awsvpc tasks) or by instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TargetType {
    #[default]
    Instance,
    Ip,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Ip => "ip",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Instance, Self::Ip]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A target group's health check, with ELB's defaults for an HTTP target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: String,
    /// A port number, or `traffic-port`: the port each target takes traffic on.
    pub port: String,
    pub path: String,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// The HTTP codes that count as healthy: `200`, `200,202`, `200-299`.
    pub matcher: String,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            enabled: true,
            protocol: "HTTP".into(),
            port: "traffic-port".into(),
            path: "/".into(),
            interval_secs: 30,
            timeout_secs: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".into(),
        }
    }
}

impl HealthCheck {
    /// Whether `status` is one the matcher names.
    pub fn matches(&self, status: u16) -> bool {
        self.matcher.split(',').any(|part| {
            let part = part.trim();
            match part.split_once('-') {
                Some((lo, hi)) => match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                    (Ok(lo), Ok(hi)) => (lo..=hi).contains(&status),
                    _ => false,
                },
                None => part.parse::<u16>() == Ok(status),
            }
        })
    }
}

/// A registered target: an IP address or an instance id, and the port it serves on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub port: u16,
}

/// The target group attributes ELB defaults for an application target group.
pub const DEFAULT_ATTRIBUTES: [(&str, &str); 6] = [
    ("deregistration_delay.timeout_seconds", "300"),
    ("slow_start.duration_seconds", "0"),
    ("stickiness.enabled", "false"),
    ("stickiness.type", "lb_cookie"),
    ("stickiness.lb_cookie.duration_seconds", "86400"),
    ("load_balancing.algorithm.type", "round_robin"),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    pub protocol_version: String,
    pub port: Option<u16>,
    pub vpc_id: Option<String>,
    pub target_type: TargetType,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    /// Targets registered with `RegisterTargets` (an ECS service's tasks are added to
    /// these while they run, not stored).
    pub targets: Vec<Target>,
    pub tags: Vec<(String, String)>,
}

impl TargetGroup {
    /// How long a deregistered target drains before it is dropped.
    pub fn deregistration_delay_secs(&self) -> u64 {
        self.attributes
            .get("deregistration_delay.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300)
    }
}

/// Where a redirect goes: each part may use `#{protocol}`, `#{host}`, `#{port}`,
/// `#{path}` and `#{query}` for the request's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    pub protocol: String,
    pub port: String,
    pub host: String,
    pub path: String,
    pub query: String,
    /// `HTTP_301` or `HTTP_302`.
    pub status_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// To one target group, or spread over several by weight.
    Forward(Vec<(String, u32)>),
    Redirect(Redirect),
    FixedResponse {
        status_code: String,
        content_type: Option<String>,
        body: Option<String>,
    },
}

/// A rule condition. Values in one condition are alternatives; a rule's conditions all
/// must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    PathPattern(Vec<String>),
    HostHeader(Vec<String>),
    HttpHeader {
        name: String,
        values: Vec<String>,
    },
    /// Key (optional) and value patterns.
    QueryString(Vec<(Option<String>, String)>),
    HttpRequestMethod(Vec<String>),
    SourceIp(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    pub protocol: String,
    pub default_actions: Vec<Action>,
    pub ssl_policy: Option<String>,
    pub certificates: Vec<String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub arn: String,
    pub listener_arn: String,
    /// 1..=50000, unique per listener; lower is evaluated first.
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub tags: Vec<(String, String)>,
}

impl Action {
    /// The target groups this action sends to.
    pub fn target_groups(&self) -> impl Iterator<Item = &str> {
        let groups: &[(String, u32)] = match self {
            Self::Forward(groups) => groups,
            _ => &[],
        };
        groups.iter().map(|(arn, _)| arn.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_take_codes_lists_and_ranges() {
        let hc = |m: &str| HealthCheck {
            matcher: m.into(),
            ..HealthCheck::default()
        };
        assert!(hc("200").matches(200));
        assert!(!hc("200").matches(204));
        assert!(hc("200,202").matches(202));
        assert!(hc("200-299").matches(204));
        assert!(!hc("200-299").matches(301));
        assert!(!hc("x").matches(200));
    }
}
