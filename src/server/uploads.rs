//! Uploads: a store's catalog, variants, inventory or orders, in any shape `ingest`
//! reads (CSV or JSON, gzip or plain), answered with the report `ingest --json` prints.
//!
//! The token is checked before the body is read (see [`super::guard`]). The body is
//! collected in memory, counted as it comes: a declared length over
//! `server.max_body_mb` is refused before it is read, and a streamed body stops with
//! the same 413 once it passes the limit. The reader takes the bytes as they came,
//! named by the upload (`catalog:3: …`).
//!
//! A catalog may come in parts (a split products file, its variants, its inventory
//! levels), each its own upload. The parts are kept: `catalog` starts a new set (the
//! stored variants and inventory are forgotten) and is kept even when it cannot be
//! read alone (a products file without prices waits for its variants); `variants` and
//! `inventory` are read with the stored catalog (and each other) and kept when that
//! ingest succeeds.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use futures_util::StreamExt;

use super::error::ApiError;
use super::{AppState, authorize_store};
use crate::app::{self, AppError, IngestOutcome};
use crate::domain::StoreId;
use crate::error::ErrorKind;
use crate::ingest::{FileRole, IngestError, IngestSource, IngestSources, NoProgress};

/// Which file of an ingest a body is.
#[derive(Debug, Clone, Copy)]
pub enum Upload {
    Catalog,
    Variants,
    Inventory,
    Orders,
}

impl Upload {
    fn name(self) -> &'static str {
        self.role().as_str()
    }

    fn role(self) -> FileRole {
        match self {
            Upload::Catalog => FileRole::Catalog,
            Upload::Variants => FileRole::Variants,
            Upload::Inventory => FileRole::Inventory,
            Upload::Orders => FileRole::Orders,
        }
    }

    fn is_catalog_part(self) -> bool {
        !matches!(self, Upload::Orders)
    }
}

/// An upload that was not ingested: the answer for the client, and the reader's error
/// when it refused the data, for callers that act on its kind.
#[derive(Debug)]
pub struct UploadError {
    pub answer: ApiError,
    pub refused: Option<IngestError>,
}

impl From<ApiError> for UploadError {
    fn from(answer: ApiError) -> Self {
        UploadError {
            answer,
            refused: None,
        }
    }
}

impl From<crate::store::StoreError> for UploadError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        e.answer
    }
}

/// The sources of the ingest an upload starts: the body (named `name`), with the
/// stored parts of its catalog, each named by its role.
async fn ingest_sources(
    state: &AppState,
    store_id: &StoreId,
    upload: Upload,
    name: &str,
    body: Bytes,
) -> Result<IngestSources, ApiError> {
    let store = &state.services.store;
    let stored = |role: FileRole| async move {
        let bytes = store.catalog_upload(store_id, role.as_str()).await?;
        Ok::<_, ApiError>(bytes.map(|b| IngestSource::bytes(role, role.as_str(), b)))
    };
    let mut sources = vec![IngestSource::bytes(upload.role(), name, body)];
    if let Upload::Variants | Upload::Inventory = upload {
        let Some(catalog) = stored(FileRole::Catalog).await? else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_input",
                format!(
                    "the {} file completes a catalog: upload the catalog first \
                     (PUT /v1/stores/{}/catalog), then this file",
                    upload.name(),
                    store_id.as_str()
                ),
            ));
        };
        sources.push(catalog);
        let other = match upload {
            Upload::Variants => FileRole::Inventory,
            _ => FileRole::Variants,
        };
        sources.extend(stored(other).await?);
    }
    IngestSources::new(sources).map_err(internal)
}

fn too_large(limit_mb: usize) -> ApiError {
    ApiError::too_large(
        (limit_mb as u64).saturating_mul(1024 * 1024),
        &format!("{limit_mb} MiB"),
        "server.max_body_mb",
        ": split the file, or gzip it",
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::from_kind(ErrorKind::Internal, e.to_string())
}

/// `PUT /v1/stores/{store}/catalog` (and `/variants`, `/inventory`, `/orders`).
pub async fn put(
    upload: Upload,
    state: Arc<AppState>,
    store: String,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestOutcome>, ApiError> {
    let store_id = StoreId::parse(&store).map_err(|e| ApiError::bad_request(e.to_string()))?;
    authorize_store(&state, &headers, &store_id).await?;
    let limit_mb = state.services.settings.server.max_body_mb;
    let limit = (limit_mb as u64).saturating_mul(1024 * 1024);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit_mb));
    }

    // The declared length (within the limit) is room enough for an honest body.
    let mut received =
        Vec::with_capacity(declared.and_then(|n| usize::try_from(n).ok()).unwrap_or(0));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("the {} body was cut off: {e}", upload.name()))
        })?;
        if (received.len() + chunk.len()) as u64 > limit {
            return Err(too_large(limit_mb));
        }
        received.extend_from_slice(&chunk);
    }
    if received.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_input",
            format!("the {} body is empty", upload.name()),
        ));
    }

    ingest_upload(&state, &store_id, upload, upload.name(), received.into())
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// Ingests an upload's body, named `name` in the report and errors, keeping catalog
/// parts for the next ones.
pub async fn ingest_upload(
    state: &AppState,
    store_id: &StoreId,
    upload: Upload,
    name: &str,
    body: Bytes,
) -> Result<IngestOutcome, UploadError> {
    let services = &state.services;
    let store = services.store.as_ref();
    // A cheap handle on the same bytes, kept once the ingest has read them.
    let kept = upload.is_catalog_part().then(|| body.clone());
    let sources = ingest_sources(state, store_id, upload, name, body).await?;
    if let (Upload::Catalog, Some(bytes)) = (upload, &kept) {
        for role in ["variants", "inventory"] {
            store.put_catalog_upload(store_id, role, None).await?;
        }
        store
            .put_catalog_upload(store_id, "catalog", Some(bytes))
            .await?;
    }
    let outcome = app::ingest(
        store,
        store_id,
        sources,
        &services.settings,
        Arc::new(NoProgress),
    )
    .await;
    if let (Ok(_), Upload::Variants | Upload::Inventory, Some(bytes)) = (&outcome, upload, &kept) {
        store
            .put_catalog_upload(store_id, upload.name(), Some(bytes))
            .await?;
    }
    match outcome {
        Ok(outcome) => {
            tracing::info!(
                store = %store_id,
                upload = upload.name(),
                rows_kept = outcome.report.rows_kept,
                rejected = outcome.report.rejected_total(),
                "upload stored"
            );
            Ok(outcome)
        }
        Err(e) => {
            let mut message = e.to_string();
            if let (Upload::Catalog, AppError::Ingest(IngestError::NeedsVariants { .. })) =
                (upload, &e)
            {
                message.push_str(&format!(
                    "; it is kept: upload the variants next (PUT /v1/stores/{}/variants)",
                    store_id.as_str()
                ));
            }
            Err(match e {
                AppError::Ingest(refused) => UploadError {
                    answer: ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_input", message),
                    refused: Some(refused),
                },
                other => ApiError::from_kind(other.kind(), message).into(),
            })
        }
    }
}
