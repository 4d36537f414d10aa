//! The data channel of an ECS Exec session: the WebSocket `session-manager-plugin`
//! opens on `streamUrl`, spoken as Session Manager speaks it. The client's first (text)
//! frame carries the session token; then a handshake (session type `InteractiveCommands`),
//! the command's terminal output as numbered `output_stream_data` messages the client
//! acknowledges (resent until it does: the plugin does not take output in the moment
//! after the handshake), keystrokes and terminal sizes as `input_stream_data` acknowledged
//! here and applied once each, in order, and `channel_closed` at the end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use berth_aws::ssm_channel::{
    self as ssm, ClientMessage, Inbox, Outbox, PayloadType, RESEND_AFTER,
};
use berth_proto::v1 as pb;

use super::audit::Transcript;
use super::{AgentStream, ExecSessions, ExecTarget};
use crate::state::{Clock, SystemClock};

/// How long the client may take to send its token after connecting.
const OPEN_LIMIT: Duration = Duration::from_secs(30);
/// How long the client may take to answer the handshake (the SSM agent's limit too).
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(15);
/// Unacknowledged output messages before the command's output waits for the client.
const WINDOW: usize = 256;
/// How long the end of a session waits for the client to take the last output.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);
/// A Session Manager flag payload: the client ends the session.
const FLAG_TERMINATE: u32 = 2;

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    ClientLeft,
    Failed(String),
}

type Starting<'a> = Pin<Box<dyn Future<Output = Result<AgentStream, String>> + Send + 'a>>;

struct Channel {
    ws: WebSocket,
    out: Outbox,
    inbox: Inbox,
    agent: Option<AgentStream>,
    /// Input that came before the agent's stream.
    queued: Vec<pb::exec_down::Kind>,
    /// The command's output, when it is to be logged.
    transcript: Option<Transcript>,
}

/// Serves one data channel to its end.
pub async fn serve(ws: WebSocket, sessions: Arc<ExecSessions>, session_id: String) {
    let mut ch = Channel {
        ws,
        out: Outbox::new(ssm::OUTPUT_STREAM),
        inbox: Inbox::default(),
        agent: None,
        queued: Vec::new(),
        transcript: None,
    };
    let Ok(Some(open)) = tokio::time::timeout(OPEN_LIMIT, ch.open_frame()).await else {
        return;
    };
    let _open = sessions.channel_open();
    let target = match sessions.redeem(&session_id, &open.token_value) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(session = %session_id, error = %e, "refused a data channel");
            ch.close(&session_id, &e.to_string()).await;
            return;
        }
    };
    let started = Instant::now();
    if target.log.is_some() {
        ch.transcript = Some(Transcript::default());
    }
    record(&sessions, &target, &session_id, Record::Started).await;
    tracing::info!(target: "berth::audit", session = %session_id, caller = %target.caller, task = %target.task_arn, container = %target.container, command = %target.command, "execute-command session started");
    let outcome = ch.run(&sessions, &target, &session_id).await;
    let berth_client = open.client_version.starts_with("berth");
    match &outcome {
        Outcome::Exited(code) => {
            ch.flush().await;
            if berth_client {
                // Berth's plugin exits with the command's status; Session Manager's own
                // plugin would print this payload, so it is only sent to Berth's.
                let status = format!("EXIT_CODE: {code}").into_bytes();
                let bytes = ch.out.stream(PayloadType::ExitCode, status);
                ch.send(bytes).await;
                ch.flush().await;
            }
            ch.close(&session_id, "").await;
        }
        Outcome::Failed(why) => ch.close(&session_id, why).await,
        Outcome::ClientLeft => {}
    }
    tracing::info!(target: "berth::audit", session = %session_id, caller = %target.caller, task = %target.task_arn, container = %target.container, outcome = ?outcome, duration_ms = started.elapsed().as_millis(), "execute-command session ended");
    let transcript = ch.transcript.take();
    record(
        &sessions,
        &target,
        &session_id,
        Record::Ended(outcome, transcript),
    )
    .await;
}

