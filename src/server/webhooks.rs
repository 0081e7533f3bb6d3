//! Shopify webhooks: `POST /webhooks/shopify`.
//!
//! The receiver does as little as Shopify's five-second budget asks: it checks the
//! signature on the raw body (HMAC-SHA256 with the app's secret, compared in constant
//! time, before anything is parsed), keeps the webhook by its id (a replay is
//! acknowledged and changes nothing) and answers. One applier per process then applies
//! kept webhooks in the order they came. Shopify delivers out of order and retries for
//! hours, so an update applies only when its `updated_at` is newer than the last one
//! applied to that resource (last write wins); an update for a resource we do not hold
//! creates it.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AppState, metrics, now_ms};
use crate::cancel::CancelToken;
use crate::domain::StoreId;
use crate::ingest::{FileRole, IngestSource, IngestSources, NoProgress};
use crate::store::{WebhookOutcome, WebhookRecord};

/// Whether `signature` (the `X-Shopify-Hmac-Sha256` header: base64) signs `body`.
pub fn signed(secret: &str, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).is_ok()
}

/// The signature Shopify would send for `body`: for tests and clients.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// `POST /webhooks/shopify`.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let topic = header(&headers, "x-shopify-topic")
        .unwrap_or("unknown")
        .to_owned();
    let count = |outcome: &str| {
        state
            .metrics
            .add(metrics::WEBHOOKS, &[&topic, outcome], 1.0);
    };
    let secret = &state.services.settings.shopify.webhook_secret;
    if secret.is_empty() {
        count("refused");
        return Err(unauthorized(
            "webhooks are off: this server has no shopify.webhook_secret",
        ));
    }
    let Some(signature) = header(&headers, "x-shopify-hmac-sha256") else {
        count("refused");
        return Err(unauthorized("no X-Shopify-Hmac-Sha256 header"));
    };
    if !signed(secret.expose(), &body, signature) {
        count("refused");
        return Err(unauthorized(
            "the X-Shopify-Hmac-Sha256 signature does not match",
        ));
    }
    let (Some(shop), Some(webhook_id)) = (
        header(&headers, "x-shopify-shop-domain"),
        header(&headers, "x-shopify-webhook-id"),
    ) else {
        count("bad_input");
        return Err(ApiError::bad_request(
            "a webhook names its shop (X-Shopify-Shop-Domain) and its id (X-Shopify-Webhook-Id)",
        ));
    };
    let Some(shop) = crate::store::shop_domain(shop) else {
        count("bad_input");
        return Err(ApiError::bad_request(format!(
            "X-Shopify-Shop-Domain {shop:?} is not a shop's host name"
        )));
    };
    let store = state.services.store.store_for_shop(&shop).await?;
    if store.is_none() {
        tracing::warn!(%shop, %topic, webhook = webhook_id, "webhook for a shop no store is");
    }
    let record = WebhookRecord {
        webhook_id: webhook_id.to_owned(),
        shop_domain: shop,
        store_id: store.map(|s| s.as_str().to_owned()),
        topic: topic.clone(),
        body: body.to_vec(),
        received_at: now_ms(),
    };
    let fresh = state.services.store.record_webhook(&record).await?;
    let status = match (fresh, &record.store_id) {
        (false, _) => "duplicate",
        (true, None) => "unknown_shop",
        (true, Some(_)) => "accepted",
    };
    count(status);
    if fresh {
        state.webhook_received.notify_one();
    }
    Ok(Json(json!({"status": status, "webhook_id": webhook_id})))
}

/// How many kept webhooks the applier takes at a time.
const BATCH: u32 = 100;

/// Applies kept webhooks, oldest first, until `shutdown`.
pub async fn apply_loop(state: Arc<AppState>, shutdown: CancelToken) {
    while !shutdown.is_cancelled() {
        let pending = match state.services.store.pending_webhooks(BATCH).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read pending webhooks");
                Vec::new()
            }
        };
        if pending.is_empty() {
            tokio::select! {
                _ = state.webhook_received.notified() => {}
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
            let run = &pending[start..end];
            let results = if run.len() > 1 {
                apply_upserts(&state, run).await
            } else {
                vec![apply(&state, &run[0]).await]
            };
            finish(&state, run, results).await;
            start = end;
        }
    }
}

