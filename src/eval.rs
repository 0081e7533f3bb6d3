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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use crate::cancel::CancelToken;
use crate::domain::{self, StoreId};
use crate::pipeline::{
    self, MerchantInputs, NoObserver, OrderScope, PrepareOptions, RunOutput, RunRequest, Variant,
};
use crate::rng::{Purpose, Stream};
use crate::rules::{Baskets, count_pairs};
use crate::services::Services;
use crate::stats::at_least;
use crate::stats::end_of_day;
use crate::store::StoreError;

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

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The last day of training: the store as it was then; every later order is held
    /// out.
    pub cutoff: NaiveDate,
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

/// One row of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scores {
    /// Sets of two or more distinct products that were scored.
    pub bundles: usize,
    pub hit: f64,
    pub strong_hit: f64,
    pub median_lift: f64,
    /// Distinct products in the scored sets.
    pub products: usize,
}

/// A bootstrap 90 % interval.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ours {
    #[serde(flatten)]
    pub scores: Scores,
    pub hit_ci90: Interval,
    pub strong_hit_ci90: Interval,
    pub median_lift_ci90: Interval,
    pub by_objective: BTreeMap<String, Scores>,
    pub by_type: BTreeMap<String, Scores>,
    /// Every bundle as its offer is used (see the module note).
    pub by_pick: Scores,
    pub by_pick_by_objective: BTreeMap<String, Scores>,
    pub by_pick_by_type: BTreeMap<String, Scores>,
    /// Bundles whose product set an earlier bundle already has.
    pub repeated_sets: Repeated,
    /// Share of published bundles with an empty justification (must be 0).
    pub unjustified_share: f64,
}

/// Repeated product sets, in all and where they were.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Repeated {
    pub total: usize,
    pub by_objective: BTreeMap<String, usize>,
    pub by_type: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    pub random: Scores,
    /// The same random sets scored as ours are by `by_pick`: each takes the pick of
    /// the bundle whose size it copies (a mix & match group's), else needs all.
    pub random_by_pick: Scores,
    pub top_count_pairs: Scores,
    pub top_lift_pairs: Scores,
    /// `--cold`: each product's nearest neighbour in meaning that is not a near-copy
    /// (nor its own variant), the top-K of those pairs by cosine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest_in_meaning: Option<Scores>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub store_id: String,
    pub cutoff: String,
    pub train_orders: usize,
    pub heldout_orders: usize,
    pub k: usize,
    pub seed: u64,
    pub ours: Ours,
    pub baselines: Baselines,
}

/// Held-out orders as product-index sets, with per-product counts.
pub struct Holdout {
    /// Orders holding each product (by product index).
    holding: HashMap<u32, Vec<u32>>,
    n: usize,
}

impl Holdout {
    pub fn new(baskets: &[Vec<u32>]) -> Holdout {
        let mut holding: HashMap<u32, Vec<u32>> = HashMap::new();
        for (o, b) in baskets.iter().enumerate() {
            for &i in b {
                holding.entry(i).or_default().push(o as u32);
            }
        }
        Holdout {
            holding,
            n: baskets.len(),
        }
    }

    /// (orders with every product, lift).
    pub fn score(&self, set: &[u32]) -> (usize, f64) {
        let lists: Vec<&Vec<u32>> = set
            .iter()
            .map(|i| self.holding.get(i).map_or(&EMPTY, |v| v))
            .collect();
        if lists.iter().any(|l| l.is_empty()) || self.n == 0 {
            return (0, 0.0);
        }
        let mut common: Vec<u32> = lists[0].clone();
        for l in &lists[1..] {
            let keep: HashSet<u32> = l.iter().copied().collect();
            common.retain(|o| keep.contains(o));
        }
        let c = common.len();
        let (_, lift) = crate::rules::set_lift(
            c as u64,
            lists.iter().map(|l| l.len() as u64),
            self.n as u64,
        );
        (c, lift)
    }
}

