//! Queries an ECS user typically runs, with the exact rows they return.

mod errors;
mod language;

use super::*;

/// 2024-03-01 12:00:00.000 UTC.
const T0: i64 = 1_709_294_400_000;
const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;

fn event(timestamp_ms: i64, message: &str) -> InsightsEvent {
    InsightsEvent {
        timestamp_ms,
        ingestion_ms: timestamp_ms + 250,
        message: message.to_owned(),
        log_stream: "ecs/web/0123".to_owned(),
        log_group: "/ecs/app".to_owned(),
    }
}

fn run(query: &str, events: &[InsightsEvent]) -> QueryOutcome {
    let query = Query::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let outcome = query.run("123456789012", events.iter().cloned());
    // Events come in any order; the result never depends on it.
    let reversed = query.run("123456789012", events.iter().rev().cloned());
    assert_eq!(outcome, reversed, "the input order changed the result");
    outcome
}

/// Rows written as `[("field", "value"), ...]` literals.
fn rows(rows: &[&[(&str, &str)]]) -> Vec<Vec<(String, String)>> {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                .collect()
        })
        .collect()
}

/// Lines of an nginx/Apache access log in common log format, one a second.
fn access_log() -> Vec<InsightsEvent> {
    [
        r#"10.0.0.1 - - [01/Mar/2024:12:00:00 +0000] "GET /index.html HTTP/1.1" 200 512"#,
        r#"10.0.0.2 - - [01/Mar/2024:12:00:01 +0000] "POST /api/orders HTTP/1.1" 500 87"#,
        r#"10.0.0.3 - - [01/Mar/2024:12:00:02 +0000] "GET /api/users HTTP/1.1" 503 0"#,
        r#"10.0.0.1 - - [01/Mar/2024:12:00:03 +0000] "POST /api/orders HTTP/1.1" 502 0"#,
        r#"10.0.0.4 - - [01/Mar/2024:12:00:04 +0000] "GET /health HTTP/1.1" 200 2"#,
        r#"10.0.0.2 - - [01/Mar/2024:12:00:05 +0000] "POST /api/pay HTTP/2.0" 504 0"#,
        r#"10.0.0.5 - - [01/Mar/2024:12:00:06 +0000] "POST /api/orders HTTP/1.1" 500 87"#,
        r#"10.0.0.5 - - [01/Mar/2024:12:00:07 +0000] "POST /api/pay HTTP/2.0" 504 0"#,
        r#"10.0.0.6 - - [01/Mar/2024:12:00:08 +0000] "GET /api/orders HTTP/1.1" 404 9"#,
        "malformed line with status 500 but no request",
    ]
    .iter()
    .zip(0..)
    .map(|(line, i)| event(T0 + i * SECOND, line))
    .collect()
}

/// JSON lines as an ECS service logs them.
fn json_log() -> Vec<InsightsEvent> {
    [
        r#"{"level":"INFO","latency":120,"service":"web"}"#,
        r#"{"level":"ERROR","latency":80,"service":"api"}"#,
        r#"{"level":"INFO","latency":250,"service":"web"}"#,
        r#"{"level":"WARN","latency":900.5,"service":"api"}"#,
        r#"{"level":"ERROR","service":"worker"}"#,
        "plain text, latency=999",
        r#"{"level":"INFO","latency":200,"service":"api"}"#,
        r#"{"level":"INFO","latency":95,"service":"web"}"#,
    ]
    .iter()
    .zip(1..)
    .map(|(line, i)| event(T0 + i * SECOND, line))
    .collect()
}

#[test]
fn latest_messages() {
    let events: Vec<InsightsEvent> = (0..25)
        .map(|i| event(T0 + i * SECOND, &format!("line {i}")))
        .collect();
    let outcome = run(
        "fields @timestamp, @message | sort @timestamp desc | limit 20",
        &events,
    );
    assert_eq!(outcome.rows.len(), 20);
    assert_eq!(
        outcome.rows[..2],
        rows(&[
            &[
                ("@timestamp", "2024-03-01 12:00:24.000"),
                ("@message", "line 24")
            ],
            &[
                ("@timestamp", "2024-03-01 12:00:23.000"),
                ("@message", "line 23")
            ],
        ])
    );
    let expected: Vec<Vec<(String, String)>> = (5..25)
        .rev()
        .map(|i| {
            vec![
                (
                    "@timestamp".to_owned(),
                    format!("2024-03-01 12:00:{i:02}.000"),
                ),
                ("@message".to_owned(), format!("line {i}")),
            ]
        })
        .collect();
    assert_eq!(outcome.rows, expected);
    assert_eq!(outcome.records_scanned, 25);
    assert_eq!(outcome.records_matched, 25);
    assert_eq!(outcome.bytes_scanned, 10 * 6 + 15 * 7);
}

