//! Image pull: resolve the reference at the registry, stream manifest, config and layers into
//! containerd's content store with their GC labels, unpack (see `unpack`), and record the
//! image. Whether a cached image is used instead is `pull`'s business; which host and
//! credentials, `registry`'s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{
    CreateImageRequest, GetImageRequest, Image as ImageRecord, UpdateImageRequest,
};
use containerd_client::types::Descriptor;
use futures::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::Reference;
use serde::Deserialize;
use tonic::Code;

use super::content::{BlobWrite, Lease};
use super::pull::{pull_with_behavior, ImagePullBehavior, ImageSource};
use super::registry::{self, RegistryCredentials, Source};
use super::unpack::chain_id;
use super::{Containerd, Image, ImageConfig, Result, RuntimeConfig, RuntimeError};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPTED_MANIFESTS: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 3;
/// Lifetime of a pull's lease if the agent dies before deleting it.
const PULL_LEASE_TTL: Duration = Duration::from_secs(3600);

/// A registry client: HTTPS verified against the system's CA store plus the
/// configured extra CAs, plain HTTP only to the insecure registries.
pub(super) fn registry_client(config: &RuntimeConfig) -> oci_client::Client {
    oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(config.insecure_registries.clone()),
        connect_timeout: Some(Duration::from_secs(30)),
        extra_root_certificates: config
            .registry_ca_pems
            .iter()
            .map(|pem| oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect(),
        ..ClientConfig::default()
    })
}

/// The fields of an image manifest or index that a pull needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<ManifestDescriptor>,
    config: Option<ManifestDescriptor>,
    #[serde(default)]
    layers: Vec<ManifestDescriptor>,
}

