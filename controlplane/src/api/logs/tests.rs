//! CloudWatch Logs through `dispatch`: JSON in, JSON out, as botocore's model shapes them.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use serde_json::{json, Value};

use super::dispatch;
use crate::api::error::ErrorType;
use crate::logs::store::LogStore;
use crate::logs::Logs;
use crate::state::test_support::FixedClock;

const NOW: i64 = 1_800_000_000_000;

fn logs() -> (Logs, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock(AtomicI64::new(NOW)));
    let logs = Logs::new(
        LogStore::in_memory().unwrap(),
        clock.clone(),
        "123456789012",
    );
    (logs, clock)
}

fn call(logs: &Logs, op: &str, body: &Value) -> Value {
    dispatch(logs, "eu-west-1", op, body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

fn fails(logs: &Logs, op: &str, body: &Value) -> (ErrorType, String) {
    let e = dispatch(logs, "eu-west-1", op, body.to_string().as_bytes()).unwrap_err();
    (e.kind, e.message)
}

fn put(logs: &Logs, stream: &str, events: &[(i64, &str)]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|(t, m)| json!({"timestamp": t, "message": m}))
        .collect();
    call(
        logs,
        "PutLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": stream, "logEvents": events}),
    )
}

fn messages(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect()
}

/// `/ecs/app` with one empty stream, `s`.
fn group_with_stream_s(logs: &Logs) {
    call(logs, "CreateLogGroup", &json!({"logGroupName": "/ecs/app"}));
    call(
        logs,
        "CreateLogStream",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "s"}),
    );
}

/// `/ecs/app` with two streams: `web/app/1` (a1..a3) and `web/app/2` (b1, b2),
/// interleaved in time.
fn two_streams(logs: &Logs) {
    call(logs, "CreateLogGroup", &json!({"logGroupName": "/ecs/app"}));
    for s in ["web/app/1", "web/app/2"] {
        call(
            logs,
            "CreateLogStream",
            &json!({"logGroupName": "/ecs/app", "logStreamName": s}),
        );
    }
    put(
        logs,
        "web/app/1",
        &[
            (NOW - 50, "a1 INFO"),
            (NOW - 30, "a2 ERROR disk"),
            (NOW - 10, "a3 INFO"),
        ],
    );
    put(
        logs,
        "web/app/2",
        &[(NOW - 40, "b1 ERROR net"), (NOW - 20, "b2 INFO")],
    );
}

#[test]
fn groups_are_created_described_and_deleted_with_aws_errors() {
    let (logs, _) = logs();
    call(
        &logs,
        "CreateLogGroup",
        &json!({"logGroupName": "/ecs/app", "tags": {"team": "a"}}),
    );
    call(
        &logs,
        "CreateLogGroup",
        &json!({"logGroupName": "/ecs/api"}),
    );
    call(&logs, "CreateLogGroup", &json!({"logGroupName": "other"}));
    let (kind, message) = fails(
        &logs,
        "CreateLogGroup",
        &json!({"logGroupName": "/ecs/app"}),
    );
    assert_eq!(kind, ErrorType::ResourceAlreadyExists);
    assert!(message.contains("already exists"), "{message}");
    let (kind, _) = fails(
        &logs,
        "CreateLogGroup",
        &json!({"logGroupName": "bad name"}),
    );
    assert_eq!(kind, ErrorType::InvalidParameter);

    let out = call(
        &logs,
        "DescribeLogGroups",
        &json!({"logGroupNamePrefix": "/ecs/", "limit": 1}),
    );
    assert_eq!(out["logGroups"][0]["logGroupName"], "/ecs/api");
    assert_eq!(
        out["logGroups"][0]["arn"],
        "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/api:*"
    );
    assert_eq!(out["logGroups"][0]["creationTime"], NOW);
    let next = call(
        &logs,
        "DescribeLogGroups",
        &json!({"logGroupNamePrefix": "/ecs/", "nextToken": out["nextToken"]}),
    );
    assert_eq!(next["logGroups"][0]["logGroupName"], "/ecs/app");
    assert!(next.get("nextToken").is_none());
    let by_pattern = call(
        &logs,
        "DescribeLogGroups",
        &json!({"logGroupNamePattern": "OTH"}),
    );
    assert_eq!(by_pattern["logGroups"].as_array().unwrap().len(), 1);

    let arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/app:*";
    call(
        &logs,
        "TagResource",
        &json!({"resourceArn": arn, "tags": {"env": "prod"}}),
    );
    call(
        &logs,
        "UntagResource",
        &json!({"resourceArn": arn, "tagKeys": ["team"]}),
    );
    assert_eq!(
        call(&logs, "ListTagsForResource", &json!({"resourceArn": arn}))["tags"],
        json!({"env": "prod"})
    );
    assert_eq!(
        call(
            &logs,
            "ListTagsLogGroup",
            &json!({"logGroupName": "/ecs/app"})
        )["tags"],
        json!({"env": "prod"})
    );

    call(
        &logs,
        "DeleteLogGroup",
        &json!({"logGroupName": "/ecs/app"}),
    );
    let (kind, message) = fails(
        &logs,
        "DeleteLogGroup",
        &json!({"logGroupName": "/ecs/app"}),
    );
    assert_eq!(kind, ErrorType::ResourceNotFound);
    assert!(message.contains("does not exist"), "{message}");
    let (kind, _) = fails(
        &logs,
        "CreateLogStream",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "s"}),
    );
    assert_eq!(kind, ErrorType::ResourceNotFound);
}

