//! Ships every awslogs container's journal on this host, oldest output first: up to
//! `IN_FLIGHT` batches per container per round, the read position moving past those
//! acknowledged.
//! Containers are found by their settings files under the tasks directory, so a
//! restarted agent picks up where the last one stopped, and a stopped task's last
//! lines still ship.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use tokio::sync::watch;

use super::events::{assemble, batch_len, Event};
use super::journal::{parse, Entry};
use super::link::{Batch, LogLink};
use super::{journal_path, log_path_of, position_path, ShipConfig, CONFIG_SUFFIX};
use crate::clock::Clock;

/// Batches of one container sent before the first is acknowledged.
const IN_FLIGHT: usize = 4;
/// The most journal read at once: enough for `IN_FLIGHT` batches of at most 3 MiB.
const READ_CHUNK: u64 = 12 << 20;
/// A multi-line event with no new line for this long is complete.
const MULTILINE_IDLE_MS: i64 = 1000;

/// How far a journal has shipped, the lines non-blocking mode dropped that the
/// control plane has not been told of yet, and whether the journal's end record has
/// shipped too (the container's output is all delivered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub dropped: u64,
    pub ended: bool,
}

impl Position {
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut words = text.split_whitespace();
        let mut number = || words.next().and_then(|w| w.parse::<u64>().ok());
        match (number(), number(), number()) {
            (Some(offset), Some(dropped), ended) => Self {
                offset,
                dropped,
                ended: ended == Some(1),
            },
            _ => Self::default(),
        }
    }

    /// Replaces the file whole, without waiting for the disk: a position lost to a
    /// crash makes the shipper read again from an older one (past the holes of what
    /// shipped, see `read_journal`), and the control plane stores each event once.
    pub fn write(self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("pos.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(
            f,
            "{} {} {}",
            self.offset,
            self.dropped,
            u8::from(self.ended)
        )?;
        std::fs::rename(tmp, path)
    }
}

/// One container as the shipper follows it: its settings and position are read from
/// their files the first time it is seen, then kept here (the shipper is the only
/// writer of the position).
struct Container {
    settings: ShipConfig,
    pattern: Option<Regex>,
    log: PathBuf,
    position: Position,
    /// The next round, read and cut while the control plane stores the last one,
    /// from the position it expects to start at.
    prefetch: Option<(Position, tokio::task::JoinHandle<std::io::Result<Prepared>>)>,
}

/// One round of a container's journal, read and cut into batches.
struct Prepared {
    /// Where the round starts (past lines non-blocking mode dropped).
    position: Position,
    batches: Vec<Vec<Event>>,
    /// The batches hold every event read.
    all_taken: bool,
    /// The journal's end record was read: the offset past it.
    ended: Option<u64>,
}

/// Reads a round of the journal from `start` and cuts it into batches (blocking).
fn prepare(
    journal: &Path,
    start: Position,
    max_buffer: Option<u64>,
    pattern: Option<&Regex>,
    idle_before: i64,
) -> std::io::Result<Prepared> {
    let read = read_journal(journal, start, max_buffer)?;
    let assembled = assemble(&read.entries, pattern, read.at_eof.then_some(idle_before));
    let (batches, all_taken) = split_batches(assembled.events);
    Ok(Prepared {
        position: read.position,
        batches,
        all_taken,
        ended: assembled.ended,
    })
}

impl Container {
    fn load(config: &Path) -> Result<Self, String> {
        let settings = ShipConfig::read(config).map_err(|e| e.to_string())?;
        let pattern = settings
            .multiline_pattern
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| format!("awslogs multiline pattern: {e}"))?;
        let log = log_path_of(config).ok_or("not a settings file")?;
        let position = Position::read(&position_path(&log));
        Ok(Self {
            settings,
            pattern,
            log,
            position,
            prefetch: None,
        })
    }

    /// The round from `start`: the prefetched one if it starts there and found output
    /// (one that found none is old news), else read now.
    async fn round(&mut self, start: Position, idle_before: i64) -> Result<Prepared, String> {
        // One from elsewhere (a batch was refused) is dropped unread.
        if let Some((_, read)) = self.prefetch.take().filter(|(from, _)| *from == start) {
            let read = read.await.map_err(|e| e.to_string())?;
            if read
                .as_ref()
                .is_ok_and(|p| !p.batches.is_empty() || p.ended.is_some())
            {
                return read.map_err(|e| e.to_string());
            }
        }
        self.prefetch(start, idle_before);
        let (_, read) = self.prefetch.take().expect("just started");
        read.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Starts reading the round that begins at `from`.
    fn prefetch(&mut self, from: Position, idle_before: i64) {
        let journal = journal_path(&self.log);
        let (max_buffer, pattern) = (self.settings.max_buffer_bytes, self.pattern.clone());
        let read = tokio::task::spawn_blocking(move || {
            prepare(&journal, from, max_buffer, pattern.as_ref(), idle_before)
        });
        self.prefetch = Some((from, read));
    }

    fn save(&mut self, position: Position) -> Result<(), String> {
        position
            .write(&position_path(&self.log))
            .map_err(|e| e.to_string())?;
        self.position = position;
        Ok(())
    }
}

