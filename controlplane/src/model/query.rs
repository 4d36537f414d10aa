//! The simple forms of ECS's cluster query language, for
//! `ListContainerInstances` `filter`: `attribute:NAME == VALUE`,
//! `attribute:NAME != VALUE` and `attribute:NAME exists`.

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    Equals { attribute: String, value: String },
    NotEquals { attribute: String, value: String },
    Exists { attribute: String },
}

fn unsupported(expr: &str) -> String {
    format!(
        "The filter expression '{expr}' is not supported: Berth understands \
         'attribute:NAME == VALUE', 'attribute:NAME != VALUE' and 'attribute:NAME exists'."
    )
}

/// A name or value: non-empty, no whitespace (compound expressions such as
/// `a == b and c exists` are not supported, and must not half-match).
fn token(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && !s.contains(char::is_whitespace)).then(|| s.to_string())
}

impl Expression {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let rest = expr
            .trim()
            .strip_prefix("attribute:")
            .ok_or_else(|| unsupported(expr))?;
        let parsed = if let Some((name, value)) = rest.split_once("==") {
            token(name)
                .zip(token(value))
                .map(|(attribute, value)| Self::Equals { attribute, value })
        } else if let Some((name, value)) = rest.split_once("!=") {
            token(name)
                .zip(token(value))
                .map(|(attribute, value)| Self::NotEquals { attribute, value })
        } else {
            rest.trim_end()
                .strip_suffix(" exists")
                .and_then(token)
                .map(|attribute| Self::Exists { attribute })
        };
        parsed.ok_or_else(|| unsupported(expr))
    }

    /// Whether a resource with these attributes (name, optional value) matches.
    pub fn matches(&self, attributes: &[(String, Option<String>)]) -> bool {
        let value_of = |name: &str| attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        match self {
            Self::Equals { attribute, value } => {
                value_of(attribute).is_some_and(|v| v.as_deref() == Some(value))
            }
            Self::NotEquals { attribute, value } => {
                value_of(attribute).is_none_or(|v| v.as_deref() != Some(value))
            }
            Self::Exists { attribute } => value_of(attribute).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Vec<(String, Option<String>)> {
        vec![
            ("ecs.instance-type".into(), Some("t2.micro".into())),
            ("ecs.capability.task-eni".into(), None),
        ]
    }

    #[test]
    fn simple_forms_parse_and_match() {
        let e = Expression::parse("attribute:ecs.instance-type == t2.micro").unwrap();
        assert!(e.matches(&attrs()));
        let e = Expression::parse("attribute:ecs.instance-type==t3.large").unwrap();
        assert!(!e.matches(&attrs()));
        let e = Expression::parse(" attribute:ecs.instance-type != t3.large ").unwrap();
        assert!(e.matches(&attrs()));
        let e = Expression::parse("attribute:ecs.capability.task-eni exists").unwrap();
        assert!(e.matches(&attrs()));
        let e = Expression::parse("attribute:stack exists").unwrap();
        assert!(!e.matches(&attrs()));
        // A value-less attribute never equals a value.
        let e = Expression::parse("attribute:ecs.capability.task-eni == x").unwrap();
        assert!(!e.matches(&attrs()));
    }

    #[test]
    fn other_forms_are_refused_by_name() {
        for bad in [
            "attribute:a == b and attribute:c exists",
            "attribute:ecs.instance-type in [t2.micro, t2.small]",
            "task:group == web",
            "attribute: == x",
            "attribute:a ==",
            "attribute:a",
            "",
        ] {
            let e = Expression::parse(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }
}
