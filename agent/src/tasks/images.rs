//! Pulling a task's images, each once, with ECS's reason when a pull fails:
//! one loop for a new task (every image) and an adopted one (the images of
//! containers still to start).

use std::collections::HashMap;

use super::supervisor::{set_container, StopCause, Supervisor};
use crate::cgroups::CgroupManager;
use crate::model::{ContainerDef, TaskReport};
use crate::network::NetworkSetup;
use crate::runtime::{ContainerRuntime, Image, RuntimeError};

impl<R: ContainerRuntime, N: NetworkSetup, C: CgroupManager> Supervisor<R, N, C> {
    /// Pulls the images of `containers` (each reference once, with the
    /// container's own registry login). The first failure fails the task
    /// with `CannotPullContainerError`, also noted on its container.
    pub(super) async fn pull_images<'d>(
        &self,
        report: &mut TaskReport,
        containers: impl IntoIterator<Item = &'d ContainerDef>,
    ) -> Result<HashMap<String, Image>, StopCause> {
        let mut images: HashMap<String, Image> = HashMap::new();
        for c in containers {
            if images.contains_key(&c.image) {
                continue;
            }
            let login = c.options.secrets.registry_login.as_ref();
            match self.host.runtime.pull_image_as(&c.image, login).await {
                Ok(image) => {
                    images.insert(c.image.clone(), image);
                }
                Err(e) => {
                    let reason = format!("CannotPullContainerError: {}", pull_message(&e));
                    tracing::warn!(task_id = %self.spec.id, container = %c.name, error = %e, "image pull failed");
                    set_container(report, &c.name, |r| r.reason = Some(reason.clone()));
                    return Err(StopCause::failed_to_start(reason));
                }
            }
        }
        Ok(images)
    }
}

/// ECS's wording: "pull image <reference>: <what the registry said>".
fn pull_message(e: &RuntimeError) -> String {
    match e {
        RuntimeError::Pull { message, reference } => format!("pull image {reference}: {message}"),
        other => other.to_string(),
    }
}
