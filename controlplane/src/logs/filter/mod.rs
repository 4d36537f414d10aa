//! CloudWatch Logs filter patterns: parsing the `filterPattern` that
//! `FilterLogEvents`, metric and subscription filters and `aws logs tail
//! --filter-pattern` take, and matching log event messages against it.
//!
//! Four kinds, told apart by the first character: `{ ... }` JSON, `[ ... ]`
//! space-delimited, `%...%` regex, and otherwise unstructured terms. Parsing
//! does all the checking; matching never fails, and costs about the length of
//! the message times the size of the pattern.

mod delimited;
mod json;
mod syntax;
mod terms;
mod value;

use regex::Regex;
use serde_json::Value;

use syntax::Cursor;

/// The longest `filterPattern` CloudWatch Logs accepts, in characters.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// A parsed CloudWatch Logs filter pattern.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// An empty pattern: every event matches.
    All,
    Terms(terms::Terms),
    Regex(Regex),
    Json(json::Expr),
    Delimited(delimited::Pattern),
}

/// Why a filter pattern is invalid. The message is what `InvalidParameterException`
/// shows; positions are 1-based and count characters of the pattern as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterPatternError {
    #[error("Invalid filter pattern: it is {length} characters long; the limit is {max}")]
    TooLong { length: usize, max: usize },
    /// A bare term or value holding characters that only quoted text may hold.
    #[error(
        "Invalid filter pattern: '{text}' at position {position} must be in double quotes \
         (unquoted terms hold only letters, digits and '_')"
    )]
    Unquoted { text: String, position: usize },
    /// An opening `{ [ ( " %` without its closing partner, or a stray closing one.
    #[error("Invalid filter pattern: unbalanced '{delimiter}' at position {position}")]
    Unbalanced { delimiter: char, position: usize },
    #[error("Invalid filter pattern: expected {expected} at position {position}, found {found}")]
    Unexpected {
        expected: &'static str,
        /// The offending token, quoted, or "the end of the pattern".
        found: String,
        position: usize,
    },
    #[error(
        "Invalid filter pattern: selector '{selector}' at position {position} is not valid; \
         write it like $.field, $.list[0].field, $.list[*] or $.*"
    )]
    InvalidSelector { selector: String, position: usize },
    /// `<`, `>`, `<=` or `>=` with something other than a number after it.
    #[error(
        "Invalid filter pattern: '{operator}' compares numbers, but {value} at position \
         {position} is not a number"
    )]
    NotANumber {
        operator: &'static str,
        value: String,
        position: usize,
    },
    #[error(
        "Invalid filter pattern: regex '{regex}' at position {position} is not valid: {reason}"
    )]
    InvalidRegex {
        regex: String,
        position: usize,
        reason: String,
    },
    /// `{ }`, `[ ]` or `%%`: a pattern kind with nothing inside.
    #[error("Invalid filter pattern: the {what} at position {position} is empty")]
    Empty { what: &'static str, position: usize },
    #[error(
        "Invalid filter pattern: parentheses nest more than {max} deep at position {position}"
    )]
    TooDeep { max: usize, position: usize },
    /// A space-delimited slot whose conditions name a second field.
    #[error(
        "Invalid filter pattern: the condition on '{other}' at position {position} is inside \
         the field '{field}'; separate fields with ','"
    )]
    ForeignField {
        field: String,
        other: String,
        position: usize,
    },
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<Self, FilterPatternError> {
        let length = pattern.chars().count();
        if length > MAX_PATTERN_CHARS {
            return Err(FilterPatternError::TooLong {
                length,
                max: MAX_PATTERN_CHARS,
            });
        }
        let start = pattern.len() - pattern.trim_start().len();
        let end = pattern.trim_end().len();
        if start >= end {
            return Ok(Self { kind: Kind::All });
        }
        let mut whole = Cursor::new(pattern, start, end);
        let kind = match pattern[start..end].chars().next() {
            Some('{') => Kind::Json(json::parse(&mut enclosed(
                &whole,
                '{',
                '}',
                "JSON pattern",
            )?)?),
            Some('[') => Kind::Delimited(delimited::parse(&mut enclosed(
                &whole,
                '[',
                ']',
                "space-delimited pattern",
            )?)?),
            Some('%') => {
                let regex = whole.regex()?;
                whole.skip_ws();
                if !whole.at_end() {
                    return Err(whole.unexpected("nothing after a regex's closing '%'"));
                }
                Kind::Regex(regex)
            }
            _ => Kind::Terms(terms::parse(&mut whole)?),
        };
        Ok(Self { kind })
    }

    /// Whether a log event's message matches.
    pub fn matches(&self, message: &str) -> bool {
        match &self.kind {
            Kind::All => true,
            Kind::Terms(terms) => terms.matches(message),
            Kind::Regex(regex) => regex.is_match(message),
            // An event that is not JSON cannot match a JSON pattern.
            Kind::Json(expr) => {
                serde_json::from_str::<Value>(message).is_ok_and(|v| expr.matches(&v))
            }
            Kind::Delimited(pattern) => pattern.matches(message),
        }
    }
}

