//! The container settings the agent applies as they are (limits, mounts,
//! capabilities, labels), and the task volumes they mount. Validated at
//! registration.

use std::collections::HashSet;

use berth_ecs::awslogs;
use serde::{Deserialize, Serialize};

use super::task_definition::{ContainerDefinition, TaskDefinitionError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft_limit: i64,
    pub hard_limit: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub container_path: String,
    pub size_mib: i64,
    pub mount_options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxParameters {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub init_process_enabled: bool,
    pub shared_memory_size_mib: Option<i64>,
    pub tmpfs: Vec<Tmpfs>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub source_volume: String,
    pub container_path: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeFrom {
    pub source_container: String,
    pub read_only: bool,
}

/// Container settings beyond command and resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOptions {
    /// Host paths of KEY=VALUE files.
    pub environment_files: Vec<String>,
    pub readonly_root_filesystem: bool,
    pub ulimits: Vec<Ulimit>,
    pub linux_parameters: LinuxParameters,
    pub mount_points: Vec<MountPoint>,
    pub volumes_from: Vec<VolumeFrom>,
    pub privileged: bool,
    pub docker_labels: Vec<(String, String)>,
    /// `secrets`: (environment variable, `valueFrom` secret reference).
    #[serde(default)]
    pub secrets: Vec<(String, String)>,
    /// `repositoryCredentials.credentialsParameter`: the secret holding the registry login.
    #[serde(default)]
    pub repository_credentials: Option<String>,
    /// `links` (`name` or `name:alias`), bridge mode only.
    #[serde(default)]
    pub links: Vec<String>,
    /// `hostname`; not with awsvpc.
    #[serde(default)]
    pub hostname: Option<String>,
    /// `extraHosts` as (hostname, ipAddress); not with awsvpc.
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    /// `logConfiguration`; None: the host's log files only.
    #[serde(default)]
    pub log_configuration: Option<LogConfiguration>,
    /// `firelensConfiguration`: this container is the task's log router.
    #[serde(default)]
    pub firelens_configuration: Option<super::firelens::FirelensConfiguration>,
}

/// A container's `logConfiguration`: its log driver and the driver's options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfiguration {
    pub log_driver: String,
    pub options: Vec<(String, String)>,
}

/// The log drivers Berth runs: `awslogs` ships to its CloudWatch Logs API. ECS's others
/// (`json-file`, `syslog`, ...) keep the host's log files only; they are accepted so task
/// definitions written for ECS register unchanged.
pub const LOG_DRIVERS: [&str; 9] = [
    "awslogs",
    "json-file",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "splunk",
    "awsfirelens",
    "none",
];

impl LogConfiguration {
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// ECS's rules: a known driver; awslogs needs `awslogs-group`, a valid `mode`
    /// (`blocking` or `non-blocking`) and `max-buffer-size` only with non-blocking.
    pub fn check(&self, container: &str) -> Result<(), String> {
        if !LOG_DRIVERS.contains(&self.log_driver.as_str()) {
            return Err(format!(
                "Container '{container}': logConfiguration.logDriver '{}' is not one of {}.",
                self.log_driver,
                LOG_DRIVERS.join(", ")
            ));
        }
        if self.log_driver != "awslogs" {
            return Ok(());
        }
        if self.option(awslogs::GROUP).is_none_or(str::is_empty) {
            return Err(format!(
                "Container '{container}': the awslogs log driver needs the option awslogs-group."
            ));
        }
        match self.option(awslogs::MODE) {
            None | Some("blocking" | "non-blocking") => {}
            Some(m) => {
                return Err(format!(
                    "Container '{container}': awslogs mode '{m}' is not blocking or non-blocking."
                ))
            }
        }
        if let Some(size) = self.option(awslogs::MAX_BUFFER_SIZE) {
            if self.option(awslogs::MODE) != Some("non-blocking") {
                return Err(format!(
                    "Container '{container}': max-buffer-size goes with mode non-blocking."
                ));
            }
            awslogs::parse_size(size).ok_or_else(|| {
                format!("Container '{container}': max-buffer-size '{size}' is not a size such as 1m, 512k or 4096.")
            })?;
        }
        if let Some(f) = self.option(awslogs::DATETIME_FORMAT) {
            awslogs::datetime_pattern(f).map_err(|e| format!("Container '{container}': {e}."))?;
        }
        if let Some(p) = self.option(awslogs::MULTILINE_PATTERN) {
            regex::Regex::new(p).map_err(|e| {
                format!("Container '{container}': awslogs-multiline-pattern is not a regular expression: {e}")
            })?;
        }
        Ok(())
    }
}

