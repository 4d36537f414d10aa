//! The task-level cgroup (v1 or v2, detected by cgroups-rs) that holds the
//! task's containers: runc creates each container's cgroup beneath it.

use std::path::Path;

use cgroups_rs::fs::{cgroup_builder::CgroupBuilder, hierarchies, Cgroup};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("could not create cgroup {path} for task {task_id}: {message}")]
    Create {
        task_id: String,
        path: String,
        message: String,
    },
    #[error("could not remove cgroup {path}: {message}")]
    Remove { path: String, message: String },
}

/// Task-level limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskLimits {
    /// CPU units (1024 per core); a hard CFS quota when set.
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
    /// Most processes the task may hold at once (fork bombs stop here).
    pub pids: Option<i64>,
}

pub trait CgroupManager: Send + Sync + 'static {
    /// The cgroup path (relative to the hierarchy root) of a task; container
    /// cgroups go beneath it.
    fn task_path(&self, task_id: &str) -> String;
    fn create_task(&self, task_id: &str, limits: TaskLimits) -> Result<(), CgroupError>;
    /// Removes the task cgroup and anything left beneath it. Idempotent.
    fn remove_task(&self, task_id: &str) -> Result<(), CgroupError>;
    /// Whether the kernel's OOM killer killed a process in this container's
    /// cgroup or in the task's (read before the container is deleted).
    fn oom_killed(&self, task_id: &str, container: &str) -> bool;
}