#[test]
fn events_go_in_and_come_back_by_stream_and_across_streams() {
    let (logs, _) = logs();
    two_streams(&logs);

    // GetLogEvents: the newest by default, the oldest first from the head; tokens page.
    let tail = call(
        &logs,
        "GetLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "web/app/1", "limit": 2}),
    );
    assert_eq!(messages(&tail["events"]), ["a2 ERROR disk", "a3 INFO"]);
    assert_eq!(tail["events"][0]["timestamp"], NOW - 30);
    assert_eq!(tail["events"][0]["ingestionTime"], NOW);
    let back = call(
        &logs,
        "GetLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "web/app/1", "nextToken": tail["nextBackwardToken"]}),
    );
    assert_eq!(messages(&back["events"]), ["a1 INFO"]);
    let head = call(
        &logs,
        "GetLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "web/app/1", "startFromHead": true, "limit": 2}),
    );
    assert_eq!(messages(&head["events"]), ["a1 INFO", "a2 ERROR disk"]);
    let rest = call(
        &logs,
        "GetLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "web/app/1", "nextToken": head["nextForwardToken"]}),
    );
    assert_eq!(messages(&rest["events"]), ["a3 INFO"]);
    // At the end, the forward token stays put: the aws CLI stops paging there.
    let end = call(
        &logs,
        "GetLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "web/app/1", "nextToken": rest["nextForwardToken"]}),
    );
    assert_eq!(end["events"], json!([]));
    assert_eq!(end["nextForwardToken"], rest["nextForwardToken"]);
}

#[test]
fn filter_log_events_reads_across_streams_in_time_order() {
    let (logs, _) = logs();
    two_streams(&logs);
    // FilterLogEvents: across streams, in time order, the pattern applied, paged.
    let all = call(
        &logs,
        "FilterLogEvents",
        &json!({"logGroupName": "/ecs/app"}),
    );
    assert_eq!(
        messages(&all["events"]),
        [
            "a1 INFO",
            "b1 ERROR net",
            "a2 ERROR disk",
            "b2 INFO",
            "a3 INFO"
        ]
    );
    assert_eq!(all["events"][1]["logStreamName"], "web/app/2");
    assert_eq!(all["searchedLogStreams"][0]["searchedCompletely"], true);
    let errors = call(
        &logs,
        "FilterLogEvents",
        &json!({"logGroupName": "/ecs/app", "filterPattern": "ERROR", "limit": 1}),
    );
    assert_eq!(messages(&errors["events"]), ["b1 ERROR net"]);
    let more = call(
        &logs,
        "FilterLogEvents",
        &json!({"logGroupName": "/ecs/app", "filterPattern": "ERROR", "nextToken": errors["nextToken"]}),
    );
    assert_eq!(messages(&more["events"]), ["a2 ERROR disk"]);
    assert!(more.get("nextToken").is_none());
    let window = call(
        &logs,
        "FilterLogEvents",
        &json!({"logGroupName": "/ecs/app", "startTime": NOW - 40, "endTime": NOW - 20, "logStreamNamePrefix": "web/app/2"}),
    );
    assert_eq!(messages(&window["events"]), ["b1 ERROR net"]);
    // The full pattern language: alternatives, exclusions, and a bad pattern refused.
    let either = call(
        &logs,
        "FilterLogEvents",
        &json!({"logGroupName": "/ecs/app", "filterPattern": "?disk ?net"}),
    );
    assert_eq!(
        messages(&either["events"]),
        ["b1 ERROR net", "a2 ERROR disk"]
    );
    let not_info = call(
        &logs,
        "FilterLogEvents",
        &json!({"logGroupName": "/ecs/app", "filterPattern": "-INFO"}),
    );
    assert_eq!(
        messages(&not_info["events"]),
        ["b1 ERROR net", "a2 ERROR disk"]
    );
    let (kind, message) = fails(
        &logs,
        "FilterLogEvents",
        &json!({"logGroupName": "/ecs/app", "filterPattern": "{ $.level = "}),
    );
    assert_eq!(kind, ErrorType::InvalidParameter);
    assert!(message.contains("filter pattern"), "{message}");

    let streams = call(
        &logs,
        "DescribeLogStreams",
        &json!({"logGroupName": "/ecs/app", "orderBy": "LastEventTime", "descending": true}),
    );
    assert_eq!(streams["logStreams"][0]["logStreamName"], "web/app/1");
    assert_eq!(streams["logStreams"][0]["lastEventTimestamp"], NOW - 10);
    assert_eq!(streams["logStreams"][0]["firstEventTimestamp"], NOW - 50);
    assert_eq!(
        streams["logStreams"][0]["storedBytes"],
        ("a1 INFO".len() + "a2 ERROR disk".len() + "a3 INFO".len() + 3 * 26) as u64
    );
}