impl Holdout {
    /// (orders holding at least `k` of `set`, lift): observed ÷ the count expected
    /// under independence, each product in an order with its held-out frequency.
    pub fn score_at_least(&self, set: &[u32], k: usize) -> (usize, f64) {
        if k >= set.len() {
            return self.score(set);
        }
        if self.n == 0 || k == 0 {
            return (0, 0.0);
        }
        let mut counts: HashMap<u32, usize> = HashMap::new();
        let mut probs = Vec::with_capacity(set.len());
        for i in set {
            let list = self.holding.get(i).map_or(&EMPTY, |v| v);
            for &o in list {
                *counts.entry(o).or_default() += 1;
            }
            probs.push(list.len() as f64 / self.n as f64);
        }
        let c = counts.values().filter(|&&m| m >= k).count();
        let expected = self.n as f64 * at_least(&probs, k);
        let lift = if expected > 0.0 {
            c as f64 / expected
        } else {
            0.0
        };
        (c, lift)
    }
}

/// A product set and how many of it an order must hold (`None`: all).
pub type NeedSet = (Vec<u32>, Option<usize>);

/// Scores sets that each need `need` of their products in one order (`None`: all).
pub fn score_sets_at_least(holdout: &Holdout, sets: &[NeedSet]) -> Scores {
    let mut hits = 0usize;
    let mut strong = 0usize;
    let mut lifts = Vec::new();
    let mut products = HashSet::new();
    for (set, need) in sets {
        let mut s = set.clone();
        s.sort_unstable();
        s.dedup();
        if s.len() < 2 {
            continue;
        }
        products.extend(s.iter().copied());
        let k = need.unwrap_or(s.len()).clamp(2, s.len());
        let (c, lift) = holdout.score_at_least(&s, k);
        hits += usize::from(c >= 1);
        strong += usize::from(c >= 2 && lift >= 2.0);
        lifts.push(lift);
    }
    let counted = lifts.len();
    let rate = |x: usize| {
        if counted == 0 {
            0.0
        } else {
            x as f64 / counted as f64
        }
    };
    Scores {
        bundles: counted,
        hit: rate(hits),
        strong_hit: rate(strong),
        median_lift: crate::stats::median(&mut lifts).unwrap_or(0.0),
        products: products.len(),
    }
}

static EMPTY: Vec<u32> = Vec::new();

/// A store's orders split at a cutoff day: the training orders (on or before its end)
/// and the held-out baskets after it, as catalog positions (`index` maps a variant id
/// to its position).
pub(crate) struct HoldoutSplit<'a> {
    pub train: Vec<&'a crate::store::HistoryOrder>,
    pub heldout: Vec<Vec<u32>>,
    pub index: HashMap<&'a str, u32>,
}

impl<'a> HoldoutSplit<'a> {
    /// The split, or what is missing: no order on either side of the cutoff.
    pub fn new(
        data: &'a crate::store::StoreData,
        store_id: &StoreId,
        cutoff: NaiveDate,
    ) -> Result<HoldoutSplit<'a>, String> {
        let end = end_of_day(cutoff);
        let train: Vec<_> = data.orders.iter().filter(|o| o.created_at <= end).collect();
        if train.is_empty() {
            return Err(format!(
                "store {store_id} has no orders on or before {cutoff}"
            ));
        }
        let heldout: Vec<Vec<u32>> = data
            .orders
            .iter()
            .filter(|o| o.created_at > end)
            .map(|o| o.basket())
            .filter(|b| !b.is_empty())
            .collect();
        if heldout.is_empty() {
            return Err(format!(
                "store {store_id} has no orders after {cutoff}: nothing to evaluate against"
            ));
        }
        let index = data
            .products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.variant_id.as_str(), i as u32))
            .collect();
        Ok(HoldoutSplit {
            train,
            heldout,
            index,
        })
    }
}

/// Scores sets of product indices (sets with fewer than two distinct products are left
/// out).
pub fn score_sets(holdout: &Holdout, sets: &[Vec<u32>]) -> Scores {
    let whole: Vec<NeedSet> = sets.iter().map(|s| (s.clone(), None)).collect();
    score_sets_at_least(holdout, &whole)
}

