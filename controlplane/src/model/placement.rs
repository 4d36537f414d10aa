//! Placement strategies and constraints as a task records them: validated
//! from ECS's `{type, field}` and `{type, expression}` pairs, stored in that
//! same raw form so the stored task reads like the request.

use serde::{Deserialize, Serialize};

use super::query::Expression;

/// At most this many strategies per request, as in ECS.
pub const MAX_STRATEGIES: usize = 5;
/// At most this many constraints per request, as in ECS.
pub const MAX_CONSTRAINTS: usize = 10;
/// ECS's limit on a `memberOf` expression.
pub const MAX_EXPRESSION_LEN: usize = 2000;

/// Which resource `binpack` packs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Memory,
}

/// What `spread` balances the task group's count over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// `instanceId` (or `host`): one bucket per instance.
    InstanceId,
    /// `attribute:NAME`: one bucket per value (instances without it share one).
    Attribute(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawStrategy", into = "RawStrategy")]
pub enum PlacementStrategy {
    /// Fewest remaining units of the resource first.
    Binpack(Resource),
    /// Fewest tasks of the same group first.
    Spread(SpreadField),
    /// Any candidate, chosen with the RNG handed to the scheduler.
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConstraint", into = "RawConstraint")]
pub enum PlacementConstraint {
    /// No two tasks of the group on one instance.
    DistinctInstance,
    /// Only instances the expression selects.
    MemberOf(Expression),
}

/// ECS's `PlacementStrategy` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RawStrategy {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub field: Option<String>,
}

/// ECS's `PlacementConstraint` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RawConstraint {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub expression: Option<String>,
}

impl TryFrom<RawStrategy> for PlacementStrategy {
    type Error = String;

    fn try_from(raw: RawStrategy) -> Result<Self, String> {
        let field = raw.field.as_deref().map(str::trim);
        match raw.kind.as_deref() {
            Some("random") => Ok(Self::Random),
            Some("binpack") => match field.map(str::to_ascii_lowercase).as_deref() {
                Some("cpu") => Ok(Self::Binpack(Resource::Cpu)),
                Some("memory") => Ok(Self::Binpack(Resource::Memory)),
                _ => Err(format!(
                    "The binpack placement strategy field must be cpu or memory, got {}.",
                    shown(field)
                )),
            },
            Some("spread") => match field {
                Some(f)
                    if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") =>
                {
                    Ok(Self::Spread(SpreadField::InstanceId))
                }
                Some(f) => match f.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                        Ok(Self::Spread(SpreadField::Attribute(name.to_string())))
                    }
                    _ => Err(spread_field(Some(f))),
                },
                None => Err(spread_field(None)),
            },
            other => Err(format!(
                "The placement strategy type {} is not valid; use random, spread or binpack.",
                shown(other)
            )),
        }
    }
}

fn shown(s: Option<&str>) -> String {
    s.map_or_else(|| "(none)".into(), |s| format!("'{s}'"))
}

fn spread_field(f: Option<&str>) -> String {
    format!(
        "The spread placement strategy field must be instanceId, host or attribute:NAME, got {}.",
        shown(f)
    )
}

impl From<PlacementStrategy> for RawStrategy {
    fn from(s: PlacementStrategy) -> Self {
        let (kind, field) = match s {
            PlacementStrategy::Random => ("random", None),
            PlacementStrategy::Binpack(Resource::Cpu) => ("binpack", Some("cpu".into())),
            PlacementStrategy::Binpack(Resource::Memory) => ("binpack", Some("memory".into())),
            PlacementStrategy::Spread(SpreadField::InstanceId) => {
                ("spread", Some("instanceId".into()))
            }
            PlacementStrategy::Spread(SpreadField::Attribute(a)) => {
                ("spread", Some(format!("attribute:{a}")))
            }
        };
        Self {
            kind: Some(kind.into()),
            field,
        }
    }
}

impl TryFrom<RawConstraint> for PlacementConstraint {
    type Error = String;