#[test]
fn bad_batches_and_out_of_range_events_are_reported_as_cloudwatch_does() {
    let (logs, _) = logs();
    group_with_stream_s(&logs);
    let unsorted = json!({"logGroupName": "/ecs/app", "logStreamName": "s",
        "logEvents": [{"timestamp": NOW, "message": "b"}, {"timestamp": NOW - 1, "message": "a"}]});
    let (kind, message) = fails(&logs, "PutLogEvents", &unsorted);
    assert_eq!(kind, ErrorType::InvalidParameter);
    assert!(message.contains("chronological order"), "{message}");
    let (kind, _) = fails(
        &logs,
        "PutLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "nope", "logEvents": [{"timestamp": NOW, "message": "x"}]}),
    );
    assert_eq!(kind, ErrorType::ResourceNotFound);
    let out = put(
        &logs,
        "s",
        &[(NOW - 3_600_000, "kept"), (NOW + 3 * 3_600_000, "new")],
    );
    assert_eq!(
        out["rejectedLogEventsInfo"],
        json!({"tooNewLogEventStartIndex": 1})
    );
    let day = 86_400_000;
    let out = put(
        &logs,
        "s",
        &[
            (NOW - 14 * day - 1, "old"),
            (NOW - 14 * day + 1, "old but kept"),
        ],
    );
    assert_eq!(
        out["rejectedLogEventsInfo"],
        json!({"tooOldLogEventEndIndex": 1})
    );
    let span = json!({"logGroupName": "/ecs/app", "logStreamName": "s",
        "logEvents": [{"timestamp": NOW - day - 1, "message": "a"}, {"timestamp": NOW, "message": "b"}]});
    let (kind, message) = fails(&logs, "PutLogEvents", &span);
    assert_eq!(kind, ErrorType::InvalidParameter);
    assert!(message.contains("24 hours"), "{message}");
    let got = call(
        &logs,
        "GetLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "s", "startFromHead": true}),
    );
    assert_eq!(messages(&got["events"]), ["old but kept", "kept"]);
    let (kind, message) = fails(
        &logs,
        "PutRetentionPolicy",
        &json!({"logGroupName": "/ecs/app", "retentionInDays": 2}),
    );
    assert_eq!(kind, ErrorType::InvalidParameter);
    assert!(message.contains("retentionInDays 2"), "{message}");
    let (kind, _) = fails(
        &logs,
        "GetLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "s", "nextToken": "zzz"}),
    );
    assert_eq!(kind, ErrorType::InvalidParameter);
    let (kind, _) = fails(
        &logs,
        "DescribeLogStreams",
        &json!({"logGroupName": "/ecs/app", "orderBy": "LastEventTime", "logStreamNamePrefix": "s"}),
    );
    assert_eq!(kind, ErrorType::InvalidParameter);
    let (kind, _) = fails(&logs, "StartLiveTail", &json!({}));
    assert_eq!(kind, ErrorType::UnknownOperation);
}

#[test]
fn retention_deletes_what_it_no_longer_keeps() {
    let (logs, clock) = logs();
    group_with_stream_s(&logs);
    let day = 86_400_000;
    put(&logs, "s", &[(NOW - 3 * day, "three days old")]);
    put(&logs, "s", &[(NOW - day, "one day old"), (NOW, "new")]);
    call(
        &logs,
        "PutRetentionPolicy",
        &json!({"logGroupName": "/ecs/app", "retentionInDays": 1}),
    );
    let described = call(&logs, "DescribeLogGroups", &json!({}));
    assert_eq!(described["logGroups"][0]["retentionInDays"], 1);
    clock.advance_ms(1);
    assert_eq!(logs.enforce_retention().unwrap(), 2);
    let got = call(
        &logs,
        "GetLogEvents",
        &json!({"logGroupName": "/ecs/app", "logStreamName": "s"}),
    );
    assert_eq!(messages(&got["events"]), ["new"]);
    let streams = call(
        &logs,
        "DescribeLogStreams",
        &json!({"logGroupName": "/ecs/app"}),
    );
    assert_eq!(streams["logStreams"][0]["firstEventTimestamp"], NOW);
    assert_eq!(
        streams["logStreams"][0]["storedBytes"],
        ("new".len() + 26) as u64
    );
    call(
        &logs,
        "DeleteRetentionPolicy",
        &json!({"logGroupName": "/ecs/app"}),
    );
    assert!(call(&logs, "DescribeLogGroups", &json!({}))["logGroups"][0]
        .get("retentionInDays")
        .is_none());
}

