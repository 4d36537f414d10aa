//! Generated input at the control plane's decoders, standing in for cargo-fuzz targets
//! (`scripts/fuzz-nightly.sh` runs them with many more cases): filter patterns and Logs
//! Insights queries from their own alphabets (so generation reaches past the first
//! token), and ECS request bodies of any JSON shape. Each must answer (a value or its
//! error), never panic, and never blame itself (`ServerException`) for the client's input.

use proptest::prelude::*;
use serde_json::Value;

use berth_ecs::TaskStatus;

use crate::api::ecs::dispatch;
use crate::api::error::ErrorType;
use crate::logs::filter::FilterPattern;
use crate::logs::insights::{InsightsEvent, Query};
use crate::state::test_support::fleet;

/// Strings made of a grammar's pieces, so most get past the lexer.
fn sentence(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..max).prop_map(|p| p.concat())
}

const FILTER_PIECES: &[&str] = &[
    "{",
    "}",
    "$",
    ".",
    "$.level",
    "$.a[0]",
    " ",
    "=",
    "!=",
    "<",
    ">",
    ">=",
    "&&",
    "||",
    "(",
    ")",
    "\"",
    "error",
    "ERROR",
    "?",
    "-",
    "[",
    "]",
    ",",
    "*",
    "%",
    "%re.x%",
    "ip",
    "status",
    "1",
    "2.5",
    "-3",
    "IS",
    "NULL",
    "TRUE",
    "EXISTS",
    "NOT",
    "\\",
    "\u{e9}",
    "x=*",
    "{ $.a = \"b\" }",
];

const INSIGHTS_PIECES: &[&str] = &[
    "fields ",
    "filter ",
    "stats ",
    "sort ",
    "limit ",
    "parse ",
    "display ",
    "dedup ",
    "| ",
    "@timestamp",
    "@message",
    "@logStream",
    "count(*)",
    "count(x)",
    "avg(",
    "sum(",
    "max(",
    "min(",
    "pct(",
    "bin(5m)",
    "by ",
    "as ",
    "desc",
    "asc",
    " ",
    ",",
    "(",
    ")",
    "=",
    "!=",
    "<",
    ">",
    "like ",
    "/err.*/",
    "\"",
    "\"*\"",
    "'a'",
    "10",
    "0",
    "-1",
    "2.5",
    "and ",
    "or ",
    "not ",
    "in ",
    "[",
    "]",
    "strlen(",
    "concat(",
    "ispresent(",
    "abs(",
    "@message like /x/",
    "x",
    "y",
    "\n",
    "#c\n",
];

fn events() -> Vec<InsightsEvent> {
    [
        "ERROR level=3 took 12 ms",
        r#"{"level":"error","status":500,"a":[1,"b"],"took":2.5}"#,
        "",
        "127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| InsightsEvent {
        timestamp_ms: 1_700_000_000_000 + i64::try_from(i).unwrap_or(0) * 60_000,
        ingestion_ms: 1_700_000_000_000,
        message: (*m).to_owned(),
        log_stream: "s".into(),
        log_group: "g".into(),
    })
    .collect()
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "web",
            "default",
            "awsvpc",
            "bridge",
            "FARGATE",
            "EC2",
            TaskStatus::Running.as_str(),
            "256",
            "512",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let names = prop::sample::select(vec![
            "family",
            "containerDefinitions",
            "name",
            "image",
            "memory",
            "cpu",
            "portMappings",
            "containerPort",
            "networkMode",
            "taskDefinition",
            "cluster",
            "count",
            "serviceName",
            "desiredCount",
            "tags",
            "key",
            "value",
            "essential",
            "dependsOn",
            "healthCheck",
            "command",
            "environment",
            "secrets",
            "volumes",
            "launchType",
            "deploymentConfiguration",
            "placementConstraints",
            "type",
            "expression",
            "attributes",
            "targetId",
            "settings",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(names.prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn filter_patterns_parse_or_are_refused(pattern in sentence(FILTER_PIECES, 12)) {
        if let Ok(p) = FilterPattern::parse(&pattern) {
            for e in events() {
                let _ = p.matches(&e.message);
            }
        }
    }

    #[test]
    fn insights_queries_parse_or_are_refused(text in sentence(INSIGHTS_PIECES, 16)) {
        if let Ok(q) = Query::parse(&text) {
            let _ = q.run("123456789012", events());
        }
    }

    #[test]
    fn ecs_requests_of_any_shape_are_answered(
        op in prop::sample::select(vec![
            "RegisterTaskDefinition", "RunTask", "CreateService", "UpdateService", "CreateCluster",
            "DescribeTasks", "ListTasks", "PutAttributes", "TagResource", "UpdateCluster",
            "CreateCapacityProvider", "PutAccountSetting", "UpdateTaskProtection",
        ]),
        body in json(),
    ) {
        let (cp, _) = fleet();
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        if let Err(e) = dispatch(&cp, "us-east-1", op, &bytes) {
            prop_assert!(e.kind != ErrorType::Server, "{op} {body}: {e:?}");
        }
    }
}
