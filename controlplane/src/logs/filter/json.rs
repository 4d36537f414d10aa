//! JSON patterns (`{ $.user.id = 1 && $.latency > 100 }`): selectors into the
//! parsed event, the tests on what they select, and `&&`/`||`/parentheses.

use serde_json::Value;

use super::syntax::Cursor;
use super::value::Comparison;
use super::FilterPatternError;

/// Deepest parenthesis nesting accepted: keeps parsing and matching off the
/// edge of the stack whatever the pattern.
pub(super) const MAX_NESTING: usize = 32;

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Any(Vec<Expr>),
    All(Vec<Expr>),
    Condition(Condition),
}

#[derive(Debug, Clone)]
pub(super) struct Condition {
    path: Vec<Step>,
    test: Test,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    /// `.*` or `[*]`: every member of an object or element of an array.
    Each,
}

#[derive(Debug, Clone)]
enum Test {
    Compare(Comparison),
    IsTrue,
    IsFalse,
    IsNull,
    Exists,
    NotExists,
}

impl Expr {
    pub(super) fn matches(&self, event: &Value) -> bool {
        match self {
            Expr::Any(exprs) => exprs.iter().any(|e| e.matches(event)),
            Expr::All(exprs) => exprs.iter().all(|e| e.matches(event)),
            Expr::Condition(condition) => condition.matches(event),
        }
    }
}

impl Condition {
    fn matches(&self, event: &Value) -> bool {
        let path = &self.path;
        match &self.test {
            Test::NotExists => !any_selected(event, path, |_| true),
            Test::Exists => any_selected(event, path, |_| true),
            Test::IsTrue => any_selected(event, path, |v| v.as_bool() == Some(true)),
            Test::IsFalse => any_selected(event, path, |v| v.as_bool() == Some(false)),
            Test::IsNull => any_selected(event, path, Value::is_null),
            // Only strings and numbers are values to compare: an object, array,
            // boolean or null matches neither `=` nor `!=`.
            Test::Compare(cmp) => any_selected(event, path, |v| match v {
                Value::String(s) => cmp.test(s, None),
                Value::Number(n) => cmp.test(&n.to_string(), n.as_f64()),
                _ => false,
            }),
        }
    }
}

