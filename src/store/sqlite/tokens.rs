//! Per-store API tokens on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::domain::StoreId;
use crate::store::StoreError;
use crate::store::tokens::TokenStore;

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(
        &self,
        token_id: &str,
        store: &StoreId,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (token_id, store_id, token_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(token_id)
        .bind(store.as_str())
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_store(&self, token_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT store_id, token_id FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn revoke_token(&self, token_id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_store_tokens(&self, store: &StoreId, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ? WHERE store_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(store.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
