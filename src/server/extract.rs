//! The path and query extractors every handler uses: axum's own, with their refusals
//! (`?limit=abc`, an unknown query key, `%FF` in a path) answered in the API's error
//! shape rather than as `text/plain`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// [`Path`], refused as an [`ApiError`] (400 `bad_input`).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

/// [`Query`], refused as an [`ApiError`] (400 `bad_input`).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(refused) => Err(path_error(&refused)),
        }
    }
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(refused) => Err(query_error(&refused)),
        }
    }
}

/// A path that does not read (a 500 when the route and its handler disagree, which is
/// ours).
pub fn path_error(refused: &PathRejection) -> ApiError {
    ApiError::from_status(
        refused.status(),
        format!("the path: {}", refused.body_text()),
    )
}

/// A query string that does not read: the key and why, as serde says it.
pub fn query_error(refused: &QueryRejection) -> ApiError {
    ApiError::from_status(refused.status(), refused.body_text())
}
