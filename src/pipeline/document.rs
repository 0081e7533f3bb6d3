//! The bundle as it is shown and named: its items (what a bundle lists), the document
//! the model's prompts read (price advice and copy), and its stable id.

use super::context::Context;
use super::model::{Draft, Offer};
use crate::domain::{BundleItem, Money};
use crate::llm::prompt::{BundleDoc, ProductDoc};

/// The products of a draft as bundles show them.
pub fn items(ctx: &Context, draft: &Draft) -> Vec<BundleItem> {
    draft
        .products
        .iter()
        .zip(&draft.quantities)
        .map(|(&i, &q)| {
            let p = ctx.product(i);
            BundleItem {
                product_id: p.variant_id.clone(),
                sku: p.sku.clone(),
                title: p.display_title(),
                quantity: q,
                unit_price_minor: p.price.minor,
            }
        })
        .collect()
}

/// A bundle as prompts show it, at `price_minor` (None before pricing).
pub fn bundle_doc(
    ctx: &Context,
    id: &str,
    o: &Offer,
    price_minor: Option<i64>,
    discount: Option<u32>,
) -> BundleDoc {
    let c = &o.candidate;
    let currency = ctx.product(c.draft.products[0]).price.currency;
    let margin_pct = if o.list_minor > 0 {
        ((o.list_minor - o.cost_minor) * 100 / o.list_minor) as i32
    } else {
        0
    };
    BundleDoc {
        id: id.to_owned(),
        objective: c.objective,
        bundle_type: c.bundle_type,
        products: c
            .draft
            .products
            .iter()
            .map(|&i| ProductDoc::from_product(ctx.product(i)))
            .collect(),
        pick: c.draft.pick,
        list_price: Money::new(o.list_minor, currency).to_string(),
        price: price_minor.map(|p| Money::new(p, currency).to_string()),
        discount_pct: discount.map(|d| d.min(100) as u8),
        gets_discount_pct: None,
        cap_pct: o.range.1.min(100) as u8,
        margin_pct,
    }
}

/// The stable id of a bundle: a hash of what it is (objective, type, products and
/// quantities, pick, tiers), so the same bundle keeps its id across runs.
pub fn bundle_id(ctx: &Context, o: &Offer) -> String {
    let c = &o.candidate;
    let mut items: Vec<String> = c
        .draft
        .products
        .iter()
        .zip(&c.draft.quantities)
        .map(|(&i, q)| format!("{}x{q}", ctx.product(i).variant_id))
        .collect();
    items.sort();
    let key = format!(
        "{}|{}|{}|{:?}|{:?}",
        c.objective.as_str(),
        c.bundle_type.as_str(),
        items.join(","),
        c.draft.pick,
        c.draft.tiers
    );
    format!("b-{}", &crate::embed::content_hash(&key)[..16])
}