impl Manifest {
    fn is_index(&self) -> bool {
        match self.media_type.as_deref() {
            Some(OCI_INDEX | DOCKER_LIST) => true,
            Some(_) => false,
            None => self.config.is_none() && !self.manifests.is_empty(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDescriptor {
    media_type: String,
    digest: String,
    size: i64,
    platform: Option<Platform>,
}

impl ManifestDescriptor {
    fn oci(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            ..OciDescriptor::default()
        }
    }

    fn containerd(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: HashMap::new(),
        }
    }
}

/// The labels that make containerd's GC keep a manifest's config and layers.
fn manifest_gc_labels(
    config: &ManifestDescriptor,
    layers: &[ManifestDescriptor],
) -> HashMap<String, String> {
    let mut labels = HashMap::from([(
        "containerd.io/gc.ref.content.config".to_owned(),
        config.digest.clone(),
    )]);
    for (i, layer) in layers.iter().enumerate() {
        labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            layer.digest.clone(),
        );
    }
    labels
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

/// The image config file (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<ContainerConfig>,
    rootfs: RootFs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    env: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// The parsed config: what containers inherit, and the layers' uncompressed digests.
struct ParsedConfig {
    config: ImageConfig,
    diff_ids: Vec<String>,
}

fn parse_config(data: &[u8]) -> std::result::Result<ParsedConfig, String> {
    let file: ConfigFile =
        serde_json::from_slice(data).map_err(|e| format!("invalid image config: {e}"))?;
    let c = file.config.unwrap_or_default();
    Ok(ParsedConfig {
        config: ImageConfig {
            env: c.env.unwrap_or_default(),
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
        },
        diff_ids: file.rootfs.diff_ids,
    })
}

/// containerd's platform name for the host CPU.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The registry's own words where it gave any (e.g. "manifest unknown"), else the error
/// with its causes.
fn registry_message(error: &OciDistributionError) -> String {
    match error {
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    format!("{:?}", e.code)
                } else {
                    e.message.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        OciDistributionError::UnauthorizedError { url } => {
            format!("the registry refused access (401 unauthorized): {url}")
        }
        OciDistributionError::ServerError { code, message, .. } => {
            format!("registry answered {code}: {}", message.trim())
        }
        other => super::error::chain(other),
    }
}

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

    /// Pulls from the registry whatever the local store lacks, unpacks, and (re)points the
    /// image record at the registry's current manifest. Skips the local-image shortcut, so
    /// it also refreshes a moved tag.
    pub async fn fetch_image(
        &self,
        reference: &str,
        login: Option<&RegistryCredentials>,
    ) -> Result<Image> {
        let lease = self.create_lease(PULL_LEASE_TTL).await?;
        let result = self.fetch_image_leased(&lease, reference, login).await;
        self.delete_lease(lease).await;
        result
    }

    #[allow(clippy::too_many_lines)] // the pull steps in order
    async fn fetch_image_leased(
        &self,
        lease: &Lease,
        reference: &str,
        login: Option<&RegistryCredentials>,
    ) -> Result<Image> {
        let pull_error = |message: String| RuntimeError::Pull {
            reference: reference.to_owned(),
            message,
        };
        let source = registry::resolve(
            reference,
            &self.config.registry_mirrors,
            &self.config.registry_auth,
            login,
        )
        .map_err(pull_error)?;
        let parsed = &source.reference;
        if self.config.registry_mirrors.contains_key(parsed.registry()) {
            tracing::debug!(
                image = reference,
                mirror = parsed.resolve_registry(),
                "pulling through a mirror"
            );
        }
        // oci-client keeps the first credentials it sees per registry (and the
        // tokens they earn): a task's own login gets a client of its own, so it
        // is neither shadowed by nor lent to other tasks' pulls.
        let own_client;
        let client = if source.task_login {
            own_client = registry_client(&self.config);
            &own_client
        } else {
            &self.registry
        };
        let (manifest_bytes, manifest_digest, manifest) =
            self.fetch_manifest(client, reference, &source).await?;
        let manifest_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.to_owned());
        let config_desc = manifest
            .config
            .clone()
            .ok_or_else(|| pull_error(format!("manifest {manifest_digest} has no config")))?;

        let (config_bytes, config) = self
            .fetch_config(client, reference, parsed, &config_desc)
            .await?;
        if config.diff_ids.len() != manifest.layers.len() {
            return Err(pull_error(format!(
                "image config lists {} layers, manifest {}",
                config.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        let top_chain = chain_id(&config.diff_ids)
            .ok_or_else(|| pull_error("image has no layers".to_owned()))?;

        // Layers below an existing snapshot are never read again: fetch only the rest.
        let first_missing = self.first_missing_layer(&config.diff_ids).await?;
        self.fetch_layers(
            client,
            lease,
            reference,
            parsed,
            &manifest.layers[first_missing..],
            &config.diff_ids[first_missing..],
        )
        .await?;

        let snapshot_label = format!("containerd.io/gc.ref.snapshot.{}", self.config.snapshotter);
        self.put_blob(
            lease,
            reference,
            &config_desc.digest,
            config_bytes,
            HashMap::from([(snapshot_label, top_chain.clone())]),
        )
        .await?;
        let manifest_labels = manifest_gc_labels(&config_desc, &manifest.layers);
        let manifest_size = i64::try_from(manifest_bytes.len()).expect("manifest fits in i64");
        self.put_blob(
            lease,
            reference,
            &manifest_digest,
            manifest_bytes,
            manifest_labels,
        )
        .await?;

        let layers: Vec<Descriptor> = manifest
            .layers
            .iter()
            .map(ManifestDescriptor::containerd)
            .collect();
        self.unpack(lease, reference, &layers, &config.diff_ids, first_missing)
            .await?;

        self.put_image_record(
            reference,
            Descriptor {
                media_type: manifest_type,
                digest: manifest_digest.clone(),
                size: manifest_size,
                annotations: HashMap::new(),
            },
        )
        .await?;
        tracing::info!(image = reference, manifest = %manifest_digest, chain_id = %top_chain, "image pulled");
        Ok(Image {
            reference: reference.to_owned(),
            manifest_digest,
            chain_id: top_chain,
            config: config.config,
        })
    }

    /// The config blob's bytes (stored as they are) and its parsed form.
    async fn fetch_config(
        &self,
        client: &oci_client::Client,
        reference: &str,
        parsed: &Reference,
        desc: &ManifestDescriptor,
    ) -> Result<(Vec<u8>, ParsedConfig)> {
        let pull_error = |message: String| RuntimeError::Pull {
            reference: reference.to_owned(),
            message,
        };
        let mut bytes = Vec::new();
        client
            .pull_blob(parsed, &desc.oci(), &mut bytes)
            .await
            .map_err(|e| pull_error(format!("config {}: {}", desc.digest, registry_message(&e))))?;
        let config = parse_config(&bytes).map_err(pull_error)?;
        Ok((bytes, config))
    }

    /// The platform manifest for `reference`: raw bytes (stored as they are, so the digest
    /// holds), digest, and parsed form. An index is resolved to linux/<host arch>.
    async fn fetch_manifest(
        &self,
        client: &oci_client::Client,
        reference: &str,
        source: &Source,
    ) -> Result<(Vec<u8>, String, Manifest)> {
        let pull_error = |message: String| RuntimeError::Pull {
            reference: reference.to_owned(),
            message,
        };
        let fetch = |r: Reference| async move {
            let (bytes, digest) = client
                .pull_manifest_raw(&r, &source.auth, ACCEPTED_MANIFESTS)
                .await
                .map_err(|e| registry_message(&e))?;
            let manifest: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| format!("invalid manifest {digest}: {e}"))?;
            Ok::<_, String>((bytes.to_vec(), digest, manifest))
        };
        let parsed = &source.reference;
        let (bytes, digest, manifest) = fetch(parsed.clone()).await.map_err(pull_error)?;
        if !manifest.is_index() {
            return Ok((bytes, digest, manifest));
        }
        let arch = host_architecture();
        let entry = manifest
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .ok_or_else(|| pull_error(format!("no linux/{arch} image in index {digest}")))?;
        let (bytes, digest, manifest) = fetch(parsed.clone_with_digest(entry.digest.clone()))
            .await
            .map_err(pull_error)?;
        if manifest.is_index() {
            return Err(pull_error(format!(
                "index {digest} points at another index"
            )));
        }
        Ok((bytes, digest, manifest))
    }

    async fn fetch_layers(
        &self,
        client: &oci_client::Client,
        lease: &Lease,
        reference: &str,
        parsed: &Reference,
        layers: &[ManifestDescriptor],
        diff_ids: &[String],
    ) -> Result<()> {
        // Owned items: borrowed ones trip the compiler's Send check on the pull future.
        let items: Vec<(ManifestDescriptor, String)> = layers
            .iter()
            .cloned()
            .zip(diff_ids.iter().cloned())
            .collect();
        futures::stream::iter(items)
            .map(|(layer, diff_id)| async move {
                let labels = HashMap::from([("containerd.io/uncompressed".to_owned(), diff_id)]);
                let blob = BlobWrite {
                    digest: &layer.digest,
                    size: layer.size,
                    labels,
                };
                self.ensure_blob(lease, reference, blob, || async {
                    let stream = client
                        .pull_blob_stream(parsed, &layer.oci())
                        .await
                        .map_err(|e| registry_message(&e))?;
                    Ok(stream.map(|chunk| chunk.map_err(|e| super::error::chain(&e))))
                })
                .await
            })
            .buffer_unordered(PARALLEL_LAYERS)
            .try_collect::<()>()
            .await
    }

    /// Stores a blob already in memory.
    async fn put_blob(
        &self,
        lease: &Lease,
        reference: &str,
        digest: &str,
        data: Vec<u8>,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let blob = BlobWrite {
            digest,
            size: i64::try_from(data.len()).expect("blob fits in i64"),
            labels,
        };
        self.ensure_blob(lease, reference, blob, || async move {
            Ok(futures::stream::iter([Ok::<_, String>(data)]))
        })
        .await
    }

    async fn put_image_record(&self, name: &str, target: Descriptor) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_with_nulls() {
        let data = br#"{"architecture":"amd64","os":"linux",
            "config":{"Env":["PATH=/bin"],"Entrypoint":null,"Cmd":["/bin/sh"],"WorkingDir":"/srv"},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa","sha256:bb"]}}"#;
        let parsed = parse_config(data).unwrap();
        assert_eq!(parsed.config.env, ["PATH=/bin"]);
        assert!(parsed.config.entrypoint.is_empty());
        assert_eq!(parsed.config.cmd, ["/bin/sh"]);
        assert_eq!(parsed.config.working_dir, "/srv");
        assert_eq!(parsed.config.user, "");
        assert_eq!(parsed.diff_ids, ["sha256:aa", "sha256:bb"]);
    }

    #[test]
    fn parses_config_without_config_section() {
        let parsed = parse_config(br#"{"rootfs":{"diff_ids":["sha256:aa"]}}"#).unwrap();
        assert_eq!(parsed.config, ImageConfig::default());
    }

    #[test]
    fn tells_index_from_manifest() {
        let index: Manifest = serde_json::from_str(
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:aa","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#,
        )
        .unwrap();
        assert!(index.is_index());
        let manifest: Manifest = serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"x","digest":"sha256:cc","size":2},"layers":[]}"#,
        )
        .unwrap();
        assert!(!manifest.is_index());
    }
}
