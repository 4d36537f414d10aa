//! `RuntimeError`: every way a runtime call fails, with the context the ECS layer needs
//! (`Pull` becomes `CannotPullContainerError`, `Start` `CannotStartContainerError`).

use std::path::PathBuf;

use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// containerd's socket did not accept a connection.
    #[error("cannot connect to containerd at {}: {message}", socket.display())]
    Connect { socket: PathBuf, message: String },

    /// The image could not be fetched or unpacked; `message` is what the registry (or the
    /// unpacker) said, e.g. "manifest unknown".
    #[error("pull {reference}: {message}")]
    Pull { reference: String, message: String },

    /// The container's process could not be created or started, e.g. the executable does
    /// not exist, the user is unknown, or a resource limit was refused.
    #[error("start container {container}: {message}")]
    Start { container: String, message: String },

    /// The container, its task or process does not exist.
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },

    /// containerd refused an operation for another reason.
    #[error("containerd {op} {id}: {}: {}", status.code(), status.message())]
    Containerd {
        op: &'static str,
        id: String,
        status: Status,
    },
}

impl RuntimeError {
    pub(crate) fn containerd(op: &'static str, id: impl Into<String>, status: Status) -> Self {
        Self::Containerd {
            op,
            id: id.into(),
            status,
        }
    }

    /// `NotFound` for a not-found status, `Containerd` otherwise.
    pub(crate) fn from_status(
        op: &'static str,
        kind: &'static str,
        id: &str,
        status: Status,
    ) -> Self {
        if status.code() == Code::NotFound {
            Self::NotFound {
                kind,
                id: id.to_owned(),
            }
        } else {
            Self::containerd(op, id, status)
        }
    }

    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// An error and its sources joined with ": " (reqwest and tonic put the useful part in the
/// source chain).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}
