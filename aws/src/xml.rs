//! The AWS query protocol's XML: a result rendered from JSON-shaped values, and the error
//! document. Lists are `<member>` elements (no service Berth speaks query for flattens them).

use std::fmt::Write as _;

use serde_json::Value;

use crate::error::AwsError;

/// `<{action}Response xmlns=..><{action}Result>..</{action}Result><ResponseMetadata>..`.
/// `result` is an object whose members become elements; nulls are left out.
pub fn response(action: &str, xmlns: &str, request_id: &str, result: &Value) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = write!(out, r#"<{action}Response xmlns="{}">"#, escape(xmlns));
    let _ = write!(out, "<{action}Result>");
    if let Value::Object(members) = result {
        for (name, value) in members {
            element(&mut out, name, value);
        }
    }
    let _ = write!(
        out,
        "</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        escape(request_id)
    );
    out
}

/// The query protocol's error document, as botocore's `QueryParser` reads it.
pub fn error(e: &AwsError, request_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>"#,
        e.fault(),
        escape(e.code_for_query()),
        escape(&e.message),
        escape(request_id)
    )
}

fn element(out: &mut String, name: &str, value: &Value) {
    if value.is_null() {
        return;
    }
    let _ = write!(out, "<{name}>");
    content(out, value);
    let _ = write!(out, "</{name}>");
}

fn content(out: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&escape(s)),
        Value::Array(items) => {
            for item in items {
                element(out, "member", item);
            }
        }
        Value::Object(members) => {
            for (name, v) in members {
                element(out, name, v);
            }
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn results_nest_lists_as_members_and_escape_text() {
        let result = json!({
            "LoadBalancers": [{"LoadBalancerName": "a<b", "Port": 80, "Internal": false}],
            "NextMarker": null,
            "Empty": [],
        });
        assert_eq!(
            response("DescribeLoadBalancers", "urn:x", "req-1", &result),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<DescribeLoadBalancersResponse xmlns="urn:x"><DescribeLoadBalancersResult>"#,
                "<Empty></Empty>",
                "<LoadBalancers><member><Internal>false</Internal>",
                "<LoadBalancerName>a&lt;b</LoadBalancerName><Port>80</Port></member></LoadBalancers>",
                "</DescribeLoadBalancersResult>",
                "<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>",
                "</DescribeLoadBalancersResponse>"
            )
        );
    }

    #[test]
    fn errors_say_whose_fault_and_prefer_the_query_code() {
        let e = AwsError::unknown_operation("no \"such\" thing & more");
        assert_eq!(
            error(&e, "r"),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error>"#,
                "<Type>Sender</Type><Code>InvalidAction</Code>",
                "<Message>no &quot;such&quot; thing &amp; more</Message>",
                "</Error><RequestId>r</RequestId></ErrorResponse>"
            )
        );
        assert!(error(&AwsError::internal("x"), "r").contains("<Type>Receiver</Type>"));
    }
}
