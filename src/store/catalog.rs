//! The catalog: an ingest's products and orders written in one transaction, a store's
//! data read back whole for statistics and runs, its products by page or by key, and
//! the catalog files it uploaded.

use async_trait::async_trait;

use super::{Page, StoreError};
use crate::domain::{self, StoreData, StoreId};
use crate::ingest::{CatalogKeys, IngestBatch};

/// What an ingest wrote.
#[derive(Debug, Clone, Default)]
pub struct WriteSummary {
    pub products: u64,
    pub orders: u64,
    pub order_lines: u64,
    /// Lines stored earlier without a catalog product that this ingest's catalog joined.
    pub lines_joined_later: u64,
    /// Orders of this ingest with a rejected line that the store had already: kept
    /// as stored, not replaced.
    pub stored_orders_kept: u64,
}

/// A store's catalog and orders: ingests written, read back whole or by page.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// The store's catalog keys, for joining order lines of a new ingest.
    async fn catalog_keys(&self, id: &StoreId) -> Result<CatalogKeys, StoreError>;

    /// Writes an ingest in one transaction: upserts by id, so re-ingesting the same
    /// data changes nothing; an order's lines are replaced whole, except that an order
    /// with a rejected line ([`IngestBatch::incomplete_orders`]) never replaces a
    /// stored one.
    async fn write_ingest(
        &self,
        store: &domain::Store,
        batch: &IngestBatch,
    ) -> Result<WriteSummary, StoreError>;

    async fn load(&self, id: &StoreId) -> Result<StoreData, StoreError>;

    /// The source rows of the store's products derived from orders, by variant id (see
    /// [`domain::ProductObservations`]); empty for a store with a catalog.
    async fn product_observations(
        &self,
        id: &StoreId,
    ) -> Result<Vec<domain::ProductObservations>, StoreError>;

    /// The latest catalog file of a role (`catalog`, `variants`, `inventory`) that a
    /// store uploaded through the API.
    async fn catalog_upload(&self, id: &StoreId, role: &str)
    -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps a catalog file a store uploaded, replacing the one of its role (`None`:
    /// forgets it).
    async fn put_catalog_upload(
        &self,
        id: &StoreId,
        role: &str,
        body: Option<&[u8]>,
    ) -> Result<(), StoreError>;

    /// A page of a store's catalog, in variant id order.
    async fn products_page(
        &self,
        id: &StoreId,
        offset: u64,
        limit: u64,
    ) -> Result<Page<domain::Product>, StoreError>;

    /// A store's product by variant id, else SKU, else product id (its first
    /// variant), as `similar --product` takes it.
    async fn find_product(
        &self,
        id: &StoreId,
        key: &str,
    ) -> Result<Option<domain::Product>, StoreError>;
}
