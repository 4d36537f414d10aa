//! CloudWatch Logs, served by the control plane: log groups and streams, events in
//! (`PutLogEvents`, and the agents' awslogs batches) and out (`GetLogEvents`,
//! `FilterLogEvents` with filter patterns), tags and retention. The API (`api::logs`) and
//! the agent sessions (`agents`) both go through `Logs`.

mod agent;
pub mod filter;
pub mod insights;
pub mod model;
pub mod queries;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use self::agent::{AgentBatch, AgentEvent};
use self::filter::{FilterPattern, FilterPatternError};
use self::model::{
    check_batch, validate_group_name, validate_retention, validate_stream_name, BatchCheck,
    EventId, InputEvent, LogGroup, LogStream, StoredEvent,
};
use self::store::{Direction, LogStore, LogStoreError};
use crate::state::Clock;

/// Why a logs command failed. The API maps each to CloudWatch Logs' error.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Store(#[from] LogStoreError),
    #[error("{0}")]
    InvalidParameter(String),
    #[error(transparent)]
    FilterPattern(#[from] FilterPatternError),
    #[error("A log group holds at most 50 tags: {0} asked for.")]
    TooManyTags(usize),
    #[error(transparent)]
    MalformedQuery(#[from] insights::QueryError),
    #[error("The query '{0}' does not exist (or is too old to be kept).")]
    QueryNotFound(String),
}

/// A page of one stream's events and the tokens around it (`GetLogEvents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPage {
    pub events: Vec<StoredEvent>,
    pub forward: StreamPosition,
    pub backward: StreamPosition,
}

/// A position in a stream between two events: (timestamp, seq) of the event after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    pub timestamp_ms: i64,
    pub seq: u64,
}

impl StreamPosition {
    fn of(id: EventId) -> Self {
        Self {
            timestamp_ms: id.timestamp_ms,
            seq: id.seq,
        }
    }

    fn after(id: EventId) -> Self {
        Self {
            timestamp_ms: id.timestamp_ms,
            seq: id.seq + 1,
        }
    }
}

/// Which events `GetLogEvents` reads.
#[derive(Debug, Clone, Copy)]
pub struct StreamRead {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// A token's position, and whether it reads forward from it.
    pub from: Option<(StreamPosition, bool)>,
    pub start_from_head: bool,
    pub limit: usize,
}

/// Which events `FilterLogEvents` reads.
#[derive(Debug, Clone)]
pub struct FilterRead {
    pub streams: Option<Vec<String>>,
    pub stream_prefix: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub pattern: Option<String>,
    pub after: Option<EventId>,
    pub limit: usize,
}

pub struct Logs {
    store: Arc<LogStore>,
    clock: Arc<dyn Clock>,
    account: String,
    /// Agents' batches go in one at a time: each reads what its stream holds first.
    agent_appends: std::sync::Mutex<()>,
    /// Logs Insights queries, running and finished.
    queries: Arc<queries::QueryBook>,
}

fn group_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{name}")
}