/// A task volume: a host directory, or (no host path) a directory scoped to the task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub host_source_path: Option<String>,
}

/// The ulimit names ECS accepts.
const ULIMITS: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn check_log_configurations(containers: &[ContainerDefinition]) -> Result<(), TaskDefinitionError> {
    containers
        .iter()
        .filter_map(|c| c.options.log_configuration.as_ref().map(|l| (c, l)))
        .try_for_each(|(c, l)| l.check(&c.name).or_else(err))
}

fn err<T>(msg: String) -> Result<T, TaskDefinitionError> {
    Err(TaskDefinitionError(msg))
}

/// The task definition's volume names, each checked non-empty, unique, and with an
/// absolute host path when it has one.
fn volume_names(volumes: &[Volume]) -> Result<HashSet<&str>, TaskDefinitionError> {
    let mut names = HashSet::new();
    for v in volumes {
        if v.name.is_empty() || !names.insert(v.name.as_str()) {
            return err(format!(
                "Volume name '{}' must be non-empty and unique.",
                v.name
            ));
        }
        if let Some(p) = &v.host_source_path {
            if !p.starts_with('/') {
                return err(format!(
                    "Volume '{}': host.sourcePath '{p}' must be an absolute path.",
                    v.name
                ));
            }
        }
    }
    Ok(names)
}

/// Checks volumes, mount points, volumesFrom, ulimits and tmpfs against each other.
pub fn validate(
    containers: &[ContainerDefinition],
    volumes: &[Volume],
) -> Result<(), TaskDefinitionError> {
    let names = volume_names(volumes)?;
    check_log_configurations(containers)?;
    for c in containers {
        let o = &c.options;
        for m in &o.mount_points {
            if !names.contains(m.source_volume.as_str()) {
                return err(format!(
                    "Container '{}': mountPoints sourceVolume '{}' is not a volume of the task definition.",
                    c.name, m.source_volume
                ));
            }
            if !m.container_path.starts_with('/') {
                return err(format!(
                    "Container '{}': mountPoints containerPath '{}' must be absolute.",
                    c.name, m.container_path
                ));
            }
        }
        for v in &o.volumes_from {
            if v.source_container == c.name
                || !containers.iter().any(|x| x.name == v.source_container)
            {
                return err(format!(
                    "Container '{}': volumesFrom sourceContainer '{}' must be another container of the task.",
                    c.name, v.source_container
                ));
            }
        }
        for u in &o.ulimits {
            if !ULIMITS.contains(&u.name.as_str()) {
                return err(format!(
                    "Container '{}': ulimit '{}' is not one of {}.",
                    c.name,
                    u.name,
                    ULIMITS.join(", ")
                ));
            }
            if u.soft_limit > u.hard_limit {
                return err(format!(
                    "Container '{}': ulimit '{}' softLimit exceeds hardLimit.",
                    c.name, u.name
                ));
            }
        }
        for t in &o.linux_parameters.tmpfs {
            if !t.container_path.starts_with('/') || t.size_mib <= 0 {
                return err(format!(
                    "Container '{}': tmpfs needs an absolute containerPath and a positive size.",
                    c.name
                ));
            }
        }
        let mut secret_names = HashSet::new();
        for (name, value_from) in &o.secrets {
            if name.is_empty() || !secret_names.insert(name.as_str()) {
                return err(format!(
                    "Container '{}': secrets name '{name}' must be non-empty and unique.",
                    c.name
                ));
            }
            if let Err(e) = super::secret_ref::check_ref(value_from) {
                return err(format!(
                    "Container '{}': secrets '{name}' valueFrom: {e}.",
                    c.name
                ));
            }
        }
        if let Some(p) = &o.repository_credentials {
            if let Err(e) = super::secret_ref::parse_ref(p) {
                return err(format!(
                    "Container '{}': repositoryCredentials credentialsParameter: {e}.",
                    c.name
                ));
            }
        }
        for f in &o.environment_files {
            if !f.starts_with('/') {
                return err(format!(
                    "Container '{}': environmentFiles value '{f}' must be an absolute path of a file on the host.",
                    c.name
                ));
            }
        }
    }
    Ok(())
}

