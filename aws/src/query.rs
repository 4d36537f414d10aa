//! The AWS query protocol's input: a form-encoded `Action=..&Version=..&A.B=..` body, and
//! its parameters as a nested JSON value (`Names.member.1=a` becomes `{"Names": ["a"]}`) so
//! a service can read them with the same serde types as JSON input. Every scalar stays a
//! string: the query protocol carries no types.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::AwsError;

/// A query request's parameters, `Action` and `Version` taken out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    pub action: String,
    pub version: String,
    /// The rest, in wire order.
    pub params: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes a form body (or a GET's query string).
    pub fn parse(form: &[u8]) -> Self {
        let mut out = Self::default();
        for (name, value) in form_urlencoded::parse(form) {
            match &*name {
                "Action" => out.action = value.into_owned(),
                "Version" => out.version = value.into_owned(),
                _ => out.params.push((name.into_owned(), value.into_owned())),
            }
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The parameters as one JSON object: `.` nests, `member.N` (and a map's `entry.N`) is
    /// the Nth item of a list, ordered by N.
    pub fn to_value(&self) -> Result<Value, AwsError> {
        let mut root = Node::Object(BTreeMap::new());
        for (name, value) in &self.params {
            root.insert(name, name.split('.'), value.clone())?;
        }
        Ok(root.into_value())
    }
}

enum Node {
    Leaf(String),
    Object(BTreeMap<String, Node>),
    List(BTreeMap<u32, Node>),
}

fn malformed(name: &str) -> AwsError {
    AwsError::client(
        "MalformedQueryString",
        format!("Query parameter '{name}' conflicts with another parameter's structure."),
    )
}

impl Node {
    fn insert<'a>(
        &mut self,
        name: &str,
        mut path: impl Iterator<Item = &'a str>,
        value: String,
    ) -> Result<(), AwsError> {
        let Some(segment) = path.next() else {
            return match self {
                Node::Object(m) if m.is_empty() => {
                    *self = Node::Leaf(value);
                    Ok(())
                }
                _ => Err(malformed(name)),
            };
        };
        if segment == "member" || segment == "entry" {
            let index = path
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| malformed(name))?;
            if matches!(self, Node::Object(m) if m.is_empty()) {
                *self = Node::List(BTreeMap::new());
            }
            let Node::List(items) = self else {
                return Err(malformed(name));
            };
            return items
                .entry(index)
                .or_insert_with(|| Node::Object(BTreeMap::new()))
                .insert(name, path, value);
        }
        let Node::Object(members) = self else {
            return Err(malformed(name));
        };
        members
            .entry(segment.to_owned())
            .or_insert_with(|| Node::Object(BTreeMap::new()))
            .insert(name, path, value)
    }

    fn into_value(self) -> Value {
        match self {
            Node::Leaf(s) => Value::String(s),
            Node::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k, v.into_value()))
                    .collect::<Map<_, _>>(),
            ),
            Node::List(items) => Value::Array(items.into_values().map(Node::into_value).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn action_and_version_come_out_and_the_rest_nests() {
        let q = QueryParams::parse(
            b"Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.2=api&Names.member.1=web+1\
              &Tags.member.1.Key=team&Tags.member.1.Value=a%26b&PageSize=5\
              &Attributes.entry.1.key=k&Attributes.entry.1.value=v",
        );
        assert_eq!(q.action, "DescribeLoadBalancers");
        assert_eq!(q.version, "2015-12-01");
        assert_eq!(q.get("PageSize"), Some("5"));
        assert_eq!(
            q.to_value().unwrap(),
            json!({
                "Names": ["web 1", "api"],
                "Tags": [{"Key": "team", "Value": "a&b"}],
                "PageSize": "5",
                "Attributes": [{"key": "k", "value": "v"}],
            })
        );
    }

    #[test]
    fn conflicting_shapes_are_refused_by_name() {
        for form in [
            &b"A=1&A.B=2"[..],
            b"A.B=2&A=1",
            b"A.member.1=x&A.B=2",
            b"A.member.x=1",
            b"A.member=1",
        ] {
            let e = QueryParams::parse(form).to_value().unwrap_err();
            assert_eq!(e.code, "MalformedQueryString", "{form:?}");
            assert!(e.message.contains("parameter 'A"), "{}", e.message);
        }
    }
}