/// The 5th and 95th percentiles of a statistic over 1,000 bootstrap resamples.
fn bootstrap(
    holdout: &Holdout,
    sets: &[Vec<u32>],
    seed: u64,
    stat: impl Fn(&Scores) -> f64,
) -> Interval {
    let multi: Vec<&Vec<u32>> = sets.iter().filter(|s| distinct(s) >= 2).collect();
    if multi.is_empty() {
        return Interval {
            low: 0.0,
            high: 0.0,
        };
    }
    let mut rng = Stream::new(Purpose::Bootstrap, seed);
    let mut values = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let sample: Vec<Vec<u32>> = (0..multi.len())
            .map(|_| multi[rng.below(multi.len())].clone())
            .collect();
        values.push(stat(&score_sets(holdout, &sample)));
    }
    values.sort_by(f64::total_cmp);
    Interval {
        low: values[50],
        high: values[949],
    }
}

fn distinct(s: &[u32]) -> usize {
    s.iter().collect::<HashSet<_>>().len()
}

/// Writes an evaluation's run files (the report with its "Quality on held-out orders"
/// section) and `eval.json` into `dest`, whole (see [`crate::destination`]); returns
/// their paths.
pub fn write_files(
    dest: &std::path::Path,
    force: bool,
    report: &EvalReport,
    out: &RunOutput,
) -> Result<Vec<std::path::PathBuf>, crate::destination::DestinationError> {
    let (staged, mut paths) =
        pipeline::output::stage_all(dest, force, out, Some(&html_section(report)))?;
    paths.push(
        staged.write(
            "eval.json",
            serde_json::to_string_pretty(report)
                .unwrap_or_default()
                .as_bytes(),
        )?,
    );
    staged.place()?.keep();
    Ok(paths)
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
    let split = HoldoutSplit::new(&data, store_id, options.cutoff).map_err(EvalError::Data)?;
    let seed = options.run.variant.seed;
    let train: Vec<&crate::store::HistoryOrder> = {
        let skip = match options.run.prepare.orders {
            OrderScope::Last(m) => split.train.len().saturating_sub(m),
            OrderScope::All | OrderScope::None => 0,
        };
        split.train[skip..].to_vec()
    };
    let train_orders = train.len();
    if train_orders == 0 {
        return Err(EvalError::Data(format!(
            "store {store_id}: no training orders are left (none before the cutoff, or the last 0 asked for)"
        )));
    }
    let index = &split.index;
    let heldout = &split.heldout;
    let holdout = Holdout::new(heldout);

    let prepare_options = PrepareOptions {
        as_of: Some(options.cutoff),
        ..options.run.prepare.clone()
    };
    let variant = Variant {
        merchant: MerchantInputs::NONE,
        ..options.run.variant.clone()
    };
    let never = CancelToken::never();
    // The store as read above: phase 0 does not read it again.
    let ctx = Arc::new(
        pipeline::prepare_loaded(
            services,
            data.clone(),
            &prepare_options,
            &NoObserver,
            &never,
        )
        .await?,
    );
    let out = pipeline::run(&ctx, &variant, services, &NoObserver, &never).await?;

    // Our bundles as product-index sets.
    let set_of = |b: &domain::Bundle| -> Vec<u32> {
        b.products
            .iter()
            .filter_map(|p| index.get(p.product_id.as_str()).copied())
            .collect()
    };
    let ours_sets: Vec<Vec<u32>> = out.bundles.iter().map(set_of).collect();
    let scores = score_sets(&holdout, &ours_sets);
    let mut by_objective: BTreeMap<String, Vec<Vec<u32>>> = BTreeMap::new();
    let mut by_type: BTreeMap<String, Vec<Vec<u32>>> = BTreeMap::new();
    for (b, s) in out.bundles.iter().zip(&ours_sets) {
        by_objective
            .entry(b.objective.as_str().to_owned())
            .or_default()
            .push(s.clone());
        by_type
            .entry(b.bundle_type.as_str().to_owned())
            .or_default()
            .push(s.clone());
    }
    // As offers are used: mix & match by its pick.
    let need = |b: &domain::Bundle| match b.bundle_type {
        domain::BundleType::MixMatch => b.pick.map(|p| p as usize),
        _ => None,
    };
    let mut picks_all = Vec::new();
    let mut picks_by_objective: BTreeMap<String, Vec<NeedSet>> = BTreeMap::new();
    let mut picks_by_type: BTreeMap<String, Vec<NeedSet>> = BTreeMap::new();
    for (b, s) in out.bundles.iter().zip(&ours_sets) {
        let entry = (s.clone(), need(b));
        picks_all.push(entry.clone());
        picks_by_objective
            .entry(b.objective.as_str().to_owned())
            .or_default()
            .push(entry.clone());
        picks_by_type
            .entry(b.bundle_type.as_str().to_owned())
            .or_default()
            .push(entry);
    }
    let score_map = |m: BTreeMap<String, Vec<NeedSet>>| {
        m.into_iter()
            .map(|(k, v)| (k, score_sets_at_least(&holdout, &v)))
            .collect()
    };
    let ours = Ours {
        by_pick: score_sets_at_least(&holdout, &picks_all),
        by_pick_by_objective: score_map(picks_by_objective),
        by_pick_by_type: score_map(picks_by_type),
        repeated_sets: repeated(&data.products, index, &out.bundles),
        unjustified_share: if out.bundles.is_empty() {
            0.0
        } else {
            out.bundles
                .iter()
                .filter(|b| b.explanation.justification.is_empty())
                .count() as f64
                / out.bundles.len() as f64
        },
        hit_ci90: bootstrap(&holdout, &ours_sets, seed, |s| s.hit),
        strong_hit_ci90: bootstrap(&holdout, &ours_sets, seed ^ 1, |s| s.strong_hit),
        median_lift_ci90: bootstrap(&holdout, &ours_sets, seed ^ 2, |s| s.median_lift),
        scores,
        by_objective: by_objective
            .into_iter()
            .map(|(k, v)| (k, score_sets(&holdout, &v)))
            .collect(),
        by_type: by_type
            .into_iter()
            .map(|(k, v)| (k, score_sets(&holdout, &v)))
            .collect(),
    };

    // Baselines from the same training orders.
    let train_baskets: Vec<Vec<u32>> = train
        .iter()
        .map(|o| o.basket())
        .filter(|b| !b.is_empty())
        .collect();
    let mut baselines = baselines(
        &holdout,
        &train_baskets,
        &training_pairs(&train_baskets, data.products.len()),
        &picks_all,
        options.k,
        seed,
    );
    if options.cold() {
        baselines.nearest_in_meaning = Some(score_sets(&holdout, &nearest_pairs(&ctx, options.k)));
    }
    let report = EvalReport {
        store_id: store_id.to_string(),
        cutoff: options.cutoff.to_string(),
        train_orders,
        heldout_orders: heldout.len(),
        k: options.k,
        seed,
        ours,
        baselines,
    };
    Ok((report, out))
}

