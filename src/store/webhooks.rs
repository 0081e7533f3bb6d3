//! Webhooks as received, and the versions of the resources they changed.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::StoreId;

/// A webhook as received.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    pub webhook_id: String,
    pub shop_domain: String,
    /// `None`: a shop no store is.
    pub store_id: Option<String>,
    pub topic: String,
    pub body: Vec<u8>,
    /// Unix ms.
    pub received_at: i64,
}

/// How applying a webhook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    /// Older than what we hold: nothing changed.
    Stale,
    /// Nothing to do (an unknown shop, a topic we do not act on).
    Ignored,
    Failed,
}

impl WebhookOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Applied => "applied",
            WebhookOutcome::Stale => "stale",
            WebhookOutcome::Ignored => "ignored",
            WebhookOutcome::Failed => "failed",
        }
    }
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Keeps a webhook; `false` when one with its id was kept before (a replay).
    async fn record_webhook(&self, webhook: &WebhookRecord) -> Result<bool, StoreError>;

    /// Webhooks not applied yet, oldest first.
    async fn pending_webhooks(&self, limit: u32) -> Result<Vec<WebhookRecord>, StoreError>;

    /// Marks a webhook applied (or stale, ignored, failed) with a note.
    async fn finish_webhook(
        &self,
        webhook_id: &str,
        outcome: WebhookOutcome,
        message: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The `updated_at` (Unix ms) of the last update applied to `resource`.
    async fn resource_version(
        &self,
        store: &StoreId,
        resource: &str,
    ) -> Result<Option<i64>, StoreError>;

    /// Records an update of `resource` at `updated_at` (Unix ms) as applied, unless a
    /// newer one was; `false` then. One statement, so two appliers cannot both take
    /// the same version.
    async fn take_version(
        &self,
        store: &StoreId,
        resource: &str,
        updated_at: i64,
    ) -> Result<bool, StoreError>;
}
