//! The record of ECS Exec sessions: who ran which command in which container, when, and
//! how it ended, as a service event (for a service's task) and an audit log line; and
//! what the command printed, in CloudWatch Logs when the cluster's
//! `executeCommandConfiguration` says so (`DEFAULT`: the container's awslogs group;
//! `OVERRIDE`: its `cloudWatchLogGroupName`; `NONE`: nowhere), one stream per session.

use std::sync::Arc;

use serde_json::Value;

use super::channel::Outcome;
use super::ExecTarget;
use crate::logs::model::InputEvent;
use crate::logs::{Logs, LogsError};
use crate::model::container_options::LogConfiguration;
use crate::state::ControlPlane;

/// At most this much of a session's output is kept for its log stream.
const TRANSCRIPT_LIMIT: usize = 4 << 20;

/// Where a session's output is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDestination {
    pub group: String,
    /// Make the group when missing (the container's `awslogs-create-group`).
    pub create_group: bool,
}

/// The destination the cluster's `configuration` and the container's log configuration
/// give a session.
pub fn destination(
    configuration: Option<&Value>,
    container_log: Option<&LogConfiguration>,
) -> Option<LogDestination> {
    let exec = configuration.and_then(|c| c.get("executeCommandConfiguration"));
    let mode = exec
        .and_then(|e| e.get("logging"))
        .and_then(Value::as_str)
        .unwrap_or("DEFAULT");
    match mode {
        "OVERRIDE" => exec
            .and_then(|e| e.pointer("/logConfiguration/cloudWatchLogGroupName"))
            .and_then(Value::as_str)
            .map(|g| LogDestination {
                group: g.to_owned(),
                create_group: false,
            }),
        "DEFAULT" => {
            let log = container_log.filter(|l| l.log_driver == "awslogs")?;
            let option = |name: &str| {
                log.options
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            Some(LogDestination {
                group: option("awslogs-group")?.to_owned(),
                create_group: option("awslogs-create-group") == Some("true"),
            })
        }
        _ => None,
    }
}

/// A session's output as log events: one per line, stamped when the line ended.
#[derive(Debug, Default)]
pub struct Transcript {
    events: Vec<InputEvent>,
    partial: Vec<u8>,
    kept: usize,
}

impl Transcript {
    pub fn push(&mut self, now_ms: i64, bytes: &[u8]) {
        let room = TRANSCRIPT_LIMIT.saturating_sub(self.kept);
        let bytes = &bytes[..bytes.len().min(room)];
        self.kept += bytes.len();
        for b in bytes {
            if *b == b'\n' {
                self.end_line(now_ms);
            } else if *b != b'\r' {
                self.partial.push(*b);
            }
        }
    }

    fn end_line(&mut self, now_ms: i64) {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
        if !line.is_empty() {
            self.events.push(InputEvent {
                timestamp_ms: now_ms,
                message: line,
            });
        }
    }

    pub fn finish(mut self, now_ms: i64) -> Vec<InputEvent> {
        self.end_line(now_ms);
        self.events
    }
}

/// Writes the records; held by the sessions.
pub struct Recorder {
    cp: Arc<ControlPlane>,
    logs: Arc<Logs>,
}

fn service_of(target: &ExecTarget) -> Option<&str> {
    target.group.as_deref()?.strip_prefix("service:")
}

fn ending(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Exited(code) => format!("the command exited with code {code}"),
        Outcome::ClientLeft => "the client left; the command was stopped".to_owned(),
        Outcome::Failed(why) => why.clone(),
    }
}

impl Recorder {
    pub fn new(cp: Arc<ControlPlane>, logs: Arc<Logs>) -> Self {
        Self { cp, logs }
    }

    fn service_event(&self, target: &ExecTarget, message: &str) {
        if let Some(service) = service_of(target) {
            let message = format!("(service {service}) {message}");
            if let Err(e) = self.cp.add_service_event(&target.cluster, service, message) {
                tracing::warn!(service, error = %e, "could not record an execute-command event");
            }
        }
    }

    pub fn started(&self, target: &ExecTarget, session_id: &str) {
        self.service_event(
            target,
            &format!(
                "execute-command session {session_id} by {} started {:?} in container {} of task {}.",
                target.caller, target.command, target.container, target.task_id
            ),
        );
    }

    pub fn ended(
        &self,
        target: &ExecTarget,
        session_id: &str,
        outcome: &Outcome,
        transcript: Option<Transcript>,
    ) {
        self.service_event(
            target,
            &format!(
                "execute-command session {session_id} in task {} ended: {}.",
                target.task_id,
                ending(outcome)
            ),
        );
        if let (Some(dest), Some(t)) = (&target.log, transcript) {
            let events = t.finish(self.cp.now_ms());
            if let Err(e) = self.write_log(dest, session_id, &target.task_arn, &events) {
                tracing::warn!(session = %session_id, group = %dest.group, error = %e, "could not log an execute-command session's output");
            }
        }
    }

    fn write_log(
        &self,
        dest: &LogDestination,
        stream: &str,
        task_arn: &str,
        events: &[InputEvent],
    ) -> Result<(), LogsError> {
        if dest.create_group && self.logs.resolve_group(&dest.group).is_err() {
            let region = self.cp.arns_of(task_arn).region;
            match self.logs.create_group(
                &region,
                &dest.group,
                std::collections::BTreeMap::new(),
                None,
            ) {
                Ok(_)
                | Err(LogsError::Store(crate::logs::store::LogStoreError::GroupExists(_))) => {}
                Err(e) => return Err(e),
            }
        }
        self.logs.create_stream(&dest.group, stream)?;
        if !events.is_empty() {
            self.logs.put_events(&dest.group, stream, events)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn awslogs(options: &[(&str, &str)]) -> LogConfiguration {
        LogConfiguration {
            log_driver: "awslogs".into(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_cluster_setting_picks_where_output_goes() {
        let container = awslogs(&[
            ("awslogs-group", "/ecs/web"),
            ("awslogs-create-group", "true"),
        ]);
        let web = Some(LogDestination {
            group: "/ecs/web".into(),
            create_group: true,
        });
        assert_eq!(destination(None, Some(&container)), web);
        let default = json!({"executeCommandConfiguration": {"logging": "DEFAULT"}});
        assert_eq!(destination(Some(&default), Some(&container)), web);
        assert_eq!(destination(Some(&default), None), None);
        let none = json!({"executeCommandConfiguration": {"logging": "NONE"}});
        assert_eq!(destination(Some(&none), Some(&container)), None);
        let over = json!({"executeCommandConfiguration": {"logging": "OVERRIDE",
            "logConfiguration": {"cloudWatchLogGroupName": "/audit/exec"}}});
        assert_eq!(
            destination(Some(&over), Some(&container)),
            Some(LogDestination {
                group: "/audit/exec".into(),
                create_group: false
            })
        );
    }

    #[test]
    fn a_transcript_is_lines_without_terminal_returns() {
        let mut t = Transcript::default();
        t.push(1, b"$ echo hi\r\nhi\r");
        t.push(2, b"\n$ ");
        let events = t.finish(3);
        let lines: Vec<(i64, &str)> = events
            .iter()
            .map(|e| (e.timestamp_ms, e.message.as_str()))
            .collect();
        assert_eq!(lines, vec![(1, "$ echo hi"), (2, "hi"), (3, "$ ")]);
    }
}
