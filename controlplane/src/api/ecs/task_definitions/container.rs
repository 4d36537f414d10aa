//! A container definition as `RegisterTaskDefinition` (and `RunTask`'s overrides) send it:
//! botocore's `ContainerDefinition` shape, checked and turned into the domain's
//! `ContainerDefinition`.

use serde::Deserialize;

use super::super::{one_of, ApiError};
use crate::model::container_options::{
    ContainerOptions, LinuxParameters, LogConfiguration, MountPoint, Tmpfs, Ulimit, VolumeFrom,
};
use crate::model::firelens::FirelensConfiguration;
use crate::model::ports::{PortMapping, Protocol};
use crate::model::task_definition::health_check;
use crate::model::task_definition::ContainerCondition;
use crate::model::ContainerDefinition;
use berth_ecs::EcsEnum;

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
pub(in crate::api::ecs) struct KeyValue {
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
pub(super) struct ContainerInput {
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
    log_configuration: Option<LogConfigurationInput>,
    firelens_configuration: Option<FirelensConfigurationInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FirelensConfigurationInput {
    #[serde(rename = "type")]
    kind: String,
    options: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogConfigurationInput {
    log_driver: String,
    options: Option<std::collections::BTreeMap<String, String>>,
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
            ..self.logging()
        })
    }

    /// `logConfiguration` and `firelensConfiguration`.
    fn logging(&mut self) -> ContainerOptions {
        ContainerOptions {
            log_configuration: self.log_configuration.take().map(|l| LogConfiguration {
                log_driver: l.log_driver,
                options: l.options.unwrap_or_default().into_iter().collect(),
            }),
            firelens_configuration: self.firelens_configuration.take().map(|f| {
                FirelensConfiguration {
                    kind: f.kind,
                    options: f.options.unwrap_or_default().into_iter().collect(),
                }
            }),
            ..ContainerOptions::default()
        }
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
pub(in crate::api::ecs) fn environment(env: Option<Vec<KeyValue>>) -> Vec<(String, String)> {
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
