//! Task definitions: validated at registration, immutable afterwards.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use berth_ecs::TaskDefinitionStatus;

pub use berth_ecs::{ContainerCondition, NetworkMode};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub cpu: i64,
    pub memory_mib: Option<i64>,
    pub memory_reservation_mib: Option<i64>,
    pub essential: bool,
    pub command: Vec<String>,
    pub entry_point: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    pub stop_timeout_secs: Option<u32>,
    /// (name, condition) pairs of `dependsOn`.
    pub depends_on: Vec<(String, ContainerCondition)>,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Seconds a dependent waits for this container to reach its condition.
    #[serde(default)]
    pub start_timeout_secs: Option<u32>,
    #[serde(default)]
    pub options: super::container_options::ContainerOptions,
    #[serde(default)]
    pub port_mappings: Vec<super::ports::PortMapping>,
}

/// A container health check with ECS's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// `["CMD", args...]` or `["CMD-SHELL", "command line"]`.
    pub command: Vec<String>,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub retries: u32,
    pub start_period_secs: u32,
}

/// A `healthCheck` as registered: unset members take ECS's defaults; each
/// must be within ECS's range.
pub fn health_check(
    container: &str,
    command: Vec<String>,
    interval: Option<u32>,
    timeout: Option<u32>,
    retries: Option<u32>,
    start_period: Option<u32>,
) -> Result<HealthCheck, TaskDefinitionError> {
    match command.first().map(String::as_str) {
        Some("CMD") if command.len() > 1 => {}
        Some("CMD-SHELL") if command.len() == 2 => {}
        _ => {
            return err(format!(
                "Container '{container}': healthCheck.command must be [\"CMD\", executable, args...] or [\"CMD-SHELL\", \"command line\"]."
            ))
        }
    }
    let ranged = |name: &str, v: Option<u32>, default: u32, lo: u32, hi: u32| {
        let v = v.unwrap_or(default);
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            err(format!("Container '{container}': healthCheck.{name} must be between {lo} and {hi}, got {v}."))
        }
    };
    Ok(HealthCheck {
        command,
        interval_secs: ranged("interval", interval, 30, 5, 300)?,
        timeout_secs: ranged("timeout", timeout, 5, 2, 60)?,
        retries: ranged("retries", retries, 3, 1, 10)?,
        start_period_secs: ranged("startPeriod", start_period, 0, 0, 300)?,
    })
}

impl ContainerDefinition {
    /// Memory the scheduler reserves for this container: the soft limit if
    /// set, else the hard limit (as ECS does).
    pub fn reserved_memory_mib(&self) -> i64 {
        self.memory_reservation_mib.or(self.memory_mib).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub family: String,
    pub revision: u32,
    pub arn: String,
    /// ACTIVE, INACTIVE (deregistered) or `DELETE_IN_PROGRESS`.
    pub status: TaskDefinitionStatus,
    pub registered_at_ms: i64,
    pub deregistered_at_ms: Option<i64>,
    /// When `DeleteTaskDefinitions` was asked for this revision.
    #[serde(default)]
    pub delete_requested_at_ms: Option<i64>,
    pub network_mode: NetworkMode,
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
    pub requires_compatibilities: Vec<super::LaunchType>,
    pub containers: Vec<ContainerDefinition>,
    /// The registration as the user sent it (tags removed), so that describe
    /// returns every field, including ones Berth does not act on yet.
    pub document: serde_json::Value,
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub volumes: Vec<super::container_options::Volume>,
}

/// What makes a task definition invalid; each message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskDefinitionError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TaskDefinitionError> {
    Err(TaskDefinitionError(msg.into()))
}

/// The fields of a registration the validator needs, before the revision and ARN exist.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub family: String,
    pub network_mode: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub requires_compatibilities: Vec<super::LaunchType>,
    pub containers: Vec<ContainerDefinition>,
    pub volumes: Vec<super::container_options::Volume>,
}

/// Validated task-level settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub network_mode: NetworkMode,
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
}