#[test]
fn errors_per_five_minutes() {
    let events = [
        event(T0 + MINUTE, "ERROR connection refused"),
        event(T0 + 3 * MINUTE + 30 * SECOND, "INFO request served"),
        event(T0 + 5 * MINUTE - 1, "ERROR timeout"),
        event(T0 + 5 * MINUTE, "ERROR timeout"),
        event(T0 + 7 * MINUTE, "INFO request served"),
        event(T0 + 12 * MINUTE, "java.lang.ERROR: boom"),
        event(T0 + 13 * MINUTE, "ERROR again"),
        event(T0 + 14 * MINUTE, "error in lower case is another word"),
    ];
    let outcome = run(
        "filter @message like /ERROR/ | stats count(*) as errors by bin(5m)",
        &events,
    );
    assert_eq!(
        outcome.rows,
        rows(&[
            &[("bin(5m)", "2024-03-01 12:10:00.000"), ("errors", "2")],
            &[("bin(5m)", "2024-03-01 12:05:00.000"), ("errors", "1")],
            &[("bin(5m)", "2024-03-01 12:00:00.000"), ("errors", "2")],
        ])
    );
    assert_eq!(outcome.records_matched, 5);
    assert_eq!(outcome.records_scanned, 8);
}

#[test]
fn server_errors_by_path_from_an_access_log() {
    let outcome = run(
        r#"parse @message "* - - [*] \"* * *\" * *" as ip, ts, method, path, proto, status, bytes
           | filter status >= 500
           | stats count(*) as n by path
           | sort n desc
           | limit 10"#,
        &access_log(),
    );
    assert_eq!(
        outcome.rows,
        rows(&[
            &[("path", "/api/orders"), ("n", "3")],
            &[("path", "/api/pay"), ("n", "2")],
            &[("path", "/api/users"), ("n", "1")],
        ])
    );
    assert_eq!(outcome.records_matched, 6);
    assert_eq!(outcome.records_scanned, 10);
}

#[test]
fn parse_sets_every_capture() {
    let outcome = run(
        r#"parse @message "* - - [*] \"* * *\" * *" as ip, ts, method, path, proto, status, bytes
           | filter ip = "10.0.0.2" | fields ts, method, path, proto, status, bytes | limit 1"#,
        &access_log(),
    );
    assert_eq!(
        outcome.rows,
        rows(&[&[
            ("ts", "01/Mar/2024:12:00:05 +0000"),
            ("method", "POST"),
            ("path", "/api/pay"),
            ("proto", "HTTP/2.0"),
            ("status", "504"),
            ("bytes", "0"),
        ]])
    );
}

#[test]
fn slow_or_failed_requests_from_json_logs() {
    let outcome = run(
        r#"fields @timestamp, level, latency | filter level = "ERROR" or latency > 200 | sort latency desc"#,
        &json_log(),
    );
    assert_eq!(
        outcome.rows,
        rows(&[
            &[
                ("@timestamp", "2024-03-01 12:00:04.000"),
                ("level", "WARN"),
                ("latency", "900.5"),
            ],
            &[
                ("@timestamp", "2024-03-01 12:00:03.000"),
                ("level", "INFO"),
                ("latency", "250"),
            ],
            &[
                ("@timestamp", "2024-03-01 12:00:02.000"),
                ("level", "ERROR"),
                ("latency", "80"),
            ],
            // No latency: the row leaves it out, and it sorts last.
            &[
                ("@timestamp", "2024-03-01 12:00:05.000"),
                ("level", "ERROR")
            ],
        ])
    );
    assert_eq!(outcome.records_matched, 4);
}

