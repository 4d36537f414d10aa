//! The journal the log driver writes beside an awslogs container's log file: each line
//! the container wrote, timestamped when it arrived, so the shipper can send exactly
//! what was written, in order, after any outage or restart.
//!
//! A record is `<unix ms> <line>\n`, the line without its newline; the final record
//! `end\n` says the container's output has ended and nothing more will come.

/// The longest line kept as one record: CloudWatch Logs' event limit (256 KiB with 26
/// bytes of overhead). A longer line continues in the next record.
pub const MAX_LINE_BYTES: usize = 256 * 1024 - 26;

const END: &[u8] = b"end\n";

/// Appends one line's record (or several, if it is longer than `MAX_LINE_BYTES`).
pub fn encode_line(out: &mut Vec<u8>, timestamp_ms: i64, line: &[u8]) {
    let mut rest = line;
    loop {
        let (piece, tail) = rest.split_at(split_point(rest));
        out.extend_from_slice(timestamp_ms.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(piece);
        out.push(b'\n');
        if tail.is_empty() {
            return;
        }
        rest = tail;
    }
}

/// Where a line longer than the limit is cut: not inside a UTF-8 character.
fn split_point(line: &[u8]) -> usize {
    if line.len() <= MAX_LINE_BYTES {
        return line.len();
    }
    let mut at = MAX_LINE_BYTES;
    // At most three continuation bytes (10xxxxxx) precede a character's end.
    while at > MAX_LINE_BYTES - 3 && line[at] & 0xC0 == 0x80 {
        at -= 1;
    }
    at
}

pub fn encode_end(out: &mut Vec<u8>) {
    out.extend_from_slice(END);
}

/// One record, and the journal offset just past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Line {
        timestamp_ms: i64,
        text: String,
        end: u64,
    },
    End {
        end: u64,
    },
}

impl Entry {
    pub fn end(&self) -> u64 {
        match self {
            Entry::Line { end, .. } | Entry::End { end } => *end,
        }
    }
}

/// The complete records of `buf`, which starts at journal offset `base`; a record
/// still being written (no newline yet) is left for the next read. Bytes that are not
/// UTF-8 are replaced, as CloudWatch Logs takes only UTF-8. A record without a
/// timestamp (never written so) keeps the previous one's.
pub fn parse(buf: &[u8], base: u64) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    let mut last_ts = 0i64;
    while let Some(len) = buf[at..].iter().position(|b| *b == b'\n') {
        let record = &buf[at..at + len];
        let end = base + (at + len + 1) as u64;
        at += len + 1;
        if record == &END[..END.len() - 1] {
            entries.push(Entry::End { end });
            continue;
        }
        let (timestamp_ms, text) = match record.iter().position(|b| *b == b' ') {
            Some(sp) => match std::str::from_utf8(&record[..sp])
                .ok()
                .and_then(|t| t.parse().ok())
            {
                Some(ts) => (ts, &record[sp + 1..]),
                None => (last_ts, record),
            },
            None => (last_ts, record),
        };
        last_ts = timestamp_ms;
        entries.push(Entry::Line {
            timestamp_ms,
            text: String::from_utf8_lossy(text).into_owned(),
            end,
        });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_their_offsets() {
        let mut buf = Vec::new();
        encode_line(&mut buf, 1_700_000_000_123, b"hello world");
        encode_line(&mut buf, 1_700_000_000_124, b"");
        encode_end(&mut buf);
        let entries = parse(&buf, 100);
        assert_eq!(
            entries,
            [
                Entry::Line {
                    timestamp_ms: 1_700_000_000_123,
                    text: "hello world".into(),
                    end: 100 + 26
                },
                Entry::Line {
                    timestamp_ms: 1_700_000_000_124,
                    text: String::new(),
                    end: 100 + 26 + 15
                },
                Entry::End {
                    end: buf.len() as u64 + 100
                },
            ]
        );
    }

    #[test]
    fn a_record_still_being_written_waits() {
        let mut buf = Vec::new();
        encode_line(&mut buf, 5, b"done");
        buf.extend_from_slice(b"6 half a li");
        let entries = parse(&buf, 0);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].end(), 7);
    }

    #[test]
    fn long_lines_are_split_at_the_event_limit_and_bad_utf8_replaced() {
        let mut buf = Vec::new();
        encode_line(&mut buf, 9, &vec![b'x'; MAX_LINE_BYTES + 10]);
        encode_line(&mut buf, 9, b"caf\xe9");
        let entries = parse(&buf, 0);
        assert_eq!(entries.len(), 3);
        let texts: Vec<usize> = entries
            .iter()
            .map(|e| match e {
                Entry::Line { text, .. } => text.len(),
                Entry::End { .. } => 0,
            })
            .collect();
        assert_eq!(texts[..2], [MAX_LINE_BYTES, 10]);
        assert!(matches!(&entries[2], Entry::Line { text, .. } if text == "caf\u{fffd}"));
    }
}