pub struct Shipper {
    tasks_dir: PathBuf,
    link: LogLink,
    clock: Arc<dyn Clock>,
    interval: Duration,
    /// By settings file.
    containers: HashMap<PathBuf, Container>,
}

impl Shipper {
    pub fn new(
        tasks_dir: PathBuf,
        link: LogLink,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Self {
        Self {
            tasks_dir,
            link,
            clock,
            interval,
            containers: HashMap::new(),
        }
    }

    /// Ships until `shutdown` turns true; rounds follow each other at once while there
    /// is output to ship, else every `interval`.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            if !self.round().await {
                tokio::select! {
                    () = tokio::time::sleep(self.interval) => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
            }
        }
    }

    /// Up to `IN_FLIGHT` batches from each container with output to ship; true if any
    /// shipped.
    pub async fn round(&mut self) -> bool {
        let mut shipped = false;
        for config in self.configs() {
            match self.ship_one(&config).await {
                Ok(s) => shipped |= s,
                Err(e) => {
                    tracing::warn!(settings = %config.display(), error = %e, "awslogs: shipping waits");
                }
            }
        }
        shipped
    }

    /// The settings files of containers not yet shipped to their end.
    fn configs(&self) -> Vec<PathBuf> {
        let Ok(tasks) = std::fs::read_dir(&self.tasks_dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for task in tasks.flatten() {
            let Ok(files) = std::fs::read_dir(task.path()) else {
                continue;
            };
            found.extend(files.flatten().map(|f| f.path()).filter(|p| {
                p.to_string_lossy().ends_with(CONFIG_SUFFIX)
                    && !self.containers.get(p).is_some_and(|c| c.position.ended)
            }));
        }
        found.sort();
        found
    }

    /// Ships up to `IN_FLIGHT` batches of the container whose settings are at `config`;
    /// true if it shipped any.
    async fn ship_one(&mut self, config: &Path) -> Result<bool, String> {
        let c = match self.containers.entry(config.to_path_buf()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Container::load(config)?),
        };
        if c.position.ended {
            return Ok(false);
        }
        let start = c.position;
        let idle_before = self.clock.now_ms() - MULTILINE_IDLE_MS;
        let Prepared {
            position: pos,
            mut batches,
            all_taken,
            ended,
        } = c.round(start, idle_before).await?;
        // All of the journal read ships now: its end record goes with the last batch.
        let finished = ended.filter(|_| all_taken);
        if batches.is_empty() && finished.is_none() {
            if pos != start {
                c.save(pos)?;
            }
            return Ok(false);
        }
        match (batches.is_empty(), finished) {
            // Only the end record is left, and no drop to report: done.
            (true, Some(end)) if pos.dropped == 0 => {
                c.save(Position {
                    offset: end,
                    dropped: 0,
                    ended: true,
                })?;
                return Ok(false);
            }
            // The drop count still goes out, in a batch of its own.
            (true, _) => batches.push(Vec::new()),
            (false, _) => {}
        }
        let count = batches.len();
        let ends: Vec<u64> = batches
            .iter()
            .enumerate()
            .map(|(i, b)| match (finished, b.last()) {
                (Some(end), _) if i + 1 == count => end,
                (_, Some(e)) => e.end,
                (_, None) => pos.offset,
            })
            .collect();
        let sends: Vec<_> = batches
            .into_iter()
            .zip(&ends)
            .enumerate()
            .map(|(i, (events, &journal_end))| {
                self.link.ship(Batch {
                    group: c.settings.group.clone(),
                    stream: c.settings.stream.clone(),
                    create_group: c.settings.create_group,
                    events,
                    journal_start: if i == 0 { pos.offset } else { ends[i - 1] },
                    journal_end,
                    dropped_events: if i == 0 { pos.dropped } else { 0 },
                    task_arn: c.settings.task_arn.clone(),
                    container: c.settings.container.clone(),
                })
            })
            .collect::<Vec<_>>();
        // While the control plane stores these, the next round is read and cut.
        if finished.is_none() {
            let next = Position {
                offset: ends[count - 1],
                dropped: 0,
                ended: false,
            };
            c.prefetch(next, idle_before);
        }
        let results = futures::future::join_all(sends).await;
        // The position moves past the batches acknowledged in a row from the first.
        let acked = results.iter().take_while(|r| r.is_ok()).count();
        let first_error = results.into_iter().find_map(Result::err);
        let Some(&journal_end) = ends.get(acked.wrapping_sub(1)).filter(|_| acked > 0) else {
            return Err(first_error.unwrap_or_default());
        };
        c.save(Position {
            offset: journal_end,
            dropped: 0,
            ended: finished.is_some() && acked == count,
        })?;
        free_shipped(&journal_path(&c.log), journal_end);
        first_error.map_or(Ok(true), Err)
    }
}

