//! Unused image cleanup: a periodic pass removing the images of this agent's namespace that
//! no container uses, once they have gone unused past an age, or sooner when the filesystem
//! under containerd's root fills past a threshold. The decision is `images_to_remove`, a
//! plain function over the image list, the in-use set, the clock and the disk usage.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{
    DeleteImageRequest, ListContainersRequest, ListImagesRequest,
};
use tonic::Code;

use super::{Containerd, Result, RuntimeError};

/// When images are removed. See the module docs.
#[derive(Debug, Clone)]
pub struct ImageCleanupPolicy {
    /// Time between passes.
    pub interval: Duration,
    /// An image unused (not pulled, no container) for this long is removed.
    pub max_age: Duration,
    /// At or above this share of the filesystem used (percent), unused images are removed
    /// oldest first whatever `max_age` says; 100 or more never.
    pub disk_threshold_percent: u8,
    /// Even under disk pressure an image pulled or used this recently stays: its task may
    /// be about to create the container.
    pub min_age: Duration,
    /// containerd's root directory: its filesystem is the one watched.
    pub containerd_root: PathBuf,
}

impl ImageCleanupPolicy {
    /// ECS's defaults: one pass every 3 hours, images unused for an hour go.
    #[must_use]
    pub fn new(containerd_root: impl Into<PathBuf>) -> Self {
        Self {
            interval: Duration::from_secs(3 * 3600),
            max_age: Duration::from_secs(3600),
            disk_threshold_percent: 90,
            min_age: Duration::from_secs(120),
            containerd_root: containerd_root.into(),
        }
    }
}

/// An image record and when it was last pulled or used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub name: String,
    pub last_used: SystemTime,
}

/// A filesystem's size and free space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

impl DiskUsage {
    #[must_use]
    pub fn used_percent(self) -> u64 {
        if self.total_bytes == 0 {
            return 0;
        }
        let used = self.total_bytes.saturating_sub(self.available_bytes);
        u64::try_from(u128::from(used) * 100 / u128::from(self.total_bytes)).unwrap_or(100)
    }
}

/// The names of the images to remove, oldest first: those no container uses, unused for
/// `max_age`, or for `min_age` when the disk is at its threshold. An unknown disk usage
/// (`None`) counts as no pressure.
#[must_use]
pub fn images_to_remove<H: std::hash::BuildHasher>(
    images: &[StoredImage],
    in_use: &HashSet<String, H>,
    now: SystemTime,
    disk: Option<DiskUsage>,
    policy: &ImageCleanupPolicy,
) -> Vec<String> {
    let pressure =
        disk.is_some_and(|d| d.used_percent() >= u64::from(policy.disk_threshold_percent));
    // Disk pressure only ever makes cleanup more eager.
    let min_age = if pressure {
        policy.min_age.min(policy.max_age)
    } else {
        policy.max_age
    };
    let mut unused: Vec<&StoredImage> = images
        .iter()
        .filter(|i| !in_use.contains(&i.name))
        .filter(|i| now.duration_since(i.last_used).unwrap_or_default() >= min_age)
        .collect();
    unused.sort_by(|a, b| a.last_used.cmp(&b.last_used).then(a.name.cmp(&b.name)));
    unused.into_iter().map(|i| i.name.clone()).collect()
}

/// Size and free space (for unprivileged users, as `df` shows) of the filesystem of `path`.
///
/// # Errors
/// When `statvfs` fails, e.g. the path does not exist.
pub fn disk_usage(path: &Path) -> std::io::Result<DiskUsage> {
    let stat = nix::sys::statvfs::statvfs(path)?;
    let block = stat.fragment_size();
    Ok(DiskUsage {
        total_bytes: stat.blocks().saturating_mul(block),
        available_bytes: stat.blocks_available().saturating_mul(block),
    })
}

fn system_time(timestamp: Option<&prost_types::Timestamp>) -> SystemTime {
    timestamp
        .and_then(|t| {
            let secs = u64::try_from(t.seconds).ok()?;
            let nanos = u32::try_from(t.nanos).ok()?;
            Some(UNIX_EPOCH + Duration::new(secs, nanos))
        })
        .unwrap_or(UNIX_EPOCH)
}

impl Containerd {
    /// This namespace's images, each with the later of its record's last update (its last
    /// pull) and its last pull or use seen by this process.
    pub async fn list_images(&self) -> Result<Vec<StoredImage>> {
        let records = ImagesClient::new(self.channel.clone())
            .list(self.request(ListImagesRequest { filters: vec![] }))
            .await
            .map_err(|s| RuntimeError::containerd("images.list", "", s))?
            .into_inner()
            .images;
        let last_used = self.last_used.lock().expect("last-used map poisoned");
        Ok(records
            .into_iter()
            .map(|r| {
                let updated = system_time(r.updated_at.as_ref());
                let seen = last_used.get(&r.name).copied().unwrap_or(UNIX_EPOCH);
                StoredImage {
                    last_used: updated.max(seen),
                    name: r.name,
                }
            })
            .collect())
    }