/// Bundles repeating an earlier bundle's product set: by product (sizes and colours of
/// one are one), except mix & match groups, whose variants are the choice.
fn repeated(
    products: &[domain::Product],
    index: &HashMap<&str, u32>,
    bundles: &[domain::Bundle],
) -> Repeated {
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut r = Repeated::default();
    for b in bundles {
        let mut key: Vec<String> = b
            .products
            .iter()
            .map(
                |p| match (b.bundle_type, index.get(p.product_id.as_str())) {
                    (domain::BundleType::MixMatch, _) | (_, None) => p.product_id.clone(),
                    (_, Some(&i)) => products[i as usize].product_id.clone(),
                },
            )
            .collect();
        key.sort();
        key.dedup();
        if !seen.insert(key) {
            r.total += 1;
            *r.by_objective
                .entry(b.objective.as_str().to_owned())
                .or_default() += 1;
            *r.by_type
                .entry(b.bundle_type.as_str().to_owned())
                .or_default() += 1;
        }
    }
    r
}

/// Every pair of products the training baskets hold together, counted.
pub(crate) fn training_pairs(train: &[Vec<u32>], products: usize) -> crate::rules::Pairs {
    let baskets = Baskets::from_ids(products as u32, train.to_vec());
    count_pairs(&baskets, 1, crate::config::thread_count(0))
}

