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
//!
//! A body is kept only as long as applying needs it: only the fields applying reads
//! are stored ([`kept_body`]); a compliance request's body, and one of a shop no store
//! is, goes once applied; a redacted customer's go with the redaction (one still
//! waiting to be applied loses them then), as do the data requests' answers that list
//! their orders; every other goes `server.webhook_retention_days` after it was
//! applied. A webhook's id, topic and outcome stay, so a late replay is still
//! recognised.

mod kept;
mod payload;
mod topics;
mod upserts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

use crate::app::AppError;
use crate::cancel::CancelToken;
use crate::domain::StoreId;
use crate::error::ErrorKind;
use crate::ingest::FileRole;
use crate::services::Services;
use crate::store::{FinishedWebhook, StoreError, WebhookOutcome, WebhookRecord};

pub use kept::kept_body;

/// The topics Shopify's privacy law compliance sends. They are applied even after the
/// app was uninstalled (`shop/redact` comes 48 hours after).
pub fn is_compliance_topic(topic: &str) -> bool {
    matches!(
        topic,
        "customers/data_request" | "customers/redact" | "shop/redact"
    )
}

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
    if w.body.is_empty() {
        // Its store was erased (shop/redact) while it waited.
        return Ok(body_erased());
    }
    if let Some(refused) = refused_after_uninstall(services, &store_id, &w.topic).await? {
        return Ok(refused);
    }
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
        "app/uninstalled" => topics::uninstalled(services, &store_id).await,
        "customers/data_request" => topics::data_request(services, &store_id, &body).await,
        "customers/redact" => {
            topics::redact_customer(services, &store_id, &w.webhook_id, &body).await
        }
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

/// A webhook whose body was erased before it was applied.
fn body_erased() -> Applied {
    Applied::new(
        WebhookOutcome::Ignored,
        "its body was erased before it was applied",
    )
}

/// A webhook of a store whose app was uninstalled, other than a compliance topic:
/// ignored (the receiver refuses these; this catches those kept before the uninstall
/// was applied).
async fn refused_after_uninstall(
    services: &Services,
    store_id: &StoreId,
    topic: &str,
) -> Result<Option<Applied>, SyncError> {
    if is_compliance_topic(topic) {
        return Ok(None);
    }
    let uninstalled = services.store.uninstalled_at(store_id).await?;
    Ok(uninstalled.map(|_| {
        Applied::new(
            WebhookOutcome::Ignored,
            format!("store {store_id}'s app was uninstalled: only the compliance topics apply"),
        )
    }))
}

/// How many kept webhooks the applier takes at a time.
const BATCH: u32 = 100;

/// How often the applier erases the bodies past the retention.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// Applies kept webhooks, oldest first, until `shutdown`; `wake` says one was kept.
/// `applied` hears each webhook's topic and outcome as it is marked (the server
/// counts them). Once a minute it erases the bodies past the retention.
pub async fn run(
    services: Arc<Services>,
    wake: Arc<Notify>,
    shutdown: CancelToken,
    applied: impl Fn(&str, WebhookOutcome) + Send + Sync,
) {
    let mut expired_at: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        if expired_at.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
            expire_bodies(&services).await;
            expired_at = Some(Instant::now());
        }
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
            // A redaction rewrites or erases the bodies of webhooks still pending: those
            // after it are read again rather than applied as they were read before.
            if batch
                .iter()
                .any(|w| matches!(w.topic.as_str(), "customers/redact" | "shop/redact"))
            {
                break;
            }
        }
    }
}

/// Erases the bodies of webhooks applied longer ago than
/// `server.webhook_retention_days`.
async fn expire_bodies(services: &Services) {
    let days = services.settings.server.webhook_retention_days;
    let applied_before = now_ms() - i64::from(days) * 86_400_000;
    match services.store.expire_webhook_bodies(applied_before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(bodies = n, days, "webhook bodies past the retention erased"),
        Err(e) => tracing::warn!(error = %e, "cannot erase webhook bodies past the retention"),
    }
}

/// Logs and marks a run of webhooks as applied (one write for the run: the receiving
/// side waits for SQLite's one writer, so fewer, shorter writes here are its
/// latency). A body nothing will read again and that may name a person goes in the
/// same write: a compliance request's, one of a shop no store is, and every one when
/// no retention is set.
async fn finish(
    services: &Services,
    batch: &[WebhookRecord],
    results: Vec<Result<Applied, SyncError>>,
    applied: &(impl Fn(&str, WebhookOutcome) + Send + Sync),
) {
    let keep_none = services.settings.server.webhook_retention_days == 0;
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
        done.push(FinishedWebhook {
            webhook_id: w.webhook_id.clone(),
            outcome,
            note,
            drop_body: keep_none || w.store_id.is_none() || is_compliance_topic(&w.topic),
        });
    }
    if let Err(e) = services.store.finish_webhooks(&done, now_ms()).await {
        // Left pending: applied again, which the version checks make safe.
        tracing::warn!(error = %e, webhooks = done.len(), "cannot mark webhooks applied");
    }
}

/// Every topic the applier reads; anything else is kept and ignored.
pub const TOPICS: &[&str] = &[
    "products/create",
    "products/update",
    "products/delete",
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "refunds/create",
    "inventory_levels/update",
    "app/uninstalled",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
];

/// A topic as a metric label: one of [`TOPICS`], else `other`. The header is the
/// sender's to choose (before the signature is checked, anyone's), so a label kept for
/// the process's life comes from a closed set.
pub fn topic_label(topic: &str) -> &'static str {
    TOPICS
        .iter()
        .find(|t| **t == topic)
        .copied()
        .unwrap_or("other")
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
