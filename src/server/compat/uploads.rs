//! `POST /api/shopify/upload` and `/upload-batch`: the app's CSVs, read as uploads of
//! the store the shop is, and the run's generate job started once the run holds what
//! it needs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::AppApiError;
use super::shop::{sanitize_shop, store_for};
use crate::domain::StoreId;
use crate::ingest::{CatalogKeys, IngestError, IngestReport};
use crate::server::error::ApiError;
use crate::server::uploads::{Upload, ingest_upload};
use crate::server::{AppState, authorize_store, now_ms};
use crate::store::{AppUpload, NewJob};

/// The CSV types an upload names, and their aliases.
const CSV_TYPES: &str = "catalog_joined, inventory_levels, orders, variants";
/// Upload types a run needs before its bundles are generated.
const REQUIRED: [&str; 3] = ["catalog_joined", "variants", "orders"];

/// The body of a request, at most `limit` bytes (413 past it, in the app's shape).
async fn read_body(body: Body, limit: u64, limit_mb: usize) -> Result<Vec<u8>, AppApiError> {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            AppApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body was cut off: {e}"),
            )
        })?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(AppApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("CSV data is larger than this server takes ({limit_mb} MiB)"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(
    state: &AppState,
    bytes: &[u8],
) -> Result<T, AppApiError> {
    crate::server::parse_json_body(state, bytes, "the upload's")
        .map_err(|e| AppApiError::validation(e.message))
}

/// `POST /api/shopify/upload`'s body: the app's camelCase names, snake_case accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UploadRequest {
    #[serde(rename = "shopId", alias = "shop_id")]
    shop_id: String,
    #[serde(rename = "csvType", alias = "csv_type")]
    csv_type: String,
    #[serde(rename = "csvData", alias = "csv_data")]
    csv_data: String,
    #[serde(rename = "runId", alias = "run_id")]
    run_id: Option<String>,
    #[serde(rename = "triggerPipeline", alias = "trigger_pipeline")]
    trigger_pipeline: bool,
    /// Read for the app's sake; a store's currency comes from its data (or
    /// `store.currency`), as with every ingest.
    #[allow(dead_code)]
    currency: Option<String>,
}

/// `POST /api/shopify/upload-batch`'s body: a run's four CSVs.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchRequest {
    #[serde(rename = "shopId", alias = "shop_id")]
    shop_id: String,
    #[serde(rename = "runId", alias = "run_id")]
    run_id: Option<String>,
    #[serde(rename = "catalogCsv", alias = "catalog_csv")]
    catalog_csv: String,
    #[serde(rename = "variantsCsv", alias = "variants_csv")]
    variants_csv: String,
    #[serde(rename = "inventoryCsv", alias = "inventory_csv")]
    inventory_csv: String,
    #[serde(rename = "ordersCsv", alias = "orders_csv")]
    orders_csv: String,
    #[allow(dead_code)]
    currency: Option<String>,
}

/// A `csvType` as its canonical name and the upload it is.
fn csv_type(raw: &str) -> Result<(&'static str, Upload), AppApiError> {
    Ok(match raw.trim().to_ascii_lowercase().as_str() {
        "products" | "catalog" | "catalog_joined" => ("catalog_joined", Upload::Catalog),
        "variants" => ("variants", Upload::Variants),
        "inventory" | "inventory_levels" => ("inventory_levels", Upload::Inventory),
        "orders" => ("orders", Upload::Orders),
        _ => {
            return Err(AppApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid csvType '{raw}'. Must be one of: {CSV_TYPES}"),
            ));
        }
    })
}

fn run_key(given: Option<&str>) -> Result<String, AppApiError> {
    match given.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) if r.len() <= 255 => Ok(r.to_owned()),
        Some(_) => Err(AppApiError::validation("runId: at most 255 characters")),
        None => Ok(ulid::Ulid::new().to_string()),
    }
}

/// Who the upload is for, resolved and authorized.
struct Uploader {
    store_id: StoreId,
    shop: String,
    /// A new store's shop domain, set once its first upload created it.
    domain_to_set: Option<String>,
}

