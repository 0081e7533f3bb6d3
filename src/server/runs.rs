//! Results: a store's saved runs, each the document `generate --json` prints, their
//! bundles filtered, and the files `generate` writes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use std::collections::HashMap;

use axum::body::Bytes;

use super::catalog::{PageQuery, store_and_caller, store_of};
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::jobs::rfc3339_ms;
use crate::domain::{Bundle, BundleType, Objective, StoreId};
use crate::store::{Approval, Decision, StoredRun};

/// `{"run", "bundles"}` of a stored run.
fn run_document(stored: &StoredRun, bundles: Vec<Value>) -> Value {
    let run = stored
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        // Runs saved before summaries were kept: what their columns say.
        .unwrap_or_else(|| {
            json!({
                "run_id": stored.run_id,
                "status": stored.status,
                "started_at": rfc3339_ms(stored.started_at * 1000),
                "finished_at": stored.finished_at.and_then(|t| rfc3339_ms(t * 1000)),
            })
        });
    json!({"run": run, "bundles": bundles})
}

/// `?objective=&type=&product=`: which of a run's bundles to show.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFilter {
    #[serde(default)]
    objective: Option<String>,
    #[serde(default, rename = "type")]
    bundle_type: Option<String>,
    /// A variant id, product id or SKU one of its products has.
    #[serde(default)]
    product: Option<String>,
}

/// A filter with its names checked (an unknown objective is a 400 listing the valid
/// ones, not an empty list).
struct CheckedFilter {
    objective: Option<Objective>,
    bundle_type: Option<BundleType>,
    product: Option<String>,
}

impl BundleFilter {
    fn check(&self) -> Result<CheckedFilter, ApiError> {
        let objective = match &self.objective {
            Some(o) => Some(
                o.parse::<Objective>()
                    .map_err(|e| ApiError::bad_request(format!("objective: {e}")))?,
            ),
            None => None,
        };
        let bundle_type = match &self.bundle_type {
            Some(t) => Some(
                t.parse::<BundleType>()
                    .map_err(|e| ApiError::bad_request(format!("type: {e}")))?,
            ),
            None => None,
        };
        Ok(CheckedFilter {
            objective,
            bundle_type,
            product: self.product.clone(),
        })
    }
}

impl CheckedFilter {
    fn keeps(&self, b: &Bundle) -> bool {
        self.objective.is_none_or(|o| b.objective == o)
            && self.bundle_type.is_none_or(|t| b.bundle_type == t)
            && self.product.as_deref().is_none_or(|p| {
                b.products
                    .iter()
                    .any(|i| i.product_id == p || i.sku.as_deref() == Some(p))
            })
    }
}

/// A run of a store: `latest` or its id.
pub async fn load_run(
    state: &AppState,
    store_id: &StoreId,
    run: &str,
) -> Result<StoredRun, ApiError> {
    let run_id = (run != "latest").then_some(run);
    let stored = state.services.store.stored_run(store_id, run_id).await?;
    stored.ok_or_else(|| {
        ApiError::not_found(match run_id {
            Some(r) => format!("store {:?} has no run {r:?}", store_id.as_str()),
            None => format!(
                "store {:?} has no run yet: trigger a job",
                store_id.as_str()
            ),
        })
    })
}

/// A run and the bundles the filter keeps, as the API shows them (see [`values`]).
async fn filtered(
    state: &AppState,
    headers: &HeaderMap,
    (store, run): (&str, &str),
    filter: &BundleFilter,
) -> Result<(StoredRun, Vec<Value>), ApiError> {
    let filter = filter.check()?;
    let store_id = store_of(state, headers, store).await?;
    let mut stored = load_run(state, &store_id, run).await?;
    let mut bundles = std::mem::take(&mut stored.bundles);
    bundles.retain(|b| filter.keeps(b));
    let shown = values(state, &store_id, &bundles).await?;
    Ok((stored, shown))
}

