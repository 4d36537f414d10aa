//! ELBv2's output shapes, as botocore's model names their members.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::lb::dataplane::Reported;
use crate::lb::model::{Action, Condition, Listener, LoadBalancer, Rule, TargetGroup};
use crate::lb::Config;

/// The hosted zone ELB gives application load balancers in us-east-1; Berth has no DNS
/// zones, so every load balancer reports this one.
const HOSTED_ZONE: &str = "Z35SXDOTRQ7X7K";

pub fn tags(t: &[(String, String)]) -> Value {
    t.iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect()
}

pub fn load_balancer(lb: &LoadBalancer, created: &Value) -> Value {
    json!({
        "LoadBalancerArn": lb.arn,
        "DNSName": lb.dns_name,
        "CanonicalHostedZoneId": HOSTED_ZONE,
        "CreatedTime": created,
        "LoadBalancerName": lb.name,
        "Scheme": lb.scheme,
        "VpcId": "vpc-berth",
        "State": {"Code": "active"},
        "Type": "application",
        "AvailabilityZones": lb.subnets.iter().map(|s| json!({"ZoneName": "berth-local", "SubnetId": s})).collect::<Vec<_>>(),
        "SecurityGroups": lb.security_groups,
        "IpAddressType": lb.ip_address_type,
    })
}

pub fn target_group(tg: &TargetGroup, config: &Config) -> Value {
    let hc = &tg.health_check;
    json!({
        "TargetGroupArn": tg.arn,
        "TargetGroupName": tg.name,
        "Protocol": tg.protocol,
        "ProtocolVersion": tg.protocol_version,
        "Port": tg.port,
        "VpcId": tg.vpc_id,
        "HealthCheckProtocol": hc.protocol,
        "HealthCheckPort": hc.port,
        "HealthCheckEnabled": hc.enabled,
        "HealthCheckIntervalSeconds": hc.interval_secs,
        "HealthCheckTimeoutSeconds": hc.timeout_secs,
        "HealthyThresholdCount": hc.healthy_threshold,
        "UnhealthyThresholdCount": hc.unhealthy_threshold,
        "HealthCheckPath": hc.path,
        "Matcher": {"HttpCode": hc.matcher},
        "LoadBalancerArns": config.load_balancers_of(&tg.arn),
        "TargetType": tg.target_type.as_str(),
        "IpAddressType": "ipv4",
    })
}

fn action(a: &Action, order: usize) -> Value {
    match a {
        Action::Forward(groups) => {
            let mut v = json!({
                "Type": "forward",
                "Order": order,
                "ForwardConfig": {
                    "TargetGroups": groups.iter().map(|(arn, w)| json!({"TargetGroupArn": arn, "Weight": w})).collect::<Vec<_>>(),
                    "TargetGroupStickinessConfig": {"Enabled": false},
                },
            });
            if let [(arn, _)] = groups.as_slice() {
                v["TargetGroupArn"] = json!(arn);
            }
            v
        }
        Action::Redirect(r) => json!({
            "Type": "redirect",
            "Order": order,
            "RedirectConfig": {
                "Protocol": r.protocol, "Port": r.port, "Host": r.host,
                "Path": r.path, "Query": r.query, "StatusCode": r.status_code,
            },
        }),
        Action::FixedResponse {
            status_code,
            content_type,
            body,
        } => json!({
            "Type": "fixed-response",
            "Order": order,
            "FixedResponseConfig": {"StatusCode": status_code, "ContentType": content_type, "MessageBody": body},
        }),
    }
}

pub fn actions(a: &[Action]) -> Value {
    a.iter()
        .enumerate()
        .map(|(i, a)| action(a, i + 1))
        .collect()
}

pub fn listener(l: &Listener) -> Value {
    json!({
        "ListenerArn": l.arn,
        "LoadBalancerArn": l.load_balancer_arn,
        "Port": l.port,
        "Protocol": l.protocol,
        "DefaultActions": actions(&l.default_actions),
        "SslPolicy": l.ssl_policy,
        "Certificates": l.certificates.iter().map(|c| json!({"CertificateArn": c})).collect::<Vec<_>>(),
    })
}

fn values_condition(field: &str, config: &str, values: &[String]) -> Value {
    json!({"Field": field, "Values": values, config: {"Values": values}})
}

fn condition(c: &Condition) -> Value {
    match c {
        Condition::PathPattern(v) => values_condition("path-pattern", "PathPatternConfig", v),
        Condition::HostHeader(v) => values_condition("host-header", "HostHeaderConfig", v),
        Condition::HttpRequestMethod(v) => {
            json!({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": v}})
        }
        Condition::SourceIp(v) => json!({"Field": "source-ip", "SourceIpConfig": {"Values": v}}),
        Condition::HttpHeader { name, values } => json!({
            "Field": "http-header",
            "HttpHeaderConfig": {"HttpHeaderName": name, "Values": values},
        }),
        Condition::QueryString(pairs) => json!({
            "Field": "query-string",
            "QueryStringConfig": {"Values": pairs.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()},
        }),
    }
}

pub fn rule(r: &Rule) -> Value {
    json!({
        "RuleArn": r.arn,
        "Priority": r.priority.to_string(),
        "Conditions": r.conditions.iter().map(condition).collect::<Vec<_>>(),
        "Actions": actions(&r.actions),
        "IsDefault": false,
    })
}

/// A listener's default actions as the rule `DescribeRules` lists last. Its ARN is
/// stable: derived from the listener's.
pub fn default_rule(l: &Listener) -> Value {
    let id = hex::encode(&Sha256::digest(l.arn.as_bytes())[..8]);
    json!({
        "RuleArn": format!("{}/{id}", l.arn.replacen(":listener/", ":listener-rule/", 1)),
        "Priority": "default",
        "Conditions": [],
        "Actions": actions(&l.default_actions),
        "IsDefault": true,
    })
}

pub fn target_health(r: &Reported) -> Value {
    json!({
        "Target": {"Id": r.target.id, "Port": r.target.port},
        "HealthCheckPort": r.health_check_port,
        "TargetHealth": {
            "State": r.health.state.as_str(),
            "Reason": r.health.reason,
            "Description": r.health.description,
        },
    })
}