async fn uploader(
    state: &AppState,
    headers: &HeaderMap,
    raw_shop: &str,
) -> Result<Uploader, AppApiError> {
    let shop = sanitize_shop(raw_shop)?;
    let (store_id, domain_to_set) = store_for(state, &shop, true).await?;
    authorize_store(state, headers, &store_id).await?;
    Ok(Uploader {
        store_id,
        shop,
        domain_to_set,
    })
}

/// Reads one CSV as an upload of `csv_type` (its name in the report and errors) and
/// records how it went.
async fn ingest_csv(
    state: &AppState,
    who: &mut Uploader,
    run_key: &str,
    (csv_type, upload): (&'static str, Upload),
    csv: String,
) -> Result<AppUpload, AppApiError> {
    let mut record = new_record(who, run_key, csv_type, &csv);
    let store = &state.services.store;
    store.put_app_upload(&record).await?;
    let csv = Bytes::from(csv);
    match ingest_upload(state, &who.store_id, upload, csv_type, csv.clone()).await {
        Ok(outcome) => read_completed(&mut record, &outcome.report),
        Err(e)
            if matches!(upload, Upload::Variants)
                && matches!(e.refused, Some(IngestError::VariantsAlreadyGiven { .. })) =>
        {
            // The app sends the variants beside a catalog that holds them already
            // (its `catalog_joined` is one row per variant): nothing to add, so the
            // upload counts the rows the catalog knows.
            let keys = store.catalog_keys(&who.store_id).await?;
            variants_counted(&mut record, &known_variants(&keys, &csv));
        }
        Err(e) => {
            record.status = "failed".into();
            record.error_message = Some(e.answer.message);
        }
    }
    if record.status == "completed"
        && let Some(domain) = who.domain_to_set.take()
    {
        store.set_shop_domain(&who.store_id, &domain).await?;
    }
    record.updated_at = now_ms();
    store.put_app_upload(&record).await?;
    tracing::info!(
        store = %who.store_id, upload = %record.upload_id, run = run_key, csv_type,
        status = %record.status, rows = record.processed_rows, "app upload read"
    );
    Ok(record)
}

/// An upload's record as it starts: processing, its rows counted from the text (the
/// reader's count replaces it once read).
fn new_record(who: &Uploader, run_key: &str, csv_type: &str, csv: &str) -> AppUpload {
    let created_at = now_ms();
    AppUpload {
        upload_id: ulid::Ulid::new().to_string(),
        store_id: who.store_id.as_str().to_owned(),
        shop_id: who.shop.clone(),
        run_key: run_key.to_owned(),
        csv_type: csv_type.to_owned(),
        status: "processing".into(),
        total_rows: csv.lines().skip(1).filter(|l| !l.trim().is_empty()).count() as i64,
        processed_rows: 0,
        error_message: None,
        job_id: None,
        created_at,
        updated_at: created_at,
    }
}

/// A read upload: completed, with the reader's counts and its first rejection.
fn read_completed(record: &mut AppUpload, report: &IngestReport) {
    record.status = "completed".into();
    record.total_rows = report.rows_read as i64;
    record.processed_rows = report.rows_kept as i64;
    let rejected = report.rejected_total();
    if rejected > 0 {
        record.error_message = Some(match report.errors.first() {
            Some(first) => format!("{rejected} rows rejected; the first: {first}"),
            None => format!("{rejected} rows rejected"),
        });
    }
}

/// A variants upload the catalog already holds: completed, counting the rows the
/// catalog knows, with the first it does not.
fn variants_counted(record: &mut AppUpload, check: &VariantCheck) {
    record.status = "completed".into();
    record.total_rows = check.rows as i64;
    record.processed_rows = check.known as i64;
    if let Some(first) = &check.first_unknown {
        record.error_message = Some(format!(
            "{} of {} variants are not in the catalog; the first: {first}",
            check.rows - check.known,
            check.rows
        ));
    }
}

/// How many rows of a variants CSV the stored catalog knows.
struct VariantCheck {
    rows: u64,
    known: u64,
    /// `variants:ROW: …` for the first row it does not know.
    first_unknown: Option<String>,
}

/// Checks each row of a variants CSV against the catalog by its variant id (as
/// given or as a Shopify gid), SKU or product id.
///
/// It reads the rows itself, not through ingest's row reader: it counts every row
/// that reads as text whatever its field count, matches only these exact column
/// names, and numbers a row by its place after the header, all of which the app's
/// upload status has always reported.
fn known_variants(keys: &CatalogKeys, csv: &[u8]) -> VariantCheck {
    let mut check = VariantCheck {
        rows: 0,
        known: 0,
        first_unknown: None,
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(csv);
    let Ok(headers) = reader.headers().cloned() else {
        return check;
    };
    let column = |names: &[&str]| {
        names.iter().find_map(|n| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(n))
        })
    };
    let variant = column(&["variant_id", "id"]);
    let sku = column(&["variant_sku", "sku"]);
    let product = column(&["product_id"]);
    for (n, row) in reader.records().enumerate() {
        let Ok(row) = row else { continue };
        check.rows += 1;
        let cell = |c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let variant_id = cell(variant);
        let known = variant_id.is_some_and(|v| {
            keys.knows(v) || keys.knows(&format!("gid://shopify/ProductVariant/{v}"))
        }) || cell(sku).is_some_and(|s| keys.knows(s))
            || cell(product).is_some_and(|p| keys.knows(p));
        if known {
            check.known += 1;
        } else if check.first_unknown.is_none() {
            // Row 1 is the header.
            check.first_unknown = Some(format!(
                "variants:{}: variant {:?} is in no catalog row",
                n + 2,
                variant_id.unwrap_or("")
            ));
        }
    }
    check
}

