//! The agents' awslogs batches: each container's output, in journal order, with the
//! journal offset after each event, so that a batch resent after a lost
//! acknowledgement (or an agent restart), however the agent cuts it, is stored once.

use std::collections::BTreeMap;

use super::model::InputEvent;
use super::store::LogStoreError;
use super::{Logs, LogsError};

/// An agent's batch of one awslogs container's events (`LogBatch` on the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBatch {
    pub group: String,
    pub stream: String,
    pub create_group: bool,
    pub events: Vec<AgentEvent>,
    /// The journal offset the batch continues from.
    pub journal_start: u64,
    /// The journal offset the batch reaches (past its last event, or the journal's end).
    pub journal_end: u64,
    /// Lines the agent's non-blocking mode dropped before these.
    pub dropped_events: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEvent {
    pub timestamp_ms: i64,
    pub message: String,
    /// The journal offset just past this event.
    pub journal_end: u64,
}

impl Logs {
    /// Stores an agent's batch: the stream (and, when asked, the group) is made on first
    /// use, as ECS's agent does; events the stream already holds are skipped.
    pub fn append_agent_batch(&self, region: &str, batch: &AgentBatch) -> Result<(), LogsError> {
        if self.store.group(&batch.group).is_none() {
            if !batch.create_group {
                return Err(LogStoreError::GroupNotFound(batch.group.clone()).into());
            }
            match self.create_group(region, &batch.group, BTreeMap::new(), None) {
                Ok(_) | Err(LogsError::Store(LogStoreError::GroupExists(_))) => {}
                Err(e) => return Err(e),
            }
        }
        let _one_at_a_time = self
            .agent_appends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = if let Some(s) = self.store.stream(&batch.group, &batch.stream)? {
            s.journal_end
        } else {
            match self.create_stream(&batch.group, &batch.stream) {
                Ok(_) | Err(LogsError::Store(LogStoreError::StreamExists { .. })) => {}
                Err(e) => return Err(e),
            }
            0
        };
        if batch.journal_end <= held {
            return Ok(());
        }
        // A batch before this one was refused: storing this would leave its lines out
        // for good (a resend of them would look already held). A stream with nothing
        // of the journal yet (new, or made again after a delete) takes any start.
        if held > 0 && batch.journal_start > held && batch.dropped_events == 0 {
            return Err(LogsError::InvalidParameter(format!(
                "this batch continues the journal from offset {} but log stream '{}' holds it only up to {held}: the batches between are sent again first",
                batch.journal_start, batch.stream
            )));
        }
        let mut events: Vec<InputEvent> = batch
            .events
            .iter()
            .filter(|e| e.journal_end > held)
            .map(|e| InputEvent {
                timestamp_ms: e.timestamp_ms,
                message: e.message.clone(),
            })
            .collect();
        if batch.dropped_events > 0 {
            // Never silent: the stream itself says what non-blocking mode dropped.
            events.insert(
                0,
                InputEvent {
                    timestamp_ms: events
                        .first()
                        .map_or_else(|| self.now_ms(), |e| e.timestamp_ms),
                    message: format!(
                        "[berth] {} lines of this container's output were dropped: awslogs \
                         mode non-blocking, and more was waiting to ship than its \
                         max-buffer-size",
                        batch.dropped_events
                    ),
                },
            );
        }
        self.store.append(
            &batch.group,
            &batch.stream,
            &events,
            self.now_ms(),
            Some(batch.journal_end),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;
    use std::sync::Arc;

    use super::*;
    use crate::logs::store::LogStore;
    use crate::logs::FilterRead;
    use crate::state::test_support::FixedClock;

    /// Events `(timestamp, message)`, each taking 10 bytes of journal from `start`.
    fn batch(start: u64, events: &[(i64, &str)], dropped_events: u64) -> AgentBatch {
        let events: Vec<AgentEvent> = events
            .iter()
            .zip(1..)
            .map(|((t, m), k)| AgentEvent {
                timestamp_ms: *t,
                message: (*m).into(),
                journal_end: start + 10 * k,
            })
            .collect();
        AgentBatch {
            group: "/ecs/app".into(),
            stream: "ecs/web/0123".into(),
            create_group: true,
            journal_start: start,
            journal_end: events.last().map_or(start, |e| e.journal_end),
            events,
            dropped_events,
        }
    }

    fn stored(logs: &Logs) -> Vec<(i64, String)> {
        let read = FilterRead {
            streams: None,
            stream_prefix: None,
            start_ms: None,
            end_ms: None,
            pattern: None,
            after: None,
            limit: 100,
        };
        let (events, _) = logs.filter_events("/ecs/app", &read).unwrap();
        events
            .into_iter()
            .map(|e| (e.id.timestamp_ms, e.message))
            .collect()
    }

    #[test]
    fn agent_batches_make_their_stream_store_once_and_say_what_was_dropped() {
        let clock = Arc::new(FixedClock(AtomicI64::new(1000)));
        let logs = Logs::new(LogStore::in_memory().unwrap(), clock, "1");
        let mut no_create = batch(0, &[(1, "x")], 0);
        no_create.create_group = false;
        assert!(matches!(
            logs.append_agent_batch("r", &no_create),
            Err(LogsError::Store(LogStoreError::GroupNotFound(_)))
        ));
        // Sent, then resent whole (its ack was lost).
        let first = batch(0, &[(1, "a"), (2, "b")], 0);
        logs.append_agent_batch("eu-west-1", &first).unwrap();
        logs.append_agent_batch("eu-west-1", &first).unwrap();
        // Resent cut differently: from "b" on, with more after it.
        logs.append_agent_batch("eu-west-1", &batch(10, &[(2, "b"), (3, "c")], 0))
            .unwrap();
        logs.append_agent_batch("eu-west-1", &batch(30, &[(4, "d")], 7))
            .unwrap();
        let group = logs.resolve_group("/ecs/app").unwrap();
        assert_eq!(group.arn, "arn:aws:logs:eu-west-1:1:log-group:/ecs/app");
        let events = stored(&logs);
        let messages: Vec<&str> = events.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(messages[..3], ["a", "b", "c"]);
        assert!(
            messages[3].contains("7 lines of this container's output were dropped"),
            "{messages:?}"
        );
        assert_eq!(events[3].0, 4);
        assert_eq!(messages[4], "d");
        assert_eq!(messages.len(), 5);
    }

    #[test]
    fn a_batch_that_would_leave_a_gap_is_refused_until_the_one_before_it_is_stored() {
        let clock = Arc::new(FixedClock(AtomicI64::new(1000)));
        let logs = Logs::new(LogStore::in_memory().unwrap(), clock, "1");
        logs.append_agent_batch("r", &batch(0, &[(1, "a")], 0))
            .unwrap();
        // The batch from 10 to 20 was refused (say, a failed commit); 20 onwards waits.
        let after_the_gap = batch(20, &[(3, "c")], 0);
        let err = logs.append_agent_batch("r", &after_the_gap).unwrap_err();
        assert!(err.to_string().contains("holds it only up to 10"), "{err}");
        logs.append_agent_batch("r", &batch(10, &[(2, "b")], 0))
            .unwrap();
        logs.append_agent_batch("r", &after_the_gap).unwrap();
        let messages: Vec<String> = stored(&logs).into_iter().map(|(_, m)| m).collect();
        assert_eq!(messages, ["a", "b", "c"]);
        // Dropped lines (non-blocking mode) are a gap the batch itself accounts for.
        logs.append_agent_batch("r", &batch(100, &[(9, "z")], 4))
            .unwrap();
    }
}
