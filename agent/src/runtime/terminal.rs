//! A command on a pseudo-terminal inside a running container (ECS Exec): containerd's
//! Exec with `terminal`, its shim owning the terminal and copying it to and from two
//! FIFOs the agent holds; `ResizePty` for window changes; Wait, Kill and `DeleteProcess`.

use std::path::Path;

use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, KillRequest, ResizePtyRequest, StartRequest,
    WaitRequest,
};

use super::exec::{exec_process, process_any};
use super::{Containerd, Result, RuntimeError};

const SIGKILL: u32 = 9;

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
        let process = terminal_process(&spec, args);
        let mut tasks = self.tasks();
        tasks
            .exec(self.request(ExecProcessRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                spec: Some(process_any(&process)),
                terminal: true,
                stdin: stdin.display().to_string(),
                stdout: stdout.display().to_string(),
                ..Default::default()
            }))
            .await
            .map_err(|s| RuntimeError::from_status("tasks.exec", "task", id, s))?;
        let started = tasks
            .start(self.request(StartRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
            }))
            .await;
        if let Err(s) = started {
            self.do_end_exec(id, exec_id).await;
            return Err(RuntimeError::Start {
                container: id.to_owned(),
                message: s.message().to_owned(),
            });
        }
        Ok(())
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

    pub(super) async fn do_wait_exec(&self, id: &str, exec_id: &str) -> Result<u32> {
        let resp = self
            .tasks()
            .wait(self.request(WaitRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
            }))
            .await
            .map_err(|s| RuntimeError::from_status("tasks.wait", "process", exec_id, s))?;
        Ok(resp.into_inner().exit_status)
    }

    pub(super) async fn do_kill_exec(&self, id: &str, exec_id: &str) -> Result<()> {
        self.tasks()
            .kill(self.request(KillRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                signal: SIGKILL,
                all: false,
            }))
            .await
            .map_err(|s| RuntimeError::from_status("tasks.kill", "process", exec_id, s))?;
        Ok(())
    }

    /// Kills the exec if it still runs and deletes its record. containerd's delete waits
    /// until the shim has copied all of the terminal's output to the FIFO.
    pub(super) async fn do_end_exec(&self, id: &str, exec_id: &str) {
        let _ = self.do_kill_exec(id, exec_id).await;
        let _ = self
            .tasks()
            .delete_process(self.request(DeleteProcessRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
            }))
            .await;
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