/// The `k` pairs bought together most often (ties by product index).
pub(crate) fn top_count_pairs(pairs: &crate::rules::Pairs, k: usize) -> Vec<Vec<u32>> {
    let mut by_count: Vec<&crate::rules::PairCount> = pairs.pairs.iter().collect();
    by_count.sort_by(|a, b| b.count.cmp(&a.count).then((a.a, a.b).cmp(&(b.a, b.b))));
    by_count.iter().take(k).map(|p| vec![p.a, p.b]).collect()
}

/// The baselines of `eval`: random sets of `ours`' sizes, the top-`k` pairs by count
/// and by lift, all from the training baskets (`pairs`: [`training_pairs`] of them).
pub(crate) fn baselines(
    holdout: &Holdout,
    train: &[Vec<u32>],
    pairs: &crate::rules::Pairs,
    ours: &[NeedSet],
    k: usize,
    seed: u64,
) -> Baselines {
    let top_count = top_count_pairs(pairs, k);
    let mut by_lift: Vec<(&crate::rules::PairCount, f64)> = pairs
        .pairs
        .iter()
        .filter(|p| p.count >= 5)
        .map(|p| (p, pairs.lift(p)))
        .collect();
    by_lift.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then((a.0.a, a.0.b).cmp(&(b.0.a, b.0.b)))
    });
    let top_lift: Vec<Vec<u32>> = by_lift
        .iter()
        .take(k)
        .map(|(p, _)| vec![p.a, p.b])
        .collect();
    // Random sets of our sets' sizes over the products bought in training.
    let sold: Vec<u32> = {
        let mut s: Vec<u32> = train.iter().flatten().copied().collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let sizes: Vec<(usize, Option<usize>)> = ours
        .iter()
        .map(|(s, pick)| (distinct(s), *pick))
        .filter(|&(n, _)| n >= 2)
        .collect();
    let sizes = if sizes.is_empty() {
        vec![(2, None)]
    } else {
        sizes
    };
    let mut rng = Stream::new(Purpose::RandomSets, seed);
    let random: Vec<Vec<u32>> = (0..2000)
        .map(|i| {
            let want = sizes[i % sizes.len()].0.min(sold.len());
            let mut set: Vec<u32> = Vec::with_capacity(want);
            while set.len() < want {
                let p = sold[rng.below(sold.len())];
                if !set.contains(&p) {
                    set.push(p);
                }
            }
            set
        })
        .collect();
    let random_by_pick: Vec<NeedSet> = random
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), sizes[i % sizes.len()].1))
        .collect();
    Baselines {
        random: score_sets(holdout, &random),
        random_by_pick: score_sets_at_least(holdout, &random_by_pick),
        top_count_pairs: score_sets(holdout, &top_count),
        top_lift_pairs: score_sets(holdout, &top_lift),
        nearest_in_meaning: None,
    }
}

/// The nearest-in-meaning baseline: each eligible product's closest neighbour that is
/// not a near-copy nor its own variant, the `k` such pairs of highest cosine (each
/// pair once).
fn nearest_pairs(ctx: &pipeline::Context, k: usize) -> Vec<Vec<u32>> {
    use crate::domain::similarity::NEAR_COPY;
    let mut pairs: Vec<(f32, u32, u32)> = Vec::new();
    for (a, list) in ctx.neighbours.iter().enumerate() {
        let a = a as u32;
        if !ctx.signals[a as usize].eligible {
            continue;
        }
        let best = list.iter().find(|n| {
            n.score < NEAR_COPY
                && ctx.signals[n.id as usize].eligible
                && ctx.product(n.id).product_id != ctx.product(a).product_id
        });
        if let Some(n) = best {
            pairs.push((n.score, a.min(n.id), a.max(n.id)));
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0).then((x.1, x.2).cmp(&(y.1, y.2))));
    pairs.dedup_by(|x, y| (x.1, x.2) == (y.1, y.2));
    pairs
        .into_iter()
        .take(k)
        .map(|(_, a, b)| vec![a, b])
        .collect()
}

