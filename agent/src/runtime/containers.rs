//! Container lifecycle on containerd: rootfs snapshot, container record and runc task
//! (create, start, wait, kill, delete), plus listing and status.

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::snapshots::PrepareSnapshotRequest;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, GetContainerRequest, GetRequest, KillRequest, ListContainersRequest,
    StartRequest, WaitRequest,
};
use containerd_client::types::v1::Status as TaskStatus;
use containerd_client::types::Mount;
use tonic::transport::Channel;
use tonic::Code;

use super::content::Lease;
use super::{
    add_cgroup_namespace, build_spec, resolve_user, ContainerSpec, ContainerState, Containerd,
    Result, RuntimeError, RuntimeStatus, RUNC_RUNTIME,
};

/// How containerd knows the JSON in a container record is an OCI runtime spec.
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// Protects the rootfs snapshot between `Prepare` and the container record that owns it.
const CREATE_LEASE_TTL: Duration = Duration::from_secs(600);

/// The directories an overlay (or bind) rootfs is made of, topmost first.
fn layer_dirs(mounts: &[Mount]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for mount in mounts {
        match mount.r#type.as_str() {
            "bind" => dirs.push(PathBuf::from(&mount.source)),
            "overlay" => {
                let option = |key: &str| {
                    mount
                        .options
                        .iter()
                        .find_map(|o| o.strip_prefix(key).and_then(|o| o.strip_prefix('=')))
                };
                dirs.extend(option("upperdir").map(PathBuf::from));
                if let Some(lower) = option("lowerdir") {
                    dirs.extend(lower.split(':').map(PathBuf::from));
                }
            }
            _ => {}
        }
    }
    dirs
}

/// The shim's stdio URI for `log_path`: both streams append to the file, through our
/// log driver when there is one (see `crate::log_driver`), else the shim's own `file://`
/// copy. An empty path discards the output.
fn log_uri(
    log_path: &Path,
    driver: Option<&Path>,
    rotation: crate::log_driver::Rotation,
) -> std::result::Result<String, String> {
    if log_path.as_os_str().is_empty() {
        return Ok(String::new());
    }
    if !log_path.is_absolute() {
        return Err(format!("log path {} is not absolute", log_path.display()));
    }
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    }
    Ok(match driver {
        Some(binary) => crate::log_driver::uri(binary, log_path, rotation),
        None => format!("file://{}", log_path.display()),
    })
}

fn state_of(status: i32) -> ContainerState {
    match TaskStatus::try_from(status) {
        Ok(TaskStatus::Created) => ContainerState::Created,
        Ok(TaskStatus::Running) => ContainerState::Running,
        Ok(TaskStatus::Stopped) => ContainerState::Stopped,
        Ok(TaskStatus::Paused | TaskStatus::Pausing) => ContainerState::Paused,
        _ => ContainerState::Unknown,
    }
}

