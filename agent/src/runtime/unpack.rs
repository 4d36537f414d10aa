//! Layer unpacking into committed snapshots named by chain id (Snapshots `Prepare`, Diff
//! `Apply`, Snapshots `Commit`), the same layout containerd's own unpacker produces.

use std::collections::HashMap;

use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::ApplyRequest;
use containerd_client::types::Descriptor;
use sha2::{Digest, Sha256};
use tonic::Code;

use super::content::{unique, Lease};
use super::{Containerd, Result, RuntimeError};

/// The chain id of the top layer: `chain(0) = diff_id(0)`,
/// `chain(n) = sha256(chain(n-1) + " " + diff_id(n))`. `None` for an image with no layers.
#[must_use]
pub fn chain_id(diff_ids: &[String]) -> Option<String> {
    chain_ids(diff_ids).pop()
}

/// The chain id of every layer, bottom first.
pub(super) fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chains.last() {
            None => diff_id.clone(),
            Some(parent) => {
                let hash = Sha256::digest(format!("{parent} {diff_id}").as_bytes());
                format!("sha256:{}", hex::encode(hash))
            }
        };
        chains.push(next);
    }
    chains
}

impl Containerd {
    pub(super) fn snapshots(&self) -> SnapshotsClient<tonic::transport::Channel> {
        SnapshotsClient::new(self.channel.clone())
    }

    pub(super) async fn snapshot_exists(&self, key: &str) -> Result<bool> {
        match self
            .snapshots()
            .stat(self.request(StatSnapshotRequest {
                snapshotter: self.config.snapshotter.clone(),
                key: key.to_owned(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(RuntimeError::containerd("snapshots.stat", key, s)),
        }
    }

    /// Index of the lowest layer whose snapshot is missing (`diff_ids.len()` when the whole
    /// image is unpacked). Searches from the top, since a snapshot implies its parents.
    pub(super) async fn first_missing_layer(&self, diff_ids: &[String]) -> Result<usize> {
        let chains = chain_ids(diff_ids);
        for (i, chain) in chains.iter().enumerate().rev() {
            if self.snapshot_exists(chain).await? {
                return Ok(i + 1);
            }
        }
        Ok(0)
    }

    /// Applies `layers[from..]` on top of the snapshot of `layers[from - 1]`. A layer someone
    /// else commits concurrently is taken as done.
    pub(super) async fn unpack(
        &self,
        lease: &Lease,
        reference: &str,
        layers: &[Descriptor],
        diff_ids: &[String],
        from: usize,
    ) -> Result<()> {
        let chains = chain_ids(diff_ids);
        for i in from..layers.len() {
            let parent = if i == 0 {
                String::new()
            } else {
                chains[i - 1].clone()
            };
            self.unpack_layer(
                lease,
                reference,
                &layers[i],
                &diff_ids[i],
                &chains[i],
                parent,
            )
            .await?;
        }
        Ok(())
    }

    async fn unpack_layer(
        &self,
        lease: &Lease,
        reference: &str,
        layer: &Descriptor,
        diff_id: &str,
        chain: &str,
        parent: String,
    ) -> Result<()> {
        let snapshotter = self.config.snapshotter.clone();
        // containerd's unpacker uses this key shape too; the space keeps it from ever
        // colliding with a container id.
        let key = format!("extract-{} {chain}", unique());
        let mounts = self
            .snapshots()
            .prepare(self.leased(
                PrepareSnapshotRequest {
                    snapshotter: snapshotter.clone(),
                    key: key.clone(),
                    parent,
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await
            .map_err(|s| RuntimeError::containerd("snapshots.prepare", &key, s))?
            .into_inner()
            .mounts;

        let applied = DiffClient::new(self.channel.clone())
            .apply(self.leased(
                ApplyRequest {
                    diff: Some(layer.clone()),
                    mounts,
                    payloads: HashMap::new(),
                    sync_fs: false,
                },
                lease,
            ))
            .await;
        let applied = match applied {
            Ok(response) => response.into_inner().applied.map(|d| d.digest),
            Err(status) => {
                self.remove_snapshot_quietly(&key).await;
                return Err(RuntimeError::Pull {
                    reference: reference.to_owned(),
                    message: format!("applying layer {}: {}", layer.digest, status.message()),
                });
            }
        };
        if applied.as_deref() != Some(diff_id) {
            self.remove_snapshot_quietly(&key).await;
            return Err(RuntimeError::Pull {
                reference: reference.to_owned(),
                message: format!(
                    "layer {} unpacked to {}, but the image config says {diff_id}",
                    layer.digest,
                    applied.unwrap_or_default()
                ),
            });
        }

        let committed = self
            .snapshots()
            .commit(self.leased(
                CommitSnapshotRequest {
                    snapshotter,
                    name: chain.to_owned(),
                    key: key.clone(),
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await;
        match committed {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => {
                self.remove_snapshot_quietly(&key).await;
                Ok(())
            }
            Err(s) => {
                self.remove_snapshot_quietly(&key).await;
                Err(RuntimeError::containerd("snapshots.commit", chain, s))
            }
        }
    }

    pub(super) async fn remove_snapshot(&self, key: &str) -> Result<()> {
        match self
            .snapshots()
            .remove(self.request(RemoveSnapshotRequest {
                snapshotter: self.config.snapshotter.clone(),
                key: key.to_owned(),
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(RuntimeError::containerd("snapshots.remove", key, s)),
        }
    }

    pub(super) async fn remove_snapshot_quietly(&self, key: &str) {
        if let Err(e) = self.remove_snapshot(key).await {
            tracing::warn!(snapshot = key, error = %e, "cannot remove snapshot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_of_one_layer_is_its_diff_id() {
        assert_eq!(
            chain_id(&["sha256:aa".to_owned()]).as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(chain_id(&[]), None);
    }

    #[test]
    fn chain_id_hashes_parent_space_diff_id() {
        let a = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
        let b = "sha256:e9a29ba8b5bbad7cb1ba8b6a6b5e0e5c3b8a7b8bd0d9f6b9ae9de1bdbe4f5e02";
        let expected = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()))
        );
        let ids = [a.to_owned(), b.to_owned()];
        assert_eq!(chain_id(&ids), Some(expected.clone()));
        let c = "sha256:cc".to_owned();
        let third = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{expected} {c}").as_bytes()))
        );
        assert_eq!(
            chain_ids(&[a.to_owned(), b.to_owned(), c]),
            [a.to_owned(), expected, third]
        );
    }
}
