//! Malformed queries: each error names what is wrong and where, and no input
//! makes parsing or running panic.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::*;

fn error(query: &str) -> QueryError {
    match Query::parse(query) {
        Ok(q) => panic!("{query} parsed: {q:?}"),
        Err(e) => e,
    }
}

#[test]
fn commands_berth_does_not_run() {
    let e = error("fields @message | dedup @logStream");
    assert_eq!(
        e,
        QueryError::UnsupportedCommand {
            command: "dedup".into(),
            position: 19
        }
    );
    assert_eq!(
        e.to_string(),
        "unsupported command 'dedup' at position 19: Berth runs fields, filter, parse, \
         stats, sort, limit and display"
    );
    for command in ["unmask", "pattern", "diff", "anomaly", "unnest"] {
        assert!(
            matches!(error(&format!("{command} @message")),
                QueryError::UnsupportedCommand { command: c, position: 1 } if c == command),
            "{command}"
        );
    }
    assert_eq!(
        error("select * from logs"),
        QueryError::UnknownCommand {
            command: "select".into(),
            position: 1
        }
    );
}

#[test]
fn unbalanced_quotes_slashes_and_parentheses() {
    let e = error(r#"filter @message like "abc"#);
    assert_eq!(
        e,
        QueryError::Unbalanced {
            delimiter: '"',
            position: 22
        }
    );
    assert_eq!(
        e.to_string(),
        "unbalanced '\"' at position 22: nothing closes it"
    );
    for (query, delimiter, position) in [
        ("filter level = 'x", '\'', 16),
        ("filter @message like /abc", '/', 22),
        ("fields `odd name", '`', 8),
        (r#"filter (level = "x""#, '(', 8),
        (r#"filter (level = "x" | limit 1"#, '(', 8),
        ("fields strlen(@message", '(', 14),
        ("filter level in [1, 2", '[', 17),
    ] {
        assert_eq!(
            error(query),
            QueryError::Unbalanced {
                delimiter,
                position
            },
            "{query}"
        );
    }
    assert_eq!(
        error(r#"filter level = "x")"#).to_string(),
        "filter: expected '|' or the end of the query at position 19, found ')'"
    );
}

#[test]
fn invalid_regexes() {
    let e = error("filter @message like /(unclosed/");
    assert!(
        matches!(&e, QueryError::InvalidRegex { command: "filter", regex, position: 22, reason }
            if regex == "(unclosed" && reason == "unclosed group"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "filter: regex /(unclosed/ at position 22 is not valid: unclosed group"
    );
    assert!(matches!(
        error(r"parse @message /(?<a>[x)/"),
        QueryError::InvalidRegex {
            command: "parse",
            position: 16,
            ..
        }
    ));
    assert!(matches!(
        error(r#"filter level =~ "a{2,1}""#),
        QueryError::InvalidRegex {
            command: "filter",
            ..
        }
    ));
}

#[test]
fn unknown_and_misused_functions() {
    let e = error("fields frobnicate(@message)");
    assert_eq!(
        e,
        QueryError::UnknownFunction {
            function: "frobnicate".into(),
            position: 8
        }
    );
    assert_eq!(e.to_string(), "unknown function 'frobnicate' at position 8");
    assert_eq!(
        error("stats frob(x)"),
        QueryError::UnknownFunction {
            function: "frob".into(),
            position: 7
        }
    );
    assert_eq!(
        error("stats strlen(x)"),
        QueryError::NotAnAggregate {
            found: "'strlen'".into(),
            position: 7
        }
    );
    assert!(matches!(
        error("stats x by y"),
        QueryError::NotAnAggregate { .. }
    ));
    assert_eq!(
        error("filter count(*) > 1"),
        QueryError::AggregateOutsideStats {
            function: "count".into(),
            position: 8
        }
    );
    assert_eq!(
        error("fields strlen(a, b)").to_string(),
        "function 'strlen' at position 8 takes 1 argument; it was given 2"
    );
    assert_eq!(
        error("stats pct(latency)"),
        QueryError::WrongArgumentCount {
            function: "pct".into(),
            expected: "2 arguments: a field and a percentile",
            given: 1,
            position: 7
        }
    );
    assert!(matches!(
        error("stats pct(latency, 101)"),
        QueryError::InvalidArgument { .. }
    ));
    assert!(matches!(
        error("stats sum(a, b)"),
        QueryError::WrongArgumentCount { given: 2, .. }
    ));
    assert_eq!(
        error("stats count(*) by bin(5x)").to_string(),
        "function 'bin' at position 23 needs a time period such as 30s, 5m or 1h, found '5x'"
    );
    assert!(matches!(
        error("fields datefloor(@timestamp)"),
        QueryError::WrongArgumentCount { .. }
    ));
}

#[test]
fn malformed_commands() {
    assert_eq!(
        error("fields a | limit 10001").to_string(),
        "limit: expected a whole number from 1 to 10000 at position 18, found '10001'"
    );
    for query in ["limit 0", "limit 2.5", "limit x", "limit"] {
        assert!(
            matches!(error(query), QueryError::InvalidLimit { .. }),
            "{query}"
        );
    }
    assert_eq!(
        error(r#"parse @message "* - *" as a"#),
        QueryError::ParseNamesMismatch {
            captures: 2,
            names: 1,
            position: 16
        }
    );
    assert!(matches!(
        error(r"parse @message /(\d+)/"),
        QueryError::ParseRegexWithoutNames { position: 16 }
    ));
    assert!(matches!(
        error(r#"parse @message "a*b""#),
        QueryError::Unexpected {
            command: "parse",
            ..
        }
    ));
    assert_eq!(
        error("fields @message |").to_string(),
        "query: expected a command at position 18, found the end of the query"
    );
    assert!(matches!(
        error("fields a || limit 1"),
        QueryError::Unexpected {
            expected: "a command",
            ..
        }
    ));
    assert_eq!(
        error("filter a ! b"),
        QueryError::UnexpectedCharacter {
            found: '!',
            position: 10
        }
    );
    assert!(matches!(
        error("filter and"),
        QueryError::Unexpected {
            expected: "an expression",
            ..
        }
    ));
    assert!(matches!(
        error("fields a as"),
        QueryError::Unexpected {
            command: "fields",
            ..
        }
    ));
    assert!(matches!(error("sort"), QueryError::Unexpected { .. }));
    assert_eq!(
        error(&"x".repeat(10_001)),
        QueryError::TooLong {
            length: 10_001,
            max: 10_000
        }
    );
    assert!(matches!(
        error(&format!("filter {}1{}", "(".repeat(40), ")".repeat(40))),
        QueryError::TooDeep { max: 32, .. }
    ));
    assert!(matches!(
        error(&format!("filter {}a", "not ".repeat(40))),
        QueryError::TooDeep { .. }
    ));
}

/// Long flat chains are fine: they do not nest.
#[test]
fn long_chains_parse_and_run() {
    let ors = vec![r#"level = "WARN""#; 500].join(" or ");
    let outcome = run(&format!("filter {ors} | fields level"), &json_log());
    assert_eq!(outcome.rows.len(), 1);
    let sum = vec!["latency"; 500].join(" + ");
    let outcome = run(
        &format!("filter level = \"WARN\" | fields {sum} as x"),
        &json_log(),
    );
    assert_eq!(outcome.rows[0][0].1, "450250");
}

const PIECES: &[&str] = &[
    "fields",
    "filter",
    "stats",
    "parse",
    "sort",
    "limit",
    "display",
    "dedup",
    "@message",
    "@timestamp",
    "@log",
    "level",
    "latency",
    "http.status",
    "count(*)",
    "count(",
    "(",
    ")",
    "[",
    "]",
    "|",
    "|",
    ",",
    "=",
    "!=",
    "<",
    ">=",
    "=~",
    "like",
    "not",
    "in",
    "and",
    "or",
    "as",
    "by",
    "asc",
    "desc",
    "/ERR/",
    r"/(?<x>\w+)/",
    "/",
    "\"",
    "'",
    r#""* *""#,
    "\"a\"",
    "5",
    "-",
    "+",
    "*",
    "^",
    "%",
    "`",
    "#",
    "é",
    "1e309",
    "0",
    "99999999999999999999",
    "bin(5m)",
    "bin(1y)",
    "pct(latency, 50)",
    "p99(latency)",
    "avg(latency)",
    "sum(",
    "strlen(",
    "substr(@message, -5, 1e20)",
    "datefloor(@timestamp, 1mo)",
    "fromMillis(1e300)",
    "toMillis(@timestamp)",
    "earliest(level)",
    "sortsLast(@log)",
    "count_distinct(level)",
    "isIpInSubnet(level, \"1.2.3.4/99\")",
    "\\",
    "5m",
    "🚀",
];

fn garbage(rng: &mut StdRng) -> String {
    let len = rng.random_range(0..16);
    if rng.random_bool(0.1) {
        return (0..len * 2)
            .map(|_| char::from(rng.random_range(b' '..=b'~')))
            .collect();
    }
    let mut text = String::new();
    for _ in 0..len {
        text.push_str(PIECES.choose(rng).expect("pieces"));
        if rng.random_bool(0.7) {
            text.push(' ');
        }
    }
    text
}

fn odd_events() -> Vec<InsightsEvent> {
    let mut events = json_log();
    events.extend(access_log());
    for (timestamp_ms, message) in [
        (i64::MIN, ""),
        (
            i64::MAX,
            r#"{"level": {"deep": [1, [2, {"x": null}]]}, "latency": 1e308}"#,
        ),
        (0, "é 日 🚀 \0"),
        (-1, r#"{"latency": "NaN", "level": -0.0}"#),
    ] {
        events.push(InsightsEvent {
            timestamp_ms,
            ingestion_ms: i64::MIN,
            message: message.to_owned(),
            log_stream: String::new(),
            log_group: String::new(),
        });
    }
    events
}

/// Parsing and running never panic, and every error renders.
#[test]
fn garbage_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x1a51_6475);
    let events = odd_events();
    let mut parsed = 0;
    for _ in 0..5000 {
        let text = garbage(&mut rng);
        match Query::parse(&text) {
            Ok(query) => {
                parsed += 1;
                query.run("0", events.iter().cloned());
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    assert!(
        parsed > 200,
        "the generator should also make valid queries ({parsed})"
    );
}
