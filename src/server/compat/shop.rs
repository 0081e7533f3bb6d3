//! Which store a `shop_id` names. Uploads and recommendations both resolve it, so it
//! has its own file rather than living with either.

use axum::http::StatusCode;

use super::error::AppApiError;
use crate::domain::StoreId;
use crate::server::AppState;

/// A shop id as the app sends it: trimmed, lower case, not empty.
pub(super) fn sanitize_shop(raw: &str) -> Result<String, AppApiError> {
    let shop = raw.trim().to_ascii_lowercase();
    if shop.is_empty() || shop.len() > 255 {
        return Err(AppApiError::new(StatusCode::BAD_REQUEST, "Invalid shop_id"));
    }
    Ok(shop)
}

/// The store a shop id names: a store id, or a shop's domain (as webhooks resolve
/// it). With `create`, a domain no store is yet becomes a new store, named after the
/// shop (`NAME.myshopify.com` → `NAME`), and the domain to give it once it exists.
pub(super) async fn store_for(
    state: &AppState,
    shop: &str,
    create: bool,
) -> Result<(StoreId, Option<String>), AppApiError> {
    let store = &state.services.store;
    if !shop.contains('.') {
        let id = StoreId::parse(shop).map_err(|e| {
            AppApiError::new(StatusCode::BAD_REQUEST, format!("Invalid shop_id: {e}"))
        })?;
        return Ok((id, None));
    }
    let Some(domain) = crate::store::shop_domain(shop) else {
        return Err(AppApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid shop_id: {shop:?} is neither a store id nor a shop's domain"),
        ));
    };
    if let Some(id) = store.store_for_shop(&domain).await? {
        return Ok((id, None));
    }
    if !create {
        return Err(AppApiError::new(
            StatusCode::NOT_FOUND,
            format!("Unknown shop {domain}: upload its catalog and orders first"),
        ));
    }
    let name = domain.strip_suffix(".myshopify.com").unwrap_or(&domain);
    let mut candidates = vec![name.to_owned(), domain.replace('.', "-")];
    candidates.dedup();
    for candidate in candidates {
        if let Ok(id) = StoreId::parse(&candidate)
            && store.get_store(&id).await?.is_none()
        {
            return Ok((id, Some(domain)));
        }
    }
    Err(AppApiError::new(
        StatusCode::CONFLICT,
        format!("no store id is free for shop {domain}: give an existing store this domain first"),
    ))
}