/// What is recorded of a session.
enum Record {
    Started,
    Ended(Outcome, Option<Transcript>),
}

/// Records a session's start or end, off the async workers (it commits).
async fn record(sessions: &Arc<ExecSessions>, target: &ExecTarget, session_id: &str, what: Record) {
    if sessions.recorder().is_none() {
        return;
    }
    let (sessions, target, id) = (sessions.clone(), target.clone(), session_id.to_owned());
    let _ = tokio::task::spawn_blocking(move || {
        let recorder = sessions.recorder().expect("checked");
        match what {
            Record::Started => recorder.started(&target, &id),
            Record::Ended(outcome, transcript) => {
                recorder.ended(&target, &id, &outcome, transcript);
            }
        }
    })
    .await;
}

/// The agent's next message, or never while there is no agent.
async fn next_up(agent: &mut Option<AgentStream>) -> Option<Result<pb::ExecUp, tonic::Status>> {
    match agent {
        Some(a) => futures::StreamExt::next(&mut a.output).await,
        None => std::future::pending().await,
    }
}

impl Channel {
    async fn send(&mut self, bytes: Vec<u8>) -> bool {
        self.ws.send(Message::Binary(bytes.into())).await.is_ok()
    }

    /// The client's `open_data_channel` frame.
    async fn open_frame(&mut self) -> Option<ssm::OpenDataChannel> {
        loop {
            match self.ws.recv().await? {
                Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Message::Binary(b)) => return serde_json::from_slice(&b).ok(),
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(Message::Close(_)) | Err(_) => return None,
            }
        }
    }

    /// Sends `channel_closed` (`output` is what the plugin prints) and closes.
    async fn close(&mut self, session_id: &str, output: &str) {
        let m = ClientMessage::new(
            ssm::CHANNEL_CLOSED,
            self.out.next,
            PayloadType::Output,
            Vec::new(),
        );
        let payload = ssm::ChannelClosed {
            message_id: m.message_id_string(),
            created_date: m.created_date.to_string(),
            destination_id: session_id.to_owned(),
            session_id: session_id.to_owned(),
            message_type: ssm::CHANNEL_CLOSED.to_owned(),
            schema_version: ssm::SCHEMA_VERSION,
            output: output.to_owned(),
        };
        let m = ClientMessage {
            payload: serde_json::to_vec(&payload).expect("serializable"),
            ..m
        };
        self.send(m.encode()).await;
        let _ = self.ws.send(Message::Close(None)).await;
    }

    async fn down(&mut self, kind: pb::exec_down::Kind) {
        match &self.agent {
            Some(a) => {
                let _ = a.input.send(Ok(pb::ExecDown { kind: Some(kind) })).await;
            }
            None => self.queued.push(kind),
        }
    }

    /// Runs the session until the command exits, the client leaves, or it fails.
    async fn run(
        &mut self,
        sessions: &ExecSessions,
        target: &ExecTarget,
        session_id: &str,
    ) -> Outcome {
        let request = serde_json::to_vec(&ssm::handshake_request(concat!(
            "berth-",
            env!("CARGO_PKG_VERSION")
        )))
        .expect("serializable");
        let first = self.out.stream(PayloadType::HandshakeRequest, request);
        if !self.send(first).await {
            return Outcome::ClientLeft;
        }
        let handshake = tokio::time::sleep(HANDSHAKE_LIMIT);
        tokio::pin!(handshake);
        let mut handshaken = false;
        let mut starting: Option<Starting<'_>> = None;
        let mut tick = tokio::time::interval(RESEND_AFTER / 2);
        loop {
            tokio::select! {
                frame = self.ws.recv() => {
                    let bytes = match frame {
                        Some(Ok(Message::Binary(b))) => b.to_vec(),
                        Some(Ok(Message::Text(t))) => t.as_str().as_bytes().to_vec(),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return Outcome::ClientLeft,
                    };
                    let Ok(m) = ClientMessage::decode(&bytes) else { continue };
                    for m in self.take(m).await {
                        match m.payload_type {
                            PayloadType::HandshakeResponse if !handshaken => {
                                handshaken = true;
                                let done = ssm::HandshakeComplete { handshake_time_to_complete: 0, customer_message: String::new() };
                                let bytes = self.out.stream(PayloadType::HandshakeComplete, serde_json::to_vec(&done).expect("serializable"));
                                self.send(bytes).await;
                                starting = Some(Box::pin(sessions.start(target, session_id)));
                            }
                            PayloadType::Output => self.down(pb::exec_down::Kind::Input(m.payload)).await,
                            PayloadType::Size => {
                                if let Ok(size) = serde_json::from_slice::<ssm::TerminalSize>(&m.payload) {
                                    self.down(pb::exec_down::Kind::Resize(pb::ExecResize { cols: size.cols, rows: size.rows })).await;
                                }
                            }
                            PayloadType::Flag if m.payload.get(..4) == Some(&FLAG_TERMINATE.to_be_bytes()) => {
                                return Outcome::ClientLeft;
                            }
                            _ => {}
                        }
                    }
                }
                r = async { starting.as_mut().expect("guarded").await }, if starting.is_some() => {
                    starting = None;
                    match r {
                        Ok(agent) => {
                            for kind in std::mem::take(&mut self.queued) {
                                let _ = agent.input.send(Ok(pb::ExecDown { kind: Some(kind) })).await;
                            }
                            self.agent = Some(agent);
                        }
                        Err(e) => return Outcome::Failed(e),
                    }
                }
                up = next_up(&mut self.agent), if self.out.len() < WINDOW => match up {
                    Some(Ok(pb::ExecUp { kind: Some(pb::exec_up::Kind::Output(bytes)) })) => {
                        if let Some(t) = &mut self.transcript {
                            t.push(SystemClock.now_ms(), &bytes);
                        }
                        let bytes = self.out.stream(PayloadType::Output, bytes);
                        if !self.send(bytes).await { return Outcome::ClientLeft; }
                    }
                    Some(Ok(pb::ExecUp { kind: Some(pb::exec_up::Kind::Exited(e)) })) => return Outcome::Exited(e.exit_code),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        return Outcome::Failed("the agent running the task went away before the command ended; the command was stopped".to_owned());
                    }
                },
                _ = tick.tick() => {
                    for bytes in self.out.due(Instant::now()) {
                        if !self.send(bytes).await { return Outcome::ClientLeft; }
                    }
                }
                () = sessions.closed() => {
                    return Outcome::Failed("the control plane is shutting down: run execute-command again once it is back".to_owned());
                }
                () = &mut handshake, if !handshaken => {
                    return Outcome::Failed("the client did not answer the session handshake".to_owned());
                }
            }
        }
    }

    /// Handles a client message's bookkeeping: acknowledgements clear output, input is
    /// acknowledged (repeats too) and returned once each, in order.
    async fn take(&mut self, m: ClientMessage) -> Vec<ClientMessage> {
        match m.message_type.as_str() {
            ssm::ACKNOWLEDGE => {
                if let Ok(ack) = serde_json::from_slice::<ssm::Acknowledge>(&m.payload) {
                    self.out.acked(ack.sequence_number);
                }
                Vec::new()
            }
            ssm::INPUT_STREAM => {
                self.send(ssm::Acknowledge::of(&m).encode()).await;
                self.inbox.accept(m)
            }
            _ => Vec::new(),
        }
    }

    /// Waits (a while) for the client to acknowledge all output, resending as needed.
    async fn flush(&mut self) {
        let deadline = tokio::time::sleep(FLUSH_LIMIT);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(RESEND_AFTER / 2);
        while !self.out.is_empty() {
            tokio::select! {
                frame = self.ws.recv() => match frame {
                    Some(Ok(Message::Binary(b))) => {
                        if let Ok(m) = ClientMessage::decode(&b) {
                            self.take(m).await;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                _ = tick.tick() => {
                    for bytes in self.out.due(Instant::now()) {
                        if !self.send(bytes).await { return; }
                    }
                }
                () = &mut deadline => return,
            }
        }
    }
}