/// Checks the settings that depend on the network mode, with ECS's rules:
/// `links` only in bridge mode, naming another container of the task;
/// `hostname` and `extraHosts` not with awsvpc.
pub fn validate_network(
    containers: &[ContainerDefinition],
    mode: super::NetworkMode,
) -> Result<(), TaskDefinitionError> {
    use super::NetworkMode;
    for c in containers {
        let o = &c.options;
        if !o.links.is_empty() && mode != NetworkMode::Bridge {
            return err(format!(
                "Container '{}': links are supported only when networkMode is bridge (it is {}).",
                c.name,
                mode.as_str()
            ));
        }
        for link in &o.links {
            let (target, alias) = link.split_once(':').unwrap_or((link, link));
            if target == c.name || !containers.iter().any(|x| x.name == target) {
                return err(format!(
                    "Container '{}': link '{link}' must name another container of the task definition.",
                    c.name
                ));
            }
            if !valid_host_name(alias) {
                return err(format!(
                    "Container '{}': link alias '{alias}' is not a valid host name.",
                    c.name
                ));
            }
        }
        if mode == NetworkMode::Awsvpc && (o.hostname.is_some() || !o.extra_hosts.is_empty()) {
            return err(format!(
                "Container '{}': hostname and extraHosts are not supported when networkMode is awsvpc.",
                c.name
            ));
        }
        if let Some(h) = &o.hostname {
            if !valid_host_name(h) {
                return err(format!(
                    "Container '{}': hostname '{h}' is not a valid host name.",
                    c.name
                ));
            }
        }
        for (host, ip) in &o.extra_hosts {
            if !valid_host_name(host) || ip.parse::<std::net::IpAddr>().is_err() {
                return err(format!(
                    "Container '{}': extraHosts entry '{host}' -> '{ip}' needs a host name and an IP address.",
                    c.name
                ));
            }
        }
    }
    Ok(())
}