/// Up to `IN_FLIGHT` batches, to go out together: the next is on its way while the
/// control plane stores the one before (it takes them in order). True if they hold
/// every event.
fn split_batches(mut rest: Vec<Event>) -> (Vec<Vec<Event>>, bool) {
    let mut batches = Vec::new();
    while !rest.is_empty() && batches.len() < IN_FLIGHT {
        let tail = rest.split_off(batch_len(&rest));
        batches.push(std::mem::replace(&mut rest, tail));
    }
    (batches, rest.is_empty())
}

/// Gives the disk blocks of the shipped part of a journal back (a hole: offsets, and
/// the file's size, stay as they are), so a chatty container's journal takes only its
/// unshipped backlog. A filesystem without holes keeps the blocks; nothing else changes.
fn free_shipped(journal: &Path, shipped: u64) {
    use nix::fcntl::{fallocate, FallocateFlags};
    const BLOCK: u64 = 4096;
    let Ok(len) = i64::try_from(shipped / BLOCK * BLOCK) else {
        return;
    };
    if len == 0 {
        return;
    }
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(journal) {
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        if let Err(e) = fallocate(&f, flags, 0, len) {
            tracing::debug!(journal = %journal.display(), error = %e, "awslogs: shipped journal blocks kept");
        }
    }
}

/// What one read of a journal found.
struct JournalRead {
    entries: Vec<Entry>,
    /// The read reached the journal's current end.
    at_eof: bool,
    /// Where the read started (past lines non-blocking mode dropped).
    position: Position,
}

/// Reads the journal's records from `pos`, at most `READ_CHUNK` of them. With a buffer
/// bound (non-blocking mode), first skips the oldest lines beyond it, counting them
/// into the position's `dropped`.
fn read_journal(
    path: &Path,
    mut pos: Position,
    max_buffer: Option<u64>,
) -> std::io::Result<JournalRead> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        // Not written yet: the container has not started.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(JournalRead {
                entries: Vec::new(),
                at_eof: true,
                position: pos,
            })
        }
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if pos.offset >= len {
        return Ok(JournalRead {
            entries: Vec::new(),
            at_eof: true,
            position: pos,
        });
    }
    let in_hole = skip_hole(&file, &mut pos);
    if let Some(max) = max_buffer {
        if len - pos.offset > max {
            skip_oldest(&mut file, &mut pos, len - max)?;
        }
    }
    let want = READ_CHUNK.min(len.saturating_sub(pos.offset));
    let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    file.seek(SeekFrom::Start(pos.offset))?;
    file.take(want).read_to_end(&mut buf)?;
    if in_hole {
        // Data resumes mid-record after a hole: that record shipped (the hole ends
        // before what was acknowledged), so reading starts at the next one.
        let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
            return Ok(JournalRead {
                entries: Vec::new(),
                at_eof: false,
                position: pos,
            });
        };
        buf.drain(..=nl);
        pos.offset += nl as u64 + 1;
    }
    Ok(JournalRead {
        entries: parse(&buf, pos.offset),
        at_eof: pos.offset + want >= len,
        position: pos,
    })
}

/// A position inside the punched-out part of a journal (its file was lost or is older
/// than what shipped) moves to where data resumes; true if it moved.
fn skip_hole(file: &std::fs::File, pos: &mut Position) -> bool {
    use nix::unistd::{lseek, Whence};
    let Ok(offset) = i64::try_from(pos.offset) else {
        return false;
    };
    match lseek(file, offset, Whence::SeekData).map(u64::try_from) {
        Ok(Ok(data)) if data > pos.offset => {
            pos.offset = data;
            true
        }
        _ => false,
    }
}

