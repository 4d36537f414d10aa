//! Listeners and their rules: actions checked against the target groups they name, and
//! ports and priorities kept unique.

use super::commands::{new_id, target_group_not_found};
use super::config::{Config, LbError, LoadBalancing};
use super::model::{Action, Condition, Listener, Rule};

/// ELB's bounds on rule priorities.
pub const MAX_PRIORITY: u32 = 50_000;

fn listener_not_found(arn: &str) -> LbError {
    LbError::new("ListenerNotFound", format!("Listener '{arn}' not found"))
}

pub fn load_balancer_not_found(arn: &str) -> LbError {
    LbError::new(
        "LoadBalancerNotFound",
        format!("Load balancer '{arn}' not found"),
    )
}

fn rule_not_found(arn: &str) -> LbError {
    LbError::new("RuleNotFound", format!("Rule '{arn}' not found"))
}

/// Every target group an action names exists; a forward's weights are 0..=999 and not
/// all zero; codes are ELB's.
fn check_actions(c: &Config, actions: &[Action]) -> Result<(), LbError> {
    if actions.is_empty() {
        return Err(LbError::validation(
            "At least one action must be specified.",
        ));
    }
    for a in actions {
        match a {
            Action::Forward(groups) => {
                if groups.is_empty() {
                    return Err(LbError::validation(
                        "A forward action must name a target group.",
                    ));
                }
                for (arn, weight) in groups {
                    if !c.target_groups.contains_key(arn) {
                        return Err(target_group_not_found(arn));
                    }
                    if *weight > 999 {
                        return Err(LbError::validation(format!(
                            "Target group weight {weight} must be between 0 and 999."
                        )));
                    }
                }
                if groups.iter().all(|(_, w)| *w == 0) && groups.len() > 1 {
                    return Err(LbError::validation(
                        "At least one target group of a forward action must have a weight above 0.",
                    ));
                }
            }
            Action::Redirect(r) => {
                if !matches!(r.status_code.as_str(), "HTTP_301" | "HTTP_302") {
                    return Err(LbError::validation(format!(
                        "Redirect status code '{}' is not valid: use HTTP_301 or HTTP_302.",
                        r.status_code
                    )));
                }
            }
            Action::FixedResponse { status_code, .. } => {
                let ok = status_code.len() == 3
                    && matches!(status_code.as_bytes()[0], b'2' | b'4' | b'5')
                    && status_code.bytes().all(|b| b.is_ascii_digit());
                if !ok {
                    return Err(LbError::validation(format!(
                        "Fixed-response status code '{status_code}' must be 2XX, 4XX or 5XX."
                    )));
                }
            }
        }
    }
    Ok(())
}

/// What `CreateListener` asks for.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub load_balancer_arn: String,
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub default_actions: Vec<Action>,
    pub ssl_policy: Option<String>,
    pub certificates: Vec<String>,
    pub tags: Vec<(String, String)>,
}

fn check_protocol(protocol: &str) -> Result<(), LbError> {
    match protocol {
        "HTTP" | "HTTPS" => Ok(()),
        other => Err(LbError::new(
            "UnsupportedProtocol",
            format!("Protocol '{other}' is not supported by an application load balancer: use HTTP or HTTPS."),
        )),
    }
}

/// An HTTPS listener names certificates that exist and a policy ELB knows (its default
/// when none); an HTTP one keeps neither.
fn check_tls(
    protocol: &str,
    ssl_policy: &mut Option<String>,
    certificates: &[String],
    certificate_exists: &dyn Fn(&str) -> bool,
) -> Result<(), LbError> {
    if protocol != "HTTPS" {
        *ssl_policy = None;
        return Ok(());
    }
    if certificates.is_empty() {
        return Err(LbError::validation(
            "A certificate must be specified for HTTPS listeners",
        ));
    }
    if let Some(missing) = certificates.iter().find(|c| !certificate_exists(c)) {
        return Err(LbError::new(
            "CertificateNotFound",
            format!("Certificate '{missing}' not found: import it with acm ImportCertificate."),
        ));
    }
    let policy = ssl_policy.get_or_insert_with(|| super::tls::DEFAULT_POLICY.to_string());
    super::tls::versions(policy).map(|_| ())
}

