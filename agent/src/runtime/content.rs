//! containerd's content store and leases: streaming blobs in (`Write`), reading small blobs
//! back (manifests, configs), and the leases that keep half-written work from the GC.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{
    AbortRequest, CreateRequest, DeleteRequest, Info, InfoRequest, ReadContentRequest,
    UpdateRequest, WriteAction, WriteContentRequest,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::Code;

use super::{Containerd, Result, RuntimeError};

/// Blobs go to containerd in messages of at most this size (its gRPC limit is 16 MiB).
const WRITE_CHUNK: usize = 1 << 20;

/// A containerd lease: resources created under it survive the GC until it is deleted or
/// expires (the expiry cleans up after a crashed agent).
pub(super) struct Lease {
    id: String,
    header: MetadataValue<Ascii>,
}

impl Lease {
    pub(super) fn header(&self) -> MetadataValue<Ascii> {
        self.header.clone()
    }
}

/// A process-unique token for ingest refs, lease ids and temporary snapshot keys.
pub(super) fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a blob source yields: bytes, or a message saying why the source failed.
pub(super) type Chunk<B> = std::result::Result<B, String>;

/// A blob to write: its descriptor and the labels it must carry once committed.
pub(super) struct BlobWrite<'a> {
    pub digest: &'a str,
    pub size: i64,
    pub labels: HashMap<String, String>,
}

impl Containerd {
    pub(super) async fn create_lease(&self, ttl: Duration) -> Result<Lease> {
        let id = format!("berth-{}", unique());
        let expire = rfc3339(SystemTime::now() + ttl);
        let labels = HashMap::from([("containerd.io/gc.expire".to_owned(), expire)]);
        LeasesClient::new(self.channel.clone())
            .create(self.request(CreateRequest {
                id: id.clone(),
                labels,
            }))
            .await
            .map_err(|s| RuntimeError::containerd("leases.create", &id, s))?;
        let header = id
            .parse()
            .expect("lease ids are built from ASCII digits and dashes");
        Ok(Lease { id, header })
    }

    /// Best effort: an undeleted lease expires on its own.
    pub(super) async fn delete_lease(&self, lease: Lease) {
        let result = LeasesClient::new(self.channel.clone())
            .delete(self.request(DeleteRequest {
                id: lease.id.clone(),
                sync: false,
            }))
            .await;
        if let Err(status) = result {
            tracing::warn!(lease = %lease.id, %status, "cannot delete containerd lease");
        }
    }

    /// The blob's info, or `None` when this namespace does not have it.
    pub(super) async fn content_info(&self, digest: &str) -> Result<Option<Info>> {
        match ContentClient::new(self.channel.clone())
            .info(self.request(InfoRequest {
                digest: digest.to_owned(),
            }))
            .await
        {
            Ok(response) => Ok(response.into_inner().info),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(RuntimeError::containerd("content.info", digest, s)),
        }
    }

