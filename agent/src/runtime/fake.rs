//! `RecordingRuntime`: an in-memory `ContainerRuntime` that records every call (and when, on
//! tokio's clock), for testing the task manager without containerd. Containers exit when the
//! test says so (`exit`), when their script says so (`exit_after`), or when killed.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{
    ContainerRuntime, ContainerSpec, ContainerState, ExecOutcome, Image, RegistryCredentials,
    Result, RuntimeError, RuntimeStatus,
};

/// One call made on the runtime, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    PullImage(String),
    CreateContainer(Box<ContainerSpec>),
    Start(String),
    Wait(String),
    Kill { id: String, signal: u32, all: bool },
    Delete(String),
    ListContainers,
    Status(String),
    Exec { id: String, args: Vec<String> },
}

struct FakeContainer {
    spec: ContainerSpec,
    state: ContainerState,
    pid: u32,
    exit: watch::Sender<Option<u32>>,
}

#[derive(Default)]
struct State {
    calls: Vec<(Instant, Call)>,
    containers: BTreeMap<String, FakeContainer>,
    images: HashMap<String, Image>,
    pull_failures: HashMap<String, String>,
    create_failures: HashMap<String, String>,
    start_failures: HashMap<String, String>,
    next_pid: u32,
    keep_running_on_kill: bool,
    /// Containers whose process ignores SIGTERM (SIGKILL still ends them).
    ignore_sigterm: HashSet<String>,
    /// Containers that exit by themselves this long after they start, with this code.
    exit_after: HashMap<String, (Duration, u32)>,
    /// What execs in a container return (default: exit 0).
    exec_results: HashMap<String, ExecOutcome>,
    /// Results the next execs in a container return, before `exec_results`.
    exec_scripts: HashMap<String, VecDeque<ExecOutcome>>,
}

impl State {
    fn record(&mut self, call: Call) {
        self.calls.push((Instant::now(), call));
    }

    /// The container's process exits with `code`; false if there is no such container.
    fn exit(&mut self, id: &str, code: u32) -> bool {
        let Some(container) = self.containers.get_mut(id) else {
            return false;
        };
        container.state = ContainerState::Stopped;
        container.exit.send_replace(Some(code));
        true
    }
}

/// See the module docs. By default every pull succeeds, and `kill` of a running container
/// makes it exit with 128+signal, as a shell process would. Clones share one state: a test
/// keeps a clone to drive and inspect the runtime it handed to the code under test.
#[derive(Default, Clone)]
pub struct RecordingRuntime {
    state: Arc<Mutex<State>>,
}

impl RecordingRuntime {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later exec in container `id` end with `outcome`.
    pub fn set_exec_result(&self, id: &str, outcome: ExecOutcome) {
        self.state().exec_results.insert(id.to_owned(), outcome);
    }

    /// The next execs in container `id` end with `outcomes`, in order; later ones as
    /// `set_exec_result` says.
    pub fn script_exec(&self, id: &str, outcomes: impl IntoIterator<Item = ExecOutcome>) {
        self.state()
            .exec_scripts
            .entry(id.to_owned())
            .or_default()
            .extend(outcomes);
    }

    /// Container `id`'s process ignores SIGTERM; SIGKILL still ends it (137).
    pub fn ignore_sigterm(&self, id: &str) {
        self.state().ignore_sigterm.insert(id.to_owned());
    }

    /// Container `id`'s process exits with `code` by itself, `after` it starts (on tokio's
    /// clock: a paused-time test gets there by advancing time).
    pub fn exit_after(&self, id: &str, after: Duration, code: u32) {
        self.state().exit_after.insert(id.to_owned(), (after, code));
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("RecordingRuntime state poisoned")
    }

    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.iter().map(|(_, c)| c.clone()).collect()
    }

    /// The calls so far with the (tokio) instant each was made.
    #[must_use]
    pub fn timed_calls(&self) -> Vec<(Instant, Call)> {
        self.state().calls.clone()
    }

    /// The calls so far, clearing the record.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state().calls)
            .into_iter()
            .map(|(_, c)| c)
            .collect()
    }

    /// What `pull_image(image.reference)` returns (otherwise an image with an empty config).
    pub fn add_image(&self, image: Image) {
        self.state().images.insert(image.reference.clone(), image);
    }

    /// Pulls of `reference` fail with `RuntimeError::Pull { message }`.
    pub fn fail_pull(&self, reference: &str, message: &str) {
        self.state()
            .pull_failures
            .insert(reference.to_owned(), message.to_owned());
    }

    /// Creating container `id` fails with `RuntimeError::Start { message }` (as a missing
    /// executable does with runc).
    pub fn fail_create(&self, id: &str, message: &str) {
        self.state()
            .create_failures
            .insert(id.to_owned(), message.to_owned());
    }

    /// Starting container `id` fails with `RuntimeError::Start { message }`.
    pub fn fail_start(&self, id: &str, message: &str) {
        self.state()
            .start_failures
            .insert(id.to_owned(), message.to_owned());
    }

    /// When set, `kill` is recorded but the container keeps running (a process that ignores
    /// SIGTERM); the test ends it with `exit`.
    pub fn keep_running_on_kill(&self, keep: bool) {
        self.state().keep_running_on_kill = keep;
    }

    /// The container's process exits with `code`: pending and future `wait`s return it.
    /// Returns false if there is no such container.
    pub fn exit(&self, id: &str, code: u32) -> bool {
        self.state().exit(id, code)
    }

    /// The spec container `id` was created with, while it exists.
    #[must_use]
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.state().containers.get(id).map(|c| c.spec.clone())
    }

    #[must_use]
    pub fn state_of(&self, id: &str) -> Option<ContainerState> {
        self.state().containers.get(id).map(|c| c.state)
    }
}

