//! The data model: what a store, a product, an order and a bundle are. No I/O here.
//!
//! A catalog entry is one sellable *variant*: `variant_id` is its key, `product_id` the
//! family it belongs to (a T-shirt's sizes share one product id). Ids are always the
//! merchant's own, taken from the input, so the same files give the same ids in any
//! database.

mod bundle;
mod history;
mod money;
pub mod similarity;

pub use history::{
    DerivedFields, HistoryLine, HistoryOrder, ObservedRow, ProductObservations, StoreData,
};

pub use bundle::{
    ApprovalMark, Bundle, BundleCopy, BundleItem, BundleType, Explanation, Justification,
    JustificationKind, Objective, PricingDecision, ScoreBreakdown, TextSource,
};
pub use money::{
    Currency, DecimalMark, MICROS_PER_UNIT, Money, MoneyError, decimal_mark_evidence,
    is_written_negative, micros_to_minor, parse_decimal_micros, parse_micros_in,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A merchant's store: the unit a run works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub id: StoreId,
    pub currency: Currency,
    pub locale: String,
}

/// A store id as merchants' scripts pass it: 1–64 characters of `A-Z a-z 0-9 _ - .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store id {0:?} is not valid: use 1-64 characters of letters, digits, '_', '-' or '.'")]
pub struct InvalidStoreId(pub String);

impl StoreId {
    pub fn parse(raw: &str) -> Result<Self, InvalidStoreId> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(StoreId(raw.to_owned()))
        } else {
            Err(InvalidStoreId(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for StoreId {
    type Err = InvalidStoreId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreId::parse(s)
    }
}

/// Whether a product may be sold. Missing status is assumed active (and reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Active,
    Draft,
    Archived,
}

impl ProductStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "active" => Some(ProductStatus::Active),
            "draft" => Some(ProductStatus::Draft),
            "archived" => Some(ProductStatus::Archived),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ProductStatus::Active => "active",
            ProductStatus::Draft => "draft",
            ProductStatus::Archived => "archived",
        }
    }
}

/// One sellable catalog entry (a variant). `None` fields are facts the data did not
/// give; the engine's stated assumptions fill them at use, never at ingest, so a
/// changed assumption needs no re-ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub variant_id: String,
    pub product_id: String,
    pub sku: Option<String>,
    pub handle: Option<String>,
    pub title: String,
    /// The variant's own name ("Large / Blue"), when the product has several.
    pub variant_title: Option<String>,
    /// Plain text (HTML stripped at ingest).
    pub description: String,
    pub category: Option<String>,
    pub product_type: Option<String>,
    pub vendor: Option<String>,
    pub tags: Vec<String>,
    pub price: Money,
    pub compare_at_price: Option<Money>,
    pub cost: Option<Money>,
    /// Units available; `None` = inventory not tracked (passes stock checks).
    pub inventory: Option<i64>,
    pub status: Option<ProductStatus>,
    /// Launch date; `None` = unknown (the first order date is assumed).
    pub created_at: Option<DateTime<Utc>>,
    pub gift_card: bool,
    /// Joins split variant and inventory-level exports.
    pub inventory_item_id: Option<String>,
}

impl Product {
    /// The merchant's own category: the product type, else the category, trimmed and
    /// lower-cased; empty when the export gives neither.
    pub fn own_category(&self) -> String {
        self.product_type
            .as_deref()
            .or(self.category.as_deref())
            .map(|c| c.trim().to_lowercase())
            .unwrap_or_default()
    }

    /// Title with the variant's name, as an order line shows it.
    pub fn display_title(&self) -> String {
        match &self.variant_title {
            Some(v) if !v.is_empty() && v != "Default Title" => format!("{} - {}", self.title, v),
            _ => self.title.clone(),
        }
    }
}

/// How an order line names its product, most specific first. Lines join the catalog by
/// variant id, else SKU, else product id, else exact title.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProductRef {
    pub variant_id: Option<String>,
    pub sku: Option<String>,
    pub product_id: Option<String>,
    pub title: Option<String>,
}

impl ProductRef {
    /// A key that names the product within one order, used to merge repeated lines
    /// before the catalog is known.
    pub fn key(&self) -> Option<String> {
        if let Some(v) = &self.variant_id {
            Some(format!("variant:{v}"))
        } else if let Some(s) = &self.sku {
            Some(format!("sku:{s}"))
        } else if let Some(p) = &self.product_id {
            Some(format!("product:{p}"))
        } else {
            self.title.as_ref().map(|t| format!("title:{t}"))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.variant_id.is_none()
            && self.sku.is_none()
            && self.product_id.is_none()
            && self.title.is_none()
    }
}

/// One product on one order, after repeated lines of the same product were merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product: ProductRef,
    /// The catalog variant this line resolved to, if the catalog has it.
    pub item_id: Option<String>,
    pub quantity: i64,
    pub unit_price_minor: i64,
    /// Discount on the whole line, minor units.
    pub discount_minor: i64,
}

impl OrderLine {
    /// The key that identifies this line's product within its order.
    pub fn line_key(&self) -> String {
        match &self.item_id {
            Some(id) => id.clone(),
            None => self.product.key().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    /// The merchant-facing name ("#1001"), when it differs from the id.
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub customer_key: Option<String>,
    pub currency: Currency,
    /// True when the file gave no currency and the store's was assumed.
    pub currency_assumed: bool,
    pub lines: Vec<OrderLine>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_validated() {
        assert!(StoreId::parse("online-retail_2011").is_ok());
        assert!(StoreId::parse("").is_err());
        assert!(StoreId::parse("a b").is_err());
        assert!(StoreId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn product_refs_prefer_the_most_specific_key() {
        let r = ProductRef {
            variant_id: None,
            sku: Some("A-1".into()),
            product_id: Some("p1".into()),
            title: Some("Mug".into()),
        };
        assert_eq!(r.key().as_deref(), Some("sku:A-1"));
        assert!(ProductRef::default().is_empty());
    }
}
