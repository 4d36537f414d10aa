//! What the privileged runtime and image tests share: the test environment
//! from `scripts/test-env.sh`, unique containerd namespaces, and their removal.

#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::{
    DeleteImageRequest, DeleteNamespaceRequest, ListImagesRequest,
};
use containerd_client::with_namespace;
use tonic::Request;

pub struct TestEnv {
    pub socket: PathBuf,
    pub registry: String,
    pub image: String,
}

/// The environment `scripts/test-env.sh` writes; panics (never skips) without it.
pub fn test_env() -> TestEnv {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set. These tests need root, a containerd and a registry with the \
                 demo image: run `scripts/test-env.sh start DIR` and `set -a; . DIR/env; set +a`"
            )
        })
    };
    let env = TestEnv {
        socket: var("BERTH_CONTAINERD_SOCK").into(),
        registry: var("BERTH_REGISTRY"),
        image: var("BERTH_DEMO_IMAGE"),
    };
    assert!(
        env.socket.exists(),
        "BERTH_CONTAINERD_SOCK={} does not exist; is the test environment running?",
        env.socket.display()
    );
    env
}

/// A containerd namespace no other test (or test run) uses.
pub fn unique_namespace(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes every image (synchronously, so the GC empties the namespace), then the namespace.
pub async fn remove_namespace(socket: &Path, namespace: &str) {
    let Ok(channel) = containerd_client::connect(socket).await else {
        return;
    };
    let images = ImagesClient::new(channel.clone())
        .list(with_namespace!(
            ListImagesRequest { filters: vec![] },
            namespace
        ))
        .await
        .map(|r| r.into_inner().images)
        .unwrap_or_default();
    for image in images {
        let _ = ImagesClient::new(channel.clone())
            .delete(with_namespace!(
                DeleteImageRequest {
                    name: image.name,
                    sync: true,
                    target: None
                },
                namespace
            ))
            .await;
    }
    if let Err(status) = NamespacesClient::new(channel)
        .delete(Request::new(DeleteNamespaceRequest {
            name: namespace.to_owned(),
        }))
        .await
    {
        eprintln!("cleanup: namespace {namespace} stays: {}", status.message());
    }
}
