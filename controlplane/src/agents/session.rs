//! One agent's session, once opened: its desired task set goes down whenever it changes,
//! its reports, log batches and heartbeats come up, and it ends when the agent goes
//! quiet or away, a newer session replaces it, its certificate expires, is revoked or
//! loses its CA's trust, or the control plane shuts down.

use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

use super::convert;
use super::desired::{desired_message, Delivered};
use super::{HEARTBEAT_INTERVAL, MISSED_HEARTBEATS};
use crate::exec::ExecSessions;
use crate::logs::Logs;
use crate::model::task::TaskReport;
use crate::pki::ClusterCa;
use crate::secrets::Secrets;
use crate::state::ControlPlane;

type Outbound = mpsc::Sender<Result<pb::ControlMessage, Status>>;

/// An opened session: what it needs to run.
pub(super) struct Open {
    pub cp: Arc<ControlPlane>,
    pub secrets: Arc<Secrets>,
    pub logs: Arc<Logs>,
    pub exec: Arc<ExecSessions>,
    pub ca: Arc<ClusterCa>,
    pub shutdown: watch::Receiver<bool>,
    pub arn: String,
    /// The CA that signed the agent's certificate.
    pub issuer: String,
    pub expires_in: Duration,
    pub changes: watch::Receiver<u64>,
    pub delivered: Delivered,
    pub exec_handle: mpsc::Sender<pb::ExecStart>,
}

/// Why a session goes on or ends after its desired set changed.
enum Next {
    Go,
    End,
}

impl Open {
    /// Sends the desired set as it is now; whether the session goes on.
    async fn send_desired(&mut self, tx: &Outbound) -> Next {
        let m = desired_message(&self.cp, &self.secrets, &self.arn, &mut self.delivered);
        // A peer that stops reading must not hold the session.
        let sent = tokio::time::timeout(HEARTBEAT_INTERVAL, tx.send(Ok(m))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return Next::End;
        }
        // Deregistered: the empty task set just sent was its last word.
        if self.cp.instance_revoked(&self.arn) {
            tracing::warn!(container_instance = %self.arn, "ending the session of a deregistered instance: its certificate is revoked");
            let _ = tx.try_send(Err(Status::permission_denied(format!(
                "container instance {} was deregistered, which revoked this agent's certificate",
                self.arn
            ))));
            return Next::End;
        }
        Next::Go
    }

    /// Whether the agent's certificate is still from a trusted CA after the CA changed.
    fn still_trusted(&self, tx: &Outbound) -> Next {
        if self.ca.trusts_issuer(&self.issuer) {
            return Next::Go;
        }
        tracing::warn!(container_instance = %self.arn, "ending an agent session: its certificate's CA is no longer trusted");
        let _ = tx.try_send(Err(Status::unauthenticated(
            "this agent's certificate is from a cluster CA that is no longer trusted (it was rotated): join again with a new token",
        )));
        Next::End
    }

