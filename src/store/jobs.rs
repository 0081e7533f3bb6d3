//! The durable job queue behind `bundleforge serve`: jobs live in the database, so a
//! crash or a restart loses none. A worker claims a job under a lease, renews it while
//! the run works, and ends it; a lease that runs out puts the job back in the queue
//! (or fails it after its last attempt). Times are Unix milliseconds.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{RunRecord, StoreError};
use crate::domain::StoreId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job_id: String,
    pub store_id: String,
    pub state: JobState,
    /// What the job runs, as the caller sent it (JSON).
    pub request: String,
    /// Per-phase progress (a JSON array).
    pub phases: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub worker: Option<String>,
    pub lease_until: Option<i64>,
    pub cancel_requested: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub run_id: Option<String>,
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub job_id: String,
    pub store_id: String,
    pub request: String,
    pub max_attempts: u32,
    pub created_at: i64,
    /// Queue it even when the store has a queued or running job.
    pub behind_others: bool,
}

/// How a claimed job ends without a run.
#[derive(Debug, Clone)]
pub enum JobEnd {
    Failed {
        kind: String,
        message: String,
    },
    Cancelled {
        message: String,
    },
    /// Back to the queue, to be claimed again from `not_before` on.
    Retry {
        kind: String,
        message: String,
        not_before: i64,
    },
}

/// The message of a job cancelled because its store's app was uninstalled, whether
/// the uninstall stopped it or a claim found it queued after.
pub const UNINSTALLED_MESSAGE: &str = "cancelled: the store's app was uninstalled";

/// A store's jobs stopped at once: the queued ones cancelled, the running ones
/// marked for their workers to cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreJobsStopped {
    pub cancelled: u64,
    pub stopping: u64,
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Held {
        cancel_requested: bool,
    },
    /// Another worker has the job now, or it ended: stop working on it.
    Lost,
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues a job, or (one job per store at a time) returns the store's queued or
    /// running job; `true` when the job is new. One statement: two triggers at once
    /// queue one job.
    async fn enqueue_job(&self, job: &NewJob) -> Result<(JobRecord, bool), StoreError>;

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError>;

    /// Claims the oldest queued job whose store has no running job, under a lease
    /// until `now + lease_ms`, and counts the attempt. One statement: two workers
    /// never claim the same job. A store whose app was uninstalled has none claimed:
    /// its queued jobs are cancelled ([`UNINSTALLED_MESSAGE`]) in the same
    /// transaction, so a job queued as the uninstall was applied never runs.
    async fn claim_job(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>, StoreError>;

    /// Renews a held lease and stores the job's progress.
    async fn renew_lease(
        &self,
        job_id: &str,
        worker: &str,
        lease_until: i64,
        phases: &str,
    ) -> Result<Lease, StoreError>;

    /// Ends a job the worker holds without a run; `false` when the lease was lost.
    async fn end_job(
        &self,
        job_id: &str,
        worker: &str,
        end: &JobEnd,
        phases: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Saves the job's run and ends the job `succeeded`, in one transaction: a run is
    /// visible only with its job's end. `false` (and nothing saved) when the lease
    /// was lost.
    async fn finish_job_with_run(
        &self,
        job_id: &str,
        worker: &str,
        phases: &str,
        now: i64,
        run: &RunRecord,
        bundles: &[crate::domain::Bundle],
    ) -> Result<bool, StoreError>;

    /// Cancels a queued job at once; marks a running one for its worker to cancel.
    /// `None` for an unknown job.
    async fn request_cancel(&self, job_id: &str, now: i64)
    -> Result<Option<JobRecord>, StoreError>;

    /// Stops every job of a store (its app was uninstalled): a queued one is
    /// cancelled at once with `message`, a running one is marked for its worker to
    /// cancel. Returns how many of each.
    async fn cancel_store_jobs(
        &self,
        store: &StoreId,
        now: i64,
        message: &str,
    ) -> Result<StoreJobsStopped, StoreError>;

    /// Jobs whose lease ran out (their worker died): back to the queue, or `failed`
    /// after their last attempt. Returns how many.
    async fn requeue_expired(&self, now: i64) -> Result<u64, StoreError>;

    /// Queued jobs and the age of the oldest (ms), for metrics.
    async fn queue_depth(&self, now: i64) -> Result<(u64, i64), StoreError>;

    /// How many jobs are in each state, for metrics.
    async fn jobs_by_state(&self) -> Result<Vec<(String, u64)>, StoreError>;
}
