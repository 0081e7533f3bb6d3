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
    /// When the store was first ingested (stored then): a catalog-only store's date of
    /// last resort.
    pub first_ingest: Option<DateTime<Utc>>,
}

impl StoreData {
    /// The orders placed by `as_of`: the window every phase reads, so a run dated in
    /// the past never sees what came after.
    pub fn orders_until(&self, as_of: DateTime<Utc>) -> impl Iterator<Item = &HistoryOrder> {
        self.orders.iter().filter(move |o| o.created_at <= as_of)
    }

    /// The baskets of the orders placed by `as_of`: each order's distinct catalog
    /// items, ascending; an order with no item of the catalog is no basket.
    pub fn baskets_until(&self, as_of: DateTime<Utc>) -> impl Iterator<Item = Vec<u32>> {
        self.orders_until(as_of)
            .map(HistoryOrder::basket)
            .filter(|b| !b.is_empty())
    }
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

/// What the orders said about a product whose catalog entry is derived from them (a
/// file without a catalog, such as UCI Online Retail): each kept source row's order
/// time, description and unit price. Kept so that the catalog as of any day can be
/// derived again from the rows up to it, by the same rule as at ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductObservations {
    pub variant_id: String,
    /// The distinct descriptions, in first-seen order.
    pub descriptions: Vec<String>,
    pub rows: Vec<ObservedRow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedRow {
    /// The order's time (an invoice's earliest), in seconds since the epoch.
    pub at: i64,
    /// Index into [`ProductObservations::descriptions`].
    pub description: u32,
    pub unit_price_micros: i64,
}

/// A derived product's title and price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedFields {
    pub title: String,
    pub price_minor: i64,
}

impl ProductObservations {
    /// Title and price from the rows at or before `until` (all rows with `None`):
    /// the most frequent description (ties: the lexicographically smallest) and the
    /// median unit price (the mean of the middle two for an even count), rounded half
    /// up to the minor unit. `None` when no row qualifies.
    pub fn derive(&self, until: Option<DateTime<Utc>>, exponent: u32) -> Option<DerivedFields> {
        let bound = until.map_or(i64::MAX, |t| t.timestamp());
        let mut counts = vec![0u32; self.descriptions.len()];
        let mut prices = Vec::with_capacity(self.rows.len());
        for row in self.rows.iter().filter(|r| r.at <= bound) {
            if let Some(c) = counts.get_mut(row.description as usize) {
                *c += 1;
            }
            prices.push(row.unit_price_micros);
        }
        if prices.is_empty() {
            return None;
        }
        // The most frequent description, ties to the smaller; a blank one only when
        // no row gives another (a blank must never win a tie with a real title).
        let most_frequent = |blank: bool| {
            counts
                .iter()
                .zip(&self.descriptions)
                .filter(|(c, d)| **c > 0 && d.trim().is_empty() == blank)
                .min_by(|a, b| b.0.cmp(a.0).then_with(|| a.1.cmp(b.1)))
                .map(|(_, d)| d.clone())
        };
        let title = most_frequent(false)
            .or_else(|| most_frequent(true))
            .unwrap_or_default();
        prices.sort_unstable();
        let n = prices.len();
        let (sum, parts) = if n % 2 == 1 {
            (prices[n / 2], 1)
        } else {
            (prices[n / 2 - 1].saturating_add(prices[n / 2]), 2)
        };
        let price_minor = super::micros_to_minor(sum, parts, exponent).unwrap_or(0);
        Some(DerivedFields { title, price_minor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_description_never_wins_a_tie_with_a_real_one() {
        let row = |description| ObservedRow {
            at: 10,
            description,
            unit_price_micros: 1_000_000,
        };
        let obs = ProductObservations {
            variant_id: "22139".into(),
            descriptions: vec!["".into(), "RETROSPOT TEA SET".into()],
            rows: vec![row(0), row(1), row(0)],
        };
        // The blank is more frequent here, and still loses to a real title.
        assert_eq!(obs.derive(None, 2).unwrap().title, "RETROSPOT TEA SET");
        let blank_only = ProductObservations {
            rows: vec![row(0)],
            ..obs
        };
        assert_eq!(blank_only.derive(None, 2).unwrap().title, "");
    }

    #[test]
    fn derivation_counts_only_rows_up_to_the_bound() {
        let obs = ProductObservations {
            variant_id: "85123A".into(),
            descriptions: vec!["B HEART".into(), "A HEART".into(), "CREAM HEART".into()],
            rows: vec![
                ObservedRow {
                    at: 10,
                    description: 2,
                    unit_price_micros: 2_550_000,
                },
                ObservedRow {
                    at: 20,
                    description: 1,
                    unit_price_micros: 2_950_000,
                },
                ObservedRow {
                    at: 20,
                    description: 0,
                    unit_price_micros: 2_555_000,
                },
                ObservedRow {
                    at: 30,
                    description: 1,
                    unit_price_micros: 3_250_000,
                },
            ],
        };
        let at = |s| DateTime::from_timestamp(s, 0);
        let all = obs.derive(None, 2).unwrap();
        // "A HEART" twice; the median of four is the mean of 2.555 and 2.95, 2.7525.
        assert_eq!(all.title, "A HEART");
        assert_eq!(all.price_minor, 275);
        // Up to 20: one row each, so the smallest title wins the tie; median 2.555.
        let early = obs.derive(at(20), 2).unwrap();
        assert_eq!(early.title, "A HEART");
        assert_eq!(early.price_minor, 256);
        let first = obs.derive(at(15), 2).unwrap();
        assert_eq!(
            (first.title.as_str(), first.price_minor),
            ("CREAM HEART", 255)
        );
        assert_eq!(obs.derive(at(5), 2), None);
    }
}
