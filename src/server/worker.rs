//! Job workers: claim a job, run it with a heartbeat that renews its lease and stores
//! its progress, and end it — with its run in the same transaction when it succeeds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{AppState, now_ms};
use crate::app::AppError;
use crate::cancel::CancelToken;
use crate::domain::{Bundle, StoreId};
use crate::error::ErrorKind;
use crate::pipeline::{RunEvent, RunObserver, RunOutput, RunProgress, RunRequest};
use crate::store::{JobEnd, JobRecord, Lease, RunRecord, StoreError};

/// How long an idle worker waits before it looks at the queue again (a trigger in
/// this process wakes it at once).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// The run observer of a job: the phases so far, for the heartbeat to store.
#[derive(Default)]
pub struct JobProgress {
    progress: Mutex<RunProgress>,
}

impl JobProgress {
    pub fn snapshot(&self) -> RunProgress {
        self.progress.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// As the job stores it.
    fn json(&self) -> String {
        serde_json::to_string(&self.snapshot()).unwrap_or_else(|_| "[]".into())
    }
}

impl RunObserver for JobProgress {
    fn event(&self, event: &RunEvent) {
        if let Ok(mut progress) = self.progress.lock() {
            progress.record(event);
        }
    }
}

/// One worker: claims and runs jobs until `shutdown`.
pub async fn work(state: Arc<AppState>, shutdown: CancelToken) {
    let settings = state.services.settings.server.clone();
    let lease_ms = (settings.lease_seconds * 1000) as i64;
    while !shutdown.is_cancelled() {
        let store = &state.services.store;
        match store.requeue_expired(now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "requeued jobs whose worker stopped renewing"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep expired leases"),
        }
        match store.claim_job(&state.worker_id, now_ms(), lease_ms).await {
            Ok(Some(job)) => boxed(run_job(&state, job, &shutdown)).await,
            Ok(None) => boxed(idle(&state, &shutdown)).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim a job");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// A future as a boxed `Send` one: the compiler cannot always prove an `async fn`'s
/// future `Send` for every lifetime a spawned task needs, and a box states it once.
fn boxed<'a>(
    f: impl std::future::Future<Output = ()> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(f)
}

/// Waits for work: a trigger in this process, the poll interval, or shutdown.
async fn idle(state: &AppState, shutdown: &CancelToken) {
    tokio::select! {
        _ = tokio::time::sleep(IDLE_POLL) => {}
        _ = state.work_queued.notified() => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Why a run was cancelled, when it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Requested,
    LeaseLost,
    Shutdown,
}

/// One claimed job: run beside its heartbeat and shutdown grace, then ended.
#[tracing::instrument(skip_all, fields(job = %job.job_id, store = %job.store_id, attempt = job.attempts))]
async fn run_job(state: &Arc<AppState>, job: JobRecord, shutdown: &CancelToken) {
    let services = &state.services;
    let settings = services.settings.server.clone();
    let worker = state.worker_id.clone();
    let ctl = RunControl {
        progress: Arc::new(JobProgress::default()),
        cancel: CancelToken::new(),
        stop: Arc::default(),
    };
    state.track(&job.job_id, ctl.cancel.clone(), ctl.progress.clone());
    let claimed = std::time::Instant::now();
    tracing::info!("job started");

    let heartbeat = spawn_heartbeat(
        state,
        &job.job_id,
        &worker,
        &ctl,
        Duration::from_secs(settings.heartbeat_seconds),
        (settings.lease_seconds * 1000) as i64,
    );
    let grace = spawn_grace(&ctl, shutdown, settings.shutdown_seconds);
    let result = run_on_blocking_thread(state, &job, &ctl).await;
    heartbeat.abort();
    grace.abort();
    state.untrack(&job.job_id);
    end_from_result(state, &job, &worker, &ctl, result, claimed).await;
}

/// What a job's run shares with the tasks beside it: the progress the heartbeat
/// stores, the token that cancels the run, and why it was cancelled, when it was.
struct RunControl {
    progress: Arc<JobProgress>,
    cancel: CancelToken,
    stop: Arc<Mutex<Option<Stop>>>,
}

/// Renews the job's lease and stores its progress every beat; a lost lease or a
/// requested cancel stops the run, since the job is no longer this worker's to run.
fn spawn_heartbeat(
    state: &Arc<AppState>,
    job_id: &str,
    worker: &str,
    ctl: &RunControl,
    every: Duration,
    lease_ms: i64,
) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    let progress = ctl.progress.clone();
    let cancel = ctl.cancel.clone();
    let stop = ctl.stop.clone();
    let job_id = job_id.to_owned();
    let worker = worker.to_owned();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let renewed = state
                .services
                .store
                .renew_lease(&job_id, &worker, now_ms() + lease_ms, &progress.json())
                .await;
            let why = match renewed {
                Ok(Lease::Held {
                    cancel_requested: false,
                }) => continue,
                Ok(Lease::Held {
                    cancel_requested: true,
                }) => Stop::Requested,
                Ok(Lease::Lost) => Stop::LeaseLost,
                Err(e) => {
                    // The lease is still ours until it runs out: try again next beat.
                    tracing::warn!(error = %e, "cannot renew the job's lease");
                    continue;
                }
            };
            if let Ok(mut s) = stop.lock() {
                s.get_or_insert(why);
            }
            cancel.cancel();
            return;
        }
    })
}