/// Moves `pos` to the first record that starts at or after `target`, counting the
/// records passed over.
fn skip_oldest(file: &mut std::fs::File, pos: &mut Position, target: u64) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(pos.offset))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = pos.offset;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                pos.dropped += 1;
                pos.offset = at + i as u64 + 1;
                if pos.offset >= target {
                    return Ok(());
                }
            }
        }
        at += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::awslogs::config_path;
    use crate::awslogs::journal::{encode_end, encode_line};
    use crate::awslogs::link::Outgoing;
    use crate::clock::SystemClock;

    struct Host {
        _dir: tempfile::TempDir,
        log: PathBuf,
        shipper: Shipper,
        link: LogLink,
        /// What the "control plane" received, and whether it acknowledges.
        received: Arc<Mutex<Vec<Batch>>>,
        ack: Arc<Mutex<bool>>,
    }

    fn host(max_buffer_bytes: Option<u64>, multiline_pattern: Option<&str>) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("0123abcd");
        std::fs::create_dir_all(&task).unwrap();
        let log = task.join("web.log");
        ShipConfig {
            group: "/ecs/app".into(),
            stream: "ecs/web/0123abcd".into(),
            create_group: true,
            max_buffer_bytes,
            multiline_pattern: multiline_pattern.map(Into::into),
            task_arn: "arn:aws:ecs:r:1:task/c/0123abcd".into(),
            container: "web".into(),
        }
        .write(&log)
        .unwrap();
        let (link, mut rx) = LogLink::new();
        let received = Arc::new(Mutex::new(Vec::new()));
        let ack = Arc::new(Mutex::new(true));
        let (r, a) = (received.clone(), ack.clone());
        tokio::spawn(async move {
            while let Some(Outgoing { batch, ack }) = rx.recv().await {
                r.lock().unwrap().push(batch);
                if *a.lock().unwrap() {
                    let _ = ack.send(Ok(()));
                } else {
                    let _ = ack.send(Err("store unavailable".into()));
                }
            }
        });
        let shipper = Shipper::new(
            dir.path().to_path_buf(),
            link.clone(),
            Arc::new(SystemClock),
            Duration::from_millis(10),
        );
        Host {
            _dir: dir,
            log,
            shipper,
            link,
            received,
            ack,
        }
    }

    fn write_lines(log: &Path, lines: &[&str], end: bool) {
        let mut buf = Vec::new();
        for l in lines {
            encode_line(&mut buf, 1000, l.as_bytes());
        }
        if end {
            encode_end(&mut buf);
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(journal_path(log))
            .unwrap();
        f.write_all(&buf).unwrap();
    }

    fn messages(batches: &[Batch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.message.clone()))
            .collect()
    }

    #[tokio::test]
    async fn output_ships_in_order_once_acknowledged_and_again_if_not() {
        let mut h = host(None, None);
        assert!(!h.shipper.round().await, "no journal yet: nothing to ship");
        write_lines(&h.log, &["one", "two"], false);
        *h.ack.lock().unwrap() = false;
        assert!(!h.shipper.round().await, "refused: not shipped");
        assert_eq!(Position::read(&position_path(&h.log)).offset, 0);
        *h.ack.lock().unwrap() = true;
        assert!(h.shipper.round().await);
        write_lines(&h.log, &["three"], false);
        assert!(h.shipper.round().await);
        // The container's output ends after its last line shipped.
        write_lines(&h.log, &[], true);
        assert!(!h.shipper.configs().is_empty());
        // The end record read, the container is done.
        assert!(!h.shipper.round().await);
        assert!(h.shipper.configs().is_empty());
        let got = h.received.lock().unwrap().clone();
        assert_eq!(messages(&got), ["one", "two", "one", "two", "three"]);
        // The unacknowledged first send and its resend cover the same journal.
        assert_eq!(got[0].journal_end, got[1].journal_end);
        let len = std::fs::metadata(journal_path(&h.log)).unwrap().len();
        assert_eq!(got[2].journal_end, len - 4, "up to the end record");
        assert_eq!(Position::read(&position_path(&h.log)).offset, len);
        // A restarted agent sees the journal shipped to its end and leaves it.
        let (link, _rx) = LogLink::new();
        let dir = h.log.parent().unwrap().parent().unwrap().to_path_buf();
        let mut again = Shipper::new(dir, link, Arc::new(SystemClock), Duration::ZERO);
        assert!(!again.round().await);
        assert!(again.configs().is_empty());
        assert!(config_path(&h.log).exists());
    }

    #[tokio::test]
    async fn shipped_journal_blocks_go_back_to_the_disk() {
        use std::os::unix::fs::MetadataExt;
        let mut h = host(None, None);
        let line = "x".repeat(1000);
        let lines: Vec<&str> = std::iter::repeat_n(line.as_str(), 600).collect();
        write_lines(&h.log, &lines, false);
        let journal = journal_path(&h.log);
        let before = std::fs::metadata(&journal).unwrap();
        while h.shipper.round().await {}
        let after = std::fs::metadata(&journal).unwrap();
        assert_eq!(after.len(), before.len(), "offsets stay valid");
        assert!(
            after.blocks() < before.blocks() / 4,
            "{} blocks still allocated of {}",
            after.blocks(),
            before.blocks()
        );
    }

    #[tokio::test]
    async fn a_last_line_ending_in_end_is_not_the_end_record() {
        let mut h = host(None, None);
        write_lines(&h.log, &["backend"], false);
        assert!(h.shipper.round().await);
        assert!(!h.shipper.round().await);
        assert!(!h.shipper.configs().is_empty(), "still shipping");
        let dir = h.log.parent().unwrap().parent().unwrap().to_path_buf();
        let (link, _rx) = LogLink::new();
        let restarted = Shipper::new(dir, link, Arc::new(SystemClock), Duration::ZERO);
        assert!(
            !restarted.configs().is_empty(),
            "still shipping after a restart"
        );
        write_lines(&h.log, &["more"], false);
        assert!(h.shipper.round().await);
        assert_eq!(messages(&h.received.lock().unwrap()), ["backend", "more"]);
    }

    #[tokio::test]
    async fn a_lost_position_resumes_past_the_holes_of_what_shipped() {
        let mut h = host(None, None);
        let line = "x".repeat(1000);
        let lines: Vec<&str> = std::iter::repeat_n(line.as_str(), 600).collect();
        write_lines(&h.log, &lines, false);
        while h.shipper.round().await {}
        let shipped = h.received.lock().unwrap().last().unwrap().journal_end;
        // The agent restarts and its position file is gone (a crash lost it).
        std::fs::remove_file(position_path(&h.log)).unwrap();
        let dir = h.log.parent().unwrap().parent().unwrap().to_path_buf();
        h.shipper = Shipper::new(dir, h.link.clone(), Arc::new(SystemClock), Duration::ZERO);
        write_lines(&h.log, &["new"], false);
        h.received.lock().unwrap().clear();
        while h.shipper.round().await {}
        let got = h.received.lock().unwrap().clone();
        assert!(
            got[0].journal_start <= shipped,
            "resumes within what shipped"
        );
        let resent = messages(&got);
        assert_eq!(resent.last().map(String::as_str), Some("new"));
        assert!(
            resent.len() < 600,
            "the holes are not read again: {}",
            resent.len()
        );
        assert!(
            resent[..resent.len() - 1].iter().all(|m| *m == line),
            "whole records only"
        );
    }

    #[tokio::test]
    async fn non_blocking_mode_drops_the_oldest_beyond_its_buffer_and_says_how_many() {
        // Each record "1000 lineNN\n" is 12 bytes; keep at most 30 bytes unshipped.
        let mut h = host(Some(30), None);
        let lines: Vec<String> = (0..10).map(|i| format!("line{i:02}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        write_lines(&h.log, &refs, false);
        assert!(h.shipper.round().await);
        let got = h.received.lock().unwrap().clone();
        assert_eq!(got[0].dropped_events, 8);
        assert_eq!(messages(&got), ["line08", "line09"]);
    }

    #[tokio::test]
    async fn a_stack_trace_ships_as_one_event() {
        let mut h = host(None, Some(r"^\d{4}-"));
        write_lines(
            &h.log,
            &[
                "2026-12-04 ERROR boom",
                "java.lang.Exception: x",
                "    at A.b(A.java:1)",
                "2026-12-04 INFO ok",
            ],
            true,
        );
        assert!(h.shipper.round().await);
        let got = h.received.lock().unwrap().clone();
        assert_eq!(
            messages(&got),
            [
                "2026-12-04 ERROR boom\njava.lang.Exception: x\n    at A.b(A.java:1)",
                "2026-12-04 INFO ok"
            ]
        );
    }
}
