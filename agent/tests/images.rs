//! Privileged tests of image pulls against real registries: credentials, mirrors, pull
//! behaviours and unused-image cleanup.
//!
//! Needs root and the environment written by `scripts/test-env.sh start DIR`
//! (`set -a; . DIR/env; set +a`): `BERTH_CONTAINERD_SOCK`, `BERTH_REGISTRY`,
//! `BERTH_DEMO_IMAGE`. Each test starts its own second docker-registry on loopback with
//! htpasswd auth (`htpasswd` from apache2-utils), pushes the demo image to it with skopeo,
//! and works in its own containerd namespace; both go on drop.

#[path = "common/auth_registry.rs"]
mod auth_registry;
mod common;

use auth_registry::{run, AuthRegistry, TestCa, PASSWORD, USER};
use common::{remove_namespace, test_env, unique_namespace, TestEnv};

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use berth_agent::runtime::{
    ContainerRuntime, ContainerSpec, Containerd, ImageCleanupPolicy, ImagePullBehavior,
    RegistryCredentials, RuntimeConfig, RuntimeError,
};

const ECR: &str = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com";

/// A containerd namespace and an auth registry holding the demo image as `berth/demo:latest`;
/// dropping it removes the namespace's containers and images, then the namespace.
struct Fixture {
    env: TestEnv,
    registry: AuthRegistry,
    namespace: String,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let env = test_env();
        let registry = AuthRegistry::start();
        registry.push(&env.image, "berth/demo:latest", "oci");
        Self {
            env,
            registry,
            namespace: unique_namespace("img"),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A runtime config for our namespace that may use plain http to the auth registry.
    fn config(&self) -> RuntimeConfig {
        let mut config = RuntimeConfig::new(&self.env.socket, &self.namespace);
        config.insecure_registries = vec![self.registry.host.clone()];
        config
    }

    fn with_login(&self, password: &str) -> RuntimeConfig {
        let mut config = self.config();
        config.registry_auth = HashMap::from([(
            self.registry.host.clone(),
            RegistryCredentials {
                username: USER.into(),
                password: password.into(),
            },
        )]);
        config
    }

    async fn runtime(config: RuntimeConfig) -> Containerd {
        Containerd::connect(config)
            .await
            .expect("connect to containerd")
    }

    fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host)
    }

    /// `ctr images ls -q` in our namespace.
    fn ctr_images(&self) -> Vec<String> {
        run(Command::new("ctr").args([
            "--address",
            &self.env.socket.display().to_string(),
            "-n",
            &self.namespace,
            "images",
            "ls",
            "-q",
        ]))
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let config = self.config();
        let socket = self.env.socket.clone();
        let namespace = self.namespace.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok(runtime) = Containerd::connect(config).await else {
                    return;
                };
                for id in runtime.list_containers().await.unwrap_or_default() {
                    let _ = runtime.kill(&id, 9, true).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), runtime.wait(&id)).await;
                    if let Err(e) = runtime.delete(&id).await {
                        eprintln!("cleanup: cannot delete container {id}: {e}");
                    }
                }
                remove_namespace(&socket, &namespace).await;
            });
        });
        let _ = cleanup.join();
    }
}