const SIGTERM: u32 = 15;

fn not_found(id: &str) -> RuntimeError {
    RuntimeError::NotFound {
        kind: "container",
        id: id.to_owned(),
    }
}

fn fake_digest(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

impl ContainerRuntime for RecordingRuntime {
    async fn pull_image_as(
        &self,
        reference: &str,
        _login: Option<&RegistryCredentials>,
    ) -> Result<Image> {
        let mut state = self.state();
        state.record(Call::PullImage(reference.to_owned()));
        if let Some(message) = state.pull_failures.get(reference) {
            return Err(RuntimeError::Pull {
                reference: reference.to_owned(),
                message: message.clone(),
            });
        }
        Ok(state
            .images
            .get(reference)
            .cloned()
            .unwrap_or_else(|| Image {
                reference: reference.to_owned(),
                manifest_digest: fake_digest(&format!("manifest {reference}")),
                chain_id: fake_digest(&format!("chain {reference}")),
                config: super::ImageConfig::default(),
            }))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<()> {
        let mut state = self.state();
        state.record(Call::CreateContainer(Box::new(spec.clone())));
        if let Some(message) = state.create_failures.get(&spec.id) {
            return Err(RuntimeError::Start {
                container: spec.id.clone(),
                message: message.clone(),
            });
        }
        if state.containers.contains_key(&spec.id) {
            return Err(RuntimeError::containerd(
                "containers.create",
                &spec.id,
                tonic::Status::already_exists(format!("container \"{}\": already exists", spec.id)),
            ));
        }
        let (exit, _) = watch::channel(None);
        state.containers.insert(
            spec.id.clone(),
            FakeContainer {
                spec: spec.clone(),
                state: ContainerState::Created,
                pid: 0,
                exit,
            },
        );
        Ok(())
    }

    async fn start(&self, id: &str) -> Result<u32> {
        let mut state = self.state();
        state.record(Call::Start(id.to_owned()));
        if let Some(message) = state.start_failures.get(id) {
            return Err(RuntimeError::Start {
                container: id.to_owned(),
                message: message.clone(),
            });
        }
        state.next_pid += 1;
        let pid = 1000 + state.next_pid;
        let container = state.containers.get_mut(id).ok_or_else(|| not_found(id))?;
        container.state = ContainerState::Running;
        container.pid = pid;
        if let Some((after, code)) = state.exit_after.get(id).copied() {
            let (shared, id) = (self.state.clone(), id.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let mut state = shared.lock().expect("RecordingRuntime state poisoned");
                if state.containers.get(&id).map(|c| c.state) == Some(ContainerState::Running) {
                    state.exit(&id, code);
                }
            });
        }
        Ok(pid)
    }

    async fn wait(&self, id: &str) -> Result<u32> {
        let mut exit = {
            let mut state = self.state();
            state.record(Call::Wait(id.to_owned()));
            state
                .containers
                .get(id)
                .ok_or_else(|| not_found(id))?
                .exit
                .subscribe()
        };
        let code = exit
            .wait_for(Option::is_some)
            .await
            .map_err(|_| not_found(id))?;
        Ok(code.expect("waited for Some"))
    }

    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        let mut state = self.state();
        state.record(Call::Kill {
            id: id.to_owned(),
            signal,
            all,
        });
        let keep_running =
            state.keep_running_on_kill || (signal == SIGTERM && state.ignore_sigterm.contains(id));
        let container = state.containers.get_mut(id).ok_or_else(|| not_found(id))?;
        match container.state {
            ContainerState::Running if !keep_running => {
                container.state = ContainerState::Stopped;
                container.exit.send_replace(Some(128 + signal));
                Ok(())
            }
            ContainerState::Running | ContainerState::Created => Ok(()),
            // Like containerd 1.6: `all` is accepted after exit, a plain kill is not
            // ("process already finished: not found").
            _ if all => Ok(()),
            _ => Err(RuntimeError::NotFound {
                kind: "process",
                id: id.to_owned(),
            }),
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let mut state = self.state();
        state.record(Call::Delete(id.to_owned()));
        if state
            .containers
            .get(id)
            .is_some_and(|c| c.state == ContainerState::Running)
        {
            return Err(RuntimeError::containerd(
                "tasks.delete",
                id,
                tonic::Status::failed_precondition("task must be stopped before deletion: running"),
            ));
        }
        state.containers.remove(id);
        Ok(())
    }

    async fn list_containers(&self) -> Result<Vec<String>> {
        let mut state = self.state();
        state.record(Call::ListContainers);
        Ok(state.containers.keys().cloned().collect())
    }

    async fn exec(
        &self,
        id: &str,
        _exec_id: &str,
        args: &[String],
        _timeout: std::time::Duration,
    ) -> Result<ExecOutcome> {
        let mut state = self.state();
        state.record(Call::Exec {
            id: id.to_owned(),
            args: args.to_vec(),
        });
        match state.containers.get(id) {
            Some(c) if c.state == ContainerState::Running => {}
            _ => return Err(not_found(id)),
        }
        let scripted = state.exec_scripts.get_mut(id).and_then(VecDeque::pop_front);
        Ok(scripted
            .or_else(|| state.exec_results.get(id).copied())
            .unwrap_or(ExecOutcome::Exited(0)))
    }

    async fn status(&self, id: &str) -> Result<Option<RuntimeStatus>> {
        let mut state = self.state();
        state.record(Call::Status(id.to_owned()));
        Ok(state.containers.get(id).map(|c| RuntimeStatus {
            state: c.state,
            pid: c.pid,
            exit_code: *c.exit.borrow(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn spec(id: &str) -> ContainerSpec {
        ContainerSpec {
            id: id.to_owned(),
            ..ContainerSpec::default()
        }
    }

    #[tokio::test]
    async fn wait_resolves_on_exit() {
        let rt = Arc::new(RecordingRuntime::new());
        rt.create_container(&spec("a")).await.unwrap();
        rt.start("a").await.unwrap();
        let waiter = tokio::spawn({
            let rt = rt.clone();
            async move { rt.wait("a").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert!(rt.exit("a", 3));
        assert_eq!(waiter.await.unwrap().unwrap(), 3);
        let status = rt.status("a").await.unwrap().unwrap();
        assert_eq!(
            (status.state, status.exit_code),
            (ContainerState::Stopped, Some(3))
        );
    }

    #[tokio::test]
    async fn kill_exits_with_signal_and_records() {
        let rt = RecordingRuntime::new();
        rt.create_container(&spec("a")).await.unwrap();
        rt.start("a").await.unwrap();
        assert!(
            rt.delete("a").await.is_err(),
            "running containers cannot be deleted"
        );
        rt.kill("a", 15, true).await.unwrap();
        assert_eq!(rt.wait("a").await.unwrap(), 143);
        rt.delete("a").await.unwrap();
        assert!(rt.status("a").await.unwrap().is_none());
        let calls = rt.take_calls();
        assert!(matches!(&calls[0], Call::CreateContainer(s) if s.id == "a"));
        assert_eq!(
            calls[1..],
            [
                Call::Start("a".into()),
                Call::Delete("a".into()),
                Call::Kill {
                    id: "a".into(),
                    signal: 15,
                    all: true
                },
                Call::Wait("a".into()),
                Call::Delete("a".into()),
                Call::Status("a".into()),
            ]
        );
    }

    #[tokio::test]
    async fn injected_failures() {
        let rt = RecordingRuntime::new();
        rt.fail_pull("r/x:1", "manifest unknown");
        let err = rt.pull_image("r/x:1").await.unwrap_err();
        assert!(
            matches!(err, RuntimeError::Pull { ref message, .. } if message == "manifest unknown")
        );
        assert!(rt.pull_image("r/y:1").await.is_ok());
        rt.fail_create("b", "exec: \"/nonexistent\": no such file or directory");
        assert!(matches!(
            rt.create_container(&spec("b")).await,
            Err(RuntimeError::Start { .. })
        ));
        assert!(rt.list_containers().await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn scripted_exits_signals_and_execs() {
        let rt = RecordingRuntime::new();
        let driver = rt.clone();
        for id in ["a", "b"] {
            rt.create_container(&spec(id)).await.unwrap();
        }
        driver.exit_after("a", Duration::from_secs(5), 3);
        driver.ignore_sigterm("b");
        driver.script_exec("b", [ExecOutcome::Exited(1)]);
        let t0 = Instant::now();
        rt.start("a").await.unwrap();
        rt.start("b").await.unwrap();
        assert_eq!(rt.wait("a").await.unwrap(), 3);
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(5),
            "exits on the paused clock"
        );

        let exec = |id: &'static str| rt.exec(id, "x", &[], Duration::from_secs(1));
        assert_eq!(exec("b").await.unwrap(), ExecOutcome::Exited(1));
        assert_eq!(
            exec("b").await.unwrap(),
            ExecOutcome::Exited(0),
            "script done"
        );
        rt.kill("b", 15, false).await.unwrap();
        assert_eq!(
            rt.state_of("b"),
            Some(ContainerState::Running),
            "SIGTERM ignored"
        );
        rt.kill("b", 9, true).await.unwrap();
        assert_eq!(rt.wait("b").await.unwrap(), 137);
        let kill_times: Vec<Instant> = driver
            .timed_calls()
            .into_iter()
            .filter(|(_, c)| matches!(c, Call::Kill { .. }))
            .map(|(at, _)| at)
            .collect();
        assert_eq!(kill_times, [t0 + Duration::from_secs(5); 2]);
    }
}
