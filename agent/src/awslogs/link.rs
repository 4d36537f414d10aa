//! The way from the shipper to the session: a batch goes out with a channel for its
//! acknowledgement; the session sends it as a `LogBatch` and answers the channel when
//! the control plane's `LogAck` arrives. A session that ends drops the channels, and
//! the shipper sends again on the next one.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// One batch of a container's events for one log stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub group: String,
    pub stream: String,
    pub create_group: bool,
    /// In journal order; each says where in the journal it ends, so a resent batch
    /// is stored once even if it is cut differently.
    pub events: Vec<super::events::Event>,
    /// The journal offset the batch continues from: the previous batch's end (or,
    /// after non-blocking mode dropped lines, where reading resumed).
    pub journal_start: u64,
    /// The journal offset just past the batch's last line.
    pub journal_end: u64,
    pub dropped_events: u64,
    pub task_arn: String,
    pub container: String,
}

/// A batch waiting for the session, and where its acknowledgement goes.
#[derive(Debug)]
pub struct Outgoing {
    pub batch: Batch,
    pub ack: oneshot::Sender<Result<(), String>>,
}

/// How long a batch waits for its acknowledgement (the session may be down).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct LogLink(mpsc::Sender<Outgoing>);

impl LogLink {
    pub fn new() -> (Self, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(4);
        (Self(tx), rx)
    }

    /// Sends `batch` and waits until the control plane holds it durably.
    pub async fn ship(&self, batch: Batch) -> Result<(), String> {
        let (ack, acked) = oneshot::channel();
        let wait = async {
            self.0
                .send(Outgoing { batch, ack })
                .await
                .map_err(|_| "the agent is shutting down".to_owned())?;
            acked.await.map_err(|_| {
                "the control-plane session ended before the batch was acknowledged".to_owned()
            })?
        };
        tokio::time::timeout(ACK_TIMEOUT, wait)
            .await
            .map_err(|_| format!("no acknowledgement within {}s", ACK_TIMEOUT.as_secs()))?
    }
}