/// Validates a registration the way ECS does at `RegisterTaskDefinition`.
pub fn validate(reg: &Registration) -> Result<Validated, TaskDefinitionError> {
    if reg.family.is_empty() || reg.family.len() > 255 {
        return err("family must be 1-255 characters.");
    }
    if reg
        .family
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return err(format!(
            "family '{}' may contain only letters, digits, hyphens and underscores.",
            reg.family
        ));
    }
    let fargate = reg
        .requires_compatibilities
        .contains(&super::LaunchType::Fargate);
    let network_mode = match reg.network_mode.as_deref() {
        None => NetworkMode::Awsvpc,
        Some(m) => NetworkMode::parse(m).ok_or_else(|| {
            TaskDefinitionError(format!(
                "networkMode '{m}' is not valid; use awsvpc, bridge, host or none."
            ))
        })?,
    };
    let cpu = reg.cpu.as_deref().map(parse_cpu).transpose()?;
    let memory_mib = reg.memory.as_deref().map(parse_memory).transpose()?;
    if fargate {
        if network_mode != NetworkMode::Awsvpc {
            return err("Fargate requires networkMode 'awsvpc'.");
        }
        match (cpu, memory_mib) {
            (Some(c), Some(m)) => check_fargate_size(c, m)?,
            _ => return err("Fargate requires task definition to have cpu and memory values set."),
        }
    }
    validate_containers(&reg.containers, memory_mib)?;
    super::container_options::validate(&reg.containers, &reg.volumes)?;
    super::firelens::validate(&reg.containers)?;
    super::ports::validate(&reg.containers, network_mode)?;
    super::container_options::validate_network(&reg.containers, network_mode)?;
    Ok(Validated {
        network_mode,
        cpu,
        memory_mib,
    })
}

fn validate_containers(
    containers: &[ContainerDefinition],
    task_memory: Option<i64>,
) -> Result<(), TaskDefinitionError> {
    if containers.is_empty() {
        return err("containerDefinitions must contain at least one container.");
    }
    let mut names = HashSet::new();
    for c in containers {
        if c.name.is_empty()
            || c.name.len() > 255
            || c.name
                .chars()
                .any(|ch| !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'))
        {
            return err(format!(
                "Container name '{}' is not valid: use 1-255 letters, digits, hyphens and underscores.",
                c.name
            ));
        }
        if !names.insert(c.name.as_str()) {
            return err(format!(
                "Duplicate container name '{}'; container names must be unique.",
                c.name
            ));
        }
        if c.image.trim().is_empty() {
            return err(format!("Container '{}': image must be set.", c.name));
        }
        if task_memory.is_none() && c.memory_mib.is_none() && c.memory_reservation_mib.is_none() {
            return err(format!(
                "Invalid setting for container '{}'. At least one of 'memory' or 'memoryReservation' must be specified.",
                c.name
            ));
        }
        if let (Some(hard), Some(soft)) = (c.memory_mib, c.memory_reservation_mib) {
            if soft > hard {
                return err(format!(
                    "Container '{}': memoryReservation ({soft} MiB) must not exceed memory ({hard} MiB).",
                    c.name
                ));
            }
        }
        if let (Some(task), Some(hard)) = (task_memory, c.memory_mib) {
            if hard > task {
                return err(format!(
                    "Container '{}': memory ({hard} MiB) exceeds the task memory ({task} MiB).",
                    c.name
                ));
            }
        }
        if c.memory_mib.is_some_and(|m| m < 6) {
            return err(format!(
                "Container '{}': memory must be at least 6 MiB.",
                c.name
            ));
        }
    }
    if !containers.iter().any(|c| c.essential) {
        return err("A task definition must have at least one essential container.");
    }
    validate_depends_on(containers)
}

fn validate_depends_on(containers: &[ContainerDefinition]) -> Result<(), TaskDefinitionError> {
    let by_name: HashMap<&str, &ContainerDefinition> =
        containers.iter().map(|c| (c.name.as_str(), c)).collect();
    for c in containers {
        for (dep, condition) in &c.depends_on {
            let Some(target) = by_name.get(dep.as_str()) else {
                return err(format!(
                    "Container '{}' dependsOn unknown container '{dep}'.",
                    c.name
                ));
            };
            let exits = matches!(
                condition,
                ContainerCondition::Complete | ContainerCondition::Success
            );
            if exits && target.essential {
                return err(format!(
                    "Container '{}' dependsOn '{dep}' with condition {condition}, which is not allowed on an essential container.",
                    c.name
                ));
            }
        }
    }
    let mut state = HashMap::new();
    for c in containers {
        if let Some(at) = visit(c.name.as_str(), &by_name, &mut state) {
            return err(format!("dependsOn has a cycle through container '{at}'."));
        }
    }
    Ok(())
}

/// Depth-first search for a `dependsOn` cycle; returns a container on it.
fn visit<'a>(
    name: &'a str,
    by_name: &HashMap<&'a str, &'a ContainerDefinition>,
    state: &mut HashMap<&'a str, u8>,
) -> Option<String> {
    match state.get(name) {
        Some(1) => return Some(name.to_string()),
        Some(2) => return None,
        _ => {}
    }
    state.insert(name, 1);
    for (dep, _) in &by_name[name].depends_on {
        if let Some(cycle) = visit(dep.as_str(), by_name, state) {
            return Some(cycle);
        }
    }
    state.insert(name, 2);
    None
}

