//! A sender's side of the Fluentd forward protocol: the settings file the agent writes
//! beside the container's log, the records in Forward mode (`[tag, [[time, record],
//! ...]]`, time as the protocol's `EventTime`), and the connection to the router's socket.
//!
//! Delivery blocks, as Docker's fluentd driver does by default: while the router is
//! unreachable the sender retries and the container's writes wait. A router gone for
//! `GIVE_UP` (it stopped, or never listened) is given up on: lines are counted as
//! undelivered until it answers again, so a dead router never wedges its task. The
//! host's log file has every line either way.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long an unreachable router is waited for before lines are given up on.
pub const GIVE_UP: Duration = Duration::from_secs(30);
const RETRY: Duration = Duration::from_millis(100);

/// What a sender's log driver needs, written beside its log before it starts; its
/// presence tells the log driver to forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardConfig {
    /// The router's socket on the host.
    pub socket: PathBuf,
    pub tag: String,
    /// Fields every record carries besides `source` and `log`: `container_id`,
    /// `container_name`, and the `ecs_*` metadata when enabled.
    pub fields: Vec<(String, String)>,
}

impl ForwardConfig {
    pub fn write(&self, log_path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(config_path(log_path), json)
    }

    /// The settings of the container whose log is `log_path`, if it forwards.
    pub fn read(log_path: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(config_path(log_path)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `<dir>/<container>.firelens.json` beside `<dir>/<container>.log`.
pub fn config_path(log_path: &Path) -> PathBuf {
    let stem = log_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    log_path.with_file_name(format!("{stem}.firelens.json"))
}

/// `<dir>/<container>.firelens.done`: written by the log driver once it has sent its
/// last line, so the router is stopped only after its senders have finished.
pub fn done_path(log_path: &Path) -> PathBuf {
    config_path(log_path).with_extension("done")
}

/// Waits until the log driver of every sender that started (its log exists) has sent
/// its last line, or `timeout` passes; false on timeout.
pub async fn drained(logs: &[PathBuf], timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if logs.iter().all(|l| !l.exists() || done_path(l).exists()) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One message's records, built line by line.
pub struct Encoder<'a> {
    config: &'a ForwardConfig,
    source: &'static str,
    entries: Vec<u8>,
    count: u32,
}

impl<'a> Encoder<'a> {
    /// `source` is `stdout` or `stderr`, as Docker's fluentd driver names the stream.
    pub fn new(config: &'a ForwardConfig, source: &'static str) -> Self {
        Self {
            config,
            source,
            entries: Vec::new(),
            count: 0,
        }
    }

    pub fn push(&mut self, timestamp_ms: i64, line: &[u8]) {
        let e = &mut self.entries;
        // Writes into a Vec cannot fail.
        let _ = rmp::encode::write_array_len(e, 2);
        let secs = u32::try_from(timestamp_ms.div_euclid(1000)).unwrap_or(0);
        let nanos = u32::try_from(timestamp_ms.rem_euclid(1000) * 1_000_000).unwrap_or(0);
        let _ = rmp::encode::write_ext_meta(e, 8, 0);
        e.extend_from_slice(&secs.to_be_bytes());
        e.extend_from_slice(&nanos.to_be_bytes());
        let fields = u32::try_from(self.config.fields.len() + 2).unwrap_or(u32::MAX);
        let _ = rmp::encode::write_map_len(e, fields);
        for (k, v) in &self.config.fields {
            let _ = rmp::encode::write_str(e, k);
            let _ = rmp::encode::write_str(e, v);
        }
        let _ = rmp::encode::write_str(e, "source");
        let _ = rmp::encode::write_str(e, self.source);
        let _ = rmp::encode::write_str(e, "log");
        let _ = rmp::encode::write_str(e, &String::from_utf8_lossy(line));
        self.count += 1;
    }

    /// The message of the lines pushed since the last call, with how many; None if none.
    pub fn take(&mut self) -> Option<(Vec<u8>, u32)> {
        if self.count == 0 {
            return None;
        }
        let mut msg = Vec::with_capacity(self.entries.len() + self.config.tag.len() + 16);
        let _ = rmp::encode::write_array_len(&mut msg, 2);
        let _ = rmp::encode::write_str(&mut msg, &self.config.tag);
        let _ = rmp::encode::write_array_len(&mut msg, self.count);
        msg.append(&mut self.entries);
        let count = std::mem::take(&mut self.count);
        Some((msg, count))
    }
}

/// The connection to the router.
pub struct Connection {
    socket: PathBuf,
    stream: Option<UnixStream>,
    unreachable_since: Option<Instant>,
    /// Lines given up on.
    pub undelivered: u64,
}

impl Connection {
    pub fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            stream: None,
            unreachable_since: None,
            undelivered: 0,
        }
    }

    /// Delivers one message of `lines` lines, retrying while the router is briefly
    /// unreachable. A message cut off by a broken connection is sent again whole on
    /// the next: the router may see a line twice rather than miss one.
    pub fn send(&mut self, msg: &[u8], lines: u32) {
        loop {
            if self.stream.is_none() {
                if let Ok(s) = UnixStream::connect(&self.socket) {
                    let _ = s.set_write_timeout(Some(GIVE_UP));
                    self.stream = Some(s);
                } else {
                    let since = *self.unreachable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= GIVE_UP {
                        self.undelivered += u64::from(lines);
                        return;
                    }
                    std::thread::sleep(RETRY);
                    continue;
                }
            }
            let stream = self.stream.as_mut().expect("connected above");
            if stream.write_all(msg).is_ok() {
                self.unreachable_since = None;
                return;
            }
            self.stream = None;
            self.unreachable_since.get_or_insert_with(Instant::now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ForwardConfig {
        ForwardConfig {
            socket: PathBuf::from("/x"),
            tag: "app-firelens-abc".into(),
            fields: vec![("ecs_cluster".into(), "prod".into())],
        }
    }

    #[test]
    fn records_are_forward_mode_with_event_time() {
        let config = config();
        let mut enc = Encoder::new(&config, "stderr");
        assert!(enc.take().is_none());
        enc.push(1_700_000_000_123, b"hello");
        enc.push(1_700_000_000_124, b"world");
        let (msg, count) = enc.take().unwrap();
        assert_eq!(count, 2);
        let mut rd = msg.as_slice();
        assert_eq!(rmp::decode::read_array_len(&mut rd).unwrap(), 2);
        let mut tag = [0u8; 64];
        assert_eq!(
            rmp::decode::read_str(&mut rd, &mut tag).unwrap(),
            "app-firelens-abc"
        );
        assert_eq!(rmp::decode::read_array_len(&mut rd).unwrap(), 2);
        assert_eq!(rmp::decode::read_array_len(&mut rd).unwrap(), 2);
        let meta = rmp::decode::read_ext_meta(&mut rd).unwrap();
        assert_eq!((meta.typeid, meta.size), (0, 8));
        assert_eq!(&rd[..4], &1_700_000_000u32.to_be_bytes());
        assert_eq!(&rd[4..8], &123_000_000u32.to_be_bytes());
        rd = &rd[8..];
        assert_eq!(rmp::decode::read_map_len(&mut rd).unwrap(), 3);
        let mut buf = [0u8; 64];
        let mut pairs = vec![];
        for _ in 0..3 {
            let k = rmp::decode::read_str(&mut rd, &mut buf).unwrap().to_owned();
            let v = rmp::decode::read_str(&mut rd, &mut buf).unwrap().to_owned();
            pairs.push((k, v));
        }
        assert_eq!(
            pairs,
            [
                ("ecs_cluster", "prod"),
                ("source", "stderr"),
                ("log", "hello")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(enc.take().is_none(), "taken once");
    }

    #[test]
    fn the_files_sit_beside_the_log() {
        let log = Path::new("/t/app.log");
        assert_eq!(config_path(log), Path::new("/t/app.firelens.json"));
        assert_eq!(done_path(log), Path::new("/t/app.firelens.done"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_router_waits_for_started_senders_only() {
        let dir = tempfile::tempdir().unwrap();
        let started = dir.path().join("app.log");
        let never = dir.path().join("other.log");
        std::fs::write(&started, "x").unwrap();
        let logs = [started.clone(), never];
        assert!(!drained(&logs, Duration::from_secs(1)).await);
        std::fs::write(done_path(&started), "").unwrap();
        assert!(drained(&logs, Duration::from_secs(1)).await);
    }

    #[test]
    fn a_router_that_never_listens_is_given_up_on_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Connection::new(dir.path().join("none.sock"));
        c.unreachable_since = Some(Instant::now().checked_sub(GIVE_UP).unwrap());
        c.send(b"x", 3);
        c.send(b"y", 2);
        assert_eq!(c.undelivered, 5);
    }

    #[test]
    fn a_listening_router_gets_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fluent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut c = Connection::new(path);
        c.send(b"abc", 1);
        drop(c);
        let (mut s, _) = listener.accept().unwrap();
        let mut got = vec![];
        std::io::Read::read_to_end(&mut s, &mut got).unwrap();
        assert_eq!(got, b"abc");
    }
}
