//! Where log events live: their own `redb` file beside the control plane's state (a flood
//! of log lines never slows a `RunTask` commit), keyed by (group, stream, timestamp, seq) so
//! a stream's events are one range read, and a group's are a merge of its streams' ranges
//! in time order. Groups and streams (small) are also kept in memory. Space is bounded by
//! each group's retention (`delete_before`) and by deleting streams and groups.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle as _};

mod block;
mod read;
mod table;

use table::{close, insert_late, trim_before};

use super::model::{event_size, InputEvent, LogGroup, LogStream};

const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("log_groups");
const STREAMS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("log_streams");
/// (group id, stream id, timestamp ms, seq): where an event, or a block, is.
type Key = (u64, u64, i64, u64);
/// A block of events (see `block`) under its first event's key.
const BLOCKS: TableDefinition<Key, &[u8]> = TableDefinition::new("log_blocks");
/// Stores written before blocks held one row per event: (ingestion ms, message).
/// Moved into blocks when such a store is opened.
const OLD_EVENTS: TableDefinition<Key, (i64, &str)> = TableDefinition::new("log_events");

/// The page cache the store keeps in memory (redb's default is 1 GiB): logs are
/// mostly written once and read by time range, so a small cache serves them.
const CACHE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("The specified log group does not exist: '{0}'.")]
    GroupNotFound(String),
    #[error("The specified log stream does not exist: '{stream}' in log group '{group}'.")]
    StreamNotFound { group: String, stream: String },
    #[error("The specified log group already exists: '{0}'.")]
    GroupExists(String),
    #[error("The specified log stream already exists: '{stream}' in log group '{group}'.")]
    StreamExists { group: String, stream: String },
    #[error("log store: {0}")]
    Db(String),
}

fn err<E: std::fmt::Display>(e: E) -> LogStoreError {
    LogStoreError::Db(e.to_string())
}

#[derive(Default)]
struct Meta {
    groups: BTreeMap<String, LogGroup>,
    /// By group id, then stream name.
    streams: BTreeMap<u64, BTreeMap<String, LogStream>>,
    next_id: u64,
}

/// Which way a stream read goes from its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

pub struct LogStore {
    db: redb::Database,
    meta: Mutex<Meta>,
}

impl LogStore {
    /// Opens (or creates) the log store at `path`.
    pub fn open(path: &Path) -> Result<Self, LogStoreError> {
        Self::load(
            redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(path)
                .map_err(err)?,
        )
    }

    /// A store in memory, for tests: the same code as on disk.
    pub fn in_memory() -> Result<Self, LogStoreError> {
        Self::load(
            redb::Builder::new()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(err)?,
        )
    }

