//! Uploads: a store's catalog, variants, inventory or orders, in any shape `ingest`
//! reads (CSV or JSON, gzip or plain), answered with the report `ingest --json` prints.
//!
//! The body streams to a temporary file (never whole in memory) and is counted as it
//! comes: past `server.max_body_mb` the upload stops with a 413 that names the limit.
//!
//! A catalog may come in parts (a split products file, its variants, its inventory
//! levels), each its own upload. The parts are kept: `catalog` starts a new set (the
//! stored variants and inventory are forgotten) and is kept even when it cannot be
//! read alone (a products file without prices waits for its variants); `variants` and
//! `inventory` are read with the stored catalog (and each other) and kept when that
//! ingest succeeds.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use super::{AppState, authorize_store};
use crate::app::{self, AppError, IngestOutcome};
use crate::domain::StoreId;
use crate::error::ErrorKind;
use crate::ingest::{IngestFiles, NoProgress};

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
        match self {
            Upload::Catalog => "catalog",
            Upload::Variants => "variants",
            Upload::Inventory => "inventory",
            Upload::Orders => "orders",
        }
    }

    fn is_catalog_part(self) -> bool {
        !matches!(self, Upload::Orders)
    }
}

/// The files of the ingest an upload starts: the body, with the stored parts of its
/// catalog beside it in `dir`.
async fn ingest_files(
    state: &AppState,
    store_id: &StoreId,
    upload: Upload,
    dir: &Path,
    body: &Path,
) -> Result<IngestFiles, ApiError> {
    let store = &state.services.store;
    let mut files = IngestFiles::default();
    let stored = |role: &'static str| async move {
        match store.catalog_upload(store_id, role).await? {
            Some(bytes) => {
                let path = dir.join(role);
                tokio::fs::write(&path, bytes).await.map_err(internal)?;
                Ok::<_, ApiError>(Some(path))
            }
            None => Ok(None),
        }
    };
    match upload {
        Upload::Orders => files.orders = Some(body.to_owned()),
        Upload::Catalog => files.catalog = Some(body.to_owned()),
        Upload::Variants | Upload::Inventory => {
            files.catalog = stored("catalog").await?;
            if files.catalog.is_none() {
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
            }
            if let Upload::Variants = upload {
                files.variants = Some(body.to_owned());
                files.inventory = stored("inventory").await?;
            } else {
                files.variants = stored("variants").await?;
                files.inventory = Some(body.to_owned());
            }
        }
    }
    Ok(files)
}

fn too_large(limit_mb: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the body is larger than this server takes ({limit_mb} MiB, server.max_body_mb): \
             split the file, or gzip it"
        ),
    )
    .with_details(json!({"limit_bytes": limit_mb * 1024 * 1024}))
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

    let dir = tempfile::tempdir().map_err(internal)?;
    let path = dir.path().join(upload.name());
    let mut file = tokio::fs::File::create(&path).await.map_err(internal)?;
    let mut received: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("the {} body was cut off: {e}", upload.name()))
        })?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(too_large(limit_mb));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    drop(file);
    if received == 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_input",
            format!("the {} body is empty", upload.name()),
        ));
    }

    ingest_upload(&state, &store_id, upload, dir.path(), &path)
        .await
        .map(Json)
}

/// Ingests the upload kept at `path` (in `dir`, which also holds the stored parts of
/// its catalog while it is read), keeping catalog parts for the next ones; the
/// report and errors name the upload, not where it was kept.
pub async fn ingest_upload(
    state: &AppState,
    store_id: &StoreId,
    upload: Upload,
    dir: &Path,
    path: &Path,
) -> Result<IngestOutcome, ApiError> {
    let services = &state.services;
    let store = services.store.as_ref();
    let files = ingest_files(state, store_id, upload, dir, path).await?;
    let body_bytes = if upload.is_catalog_part() {
        Some(tokio::fs::read(path).await.map_err(internal)?)
    } else {
        None
    };
    if let (Upload::Catalog, Some(bytes)) = (upload, &body_bytes) {
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
        files,
        &services.settings,
        Arc::new(NoProgress),
    )
    .await;
    if let (Ok(_), Upload::Variants | Upload::Inventory, Some(bytes)) =
        (&outcome, upload, &body_bytes)
    {
        store
            .put_catalog_upload(store_id, upload.name(), Some(bytes))
            .await?;
    }
    // Errors and the report name the upload (`catalog:3: …`), not where it was kept.
    let prefix = format!("{}/", dir.display());
    match outcome {
        Ok(mut outcome) => {
            outcome.report.strip_path_prefix(&prefix);
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
            let mut message = e.to_string().replace(&prefix, "");
            if let Upload::Catalog = upload
                && message.contains("needs its variants file")
            {
                message.push_str(&format!(
                    "; it is kept: upload the variants next (PUT /v1/stores/{}/variants)",
                    store_id.as_str()
                ));
            }
            Err(match e {
                AppError::Ingest(_) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_input", message)
                }
                other => ApiError::from_kind(other.kind(), message),
            })
        }
    }
}