/// On shutdown the run gets `shutdown_seconds`, then is cancelled and released.
fn spawn_grace(
    ctl: &RunControl,
    shutdown: &CancelToken,
    seconds: u64,
) -> tokio::task::JoinHandle<()> {
    let cancel = ctl.cancel.clone();
    let stop = ctl.stop.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        if let Ok(mut s) = stop.lock() {
            s.get_or_insert(Stop::Shutdown);
        }
        cancel.cancel();
    })
}

/// The run works on a blocking thread of its own: it is CPU work, a panic in it
/// fails the job instead of the worker, and the engine's futures need not be
/// `Send` across every lifetime a spawned task asks for.
async fn run_on_blocking_thread(
    state: &AppState,
    job: &JobRecord,
    ctl: &RunControl,
) -> Result<RunOutput, AppError> {
    let services = state.services.clone();
    let progress = ctl.progress.clone();
    let cancel = ctl.cancel.clone();
    let request = job.request.clone();
    let store = job.store_id.clone();
    let job_id = job.job_id.clone();
    let runtime = tokio::runtime::Handle::current();
    let run = tokio::task::spawn_blocking(move || {
        runtime.block_on(async move {
            let (request, store_id) = run_inputs(&request, &store, job_id)?;
            crate::app::produce_run(&services, &store_id, &request, progress.as_ref(), &cancel)
                .await
        })
    });
    match run.await {
        Ok(r) => r,
        Err(e) => Err(AppError::Internal(format!("the run stopped: {e}"))),
    }
}

/// The stored request and store id read back; either failing to read is ours, not
/// the caller's, since both were checked when the job was queued.
fn run_inputs(
    request: &str,
    store: &str,
    job_id: String,
) -> Result<(RunRequest, StoreId), AppError> {
    let mut request = RunRequest::from_stored(request)
        .map_err(|e| AppError::Internal(format!("stored job request does not read: {e}")))?;
    // A job's run is saved under the job's id.
    request.run_id = Some(job_id);
    let store_id = StoreId::parse(store)
        .map_err(|e| AppError::Internal(format!("stored job names store {e}")))?;
    Ok((request, store_id))
}

/// Ends the job as its run came out: saved with its run, retried, cancelled or
/// failed; a lost lease saves nothing, since another worker has the job.
async fn end_from_result(
    state: &AppState,
    job: &JobRecord,
    worker: &str,
    ctl: &RunControl,
    result: Result<RunOutput, AppError>,
    claimed: std::time::Instant,
) {
    let phases = ctl.progress.json();
    let now = now_ms();
    let stopped = ctl.stop.lock().ok().and_then(|s| *s);
    let ended = match result {
        Ok(out) => {
            let (run, bundles) = crate::pipeline::persist::records(&out);
            let saved = save_succeeded(state, job, worker, &phases, now, &run, &bundles).await;
            if let Ok(true) = saved {
                record_llm(&state.metrics, &out.run.llm);
                record_end(state, "succeeded", claimed, &ctl.progress);
            }
            saved
        }
        Err(e) => {
            let Some(end) = failed_end(job, &e, ctl.cancel.is_cancelled(), stopped, now) else {
                return;
            };
            tracing::info!(end = ?end, "job ended");
            let how = match &end {
                JobEnd::Retry { .. } => "retry",
                JobEnd::Cancelled { .. } => "cancelled",
                _ => "failed",
            };
            record_end(state, how, claimed, &ctl.progress);
            state
                .services
                .store
                .end_job(&job.job_id, worker, &end, &phases, now)
                .await
        }
    };
    match ended {
        Ok(true) => {}
        Ok(false) => tracing::warn!("the job's lease was lost before it ended: nothing saved"),
        Err(e) => tracing::error!(error = %e, "cannot end the job; its lease will run out"),
    }
}

