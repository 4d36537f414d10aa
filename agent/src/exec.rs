//! ECS Exec on this host: the control plane's `ExecStart` becomes a command on a
//! pseudo-terminal in the task's container, relayed over an `Exec` stream of its own
//! (the agent's mTLS channel): terminal output up, keystrokes and resizes down, the exit
//! status last. When the stream breaks the command is killed, so no session leaves a
//! process behind in the container.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_ecs::ContainerStatus;
use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_client::AgentServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::model::TaskReport;
use crate::runtime::ContainerRuntime;

/// Terminal output is sent in pieces of at most this much.
const CHUNK: usize = 32 * 1024;
/// How long deleting a finished exec may wait for the shim to copy the terminal's output
/// (a background process that keeps the terminal open would hold it forever).
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Beside a session's FIFOs: the container it runs in.
const CONTAINER_FILE: &str = "container";
/// How long a finished session waits for the control plane to end the call.
const LINGER: Duration = Duration::from_secs(10);

/// What an `ExecStart` asks for, with the container resolved on this host.
#[derive(Debug, Clone)]
pub struct ExecTarget {
    pub session_id: String,
    /// containerd's id of the container.
    pub container_id: String,
    pub args: Vec<String>,
    pub size: Option<(u32, u32)>,
}

/// The running container `start` names among this host's tasks, or why there is none.
pub fn resolve(tasks: &[TaskReport], start: &pb::ExecStart) -> Result<ExecTarget, String> {
    let suffix = format!("/{}", start.task_id);
    let task = tasks
        .iter()
        .find(|t| t.task_arn.ends_with(&suffix))
        .ok_or_else(|| format!("task {} does not run on this host", start.task_id))?;
    let container = task
        .containers
        .iter()
        .find(|c| c.name == start.container)
        .ok_or_else(|| {
            format!(
                "task {} has no container {}",
                start.task_id, start.container
            )
        })?;
    match (&container.last_status, &container.runtime_id) {
        (ContainerStatus::Running, Some(id)) => Ok(ExecTarget {
            session_id: start.session_id.clone(),
            container_id: id.clone(),
            args: start.args.clone(),
            size: (start.cols > 0 && start.rows > 0).then_some((start.cols, start.rows)),
        }),
        (status, _) => Err(format!(
            "container {} of task {} is {status}, not RUNNING",
            start.container, start.task_id
        )),
    }
}

/// The exec id containerd knows a session's process by.
pub fn exec_id(session_id: &str) -> String {
    let tail: String = session_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("berth-exec-{tail}")
}

fn up(kind: pb::exec_up::Kind) -> pb::ExecUp {
    pb::ExecUp { kind: Some(kind) }
}

