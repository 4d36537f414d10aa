//! Space-delimited patterns (`[ip, user, ..., status = 4*, bytes > 1000]`):
//! splitting a message into fields and matching them against the pattern's
//! slots, where `...` stands for any number of fields.

use super::syntax::Cursor;
use super::value::{parse_number, Comparison};
use super::FilterPatternError;

#[derive(Debug, Clone)]
pub(super) struct Pattern {
    slots: Vec<Slot>,
}

#[derive(Debug, Clone)]
enum Slot {
    Ellipsis,
    /// One field; its conditions are alternatives (`||`) of conjunctions
    /// (`&&`), and a field without conditions takes anything.
    Field(Vec<Vec<Comparison>>),
}

impl Slot {
    fn matches(&self, field: &str) -> bool {
        match self {
            Slot::Ellipsis => true,
            Slot::Field(any) if any.is_empty() => true,
            Slot::Field(any) => {
                let number = parse_number(field);
                any.iter()
                    .any(|all| all.iter().all(|c| c.test(field, number)))
            }
        }
    }
}

impl Pattern {
    pub(super) fn matches(&self, message: &str) -> bool {
        let fields = fields(message);
        // Like a `*` glob over fields: the run before the first `...` is
        // anchored at the start, the run after the last one at the end, and the
        // runs between are placed leftmost-first (always safe, since the `...`
        // around them can absorb whatever they skip).
        let runs: Vec<&[Slot]> = self.slots.split(|s| matches!(s, Slot::Ellipsis)).collect();
        let fits =
            |run: &[Slot], fields: &[&str]| run.iter().zip(fields).all(|(s, f)| s.matches(f));
        let [first, middle @ .., last] = runs.as_slice() else {
            let run = runs.first().copied().unwrap_or_default();
            return run.len() == fields.len() && fits(run, &fields);
        };
        if fields.len() < first.len() + last.len()
            || !fits(first, &fields)
            || !fits(last, &fields[fields.len() - last.len()..])
        {
            return false;
        }
        let mut rest = &fields[first.len()..fields.len() - last.len()];
        for run in middle {
            let Some(at) = (0..=rest.len().saturating_sub(run.len()))
                .find(|&at| rest.len() >= at + run.len() && fits(run, &rest[at..]))
            else {
                return false;
            };
            rest = &rest[at + run.len()..];
        }
        true
    }
}

