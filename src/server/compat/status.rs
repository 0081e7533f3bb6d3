//! `GET /api/shopify/status/{id}` and its progress stream: where an upload and the job
//! it started stand, in the predecessor's steps and percentages.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::error::{AppApiError, AppPath};
use crate::domain::StoreId;
use crate::pipeline::{Phase, PhaseState, RunProgress};
use crate::server::error::{ApiError, REQUEST_ID, current_request_id};
use crate::server::{AppState, authorize_store};
use crate::store::{AppUpload, JobRecord, JobState};

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
            let phases = crate::server::jobs::current_phases(state, job);
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
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppApiError> {
    let Some(upload) = find_upload(&state, &id).await? else {
        crate::server::authorize_any(&state, &headers).await?;
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
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
) -> Result<Response, AppApiError> {
    // A store token sees its own uploads only; checked once the upload is found.
    crate::server::authorize_any(&state, &headers).await?;
    let found = find_upload(&state, &id).await?;
    if let Some(u) = &found {
        let store_id =
            StoreId::parse(&u.store_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
        authorize_store(&state, &headers, &store_id).await?;
    }
    let allowed = crate::server::bearer_store(&state, &headers).await?;
    let stream = progress_events(state, id, allowed);
    let mut response = Sse::new(stream).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Where the progress stream stands: still going (the ticks it has waited for the
/// upload to appear, and the snapshot it last sent), or done.
enum Step {
    Go(u32, Option<Snapshot>),
    Done,
}

/// The stream behind [`progress_stream`]; `allowed` is the one store a store token
/// may follow (`None` for the admin token). It outlives the handler, so each look
/// runs under the request's id again: an error of ours it meets names that id.
fn progress_events(
    state: Arc<AppState>,
    id: String,
    allowed: Option<String>,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    let request_id = current_request_id().unwrap_or_default();
    futures_util::stream::unfold(Step::Go(0, None), move |step| {
        let state = state.clone();
        let id = id.clone();
        let allowed = allowed.clone();
        let request_id = request_id.clone();
        async move {
            let Step::Go(tries, last) = step else {
                return None;
            };
            let look = tick(&state, &id, allowed.as_deref(), tries, last);
            // The server shutting down ends the stream: an open one would hold its
            // connection, and the shutdown, until its upload is done.
            tokio::select! {
                events = REQUEST_ID.scope(request_id, look) => Some(events),
                _ = state.shutdown.cancelled() => None,
            }
        }
    })
    .flat_map(futures_util::stream::iter)
}

/// One look of the progress stream: the events it sends and where it goes next.
async fn tick(
    state: &AppState,
    id: &str,
    allowed: Option<&str>,
    tries: u32,
    last: Option<Snapshot>,
) -> (Vec<Result<Event, Infallible>>, Step) {
    if tries > 0 || last.is_some() {
        tokio::time::sleep(STREAM_TICK).await;
    }
    let upload = match find_upload(state, id).await {
        Ok(u) => u.filter(|u| allowed.is_none_or(|s| s == u.store_id)),
        Err(e) => {
            let data = json!({"status": "error", "message": e.message});
            return (vec![event("error", &data)], Step::Done);
        }
    };
    let Some(upload) = upload else {
        if tries >= STREAM_WAIT_TICKS {
            let data = json!({"status": "error", "message": format!("Upload {id} not found")});
            return (vec![event("error", &data)], Step::Done);
        }
        let data = json!({"status": "waiting", "message": "Waiting for upload to be created...", "upload_id": id});
        return (vec![event("progress", &data)], Step::Go(tries + 1, None));
    };
    let s = match snapshot(state, &upload).await {
        Ok(s) => s,
        Err(e) => {
            let data = json!({"status": "error", "message": e.message});
            return (vec![event("error", &data)], Step::Done);
        }
    };
    let events = snapshot_events(&upload.upload_id, &s, last.as_ref());
    if s.is_final() {
        return (events, Step::Done);
    }
    (events, Step::Go(tries, Some(s)))
}

/// A snapshot's events: `progress` when its status, percentage or step moved since
/// `last`, then `complete` once it is final.
fn snapshot_events(
    upload_id: &str,
    s: &Snapshot,
    last: Option<&Snapshot>,
) -> Vec<Result<Event, Infallible>> {
    let changed =
        last.is_none_or(|l| l.status != s.status || l.progress != s.progress || l.step != s.step);
    let mut events = Vec::new();
    if changed {
        events.push(event(
            "progress",
            &json!({
                "upload_id": upload_id,
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
                "upload_id": upload_id,
                "step": s.step,
                "status": s.status,
                "progress": s.progress,
                "bundle_count": s.bundle_count.unwrap_or(0),
                "final": true,
            }),
        ));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

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
