//! From an ECS container definition and its pulled image to the runtime's
//! container spec, with Docker's (and so ECS's) rules for entrypoint and
//! command. Pure.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::model::{ContainerDef, TaskSpec};
use crate::runtime::{BindMount, ContainerSpec, Image, LinuxOptions};

/// Per-task facts every container of the task shares.
#[derive(Debug, Clone)]
pub struct TaskContext<'a> {
    pub spec: &'a TaskSpec,
    pub region: &'a str,
    pub netns_path: Option<&'a Path>,
    pub ipv4: Option<Ipv4Addr>,
    /// The container shares the host's network namespace.
    pub host_network: bool,
    /// Task cgroup path (relative to the hierarchy root).
    pub cgroup_path: &'a str,
    pub task_dir: &'a Path,
    /// A static init binary for containers with initProcessEnabled.
    pub init_binary: Option<&'a Path>,
}

/// Where a task-scoped volume lives on the host (removed with the task).
pub fn task_volume_dir(task_dir: &Path, volume: &str) -> PathBuf {
    task_dir.join("volumes").join(volume)
}

/// The bind mounts of a container's mountPoints and volumesFrom.
fn volume_mounts(ctx: &TaskContext<'_>, def: &ContainerDef) -> Vec<BindMount> {
    let source = |volume: &str| {
        ctx.spec.volumes.iter().find(|v| v.name == volume).map(|v| {
            v.host_source_path
                .clone()
                .unwrap_or_else(|| task_volume_dir(ctx.task_dir, volume))
        })
    };
    let own = def.options.mount_points.iter().map(|m| (m, false));
    let inherited = def.options.volumes_from.iter().flat_map(|(from, ro)| {
        ctx.spec
            .containers
            .iter()
            .filter(move |c| &c.name == from)
            .flat_map(move |c| c.options.mount_points.iter().map(move |m| (m, *ro)))
    });
    own.chain(inherited)
        .filter_map(|(m, force_ro)| {
            source(&m.source_volume).map(|src| BindMount {
                source: src,
                destination: m.container_path.clone(),
                readonly: m.read_only || force_ro,
            })
        })
        .collect()
}

/// ECS ulimit names as runc's rlimit types (`nofile` -> `RLIMIT_NOFILE`).
fn rlimits(ulimits: &[(String, i64, i64)]) -> Vec<(String, u64, u64)> {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    ulimits
        .iter()
        .map(|(name, soft, hard)| {
            (
                format!("RLIMIT_{}", name.to_ascii_uppercase()),
                n(*soft),
                n(*hard),
            )
        })
        .collect()
}

fn linux_options(ctx: &TaskContext<'_>, def: &ContainerDef) -> LinuxOptions {
    let o = &def.options;
    let mib = |m: i64| u64::try_from(m).unwrap_or(0) * 1024 * 1024;
    LinuxOptions {
        rlimits: rlimits(&o.ulimits),
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        privileged: o.privileged,
        tmpfs: o
            .tmpfs
            .iter()
            .map(|(path, size, opts)| (path.clone(), mib(*size), opts.clone()))
            .collect(),
        shm_size_bytes: o.shared_memory_size_mib.map(mib),
        init_binary: if o.init_process_enabled {
            ctx.init_binary.map(Path::to_path_buf)
        } else {
            None
        },
    }
}

/// The task's hostname, as ECS gives awsvpc tasks (`ip-10-0-0-5`).
pub fn hostname(ipv4: Option<Ipv4Addr>, task_id: &str) -> String {
    match ipv4 {
        Some(ip) => format!("ip-{}", ip.to_string().replace('.', "-")),
        None => task_id.chars().take(12).collect(),
    }
}

/// argv as Docker builds it: a definition's entryPoint replaces the image's
/// and drops the image's Cmd; its command replaces the image's Cmd.
pub fn argv(def: &ContainerDef, image: &Image) -> Vec<String> {
    let entrypoint = if def.entry_point.is_empty() {
        &image.config.entrypoint
    } else {
        &def.entry_point
    };
    let cmd: &[String] = if !def.command.is_empty() {
        &def.command
    } else if def.entry_point.is_empty() {
        &image.config.cmd
    } else {
        &[]
    };
    entrypoint.iter().chain(cmd).cloned().collect()
}

