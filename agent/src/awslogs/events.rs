//! Journal lines into CloudWatch Logs events, and events into batches the session
//! carries. Pure: the shipper reads and sends, this decides.

use regex::Regex;

use super::journal::{Entry, MAX_LINE_BYTES};

/// What one `LogBatch` holds: events, bytes (each event's message plus 26, which also
/// covers its protobuf framing), and the time one batch may span (`PutLogEvents`'
/// 24 h). Larger than `PutLogEvents`' 10,000 events and 1 MiB: the agent's batches are
/// not public API calls, and each round trip to the store costs a commit; the byte
/// bound keeps a batch under tonic's 4 MiB message limit.
pub const MAX_BATCH_EVENTS: usize = 50_000;
pub const MAX_BATCH_BYTES: usize = 3 << 20;
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;

/// One event, and the journal offset just past its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub timestamp_ms: i64,
    pub message: String,
    pub end: u64,
}

/// The complete events of a run of journal entries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    pub events: Vec<Event>,
    /// The offset past the journal's end record, when it was reached with every event
    /// before it complete: this container's output is all read.
    pub ended: Option<u64>,
}

/// Groups `entries` into events. Without a `pattern` each line is an event; with one,
/// a line it matches starts an event and the lines after it join it, up to the event
/// size limit. The last multi-line event may still grow: it counts as complete only
/// when its last line arrived before `idle_before_ms` (None: more of the journal
/// remains to be read, so it waits).
pub fn assemble(
    entries: &[Entry],
    pattern: Option<&Regex>,
    idle_before_ms: Option<i64>,
) -> Assembled {
    let mut out = Assembled::default();
    // The event being built and the arrival time of its last line.
    let mut current: Option<(Event, i64)> = None;
    for entry in entries {
        match entry {
            Entry::Line {
                timestamp_ms,
                text,
                end,
            } => {
                let joins = pattern.is_some_and(|p| !p.is_match(text))
                    && current
                        .as_ref()
                        .is_some_and(|(e, _)| e.message.len() + 1 + text.len() <= MAX_LINE_BYTES);
                if let (Some((event, last)), true) = (&mut current, joins) {
                    event.message.push('\n');
                    event.message.push_str(text);
                    event.end = *end;
                    *last = *timestamp_ms;
                } else {
                    out.events.extend(current.take().map(|(e, _)| e));
                    let event = Event {
                        timestamp_ms: *timestamp_ms,
                        message: text.clone(),
                        end: *end,
                    };
                    if pattern.is_some() {
                        current = Some((event, *timestamp_ms));
                    } else {
                        out.events.push(event);
                    }
                }
            }
            Entry::End { end } => {
                out.events.extend(current.take().map(|(e, _)| e));
                out.ended = Some(*end);
                break;
            }
        }
    }
    if let Some((event, last)) = current {
        if idle_before_ms.is_some_and(|idle| last < idle) {
            out.events.push(event);
        }
    }
    out
}

/// How many events from the front of `events` go in one `LogBatch`.
pub fn batch_len(events: &[Event]) -> usize {
    let Some(first) = events.first() else {
        return 0;
    };
    let (mut lo, mut hi) = (first.timestamp_ms, first.timestamp_ms);
    let mut bytes = 0;
    for (n, e) in events.iter().enumerate() {
        lo = lo.min(e.timestamp_ms);
        hi = hi.max(e.timestamp_ms);
        bytes += e.message.len() + EVENT_OVERHEAD;
        if n == MAX_BATCH_EVENTS || bytes > MAX_BATCH_BYTES || hi - lo > MAX_BATCH_SPAN_MS {
            return n.max(1);
        }
    }
    events.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: i64, text: &str, end: u64) -> Entry {
        Entry::Line {
            timestamp_ms: ts,
            text: text.into(),
            end,
        }
    }

    fn messages(a: &Assembled) -> Vec<&str> {
        a.events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn without_a_pattern_each_line_is_an_event() {
        let entries = [line(1, "a", 10), line(2, "  b", 20), Entry::End { end: 24 }];
        let a = assemble(&entries, None, None);
        assert_eq!(messages(&a), ["a", "  b"]);
        assert_eq!(a.events[1].end, 20);
        assert_eq!(a.ended, Some(24));
    }

    #[test]
    fn a_stack_trace_is_one_event_once_the_next_one_starts_or_it_goes_idle() {
        let start = Regex::new(r"^\d{4}-\d{2}-\d{2}").unwrap();
        let entries = [
            line(1, "2026-12-04 ERROR boom", 10),
            line(1, "java.lang.IllegalStateException: x", 20),
            line(2, "    at a.b(C.java:1)", 30),
            line(5, "2026-12-04 INFO next", 40),
        ];
        // More of the journal to read: the last event may still grow.
        let a = assemble(&entries, Some(&start), None);
        assert_eq!(
            messages(&a),
            ["2026-12-04 ERROR boom\njava.lang.IllegalStateException: x\n    at a.b(C.java:1)"]
        );
        assert_eq!((a.events[0].timestamp_ms, a.events[0].end), (1, 30));
        // Read to the end, but its last line is recent: it waits.
        assert_eq!(assemble(&entries, Some(&start), Some(5)).events.len(), 1);
        // Idle long enough: complete.
        assert_eq!(assemble(&entries, Some(&start), Some(6)).events.len(), 2);
        // The journal's end completes it at once.
        let mut ended = entries.to_vec();
        ended.push(Entry::End { end: 44 });
        let a = assemble(&ended, Some(&start), None);
        assert_eq!(a.events.len(), 2);
        assert_eq!(a.ended, Some(44));
    }

    #[test]
    fn a_first_line_that_does_not_match_still_starts_an_event() {
        let start = Regex::new("^START").unwrap();
        let entries = [
            line(1, "orphan", 7),
            line(1, "more", 12),
            line(2, "START x", 20),
        ];
        let a = assemble(&entries, Some(&start), None);
        assert_eq!(messages(&a), ["orphan\nmore"]);
    }

    #[test]
    fn a_multi_line_event_never_outgrows_the_event_limit() {
        let start = Regex::new("^START").unwrap();
        let big = "x".repeat(MAX_LINE_BYTES - 10);
        let entries = [
            line(1, "START", 6),
            line(1, &big, 100),
            line(1, "tail", 110),
            Entry::End { end: 114 },
        ];
        let a = assemble(&entries, Some(&start), None);
        assert_eq!(a.events.len(), 2);
        assert!(a.events.iter().all(|e| e.message.len() <= MAX_LINE_BYTES));
    }

    fn event(ts: i64, len: usize) -> Event {
        Event {
            timestamp_ms: ts,
            message: "x".repeat(len),
            end: 0,
        }
    }

    #[test]
    fn batches_stay_within_what_one_message_carries() {
        assert_eq!(batch_len(&[]), 0);
        let many: Vec<Event> = (0..50_005).map(|i| event(i, 1)).collect();
        assert_eq!(batch_len(&many), MAX_BATCH_EVENTS);
        let big: Vec<Event> = (0..20).map(|i| event(i, 200_000)).collect();
        assert_eq!(batch_len(&big), 15);
        let day = [
            event(0, 1),
            event(MAX_BATCH_SPAN_MS, 1),
            event(MAX_BATCH_SPAN_MS + 1, 1),
        ];
        assert_eq!(batch_len(&day), 2);
        let small = [event(0, 1), event(1, 1)];
        assert_eq!(batch_len(&small), 2);
    }
}
