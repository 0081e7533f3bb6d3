//! Webhooks and resource versions on SQLite.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::domain::StoreId;
use crate::store::StoreError;
use crate::store::webhooks::{WebhookOutcome, WebhookRecord, WebhookStore};

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn record_webhook(&self, w: &WebhookRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO webhooks (webhook_id, shop_domain, store_id, topic, body, received_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (webhook_id) DO NOTHING",
        )
        .bind(&w.webhook_id)
        .bind(&w.shop_domain)
        .bind(&w.store_id)
        .bind(&w.topic)
        .bind(&w.body)
        .bind(w.received_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn pending_webhooks(&self, limit: u32) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT webhook_id, shop_domain, store_id, topic, body, received_at FROM webhooks \
             WHERE applied_at IS NULL ORDER BY received_at, rowid LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookRecord {
                    webhook_id: r.try_get("webhook_id")?,
                    shop_domain: r.try_get("shop_domain")?,
                    store_id: r.try_get("store_id")?,
                    topic: r.try_get("topic")?,
                    body: r.try_get("body")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    async fn finish_webhook(
        &self,
        webhook_id: &str,
        outcome: WebhookOutcome,
        message: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhooks SET applied_at = ?, outcome = ?, message = ? WHERE webhook_id = ?",
        )
        .bind(now)
        .bind(outcome.as_str())
        .bind(message)
        .bind(webhook_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn resource_version(
        &self,
        store: &StoreId,
        resource: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT updated_at FROM resource_versions WHERE store_id = ? AND resource = ?",
        )
        .bind(store.as_str())
        .bind(resource)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn take_version(
        &self,
        store: &StoreId,
        resource: &str,
        updated_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO resource_versions (store_id, resource, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (store_id, resource) DO UPDATE SET updated_at = excluded.updated_at \
             WHERE excluded.updated_at > resource_versions.updated_at",
        )
        .bind(store.as_str())
        .bind(resource)
        .bind(updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
