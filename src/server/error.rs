//! One error shape for every route: `{"error": {"kind", "message", "details"}}`, with
//! the status its kind calls for. A client never sees a panic or a stack trace.
//!
//! Errors are split by audience: what the caller can fix (bad input, not found) is
//! said in full; an internal or retryable error may hold database or file-system text
//! that is ours, so its body is a fixed message and the request id, and the detail is
//! logged under that id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ErrorKind;

tokio::task_local! {
    /// The id of the request being answered, set around every handler.
    pub static REQUEST_ID: String;
}

/// The request being answered, if any (a worker or the applier answers none).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// What the caller of an internal failure is told, whatever the cause.
const INTERNAL_MESSAGE: &str = "an internal error occurred; the server log has the detail";
/// What the caller of a retryable failure is told, whatever the cause.
const RETRYABLE_MESSAGE: &str = "a service this request needs is unavailable for now: retry later";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer TOKEN)",
        )
    }

    /// Over the token's request rate: come back after `wait`.
    pub fn too_many_requests(wait: std::time::Duration) -> Self {
        ApiError::rate_limited("too many requests for this token", wait)
    }

    /// Too many failed authentications from the caller's address: a token that is
    /// none of ours is answered this instead of a 401 until `wait` has passed.
    pub fn too_many_failed_authentications(wait: std::time::Duration) -> Self {
        ApiError::rate_limited("too many failed authentications from this address", wait)
    }

    /// A 429 saying `what`, with `Retry-After` (whole seconds, at least one).
    fn rate_limited(what: &str, wait: std::time::Duration) -> Self {
        let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{what}: retry in {seconds} s"),
        )
        .with_details(json!({"retry_after_seconds": seconds}))
    }

    /// A method the route does not take (the router adds `Allow`).
    pub fn method_not_allowed(method: &axum::http::Method) -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route does not take {method}; the Allow header lists what it takes"),
        )
    }

    /// An error answered by the router or an extractor as text, in this shape: its
    /// kind from the status, its text as the message (a server error's is logged and
    /// replaced, as [`ApiError::from_kind`] does).
    pub fn from_status(status: StatusCode, text: String) -> Self {
        if status.is_server_error() {
            let mut e = ApiError::from_kind(ErrorKind::Internal, text);
            e.status = status;
            return e;
        }
        let kind = match status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            _ => "bad_input",
        };
        let text = text.trim();
        let message = if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("the request was refused")
        } else {
            text
        };
        ApiError::new(status, kind, message)
    }

    /// A body larger than `limit_bytes`, the limit `setting` sets (shown as `shown`,
    /// `2048 KiB`), with what the caller may do about it.
    pub fn too_large(limit_bytes: u64, shown: &str, setting: &str, hint: &str) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than this server takes ({shown}, {setting}){hint}"),
        )
        .with_details(json!({"limit_bytes": limit_bytes}))
    }

    /// A request that did not come in time: its body sent (next to) nothing for
    /// `seconds`.
    pub fn body_timeout(seconds: u64) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request body stalled: next to nothing came for {seconds} s \
                 (server.body_timeout_seconds)"
            ),
        )
    }

    /// A request whose body did not arrive whole within `seconds` (a small body has one
    /// deadline, however steadily it comes).
    pub fn body_deadline(seconds: u64) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request body did not arrive whole within {seconds} s \
                 (server.body_timeout_seconds)"
            ),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// From the engine's error kinds. `message` is the caller's when the kind is theirs
    /// to fix; for an internal or retryable kind it is logged here and the caller gets
    /// a fixed message and the request id.
    pub fn from_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        let (status, name) = match kind {
            ErrorKind::BadInput => (StatusCode::UNPROCESSABLE_ENTITY, "bad_input"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::Retryable => (StatusCode::SERVICE_UNAVAILABLE, "retryable"),
            ErrorKind::Cancelled => (StatusCode::CONFLICT, "cancelled"),
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let public = match kind {
            ErrorKind::Internal => INTERNAL_MESSAGE,
            ErrorKind::Retryable => RETRYABLE_MESSAGE,
            _ => return ApiError::new(status, name, message),
        };
        let id = current_request_id();
        tracing::warn!(kind = name, error = %message.into(), "answered with a fixed message");
        let message = match &id {
            Some(id) => format!("{public} (request id {id})"),
            None => public.to_owned(),
        };
        ApiError::new(status, name, message).with_details(json!({"request_id": id}))
    }
}

impl From<crate::app::AppError> for ApiError {
    fn from(e: crate::app::AppError) -> Self {
        ApiError::from_kind(e.kind(), e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from_kind(e.kind(), e.to_string())
    }
}

impl ApiError {
    /// The answer's body: `{"error": {"kind", "message", "details"}}`.
    pub fn body(&self) -> Value {
        json!({
            "error": {"kind": self.kind, "message": self.message, "details": self.details}
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, axum::Json(body)).into_response();
        let retry_after = match self.status {
            StatusCode::SERVICE_UNAVAILABLE => Some(5),
            StatusCode::TOO_MANY_REQUESTS => self.details["retry_after_seconds"].as_u64(),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}
