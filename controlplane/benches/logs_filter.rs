//! `FilterLogEvents` over 10 million stored events (10 streams of one group, on disk):
//! the latency of a term that matches 0.1% of them, for a first page as `aws logs
//! filter-log-events` asks for it and for every match; and how fast events go in.
//! `cargo bench -p berth-controlplane --bench logs_filter` (EVENTS=... to change the size).

use std::sync::Arc;
use std::time::Instant;

use berth_controlplane::logs::model::InputEvent;
use berth_controlplane::logs::store::LogStore;
use berth_controlplane::logs::{FilterRead, Logs};
use berth_controlplane::state::{Clock, SystemClock};

const STREAMS: usize = 10;
const BATCH: usize = 10_000;

fn main() {
    let events: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = LogStore::open(&dir.path().join("logs.redb")).expect("the log store");
    let logs = Logs::new(store, Arc::new(SystemClock), "123456789012");
    logs.create_group(
        "us-east-1",
        "/bench",
        std::collections::BTreeMap::new(),
        None,
    )
    .expect("the group");
    for s in 0..STREAMS {
        logs.create_stream("/bench", &format!("web/app/{s}"))
            .expect("a stream");
    }
    // One event in a thousand holds the term.
    let now = SystemClock.now_ms();
    let start = Instant::now();
    let per_stream = events / STREAMS;
    let mut bytes = 0usize;
    for s in 0..STREAMS {
        let stream = format!("web/app/{s}");
        for chunk in (0..per_stream).collect::<Vec<_>>().chunks(BATCH) {
            let batch: Vec<InputEvent> = chunk
                .iter()
                .map(|i| {
                    let n = i * STREAMS + s;
                    let word = if n % 1000 == 7 { "NEEDLE" } else { "request" };
                    let message = format!(
                        "2026-12-04T10:00:00Z INFO {word} id={n} path=/api/items took=12ms"
                    );
                    bytes += message.len();
                    InputEvent {
                        timestamp_ms: now - 3_600_000 + i64::try_from(n).unwrap_or(0) / 10,
                        message,
                    }
                })
                .collect();
            logs.put_events("/bench", &stream, &batch).expect("a batch");
        }
    }
    let load = start.elapsed().as_secs_f64();
    let (mb, count) = (million(bytes), million(events) * 1e6);
    println!(
        "put: {events} events ({mb:.0} MB) in {load:.1} s: {:.0} events/s, {:.1} MB/s",
        count / load,
        mb / load
    );
    let read = |limit: usize| FilterRead {
        streams: None,
        stream_prefix: None,
        start_ms: None,
        end_ms: None,
        pattern: Some("NEEDLE".into()),
        after: None,
        limit,
    };
    for (label, limit) in [
        ("first page (limit 100)", 100),
        ("every match (limit 10,000)", 10_000),
    ] {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let (page, _) = logs
                .filter_events("/bench", &read(limit))
                .expect("a filter");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            found = page.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "filter NEEDLE, {label}: {found} events, median {:.0} ms (min {:.0}, max {:.0}) over {events} events",
            times[1], times[0], times[2]
        );
    }
}

/// `n` in millions, as a float (exact to the thousand for any count here).
fn million(n: usize) -> f64 {
    f64::from(u32::try_from(n / 1000).unwrap_or(u32::MAX)) / 1000.0
}
