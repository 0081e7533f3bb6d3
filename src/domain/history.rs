//! A store's history as the engine reads it: compact orders whose lines point into the
//! catalog by position. Plain data, so the sync cores (rules, stats) read it without
//! knowing about storage.

use chrono::{DateTime, Utc};

use super::{Product, Store};

/// A store's catalog and order history, as the engine reads it.
#[derive(Debug, Clone)]
pub struct StoreData {
    pub store: Store,
    /// Sorted by variant id.
    pub products: Vec<Product>,
    /// Sorted by time, then id.
    pub orders: Vec<HistoryOrder>,
}

/// An order, compactly: lines point into [`StoreData::products`].
#[derive(Debug, Clone)]
pub struct HistoryOrder {
    pub order_id: String,
    pub created_at: DateTime<Utc>,
    pub customer_key: Option<String>,
    /// The file named no currency; the store's was assumed.
    pub currency_assumed: bool,
    pub lines: Vec<HistoryLine>,
}

impl HistoryOrder {
    /// The order as a basket: its catalog products' indices, sorted, each once. The
    /// one definition of a basket that mining, scoring and evaluation share.
    pub fn basket(&self) -> Vec<u32> {
        let mut items: Vec<u32> = self.lines.iter().filter_map(|l| l.item).collect();
        items.sort_unstable();
        items.dedup();
        items
    }
}

#[derive(Debug, Clone, Copy)]
pub struct HistoryLine {
    /// Index into `products`; `None` when the catalog lacks the line's product.
    pub item: Option<u32>,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
}
