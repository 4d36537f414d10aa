//! The rest of the language: fields Insights discovers, operators, functions,
//! `parse` with a regex, `display`, and commands after `stats`.

use super::*;

fn values(outcome: &QueryOutcome) -> Vec<Vec<&str>> {
    outcome
        .rows
        .iter()
        .map(|row| row.iter().map(|(_, v)| v.as_str()).collect())
        .collect()
}

#[test]
fn fields_of_the_event_itself() {
    let outcome = run(
        "fields @timestamp, @ingestionTime, @log, @logStream, @message",
        &[event(T0 + 5, "hello")],
    );
    assert_eq!(
        outcome.rows,
        rows(&[&[
            ("@timestamp", "2024-03-01 12:00:00.005"),
            ("@ingestionTime", "2024-03-01 12:00:00.255"),
            ("@log", "123456789012:/ecs/app"),
            ("@logStream", "ecs/web/0123"),
            ("@message", "hello"),
        ]])
    );
}

#[test]
fn fields_discovered_in_json_messages() {
    let message = r#"{"http":{"status":503,"path":"/x"},"tags":["a","b"],"ok":true,"none":null}"#;
    let outcome = run(
        "fields http.status, http.path, tags.1, ok, none, `http.status` + 1 as next",
        &[event(T0, message), event(T0 - 1, "[not json")],
    );
    assert_eq!(
        values(&outcome),
        [vec!["503", "/x", "b", "true", "504"], vec![]]
    );
}

