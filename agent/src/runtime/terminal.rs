//! A command on a pseudo-terminal inside a running container (ECS Exec): containerd's
//! Exec with `terminal`, its shim owning the terminal and copying it to and from two
//! FIFOs the agent holds; `ResizePty` for window changes. Start, wait and end are
//! `exec`'s, shared with health checks.

use std::path::Path;

use containerd_client::services::v1::{ExecProcessRequest, ResizePtyRequest};

use super::exec::exec_process;
use super::{Containerd, Result, RuntimeError};

/// The exec's process: the container's own (user, environment, working directory) with
/// `args`, on a terminal, and a `TERM` when the image sets none (as `docker exec -t` does).
pub fn terminal_process(container_spec: &serde_json::Value, args: &[String]) -> serde_json::Value {
    let mut process = exec_process(container_spec, args);
    process["terminal"] = serde_json::json!(true);
    let env = process["env"].as_array().cloned().unwrap_or_default();
    if !env
        .iter()
        .any(|e| e.as_str().is_some_and(|e| e.starts_with("TERM=")))
    {
        let mut env = env;
        env.push(serde_json::json!("TERM=xterm"));
        process["env"] = serde_json::Value::Array(env);
    }
    process
}

impl Containerd {
    pub(super) async fn do_exec_terminal(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        stdin: &Path,
        stdout: &Path,
    ) -> Result<()> {
        let spec = self.container_spec(id).await?;
        let terminal = ExecProcessRequest {
            terminal: true,
            stdin: stdin.display().to_string(),
            stdout: stdout.display().to_string(),
            ..Default::default()
        };
        self.start_exec(id, exec_id, &terminal_process(&spec, args), terminal)
            .await
    }

    pub(super) async fn do_resize_exec(
        &self,
        id: &str,
        exec_id: &str,
        cols: u32,
        rows: u32,
    ) -> Result<()> {
        self.tasks()
            .resize_pty(self.request(ResizePtyRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                width: cols,
                height: rows,
            }))
            .await
            .map_err(|s| RuntimeError::from_status("tasks.resize_pty", "process", exec_id, s))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_exec_gets_a_term_unless_the_image_sets_one() {
        let spec = serde_json::json!({"process": {"args": ["httpd"], "env": ["A=1"]}});
        let p = terminal_process(&spec, &["/bin/sh".into()]);
        assert_eq!(p["terminal"], true);
        assert_eq!(p["env"], serde_json::json!(["A=1", "TERM=xterm"]));
        let spec = serde_json::json!({"process": {"env": ["TERM=vt100"]}});
        let p = terminal_process(&spec, &["/bin/sh".into()]);
        assert_eq!(p["env"], serde_json::json!(["TERM=vt100"]));
    }
}