/// Image env, then the definition's (same names replace), then its resolved
/// `secrets`, then ECS's own.
pub fn environment(
    def: &ContainerDef,
    image: &Image,
    region: &str,
    metadata_uri: &str,
) -> Vec<String> {
    let mut env: Vec<(String, String)> = image
        .config
        .env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map_or((kv.clone(), String::new()), |(k, v)| (k.into(), v.into()))
        })
        .collect();
    let mut set = |k: &str, v: &str| {
        env.retain(|(ek, _)| ek != k);
        env.push((k.into(), v.into()));
    };
    for (k, v) in def
        .environment
        .iter()
        .chain(&def.options.secrets.environment)
    {
        set(k, v);
    }
    set("AWS_REGION", region);
    set("AWS_DEFAULT_REGION", region);
    set("AWS_EXECUTION_ENV", "AWS_ECS_EC2");
    set("ECS_CONTAINER_METADATA_URI_V4", metadata_uri);
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

pub fn log_path(task_dir: &Path, container: &str) -> PathBuf {
    task_dir.join(format!("{container}.log"))
}

/// ECS's minimum CPU shares for a container with no `cpu`.
const MIN_CPU_SHARES: u64 = 2;

pub fn container_spec(
    ctx: &TaskContext<'_>,
    def: &ContainerDef,
    image: &Image,
    metadata_uri: &str,
) -> ContainerSpec {
    let mib = |m: i64| m * 1024 * 1024;
    let mounts = [
        (hosts_path(ctx.task_dir, &def.name), "/etc/hosts"),
        (ctx.task_dir.join("resolv.conf"), "/etc/resolv.conf"),
    ]
    .map(|(source, destination)| BindMount {
        source,
        destination: destination.into(),
        readonly: true,
    });
    ContainerSpec {
        id: ctx.spec.container_id(&def.name),
        image: image.clone(),
        args: argv(def, image),
        env: environment(def, image, ctx.region, metadata_uri),
        cwd: def
            .working_directory
            .clone()
            .unwrap_or_else(|| image.config.working_dir.clone()),
        user: def
            .user
            .clone()
            .unwrap_or_else(|| image.config.user.clone()),
        hostname: container_hostname(def, ctx.ipv4, &ctx.spec.id),
        netns_path: ctx.netns_path.map(Path::to_path_buf),
        host_network: ctx.host_network,
        cgroups_path: format!("/{}/{}", ctx.cgroup_path, def.name),
        memory_limit_bytes: def.memory_mib.filter(|m| *m > 0).map(mib),
        memory_reservation_bytes: def.memory_reservation_mib.filter(|m| *m > 0).map(mib),
        cpu_shares: Some(u64::try_from(def.cpu).unwrap_or(0).max(MIN_CPU_SHARES)),
        readonly_rootfs: def.options.readonly_root_filesystem,
        mounts: mounts
            .into_iter()
            .chain(
                def.options
                    .firelens_router
                    .iter()
                    .flat_map(|r| crate::firelens::mounts(ctx.task_dir, r)),
            )
            .chain(volume_mounts(ctx, def))
            .collect(),
        linux: linux_options(ctx, def),
        log_path: log_path(ctx.task_dir, &def.name),
        labels: [
            (
                "com.amazonaws.ecs.task-arn".to_string(),
                ctx.spec.arn.clone(),
            ),
            (
                "com.amazonaws.ecs.container-name".to_string(),
                def.name.clone(),
            ),
            (
                "com.amazonaws.ecs.task-definition-family".to_string(),
                ctx.spec.family.clone(),
            ),
            (
                "com.amazonaws.ecs.cluster".to_string(),
                ctx.spec.cluster_arn.clone(),
            ),
        ]
        .into_iter()
        .chain(
            def.options
                .docker_labels
                .iter()
                .filter(|(k, _)| !k.starts_with("com.amazonaws.ecs."))
                .cloned(),
        )
        .collect(),
    }
}

/// A container's hostname: its definition's `hostname`, else the task's.
pub fn container_hostname(def: &ContainerDef, ipv4: Option<Ipv4Addr>, task_id: &str) -> String {
    def.options
        .hostname
        .clone()
        .unwrap_or_else(|| hostname(ipv4, task_id))
}

