//! The job queue on SQLite. Every state change is one statement (or one transaction
//! with the run it saves), conditioned on the state it expects, so two workers or a
//! worker and a sweeper never both win.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, insert_run};
use crate::domain::StoreId;
use crate::store::jobs::{
    JobEnd, JobQueue, JobRecord, JobState, Lease, NewJob, StoreJobsStopped, UNINSTALLED_MESSAGE,
};
use crate::store::{RunRecord, StoreError};

const COLUMNS: &str = "job_id, store_id, state, request, phases, attempts, max_attempts, \
     error_kind, error_message, worker, lease_until, cancel_requested, created_at, \
     started_at, finished_at, run_id";

fn record(row: &SqliteRow) -> Result<JobRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let state = JobState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?;
    let count = |name: &str| -> Result<u32, StoreError> {
        let v: i64 = row.try_get(name)?;
        u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("job {name} {v}")))
    };
    Ok(JobRecord {
        job_id: row.try_get("job_id")?,
        store_id: row.try_get("store_id")?,
        state,
        request: row.try_get("request")?,
        phases: row.try_get("phases")?,
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        error_kind: row.try_get("error_kind")?,
        error_message: row.try_get("error_message")?,
        worker: row.try_get("worker")?,
        lease_until: row.try_get("lease_until")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        run_id: row.try_get("run_id")?,
    })
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue_job(&self, job: &NewJob) -> Result<(JobRecord, bool), StoreError> {
        // One statement: the "no queued or running job for this store" check and the
        // insert cannot interleave with another trigger's.
        let guard = if job.behind_others {
            ""
        } else {
            " WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE store_id = ? \
               AND state IN ('queued', 'running'))"
        };
        let sql = format!(
            "INSERT INTO jobs (job_id, store_id, state, request, max_attempts, not_before, created_at) \
             SELECT ?, ?, 'queued', ?, ?, ?, ?{guard}"
        );
        let mut q = sqlx::query(&sql)
            .bind(&job.job_id)
            .bind(&job.store_id)
            .bind(&job.request)
            .bind(i64::from(job.max_attempts))
            .bind(job.created_at)
            .bind(job.created_at);
        if !job.behind_others {
            q = q.bind(&job.store_id);
        }
        let inserted = q.execute(&self.pool).await?.rows_affected() == 1;
        if inserted {
            let stored = self.get_job(&job.job_id).await?;
            return stored
                .map(|r| (r, true))
                .ok_or_else(|| StoreError::Corrupt(format!("job {} vanished", job.job_id)));
        }
        let existing = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE store_id = ? AND state IN ('queued', 'running') \
             ORDER BY state = 'running' DESC, created_at, job_id LIMIT 1"
        ))
        .bind(&job.store_id)
        .fetch_optional(&self.pool)
        .await?;
        match existing {
            Some(row) => Ok((record(&row)?, false)),
            // The other job ended between the two statements: try again.
            None => Box::pin(self.enqueue_job(job)).await,
        }
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?"))
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn claim_job(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A trigger that passed its uninstall check just before the uninstall was
        // applied queues a job after the uninstall cancelled the store's: it is
        // cancelled here, and the claim below passes over such a store, so whatever the
        // order of the two, no job of an uninstalled store runs.
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, cancel_requested = 1, \
             error_kind = 'cancelled', error_message = ? \
             WHERE state = 'queued' AND store_id IN \
                 (SELECT store_id FROM stores WHERE uninstalled_at IS NOT NULL)",
        )
        .bind(now)
        .bind(UNINSTALLED_MESSAGE)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "UPDATE jobs SET state = 'running', worker = ?, lease_until = ?, \
             attempts = attempts + 1, started_at = ?, error_kind = NULL, error_message = NULL \
             WHERE job_id = (\
                 SELECT q.job_id FROM jobs q WHERE q.state = 'queued' AND q.not_before <= ? \
                 AND q.cancel_requested = 0 \
                 AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.store_id = q.store_id AND r.state = 'running') \
                 AND NOT EXISTS (SELECT 1 FROM stores s WHERE s.store_id = q.store_id \
                     AND s.uninstalled_at IS NOT NULL) \
                 ORDER BY q.created_at, q.job_id LIMIT 1) \
             AND state = 'queued' \
             RETURNING {COLUMNS}"
        ))
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(record).transpose()
    }

    async fn renew_lease(
        &self,
        job_id: &str,
        worker: &str,
        lease_until: i64,
        phases: &str,
    ) -> Result<Lease, StoreError> {
        let row = sqlx::query(
            "UPDATE jobs SET lease_until = ?, phases = ? \
             WHERE job_id = ? AND worker = ? AND state = 'running' \
             RETURNING cancel_requested",
        )
        .bind(lease_until)
        .bind(phases)
        .bind(job_id)
        .bind(worker)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Lease::Held {
                cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
            },
            None => Lease::Lost,
        })
    }

    async fn end_job(
        &self,
        job_id: &str,
        worker: &str,
        end: &JobEnd,
        phases: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (state, kind, message, not_before) = match end {
            JobEnd::Failed { kind, message } => ("failed", kind.as_str(), message.as_str(), None),
            JobEnd::Cancelled { message } => ("cancelled", "cancelled", message.as_str(), None),
            JobEnd::Retry {
                kind,
                message,
                not_before,
            } => ("queued", kind.as_str(), message.as_str(), Some(*not_before)),
        };
        let finished = if state == "queued" { None } else { Some(now) };
        let done = sqlx::query(
            "UPDATE jobs SET state = ?, error_kind = ?, error_message = ?, phases = ?, \
             lease_until = NULL, finished_at = ?, not_before = COALESCE(?, not_before) \
             WHERE job_id = ? AND worker = ? AND state = 'running'",
        )
        .bind(state)
        .bind(kind)
        .bind(message)
        .bind(phases)
        .bind(finished)
        .bind(not_before)
        .bind(job_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_job_with_run(
        &self,
        job_id: &str,
        worker: &str,
        phases: &str,
        now: i64,
        run: &RunRecord,
        bundles: &[crate::domain::Bundle],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query(
            "UPDATE jobs SET state = 'succeeded', phases = ?, lease_until = NULL, \
             finished_at = ?, run_id = ?, error_kind = NULL, error_message = NULL \
             WHERE job_id = ? AND worker = ? AND state = 'running'",
        )
        .bind(phases)
        .bind(now)
        .bind(&run.run_id)
        .bind(job_id)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        if ended.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_run(&mut tx, run, bundles).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn request_cancel(
        &self,
        job_id: &str,
        now: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, cancel_requested = 1, \
             error_kind = 'cancelled', error_message = 'cancelled before it started' \
             WHERE job_id = ? AND state = 'queued'",
        )
        .bind(now)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE job_id = ? AND state = 'running'")
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        self.get_job(job_id).await
    }

    async fn cancel_store_jobs(
        &self,
        store: &StoreId,
        now: i64,
        message: &str,
    ) -> Result<StoreJobsStopped, StoreError> {
        let mut tx = self.pool.begin().await?;
        let cancelled = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, cancel_requested = 1, \
             error_kind = 'cancelled', error_message = ? \
             WHERE store_id = ? AND state = 'queued'",
        )
        .bind(now)
        .bind(message)
        .bind(store.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let stopping = sqlx::query(
            "UPDATE jobs SET cancel_requested = 1 WHERE store_id = ? AND state = 'running'",
        )
        .bind(store.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(StoreJobsStopped {
            cancelled,
            stopping,
        })
    }

    async fn requeue_expired(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET \
               state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
               finished_at = CASE WHEN attempts >= max_attempts THEN ? ELSE NULL END, \
               error_kind = 'retryable', \
               error_message = 'its worker stopped renewing the lease (' || COALESCE(worker, '?') || ')', \
               lease_until = NULL \
             WHERE state = 'running' AND lease_until < ?",
        )
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn queue_depth(&self, now: i64) -> Result<(u64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs WHERE state = 'queued'",
        )
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok((
            u64::try_from(n).unwrap_or(0),
            oldest.map_or(0, |t| (now - t).max(0)),
        ))
    }

    async fn jobs_by_state(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(s, n)| (s, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}
