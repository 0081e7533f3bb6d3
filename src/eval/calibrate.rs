//! Weights calibrated per store: a fixed table keyed on the order count cannot know
//! what works for one store, its own recent orders can. Phase 0 is prepared once on
//! all but the store's last `quality.calibrate_holdout` share of orders; each
//! candidate weighting (the tier's, then the seed design's presets) runs over it and
//! is scored on the held-out orders by the pick rule, as `eval` scores a run; the best
//! strong hit (ties: more products covered, then the earlier candidate) weights the
//! run on the whole history.

use futures_util::StreamExt;

use crate::cancel::CancelToken;
use crate::domain::StoreId;
use crate::pipeline::{
    self, CalibratedVariant, Calibration, NoObserver, OrderScope, RunRequest, WEIGHT_PRESETS,
};
use crate::services::Services;
use crate::stats::end_of_day;

use super::holdout::{Holdout, HoldoutSplit, SplitAt};
use super::score::{bootstrap_at_least, score_sets_at_least};
use super::{EvalError, engine_alone, prepare_at};

/// The name of the tier's own weighting among the candidates.
pub const TIER: &str = "tier";

/// Calibrates `request`'s weights on the store's own split: what was found, and the
/// weights to run with (`None`: the tier's, as without calibration). With
/// `quality.calibrate` off, a request that sets its weights, a run from the catalog alone and a store with fewer than
/// `quality.calibrate_min_orders` orders are not calibrated, and say why.
pub async fn calibrate(
    services: &Services,
    store_id: &StoreId,
    request: &RunRequest,
    cancel: &CancelToken,
) -> Result<(Calibration, Option<[f64; 3]>), EvalError> {
    if !services.settings.quality.calibrate {
        return Ok((Calibration::not_used("off (quality.calibrate)"), None));
    }
    if request.variant.weights.is_some() {
        return Ok((Calibration::not_used("the run's weights were given"), None));
    }
    if request.prepare.orders == OrderScope::None {
        return Ok((Calibration::not_used("a run from the catalog alone"), None));
    }
    let quality = &services.settings.quality;
    let mut data = services.store.load(store_id).await?;
    if let Some(day) = request.prepare.as_of {
        let end = end_of_day(day);
        data.orders.retain(|o| o.created_at <= end);
    }
    if let OrderScope::Last(n) = request.prepare.orders {
        let skip = data.orders.len().saturating_sub(n);
        data.orders.drain(..skip);
    }
    let orders = data.orders.len();
    if orders < quality.calibrate_min_orders {
        let reason = format!(
            "{orders} orders, fewer than quality.calibrate_min_orders ({})",
            quality.calibrate_min_orders
        );
        return Ok((Calibration::not_used(reason), None));
    }
    let split = match HoldoutSplit::new(
        &data,
        store_id,
        SplitAt::LastShare(quality.calibrate_holdout),
    ) {
        Ok(split) => split,
        Err(reason) => return Ok((Calibration::not_used(reason), None)),
    };
    let prepare = pipeline::PrepareOptions {
        orders: OrderScope::All,
        ..request.prepare.clone()
    };
    let ctx = prepare_at(
        services,
        split.store_as_trained(&data),
        split.as_of,
        &prepare,
    )
    .await?;
    let holdout = Holdout::new(split.heldout.clone());
    let tier = [ctx.weights.alpha, ctx.weights.beta, ctx.weights.gamma];
    let candidates =
        std::iter::once((TIER, tier)).chain(WEIGHT_PRESETS.iter().map(|(name, _, w)| (*name, *w)));
    // Several at once: much of a run's work keeps one core busy.
    let at_once = services.settings.pipeline_threads().clamp(1, 4);
    let runs = futures_util::stream::iter(candidates.map(|(name, weights)| {
        let mut variant = engine_alone(&request.variant);
        variant.weights = (name != TIER).then_some(weights);
        let ctx = &ctx;
        async move {
            let out = pipeline::run(ctx, &variant, services, &NoObserver, cancel).await;
            (name, weights, variant.seed, out)
        }
    }))
    .buffered(at_once);
    futures_util::pin_mut!(runs);
    let mut variants = Vec::new();
    while let Some((name, weights, seed, out)) = runs.next().await {
        let picks = split.run_sets(&out?.bundles).picks;
        let scores = score_sets_at_least(&holdout, &picks);
        let interval = bootstrap_at_least(&holdout, &picks, seed ^ 1, |r| r[1]);
        variants.push(CalibratedVariant {
            name: name.to_owned(),
            weights,
            strong_hit: scores.strong_hit,
            interval: [interval.low, interval.high],
            coverage: scores.products,
            bundles: scores.bundles,
        });
    }
    let holdout_orders = split.heldout.len();
    let Some(best) = best(&variants) else {
        let mut c = Calibration::not_used("no candidate published a multi-product bundle");
        c.holdout_orders = holdout_orders;
        c.variants = variants;
        return Ok((c, None));
    };
    let chosen = variants[best].clone();
    let reason = format!(
        "{orders} orders: trained on the first {}, the last {holdout_orders} held out; {} scored best (strong hit {:.3} over {} bundles)",
        split.train.len(),
        chosen.name,
        chosen.strong_hit,
        chosen.bundles
    );
    let calibration = Calibration {
        used: true,
        reason,
        holdout_orders,
        variants,
        chosen: Some(chosen.name.clone()),
    };
    Ok((calibration, (chosen.name != TIER).then_some(chosen.weights)))
}

/// The best candidate that scored any bundle: strong hit, then coverage; the earlier
/// on a tie (the tier's comes first, so it stands unless another does better).
fn best(variants: &[CalibratedVariant]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, v) in variants.iter().enumerate() {
        if v.bundles == 0 {
            continue;
        }
        let better = match best.map(|b| &variants[b]) {
            None => true,
            Some(b) => (v.strong_hit, v.coverage) > (b.strong_hit, b.coverage),
        };
        if better {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(name: &str, strong_hit: f64, coverage: usize, bundles: usize) -> CalibratedVariant {
        CalibratedVariant {
            name: name.into(),
            weights: [0.0; 3],
            strong_hit,
            interval: [0.0, 1.0],
            coverage,
            bundles,
        }
    }

    #[test]
    fn the_best_strong_hit_wins_then_coverage_then_the_earlier() {
        let v = [
            scored(TIER, 0.5, 10, 20),
            scored("A", 0.7, 5, 20),
            scored("B", 0.7, 8, 20),
            scored("C", 0.9, 50, 0),
        ];
        assert_eq!(best(&v), Some(2), "C scored nothing; B covers more than A");
        let tied = [scored(TIER, 0.5, 10, 20), scored("A", 0.5, 10, 30)];
        assert_eq!(best(&tied), Some(0), "a tie keeps the tier's");
        assert_eq!(best(&[scored("A", 0.0, 0, 0)]), None);
    }
}
