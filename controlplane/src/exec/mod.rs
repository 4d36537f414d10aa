//! ECS Exec sessions: `ExecuteCommand` opens one (a single-use token that expires in
//! minutes), the client's data channel (`channel`) redeems the token, and the agent that
//! runs the task is asked over its session to run the command and to call back on an
//! `Exec` stream of its own, which is handed to the waiting data channel here.
//!
//! Sessions live in memory only: a control-plane restart drops the unredeemed ones (the
//! user runs `execute-command` again) and ends the open ones, whose commands the agents
//! then kill.

pub mod audit;
pub mod channel;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_proto::v1 as pb;
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

/// How long a session's token may wait to be redeemed.
pub const TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// How long the agent has to start the command and call back.
const AGENT_START_LIMIT: Duration = Duration::from_secs(20);

/// What a session runs, where, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTarget {
    pub cluster: String,
    pub cluster_arn: String,
    pub task_arn: String,
    pub task_id: String,
    pub container: String,
    pub instance_arn: String,
    /// The command as given, and split into words as it is run.
    pub command: String,
    pub args: Vec<String>,
    /// The access key the session was opened with.
    pub caller: String,
    /// The task's group (`service:<name>` for a service's task).
    pub group: Option<String>,
    /// Where the command's output is logged, if anywhere.
    pub log: Option<audit::LogDestination>,
}

/// The agent's side of an open session: the command's output, and where keystrokes go.
pub struct AgentStream {
    pub output: tonic::Streaming<pb::ExecUp>,
    pub input: mpsc::Sender<Result<pb::ExecDown, Status>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedeemError {
    #[error("the session {0} is unknown or its token was already used: run execute-command again")]
    Unknown(String),
    #[error("the token does not belong to session {0}")]
    WrongToken(String),
    #[error("the token of session {0} expired: run execute-command again")]
    Expired(String),
}

struct Pending {
    token: String,
    expires: Instant,
    target: ExecTarget,
}

/// A data channel counted as open (see `ExecSessions::close_all`).
pub(crate) struct OpenChannel<'a>(&'a ExecSessions);

impl Drop for OpenChannel<'_> {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A session waiting for its agent's stream, and the instance whose agent must open it.
type Waiter = (String, oneshot::Sender<Result<AgentStream, String>>);

#[derive(Default)]
struct Inner {
    pending: HashMap<String, Pending>,
    agents: HashMap<String, mpsc::Sender<pb::ExecStart>>,
    waiting: HashMap<String, Waiter>,
}

pub struct ExecSessions {
    ttl: Duration,
    inner: Mutex<Inner>,
    recorder: Option<audit::Recorder>,
    /// Turns true when the control plane stops: open data channels close, saying so.
    closing: tokio::sync::watch::Sender<bool>,
    /// Data channels open now.
    open: tokio::sync::watch::Sender<usize>,
    /// The API (and so the data channel) is served over TLS: `wss://` stream URLs.
    tls: bool,
}

impl Default for ExecSessions {
    fn default() -> Self {
        Self::new(TOKEN_TTL)
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl ExecSessions {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(Inner::default()),
            recorder: None,
            closing: tokio::sync::watch::Sender::new(false),
            open: tokio::sync::watch::Sender::new(0),
            tls: false,
        }
    }

    /// Stream URLs say `wss://`: the API port speaks TLS.
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Where session `id`'s client connects: the data channel on the host the caller
    /// reached (`host`), as Session Manager's `streamUrl`.
    pub fn stream_url(&self, host: &str, id: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{host}/v1/data-channel/{id}?role=publish_subscribe")
    }

    /// Ends every open data channel (with `channel_closed`, so clients exit at once rather
    /// than try to resume) and waits, at most `limit`, until they have.
    pub async fn close_all(&self, limit: Duration) {
        self.closing.send_replace(true);
        let mut open = self.open.subscribe();
        let _ = tokio::time::timeout(limit, open.wait_for(|n| *n == 0)).await;
    }

