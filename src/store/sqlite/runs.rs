//! Runs on SQLite: a run's row and its bundles' documents, in published order.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, bundle_from, insert_run};
use crate::domain::{self, StoreId};
use crate::store::runs::{RunListing, RunRecord, RunStore, StoredRun};
use crate::store::{Page, StoreError};

#[async_trait]
impl RunStore for SqliteStore {
    async fn save_run(
        &self,
        run: &RunRecord,
        bundles: &[domain::Bundle],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_run(&mut tx, run, bundles).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn runs_page(
        &self,
        id: &StoreId,
        offset: u64,
        limit: u64,
    ) -> Result<Page<RunListing>, StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE store_id = ?")
            .bind(id.as_str())
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT r.run_id, r.status, r.started_at, r.finished_at, r.as_of, \
                    (SELECT COUNT(*) FROM bundles b WHERE b.run_id = r.run_id) AS bundle_count \
             FROM runs r WHERE r.store_id = ? \
             ORDER BY r.finished_at DESC, r.run_id DESC LIMIT ? OFFSET ?",
        )
        .bind(id.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(RunListing {
                    run_id: row.try_get("run_id")?,
                    status: row.try_get("status")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    as_of: row.try_get("as_of")?,
                    bundles: row.try_get::<i64, _>("bundle_count")? as u64,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Page {
            items,
            total: total as u64,
        })
    }

    async fn latest_run_id(&self, id: &StoreId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT run_id FROM runs WHERE store_id = ? ORDER BY finished_at DESC, run_id DESC LIMIT 1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn stored_run(
        &self,
        id: &StoreId,
        run_id: Option<&str>,
    ) -> Result<Option<StoredRun>, StoreError> {
        let row = match run_id {
            Some(r) => sqlx::query(
                "SELECT run_id, summary, status, started_at, finished_at, report_html FROM runs \
                     WHERE store_id = ? AND run_id = ?",
            )
            .bind(id.as_str())
            .bind(r)
            .fetch_optional(&self.pool)
            .await?,
            None => sqlx::query(
                "SELECT run_id, summary, status, started_at, finished_at, report_html FROM runs \
                     WHERE store_id = ? ORDER BY finished_at DESC, run_id DESC LIMIT 1",
            )
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?,
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let run_id: String = row.try_get("run_id")?;
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM bundles WHERE run_id = ? ORDER BY position, rowid",
        )
        .bind(&run_id)
        .fetch_all(&self.pool)
        .await?;
        let bundles = bodies
            .iter()
            .map(|body| bundle_from(body, &format!("run {run_id}")))
            .collect::<Result<_, _>>()?;
        Ok(Some(StoredRun {
            run_id,
            summary: row.try_get("summary")?,
            status: row.try_get("status")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            bundles,
            report_html: row.try_get("report_html")?,
        }))
    }
}

impl SqliteStore {
    /// Runs of a store, newest first: (run id, status, bundles).
    pub async fn runs(&self, store_id: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.run_id, r.status, (SELECT COUNT(*) FROM bundles b WHERE b.run_id = r.run_id) \
             FROM runs r WHERE r.store_id = ? ORDER BY r.started_at DESC, r.run_id DESC",
        )
        .bind(store_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}