    /// Adds `labels` to an existing blob, leaving its other labels alone.
    pub(super) async fn add_content_labels(
        &self,
        digest: &str,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        ContentClient::new(self.channel.clone())
            .update(self.request(UpdateRequest {
                info: Some(Info {
                    digest: digest.to_owned(),
                    labels,
                    ..Info::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(|s| RuntimeError::containerd("content.update", digest, s))?;
        Ok(())
    }

    /// Reads a whole blob; only for small ones (manifests, configs).
    pub(super) async fn read_content(&self, digest: &str) -> Result<Vec<u8>> {
        let map = |s| RuntimeError::from_status("content.read", "content", digest, s);
        let mut stream = ContentClient::new(self.channel.clone())
            .read(self.request(ReadContentRequest {
                digest: digest.to_owned(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(map)?
            .into_inner();
        let mut data = Vec::new();
        while let Some(message) = stream.message().await.map_err(map)? {
            data.extend_from_slice(&message.data);
        }
        Ok(data)
    }

    /// Makes sure the blob is in the content store with (at least) `blob.labels`. When it is
    /// missing, `source` is called to fetch it and its bytes are streamed into containerd,
    /// which checks size and digest on commit. Source failures become `Pull` errors.
    pub(super) async fn ensure_blob<F, Fut, S, B>(
        &self,
        lease: &Lease,
        reference: &str,
        blob: BlobWrite<'_>,
        source: F,
    ) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<S, String>>,
        S: Stream<Item = Chunk<B>> + Unpin,
        B: AsRef<[u8]>,
    {
        if let Some(info) = self.content_info(blob.digest).await? {
            let missing: HashMap<_, _> = blob
                .labels
                .into_iter()
                .filter(|(k, v)| info.labels.get(k) != Some(v))
                .collect();
            if !missing.is_empty() {
                self.add_content_labels(blob.digest, missing).await?;
            }
            return Ok(());
        }
        let pull_error = |message: String| RuntimeError::Pull {
            reference: reference.to_owned(),
            message,
        };
        let data = source().await.map_err(pull_error)?;
        let ref_key = format!("berth-{}-{}", blob.digest, unique());
        let digest = blob.digest;
        match self.write_blob(lease, &ref_key, blob, data).await {
            Ok(()) => Ok(()),
            Err(WriteError::Source(message)) => {
                self.abort_write(&ref_key).await;
                Err(pull_error(format!("fetching {digest}: {message}")))
            }
            Err(WriteError::Containerd(status)) if status.code() == Code::AlreadyExists => Ok(()),
            Err(WriteError::Containerd(status)) => {
                self.abort_write(&ref_key).await;
                Err(RuntimeError::containerd("content.write", digest, status))
            }
        }
    }

    /// The Write protocol: `Stat` opens the ingest (and tells us whether the content is
    /// already there, shared from another namespace), `Write`s carry the data at increasing
    /// offsets, `Commit` checks size and digest and attaches the labels. Each message gets
    /// one response; we go in lock step so errors surface at the chunk that caused them.
    async fn write_blob<S, B>(
        &self,
        lease: &Lease,
        ref_key: &str,
        blob: BlobWrite<'_>,
        mut data: S,
    ) -> std::result::Result<(), WriteError>
    where
        S: Stream<Item = Chunk<B>> + Unpin,
        B: AsRef<[u8]>,
    {
        let (tx, rx) = mpsc::channel(1);
        let message = |action: WriteAction| WriteContentRequest {
            action: action as i32,
            r#ref: ref_key.to_owned(),
            total: blob.size,
            expected: blob.digest.to_owned(),
            ..WriteContentRequest::default()
        };
        send(&tx, message(WriteAction::Stat)).await?;
        let mut responses = ContentClient::new(self.channel.clone())
            .write(self.leased(ReceiverStream::new(rx), lease))
            .await?
            .into_inner();
        let opened = responses.message().await?.ok_or_else(closed)?;

        // A shared blob reports its full size here; then there is nothing to send.
        if opened.offset != blob.size {
            let mut offset = 0_i64;
            let mut buffer = Vec::with_capacity(WRITE_CHUNK);
            loop {
                let next = data.next().await.transpose().map_err(WriteError::Source)?;
                if let Some(bytes) = &next {
                    buffer.extend_from_slice(bytes.as_ref());
                }
                if buffer.len() >= WRITE_CHUNK || (next.is_none() && !buffer.is_empty()) {
                    let len = i64::try_from(buffer.len()).expect("chunk fits in i64");
                    let chunk = std::mem::replace(&mut buffer, Vec::with_capacity(WRITE_CHUNK));
                    send(
                        &tx,
                        WriteContentRequest {
                            offset,
                            data: chunk,
                            ..message(WriteAction::Write)
                        },
                    )
                    .await?;
                    responses.message().await?.ok_or_else(closed)?;
                    offset += len;
                }
                if next.is_none() {
                    break;
                }
            }
        }
        send(
            &tx,
            WriteContentRequest {
                offset: blob.size,
                labels: blob.labels,
                ..message(WriteAction::Commit)
            },
        )
        .await?;
        responses.message().await?.ok_or_else(closed)?;
        Ok(())
    }

    async fn abort_write(&self, ref_key: &str) {
        let _ = ContentClient::new(self.channel.clone())
            .abort(self.request(AbortRequest {
                r#ref: ref_key.to_owned(),
            }))
            .await;
    }
}

enum WriteError {
    Source(String),
    Containerd(tonic::Status),
}

impl From<tonic::Status> for WriteError {
    fn from(status: tonic::Status) -> Self {
        Self::Containerd(status)
    }
}

fn closed() -> WriteError {
    WriteError::Containerd(tonic::Status::unavailable(
        "content write stream closed early",
    ))
}

async fn send(
    tx: &mpsc::Sender<WriteContentRequest>,
    message: WriteContentRequest,
) -> std::result::Result<(), WriteError> {
    tx.send(message).await.map_err(|_| closed())
}

/// `time` as RFC 3339 in UTC, whole seconds (containerd's `gc.expire` format).
pub(super) fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // leap day 2024
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn unique_tokens_differ() {
        assert_ne!(unique(), unique());
    }
}