/// `/etc/hosts` of a container: localhost; its own address under its
/// hostname; each link's address under its alias and container name (as
/// Docker writes links); then its `extraHosts`.
pub fn hosts_file(
    ipv4: Option<Ipv4Addr>,
    hostname: &str,
    links: &[(Ipv4Addr, &str, &str)],
    extra_hosts: &[(String, String)],
) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ip) = ipv4 {
        let _ = writeln!(s, "{ip}\t{hostname}");
    }
    for (ip, alias, name) in links {
        if alias == name {
            let _ = writeln!(s, "{ip}\t{name}");
        } else {
            let _ = writeln!(s, "{ip}\t{alias} {name}");
        }
    }
    for (host, ip) in extra_hosts {
        let _ = writeln!(s, "{ip}\t{host}");
    }
    s
}

/// The file a container sees as `/etc/hosts`, in its task's directory.
pub fn hosts_path(task_dir: &Path, container: &str) -> PathBuf {
    task_dir.join(format!("hosts-{container}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ImageConfig;

    fn image() -> Image {
        Image {
            reference: "r".into(),
            manifest_digest: "sha256:m".into(),
            chain_id: "sha256:c".into(),
            config: ImageConfig {
                env: vec!["PATH=/bin".into(), "A=image".into()],
                entrypoint: vec!["/entry".into()],
                cmd: vec!["serve".into()],
                working_dir: "/srv".into(),
                user: String::new(),
            },
        }
    }

    fn def() -> ContainerDef {
        ContainerDef {
            name: "web".into(),
            image: "r".into(),
            command: vec![],
            entry_point: vec![],
            environment: vec![],
            working_directory: None,
            user: None,
            cpu: 0,
            memory_mib: Some(64),
            memory_reservation_mib: None,
            essential: true,
            stop_timeout: None,
            depends_on: vec![],
            health_check: None,
            start_timeout: None,
            options: crate::model::ContainerOptions::default(),
            port_mappings: vec![],
        }
    }

    #[test]
    fn argv_follows_docker_rules() {
        assert_eq!(argv(&def(), &image()), vec!["/entry", "serve"]);
        let mut d = def();
        d.command = vec!["other".into()];
        assert_eq!(argv(&d, &image()), vec!["/entry", "other"]);
        let mut d = def();
        d.entry_point = vec!["/bin/sh".into(), "-c".into()];
        assert_eq!(argv(&d, &image()), vec!["/bin/sh", "-c"]);
        d.command = vec!["echo hi".into()];
        assert_eq!(argv(&d, &image()), vec!["/bin/sh", "-c", "echo hi"]);
    }

    #[test]
    fn environment_layers() {
        let mut d = def();
        d.environment = vec![
            ("A".into(), "def".into()),
            ("B".into(), "x=y".into()),
            ("S".into(), "plain".into()),
        ];
        d.options.secrets.environment = vec![("S".into(), "from-secret".into())];
        let env = environment(&d, &image(), "eu-west-1", "http://10.0.0.1:51679/v4/t");
        assert!(env.contains(&"S=from-secret".to_string()), "{env:?}");
        assert!(!env.contains(&"S=plain".to_string()), "{env:?}");
        assert!(env.contains(&"PATH=/bin".to_string()));
        assert!(env.contains(&"A=def".to_string()));
        assert!(!env.contains(&"A=image".to_string()));
        assert!(env.contains(&"B=x=y".to_string()));
        assert!(env.contains(&"AWS_DEFAULT_REGION=eu-west-1".to_string()));
        assert!(env.contains(&"AWS_REGION=eu-west-1".to_string()));
        assert!(env.contains(&"AWS_EXECUTION_ENV=AWS_ECS_EC2".to_string()));
        assert!(
            env.contains(&"ECS_CONTAINER_METADATA_URI_V4=http://10.0.0.1:51679/v4/t".to_string())
        );
    }

    #[test]
    fn hostnames_and_hosts() {
        let ip = Some(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(hostname(ip, "abc"), "ip-10-1-2-3");
        assert!(hosts_file(ip, "ip-10-1-2-3", &[], &[]).contains("10.1.2.3\tip-10-1-2-3\n"));
        let db = Ipv4Addr::new(10, 1, 2, 4);
        let text = hosts_file(
            ip,
            "web",
            &[(db, "database", "db"), (db, "db", "db")],
            &[("gw".into(), "10.1.2.1".into())],
        );
        assert!(text.contains("10.1.2.4\tdatabase db\n"), "{text}");
        assert!(text.contains("10.1.2.4\tdb\n"), "{text}");
        assert!(text.ends_with("10.1.2.1\tgw\n"), "{text}");
    }
}