#[test]
fn latency_statistics_per_service() {
    let events: Vec<InsightsEvent> = json_log()
        .into_iter()
        .filter(|e| e.message.starts_with('{'))
        .collect();
    let outcome = run(
        "stats avg(latency), max(latency), min(latency), sum(latency), pct(latency, 99), \
         count(*) by service",
        &events,
    );
    assert_eq!(
        outcome.rows,
        rows(&[
            &[
                ("service", "web"),
                ("avg(latency)", "155"),
                ("max(latency)", "250"),
                ("min(latency)", "95"),
                ("sum(latency)", "465"),
                ("pct(latency, 99)", "250"),
                ("count(*)", "3"),
            ],
            &[
                ("service", "api"),
                ("avg(latency)", "393.5"),
                ("max(latency)", "900.5"),
                ("min(latency)", "80"),
                ("sum(latency)", "1180.5"),
                ("pct(latency, 99)", "900.5"),
                ("count(*)", "3"),
            ],
            // No latency at all: only the count has a value.
            &[("service", "worker"), ("count(*)", "1")],
        ])
    );
}

#[test]
fn percentiles_and_other_aggregates() {
    let events: Vec<InsightsEvent> = (1..=100)
        .map(|i| {
            event(
                T0 + i * SECOND,
                &format!(r#"{{"latency":{i},"host":"h{}"}}"#, i % 3),
            )
        })
        .collect();
    let outcome = run(
        "stats p50(latency), p90(latency) as p90, pct(latency, 99.5), pct(latency, 0), \
         count_distinct(host), stddev(latency) as sd, earliest(latency), latest(latency), \
         avg(latency * 2) as doubled",
        &events,
    );
    assert_eq!(
        outcome.rows,
        rows(&[&[
            ("p50(latency)", "50"),
            ("p90", "90"),
            ("pct(latency, 99.5)", "100"),
            ("pct(latency, 0)", "1"),
            ("count_distinct(host)", "3"),
            ("sd", "29.011491975882016"),
            ("earliest(latency)", "1"),
            ("latest(latency)", "100"),
            ("doubled", "101"),
        ]])
    );
    let outcome = run(
        r#"stats avg(latency) as a, count(latency) as n by level
           | filter level != "WARN" or not ispresent(level)"#,
        &json_log(),
    );
    assert_eq!(
        outcome.rows,
        rows(&[
            &[("level", "INFO"), ("a", "166.25"), ("n", "4")],
            // `plain text` has no level: its group shows no level.
            &[("n", "0")],
            &[("level", "ERROR"), ("a", "80"), ("n", "1")],
        ])
    );
}

#[test]
fn no_command_shows_timestamp_and_message_newest_first() {
    let events = [event(T0, "first"), event(T0 + SECOND, "second")];
    let outcome = run("", &events);
    assert_eq!(
        outcome.rows,
        rows(&[
            &[
                ("@timestamp", "2024-03-01 12:00:01.000"),
                ("@message", "second")
            ],
            &[
                ("@timestamp", "2024-03-01 12:00:00.000"),
                ("@message", "first")
            ],
        ])
    );
    let outcome = run("filter @message like 'first' # a comment", &events);
    assert_eq!(outcome.rows.len(), 1);
    assert_eq!(outcome.rows[0][1].1, "first");
}

#[test]
fn results_stop_at_ten_thousand_rows() {
    let events: Vec<InsightsEvent> = (0..10_050).map(|i| event(T0 + i, "x")).collect();
    let outcome = run("fields @timestamp", &events);
    assert_eq!(outcome.rows.len(), MAX_ROWS);
    assert_eq!(outcome.rows[0][0].1, "2024-03-01 12:00:10.049");
    assert_eq!(outcome.records_matched, 10_050);
    let outcome = run("limit 3", &events);
    assert_eq!(
        outcome.rows,
        rows(&[
            &[("@timestamp", "2024-03-01 12:00:10.049"), ("@message", "x")],
            &[("@timestamp", "2024-03-01 12:00:10.048"), ("@message", "x")],
            &[("@timestamp", "2024-03-01 12:00:10.047"), ("@message", "x")],
        ])
    );
    let outcome = run("sort @timestamp asc | limit 3", &events);
    assert_eq!(outcome.rows.len(), 3);
    assert_eq!(outcome.rows[0][0].1, "2024-03-01 12:00:00.000");
}
