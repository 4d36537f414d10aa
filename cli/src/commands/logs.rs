//! `berth logs`: a task's container output from the log files the agent on this host writes
//! (`<agent dir>/tasks/<task id>/<container>.log`, stdout and stderr together). Local only
//! until the control plane serves logs; `--follow` asks the API when the task has stopped.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_cli::status::last_status;
use berth_ecs::TaskStatus;
use serde_json::Value;

use crate::args::LogsArgs;
use crate::client::{task_ref, EcsClient};
use crate::config::Paths;

const POLL: Duration = Duration::from_millis(250);
/// Ask the API about the task every this many polls (once a second).
const STATUS_EVERY: u32 = 4;

/// Prints what the task's containers wrote. Needs the API only with `--follow`.
pub async fn run(
    paths: &Paths,
    client: impl FnOnce() -> Result<EcsClient>,
    args: &LogsArgs,
) -> Result<()> {
    let (cluster, id) = task_ref(&args.task, &args.cluster);
    let dir = paths.task_dir(id);
    let mut out = std::io::stdout().lock();
    if !args.follow {
        let containers = match &args.container {
            Some(c) => vec![c.clone()],
            None => containers_on_disk(&dir, id)?,
        };
        let mut tail = Tail::new(&dir, &containers);
        tail.check_files_exist(&dir)?;
        tail.drain(&mut out, true)?;
        return Ok(());
    }

    let client = client()?;
    let mut task = client.describe_task(cluster, id).await?;
    let containers = match &args.container {
        Some(c) => vec![c.clone()],
        None => container_names(&task),
    };
    let mut tail = Tail::new(&dir, &containers);
    let mut polls = 0u32;
    loop {
        let status = last_status(&task);
        let stopped = status == Some(TaskStatus::Stopped);
        // Past PENDING the agent has created the task's directory, if the task is here.
        let placed = !matches!(status, Some(TaskStatus::Provisioning | TaskStatus::Pending));
        if placed && !dir.is_dir() {
            bail!(not_here(&dir, id));
        }
        tail.drain(&mut out, stopped)?;
        if stopped {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
        polls += 1;
        if polls.is_multiple_of(STATUS_EVERY) {
            task = client.describe_task(cluster, id).await?;
        }
    }
}

fn not_here(dir: &Path, id: &str) -> String {
    format!(
        "no logs for task {id} on this host (nothing under {}): berth logs reads only the \
         local agent's files until the control plane serves logs; run it on the task's host, \
         or point --agent-dir / BERTH_AGENT_DATA_DIR at the agent's data dir",
        dir.display()
    )
}

/// The `<name>.log` files in a task's directory, sorted.
fn containers_on_disk(dir: &Path, id: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|_| anyhow::anyhow!(not_here(dir, id)))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    if names.is_empty() {
        bail!(
            "task {id} has no container output yet (no *.log in {})",
            dir.display()
        );
    }
    Ok(names)
}

