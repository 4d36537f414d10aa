//! Reading events back: one stream's range either way from a position, and a group's
//! streams merged in time order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use redb::ReadableDatabase;

use super::{err, Direction, LogStore, LogStoreError, EVENTS};
use crate::logs::model::{EventId, StoredEvent};

impl LogStore {
    /// Up to `limit` events of one stream within `[start_ms, end_ms)`, oldest first:
    /// forward from `from` (inclusive), or the last ones before `from` (exclusive).
    pub fn read_stream(
        &self,
        group: &str,
        stream: &str,
        window: (i64, i64),
        from: Option<EventId>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, LogStoreError> {
        let (g, s) = Self::ids(&self.meta(), group, stream)?;
        let (start_ms, end_ms) = window;
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(EVENTS).map_err(err)?;
        let lo = (g, s, start_ms, 0);
        let hi = (g, s, end_ms, 0);
        let range = match (direction, from) {
            (Direction::Forward, Some(f)) => table.range((g, s, f.timestamp_ms, f.seq)..hi),
            // A backward position is the first event already shown: read before it.
            (Direction::Backward, Some(f)) => table.range(lo..(g, s, f.timestamp_ms, f.seq)),
            (_, None) => table.range(lo..hi),
        }
        .map_err(err)?;
        let rows: Box<dyn Iterator<Item = _>> = match direction {
            Direction::Forward => Box::new(range),
            Direction::Backward => Box::new(range.rev()),
        };
        let mut out = Vec::new();
        for row in rows.take(limit) {
            let (k, v) = row.map_err(err)?;
            let (_, _, ts, seq) = k.value();
            let (ingestion_ms, message) = v.value();
            out.push(StoredEvent {
                id: EventId {
                    timestamp_ms: ts,
                    stream_id: s,
                    seq,
                },
                stream: stream.to_owned(),
                ingestion_ms,
                message: message.to_owned(),
            });
        }
        if direction == Direction::Backward {
            out.reverse();
        }
        Ok(out)
    }

    /// Up to `limit` events of `streams` (all the group's when None) within
    /// `[start_ms, end_ms)`, after `after`, in time order across streams, that `keep`
    /// accepts. Also says whether the scan reached the window's end.
    pub fn filter(
        &self,
        group: &str,
        streams: Option<&[String]>,
        window: (i64, i64),
        after: Option<EventId>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<StoredEvent>, bool), LogStoreError> {
        let (g, chosen): (u64, Vec<(u64, String)>) = {
            let meta = self.meta();
            let g = meta
                .groups
                .get(group)
                .ok_or_else(|| LogStoreError::GroupNotFound(group.into()))?
                .id;
            let chosen = meta
                .streams
                .get(&g)
                .into_iter()
                .flat_map(BTreeMap::values)
                .filter(|s| streams.is_none_or(|names| names.contains(&s.name)))
                .map(|s| (s.id, s.name.clone()))
                .collect();
            (g, chosen)
        };
        let (start_ms, end_ms) = window;
        let from = after.map_or(start_ms, |a| a.timestamp_ms.max(start_ms));
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(EVENTS).map_err(err)?;
        let mut ranges = Vec::with_capacity(chosen.len());
        for (s, _) in &chosen {
            ranges.push(
                table
                    .range((g, *s, from, 0)..(g, *s, end_ms, 0))
                    .map_err(err)?,
            );
        }
        // A k-way merge of the streams' ranges, smallest (time, stream, seq) first.
        let mut heads = BinaryHeap::new();
        for (i, r) in ranges.iter_mut().enumerate() {
            push_next(&mut heads, r, i)?;
        }
        let mut out = Vec::new();
        while let Some(Reverse((ts, s, seq, i, ingestion_ms, message))) = heads.pop() {
            if out.len() == limit {
                return Ok((out, false));
            }
            let id = EventId {
                timestamp_ms: ts,
                stream_id: s,
                seq,
            };
            if after.is_none_or(|a| id > a) && keep(&message) {
                out.push(StoredEvent {
                    id,
                    stream: chosen[i].1.clone(),
                    ingestion_ms,
                    message,
                });
            }
            push_next(&mut heads, &mut ranges[i], i)?;
        }
        Ok((out, true))
    }
}

/// A stream's next event in the merge: (time, stream id, seq, which range,
/// ingestion time, message), smallest first.
type Head = Reverse<(i64, u64, u64, usize, i64, String)>;

/// Moves range `i`'s next event, if any, into the merge.
fn push_next(
    heads: &mut BinaryHeap<Head>,
    range: &mut redb::Range<'_, (u64, u64, i64, u64), (i64, &str)>,
    i: usize,
) -> Result<(), LogStoreError> {
    if let Some(row) = range.next() {
        let (k, v) = row.map_err(err)?;
        let (_, s, ts, seq) = k.value();
        let (ingestion_ms, message) = v.value();
        heads.push(Reverse((ts, s, seq, i, ingestion_ms, message.to_owned())));
    }
    Ok(())
}
