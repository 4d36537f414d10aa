//! FireLens: a task's log router container (`firelensConfiguration`, Fluent Bit or
//! Fluentd) and the containers that send it their output (`logDriver: awsfirelens`),
//! as ECS runs them. The agent writes the router's configuration from the senders'
//! options and mounts it; each sender's log driver speaks the Fluentd forward protocol
//! to the router's socket (`forward`). Routes to CloudWatch Logs skip the router: Berth
//! serves that API itself, so the agent ships them into its store the way awslogs does,
//! from the durable journal.

pub mod config;
pub mod forward;
mod provision;

pub use provision::{mounts, provision};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{ContainerCondition, ContainerDef, Dependency};

/// `firelensConfiguration.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouterKind {
    FluentBit,
    Fluentd,
}

/// The log router's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Router {
    pub kind: RouterKind,
    /// `enable-ecs-log-metadata` (default true): each record carries `ecs_cluster`,
    /// `ecs_task_arn` and `ecs_task_definition`.
    pub ecs_log_metadata: bool,
    /// `config-file-value` with `config-file-type: file`: included by the generated
    /// configuration.
    pub config_file: Option<String>,
}

impl Router {
    pub fn new<S: std::hash::BuildHasher>(
        kind: &str,
        options: &HashMap<String, String, S>,
    ) -> Result<Self, String> {
        let kind = match kind {
            "fluentbit" => RouterKind::FluentBit,
            "fluentd" => RouterKind::Fluentd,
            other => {
                return Err(format!(
                    "firelens type '{other}' is not fluentbit or fluentd"
                ))
            }
        };
        let config_file = match options.get("config-file-type").map(String::as_str) {
            None => None,
            Some("file") => Some(
                options
                    .get("config-file-value")
                    .cloned()
                    .ok_or("config-file-type file needs config-file-value")?,
            ),
            Some(t) => return Err(format!("config-file-type '{t}' is not supported")),
        };
        Ok(Self {
            kind,
            ecs_log_metadata: options.get("enable-ecs-log-metadata").map(String::as_str)
                != Some("false"),
            config_file,
        })
    }

    /// Where the generated configuration is mounted, as ECS mounts it.
    pub fn config_destination(&self) -> &'static str {
        match self.kind {
            RouterKind::FluentBit => "/fluent-bit/etc/fluent-bit.conf",
            RouterKind::Fluentd => "/fluentd/etc/fluent.conf",
        }
    }
}

/// An awsfirelens container's output: the plugin (`Name`, or `@type` for Fluentd) and
/// its other options, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub output: String,
    pub options: Vec<(String, String)>,
}

impl Route {
    pub fn new<S: std::hash::BuildHasher>(
        options: &HashMap<String, String, S>,
    ) -> Result<Self, String> {
        let output = options
            .get("Name")
            .or_else(|| options.get("@type"))
            .filter(|n| !n.is_empty())
            .cloned()
            .ok_or("the awsfirelens log driver needs the option Name")?;
        let mut rest: Vec<(String, String)> = options
            .iter()
            .filter(|(k, _)| *k != "Name" && *k != "@type")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        rest.sort();
        Ok(Self {
            output,
            options: rest,
        })
    }

    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Routes to CloudWatch Logs (Fluent Bit's `cloudwatch_logs` and `cloudwatch`
    /// plugins) land in Berth's own store, shipped by the agent.
    pub fn is_cloudwatch(&self) -> bool {
        matches!(self.output.as_str(), "cloudwatch_logs" | "cloudwatch")
    }
}

/// The tag of a sender's records, as ECS names it: `<container>-firelens-<task id>`.
pub fn tag(container: &str, task_id: &str) -> String {
    format!("{container}-firelens-{task_id}")
}

/// The task's FireLens directory on the host: the router's socket directory (mounted
/// at `/var/run`) and its generated configuration.
pub fn dir(task_dir: &Path) -> PathBuf {
    task_dir.join("firelens")
}

pub fn socket_dir(task_dir: &Path) -> PathBuf {
    dir(task_dir).join("socket")
}

pub fn config_path(task_dir: &Path) -> PathBuf {
    dir(task_dir).join("router.conf")
}

/// The socket inside the router, where its forward input listens.
pub const ROUTER_SOCKET: &str = "/var/run/fluent.sock";

/// ECS's ordering: a container that logs through the router waits for it to start
/// (or be healthy, when it has a health check), so the router also stops last.
pub fn add_router_dependencies(containers: &mut [ContainerDef]) {
    let Some(router) = containers
        .iter()
        .find(|c| c.options.firelens_router.is_some())
    else {
        return;
    };
    let (name, condition) = (
        router.name.clone(),
        if router.health_check.is_some() {
            ContainerCondition::Healthy
        } else {
            ContainerCondition::Start
        },
    );
    for c in containers
        .iter_mut()
        .filter(|c| c.options.firelens_route.is_some() && c.name != name)
    {
        if !c.depends_on.iter().any(|d| d.container == name) {
            c.depends_on.push(Dependency {
                container: name.clone(),
                condition,
            });
        }
    }
}
