//! The endpoints the predecessor's Shopify app calls (`/api/shopify/*`), with the
//! request and response shapes its front end sends and reads, so a merchant can
//! point the app at bundleforge without changing it. They sit behind our auth (a
//! bearer token: the admin token, or the store's own), and `shop_id` is our store id
//! or the shop's domain.
//!
//! The app uploads CSVs as strings in JSON, grouped by a `runId`: the catalog
//! (`catalog_joined`), its `variants`, `inventory_levels` and `orders`. Each goes
//! through the same reader as `PUT /v1/stores/{store}/…` (a catalog and its parts
//! are kept together in the same way). As in the predecessor, once a run holds a
//! completed catalog, variants and orders upload, a generate job starts, and the
//! orders upload answers for it in `status` and the progress stream.
//!
//! Errors keep the predecessor's shape, `{"error": "message"}`.
//!
//! Prices go out as JSON numbers because the app reads numbers; each is written from
//! the exact decimal text of the amount in minor units, so `1250` cents is `12.5`,
//! never a rounded float.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::uploads::{self, Upload};
use super::{AppState, authorize_store, now_ms};
use crate::domain::{Bundle, BundleItem, BundleType, Currency, Objective, Product, StoreId};
use crate::ingest::IngestError;
use crate::pipeline::{Phase, PhaseState, RunProgress};
use crate::store::{AppUpload, Decision, JobRecord, JobState, NewJob};

/// The CSV types an upload names, and their aliases.
const CSV_TYPES: &str = "catalog_joined, inventory_levels, orders, variants";
/// Upload types a run needs before its bundles are generated.
const REQUIRED: [&str; 3] = ["catalog_joined", "variants", "orders"];

/// An error as the predecessor answered it: `{"error": "…"}` (a validation failure
/// adds `detail`).
#[derive(Debug)]
pub struct AppApiError {
    status: StatusCode,
    message: String,
    detail: Option<Value>,
    retry_after: Option<u64>,
}