fn container_names(task: &Value) -> Vec<String> {
    task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

/// Reads several growing files, each from where it was last read. With more than one file,
/// each complete line is prefixed `name | `; a partial last line waits for its end.
pub struct Tail {
    files: BTreeMap<String, Followed>,
    prefix: bool,
    width: usize,
}

struct Followed {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// The rotated files have been read.
    started: bool,
    /// The file last read: another one at the path means it was rotated.
    inode: Option<u64>,
}

/// `<log>.<i>`: the i-th newest rotated file.
fn numbered(path: &Path, i: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{i}"));
    PathBuf::from(name)
}

/// A log's rotated files, newest first.
fn rotated(path: &Path) -> Vec<PathBuf> {
    (1..=u32::MAX)
        .map(|i| numbered(path, i))
        .take_while(|p| p.is_file())
        .collect()
}

/// Appends `path` from `offset` to `buf`; nothing if it is gone.
fn read_from(path: &Path, offset: u64, buf: &mut Vec<u8>) -> Result<()> {
    match std::fs::File::open(path) {
        Ok(mut file) => {
            file.seek(SeekFrom::Start(offset))?;
            file.read_to_end(buf)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context(format!("opening {}", path.display())),
    }
}

impl Tail {
    pub fn new(dir: &Path, containers: &[String]) -> Self {
        Self {
            files: containers
                .iter()
                .map(|c| {
                    let f = Followed {
                        path: dir.join(format!("{c}.log")),
                        offset: 0,
                        partial: vec![],
                        started: false,
                        inode: None,
                    };
                    (c.clone(), f)
                })
                .collect(),
            prefix: containers.len() > 1,
            width: containers.iter().map(String::len).max().unwrap_or(0),
        }
    }

    fn check_files_exist(&self, dir: &Path) -> Result<()> {
        for (name, f) in &self.files {
            if !f.path.is_file() {
                let have = containers_on_disk(dir, "").unwrap_or_default();
                bail!(
                    "no output of container {name} at {} (containers with output: {})",
                    f.path.display(),
                    if have.is_empty() {
                        "none".to_owned()
                    } else {
                        have.join(", ")
                    }
                );
            }
        }
        Ok(())
    }

    /// Writes whatever the files gained since the last call. `last` flushes partial lines:
    /// nothing more will come.
    pub fn drain(&mut self, out: &mut impl Write, last: bool) -> Result<()> {
        for (name, f) in &mut self.files {
            let mut buf = vec![];
            if !f.started {
                // The agent's log driver rotates by size: the older files first.
                f.started = true;
                for old in rotated(&f.path).iter().rev() {
                    read_from(old, 0, &mut buf)?;
                }
            }
            match std::fs::File::open(&f.path) {
                Ok(mut file) => {
                    // A file that shrank was rotated (its rest is in `.1`) or replaced:
                    // the rest, then the new file from its start.
                    let meta = file.metadata()?;
                    let moved = f.inode.is_some_and(|i| i != meta.ino());
                    if moved || meta.len() < f.offset {
                        read_from(&numbered(&f.path, 1), f.offset, &mut buf)?;
                        f.offset = 0;
                    }
                    f.inode = Some(meta.ino());
                    file.seek(SeekFrom::Start(f.offset))?;
                    let before = buf.len();
                    file.read_to_end(&mut buf)
                        .with_context(|| format!("reading {}", f.path.display()))?;
                    f.offset += (buf.len() - before) as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).context(format!("opening {}", f.path.display())),
            }
            if !self.prefix {
                out.write_all(&buf)?;
                continue;
            }
            f.partial.extend_from_slice(&buf);
            let complete = if last {
                f.partial.len()
            } else {
                f.partial
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
            };
            let text: Vec<u8> = f.partial.drain(..complete).collect();
            for line in text.split_inclusive(|&b| b == b'\n') {
                write!(out, "{name:<width$} | ", width = self.width)?;
                out.write_all(line)?;
                if !line.ends_with(b"\n") {
                    out.write_all(b"\n")?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn drain(tail: &mut Tail, last: bool) -> String {
        let mut out = vec![];
        tail.drain(&mut out, last).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_container_is_copied_as_is_and_followed_from_where_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("web.log");
        append(&log, "hello\nno newline yet");
        let mut tail = Tail::new(dir.path(), &["web".into()]);
        assert_eq!(drain(&mut tail, false), "hello\nno newline yet");
        assert_eq!(drain(&mut tail, false), "");
        append(&log, " - now\n");
        assert_eq!(drain(&mut tail, false), " - now\n");
    }

    #[test]
    fn several_containers_get_aligned_prefixes_on_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("app.log"), "a1\na2\npart");
        append(&dir.path().join("sidecar.log"), "s1\n");
        let mut tail = Tail::new(dir.path(), &["app".into(), "sidecar".into()]);
        assert_eq!(
            drain(&mut tail, false),
            "app     | a1\napp     | a2\nsidecar | s1\n"
        );
        append(&dir.path().join("app.log"), "ial\nlast");
        assert_eq!(drain(&mut tail, false), "app     | partial\n");
        assert_eq!(drain(&mut tail, true), "app     | last\n");
    }

    #[test]
    fn a_file_not_there_yet_is_waited_for_and_a_replaced_one_reread() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("web.log");
        let mut tail = Tail::new(dir.path(), &["web".into()]);
        assert_eq!(drain(&mut tail, false), "");
        append(&log, "first run, long line\n");
        assert_eq!(drain(&mut tail, false), "first run, long line\n");
        std::fs::write(&log, "second\n").unwrap();
        assert_eq!(drain(&mut tail, false), "second\n");
    }

    #[test]
    fn rotated_files_come_first_and_a_rotation_while_following_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("web.log");
        append(&dir.path().join("web.log.2"), "one\n");
        append(&dir.path().join("web.log.1"), "two\n");
        append(&log, "three\n");
        let mut tail = Tail::new(dir.path(), &["web".into()]);
        assert_eq!(drain(&mut tail, false), "one\ntwo\nthree\n");
        // The driver appends, then rotates: the rest is read from `.1`.
        append(&log, "four\n");
        std::fs::rename(dir.path().join("web.log.1"), dir.path().join("web.log.2")).unwrap();
        std::fs::rename(&log, dir.path().join("web.log.1")).unwrap();
        append(&log, "five\n");
        assert_eq!(drain(&mut tail, false), "four\nfive\n");
        // A new file already longer than what was read of the old one.
        append(&log, "six\n");
        std::fs::rename(&log, dir.path().join("web.log.1")).unwrap();
        append(&log, "seven, a longer line\n");
        assert_eq!(drain(&mut tail, false), "six\nseven, a longer line\n");
    }

    #[test]
    fn containers_on_disk_are_the_log_files_and_a_missing_dir_says_local_only() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("b.log"), "");
        append(&dir.path().join("a.log"), "");
        append(&dir.path().join("hosts"), "");
        assert_eq!(containers_on_disk(dir.path(), "t").unwrap(), ["a", "b"]);
        let err = containers_on_disk(&dir.path().join("nope"), "t").unwrap_err();
        assert!(
            err.to_string().contains("only the local agent's files"),
            "{err}"
        );
    }
}
