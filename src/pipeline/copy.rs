//! Phase 3: copy and explanation. One model call per batch of bundles returns, for
//! each, a title, a description, a short badge and a two-sentence explanation for the
//! merchant, in the store's locale; batches run in parallel under the model's limits,
//! and a bundle whose copy fails validation gets the offline template copy, labelled
//! as such. The run never fails for copy (only a cancel stops it). Price advice goes
//! through the same docs. The published bundles are assembled here, from offer, price
//! and copy.

use std::sync::Arc;

use super::context::Context;
use super::document::{bundle_doc, bundle_id, items};
use super::error::PipelineError;
use super::model::{FinalPrice, Offer};
use super::observe::{Phase, PhaseScope, RunObserver};
use crate::cancel::CancelToken;
use crate::domain::{Bundle, BundleCopy, Explanation, PricingDecision};
use crate::llm::answer::Copy;
use crate::llm::gateway::{Gateway, Sourced};
use crate::llm::prompt::BundleDoc;

/// Phase 3: copy for every chosen offer at its final price, in the store's locale,
/// then the published bundles.
pub async fn run(
    ctx: &Arc<Context>,
    offers: &[Offer],
    prices: &[FinalPrice],
    gateway: &Gateway,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<Vec<Bundle>, PipelineError> {
    let batches = offers.len().div_ceil(gateway.copy_batch()) as u64;
    let phase = PhaseScope::start(observer, Phase::Copy, Some(batches));
    let ids: Vec<String> = offers.iter().map(|o| bundle_id(ctx, o)).collect();
    let docs: Vec<BundleDoc> = offers
        .iter()
        .zip(&ids)
        .zip(prices)
        .map(|((o, id), p)| {
            let mut doc = bundle_doc(ctx, id, o, Some(p.final_minor), Some(p.discount_pct));
            doc.gets_discount_pct = p.gets_pct.map(|g| g.min(100) as u8);
            doc
        })
        .collect();
    let copies = cancel
        .guard(
            gateway.write_copy_with(&docs, &ctx.data.store.locale, &|done, total| {
                phase.progress(done, total)
            }),
        )
        .await??;
    let bundles: Vec<Bundle> = offers
        .iter()
        .zip(ids)
        .zip(prices)
        .zip(copies)
        .map(|(((o, id), p), c)| assemble(ctx, o, id, p.clone(), c))
        .collect();
    phase.finish(vec![
        ("batches", batches),
        ("bundles", bundles.len() as u64),
    ]);
    Ok(bundles)
}

/// A published bundle from its offer, price and copy.
fn assemble(ctx: &Context, o: &Offer, id: String, p: FinalPrice, copy: Sourced<Copy>) -> Bundle {
    let c = &o.candidate;
    let currency = ctx.product(c.draft.products[0]).price.currency;
    let products = items(ctx, &c.draft);
    let discount_pct = if o.list_minor > 0 {
        ((o.list_minor - p.final_minor) as f64 / o.list_minor as f64 * 10_000.0).round() / 100.0
    } else {
        0.0
    };
    Bundle {
        id,
        objective: c.objective,
        bundle_type: c.bundle_type,
        products,
        pick: c.draft.pick,
        tiers: c.draft.tiers.clone(),
        currency,
        list_price_minor: o.list_minor,
        final_price_minor: p.final_minor,
        discount_pct,
        gets_discount_pct: p.gets_pct,
        expected_margin_minor: p.final_minor - o.cost_minor,
        cost_assumed: o.cost_assumed,
        inventory_untracked: o.inventory_untracked,
        pareto_rank: o.pareto_rank,
        score: c.score,
        pricing: PricingDecision {
            bayesian_pct: f64::from(o.bayesian_pct),
            llm_pct: p.llm_pct,
            reason: p.reason,
        },
        copy: BundleCopy {
            title: copy.value.title,
            description: copy.value.description,
            badge: copy.value.badge,
            source: copy.source,
        },
        explanation: Explanation {
            text: copy.value.explanation,
            justification: c.justification.clone(),
            rules: c
                .rules
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect(),
            neighbours: c
                .neighbours
                .iter()
                .map(|n| serde_json::to_value(n).unwrap_or_default())
                .collect(),
            source: copy.source,
        },
        approval: None,
    }
}
