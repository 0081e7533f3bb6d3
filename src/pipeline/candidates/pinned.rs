//! The merchant's pins (see [`crate::store_rules`]) as candidates: scored and justified
//! like any other, with `pinned` among the reasons, and published ahead of the rest
//! while valid. A pin the catalog cannot hold (an unknown id, a product that is not
//! sellable, one of the store's lists against it) is reported, not generated.

use serde::Serialize;

use super::{score_draft, volume};
use crate::config::QualitySettings;
use crate::domain::{BundleType, Justification, Objective};
use crate::pipeline::context::Context;
use crate::pipeline::justify;
use crate::pipeline::model::{Candidate, Draft, Source};
use crate::stats::Weights;
use crate::store_rules::RuleBroken;

/// What became of a pin, for the run summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PinOutcome {
    /// The ids as the rules name them.
    pub products: Vec<String>,
    pub bundle_type: BundleType,
    pub objective: Objective,
    /// `candidate` (it goes on to pricing), then `published` or why not.
    pub state: String,
}

/// Candidates for the context's pins, and what became of each.
pub fn candidates(
    ctx: &Context,
    weights: Weights,
    quality: &QualitySettings,
) -> (Vec<Candidate>, Vec<PinOutcome>) {
    let mut out = Vec::new();
    let mut outcomes = Vec::new();
    for resolved in &ctx.rules.pins {
        let pin = &resolved.pin;
        let (bundle_type, objective) = (pin.bundle_type(), pin.objective());
        let mut outcome = PinOutcome {
            products: pin.products.clone(),
            bundle_type,
            objective,
            state: "candidate".to_owned(),
        };
        let products = match &resolved.products {
            Ok(p) => p.clone(),
            Err(id) => {
                outcome.state = format!("not in the catalog: {id}");
                outcomes.push(outcome);
                continue;
            }
        };
        if let Some(i) = products
            .iter()
            .find(|&&i| !ctx.signals[i as usize].eligible)
        {
            outcome.state = format!(
                "not sellable: {} (inactive, a gift card or a restricted category)",
                ctx.product(*i).variant_id
            );
            outcomes.push(outcome);
            continue;
        }
        if let Some(broken) = ctx.rules.breaks(&products) {
            outcome.state = match broken {
                RuleBroken::NeverProduct => "a product or its category is never to be bundled",
                RuleBroken::NeverPair => "two of its products are never to be together",
            }
            .to_owned();
            outcomes.push(outcome);
            continue;
        }
        let draft = draft(products, bundle_type, pin.pick);
        out.push(candidate(
            ctx,
            weights,
            quality,
            objective,
            bundle_type,
            draft,
        ));
        outcomes.push(outcome);
    }
    (out, outcomes)
}

fn draft(products: Vec<u32>, bundle_type: BundleType, pick: Option<u32>) -> Draft {
    let n = products.len() as u32;
    let mut d = Draft::new(products, Source::Pinned);
    match bundle_type {
        BundleType::MixMatch => d.pick = Some(pick.unwrap_or(n.saturating_sub(1).max(2))),
        BundleType::Volume => {
            d.quantities = vec![volume::TIERS[0]];
            d.tiers = volume::TIERS.to_vec();
        }
        BundleType::Bogo if n == 1 => d.quantities = vec![2],
        _ => {}
    }
    d
}

fn candidate(
    ctx: &Context,
    weights: Weights,
    quality: &QualitySettings,
    objective: Objective,
    bundle_type: BundleType,
    draft: Draft,
) -> Candidate {
    let scored = score_draft(ctx, weights, objective, bundle_type, &draft);
    // The data's own reasons, where it has them, beside the merchant's.
    let mut justification =
        justify::justify(ctx, quality, objective, bundle_type, &draft).unwrap_or_default();
    justification.insert(
        0,
        Justification::Pinned {
            products: draft
                .products
                .iter()
                .map(|&i| ctx.product(i).variant_id.clone())
                .collect(),
        },
    );
    Candidate::new(
        ctx,
        (objective, bundle_type),
        draft,
        scored,
        justification,
        true,
    )
}
