//! Load balancers, target groups, targets and tags.

use serde_json::{json, Value};

use super::input::{items, parsed, required, string, strings, tags, targets};
use super::{render, Ctx};
use crate::lb::commands::{self, HealthCheckSpec, LoadBalancerSpec, TargetGroupSpec};
use crate::lb::listeners::load_balancer_not_found;
use crate::lb::LbError;

pub fn create(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let spec = LoadBalancerSpec {
        name: required(v, "Name")?,
        kind: string(v, "Type"),
        scheme: string(v, "Scheme"),
        subnets: strings(v, "Subnets")
            .into_iter()
            .chain(
                items(v, "SubnetMappings")
                    .iter()
                    .filter_map(|m| string(m, "SubnetId")),
            )
            .collect(),
        security_groups: strings(v, "SecurityGroups"),
        ip_address_type: string(v, "IpAddressType"),
        tags: tags(v),
    };
    let lb = commands::create_load_balancer(ctx.lbs, &ctx.lb, spec, ctx.dataplane.now_ms())?;
    Ok(json!({"LoadBalancers": [render::load_balancer(&lb, &ctx.call.timestamp(lb.created_ms))]}))
}

/// What a Describe call asks for by `arns` or `names` (everything when it names none),
/// or None when one of them does not exist. `key` gives an item's ARN and name.
pub(super) fn requested<'a, T>(
    all: impl Iterator<Item = &'a T>,
    arns: &[String],
    names: &[String],
    key: impl Fn(&T) -> (&str, &str),
) -> Option<Vec<&'a T>> {
    let asked = |t: &T| {
        let (arn, name) = key(t);
        arns.iter().any(|a| a == arn) || names.iter().any(|n| n == name)
    };
    let found: Vec<&T> = all
        .filter(|t| (arns.is_empty() && names.is_empty()) || asked(t))
        .collect();
    let arn_found = |want: &String| found.iter().any(|t| key(t).0 == want);
    let name_found = |want: &String| found.iter().any(|t| key(t).1 == want);
    (arns.iter().all(arn_found) && names.iter().all(name_found)).then_some(found)
}

pub fn describe(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let config = ctx.lbs.snapshot();
    let arns = strings(v, "LoadBalancerArns");
    let names = strings(v, "Names");
    let found = requested(config.load_balancers.values(), &arns, &names, |lb| {
        (lb.arn.as_str(), lb.name.as_str())
    })
    .ok_or_else(|| {
        LbError::new(
            "LoadBalancerNotFound",
            "One or more load balancers not found",
        )
    })?;
    Ok(
        json!({"LoadBalancers": found.iter().map(|lb| render::load_balancer(lb, &ctx.call.timestamp(lb.created_ms))).collect::<Vec<_>>()}),
    )
}

pub fn delete(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    commands::delete_load_balancer(ctx.lbs, &required(v, "LoadBalancerArn")?)?;
    Ok(json!({}))
}

/// ALB's attributes, at their defaults (Berth acts on the idle timeout only).
pub fn attributes(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let arn = required(v, "LoadBalancerArn")?;
    if !ctx.lbs.snapshot().load_balancers.contains_key(&arn) {
        return Err(load_balancer_not_found(&arn));
    }
    let defaults = [
        ("idle_timeout.timeout_seconds", "60"),
        ("deletion_protection.enabled", "false"),
        ("routing.http2.enabled", "true"),
        ("routing.http.drop_invalid_header_fields.enabled", "false"),
        ("access_logs.s3.enabled", "false"),
    ];
    Ok(
        json!({"Attributes": defaults.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}),
    )
}

fn health_spec(v: &Value) -> Result<HealthCheckSpec, LbError> {
    Ok(HealthCheckSpec {
        enabled: parsed(v, "HealthCheckEnabled")?,
        protocol: string(v, "HealthCheckProtocol"),
        port: string(v, "HealthCheckPort"),
        path: string(v, "HealthCheckPath"),
        interval_secs: parsed(v, "HealthCheckIntervalSeconds")?,
        timeout_secs: parsed(v, "HealthCheckTimeoutSeconds")?,
        healthy_threshold: parsed(v, "HealthyThresholdCount")?,
        unhealthy_threshold: parsed(v, "UnhealthyThresholdCount")?,
        matcher: v.get("Matcher").and_then(|m| string(m, "HttpCode")),
    })
}

pub fn create_target_group(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let spec = TargetGroupSpec {
        name: required(v, "Name")?,
        protocol: string(v, "Protocol"),
        protocol_version: string(v, "ProtocolVersion"),
        port: parsed(v, "Port")?,
        vpc_id: string(v, "VpcId"),
        target_type: string(v, "TargetType"),
        health: health_spec(v)?,
        tags: tags(v),
    };
    let tg = commands::create_target_group(ctx.lbs, &ctx.lb, &spec)?;
    Ok(json!({"TargetGroups": [render::target_group(&tg, &ctx.lbs.snapshot())]}))
}

pub fn describe_target_groups(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let config = ctx.lbs.snapshot();
    let arns = strings(v, "TargetGroupArns");
    let names = strings(v, "Names");
    let lb = string(v, "LoadBalancerArn");
    if let Some(lb) = &lb {
        if !config.load_balancers.contains_key(lb) {
            return Err(load_balancer_not_found(lb));
        }
    }
    let found: Vec<_> = requested(config.target_groups.values(), &arns, &names, |tg| {
        (tg.arn.as_str(), tg.name.as_str())
    })
    .ok_or_else(|| LbError::new("TargetGroupNotFound", "One or more target groups not found"))?
    .into_iter()
    .filter(|tg| {
        lb.as_ref()
            .is_none_or(|lb| config.load_balancers_of(&tg.arn).contains(lb))
    })
    .collect();
    Ok(
        json!({"TargetGroups": found.iter().map(|tg| render::target_group(tg, &config)).collect::<Vec<_>>()}),
    )
}