/// Letters, digits, '-', '_' and '.', 1 to 255 characters (what /etc/hosts takes).
fn valid_host_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task_definition::tests_support::container;

    #[test]
    fn mounts_need_known_volumes_and_containers() {
        let mut a = container("a");
        a.options.mount_points = vec![MountPoint {
            source_volume: "data".into(),
            container_path: "/data".into(),
            read_only: false,
        }];
        let vols = vec![Volume {
            name: "data".into(),
            host_source_path: None,
        }];
        assert!(validate(&[a.clone()], &vols).is_ok());
        assert!(validate(&[a.clone()], &[])
            .unwrap_err()
            .0
            .contains("sourceVolume 'data'"));
        let mut b = container("b");
        b.options.volumes_from = vec![VolumeFrom {
            source_container: "a".into(),
            read_only: true,
        }];
        assert!(validate(&[a.clone(), b.clone()], &vols).is_ok());
        b.options.volumes_from[0].source_container = "ghost".into();
        assert!(validate(&[a, b], &vols).unwrap_err().0.contains("'ghost'"));
    }

    #[test]
    fn ulimits_and_paths() {
        let mut a = container("a");
        a.options.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft_limit: 10,
            hard_limit: 5,
        }];
        assert!(validate(&[a.clone()], &[])
            .unwrap_err()
            .0
            .contains("softLimit"));
        a.options.ulimits = vec![Ulimit {
            name: "files".into(),
            soft_limit: 1,
            hard_limit: 5,
        }];
        assert!(validate(&[a.clone()], &[])
            .unwrap_err()
            .0
            .contains("'files'"));
        a.options.ulimits.clear();
        a.options.environment_files = vec!["relative.env".into()];
        assert!(validate(&[a], &[]).unwrap_err().0.contains("absolute"));
        let v = Volume {
            name: "x".into(),
            host_source_path: Some("tmp".into()),
        };
        assert!(validate(&[], &[v]).is_err());
    }

    #[test]
    fn secrets_need_unique_names_and_secret_references() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        let mut a = container("a");
        a.options.secrets = vec![
            ("DB".into(), arn.into()),
            ("USER".into(), format!("{arn}:user::")),
        ];
        a.options.repository_credentials = Some("registry-login".into());
        assert!(validate(&[a.clone()], &[]).is_ok());
        a.options.secrets.push(("DB".into(), arn.into()));
        assert!(validate(&[a.clone()], &[])
            .unwrap_err()
            .0
            .contains("unique"));
        // SSM parameters by ARN, as ECS takes them; other ARNs are refused.
        a.options.secrets = vec![(
            "P".into(),
            "arn:aws:ssm:us-east-1:123456789012:parameter/p".into(),
        )];
        assert!(validate(&[a.clone()], &[]).is_ok());
        a.options.secrets = vec![("K".into(), "arn:aws:kms:us-east-1:1:key/x".into())];
        let e = validate(&[a.clone()], &[]).unwrap_err().0;
        assert!(
            e.contains("secrets 'K' valueFrom") && e.contains("not a Secrets Manager"),
            "{e}"
        );
        a.options.secrets.clear();
        a.options.repository_credentials = Some("arn:aws:kms:us-east-1:1:key/x".into());
        let e = validate(&[a], &[]).unwrap_err().0;
        assert!(e.contains("repositoryCredentials"), "{e}");
    }

    #[test]
    fn links_hostname_and_extra_hosts_follow_the_network_mode() {
        use crate::model::NetworkMode;
        let mut web = container("web");
        web.options.links = vec!["db:database".into()];
        web.options.hostname = Some("web-1".into());
        web.options.extra_hosts = vec![("gw".into(), "10.0.0.1".into())];
        let db = container("db");
        assert!(validate_network(&[web.clone(), db.clone()], NetworkMode::Bridge).is_ok());
        let e = validate_network(&[web.clone(), db.clone()], NetworkMode::Awsvpc)
            .unwrap_err()
            .0;
        assert!(
            e.contains("links are supported only when networkMode is bridge"),
            "{e}"
        );
        web.options.links.clear();
        let e = validate_network(&[web.clone(), db.clone()], NetworkMode::Awsvpc)
            .unwrap_err()
            .0;
        assert!(
            e.contains("not supported when networkMode is awsvpc"),
            "{e}"
        );
        assert!(validate_network(&[web.clone(), db.clone()], NetworkMode::Host).is_ok());
        web.options.links = vec!["ghost".into()];
        let e = validate_network(&[web.clone(), db.clone()], NetworkMode::Bridge)
            .unwrap_err()
            .0;
        assert!(e.contains("link 'ghost'"), "{e}");
        web.options.links = vec!["db:bad alias".into()];
        assert!(validate_network(&[web.clone(), db.clone()], NetworkMode::Bridge).is_err());
        web.options.links.clear();
        web.options.extra_hosts = vec![("gw".into(), "not-an-ip".into())];
        let e = validate_network(&[web, db], NetworkMode::Bridge)
            .unwrap_err()
            .0;
        assert!(e.contains("extraHosts"), "{e}");
    }
}