    fn load(db: redb::Database) -> Result<Self, LogStoreError> {
        let tx = db.begin_write().map_err(err)?;
        {
            // Every table exists from the first open: reads need not check.
            tx.open_table(GROUPS).map_err(err)?;
            tx.open_table(STREAMS).map_err(err)?;
            tx.open_table(BLOCKS).map_err(err)?;
        }
        // A store written before blocks: each event becomes a block of one, once.
        let old_rows = tx
            .list_tables()
            .map_err(err)?
            .any(|t| t.name() == OLD_EVENTS.name());
        if old_rows {
            move_rows_into_blocks(&tx)?;
            tx.delete_table(OLD_EVENTS).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        let mut meta = Meta::default();
        let tx = db.begin_read().map_err(err)?;
        for row in tx.open_table(GROUPS).map_err(err)?.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            let g: LogGroup = serde_json::from_slice(v.value()).map_err(err)?;
            meta.next_id = meta.next_id.max(g.id + 1);
            meta.groups.insert(g.name.clone(), g);
        }
        for row in tx.open_table(STREAMS).map_err(err)?.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let s: LogStream = serde_json::from_slice(v.value()).map_err(err)?;
            meta.next_id = meta.next_id.max(s.id + 1);
            meta.streams
                .entry(k.value().0)
                .or_default()
                .insert(s.name.clone(), s);
        }
        meta.next_id = meta.next_id.max(1);
        Ok(Self {
            db,
            meta: Mutex::new(meta),
        })
    }

    fn meta(&self) -> std::sync::MutexGuard<'_, Meta> {
        self.meta
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh id for a group or stream.
    pub fn next_id(&self) -> u64 {
        let mut meta = self.meta();
        let id = meta.next_id;
        meta.next_id += 1;
        id
    }

    pub fn group(&self, name: &str) -> Option<LogGroup> {
        self.meta().groups.get(name).cloned()
    }

    /// Every group, by name.
    pub fn groups(&self) -> Vec<LogGroup> {
        self.meta().groups.values().cloned().collect()
    }

    /// The group's streams, by name.
    pub fn streams(&self, group: &str) -> Result<Vec<LogStream>, LogStoreError> {
        let meta = self.meta();
        let g = meta
            .groups
            .get(group)
            .ok_or_else(|| LogStoreError::GroupNotFound(group.into()))?;
        Ok(meta
            .streams
            .get(&g.id)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default())
    }

    /// One stream of the group, if it exists.
    pub fn stream(&self, group: &str, name: &str) -> Result<Option<LogStream>, LogStoreError> {
        let meta = self.meta();
        let g = meta
            .groups
            .get(group)
            .ok_or_else(|| LogStoreError::GroupNotFound(group.into()))?;
        Ok(meta.streams.get(&g.id).and_then(|s| s.get(name)).cloned())
    }

    pub fn create_group(&self, group: LogGroup) -> Result<(), LogStoreError> {
        let mut meta = self.meta();
        if meta.groups.contains_key(&group.name) {
            return Err(LogStoreError::GroupExists(group.name));
        }
        self.write_group(&group)?;
        meta.groups.insert(group.name.clone(), group);
        Ok(())
    }

    /// Replaces a group's record (retention, tags).
    pub fn update_group(&self, group: LogGroup) -> Result<(), LogStoreError> {
        let mut meta = self.meta();
        if !meta.groups.contains_key(&group.name) {
            return Err(LogStoreError::GroupNotFound(group.name));
        }
        self.write_group(&group)?;
        meta.groups.insert(group.name.clone(), group);
        Ok(())
    }

    fn write_group(&self, group: &LogGroup) -> Result<(), LogStoreError> {
        let bytes = serde_json::to_vec(group).map_err(err)?;
        let tx = self.db.begin_write().map_err(err)?;
        tx.open_table(GROUPS)
            .map_err(err)?
            .insert(group.name.as_str(), bytes.as_slice())
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Deletes a group with its streams and events.
    pub fn delete_group(&self, name: &str) -> Result<(), LogStoreError> {
        let mut meta = self.meta();
        let g = meta
            .groups
            .get(name)
            .cloned()
            .ok_or_else(|| LogStoreError::GroupNotFound(name.into()))?;
        let tx = self.db.begin_write().map_err(err)?;
        {
            tx.open_table(GROUPS)
                .map_err(err)?
                .remove(name)
                .map_err(err)?;
            let mut streams = tx.open_table(STREAMS).map_err(err)?;
            for s in meta.streams.get(&g.id).into_iter().flat_map(BTreeMap::keys) {
                streams.remove((g.id, s.as_str())).map_err(err)?;
            }
            let mut events = tx.open_table(BLOCKS).map_err(err)?;
            events
                .retain_in(
                    (g.id, 0, i64::MIN, 0)..=(g.id, u64::MAX, i64::MAX, u64::MAX),
                    |_, _| false,
                )
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        meta.groups.remove(name);
        meta.streams.remove(&g.id);
        Ok(())
    }

    pub fn create_stream(&self, group: &str, stream: LogStream) -> Result<(), LogStoreError> {
        let mut meta = self.meta();
        let g = meta
            .groups
            .get(group)
            .ok_or_else(|| LogStoreError::GroupNotFound(group.into()))?
            .id;
        if meta
            .streams
            .get(&g)
            .is_some_and(|s| s.contains_key(&stream.name))
        {
            return Err(LogStoreError::StreamExists {
                group: group.into(),
                stream: stream.name,
            });
        }
        let bytes = serde_json::to_vec(&stream).map_err(err)?;
        let tx = self.db.begin_write().map_err(err)?;
        tx.open_table(STREAMS)
            .map_err(err)?
            .insert((g, stream.name.as_str()), bytes.as_slice())
            .map_err(err)?;
        tx.commit().map_err(err)?;
        meta.streams
            .entry(g)
            .or_default()
            .insert(stream.name.clone(), stream);
        Ok(())
    }

    pub fn delete_stream(&self, group: &str, stream: &str) -> Result<(), LogStoreError> {
        let mut meta = self.meta();
        let (g, s) = Self::ids(&meta, group, stream)?;
        let tx = self.db.begin_write().map_err(err)?;
        {
            tx.open_table(STREAMS)
                .map_err(err)?
                .remove((g, stream))
                .map_err(err)?;
            tx.open_table(BLOCKS)
                .map_err(err)?
                .retain_in((g, s, i64::MIN, 0)..=(g, s, i64::MAX, u64::MAX), |_, _| {
                    false
                })
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        if let Some(streams) = meta.streams.get_mut(&g) {
            streams.remove(stream);
        }
        Ok(())
    }

    fn ids(meta: &Meta, group: &str, stream: &str) -> Result<(u64, u64), LogStoreError> {
        let g = meta
            .groups
            .get(group)
            .ok_or_else(|| LogStoreError::GroupNotFound(group.into()))?
            .id;
        let s = meta
            .streams
            .get(&g)
            .and_then(|s| s.get(stream))
            .ok_or_else(|| LogStoreError::StreamNotFound {
                group: group.into(),
                stream: stream.into(),
            })?
            .id;
        Ok((g, s))
    }

    /// Stores `events` (in time order) at the end of a stream, durably, in one commit.
    /// With `journal_end` (an agent's batch), a batch the stream already holds is not
    /// stored again: returns false then.
    pub fn append(
        &self,
        group: &str,
        stream: &str,
        events: &[InputEvent],
        ingestion_ms: i64,
        journal_end: Option<u64>,
    ) -> Result<bool, LogStoreError> {
        let mut meta = self.meta();
        let (g, s) = Self::ids(&meta, group, stream)?;
        let mut record = meta.streams[&g][stream].clone();
        if journal_end.is_some_and(|end| end <= record.journal_end) {
            return Ok(false);
        }
        let mut bytes = 0u64;
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut table = tx.open_table(BLOCKS).map_err(err)?;
            // Events at or after everything the stream holds fill blocks at its end; an
            // earlier one (PutLogEvents may go back in time) goes where it belongs.
            let mut newest = record.last_event_ms;
            let mut open = block::Builder::new(ingestion_ms);
            for e in events {
                let seq = record.next_seq;
                record.next_seq += 1;
                if newest.is_some_and(|n| e.timestamp_ms < n) {
                    close(&mut table, (g, s), &mut open, ingestion_ms)?;
                    insert_late(&mut table, (g, s), e, seq, ingestion_ms)?;
                } else {
                    if !open.fits(e.timestamp_ms, e.message.len()) {
                        close(&mut table, (g, s), &mut open, ingestion_ms)?;
                    }
                    open.push(e.timestamp_ms, seq, &e.message);
                    newest = Some(e.timestamp_ms);
                }
                bytes += event_size(&e.message) as u64;
                record.first_event_ms = Some(
                    record
                        .first_event_ms
                        .map_or(e.timestamp_ms, |f| f.min(e.timestamp_ms)),
                );
                record.last_event_ms = Some(
                    record
                        .last_event_ms
                        .map_or(e.timestamp_ms, |l| l.max(e.timestamp_ms)),
                );
            }
            close(&mut table, (g, s), &mut open, ingestion_ms)?;
            if !events.is_empty() {
                record.last_ingestion_ms = Some(ingestion_ms);
            }
            record.stored_bytes += bytes;
            if let Some(end) = journal_end {
                record.journal_end = end;
            }
            let json = serde_json::to_vec(&record).map_err(err)?;
            tx.open_table(STREAMS)
                .map_err(err)?
                .insert((g, stream), json.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        if let Some(streams) = meta.streams.get_mut(&g) {
            streams.insert(stream.to_owned(), record);
        }
        Ok(true)
    }

    /// The bytes a group's events take (their messages and overhead).
    pub fn group_bytes(&self, group: &LogGroup) -> u64 {
        self.meta()
            .streams
            .get(&group.id)
            .map_or(0, |s| s.values().map(|s| s.stored_bytes).sum())
    }

    /// Deletes a group's events older than `cutoff_ms`, durably; how many.
    pub fn delete_before(&self, group: &str, cutoff_ms: i64) -> Result<u64, LogStoreError> {
        let mut meta = self.meta();
        let g = meta
            .groups
            .get(group)
            .ok_or_else(|| LogStoreError::GroupNotFound(group.into()))?
            .id;
        let mut streams: Vec<LogStream> = meta
            .streams
            .get(&g)
            .into_iter()
            .flat_map(BTreeMap::values)
            .cloned()
            .collect();
        let mut total = 0;
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(err)?;
            let mut records = tx.open_table(STREAMS).map_err(err)?;
            for s in &mut streams {
                let (n, bytes) = trim_before(&mut blocks, (g, s.id), cutoff_ms)?;
                if n > 0 {
                    s.stored_bytes = s.stored_bytes.saturating_sub(bytes);
                    s.first_event_ms = match blocks
                        .range((g, s.id, i64::MIN, 0)..=(g, s.id, i64::MAX, u64::MAX))
                        .map_err(err)?
                        .next()
                    {
                        Some(row) => Some(row.map_err(err)?.0.value().2),
                        None => None,
                    };
                    let json = serde_json::to_vec(&*s).map_err(err)?;
                    records
                        .insert((g, s.name.as_str()), json.as_slice())
                        .map_err(err)?;
                    total += n;
                }
            }
        }
        tx.commit().map_err(err)?;
        let by_name = meta.streams.entry(g).or_default();
        for s in streams {
            by_name.insert(s.name.clone(), s);
        }
        Ok(total)
    }
}

/// Moves the rows of a store written before blocks into blocks of one event.
fn move_rows_into_blocks(tx: &redb::WriteTransaction) -> Result<(), LogStoreError> {
    let mut blocks = tx.open_table(BLOCKS).map_err(err)?;
    let old = tx.open_table(OLD_EVENTS).map_err(err)?;
    for row in old.iter().map_err(err)? {
        let (k, v) = row.map_err(err)?;
        let (g, s, timestamp_ms, seq) = k.value();
        let (ingestion_ms, message) = v.value();
        let event = block::Event {
            timestamp_ms,
            seq,
            message: message.to_owned(),
        };
        let (_, value) = block::encode(ingestion_ms, &[event]).expect("one event");
        blocks
            .insert((g, s, timestamp_ms, seq), value.as_slice())
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::model::{EventId, StoredEvent};

    fn group(store: &LogStore, name: &str) {
        store
            .create_group(LogGroup {
                id: store.next_id(),
                name: name.into(),
                arn: format!("arn:aws:logs:r:1:log-group:{name}"),
                created_ms: 0,
                retention_days: None,
                tags: BTreeMap::new(),
                class: None,
            })
            .unwrap();
    }

    fn stream(store: &LogStore, group: &str, name: &str) {
        store
            .create_stream(
                group,
                LogStream::new(store.next_id(), name, String::new(), 0),
            )
            .unwrap();
    }

    fn events(list: &[(i64, &str)]) -> Vec<InputEvent> {
        list.iter()
            .map(|(t, m)| InputEvent {
                timestamp_ms: *t,
                message: (*m).into(),
            })
            .collect()
    }

    fn all(
        store: &LogStore,
        group: &str,
        after: Option<EventId>,
        limit: usize,
    ) -> (Vec<String>, bool) {
        let (found, complete) = store
            .filter(group, None, (i64::MIN, i64::MAX), after, limit, &|_| true)
            .unwrap();
        (found.into_iter().map(|e| e.message).collect(), complete)
    }

    fn read(
        store: &LogStore,
        from: Option<EventId>,
        direction: Direction,
        limit: usize,
    ) -> Vec<StoredEvent> {
        store
            .read_stream("g", "s", (i64::MIN, i64::MAX), from, direction, limit)
            .unwrap()
    }

    /// A store with group `g` and its stream `s`.
    fn one_stream() -> LogStore {
        let store = LogStore::in_memory().unwrap();
        group(&store, "g");
        stream(&store, "g", "s");
        store
    }

    fn texts(events: &[StoredEvent]) -> Vec<&str> {
        events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn a_late_event_splits_the_block_it_falls_in_and_reads_in_time_order() {
        let store = one_stream();
        store
            .append(
                "g",
                "s",
                &events(&[(10, "a"), (20, "b"), (20, "b'"), (30, "c")]),
                0,
                None,
            )
            .unwrap();
        store
            .append("g", "s", &events(&[(20, "late"), (40, "d")]), 1, None)
            .unwrap();
        let forward = read(&store, None, Direction::Forward, 100);
        assert_eq!(texts(&forward), ["a", "b", "b'", "late", "c", "d"]);
        // Paging forward from inside a block, and backward before a position.
        assert_eq!(
            texts(&read(&store, Some(forward[2].id), Direction::Forward, 2)),
            ["b'", "late"]
        );
        assert_eq!(
            texts(&read(&store, None, Direction::Backward, 2)),
            ["c", "d"]
        );
        assert_eq!(
            texts(&read(&store, Some(forward[3].id), Direction::Backward, 2)),
            ["b", "b'"]
        );
        assert_eq!(forward[3].ingestion_ms, 1);
        assert_eq!(
            forward[4].ingestion_ms, 0,
            "the split keeps each part's ingestion time"
        );
        // Windows cut inside blocks.
        let window = store
            .read_stream("g", "s", (20, 31), None, Direction::Forward, 100)
            .unwrap();
        assert_eq!(texts(&window), ["b", "b'", "late", "c"]);
        let window = store
            .read_stream("g", "s", (11, 30), None, Direction::Backward, 100)
            .unwrap();
        assert_eq!(texts(&window), ["b", "b'", "late"]);
    }

    #[test]
    fn a_batch_of_many_blocks_pages_both_ways_without_loss() {
        let store = one_stream();
        let many: Vec<InputEvent> = (0..5000)
            .map(|i| InputEvent {
                timestamp_ms: i / 3,
                message: format!("m{i}"),
            })
            .collect();
        store.append("g", "s", &many, 0, None).unwrap();
        let mut seen = vec![];
        let mut from = None;
        loop {
            let page = read(&store, from, Direction::Forward, 777);
            let Some(last) = page.last() else { break };
            from = Some(EventId {
                seq: last.id.seq + 1,
                ..last.id
            });
            seen.extend(page.into_iter().map(|e| e.message));
        }
        let want: Vec<String> = many.iter().map(|e| e.message.clone()).collect();
        assert_eq!(seen, want);
        let mut back = vec![];
        let mut before = None;
        loop {
            let page = read(&store, before, Direction::Backward, 999);
            let Some(first) = page.first() else { break };
            before = Some(first.id);
            back.splice(0..0, page.into_iter().map(|e| e.message));
        }
        assert_eq!(back, want);
    }

    #[test]
    fn retention_trims_the_block_that_spans_the_cutoff() {
        let store = one_stream();
        store
            .append(
                "g",
                "s",
                &events(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")]),
                0,
                None,
            )
            .unwrap();
        assert_eq!(store.delete_before("g", 3).unwrap(), 2);
        assert_eq!(
            texts(&read(&store, None, Direction::Forward, 10)),
            ["c", "d"]
        );
        let s = &store.streams("g").unwrap()[0];
        assert_eq!((s.first_event_ms, s.stored_bytes), (Some(3), 2 * 27));
    }

    #[test]
    fn a_store_of_one_row_per_event_is_moved_into_blocks_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.redb");
        {
            let store = LogStore::open(&path).unwrap();
            group(&store, "g");
            stream(&store, "g", "s");
            let (g, s) = LogStore::ids(&store.meta(), "g", "s").unwrap();
            let tx = store.db.begin_write().unwrap();
            {
                let mut old = tx.open_table(OLD_EVENTS).unwrap();
                old.insert((g, s, 5, 0), (7, "old one")).unwrap();
                old.insert((g, s, 6, 1), (7, "old two")).unwrap();
            }
            tx.commit().unwrap();
        }
        let store = LogStore::open(&path).unwrap();
        let got = read(&store, None, Direction::Forward, 10);
        assert_eq!(texts(&got), ["old one", "old two"]);
        assert_eq!((got[1].id.seq, got[1].ingestion_ms), (1, 7));
    }

    #[test]
    fn events_survive_a_reopen_and_a_resent_batch_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.redb");
        {
            let store = LogStore::open(&path).unwrap();
            group(&store, "g");
            stream(&store, "g", "s");
            assert!(store
                .append("g", "s", &events(&[(1, "a"), (2, "b")]), 10, Some(100))
                .unwrap());
            // The same batch again (its acknowledgement was lost): not stored twice.
            assert!(!store
                .append("g", "s", &events(&[(1, "a"), (2, "b")]), 11, Some(100))
                .unwrap());
            assert!(store
                .append("g", "s", &events(&[(3, "c")]), 12, Some(150))
                .unwrap());
        }
        let store = LogStore::open(&path).unwrap();
        assert_eq!(all(&store, "g", None, 10).0, ["a", "b", "c"]);
        let s = &store.streams("g").unwrap()[0];
        assert_eq!(
            (s.journal_end, s.next_seq, s.last_ingestion_ms),
            (150, 3, Some(12))
        );
        // Ids keep counting after a reopen.
        assert!(store.next_id() > s.id);
    }

    #[test]
    fn a_group_s_streams_merge_in_time_order_and_page_without_loss() {
        let store = LogStore::in_memory().unwrap();
        group(&store, "g");
        stream(&store, "g", "a");
        stream(&store, "g", "b");
        store
            .append(
                "g",
                "a",
                &events(&[(1, "a1"), (5, "a5"), (5, "a5'")]),
                0,
                None,
            )
            .unwrap();
        store
            .append(
                "g",
                "b",
                &events(&[(2, "b2"), (5, "b5"), (9, "b9")]),
                0,
                None,
            )
            .unwrap();
        let (first, complete) = all(&store, "g", None, 3);
        assert_eq!(first, ["a1", "b2", "a5"]);
        assert!(!complete);
        // Resume after the last one returned, even inside a run of equal timestamps.
        let (found, _) = store
            .filter("g", None, (i64::MIN, i64::MAX), None, 3, &|_| true)
            .unwrap();
        let (rest, complete) = all(&store, "g", Some(found[2].id), 10);
        assert_eq!(rest, ["a5'", "b5", "b9"]);
        assert!(complete);
        let only_b: Vec<String> = store
            .filter("g", Some(&["b".to_owned()]), (2, 9), None, 10, &|m| {
                m != "b5"
            })
            .unwrap()
            .0
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(only_b, ["b2"]);
    }

    #[test]
    fn deleting_frees_streams_groups_and_old_events() {
        let store = LogStore::in_memory().unwrap();
        group(&store, "g");
        stream(&store, "g", "a");
        stream(&store, "g", "b");
        store
            .append("g", "a", &events(&[(1, "x"), (2, "yy")]), 0, None)
            .unwrap();
        store
            .append("g", "b", &events(&[(3, "z")]), 0, None)
            .unwrap();
        assert_eq!(store.delete_before("g", 2).unwrap(), 1);
        let a = &store.streams("g").unwrap()[0];
        assert_eq!((a.first_event_ms, a.stored_bytes), (Some(2), 2 + 26));
        store.delete_stream("g", "b").unwrap();
        assert_eq!(all(&store, "g", None, 10).0, ["yy"]);
        store.delete_group("g").unwrap();
        assert!(matches!(
            store.streams("g"),
            Err(LogStoreError::GroupNotFound(_))
        ));
        group(&store, "g");
        assert!(
            all(&store, "g", None, 10).0.is_empty(),
            "a new group of the old name is empty"
        );
    }
}