#[test]
fn filter_operators() {
    let which = |query: &str| -> Vec<String> {
        let outcome = run(&format!("{query} | fields service, level"), &json_log());
        outcome
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
    };
    assert_eq!(
        which(r#"filter level in ["ERROR", "WARN"]"#),
        ["worker/ERROR", "api/WARN", "api/ERROR"]
    );
    assert_eq!(
        which(r#"filter level not in ["INFO", "ERROR"]"#),
        ["api/WARN"]
    );
    assert_eq!(
        which(r#"filter service = "api" and not (level = "ERROR" or latency >= 900)"#),
        ["api/INFO"]
    );
    assert_eq!(
        which("filter latency < 100 and latency != 80"),
        ["web/INFO"]
    );
    assert_eq!(which(r#"filter service like "ork""#), ["worker/ERROR"]);
    assert_eq!(
        which(r#"filter @message not like /"level":"INFO"/ and ispresent(level)"#),
        ["worker/ERROR", "api/WARN", "api/ERROR"]
    );
    assert_eq!(
        which("filter service =~ /^w.b$/ and latency > 100"),
        ["web/INFO", "web/INFO"]
    );
    assert_eq!(which(r#"filter level =~ "(?i)^warn""#), ["api/WARN"]);
    // Without JSON, the plain line has neither field.
    assert_eq!(which("filter @message like /latency=/"), [""]);
    // A number and a string holding the same number are equal.
    assert_eq!(which(r#"filter latency = "80.0""#), ["api/ERROR"]);
}

#[test]
fn arithmetic_and_string_functions() {
    let outcome = run(
        r#"filter latency = 120
           | fields latency * 2 + 1 as x, 10 % 3 as m, 2 ^ 3 ^ 2 as p, -latency / 8 as neg,
                    latency / 0 as nothing, abs(-4.5) as a, floor(latency / 7) as f,
                    ceil(0.1) as c, greatest(1, latency, 7) as g, sqrt(16) as s,
                    strlen(service) as len, toupper(service) as up, tolower(level) as low,
                    concat(service, "-", level) as id, substr(level, 1, 2) as sub,
                    substr(level, 2) as tail, replace(level, "N", "n") as r,
                    trim("  x ") as t, ltrim("xxy", "x") as lt, rtrim(" y ") as rt,
                    coalesce(missing, service) as co, ispresent(missing) as pres,
                    isempty("") as empty, isblank(" ") as blank,
                    strcontains(service, "e") as has_e"#,
        &json_log(),
    );
    assert_eq!(
        outcome.rows,
        rows(&[&[
            ("x", "241"),
            ("m", "1"),
            ("p", "512"),
            ("neg", "-15"),
            ("a", "4.5"),
            ("f", "17"),
            ("c", "1"),
            ("g", "120"),
            ("s", "4"),
            ("len", "3"),
            ("up", "WEB"),
            ("low", "info"),
            ("id", "web-INFO"),
            ("sub", "NF"),
            ("tail", "FO"),
            ("r", "InFO"),
            ("t", "x"),
            ("lt", "y"),
            ("rt", " y"),
            ("co", "web"),
            ("pres", "0"),
            ("empty", "1"),
            ("blank", "1"),
            ("has_e", "1"),
        ]])
    );
}

#[test]
fn time_functions() {
    let outcome = run(
        "fields bin(1h) as hour, datefloor(@timestamp, 1d) as day, \
         dateceil(@timestamp, 1m) as minute, toMillis(@timestamp) as ms, \
         fromMillis(0) as epoch, bin(1mo) as month",
        &[event(T0 + 90 * MINUTE + 1, "x")],
    );
    assert_eq!(
        outcome.rows,
        rows(&[&[
            ("hour", "2024-03-01 13:00:00.000"),
            ("day", "2024-03-01 00:00:00.000"),
            ("minute", "2024-03-01 13:31:00.000"),
            ("ms", "1709299800001"),
            ("epoch", "1970-01-01 00:00:00.000"),
            ("month", "2024-03-01 00:00:00.000"),
        ]])
    );
    let outcome = run(
        r#"filter @timestamp >= "2024-03-01 12:00:02.000" and @timestamp < 1709294404000
           | stats count(*) as n, min(@timestamp) as first"#,
        &json_log(),
    );
    assert_eq!(
        outcome.rows,
        rows(&[&[("n", "2"), ("first", "2024-03-01 12:00:02.000")]])
    );
}

#[test]
fn ip_functions() {
    let outcome = run(
        r#"fields isValidIp("10.1.2.3") as a, isValidIpV6("10.1.2.3") as b,
                  isValidIpV4("nope") as c, isIpInSubnet("10.1.2.3", "10.0.0.0/8") as d,
                  isIpv4InSubnet("10.1.2.3", "10.1.3.0/24") as e,
                  isIpv6InSubnet("2001:db8::1", "2001:db8::/32") as f"#,
        &[event(T0, "x")],
    );
    assert_eq!(values(&outcome), [["1", "0", "0", "1", "0", "1"]]);
}

#[test]
fn parse_with_a_regex_and_parse_of_a_parsed_field() {
    let events = [
        event(T0, "user=alice took 120ms path=/api/orders"),
        event(T0 + 1, "user=bob took 30ms path=/api/users"),
        event(T0 + 2, "user=alice took 80ms path=/api/pay"),
        event(T0 + 3, "healthcheck"),
    ];
    let outcome = run(
        r"parse /user=(?<user>\w+) took (?<ms>\d+)ms path=(?<path>\S+)/
          | parse path '/api/*' as resource
          | stats sum(ms) as total, sortsFirst(resource) as first, sortsLast(resource) as last
            by user",
        &events,
    );
    assert_eq!(
        outcome.rows,
        rows(&[
            // `healthcheck`, the newest event, has no user: its group has no values.
            &[],
            &[
                ("user", "alice"),
                ("total", "200"),
                ("first", "orders"),
                ("last", "pay")
            ],
            &[
                ("user", "bob"),
                ("total", "30"),
                ("first", "users"),
                ("last", "users")
            ],
        ])
    );
}

#[test]
fn display_picks_the_columns() {
    let outcome = run(
        r#"fields @timestamp, level, service | filter level = "WARN" | display service, @message"#,
        &json_log(),
    );
    assert_eq!(
        outcome.rows,
        rows(&[&[
            ("service", "api"),
            (
                "@message",
                r#"{"level":"WARN","latency":900.5,"service":"api"}"#
            ),
        ]])
    );
}

#[test]
fn commands_after_stats_see_its_rows() {
    let outcome = run(
        "stats count(*) by service | sort count(*) asc, service desc",
        &json_log(),
    );
    assert_eq!(
        values(&outcome),
        [
            vec!["worker", "1"],
            // The plain-text line has no service; a missing value sorts last.
            vec!["1"],
            vec!["web", "3"],
            vec!["api", "3"]
        ]
    );
    let outcome = run(
        "stats count(*) as n by service, level | filter ispresent(service) \
         | stats sum(n) as events, count(*) as levels by service | sort levels desc, service asc",
        &json_log(),
    );
    assert_eq!(
        values(&outcome),
        [
            vec!["api", "3", "3"],
            vec!["web", "3", "1"],
            vec!["worker", "1", "1"]
        ]
    );
}

#[test]
fn keywords_and_commands_in_any_case() {
    let outcome = run(
        r#"FILTER level = "ERROR" AND NOT ispresent(latency) | FIELDS service | SORT service ASC | LIMIT 5"#,
        &json_log(),
    );
    assert_eq!(values(&outcome), [["worker"]]);
}

#[test]
fn sort_keeps_newest_first_among_equal_keys() {
    let outcome = run(
        "fields level, @timestamp | sort level asc | limit 3",
        &json_log(),
    );
    assert_eq!(
        values(&outcome),
        [
            ["ERROR", "2024-03-01 12:00:05.000"],
            ["ERROR", "2024-03-01 12:00:02.000"],
            ["INFO", "2024-03-01 12:00:08.000"],
        ]
    );
}
