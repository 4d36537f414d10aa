//! The OCI runtime spec (runc 1.1) for a container: containerd's default Linux spec plus
//! what the `ContainerSpec` asks for. Pure: no I/O.

use serde_json::{json, Value};

use super::{ContainerSpec, LinuxOptions};

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `PATH` for containers whose image sets none (Docker's value).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The numeric identity the container's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// The container's argv: `spec.args` if given, else the image's entrypoint + cmd.
#[must_use]
pub fn process_args(spec: &ContainerSpec) -> Vec<String> {
    if spec.args.is_empty() {
        let config = &spec.image.config;
        config
            .entrypoint
            .iter()
            .chain(&config.cmd)
            .cloned()
            .collect()
    } else {
        spec.args.clone()
    }
}

/// The image's environment overridden by the spec's (same name wins, order kept), plus
/// `PATH` and `HOSTNAME` when missing, as Docker does.
#[must_use]
pub fn process_env(spec: &ContainerSpec) -> Vec<String> {
    fn name(entry: &str) -> &str {
        entry.split_once('=').map_or(entry, |(n, _)| n)
    }
    let mut env: Vec<String> = Vec::new();
    for entry in spec.image.config.env.iter().chain(&spec.env) {
        match env.iter_mut().find(|e| name(e) == name(entry)) {
            Some(existing) => existing.clone_from(entry),
            None => env.push(entry.clone()),
        }
    }
    if !env.iter().any(|e| name(e) == "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !spec.hostname.is_empty() && !env.iter().any(|e| name(e) == "HOSTNAME") {
        env.push(format!("HOSTNAME={}", spec.hostname));
    }
    env
}

/// The OCI runtime spec JSON for `spec`, running as `user`.
///
/// No `rlimits`: the container inherits the shim's (that is, containerd's) limits, because
/// asking runc for more than the current hard limit fails without `CAP_SYS_RESOURCE`.
#[must_use]
#[allow(clippy::too_many_lines)] // one JSON document, section by section
pub fn build_spec(spec: &ContainerSpec, user: &ProcessUser) -> Value {
    let cwd = [spec.cwd.as_str(), spec.image.config.working_dir.as_str()]
        .into_iter()
        .find(|c| !c.is_empty())
        .unwrap_or("/");
    // The kernel drops a non-root process's effective and permitted sets at exec anyway;
    // asking for them would only differ from Docker.
    let caps: Vec<String> = capabilities(&spec.linux);
    let granted: Vec<String> = if user.uid == 0 {
        caps.clone()
    } else {
        Vec::new()
    };

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    // No network namespace entry at all: the container stays in the host's.
    if !spec.host_network {
        namespaces.push(match &spec.netns_path {
            Some(path) => json!({"type": "network", "path": path}),
            None => json!({"type": "network"}),
        });
    }

    let mut mounts = default_mounts();
    apply_linux_mounts(&mut mounts, &spec.linux);
    for bind in &spec.mounts {
        let mode = if bind.readonly { "ro" } else { "rw" };
        mounts.push(json!({
            "destination": bind.destination,
            "type": "bind",
            "source": bind.source,
            "options": ["rbind", "rprivate", mode],
        }));
    }

    let mut resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
    });
    let mut memory = serde_json::Map::new();
    if let Some(limit) = spec.memory_limit_bytes {
        memory.insert("limit".into(), limit.into());
    }
    if let Some(reservation) = spec.memory_reservation_bytes {
        memory.insert("reservation".into(), reservation.into());
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    if let Some(shares) = spec.cpu_shares {
        resources["cpu"] = json!({"shares": shares});
    }

    if spec.linux.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
    });
    if !spec.linux.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if !spec.cgroups_path.is_empty() {
        linux["cgroupsPath"] = spec.cgroups_path.clone().into();
    }

    let mut root = json!({"path": "rootfs"});
    if spec.readonly_rootfs {
        root["readonly"] = true.into();
    }

    let mut value = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {
                "uid": user.uid,
                "gid": user.gid,
            },
            "args": process_args(spec),
            "env": process_env(spec),
            "cwd": cwd,
            "capabilities": {
                "bounding": caps,
                "effective": granted,
                "permitted": granted,
            },
            "noNewPrivileges": true,
        },
        "root": root,
        "mounts": mounts,
        "linux": linux,
    });
    if !spec.linux.rlimits.is_empty() {
        value["process"]["rlimits"] = spec
            .linux
            .rlimits
            .iter()
            .map(|(kind, soft, hard)| json!({"type": kind, "soft": soft, "hard": hard}))
            .collect();
    }
    if spec.linux.init_binary.is_some() {
        let mut args = vec![json!(INIT_PATH), json!("--")];
        args.extend(
            value["process"]["args"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        value["process"]["args"] = Value::Array(args);
    }
    if !user.additional_gids.is_empty() {
        value["process"]["user"]["additionalGids"] = json!(user.additional_gids);
    }
    if !spec.hostname.is_empty() {
        value["hostname"] = spec.hostname.clone().into();
    }
    value
}

/// Where an init binary is mounted in the container (read-only).
pub const INIT_PATH: &str = "/sbin/berth-init";

/// Docker's default set, minus `cap_drop` (`ALL` drops all), plus `cap_add`;
/// every known capability when privileged.
fn capabilities(o: &LinuxOptions) -> Vec<String> {
    let norm = |c: &str| {
        let c = c.trim().to_ascii_uppercase();
        if c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    if o.privileged {
        return ALL_CAPABILITIES.iter().map(|c| (*c).to_string()).collect();
    }
    let drop: Vec<String> = o.cap_drop.iter().map(|c| norm(c)).collect();
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    for c in &o.cap_add {
        let c = norm(c);
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    caps
}

/// tmpfs mounts, the /dev/shm size and the init binary.
fn apply_linux_mounts(mounts: &mut Vec<Value>, o: &LinuxOptions) {
    if let Some(size) = o.shm_size_bytes {
        for m in mounts.iter_mut().filter(|m| m["destination"] == "/dev/shm") {
            m["options"] = json!([
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                format!("size={size}")
            ]);
        }
    }
    for (path, size, extra) in &o.tmpfs {
        let mut options = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            format!("size={size}"),
        ];
        options.extend(extra.iter().cloned());
        mounts.push(
            json!({"destination": path, "type": "tmpfs", "source": "tmpfs", "options": options}),
        );
    }
    if let Some(init) = &o.init_binary {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro"]}));
    }
}

/// Every capability runc knows (Linux 5.x), for privileged containers.
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYSLOG",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_WAKE_ALARM",
];

/// containerd's default Linux mounts (`populateDefaultUnixSpec`).
fn default_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ]
}

