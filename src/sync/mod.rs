//! Shopify webhooks applied to a store: the store kept in step with the shop between
//! ingests. The server only verifies, keeps and acknowledges a webhook
//! (`server::webhooks`); one applier per process ([`run`]) then applies kept webhooks
//! in the order they came.
//!
//! Shopify delivers out of order and retries for hours, so an update applies only
//! when its `updated_at` is newer than the last one applied to that resource (last
//! write wins; an update without a readable `updated_at` is older than any dated one,
//! so it never overwrites one), and an update for a resource we do not hold creates it
//! ([`upserts`]). Cancellations, refunds, inventory levels, deletions, uninstalls and
//! the compliance topics change exactly what they name ([`topics`]).

mod payload;
mod topics;
mod upserts;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::app::AppError;
use crate::cancel::CancelToken;
use crate::domain::StoreId;
use crate::error::ErrorKind;
use crate::ingest::FileRole;
use crate::services::Services;
use crate::store::{StoreError, WebhookOutcome, WebhookRecord};

/// Why a webhook could not be applied. Its text is the note the webhook keeps.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("the body is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the {0} has no id")]
    NoId(&'static str),
    #[error("the refund names no order_id")]
    NoOrderId,
    #[error("no inventory_item_id")]
    NoInventoryItem,
    #[error("inventory item {0}: no available count")]
    NoAvailable(String),
    /// An upsert whose document kept no row: its first error.
    #[error("{kind} {id}: {first}")]
    NothingKept {
        kind: &'static str,
        id: String,
        first: String,
    },
    #[error("stored store id {0:?} does not read")]
    StoredStoreId(String),
    #[error("not applied")]
    NotApplied,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] AppError),
}

impl SyncError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SyncError::NotJson(_)
            | SyncError::NoId(_)
            | SyncError::NoOrderId
            | SyncError::NoInventoryItem
            | SyncError::NoAvailable(_)
            | SyncError::NothingKept { .. } => ErrorKind::BadInput,
            SyncError::StoredStoreId(_) | SyncError::NotApplied => ErrorKind::Internal,
            SyncError::Store(e) => e.kind(),
            SyncError::Ingest(e) => e.kind(),
        }
    }
}

/// How a webhook was applied, with the note it keeps.
#[derive(Debug, Clone, PartialEq)]
struct Applied {
    pub outcome: WebhookOutcome,
    pub note: String,
}

impl Applied {
    fn new(outcome: WebhookOutcome, note: impl Into<String>) -> Applied {
        Applied {
            outcome,
            note: note.into(),
        }
    }
}

/// Applies one kept webhook.
async fn apply(services: &Services, w: &WebhookRecord) -> Result<Applied, SyncError> {
    let Some(store) = w.store_id.as_deref() else {
        return Ok(Applied::new(
            WebhookOutcome::Ignored,
            format!("no store is shop {}", w.shop_domain),
        ));
    };
    let store_id = StoreId::parse(store).map_err(|_| SyncError::StoredStoreId(store.to_owned()))?;
    let body: Value = serde_json::from_slice(&w.body)?;
    match w.topic.as_str() {
        "products/create" | "products/update" => {
            upserts::upsert(services, &store_id, "product", FileRole::Catalog, body).await
        }
        "orders/create" | "orders/updated" => {
            upserts::upsert(services, &store_id, "order", FileRole::Orders, body).await
        }
        "products/delete" => topics::product_deleted(services, &store_id, &body).await,
        "orders/cancelled" => topics::order_cancelled(services, &store_id, &body).await,
        "refunds/create" => topics::refund(services, &store_id, &body).await,
        "inventory_levels/update" => topics::inventory_level(services, &store_id, &body).await,
        "app/uninstalled" => {
            services.store.mark_uninstalled(&store_id, now_ms()).await?;
            Ok(Applied::new(
                WebhookOutcome::Applied,
                "the app was uninstalled: the store's data stays until shop/redact",
            ))
        }
        "customers/data_request" => topics::data_request(services, &store_id, &body).await,
        "customers/redact" => topics::redact_customer(services, &store_id, &body).await,
        "shop/redact" => {
            services.store.erase_store(&store_id).await?;
            Ok(Applied::new(
                WebhookOutcome::Applied,
                format!("store {store_id}'s data erased"),
            ))
        }
        other => Ok(Applied::new(
            WebhookOutcome::Ignored,
            format!("topic {other} changes nothing bundleforge holds"),
        )),
    }
}

