//! A block: consecutive events of one stream, stored as one value under the key of its
//! first event. Storing a batch as a few blocks instead of one row per event is what
//! lets the store keep up with a container writing as fast as it can (one B-tree insert
//! per block, not per line). Pure.
//!
//! Layout: ingestion time (i64 LE), then per event its timestamp (i64 LE), message
//! length (u32 LE) and message (UTF-8). Seqs are the key's seq plus the event's index.
//! Events in a block are in time order, and a stream's blocks never interleave: every
//! event of a block comes, in (time, seq) order, before every event of the blocks
//! after it (the store splits a block when a late event falls inside it).

/// A block is closed past this many message bytes or events.
pub const MAX_BYTES: usize = 64 * 1024;
pub const MAX_EVENTS: usize = 1024;

/// One event as a block holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub timestamp_ms: i64,
    pub seq: u64,
    pub message: String,
}

/// A block being written.
#[derive(Debug, Default)]
pub struct Builder {
    bytes: Vec<u8>,
    first: Option<(i64, u64)>,
    last_ms: i64,
    events: usize,
}

impl Builder {
    pub fn new(ingestion_ms: i64) -> Self {
        Self {
            bytes: ingestion_ms.to_le_bytes().to_vec(),
            ..Self::default()
        }
    }

    /// Whether `push` of an event at `timestamp_ms` with `len` bytes keeps the block
    /// within its limits and in time order.
    pub fn fits(&self, timestamp_ms: i64, len: usize) -> bool {
        self.first.is_none()
            || (self.events < MAX_EVENTS
                && self.bytes.len() + len <= MAX_BYTES
                && timestamp_ms >= self.last_ms)
    }

    pub fn push(&mut self, timestamp_ms: i64, seq: u64, message: &str) {
        self.first.get_or_insert((timestamp_ms, seq));
        self.last_ms = timestamp_ms;
        self.events += 1;
        self.bytes.extend_from_slice(&timestamp_ms.to_le_bytes());
        let len = u32::try_from(message.len()).expect("events are at most 256 KiB");
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(message.as_bytes());
    }

    /// The block's key (first event's time and seq) and value; None if empty.
    pub fn finish(&mut self, ingestion_ms: i64) -> Option<((i64, u64), Vec<u8>)> {
        let first = self.first.take()?;
        let bytes = std::mem::replace(&mut self.bytes, ingestion_ms.to_le_bytes().to_vec());
        self.events = 0;
        Some((first, bytes))
    }
}

/// A stored block, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub ingestion_ms: i64,
    pub events: Vec<Event>,
}

/// A value that is not a block: the store file is damaged.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("log store: a damaged event block")]
pub struct Damaged;

pub fn decode(first_seq: u64, value: &[u8]) -> Result<Block, Damaged> {
    let take = |at: usize, n: usize| value.get(at..at + n).ok_or(Damaged);
    let i64_at = |at| take(at, 8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
    let ingestion_ms = i64_at(0)?;
    let mut events = Vec::new();
    let mut at = 8;
    let mut seq = first_seq;
    while at < value.len() {
        let timestamp_ms = i64_at(at)?;
        let len = u32::from_le_bytes(take(at + 8, 4)?.try_into().expect("4 bytes")) as usize;
        let message = std::str::from_utf8(take(at + 12, len)?).map_err(|_| Damaged)?;
        events.push(Event {
            timestamp_ms,
            seq,
            message: message.to_owned(),
        });
        seq += 1;
        at += 12 + len;
    }
    Ok(Block {
        ingestion_ms,
        events,
    })
}

/// `events` (consecutive seqs, in time order) as a block: its key and value.
pub fn encode(ingestion_ms: i64, events: &[Event]) -> Option<((i64, u64), Vec<u8>)> {
    let mut b = Builder::new(ingestion_ms);
    for e in events {
        b.push(e.timestamp_ms, e.seq, &e.message);
    }
    b.finish(ingestion_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_with_consecutive_seqs() {
        let mut b = Builder::new(99);
        assert!(b.fits(5, 10));
        b.push(5, 40, "hello");
        b.push(5, 41, "");
        b.push(7, 42, "wörld");
        assert!(!b.fits(6, 1), "an earlier time closes the block");
        let ((ts, seq), value) = b.finish(99).unwrap();
        assert_eq!((ts, seq), (5, 40));
        assert!(b.finish(99).is_none());
        let block = decode(seq, &value).unwrap();
        assert_eq!(block.ingestion_ms, 99);
        let got: Vec<_> = block
            .events
            .iter()
            .map(|e| (e.timestamp_ms, e.seq, e.message.as_str()))
            .collect();
        assert_eq!(got, [(5, 40, "hello"), (5, 41, ""), (7, 42, "wörld")]);
        assert_eq!(encode(99, &block.events).unwrap(), ((5, 40), value));
    }

    #[test]
    fn limits_close_a_block_and_damage_is_an_error() {
        let mut b = Builder::new(0);
        for i in 0..MAX_EVENTS {
            assert!(b.fits(1, 1));
            b.push(1, i as u64, "x");
        }
        assert!(!b.fits(1, 1));
        let mut b = Builder::new(0);
        b.push(1, 0, &"x".repeat(MAX_BYTES - 30));
        assert!(!b.fits(1, 100));
        assert!(decode(0, &[1, 2, 3]).is_err());
        let (_, mut value) = encode(
            0,
            &[Event {
                timestamp_ms: 1,
                seq: 0,
                message: "abc".into(),
            }],
        )
        .unwrap();
        value.pop();
        assert!(decode(0, &value).is_err());
    }
}
