//! A store's catalog and statistics, as `similar --product` and `stats --json` see them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::{AppState, Caller, authorize_store};
use crate::domain::StoreId;

/// `?offset=&limit=` of a list route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    pub offset: u64,
    #[serde(default = "PageQuery::default_limit")]
    pub limit: u64,
}

impl PageQuery {
    pub const MAX_LIMIT: u64 = 500;

    fn default_limit() -> u64 {
        50
    }

    pub fn check(&self) -> Result<(), ApiError> {
        if self.limit == 0 || self.limit > Self::MAX_LIMIT {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {}, got {}",
                Self::MAX_LIMIT,
                self.limit
            )));
        }
        Ok(())
    }

    /// A page as every list route answers it.
    pub fn document(&self, items: Vec<Value>, total: u64) -> Value {
        let end = self.offset.saturating_add(items.len() as u64);
        json!({
            "items": items,
            "total": total,
            "offset": self.offset,
            "limit": self.limit,
            "next_offset": (end < total).then_some(end),
        })
    }
}

/// The store of a store route, checked and authorised.
pub async fn store_of(
    state: &AppState,
    headers: &HeaderMap,
    store: &str,
) -> Result<StoreId, ApiError> {
    Ok(store_and_caller(state, headers, store).await?.0)
}

/// [`store_of`], and who is asking.
pub async fn store_and_caller(
    state: &AppState,
    headers: &HeaderMap,
    store: &str,
) -> Result<(StoreId, Caller), ApiError> {
    let store_id = StoreId::parse(store).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let caller = authorize_store(state, headers, &store_id).await?;
    if state.services.store.get_store(&store_id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "unknown store {store:?}: upload its catalog or orders first"
        )));
    }
    Ok((store_id, caller))
}

fn to_value(v: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v)
        .map_err(|e| ApiError::from_kind(crate::error::ErrorKind::Internal, e.to_string()))
}

/// `GET /v1/stores/{store}/products?offset=&limit=`.
pub async fn products(
    State(state): State<Arc<AppState>>,
    ApiPath(store): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    page.check()?;
    let store_id = store_of(&state, &headers, &store).await?;
    let found = state
        .services
        .store
        .products_page(&store_id, page.offset, page.limit)
        .await?;
    let items = found
        .items
        .into_iter()
        .map(to_value)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(page.document(items, found.total)))
}

/// `GET /v1/stores/{store}/products/{id}`: a variant id, SKU or product id.
pub async fn product(
    State(state): State<Arc<AppState>>,
    ApiPath((store, key)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let store_id = store_of(&state, &headers, &store).await?;
    match state.services.store.find_product(&store_id, &key).await? {
        Some(p) => Ok(Json(to_value(p)?)),
        None => Err(ApiError::not_found(format!(
            "store {store:?} has no product with variant id, SKU or product id {key:?}"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// YYYY-MM-DD, as `stats --as-of`.
    #[serde(default)]
    as_of: Option<NaiveDate>,
}

/// `GET /v1/stores/{store}/stats[?as_of=YYYY-MM-DD]`: the `stats --json` document.
pub async fn stats(
    State(state): State<Arc<AppState>>,
    ApiPath(store): ApiPath<String>,
    ApiQuery(query): ApiQuery<StatsQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let store_id = store_of(&state, &headers, &store).await?;
    let services = &state.services;
    let stats = crate::app::stats(
        services.store.as_ref(),
        &store_id,
        query.as_of,
        &services.settings,
    )
    .await?;
    Ok(Json(to_value(stats)?))
}
