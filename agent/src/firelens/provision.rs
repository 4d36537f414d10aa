//! A task's FireLens files, made before any container starts: the router's socket
//! directory and generated configuration, and each sender's settings beside its log
//! (forward to the router, or ship to the store for a CloudWatch Logs route).

use std::path::{Path, PathBuf};

use super::config::{self, Sender};
use super::forward::ForwardConfig;
use super::{config_path, socket_dir, tag, Route, Router};
use crate::awslogs::ShipConfig;
use crate::model::{AwsLogs, TaskSpec};
use crate::runtime::BindMount;

/// Writes the task's FireLens files; `log_path` names a container's log file.
pub fn provision(
    spec: &TaskSpec,
    task_dir: &Path,
    log_path: impl Fn(&str) -> PathBuf,
) -> std::io::Result<()> {
    let Some(router) = spec
        .containers
        .iter()
        .find_map(|c| c.options.firelens_router.as_ref())
    else {
        return Ok(());
    };
    let senders: Vec<Sender<'_>> = spec
        .containers
        .iter()
        .filter_map(|c| {
            c.options.firelens_route.as_ref().map(|route| Sender {
                container: &c.name,
                route,
            })
        })
        .collect();
    std::fs::create_dir_all(socket_dir(task_dir))?;
    std::fs::write(
        config_path(task_dir),
        config::generate(router, &spec.id, &senders),
    )?;
    for s in &senders {
        let log = log_path(s.container);
        let tag = tag(s.container, &spec.id);
        if s.route.is_cloudwatch() {
            let (settings, stream) = cloudwatch(spec, s.route, &tag);
            ShipConfig::new(&settings, stream, &spec.arn, s.container).write(&log)?;
        } else {
            ForwardConfig {
                socket: socket_dir(task_dir).join("fluent.sock"),
                tag,
                fields: fields(spec, router, s.container),
            }
            .write(&log)?;
        }
    }
    Ok(())
}

/// The router's mounts, as ECS makes them: the socket directory at `/var/run`, the
/// generated configuration where the router's image reads it.
pub fn mounts(task_dir: &Path, router: &Router) -> [BindMount; 2] {
    [
        BindMount {
            source: socket_dir(task_dir),
            destination: "/var/run".into(),
            readonly: false,
        },
        BindMount {
            source: config_path(task_dir),
            destination: router.config_destination().into(),
            readonly: true,
        },
    ]
}

/// What Docker's fluentd driver puts in each record, and ECS's metadata when enabled.
fn fields(spec: &TaskSpec, router: &Router, container: &str) -> Vec<(String, String)> {
    let id = spec.container_id(container);
    let mut fields = vec![
        ("container_id".to_owned(), id.clone()),
        ("container_name".to_owned(), format!("/{id}")),
    ];
    if router.ecs_log_metadata {
        fields.extend([
            ("ecs_cluster".to_owned(), cluster_name(spec).to_owned()),
            ("ecs_task_arn".to_owned(), spec.arn.clone()),
            (
                "ecs_task_definition".to_owned(),
                format!("{}:{}", spec.family, spec.revision),
            ),
        ]);
    }
    fields
}

fn cluster_name(spec: &TaskSpec) -> &str {
    spec.cluster_arn.rsplit('/').next().unwrap_or_default()
}

/// A CloudWatch Logs route as Fluent Bit's plugins read it: `log_group_name`,
/// `log_stream_name` or else `log_stream_prefix` followed by the tag, and
/// `auto_create_group`; `$(ecs_task_id)`, `$(ecs_cluster)`, `$(ecs_task_arn)` and
/// `$(tag)` in names are filled in.
fn cloudwatch(spec: &TaskSpec, route: &Route, tag: &str) -> (AwsLogs, String) {
    let fill = |s: &str| {
        s.replace("$(ecs_task_id)", &spec.id)
            .replace("$(ecs_cluster)", cluster_name(spec))
            .replace("$(ecs_task_arn)", &spec.arn)
            .replace("$(tag)", tag)
    };
    let stream = match (
        route.option("log_stream_name"),
        route.option("log_stream_prefix"),
    ) {
        (Some(name), _) => fill(name),
        (None, Some(prefix)) => format!("{}{tag}", fill(prefix)),
        (None, None) => tag.to_owned(),
    };
    let settings = AwsLogs {
        group: fill(route.option("log_group_name").unwrap_or_default()),
        region: route.option("region").unwrap_or_default().to_owned(),
        stream_prefix: None,
        create_group: route
            .option("auto_create_group")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("on")),
        max_buffer_bytes: None,
        multiline_pattern: None,
    };
    (settings, stream)
}
