//! Readable tables: ECS JSON in, aligned columns out (`berth tasks`, `berth services`). Pure
//! functions; the clock is passed in.

use serde_json::Value;

/// Left-aligned columns two spaces apart, a header row first, no trailing spaces.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub const TASK_HEADERS: [&str; 7] = [
    "TASK",
    "DEFINITION",
    "LAST",
    "DESIRED",
    "HEALTH",
    "IP",
    "STARTED",
];

/// One row of `berth tasks` from an ECS `Task` object.
pub fn task_row(task: &Value, now_unix: f64) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let id = task["taskArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("-");
    let definition = family_revision(task["taskDefinitionArn"].as_str());
    let ip = task["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["details"].as_array().into_iter().flatten())
        .find(|d| d["name"] == "privateIPv4Address")
        .and_then(|d| d["value"].as_str())
        .or_else(|| task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"].as_str())
        .unwrap_or("-");
    let started = task["startedAt"]
        .as_f64()
        .map_or_else(|| "-".to_owned(), |t| age(now_unix - t));
    vec![
        id.to_owned(),
        definition,
        text(&task["lastStatus"]),
        text(&task["desiredStatus"]),
        text(&task["healthStatus"]),
        ip.to_owned(),
        started,
    ]
}

/// `berth tasks` as a table.
pub fn tasks_table(tasks: &[Value], now_unix: f64) -> String {
    let rows: Vec<Vec<String>> = tasks.iter().map(|t| task_row(t, now_unix)).collect();
    render(&TASK_HEADERS, &rows)
}

pub const SERVICE_HEADERS: [&str; 8] = [
    "SERVICE",
    "STATUS",
    "DEFINITION",
    "DESIRED",
    "RUNNING",
    "PENDING",
    "ROLLOUT",
    "LAST EVENT",
];

/// Longest event message shown in the table, in characters; `berth services -o json` has
/// them whole.
const EVENT_WIDTH: usize = 60;

/// One row of `berth services` from an ECS `Service` object.
pub fn service_row(service: &Value, now_unix: f64) -> Vec<String> {
    let count = |v: &Value| v.as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string());
    let name = service["serviceName"].as_str().unwrap_or("-");
    let deployments = service["deployments"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let rollout = deployments
        .iter()
        .find(|d| d["status"] == "PRIMARY")
        .and_then(|d| d["rolloutState"].as_str())
        .unwrap_or("-");
    let rollout = match deployments.len() {
        0 | 1 => rollout.to_owned(),
        n => format!("{rollout} ({n} deployments)"),
    };
    // ECS lists events newest first.
    let event = service["events"].as_array().and_then(|e| e.first());
    let last_event = event.map_or_else(
        || "-".to_owned(),
        |e| {
            let message = e["message"].as_str().unwrap_or("");
            // Every message starts "(service <name>) ": the row already says which.
            let message = message
                .strip_prefix(&format!("(service {name}) "))
                .unwrap_or(message);
            let when = e["createdAt"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |t| age(now_unix - t));
            format!("{when}: {}", shorten(message, EVENT_WIDTH))
        },
    );
    vec![
        name.to_owned(),
        service["status"].as_str().unwrap_or("-").to_owned(),
        family_revision(service["taskDefinition"].as_str()),
        count(&service["desiredCount"]),
        count(&service["runningCount"]),
        count(&service["pendingCount"]),
        rollout,
        last_event,
    ]
}

/// `berth services` as a table.
pub fn services_table(services: &[Value], now_unix: f64) -> String {
    let rows: Vec<Vec<String>> = services.iter().map(|s| service_row(s, now_unix)).collect();
    render(&SERVICE_HEADERS, &rows)
}

/// `arn:...:task-definition/family:revision` -> `family:revision`.
fn family_revision(arn: Option<&str>) -> String {
    arn.map_or("-", |a| a.rsplit_once('/').map_or(a, |(_, fr)| fr))
        .to_owned()
}

/// At most `max` characters, the last of them `…` when some were cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

/// How long ago, coarsely: `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn age(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "just now".to_owned();
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = secs as u64;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_align_and_lines_have_no_trailing_spaces() {
        let out = render(
            &["A", "LONG HEADER", "C"],
            &[
                vec!["xxxx".into(), "y".into(), String::new()],
                vec!["z".into(), "caf\u{e9}".into(), "w".into()],
            ],
        );
        assert_eq!(
            out,
            "A     LONG HEADER  C\n\
             xxxx  y\n\
             z     caf\u{e9}         w\n"
        );
        assert_eq!(render(&["ONLY"], &[]), "ONLY\n");
    }

    fn running_task() -> Value {
        json!({
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/default/0a1b2c3d4e5f",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "healthStatus": "HEALTHY",
            "startedAt": 1_714_564_800.5,
            "attachments": [{"type": "ElasticNetworkInterface", "details": [
                {"name": "macAddress", "value": "02:00:00:00:00:01"},
                {"name": "privateIPv4Address", "value": "10.131.0.5"}]}],
        })
    }

    #[test]
    fn a_task_row_shows_id_family_revision_statuses_ip_and_age() {
        assert_eq!(
            task_row(&running_task(), 1_714_564_800.5 + 125.0),
            [
                "0a1b2c3d4e5f",
                "web:3",
                "RUNNING",
                "RUNNING",
                "HEALTHY",
                "10.131.0.5",
                "2m ago"
            ]
        );
    }

    #[test]
    fn a_pending_task_shows_dashes_for_what_it_does_not_have_yet() {
        let t = json!({
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/default/ffff",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/batch:1",
            "lastStatus": "PROVISIONING",
            "desiredStatus": "RUNNING",
        });
        assert_eq!(
            task_row(&t, 0.0),
            ["ffff", "batch:1", "PROVISIONING", "RUNNING", "-", "-", "-"]
        );
    }

    #[test]
    fn a_bridge_task_takes_its_ip_from_the_container() {
        let t =
            json!({"containers": [{"networkInterfaces": [{"privateIpv4Address": "172.17.0.2"}]}]});
        assert_eq!(task_row(&t, 0.0)[5], "172.17.0.2");
    }

    #[test]
    fn the_tasks_table_has_a_header_and_one_line_per_task() {
        let out = tasks_table(&[running_task(), running_task()], 1_714_564_800.5 + 7200.0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with(
                "TASK          DEFINITION  LAST     DESIRED  HEALTH   IP          STARTED"
            ),
            "{out}"
        );
        assert!(lines[1].ends_with("10.131.0.5  2h ago"), "{out}");
    }

    fn rolling_service() -> Value {
        json!({
            "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/default/web",
            "serviceName": "web",
            "status": "ACTIVE",
            "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:4",
            "desiredCount": 2,
            "runningCount": 3,
            "pendingCount": 1,
            "deployments": [
                {"id": "ecs-svc/2", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"},
                {"id": "ecs-svc/1", "status": "ACTIVE", "rolloutState": "COMPLETED"}
            ],
            "events": [
                {"id": "e2", "createdAt": 1_000.0,
                 "message": "(service web) has started 1 tasks: (task 0a1b2c3d)."},
                {"id": "e1", "createdAt": 500.0,
                 "message": "(service web) has reached a steady state."}
            ]
        })
    }

    #[test]
    fn a_service_row_shows_counts_the_primary_rollout_and_the_newest_event() {
        assert_eq!(
            service_row(&rolling_service(), 1_000.0 + 90.0),
            [
                "web",
                "ACTIVE",
                "web:4",
                "2",
                "3",
                "1",
                "IN_PROGRESS (2 deployments)",
                "1m ago: has started 1 tasks: (task 0a1b2c3d)."
            ]
        );
    }

    #[test]
    fn a_settled_service_shows_one_rollout_state_and_a_bare_one_dashes() {
        let mut s = rolling_service();
        s["deployments"] = json!([{"status": "PRIMARY", "rolloutState": "COMPLETED"}]);
        assert_eq!(service_row(&s, 1_000.0)[6], "COMPLETED");
        let bare = json!({"serviceName": "new", "status": "ACTIVE"});
        assert_eq!(
            service_row(&bare, 0.0),
            ["new", "ACTIVE", "-", "-", "-", "-", "-", "-"]
        );
    }

    #[test]
    fn long_event_messages_are_cut_to_the_column() {
        let mut s = rolling_service();
        s["events"][0]["message"] = json!(format!("(service web) {}", "x".repeat(100)));
        let cell = &service_row(&s, 1_000.0)[7];
        assert_eq!(cell, &format!("0s ago: {}\u{2026}", "x".repeat(59)));
        assert_eq!(shorten("caf\u{e9}", 4), "caf\u{e9}");
        assert_eq!(shorten("abcde", 4), "abc\u{2026}");
    }

    #[test]
    fn the_services_table_has_a_header_and_one_line_per_service() {
        let out = services_table(&[rolling_service()], 1_000.0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].starts_with("SERVICE  STATUS  DEFINITION  DESIRED  RUNNING  PENDING  ROLLOUT"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("web      ACTIVE  web:4       2        3        1"),
            "{out}"
        );
    }

    #[test]
    fn ages_are_coarse() {
        assert_eq!(age(0.4), "0s ago");
        assert_eq!(age(59.9), "59s ago");
        assert_eq!(age(60.0), "1m ago");
        assert_eq!(age(3.0 * 3600.0 + 5.0), "3h ago");
        assert_eq!(age(2.5 * 86_400.0), "2d ago");
        assert_eq!(age(-3.0), "just now");
    }
}