/// Bundles as the API shows them: each with the merchant's decision on its id, if any
/// (`decision`: `approved` or `rejected`, by whom, when, in which run).
async fn values(
    state: &AppState,
    store_id: &StoreId,
    bundles: &[Bundle],
) -> Result<Vec<Value>, ApiError> {
    let approvals = state.services.store.approvals(store_id).await?;
    Ok(with_decisions(bundles, &approvals))
}

/// Bundles as values, each with its decision (see [`values`]).
fn with_decisions(bundles: &[Bundle], approvals: &[Approval]) -> Vec<Value> {
    let decisions: HashMap<&str, &Approval> = approvals
        .iter()
        .map(|a| (a.bundle_id.as_str(), a))
        .collect();
    bundles
        .iter()
        .filter_map(|b| {
            let mut v = serde_json::to_value(b).ok()?;
            if let (Some(a), Some(map)) = (decisions.get(b.id.as_str()), v.as_object_mut()) {
                map.insert("decision".into(), decision_document(a));
            }
            Some(v)
        })
        .collect()
}

fn decision_document(a: &Approval) -> Value {
    json!({
        "decision": a.decision.as_str(),
        "bundle_id": a.bundle_id,
        "run_id": a.run_id,
        "decided_by": a.decided_by,
        "decided_at": rfc3339_ms(a.decided_at),
    })
}

/// The body of approve / reject: who decided, when the dashboard knows better than
/// the token (`{"by": "Ana at the Berlin shop"}`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    by: Option<String>,
}

/// `POST /v1/stores/{store}/runs/{run}/bundles/{id}/approve` (and `/reject`).
pub async fn decide(
    decision: Decision,
    state: Arc<AppState>,
    (store, run, bundle): (String, String, String),
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (store_id, caller) = store_and_caller(&state, &headers, &store).await?;
    let body: DecisionBody = super::parse_json_body(&state, &body, "the decision's")?;
    let by = match body.by.as_deref().map(str::trim) {
        Some("") | None => caller.0,
        Some(by) if by.chars().count() > 200 => {
            return Err(ApiError::bad_request("by: at most 200 characters"));
        }
        Some(by) => by.to_owned(),
    };
    let run_id = (run != "latest").then_some(run.as_str());
    let recorded = crate::app::decide(
        state.services.store.as_ref(),
        &store_id,
        run_id,
        std::slice::from_ref(&bundle),
        decision,
        &by,
    )
    .await?;
    let a = recorded
        .first()
        .ok_or_else(|| ApiError::not_found(format!("no bundle {bundle:?}")))?;
    Ok(Json(decision_document(a)))
}

/// `GET /v1/stores/{store}/runs/{run}` (`latest` for the latest), filtered by
/// `?objective=&type=&product=`.
pub async fn one(
    State(state): State<Arc<AppState>>,
    ApiPath((store, run)): ApiPath<(String, String)>,
    ApiQuery(filter): ApiQuery<BundleFilter>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (stored, bundles) = filtered(&state, &headers, (&store, &run), &filter).await?;
    Ok(Json(run_document(&stored, bundles)))
}

