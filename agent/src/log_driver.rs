//! The containers' log writer: containerd's `binary://` logging protocol,
//! served by the agent's own executable in a mode of its own.
//!
//! Why not containerd's `file://` logs: containerd 1.6's shim copies stdout
//! and stderr into one shared file handle and closes it when the first
//! stream ends, so whatever the other stream still had buffered was lost
//! (seen here about one run in eight: a container's last stderr lines
//! missing). With `binary://` the shim starts this process with the
//! container's stdout on fd 3, its stderr on fd 4 and a readiness pipe on
//! fd 5; we copy both streams into the log until each ends. The process is
//! the shim's child, so logging goes on while the agent restarts.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The argument that selects this mode; its value is the log file.
pub const FLAG: &str = "--berth-log-driver";

/// The stdio URI that makes the shim run `binary` as the log writer for
/// `log_path`. containerd turns each query pair into two arguments.
pub fn uri(binary: &Path, log_path: &Path) -> String {
    format!(
        "binary://{}?{FLAG}={}",
        encode(&binary.to_string_lossy()),
        encode(&log_path.to_string_lossy())
    )
}

/// Percent-encodes everything but unreserved characters and `/`, so any
/// path survives containerd's URL parsing.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The log file, when this process was started as the log writer.
pub fn requested(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    match args {
        [_, flag, path] if flag == FLAG => Some(PathBuf::from(path)),
        _ => None,
    }
}

/// Copies fd 3 (stdout) and fd 4 (stderr) into `log_path` until both end.
/// Reports ready on fd 5 once the file is open, as containerd expects. A container
/// that ships with awslogs (its settings file is beside the log) also gets a journal:
/// each line timestamped as it arrives (see `crate::awslogs::journal`).
pub fn run(log_path: &Path) -> std::io::Result<()> {
    // The shim sends SIGTERM when it closes the container's I/O; what the pipes still
    // hold, and the journal's end record, must get written first. Blocked here (the
    // copier threads inherit the mask), it stays pending: the pipes' end (EOF) is
    // what ends this process.
    nix::sys::signal::SigSet::from(nix::sys::signal::Signal::SIGTERM)
        .thread_block()
        .map_err(std::io::Error::other)?;
    let append = |p: &Path| OpenOptions::new().create(true).append(true).open(p);
    let file = append(log_path)?;
    let journal = if crate::awslogs::config_path(log_path).exists() {
        Some(append(&crate::awslogs::journal_path(log_path))?)
    } else {
        None
    };
    // The shim waits for a byte (or EOF) on fd 5 before it starts the
    // container. Opening through /proc avoids adopting raw descriptors.
    OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/5")?
        .write_all(b"r")?;
    let sinks = Arc::new(Mutex::new(Sinks { log: file, journal }));
    let copiers: Vec<_> = [3, 4]
        .into_iter()
        .map(|fd| {
            let sinks = sinks.clone();
            std::thread::spawn(move || copy(&format!("/proc/self/fd/{fd}"), &sinks))
        })
        .collect();
    for c in copiers {
        c.join()
            .map_err(|_| std::io::Error::other("a log copier panicked"))??;
    }
    let mut sinks = lock(&sinks);
    if let Some(j) = sinks.journal.as_mut() {
        let mut end = Vec::new();
        crate::awslogs::journal::encode_end(&mut end);
        j.write_all(&end)?;
    }
    Ok(())
}

struct Sinks {
    log: File,
    journal: Option<File>,
}

