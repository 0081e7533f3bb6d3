//! Jobs over HTTP: trigger a store's run, follow it, cancel it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::{AppState, authorize_store, bearer_store, now_ms};
use crate::domain::StoreId;
use crate::pipeline::{FlatRequest, RunProgress, RunRequest};
use crate::store::{JobRecord, NewJob};

/// A time as the API writes it: RFC 3339, UTC, milliseconds.
pub fn rfc3339_ms(ms: i64) -> Option<String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The job document of `GET /v1/jobs/{id}`, with its phases as they stand.
pub fn job_document(job: &JobRecord, phases: &RunProgress) -> Value {
    // As the worker reads it (a request stored before RunRequest in its new shape).
    let request = RunRequest::from_stored(&job.request)
        .ok()
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or(Value::Null);
    let error = match (&job.error_kind, &job.error_message) {
        (Some(kind), message) => json!({"kind": kind, "message": message}),
        _ => Value::Null,
    };
    json!({
        "id": job.job_id,
        "store": job.store_id,
        "state": job.state.as_str(),
        "request": request,
        "phases": phases,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "error": error,
        "worker": job.worker,
        "cancel_requested": job.cancel_requested,
        "created_at": rfc3339_ms(job.created_at),
        "started_at": job.started_at.and_then(rfc3339_ms),
        "finished_at": job.finished_at.and_then(rfc3339_ms),
        "run_id": job.run_id,
    })
}

/// A job's freshest phases: this process's own, for a run it is working on (the
/// database's copy is as old as the last heartbeat).
pub(super) fn current_phases(state: &AppState, job: &JobRecord) -> RunProgress {
    match state.running_phases(&job.job_id) {
        Some(phases) if job.state == crate::store::JobState::Running => phases,
        _ => RunProgress::from_stored(&job.phases),
    }
}

/// A job's document with its freshest phases.
pub(super) fn current_document(state: &AppState, job: &JobRecord) -> Value {
    job_document(job, &current_phases(state, job))
}

fn job_response(state: &AppState, status: StatusCode, job: &JobRecord) -> Response {
    let mut response = (status, Json(current_document(state, job))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{}", job.job_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerQuery {
    /// `?queue=1`: queue behind the store's running job instead of returning it.
    #[serde(default)]
    queue: Option<String>,
}

/// `POST /v1/stores/{store}/jobs`.
pub async fn trigger(
    State(state): State<Arc<AppState>>,
    ApiPath(store): ApiPath<String>,
    ApiQuery(query): ApiQuery<TriggerQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let store_id = StoreId::parse(&store).map_err(|e| ApiError::bad_request(e.to_string()))?;
    authorize_store(&state, &headers, &store_id).await?;
    let body: FlatRequest = super::parse_json_body(&state, &body, "the job's")?;
    let job_id = ulid::Ulid::new().to_string();
    let request = RunRequest {
        run_id: Some(job_id.clone()),
        ..body.into_run_request()
    };
    request
        .validate()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_input", e.to_string()))?;
    let services = &state.services;
    if services.store.get_store(&store_id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "unknown store {:?}: upload its catalog or orders first",
            store_id.as_str()
        )));
    }
    refuse_uninstalled(&state, &store_id).await?;
    let behind_others = matches!(query.queue.as_deref(), Some("1" | "true"));
    let new = NewJob {
        job_id,
        store_id: store_id.as_str().to_owned(),
        request: serde_json::to_string(&request)
            .map_err(|e| ApiError::from_kind(crate::error::ErrorKind::Internal, e.to_string()))?,
        max_attempts: services.settings.server.max_attempts,
        created_at: now_ms(),
        behind_others,
    };
    let (job, created) = services.store.enqueue_job(&new).await?;
    if created {
        tracing::info!(job = %job.job_id, store = %job.store_id, "job queued");
        state.work_queued.notify_waiters();
        Ok(job_response(&state, StatusCode::ACCEPTED, &job))
    } else {
        Ok(job_response(&state, StatusCode::OK, &job))
    }
}

/// A 409 for a store whose app was uninstalled: it runs no jobs until an admin
/// creates a token for it again (its installation).
pub(super) async fn refuse_uninstalled(state: &AppState, store: &StoreId) -> Result<(), ApiError> {
    if state.services.store.uninstalled_at(store).await?.is_none() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "uninstalled",
        format!(
            "store {:?}'s app was uninstalled: it runs no jobs until it is installed again (a new token from POST /v1/admin/stores/{}/tokens)",
            store.as_str(),
            store.as_str()
        ),
    ))
}

/// A job its caller may see. The token is checked before the job is looked up, and a
/// job of another store is answered as a missing one: a job's id says nothing of
/// whether it exists to a caller who may not see it.
async fn load_job(state: &AppState, headers: &HeaderMap, id: &str) -> Result<JobRecord, ApiError> {
    // `None`: the admin token, for every store.
    let own_store = bearer_store(state, headers).await?;
    match state.services.store.get_job(id).await? {
        Some(job) if own_store.as_ref().is_none_or(|own| *own == job.store_id) => Ok(job),
        _ => Err(ApiError::not_found(format!("no job {id:?}"))),
    }
}

/// `GET /v1/jobs/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = load_job(&state, &headers, &id).await?;
    Ok(job_response(&state, StatusCode::OK, &job))
}

/// `DELETE /v1/jobs/{id}`: a queued job is cancelled at once, a running one through
/// its run's cancel token (here, or by its worker's next heartbeat elsewhere).
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = load_job(&state, &headers, &id).await?;
    if job.state.is_finished() {
        return Ok(job_response(&state, StatusCode::OK, &job));
    }
    let job = state
        .services
        .store
        .request_cancel(&job.job_id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id:?}")))?;
    if let Some(token) = state.running_cancel(&job.job_id) {
        token.cancel();
    }
    Ok(job_response(&state, StatusCode::ACCEPTED, &job))
}

/// How often the event stream looks at its job.
const EVENT_POLL: Duration = Duration::from_millis(200);

/// `GET /v1/jobs/{id}/events`: the job document as Server-Sent Events (`event: job`,
/// ids counting from 0), sent whenever it changes; the stream ends after the job does,
/// or when the server shuts down (a dashboard left open must not hold the shutdown).
pub async fn events(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    load_job(&state, &headers, &id).await?;
    let stream = futures_util::stream::unfold(
        (state, id, None::<String>, false, 0u64),
        |(state, id, last, ended, seq)| async move {
            if ended {
                return None;
            }
            loop {
                if state.shutdown.is_cancelled() {
                    return None;
                }
                let job = match state.services.store.get_job(&id).await {
                    Ok(Some(job)) => job,
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!(error = %e, job = %id, "event stream cannot read its job");
                        return None;
                    }
                };
                let text = current_document(&state, &job).to_string();
                if last.as_deref() != Some(text.as_str()) {
                    let event = Event::default()
                        .event("job")
                        .id(seq.to_string())
                        .data(text.clone());
                    let ended = job.state.is_finished();
                    return Some((
                        Ok::<_, Infallible>(event),
                        (state, id, Some(text), ended, seq + 1),
                    ));
                }
                tokio::select! {
                    _ = tokio::time::sleep(EVENT_POLL) => {}
                    _ = state.shutdown.cancelled() => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