impl Containerd {
    pub(super) fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }

    pub(super) fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }

    pub(super) async fn do_create_container(&self, spec: &ContainerSpec) -> Result<()> {
        let lease = self.create_lease(CREATE_LEASE_TTL).await?;
        let result = self.create_leased(&lease, spec).await;
        self.delete_lease(lease).await;
        result
    }

    async fn create_leased(&self, lease: &Lease, spec: &ContainerSpec) -> Result<()> {
        let id = spec.id.as_str();
        let mounts = self
            .snapshots()
            .prepare(self.leased(
                PrepareSnapshotRequest {
                    snapshotter: self.config.snapshotter.clone(),
                    key: id.to_owned(),
                    parent: spec.image.chain_id.clone(),
                    labels: std::collections::HashMap::new(),
                },
                lease,
            ))
            .await
            .map_err(|s| RuntimeError::containerd("snapshots.prepare", id, s))?
            .into_inner()
            .mounts;

        let mut record_created = false;
        let result = self
            .create_record_and_task(spec, mounts, &mut record_created)
            .await;
        if result.is_err() {
            if record_created {
                if let Err(e) = self.delete_container_record(id).await {
                    tracing::warn!(container = id, error = %e, "cannot roll back container record");
                }
            }
            self.remove_snapshot_quietly(id).await;
        }
        result
    }

    async fn create_record_and_task(
        &self,
        spec: &ContainerSpec,
        mounts: Vec<Mount>,
        record_created: &mut bool,
    ) -> Result<()> {
        let id = spec.id.as_str();
        let start_error = |message: String| RuntimeError::Start {
            container: id.to_owned(),
            message,
        };
        let user_spec = if spec.user.is_empty() {
            &spec.image.config.user
        } else {
            &spec.user
        };
        let user = resolve_user(user_spec, &layer_dirs(&mounts))
            .map_err(|e| start_error(e.to_string()))?;
        let mut oci_spec = build_spec(spec, &user);
        if self.config.cgroup_namespace {
            add_cgroup_namespace(&mut oci_spec);
        }
        let container = Container {
            id: id.to_owned(),
            labels: spec.labels.clone(),
            image: spec.image.reference.clone(),
            runtime: Some(Runtime {
                name: RUNC_RUNTIME.to_owned(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE_URL.to_owned(),
                value: serde_json::to_vec(&oci_spec).expect("a JSON value serializes"),
            }),
            snapshotter: self.config.snapshotter.clone(),
            snapshot_key: id.to_owned(),
            ..Container::default()
        };
        self.containers()
            .create(self.request(CreateContainerRequest {
                container: Some(container),
            }))
            .await
            .map_err(|s| RuntimeError::containerd("containers.create", id, s))?;
        *record_created = true;

        let log_uri = log_uri(
            &spec.log_path,
            self.config.log_driver.as_deref(),
            self.config.log_rotation,
        )
        .map_err(start_error)?;
        // runc runs `create` here: a missing executable, a bad cwd or a refused rlimit fail
        // now, not at start.
        self.tasks()
            .create(self.request(CreateTaskRequest {
                container_id: id.to_owned(),
                rootfs: mounts,
                stdout: log_uri.clone(),
                stderr: log_uri,
                ..CreateTaskRequest::default()
            }))
            .await
            .map_err(|s| start_error(s.message().to_owned()))?;
        tracing::debug!(container = id, image = %spec.image.reference, "container created");
        Ok(())
    }

    pub(super) async fn do_start(&self, id: &str) -> Result<u32> {
        let response = self
            .tasks()
            .start(self.request(StartRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            }))
            .await
            .map_err(|s| match s.code() {
                Code::NotFound => RuntimeError::NotFound {
                    kind: "task",
                    id: id.to_owned(),
                },
                _ => RuntimeError::Start {
                    container: id.to_owned(),
                    message: s.message().to_owned(),
                },
            })?;
        Ok(response.into_inner().pid)
    }

    pub(super) async fn do_wait(&self, id: &str) -> Result<u32> {
        let response = self
            .tasks()
            .wait(self.request(WaitRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            }))
            .await
            .map_err(|s| RuntimeError::from_status("tasks.wait", "task", id, s))?;
        Ok(response.into_inner().exit_status)
    }

    pub(super) async fn do_kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        self.tasks()
            .kill(self.request(KillRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
                signal,
                all,
            }))
            .await
            .map_err(|s| RuntimeError::from_status("tasks.kill", "task", id, s))?;
        Ok(())
    }

    pub(super) async fn do_delete(&self, id: &str) -> Result<()> {
        match self
            .tasks()
            .delete(self.request(DeleteTaskRequest {
                container_id: id.to_owned(),
            }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(RuntimeError::containerd("tasks.delete", id, s)),
        }
        self.delete_container_record(id).await?;
        self.remove_snapshot(id).await
    }

    async fn delete_container_record(&self, id: &str) -> Result<()> {
        match self
            .containers()
            .delete(self.request(DeleteContainerRequest { id: id.to_owned() }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(RuntimeError::containerd("containers.delete", id, s)),
        }
    }

    pub(super) async fn do_list_containers(&self) -> Result<Vec<String>> {
        let response = self
            .containers()
            .list(self.request(ListContainersRequest { filters: vec![] }))
            .await
            .map_err(|s| RuntimeError::containerd("containers.list", "", s))?;
        Ok(response
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect())
    }

    pub(super) async fn do_status(&self, id: &str) -> Result<Option<RuntimeStatus>> {
        match self
            .tasks()
            .get(self.request(GetRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            }))
            .await
        {
            Ok(response) => {
                let Some(process) = response.into_inner().process else {
                    return Ok(None);
                };
                let state = state_of(process.status);
                Ok(Some(RuntimeStatus {
                    state,
                    pid: process.pid,
                    exit_code: (state == ContainerState::Stopped).then_some(process.exit_status),
                }))
            }
            Err(s) if s.code() == Code::NotFound => {
                match self
                    .containers()
                    .get(self.request(GetContainerRequest { id: id.to_owned() }))
                    .await
                {
                    Ok(_) => Ok(Some(RuntimeStatus {
                        state: ContainerState::NoTask,
                        pid: 0,
                        exit_code: None,
                    })),
                    Err(s) if s.code() == Code::NotFound => Ok(None),
                    Err(s) => Err(RuntimeError::containerd("containers.get", id, s)),
                }
            }
            Err(s) => Err(RuntimeError::containerd("tasks.get", id, s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(kind: &str, source: &str, options: &[&str]) -> Mount {
        Mount {
            r#type: kind.to_owned(),
            source: source.to_owned(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            ..Mount::default()
        }
    }

    #[test]
    fn overlay_layers_upper_first() {
        let mounts = [mount(
            "overlay",
            "overlay",
            &[
                "index=off",
                "workdir=/s/3/work",
                "upperdir=/s/3/fs",
                "lowerdir=/s/2/fs:/s/1/fs",
            ],
        )];
        assert_eq!(
            layer_dirs(&mounts),
            [PathBuf::from("/s/3/fs"), "/s/2/fs".into(), "/s/1/fs".into()]
        );
    }

    #[test]
    fn bind_mount_is_one_layer() {
        let mounts = [mount("bind", "/s/1/fs", &["ro", "rbind"])];
        assert_eq!(layer_dirs(&mounts), [PathBuf::from("/s/1/fs")]);
    }
}
