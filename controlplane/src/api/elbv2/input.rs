//! Reading ELBv2's query-protocol input: the edge hands it over as nested JSON whose
//! scalars are all strings (`Port=80` is `"80"`), so numbers and booleans are parsed here,
//! with ELB's `ValidationError` when they do not parse.

use std::str::FromStr;

use serde_json::Value;

use crate::lb::model::{Action, Condition, Redirect};
use crate::lb::LbError;

/// A string member.
pub fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A required string member.
pub fn required(v: &Value, key: &str) -> Result<String, LbError> {
    string(v, key).filter(|s| !s.is_empty()).ok_or_else(|| {
        LbError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(key)
        ))
    })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// A number (or boolean) member.
pub fn parsed<T: FromStr>(v: &Value, key: &str) -> Result<Option<T>, LbError> {
    match v.get(key).and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| LbError::validation(format!("'{s}' is not a valid value for {key}."))),
    }
}

/// A list of strings (`Names.member.N`).
pub fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A list of structures.
pub fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub fn tags(v: &Value) -> Vec<(String, String)> {
    items(v, "Tags")
        .iter()
        .filter_map(|t| Some((string(t, "Key")?, string(t, "Value").unwrap_or_default())))
        .collect()
}

/// `Targets.member.N.Id` / `.Port`.
pub fn targets(v: &Value) -> Result<Vec<(String, Option<u16>)>, LbError> {
    items(v, "Targets")
        .iter()
        .map(|t| Ok((required(t, "Id")?, parsed(t, "Port")?)))
        .collect()
}

/// Actions, ordered by `Order` when given.
pub fn actions(v: &Value, key: &str) -> Result<Vec<Action>, LbError> {
    let mut out: Vec<(u32, Action)> = Vec::new();
    for (i, a) in items(v, key).iter().enumerate() {
        let order = parsed::<u32>(a, "Order")?.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX));
        out.push((order, action(a)?));
    }
    out.sort_by_key(|(order, _)| *order);
    Ok(out.into_iter().map(|(_, a)| a).collect())
}

fn action(a: &Value) -> Result<Action, LbError> {
    let kind = required(a, "Type")?;
    match kind.as_str() {
        "forward" => {
            let mut groups: Vec<(String, u32)> = Vec::new();
            if let Some(config) = a.get("ForwardConfig") {
                for g in items(config, "TargetGroups") {
                    groups.push((required(g, "TargetGroupArn")?, parsed(g, "Weight")?.unwrap_or(1)));
                }
            }
            if let Some(arn) = string(a, "TargetGroupArn") {
                if !groups.iter().any(|(g, _)| *g == arn) {
                    groups.insert(0, (arn, 1));
                }
            }
            Ok(Action::Forward(groups))
        }
        "redirect" => {
            let c = a.get("RedirectConfig").ok_or_else(|| {
                LbError::validation("A redirect action must have a RedirectConfig.")
            })?;
            Ok(Action::Redirect(Redirect {
                protocol: string(c, "Protocol").unwrap_or_else(|| "#{protocol}".into()),
                port: string(c, "Port").unwrap_or_else(|| "#{port}".into()),
                host: string(c, "Host").unwrap_or_else(|| "#{host}".into()),
                path: string(c, "Path").unwrap_or_else(|| "/#{path}".into()),
                query: string(c, "Query").unwrap_or_else(|| "#{query}".into()),
                status_code: required(c, "StatusCode")?,
            }))
        }
        "fixed-response" => {
            let c = a.get("FixedResponseConfig").ok_or_else(|| {
                LbError::validation("A fixed-response action must have a FixedResponseConfig.")
            })?;
            Ok(Action::FixedResponse {
                status_code: required(c, "StatusCode")?,
                content_type: string(c, "ContentType"),
                body: string(c, "MessageBody"),
            })
        }
        other => Err(LbError::new(
            "InvalidLoadBalancerAction",
            format!("Action type '{other}' is not served by Berth: use forward, redirect or fixed-response."),
        )),
    }
}

/// Rule conditions: the older `Field` + `Values` form or the per-field configs.
pub fn conditions(v: &Value) -> Result<Vec<Condition>, LbError> {
    items(v, "Conditions").iter().map(condition).collect()
}

fn condition(c: &Value) -> Result<Condition, LbError> {
    let field = required(c, "Field")?;
    let values = |config: &str| {
        let mut out = strings(c, "Values");
        if let Some(cfg) = c.get(config) {
            out.extend(strings(cfg, "Values"));
        }
        out
    };
    Ok(match field.as_str() {
        "path-pattern" => Condition::PathPattern(values("PathPatternConfig")),
        "host-header" => Condition::HostHeader(values("HostHeaderConfig")),
        "http-request-method" => Condition::HttpRequestMethod(values("HttpRequestMethodConfig")),
        "source-ip" => Condition::SourceIp(values("SourceIpConfig")),
        "http-header" => {
            let cfg = c.get("HttpHeaderConfig").ok_or_else(|| {
                LbError::validation("An http-header condition must have an HttpHeaderConfig.")
            })?;
            Condition::HttpHeader {
                name: required(cfg, "HttpHeaderName")?,
                values: strings(cfg, "Values"),
            }
        }
        "query-string" => {
            let cfg = c.get("QueryStringConfig").ok_or_else(|| {
                LbError::validation("A query-string condition must have a QueryStringConfig.")
            })?;
            Condition::QueryString(
                items(cfg, "Values")
                    .iter()
                    .map(|p| Ok((string(p, "Key"), required(p, "Value")?)))
                    .collect::<Result<_, LbError>>()?,
            )
        }
        other => {
            return Err(LbError::validation(format!(
                "Condition field '{other}' is not valid: use path-pattern, host-header, http-header, query-string, http-request-method or source-ip."
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn actions_read_both_forward_forms_and_keep_their_order() {
        let v = json!({"DefaultActions": [
            {"Type": "fixed-response", "Order": "2", "FixedResponseConfig": {"StatusCode": "404"}},
            {"Type": "forward", "Order": "1", "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": "blue", "Weight": "90"}, {"TargetGroupArn": "green", "Weight": "10"}]}},
        ]});
        let a = actions(&v, "DefaultActions").unwrap();
        assert_eq!(
            a[0],
            Action::Forward(vec![("blue".into(), 90), ("green".into(), 10)])
        );
        assert!(matches!(a[1], Action::FixedResponse { .. }));
        let single = json!({"A": [{"Type": "forward", "TargetGroupArn": "tg"}]});
        assert_eq!(
            actions(&single, "A").unwrap(),
            vec![Action::Forward(vec![("tg".into(), 1)])]
        );
    }

    #[test]
    fn conditions_read_values_and_configs() {
        let v = json!({"Conditions": [
            {"Field": "path-pattern", "Values": ["/api/*"]},
            {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}},
        ]});
        assert_eq!(
            conditions(&v).unwrap(),
            vec![
                Condition::PathPattern(vec!["/api/*".into()]),
                Condition::HostHeader(vec!["api.example.com".into()])
            ]
        );
        let bad = json!({"Conditions": [{"Field": "cookie"}]});
        assert_eq!(conditions(&bad).unwrap_err().code, "ValidationError");
    }

    #[test]
    fn numbers_that_do_not_parse_are_validation_errors() {
        let v = json!({"Port": "http"});
        assert_eq!(
            parsed::<u16>(&v, "Port").unwrap_err().code,
            "ValidationError"
        );
        assert_eq!(parsed::<u16>(&json!({}), "Port").unwrap(), None);
    }
}
