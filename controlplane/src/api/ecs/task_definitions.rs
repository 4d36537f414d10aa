//! `RegisterTaskDefinition`, `DescribeTaskDefinition`, `ListTaskDefinitions`,
//! `ListTaskDefinitionFamilies`, `DeregisterTaskDefinition`,
//! `DeleteTaskDefinitions`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{one_of, page, parse, render, tags_in, ApiError, Tag};
use crate::model::container_options::{
    ContainerOptions, LinuxParameters, MountPoint, Tmpfs, Ulimit, Volume, VolumeFrom,
};
use crate::model::ports::{PortMapping, Protocol};
use crate::model::status::{EcsEnum, TaskDefinitionFamilyStatus};
use crate::model::task_definition::ContainerCondition;
use crate::model::task_definition::{health_check, Registration};
use crate::model::{ContainerDefinition, LaunchType, TaskDefinitionStatus};
use crate::state::{ControlPlane, FamilyFilter, TaskDefinitionFilter};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterInput {
    family: String,
    container_definitions: Vec<ContainerInput>,
    network_mode: Option<String>,
    cpu: Option<String>,
    memory: Option<String>,
    requires_compatibilities: Option<Vec<String>>,
    tags: Option<Vec<Tag>>,
    volumes: Option<Vec<VolumeInput>>,
    ephemeral_storage: Option<EphemeralStorageInput>,
}