/// The `oom_kill` counter of a cgroup, v2 (`memory.events`) or v1
/// (`memory.oom_control` under the memory hierarchy); None if neither exists.
pub fn oom_kill_count(root: &Path, rel: &str) -> Option<u64> {
    let candidates = [
        root.join(rel).join("memory.events"),
        root.join("memory").join(rel).join("memory.oom_control"),
    ];
    candidates.iter().find_map(|p| {
        let text = std::fs::read_to_string(p).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The host's cgroupfs, through cgroups-rs.
pub struct HostCgroups {
    /// e.g. `berth/<containerd namespace>`.
    parent: String,
    /// Where cgroupfs is mounted (`/sys/fs/cgroup`); read for OOM counters.
    root: std::path::PathBuf,
}

impl HostCgroups {
    pub fn new(parent: impl Into<String>) -> Self {
        Self::with_root(parent, "/sys/fs/cgroup")
    }

    pub fn with_root(parent: impl Into<String>, root: impl Into<std::path::PathBuf>) -> Self {
        Self {
            parent: parent.into().trim_matches('/').to_string(),
            root: root.into(),
        }
    }
}

const CFS_PERIOD_US: u64 = 100_000;

impl CgroupManager for HostCgroups {
    fn oom_killed(&self, task_id: &str, container: &str) -> bool {
        let task = self.task_path(task_id);
        let count = |rel: &str| oom_kill_count(&self.root, rel).unwrap_or(0);
        count(&format!("{task}/{container}")) > 0 || count(&task) > 0
    }

    fn task_path(&self, task_id: &str) -> String {
        format!("{}/{task_id}", self.parent)
    }

    fn create_task(&self, task_id: &str, limits: TaskLimits) -> Result<(), CgroupError> {
        let path = self.task_path(task_id);
        let mut b = CgroupBuilder::new(&path);
        if let Some(mib) = limits.memory_mib.filter(|m| *m > 0) {
            b = b.memory().memory_hard_limit(mib * 1024 * 1024).done();
        }
        if let Some(pids) = limits.pids.filter(|p| *p > 0) {
            b = b
                .pid()
                .maximum_number_of_processes(cgroups_rs::fs::MaxValue::Value(pids))
                .done();
        }
        if let Some(cpu) = limits.cpu.filter(|c| *c > 0) {
            let quota = i64::try_from(CFS_PERIOD_US).unwrap_or(100_000) * cpu / 1024;
            b = b.cpu().period(CFS_PERIOD_US).quota(quota).done();
        }
        b.build(hierarchies::auto())
            .map(|_| ())
            .map_err(|e| CgroupError::Create {
                task_id: task_id.to_string(),
                path: path.clone(),
                message: e.to_string(),
            })
    }

    fn remove_task(&self, task_id: &str) -> Result<(), CgroupError> {
        let path = self.task_path(task_id);
        let hier = hierarchies::auto();
        let root = hier.root();
        // Container cgroups runc left behind (it normally removes its own).
        for child in child_names(&root, &path, hier.v2()) {
            let child_path = format!("{path}/{child}");
            let cg = Cgroup::load(hierarchies::auto(), &child_path);
            if cg.exists() {
                cg.delete().map_err(|e| CgroupError::Remove {
                    path: child_path.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        let cg = Cgroup::load(hier, &path);
        if cg.exists() {
            cg.delete().map_err(|e| CgroupError::Remove {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        // Hierarchies cgroups-rs does not manage (the empty unified mount of
        // a hybrid host, named ones) still hold the directories runc made.
        remove_dirs_in_all_hierarchies(&root, &path).map_err(|e| CgroupError::Remove {
            path,
            message: e.to_string(),
        })
    }
}

/// Removes `path` (deepest first) wherever it exists: directly under `root`
/// and under each hierarchy mounted beneath it.
/// Whether this host runs the unified (v2) cgroup hierarchy.
pub fn unified_hierarchy() -> bool {
    hierarchies::auto().v2()
}

fn remove_dirs_in_all_hierarchies(root: &Path, path: &str) -> std::io::Result<()> {
    let mut dirs = vec![root.join(path)];
    if let Ok(rd) = std::fs::read_dir(root) {
        dirs.extend(rd.flatten().map(|e| e.path().join(path)));
    }
    for d in dirs {
        if d.is_dir() {
            remove_tree(&d)?;
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    // cgroupfs directories are removed with rmdir, never by deleting files.
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Names of the sub-cgroups of `path`, across every mounted hierarchy (v1
/// has one per controller).
fn child_names(root: &Path, path: &str, v2: bool) -> Vec<String> {
    let dirs: Vec<std::path::PathBuf> = if v2 {
        vec![root.join(path)]
    } else {
        std::fs::read_dir(root)
            .map(|rd| rd.flatten().map(|e| e.path().join(path)).collect())
            .unwrap_or_default()
    };
    let mut names: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(std::iter::Iterator::flatten)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A fake for unit tests: records calls as `create <task id> <limits>` and
/// `remove <task id>`.
#[derive(Default)]
pub struct RecordingCgroups {
    pub calls: std::sync::Mutex<Vec<String>>,
    /// Containers (by name) the OOM killer "killed".
    pub oom_killed: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl RecordingCgroups {
    /// A copy of the calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl CgroupManager for RecordingCgroups {
    fn oom_killed(&self, _task_id: &str, container: &str) -> bool {
        self.oom_killed.lock().unwrap().contains(container)
    }

    fn task_path(&self, task_id: &str) -> String {
        format!("berth-test/{task_id}")
    }

    fn create_task(&self, task_id: &str, limits: TaskLimits) -> Result<(), CgroupError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("create {task_id} {limits:?}"));
        Ok(())
    }

    fn remove_task(&self, task_id: &str) -> Result<(), CgroupError> {
        self.calls.lock().unwrap().push(format!("remove {task_id}"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_names_across_v1_hierarchies() {
        let root = tempfile::tempdir().unwrap();
        for ctrl in ["memory", "cpu,cpuacct"] {
            std::fs::create_dir_all(root.path().join(ctrl).join("berth/ns/t1/web")).unwrap();
        }
        std::fs::create_dir_all(root.path().join("pids/berth/ns/t1/side")).unwrap();
        assert_eq!(
            child_names(root.path(), "berth/ns/t1", false),
            vec!["side", "web"]
        );
        std::fs::create_dir_all(root.path().join("berth/ns/t2/a")).unwrap();
        assert_eq!(child_names(root.path(), "berth/ns/t2", true), vec!["a"]);
    }

    #[test]
    fn leftover_dirs_go_from_every_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        for h in ["unified", "memory"] {
            std::fs::create_dir_all(root.path().join(h).join("berth/ns/t1/web")).unwrap();
        }
        remove_dirs_in_all_hierarchies(root.path(), "berth/ns/t1").unwrap();
        assert!(!root.path().join("unified/berth/ns/t1").exists());
        assert!(!root.path().join("memory/berth/ns/t1").exists());
        assert!(root.path().join("memory/berth/ns").exists());
    }

    #[test]
    fn oom_counters_v1_and_v2() {
        let root = tempfile::tempdir().unwrap();
        let v1 = root.path().join("memory/berth/ns/t1/web");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(oom_kill_count(root.path(), "berth/ns/t1/web"), Some(1));
        let v2 = root.path().join("berth/ns/t2/web");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(
            v2.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 0\n",
        )
        .unwrap();
        assert_eq!(oom_kill_count(root.path(), "berth/ns/t2/web"), Some(0));
        assert_eq!(oom_kill_count(root.path(), "berth/ns/none"), None);
        let cg = HostCgroups::with_root("berth/ns", root.path());
        assert!(cg.oom_killed("t1", "web"));
        assert!(!cg.oom_killed("t2", "web"));
    }

    #[test]
    fn task_paths_are_deterministic() {
        assert_eq!(
            HostCgroups::new("/berth/ns/").task_path("abc"),
            "berth/ns/abc"
        );
    }
}
