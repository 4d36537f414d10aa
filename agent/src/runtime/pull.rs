//! When a pull contacts the registry and when it settles for the local copy: ECS's
//! `ECS_IMAGE_PULL_BEHAVIOR`, as a function over an `ImageSource` so it is tested without
//! containerd or a registry.

use std::future::Future;
use std::str::FromStr;

use super::{Image, Result};

/// ECS's `ECS_IMAGE_PULL_BEHAVIOR`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ImagePullBehavior {
    /// Pull; if the registry fails, use the cached image when there is one.
    #[default]
    Default,
    /// Pull; a registry failure fails the pull even with a cached image.
    Always,
    /// Pull only when the image is not cached.
    Once,
    /// Use the cached image when there is one, else pull. As on ECS, the agent then runs no
    /// image cleanup, so the cache stays.
    PreferCached,
}

impl ImagePullBehavior {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Always => "always",
            Self::Once => "once",
            Self::PreferCached => "prefer-cached",
        }
    }
}

impl FromStr for ImagePullBehavior {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "default" => Ok(Self::Default),
            "always" => Ok(Self::Always),
            "once" => Ok(Self::Once),
            "prefer-cached" => Ok(Self::PreferCached),
            other => Err(format!(
                "unknown image pull behavior {other:?} (default, always, once, prefer-cached)"
            )),
        }
    }
}

/// Where images come from: the local store and the registry.
pub(super) trait ImageSource: Sync {
    /// The image if it is completely present locally (record, manifest, config, snapshot).
    fn cached(&self, reference: &str) -> impl Future<Output = Result<Option<Image>>> + Send;
    /// Fetches from the registry whatever is missing and unpacks it.
    fn fetch(&self, reference: &str) -> impl Future<Output = Result<Image>> + Send;
}

/// Pulls `reference` as `behavior` says.
pub(super) async fn pull_with_behavior<S: ImageSource>(
    source: &S,
    behavior: ImagePullBehavior,
    reference: &str,
) -> Result<Image> {
    match behavior {
        ImagePullBehavior::Once | ImagePullBehavior::PreferCached => {
            match source.cached(reference).await? {
                Some(image) => Ok(image),
                None => source.fetch(reference).await,
            }
        }
        ImagePullBehavior::Always => source.fetch(reference).await,
        ImagePullBehavior::Default => match source.fetch(reference).await {
            Ok(image) => Ok(image),
            Err(error) => match source.cached(reference).await {
                Ok(Some(image)) => {
                    tracing::warn!(image = reference, %error, "pull failed; using the cached image");
                    Ok(image)
                }
                _ => Err(error),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::RuntimeError;
    use super::*;

    /// A registry that answers or fails, and a local store that has the image or not.
    struct FakeSource {
        cached: Option<Image>,
        registry: std::result::Result<Image, String>,
        calls: Mutex<Vec<&'static str>>,
    }

    impl FakeSource {
        fn new(cached: bool, registry_up: bool) -> Self {
            let image = |digest: &str| Image {
                reference: "r/app:1".into(),
                manifest_digest: digest.into(),
                ..Image::default()
            };
            Self {
                cached: cached.then(|| image("sha256:old")),
                registry: if registry_up {
                    Ok(image("sha256:new"))
                } else {
                    Err("registry answered 503".into())
                },
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<&'static str> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl ImageSource for FakeSource {
        async fn cached(&self, _reference: &str) -> Result<Option<Image>> {
            self.calls.lock().unwrap().push("cached");
            Ok(self.cached.clone())
        }

        async fn fetch(&self, reference: &str) -> Result<Image> {
            self.calls.lock().unwrap().push("fetch");
            self.registry.clone().map_err(|message| RuntimeError::Pull {
                reference: reference.to_owned(),
                message,
            })
        }
    }

    async fn pull(
        behavior: &str,
        cached: bool,
        registry_up: bool,
    ) -> (Result<Image>, Vec<&'static str>) {
        let source = FakeSource::new(cached, registry_up);
        let result = pull_with_behavior(&source, behavior.parse().unwrap(), "r/app:1").await;
        (result, source.calls())
    }

    fn digest(result: &Result<Image>) -> &str {
        match result {
            Ok(image) => &image.manifest_digest,
            Err(RuntimeError::Pull { .. }) => "pull error",
            Err(_) => "other error",
        }
    }

    #[tokio::test]
    async fn default_pulls_and_falls_back_to_the_cache() {
        let (r, calls) = pull("default", true, true).await;
        assert_eq!((digest(&r), calls), ("sha256:new", vec!["fetch"]));
        let (r, calls) = pull("default", true, false).await;
        assert_eq!((digest(&r), calls), ("sha256:old", vec!["fetch", "cached"]));
        let (r, _) = pull("default", false, false).await;
        assert_eq!(digest(&r), "pull error");
    }

    #[tokio::test]
    async fn always_fails_with_the_registry_even_when_cached() {
        let (r, calls) = pull("always", true, true).await;
        assert_eq!((digest(&r), calls), ("sha256:new", vec!["fetch"]));
        let (r, calls) = pull("always", true, false).await;
        assert_eq!((digest(&r), calls), ("pull error", vec!["fetch"]));
    }

    #[tokio::test]
    async fn once_and_prefer_cached_skip_the_registry_when_cached() {
        for behavior in ["once", "prefer-cached"] {
            let (r, calls) = pull(behavior, true, false).await;
            assert_eq!(
                (digest(&r), calls),
                ("sha256:old", vec!["cached"]),
                "{behavior}"
            );
            let (r, calls) = pull(behavior, false, true).await;
            assert_eq!(
                (digest(&r), calls),
                ("sha256:new", vec!["cached", "fetch"]),
                "{behavior}"
            );
            let (r, _) = pull(behavior, false, false).await;
            assert_eq!(digest(&r), "pull error", "{behavior}");
        }
    }

    #[test]
    fn parses_the_ecs_names() {
        for name in ["default", "always", "once", "prefer-cached"] {
            assert_eq!(name.parse::<ImagePullBehavior>().unwrap().as_str(), name);
        }
        assert!("sometimes".parse::<ImagePullBehavior>().is_err());
    }
}