/// How many kept webhooks the applier takes at a time.
const BATCH: u32 = 100;

/// Applies kept webhooks, oldest first, until `shutdown`; `wake` says one was kept.
/// `applied` hears each webhook's topic and outcome as it is marked (the server
/// counts them).
pub async fn run(
    services: Arc<Services>,
    wake: Arc<Notify>,
    shutdown: CancelToken,
    applied: impl Fn(&str, WebhookOutcome) + Send + Sync,
) {
    while !shutdown.is_cancelled() {
        let pending = match services.store.pending_webhooks(BATCH).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read pending webhooks");
                Vec::new()
            }
        };
        if pending.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        let mut start = 0;
        while start < pending.len() {
            // A run of product and order upserts of one store is applied as one
            // ingest; anything else one at a time, in the order received.
            let end = upsert_run_end(&pending, start);
            let batch = &pending[start..end];
            let results = if batch.len() > 1 {
                upserts::apply_upserts(&services, batch).await
            } else {
                vec![apply(&services, &batch[0]).await]
            };
            finish(&services, batch, results, &applied).await;
            start = end;
        }
    }
}

/// Logs and marks a run of webhooks as applied (one write for the run: the receiving
/// side waits for SQLite's one writer, so fewer, shorter writes here are its
/// latency).
async fn finish(
    services: &Services,
    batch: &[WebhookRecord],
    results: Vec<Result<Applied, SyncError>>,
    applied: &(impl Fn(&str, WebhookOutcome) + Send + Sync),
) {
    let mut done = Vec::with_capacity(batch.len());
    for (w, result) in batch.iter().zip(results) {
        let (Applied { outcome, note }, kind) = match result {
            Ok(a) => (a, None),
            Err(e) => (
                Applied::new(WebhookOutcome::Failed, e.to_string()),
                Some(e.kind()),
            ),
        };
        applied(&w.topic, outcome);
        match kind {
            None => {
                tracing::info!(webhook = %w.webhook_id, topic = %w.topic, outcome = outcome.as_str(), %note, "webhook applied")
            }
            Some(kind) => {
                tracing::warn!(webhook = %w.webhook_id, topic = %w.topic, ?kind, error = %note, "webhook not applied")
            }
        }
        done.push((w.webhook_id.clone(), outcome, note));
    }
    if let Err(e) = services.store.finish_webhooks(&done, now_ms()).await {
        // Left pending: applied again, which the version checks make safe.
        tracing::warn!(error = %e, webhooks = done.len(), "cannot mark webhooks applied");
    }
}

/// The resource kind of an upsert topic: these go through `ingest`.
fn upsert_kind(topic: &str) -> Option<&'static str> {
    match topic {
        "products/create" | "products/update" => Some("product"),
        "orders/create" | "orders/updated" => Some("order"),
        _ => None,
    }
}

/// Where the run of upserts of one store starting at `start` ends (exclusive); a
/// webhook of another kind is a run of one.
fn upsert_run_end(pending: &[WebhookRecord], start: usize) -> usize {
    let first = &pending[start];
    if upsert_kind(&first.topic).is_none() || first.store_id.is_none() {
        return start + 1;
    }
    let mut end = start + 1;
    while end < pending.len()
        && upsert_kind(&pending[end].topic).is_some()
        && pending[end].store_id == first.store_id
    {
        end += 1;
    }
    end
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
