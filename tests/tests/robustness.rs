//! Hostile input at the API: over-limit, deeply nested, invalid UTF-8 and mistyped
//! bodies get AWS-style errors (or HTTP 413 for the over-limit one) without harming the
//! control plane, and 10,000 connections that never start their TLS handshake (slowloris)
//! neither keep signed calls from being answered nor stay open past the handshake limit. The figures are printed for the notes.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use berth_e2e::Berth;
use serde_json::Value;

#[test]
fn the_api_survives_malformed_input_and_idle_connections() -> Result<()> {
    let b = Berth::start()?;
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/robustness.py"))
        .arg("10000")
        .env("HOME", b.dir.path())
        .envs(b.aws_env()?)
        .output()
        .context("running python3")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_str(stdout.trim()).with_context(|| stdout.to_string())?;
    eprintln!("robustness figures: {s}");
    let case = |name: &str| {
        (
            s["cases"][name]["status"].as_u64(),
            s["cases"][name]["code"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(case("oversized").0, Some(413), "{s}");
    for (name, code) in [
        ("deep_json", "SerializationException"),
        ("invalid_utf8", "SerializationException"),
        ("not_json", "SerializationException"),
        ("unknown_target", "UnknownOperationException"),
    ] {
        assert_eq!(
            case(name),
            (Some(400), Some(code.to_owned())),
            "{name}: {s}"
        );
    }
    // Read as the JSON its target says it is (as AWS's JSON services read
    // `application/json`): answered, not a failure of the server.
    let wrong = case("wrong_content_type").0.unwrap_or(0);
    assert!((200..500).contains(&wrong), "{s}");
    assert_eq!(
        s["idle_closed_by_server"], 10000,
        "the server drops every connection that never handshakes: {s}"
    );
    assert_eq!(s["during"]["n"], 200, "{s}");
    assert_eq!(s["after"]["n"], 50, "{s}");
    b.aws(&["ecs", "list-clusters"])
        .context("the control plane still answers")?;
    Ok(())
}