/// `GetQueryResults` once the query has finished (it runs on its own thread).
fn finished(logs: &Logs, id: &Value) -> Value {
    let id = id.as_str().expect("a query id");
    assert!(
        logs.wait_query(id, std::time::Duration::from_secs(10)),
        "the query {id} never finished"
    );
    call(logs, "GetQueryResults", &json!({"queryId": id}))
}

#[test]
fn insights_queries_start_run_and_report_as_cloudwatch_does() {
    let (logs, _) = logs();
    two_streams(&logs);
    let window = json!({"startTime": NOW / 1000 - 3600, "endTime": NOW / 1000});
    let start = |query: &str| {
        let mut body = json!({"logGroupName": "/ecs/app", "queryString": query});
        body["startTime"] = window["startTime"].clone();
        body["endTime"] = window["endTime"].clone();
        call(&logs, "StartQuery", &body)["queryId"].clone()
    };
    let id = start("filter @message like /ERROR/ | stats count(*) as errors by @logStream | sort @logStream asc");
    let r = finished(&logs, &id);
    assert_eq!(r["status"], "Complete", "{r}");
    assert_eq!(
        r["results"],
        json!([
            [{"field": "@logStream", "value": "web/app/1"}, {"field": "errors", "value": "1"}],
            [{"field": "@logStream", "value": "web/app/2"}, {"field": "errors", "value": "1"}],
        ])
    );
    assert_eq!(r["statistics"]["recordsScanned"], 5, "{r}");
    assert_eq!(r["statistics"]["recordsMatched"], 2, "{r}");

    let newest = start("fields @message | limit 2");
    let r = finished(&logs, &newest);
    let shown: Vec<&Value> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| &row[0]["value"])
        .collect();
    assert_eq!(shown, ["a3 INFO", "b2 INFO"], "newest first: {r}");

    // A finished query cannot be stopped; DescribeQueries lists both, newest first.
    assert_eq!(
        call(&logs, "StopQuery", &json!({"queryId": id}))["success"],
        false
    );
    let listed = call(
        &logs,
        "DescribeQueries",
        &json!({"logGroupName": "/ecs/app"}),
    );
    assert_eq!(listed["queries"][0]["queryId"], newest);
    assert_eq!(listed["queries"][1]["status"], "Complete");

    let (kind, message) = fails(
        &logs,
        "StartQuery",
        &json!({"logGroupName": "/ecs/app", "queryString": "fields @message | dedup @message",
                "startTime": 0, "endTime": 1}),
    );
    assert_eq!(kind, ErrorType::MalformedQuery);
    assert!(message.contains("dedup"), "{message}");
    let (kind, _) = fails(
        &logs,
        "StartQuery",
        &json!({"logGroupName": "/nope", "queryString": "fields @message", "startTime": 0, "endTime": 1}),
    );
    assert_eq!(kind, ErrorType::ResourceNotFound);
    let (kind, _) = fails(&logs, "GetQueryResults", &json!({"queryId": "not-a-query"}));
    assert_eq!(kind, ErrorType::ResourceNotFound);
}

#[test]
fn a_group_keeps_the_class_it_was_created_with() {
    let (logs, _) = logs();
    call(
        &logs,
        "CreateLogGroup",
        &json!({"logGroupName": "/delivery", "logGroupClass": "DELIVERY"}),
    );
    call(&logs, "CreateLogGroup", &json!({"logGroupName": "/plain"}));
    let out = call(&logs, "DescribeLogGroups", &json!({}));
    let classes: Vec<(&str, &str)> = out["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["logGroupName"].as_str().unwrap(),
                g["logGroupClass"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(classes, [("/delivery", "DELIVERY"), ("/plain", "STANDARD")]);
    let (kind, message) = fails(
        &logs,
        "CreateLogGroup",
        &json!({"logGroupName": "/x", "logGroupClass": "GLACIER"}),
    );
    assert_eq!(kind, ErrorType::InvalidParameter);
    assert!(message.contains("GLACIER"), "{message}");
}