pub fn modify_target_group(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let tg =
        commands::modify_target_group(ctx.lbs, &required(v, "TargetGroupArn")?, &health_spec(v)?)?;
    Ok(json!({"TargetGroups": [render::target_group(&tg, &ctx.lbs.snapshot())]}))
}

pub fn delete_target_group(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    commands::delete_target_group(ctx.lbs, &required(v, "TargetGroupArn")?)?;
    Ok(json!({}))
}

fn attribute_list(a: &std::collections::BTreeMap<String, String>) -> Value {
    a.iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect()
}

pub fn target_group_attributes(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let arn = required(v, "TargetGroupArn")?;
    let config = ctx.lbs.snapshot();
    let tg = config
        .target_groups
        .get(&arn)
        .ok_or_else(|| commands::target_group_not_found(&arn))?;
    Ok(json!({"Attributes": attribute_list(&tg.attributes)}))
}

pub fn modify_target_group_attributes(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let changes: Vec<(String, String)> = items(v, "Attributes")
        .iter()
        .map(|a| Ok((required(a, "Key")?, string(a, "Value").unwrap_or_default())))
        .collect::<Result<_, LbError>>()?;
    let all = commands::modify_attributes(ctx.lbs, &required(v, "TargetGroupArn")?, &changes)?;
    Ok(json!({"Attributes": attribute_list(&all)}))
}

pub fn register_targets(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    commands::register_targets(ctx.lbs, &required(v, "TargetGroupArn")?, &targets(v)?)?;
    Ok(json!({}))
}

pub fn deregister_targets(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    commands::deregister_targets(ctx.lbs, &required(v, "TargetGroupArn")?, &targets(v)?)?;
    Ok(json!({}))
}

pub fn describe_target_health(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let arn = required(v, "TargetGroupArn")?;
    let config = ctx.lbs.snapshot();
    let tg = config
        .target_groups
        .get(&arn)
        .ok_or_else(|| commands::target_group_not_found(&arn))?;
    let mut reported = ctx.dataplane.describe(tg);
    let asked = targets(v)?;
    if !asked.is_empty() {
        // Named targets only; one not in the group is `unused` / `Target.NotRegistered`.
        let mut out = Vec::new();
        for (id, port) in asked {
            let t = commands::resolve_target(tg, &id, port)?;
            match reported.iter().find(|r| r.target == t) {
                Some(r) => out.push(render::target_health(r)),
                None => out.push(json!({
                    "Target": {"Id": t.id, "Port": t.port},
                    "HealthCheckPort": tg.health_check.port.parse::<u16>().unwrap_or(t.port).to_string(),
                    "TargetHealth": {"State": "unused", "Reason": "Target.NotRegistered", "Description": "Target is not registered to the target group"},
                })),
            }
        }
        return Ok(json!({"TargetHealthDescriptions": out}));
    }
    reported.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(
        json!({"TargetHealthDescriptions": reported.iter().map(render::target_health).collect::<Vec<_>>()}),
    )
}

/// The tags of the resource `arn` names, for changing.
fn tags_mut<'a>(c: &'a mut crate::lb::Config, arn: &str) -> Option<&'a mut Vec<(String, String)>> {
    if let Some(x) = c.load_balancers.get_mut(arn) {
        return Some(&mut x.tags);
    }
    if let Some(x) = c.target_groups.get_mut(arn) {
        return Some(&mut x.tags);
    }
    if let Some(x) = c.listeners.get_mut(arn) {
        return Some(&mut x.tags);
    }
    c.rules.get_mut(arn).map(|x| &mut x.tags)
}

fn not_found(arn: &str) -> LbError {
    if arn.contains(":targetgroup/") {
        commands::target_group_not_found(arn)
    } else if arn.contains(":listener-rule/") {
        LbError::new("RuleNotFound", format!("Rule '{arn}' not found"))
    } else if arn.contains(":listener/") {
        LbError::new("ListenerNotFound", format!("Listener '{arn}' not found"))
    } else {
        load_balancer_not_found(arn)
    }
}

fn change_tags(
    ctx: &Ctx<'_>,
    v: &Value,
    add: &[(String, String)],
    remove: &[String],
) -> Result<Value, LbError> {
    let arns = strings(v, "ResourceArns");
    ctx.lbs.change(|c, ch| {
        for arn in &arns {
            let t = tags_mut(c, arn).ok_or_else(|| not_found(arn))?;
            t.retain(|(k, _)| !remove.contains(k) && !add.iter().any(|(a, _)| a == k));
            t.extend(add.iter().cloned());
            t.sort();
            if let Some(x) = c.load_balancers.get(arn).cloned() {
                ch.put_load_balancer(c, x);
            } else if let Some(x) = c.target_groups.get(arn).cloned() {
                ch.put_target_group(c, x);
            } else if let Some(x) = c.listeners.get(arn).cloned() {
                ch.put_listener(c, x);
            } else if let Some(x) = c.rules.get(arn).cloned() {
                ch.put_rule(c, x);
            }
        }
        Ok(json!({}))
    })
}

pub fn add_tags(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    change_tags(ctx, v, &tags(v), &[])
}

pub fn remove_tags(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    change_tags(ctx, v, &[], &strings(v, "TagKeys"))
}

pub fn describe_tags(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let config = ctx.lbs.snapshot();
    let mut out = Vec::new();
    for arn in strings(v, "ResourceArns") {
        let t = config.tags_of(&arn).ok_or_else(|| not_found(&arn))?;
        out.push(json!({"ResourceArn": arn, "Tags": render::tags(t)}));
    }
    Ok(json!({"TagDescriptions": out}))
}
