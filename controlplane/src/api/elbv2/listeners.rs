//! Listeners and rules.

use serde_json::{json, Value};

use super::input::{actions, conditions, items, parsed, required, string, strings, tags};
use super::{render, Ctx};
use crate::lb::listeners::{self, load_balancer_not_found, ListenerChange, ListenerSpec, RuleSpec};
use crate::lb::LbError;

pub fn create(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let spec = ListenerSpec {
        load_balancer_arn: required(v, "LoadBalancerArn")?,
        protocol: string(v, "Protocol"),
        port: parsed(v, "Port")?,
        default_actions: actions(v, "DefaultActions")?,
        ssl_policy: string(v, "SslPolicy"),
        certificates: items(v, "Certificates")
            .iter()
            .filter_map(|c| string(c, "CertificateArn"))
            .collect(),
        tags: tags(v),
    };
    let l = listeners::create_listener(ctx.lbs, &spec, &|arn| ctx.certificates.get(arn).is_ok())?;
    Ok(json!({"Listeners": [render::listener(&l)]}))
}

pub fn describe(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let config = ctx.lbs.snapshot();
    let arns = strings(v, "ListenerArns");
    let lb = string(v, "LoadBalancerArn");
    if lb.is_none() && arns.is_empty() {
        return Err(LbError::validation(
            "You must specify either listener ARNs or a load balancer ARN",
        ));
    }
    if let Some(lb) = &lb {
        if !config.load_balancers.contains_key(lb) {
            return Err(load_balancer_not_found(lb));
        }
    }
    let found: Vec<_> =
        super::load_balancers::requested(config.listeners.values(), &arns, &[], |l| {
            (l.arn.as_str(), "")
        })
        .ok_or_else(|| LbError::new("ListenerNotFound", "One or more listeners not found"))?
        .into_iter()
        .filter(|l| lb.as_ref().is_none_or(|lb| l.load_balancer_arn == *lb))
        .collect();
    Ok(json!({"Listeners": found.iter().map(|l| render::listener(l)).collect::<Vec<_>>()}))
}

pub fn modify(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let change = ListenerChange {
        protocol: string(v, "Protocol"),
        port: parsed(v, "Port")?,
        ssl_policy: string(v, "SslPolicy"),
        certificates: v.get("Certificates").map(|_| {
            items(v, "Certificates")
                .iter()
                .filter_map(|c| string(c, "CertificateArn"))
                .collect()
        }),
        default_actions: v
            .get("DefaultActions")
            .map(|_| actions(v, "DefaultActions"))
            .transpose()?,
    };
    let l = listeners::modify_listener(ctx.lbs, &required(v, "ListenerArn")?, &change, &|arn| {
        ctx.certificates.get(arn).is_ok()
    })?;
    Ok(json!({"Listeners": [render::listener(&l)]}))
}

pub fn delete(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    listeners::delete_listener(ctx.lbs, &required(v, "ListenerArn")?)?;
    Ok(json!({}))
}

pub fn create_rule(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let priority = parsed(v, "Priority")?
        .ok_or_else(|| LbError::validation("A rule priority must be specified."))?;
    let spec = RuleSpec {
        listener_arn: required(v, "ListenerArn")?,
        priority,
        conditions: conditions(v)?,
        actions: actions(v, "Actions")?,
        tags: tags(v),
    };
    let r = listeners::create_rule(ctx.lbs, &spec)?;
    Ok(json!({"Rules": [render::rule(&r)]}))
}

pub fn describe_rules(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let config = ctx.lbs.snapshot();
    let arns = strings(v, "RuleArns");
    if let Some(arn) = string(v, "ListenerArn") {
        let l = config.listeners.get(&arn).ok_or_else(|| {
            LbError::new("ListenerNotFound", format!("Listener '{arn}' not found"))
        })?;
        let mut out: Vec<Value> = config
            .rules_of(&arn)
            .into_iter()
            .map(render::rule)
            .collect();
        out.push(render::default_rule(l));
        return Ok(json!({"Rules": out}));
    }
    if arns.is_empty() {
        return Err(LbError::validation(
            "You must specify either rule ARNs or a listener ARN",
        ));
    }
    let mut out = Vec::new();
    for arn in &arns {
        let rule = config.rules.get(arn).map(render::rule).or_else(|| {
            config
                .listeners
                .values()
                .map(render::default_rule)
                .find(|d| d["RuleArn"] == json!(arn))
        });
        out.push(rule.ok_or_else(|| LbError::new("RuleNotFound", "One or more rules not found"))?);
    }
    Ok(json!({"Rules": out}))
}

pub fn modify_rule(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let conditions = v.get("Conditions").map(|_| conditions(v)).transpose()?;
    let actions = v
        .get("Actions")
        .map(|_| actions(v, "Actions"))
        .transpose()?;
    let r = listeners::modify_rule(ctx.lbs, &required(v, "RuleArn")?, conditions, actions)?;
    Ok(json!({"Rules": [render::rule(&r)]}))
}

pub fn delete_rule(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    listeners::delete_rule(ctx.lbs, &required(v, "RuleArn")?)?;
    Ok(json!({}))
}

pub fn set_rule_priorities(ctx: &Ctx<'_>, v: &Value) -> Result<Value, LbError> {
    let changes: Vec<(String, u32)> = items(v, "RulePriorities")
        .iter()
        .map(|p| {
            let priority = parsed(p, "Priority")?
                .ok_or_else(|| LbError::validation("A rule priority must be specified."))?;
            Ok((required(p, "RuleArn")?, priority))
        })
        .collect::<Result<_, LbError>>()?;
    let rules = listeners::set_priorities(ctx.lbs, &changes)?;
    Ok(json!({"Rules": rules.iter().map(render::rule).collect::<Vec<_>>()}))
}
