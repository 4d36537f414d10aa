//! Running an extra process inside a running container: containerd's Exec, Start, Wait,
//! Kill and `DeleteProcess`, shared by health checks (with a deadline, output discarded)
//! and terminal execs (`terminal`).

use std::time::Duration;

use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, GetContainerRequest, KillRequest, StartRequest,
    WaitRequest,
};

use super::{Containerd, Result, RuntimeError};

/// How containerd knows the JSON of an exec is an OCI process spec.
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const SIGKILL: u32 = 9;
/// Where an exec's output goes: health-check output is not kept (yet).
const DISCARD: &str = "file:///dev/null";

/// An OCI process spec as containerd's Exec takes it.
pub(super) fn process_any(process: &serde_json::Value) -> prost_types::Any {
    prost_types::Any {
        type_url: PROCESS_TYPE_URL.to_owned(),
        value: serde_json::to_vec(process).expect("serializable"),
    }
}

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutcome {
    Exited(u32),
    TimedOut,
}

/// The container's own process spec with `args` swapped in: the exec runs
/// with the container's user, environment and working directory.
pub fn exec_process(container_spec: &serde_json::Value, args: &[String]) -> serde_json::Value {
    let mut process = container_spec
        .get("process")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    process["args"] = serde_json::json!(args);
    process["terminal"] = serde_json::json!(false);
    process
}

impl Containerd {
    /// The running container's own process spec, for an exec to start from.
    pub(super) async fn container_spec(&self, id: &str) -> Result<serde_json::Value> {
        let container = self
            .containers()
            .get(self.request(GetContainerRequest { id: id.to_owned() }))
            .await
            .map_err(|s| RuntimeError::from_status("containers.get", "container", id, s))?
            .into_inner()
            .container
            .ok_or_else(|| RuntimeError::NotFound {
                kind: "container",
                id: id.to_owned(),
            })?;
        Ok(container
            .spec
            .as_ref()
            .and_then(|any| serde_json::from_slice(&any.value).ok())
            .unwrap_or_default())
    }

    /// Creates exec `exec_id` running `process` in container `id`, its stdio as `stdio`
    /// says (stdin, stdout, stderr, terminal), and starts it. A start that fails leaves
    /// no process record behind.
    pub(super) async fn start_exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &serde_json::Value,
        stdio: ExecProcessRequest,
    ) -> Result<()> {
        let mut tasks = self.tasks();
        tasks
            .exec(self.request(ExecProcessRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                spec: Some(process_any(process)),
                ..stdio
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

    pub(super) async fn do_exec(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome> {
        let spec = self.container_spec(id).await?;
        let process = exec_process(&spec, args);
        // Without stdio a check that prints (wget -O-) fails on a closed fd.
        let stdio = ExecProcessRequest {
            stdout: DISCARD.to_owned(),
            stderr: DISCARD.to_owned(),
            ..Default::default()
        };
        self.start_exec(id, exec_id, &process, stdio).await?;
        // containerd keeps an exited process's status until it is deleted, so waiting
        // after the start misses nothing.
        let outcome = match tokio::time::timeout(timeout, self.do_wait_exec(id, exec_id)).await {
            Ok(status) => status.map(ExecOutcome::Exited),
            Err(_) => Ok(ExecOutcome::TimedOut),
        };
        // The process goes (killed if it still runs) whatever happened, so execs never
        // pile up.
        self.do_end_exec(id, exec_id).await;
        outcome
    }

    /// Blocks until exec `exec_id` exits; its exit status.
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

    /// Kills the exec if it still runs and deletes its record. containerd's delete waits
    /// until the shim has copied all of the process's output.
    pub(super) async fn do_end_exec(&self, id: &str, exec_id: &str) {
        let _ = self
            .tasks()
            .kill(self.request(KillRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                signal: SIGKILL,
                all: false,
            }))
            .await;
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
    fn exec_reuses_the_container_process() {
        let spec = serde_json::json!({"process": {"args": ["httpd"], "env": ["A=1"], "cwd": "/srv", "user": {"uid": 5, "gid": 6}}});
        let p = exec_process(&spec, &["/bin/sh".into(), "-c".into(), "true".into()]);
        assert_eq!(p["args"], serde_json::json!(["/bin/sh", "-c", "true"]));
        assert_eq!(p["env"], serde_json::json!(["A=1"]));
        assert_eq!(p["user"]["uid"], 5);
        assert_eq!(p["terminal"], false);
    }
}
