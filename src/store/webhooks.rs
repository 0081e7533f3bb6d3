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

    /// A kept webhook with how it was applied (`None` while pending): outcome, note and
    /// when (Unix ms).
    async fn get_webhook(
        &self,
        webhook_id: &str,
    ) -> Result<Option<(WebhookRecord, Option<(String, String, i64)>)>, StoreError>;

    /// Webhooks not applied yet, oldest first.
    async fn pending_webhooks(&self, limit: u32) -> Result<Vec<WebhookRecord>, StoreError>;

    /// Marks webhooks applied (or stale, ignored, failed), each with a note, in one
    /// write; the bodies of those that say so go in the same write.
    async fn finish_webhooks(&self, done: &[FinishedWebhook], now: i64) -> Result<(), StoreError>;

    /// Erases the bodies of a store's applied webhooks that hold any of `needles`
    /// (a redacted customer's id, email, phone), byte for byte. Ids, topics and
    /// outcomes stay, so a replay is still recognised. Returns the bodies erased.
    async fn redact_webhook_bodies(
        &self,
        store: &StoreId,
        needles: &[String],
    ) -> Result<u64, StoreError>;

    /// A store's webhooks not applied yet whose body holds any of `needles` (a
    /// redacted customer's id, email, phone), byte for byte, oldest first.
    async fn pending_webhooks_holding(
        &self,
        store: &StoreId,
        needles: &[String],
    ) -> Result<Vec<WebhookRecord>, StoreError>;

    /// Replaces the body of a webhook not applied yet (a redaction's doing); `false`
    /// when it was applied meanwhile.
    async fn replace_pending_body(&self, webhook_id: &str, body: &[u8])
    -> Result<bool, StoreError>;

    /// Erases the bodies of webhooks applied before `applied_before` (Unix ms): the
    /// retention. Ids, topics and outcomes stay. Returns the bodies erased.
    async fn expire_webhook_bodies(&self, applied_before: i64) -> Result<u64, StoreError>;

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

    /// A product deleted in the shop: its variants are archived (kept, so past orders
    /// still join, but never bundled again). Returns the variants archived.
    async fn archive_product(&self, store: &StoreId, product_id: &str) -> Result<u64, StoreError>;

    /// An order cancelled: it and its lines leave the store's baskets. `false` when
    /// the store did not have it.
    async fn delete_order(&self, store: &StoreId, order_id: &str) -> Result<bool, StoreError>;

    /// A refund: each line named (by variant id, else SKU) loses the refunded units; a
    /// line with none left goes, and an order with no line left. Returns the lines
    /// changed.
    async fn refund_lines(
        &self,
        store: &StoreId,
        order_id: &str,
        refunded: &[RefundedLine],
    ) -> Result<u64, StoreError>;

    /// An inventory level: the units available of the variants with that inventory
    /// item (Shopify's number, or its `gid://shopify/InventoryItem/N` form).
    async fn set_inventory(
        &self,
        store: &StoreId,
        inventory_item_id: &str,
        available: i64,
    ) -> Result<u64, StoreError>;

    /// What a store holds on a customer (their key: Shopify's customer id or email;
    /// or the orders named): order ids and lines.
    async fn customer_orders(
        &self,
        store: &StoreId,
        keys: &[String],
        order_ids: &[String],
    ) -> Result<Vec<CustomerOrder>, StoreError>;

    /// Erases a customer's identifiers from the store's orders (the baskets stay,
    /// anonymous), and the answers of the store's data requests that list any of their
    /// orders or of `order_ids`. Returns the orders changed.
    async fn redact_customer(
        &self,
        store: &StoreId,
        keys: &[String],
        order_ids: &[String],
    ) -> Result<u64, StoreError>;

    /// Marks a store's app uninstalled (its data stays until the shop's redaction).
    async fn mark_uninstalled(&self, store: &StoreId, at: i64) -> Result<(), StoreError>;

    /// Erases everything a store holds: catalog, orders, runs and bundles, decisions,
    /// tokens, jobs, uploads, versions, its webhooks' bodies; the store itself last.
    async fn erase_store(&self, store: &StoreId) -> Result<(), StoreError>;
}

/// A webhook as the applier marks it done.
#[derive(Debug, Clone)]
pub struct FinishedWebhook {
    pub webhook_id: String,
    pub outcome: WebhookOutcome,
    pub note: String,
    /// Its body is erased now: nothing will read it again and it may name a person
    /// (a compliance request, a shop no store is, no retention set).
    pub drop_body: bool,
}

/// A refunded line of an order.
#[derive(Debug, Clone)]
pub struct RefundedLine {
    pub variant_id: Option<String>,
    pub sku: Option<String>,
    pub quantity: i64,
}

/// An order as a data request reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CustomerOrder {
    pub order_id: String,
    pub name: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub lines: Vec<CustomerOrderLine>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CustomerOrderLine {
    pub variant_id: Option<String>,
    pub sku: Option<String>,
    pub title: Option<String>,
    pub quantity: i64,
    pub unit_price_minor: i64,
}
