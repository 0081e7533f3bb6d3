//! Per-store API tokens: the service keeps only a token's hash, so a copy of the
//! database gives no one a working token.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::StoreId;

#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token's hash for `store`.
    async fn create_token(
        &self,
        token_id: &str,
        store: &StoreId,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The store a token (by hash) acts for and the token's id, unless it was revoked.
    async fn token_store(&self, token_hash: &str) -> Result<Option<(String, String)>, StoreError>;

    /// Revokes a token; `false` when there is no such live token.
    async fn revoke_token(&self, token_id: &str, now: i64) -> Result<bool, StoreError>;

    /// Revokes every live token of a store (its app was uninstalled). Returns how
    /// many.
    async fn revoke_store_tokens(&self, store: &StoreId, now: i64) -> Result<u64, StoreError>;
}
