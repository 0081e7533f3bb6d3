//! The predecessor app's uploads on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::store::StoreError;
use crate::store::app_uploads::{AppUpload, AppUploadStore};

const COLUMNS: &str = "upload_id, store_id, shop_id, run_key, csv_type, status, total_rows, \
     processed_rows, error_message, job_id, created_at, updated_at";

fn upload(r: &SqliteRow) -> Result<AppUpload, StoreError> {
    Ok(AppUpload {
        upload_id: r.try_get("upload_id")?,
        store_id: r.try_get("store_id")?,
        shop_id: r.try_get("shop_id")?,
        run_key: r.try_get("run_key")?,
        csv_type: r.try_get("csv_type")?,
        status: r.try_get("status")?,
        total_rows: r.try_get("total_rows")?,
        processed_rows: r.try_get("processed_rows")?,
        error_message: r.try_get("error_message")?,
        job_id: r.try_get("job_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl AppUploadStore for SqliteStore {
    async fn put_app_upload(&self, u: &AppUpload) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT OR REPLACE INTO app_uploads ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&u.upload_id)
        .bind(&u.store_id)
        .bind(&u.shop_id)
        .bind(&u.run_key)
        .bind(&u.csv_type)
        .bind(&u.status)
        .bind(u.total_rows)
        .bind(u.processed_rows)
        .bind(&u.error_message)
        .bind(&u.job_id)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_app_upload(&self, upload_id: &str) -> Result<Option<AppUpload>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM app_uploads WHERE upload_id = ?"
        ))
        .bind(upload_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(upload).transpose()
    }

    async fn run_app_uploads(&self, run_key: &str) -> Result<Vec<AppUpload>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM app_uploads WHERE run_key = ? \
             ORDER BY created_at DESC, upload_id DESC"
        ))
        .bind(run_key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(upload).collect()
    }
}