    fn try_from(raw: RawConstraint) -> Result<Self, String> {
        match (raw.kind.as_deref(), raw.expression) {
            (Some("distinctInstance"), None) => Ok(Self::DistinctInstance),
            (Some("distinctInstance"), Some(e)) if e.trim().is_empty() => {
                Ok(Self::DistinctInstance)
            }
            (Some("distinctInstance"), Some(_)) => Err(
                "A distinctInstance placement constraint takes no expression; use memberOf for one."
                    .into(),
            ),
            (Some("memberOf"), Some(e)) if e.len() > MAX_EXPRESSION_LEN => Err(format!(
                "A memberOf expression must be at most {MAX_EXPRESSION_LEN} characters, got {}.",
                e.len()
            )),
            (Some("memberOf"), Some(e)) => Ok(Self::MemberOf(Expression::parse(&e)?)),
            (Some("memberOf"), None) => {
                Err("A memberOf placement constraint needs an expression.".into())
            }
            (other, _) => Err(format!(
                "The placement constraint type {} is not valid; use distinctInstance or memberOf.",
                shown(other)
            )),
        }
    }
}

impl From<PlacementConstraint> for RawConstraint {
    fn from(c: PlacementConstraint) -> Self {
        match c {
            PlacementConstraint::DistinctInstance => Self {
                kind: Some("distinctInstance".into()),
                expression: None,
            },
            PlacementConstraint::MemberOf(e) => Self {
                kind: Some("memberOf".into()),
                expression: Some(e.source().to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(kind: &str, field: Option<&str>) -> Result<PlacementStrategy, String> {
        PlacementStrategy::try_from(RawStrategy {
            kind: Some(kind.into()),
            field: field.map(Into::into),
        })
    }

    fn constraint(kind: &str, expr: Option<&str>) -> Result<PlacementConstraint, String> {
        PlacementConstraint::try_from(RawConstraint {
            kind: Some(kind.into()),
            expression: expr.map(Into::into),
        })
    }

    #[test]
    fn strategies_validate_their_field() {
        assert_eq!(
            strategy("binpack", Some("memory")),
            Ok(PlacementStrategy::Binpack(Resource::Memory))
        );
        assert_eq!(
            strategy("binpack", Some("CPU")),
            Ok(PlacementStrategy::Binpack(Resource::Cpu))
        );
        assert_eq!(
            strategy("spread", Some("host")),
            Ok(PlacementStrategy::Spread(SpreadField::InstanceId))
        );
        assert_eq!(
            strategy("spread", Some("attribute:ecs.availability-zone")),
            Ok(PlacementStrategy::Spread(SpreadField::Attribute(
                "ecs.availability-zone".into()
            )))
        );
        assert_eq!(strategy("random", None), Ok(PlacementStrategy::Random));
        assert!(strategy("binpack", Some("disk"))
            .unwrap_err()
            .contains("'disk'"));
        assert!(strategy("binpack", None)
            .unwrap_err()
            .contains("cpu or memory"));
        assert!(strategy("spread", None).unwrap_err().contains("instanceId"));
        assert!(strategy("spread", Some("attribute:")).is_err());
        assert!(strategy("pack", None).unwrap_err().contains("'pack'"));
    }

    #[test]
    fn constraints_validate_their_expression() {
        assert_eq!(
            constraint("distinctInstance", None),
            Ok(PlacementConstraint::DistinctInstance)
        );
        assert!(constraint("distinctInstance", Some("attribute:a exists")).is_err());
        assert!(constraint("memberOf", None)
            .unwrap_err()
            .contains("needs an expression"));
        let e = constraint("memberOf", Some("attribute:a in [b")).unwrap_err();
        assert!(e.contains("'attribute:a in [b'"), "{e}");
        let long = format!("attribute:a == {}", "b".repeat(MAX_EXPRESSION_LEN));
        assert!(constraint("memberOf", Some(&long))
            .unwrap_err()
            .contains("2000"));
        assert!(constraint("affinity", None)
            .unwrap_err()
            .contains("'affinity'"));
    }

    #[test]
    fn stored_in_ecs_shape_and_read_back() {
        let s = vec![
            strategy("spread", Some("attribute:ecs.availability-zone")).unwrap(),
            strategy("binpack", Some("memory")).unwrap(),
            strategy("random", None).unwrap(),
        ];
        let c = vec![
            constraint("distinctInstance", None).unwrap(),
            constraint("memberOf", Some("attribute:ecs.instance-type =~ t2.*")).unwrap(),
        ];
        let json = serde_json::to_value((&s, &c)).unwrap();
        assert_eq!(
            json[1][1],
            serde_json::json!({"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"})
        );
        assert_eq!(json[0][0]["field"], "attribute:ecs.availability-zone");
        let back: (Vec<PlacementStrategy>, Vec<PlacementConstraint>) =
            serde_json::from_value(json).unwrap();
        assert_eq!(back, (s, c));
    }
}
