//! Image pull as the runtime offers it: whether the local copy will do (`pull`'s rules over
//! what containerd holds), one fetch at a time per reference (`fetch` does it), and the
//! image records. Which host and credentials is `registry`'s business.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{
    CreateImageRequest, GetImageRequest, Image as ImageRecord, UpdateImageRequest,
};
use containerd_client::types::Descriptor;
use tonic::Code;

use super::manifest::{parse_config, Manifest};
use super::pull::{pull_with_behavior, ImagePullBehavior, ImageSource};
use super::registry::RegistryCredentials;
use super::unpack::chain_id;
use super::{Containerd, Image, Result, RuntimeError};

/// One reference's pull lock, and the last image a fetch under it produced.
#[derive(Default)]
pub(super) struct PullSlot {
    last: tokio::sync::Mutex<Option<Image>>,
    /// Successful fetches under this slot; a waiter shares a result only if a fetch
    /// finished after it joined.
    fetched: AtomicU64,
}

/// The runtime pulling with one task's registry login (`repositoryCredentials`), if any.
struct WithLogin<'a> {
    runtime: &'a Containerd,
    login: Option<&'a RegistryCredentials>,
}

impl ImageSource for WithLogin<'_> {
    async fn cached(&self, reference: &str) -> Result<Option<Image>> {
        self.runtime.local_image(reference).await
    }

    async fn fetch(&self, reference: &str) -> Result<Image> {
        self.runtime.fetch_image(reference, self.login).await
    }
}

/// Manifest digests from the image record down, as stored in containerd.
struct LocalImage {
    manifest: Manifest,
    manifest_digest: String,
}

impl Containerd {
    /// Pulls as the configured `ImagePullBehavior` says. Concurrent pulls of one reference
    /// queue on one lock, and those that waited while a fetch ran take its result instead
    /// of fetching again.
    pub(super) async fn do_pull_image(
        &self,
        reference: &str,
        login: Option<&RegistryCredentials>,
    ) -> Result<Image> {
        let behavior = self.config.pull_behavior;
        if matches!(
            behavior,
            ImagePullBehavior::Once | ImagePullBehavior::PreferCached
        ) {
            if let Some(image) = self.local_image(reference).await? {
                self.mark_used(reference);
                return Ok(image);
            }
        }
        let slot = self.pull_slot(reference);
        let joined_at = slot.fetched.load(Ordering::SeqCst);
        let result = {
            let mut last = slot.last.lock().await;
            match last.as_ref() {
                Some(image) if slot.fetched.load(Ordering::SeqCst) > joined_at => Ok(image.clone()),
                _ => {
                    let source = WithLogin {
                        runtime: self,
                        login,
                    };
                    let result = pull_with_behavior(&source, behavior, reference).await;
                    if let Ok(image) = &result {
                        *last = Some(image.clone());
                        slot.fetched.fetch_add(1, Ordering::SeqCst);
                    }
                    result
                }
            }
        };
        self.release_pull_slot(reference, &slot);
        if result.is_ok() {
            self.mark_used(reference);
        }
        result
    }

    fn pull_slot(&self, reference: &str) -> Arc<PullSlot> {
        let mut pulls = self.pulls.lock().expect("pull lock map poisoned");
        pulls.entry(reference.to_owned()).or_default().clone()
    }

    fn release_pull_slot(&self, reference: &str, slot: &Arc<PullSlot>) {
        let mut pulls = self.pulls.lock().expect("pull lock map poisoned");
        // The map's reference plus ours: nobody else is waiting.
        if Arc::strong_count(slot) == 2 {
            pulls.remove(reference);
        }
    }

    /// The image as recorded in containerd, if its record, manifest, config and top snapshot
    /// are all present.
    async fn local_image(&self, reference: &str) -> Result<Option<Image>> {
        let Some(local) = self.local_manifest(reference).await? else {
            return Ok(None);
        };
        let Some(config_desc) = local.manifest.config.as_ref() else {
            return Ok(None);
        };
        let data = match self.read_content(&config_desc.digest).await {
            Ok(data) => data,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let pull_error = |message| RuntimeError::Pull {
            reference: reference.to_owned(),
            message,
        };
        let parsed = parse_config(&data).map_err(pull_error)?;
        let Some(chain) = chain_id(&parsed.diff_ids) else {
            return Ok(None);
        };
        if !self.snapshot_exists(&chain).await? {
            return Ok(None);
        }
        Ok(Some(Image {
            reference: reference.to_owned(),
            manifest_digest: local.manifest_digest,
            chain_id: chain,
            config: parsed.config,
        }))
    }

    async fn local_manifest(&self, reference: &str) -> Result<Option<LocalImage>> {
        let record = match ImagesClient::new(self.channel.clone())
            .get(self.request(GetImageRequest {
                name: reference.to_owned(),
            }))
            .await
        {
            Ok(response) => response.into_inner().image,
            Err(s) if s.code() == Code::NotFound => None,
            Err(s) => return Err(RuntimeError::containerd("images.get", reference, s)),
        };
        let Some(target) = record.and_then(|r| r.target) else {
            return Ok(None);
        };
        let data = match self.read_content(&target.digest).await {
            Ok(data) => data,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&data) else {
            return Ok(None);
        };
        if manifest.is_index() {
            return Ok(None);
        }
        Ok(Some(LocalImage {
            manifest,
            manifest_digest: target.digest,
        }))
    }

    pub(super) async fn put_image_record(&self, name: &str, target: Descriptor) -> Result<()> {
        let record = ImageRecord {
            name: name.to_owned(),
            target: Some(target),
            ..ImageRecord::default()
        };
        let mut images = ImagesClient::new(self.channel.clone());
        match images
            .create(self.request(CreateImageRequest {
                image: Some(record.clone()),
                source_date_epoch: None,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => images
                .update(self.request(UpdateImageRequest {
                    image: Some(record),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["target".to_owned()],
                    }),
                    source_date_epoch: None,
                }))
                .await
                .map(|_| ())
                .map_err(|s| RuntimeError::containerd("images.update", name, s)),
            Err(s) => Err(RuntimeError::containerd("images.create", name, s)),
        }
    }

    /// Removes the image record (content and snapshots go with the next GC unless another
    /// image or a container uses them). A missing image is not an error.
    pub async fn remove_image(&self, reference: &str) -> Result<()> {
        match ImagesClient::new(self.channel.clone())
            .delete(
                self.request(containerd_client::services::v1::DeleteImageRequest {
                    name: reference.to_owned(),
                    sync: false,
                    target: None,
                }),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(RuntimeError::containerd("images.delete", reference, s)),
        }
    }
}
