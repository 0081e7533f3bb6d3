//! Results: a store's saved runs, each the document `generate --json` prints.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::error::ApiError;
use super::jobs::rfc3339_ms;
use super::{AppState, authorize_store};
use crate::domain::StoreId;
use crate::store::StoredRun;

/// `{"run", "bundles"}` of a stored run.
fn run_document(stored: StoredRun) -> Value {
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
    let bundles: Vec<Value> = stored
        .bundles
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect();
    json!({"run": run, "bundles": bundles})
}

async fn read(
    state: &AppState,
    headers: &HeaderMap,
    store: &str,
    run_id: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let store_id = StoreId::parse(store).map_err(|e| ApiError::bad_request(e.to_string()))?;
    authorize_store(state, headers, &store_id).await?;
    let stored = state.services.store.stored_run(&store_id, run_id).await?;
    let Some(stored) = stored else {
        return Err(ApiError::not_found(match run_id {
            Some(r) => format!("store {store:?} has no run {r:?}"),
            None => format!("store {store:?} has no run yet: trigger a job"),
        }));
    };
    Ok(Json(run_document(stored)))
}

/// `GET /v1/stores/{store}/runs/latest`.
pub async fn latest(
    State(state): State<Arc<AppState>>,
    Path(store): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read(&state, &headers, &store, None).await
}

/// `GET /v1/stores/{store}/runs/{run}`.
pub async fn one(
    State(state): State<Arc<AppState>>,
    Path((store, run)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    read(&state, &headers, &store, Some(&run)).await
}