    /// The image names the containers of this namespace were created from.
    pub async fn images_in_use(&self) -> Result<HashSet<String>> {
        let containers = self
            .containers()
            .list(self.request(ListContainersRequest { filters: vec![] }))
            .await
            .map_err(|s| RuntimeError::containerd("containers.list", "", s))?
            .into_inner()
            .containers;
        Ok(containers.into_iter().map(|c| c.image).collect())
    }

    /// One cleanup pass at `now`; returns the names removed. Removal waits for containerd's
    /// GC, so the space is free when this returns.
    pub async fn remove_unused_images(
        &self,
        policy: &ImageCleanupPolicy,
        now: SystemTime,
    ) -> Result<Vec<String>> {
        let in_use = self.images_in_use().await?;
        for name in &in_use {
            self.mark_used(name);
        }
        let images = self.list_images().await?;
        let disk = match disk_usage(&policy.containerd_root) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(root = %policy.containerd_root.display(), error = %e, "cannot read disk usage; cleaning up by age only");
                None
            }
        };
        let doomed = images_to_remove(&images, &in_use, now, disk, policy);
        let mut removed = Vec::with_capacity(doomed.len());
        for name in doomed {
            match ImagesClient::new(self.channel.clone())
                .delete(self.request(DeleteImageRequest {
                    name: name.clone(),
                    sync: true,
                    target: None,
                }))
                .await
            {
                Ok(_) => {}
                Err(s) if s.code() == Code::NotFound => {}
                Err(s) => return Err(RuntimeError::containerd("images.delete", name, s)),
            }
            self.last_used
                .lock()
                .expect("last-used map poisoned")
                .remove(&name);
            tracing::info!(image = %name, "removed unused image");
            removed.push(name);
        }
        Ok(removed)
    }

    /// Runs a cleanup pass every `policy.interval`, forever; a failed pass is logged and
    /// the next one tried.
    pub async fn run_image_cleanup(&self, policy: ImageCleanupPolicy) {
        let mut ticker = tokio::time::interval(policy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once: skip it, so a restarting agent adopts its
        // containers before anything is judged unused.
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(e) = self.remove_unused_images(&policy, SystemTime::now()).await {
                tracing::warn!(error = %e, "image cleanup pass failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn policy() -> ImageCleanupPolicy {
        ImageCleanupPolicy {
            interval: HOUR,
            max_age: HOUR,
            disk_threshold_percent: 90,
            min_age: Duration::from_secs(120),
            containerd_root: PathBuf::from("/var/lib/containerd"),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn image(name: &str, last_used_secs: u64) -> StoredImage {
        StoredImage {
            name: name.into(),
            last_used: at(last_used_secs),
        }
    }

    #[allow(clippy::unnecessary_wraps)] // reads better at the call sites beside `None`
    fn disk(used_percent: u64) -> Option<DiskUsage> {
        Some(DiskUsage {
            total_bytes: 1000,
            available_bytes: 1000 - used_percent * 10,
        })
    }

    #[test]
    fn removes_unused_images_past_max_age_oldest_first() {
        let now = at(10 * 3600);
        let images = [
            image("recent", 10 * 3600 - 60),
            image("old", 3600),
            image("older", 0),
            image("old-but-used", 0),
        ];
        let in_use = HashSet::from(["old-but-used".to_owned()]);
        assert_eq!(
            images_to_remove(&images, &in_use, now, disk(50), &policy()),
            ["older", "old"]
        );
    }

    #[test]
    fn disk_pressure_removes_younger_images_but_not_fresh_ones() {
        let now = at(10 * 3600);
        let images = [
            image("ten-minutes", 10 * 3600 - 600),
            image("just-pulled", 10 * 3600 - 10),
            image("used", 0),
        ];
        let in_use = HashSet::from(["used".to_owned()]);
        assert!(images_to_remove(&images, &in_use, now, disk(89), &policy()).is_empty());
        assert_eq!(
            images_to_remove(&images, &in_use, now, disk(90), &policy()),
            ["ten-minutes"]
        );
        // Unknown usage: age only.
        assert!(images_to_remove(&images, &in_use, now, None, &policy()).is_empty());
        // A max age below the pressure grace still applies under pressure.
        let mut eager = policy();
        eager.max_age = Duration::ZERO;
        assert_eq!(
            images_to_remove(&images, &in_use, now, disk(95), &eager),
            ["ten-minutes", "just-pulled"]
        );
    }

    #[test]
    fn a_clock_behind_the_record_keeps_the_image() {
        let images = [image("future", 100)];
        assert!(images_to_remove(&images, &HashSet::new(), at(50), disk(99), &policy()).is_empty());
    }

    #[test]
    fn used_percent_rounds_down_and_survives_empty_filesystems() {
        let d = DiskUsage {
            total_bytes: 3,
            available_bytes: 1,
        };
        assert_eq!(d.used_percent(), 66);
        let empty = DiskUsage {
            total_bytes: 0,
            available_bytes: 0,
        };
        assert_eq!(empty.used_percent(), 0);
    }

    #[test]
    fn reads_the_disk_usage_of_a_real_filesystem() {
        let d = disk_usage(Path::new("/")).unwrap();
        assert!(
            d.total_bytes > 0 && d.available_bytes <= d.total_bytes,
            "{d:?}"
        );
        assert!(disk_usage(Path::new("/no/such/dir")).is_err());
    }
}
