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
/// Reports ready on fd 5 once the file is open, as containerd expects.
pub fn run(log_path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    // The shim waits for a byte (or EOF) on fd 5 before it starts the
    // container. Opening through /proc avoids adopting raw descriptors.
    OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/5")?
        .write_all(b"r")?;
    let log = Arc::new(Mutex::new(file));
    let copiers: Vec<_> = [3, 4]
        .into_iter()
        .map(|fd| {
            let log = log.clone();
            std::thread::spawn(move || copy(&format!("/proc/self/fd/{fd}"), &log))
        })
        .collect();
    for c in copiers {
        c.join()
            .map_err(|_| std::io::Error::other("a log copier panicked"))??;
    }
    Ok(())
}

fn copy(source: &str, log: &Mutex<File>) -> std::io::Result<()> {
    let mut input = File::open(source)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // One write per chunk: the two streams interleave by chunk, never mid-chunk.
        log.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .write_all(&buf[..n])?;
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
}