/// Counts, logs and marks a run of webhooks as applied (one write for the run: the
/// receiving side waits for SQLite's one writer, so fewer, shorter writes here are
/// its latency).
async fn finish(state: &AppState, run: &[WebhookRecord], results: Vec<(WebhookOutcome, String)>) {
    let mut done = Vec::with_capacity(run.len());
    for (w, (outcome, message)) in run.iter().zip(results) {
        state
            .metrics
            .add(metrics::WEBHOOKS, &[&w.topic, outcome.as_str()], 1.0);
        tracing::info!(webhook = %w.webhook_id, topic = %w.topic, outcome = outcome.as_str(), %message, "webhook applied");
        done.push((w.webhook_id.clone(), outcome, message));
    }
    if let Err(e) = state.services.store.finish_webhooks(&done, now_ms()).await {
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

/// A run of product and order upserts of one store in one ingest: per resource, only
/// the newest of the run and only when newer than what was applied; products are
/// read before orders (an order's lines join its products either way, and each
/// resource keeps its own order). When the ingest keeps less than everything, each
/// is applied alone instead, so every webhook gets its own outcome; the upserts are
/// idempotent, so what the shared ingest wrote is written again unchanged.
async fn apply_upserts(state: &AppState, run: &[WebhookRecord]) -> Vec<(WebhookOutcome, String)> {
    let mut results: Vec<Option<(WebhookOutcome, String)>> = vec![None; run.len()];
    let Some(store_id) = run[0]
        .store_id
        .as_deref()
        .and_then(|s| StoreId::parse(s).ok())
    else {
        let mut out = Vec::with_capacity(run.len());
        for w in run {
            out.push(apply(state, w).await);
        }
        return out;
    };
    // Parse, and keep the newest of each resource (a tie goes to the later).
    let mut bodies: Vec<Option<Upsert>> = vec![None; run.len()];
    let mut newest: std::collections::HashMap<(&'static str, String), usize> =
        std::collections::HashMap::new();
    for (n, w) in run.iter().enumerate() {
        let kind = upsert_kind(&w.topic).unwrap_or("product");
        let body: Value = match serde_json::from_slice(&w.body) {
            Ok(v) => v,
            Err(e) => {
                results[n] = Some((WebhookOutcome::Failed, format!("the body is not JSON: {e}")));
                continue;
            }
        };
        let Some(id) = id_of(&body) else {
            results[n] = Some((WebhookOutcome::Failed, format!("the {kind} has no id")));
            continue;
        };
        let at = updated_at(&body);
        if let Some(&m) = newest.get(&(kind, id.clone())) {
            let older = bodies[m].as_ref().and_then(|b| b.updated_at);
            if at.unwrap_or(i64::MAX) < older.unwrap_or(i64::MIN) {
                results[n] = Some((
                    WebhookOutcome::Stale,
                    format!("{kind} {id}: a newer update came in the same batch"),
                ));
                continue;
            }
            results[m] = Some((
                WebhookOutcome::Stale,
                format!("{kind} {id}: a newer update came in the same batch"),
            ));
            bodies[m] = None;
        }
        newest.insert((kind, id.clone()), n);
        bodies[n] = Some(Upsert {
            kind,
            id,
            updated_at: at,
            body,
        });
    }
    // Older than what was applied: stale.
    let store = &state.services.store;
    for n in 0..run.len() {
        let Some(Upsert {
            kind,
            id,
            updated_at: Some(at),
            ..
        }) = &bodies[n]
        else {
            continue;
        };
        match store
            .resource_version(&store_id, &format!("{kind}:{id}"))
            .await
        {
            Ok(Some(v)) if v >= *at => {
                results[n] = Some((
                    WebhookOutcome::Stale,
                    format!("{kind} {id}: an update as new or newer was applied already"),
                ));
                bodies[n] = None;
            }
            Ok(_) => {}
            Err(e) => {
                results[n] = Some((WebhookOutcome::Failed, e.to_string()));
                bodies[n] = None;
            }
        }
    }
    let live: Vec<usize> = (0..run.len()).filter(|&n| bodies[n].is_some()).collect();
    let together = match live.len() {
        0 => Some(0),
        1 => None,
        _ => ingest_together(state, &store_id, &mut bodies).await,
    };
    match together {
        Some(kept) => {
            for &n in &live {
                let Some(Upsert {
                    kind,
                    id,
                    updated_at: at,
                    ..
                }) = &bodies[n]
                else {
                    continue;
                };
                let taken = match at {
                    Some(at) => store
                        .take_version(&store_id, &format!("{kind}:{id}"), *at)
                        .await
                        .map_err(|e| e.to_string()),
                    None => Ok(true),
                };
                results[n] = Some(match taken {
                    Ok(true) => (
                        WebhookOutcome::Applied,
                        format!(
                            "{kind} {id}: applied with {} others in one ingest ({kept} rows kept)",
                            live.len() - 1
                        ),
                    ),
                    Ok(false) => (
                        WebhookOutcome::Stale,
                        format!("{kind} {id}: an update as new or newer was applied already"),
                    ),
                    Err(e) => (WebhookOutcome::Failed, e),
                });
            }
        }
        None => {
            for &n in &live {
                results[n] = Some(apply(state, &run[n]).await);
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or((WebhookOutcome::Failed, "not applied".into())))
        .collect()
}

/// A product or order upsert of a batch, parsed.
#[derive(Clone)]
struct Upsert {
    kind: &'static str,
    id: String,
    updated_at: Option<i64>,
    /// Taken by the batch's one ingest (a failed one applies each webhook from its
    /// record again).
    body: Value,
}

/// `{key: value}`, built around the value itself (`json!` would copy it).
fn document(key: &str, value: Value) -> Value {
    Value::Object(serde_json::Map::from_iter([(key.to_owned(), value)]))
}

/// One ingest of the live bodies, taken from them: products as one catalog document,
/// orders as one orders document. `Some(rows kept)` when every row was kept, else
/// `None`.
async fn ingest_together(
    state: &AppState,
    store_id: &StoreId,
    bodies: &mut [Option<Upsert>],
) -> Option<u64> {
    let (mut products, mut orders) = (Vec::new(), Vec::new());
    for b in bodies.iter_mut().flatten() {
        match b.kind {
            "product" => products.push(std::mem::take(&mut b.body)),
            "order" => orders.push(std::mem::take(&mut b.body)),
            _ => {}
        }
    }
    let mut sources = Vec::new();
    if !products.is_empty() {
        let doc = document("products", Value::Array(products));
        sources.push(IngestSource::json(FileRole::Catalog, "products.json", doc));
    }
    if !orders.is_empty() {
        let doc = document("orders", Value::Array(orders));
        sources.push(IngestSource::json(FileRole::Orders, "orders.json", doc));
    }
    let sources = IngestSources::new(sources).ok()?;
    let services = &state.services;
    let outcome = crate::app::ingest(
        services.store.as_ref(),
        store_id,
        sources,
        &services.settings,
        Arc::new(NoProgress),
    )
    .await
    .ok()?;
    let report = &outcome.report;
    (report.error_count == 0 && report.rejected_total() == 0).then_some(report.rows_kept)
}

/// An id or key as text: Shopify sends ids as numbers, some as strings.
fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// The id of a webhook's resource, as text.
fn id_of(v: &Value) -> Option<String> {
    text_of(v.get("id"))
}

/// `updated_at` (RFC 3339) as Unix ms.
fn updated_at(v: &Value) -> Option<i64> {
    let text = v.get("updated_at")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

async fn apply(state: &AppState, w: &WebhookRecord) -> (WebhookOutcome, String) {
    let Some(store) = w.store_id.as_deref() else {
        return (
            WebhookOutcome::Ignored,
            format!("no store is shop {}", w.shop_domain),
        );
    };
    let Ok(store_id) = StoreId::parse(store) else {
        return (
            WebhookOutcome::Failed,
            format!("stored store id {store:?} does not read"),
        );
    };
    let body: Value = match serde_json::from_slice(&w.body) {
        Ok(v) => v,
        Err(e) => return (WebhookOutcome::Failed, format!("the body is not JSON: {e}")),
    };
    let result = match w.topic.as_str() {
        "products/create" | "products/update" => {
            upsert(state, &store_id, "product", FileRole::Catalog, body).await
        }
        "orders/create" | "orders/updated" => {
            upsert(state, &store_id, "order", FileRole::Orders, body).await
        }
        "products/delete" => product_deleted(state, &store_id, &body).await,
        "orders/cancelled" => order_cancelled(state, &store_id, &body).await,
        "refunds/create" => refund(state, &store_id, &body).await,
        "inventory_levels/update" => inventory_level(state, &store_id, &body).await,
        "app/uninstalled" => state
            .services
            .store
            .mark_uninstalled(&store_id, now_ms())
            .await
            .map(|()| {
                (
                    WebhookOutcome::Applied,
                    "the app was uninstalled: the store's data stays until shop/redact".into(),
                )
            })
            .map_err(|e| e.to_string()),
        "customers/data_request" => data_request(state, &store_id, &body).await,
        "customers/redact" => redact_customer(state, &store_id, &body).await,
        "shop/redact" => state
            .services
            .store
            .erase_store(&store_id)
            .await
            .map(|()| {
                (
                    WebhookOutcome::Applied,
                    format!("store {store_id}'s data erased"),
                )
            })
            .map_err(|e| e.to_string()),
        other => Ok((
            WebhookOutcome::Ignored,
            format!("topic {other} changes nothing bundleforge holds"),
        )),
    };
    result.unwrap_or_else(|e| (WebhookOutcome::Failed, e))
}

/// `products/delete`: its variants are archived (past orders still join them).
async fn product_deleted(
    state: &AppState,
    store_id: &StoreId,
    body: &Value,
) -> Result<(WebhookOutcome, String), String> {
    let Some(id) = id_of(body) else {
        return Ok((WebhookOutcome::Failed, "the product has no id".into()));
    };
    let n = state
        .services
        .store
        .archive_product(store_id, &id)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        WebhookOutcome::Applied,
        format!("product {id}: {n} variants archived"),
    ))
}

/// `orders/cancelled`: the order leaves the baskets. An older update arriving later
/// cannot bring it back: the cancellation takes the order's version.
async fn order_cancelled(
    state: &AppState,
    store_id: &StoreId,
    body: &Value,
) -> Result<(WebhookOutcome, String), String> {
    let Some(id) = id_of(body) else {
        return Ok((WebhookOutcome::Failed, "the order has no id".into()));
    };
    let store = &state.services.store;
    // A cancellation outranks every update up to it, and one after it with the same
    // time: version it a millisecond later.
    let at = updated_at(body).unwrap_or_else(now_ms) + 1;
    store
        .take_version(store_id, &format!("order:{id}"), at)
        .await
        .map_err(|e| e.to_string())?;
    let had = store
        .delete_order(store_id, &id)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        WebhookOutcome::Applied,
        if had {
            format!("order {id} cancelled: removed from the baskets")
        } else {
            format!("order {id} cancelled: it was not held")
        },
    ))
}

/// `refunds/create`: refunded units leave their lines.
async fn refund(
    state: &AppState,
    store_id: &StoreId,
    body: &Value,
) -> Result<(WebhookOutcome, String), String> {
    let Some(order_id) = text_of(body.get("order_id")) else {
        return Ok((
            WebhookOutcome::Failed,
            "the refund names no order_id".into(),
        ));
    };
    let lines: Vec<crate::store::RefundedLine> = body
        .get("refund_line_items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|r| crate::store::RefundedLine {
                    variant_id: text_of(r.pointer("/line_item/variant_id")),
                    sku: text_of(r.pointer("/line_item/sku")),
                    quantity: r.get("quantity").and_then(Value::as_i64).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let changed = state
        .services
        .store
        .refund_lines(store_id, &order_id, &lines)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        WebhookOutcome::Applied,
        format!(
            "order {order_id}: {changed} of {} refunded lines changed",
            lines.len()
        ),
    ))
}

/// `inventory_levels/update`: the units available of one inventory item, when newer
/// than the last level applied.
async fn inventory_level(
    state: &AppState,
    store_id: &StoreId,
    body: &Value,
) -> Result<(WebhookOutcome, String), String> {
    let Some(item) = text_of(body.get("inventory_item_id")) else {
        return Ok((WebhookOutcome::Failed, "no inventory_item_id".into()));
    };
    let Some(available) = body.get("available").and_then(Value::as_i64) else {
        return Ok((
            WebhookOutcome::Failed,
            format!("inventory item {item}: no available count"),
        ));
    };
    let store = &state.services.store;
    if let Some(at) = updated_at(body)
        && !store
            .take_version(store_id, &format!("inventory_item:{item}"), at)
            .await
            .map_err(|e| e.to_string())?
    {
        return Ok((
            WebhookOutcome::Stale,
            format!("inventory item {item}: a newer level was applied already"),
        ));
    }
    let n = store
        .set_inventory(store_id, &item, available)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        WebhookOutcome::Applied,
        format!("inventory item {item}: {available} available on {n} variants"),
    ))
}