    pub async fn run(
        mut self,
        mut inbound: Streaming<pb::AgentMessage>,
        tx: Outbound,
        mut exec_starts: mpsc::Receiver<pb::ExecStart>,
    ) {
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        // Any message from the agent counts as a sign of life. The session ends the
        // moment the window passes in silence (not on the next heartbeat tick, up to 2 s
        // later): a lost host's service tasks move that much sooner.
        let window = HEARTBEAT_INTERVAL * MISSED_HEARTBEATS;
        let silence = tokio::time::sleep(window);
        tokio::pin!(silence);
        let expired = tokio::time::sleep(self.expires_in);
        tokio::pin!(expired);
        let mut ca_changes = self.ca.subscribe();
        let mut shutdown = self.shutdown.clone();
        let cp = self.cp.clone();
        let arn = self.arn.clone();
        // The first desired set goes out at once.
        self.changes.mark_unchanged();
        let mut next = self.send_desired(&tx).await;
        // awslogs batches are stored in order by a writer of their own, so the next
        // batch is read while the one before commits.
        let (log_batches, stored) = mpsc::channel(4);
        tokio::spawn(write_log_batches(
            cp.clone(),
            self.logs.clone(),
            stored,
            tx.clone(),
        ));
        while matches!(next, Next::Go) {
            next = tokio::select! {
                alive = self.changes.changed() => {
                    if alive.is_err() { break; } // replaced by a newer session
                    self.changes.mark_unchanged();
                    self.send_desired(&tx).await
                }
                Ok(()) = ca_changes.changed() => self.still_trusted(&tx),
                () = &mut expired => {
                    tracing::warn!(container_instance = %arn, "ending an agent session: its certificate has expired (the agent renews before then and reconnects)");
                    break;
                }
                () = &mut silence => {
                    tracing::warn!(container_instance = %arn, silent_ms = window.as_millis(), "agent missed its heartbeats: marking it disconnected");
                    break;
                }
                Some(start) = exec_starts.recv() => {
                    let m = pb::ControlMessage { kind: Some(pb::control_message::Kind::ExecStart(start)) };
                    if tx.send(Ok(m)).await.is_err() { break; }
                    Next::Go
                }
                _ = heartbeat.tick() => {
                    let hb = pb::ControlMessage { kind: Some(pb::control_message::Kind::Heartbeat(pb::Heartbeat { sent_at_ms: cp.now_ms() })) };
                    if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Ok(hb)) { break; }
                    Next::Go
                }
                msg = inbound.next() => {
                    silence.as_mut().reset(tokio::time::Instant::now() + window);
                    cp.agent_seen(&arn);
                    match msg {
                        Some(Ok(pb::AgentMessage { kind: Some(pb::agent_message::Kind::TaskStatus(s)) })) => apply_task_status(&cp, &arn, s).await,
                        Some(Ok(pb::AgentMessage { kind: Some(pb::agent_message::Kind::LogBatch(b)) })) => {
                            if log_batches.send(b).await.is_err() { break; }
                            // Waiting for the writer (a slow disk) is not the agent's silence.
                            silence.as_mut().reset(tokio::time::Instant::now() + window);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => { tracing::info!(container_instance = %arn, error = %e, "agent session ended"); break; }
                        None => { tracing::info!(container_instance = %arn, "agent closed its session"); break; }
                    }
                    Next::Go
                }
                // Ending the response stream lets the agent see a clean end of session
                // and reconnect to the next control plane.
                true = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => {
                    tracing::info!(container_instance = %arn, "closing the agent session: shutting down");
                    break;
                }
            };
        }
        self.exec.detach_agent(&arn, &self.exec_handle);
        cp.close_session(&arn, &self.changes);
    }
}

/// Records an agent's report on one of its tasks (off the async workers: it commits).
async fn apply_task_status(cp: &Arc<ControlPlane>, arn: &str, s: pb::TaskStatus) {
    let report = match TaskReport::try_from(s) {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(container_instance = %arn, error = %e, "ignored a task report");
            return;
        }
    };
    let (cp2, arn2) = (cp.clone(), arn.to_owned());
    let r = tokio::task::spawn_blocking(move || cp2.apply_report(&arn2, &report)).await;
    if let Ok(Err(e)) = r {
        tracing::error!(container_instance = %arn, error = %e, "could not record a task report");
    }
}

/// Stores a session's awslogs batches in the order they came, answering each with its
/// `LogAck`; ends with the session.
async fn write_log_batches(
    cp: Arc<ControlPlane>,
    logs: Arc<Logs>,
    mut batches: tokio::sync::mpsc::Receiver<pb::LogBatch>,
    acks: tokio::sync::mpsc::Sender<Result<pb::ControlMessage, Status>>,
) {
    while let Some(b) = batches.recv().await {
        let ack = store_log_batch(&cp, &logs, b).await;
        if acks.send(Ok(ack)).await.is_err() {
            return;
        }
    }
}

/// Stores an agent's awslogs batch (off the async workers: it commits to disk) and
/// makes the `LogAck` that tells the agent whether it may move past it.
async fn store_log_batch(
    cp: &Arc<ControlPlane>,
    logs: &Arc<Logs>,
    b: pb::LogBatch,
) -> pb::ControlMessage {
    let batch_id = b.batch_id;
    let (task_arn, batch) = convert::log_batch(b);
    let region = cp.arns_of(&task_arn).region;
    let logs = logs.clone();
    let stored = tokio::task::spawn_blocking(move || logs.append_agent_batch(&region, &batch))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = &stored {
        tracing::warn!(task = %task_arn, error = %e, "could not store an awslogs batch; the agent will resend it");
    }
    pb::ControlMessage {
        kind: Some(pb::control_message::Kind::LogAck(pb::LogAck {
            batch_id,
            error: stored.err().unwrap_or_default(),
        })),
    }
}