/// The report's rows: ours and the three baselines, in order, with their labels.
pub fn rows(r: &EvalReport) -> Vec<(String, &Scores)> {
    vec![
        ("bundleforge".to_owned(), &r.ours.scores),
        ("random sets".to_owned(), &r.baselines.random),
        (
            "random sets, by pick".to_owned(),
            &r.baselines.random_by_pick,
        ),
        (
            format!("top-{} pairs by count", r.k),
            &r.baselines.top_count_pairs,
        ),
        (
            format!("top-{} pairs by lift (count ≥ 5)", r.k),
            &r.baselines.top_lift_pairs,
        ),
    ]
    .into_iter()
    .chain(
        r.baselines
            .nearest_in_meaning
            .as_ref()
            .map(|s| (format!("top-{} nearest in meaning", r.k), s)),
    )
    .collect()
}

/// The report as a plain-text table.
pub fn table(r: &EvalReport) -> String {
    let mut out = format!(
        "{}: cutoff {}, {} training orders, {} held out\n{:<34} {:>7} {:>6} {:>7} {:>12} {:>9}\n",
        r.store_id,
        r.cutoff,
        r.train_orders,
        r.heldout_orders,
        "",
        "bundles",
        "hit",
        "strong",
        "median lift",
        "products"
    );
    for (label, s) in rows(r) {
        out.push_str(&format!(
            "{label:<34} {:>7} {:>6.3} {:>7.3} {:>12.2} {:>9}\n",
            s.bundles, s.hit, s.strong_hit, s.median_lift, s.products
        ));
    }
    let o = &r.ours;
    out.push_str(&format!(
        "bundleforge 90% intervals: hit {:.3}–{:.3}, strong {:.3}–{:.3}, median lift {:.2}–{:.2}\n",
        o.hit_ci90.low,
        o.hit_ci90.high,
        o.strong_hit_ci90.low,
        o.strong_hit_ci90.high,
        o.median_lift_ci90.low,
        o.median_lift_ci90.high
    ));
    let p = &o.by_pick;
    out.push_str(&format!(
        "bundleforge by pick: {} bundles, hit {:.3}, strong {:.3}, median lift {:.2}, {} products; \
         {} repeated product sets, {:.3} unjustified\n",
        p.bundles,
        p.hit,
        p.strong_hit,
        p.median_lift,
        p.products,
        o.repeated_sets.total,
        o.unjustified_share
    ));
    for (label, by) in [
        ("objective", &o.by_objective),
        ("type", &o.by_type),
        ("pick, objective", &o.by_pick_by_objective),
        ("pick, type", &o.by_pick_by_type),
    ] {
        for (k, s) in by {
            out.push_str(&format!(
                "  by {label} {k:<20} {:>5} bundles, hit {:.3}, strong {:.3}, median lift {:.2}, {} products\n",
                s.bundles, s.hit, s.strong_hit, s.median_lift, s.products
            ));
        }
    }
    out
}