/// `ephemeralStorage`: validated as ECS does, recorded, not enforced (the
/// overlayfs snapshotter has no per-snapshot size limit without project quotas).
#[derive(Deserialize)]
struct EphemeralStorageInput {
    #[serde(rename = "sizeInGiB")]
    size_in_gib: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeInput {
    name: String,
    host: Option<HostInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostInput {
    source_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UlimitInput {
    name: String,
    soft_limit: i64,
    hard_limit: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CapabilitiesInput {
    add: Option<Vec<String>>,
    drop: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TmpfsInput {
    container_path: String,
    size: i64,
    mount_options: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LinuxParametersInput {
    capabilities: Option<CapabilitiesInput>,
    init_process_enabled: Option<bool>,
    shared_memory_size: Option<i64>,
    tmpfs: Option<Vec<TmpfsInput>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MountPointInput {
    source_volume: String,
    container_path: String,
    read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeFromInput {
    source_container: String,
    read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvironmentFileInput {
    value: String,
    r#type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KeyValue {
    name: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    container_name: String,
    condition: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortMappingInput {
    container_port: Option<i64>,
    host_port: Option<i64>,
    protocol: Option<String>,
    container_port_range: Option<String>,
}

impl PortMappingInput {
    fn into_domain(self, container: &str) -> Result<PortMapping, ApiError> {
        if self.container_port_range.is_some() {
            return Err(ApiError::invalid(format!(
                "Container '{container}': containerPortRange is not supported; map each port."
            )));
        }
        let port = |v: i64, what: &str| {
            u16::try_from(v).map_err(|_| {
                ApiError::invalid(format!(
                    "Container '{container}': {what} {v} is not between 0 and 65535."
                ))
            })
        };
        let container_port = port(
            self.container_port.ok_or_else(|| {
                ApiError::invalid(format!(
                    "Container '{container}': portMappings entries need a containerPort."
                ))
            })?,
            "containerPort",
        )?;
        let host_port = port(self.host_port.unwrap_or(0), "hostPort")?;
        let protocol = self
            .protocol
            .as_deref()
            .map_or(Some(Protocol::Tcp), Protocol::parse);
        Ok(PortMapping {
            container_port,
            host_port: (host_port != 0).then_some(host_port),
            protocol: protocol.ok_or_else(|| {
                ApiError::invalid(format!(
                    "Container '{container}': protocol '{}' is not valid; use tcp or udp.",
                    self.protocol.as_deref().unwrap_or_default()
                ))
            })?,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerInput {
    name: String,
    image: String,
    cpu: Option<i64>,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
    essential: Option<bool>,
    command: Option<Vec<String>>,
    entry_point: Option<Vec<String>>,
    environment: Option<Vec<KeyValue>>,
    working_directory: Option<String>,
    user: Option<String>,
    stop_timeout: Option<u32>,
    start_timeout: Option<u32>,
    depends_on: Option<Vec<Dependency>>,
    health_check: Option<HealthCheckInput>,
    environment_files: Option<Vec<EnvironmentFileInput>>,
    readonly_root_filesystem: Option<bool>,
    ulimits: Option<Vec<UlimitInput>>,
    linux_parameters: Option<LinuxParametersInput>,
    mount_points: Option<Vec<MountPointInput>>,
    volumes_from: Option<Vec<VolumeFromInput>>,
    privileged: Option<bool>,
    docker_labels: Option<std::collections::BTreeMap<String, String>>,
    port_mappings: Option<Vec<PortMappingInput>>,
    secrets: Option<Vec<SecretInput>>,
    repository_credentials: Option<RepositoryCredentialsInput>,
    links: Option<Vec<String>>,
    hostname: Option<String>,
    extra_hosts: Option<Vec<HostEntryInput>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostEntryInput {
    hostname: String,
    ip_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretInput {
    name: String,
    value_from: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepositoryCredentialsInput {
    credentials_parameter: String,
}

impl ContainerInput {
    fn options(&mut self) -> Result<ContainerOptions, ApiError> {
        let linux = self.linux_parameters.take().unwrap_or_default();
        let caps = linux.capabilities.unwrap_or_default();
        let mut environment_files = vec![];
        for f in self.environment_files.take().unwrap_or_default() {
            if f.r#type.as_deref().is_some_and(|t| t != "s3") {
                return Err(ApiError::invalid(format!(
                    "Container '{}': environmentFiles type must be s3.",
                    self.name
                )));
            }
            environment_files.push(f.value);
        }
        Ok(ContainerOptions {
            environment_files,
            readonly_root_filesystem: self.readonly_root_filesystem.unwrap_or(false),
            ulimits: self
                .ulimits
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|u| Ulimit {
                    name: u.name,
                    soft_limit: u.soft_limit,
                    hard_limit: u.hard_limit,
                })
                .collect(),
            linux_parameters: LinuxParameters {
                cap_add: caps.add.unwrap_or_default(),
                cap_drop: caps.drop.unwrap_or_default(),
                init_process_enabled: linux.init_process_enabled.unwrap_or(false),
                shared_memory_size_mib: linux.shared_memory_size,
                tmpfs: linux
                    .tmpfs
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| Tmpfs {
                        container_path: t.container_path,
                        size_mib: t.size,
                        mount_options: t.mount_options.unwrap_or_default(),
                    })
                    .collect(),
            },
            mount_points: self
                .mount_points
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|m| MountPoint {
                    source_volume: m.source_volume,
                    container_path: m.container_path,
                    read_only: m.read_only.unwrap_or(false),
                })
                .collect(),
            volumes_from: self
                .volumes_from
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|v| VolumeFrom {
                    source_container: v.source_container,
                    read_only: v.read_only.unwrap_or(false),
                })
                .collect(),
            privileged: self.privileged.unwrap_or(false),
            docker_labels: self
                .docker_labels
                .take()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            secrets: self
                .secrets
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.name, s.value_from))
                .collect(),
            repository_credentials: self
                .repository_credentials
                .take()
                .map(|r| r.credentials_parameter),
            links: self.links.take().unwrap_or_default(),
            hostname: self.hostname.take(),
            extra_hosts: self
                .extra_hosts
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|h| (h.hostname, h.ip_address))
                .collect(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthCheckInput {
    command: Vec<String>,
    interval: Option<u32>,
    timeout: Option<u32>,
    retries: Option<u32>,
    start_period: Option<u32>,
}

/// ECS `environment` entries as (name, value); entries without a name are dropped, as ECS does.
pub(super) fn environment(env: Option<Vec<KeyValue>>) -> Vec<(String, String)> {
    env.unwrap_or_default()
        .into_iter()
        .filter_map(|kv| kv.name.map(|k| (k, kv.value.unwrap_or_default())))
        .collect()
}

impl TryFrom<ContainerInput> for ContainerDefinition {
    type Error = ApiError;

    fn try_from(mut c: ContainerInput) -> Result<Self, ApiError> {
        let options = c.options()?;
        let port_mappings = c
            .port_mappings
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.into_domain(&c.name))
            .collect::<Result<_, _>>()?;
        let health_check = c
            .health_check
            .map(|h| {
                health_check(
                    &c.name,
                    h.command,
                    h.interval,
                    h.timeout,
                    h.retries,
                    h.start_period,
                )
            })
            .transpose()
            .map_err(|e| ApiError::invalid(e.0))?;
        Ok(ContainerDefinition {
            name: c.name,
            image: c.image,
            cpu: c.cpu.unwrap_or(0),
            memory_mib: c.memory,
            memory_reservation_mib: c.memory_reservation,
            essential: c.essential.unwrap_or(true),
            command: c.command.unwrap_or_default(),
            entry_point: c.entry_point.unwrap_or_default(),
            environment: environment(c.environment),
            working_directory: c.working_directory,
            user: c.user,
            stop_timeout_secs: c.stop_timeout,
            depends_on: c
                .depends_on
                .unwrap_or_default()
                .into_iter()
                .map(|d| {
                    let condition =
                        one_of("dependsOn condition", &d.condition, ContainerCondition::ALL)?;
                    Ok((d.container_name, condition))
                })
                .collect::<Result<_, ApiError>>()?,
            health_check,
            start_timeout_secs: c.start_timeout,
            options,
            port_mappings,
        })
    }
}

pub(super) fn register(
    cp: &ControlPlane,
    region: &str,
    op: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let document: Value = parse(op, body)?;
    let input: RegisterInput = serde_json::from_value(document.clone())
        .map_err(|e| crate::api::json::from_json_error(op, &e))?;
    let reg = Registration {
        family: input.family,
        network_mode: input.network_mode,
        cpu: input.cpu,
        memory: input.memory,
        volumes: input
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Volume {
                name: v.name,
                host_source_path: v.host.and_then(|h| h.source_path),
            })
            .collect(),
        requires_compatibilities: input
            .requires_compatibilities
            .unwrap_or_default()
            .iter()
            .map(|c| one_of("requiresCompatibilities", c, LaunchType::ALL))
            .collect::<Result<_, _>>()?,
        containers: input
            .container_definitions
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
    };
    if let Some(size) = input.ephemeral_storage.map(|e| e.size_in_gib) {
        if !(21..=200).contains(&size) {
            return Err(ApiError::new(
                crate::api::error::ErrorType::Client,
                format!("ephemeralStorage.sizeInGiB must be between 21 and 200 GiB, got {size}."),
            ));
        }
    }
    let tags = tags_in(input.tags)?;
    let td = cp.register_task_definition(region, &reg, document, tags)?;
    Ok(json!({ "taskDefinition": render::task_definition(&td), "tags": render::tags(&td.tags) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInput {
    task_definition: String,
    include: Option<Vec<String>>,
}

pub(super) fn describe(cp: &ControlPlane, req: DescribeInput) -> Result<Value, ApiError> {
    let td = cp.describe_task_definition(&req.task_definition)?;
    let mut out = json!({ "taskDefinition": render::task_definition(&td) });
    if req.include.unwrap_or_default().iter().any(|i| i == "TAGS") {
        out["tags"] = render::tags(&td.tags);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListInput {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list(cp: &ControlPlane, req: ListInput) -> Result<Value, ApiError> {
    let descending = match req.sort.as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(s) => {
            return Err(ApiError::invalid(format!(
                "sort '{s}' is not valid; use ASC or DESC."
            )))
        }
    };
    let filter = TaskDefinitionFilter {
        family_prefix: req.family_prefix,
        status: req
            .status
            .as_deref()
            .map(|s| one_of("status", s, TaskDefinitionStatus::ALL))
            .transpose()?,
        descending,
    };
    page(
        &cp.list_task_definitions(&filter),
        req.max_results,
        req.next_token.as_deref(),
        "taskDefinitionArns",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeregisterInput {
    task_definition: String,
}

pub(super) fn deregister(cp: &ControlPlane, req: &DeregisterInput) -> Result<Value, ApiError> {
    let td = cp.deregister_task_definition(&req.task_definition)?;
    Ok(json!({ "taskDefinition": render::task_definition(&td) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FamiliesInput {
    family_prefix: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list_families(cp: &ControlPlane, req: FamiliesInput) -> Result<Value, ApiError> {
    let filter = FamilyFilter {
        family_prefix: req.family_prefix,
        status: req
            .status
            .as_deref()
            .map(|s| one_of("status", s, TaskDefinitionFamilyStatus::ALL))
            .transpose()?,
    };
    page(
        &cp.list_task_definition_families(&filter),
        req.max_results,
        req.next_token.as_deref(),
        "families",
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteInput {
    task_definitions: Vec<String>,
}

pub(super) fn delete(cp: &ControlPlane, req: &DeleteInput) -> Result<Value, ApiError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(ApiError::invalid(format!(
            "taskDefinitions must name 1 to 10 revisions, got {}.",
            req.task_definitions.len()
        )));
    }
    let (deleted, failures) = cp.delete_task_definitions(&req.task_definitions)?;
    Ok(json!({
        "taskDefinitions": deleted.iter().map(render::task_definition).collect::<Vec<_>>(),
        "failures": failures.iter().map(render::failure).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::api::ecs::dispatch;
    use crate::state::test_support::control_plane;

    fn register(cp: &crate::state::ControlPlane, family: &str) {
        let body = format!(
            r#"{{"family":"{family}","containerDefinitions":[{{"name":"a","image":"busybox","memory":32}}]}}"#
        );
        dispatch(cp, "us-east-1", "RegisterTaskDefinition", body.as_bytes()).unwrap();
    }

    #[test]
    fn ephemeral_storage_is_checked_against_ecss_range() {
        let (cp, _) = control_plane();
        let body = |size: i64| {
            format!(
                r#"{{"family":"big","ephemeralStorage":{{"sizeInGiB":{size}}},"containerDefinitions":[{{"name":"a","image":"busybox","memory":32}}]}}"#
            )
        };
        for bad in [20, 201] {
            let e = dispatch(
                &cp,
                "us-east-1",
                "RegisterTaskDefinition",
                body(bad).as_bytes(),
            )
            .unwrap_err();
            assert_eq!(e.kind, crate::api::error::ErrorType::Client);
            assert!(e.message.contains("between 21 and 200"), "{}", e.message);
        }
        let out = dispatch(
            &cp,
            "us-east-1",
            "RegisterTaskDefinition",
            body(30).as_bytes(),
        )
        .unwrap();
        assert_eq!(out["taskDefinition"]["ephemeralStorage"]["sizeInGiB"], 30);
    }

    #[test]
    fn families_are_listed_and_paged() {
        let (cp, _) = control_plane();
        for f in ["web", "worker", "db"] {
            register(&cp, f);
        }
        let out = dispatch(
            &cp,
            "us-east-1",
            "ListTaskDefinitionFamilies",
            br#"{"familyPrefix":"w","maxResults":1}"#,
        )
        .unwrap();
        assert_eq!(out["families"], serde_json::json!(["web"]));
        let token = out["nextToken"].as_str().unwrap().to_string();
        let body = format!(r#"{{"familyPrefix":"w","nextToken":"{token}"}}"#);
        let out = dispatch(
            &cp,
            "us-east-1",
            "ListTaskDefinitionFamilies",
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(out["families"], serde_json::json!(["worker"]));
        let e = dispatch(
            &cp,
            "us-east-1",
            "ListTaskDefinitionFamilies",
            br#"{"status":"GONE"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("GONE"));
    }

    #[test]
    fn delete_task_definitions_shape() {
        let (cp, _) = control_plane();
        register(&cp, "web");
        register(&cp, "web");
        dispatch(
            &cp,
            "us-east-1",
            "DeregisterTaskDefinition",
            br#"{"taskDefinition":"web:1"}"#,
        )
        .unwrap();
        let out = dispatch(
            &cp,
            "us-east-1",
            "DeleteTaskDefinitions",
            br#"{"taskDefinitions":["web:1","web:2"]}"#,
        )
        .unwrap();
        assert_eq!(out["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
        assert!(out["taskDefinitions"][0]["deleteRequestedAt"].is_number());
        assert!(out["failures"][0]["arn"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/web:2"));
        // Describe with TAGS still works on a revision being deleted.
        let out = dispatch(
            &cp,
            "us-east-1",
            "DescribeTaskDefinition",
            br#"{"taskDefinition":"web:1","include":["TAGS"]}"#,
        )
        .unwrap();
        assert_eq!(out["taskDefinition"]["status"], "DELETE_IN_PROGRESS");
        assert_eq!(out["tags"], serde_json::json!([]));
        let e = dispatch(
            &cp,
            "us-east-1",
            "DeleteTaskDefinitions",
            br#"{"taskDefinitions":[]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("1 to 10"));
    }
}
