//! Writing the blocks table: closing a block at a stream's end, placing an event that
//! arrives late (splitting the block it falls in), and trimming a stream's oldest
//! events for retention.

use redb::ReadableTable as _;

use super::block;
use super::{err, Key, LogStoreError};
use crate::logs::model::{event_size, InputEvent};

type Blocks<'t> = redb::Table<'t, Key, &'static [u8]>;

pub(super) fn damaged(e: block::Damaged) -> LogStoreError {
    LogStoreError::Db(e.to_string())
}

/// Stores the open block, if it has events, and starts the next.
pub(super) fn close(
    table: &mut Blocks<'_>,
    (g, s): (u64, u64),
    open: &mut block::Builder,
    ingestion_ms: i64,
) -> Result<(), LogStoreError> {
    if let Some(((ts, seq), value)) = open.finish(ingestion_ms) {
        table
            .insert((g, s, ts, seq), value.as_slice())
            .map_err(err)?;
    }
    Ok(())
}

/// Stores an event earlier than the stream's newest, as a block of its own: the block it
/// falls inside, if any, is split around it first, so blocks never interleave.
pub(super) fn insert_late(
    table: &mut Blocks<'_>,
    (g, s): (u64, u64),
    late: &InputEvent,
    seq: u64,
    ingestion_ms: i64,
) -> Result<(), LogStoreError> {
    let containing = match table
        .range((g, s, i64::MIN, 0)..=(g, s, late.timestamp_ms, seq))
        .map_err(err)?
        .next_back()
    {
        Some(row) => {
            let (k, v) = row.map_err(err)?;
            Some((k.value(), v.value().to_vec()))
        }
        None => None,
    };
    if let Some((key, value)) = containing {
        let held = block::decode(key.3, &value).map_err(damaged)?;
        // Its events at the late one's time came first (smaller seqs); later ones after.
        let at = held
            .events
            .partition_point(|x| x.timestamp_ms <= late.timestamp_ms);
        if at < held.events.len() {
            table.remove(key).map_err(err)?;
            for part in [&held.events[..at], &held.events[at..]] {
                if let Some(((ts, first), v)) = block::encode(held.ingestion_ms, part) {
                    table.insert((g, s, ts, first), v.as_slice()).map_err(err)?;
                }
            }
        }
    }
    let event = block::Event {
        timestamp_ms: late.timestamp_ms,
        seq,
        message: late.message.clone(),
    };
    let (_, value) = block::encode(ingestion_ms, &[event]).expect("one event");
    table
        .insert((g, s, late.timestamp_ms, seq), value.as_slice())
        .map_err(err)?;
    Ok(())
}

/// Deletes a stream's events before `cutoff_ms`: whole blocks, and the front of the one
/// that spans the cutoff. How many events and bytes went.
pub(super) fn trim_before(
    table: &mut Blocks<'_>,
    (g, s): (u64, u64),
    cutoff_ms: i64,
) -> Result<(u64, u64), LogStoreError> {
    let mut old = Vec::new();
    for row in table
        .range((g, s, i64::MIN, 0)..(g, s, cutoff_ms, 0))
        .map_err(err)?
    {
        let (k, v) = row.map_err(err)?;
        let key = k.value();
        old.push((key, block::decode(key.3, v.value()).map_err(damaged)?));
    }
    let (mut n, mut bytes) = (0u64, 0u64);
    for (key, b) in old {
        table.remove(key).map_err(err)?;
        let at = b.events.partition_point(|x| x.timestamp_ms < cutoff_ms);
        for e in &b.events[..at] {
            n += 1;
            bytes += event_size(&e.message) as u64;
        }
        // Blocks never interleave: only the last one that starts before the cutoff can
        // reach past it.
        if let Some(((ts, first), v)) = block::encode(b.ingestion_ms, &b.events[at..]) {
            table.insert((g, s, ts, first), v.as_slice()).map_err(err)?;
        }
    }
    Ok((n, bytes))
}