/// Every load balancer answers on the same address, so a port is one listener's.
fn check_port_free(c: &Config, port: u16, except: Option<&str>) -> Result<(), LbError> {
    if let Some(l) = c
        .listeners
        .values()
        .find(|l| l.port == port && Some(l.arn.as_str()) != except)
    {
        return Err(LbError::new(
            "DuplicateListener",
            format!(
                "A listener already exists on port {port} ({}); Berth's load balancers share one address, so each port serves one listener.",
                l.arn
            ),
        ));
    }
    Ok(())
}

pub fn create_listener(
    lbs: &LoadBalancing,
    spec: &ListenerSpec,
    certificate_exists: &dyn Fn(&str) -> bool,
) -> Result<Listener, LbError> {
    let protocol = spec.protocol.clone().unwrap_or_else(|| "HTTP".into());
    check_protocol(&protocol)?;
    let mut ssl_policy = spec.ssl_policy.clone();
    check_tls(
        &protocol,
        &mut ssl_policy,
        &spec.certificates,
        certificate_exists,
    )?;
    let port = spec
        .port
        .filter(|p| *p > 0)
        .ok_or_else(|| LbError::validation("A listener port from 1 to 65535 must be specified."))?;
    lbs.change(|c, ch| {
        let lb = c
            .load_balancers
            .get(&spec.load_balancer_arn)
            .ok_or_else(|| load_balancer_not_found(&spec.load_balancer_arn))?;
        check_actions(c, &spec.default_actions)?;
        if let Some(same) = c.listeners_of(&lb.arn).find(|l| {
            l.port == port && l.protocol == protocol && l.default_actions == spec.default_actions
        }) {
            return Ok(same.clone());
        }
        check_port_free(c, port, None)?;
        let lb_path = lb.arn.split_once(":loadbalancer/").map_or("", |(_, p)| p);
        let arn = format!(
            "{}:listener/{lb_path}/{}",
            lb.arn.split_once(":loadbalancer/").map_or("", |(a, _)| a),
            new_id()
        );
        let listener = Listener {
            arn,
            load_balancer_arn: lb.arn.clone(),
            port,
            protocol: protocol.clone(),
            default_actions: spec.default_actions.clone(),
            ssl_policy: ssl_policy.clone(),
            certificates: spec.certificates.clone(),
            tags: spec.tags.clone(),
        };
        ch.put_listener(c, listener.clone());
        Ok(listener)
    })
}

/// What `ModifyListener` changes (each member optional).
#[derive(Debug, Clone, Default)]
pub struct ListenerChange {
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub default_actions: Option<Vec<Action>>,
    pub ssl_policy: Option<String>,
    pub certificates: Option<Vec<String>>,
}

pub fn modify_listener(
    lbs: &LoadBalancing,
    arn: &str,
    change: &ListenerChange,
    certificate_exists: &dyn Fn(&str) -> bool,
) -> Result<Listener, LbError> {
    if let Some(p) = &change.protocol {
        check_protocol(p)?;
    }
    lbs.change(|c, ch| {
        let mut l = c
            .listeners
            .get(arn)
            .cloned()
            .ok_or_else(|| listener_not_found(arn))?;
        if let Some(port) = change.port {
            check_port_free(c, port, Some(arn))?;
            l.port = port;
        }
        if let Some(p) = &change.protocol {
            l.protocol.clone_from(p);
        }
        if let Some(actions) = &change.default_actions {
            check_actions(c, actions)?;
            l.default_actions.clone_from(actions);
        }
        if let Some(certs) = &change.certificates {
            l.certificates.clone_from(certs);
        }
        if change.ssl_policy.is_some() {
            l.ssl_policy.clone_from(&change.ssl_policy);
        }
        check_tls(
            &l.protocol,
            &mut l.ssl_policy,
            &l.certificates,
            certificate_exists,
        )?;
        ch.put_listener(c, l.clone());
        Ok(l)
    })
}

pub fn delete_listener(lbs: &LoadBalancing, arn: &str) -> Result<(), LbError> {
    lbs.change(|c, ch| {
        if !c.listeners.contains_key(arn) {
            return Err(listener_not_found(arn));
        }
        ch.delete_listener(c, arn);
        Ok(())
    })
}

