//! CloudWatch Logs' resources as Berth keeps them (log groups, log streams, events) and
//! AWS's rules for their names, for retention, and for a `PutLogEvents` batch. Pure.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
/// What CloudWatch Logs counts per event on top of its message, toward a batch's size.
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// An event's message at most, with its overhead (CloudWatch Logs' classic 256 KiB).
pub const MAX_EVENT_BYTES: usize = 262_144;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// A batch may span at most this long.
pub const MAX_SPAN_MS: i64 = DAY_MS;
/// Events further in the future than this are refused as too new.
pub const TOO_NEW_MS: i64 = 2 * HOUR_MS;
/// Events older than this are refused as too old.
pub const TOO_OLD_MS: i64 = 14 * DAY_MS;

/// A log group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogGroup {
    /// Berth's key for its streams and events (never shown).
    pub id: u64,
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    pub retention_days: Option<u32>,
    pub tags: BTreeMap<String, String>,
    /// `logGroupClass` as created; None: `STANDARD`.
    #[serde(default)]
    pub class: Option<String>,
}

/// A log stream of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStream {
    pub id: u64,
    pub name: String,
    pub arn: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: Option<i64>,
    pub stored_bytes: u64,
    /// The next event's sequence number: events of one timestamp keep their order.
    pub next_seq: u64,
    /// How far into its container's journal an agent's batches are stored (0: none):
    /// a batch resent after a lost acknowledgement is not stored twice.
    pub journal_end: u64,
}

impl LogStream {
    /// A stream with no events yet.
    pub fn new(id: u64, name: &str, arn: String, created_ms: i64) -> Self {
        Self {
            id,
            name: name.to_owned(),
            arn,
            created_ms,
            first_event_ms: None,
            last_event_ms: None,
            last_ingestion_ms: None,
            stored_bytes: 0,
            next_seq: 0,
            journal_end: 0,
        }
    }
}

/// An event as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputEvent {
    pub timestamp_ms: i64,
    pub message: String,
}

/// Where an event is: a total order across a group's streams (time, then stream, then
/// arrival), which `FilterLogEvents` pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub timestamp_ms: i64,
    pub stream_id: u64,
    pub seq: u64,
}

impl EventId {
    /// The `eventId` clients see (and `aws logs tail` de-duplicates by).
    pub fn to_token(self) -> String {
        format!("{}-{}-{}", self.timestamp_ms, self.stream_id, self.seq)
    }

    pub fn from_token(token: &str) -> Option<Self> {
        let mut parts = token.splitn(3, '-');
        let timestamp_ms = parts.next()?.parse().ok()?;
        let stream_id = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        Some(Self {
            timestamp_ms,
            stream_id,
            seq,
        })
    }
}

/// A stored event, as reads return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: EventId,
    pub stream: String,
    pub ingestion_ms: i64,
    pub message: String,
}

/// The size an event counts for (message bytes plus CloudWatch's overhead).
pub fn event_size(message: &str) -> usize {
    message.len() + EVENT_OVERHEAD
}

pub fn validate_group_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-_/#".contains(&b));
    if (1..=512).contains(&name.len()) && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "Log group name '{name}' is not valid: 1-512 characters of letters, digits, and . - _ / #."
        ))
    }
}

pub fn validate_stream_name(name: &str) -> Result<(), String> {
    if (1..=512).contains(&name.len()) && !name.contains([':', '*']) {
        Ok(())
    } else {
        Err(format!(
            "Log stream name '{name}' is not valid: 1-512 characters, without ':' or '*'."
        ))
    }
}

pub fn validate_retention(days: i64) -> Result<u32, String> {
    u32::try_from(days)
        .ok()
        .filter(|d| RETENTION_DAYS.contains(d))
        .ok_or_else(|| {
            let allowed: Vec<String> = RETENTION_DAYS.iter().map(u32::to_string).collect();
            format!(
                "Invalid retentionInDays {days}: use one of {}.",
                allowed.join(", ")
            )
        })
}

/// Which events of a checked batch are stored, and why the others are not, as
/// `rejectedLogEventsInfo` says it (indexes into the batch).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchCheck {
    pub accepted: Range<usize>,
    /// The first too-new event (inclusive): it and all after it.
    pub too_new_start: Option<usize>,
    /// Past the last too-old event (exclusive).
    pub too_old_end: Option<usize>,
    /// Past the last event older than the group's retention (exclusive).
    pub expired_end: Option<usize>,
}

