//! What kind of failure an error is, so a front end can answer it properly: the CLI
//! picks a hint, the server a status code (bad input 400/422, not found 404,
//! retryable 503 with a retry, cancelled 409, internal 500).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller's input or options are wrong; retrying the same won't help.
    BadInput,
    /// A store, product or run that does not exist (or has no data for the request).
    NotFound,
    /// A transient failure (database busy, a service unreachable): worth retrying.
    Retryable,
    /// The caller cancelled the work.
    Cancelled,
    /// A bug or broken installation.
    Internal,
}

impl crate::store::StoreError {
    pub fn kind(&self) -> ErrorKind {
        use crate::store::StoreError::*;
        match self {
            UnsupportedUrl { .. } | ShopTaken { .. } => ErrorKind::BadInput,
            UnknownStore(_) => ErrorKind::NotFound,
            Connect { .. } | Database(_) | Lock { .. } => ErrorKind::Retryable,
            Migrate(_) | Corrupt(_) => ErrorKind::Internal,
        }
    }
}

impl crate::embed::EmbedError {
    pub fn kind(&self) -> ErrorKind {
        use crate::embed::EmbedError::*;
        match self {
            Store(e) => e.kind(),
            Cancelled => ErrorKind::Cancelled,
            ModelMissing { .. }
            | Runtime { .. }
            | Model(_)
            | WrongCount { .. }
            | WrongDimension { .. } => ErrorKind::Internal,
        }
    }
}
