//! Container stats read from cgroupfs (v1 or v2) and rendered in Docker's stats JSON shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// One reading of a container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    /// The hard limit; `u64::MAX` when there is none.
    pub memory_limit: u64,
    pub memory_stat: BTreeMap<String, u64>,
    /// Nanoseconds of CPU time.
    pub cpu_total: u64,
    pub cpu_user: u64,
    pub cpu_system: u64,
    pub pids: Option<u64>,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn read_u64(p: &Path) -> Option<u64> {
    read(p)?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn flat_keyed(p: &Path) -> BTreeMap<String, u64> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Kernel ticks (`USER_HZ`, 100 on Linux) in nanoseconds.
const NS_PER_TICK: u64 = 10_000_000;

/// Reads the cgroup at `rel` under the cgroupfs mounted at `root`: v2 when
/// `root/rel` holds `memory.current`, else v1 with one hierarchy per
/// controller (`root/memory/rel`, `root/cpuacct/rel`). None if neither
/// exists (the container is gone).
pub fn read_cgroup(root: &Path, rel: &str) -> Option<CgroupStats> {
    let rel = rel.trim_matches('/');
    let v2 = root.join(rel);
    if v2.join("memory.current").exists() {
        return Some(read_v2(&v2));
    }
    let mem = root.join("memory").join(rel);
    if !mem.join("memory.usage_in_bytes").exists() {
        return None;
    }
    let cpu: Option<PathBuf> = ["cpuacct", "cpu,cpuacct"]
        .iter()
        .map(|h| root.join(h).join(rel))
        .find(|p| p.join("cpuacct.usage").exists());
    let ticks = cpu
        .as_ref()
        .map(|p| flat_keyed(&p.join("cpuacct.stat")))
        .unwrap_or_default();
    Some(CgroupStats {
        memory_usage: read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0),
        memory_max_usage: read_u64(&mem.join("memory.max_usage_in_bytes")).unwrap_or(0),
        memory_limit: read_u64(&mem.join("memory.limit_in_bytes")).unwrap_or(u64::MAX),
        memory_stat: flat_keyed(&mem.join("memory.stat")),
        cpu_total: cpu
            .as_ref()
            .and_then(|p| read_u64(&p.join("cpuacct.usage")))
            .unwrap_or(0),
        cpu_user: ticks.get("user").copied().unwrap_or(0) * NS_PER_TICK,
        cpu_system: ticks.get("system").copied().unwrap_or(0) * NS_PER_TICK,
        pids: read_u64(&root.join("pids").join(rel).join("pids.current")),
    })
}

fn read_v2(dir: &Path) -> CgroupStats {
    let cpu = flat_keyed(&dir.join("cpu.stat"));
    let usec = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    CgroupStats {
        memory_usage: read_u64(&dir.join("memory.current")).unwrap_or(0),
        // memory.peak exists from Linux 5.19.
        memory_max_usage: read_u64(&dir.join("memory.peak")).unwrap_or(0),
        // "max" (no limit) does not parse.
        memory_limit: read_u64(&dir.join("memory.max")).unwrap_or(u64::MAX),
        memory_stat: flat_keyed(&dir.join("memory.stat")),
        cpu_total: usec("usage_usec"),
        cpu_user: usec("user_usec"),
        cpu_system: usec("system_usec"),
        pids: read_u64(&dir.join("pids.current")),
    }
}

/// Docker's stats JSON for one reading (`read` is RFC 3339).
pub fn render(s: &CgroupStats, id: &str, name: &str, read: &str) -> Value {
    let online_cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    json!({
        "read": read,
        "preread": "0001-01-01T00:00:00Z",
        "id": id,
        "name": name,
        "pids_stats": s.pids.map_or(json!({}), |p| json!({"current": p})),
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": s.cpu_total,
                "usage_in_kernelmode": s.cpu_system,
                "usage_in_usermode": s.cpu_user,
            },
            "online_cpus": online_cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {
            "usage": s.memory_usage,
            "max_usage": s.memory_max_usage,
            "limit": s.memory_limit,
            "stats": s.memory_stat,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn reads_v1_hierarchies() {
        let root = tempfile::tempdir().unwrap();
        let rel = "berth/ns/t1/web";
        write(
            &root.path().join("memory").join(rel),
            &[
                ("memory.usage_in_bytes", "4096\n"),
                ("memory.max_usage_in_bytes", "8192\n"),
                ("memory.limit_in_bytes", "33554432\n"),
                ("memory.stat", "cache 10\nrss 20\n"),
            ],
        );
        write(
            &root.path().join("cpu,cpuacct").join(rel),
            &[
                ("cpuacct.usage", "123456789\n"),
                ("cpuacct.stat", "user 3\nsystem 2\n"),
            ],
        );
        write(
            &root.path().join("pids").join(rel),
            &[("pids.current", "2\n")],
        );
        let s = read_cgroup(root.path(), &format!("/{rel}")).unwrap();
        assert_eq!(s.memory_usage, 4096);
        assert_eq!(s.memory_max_usage, 8192);
        assert_eq!(s.memory_limit, 33_554_432);
        assert_eq!(s.memory_stat["rss"], 20);
        assert_eq!(s.cpu_total, 123_456_789);
        assert_eq!((s.cpu_user, s.cpu_system), (30_000_000, 20_000_000));
        assert_eq!(s.pids, Some(2));
    }

    #[test]
    fn reads_v2_unified() {
        let root = tempfile::tempdir().unwrap();
        let rel = "berth/ns/t1/web";
        write(
            &root.path().join(rel),
            &[
                ("memory.current", "1000\n"),
                ("memory.peak", "2000\n"),
                ("memory.max", "max\n"),
                ("memory.stat", "anon 5\nfile 6\n"),
                ("cpu.stat", "usage_usec 7\nuser_usec 4\nsystem_usec 3\n"),
            ],
        );
        let s = read_cgroup(root.path(), rel).unwrap();
        assert_eq!((s.memory_usage, s.memory_max_usage), (1000, 2000));
        assert_eq!(s.memory_limit, u64::MAX);
        assert_eq!(s.cpu_total, 7000);
        assert_eq!((s.cpu_user, s.cpu_system), (4000, 3000));
        assert_eq!(s.pids, None);
        std::fs::write(root.path().join(rel).join("memory.max"), "67108864\n").unwrap();
        assert_eq!(
            read_cgroup(root.path(), rel).unwrap().memory_limit,
            67_108_864
        );
    }

    #[test]
    fn missing_cgroup_is_none() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(read_cgroup(root.path(), "berth/ns/gone/web"), None);
    }

    #[test]
    fn docker_field_names() {
        let s = CgroupStats {
            memory_usage: 1,
            memory_max_usage: 2,
            memory_limit: 3,
            cpu_total: 4,
            ..CgroupStats::default()
        };
        let v = render(&s, "id", "web", "2024-01-01T00:00:00.000Z");
        assert_eq!(v["memory_stats"]["usage"], 1);
        assert_eq!(v["memory_stats"]["max_usage"], 2);
        assert_eq!(v["memory_stats"]["limit"], 3);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 4);
        assert_eq!(v["read"], "2024-01-01T00:00:00.000Z");
    }
}