    /// Resolves once `close_all` is called.
    pub(crate) async fn closed(&self) {
        let mut closing = self.closing.subscribe();
        let _ = closing.wait_for(|c| *c).await;
    }

    /// Counts a data channel as open while the guard lives.
    pub(crate) fn channel_open(&self) -> OpenChannel<'_> {
        self.open.send_modify(|n| *n += 1);
        OpenChannel(self)
    }

    /// Sessions are recorded (service events, output logs) through `recorder`.
    pub fn with_recorder(mut self, recorder: audit::Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    pub fn recorder(&self) -> Option<&audit::Recorder> {
        self.recorder.as_ref()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session for `target`: its id (`ecs-execute-command-...`, as ECS names
    /// them) and its token.
    pub fn open(&self, target: ExecTarget) -> (String, String) {
        let id = format!("ecs-execute-command-{}", random_hex(9));
        let token = random_hex(32);
        let now = Instant::now();
        let mut inner = self.inner();
        inner.pending.retain(|_, p| p.expires > now);
        inner.pending.insert(
            id.clone(),
            Pending {
                token: token.clone(),
                expires: now + self.ttl,
                target,
            },
        );
        (id, token)
    }

    /// Spends session `id`'s token: a token works once, before it expires.
    pub fn redeem(&self, id: &str, token: &str) -> Result<ExecTarget, RedeemError> {
        use subtle::ConstantTimeEq;
        let mut inner = self.inner();
        let p = inner
            .pending
            .get(id)
            .ok_or_else(|| RedeemError::Unknown(id.to_owned()))?;
        if !bool::from(p.token.as_bytes().ct_eq(token.as_bytes())) {
            return Err(RedeemError::WrongToken(id.to_owned()));
        }
        let p = inner.pending.remove(id).expect("just seen");
        if p.expires <= Instant::now() {
            return Err(RedeemError::Expired(id.to_owned()));
        }
        Ok(p.target)
    }

    /// The `ExecStart`s for the agent of instance `arn`, for its session to send; a newer
    /// session of the same instance takes them over.
    pub fn attach_agent(
        &self,
        arn: &str,
    ) -> (mpsc::Sender<pb::ExecStart>, mpsc::Receiver<pb::ExecStart>) {
        let (tx, rx) = mpsc::channel(8);
        self.inner().agents.insert(arn.to_owned(), tx.clone());
        (tx, rx)
    }

    /// Ends `attach_agent`'s hold, unless a newer session has taken over.
    pub fn detach_agent(&self, arn: &str, mine: &mpsc::Sender<pb::ExecStart>) {
        let mut inner = self.inner();
        if inner
            .agents
            .get(arn)
            .is_some_and(|tx| tx.same_channel(mine))
        {
            inner.agents.remove(arn);
        }
    }

    /// Asks the task's agent to run the command, and waits for its stream.
    pub async fn start(
        &self,
        target: &ExecTarget,
        session_id: &str,
    ) -> Result<AgentStream, String> {
        let (tx, rx) = oneshot::channel();
        let agent = {
            let mut inner = self.inner();
            inner
                .waiting
                .insert(session_id.to_owned(), (target.instance_arn.clone(), tx));
            inner.agents.get(&target.instance_arn).cloned()
        };
        let start = pb::ExecStart {
            session_id: session_id.to_owned(),
            task_id: target.task_id.clone(),
            container: target.container.clone(),
            args: target.args.clone(),
            tty: true,
            cols: 0,
            rows: 0,
        };
        let sent = match agent {
            Some(agent) => agent.send(start).await.is_ok(),
            None => false,
        };
        let result = if sent {
            match tokio::time::timeout(AGENT_START_LIMIT, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err("the agent dropped the session".to_owned()),
                Err(_) => Err(format!(
                    "the agent did not start the command within {}s",
                    AGENT_START_LIMIT.as_secs()
                )),
            }
        } else {
            Err(format!(
                "the agent of container instance {} is not connected",
                target.instance_arn
            ))
        };
        self.inner().waiting.remove(session_id);
        result
    }

    /// Hands the `Exec` stream (or its reason for not starting) of the agent of
    /// `instance_arn` to the session waiting for it; false when none waits for that
    /// agent (it gave up, the id is unknown, or the session is another host's).
    pub fn opened(
        &self,
        session_id: &str,
        instance_arn: &str,
        stream: Result<AgentStream, String>,
    ) -> bool {
        let mut inner = self.inner();
        let for_this_agent = inner
            .waiting
            .get(session_id)
            .is_some_and(|(arn, _)| arn == instance_arn);
        if !for_this_agent {
            return false;
        }
        let waiter = inner.waiting.remove(session_id);
        drop(inner);
        waiter.is_some_and(|(_, w)| w.send(stream).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ExecTarget {
        ExecTarget {
            cluster: "c".into(),
            cluster_arn: "arn:aws:ecs:r:1:cluster/c".into(),
            task_arn: "arn:aws:ecs:r:1:task/c/t1".into(),
            task_id: "t1".into(),
            container: "web".into(),
            instance_arn: "arn:aws:ecs:r:1:container-instance/c/i1".into(),
            command: "/bin/sh".into(),
            args: vec!["/bin/sh".into()],
            caller: "AKID".into(),
            group: None,
            log: None,
        }
    }

    #[test]
    fn a_token_works_once() {
        let s = ExecSessions::default();
        let (id, token) = s.open(target());
        assert!(id.starts_with("ecs-execute-command-"));
        assert_eq!(
            s.redeem(&id, "nope"),
            Err(RedeemError::WrongToken(id.clone()))
        );
        assert_eq!(s.redeem(&id, &token), Ok(target()));
        assert_eq!(s.redeem(&id, &token), Err(RedeemError::Unknown(id.clone())));
    }

    #[tokio::test]
    async fn closing_waits_for_open_channels() {
        let s = std::sync::Arc::new(ExecSessions::default());
        let channel = s.channel_open();
        let closed = tokio::spawn({
            let s = s.clone();
            async move { s.closed().await }
        });
        let closing = tokio::spawn({
            let s = s.clone();
            async move { s.close_all(Duration::from_secs(30)).await }
        });
        closed.await.unwrap();
        assert!(!closing.is_finished());
        drop(channel);
        closing.await.unwrap();
    }

    #[test]
    fn an_expired_token_is_refused() {
        let s = ExecSessions::new(Duration::ZERO);
        let (id, token) = s.open(target());
        assert_eq!(s.redeem(&id, &token), Err(RedeemError::Expired(id.clone())));
    }

    #[tokio::test]
    async fn a_session_fails_at_once_when_the_agent_is_not_connected() {
        let s = ExecSessions::default();
        let e = s.start(&target(), "sid").await.err().unwrap();
        assert!(e.contains("is not connected"), "{e}");
        assert!(!s.opened("sid", &target().instance_arn, Err("late".into())));
    }

    #[tokio::test]
    async fn the_agent_is_asked_and_its_answer_reaches_the_session() {
        let s = std::sync::Arc::new(ExecSessions::default());
        let (mine, mut starts) = s.attach_agent(&target().instance_arn);
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.start(&target(), "sid").await.err() }
        });
        let start = starts.recv().await.unwrap();
        assert_eq!(start.session_id, "sid");
        assert_eq!(start.args, vec!["/bin/sh"]);
        assert!(start.tty);
        // Another host's agent cannot answer for it.
        assert!(!s.opened("sid", "arn:other", Err("forged".into())));
        assert!(s.opened(
            "sid",
            &target().instance_arn,
            Err("no such container".into())
        ));
        assert_eq!(waiting.await.unwrap().as_deref(), Some("no such container"));
        // A newer session of the instance is not detached by the old one.
        let (newer, _rx) = s.attach_agent(&target().instance_arn);
        s.detach_agent(&target().instance_arn, &mine);
        assert!(s.inner().agents.contains_key(&target().instance_arn));
        s.detach_agent(&target().instance_arn, &newer);
        assert!(s.inner().agents.is_empty());
    }
}