/// Starts the run's generate job once it holds a completed catalog, variants and
/// orders upload (or, with `force`, completed orders over a stored catalog), unless
/// its orders upload has one already. Returns the orders upload, with its job.
async fn maybe_generate(
    state: &AppState,
    store_id: &StoreId,
    run_key: &str,
    force: bool,
) -> Result<Option<AppUpload>, AppApiError> {
    let store = &state.services.store;
    let uploads: Vec<AppUpload> = store
        .run_app_uploads(run_key)
        .await?
        .into_iter()
        .filter(|u| u.store_id == store_id.as_str())
        .collect();
    let newest = |t: &str| uploads.iter().find(|u| u.csv_type == t);
    let Some(orders) = newest("orders").cloned() else {
        return Ok(None);
    };
    let complete = REQUIRED
        .iter()
        .all(|t| newest(t).is_some_and(|u| u.status == "completed"));
    if orders.job_id.is_some() || orders.status != "completed" || !(complete || force) {
        return Ok(Some(orders));
    }
    crate::server::jobs::refuse_uninstalled(state, store_id).await?;
    let job_id = ulid::Ulid::new().to_string();
    // A default run, as an empty trigger asks for.
    let request = crate::pipeline::RunRequest {
        run_id: Some(job_id.clone()),
        ..crate::pipeline::FlatRequest::default().into_run_request()
    };
    let new = NewJob {
        job_id: job_id.clone(),
        store_id: store_id.as_str().to_owned(),
        request: serde_json::to_string(&request).map_err(|e| {
            AppApiError::from(ApiError::from_kind(
                crate::error::ErrorKind::Internal,
                e.to_string(),
            ))
        })?,
        max_attempts: state.services.settings.server.max_attempts,
        created_at: now_ms(),
        // The new data gets its own run, even behind one that is running.
        behind_others: true,
    };
    let (job, _) = store.enqueue_job(&new).await?;
    state.work_queued.notify_waiters();
    tracing::info!(job = %job.job_id, store = %store_id, run = run_key, "app upload started a job");
    let mut orders = orders;
    orders.job_id = Some(job.job_id);
    orders.updated_at = now_ms();
    store.put_app_upload(&orders).await?;
    Ok(Some(orders))
}

/// The status an upload answers with in the upload response.
fn answered_status(upload: &AppUpload) -> &'static str {
    match (upload.status.as_str(), &upload.job_id) {
        ("failed", _) => "failed",
        (_, Some(_)) | ("processing", _) => "processing",
        _ => "completed",
    }
}

