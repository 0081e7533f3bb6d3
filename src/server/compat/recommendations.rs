//! `GET /api/shopify/recommendations/{shop_id}` and `POST …/{id}/approve`: the shop's
//! latest bundles as the predecessor's recommendations, and their approval.
//!
//! Prices go out as JSON numbers because the app reads numbers; each is written from
//! the exact decimal text of the amount in minor units, so `1250` cents is `12.5`,
//! never a rounded float.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{AppApiError, AppPath, AppQuery};
use super::shop::{sanitize_shop, store_for};
use crate::domain::{Bundle, BundleItem, BundleType, Currency, Objective, Product, StoreId};
use crate::server::error::ApiError;
use crate::server::{AppState, authorize_store};
use crate::store::Decision;

/// The query of `GET /api/shopify/recommendations/{shop_id}`.
#[derive(Debug, Deserialize)]
pub struct RecommendationsQuery {
    #[serde(default)]
    approved: Option<bool>,
    #[serde(default)]
    limit: Option<i64>,
}

/// The predecessor's name for an objective.
fn objective_name(o: Objective) -> &'static str {
    match o {
        Objective::IncreaseAov => "increase_aov",
        Objective::ClearSlowMovers => "clear_slow_movers",
        Objective::ProtectMargin => "margin_guard",
        Objective::LaunchNew => "new_launch",
        Objective::Seasonal => "seasonal_promo",
        Objective::Gift => "gift_box",
        Objective::CrossSell => "cross_sell",
        Objective::Replenish => "subscription_push",
    }
}

/// The app's front end knows three kinds: FBT, VOLUME and BOGO. A fixed set and an
/// add-on are bought together (FBT); a mix & match is a quantity break over a set
/// (VOLUME); the offer's own type is kept beside it (`bundleforge_type`).
fn type_name(t: BundleType) -> &'static str {
    match t {
        BundleType::Fixed | BundleType::Addon => "FBT",
        BundleType::Volume | BundleType::MixMatch => "VOLUME",
        BundleType::Bogo => "BOGO",
    }
}

/// An amount as the JSON number the app reads, from its exact decimal text.
fn amount(minor: i64, currency: Currency) -> Value {
    let text = crate::pipeline::output::decimal_text(minor, currency);
    serde_json::from_str::<serde_json::Number>(&text).map_or(Value::Null, Value::Number)
}

/// A Shopify id as its GraphQL id (`gid://shopify/KIND/ID`), when it is one.
fn gid(kind: &str, id: &str) -> Value {
    if id.starts_with("gid://") {
        json!(id)
    } else if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        json!(format!("gid://shopify/{kind}/{id}"))
    } else {
        Value::Null
    }
}

fn item(p: &BundleItem, product: Option<&Product>, currency: Currency) -> Value {
    let product_id = product.map(|p| p.product_id.as_str()).unwrap_or("");
    json!({
        "sku": p.sku.clone().unwrap_or_default(),
        "name": p.title,
        "title": p.title,
        "price": amount(p.unit_price_minor, currency),
        "price_minor": p.unit_price_minor,
        "quantity": p.quantity,
        "variant_id": p.product_id,
        "product_id": product_id,
        "product_gid": gid("Product", product_id),
        "variant_gid": gid("ProductVariant", &p.product_id),
        "image_url": Value::Null,
    })
}

/// One bundle as the predecessor's recommendation.
fn recommendation(
    b: &Bundle,
    catalog: &HashMap<String, Product>,
    approved: bool,
    created_at: &str,
) -> Value {
    let c = b.currency;
    let items: Vec<Value> = b
        .products
        .iter()
        .map(|p| item(p, catalog.get(&p.product_id), c))
        .collect();
    let pct = (b.discount_pct * 100.0).round() / 100.0;
    let saved = b.list_price_minor - b.final_price_minor;
    let mut pricing = base_pricing(b, pct, saved);
    let products = match b.bundle_type {
        BundleType::Fixed | BundleType::Addon => bought_together(&items),
        BundleType::Volume | BundleType::MixMatch => volume_offer(b, &items, pct, &mut pricing),
        BundleType::Bogo => bogo_offer(b, &items, &mut pricing),
    };
    json!({
        "id": b.id,
        "bundle_type": type_name(b.bundle_type),
        "bundleforge_type": b.bundle_type.as_str(),
        "objective": objective_name(b.objective),
        "bundleforge_objective": b.objective.as_str(),
        "products": products,
        "pricing": pricing,
        "ai_copy": ai_copy(b, saved),
        "confidence": b.score.transactional,
        "predicted_lift": Value::Null,
        "ranking_score": b.score.total,
        "is_approved": approved,
        "created_at": created_at,
    })
}