fn check_conditions(conditions: &[Condition]) -> Result<(), LbError> {
    if conditions.is_empty() {
        return Err(LbError::validation(
            "A rule must have at least one condition.",
        ));
    }
    let values: usize = conditions
        .iter()
        .map(|c| match c {
            Condition::PathPattern(v)
            | Condition::HostHeader(v)
            | Condition::HttpRequestMethod(v)
            | Condition::SourceIp(v) => v.len(),
            Condition::HttpHeader { values, .. } => values.len(),
            Condition::QueryString(v) => v.len(),
        })
        .sum();
    if values == 0 {
        return Err(LbError::validation(
            "A rule condition must have at least one value.",
        ));
    }
    if values > 5 {
        return Err(LbError::new(
            "TooManyConditionValues",
            format!("A rule can have at most 5 condition values; {values} were given."),
        ));
    }
    Ok(())
}

fn check_priority(priority: u32) -> Result<(), LbError> {
    if (1..=MAX_PRIORITY).contains(&priority) {
        Ok(())
    } else {
        Err(LbError::validation(format!(
            "Priority {priority} must be between 1 and {MAX_PRIORITY}."
        )))
    }
}

fn check_priority_free(
    c: &Config,
    listener: &str,
    priority: u32,
    except: Option<&str>,
) -> Result<(), LbError> {
    if c.rules_of(listener)
        .iter()
        .any(|r| r.priority == priority && Some(r.arn.as_str()) != except)
    {
        return Err(LbError::new(
            "PriorityInUse",
            format!("Priority '{priority}' is currently in use"),
        ));
    }
    Ok(())
}

/// What `CreateRule` asks for.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub listener_arn: String,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub tags: Vec<(String, String)>,
}

pub fn create_rule(lbs: &LoadBalancing, spec: &RuleSpec) -> Result<Rule, LbError> {
    check_priority(spec.priority)?;
    check_conditions(&spec.conditions)?;
    lbs.change(|c, ch| {
        let listener = c
            .listeners
            .get(&spec.listener_arn)
            .ok_or_else(|| listener_not_found(&spec.listener_arn))?;
        check_actions(c, &spec.actions)?;
        check_priority_free(c, &listener.arn, spec.priority, None)?;
        let arn = format!(
            "{}/{}",
            listener.arn.replacen(":listener/", ":listener-rule/", 1),
            new_id()
        );
        let rule = Rule {
            arn,
            listener_arn: listener.arn.clone(),
            priority: spec.priority,
            conditions: spec.conditions.clone(),
            actions: spec.actions.clone(),
            tags: spec.tags.clone(),
        };
        ch.put_rule(c, rule.clone());
        Ok(rule)
    })
}

pub fn modify_rule(
    lbs: &LoadBalancing,
    arn: &str,
    conditions: Option<Vec<Condition>>,
    actions: Option<Vec<Action>>,
) -> Result<Rule, LbError> {
    if let Some(conditions) = &conditions {
        check_conditions(conditions)?;
    }
    lbs.change(|c, ch| {
        let mut rule = c
            .rules
            .get(arn)
            .cloned()
            .ok_or_else(|| rule_not_found(arn))?;
        if let Some(actions) = actions {
            check_actions(c, &actions)?;
            rule.actions = actions;
        }
        if let Some(conditions) = conditions {
            rule.conditions = conditions;
        }
        ch.put_rule(c, rule.clone());
        Ok(rule)
    })
}

pub fn delete_rule(lbs: &LoadBalancing, arn: &str) -> Result<(), LbError> {
    lbs.change(|c, ch| {
        if !c.rules.contains_key(arn) {
            return Err(rule_not_found(arn));
        }
        ch.delete_rule(c, arn);
        Ok(())
    })
}

/// Sets several rules' priorities at once: the result must still be unique per listener.
pub fn set_priorities(
    lbs: &LoadBalancing,
    changes: &[(String, u32)],
) -> Result<Vec<Rule>, LbError> {
    for (_, p) in changes {
        check_priority(*p)?;
    }
    lbs.change(|c, ch| {
        let mut out = Vec::new();
        for (arn, priority) in changes {
            let mut rule = c
                .rules
                .get(arn)
                .cloned()
                .ok_or_else(|| rule_not_found(arn))?;
            rule.priority = *priority;
            c.rules.insert(arn.clone(), rule);
        }
        for (arn, _) in changes {
            let rule = c.rules[arn].clone();
            check_priority_free(c, &rule.listener_arn, rule.priority, Some(arn))?;
            ch.put_rule(c, rule.clone());
            out.push(rule);
        }
        Ok(out)
    })
}
