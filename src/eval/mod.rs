//! Bundle quality on orders the engine has not seen: a temporal holdout. Phase 0 is
//! prepared as of the cutoff (the catalog as it was then, the orders on or before it,
//! the last N of them with `max_orders`: a small shop); a run goes over it exactly as a
//! merchant's would; the bundles are scored against the orders after the cutoff,
//! beside baselines computed by the same code from the same training orders.
//!
//! Definitions (only bundles with two or more distinct products count):
//! - a bundle **hits** when all its products appear together in at least one held-out
//!   order;
//! - it **strongly hits** when they do in at least two held-out orders and its held-out
//!   lift is at least 2, where lift = c · N^(k−1) / ∏ nᵢ (c held-out orders with all k
//!   products, N held-out orders, nᵢ held-out orders with product i; 0 when some nᵢ is
//!   0);
//! - also: the median held-out lift and the distinct products covered.
//!
//! `ours.by_pick` scores each bundle by how it is really used: a mix & match group by
//! held-out orders holding at least `pick` of it, every other bundle as above; lift is
//! then observed ÷ expected, the expected count of orders holding `pick` or more under
//! independence (products bought with their held-out frequencies; for the whole set it
//! is the lift above). Also per objective and per type the repeated product sets
//! (compared by product, so two sizes of one are one), and the share of bundles
//! without a justification.
//!
//! The store's rules hold as in any run, except its pins: they are the merchant's
//! choice, not the engine's, so eval leaves them out.
//!
//! Baselines: random product sets of our sets' sizes (seeded, 2,000 of them), the top-K
//! pairs by co-purchase count ("frequently bought together"), and the top-K pairs by
//! lift among pairs bought together at least 5 times.

mod baselines;
mod calibrate;
mod holdout;
mod report;
mod score;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::cancel::CancelToken;
use crate::domain::{self, StoreId};
use crate::pipeline::{
    self, Context, MerchantInputs, NoObserver, OrderScope, PrepareOptions, RunOutput, RunRequest,
    Variant,
};
use crate::services::Services;
use crate::store::{StoreData, StoreError};
pub use baselines::{Baselines, baselines, nearest_pairs, top_count_pairs, training_pairs};
pub use calibrate::{TIER, calibrate};
pub use holdout::{
    Holdout, HoldoutSplit, NeedSet, PreparedSet, RunSets, SplitAt, Weighting, baskets, need,
};
pub use report::{EvalReport, Ours, Repeated, html_section, repeated, rows, table, write_files};
pub use score::{
    Interval, Scores, bootstrap, draw, is_hit, is_strong, is_strong_pair, percentiles, rates,
    score_sets, score_sets_at_least,
};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    #[error("{0}")]
    Data(String),
}