/// A compliance request's customer keys (id, email) and order ids.
fn customer_of(body: &Value) -> (Vec<String>, Vec<String>) {
    let keys = [
        text_of(body.pointer("/customer/id")),
        text_of(body.pointer("/customer/email")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let orders = ["orders_requested", "orders_to_redact"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(|v| text_of(Some(v)))
        .collect();
    (keys, orders)
}

/// `customers/data_request`: what we hold on the customer (their orders' ids and
/// lines), kept as the webhook's result for the merchant (`GET /v1/admin/webhooks/{id}`).
async fn data_request(
    state: &AppState,
    store_id: &StoreId,
    body: &Value,
) -> Result<(WebhookOutcome, String), String> {
    let (keys, orders) = customer_of(body);
    let held = state
        .services
        .store
        .customer_orders(store_id, &keys, &orders)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        WebhookOutcome::Applied,
        json!({"store": store_id.as_str(), "orders": held}).to_string(),
    ))
}

/// `customers/redact`: the customer's identifiers leave the orders we keep.
async fn redact_customer(
    state: &AppState,
    store_id: &StoreId,
    body: &Value,
) -> Result<(WebhookOutcome, String), String> {
    let (keys, orders) = customer_of(body);
    let n = state
        .services
        .store
        .redact_customer(store_id, &keys, &orders)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        WebhookOutcome::Applied,
        format!("the customer's identifiers erased from {n} orders"),
    ))
}

