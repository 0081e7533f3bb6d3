//! Hybrid scoring: `score = α·llm + β·transactional + γ·business`, each signal in
//! [0, 1], with α, β, γ from the store's order volume (or the run's override).
//!
//! - **llm** = 0.4·semantic + 0.4·objective fit + 0.2·proposed.
//!   *semantic*: for complements (fixed, add-on, BOGO with a second product) the mean
//!   pairwise cosine, with near-copies (cosine ≥ 0.9) counted as 0 — a bundle of two
//!   variants is not a set; for mix & match (alike products) the mean cosine; a single
//!   product (volume, BOGO of one) 0.6. *objective fit*: the share of the bundle's
//!   products whose classification or data tags suit the objective (for cross-selling
//!   where the orders show no clear structure, also those the complement prior links
//!   with the anchor). *proposed*: 1 when
//!   a language model (or the offline provider) proposed this very set.
//! - **transactional** = 0.5·f(lift) + 0.5·g(count), with Bayesian shrinkage toward "no
//!   evidence": lift is read as (c + κ) / (e + κ), c the orders holding every product,
//!   e = ∏nᵢ / N^(k−1) the count independence predicts, κ = `prior_count`; so two
//!   co-purchases where 0.01 were expected read as lift 1.4, not 200.
//!   f(l) = 1 − 1/l above 1, else 0; g(c) = c / (c + `support_half`). A pair seen
//!   twice therefore never outranks one seen 200 times at a similar lift. Single-product
//!   bundles read the repeat-purchase rate instead, shrunk the same way.
//! - **business** = 0.4·margin + 0.3·stock + 0.3·price fit. *margin*: the bundle's margin
//!   at list price as a share of its price, over 60 % counting 1. *stock*: per product 1
//!   for slow movers and overstock (the bundle moves units that need moving), 0 when
//!   out of stock or low, 0.5 otherwise or untracked; averaged. *price fit*: 1 while the
//!   dearest product costs at most 3× the cheapest, falling to 0 at 100× (for an add-on
//!   the ratio is the point, so it stays 1).

use crate::domain::{BundleType, Objective, ScoreBreakdown};
use crate::pipeline::context::Context;
use crate::pipeline::model::{CoPurchase, DataTag, NEAR_COPY};
use crate::stats::Weights;

/// f(l) = 1 − 1/l for l > 1, else 0.
fn lift_signal(l: f64) -> f64 {
    if l > 1.0 { 1.0 - 1.0 / l } else { 0.0 }
}

/// The transactional signal of a co-purchase record.
pub fn transactional(cp: &CoPurchase, support_half: f64) -> f64 {
    let support = f64::from(cp.count) / (f64::from(cp.count) + support_half);
    0.5 * lift_signal(cp.shrunk_lift) + 0.5 * support
}

/// Whether a product suits an objective by its classification or data tags.
pub fn suits(ctx: &Context, i: u32, o: Objective) -> bool {
    let s = &ctx.signals[i as usize];
    if s.objectives.contains(&o) {
        return true;
    }
    match o {
        Objective::ClearSlowMovers => s.has(DataTag::SlowMover) || s.has(DataTag::Overstock),
        Objective::LaunchNew => s.has(DataTag::NewLaunch),
        Objective::ProtectMargin => s.has(DataTag::HighMargin),
        Objective::Replenish => s.has(DataTag::Consumable),
        Objective::IncreaseAov | Objective::CrossSell => {
            s.has(DataTag::Bestseller) || !ctx.partners[i as usize].is_empty()
        }
        Objective::Seasonal | Objective::Gift => false,
    }
}

/// The semantic part of the llm signal.
fn semantic(ctx: &Context, t: BundleType, products: &[u32]) -> f64 {
    if products.len() < 2 {
        return 0.6;
    }
    let mut sum = 0.0f64;
    let mut pairs = 0u32;
    for (x, &a) in products.iter().enumerate() {
        for &b in &products[x + 1..] {
            let s = ctx.similarity(a, b);
            let s = if t != BundleType::MixMatch && s >= NEAR_COPY {
                0.0
            } else {
                s
            };
            sum += f64::from(s.max(0.0));
            pairs += 1;
        }
    }
    sum / f64::from(pairs.max(1))
}