/// Task cpu as ECS accepts it: CPU units ("256") or vCPUs ("0.25 vCPU", "1 vcpu").
pub fn parse_cpu(s: &str) -> Result<i64, TaskDefinitionError> {
    let t = s.trim().to_ascii_lowercase();
    // Validated positive and far below i64::MAX below, so the cast is exact enough.
    #[allow(clippy::cast_possible_truncation)]
    let parsed = if let Some(v) = t.strip_suffix("vcpu") {
        v.trim()
            .parse::<f64>()
            .ok()
            .map(|v| (v * 1024.0).round() as i64)
    } else {
        t.parse::<i64>().ok()
    };
    match parsed {
        Some(v) if v > 0 => Ok(v),
        _ => err(format!(
            "cpu '{s}' is not valid: give CPU units (\"1024\") or vCPUs (\"1 vCPU\")."
        )),
    }
}

/// Task memory as ECS accepts it: MiB ("512") or GB ("2 GB").
pub fn parse_memory(s: &str) -> Result<i64, TaskDefinitionError> {
    let t = s.trim().to_ascii_lowercase();
    #[allow(clippy::cast_possible_truncation)]
    let parsed = if let Some(v) = t.strip_suffix("gb") {
        v.trim()
            .parse::<f64>()
            .ok()
            .map(|v| (v * 1024.0).round() as i64)
    } else {
        t.parse::<i64>().ok()
    };
    match parsed {
        Some(v) if v > 0 => Ok(v),
        _ => err(format!(
            "memory '{s}' is not valid: give MiB (\"512\") or GB (\"2 GB\")."
        )),
    }
}