/// The report as an HTML section for the run's report page.
pub fn html_section(r: &EvalReport) -> String {
    let esc = crate::pipeline::output::esc;
    let mut html = format!(
        "<h2>Quality on held-out orders</h2><p>Cutoff {}: {} training orders, {} held-out orders. \
         A set hits when its products are bought together in a held-out order; it strongly \
         hits in two or more with held-out lift ≥ 2.</p><table><tr><th></th><th>sets</th>\
         <th>hit</th><th>strong hit</th><th>median lift</th><th>products</th></tr>",
        esc(&r.cutoff),
        r.train_orders,
        r.heldout_orders
    );
    for (label, s) in rows(r) {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(&label),
            s.bundles,
            s.hit,
            s.strong_hit,
            s.median_lift,
            s.products
        ));
    }
    let p = &r.ours.by_pick;
    html.push_str(&format!(
        "<tr><td>bundleforge, by pick</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.2}</td><td>{}</td></tr>",
        p.bundles, p.hit, p.strong_hit, p.median_lift, p.products
    ));
    html.push_str("</table>");
    html.push_str(&format!(
        "<p>By pick: a mix &amp; match group counts when an order holds at least its pick. \
         Repeated product sets: {}; bundles without a justification: {:.1}%.</p>",
        r.ours.repeated_sets.total,
        r.ours.unjustified_share * 100.0
    ));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight held-out orders over products 0–4 (4 is never bought), worked by hand.
    fn holdout() -> Holdout {
        Holdout::new(&[
            vec![0, 1],
            vec![0, 1, 2],
            vec![0, 1, 3],
            vec![0],
            vec![2, 3],
            vec![2],
            vec![3],
            vec![1, 2],
        ])
    }

    #[test]
    fn metric_definitions_give_the_known_answers() {
        let h = holdout();
        let (c, lift) = h.score(&[0, 1]);
        assert_eq!(c, 3);
        // 1 appears in orders 0, 1, 2, 7: n₁ = 4, so lift = 3·8/(4·4) = 1.5.
        assert!((lift - 1.5).abs() < 1e-12, "{lift}");
        let (c, lift) = h.score(&[2, 3]);
        // 2 in 1, 4, 5, 7 (4); 3 in 2, 4, 6 (3); together in 4 (1): 1·8/12.
        assert_eq!(c, 1);
        assert!((lift - 8.0 / 12.0).abs() < 1e-12);
        assert_eq!(h.score(&[0, 4]), (0, 0.0));
        // A triple: 0, 1, 2 together in order 1 only: 1·8²/(4·4·4) = 1.
        let (c, lift) = h.score(&[0, 1, 2]);
        assert_eq!(c, 1);
        assert!((lift - 1.0).abs() < 1e-12);

        let s = score_sets(
            &h,
            &[vec![0, 1], vec![2, 3], vec![0, 4], vec![3], vec![1, 1]],
        );
        // Single-product sets ({3}, {1,1}) do not count.
        assert_eq!(s.bundles, 3);
        assert!((s.hit - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.strong_hit, 0.0, "lift 1.5 is under 2");
        assert!((s.median_lift - 8.0 / 12.0).abs() < 1e-12);
        assert_eq!(s.products, 5);
    }

    #[test]
    fn by_pick_counts_orders_holding_enough_of_a_group() {
        let h = holdout();
        // {0, 1, 2} with pick 2: orders 0, 1, 2, 7 hold two or more.
        let (c, lift) = h.score_at_least(&[0, 1, 2], 2);
        assert_eq!(c, 4);
        // p = 4/8 each: P(≥ 2 of 3) = 3·(1/4)(1/2) + 1/8 = 1/2, so 4 expected.
        assert!((lift - 1.0).abs() < 1e-12, "{lift}");
        // Needing all of a set is the plain score.
        assert_eq!(h.score_at_least(&[0, 1], 2), h.score(&[0, 1]));
        assert!((at_least(&[0.5, 0.5], 1) - 0.75).abs() < 1e-12);
        let s = score_sets_at_least(&h, &[(vec![0, 1, 2], Some(2)), (vec![3], None)]);
        assert_eq!((s.bundles, s.hit), (1, 1.0));
    }

    #[test]
    fn a_strong_hit_needs_two_orders_and_lift_two() {
        let h = Holdout::new(&[vec![0, 1], vec![0, 1], vec![2], vec![3], vec![2, 3]]);
        // {0,1}: c = 2, n₀ = n₁ = 2, N = 5 → lift 2.5.
        let s = score_sets(&h, &[vec![0, 1]]);
        assert_eq!((s.hit, s.strong_hit), (1.0, 1.0));
        // {2,3}: c = 1 → hit only.
        let s = score_sets(&h, &[vec![2, 3]]);
        assert_eq!((s.hit, s.strong_hit), (1.0, 0.0));
    }
}
