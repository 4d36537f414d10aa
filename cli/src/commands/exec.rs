//! `berth exec`: a command in a task's container through ECS Exec (`ExecuteCommand` and
//! its data channel), for hosts without the aws CLI. Exits with the command's status.

use anyhow::{Context, Result};
use serde_json::json;

use crate::args::ExecArgs;
use crate::client::EcsClient;
use berth_cli::exec_session::{attach, SessionInfo};

/// The command's exit status (1 when the session ended without one).
pub async fn run(client: &EcsClient, a: &ExecArgs) -> Result<i32> {
    let command = shlex::try_join(a.command.iter().map(String::as_str))
        .context("a command word holds a NUL byte")?;
    let mut input = json!({
        "cluster": a.cluster,
        "task": a.task,
        "command": command,
        "interactive": true,
    });
    if let Some(c) = &a.container {
        input["container"] = json!(c);
    }
    let out = client.call("ExecuteCommand", &input).await?;
    let session = SessionInfo::from_json(&out["session"])?;
    let end = attach(&session, client.ca_bundle()).await?;
    if !end.output.is_empty() {
        eprintln!("berth: {}", end.output);
    }
    Ok(end.exit_code.unwrap_or(1))
}