/// A product or order created or updated: read as `ingest` reads Shopify's JSON (the
/// document `{kind}.json`, as in `{"product": …}`), when newer than what was applied.
async fn upsert(
    state: &AppState,
    store_id: &StoreId,
    kind: &str,
    role: FileRole,
    body: Value,
) -> Result<(WebhookOutcome, String), String> {
    let Some(id) = id_of(&body) else {
        return Ok((WebhookOutcome::Failed, format!("the {kind} has no id")));
    };
    let services = &state.services;
    let resource = format!("{kind}:{id}");
    let at = updated_at(&body);
    let stale = || {
        Ok((
            WebhookOutcome::Stale,
            format!("{kind} {id}: an update as new or newer was applied already"),
        ))
    };
    if let Some(at) = at {
        let applied = services
            .store
            .resource_version(store_id, &resource)
            .await
            .map_err(|e| e.to_string())?;
        if applied.is_some_and(|v| v >= at) {
            return stale();
        }
    }
    let source = IngestSource::json(role, format!("{kind}.json"), document(kind, body));
    let outcome = crate::app::ingest(
        services.store.as_ref(),
        store_id,
        IngestSources::from(source),
        &services.settings,
        Arc::new(NoProgress),
    )
    .await
    .map_err(|e| e.to_string())?;
    let report = &outcome.report;
    if report.rows_kept == 0 {
        let first = report
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "nothing in it could be kept".into());
        return Ok((WebhookOutcome::Failed, format!("{kind} {id}: {first}")));
    }
    // Recorded once applied: a failed update does not make its own retry stale.
    if let Some(at) = at
        && !services
            .store
            .take_version(store_id, &resource, at)
            .await
            .map_err(|e| e.to_string())?
    {
        return stale();
    }
    Ok((
        WebhookOutcome::Applied,
        format!(
            "{kind} {id}: {} rows kept, {} rejected",
            report.rows_kept,
            report.rejected_total()
        ),
    ))
}

/// `GET /v1/admin/webhooks/{id}`: a kept webhook and how it was applied; for a
/// `customers/data_request`, `result` is what we hold on the customer.
pub async fn inspect(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    super::authorize_admin(&state, &headers)?;
    let Some((w, applied)) = state.services.store.get_webhook(&id).await? else {
        return Err(ApiError::not_found(format!("no webhook {id:?}")));
    };
    let (outcome, message, applied_at) = match applied {
        Some((o, m, at)) => (Some(o), Some(m), super::jobs::rfc3339_ms(at)),
        None => (None, None, None),
    };
    // A data request's result is JSON; every other note is a sentence.
    let result = message.as_deref().and_then(|m| {
        serde_json::from_str::<Value>(m)
            .ok()
            .filter(Value::is_object)
    });
    Ok(Json(json!({
        "webhook_id": w.webhook_id,
        "topic": w.topic,
        "shop_domain": w.shop_domain,
        "store": w.store_id,
        "received_at": super::jobs::rfc3339_ms(w.received_at),
        "applied_at": applied_at,
        "outcome": outcome,
        "message": if result.is_some() { None } else { message },
        "result": result,
    })))
}
