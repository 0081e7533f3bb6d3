//! The safety guard: hard constraints no published bundle breaks, each rejection
//! counted by its reason. Stock: every product active and with enough units for the
//! bundle's largest quantity (untracked inventory passes, and the bundle says so).
//! Restricted categories and gift cards never reach here (phase 1 leaves them out)
//! but are checked again. Margin: the objective's smallest discount must keep the
//! margin floor, or the bundle is dropped, never priced below it. The store's rules
//! (never-bundle products and categories, pairs never together) drop what they name.

use serde::Serialize;

use crate::pipeline::context::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// A product is inactive, a gift card or in a restricted category.
    NotEligible,
    /// A product has fewer units than the bundle needs.
    OutOfStock,
    /// Even the objective's smallest discount would break the margin floor.
    MarginFloor,
    /// The product already is in `max_per_product` published bundles.
    ProductCap,
    /// The set holds a published bundle's whole set, or is held by one (a pair and the
    /// pair plus one more): the merchant would offer the same products twice.
    NestedSet,
    /// The store's rules never bundle a product (or its category).
    NeverBundle,
    /// The store's rules never put two of the products together.
    NeverTogether,
    /// A BOGO or add-on whose smallest allowed discount is more than what the
    /// shopper gets is worth: the offer cannot be stated as a percentage off it.
    GetsTooSmall,
}

/// What the stock check found.
pub struct StockCheck {
    /// Some product's inventory is not tracked (it passes, as Shopify treats it).
    pub untracked: bool,
}

/// Eligibility and stock of a product set needing `units[i]` of product `i`.
pub fn check_products(
    ctx: &Context,
    products: &[u32],
    units: &[u32],
) -> Result<StockCheck, Rejection> {
    let mut untracked = false;
    for (&i, &need) in products.iter().zip(units) {
        if !ctx.signals[i as usize].eligible {
            return Err(Rejection::NotEligible);
        }
        match ctx.product(i).inventory {
            None => untracked = true,
            Some(inv) if inv < i64::from(need) => return Err(Rejection::OutOfStock),
            Some(_) => {}
        }
    }
    Ok(StockCheck { untracked })
}
