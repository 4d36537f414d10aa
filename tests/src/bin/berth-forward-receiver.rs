//! The tests' FireLens log router: a Fluentd forward-protocol receiver (Message,
//! Forward and `PackedForward` modes) on the unix socket FireLens routers listen on. It
//! prints, one JSON object a line: the configuration the agent mounted for it
//! (`{"config": ...}`), then every record it receives (`{"tag", "time_ms", "record"}`).
//! Its own output is what the tests read back, through its awslogs stream.
//!
//! Usage: berth-forward-receiver [SOCKET] [CONFIG]
//! (defaults: /var/run/fluent.sock, /fluent-bit/etc/fluent-bit.conf)

use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use rmpv::Value;
use serde_json::{json, Map, Value as Json};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let socket = args.next().unwrap_or_else(|| "/var/run/fluent.sock".into());
    let config = args
        .next()
        .unwrap_or_else(|| "/fluent-bit/etc/fluent-bit.conf".into());
    print(&json!({"config": std::fs::read_to_string(&config).ok()}));
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)?;
    print(&json!({"listening": socket}));
    for conn in listener.incoming() {
        let conn = conn?;
        std::thread::spawn(move || receive(conn));
    }
    Ok(())
}

fn print(v: &Json) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Reads messages until the sender hangs up (or sends what is not msgpack).
fn receive(conn: UnixStream) {
    let mut rd = BufReader::new(conn);
    while let Ok(msg) = rmpv::decode::read_value(&mut rd) {
        let Value::Array(parts) = msg else { continue };
        let tag = parts.first().and_then(Value::as_str).unwrap_or_default();
        match parts.get(1) {
            // Forward: [tag, [[time, record], ...], options]
            Some(Value::Array(entries)) => {
                for e in entries {
                    if let Value::Array(pair) = e {
                        entry(tag, pair.first(), pair.get(1));
                    }
                }
            }
            // `PackedForward`: [tag, <msgpack stream of [time, record]>, options]
            Some(Value::Binary(b)) => packed(tag, b),
            Some(Value::String(s)) => packed(tag, s.as_bytes()),
            // Message: [tag, time, record, options]
            time => entry(tag, time, parts.get(2)),
        }
    }
}

fn packed(tag: &str, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match rmpv::decode::read_value(&mut bytes) {
            Ok(Value::Array(pair)) => entry(tag, pair.first(), pair.get(1)),
            _ => return,
        }
    }
}

fn entry(tag: &str, time: Option<&Value>, record: Option<&Value>) {
    let time_ms = match time {
        // EventTime: ext 0, seconds and nanoseconds, big-endian.
        Some(Value::Ext(0, b)) if b.len() == 8 => {
            let secs = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let nanos = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            i64::from(secs) * 1000 + i64::from(nanos / 1_000_000)
        }
        Some(v) => v.as_i64().map_or(0, |s| s * 1000),
        None => 0,
    };
    print(
        &json!({"tag": tag, "time_ms": time_ms, "record": to_json(record.unwrap_or(&Value::Nil))}),
    );
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil | Value::Ext(..) => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => i.as_i64().map_or(Json::Null, Json::from),
        Value::F32(f) => json!(f),
        Value::F64(f) => json!(f),
        Value::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}