/// Checks a `PutLogEvents` batch as CloudWatch Logs does: a batch that breaks a limit is
/// refused whole (the message says which); events too new, too old or past the group's
/// retention are left out and reported.
pub fn check_batch(
    events: &[InputEvent],
    now_ms: i64,
    retention_days: Option<u32>,
) -> Result<BatchCheck, String> {
    if events.is_empty() {
        return Err("logEvents must hold at least one event.".into());
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(format!(
            "A PutLogEvents batch holds at most {MAX_BATCH_EVENTS} events, got {}.",
            events.len()
        ));
    }
    let mut bytes = 0usize;
    for (i, e) in events.iter().enumerate() {
        if e.message.is_empty() {
            return Err(format!("logEvents[{i}].message must not be empty."));
        }
        let size = event_size(&e.message);
        if size > MAX_EVENT_BYTES {
            return Err(format!(
                "logEvents[{i}] is {size} bytes with its overhead; an event holds at most {MAX_EVENT_BYTES}."
            ));
        }
        bytes += size;
        if i > 0 && e.timestamp_ms < events[i - 1].timestamp_ms {
            return Err(
                "Log events in a single PutLogEvents request must be in chronological order."
                    .into(),
            );
        }
    }
    if bytes > MAX_BATCH_BYTES {
        return Err(format!(
            "The batch is {bytes} bytes counting {EVENT_OVERHEAD} per event; at most {MAX_BATCH_BYTES}."
        ));
    }
    let span = events[events.len() - 1].timestamp_ms - events[0].timestamp_ms;
    if span > MAX_SPAN_MS {
        return Err(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
                .into(),
        );
    }
    let count = |pred: &dyn Fn(&InputEvent) -> bool| events.iter().take_while(|e| pred(e)).count();
    let too_old = count(&|e| e.timestamp_ms < now_ms - TOO_OLD_MS);
    let expired = retention_days.map_or(0, |days| {
        count(&|e| e.timestamp_ms < now_ms - i64::from(days) * DAY_MS)
    });
    let too_new_start = events
        .iter()
        .position(|e| e.timestamp_ms > now_ms + TOO_NEW_MS);
    let start = too_old.max(expired);
    let end = too_new_start.unwrap_or(events.len()).max(start);
    Ok(BatchCheck {
        accepted: start..end,
        too_new_start,
        too_old_end: (too_old > 0).then_some(too_old),
        expired_end: (expired > 0).then_some(expired),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn ev(timestamp_ms: i64, message: &str) -> InputEvent {
        InputEvent {
            timestamp_ms,
            message: message.into(),
        }
    }

    #[test]
    fn names_and_retention_follow_aws() {
        assert!(validate_group_name("/ecs/my-app_1.#x").is_ok());
        assert!(validate_group_name("").is_err());
        assert!(validate_group_name("a b").is_err());
        assert!(validate_group_name(&"a".repeat(513)).is_err());
        assert!(validate_stream_name("web/app/0123").is_ok());
        assert!(validate_stream_name("a:b").is_err());
        assert!(validate_stream_name("a*").is_err());
        assert_eq!(validate_retention(14), Ok(14));
        let e = validate_retention(15).unwrap_err();
        assert!(e.contains("1, 3, 5, 7, 14"), "{e}");
    }

    #[test]
    fn a_batch_breaking_a_limit_is_refused_whole() {
        assert!(check_batch(&[], NOW, None)
            .unwrap_err()
            .contains("at least one"));
        let unsorted = [ev(NOW, "b"), ev(NOW - 1, "a")];
        assert!(check_batch(&unsorted, NOW, None)
            .unwrap_err()
            .contains("chronological order"));
        let span = [ev(NOW - DAY_MS - 1, "a"), ev(NOW, "b")];
        assert!(check_batch(&span, NOW, None)
            .unwrap_err()
            .contains("24 hours"));
        let many: Vec<InputEvent> = (0..=MAX_BATCH_EVENTS).map(|_| ev(NOW, "x")).collect();
        assert!(check_batch(&many, NOW, None).unwrap_err().contains("10000"));
        // 1,048,576 counting 26 per event: 1,022 events of 1,000 bytes fit, 1,023 do not.
        let fits: Vec<InputEvent> = (0..1022).map(|_| ev(NOW, &"x".repeat(1000))).collect();
        assert!(check_batch(&fits, NOW, None).is_ok());
        let over: Vec<InputEvent> = (0..1023).map(|_| ev(NOW, &"x".repeat(1000))).collect();
        assert!(check_batch(&over, NOW, None)
            .unwrap_err()
            .contains("1048576"));
        let big = [ev(NOW, &"x".repeat(MAX_EVENT_BYTES - EVENT_OVERHEAD + 1))];
        assert!(check_batch(&big, NOW, None)
            .unwrap_err()
            .contains("at most 262144"));
        assert!(check_batch(&[ev(NOW, "")], NOW, None).is_err());
    }

    #[test]
    fn too_old_expired_and_too_new_events_are_left_out_and_reported() {
        // A batch spans at most a day, so each case is a batch of its own.
        let old = [
            ev(NOW - TOO_OLD_MS - 1, "too old"),
            ev(NOW - TOO_OLD_MS + HOUR_MS, "kept"),
        ];
        assert_eq!(
            check_batch(&old, NOW, None),
            Ok(BatchCheck {
                accepted: 1..2,
                too_old_end: Some(1),
                ..BatchCheck::default()
            })
        );
        let expired = [
            ev(NOW - 7 * DAY_MS - 2, "past a 7-day retention"),
            ev(NOW - 7 * DAY_MS - 1, "also"),
            ev(NOW - 7 * DAY_MS + 1, "kept"),
        ];
        assert_eq!(
            check_batch(&expired, NOW, Some(7)),
            Ok(BatchCheck {
                accepted: 2..3,
                expired_end: Some(2),
                ..BatchCheck::default()
            })
        );
        let new = [
            ev(NOW - 1, "kept"),
            ev(NOW + TOO_NEW_MS, "kept: exactly the limit"),
            ev(NOW + TOO_NEW_MS + 1, "too new"),
        ];
        assert_eq!(
            check_batch(&new, NOW, None),
            Ok(BatchCheck {
                accepted: 0..2,
                too_new_start: Some(2),
                ..BatchCheck::default()
            })
        );
        let all_new = [ev(NOW + TOO_NEW_MS + 1, "x")];
        assert_eq!(check_batch(&all_new, NOW, None).unwrap().accepted, 0..0);
    }

    #[test]
    fn event_ids_round_trip_and_order_by_time_then_stream() {
        let a = EventId {
            timestamp_ms: 5,
            stream_id: 2,
            seq: 9,
        };
        assert_eq!(EventId::from_token(&a.to_token()), Some(a));
        assert_eq!(EventId::from_token("x-1-2"), None);
        let b = EventId {
            timestamp_ms: 5,
            stream_id: 3,
            seq: 0,
        };
        assert!(a < b);
    }
}