impl AppApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppApiError {
            status,
            message: message.into(),
            detail: None,
            retry_after: None,
        }
    }

    fn validation(message: impl Into<String>) -> Self {
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

/// A shop id as the app sends it: trimmed, lower case, not empty.
fn sanitize_shop(raw: &str) -> Result<String, AppApiError> {
    let shop = raw.trim().to_ascii_lowercase();
    if shop.is_empty() || shop.len() > 255 {
        return Err(AppApiError::new(StatusCode::BAD_REQUEST, "Invalid shop_id"));
    }
    Ok(shop)
}

/// The store a shop id names: a store id, or a shop's domain (as webhooks resolve
/// it). With `create`, a domain no store is yet becomes a new store, named after the
/// shop (`NAME.myshopify.com` → `NAME`), and the domain to give it once it exists.
async fn store_for(
    state: &AppState,
    shop: &str,
    create: bool,
) -> Result<(StoreId, Option<String>), AppApiError> {
    let store = &state.services.store;
    if !shop.contains('.') {
        let id = StoreId::parse(shop).map_err(|e| {
            AppApiError::new(StatusCode::BAD_REQUEST, format!("Invalid shop_id: {e}"))
        })?;
        return Ok((id, None));
    }
    let Some(domain) = crate::store::shop_domain(shop) else {
        return Err(AppApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid shop_id: {shop:?} is neither a store id nor a shop's domain"),
        ));
    };
    if let Some(id) = store.store_for_shop(&domain).await? {
        return Ok((id, None));
    }
    if !create {
        return Err(AppApiError::new(
            StatusCode::NOT_FOUND,
            format!("Unknown shop {domain}: upload its catalog and orders first"),
        ));
    }
    let name = domain.strip_suffix(".myshopify.com").unwrap_or(&domain);
    let mut candidates = vec![name.to_owned(), domain.replace('.', "-")];
    candidates.dedup();
    for candidate in candidates {
        if let Ok(id) = StoreId::parse(&candidate)
            && store.get_store(&id).await?.is_none()
        {
            return Ok((id, Some(domain)));
        }
    }
    Err(AppApiError::new(
        StatusCode::CONFLICT,
        format!("no store id is free for shop {domain}: give an existing store this domain first"),
    ))
}

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
    super::parse_json_body(state, bytes, "the upload's")
        .map_err(|e| AppApiError::validation(e.message))
}

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
    let created_at = now_ms();
    let mut record = AppUpload {
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
    };
    let store = &state.services.store;
    store.put_app_upload(&record).await?;
    let csv = Bytes::from(csv);
    match uploads::ingest_upload(state, &who.store_id, upload, csv_type, csv.clone()).await {
        Ok(outcome) => {
            let report = &outcome.report;
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
        Err(e)
            if matches!(upload, Upload::Variants)
                && matches!(e.refused, Some(IngestError::VariantsAlreadyGiven { .. })) =>
        {
            // The app sends the variants beside a catalog that holds them already
            // (its `catalog_joined` is one row per variant): nothing to add, so the
            // upload counts the rows the catalog knows.
            let keys = store.catalog_keys(&who.store_id).await?;
            let check = known_variants(&keys, &csv);
            record.status = "completed".into();
            record.total_rows = check.rows as i64;
            record.processed_rows = check.known as i64;
            if let Some(first) = check.first_unknown {
                record.error_message = Some(format!(
                    "{} of {} variants are not in the catalog; the first: {first}",
                    check.rows - check.known,
                    check.rows
                ));
            }
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

/// How many rows of a variants CSV the stored catalog knows.
struct VariantCheck {
    rows: u64,
    known: u64,
    /// `variants:ROW: …` for the first row it does not know.
    first_unknown: Option<String>,
}

/// Checks each row of a variants CSV against the catalog by its variant id (as
/// given or as a Shopify gid), SKU or product id.
fn known_variants(keys: &crate::ingest::CatalogKeys, csv: &[u8]) -> VariantCheck {
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

/// An upload by its id, or a run's newest orders upload by the run id; `None` when
/// neither exists.
async fn find_upload(state: &AppState, id: &str) -> Result<Option<AppUpload>, AppApiError> {
    let store = &state.services.store;
    if let Some(u) = store.get_app_upload(id).await? {
        return Ok(Some(u));
    }
    Ok(store
        .run_app_uploads(id)
        .await?
        .into_iter()
        .find(|u| u.csv_type == "orders"))
}

/// Where an upload and its job stand, in the predecessor's terms.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    /// `processing`, `completed` or `failed` (the progress stream's); `status` maps
    /// a running job to `generating_bundles`.
    status: &'static str,
    generating: bool,
    step: &'static str,
    progress: u32,
    message: String,
    bundle_count: Option<u64>,
    error_message: Option<String>,
    metadata: Value,
}

impl Snapshot {
    fn is_final(&self) -> bool {
        self.status != "processing"
    }
}

/// A running job's step and percentage from its phases: each phase a share of the
/// way, in proportion to its progress.
fn job_step(phases: &RunProgress) -> (&'static str, u32, String) {
    let Some(last) = phases.last() else {
        return ("initializing", 8, "Starting the run".into());
    };
    // The app's step name, and the share of the way the phase spans.
    let (step, lo, hi, message) = match last.phase {
        Phase::Context => (
            "enrichment",
            10.0,
            40.0,
            "Reading the store: embeddings, rules, statistics",
        ),
        Phase::Candidates => (
            "ml_generation",
            40.0,
            70.0,
            "Generating and scoring candidate bundles",
        ),
        Phase::Optimize => (
            "optimization",
            70.0,
            80.0,
            "Deduplicating, optimizing and pricing",
        ),
        Phase::Copy if last.state == PhaseState::Finished => {
            return ("staged_publish", 95, "Saving the bundles".into());
        }
        Phase::Copy => (
            "ai_descriptions",
            80.0,
            95.0,
            "Writing bundle copy and explanations",
        ),
    };
    (
        step,
        (lo + (hi - lo) * last.fraction()).round() as u32,
        message.into(),
    )
}

async fn snapshot(state: &AppState, upload: &AppUpload) -> Result<Snapshot, AppApiError> {
    let store = &state.services.store;
    let mut s = Snapshot {
        status: "processing",
        generating: false,
        step: "queueing",
        progress: 0,
        message: "Processing...".into(),
        bundle_count: None,
        error_message: upload.error_message.clone(),
        metadata: json!({"csv_type": upload.csv_type, "run_id": upload.run_key,
                         "total_rows": upload.total_rows, "processed_rows": upload.processed_rows}),
    };
    if upload.status == "failed" {
        s.status = "failed";
        s.step = "finalization";
        s.progress = 100;
        s.message = "The upload could not be read".into();
        return Ok(s);
    }
    let Some(job_id) = &upload.job_id else {
        if upload.status == "completed" {
            s.status = "completed";
            s.step = "finalization";
            s.progress = 100;
            s.message = if upload.csv_type == "orders" {
                "Upload processed; bundles are generated once the run has its catalog, variants and orders".into()
            } else {
                "Upload processed".into()
            };
        }
        return Ok(s);
    };
    s.metadata["job_id"] = json!(job_id);
    let Some(job) = store.get_job(job_id).await? else {
        s.status = "failed";
        s.step = "finalization";
        s.progress = 100;
        s.error_message = Some(format!("job {job_id} is gone"));
        return Ok(s);
    };
    apply_job(state, &job, &mut s).await?;
    Ok(s)
}

async fn apply_job(state: &AppState, job: &JobRecord, s: &mut Snapshot) -> Result<(), AppApiError> {
    s.generating = true;
    match job.state {
        JobState::Queued => {
            s.step = "queueing";
            s.progress = 5;
            s.message = "Queued: waiting for a worker".into();
        }
        JobState::Running => {
            let phases = super::jobs::current_phases(state, job);
            let (step, progress, message) = job_step(&phases);
            s.step = step;
            s.progress = progress;
            s.message = message;
            s.metadata["phases"] = serde_json::to_value(&phases).unwrap_or_default();
        }
        JobState::Succeeded => {
            let run_id = job.run_id.clone().unwrap_or_else(|| job.job_id.clone());
            let store_id =
                StoreId::parse(&job.store_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let count = state
                .services
                .store
                .stored_run(&store_id, Some(&run_id))
                .await?
                .map_or(0, |r| r.bundles.len() as u64);
            s.generating = false;
            s.status = "completed";
            s.step = "finalization";
            s.progress = 100;
            s.message = format!("{count} bundles ready");
            s.bundle_count = Some(count);
            s.metadata["run_id"] = json!(run_id);
        }
        JobState::Failed | JobState::Cancelled => {
            s.generating = false;
            s.status = "failed";
            s.step = "finalization";
            s.progress = 100;
            s.message = format!("Bundle generation {}", job.state.as_str());
            s.error_message = job
                .error_message
                .clone()
                .or_else(|| Some(format!("the job was {}", job.state.as_str())));
        }
    }
    Ok(())
}

/// `GET /api/shopify/status/{id}`: an upload id, or a run id (its orders upload).
pub async fn status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppApiError> {
    let Some(upload) = find_upload(&state, &id).await? else {
        super::authorize_any(&state, &headers).await?;
        return Err(AppApiError::new(
            StatusCode::NOT_FOUND,
            format!("Upload {id} not found"),
        ));
    };
    let store_id =
        StoreId::parse(&upload.store_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    authorize_store(&state, &headers, &store_id).await?;
    let s = snapshot(&state, &upload).await?;
    let status = if s.generating {
        "generating_bundles"
    } else {
        s.status
    };
    Ok(Json(json!({
        "upload_id": upload.upload_id,
        "shop_id": upload.shop_id,
        "status": status,
        "total_rows": upload.total_rows,
        "processed_rows": upload.processed_rows,
        "error_message": s.error_message,
        "bundle_count": s.bundle_count.filter(|&n| n > 0),
    })))
}

/// How often the progress stream looks, and how long it waits for an upload that
/// does not exist yet (ticks).
const STREAM_TICK: Duration = Duration::from_millis(500);
const STREAM_WAIT_TICKS: u32 = 60;

fn event(name: &str, data: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().event(name).data(data.to_string()))
}

/// `GET /api/shopify/progress/{id}/stream`: `progress` events whenever the status or
/// percentage changes, then `complete` (with `final: true`) once it is completed or
/// failed; `error` when the upload never appears.
pub async fn progress_stream(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppApiError> {
    // A store token sees its own uploads only; checked once the upload is found.
    super::authorize_any(&state, &headers).await?;
    let found = find_upload(&state, &id).await?;
    if let Some(u) = &found {
        let store_id =
            StoreId::parse(&u.store_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
        authorize_store(&state, &headers, &store_id).await?;
    }
    let allowed = super::bearer_store(&state, &headers).await?;
    let stream = async_stream(state, id, allowed);
    let mut response = Sse::new(stream).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The stream behind [`progress_stream`]; `allowed` is the one store a store token
/// may follow (`None` for the admin token).
fn async_stream(
    state: Arc<AppState>,
    id: String,
    allowed: Option<String>,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    enum Step {
        Go(u32, Option<(Snapshot, String)>),
        Done,
    }
    futures_util::stream::unfold(Step::Go(0, None), move |step| {
        let state = state.clone();
        let id = id.clone();
        let allowed = allowed.clone();
        async move {
            let Step::Go(tries, last) = step else {
                return None;
            };
            if tries > 0 || last.is_some() {
                tokio::time::sleep(STREAM_TICK).await;
            }
            let upload = match find_upload(&state, &id).await {
                Ok(u) => u.filter(|u| allowed.as_deref().is_none_or(|s| s == u.store_id)),
                Err(e) => {
                    let data = json!({"status": "error", "message": e.message});
                    return Some((vec![event("error", &data)], Step::Done));
                }
            };
            let Some(upload) = upload else {
                if tries >= STREAM_WAIT_TICKS {
                    let data = json!({"status": "error", "message": format!("Upload {id} not found")});
                    return Some((vec![event("error", &data)], Step::Done));
                }
                let data = json!({"status": "waiting", "message": "Waiting for upload to be created...", "upload_id": id});
                return Some((vec![event("progress", &data)], Step::Go(tries + 1, None)));
            };
            let s = match snapshot(&state, &upload).await {
                Ok(s) => s,
                Err(e) => {
                    let data = json!({"status": "error", "message": e.message});
                    return Some((vec![event("error", &data)], Step::Done));
                }
            };
            let changed = last
                .as_ref()
                .is_none_or(|(l, _)| l.status != s.status || l.progress != s.progress || l.step != s.step);
            let mut events = Vec::new();
            if changed {
                events.push(event(
                    "progress",
                    &json!({
                        "upload_id": upload.upload_id,
                        "step": s.step,
                        "status": s.status,
                        "progress": s.progress,
                        "message": s.message,
                        "bundle_count": s.bundle_count.unwrap_or(0),
                        "metadata": s.metadata,
                        "error_message": s.error_message,
                    }),
                ));
            }
            if s.is_final() {
                events.push(event(
                    "complete",
                    &json!({
                        "upload_id": upload.upload_id,
                        "step": s.step,
                        "status": s.status,
                        "progress": s.progress,
                        "bundle_count": s.bundle_count.unwrap_or(0),
                        "final": true,
                    }),
                ));
                return Some((events, Step::Done));
            }
            Some((events, Step::Go(tries, Some((s, upload.upload_id)))))
        }
    })
    .flat_map(futures_util::stream::iter)
}

#[derive(Debug, Deserialize)]
pub struct RecommendationsQuery {
    #[serde(default)]
    approved: Option<bool>,
    #[serde(default)]
    limit: Option<i64>,
}

/// The predecessor's name for an objective.
fn objective_name(o: Objective) -> &'static str {
    match o {
        Objective::IncreaseAov => "increase_aov",
        Objective::ClearSlowMovers => "clear_slow_movers",
        Objective::ProtectMargin => "margin_guard",
        Objective::LaunchNew => "new_launch",
        Objective::Seasonal => "seasonal_promo",
        Objective::Gift => "gift_box",
        Objective::CrossSell => "cross_sell",
        Objective::Replenish => "subscription_push",
    }
}

/// The app's front end knows three kinds: FBT, VOLUME and BOGO. A fixed set and an
/// add-on are bought together (FBT); a mix & match is a quantity break over a set
/// (VOLUME); the offer's own type is kept beside it (`bundleforge_type`).
fn type_name(t: BundleType) -> &'static str {
    match t {
        BundleType::Fixed | BundleType::Addon => "FBT",
        BundleType::Volume | BundleType::MixMatch => "VOLUME",
        BundleType::Bogo => "BOGO",
    }
}

/// An amount as the JSON number the app reads, from its exact decimal text.
fn amount(minor: i64, currency: Currency) -> Value {
    let text = crate::pipeline::output::decimal_text(minor, currency);
    serde_json::from_str::<serde_json::Number>(&text).map_or(Value::Null, Value::Number)
}

/// A Shopify id as its GraphQL id (`gid://shopify/KIND/ID`), when it is one.
fn gid(kind: &str, id: &str) -> Value {
    if id.starts_with("gid://") {
        json!(id)
    } else if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        json!(format!("gid://shopify/{kind}/{id}"))
    } else {
        Value::Null
    }
}

fn item(p: &BundleItem, product: Option<&Product>, currency: Currency) -> Value {
    let product_id = product.map(|p| p.product_id.as_str()).unwrap_or("");
    json!({
        "sku": p.sku.clone().unwrap_or_default(),
        "name": p.title,
        "title": p.title,
        "price": amount(p.unit_price_minor, currency),
        "price_minor": p.unit_price_minor,
        "quantity": p.quantity,
        "variant_id": p.product_id,
        "product_id": product_id,
        "product_gid": gid("Product", product_id),
        "variant_gid": gid("ProductVariant", &p.product_id),
        "image_url": Value::Null,
    })
}

/// One bundle as the predecessor's recommendation.
fn recommendation(
    b: &Bundle,
    catalog: &HashMap<String, Product>,
    approved: bool,
    created_at: &str,
) -> Value {
    let c = b.currency;
    let items: Vec<Value> = b
        .products
        .iter()
        .map(|p| item(p, catalog.get(&p.product_id), c))
        .collect();
    let pct = (b.discount_pct * 100.0).round() / 100.0;
    let saved = b.list_price_minor - b.final_price_minor;
    let mut pricing = json!({
        "original_total": amount(b.list_price_minor, c),
        "bundle_price": amount(b.final_price_minor, c),
        "discount_amount": amount(saved, c),
        "discount_pct": format!("{}%", pct.round() as i64),
        "discount_percentage": pct,
        "discount_type": "percentage",
        "currency": c.to_string(),
        "original_total_minor": b.list_price_minor,
        "bundle_price_minor": b.final_price_minor,
    });
    let products = match b.bundle_type {
        BundleType::Fixed | BundleType::Addon => json!({
            "items": items,
            "trigger_product": items.first().cloned().unwrap_or_else(|| json!({})),
            "addon_products": items.get(1..).unwrap_or(&[]),
        }),
        BundleType::Volume | BundleType::MixMatch => {
            let minimums: Vec<u32> = match b.bundle_type {
                BundleType::MixMatch => vec![b.pick.unwrap_or(2)],
                _ => b.tiers.clone(),
            };
            let tiers: Vec<Value> = minimums
                .iter()
                .map(|&q| {
                    json!({"min_qty": q, "discount_type": "PERCENTAGE", "discount_value": pct,
                           "label": format!("Buy {q}, save {}%", pct.round() as i64),
                           "type": "percentage", "value": pct})
                })
                .collect();
            pricing["discount_type"] = json!("tiered");
            pricing["volume_tiers"] = json!(tiers);
            json!({"items": items, "volume_tiers": tiers})
        }
        BundleType::Bogo => {
            let gets = f64::from(b.gets_discount_pct.unwrap_or(0).min(100));
            let (buys, rewards) = if items.len() == 1 {
                (items.clone(), items.clone())
            } else {
                (items[..1].to_vec(), items[1..].to_vec())
            };
            let with = |list: Vec<Value>, extra: Value| -> Vec<Value> {
                list.into_iter()
                    .map(|mut v| {
                        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                            m.extend(e.clone());
                        }
                        v
                    })
                    .collect()
            };
            let buy_qty = b.products.first().map_or(1, |p| p.quantity.max(1));
            let bogo = json!({
                "buy_qty": buy_qty, "get_qty": 1,
                "discount_type": if gets >= 100.0 { "free" } else { "percent" },
                "discount_percent": gets, "same_product": b.products.len() == 1,
                "mode": if gets >= 100.0 { "free_same_variant" } else { "percent_off" },
            });
            pricing["discount_type"] = json!("bogo");
            pricing["bogo_config"] = bogo;
            json!({
                "items": items,
                "qualifiers": with(buys, json!({"quantity": buy_qty})),
                "rewards": with(rewards, json!({"quantity": 1, "discount_type": if gets >= 100.0 { "free" } else { "percent" }, "discount_percent": gets})),
            })
        }
    };
    let savings = crate::pipeline::output::decimal_text(saved, c);
    json!({
        "id": b.id,
        "bundle_type": type_name(b.bundle_type),
        "bundleforge_type": b.bundle_type.as_str(),
        "objective": objective_name(b.objective),
        "bundleforge_objective": b.objective.as_str(),
        "products": products,
        "pricing": pricing,
        "ai_copy": {
            "title": b.copy.title,
            "description": b.copy.description,
            "badge": b.copy.badge,
            "tagline": b.copy.badge,
            "cta_text": "Add bundle to cart",
            "savings_message": format!("Save {savings} {c}"),
            "is_active": true,
            "show_on": ["product", "cart"],
            "features": [],
            "explanation": b.explanation.text,
            "source": b.copy.source,
        },
        "confidence": b.score.transactional,
        "predicted_lift": Value::Null,
        "ranking_score": b.score.total,
        "is_approved": approved,
        "created_at": created_at,
    })
}

/// `GET /api/shopify/recommendations/{shop_id}?approved=&limit=`: the latest run's
/// bundles, best first.
pub async fn recommendations(
    State(state): State<Arc<AppState>>,
    Path(raw_shop): Path<String>,
    Query(query): Query<RecommendationsQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppApiError> {
    let shop = sanitize_shop(&raw_shop)?;
    let limit = match query.limit {
        None => 20,
        Some(n) if n >= 1 => n as usize,
        Some(_) => return Err(AppApiError::validation("limit: at least 1")),
    };
    let store = &state.services.store;
    let (store_id, _) = match store_for(&state, &shop, false).await {
        Ok(found) => found,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            super::authorize_admin(&state, &headers)?;
            return Ok(Json(
                json!({"shop_id": shop, "count": 0, "recommendations": []}),
            ));
        }
        Err(e) => return Err(e),
    };
    authorize_store(&state, &headers, &store_id).await?;
    let Some(run) = store.stored_run(&store_id, None).await? else {
        return Ok(Json(
            json!({"shop_id": shop, "count": 0, "recommendations": []}),
        ));
    };
    let created_at = chrono::DateTime::from_timestamp(run.finished_at.unwrap_or(run.started_at), 0)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default();
    let mut bundles = run.bundles.clone();
    bundles.sort_by(|a, b| {
        b.score
            .total
            .total_cmp(&a.score.total)
            .then(b.score.transactional.total_cmp(&a.score.transactional))
    });
    let approved: std::collections::HashSet<String> = store
        .approvals(&store_id)
        .await?
        .into_iter()
        .filter(|a| a.decision == Decision::Approved)
        .map(|a| a.bundle_id)
        .collect();
    let mut catalog = HashMap::new();
    for b in &bundles {
        for p in &b.products {
            if !catalog.contains_key(&p.product_id)
                && let Some(found) = store.find_product(&store_id, &p.product_id).await?
            {
                catalog.insert(p.product_id.clone(), found);
            }
        }
    }
    let list: Vec<Value> = bundles
        .iter()
        .filter(|b| {
            query
                .approved
                .is_none_or(|want| approved.contains(&b.id) == want)
        })
        .take(limit)
        .map(|b| recommendation(b, &catalog, approved.contains(&b.id), &created_at))
        .collect();
    Ok(Json(
        json!({"shop_id": shop, "count": list.len(), "recommendations": list}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ApproveQuery {
    shop_id: Option<String>,
}

/// `POST /api/shopify/recommendations/{id}/approve?shop_id=`: approves the bundle in
/// the shop's latest run (later runs keep it while it stays valid).
pub async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<ApproveQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppApiError> {
    let Some(raw_shop) = query.shop_id else {
        return Err(AppApiError::validation(
            "shop_id: a query parameter is required",
        ));
    };
    let shop = sanitize_shop(&raw_shop)?;
    let (store_id, _) = store_for(&state, &shop, false).await?;
    let caller = authorize_store(&state, &headers, &store_id).await?;
    let decided = crate::app::decide(
        state.services.store.as_ref(),
        &store_id,
        None,
        std::slice::from_ref(&id),
        Decision::Approved,
        &caller.0,
    )
    .await;
    match decided {
        Ok(_) => Ok(Json(
            json!({"recommendationId": id, "status": "approved", "shopId": shop}),
        )),
        Err(
            crate::app::AppError::UnknownBundle { .. } | crate::app::AppError::UnknownRun { .. },
        ) => Err(AppApiError::new(
            StatusCode::NOT_FOUND,
            "Recommendation not found",
        )),
        Err(e) => Err(ApiError::from(e).into()),
    }
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

    #[test]
    fn amounts_are_exact_numbers_from_minor_units() {
        assert_eq!(amount(1250, Currency::USD).to_string(), "12.5");
        assert_eq!(amount(1999, Currency::USD).to_string(), "19.99");
        assert_eq!(amount(-5, Currency::USD).to_string(), "-0.05");
        let yen = Currency::parse("JPY").unwrap();
        assert_eq!(amount(1250, yen).to_string(), "1250");
    }

    #[test]
    fn shopify_ids_become_gids_and_other_ids_do_not() {
        assert_eq!(
            gid("Product", "632910392"),
            json!("gid://shopify/Product/632910392")
        );
        assert_eq!(
            gid("ProductVariant", "gid://shopify/ProductVariant/1"),
            json!("gid://shopify/ProductVariant/1")
        );
        assert_eq!(gid("Product", "MUG-1"), Value::Null);
    }

    #[test]
    fn a_running_job_reports_its_phase_as_a_step_and_share_of_the_way() {
        let read = |v: Value| serde_json::from_value::<RunProgress>(v).unwrap();
        let phases = read(json!([
            {"phase": "context", "state": "finished", "done": 5, "total": 5},
            {"phase": "candidates", "state": "running", "done": 20, "total": 40}
        ]));
        assert_eq!(job_step(&phases).0, "ml_generation");
        assert_eq!(job_step(&phases).1, 55);
        let copy_done =
            read(json!([{"phase": "copy", "state": "finished", "done": 3, "total": 3}]));
        assert_eq!(job_step(&copy_done).0, "staged_publish");
        assert_eq!(job_step(&RunProgress::default()).0, "initializing");
    }
}
