//! The topics other than upserts: each changes exactly what it names.

use serde_json::{Value, json};

use super::payload::{customer_of, id_of, text_of, updated_at, version_of};
use super::{Applied, SyncError, now_ms};
use crate::domain::StoreId;
use crate::services::Services;
use crate::store::{RefundedLine, WebhookOutcome};

/// `products/delete`: its variants are archived (past orders still join them).
pub(super) async fn product_deleted(
    services: &Services,
    store_id: &StoreId,
    body: &Value,
) -> Result<Applied, SyncError> {
    let id = id_of(body).ok_or(SyncError::NoId("product"))?;
    let n = services.store.archive_product(store_id, &id).await?;
    Ok(Applied::new(
        WebhookOutcome::Applied,
        format!("product {id}: {n} variants archived"),
    ))
}

/// `orders/cancelled`: the order leaves the baskets. An older update arriving later
/// cannot bring it back: the cancellation takes the order's version.
pub(super) async fn order_cancelled(
    services: &Services,
    store_id: &StoreId,
    body: &Value,
) -> Result<Applied, SyncError> {
    let id = id_of(body).ok_or(SyncError::NoId("order"))?;
    let store = &services.store;
    // A cancellation outranks every update up to it, and one after it with the same
    // time: version it a millisecond later.
    let at = updated_at(body).unwrap_or_else(now_ms) + 1;
    store
        .take_version(store_id, &format!("order:{id}"), at)
        .await?;
    let had = store.delete_order(store_id, &id).await?;
    Ok(Applied::new(
        WebhookOutcome::Applied,
        if had {
            format!("order {id} cancelled: removed from the baskets")
        } else {
            format!("order {id} cancelled: it was not held")
        },
    ))
}

/// `refunds/create`: refunded units leave their lines.
pub(super) async fn refund(
    services: &Services,
    store_id: &StoreId,
    body: &Value,
) -> Result<Applied, SyncError> {
    let order_id = text_of(body.get("order_id")).ok_or(SyncError::NoOrderId)?;
    let lines: Vec<RefundedLine> = body
        .get("refund_line_items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|r| RefundedLine {
                    variant_id: text_of(r.pointer("/line_item/variant_id")),
                    sku: text_of(r.pointer("/line_item/sku")),
                    quantity: r.get("quantity").and_then(Value::as_i64).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let changed = services
        .store
        .refund_lines(store_id, &order_id, &lines)
        .await?;
    Ok(Applied::new(
        WebhookOutcome::Applied,
        format!(
            "order {order_id}: {changed} of {} refunded lines changed",
            lines.len()
        ),
    ))
}

/// `inventory_levels/update`: the units available of one inventory item, when newer
/// than the last level applied.
pub(super) async fn inventory_level(
    services: &Services,
    store_id: &StoreId,
    body: &Value,
) -> Result<Applied, SyncError> {
    let item = text_of(body.get("inventory_item_id")).ok_or(SyncError::NoInventoryItem)?;
    let available = body
        .get("available")
        .and_then(Value::as_i64)
        .ok_or_else(|| SyncError::NoAvailable(item.clone()))?;
    let store = &services.store;
    // An undated level is older than any dated one: it applies only to an item no level
    // was applied to (see `version_of`).
    let at = version_of(body);
    if !store
        .take_version(store_id, &format!("inventory_item:{item}"), at)
        .await?
    {
        return Ok(Applied::new(
            WebhookOutcome::Stale,
            format!("inventory item {item}: a level as new or newer was applied already"),
        ));
    }
    let n = store.set_inventory(store_id, &item, available).await?;
    Ok(Applied::new(
        WebhookOutcome::Applied,
        format!("inventory item {item}: {available} available on {n} variants"),
    ))
}

/// `customers/data_request`: what we hold on the customer (their orders' ids and
/// lines), kept as the webhook's result for the merchant.
pub(super) async fn data_request(
    services: &Services,
    store_id: &StoreId,
    body: &Value,
) -> Result<Applied, SyncError> {
    let (keys, orders) = customer_of(body);
    let held = services
        .store
        .customer_orders(store_id, &keys, &orders)
        .await?;
    Ok(Applied::new(
        WebhookOutcome::Applied,
        json!({"store": store_id.as_str(), "orders": held}).to_string(),
    ))
}

/// `customers/redact`: the customer's identifiers leave the orders we keep, the data
/// requests' answers that list their orders go, and the kept webhook bodies that name
/// them (by id, email or phone) are erased. Webhooks of theirs still waiting to be
/// applied (other than this one) lose them first: an order goes on without its
/// customer, anything else of theirs is erased.
pub(super) async fn redact_customer(
    services: &Services,
    store_id: &StoreId,
    webhook_id: &str,
    body: &Value,
) -> Result<Applied, SyncError> {
    let (keys, orders) = customer_of(body);
    let mut needles = keys.clone();
    needles.extend(text_of(body.pointer("/customer/phone")));
    let store = &services.store;
    // First, or an order waiting would bring its customer back once applied.
    let mut pending = 0u64;
    for w in store.pending_webhooks_holding(store_id, &needles).await? {
        if w.webhook_id == webhook_id {
            continue;
        }
        if let Some(kept) = super::kept::without_customer(&w.topic, &w.body, &needles)
            && store.replace_pending_body(&w.webhook_id, &kept).await?
        {
            pending += 1;
        }
    }
    let n = store.redact_customer(store_id, &keys, &orders).await?;
    let erased = store.redact_webhook_bodies(store_id, &needles).await?;
    Ok(Applied::new(
        WebhookOutcome::Applied,
        format!(
            "the customer's identifiers erased from {n} orders, {erased} kept webhook bodies \
             and {pending} bodies of webhooks not applied yet"
        ),
    ))
}

/// `app/uninstalled`: the store stops acting. Its API tokens are revoked, its queued
/// jobs cancelled and its running ones stopped; its webhooks other than the
/// compliance topics are refused from now on. Its data stays until `shop/redact`.
pub(super) async fn uninstalled(
    services: &Services,
    store_id: &StoreId,
) -> Result<Applied, SyncError> {
    let store = &services.store;
    let now = now_ms();
    // Marked first: from then on no job is triggered and no webhook taken for it.
    store.mark_uninstalled(store_id, now).await?;
    // Its Shopify access token, once one is stored, is to be dropped here too.
    let tokens = store.revoke_store_tokens(store_id, now).await?;
    let jobs = store
        .cancel_store_jobs(store_id, now, crate::store::jobs::UNINSTALLED_MESSAGE)
        .await?;
    Ok(Applied::new(
        WebhookOutcome::Applied,
        format!(
            "the app was uninstalled: {tokens} tokens revoked, {} queued jobs cancelled, \
             {} running jobs stopping; the store's data stays until shop/redact",
            jobs.cancelled, jobs.stopping
        ),
    ))
}