/// Serves one session: opens the `Exec` stream, runs the command, relays until it exits.
pub async fn serve<R: ContainerRuntime>(
    runtime: &R,
    mut client: AgentServiceClient<Channel>,
    target: Result<ExecTarget, String>,
    session_id: String,
    dir: PathBuf,
) {
    let (tx, rx) = mpsc::channel(16);
    let opened = |error: String| {
        up(pb::exec_up::Kind::Opened(pb::ExecOpened {
            session_id: session_id.clone(),
            error,
        }))
    };
    // The command starts first: the stream's first message says whether it did, and
    // the control plane answers the call only once it has that message.
    let io = dir.join(exec_id(&session_id));
    let started = match &target {
        Ok(t) => start(runtime, t, &io).await,
        Err(e) => Err(e.clone()),
    };
    if let Err(e) = &started {
        tracing::warn!(session = %session_id, error = %e, "could not start an exec");
    }
    let _ = tx
        .send(opened(started.as_ref().err().cloned().unwrap_or_default()))
        .await;
    let down = client
        .exec(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map(tonic::Response::into_inner);
    match (target, started, down) {
        (Ok(target), Ok((stdin, stdout)), Ok(down)) => {
            relay(runtime, &target, stdin, stdout, down, &tx).await;
        }
        (Ok(target), Ok(_), Err(status)) => {
            tracing::warn!(session = %session_id, error = %status, "could not open the exec stream; ending the command");
            end(runtime, &target).await;
        }
        _ => {}
    }
    let _ = std::fs::remove_dir_all(&io);
}

/// Makes the two FIFOs, holds both ends of each (so neither side's open blocks and a
/// read never ends early), and starts the command.
async fn start<R: ContainerRuntime>(
    runtime: &R,
    target: &ExecTarget,
    io: &Path,
) -> Result<(pipe::Sender, pipe::Receiver), String> {
    let fifo = |name: &str| -> Result<PathBuf, String> {
        let path = io.join(name);
        nix::unistd::mkfifo(
            &path,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .map_err(|e| format!("mkfifo {}: {e}", path.display()))?;
        Ok(path)
    };
    std::fs::create_dir_all(io).map_err(|e| format!("creating {}: {e}", io.display()))?;
    // For `sweep`, should this agent die before the session ends.
    std::fs::write(io.join(CONTAINER_FILE), &target.container_id)
        .map_err(|e| format!("writing {}: {e}", io.display()))?;
    let (stdin_path, stdout_path) = (fifo("stdin")?, fifo("stdout")?);
    let stdout = pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&stdout_path)
        .map_err(|e| e.to_string())?;
    let stdin = pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(&stdin_path)
        .map_err(|e| e.to_string())?;
    let exec = exec_id(&target.session_id);
    runtime
        .exec_terminal(
            &target.container_id,
            &exec,
            &target.args,
            &stdin_path,
            &stdout_path,
        )
        .await
        .map_err(|e| e.to_string())?;
    if let Some((cols, rows)) = target.size {
        let _ = runtime
            .resize_exec(&target.container_id, &exec, cols, rows)
            .await;
    }
    Ok((stdin, stdout))
}

/// Kills the commands of sessions a previous run of the agent left (it died mid-session:
/// containerd keeps an exec running without its client) and removes their FIFOs.
pub async fn sweep<R: ContainerRuntime>(runtime: &R, dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let exec = entry.file_name().to_string_lossy().into_owned();
        if let Ok(container) = std::fs::read_to_string(entry.path().join(CONTAINER_FILE)) {
            tracing::info!(exec = %exec, container = %container, "ending a command an earlier run left in a container");
            let _ = tokio::time::timeout(DRAIN_LIMIT, runtime.end_exec(&container, &exec)).await;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

async fn end<R: ContainerRuntime>(runtime: &R, target: &ExecTarget) {
    let exec = exec_id(&target.session_id);
    let _ = tokio::time::timeout(DRAIN_LIMIT, runtime.end_exec(&target.container_id, &exec)).await;
}

/// Relays until the command exits, then sends what is left of its output and its status.
/// The control plane going away kills the command.
async fn relay<R: ContainerRuntime>(
    runtime: &R,
    target: &ExecTarget,
    mut stdin: pipe::Sender,
    mut stdout: pipe::Receiver,
    mut down: tonic::Streaming<pb::ExecDown>,
    tx: &mpsc::Sender<pb::ExecUp>,
) {
    let exec = exec_id(&target.session_id);
    let id = &target.container_id;
    let wait = runtime.wait_exec(id, &exec);
    tokio::pin!(wait);
    let mut buf = vec![0u8; CHUNK];
    let mut down_open = true;
    let status = loop {
        tokio::select! {
            status = &mut wait => break status,
            n = stdout.read(&mut buf) => {
                let sent = match n {
                    Ok(n) if n > 0 => tx.send(up(pb::exec_up::Kind::Output(buf[..n].to_vec()))).await.is_ok(),
                    _ => true,
                };
                if !sent {
                    runtime.end_exec(id, &exec).await;
                }
            }
            m = down.next(), if down_open => match m {
                Some(Ok(pb::ExecDown { kind: Some(pb::exec_down::Kind::Input(bytes)) })) => {
                    let _ = stdin.write_all(&bytes).await;
                }
                Some(Ok(pb::ExecDown { kind: Some(pb::exec_down::Kind::Resize(r)) })) => {
                    let _ = runtime.resize_exec(id, &exec, r.cols, r.rows).await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    // The session is over on the other side: nothing may keep running.
                    tracing::info!(session = %target.session_id, "exec stream closed; killing the command");
                    down_open = false;
                    runtime.end_exec(id, &exec).await;
                }
            },
        }
    };
    // The process is gone; containerd's delete returns once the shim has copied the
    // terminal's last output into the FIFO, which is then read to its end.
    end(runtime, target).await;
    loop {
        match stdout.try_read(&mut buf) {
            Ok(n) if n > 0 => {
                if tx
                    .send(up(pb::exec_up::Kind::Output(buf[..n].to_vec())))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            _ => break,
        }
    }
    let exit_code = match status {
        Ok(code) => i32::try_from(code).unwrap_or(i32::MAX),
        Err(e) => {
            tracing::warn!(session = %target.session_id, error = %e, "lost an exec's exit status");
            -1
        }
    };
    let _ = tx
        .send(up(pb::exec_up::Kind::Exited(pb::ExecExited { exit_code })))
        .await;
    // Dropping the call now could cancel it before that last message leaves: hold it
    // until the control plane, having read everything, ends it.
    let _ = tokio::time::timeout(LINGER, async {
        while let Some(Ok(_)) = down.next().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContainerReport;

    fn task(status: ContainerStatus) -> TaskReport {
        let mut t = TaskReport {
            task_arn: "arn:aws:ecs:r:1:task/c/abc123".into(),
            ..TaskReport::default()
        };
        t.containers.push(ContainerReport {
            name: "web".into(),
            last_status: status,
            runtime_id: Some("abc123-web".into()),
            ..ContainerReport::default()
        });
        t
    }

    fn start(container: &str) -> pb::ExecStart {
        pb::ExecStart {
            session_id: "ecs-execute-command-0a1b".into(),
            task_id: "abc123".into(),
            container: container.into(),
            args: vec!["/bin/sh".into()],
            tty: true,
            cols: 80,
            rows: 24,
        }
    }

    #[test]
    fn a_session_finds_its_running_container() {
        let t = resolve(&[task(ContainerStatus::Running)], &start("web")).unwrap();
        assert_eq!(t.container_id, "abc123-web");
        assert_eq!(t.size, Some((80, 24)));
        assert_eq!(exec_id(&t.session_id), "berth-exec-ecsexecutecommand0a1b");
    }

    #[test]
    fn a_stopped_or_unknown_container_is_refused_with_the_reason() {
        let e = resolve(&[task(ContainerStatus::Stopped)], &start("web")).unwrap_err();
        assert!(e.contains("is STOPPED, not RUNNING"), "{e}");
        let e = resolve(&[task(ContainerStatus::Running)], &start("db")).unwrap_err();
        assert!(e.contains("has no container db"), "{e}");
        let mut other = start("web");
        other.task_id = "zzz".into();
        let e = resolve(&[task(ContainerStatus::Running)], &other).unwrap_err();
        assert!(e.contains("does not run on this host"), "{e}");
    }
}
