//! The OCI documents a pull reads: manifests and indexes (which one, which platform), the
//! image config (what a container inherits, the layers' uncompressed digests), and the GC
//! labels that keep what a manifest points at.

use std::collections::HashMap;

use containerd_client::types::Descriptor;
use oci_client::manifest::OciDescriptor;
use serde::Deserialize;

use super::ImageConfig;

pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(super) const ACCEPTED_MANIFESTS: &[&str] =
    &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// The fields of an image manifest or index that a pull needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Manifest {
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<ManifestDescriptor>,
    pub config: Option<ManifestDescriptor>,
    #[serde(default)]
    pub layers: Vec<ManifestDescriptor>,
}

impl Manifest {
    pub(super) fn is_index(&self) -> bool {
        match self.media_type.as_deref() {
            Some(OCI_INDEX | DOCKER_LIST) => true,
            Some(_) => false,
            None => self.config.is_none() && !self.manifests.is_empty(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ManifestDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    pub platform: Option<Platform>,
}

impl ManifestDescriptor {
    pub(super) fn oci(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            ..OciDescriptor::default()
        }
    }

    pub(super) fn containerd(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: HashMap::new(),
        }
    }
}

/// The labels that make containerd's GC keep a manifest's config and layers.
pub(super) fn manifest_gc_labels(
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
pub(super) struct Platform {
    pub architecture: String,
    pub os: String,
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
pub(super) struct ParsedConfig {
    pub config: ImageConfig,
    pub diff_ids: Vec<String>,
}

pub(super) fn parse_config(data: &[u8]) -> std::result::Result<ParsedConfig, String> {
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
pub(super) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
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