/// Splits on whitespace; a field that opens with `"` or `[` runs to the next
/// `"` or `]` (which may be past spaces) and is taken without them, as AWS's
/// Apache-log example shows. An unclosed one runs to the end of the message.
fn fields(message: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut rest = message.trim_start();
    while let Some(first) = rest.chars().next() {
        let close = match first {
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
        let (field, after) = match close {
            Some(close) => {
                let body = &rest[1..];
                match body.find(close) {
                    Some(at) => (&body[..at], &body[at + 1..]),
                    None => (body, ""),
                }
            }
            None => rest.split_at(rest.find(char::is_whitespace).unwrap_or(rest.len())),
        };
        fields.push(field);
        rest = after.trim_start();
    }
    fields
}

/// Parses what lies between the brackets.
pub(super) fn parse(cur: &mut Cursor<'_>) -> Result<Pattern, FilterPatternError> {
    let mut slots = Vec::new();
    loop {
        cur.skip_ws();
        // An empty slot (`[a,,b]`, or AWS's own `[..., status_code=4*,]`) is an
        // unnamed field.
        let slot = if cur.at_end() || cur.peek() == Some(',') {
            Slot::Field(Vec::new())
        } else if cur.eat("...") {
            Slot::Ellipsis
        } else {
            field(cur)?
        };
        // `..., ...` means no more than `...`.
        if !(matches!(slot, Slot::Ellipsis) && matches!(slots.last(), Some(Slot::Ellipsis))) {
            slots.push(slot);
        }
        cur.skip_ws();
        if cur.at_end() {
            return Ok(Pattern { slots });
        }
        if !cur.eat(",") {
            return Err(cur.unexpected("',' or the closing ']'"));
        }
    }
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn stops_value(c: char) -> bool {
    matches!(c, ',' | '&' | '|')
}

/// `name`, or conditions on it: `name = 4* && name != 403 || name = 200`.
fn field(cur: &mut Cursor<'_>) -> Result<Slot, FilterPatternError> {
    let name = cur.take_while(is_name);
    if name.is_empty() {
        return Err(cur.unexpected("a field name or '...'"));
    }
    cur.skip_ws();
    if cur.at_end() || cur.peek() == Some(',') {
        return Ok(Slot::Field(Vec::new()));
    }
    let mut any = Vec::new();
    let mut all = Vec::new();
    loop {
        if !all.is_empty() || !any.is_empty() {
            cur.skip_ws();
            let at = cur.offset();
            let other = cur.take_while(is_name);
            if other.is_empty() {
                return Err(cur.unexpected("a field name"));
            }
            // A slot is one field: conditions on another field would make the
            // `...` alignment a search over every combination.
            if other != name {
                return Err(FilterPatternError::ForeignField {
                    field: name.to_owned(),
                    other: other.to_owned(),
                    position: cur.position(at),
                });
            }
            cur.skip_ws();
        }
        let Some(op) = cur.operator() else {
            return Err(cur.unexpected("an operator (=, !=, <, >, <=, >=), ',' or the closing ']'"));
        };
        all.push(Comparison::new(op, cur.operand(op, stops_value)?));
        cur.skip_ws();
        if cur.eat("&&") {
            continue;
        }
        any.push(std::mem::take(&mut all));
        if !cur.eat("||") {
            return Ok(Slot::Field(any));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a pattern's inside; the brackets, when written, are left out as
    /// `FilterPattern::parse` leaves them out.
    fn parse_str(src: &str) -> Result<Pattern, FilterPatternError> {
        match src.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(_) => parse(&mut Cursor::new(src, 1, src.len() - 1)),
            None => parse(&mut Cursor::new(src, 0, src.len())),
        }
    }

    fn matches(pattern: &str, message: &str) -> bool {
        parse_str(pattern).unwrap().matches(message)
    }

    const APACHE: &str =
        r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#;

    #[test]
    fn quotes_and_brackets_group_a_field() {
        assert_eq!(
            fields(APACHE),
            [
                "127.0.0.1",
                "-",
                "frank",
                "10/Oct/2000:13:25:15 -0700",
                "GET /apache_pb.gif HTTP/1.0",
                "200",
                "1534"
            ]
        );
    }

    #[test]
    fn splitting_edge_cases() {
        assert!(fields("").is_empty());
        assert!(fields("  \t ").is_empty());
        assert_eq!(fields("  a\t b  "), ["a", "b"]);
        assert_eq!(fields(r#"a "unclosed b c"#), ["a", "unclosed b c"]);
        assert_eq!(fields("[x y] [z"), ["x y", "z"]);
        assert_eq!(fields(r#""" []"#), ["", ""]);
        assert_eq!(fields("é 日本"), ["é", "日本"]);
    }

    #[test]
    fn field_count_must_fit_without_ellipsis() {
        assert!(matches("[a, b]", "x y"));
        assert!(!matches("[a, b]", "x y z"));
        assert!(!matches("[a, b]", "x"));
    }

    #[test]
    fn ellipsis_positions() {
        assert!(matches("[..., status, bytes > 1000]", APACHE));
        assert!(matches("[ip, user, ...]", APACHE));
        assert!(matches("[ip = 127.0.0.1, ..., bytes = 1534]", APACHE));
        assert!(matches(
            "[..., frank = frank, ..., code = 200, ...]",
            APACHE
        ));
        assert!(!matches("[..., code = 404, ...]", APACHE));
        assert!(matches("[...]", ""));
        assert!(matches("[..., ...]", "a b"));
        assert!(!matches("[a, ..., b, c]", "x y"));
    }

    #[test]
    fn middle_runs_are_found_leftmost() {
        let p = "[..., a = x, b = y, ..., c = z]";
        assert!(matches(p, "x y x y z"));
        assert!(matches(p, "q x y z"));
        assert!(!matches(p, "x q y z"));
    }

    #[test]
    fn or_and_within_a_field() {
        let p = "[code = 403 || code = 404, ...]";
        assert!(matches(p, "404 x"));
        assert!(!matches(p, "500 x"));
        let p = "[code = 4* && code != 403, ...]";
        assert!(matches(p, "404 x"));
        assert!(!matches(p, "403 x"));
        // && binds tighter than ||.
        let p = "[n = 1 || n > 5 && n < 7]";
        assert!(matches(p, "1") && matches(p, "6") && !matches(p, "8"));
    }

    #[test]
    fn numbers_and_strings() {
        assert!(matches("[n > 100]", "150.5"));
        assert!(!matches("[n > 100]", "abc"));
        assert!(matches("[n = 200]", "200.0"));
        assert!(matches("[n != 200]", "abc"));
        assert!(matches("[m = \"GET *\"]", "\"GET /x\""));
        assert!(matches("[m = %^GET%]", "[GET /x]"));
    }

    #[test]
    fn empty_slots_are_unnamed_fields() {
        assert!(matches("[a,,c]", "1 2 3"));
        assert!(matches("[a, b,]", "1 2 3"));
        assert!(!matches("[a, b,]", "1 2"));
    }

    #[test]
    fn a_condition_on_another_field_is_refused() {
        assert_eq!(
            parse_str("status = 4* && bytes > 1000").unwrap_err(),
            FilterPatternError::ForeignField {
                field: "status".into(),
                other: "bytes".into(),
                position: 16
            }
        );
    }

    #[test]
    fn syntax_errors() {
        assert!(matches!(
            parse_str("ip user").unwrap_err(),
            FilterPatternError::Unexpected { position: 4, .. }
        ));
        assert!(matches!(
            parse_str("ip, =1").unwrap_err(),
            FilterPatternError::Unexpected { position: 5, .. }
        ));
        assert!(matches!(
            parse_str("a > big").unwrap_err(),
            FilterPatternError::NotANumber { .. }
        ));
        assert!(matches!(
            parse_str("a = x &&").unwrap_err(),
            FilterPatternError::Unexpected { .. }
        ));
        assert!(matches!(
            parse_str("....").unwrap_err(),
            FilterPatternError::Unexpected { .. }
        ));
    }
}