/// The cursor over what lies between `open` (the cursor's first character) and
/// `close` (its last).
fn enclosed<'a>(
    whole: &Cursor<'a>,
    open: char,
    close: char,
    what: &'static str,
) -> Result<Cursor<'a>, FilterPatternError> {
    let start = whole.offset();
    let rest = whole.rest();
    if rest.len() < 2 || !rest.ends_with(close) {
        return Err(FilterPatternError::Unbalanced {
            delimiter: open,
            position: whole.here(),
        });
    }
    let inner = Cursor::new(
        whole.source(),
        start + open.len_utf8(),
        start + rest.len() - close.len_utf8(),
    );
    if inner.rest().trim().is_empty() {
        return Err(FilterPatternError::Empty {
            what,
            position: whole.here(),
        });
    }
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn matches(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .matches(message)
    }

    fn error(pattern: &str) -> FilterPatternError {
        FilterPattern::parse(pattern).expect_err(pattern)
    }

    // The examples below come from AWS's CloudWatch Logs user guide, "Filter and
    // Pattern Syntax" (awsdocs/amazon-cloudwatch-logs-user-guide,
    // doc_source/FilterAndPatternSyntax.md); each test names its section.

    /// "Matching Terms in Log Events", example 1.
    #[test]
    fn doc_empty_pattern_matches_everything() {
        for pattern in ["", "   ", "\t\n"] {
            assert!(matches(pattern, "anything"));
            assert!(matches(pattern, ""));
        }
    }

    /// "Matching Terms in Log Events", examples 2 and 3.
    #[test]
    fn doc_single_term_and_exclusion() {
        assert!(matches("ERROR", "[ERROR] A fatal exception has occurred"));
        assert!(matches("ERROR", "Exiting with ERRORCODE: -1"));
        assert!(matches(
            r#""ERROR" - "Exiting""#,
            "[ERROR] A fatal exception has occurred"
        ));
        assert!(!matches(
            r#""ERROR" - "Exiting""#,
            "Exiting with ERRORCODE: -1"
        ));
    }

    /// "Matching Terms in Log Events", example 4.
    #[test]
    fn doc_multiple_terms() {
        assert!(matches(
            "ERROR Exception",
            "[ERROR] Caught IllegalArgumentException"
        ));
        assert!(matches("ERROR Exception", "[ERROR] Unhandled Exception"));
        assert!(!matches("ERROR Exception", "[ERROR] Unhandled failure"));
        for pattern in [
            "Failed to process the request",
            r#""Failed to process the request""#,
        ] {
            assert!(matches(pattern, "[WARN] Failed to process the request"));
            assert!(matches(
                pattern,
                "[ERROR] Unable to continue: Failed to process the request"
            ));
        }
        assert!(!matches(
            r#""Failed to process the request""#,
            "request Failed to process"
        ));
    }

    const OR_EVENTS: [&str; 3] = ["ERROR WARN message", "ERROR message", "WARN message"];

    fn which(pattern: &str) -> Vec<usize> {
        let parsed = FilterPattern::parse(pattern).unwrap();
        (1..=3)
            .filter(|i| parsed.matches(OR_EVENTS[i - 1]))
            .collect()
    }

    /// "OR Pattern Matching", text filters.
    #[test]
    fn doc_or_terms() {
        assert_eq!(which("ERROR"), [1, 2]);
        assert_eq!(which("?ERROR ?WARN"), [1, 2, 3]);
        assert_eq!(which("ERROR WARN"), [1]);
        assert_eq!(which("ERROR -WARN"), [2]);
    }

    /// "OR Pattern Matching", space-delimited filters. The guide also says
    /// `[w1!=ERROR&&w1!=WARN, w2]` matches event 1; that cannot be (event 1
    /// has three words and starts with ERROR), and it matches none here.
    #[test]
    fn doc_or_delimited() {
        assert_eq!(which("[w1=ERROR, w2]"), [2]);
        assert_eq!(which("[w1=ERROR || w1=WARN, w2]"), [2, 3]);
        assert_eq!(which("[w1!=ERROR&&w1!=WARN, w2]"), Vec::<usize>::new());
        assert_eq!(which("[w1!=ERROR&&w1!=WARN, ...]"), Vec::<usize>::new());
        assert_eq!(which("[w1=ERROR, ...]"), [1, 2]);
    }

    /// "OR Pattern Matching", JSON filters.
    #[test]
    fn doc_or_json() {
        let events = [r#"{"foo": "bar"}"#, r#"{"foo": "baz"}"#];
        let which =
            |p: &str| -> Vec<usize> { (1..=2).filter(|i| matches(p, events[i - 1])).collect() };
        assert_eq!(which("{$.foo = bar}"), [1]);
        assert_eq!(which("{$.foo = baz }"), [2]);
        assert_eq!(which("{$.foo = bar || $.foo = baz }"), [1, 2]);
    }

    const TRAIL: &str = r#"{
      "eventType": "UpdateTrail",
      "sourceIPAddress": "111.111.111.111",
      "arrayKey": ["value", "another value"],
      "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
      "SomeObject": null,
      "ThisFlag": true
    }"#;

    /// "JSON Metric Filter Examples": every filter listed matches the example event.
    #[test]
    fn doc_json_examples() {
        for pattern in [
            r#"{ $.eventType = "UpdateTrail" }"#,
            "{ $.sourceIPAddress != 123.123.* }",
            r#"{ $.arrayKey[0] = "value" }"#,
            "{ $.objectList[1].id = 2 }",
            "{ $.SomeObject IS NULL }",
            "{ $.SomeOtherObject NOT EXISTS }",
            "{ $.ThisFlag IS TRUE }",
        ] {
            assert!(matches(pattern, TRAIL), "{pattern}");
        }
        assert!(!matches("{ $.ThisFlag IS FALSE }", TRAIL));
        assert!(!matches("{ $.arrayKey[0].id = 1 }", TRAIL), "not objects");
        assert!(
            !matches("{ $.eventType[0] = \"UpdateTrail\" }", TRAIL),
            "not an array"
        );
    }

    /// "JSON Metric Filter Examples": `*Event` and `Event*` wildcards.
    #[test]
    fn doc_json_wildcards() {
        assert!(matches("{ $.e = *Event }", r#"{"e": "PutEvent"}"#));
        assert!(matches("{ $.e = *Event }", r#"{"e": "GetEvent"}"#));
        assert!(matches("{ $.e = Event* }", r#"{"e": "EventId"}"#));
        assert!(matches("{ $.e = Event* }", r#"{"e": "EventName"}"#));
        assert!(!matches("{ $.e = Event* }", r#"{"e": "PutEvent"}"#));
    }

    const USERS: &str = r#"{
      "user": {"id": 1, "email": "John.Stiles@example.com"},
      "users": [
        {"id": 2, "email": "John.Doe@example.com"},
        {"id": 3, "email": "Jane.Doe@example.com"}
      ],
      "actions": ["GET", "PUT", "DELETE"],
      "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]
    }"#;

    /// "JSON Compound Conditions".
    #[test]
    fn doc_json_compound() {
        assert!(matches(
            r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
            USERS
        ));
        assert!(!matches(
            r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
            USERS
        ));
        assert!(matches(
            r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }"#,
            USERS
        ));
        assert!(!matches(
            r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }"#,
            USERS
        ));
        assert!(matches("{ $.coordinates[2][0] = 7 }", USERS));
    }

    /// "JSON Special Considerations": a selector on an array matches neither way.
    #[test]
    fn doc_json_selector_on_array() {
        let event = r#"{"users": [1, 2, 3]}"#;
        assert!(!matches("{$.users = 1}", event));
        assert!(!matches("{$.users != 1}", event));
    }

    /// "Numeric Comparisons": every example parses, and means what it says.
    #[test]
    fn doc_numeric_comparisons() {
        let event = r#"{"latency": 1500, "numbers": [0.001], "processes": [0, 0, 0, 0,
            {"averageRuntime": 55.5}], "errorCode": 400}"#;
        for pattern in [
            "{ $.latency >= 500 }",
            "{ $.numbers[0] < 10e3 }",
            "{ $.numbers[0] < 10e-2 }",
            "{ $.processes[4].averageRuntime <= 55.5 }",
            "{ $.errorCode = 400 }",
            "{ $.errorCode != 500 }",
            "{ $.latency > +1000 }",
        ] {
            assert!(matches(pattern, event), "{pattern}");
        }
        assert!(!matches("{ $.numbers[0] < 1e-3 }", event));
        assert!(!matches("{ $.errorCode != 400 }", event));
    }

    const APACHE: [&str; 3] = [
        r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#,
        r#"127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324"#,
        r#"127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355"#,
    ];

    fn apache(pattern: &str) -> Vec<usize> {
        let parsed = FilterPattern::parse(pattern).unwrap();
        (1..=3).filter(|i| parsed.matches(APACHE[i - 1])).collect()
    }

    /// "Using Metric Filters to Extract Values from Space-Delimited Log Events".
    #[test]
    fn doc_space_delimited() {
        assert_eq!(
            apache("[ip, user, username, timestamp, request, status_code, bytes]"),
            [1, 2, 3]
        );
        assert_eq!(apache("[..., status_code, bytes]"), [1, 2, 3]);
        assert_eq!(apache("[ip, user, ..., status_code, bytes]"), [1, 2, 3]);
        assert_eq!(apache("[ip, user, ...]"), [1, 2, 3]);
        assert_eq!(
            apache("[ip, user, username, timestamp, request, status_code, bytes > 1000]"),
            [1, 2, 3]
        );
        assert_eq!(
            apache("[ip, user, username, timestamp, request, status_code, bytes > 5000]"),
            [2]
        );
        assert_eq!(
            apache("[ip, user, username, timestamp, request, status_code = 200, bytes]"),
            [1, 3]
        );
        assert_eq!(
            apache("[ip, user, username, timestamp, request, status_code = 5*, bytes]"),
            [2]
        );
        assert_eq!(
            apache("[ip, user, username, timestamp, request = *gif*, status_code = 4*, bytes]"),
            Vec::<usize>::new()
        );
        assert_eq!(
            apache("[ip, user, username, timestamp, request, status_code = 500 || status_code = 404, bytes]"),
            [2]
        );
    }

    /// Same section: the guide's `[..., request=*.html*, status_code=4*,]`.
    #[test]
    fn doc_space_delimited_trailing_comma() {
        let event =
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;
        assert!(matches("[..., request=*.html*, status_code=4*,]", event));
        assert!(!matches(
            "[..., request=*.html*, status_code=4*,]",
            APACHE[0]
        ));
    }

    /// Same section: `status_code = 4* && bytes > 1000` puts two fields in one
    /// slot (a comma seems lost); it is refused with a message saying so.
    #[test]
    fn doc_space_delimited_two_fields_in_one_slot() {
        let err =
            error("[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]");
        assert!(
            matches!(err, FilterPatternError::ForeignField { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("separate fields with ','"),
            "{err}"
        );
    }

    /// The current guide's regex section: `%AUTHORIZED%`.
    #[test]
    fn doc_regex() {
        assert!(matches("%AUTHORIZED%", "[ERROR 401] UNAUTHORIZED REQUEST"));
        assert!(matches("%AUTHORIZED%", "[SUCCESS 200] AUTHORIZED REQUEST"));
        assert!(matches("%colou?r%", "the color red"));
        assert!(matches(r"%10\.10\.0\.1%", "from 10.10.0.1"));
        assert!(!matches(
            r"%10\.10\.0\.1%",
            "from 10.10.0.15x"[..0].as_ref()
        ));
        assert!(matches("%^ERROR%", "ERROR at start"));
        assert!(!matches("%^ERROR%", "an ERROR"));
    }

    #[test]
    fn regex_errors() {
        assert_eq!(
            error(" %abc"),
            FilterPatternError::Unbalanced {
                delimiter: '%',
                position: 2
            }
        );
        assert!(matches!(
            error("%%"),
            FilterPatternError::Empty { what: "regex", .. }
        ));
        assert!(matches!(
            error("%a% b"),
            FilterPatternError::Unexpected { position: 5, .. }
        ));
        assert!(matches!(
            error("%a[%"),
            FilterPatternError::InvalidRegex { position: 1, .. }
        ));
    }

    #[test]
    fn json_needs_json() {
        assert!(!matches("{ $.a NOT EXISTS }", "not json"));
        assert!(!matches("{ $.a NOT EXISTS }", ""));
        assert!(matches("{ $.a NOT EXISTS }", "{}\n"));
        assert!(matches("{ $[1] = 2 }", "[1, 2]"));
    }

    #[test]
    fn unbalanced_and_empty_brackets() {
        assert_eq!(
            error("  { $.a = 1"),
            FilterPatternError::Unbalanced {
                delimiter: '{',
                position: 3
            }
        );
        assert_eq!(
            error("[a, b"),
            FilterPatternError::Unbalanced {
                delimiter: '[',
                position: 1
            }
        );
        assert_eq!(
            error("{ }"),
            FilterPatternError::Empty {
                what: "JSON pattern",
                position: 1
            }
        );
        assert!(matches!(error("[]"), FilterPatternError::Empty { .. }));
        assert!(matches!(error("{"), FilterPatternError::Unbalanced { .. }));
        assert!(matches!(
            error("{ $.a = 1 } }"),
            FilterPatternError::Unexpected { position: 11, .. }
        ));
    }

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            error("{ $.a = 1 || ( $.b = 2 }").to_string(),
            "Invalid filter pattern: unbalanced '(' at position 14"
        );
        assert_eq!(
            error("ERROR disk-full").to_string(),
            "Invalid filter pattern: 'disk-full' at position 7 must be in double quotes \
             (unquoted terms hold only letters, digits and '_')"
        );
        assert_eq!(
            error("{ $.a > fast }").to_string(),
            "Invalid filter pattern: '>' compares numbers, but fast at position 9 is not a number"
        );
        assert_eq!(
            error("{ $.a = }").to_string(),
            "Invalid filter pattern: expected a value at position 9, found the end of the pattern"
        );
    }

    #[test]
    fn too_long() {
        let long = "a".repeat(MAX_PATTERN_CHARS + 1);
        assert_eq!(
            error(&long),
            FilterPatternError::TooLong {
                length: MAX_PATTERN_CHARS + 1,
                max: MAX_PATTERN_CHARS
            }
        );
        assert!(
            FilterPattern::parse(&"é".repeat(MAX_PATTERN_CHARS)).is_err(),
            "unquoted"
        );
        assert!(FilterPattern::parse(&"a".repeat(MAX_PATTERN_CHARS)).is_ok());
    }

    #[test]
    fn unicode_messages_and_patterns() {
        assert!(matches("\"日本語\"", "ログ: 日本語のメッセージ"));
        assert!(matches(
            r#"{ $.名前 = "José*" }"#,
            r#"{"名前": "José Ñúñez"}"#
        ));
        assert!(matches("[a = \"é*\", ...]", "école 🚀 x"));
        assert!(matches("%é+%", "café"));
        // Positions count characters, not bytes.
        assert_eq!(
            error("\"日本\" a-b"),
            FilterPatternError::Unquoted {
                text: "a-b".into(),
                position: 6
            }
        );
    }

    #[test]
    fn empty_message() {
        assert!(!matches("ERROR", ""));
        assert!(matches("-ERROR", ""));
        assert!(!matches("[a]", ""));
        assert!(matches("[...]", ""));
        assert!(!matches("{ $.a EXISTS }", ""));
        assert!(matches("%^$%", ""));
    }

    #[test]
    fn very_long_messages_match_quickly() {
        let filler = "lorem ipsum dolor ".repeat(60_000);
        let text = format!("{filler}ERROR at the end");
        assert!(matches("ERROR ?end -DEBUG", &text));
        assert!(matches("%ERROR at the end$%", &text));
        assert!(matches("[..., w = ERROR, ..., last = end]", &text));
        assert!(!matches("[..., a = x*, b = y*, ..., c = z]", &text));
        let json = format!(r#"{{"msg": "{filler}", "n": [{}1]}}"#, "0,".repeat(100_000));
        assert!(matches("{ $.msg = *dolor* && $.n[*] = 1 }", &json));
        assert!(!matches(r#"{ $.msg = "*l*o*r*e*m*x" }"#, &json));
    }

    const PIECES: &[&str] = &[
        "{", "}", "[", "]", "(", ")", "$", ".", "*", "[0]", "[*]", "$.a", "$.b[1]", "$.*", "=",
        "!=", "<", ">=", "<=", ">", "&&", "||", "\"", "\\", "\\\"", "%", "?", "-", "...", ",", " ",
        " ", "IS", "TRUE", "NULL", "EXISTS", "NOT", "a", "b", "ERROR", "1", "-2.5e3", "4*", "é",
        "日", "\0", "\n", "%a+%", "%(%", "🚀",
    ];

    const MESSAGES: &[&str] = &[
        "",
        "ERROR a b",
        r#"{"a": 1, "b": [0, "x"], "c": {"d": null}}"#,
        r#"{"a": "4*", "b": [[1]], "é": true}"#,
        "[1 2] \"3 4\" 5",
        "\"unclosed [also",
        "[1, 2, 3]",
        "é 日 🚀 \0",
    ];

    fn garbage(rng: &mut StdRng) -> String {
        let len = rng.random_range(0..24);
        if rng.random_bool(0.2) {
            return (0..len)
                .map(|_| char::from(rng.random_range(b' '..=b'~')))
                .collect();
        }
        let mut text: String = (0..len).map(|_| *PIECES.choose(rng).unwrap()).collect();
        match rng.random_range(0..4) {
            0 => text = format!("{{{text}}}"),
            1 => text = format!("[{text}]"),
            _ => {}
        }
        text
    }

    /// Parsing and matching never panic, and error messages always render.
    #[test]
    fn garbage_never_panics() {
        let mut rng = StdRng::seed_from_u64(0xc10d_f11e);
        let mut parsed = 0;
        for _ in 0..4000 {
            let pattern = garbage(&mut rng);
            match FilterPattern::parse(&pattern) {
                Ok(filter) => {
                    parsed += 1;
                    for message in MESSAGES {
                        filter.matches(message);
                    }
                    filter.matches(&garbage(&mut rng));
                }
                Err(e) => assert!(e.to_string().starts_with("Invalid filter pattern: ")),
            }
        }
        assert!(
            parsed > 100,
            "the generator should also make valid patterns ({parsed})"
        );
    }
}
