//! What kind of failure an error is, so a front end can answer it properly: the CLI
//! picks a hint, the server a status code (bad input 400/422, not found 404,
//! conflict 409, retryable 503 with a retry, cancelled 409, internal 500).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller's input or options are wrong; retrying the same won't help.
    BadInput,
    /// A store, product or run that does not exist (or has no data for the request).
    NotFound,
    /// The request clashes with what is stored (a shop that is another store's
    /// already); it can succeed once that changes, not by retrying as it is.
    Conflict,
    /// A transient failure (database busy, a service unreachable): worth retrying.
    Retryable,
    /// The caller cancelled the work.
    Cancelled,
    /// A bug or broken installation.
    Internal,
}
