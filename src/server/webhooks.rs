//! Shopify webhooks: `POST /webhooks/shopify`.
//!
//! The receiver does as little as Shopify's five-second budget asks: it checks the
//! signature on the raw body (HMAC-SHA256 with the app's secret, fed as the body
//! arrives and compared in constant time, before anything is parsed), keeps the
//! webhook by its id (a replay is acknowledged and changes nothing) and answers. A
//! request that cannot be signed (no secret, no signature, one that is not a SHA-256 in
//! base64) is refused before its body is read, and a body past
//! `server.webhook_max_body_kb` stops with 413 as it streams. The applier ([`crate::sync`]) then
//! applies kept webhooks in the order they came. Only what applying reads of a body is
//! kept, and nothing of one for a shop no store is.
//!
//! Once a store's app is uninstalled its webhooks are refused, but for the compliance
//! topics: those are verified, kept, applied and acknowledged as ever.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header::CONTENT_LENGTH};
use base64::Engine as _;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::ApiPath;
use super::{AppState, metrics, now_ms};
use crate::store::WebhookRecord;
use crate::sync::topic_label;

/// The bytes of an HMAC-SHA256.
const SIGNATURE_BYTES: usize = 32;

/// A signature check fed as a body arrives, so the body is checked without being held
/// twice and a body that cannot be signed is not read at all.
pub struct Verifier {
    mac: Hmac<sha2::Sha256>,
    expected: Vec<u8>,
}

impl Verifier {
    /// A check of `signature` (the `X-Shopify-Hmac-Sha256` header: base64); `None` when
    /// it is no SHA-256 in base64, which signs nothing.
    pub fn new(secret: &str, signature: &str) -> Option<Verifier> {
        let expected = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .ok()
            .filter(|e| e.len() == SIGNATURE_BYTES)?;
        let mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).ok()?;
        Some(Verifier { mac, expected })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.mac.update(bytes);
    }

    /// Whether the bytes fed sign as expected (compared in constant time).
    pub fn verify(self) -> bool {
        self.mac.verify_slice(&self.expected).is_ok()
    }
}

/// Whether `signature` (the `X-Shopify-Hmac-Sha256` header: base64) signs `body`.
pub fn signed(secret: &str, body: &[u8], signature: &str) -> bool {
    let Some(mut verifier) = Verifier::new(secret, signature) else {
        return false;
    };
    verifier.update(body);
    verifier.verify()
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

fn too_large(limit_kb: usize) -> ApiError {
    ApiError::too_large(
        (limit_kb as u64).saturating_mul(1024),
        &format!("{limit_kb} KiB"),
        "server.webhook_max_body_kb",
        "",
    )
}

/// The webhook's body, read only once it can be signed and checked as it arrives, at
/// most `server.webhook_max_body_kb`; refused: the outcome to count and the answer.
async fn verified_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, (&'static str, ApiError)> {
    let secret = &state.services.settings.shopify.webhook_secret;
    if secret.is_empty() {
        return Err((
            "refused",
            unauthorized("webhooks are off: this server has no shopify.webhook_secret"),
        ));
    }
    let Some(signature) = header(headers, "x-shopify-hmac-sha256") else {
        return Err(("refused", unauthorized("no X-Shopify-Hmac-Sha256 header")));
    };
    let mismatch = || {
        (
            "refused",
            unauthorized("the X-Shopify-Hmac-Sha256 signature does not match"),
        )
    };
    let Some(mut verifier) = Verifier::new(secret.expose(), signature) else {
        return Err(mismatch());
    };
    let limit_kb = state.services.settings.server.webhook_max_body_kb;
    let limit = (limit_kb as u64).saturating_mul(1024);
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(("too_large", too_large(limit_kb)));
    }
    // Grown as bytes arrive: a declared length is a claim, not a reason to reserve.
    let mut received = Vec::new();
    let mut stream = body.into_data_stream();
    // Shopify sends a body of a few KiB at once; a sender that dribbles one (with any
    // signature of the right shape) would otherwise hold a connection for hours, so
    // the whole body gets one deadline, not one per pause.
    let seconds = state.services.settings.server.body_timeout_seconds;
    let whole = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                (
                    "bad_input",
                    ApiError::bad_request(format!("the webhook body was cut off: {e}")),
                )
            })?;
            if (received.len() + chunk.len()) as u64 > limit {
                return Err(("too_large", too_large(limit_kb)));
            }
            verifier.update(&chunk);
            received.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(seconds), whole).await {
        Ok(read) => read?,
        Err(_) => return Err(("timeout", ApiError::body_deadline(seconds))),
    }
    if !verifier.verify() {
        return Err(mismatch());
    }
    Ok(received)
}

/// `POST /webhooks/shopify`.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let topic = header(&headers, "x-shopify-topic")
        .unwrap_or("unknown")
        .to_owned();
    let count = |outcome: &str| {
        state
            .metrics
            .add(metrics::WEBHOOKS, &[topic_label(&topic), outcome], 1.0);
    };
    let body = match verified_body(&state, &headers, body).await {
        Ok(body) => body,
        Err((outcome, answer)) => {
            count(outcome);
            return Err(answer);
        }
    };
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
    let kept = match &store {
        Some(id) => {
            if !crate::sync::is_compliance_topic(&topic)
                && state.services.store.uninstalled_at(id).await?.is_some()
            {
                count("uninstalled");
                tracing::info!(%shop, %topic, webhook = webhook_id, "webhook refused: the app was uninstalled");
                // 200 all the same: Shopify would retry anything else for hours, and
                // nothing of it is kept or applied.
                return Ok(Json(json!({
                    "status": "refused",
                    "webhook_id": webhook_id,
                    "reason": format!("store {}'s app was uninstalled: only the compliance topics are taken", id.as_str()),
                })));
            }
            crate::sync::kept_body(&topic, &body)
        }
        None => {
            tracing::warn!(%shop, %topic, webhook = webhook_id, "webhook for a shop no store is");
            // Applying it reads nothing: its id and shop are kept, not what it carried.
            Vec::new()
        }
    };
    let record = WebhookRecord {
        webhook_id: webhook_id.to_owned(),
        shop_domain: shop,
        store_id: store.map(|s| s.as_str().to_owned()),
        topic: topic.clone(),
        body: kept,
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

/// `GET /v1/admin/webhooks/{id}`: a kept webhook and how it was applied; for a
/// `customers/data_request`, `result` is what we hold on the customer.
pub async fn inspect(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    super::authorize_admin(&state, &headers).await?;
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