/// `GET /v1/stores/{store}/runs/latest`. The hot read of a dashboard: unfiltered, it
/// is answered from the document last made for the same run and the same decisions
/// (a saved run never changes; a decision or a newer run makes a new document), so
/// it costs two small queries instead of loading and rendering every bundle.
pub async fn latest(
    State(state): State<Arc<AppState>>,
    ApiPath(store): ApiPath<String>,
    ApiQuery(filter): ApiQuery<BundleFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let unfiltered =
        filter.objective.is_none() && filter.bundle_type.is_none() && filter.product.is_none();
    if !unfiltered {
        let doc = one(
            State(state),
            ApiPath((store, "latest".to_owned())),
            ApiQuery(filter),
            headers,
        )
        .await?;
        return Ok(doc.into_response());
    }
    let store_id = store_of(&state, &headers, &store).await?;
    let services = &state.services;
    let Some(run_id) = services.store.latest_run_id(&store_id).await? else {
        return Err(ApiError::not_found(format!(
            "store {:?} has no run yet: trigger a job",
            store_id.as_str()
        )));
    };
    let approvals = services.store.approvals(&store_id).await?;
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        run_id.hash(&mut h);
        for a in &approvals {
            (
                &a.bundle_id,
                a.decision.as_str(),
                &a.run_id,
                &a.decided_by,
                &a.decided_at,
            )
                .hash(&mut h);
        }
        h.finish()
    };
    let cached = state.latest_documents.lock().ok().and_then(|c| {
        c.get(store_id.as_str())
            .filter(|(k, _)| *k == key)
            .map(|(_, b)| b.clone())
    });
    let body = match cached {
        Some(body) => body,
        None => {
            let stored = load_run(&state, &store_id, &run_id).await?;
            let values = with_decisions(&stored.bundles, &approvals);
            let bytes = serde_json::to_vec(&run_document(&stored, values)).map_err(|e| {
                ApiError::from_kind(crate::error::ErrorKind::Internal, e.to_string())
            })?;
            let body = axum::body::Bytes::from(bytes);
            if let Ok(mut c) = state.latest_documents.lock() {
                c.insert(store_id.as_str().to_owned(), (key, body.clone()));
            }
            body
        }
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// `GET /v1/stores/{store}/runs/{run}/bundles`: just the bundles, filtered.
pub async fn bundles(
    State(state): State<Arc<AppState>>,
    ApiPath((store, run)): ApiPath<(String, String)>,
    ApiQuery(filter): ApiQuery<BundleFilter>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (stored, bundles) = filtered(&state, &headers, (&store, &run), &filter).await?;
    Ok(Json(json!({"run_id": stored.run_id, "bundles": bundles})))
}

/// `GET /v1/stores/{store}/runs?offset=&limit=`: latest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    ApiPath(store): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    page.check()?;
    let store_id = store_of(&state, &headers, &store).await?;
    let found = state
        .services
        .store
        .runs_page(&store_id, page.offset, page.limit)
        .await?;
    let items = found
        .items
        .iter()
        .map(|r| {
            json!({
                "run_id": r.run_id,
                "status": r.status,
                "started_at": rfc3339_ms(r.started_at * 1000),
                "finished_at": r.finished_at.and_then(|t| rfc3339_ms(t * 1000)),
                "as_of": r.as_of.and_then(|t| rfc3339_ms(t * 1000)),
                "bundles": r.bundles,
                "href": format!("/v1/stores/{}/runs/{}", store_id.as_str(), r.run_id),
            })
        })
        .collect();
    Ok(Json(page.document(items, found.total)))
}

/// The files of a run as `generate` writes them.
#[derive(Debug, Clone, Copy)]
pub enum RunFile {
    Report,
    Csv,
    Shopify,
    Json,
}

fn file_response(content_type: &'static str, name: &str, body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `GET /v1/stores/{store}/runs/{run}/report.html` (and `bundles.csv`,
/// `shopify.json`, `bundles.json`).
pub async fn file(
    which: RunFile,
    state: Arc<AppState>,
    store: String,
    run: String,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store_id = store_of(&state, &headers, &store).await?;
    let stored = load_run(&state, &store_id, &run).await?;
    use crate::pipeline::output;
    Ok(match which {
        RunFile::Report => {
            let Some(html) = stored.report_html.clone().filter(|h| !h.is_empty()) else {
                return Err(ApiError::not_found(format!(
                    "run {:?} was saved before reports were kept: run the job again",
                    stored.run_id
                )));
            };
            file_response("text/html; charset=utf-8", "report.html", html)
        }
        RunFile::Csv => file_response(
            "text/csv; charset=utf-8",
            "bundles.csv",
            output::csv(&stored.bundles),
        ),
        RunFile::Shopify => file_response(
            "application/json",
            "shopify.json",
            serde_json::to_string_pretty(&output::shopify(&stored.bundles)).unwrap_or_default(),
        ),
        RunFile::Json => {
            let bundles = stored
                .bundles
                .iter()
                .filter_map(|b| serde_json::to_value(b).ok())
                .collect();
            file_response(
                "application/json",
                "bundles.json",
                serde_json::to_string_pretty(&run_document(&stored, bundles)).unwrap_or_default(),
            )
        }
    })
}