/// A recommendation's pricing as every type has it; a volume or BOGO offer adds its
/// own terms ([`volume_offer`], [`bogo_offer`]).
fn base_pricing(b: &Bundle, pct: f64, saved: i64) -> Value {
    let c = b.currency;
    json!({
        "original_total": amount(b.list_price_minor, c),
        "bundle_price": amount(b.final_price_minor, c),
        "discount_amount": amount(saved, c),
        "discount_pct": format!("{}%", pct.round() as i64),
        "discount_percentage": pct,
        "discount_type": "percentage",
        "currency": c.to_string(),
        "original_total_minor": b.list_price_minor,
        "bundle_price_minor": b.final_price_minor,
    })
}

/// A fixed set or an add-on: the first item triggers, the rest are added to it.
fn bought_together(items: &[Value]) -> Value {
    json!({
        "items": items,
        "trigger_product": items.first().cloned().unwrap_or_else(|| json!({})),
        "addon_products": items.get(1..).unwrap_or(&[]),
    })
}

/// A volume offer or a mix & match: its quantity tiers, in the products and the
/// pricing.
fn volume_offer(b: &Bundle, items: &[Value], pct: f64, pricing: &mut Value) -> Value {
    let minimums: Vec<u32> = match b.bundle_type {
        BundleType::MixMatch => vec![b.pick.unwrap_or(2)],
        _ => b.tiers.clone(),
    };
    let tiers: Vec<Value> = minimums
        .iter()
        .map(|&q| {
            json!({"min_qty": q, "discount_type": "PERCENTAGE", "discount_value": pct,
                   "label": format!("Buy {q}, save {}%", pct.round() as i64),
                   "type": "percentage", "value": pct})
        })
        .collect();
    pricing["discount_type"] = json!("tiered");
    pricing["volume_tiers"] = json!(tiers);
    json!({"items": items, "volume_tiers": tiers})
}

/// A buy-X-get-Y offer: the first item qualifies and the rest are the reward (one
/// item is both), with the reward's discount in the products and the pricing.
fn bogo_offer(b: &Bundle, items: &[Value], pricing: &mut Value) -> Value {
    let gets = f64::from(b.gets_discount_pct.unwrap_or(0).min(100));
    let (buys, rewards) = if items.len() == 1 {
        (items.to_vec(), items.to_vec())
    } else {
        (items[..1].to_vec(), items[1..].to_vec())
    };
    let with = |list: Vec<Value>, extra: Value| -> Vec<Value> {
        list.into_iter()
            .map(|mut v| {
                if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    m.extend(e.clone());
                }
                v
            })
            .collect()
    };
    let buy_qty = b.products.first().map_or(1, |p| p.quantity.max(1));
    let bogo = json!({
        "buy_qty": buy_qty, "get_qty": 1,
        "discount_type": if gets >= 100.0 { "free" } else { "percent" },
        "discount_percent": gets, "same_product": b.products.len() == 1,
        "mode": if gets >= 100.0 { "free_same_variant" } else { "percent_off" },
    });
    pricing["discount_type"] = json!("bogo");
    pricing["bogo_config"] = bogo;
    json!({
        "items": items,
        "qualifiers": with(buys, json!({"quantity": buy_qty})),
        "rewards": with(rewards, json!({"quantity": 1, "discount_type": if gets >= 100.0 { "free" } else { "percent" }, "discount_percent": gets})),
    })
}

/// The bundle's copy as the app's `ai_copy`, with what the offer saves.
fn ai_copy(b: &Bundle, saved: i64) -> Value {
    let c = b.currency;
    let savings = crate::pipeline::output::decimal_text(saved, c);
    json!({
        "title": b.copy.title,
        "description": b.copy.description,
        "badge": b.copy.badge,
        "tagline": b.copy.badge,
        "cta_text": "Add bundle to cart",
        "savings_message": format!("Save {savings} {c}"),
        "is_active": true,
        "show_on": ["product", "cart"],
        "features": [],
        "explanation": b.explanation.text,
        "source": b.copy.source,
    })
}

/// `GET /api/shopify/recommendations/{shop_id}?approved=&limit=`: the latest run's
/// bundles, best first.
pub async fn recommendations(
    State(state): State<Arc<AppState>>,
    AppPath(raw_shop): AppPath<String>,
    AppQuery(query): AppQuery<RecommendationsQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppApiError> {
    let shop = sanitize_shop(&raw_shop)?;
    let limit = limit_of(query.limit)?;
    let store = &state.services.store;
    let (store_id, _) = match store_for(&state, &shop, false).await {
        Ok(found) => found,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            crate::server::authorize_admin(&state, &headers).await?;
            return Ok(none_for(&shop));
        }
        Err(e) => return Err(e),
    };
    authorize_store(&state, &headers, &store_id).await?;
    let Some(run) = store.stored_run(&store_id, None).await? else {
        return Ok(none_for(&shop));
    };
    let created_at = timestamp(run.finished_at.unwrap_or(run.started_at));
    let mut bundles = run.bundles;
    best_first(&mut bundles);
    let approved = approved_ids(&state, &store_id).await?;
    let catalog = catalog_of(&state, &store_id, &bundles).await?;
    let list: Vec<Value> = bundles
        .iter()
        .filter(|b| {
            query
                .approved
                .is_none_or(|want| approved.contains(&b.id) == want)
        })
        .take(limit)
        .map(|b| recommendation(b, &catalog, approved.contains(&b.id), &created_at))
        .collect();
    Ok(Json(
        json!({"shop_id": shop, "count": list.len(), "recommendations": list}),
    ))
}

