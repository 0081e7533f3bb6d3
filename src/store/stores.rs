//! The stores the database holds: each one's currency and locale, the shop it is, and
//! its own rules. An ingest writes a store's row
//! ([`CatalogStore::write_ingest`](super::CatalogStore::write_ingest)).

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{self, StoreId};

/// The stores the database holds: their ids, shop domains and own rules.
#[async_trait]
pub trait StoreRegistry: Send + Sync {
    async fn get_store(&self, id: &StoreId) -> Result<Option<domain::Store>, StoreError>;

    /// Every store the database holds, by id.
    async fn store_ids(&self) -> Result<Vec<StoreId>, StoreError>;

    /// The store's own rules (see [`crate::store_rules`]) as the merchant wrote them;
    /// `None`: none set.
    async fn store_rules(&self, id: &StoreId) -> Result<Option<String>, StoreError>;

    /// Replaces the store's rules (`None` clears them); the store must exist.
    async fn put_store_rules(&self, id: &StoreId, rules: Option<&str>) -> Result<(), StoreError>;

    /// Sets the shop a store is (a valid [`shop_domain`](super::shop_domain)); another
    /// store's shop is refused, whether set or by its name (`NAME.myshopify.com` of a
    /// store NAME without a domain, as [`store_for_shop`](Self::store_for_shop) finds
    /// it).
    async fn set_shop_domain(&self, id: &StoreId, domain: &str) -> Result<(), StoreError>;

    /// The store a shop is: the one whose shop domain it is set to, else store NAME
    /// for `NAME.myshopify.com` when that store has no domain set.
    async fn store_for_shop(&self, domain: &str) -> Result<Option<StoreId>, StoreError>;

    /// When the store's app was uninstalled (Unix ms); `None` while it is installed
    /// (or the store is unknown).
    async fn uninstalled_at(&self, id: &StoreId) -> Result<Option<i64>, StoreError>;

    /// The store's app installed again: the uninstall is lifted. `false` when it was
    /// not uninstalled.
    async fn reinstate_store(&self, id: &StoreId) -> Result<bool, StoreError>;
}