/// Saves the job's end and its run in one transaction, so a job never succeeds
/// without the run it names; `false` when the lease was lost.
async fn save_succeeded(
    state: &AppState,
    job: &JobRecord,
    worker: &str,
    phases: &str,
    now: i64,
    run: &RunRecord,
    bundles: &[Bundle],
) -> Result<bool, StoreError> {
    let saved = state
        .services
        .store
        .finish_job_with_run(&job.job_id, worker, phases, now, run, bundles)
        .await;
    if let Ok(true) = saved {
        tracing::info!(bundles = bundles.len(), "job succeeded");
    }
    saved
}

/// How a failed run ends its job: `None` when the lease was lost, since the job is
/// another worker's now and nothing may be saved.
fn failed_end(
    job: &JobRecord,
    e: &AppError,
    cancelled: bool,
    stopped: Option<Stop>,
    now: i64,
) -> Option<JobEnd> {
    let kind = if cancelled {
        ErrorKind::Cancelled
    } else {
        e.kind()
    };
    // The job document is read over HTTP: a failure of ours is told there as
    // a fixed message, its detail logged under the job.
    let message = match kind {
        ErrorKind::Internal | ErrorKind::Retryable => {
            tracing::warn!(error = %e, "the run failed");
            match kind {
                ErrorKind::Internal => format!(
                    "an internal error ended the run; the server log has the detail under job {}",
                    job.job_id
                ),
                _ => format!(
                    "a service the run needs was unavailable; the server log has the detail under job {}",
                    job.job_id
                ),
            }
        }
        _ => e.to_string(),
    };
    let end = match (kind, stopped) {
        (ErrorKind::Cancelled, Some(Stop::Shutdown)) => JobEnd::Retry {
            kind: "retryable".into(),
            message: "the server shut down during the run; it runs again".into(),
            not_before: now,
        },
        (ErrorKind::Cancelled, Some(Stop::LeaseLost)) => {
            tracing::warn!("the job's lease was lost: another worker has it");
            return None;
        }
        (ErrorKind::Cancelled, _) => JobEnd::Cancelled {
            message: "cancelled by request".into(),
        },
        (ErrorKind::Retryable, _) if job.attempts < job.max_attempts => JobEnd::Retry {
            kind: "retryable".into(),
            message,
            not_before: now + backoff_ms(job.attempts),
        },
        (kind, _) => JobEnd::Failed {
            kind: kind_name(kind).into(),
            message,
        },
    };
    Some(end)
}

/// A job's end in the metrics: how it ended, how long it ran, its phases.
fn record_end(state: &AppState, how: &str, claimed: std::time::Instant, progress: &JobProgress) {
    use super::metrics::{JOBS_ENDED, PHASE_DURATION, RUN_DURATION};
    let m = &state.metrics;
    m.add(JOBS_ENDED, &[how], 1.0);
    m.observe(RUN_DURATION, &[], claimed.elapsed().as_secs_f64());
    for p in &progress.snapshot().0 {
        if let Some(seconds) = p.seconds {
            m.observe(PHASE_DURATION, &[p.phase.as_str()], seconds);
        }
    }
}

/// A finished run's use of the language model.
fn record_llm(m: &super::metrics::Metrics, llm: &crate::llm::gateway::LlmReport) {
    use super::metrics::{
        LLM_BREAKER_OPEN, LLM_CALLS, LLM_FAILURES, LLM_REFUSED, LLM_RETRIES, LLM_SENT, LLM_TOKENS,
    };
    let model = llm.model.as_str();
    m.add(LLM_CALLS, &[model], llm.calls as f64);
    m.add(LLM_SENT, &[model], llm.sent as f64);
    m.add(LLM_REFUSED, &[model], llm.refused as f64);
    m.add(LLM_RETRIES, &[model], llm.retries as f64);
    m.add(LLM_FAILURES, &[model], llm.failures as f64);
    m.add(LLM_TOKENS, &[model, "prompt"], llm.prompt_tokens as f64);
    m.add(
        LLM_TOKENS,
        &[model, "completion"],
        llm.completion_tokens as f64,
    );
    m.set(
        LLM_BREAKER_OPEN,
        &[model],
        f64::from(u8::from(llm.breaker_open)),
    );
}

/// 2 s, 4 s, 8 s, … between attempts, at most a minute.
fn backoff_ms(attempts: u32) -> i64 {
    1000 * (1i64 << attempts.clamp(1, 6)).min(60)
}

pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadInput => "bad_input",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Retryable => "retryable",
        ErrorKind::Cancelled => "cancelled",
        ErrorKind::Internal => "internal",
    }
}