/// Whether any value the path selects satisfies `test`. Iterative, so a long
/// path cannot exhaust the stack; each wildcard step visits each child once.
fn any_selected(root: &Value, path: &[Step], test: impl Fn(&Value) -> bool) -> bool {
    let mut pending = vec![(root, 0)];
    while let Some((node, depth)) = pending.pop() {
        let Some(step) = path.get(depth) else {
            if test(node) {
                return true;
            }
            continue;
        };
        match (step, node) {
            (Step::Key(key), Value::Object(map)) => {
                pending.extend(map.get(key).map(|v| (v, depth + 1)));
            }
            (Step::Index(i), Value::Array(items)) => {
                pending.extend(items.get(*i).map(|v| (v, depth + 1)));
            }
            (Step::Each, Value::Object(map)) => {
                pending.extend(map.values().map(|v| (v, depth + 1)));
            }
            (Step::Each, Value::Array(items)) => {
                pending.extend(items.iter().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    false
}

/// Parses what lies between the braces.
pub(super) fn parse(cur: &mut Cursor<'_>) -> Result<Expr, FilterPatternError> {
    let expr = any(cur, 0)?;
    cur.skip_ws();
    if cur.peek() == Some(')') {
        return Err(FilterPatternError::Unbalanced {
            delimiter: ')',
            position: cur.here(),
        });
    }
    if !cur.at_end() {
        return Err(cur.unexpected("'&&', '||' or the closing '}'"));
    }
    Ok(expr)
}

fn any(cur: &mut Cursor<'_>, nesting: usize) -> Result<Expr, FilterPatternError> {
    let mut exprs = vec![all(cur, nesting)?];
    while {
        cur.skip_ws();
        cur.eat("||")
    } {
        exprs.push(all(cur, nesting)?);
    }
    Ok(flatten(exprs, Expr::Any))
}

fn all(cur: &mut Cursor<'_>, nesting: usize) -> Result<Expr, FilterPatternError> {
    let mut exprs = vec![operand(cur, nesting)?];
    while {
        cur.skip_ws();
        cur.eat("&&")
    } {
        exprs.push(operand(cur, nesting)?);
    }
    Ok(flatten(exprs, Expr::All))
}

fn flatten(mut exprs: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    if exprs.len() == 1 {
        exprs.pop().expect("one expression")
    } else {
        join(exprs)
    }
}

fn operand(cur: &mut Cursor<'_>, nesting: usize) -> Result<Expr, FilterPatternError> {
    cur.skip_ws();
    let open = cur.offset();
    if cur.eat("(") {
        if nesting >= MAX_NESTING {
            return Err(FilterPatternError::TooDeep {
                max: MAX_NESTING,
                position: cur.position(open),
            });
        }
        let expr = any(cur, nesting + 1)?;
        cur.skip_ws();
        if cur.eat(")") {
            return Ok(expr);
        }
        if cur.at_end() {
            return Err(FilterPatternError::Unbalanced {
                delimiter: '(',
                position: cur.position(open),
            });
        }
        return Err(cur.unexpected("'&&', '||' or ')'"));
    }
    if cur.peek() != Some('$') {
        return Err(cur.unexpected("a selector such as $.field, or '('"));
    }
    let path = selector(cur)?;
    cur.skip_ws();
    let test = match cur.operator() {
        Some(op) => Test::Compare(Comparison::new(op, cur.operand(op, stops_value)?)),
        None => keyword_test(cur)?,
    };
    Ok(Expr::Condition(Condition { path, test }))
}

fn stops_value(c: char) -> bool {
    matches!(c, ')' | '&' | '|')
}

/// `IS TRUE`, `IS FALSE`, `IS NULL`, `EXISTS` or `NOT EXISTS`, in any case.
fn keyword_test(cur: &mut Cursor<'_>) -> Result<Test, FilterPatternError> {
    let (start, first) = word(cur);
    let test = match first.as_str() {
        "EXISTS" => Test::Exists,
        "IS" => {
            let (second_at, second) = word(cur);
            match second.as_str() {
                "TRUE" => Test::IsTrue,
                "FALSE" => Test::IsFalse,
                "NULL" => Test::IsNull,
                _ => {
                    cur.rewind(second_at);
                    return Err(cur.unexpected("TRUE, FALSE or NULL after IS"));
                }
            }
        }
        "NOT" => {
            let (second_at, second) = word(cur);
            if second != "EXISTS" {
                cur.rewind(second_at);
                return Err(cur.unexpected("EXISTS after NOT"));
            }
            Test::NotExists
        }
        _ => {
            cur.rewind(start);
            return Err(cur.unexpected(
                "an operator (=, !=, <, >, <=, >=), IS TRUE, IS FALSE, IS NULL, EXISTS or NOT EXISTS",
            ));
        }
    };
    Ok(test)
}

/// The next word, upper-cased, and where it starts.
fn word(cur: &mut Cursor<'_>) -> (usize, String) {
    cur.skip_ws();
    let start = cur.offset();
    (
        start,
        cur.take_while(|c| c.is_ascii_alphabetic())
            .to_ascii_uppercase(),
    )
}

fn selector(cur: &mut Cursor<'_>) -> Result<Vec<Step>, FilterPatternError> {
    let start = cur.offset();
    let text = cur.take_while(|c| {
        !c.is_whitespace() && !matches!(c, '=' | '!' | '<' | '>' | '(' | ')' | '&' | '|')
    });
    steps(text).ok_or_else(|| FilterPatternError::InvalidSelector {
        selector: text.to_owned(),
        position: cur.position(start),
    })
}

/// `$`, then `.key`, `.*`, `[N]` or `[*]` steps; keys hold letters, digits, `_` and `-`.
fn steps(text: &str) -> Option<Vec<Step>> {
    let mut rest = text.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(".*").or_else(|| rest.strip_prefix("[*]")) {
            steps.push(Step::Each);
            rest = after;
        } else if let Some(after) = rest.strip_prefix('.') {
            let len = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(after.len());
            if len == 0 {
                return None;
            }
            steps.push(Step::Key(after[..len].to_owned()));
            rest = &after[len..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let (index, after) = after.split_once(']')?;
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            steps.push(Step::Index(index.parse().ok()?));
            rest = after;
        } else {
            return None;
        }
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(src: &str) -> Result<Expr, FilterPatternError> {
        parse(&mut Cursor::new(src, 0, src.len()))
    }

    fn matches(pattern: &str, event: &str) -> bool {
        let event: Value = serde_json::from_str(event).unwrap();
        parse_str(pattern).unwrap().matches(&event)
    }

    #[test]
    fn selectors() {
        use Step::{Each, Index, Key};
        assert_eq!(steps("$"), Some(vec![]));
        assert_eq!(
            steps("$.users[0].id"),
            Some(vec![Key("users".into()), Index(0), Key("id".into())])
        );
        assert_eq!(steps("$.coordinates[0][1]").map(|s| s.len()), Some(3));
        assert_eq!(steps("$.a-b_c.*[*]").map(|s| s.len()), Some(3));
        assert_eq!(steps("$.a.*").unwrap()[1], Each);
        assert_eq!(steps("$.名前"), Some(vec![Key("名前".into())]));
        for bad in [
            "a.b", "$.", "$a", "$.a.", "$[x]", "$[]", "$[-1]", "$[1", "$.*x", "$..a", "$.a@b",
        ] {
            assert_eq!(steps(bad), None, "{bad}");
        }
    }

    #[test]
    fn invalid_selector_is_named_with_its_position() {
        assert_eq!(
            parse_str(" $.a.@b = 1").unwrap_err(),
            FilterPatternError::InvalidSelector {
                selector: "$.a.@b".into(),
                position: 2
            }
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = r#"{"a": 1, "b": 2, "c": 3}"#;
        assert!(matches("$.a = 1 || $.b = 9 && $.c = 9", e));
        assert!(!matches("($.a = 1 || $.b = 9) && $.c = 9", e));
        assert!(matches("$.a = 9 && $.b = 9 || $.c = 3", e));
    }

    #[test]
    fn parentheses_nest() {
        let e = r#"{"a": 1}"#;
        assert!(matches("((($.a = 1)))", e));
        assert!(matches("( $.a = 2 || ( $.a = 1 ) )", e));
    }

    #[test]
    fn too_deep_nesting_is_refused() {
        let deep = format!("{}$.a = 1{}", "(".repeat(40), ")".repeat(40));
        assert!(matches!(
            parse_str(&deep).unwrap_err(),
            FilterPatternError::TooDeep {
                max: MAX_NESTING,
                ..
            }
        ));
        let ok = format!("{}$.a = 1{}", "(".repeat(30), ")".repeat(30));
        assert!(parse_str(&ok).is_ok());
    }

    #[test]
    fn unbalanced_parentheses() {
        assert_eq!(
            parse_str("($.a = 1").unwrap_err(),
            FilterPatternError::Unbalanced {
                delimiter: '(',
                position: 1
            }
        );
        assert_eq!(
            parse_str("$.a = 1)").unwrap_err(),
            FilterPatternError::Unbalanced {
                delimiter: ')',
                position: 8
            }
        );
    }

    #[test]
    fn keywords_any_case() {
        let e = r#"{"on": true, "off": false, "none": null}"#;
        assert!(matches("$.on IS TRUE", e));
        assert!(matches("$.on is true", e));
        assert!(matches("$.off IS FALSE", e));
        assert!(!matches("$.on IS FALSE", e));
        assert!(matches("$.none IS NULL", e));
        assert!(!matches("$.missing IS NULL", e));
        assert!(matches("$.none EXISTS", e));
        assert!(matches("$.missing NOT EXISTS", e));
        assert!(!matches("$.on NOT EXISTS", e));
    }

    #[test]
    fn keyword_errors() {
        for (src, expected) in [
            ("$.a IS MAYBE", "TRUE, FALSE or NULL after IS"),
            ("$.a NOT THERE", "EXISTS after NOT"),
            ("$.a IS TRUEISH", "TRUE, FALSE or NULL after IS"),
        ] {
            let err = parse_str(src).unwrap_err();
            assert!(
                matches!(err, FilterPatternError::Unexpected { expected: e, .. } if e == expected),
                "{src}: {err}"
            );
        }
        assert!(matches!(
            parse_str("$.a ~ 1").unwrap_err(),
            FilterPatternError::Unexpected { position: 5, .. }
        ));
    }

    #[test]
    fn missing_or_mistyped_values_do_not_match() {
        let e = r#"{"s": "x", "n": 5, "o": {}, "l": [1], "b": true, "z": null}"#;
        for sel in [
            "$.missing",
            "$.o",
            "$.l",
            "$.b",
            "$.z",
            "$.s.deeper",
            "$.n[0]",
        ] {
            assert!(!matches(&format!("{sel} = 5"), e), "{sel}");
            assert!(!matches(&format!("{sel} != 5"), e), "{sel}");
            assert!(!matches(&format!("{sel} > 1"), e), "{sel}");
        }
        assert!(!matches("$.s IS TRUE", e));
        assert!(!matches("$.n IS NULL", e));
    }

    #[test]
    fn numbers_compare_numerically() {
        assert!(matches("$.latency > 100", r#"{"latency": 150}"#));
        assert!(matches("$.latency > 100", r#"{"latency": 150.5}"#));
        assert!(!matches("$.latency > 100", r#"{"latency": 99.9}"#));
        assert!(!matches("$.latency > 100", r#"{"latency": "150"}"#));
        assert!(matches("$.latency = 1.5e2", r#"{"latency": 150}"#));
        assert!(matches("$.code = 400", r#"{"code": "400"}"#));
        assert!(matches("$.neg < -1", r#"{"neg": -2}"#));
    }

    #[test]
    fn wildcard_strings_match_numbers_as_written() {
        assert!(matches("$.status = 4*", r#"{"status": 404}"#));
        assert!(!matches("$.status = 4*", r#"{"status": 504}"#));
        assert!(matches("$.latency = *", r#"{"latency": 3}"#));
    }

    #[test]
    fn wildcard_selectors_match_any_child() {
        let e = r#"{"users": [{"id": 2}, {"id": 3}], "tags": {"a": "x", "b": "y"}}"#;
        assert!(matches("$.users[*].id = 3", e));
        assert!(!matches("$.users[*].id = 4", e));
        assert!(matches("$.tags.* = y", e));
        assert!(matches("$.* EXISTS", e));
        assert!(matches("$.users[*].name NOT EXISTS", e));
        assert!(!matches("$.users[*].id NOT EXISTS", e));
    }

    #[test]
    fn regex_values() {
        let e = r#"{"msg": "bind: address already in use"}"#;
        assert!(matches("$.msg = %already in use$%", e));
        assert!(!matches("$.msg != %already%", e));
    }

    #[test]
    fn values_without_spaces_around_operators() {
        let e = r#"{"a": 1, "b": "x"}"#;
        assert!(matches("$.a=1&&$.b=x", e));
        assert!(matches("($.a!=2)||($.b=y)", e));
    }

    #[test]
    fn trailing_garbage_is_reported() {
        let err = parse_str("$.a = 1 2").unwrap_err();
        assert_eq!(
            err,
            FilterPatternError::Unexpected {
                expected: "'&&', '||' or the closing '}'",
                found: "'2'".into(),
                position: 9
            }
        );
    }

    #[test]
    fn missing_selector() {
        assert!(matches!(
            parse_str("a = 1").unwrap_err(),
            FilterPatternError::Unexpected { position: 1, .. }
        ));
        assert!(matches!(
            parse_str("$.a = 1 &&").unwrap_err(),
            FilterPatternError::Unexpected { position: 11, .. }
        ));
    }

    #[test]
    fn long_paths_do_not_recurse() {
        let path = ".a".repeat(5000);
        let event = format!("{}1{}", r#"{"a":"#.repeat(100), "}".repeat(100));
        let event: Value = serde_json::from_str(&event).unwrap();
        assert!(!parse_str(&format!("${path} = 1")).unwrap().matches(&event));
    }
}