/// How many recommendations to answer at most: 20 unless the query says.
fn limit_of(given: Option<i64>) -> Result<usize, AppApiError> {
    match given {
        None => Ok(20),
        Some(n) if n >= 1 => Ok(n as usize),
        Some(_) => Err(AppApiError::validation("limit: at least 1")),
    }
}

/// The answer for a shop without bundles.
fn none_for(shop: &str) -> Json<Value> {
    Json(json!({"shop_id": shop, "count": 0, "recommendations": []}))
}

/// A run's time (Unix seconds) as the predecessor wrote it: UTC, microseconds, no
/// zone.
fn timestamp(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

/// Highest score first; the transactional score breaks ties.
fn best_first(bundles: &mut [Bundle]) {
    bundles.sort_by(|a, b| {
        b.score
            .total
            .total_cmp(&a.score.total)
            .then(b.score.transactional.total_cmp(&a.score.transactional))
    });
}

/// The ids of the store's approved bundles.
async fn approved_ids(
    state: &AppState,
    store_id: &StoreId,
) -> Result<HashSet<String>, AppApiError> {
    Ok(state
        .services
        .store
        .approvals(store_id)
        .await?
        .into_iter()
        .filter(|a| a.decision == Decision::Approved)
        .map(|a| a.bundle_id)
        .collect())
}

/// The catalog's products the bundles hold, by product id (a product no longer in
/// the catalog is left out).
async fn catalog_of(
    state: &AppState,
    store_id: &StoreId,
    bundles: &[Bundle],
) -> Result<HashMap<String, Product>, AppApiError> {
    let store = &state.services.store;
    let mut catalog = HashMap::new();
    for b in bundles {
        for p in &b.products {
            if !catalog.contains_key(&p.product_id)
                && let Some(found) = store.find_product(store_id, &p.product_id).await?
            {
                catalog.insert(p.product_id.clone(), found);
            }
        }
    }
    Ok(catalog)
}

/// The query of `POST /api/shopify/recommendations/{id}/approve`.
#[derive(Debug, Deserialize)]
pub struct ApproveQuery {
    shop_id: Option<String>,
}

/// `POST /api/shopify/recommendations/{id}/approve?shop_id=`: approves the bundle in
/// the shop's latest run (later runs keep it while it stays valid).
pub async fn approve(
    State(state): State<Arc<AppState>>,
    AppPath(id): AppPath<String>,
    AppQuery(query): AppQuery<ApproveQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppApiError> {
    let Some(raw_shop) = query.shop_id else {
        return Err(AppApiError::validation(
            "shop_id: a query parameter is required",
        ));
    };
    let shop = sanitize_shop(&raw_shop)?;
    let (store_id, _) = store_for(&state, &shop, false).await?;
    let caller = authorize_store(&state, &headers, &store_id).await?;
    let decided = crate::app::decide(
        state.services.store.as_ref(),
        &store_id,
        None,
        std::slice::from_ref(&id),
        Decision::Approved,
        &caller.0,
    )
    .await;
    match decided {
        Ok(_) => Ok(Json(
            json!({"recommendationId": id, "status": "approved", "shopId": shop}),
        )),
        Err(
            crate::app::AppError::UnknownBundle { .. } | crate::app::AppError::UnknownRun { .. },
        ) => Err(AppApiError::new(
            StatusCode::NOT_FOUND,
            "Recommendation not found",
        )),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_numbers_from_minor_units() {
        assert_eq!(amount(1250, Currency::USD).to_string(), "12.5");
        assert_eq!(amount(1999, Currency::USD).to_string(), "19.99");
        assert_eq!(amount(-5, Currency::USD).to_string(), "-0.05");
        let yen = Currency::parse("JPY").unwrap();
        assert_eq!(amount(1250, yen).to_string(), "1250");
    }

    #[test]
    fn shopify_ids_become_gids_and_other_ids_do_not() {
        assert_eq!(
            gid("Product", "632910392"),
            json!("gid://shopify/Product/632910392")
        );
        assert_eq!(
            gid("ProductVariant", "gid://shopify/ProductVariant/1"),
            json!("gid://shopify/ProductVariant/1")
        );
        assert_eq!(gid("Product", "MUG-1"), Value::Null);
    }
}