/// Unit prices, costs and stock of the products, for the business signal.
fn business(ctx: &Context, t: BundleType, products: &[u32], quantities: &[u32]) -> f64 {
    let mut price = 0i64;
    let mut margin = 0i64;
    let mut stock = 0.0f64;
    let (mut lo, mut hi) = (i64::MAX, 0i64);
    for (&i, &q) in products.iter().zip(quantities) {
        let p = ctx.product(i);
        let s = &ctx.signals[i as usize];
        price += p.price.minor * i64::from(q);
        margin += s.unit_margin_minor * i64::from(q);
        lo = lo.min(p.price.minor);
        hi = hi.max(p.price.minor);
        stock += if s.has(DataTag::SlowMover) || s.has(DataTag::Overstock) {
            1.0
        } else {
            match (p.inventory, s.days_of_cover) {
                (Some(inv), _) if inv <= 0 => 0.0,
                (Some(_), Some(d)) if d < f64::from(ctx_low_cover(ctx)) => 0.0,
                _ => 0.5,
            }
        };
    }
    let margin_share = if price > 0 {
        (margin as f64 / price as f64 / 0.6).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let stock = stock / products.len().max(1) as f64;
    let price_fit = if t == BundleType::Addon || lo <= 0 {
        1.0
    } else {
        let ratio = (hi as f64 / lo as f64).log10();
        (1.0 - (ratio - 3f64.log10()) / (2.0 - 3f64.log10())).clamp(0.0, 1.0)
    };
    0.4 * margin_share + 0.3 * stock + 0.3 * price_fit
}

fn ctx_low_cover(ctx: &Context) -> u32 {
    ctx.low_cover_days
}

/// The breakdown of one candidate.
pub struct ScoreInput<'a> {
    pub objective: Objective,
    pub bundle_type: BundleType,
    pub products: &'a [u32],
    pub quantities: &'a [u32],
    pub proposed: bool,
    /// Co-purchase evidence of the whole set, when there is any.
    pub co_purchase: Option<CoPurchase>,
}

pub fn score(
    ctx: &Context,
    weights: Weights,
    support_half: f64,
    c: &ScoreInput<'_>,
) -> ScoreBreakdown {
    // Where the store's orders can't name what sells together, a set of kinds that
    // other stores' shoppers buy together (or a configured model names) suits
    // cross-selling: the anchor and each partner the prior or the model links with it.
    let prior_linked = |i: u32| {
        c.objective == Objective::CrossSell
            && ctx.store_evidence.verdict != crate::pipeline::evidence::Verdict::Strong
            && c.products.split_first().is_some_and(|(&anchor, partners)| {
                let linked = |b: u32| {
                    ctx.prior
                        .support(anchor, b, ctx.prior_count, ctx.prior_min_lift)
                        .is_some()
                        || ctx
                            .model_complements
                            .reason(
                                &ctx.categories[anchor as usize],
                                &ctx.categories[b as usize],
                            )
                            .is_some()
                };
                if i == anchor {
                    partners.iter().any(|&b| linked(b))
                } else {
                    linked(i)
                }
            })
    };
    let fit = c
        .products
        .iter()
        .filter(|&&i| suits(ctx, i, c.objective) || prior_linked(i))
        .count() as f64
        / c.products.len().max(1) as f64;
    let llm = 0.4 * semantic(ctx, c.bundle_type, c.products)
        + 0.4 * fit
        + 0.2 * f64::from(u8::from(c.proposed));
    let transactional = if c.products.len() == 1 {
        // Buying more of one product: how often its buyers come back, shrunk by how
        // many orders say so.
        let s = &ctx.signals[c.products[0] as usize];
        let orders = f64::from(s.orders);
        s.repeat_rate * orders / (orders + support_half)
    } else {
        c.co_purchase
            .map_or(0.0, |cp| transactional(&cp, support_half))
    };
    let business = business(ctx, c.bundle_type, c.products, c.quantities);
    let total = weights.alpha * llm + weights.beta * transactional + weights.gamma * business;
    ScoreBreakdown {
        total,
        alpha: weights.alpha,
        beta: weights.beta,
        gamma: weights.gamma,
        llm,
        transactional,
        business,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::model::co_purchase;

    #[test]
    fn a_pair_seen_twice_does_not_outrank_one_seen_two_hundred_times() {
        let n = 20_000;
        // Two rare products bought together twice: raw lift 10,000.
        let rare = co_purchase(2, &[2, 2], n, 5.0);
        // Two popular products bought together 200 times: raw lift 8.
        let common = co_purchase(200, &[500, 1000], n, 5.0);
        assert!(rare.lift > common.lift);
        assert!(transactional(&common, 10.0) > transactional(&rare, 10.0));
        // No co-purchase at all is no evidence.
        let none = co_purchase(0, &[500, 1000], n, 5.0);
        assert_eq!(transactional(&none, 10.0), 0.0);
    }

    #[test]
    fn more_evidence_at_the_same_lift_scores_higher() {
        let n = 10_000;
        let few = co_purchase(4, &[100, 100], n, 5.0);
        let many = co_purchase(40, &[1000, 100], n, 5.0);
        assert!((few.lift - many.lift).abs() < 1e-9);
        assert!(transactional(&many, 10.0) > transactional(&few, 10.0));
    }
}
