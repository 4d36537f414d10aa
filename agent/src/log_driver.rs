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

use crate::firelens::forward::{Connection, Encoder, ForwardConfig};

/// The argument that selects this mode; its value is the log file.
pub const FLAG: &str = "--berth-log-driver";
const MAX_SIZE: &str = "--max-size";
const MAX_FILES: &str = "--max-files";

/// When the host's log file is rotated: past `max_bytes` (0: never) it becomes
/// `<log>.1` (the older ones move up to `<log>.<max_files - 1>`) and a new one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub max_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// The stdio URI that makes the shim run `binary` as the log writer for
/// `log_path`. containerd turns each query pair into two arguments, in any order.
pub fn uri(binary: &Path, log_path: &Path, rotation: Rotation) -> String {
    format!(
        "binary://{}?{FLAG}={}&{MAX_SIZE}={}&{MAX_FILES}={}",
        encode(&binary.to_string_lossy()),
        encode(&log_path.to_string_lossy()),
        rotation.max_bytes,
        rotation.max_files
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

/// The log file and its rotation, when this process was started as the log writer:
/// the arguments are (flag, value) pairs, the log file's among them.
pub fn requested(args: &[std::ffi::OsString]) -> Option<(PathBuf, Rotation)> {
    let rest = args.get(1..)?;
    if rest.len() % 2 != 0 {
        return None;
    }
    let mut path = None;
    let mut rotation = Rotation::default();
    for pair in rest.chunks(2) {
        let value = pair[1].to_str();
        match pair[0].to_str()? {
            FLAG => path = Some(PathBuf::from(&pair[1])),
            MAX_SIZE => rotation.max_bytes = value?.parse().ok()?,
            MAX_FILES => rotation.max_files = value?.parse().ok()?,
            _ => return None,
        }
    }
    path.map(|p| (p, rotation))
}

/// Copies fd 3 (stdout) and fd 4 (stderr) into `log_path` until both end.
/// Reports ready on fd 5 once the file is open, as containerd expects. A container
/// that ships with awslogs (its settings file is beside the log) also gets a journal:
/// each line timestamped as it arrives (see `crate::awslogs::journal`). One that logs
/// through a FireLens router (its forward settings are beside the log) has each line
/// sent to the router too (see `crate::firelens::forward`).
pub fn run(log_path: &Path, rotation: Rotation) -> std::io::Result<()> {
    // The shim sends SIGTERM when it closes the container's I/O; what the pipes still
    // hold, and the journal's end record, must get written first. Blocked here (the
    // copier threads inherit the mask), it stays pending: the pipes' end (EOF) is
    // what ends this process.
    nix::sys::signal::SigSet::from(nix::sys::signal::Signal::SIGTERM)
        .thread_block()
        .map_err(std::io::Error::other)?;
    let append = |p: &Path| OpenOptions::new().create(true).append(true).open(p);
    let file = RotatingLog::open(log_path, rotation)?;
    let journal = if crate::awslogs::config_path(log_path).exists() {
        Some(append(&crate::awslogs::journal_path(log_path))?)
    } else {
        None
    };
    let forward = ForwardConfig::read(log_path)?;
    if let Some(dir) = forward.as_ref().and_then(|f| f.socket.parent()) {
        // Connecting by a relative name: the socket's full path may pass the 108 bytes
        // a unix socket address holds. Nothing else here uses relative paths.
        std::env::set_current_dir(dir)?;
    }
    // The shim waits for a byte (or EOF) on fd 5 before it starts the
    // container. Opening through /proc avoids adopting raw descriptors.
    OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/5")?
        .write_all(b"r")?;
    let sinks = Arc::new(Mutex::new(Sinks { log: file, journal }));
    let copiers: Vec<_> = [(3, "stdout"), (4, "stderr")]
        .into_iter()
        .map(|(fd, source)| {
            let sinks = sinks.clone();
            let forward = forward.clone();
            std::thread::spawn(move || {
                copy(
                    &format!("/proc/self/fd/{fd}"),
                    source,
                    &sinks,
                    forward.as_ref(),
                )
            })
        })
        .collect();
    let mut undelivered = 0;
    for c in copiers {
        undelivered += c
            .join()
            .map_err(|_| std::io::Error::other("a log copier panicked"))??;
    }
    let mut sinks = lock(&sinks);
    if undelivered > 0 {
        let note = format!(
            "berth: {undelivered} lines were not delivered to the log router (unreachable for {} s)\n",
            crate::firelens::forward::GIVE_UP.as_secs()
        );
        sinks.log.write_all(note.as_bytes())?;
    }
    if let Some(j) = sinks.journal.as_mut() {
        let mut end = Vec::new();
        crate::awslogs::journal::encode_end(&mut end);
        j.write_all(&end)?;
    }
    if forward.is_some() {
        std::fs::write(crate::firelens::forward::done_path(log_path), b"")?;
    }
    Ok(())
}

struct Sinks {
    log: RotatingLog,
    journal: Option<File>,
}

fn lock(sinks: &Mutex<Sinks>) -> std::sync::MutexGuard<'_, Sinks> {
    sinks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Copies one stream; returns how many of its lines the log router never got.
fn copy(
    source: &str,
    stream: &'static str,
    sinks: &Mutex<Sinks>,
    forward: Option<&ForwardConfig>,
) -> std::io::Result<u64> {
    let mut input = File::open(source)?;
    let mut buf = vec![0u8; 64 * 1024];
    let journalled = lock(sinks).journal.is_some();
    let mut router = forward.map(|f| {
        let name = f.socket.file_name().unwrap_or_default();
        (
            Encoder::new(f, stream),
            Connection::new(PathBuf::from(name)),
        )
    });
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
        if journalled || router.is_some() {
            lines.push(&buf[..n], now_ms(), &mut |ms, line| {
                emit(journalled, &mut records, &mut router, ms, line);
            });
        }
        // One write per chunk: the two streams interleave by chunk, never mid-chunk.
        {
            let mut sinks = lock(sinks);
            sinks.log.write_all(&buf[..n])?;
            if let Some(j) = sinks.journal.as_mut() {
                j.write_all(&records)?;
            }
        }
        send(&mut router);
    }
    records.clear();
    lines.finish(&mut |ms, line| emit(journalled, &mut records, &mut router, ms, line));
    if let Some(j) = lock(sinks).journal.as_mut() {
        j.write_all(&records)?;
    }
    send(&mut router);
    Ok(router.map_or(0, |(_, c)| c.undelivered))
}

fn emit(
    journalled: bool,
    records: &mut Vec<u8>,
    router: &mut Option<(Encoder<'_>, Connection)>,
    ms: i64,
    line: &[u8],
) {
    if journalled {
        crate::awslogs::journal::encode_line(records, ms, line);
    }
    if let Some((encoder, _)) = router {
        encoder.push(ms, line);
    }
}

fn send(router: &mut Option<(Encoder<'_>, Connection)>) {
    if let Some((encoder, connection)) = router {
        if let Some((msg, lines)) = encoder.take() {
            connection.send(&msg, lines);
        }
    }
}

/// The host's log file, rotated by size.
struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl RotatingLog {
    fn open(path: &Path, rotation: Rotation) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_owned(),
            size: file.metadata()?.len(),
            file,
            rotation,
        })
    }

    /// Appends `bytes`, rotating where the file would pass its size: after the last
    /// whole line that fits (a line longer than a file gets a file of its own).
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let max = self.rotation.max_bytes;
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = usize::try_from(max.saturating_sub(self.size)).unwrap_or(usize::MAX);
            if max == 0 || rest.len() <= room {
                return self.append(rest);
            }
            let fits = rest[..room]
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|i| i + 1);
            match fits {
                Some(n) => {
                    self.append(&rest[..n])?;
                    rest = &rest[n..];
                }
                None if self.size == 0 => {
                    let n = rest
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(rest.len(), |i| i + 1);
                    self.append(&rest[..n])?;
                    rest = &rest[n..];
                }
                None => {}
            }
            if !rest.is_empty() {
                self.rotate()?;
            }
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |i: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{i}"));
            PathBuf::from(name)
        };
        if self.rotation.max_files <= 1 {
            self.file.set_len(0)?;
        } else {
            for i in (1..self.rotation.max_files - 1).rev() {
                match std::fs::rename(numbered(i), numbered(i + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
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
    /// Emits the lines `chunk` completes; keeps its unfinished tail.
    fn push(&mut self, chunk: &[u8], now_ms: i64, out: &mut impl FnMut(i64, &[u8])) {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let since = if self.partial.is_empty() {
                now_ms
            } else {
                self.partial_since_ms
            };
            if self.partial.is_empty() {
                out(since, &rest[..nl]);
            } else {
                self.partial.extend_from_slice(&rest[..nl]);
                out(since, &self.partial);
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
                out(self.partial_since_ms, &self.partial);
                self.partial = rest;
                self.partial_since_ms = now_ms;
            }
        }
    }

    /// The last line, if the stream ended without a newline.
    fn finish(&mut self, out: &mut impl FnMut(i64, &[u8])) {
        if !self.partial.is_empty() {
            out(self.partial_since_ms, &self.partial);
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
            Rotation::default(),
        );
        assert_eq!(
            u,
            "binary:///usr/bin/berth-agent?--berth-log-driver=/var/lib/berth/agent/tasks/ab/web%20log%261.log&--max-size=10485760&--max-files=5"
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
            Some((PathBuf::from("/x.log"), Rotation::default()))
        );
        // containerd passes the query's pairs in any order.
        let rotation = Rotation {
            max_bytes: 100,
            max_files: 2,
        };
        assert_eq!(
            requested(&args(&[
                "berth-agent",
                MAX_FILES,
                "2",
                FLAG,
                "/x.log",
                MAX_SIZE,
                "100"
            ])),
            Some((PathBuf::from("/x.log"), rotation))
        );
        assert_eq!(requested(&args(&["berth-agent", MAX_SIZE, "100"])), None);
        assert_eq!(requested(&args(&["berth-agent", FLAG])), None);
        assert_eq!(requested(&args(&["berth-agent", "--cluster", "x"])), None);
        assert_eq!(requested(&args(&["berth-agent"])), None);
    }

    #[test]
    fn lines_are_journalled_when_complete_with_the_time_they_began() {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let mut journal =
            |ms, line: &[u8]| crate::awslogs::journal::encode_line(&mut out, ms, line);
        lines.push(b"one\ntw", 10, &mut journal);
        lines.push(b"o\nthree", 20, &mut journal);
        lines.finish(&mut journal);
        assert_eq!(out, b"10 one\n10 two\n20 three\n");
    }

    #[test]
    fn output_without_newlines_is_journalled_in_pieces() {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let chunk = vec![b'#'; 64 * 1024];
        for _ in 0..5 {
            lines.push(&chunk, 7, &mut |ms, line: &[u8]| {
                crate::awslogs::journal::encode_line(&mut out, ms, line);
            });
        }
        assert!(lines.partial.len() < crate::awslogs::journal::MAX_LINE_BYTES);
        let records = crate::awslogs::journal::parse(&out, 0);
        assert_eq!(records.len(), 1);
        assert!(
            matches!(&records[0], crate::awslogs::journal::Entry::Line { text, .. } if text.len() == crate::awslogs::journal::MAX_LINE_BYTES)
        );
    }

    #[test]
    fn the_log_rotates_by_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let rotation = Rotation {
            max_bytes: 10,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, rotation).unwrap();
        for chunk in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            log.write_all(chunk.as_bytes()).unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "dddddd\n");
        assert_eq!(read(&dir.path().join("web.log.1")), "cccccc\n");
        assert_eq!(read(&dir.path().join("web.log.2")), "bbbbbb\n");
        assert!(
            !dir.path().join("web.log.3").exists(),
            "max_files counts the current file"
        );
        // A restarted writer continues the file's size, not from zero.
        let mut log = RotatingLog::open(&path, rotation).unwrap();
        log.write_all(b"eeeeee\n").unwrap();
        assert_eq!(read(&path), "eeeeee\n");
        assert_eq!(read(&dir.path().join("web.log.1")), "dddddd\n");
        // One chunk of several lines is cut after the last whole line that fits; a line
        // longer than a file gets one of its own.
        log.write_all(b"f\ng\nhhhhhhhhhhhhhhhh\ni\n").unwrap();
        assert_eq!(read(&dir.path().join("web.log.2")), "g\n");
        assert_eq!(read(&dir.path().join("web.log.1")), "hhhhhhhhhhhhhhhh\n");
        assert_eq!(read(&path), "i\n");
    }
}