/// Gives the container its own cgroup namespace, as Docker and containerd's
/// CRI plugin do on cgroup v2 hosts: its `/sys/fs/cgroup` then shows its own
/// cgroup (where `memory.max` is its limit), not the host's whole tree.
pub fn add_cgroup_namespace(oci_spec: &mut Value) {
    if let Some(namespaces) = oci_spec["linux"]["namespaces"].as_array_mut() {
        namespaces.push(json!({"type": "cgroup"}));
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::runtime::{BindMount, Image, ImageConfig};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            id: "c1".into(),
            image: Image {
                reference: "registry.local/app:1".into(),
                config: ImageConfig {
                    env: vec!["PATH=/bin".into(), "MODE=image".into()],
                    entrypoint: vec!["/entry".into()],
                    cmd: vec!["serve".into()],
                    working_dir: "/srv".into(),
                    user: String::new(),
                },
                ..Image::default()
            },
            hostname: "web".into(),
            cgroups_path: "/berth/default/t1/c1".into(),
            ..ContainerSpec::default()
        }
    }

    fn root() -> ProcessUser {
        ProcessUser::default()
    }

    #[test]
    fn a_cgroup_namespace_is_added_on_request_only() {
        let mut v = build_spec(&spec(), &root());
        let has_cgroupns = |v: &Value| {
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "cgroup")
        };
        assert!(
            !has_cgroupns(&v),
            "v1 hosts keep the host's, as Docker does"
        );
        add_cgroup_namespace(&mut v);
        assert!(has_cgroupns(&v));
    }

    #[test]
    fn falls_back_to_image_args_and_cwd() {
        let v = build_spec(&spec(), &root());
        assert_eq!(v["process"]["args"], json!(["/entry", "serve"]));
        assert_eq!(v["process"]["cwd"], "/srv");
        assert_eq!(v["root"], json!({"path": "rootfs"}));
        assert_eq!(v["hostname"], "web");
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/default/t1/c1");
    }

    #[test]
    fn spec_args_and_env_override_image() {
        let mut s = spec();
        s.args = vec!["/bin/sh".into(), "-c".into(), "true".into()];
        s.env = vec!["MODE=task".into(), "EXTRA=1".into()];
        s.cwd = "/tmp".into();
        let v = build_spec(&s, &root());
        assert_eq!(v["process"]["args"], json!(["/bin/sh", "-c", "true"]));
        assert_eq!(
            v["process"]["env"],
            json!(["PATH=/bin", "MODE=task", "EXTRA=1", "HOSTNAME=web"])
        );
        assert_eq!(v["process"]["cwd"], "/tmp");
    }

    #[test]
    fn adds_default_path_and_cwd() {
        let mut s = spec();
        s.image.config = ImageConfig::default();
        s.hostname.clear();
        let v = build_spec(&s, &root());
        assert_eq!(v["process"]["env"], json!([format!("PATH={DEFAULT_PATH}")]));
        assert_eq!(v["process"]["cwd"], "/");
        assert!(v.get("hostname").is_none());
    }

    #[test]
    fn has_no_rlimits_and_docker_caps() {
        let v = build_spec(&spec(), &root());
        assert!(v["process"].get("rlimits").is_none());
        assert_eq!(v["process"]["noNewPrivileges"], true);
        let caps = &v["process"]["capabilities"];
        assert_eq!(caps["bounding"], json!(DEFAULT_CAPABILITIES));
        assert_eq!(caps["effective"], json!(DEFAULT_CAPABILITIES));
        assert!(caps.get("inheritable").is_none());
    }

    #[test]
    fn non_root_user_keeps_only_bounding_caps() {
        let user = ProcessUser {
            uid: 1000,
            gid: 100,
            additional_gids: vec![5, 6],
        };
        let v = build_spec(&spec(), &user);
        assert_eq!(
            v["process"]["user"],
            json!({"uid": 1000, "gid": 100, "additionalGids": [5, 6]})
        );
        assert_eq!(v["process"]["capabilities"]["effective"], json!([]));
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            json!(DEFAULT_CAPABILITIES)
        );
    }

    #[test]
    fn network_namespace_joins_given_path() {
        let v = build_spec(&spec(), &root());
        assert_eq!(v["linux"]["namespaces"][4], json!({"type": "network"}));
        let mut s = spec();
        s.netns_path = Some(PathBuf::from("/run/netns/task-1"));
        let v = build_spec(&s, &root());
        assert_eq!(
            v["linux"]["namespaces"][4],
            json!({"type": "network", "path": "/run/netns/task-1"})
        );
        let types: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["pid", "ipc", "uts", "mount", "network"]);
        s.host_network = true;
        let v = build_spec(&s, &root());
        let types: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["pid", "ipc", "uts", "mount"],
            "host mode shares the host's network"
        );
    }

    #[test]
    fn resources_only_when_asked() {
        let v = build_spec(&spec(), &root());
        assert!(v["linux"]["resources"].get("memory").is_none());
        assert!(v["linux"]["resources"].get("cpu").is_none());
        let mut s = spec();
        s.memory_limit_bytes = Some(256 << 20);
        s.memory_reservation_bytes = Some(128 << 20);
        s.cpu_shares = Some(512);
        let v = build_spec(&s, &root());
        assert_eq!(
            v["linux"]["resources"]["memory"],
            json!({"limit": 268_435_456, "reservation": 134_217_728})
        );
        assert_eq!(v["linux"]["resources"]["cpu"], json!({"shares": 512}));
        assert_eq!(
            v["linux"]["resources"]["devices"],
            json!([{"allow": false, "access": "rwm"}])
        );
    }

    #[test]
    fn default_mounts_then_binds() {
        let mut s = spec();
        s.readonly_rootfs = true;
        s.mounts = vec![BindMount {
            source: "/var/lib/berth/volumes/data".into(),
            destination: "/data".into(),
            readonly: true,
        }];
        let v = build_spec(&s, &root());
        assert_eq!(v["root"]["readonly"], true);
        let destinations: Vec<_> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/run",
                "/sys/fs/cgroup",
                "/data"
            ]
        );
        assert_eq!(
            v["mounts"][8]["options"],
            json!(["rbind", "rprivate", "ro"])
        );
        assert_eq!(v["mounts"][5]["options"][3], "ro");
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
        assert!(v["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/sys")));
    }
}