/// The Fargate task size table.
fn check_fargate_size(cpu: i64, memory: i64) -> Result<(), TaskDefinitionError> {
    let ok = match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => (1024..=4096).contains(&memory) && memory % 1024 == 0,
        1024 => (2048..=8192).contains(&memory) && memory % 1024 == 0,
        2048 => (4096..=16384).contains(&memory) && memory % 1024 == 0,
        4096 => (8192..=30720).contains(&memory) && memory % 1024 == 0,
        8192 => (16384..=61440).contains(&memory) && memory % 4096 == 0,
        16384 => (32768..=122_880).contains(&memory) && memory % 8192 == 0,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        err(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid cpu and memory combinations."
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::ContainerDefinition;

    pub(crate) fn container(name: &str) -> ContainerDefinition {
        ContainerDefinition {
            name: name.into(),
            image: "busybox".into(),
            cpu: 0,
            memory_mib: Some(64),
            memory_reservation_mib: None,
            essential: true,
            command: vec![],
            entry_point: vec![],
            environment: vec![],
            working_directory: None,
            user: None,
            stop_timeout_secs: None,
            depends_on: vec![],
            health_check: None,
            start_timeout_secs: None,
            options: crate::model::container_options::ContainerOptions::default(),
            port_mappings: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::container;
    use super::*;

    fn reg(containers: Vec<ContainerDefinition>) -> Registration {
        Registration {
            family: "web".into(),
            containers,
            ..Registration::default()
        }
    }

    #[test]
    fn accepts_a_plain_definition() {
        let v = validate(&reg(vec![container("a")])).unwrap();
        assert_eq!(v.network_mode, NetworkMode::Awsvpc);
    }

    #[test]
    fn rejects_duplicate_names_and_missing_essential() {
        let e = validate(&reg(vec![container("a"), container("a")])).unwrap_err();
        assert!(e.0.contains("Duplicate container name 'a'"), "{e}");
        let mut c = container("a");
        c.essential = false;
        assert!(validate(&reg(vec![c])).unwrap_err().0.contains("essential"));
    }

    #[test]
    fn requires_memory_somewhere() {
        let mut c = container("a");
        c.memory_mib = None;
        assert!(validate(&reg(vec![c.clone()]))
            .unwrap_err()
            .0
            .contains("'memory' or 'memoryReservation'"));
        let mut r = reg(vec![c]);
        r.memory = Some("512".into());
        assert!(validate(&r).is_ok());
    }

    #[test]
    fn depends_on_rules() {
        let mut a = container("a");
        a.depends_on = vec![("ghost".into(), ContainerCondition::Start)];
        assert!(validate(&reg(vec![a]))
            .unwrap_err()
            .0
            .contains("unknown container 'ghost'"));

        let mut a = container("a");
        let b = container("b");
        a.depends_on = vec![("b".into(), ContainerCondition::Success)];
        assert!(validate(&reg(vec![a, b]))
            .unwrap_err()
            .0
            .contains("not allowed on an essential container"));

        let mut a = container("a");
        let mut b = container("b");
        a.depends_on = vec![("b".into(), ContainerCondition::Start)];
        b.depends_on = vec![("a".into(), ContainerCondition::Start)];
        assert!(validate(&reg(vec![a, b])).unwrap_err().0.contains("cycle"));

        let mut a = container("a");
        let mut init = container("init");
        init.essential = false;
        a.depends_on = vec![("init".into(), ContainerCondition::Success)];
        assert!(validate(&reg(vec![a, init])).is_ok());
    }

    #[test]
    fn fargate_sizes() {
        let mut r = reg(vec![container("a")]);
        r.requires_compatibilities = vec!["FARGATE".into()];
        r.cpu = Some("256".into());
        r.memory = Some("512".into());
        assert!(validate(&r).is_ok());
        r.memory = Some("3 GB".into());
        assert!(validate(&r).unwrap_err().0.contains("256 CPU, 3072 memory"));
        r.cpu = Some("1 vCPU".into());
        assert!(validate(&r).is_ok());
        r.network_mode = Some("bridge".into());
        assert!(validate(&r).unwrap_err().0.contains("awsvpc"));
        r.network_mode = None;
        r.cpu = Some("8192".into());
        r.memory = Some("20480".into());
        assert!(validate(&r).is_ok());
        r.memory = Some("18432".into());
        assert!(validate(&r).is_err());
    }

    #[test]
    fn container_memory_within_task_memory() {
        let mut r = reg(vec![container("a")]);
        r.memory = Some("32".into());
        assert!(validate(&r)
            .unwrap_err()
            .0
            .contains("exceeds the task memory"));
    }

    #[test]
    fn health_check_defaults_and_ranges() {
        let hc = health_check(
            "web",
            vec!["CMD-SHELL".into(), "true".into()],
            None,
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            (
                hc.interval_secs,
                hc.timeout_secs,
                hc.retries,
                hc.start_period_secs
            ),
            (30, 5, 3, 0)
        );
        let e = health_check(
            "web",
            vec!["CMD".into(), "true".into()],
            Some(4),
            None,
            None,
            None,
        )
        .unwrap_err();
        assert!(
            e.0.contains("healthCheck.interval must be between 5 and 300, got 4"),
            "{e}"
        );
        assert!(health_check(
            "web",
            vec!["CMD".into(), "x".into()],
            None,
            Some(61),
            None,
            None
        )
        .is_err());
        assert!(health_check(
            "web",
            vec!["CMD".into(), "x".into()],
            None,
            None,
            Some(0),
            None
        )
        .is_err());
        assert!(health_check(
            "web",
            vec!["CMD".into(), "x".into()],
            None,
            None,
            None,
            Some(301)
        )
        .is_err());
        assert!(health_check("web", vec!["true".into()], None, None, None, None).is_err());
        assert!(health_check("web", vec!["CMD".into()], None, None, None, None).is_err());
    }

    #[test]
    fn cpu_and_memory_strings() {
        assert_eq!(parse_cpu("1 vCPU").unwrap(), 1024);
        assert_eq!(parse_cpu("0.25 vcpu").unwrap(), 256);
        assert_eq!(parse_memory("2 GB").unwrap(), 2048);
        assert!(parse_cpu("lots").is_err());
        assert!(parse_memory("-5").is_err());
    }
}