fn pull_message(result: Result<berth_agent::runtime::Image, RuntimeError>) -> String {
    match result {
        Err(RuntimeError::Pull { message, .. }) => message,
        other => panic!("expected a Pull error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_with_the_right_credentials_works() {
    let f = Fixture::new();
    let rt = Fixture::runtime(f.with_login(PASSWORD)).await;
    let reference = f.image("berth/demo:latest");
    let image = rt.pull_image(&reference).await.expect("authenticated pull");
    assert_eq!(image.reference, reference);
    assert!(image.chain_id.starts_with("sha256:"));
    assert!(!image.config.cmd.is_empty());
    assert_eq!(f.ctr_images(), [reference]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_credentials_are_refused() {
    let f = Fixture::new();
    let reference = f.image("berth/demo:latest");
    let wrong = Fixture::runtime(f.with_login("wrong")).await;
    let message = pull_message(wrong.pull_image(&reference).await);
    eprintln!("wrong credentials: {message}");
    assert!(
        message.contains("401") && message.contains("unauthorized"),
        "{message}"
    );
    let anonymous = Fixture::runtime(f.config()).await;
    let message = pull_message(anonymous.pull_image(&reference).await);
    assert!(message.contains("401"), "{message}");
    assert!(f.ctr_images().is_empty(), "nothing half-registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_serves_an_ecr_name_which_the_image_keeps() {
    let f = Fixture::new();
    f.registry.push(&f.env.image, "my-app:v1", "oci");
    let mut config = f.with_login(PASSWORD);
    config.registry_mirrors = HashMap::from([(ECR.to_owned(), f.registry.host.clone())]);
    let rt = Fixture::runtime(config).await;
    let reference = format!("{ECR}/my-app:v1");
    let image = rt
        .pull_image(&reference)
        .await
        .expect("pull through the mirror");
    assert_eq!(image.reference, reference);
    assert_eq!(f.ctr_images(), std::slice::from_ref(&reference));

    // Without the mirror the name points at the real ECR host, which this test must not
    // contact: a runtime with no mirror but the image cached (`once`) never tries.
    let mut cached = f.config();
    cached.pull_behavior = ImagePullBehavior::Once;
    let local = Fixture::runtime(cached).await;
    assert_eq!(local.pull_image(&reference).await.unwrap(), image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reference_and_missing_tag_are_pull_errors() {
    let f = Fixture::new();
    let rt = Fixture::runtime(f.with_login(PASSWORD)).await;
    let message = pull_message(rt.pull_image("Bad//Reference::x").await);
    assert!(message.contains("invalid image reference"), "{message}");
    let message = pull_message(rt.pull_image(&f.image("berth/demo:no-such-tag")).await);
    assert!(message.contains("manifest unknown"), "{message}");
    let message = pull_message(rt.pull_image(&f.image("berth/no-such-repo:latest")).await);
    assert!(message.contains("unknown"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_behaviors_decide_when_the_registry_is_asked() {
    let f = Fixture::new();
    let reference = f.image("berth/moving:1");
    // The same content as OCI and as Docker schema 2: two manifests, two digests.
    f.registry.push(&f.env.image, "berth/moving:1", "oci");
    let runtime = |behavior: ImagePullBehavior, password: &str| {
        let mut config = f.with_login(password);
        config.pull_behavior = behavior;
        Fixture::runtime(config)
    };
    let first = runtime(ImagePullBehavior::Always, PASSWORD)
        .await
        .pull_image(&reference)
        .await
        .unwrap();
    f.registry.push(&f.env.image, "berth/moving:1", "v2s2");

    // once and prefer-cached keep the cached image, even with bad credentials.
    for behavior in [ImagePullBehavior::Once, ImagePullBehavior::PreferCached] {
        let image = runtime(behavior, "wrong")
            .await
            .pull_image(&reference)
            .await;
        assert_eq!(image.unwrap(), first, "{behavior:?}");
    }
    // default falls back to the cache when the registry refuses; always does not.
    let fallback = runtime(ImagePullBehavior::Default, "wrong")
        .await
        .pull_image(&reference)
        .await;
    assert_eq!(fallback.unwrap(), first);
    let message = pull_message(
        runtime(ImagePullBehavior::Always, "wrong")
            .await
            .pull_image(&reference)
            .await,
    );
    assert!(message.contains("401"), "{message}");
    // default asks the registry, so it follows the moved tag.
    let moved = runtime(ImagePullBehavior::Default, PASSWORD)
        .await
        .pull_image(&reference)
        .await
        .unwrap();
    assert_ne!(moved.manifest_digest, first.manifest_digest);
    assert_eq!(moved.chain_id, first.chain_id, "same layers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_only_unused_images() {
    let f = Fixture::new();
    f.registry.push(&f.env.image, "berth/demo:v2", "oci");
    let rt = Fixture::runtime(f.with_login(PASSWORD)).await;
    let used = rt.pull_image(&f.image("berth/demo:latest")).await.unwrap();
    let unused = f.image("berth/demo:v2");
    rt.pull_image(&unused).await.unwrap();
    let id = format!("{}-user", f.namespace);
    rt.create_container(&ContainerSpec {
        id: id.clone(),
        image: used.clone(),
        args: vec!["/bin/true".into()],
        cgroups_path: format!("/berth-test-{id}"),
        log_path: f.dir.path().join("user.log"),
        ..ContainerSpec::default()
    })
    .await
    .expect("create a container using the image");

    let mut policy = ImageCleanupPolicy::new(f.dir.path());
    policy.max_age = Duration::ZERO;
    let later = SystemTime::now() + Duration::from_secs(1);
    // A max age not yet reached keeps everything.
    let mut patient = policy.clone();
    patient.max_age = Duration::from_secs(3600);
    assert!(rt
        .remove_unused_images(&patient, later)
        .await
        .unwrap()
        .is_empty());

    let removed = rt.remove_unused_images(&policy, later).await.unwrap();
    assert_eq!(removed, std::slice::from_ref(&unused));
    assert_eq!(f.ctr_images(), std::slice::from_ref(&used.reference));

    rt.delete(&id).await.unwrap();
    let removed = rt.remove_unused_images(&policy, later).await.unwrap();
    assert_eq!(removed, [used.reference]);
    assert!(f.ctr_images().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_layers_pull_and_unpack_to_the_same_snapshots() {
    let f = Fixture::new();
    // A registry of its own: skopeo reuses a gzip blob the destination already
    // has instead of compressing with zstd (the manifest check below saw it).
    let zstd_registry = AuthRegistry::start();
    zstd_registry.push_zstd(&f.env.image, "berth/demo:zstd");
    let manifest: serde_json::Value =
        serde_json::from_str(&zstd_registry.manifest("berth/demo:zstd")).expect("manifest JSON");
    let layers = manifest["layers"].as_array().expect("layers");
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{manifest}"
        );
    }
    let mut config = f.with_login(PASSWORD);
    config.insecure_registries.push(zstd_registry.host.clone());
    let login = config.registry_auth[&f.registry.host].clone();
    config
        .registry_auth
        .insert(zstd_registry.host.clone(), login);
    let rt = Fixture::runtime(config).await;
    // Unpacking checks each layer's uncompressed digest against the image config.
    let zstd = rt
        .pull_image(&format!("{}/berth/demo:zstd", zstd_registry.host))
        .await
        .expect("pull of zstd layers");
    let gzip = rt.pull_image(&f.image("berth/demo:latest")).await.unwrap();
    assert_ne!(zstd.manifest_digest, gzip.manifest_digest);
    assert_eq!(zstd.chain_id, gzip.chain_id, "same layers, same snapshots");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registries_are_verified_against_the_trusted_cas() {
    let f = Fixture::new();
    let certs = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::make(certs.path());
    let registry = AuthRegistry::start_tls(&ca);
    registry.push(&f.env.image, "berth/demo:tls", "oci");
    let reference = format!("{}/berth/demo:tls", registry.host);
    let mut config = f.config();
    config.registry_auth = HashMap::from([(
        registry.host.clone(),
        RegistryCredentials {
            username: USER.into(),
            password: PASSWORD.into(),
        },
    )]);
    // Signed by a CA nobody trusts: refused, saying why.
    let untrusted = Fixture::runtime(config.clone()).await;
    let message = pull_message(untrusted.pull_image(&reference).await);
    eprintln!("untrusted CA: {message}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert!(f.ctr_images().is_empty(), "nothing half-registered");
    // With the CA configured (--registry-ca), the same pull works over verified TLS.
    config.registry_ca_pems = vec![std::fs::read(&ca.ca).expect("the CA")];
    let trusting = Fixture::runtime(config).await;
    let image = trusting
        .pull_image(&reference)
        .await
        .expect("pull over TLS");
    assert_eq!(f.ctr_images(), std::slice::from_ref(&image.reference));
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Pull + unpack benchmark driven by `scripts/bench-pull.sh`, which builds and pushes the
/// image named by `BERTH_BENCH_IMAGE` to the plain test registry. Alternates Berth's
/// `pull_image` and `ctr images pull --plain-http`, each into a fresh namespace that is
/// emptied (GC included) afterwards, so no run finds content left by another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run through scripts/bench-pull.sh"]
async fn bench_pull() {
    let env = test_env();
    let image =
        std::env::var("BERTH_BENCH_IMAGE").expect("BERTH_BENCH_IMAGE (scripts/bench-pull.sh)");
    let registry = std::env::var("BERTH_REGISTRY").unwrap();
    let runs: usize = std::env::var("BERTH_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let socket = env.socket.display().to_string();
    let (mut berth, mut ctr) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let namespace = unique_namespace("img");
        let mut config = RuntimeConfig::new(&env.socket, &namespace);
        config.insecure_registries = vec![registry.clone()];
        let rt = Containerd::connect(config).await.unwrap();
        let started = Instant::now();
        rt.pull_image(&image).await.expect("berth pull");
        berth.push(started.elapsed());
        remove_namespace(&env.socket, &namespace).await;

        let namespace = unique_namespace("img");
        let started = Instant::now();
        run(Command::new("ctr").args([
            "--address",
            &socket,
            "-n",
            &namespace,
            "images",
            "pull",
            "--plain-http",
            &image,
        ]));
        ctr.push(started.elapsed());
        remove_namespace(&env.socket, &namespace).await;
    }
    let show = |samples: &[Duration]| {
        samples
            .iter()
            .map(|d| d.as_millis().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!(
        "berth pull+unpack: median_ms={} runs_ms=[{}]",
        median(&mut berth.clone()).as_millis(),
        show(&berth)
    );
    eprintln!(
        "ctr images pull:   median_ms={} runs_ms=[{}]",
        median(&mut ctr.clone()).as_millis(),
        show(&ctr)
    );
}

/// `USER:PASSWORD` as an HTTP basic credential.
const BASIC_LOGIN: &str = "Basic YmVydGg6czNjcmV0OnB3";
const TOKEN: &str = "tok-123";

/// A loopback registry front that speaks the token protocol: `/v2/` challenges with
/// `WWW-Authenticate: Bearer`, `/token` trades `USER:PASSWORD` (basic) for `TOKEN`, and any
/// other path answers 404 "manifest unknown" to `Bearer TOKEN` and 401 to anything else.
/// Debian's docker-registry has no token server, so this proves only the handshake.
async fn bearer_registry() -> (String, Arc<AtomicU32>, tokio::task::JoinHandle<()>) {
    use axum::http::{header, HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let tokens_issued = Arc::new(AtomicU32::new(0));
    let issued = tokens_issued.clone();
    let challenge = format!("Bearer realm=\"http://{host}/token\",service=\"berth-test\"");
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let (issued, challenge) = (issued.clone(), challenge.clone());
        async move {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let unauthorized = (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
            if uri.path() == "/token" {
                if authorization != BASIC_LOGIN {
                    return (StatusCode::UNAUTHORIZED, "bad login").into_response();
                }
                issued.fetch_add(1, Ordering::SeqCst);
                return format!(r#"{{"token":"{TOKEN}"}}"#).into_response();
            }
            if uri.path() == "/v2/" || authorization != format!("Bearer {TOKEN}") {
                return unauthorized.into_response();
            }
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            )
                .into_response()
        }
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (host, tokens_issued, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_challenge_trades_the_credentials_for_a_token() {
    let env = test_env();
    let (host, tokens_issued, server) = bearer_registry().await;
    let namespace = unique_namespace("img");
    let runtime = |password: &str| {
        let mut config = RuntimeConfig::new(&env.socket, &namespace);
        config.insecure_registries = vec![host.clone()];
        config.registry_auth = HashMap::from([(
            host.clone(),
            RegistryCredentials {
                username: USER.into(),
                password: password.into(),
            },
        )]);
        Containerd::connect(config)
    };
    let reference = format!("{host}/berth/demo:latest");
    // With the token the registry lets us in (and has no such manifest).
    let rt = runtime(PASSWORD).await.unwrap();
    let message = pull_message(rt.pull_image(&reference).await);
    assert!(message.contains("manifest unknown"), "{message}");
    assert!(tokens_issued.load(Ordering::SeqCst) >= 1);
    // A wrong password gets no token, and the registry refuses.
    let rt = runtime("wrong").await.unwrap();
    let message = pull_message(rt.pull_image(&reference).await);
    assert!(message.contains("401"), "{message}");
    server.abort();
    // The pulls' leases made the namespace.
    remove_namespace(&env.socket, &namespace).await;
}
