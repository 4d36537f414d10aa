//! Fetching an image from its registry: resolve the reference (mirror, credentials), take
//! the platform manifest, the config and the missing layers into containerd's content store
//! with their GC labels, unpack (see `unpack`), and point the image record at it.

use std::collections::HashMap;
use std::time::Duration;

use containerd_client::types::Descriptor;
use futures::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::Reference;

use super::content::{BlobWrite, Lease};
use super::manifest::{
    host_architecture, manifest_gc_labels, parse_config, Manifest, ManifestDescriptor,
    ParsedConfig, ACCEPTED_MANIFESTS, OCI_MANIFEST,
};
use super::registry::{self, RegistryCredentials, Source};
use super::unpack::chain_id;
use super::{Containerd, Image, Result, RuntimeConfig, RuntimeError};

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

impl Containerd {
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
}