fn lock(sinks: &Mutex<Sinks>) -> std::sync::MutexGuard<'_, Sinks> {
    sinks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn copy(source: &str, sinks: &Mutex<Sinks>) -> std::io::Result<()> {
    let mut input = File::open(source)?;
    let mut buf = vec![0u8; 64 * 1024];
    let journalled = lock(sinks).journal.is_some();
    let mut lines = Lines::default();
    let mut records = Vec::new();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        records.clear();
        if journalled {
            lines.push(&buf[..n], now_ms(), &mut records);
        }
        // One write per chunk: the two streams interleave by chunk, never mid-chunk.
        let mut sinks = lock(sinks);
        sinks.log.write_all(&buf[..n])?;
        if let Some(j) = sinks.journal.as_mut() {
            j.write_all(&records)?;
        }
    }
    records.clear();
    lines.finish(&mut records);
    if let Some(j) = lock(sinks).journal.as_mut() {
        j.write_all(&records)?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    crate::clock::Clock::now_ms(&crate::clock::SystemClock)
}

/// One stream's output cut into lines, each stamped with the time its first byte came.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
    partial_since_ms: i64,
}

impl Lines {
    /// Journals the lines `chunk` completes; keeps its unfinished tail.
    fn push(&mut self, chunk: &[u8], now_ms: i64, out: &mut Vec<u8>) {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let since = if self.partial.is_empty() {
                now_ms
            } else {
                self.partial_since_ms
            };
            if self.partial.is_empty() {
                crate::awslogs::journal::encode_line(out, since, &rest[..nl]);
            } else {
                self.partial.extend_from_slice(&rest[..nl]);
                crate::awslogs::journal::encode_line(out, since, &self.partial);
                self.partial.clear();
            }
            rest = &rest[nl + 1..];
        }
        if !rest.is_empty() {
            if self.partial.is_empty() {
                self.partial_since_ms = now_ms;
            }
            self.partial.extend_from_slice(rest);
            // Output without newlines (progress bars, binary) is journalled in pieces
            // of the event limit rather than held without bound.
            while self.partial.len() >= crate::awslogs::journal::MAX_LINE_BYTES {
                let rest = self
                    .partial
                    .split_off(crate::awslogs::journal::MAX_LINE_BYTES);
                crate::awslogs::journal::encode_line(out, self.partial_since_ms, &self.partial);
                self.partial = rest;
                self.partial_since_ms = now_ms;
            }
        }
    }

    /// The last line, if the stream ended without a newline.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            crate::awslogs::journal::encode_line(out, self.partial_since_ms, &self.partial);
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_carries_the_flag_and_an_encoded_path() {
        let u = uri(
            Path::new("/usr/bin/berth-agent"),
            Path::new("/var/lib/berth/agent/tasks/ab/web log&1.log"),
        );
        assert_eq!(
            u,
            "binary:///usr/bin/berth-agent?--berth-log-driver=/var/lib/berth/agent/tasks/ab/web%20log%261.log"
        );
    }

    #[test]
    fn only_the_exact_argument_shape_selects_the_mode() {
        let args = |v: &[&str]| {
            v.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        assert_eq!(
            requested(&args(&["berth-agent", FLAG, "/x.log"])),
            Some(PathBuf::from("/x.log"))
        );
        assert_eq!(requested(&args(&["berth-agent", "--cluster", "x"])), None);
        assert_eq!(requested(&args(&["berth-agent"])), None);
    }

    #[test]
    fn lines_are_journalled_when_complete_with_the_time_they_began() {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        lines.push(b"one\ntw", 10, &mut out);
        lines.push(b"o\nthree", 20, &mut out);
        lines.finish(&mut out);
        assert_eq!(out, b"10 one\n10 two\n20 three\n");
    }

    #[test]
    fn output_without_newlines_is_journalled_in_pieces() {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let chunk = vec![b'#'; 64 * 1024];
        for _ in 0..5 {
            lines.push(&chunk, 7, &mut out);
        }
        assert!(lines.partial.len() < crate::awslogs::journal::MAX_LINE_BYTES);
        let records = crate::awslogs::journal::parse(&out, 0);
        assert_eq!(records.len(), 1);
        assert!(
            matches!(&records[0], crate::awslogs::journal::Entry::Line { text, .. } if text.len() == crate::awslogs::journal::MAX_LINE_BYTES)
        );
    }
}