/// `POST /api/shopify/upload`.
pub async fn upload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, AppApiError> {
    let limit_mb = state.services.settings.server.max_body_mb;
    let bytes = read_body(body, (limit_mb as u64).saturating_mul(1 << 20), limit_mb).await?;
    let request: UploadRequest = parse_body(&state, &bytes)?;
    let kind = csv_type(&request.csv_type)?;
    if request.csv_data.trim().is_empty() {
        return Err(AppApiError::validation("csvData: the CSV is empty"));
    }
    let run_key = run_key(request.run_id.as_deref())?;
    let mut who = uploader(&state, &headers, &request.shop_id).await?;
    let mut record = ingest_csv(&state, &mut who, &run_key, kind, request.csv_data).await?;
    if kind.0 == "orders"
        && let Some(orders) =
            maybe_generate(&state, &who.store_id, &run_key, request.trigger_pipeline).await?
    {
        record = orders;
    }
    Ok(Json(json!({
        "uploadId": record.upload_id,
        "runId": run_key,
        "status": answered_status(&record),
        "shopId": who.shop,
        "csvType": kind.0,
        "triggerPipeline": request.trigger_pipeline,
        "message": format!("Upload accepted. Poll /api/shopify/status/{} for progress.", record.upload_id),
    })))
}

/// `POST /api/shopify/upload-batch`: the four CSVs of a run in one request, read in
/// order (catalog, variants, inventory, orders).
pub async fn upload_batch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, AppApiError> {
    let limit_mb = state.services.settings.server.max_body_mb;
    let bytes = read_body(
        body,
        (limit_mb as u64).saturating_mul(4 << 20),
        limit_mb.saturating_mul(4),
    )
    .await?;
    let request: BatchRequest = parse_body(&state, &bytes)?;
    let parts = [
        ("catalogCsv", "catalog_joined", request.catalog_csv),
        ("variantsCsv", "variants", request.variants_csv),
        ("inventoryCsv", "inventory_levels", request.inventory_csv),
        ("ordersCsv", "orders", request.orders_csv),
    ];
    if let Some((field, _, _)) = parts.iter().find(|(_, _, csv)| csv.trim().is_empty()) {
        return Err(AppApiError::validation(format!(
            "{field}: the CSV is empty"
        )));
    }
    let run_key = run_key(request.run_id.as_deref())?;
    let mut who = uploader(&state, &headers, &request.shop_id).await?;
    let mut ids = HashMap::new();
    let mut orders = None;
    for (_, kind, csv) in parts {
        let record = ingest_csv(&state, &mut who, &run_key, csv_type(kind)?, csv).await?;
        ids.insert(kind, record.upload_id.clone());
        if kind == "orders" {
            orders = Some(record);
        }
    }
    let orders = match maybe_generate(&state, &who.store_id, &run_key, false).await? {
        Some(o) => o,
        None => orders.ok_or_else(|| {
            AppApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        })?,
    };
    Ok(Json(json!({
        "uploadId": orders.upload_id,
        "runId": run_key,
        "status": answered_status(&orders),
        "shopId": who.shop,
        "catalogUploadId": ids.get("catalog_joined"),
        "variantsUploadId": ids.get("variants"),
        "inventoryUploadId": ids.get("inventory_levels"),
        "ordersUploadId": orders.upload_id,
        "message": format!("Batch upload accepted. Poll /api/shopify/status/{} for progress.", orders.upload_id),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_types_and_their_aliases() {
        for (raw, want) in [
            ("products", "catalog_joined"),
            ("Catalog", "catalog_joined"),
            ("catalog_joined", "catalog_joined"),
            ("inventory", "inventory_levels"),
            ("inventory_levels", "inventory_levels"),
            ("variants", "variants"),
            ("orders", "orders"),
        ] {
            assert_eq!(csv_type(raw).map(|t| t.0).ok(), Some(want), "{raw}");
        }
        let err = csv_type("customers").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("catalog_joined"), "{}", err.message);
    }
}
