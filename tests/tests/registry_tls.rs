//! End to end: an image on an HTTPS registry behind a private CA, trusted
//! through the agent's system CA store (here `SSL_CERT_FILE`, which the
//! system store honours, so the host's own /etc/ssl stays untouched).

#[path = "../../agent/tests/common/auth_registry.rs"]
mod auth_registry;

use std::time::Duration;

use anyhow::Result;
use auth_registry::{AuthRegistry, TestCa, PASSWORD, USER};
use berth_e2e::Berth;
use serde_json::json;

#[test]
fn a_task_pulls_from_an_https_registry_its_host_trusts() -> Result<()> {
    let certs = tempfile::tempdir()?;
    let ca = TestCa::make(certs.path());
    let registry = AuthRegistry::start_tls(&ca);
    let ca_file = ca.ca.display().to_string();
    let login = format!("{}={USER}:{PASSWORD}", registry.host);
    let b = Berth::start_with_agent(&["--registry-auth", &login], &[("SSL_CERT_FILE", &ca_file)])?;
    let r = (|| {
        registry.push(&b.demo_image, "tls/demo:1", "oci");
        let image = format!("{}/tls/demo:1", registry.host);
        b.register_task_definition(&json!({
            "family": "tls",
            "containerDefinitions": [{"name": "app", "image": image, "memory": 32,
                "entryPoint": ["/bin/sh", "-c"], "command": ["echo pulled over tls"]}]
        }))?;
        let arn = b.run_task("tls")?;
        let t = b.wait_stopped(&arn, Duration::from_secs(60))?;
        assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
        let log = std::fs::read_to_string(b.container_log(&arn, "app"))?;
        assert!(log.contains("pulled over tls"), "{log}");
        Ok(())
    })();
    if r.is_err() {
        b.dump_logs();
    }
    r
}
