//! The error every compat endpoint answers with, in the predecessor's shape, and the
//! path and query extractors that refuse in it. It sits beside the handlers, not in `mod.rs`, so the files that use it import a sibling
//! and never the folder's own module.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::server::error::ApiError;
use crate::server::extract::{ApiPath, ApiQuery};

/// An error as the predecessor answered it: `{"error": "…"}` (a validation failure
/// adds `detail`).
#[derive(Debug)]
pub struct AppApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    detail: Option<Value>,
    retry_after: Option<u64>,
}

impl AppApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppApiError {
            status,
            message: message.into(),
            detail: None,
            retry_after: None,
        }
    }

    pub(super) fn validation(message: impl Into<String>) -> Self {
        let message = message.into();
        AppApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: Some(json!([{"msg": message}])),
            message: "Validation failed".into(),
            retry_after: None,
        }
    }
}

impl From<ApiError> for AppApiError {
    fn from(e: ApiError) -> Self {
        AppApiError {
            status: e.status,
            retry_after: e.details["retry_after_seconds"].as_u64(),
            message: e.message,
            detail: None,
        }
    }
}

impl From<crate::store::StoreError> for AppApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for AppApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message});
        if let Some(detail) = self.detail {
            body["detail"] = detail;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// A path as [`ApiPath`] reads it, refused in the predecessor's shape.
#[derive(Debug)]
pub struct AppPath<T>(pub T);

/// A query string as [`ApiQuery`] reads it, refused in the predecessor's shape.
#[derive(Debug)]
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiPath(value) = ApiPath::<T>::from_request_parts(parts, state).await?;
        Ok(AppPath(value))
    }
}

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiQuery(value) = ApiQuery::<T>::from_request_parts(parts, state).await?;
        Ok(AppQuery(value))
    }
}
