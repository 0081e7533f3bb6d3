//! The catalog: an ingest's products and orders written in one transaction (handed
//! over in chunks as the ingest reads them, so its memory does not grow with its
//! rows), a store's
//! data read back whole for statistics and runs, its products by page or by key, and
//! the catalog files it uploaded.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::{Page, StoreError};
use crate::domain::{self, StoreData, StoreId};
use crate::ingest::{CatalogKeys, IngestBatch};

/// One ingest being written, in one transaction: products first, then orders in
/// chunks, then [`IngestWriter::commit`]. Dropped without a commit, nothing of it is
/// stored.
#[async_trait]
pub trait IngestWriter: Send {
    /// Upserts products by variant id, with the observations derived ones come from.
    async fn products(
        &mut self,
        products: &[domain::Product],
        observations: &[domain::ProductObservations],
    ) -> Result<(), StoreError>;

    /// Upserts a chunk of orders, replacing each one's lines whole, except that an
    /// order of `incomplete` (one with a rejected line) never replaces a stored one.
    async fn orders(
        &mut self,
        orders: &[domain::Order],
        incomplete: &BTreeSet<String>,
    ) -> Result<(), StoreError>;

    /// Joins lines stored without a catalog product to the catalog as it is now, and
    /// commits.
    async fn commit(self: Box<Self>) -> Result<WriteSummary, StoreError>;
}

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

    /// Opens an ingest's transaction: the store's row written (its currency and
    /// locale updated). `expected_lines` lets a large load build its indexes once.
    async fn begin_ingest(
        &self,
        store: &domain::Store,
        expected_lines: u64,
    ) -> Result<Box<dyn IngestWriter>, StoreError>;

    /// Writes an ingest held in memory in one transaction: upserts by id, so
    /// re-ingesting the same data changes nothing; an order's lines are replaced
    /// whole, except that an order with a rejected line
    /// ([`IngestBatch::incomplete_orders`]) never replaces a stored one.
    async fn write_ingest(
        &self,
        store: &domain::Store,
        batch: &IngestBatch,
    ) -> Result<WriteSummary, StoreError> {
        let lines = batch.orders.iter().map(|o| o.lines.len() as u64).sum();
        let mut writer = self.begin_ingest(store, lines).await?;
        writer
            .products(&batch.products, &batch.observations)
            .await?;
        writer
            .orders(&batch.orders, &batch.incomplete_orders)
            .await?;
        writer.commit().await
    }

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