impl Logs {
    pub fn new(store: LogStore, clock: Arc<dyn Clock>, account: &str) -> Self {
        Self {
            store: Arc::new(store),
            clock,
            account: account.to_owned(),
            agent_appends: std::sync::Mutex::new(()),
            queries: Arc::default(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn group(&self, name: &str) -> Result<LogGroup, LogsError> {
        self.store
            .group(name)
            .ok_or_else(|| LogStoreError::GroupNotFound(name.into()).into())
    }

    /// A group named by name or ARN (`logGroupIdentifier`, `resourceArn`).
    pub fn resolve_group(&self, name_or_arn: &str) -> Result<LogGroup, LogsError> {
        let name = name_or_arn
            .strip_prefix("arn:")
            .and_then(|rest| rest.split_once(":log-group:"))
            .map_or(name_or_arn, |(_, name)| {
                name.strip_suffix(":*").unwrap_or(name)
            });
        self.group(name)
    }

    pub fn create_group(
        &self,
        region: &str,
        name: &str,
        tags: BTreeMap<String, String>,
        class: Option<String>,
    ) -> Result<LogGroup, LogsError> {
        validate_group_name(name).map_err(LogsError::InvalidParameter)?;
        if let Some(c) = class.as_deref() {
            if !matches!(c, "STANDARD" | "INFREQUENT_ACCESS" | "DELIVERY") {
                return Err(LogsError::InvalidParameter(format!(
                    "logGroupClass '{c}' is not valid; use STANDARD, INFREQUENT_ACCESS or DELIVERY."
                )));
            }
        }
        if tags.len() > 50 {
            return Err(LogsError::TooManyTags(tags.len()));
        }
        let group = LogGroup {
            id: self.store.next_id(),
            name: name.to_owned(),
            arn: group_arn(region, &self.account, name),
            created_ms: self.now_ms(),
            retention_days: None,
            tags,
            class,
        };
        self.store.create_group(group.clone())?;
        Ok(group)
    }

    pub fn delete_group(&self, name: &str) -> Result<(), LogsError> {
        Ok(self.store.delete_group(name)?)
    }

    /// Groups whose name starts with `prefix` or contains `pattern` (case-insensitive),
    /// by name, with the bytes each holds.
    pub fn describe_groups(
        &self,
        prefix: Option<&str>,
        pattern: Option<&str>,
    ) -> Vec<(LogGroup, u64)> {
        let pattern = pattern.map(str::to_lowercase);
        self.store
            .groups()
            .into_iter()
            .filter(|g| prefix.is_none_or(|p| g.name.starts_with(p)))
            .filter(|g| {
                pattern
                    .as_deref()
                    .is_none_or(|p| g.name.to_lowercase().contains(p))
            })
            .map(|g| {
                let bytes = self.store.group_bytes(&g);
                (g, bytes)
            })
            .collect()
    }

    pub fn set_retention(&self, name: &str, days: Option<i64>) -> Result<(), LogsError> {
        let mut group = self.group(name)?;
        group.retention_days = days
            .map(validate_retention)
            .transpose()
            .map_err(LogsError::InvalidParameter)?;
        Ok(self.store.update_group(group)?)
    }

    /// Adds `add` to a group's tags and removes `remove`.
    pub fn change_tags(
        &self,
        group: &LogGroup,
        add: BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), LogsError> {
        let mut group = group.clone();
        group.tags.extend(add);
        for k in remove {
            group.tags.remove(k);
        }
        if group.tags.len() > 50 {
            return Err(LogsError::TooManyTags(group.tags.len()));
        }
        Ok(self.store.update_group(group)?)
    }

    pub fn create_stream(&self, group: &str, name: &str) -> Result<LogStream, LogsError> {
        validate_stream_name(name).map_err(LogsError::InvalidParameter)?;
        let g = self.group(group)?;
        let stream = LogStream::new(
            self.store.next_id(),
            name,
            format!("{}:log-stream:{name}", g.arn),
            self.now_ms(),
        );
        self.store.create_stream(group, stream.clone())?;
        Ok(stream)
    }

    pub fn delete_stream(&self, group: &str, name: &str) -> Result<(), LogsError> {
        Ok(self.store.delete_stream(group, name)?)
    }

    pub fn streams(&self, group: &str) -> Result<Vec<LogStream>, LogsError> {
        Ok(self.store.streams(group)?)
    }

    pub fn stream(&self, group: &str, name: &str) -> Result<Option<LogStream>, LogsError> {
        Ok(self.store.stream(group, name)?)
    }

    /// `PutLogEvents`: stores what the batch check accepts, durably.
    pub fn put_events(
        &self,
        group: &str,
        stream: &str,
        events: &[InputEvent],
    ) -> Result<BatchCheck, LogsError> {
        let g = self.group(group)?;
        let now = self.now_ms();
        let check =
            check_batch(events, now, g.retention_days).map_err(LogsError::InvalidParameter)?;
        self.store
            .append(group, stream, &events[check.accepted.clone()], now, None)?;
        Ok(check)
    }

    /// `GetLogEvents`: a page of one stream, oldest first, and the tokens around it.
    pub fn get_events(
        &self,
        group: &str,
        stream: &str,
        read: &StreamRead,
    ) -> Result<StreamPage, LogsError> {
        let window = (
            read.start_ms.unwrap_or(i64::MIN),
            read.end_ms.unwrap_or(i64::MAX),
        );
        let (direction, from) = match read.from {
            Some((p, forward)) => (
                if forward {
                    Direction::Forward
                } else {
                    Direction::Backward
                },
                Some(EventId {
                    timestamp_ms: p.timestamp_ms,
                    stream_id: 0,
                    seq: p.seq,
                }),
            ),
            None if read.start_from_head => (Direction::Forward, None),
            None => (Direction::Backward, None),
        };
        let events = self
            .store
            .read_stream(group, stream, window, from, direction, read.limit)?;
        let (forward, backward) = if let (Some(first), Some(last)) = (events.first(), events.last())
        {
            (StreamPosition::after(last.id), StreamPosition::of(first.id))
        } else {
            {
                // Nothing here: both tokens stay where the read started.
                let here = read.from.map_or(
                    StreamPosition {
                        timestamp_ms: window.1,
                        seq: 0,
                    },
                    |(p, _)| p,
                );
                (here, here)
            }
        };
        Ok(StreamPage {
            events,
            forward,
            backward,
        })
    }

    /// `FilterLogEvents`: a group's events across streams in time order that the pattern
    /// matches; the events, and whether the read reached the end.
    pub fn filter_events(
        &self,
        group: &str,
        read: &FilterRead,
    ) -> Result<(Vec<StoredEvent>, bool), LogsError> {
        let pattern = read
            .pattern
            .as_deref()
            .map(FilterPattern::parse)
            .transpose()?;
        let streams: Option<Vec<String>> = match (&read.streams, &read.stream_prefix) {
            (Some(names), _) => Some(names.clone()),
            (None, Some(prefix)) => Some(
                self.store
                    .streams(group)?
                    .into_iter()
                    .filter(|s| s.name.starts_with(prefix.as_str()))
                    .map(|s| s.name)
                    .collect(),
            ),
            (None, None) => None,
        };
        let keep = |m: &str| pattern.as_ref().is_none_or(|p| p.matches(m));
        Ok(self.store.filter(
            group,
            streams.as_deref(),
            (
                read.start_ms.unwrap_or(i64::MIN),
                read.end_ms.unwrap_or(i64::MAX),
            ),
            read.after,
            read.limit,
            &keep,
        )?)
    }

    /// Deletes what each group's retention no longer keeps; how many events.
    pub fn enforce_retention(&self) -> Result<u64, LogsError> {
        let now = self.now_ms();
        let mut total = 0;
        for g in self.store.groups() {
            if let Some(days) = g.retention_days {
                total += self
                    .store
                    .delete_before(&g.name, now - i64::from(days) * 86_400_000)?;
            }
        }
        Ok(total)
    }
}
