//! Reading events back: one stream's range either way from a position, and a group's
//! streams merged in time order. A stream is read block by block (see `block`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use redb::ReadableDatabase;

use super::block::{self, Event};
use super::{err, Direction, Key, LogStore, LogStoreError, BLOCKS};
use crate::logs::model::{EventId, StoredEvent};

type Rows<'t> = Box<
    dyn Iterator<
            Item = redb::Result<(
                redb::AccessGuard<'t, Key>,
                redb::AccessGuard<'t, &'static [u8]>,
            )>,
        > + 't,
>;

/// One stream's events from a position, forward (from it, inclusive, while before
/// `bound`) or backward (before it, while at or after `bound`).
struct Cursor<'t> {
    blocks: Rows<'t>,
    current: std::vec::IntoIter<Event>,
    ingestion_ms: i64,
    forward: bool,
    from: (i64, u64),
    bound: i64,
    done: bool,
}

impl<'t> Cursor<'t> {
    fn open(
        table: &'t redb::ReadOnlyTable<Key, &'static [u8]>,
        (g, s): (u64, u64),
        forward: bool,
        from: (i64, u64),
        bound: i64,
    ) -> Result<Self, LogStoreError> {
        let blocks: Rows<'t> = if forward {
            // The block holding `from` starts at or before it.
            let start = match table
                .range((g, s, i64::MIN, 0)..=(g, s, from.0, from.1))
                .map_err(err)?
                .next_back()
            {
                Some(row) => row.map_err(err)?.0.value(),
                None => (g, s, from.0, from.1),
            };
            Box::new(table.range(start..(g, s, bound, 0)).map_err(err)?)
        } else {
            Box::new(
                table
                    .range((g, s, i64::MIN, 0)..(g, s, from.0, from.1))
                    .map_err(err)?
                    .rev(),
            )
        };
        Ok(Self {
            blocks,
            current: Vec::new().into_iter(),
            ingestion_ms: 0,
            forward,
            from,
            bound,
            done: false,
        })
    }
}

impl Iterator for Cursor<'_> {
    /// (event, ingestion time).
    type Item = Result<(Event, i64), LogStoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let Some(e) = self.current.next() {
                let at = (e.timestamp_ms, e.seq);
                if self.forward {
                    if at < self.from {
                        continue;
                    }
                    self.done = e.timestamp_ms >= self.bound;
                } else {
                    if at >= self.from {
                        continue;
                    }
                    self.done = e.timestamp_ms < self.bound;
                }
                if !self.done {
                    return Some(Ok((e, self.ingestion_ms)));
                }
                continue;
            }
            let row = self.blocks.next()?;
            let decoded = row.map_err(err).and_then(|(k, v)| {
                block::decode(k.value().3, v.value()).map_err(|e| LogStoreError::Db(e.to_string()))
            });
            match decoded {
                Ok(mut b) => {
                    if !self.forward {
                        b.events.reverse();
                    }
                    self.ingestion_ms = b.ingestion_ms;
                    self.current = b.events.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

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
        let table = tx.open_table(BLOCKS).map_err(err)?;
        let cursor = match (direction, from) {
            (Direction::Forward, Some(f)) => {
                Cursor::open(&table, (g, s), true, (f.timestamp_ms, f.seq), end_ms)
            }
            (Direction::Forward, None) => Cursor::open(&table, (g, s), true, (start_ms, 0), end_ms),
            // A backward position is the first event already shown: read before it.
            (Direction::Backward, Some(f)) => {
                Cursor::open(&table, (g, s), false, (f.timestamp_ms, f.seq), start_ms)
            }
            (Direction::Backward, None) => {
                Cursor::open(&table, (g, s), false, (end_ms, 0), start_ms)
            }
        }?;
        let mut out = Vec::new();
        for row in cursor.take(limit) {
            let (e, ingestion_ms) = row?;
            out.push(StoredEvent {
                id: EventId {
                    timestamp_ms: e.timestamp_ms,
                    stream_id: s,
                    seq: e.seq,
                },
                stream: stream.to_owned(),
                ingestion_ms,
                message: e.message,
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
        let table = tx.open_table(BLOCKS).map_err(err)?;
        let mut cursors = Vec::with_capacity(chosen.len());
        for (s, _) in &chosen {
            cursors.push(Cursor::open(&table, (g, *s), true, (from, 0), end_ms)?);
        }
        // A k-way merge of the streams, smallest (time, stream, seq) first.
        let mut heads = BinaryHeap::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            push_next(&mut heads, c, chosen[i].0, i)?;
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
            push_next(&mut heads, &mut cursors[i], s, i)?;
        }
        Ok((out, true))
    }
}

/// A stream's next event in the merge: (time, stream id, seq, which cursor,
/// ingestion time, message), smallest first.
type Head = Reverse<(i64, u64, u64, usize, i64, String)>;

/// Moves cursor `i`'s next event, if any, into the merge.
fn push_next(
    heads: &mut BinaryHeap<Head>,
    cursor: &mut Cursor<'_>,
    stream_id: u64,
    i: usize,
) -> Result<(), LogStoreError> {
    if let Some(row) = cursor.next() {
        let (e, ingestion_ms) = row?;
        heads.push(Reverse((
            e.timestamp_ms,
            stream_id,
            e.seq,
            i,
            ingestion_ms,
            e.message,
        )));
    }
    Ok(())
}