impl EvalError {
    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            EvalError::Store(e) => e.kind(),
            EvalError::Pipeline(e) => e.kind(),
            EvalError::Embed(e) => e.kind(),
            EvalError::Data(_) => crate::error::ErrorKind::BadInput,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Where the orders are split: after a cutoff day (the store as it was then;
    /// every later order held out), or before the last share of them.
    pub split: SplitAt,
    /// The run scored. Phase 0 is prepared as of the cutoff whatever `as_of` says;
    /// `orders: last N` trains the engine and the baselines on the last N training
    /// orders; `orders: none` generates from the catalog alone (what a new store
    /// would get: the baselines still see the training orders, and the
    /// nearest-in-meaning baseline joins them). The merchant's pins and approvals are
    /// never honoured: eval scores the engine alone (the never-bundle lists and the
    /// discount ceiling still hold).
    pub run: RunRequest,
    /// Pairs in each top-K baseline.
    pub k: usize,
}

impl EvalOptions {
    /// Whether the run sees the catalog alone.
    pub fn cold(&self) -> bool {
        self.run.prepare.orders == OrderScope::None
    }
}

/// Runs phase 0 at the cutoff (the store as it was then, the training orders only)
/// and one run over it, and scores its bundles and the baselines on the held-out
/// orders. Nothing is written but the embedding and classification caches.
pub async fn evaluate(
    services: &Services,
    store_id: &StoreId,
    options: &EvalOptions,
) -> Result<(EvalReport, RunOutput), EvalError> {
    let data = services.store.load(store_id).await?;
    let split = HoldoutSplit::new(&data, store_id, options.split).map_err(EvalError::Data)?;
    let seed = options.run.variant.seed;
    let train = split.train_in(options.run.prepare.orders);
    if train.is_empty() {
        return Err(EvalError::Data(format!(
            "store {store_id}: no training orders are left (none before the cutoff, or the last 0 asked for)"
        )));
    }
    // The store as read above, its training orders only: phase 0 does not read it again.
    let ctx = prepare_at(
        services,
        split.store_as_trained(&data),
        split.as_of,
        &options.run.prepare,
    )
    .await?;
    let never = CancelToken::never();
    let out = pipeline::run(
        &ctx,
        &engine_alone(&options.run.variant),
        services,
        &NoObserver,
        &never,
    )
    .await?;

    let holdout = Holdout::new(split.heldout.clone());
    let sets = split.run_sets(&out.bundles);
    let ours = score_ours(&holdout, &sets, &out.bundles, seed, || {
        repeated(&data.products, &split.index, &out.bundles)
    });
    // Baselines from the same training orders.
    let train_baskets = baskets(train);
    let mut baselines = baselines(
        &holdout,
        &train_baskets,
        &training_pairs(&train_baskets, data.products.len()),
        &sets.picks,
        options.k,
        seed,
    );
    if options.cold() {
        baselines.nearest_in_meaning = Some(score_sets(&holdout, &nearest_pairs(&ctx, options.k)));
    }
    let report = EvalReport {
        store_id: store_id.to_string(),
        cutoff: split.as_of.to_string(),
        holdout_share: match options.split {
            SplitAt::LastShare(share) => Some(share),
            SplitAt::Day(_) => None,
        },
        train_orders: train.len(),
        heldout_orders: holdout.len(),
        k: options.k,
        seed,
        ours,
        baselines,
    };
    Ok((report, out))
}

/// Phase 0 over a store already read, as of the end of `cutoff` whatever `prepare`
/// says: the store as it was then.
pub async fn prepare_at(
    services: &Services,
    data: StoreData,
    cutoff: NaiveDate,
    prepare: &PrepareOptions,
) -> Result<Arc<Context>, pipeline::PipelineError> {
    let options = PrepareOptions {
        as_of: Some(cutoff),
        ..prepare.clone()
    };
    let never = CancelToken::never();
    Ok(Arc::new(
        pipeline::prepare_loaded(services, data, &options, &NoObserver, &never).await?,
    ))
}

/// The variant as a holdout measures it: the engine alone, without the merchant's
/// pins and approvals (the never-bundle lists and the discount ceiling still hold).
pub fn engine_alone(variant: &Variant) -> Variant {
    Variant {
        merchant: MerchantInputs::NONE,
        ..variant.clone()
    }
}

/// Our scores: the run's sets whole and as their offers are used, by objective and by
/// type, with bootstrap intervals, the repeated sets and the unjustified share.
fn score_ours(
    holdout: &Holdout,
    sets: &RunSets,
    bundles: &[domain::Bundle],
    seed: u64,
    repeated: impl FnOnce() -> Repeated,
) -> Ours {
    let by = |key: fn(&domain::Bundle) -> &'static str| {
        let whole = grouped(bundles, &sets.sets, key);
        let picks = grouped(bundles, &sets.picks, key);
        (
            whole
                .into_iter()
                .map(|(k, v)| (k, score_sets(holdout, &v)))
                .collect(),
            picks
                .into_iter()
                .map(|(k, v)| (k, score_sets_at_least(holdout, &v)))
                .collect(),
        )
    };
    let (by_objective, by_pick_by_objective) = by(|b| b.objective.as_str());
    let (by_type, by_pick_by_type) = by(|b| b.bundle_type.as_str());
    let unjustified = bundles
        .iter()
        .filter(|b| b.explanation.justification.is_empty())
        .count();
    Ours {
        scores: score_sets(holdout, &sets.sets),
        hit_ci90: bootstrap(holdout, &sets.sets, seed, |r| r[0]),
        strong_hit_ci90: bootstrap(holdout, &sets.sets, seed ^ 1, |r| r[1]),
        median_lift_ci90: bootstrap(holdout, &sets.sets, seed ^ 2, |r| r[2]),
        by_objective,
        by_type,
        by_pick: score_sets_at_least(holdout, &sets.picks),
        by_pick_by_objective,
        by_pick_by_type,
        repeated_sets: repeated(),
        unjustified_share: if bundles.is_empty() {
            0.0
        } else {
            unjustified as f64 / bundles.len() as f64
        },
    }
}

/// `items` (one per bundle) grouped by a key of their bundle, in bundle order.
fn grouped<T: Clone>(
    bundles: &[domain::Bundle],
    items: &[T],
    key: fn(&domain::Bundle) -> &'static str,
) -> BTreeMap<String, Vec<T>> {
    let mut out: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for (b, item) in bundles.iter().zip(items) {
        out.entry(key(b).to_owned()).or_default().push(item.clone());
    }
    out
}
