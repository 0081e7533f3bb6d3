//! Every variant on every scenario, scored on the held-out orders with `eval`'s
//! definitions, with bootstrap intervals and a paired comparison against the control.
//!
//! A scenario is a slice of the training orders (the whole store up to the cutoff, or
//! its last N orders: a smaller shop); its phase 0 is prepared once and every variant
//! runs over that one context. The held-out orders (after the cutoff) are the same in
//! every scenario.
//!
//! Intervals come from a two-way paired bootstrap. Each of `resamples` resamples
//! draws the held-out orders with replacement (the shoppers: another season's
//! orders) and, independently, the scenario's distinct product sets with replacement
//! from the union of every variant's sets (the bundles: another run's picks, as
//! `eval` resamples them). A variant's statistic on a resample is taken over its own
//! sets as drawn, scored on the drawn orders. Every variant sees the same draw, so a
//! set two variants both publish counts the same for both, and a variant's difference
//! from the control is taken resample by resample: its interval is the 5th–95th
//! percentile of those differences (paired), not two intervals set side by side. Two
//! variants publishing the same sets differ by exactly zero.
//!
//! Beyond `eval`'s hit, strong hit, median lift and `by_pick`:
//! - `recall_at` K (5, 10, 50): anchors are the scenario's 100 best-selling training
//!   products; an anchor's relevant partners are the products it strongly goes with
//!   in the held-out orders (`eval`'s strong rule for the pair: together in two or
//!   more, at a lift of 2 or more); the variant's partners for it are the other
//!   products of its bundles holding it, in published order; recall@K is the number
//!   of relevant partners among the first K over the most a list of K can hold,
//!   min(relevant, K), so 1 is reachable at every K; averaged over anchors with any.
//!   An anchor the variant has no bundle for scores 0: coverage counts.
//! - `novelty`: the share of hitting bundles with a product pair outside the top-K
//!   training count pairs (what "frequently bought together" would show anyway).
//! - `hit_margin`: the expected margin (minor units) of the hitting bundles.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;

use chrono::NaiveDate;
use serde::Serialize;

use super::{CohortVariant, CohortsError};
use crate::cancel::CancelToken;
use crate::domain::{self, StoreId};
use crate::eval::{self, NeedSet, Scores};
use crate::pipeline::{self, NoObserver, OrderScope, PrepareOptions, PriorScope};
use crate::rng::{Purpose, Stream};
use crate::services::Services;
use crate::stats::at_least;

/// Ks of `recall_at`.
pub const RECALL_KS: [usize; 3] = [5, 10, 50];
/// Anchors of `recall_at`: the best-selling training products.
const ANCHORS: usize = 100;

/// A slice of the training orders.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub orders: OrderScope,
}

impl Scenario {
    /// The full store, and its last 300 and 1,200 orders before the cutoff.
    pub fn defaults() -> Vec<Scenario> {
        vec![
            Scenario {
                name: "full".into(),
                orders: OrderScope::All,
            },
            Scenario {
                name: "last_300".into(),
                orders: OrderScope::Last(300),
            },
            Scenario {
                name: "last_1200".into(),
                orders: OrderScope::Last(1200),
            },
        ]
    }
}

#[derive(Debug, Clone)]
pub struct CohortOptions {
    pub cutoff: NaiveDate,
    pub seed: u64,
    pub scenarios: Vec<Scenario>,
    /// Bootstrap resamples of the held-out orders.
    pub resamples: usize,
    /// Pairs in each top-K baseline (and what `novelty` is measured against).
    pub k: usize,
    /// Variants run at once over a context.
    pub concurrent_runs: usize,
}

/// A 90 % interval, `[low, high]`.
pub type Bounds = [f64; 2];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Intervals {
    pub hit: Bounds,
    pub strong_hit: Bounds,
    pub median_lift: Bounds,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Difference {
    /// The variant's value minus the control's, on the held-out orders as they are.
    pub difference: f64,
    /// Its paired bootstrap 90 % interval.
    pub interval: Bounds,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VsControl {
    pub hit: Difference,
    pub strong_hit: Difference,
    pub median_lift: Difference,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HitMargin {
    pub currency: domain::Currency,
    /// Bundles that hit (whose margin this is).
    pub bundles: usize,
    /// Expected margin of the hitting bundles, summed.
    pub total_minor: i64,
    pub mean_minor: i64,
    /// Share of those bundles whose cost was assumed (no cost in the catalog).
    pub cost_assumed_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantScenario {
    pub name: String,
    /// Training orders the scenario's context holds.
    pub orders: usize,
    /// The weights the run used (the tier's when the variant names none).
    pub weights: [f64; 3],
    pub bundles: usize,
    pub hit: f64,
    pub strong_hit: f64,
    pub median_lift: f64,
    pub products: usize,
    pub by_pick: Scores,
    pub recall_at: BTreeMap<String, f64>,
    pub novelty: f64,
    pub novel_hits: usize,
    pub hit_margin: HitMargin,
    pub intervals: Intervals,
    /// Against the control (the control's own: zero, as it is against itself).
    pub vs_control: VsControl,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    pub name: String,
    pub description: String,
    pub control: bool,
    /// As configured: `[α, β, γ]`, or `"tier"`.
    pub weights: serde_json::Value,
    pub sources: pipeline::CandidateSources,
    pub objectives: Vec<domain::Objective>,
    pub bundle_types: Vec<domain::BundleType>,
    pub scenarios: Vec<VariantScenario>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioBaselines {
    pub orders: usize,
    pub random: Scores,
    pub random_by_pick: Scores,
    pub top_count_pairs: Scores,
    pub top_lift_pairs: Scores,
}

/// Per scenario: the variant with the highest strong hit, and whether its paired
/// interval against the control lies above zero.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub scenario: String,
    pub best: String,
    pub strong_hit: f64,
    pub beats_control: bool,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CohortsReport {
    pub store_id: String,
    pub cutoff: String,
    pub seed: u64,
    pub heldout_orders: usize,
    pub resamples: usize,
    pub k: usize,
    pub variants: Vec<VariantReport>,
    pub baselines: BTreeMap<String, ScenarioBaselines>,
    pub verdict: Vec<Verdict>,
    /// Where the time went, per scenario.
    pub timings: Vec<ScenarioTiming>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioTiming {
    pub scenario: String,
    /// Phase 0, once for every variant.
    pub prepare_seconds: f64,
    /// Phases 1–3 of every variant.
    pub runs_seconds: f64,
    /// Baselines, the bootstrap and the other measures.
    pub scoring_seconds: f64,
}

/// A set prepared for repeated scoring: the held-out orders that count for it.
struct PreparedSet {
    products: Vec<u32>,
    /// Orders an order must hold this many of.
    need: usize,
    /// Held-out orders holding at least `need` of `products`.
    orders: Vec<u32>,
}

/// Held-out orders as lists per product, and resample weights.
struct Heldout {
    baskets: Vec<Vec<u32>>,
    holding: HashMap<u32, Vec<u32>>,
}

impl Heldout {
    fn new(baskets: Vec<Vec<u32>>) -> Heldout {
        let mut holding: HashMap<u32, Vec<u32>> = HashMap::new();
        for (o, b) in baskets.iter().enumerate() {
            for &i in b {
                holding.entry(i).or_default().push(o as u32);
            }
        }
        Heldout { baskets, holding }
    }

    fn prepare(&self, (set, need): &NeedSet) -> Option<PreparedSet> {
        let mut products = set.clone();
        products.sort_unstable();
        products.dedup();
        if products.len() < 2 {
            return None;
        }
        let need = need.unwrap_or(products.len()).clamp(2, products.len());
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for p in &products {
            for &o in self.holding.get(p).map_or(&[][..], |v| v) {
                *counts.entry(o).or_default() += 1;
            }
        }
        let mut orders: Vec<u32> = counts
            .into_iter()
            .filter(|&(_, m)| m >= need)
            .map(|(o, _)| o)
            .collect();
        orders.sort_unstable();
        Some(PreparedSet {
            products,
            need,
            orders,
        })
    }
}

/// One weighting of the held-out orders: all ones, or a bootstrap draw.
struct Weighting {
    weights: Vec<u32>,
    total: u64,
    /// Weighted orders holding each product asked for.
    product_counts: HashMap<u32, u64>,
}

impl Weighting {
    fn new(heldout: &Heldout, weights: Vec<u32>, products: &HashSet<u32>) -> Weighting {
        let product_counts = products
            .iter()
            .map(|&p| {
                let n = heldout.holding.get(&p).map_or(0, |l| {
                    l.iter().map(|&o| u64::from(weights[o as usize])).sum()
                });
                (p, n)
            })
            .collect();
        Weighting {
            total: weights.iter().map(|&w| u64::from(w)).sum(),
            weights,
            product_counts,
        }
    }

    /// (weighted orders holding enough of the set, lift) as `eval` defines them.
    fn score(&self, s: &PreparedSet) -> (u64, f64) {
        let c: u64 = s
            .orders
            .iter()
            .map(|&o| u64::from(self.weights[o as usize]))
            .sum();
        let n = self.total;
        let counts: Vec<u64> = s
            .products
            .iter()
            .map(|p| self.product_counts.get(p).copied().unwrap_or(0))
            .collect();
        if n == 0 || counts.contains(&0) {
            return (c, 0.0);
        }
        if s.need >= s.products.len() {
            let (_, lift) = crate::rules::set_lift(c, counts.iter().copied(), n);
            return (c, lift);
        }
        let probs: Vec<f64> = counts.iter().map(|&k| k as f64 / n as f64).collect();
        let expected = n as f64 * at_least(&probs, s.need);
        (
            c,
            if expected > 0.0 {
                c as f64 / expected
            } else {
                0.0
            },
        )
    }

    /// (count, lift) of every set.
    fn scores(&self, sets: &[PreparedSet]) -> Vec<(u64, f64)> {
        sets.iter().map(|s| self.score(s)).collect()
    }
}

/// Hit, strong hit and median lift over `members` (indices into `scores`), each set
/// counted as often as `times` says (once each when `None`); `None` when no member
/// was drawn.
fn arm_stats(members: &[usize], scores: &[(u64, f64)], times: Option<&[u32]>) -> Option<[f64; 3]> {
    let mut n = 0usize;
    let mut hits = 0usize;
    let mut strong = 0usize;
    let mut lifts = Vec::with_capacity(members.len());
    for &u in members {
        let t = times.map_or(1, |t| t[u] as usize);
        let (c, lift) = scores[u];
        n += t;
        hits += t * usize::from(c >= 1);
        strong += t * usize::from(c >= 2 && lift >= 2.0);
        lifts.extend(std::iter::repeat_n(lift, t));
    }
    if n == 0 {
        return None;
    }
    Some([
        hits as f64 / n as f64,
        strong as f64 / n as f64,
        crate::stats::median(&mut lifts).unwrap_or(0.0),
    ])
}

/// How often each of `n` items is drawn in `n` draws with replacement.
fn draw(n: usize, rng: &mut Stream) -> Vec<u32> {
    let mut w = vec![0u32; n];
    for _ in 0..n {
        w[rng.below(n)] += 1;
    }
    w
}

fn percentiles(mut values: Vec<f64>) -> Bounds {
    if values.is_empty() {
        return [0.0, 0.0];
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    [at(0.05), at(0.95)]
}

/// What one variant's run on one scenario produced, before intervals.
struct Arm {
    bundles: Vec<domain::Bundle>,
    sets: Vec<Vec<u32>>,
    /// Each bundle of two or more products: (its product set among the scenario's
    /// units, its position in `bundles`).
    members: Vec<(usize, usize)>,
    picks: Vec<NeedSet>,
    weights: [f64; 3],
    seconds: f64,
}

/// Runs every variant on every scenario and scores them. `progress` hears each step
/// (done, total, what).
pub async fn run(
    services: &Services,
    store_id: &StoreId,
    variants: &[CohortVariant],
    options: &CohortOptions,
    progress: &(dyn Fn(usize, usize, &str) + Send + Sync),
) -> Result<CohortsReport, CohortsError> {
    let started = Instant::now();
    let control = variants
        .iter()
        .position(|v| v.control)
        .ok_or_else(|| CohortsError::Data("no variant is the control".into()))?;
    let data = services.store.load(store_id).await?;
    let eval::HoldoutSplit {
        train: all_train,
        heldout: heldout_baskets,
        index,
    } = eval::HoldoutSplit::new(&data, store_id, options.cutoff).map_err(CohortsError::Data)?;
    let heldout = Heldout::new(heldout_baskets);
    let holdout = eval::Holdout::new(&heldout.baskets);
    let n_heldout = heldout.baskets.len();
    let total_steps = options.scenarios.len() * (variants.len() + 1);
    let mut step = 0usize;

    let mut per_variant: Vec<Vec<VariantScenario>> = vec![Vec::new(); variants.len()];
    let mut baselines = BTreeMap::new();
    let mut timings = Vec::with_capacity(options.scenarios.len());
    let never = CancelToken::never();
    for scenario in &options.scenarios {
        progress(step, total_steps, &format!("{}: phase 0", scenario.name));
        let scenario_started = Instant::now();
        let prepare_options = PrepareOptions {
            as_of: Some(options.cutoff),
            seed: options.seed,
            orders: scenario.orders,
            prior: PriorScope::All,
        };
        // The store as read once above: each scenario's phase 0 takes a copy. The
        // arms' variants honour no pins or approvals (the engine alone).
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
        let prepare_seconds = scenario_started.elapsed().as_secs_f64();
        step += 1;
        let train: Vec<Vec<u32>> = {
            let skip = match scenario.orders {
                OrderScope::Last(n) => all_train.len().saturating_sub(n),
                _ => 0,
            };
            all_train[skip..]
                .iter()
                .map(|o| o.basket())
                .filter(|b| !b.is_empty())
                .collect()
        };
        let train_orders = match scenario.orders {
            OrderScope::Last(n) => all_train.len().min(n),
            OrderScope::None => 0,
            _ => all_train.len(),
        };

        let mut arms = Vec::with_capacity(variants.len());
        // The distinct product sets every arm published, each scored once.
        let mut units: Vec<PreparedSet> = Vec::new();
        let mut unit_of: HashMap<Vec<u32>, usize> = HashMap::new();
        // Runs at once: much of a run's CPU work keeps one core busy.
        let runs_started = Instant::now();
        let runs = futures_util::stream::iter(variants.iter().map(|v| {
            let ctx = &ctx;
            let never = &never;
            async move {
                let t = Instant::now();
                let out =
                    pipeline::run(ctx, &v.variant(options.seed), services, &NoObserver, never)
                        .await;
                (out, t.elapsed().as_secs_f64())
            }
        }))
        .buffered(options.concurrent_runs.max(1));
        futures_util::pin_mut!(runs);
        for v in variants {
            progress(step, total_steps, &format!("{}: {}", scenario.name, v.name));
            let Some((out, seconds)) = runs.next().await else {
                break;
            };
            let out = out?;
            let sets: Vec<Vec<u32>> = out
                .bundles
                .iter()
                .map(|b| {
                    b.products
                        .iter()
                        .filter_map(|p| index.get(p.product_id.as_str()).copied())
                        .collect()
                })
                .collect();
            let picks: Vec<NeedSet> = out
                .bundles
                .iter()
                .zip(&sets)
                .map(|(b, s)| {
                    let need = match b.bundle_type {
                        domain::BundleType::MixMatch => b.pick.map(|p| p as usize),
                        _ => None,
                    };
                    (s.clone(), need)
                })
                .collect();
            let mut members = Vec::new();
            for (i, set) in sets.iter().enumerate() {
                if let Some(p) = heldout.prepare(&(set.clone(), None)) {
                    let next = units.len();
                    let u = *unit_of.entry(p.products.clone()).or_insert(next);
                    if u == next {
                        units.push(p);
                    }
                    members.push((u, i));
                }
            }
            let w = out.run.weights;
            arms.push(Arm {
                bundles: out.bundles,
                sets,
                members,
                picks,
                weights: [w.alpha, w.beta, w.gamma],
                seconds,
            });
            step += 1;
        }

        let runs_seconds = runs_started.elapsed().as_secs_f64();
        let scoring_started = Instant::now();
        // Baselines from the scenario's training orders; random sets of the sizes
        // every arm published.
        let pooled: Vec<NeedSet> = arms.iter().flat_map(|a| a.picks.clone()).collect();
        let counted = eval::training_pairs(&train, data.products.len());
        let b = eval::baselines(&holdout, &train, &counted, &pooled, options.k, options.seed);
        baselines.insert(
            scenario.name.clone(),
            ScenarioBaselines {
                orders: train_orders,
                random: b.random,
                random_by_pick: b.random_by_pick,
                top_count_pairs: b.top_count_pairs,
                top_lift_pairs: b.top_lift_pairs,
            },
        );
        let top_pairs: HashSet<(u32, u32)> = eval::top_count_pairs(&counted, options.k)
            .into_iter()
            .map(|p| (p[0].min(p[1]), p[0].max(p[1])))
            .collect();
        drop(counted);
        let anchors = anchors(&train, &heldout);

        // The paired bootstrap: every arm on the same draws of orders and sets.
        let products: HashSet<u32> = units
            .iter()
            .flat_map(|s| s.products.iter().copied())
            .collect();
        let members: Vec<Vec<usize>> = arms
            .iter()
            .map(|a| a.members.iter().map(|&(u, _)| u).collect())
            .collect();
        let full = Weighting::new(&heldout, vec![1; n_heldout], &products);
        let full_scores = full.scores(&units);
        let points: Vec<[f64; 3]> = members
            .iter()
            .map(|m| arm_stats(m, &full_scores, None).unwrap_or([0.0; 3]))
            .collect();
        let mut draws: Vec<Vec<Option<[f64; 3]>>> =
            vec![Vec::with_capacity(options.resamples); arms.len()];
        let mut rng = Stream::new(Purpose::CohortResamples, options.seed);
        for _ in 0..options.resamples {
            let orders = draw(n_heldout, &mut rng);
            let times = draw(units.len(), &mut rng);
            let w = Weighting::new(&heldout, orders, &products);
            let scores = w.scores(&units);
            for (a, m) in members.iter().enumerate() {
                draws[a].push(arm_stats(m, &scores, Some(&times)));
            }
        }
        let interval =
            |a: usize, m: usize| percentiles(draws[a].iter().flatten().map(|s| s[m]).collect());
        let difference = |a: usize, m: usize| Difference {
            difference: points[a][m] - points[control][m],
            interval: percentiles(
                draws[a]
                    .iter()
                    .zip(&draws[control])
                    .filter_map(|(x, c)| Some(x.as_ref()?[m] - c.as_ref()?[m]))
                    .collect(),
            ),
        };

        for (a, arm) in arms.iter().enumerate() {
            let scores = eval::score_sets(&holdout, &arm.sets);
            let by_pick = eval::score_sets_at_least(&holdout, &arm.picks);
            // Hits, their novelty and margin.
            let hits: Vec<(usize, &PreparedSet)> = arm
                .members
                .iter()
                .filter(|&&(u, _)| full_scores[u].0 >= 1)
                .map(|&(u, i)| (i, &units[u]))
                .collect();
            let novel_hits = hits
                .iter()
                .filter(|(_, s)| pairs(&s.products).any(|p| !top_pairs.contains(&p)))
                .count();
            let currency = arm
                .bundles
                .first()
                .map_or(data.store.currency, |b| b.currency);
            let total_minor: i64 = hits
                .iter()
                .map(|(i, _)| arm.bundles[*i].expected_margin_minor)
                .sum();
            let assumed = hits
                .iter()
                .filter(|(i, _)| arm.bundles[*i].cost_assumed)
                .count();
            let hit_margin = HitMargin {
                currency,
                bundles: hits.len(),
                total_minor,
                mean_minor: if hits.is_empty() {
                    0
                } else {
                    total_minor / hits.len() as i64
                },
                cost_assumed_share: if hits.is_empty() {
                    0.0
                } else {
                    assumed as f64 / hits.len() as f64
                },
            };
            per_variant[a].push(VariantScenario {
                name: scenario.name.clone(),
                orders: train_orders,
                weights: arm.weights,
                bundles: scores.bundles,
                hit: scores.hit,
                strong_hit: scores.strong_hit,
                median_lift: scores.median_lift,
                products: scores.products,
                by_pick,
                recall_at: recall_at(&anchors, &arm.sets),
                novelty: if hits.is_empty() {
                    0.0
                } else {
                    novel_hits as f64 / hits.len() as f64
                },
                novel_hits,
                hit_margin,
                intervals: Intervals {
                    hit: interval(a, 0),
                    strong_hit: interval(a, 1),
                    median_lift: interval(a, 2),
                },
                vs_control: VsControl {
                    hit: difference(a, 0),
                    strong_hit: difference(a, 1),
                    median_lift: difference(a, 2),
                },
                seconds: arm.seconds,
            });
        }
        timings.push(ScenarioTiming {
            scenario: scenario.name.clone(),
            prepare_seconds,
            runs_seconds,
            scoring_seconds: scoring_started.elapsed().as_secs_f64(),
        });
    }
    progress(total_steps, total_steps, "done");

    let reports: Vec<VariantReport> = variants
        .iter()
        .zip(per_variant)
        .map(|(v, scenarios)| VariantReport {
            name: v.name.clone(),
            description: v.description.clone(),
            control: v.control,
            weights: v
                .run
                .weights
                .map_or_else(|| serde_json::json!("tier"), |w| serde_json::json!(w)),
            sources: v.run.sources,
            objectives: v.run.objectives.clone(),
            bundle_types: v.run.bundle_types.clone(),
            scenarios,
        })
        .collect();
    let verdict = verdicts(&reports, &options.scenarios);
    Ok(CohortsReport {
        store_id: store_id.to_string(),
        cutoff: options.cutoff.to_string(),
        seed: options.seed,
        heldout_orders: n_heldout,
        resamples: options.resamples,
        k: options.k,
        variants: reports,
        baselines,
        verdict,
        timings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The product pairs of a sorted set, each as (low, high).
fn pairs(set: &[u32]) -> impl Iterator<Item = (u32, u32)> + '_ {
    set.iter()
        .enumerate()
        .flat_map(move |(i, &a)| set[i + 1..].iter().map(move |&b| (a.min(b), a.max(b))))
}

/// The best-selling training products, each with its relevant held-out partners.
fn anchors(train: &[Vec<u32>], heldout: &Heldout) -> Vec<(u32, HashSet<u32>)> {
    let mut sold: HashMap<u32, usize> = HashMap::new();
    for b in train {
        for &p in b {
            *sold.entry(p).or_default() += 1;
        }
    }
    let mut by_count: Vec<(u32, usize)> = sold.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    by_count
        .into_iter()
        .take(ANCHORS)
        .map(|(a, _)| {
            let mut with: HashMap<u32, usize> = HashMap::new();
            for &o in heldout.holding.get(&a).map_or(&[][..], |v| v) {
                for &p in &heldout.baskets[o as usize] {
                    if p != a {
                        *with.entry(p).or_default() += 1;
                    }
                }
            }
            // The strong rule of `eval`: together in two orders or more, at a lift of 2
            // or more (c·N / (n_a·n_p)).
            let n = heldout.baskets.len() as f64;
            let n_a = heldout.holding.get(&a).map_or(0, Vec::len) as f64;
            let relevant = with
                .into_iter()
                .filter(|&(p, c)| {
                    let n_p = heldout.holding.get(&p).map_or(0, Vec::len) as f64;
                    c >= 2 && c as f64 * n >= 2.0 * n_a * n_p
                })
                .map(|(p, _)| p)
                .collect();
            (a, relevant)
        })
        .collect()
}

/// Recall@K over the anchors with relevant partners (see the module note).
fn recall_at(anchors: &[(u32, HashSet<u32>)], sets: &[Vec<u32>]) -> BTreeMap<String, f64> {
    let scored: Vec<&(u32, HashSet<u32>)> = anchors.iter().filter(|(_, r)| !r.is_empty()).collect();
    RECALL_KS
        .iter()
        .map(|&k| {
            let mut sum = 0.0;
            for (a, relevant) in &scored {
                let mut partners: Vec<u32> = Vec::new();
                for s in sets.iter().filter(|s| s.contains(a)) {
                    for &p in s {
                        if p != *a && !partners.contains(&p) {
                            partners.push(p);
                        }
                    }
                }
                let found = partners
                    .iter()
                    .take(k)
                    .filter(|p| relevant.contains(p))
                    .count();
                sum += found as f64 / relevant.len().min(k) as f64;
            }
            let value = if scored.is_empty() {
                0.0
            } else {
                sum / scored.len() as f64
            };
            (k.to_string(), value)
        })
        .collect()
}

/// Per scenario: the variant whose strong hit is highest among those whose paired
/// interval against the control lies above zero (a win the data can tell from noise);
/// else the one with the highest strong hit, said to be within the noise. Variants
/// whose interval lies below zero are named too.
fn verdicts(reports: &[VariantReport], scenarios: &[Scenario]) -> Vec<Verdict> {
    let by_strong_hit = |i: usize| {
        move |a: &&VariantReport, b: &&VariantReport| {
            let (x, y) = (&a.scenarios[i], &b.scenarios[i]);
            x.strong_hit
                .total_cmp(&y.strong_hit)
                .then(x.median_lift.total_cmp(&y.median_lift))
                .then(y.name.cmp(&x.name))
        }
    };
    scenarios
        .iter()
        .enumerate()
        .filter_map(|(i, sc)| {
            let scored: Vec<&VariantReport> = reports
                .iter()
                .filter(|r| r.scenarios.get(i).is_some_and(|s| s.bundles > 0))
                .collect();
            let above: Vec<&VariantReport> = scored
                .iter()
                .copied()
                .filter(|r| !r.control && r.scenarios[i].vs_control.strong_hit.interval[0] > 0.0)
                .collect();
            let below: Vec<&str> = scored
                .iter()
                .filter(|r| !r.control && r.scenarios[i].vs_control.strong_hit.interval[1] < 0.0)
                .map(|r| r.name.as_str())
                .collect();
            let beats = !above.is_empty();
            let best = if beats {
                above.iter().copied().max_by(by_strong_hit(i))?
            } else {
                scored.iter().copied().max_by(by_strong_hit(i))?
            };
            let s = &best.scenarios[i];
            let d = &s.vs_control.strong_hit;
            let mut text = if best.control {
                format!(
                    "{}: the control leads (strong hit {:.3} over {} bundles); no variant does better",
                    sc.name, s.strong_hit, s.bundles
                )
            } else if beats {
                format!(
                    "{}: {} wins, strong hit {:.3} over {} bundles, {:+.3} over the control (90 % interval {:+.3} to {:+.3})",
                    sc.name, best.name, s.strong_hit, s.bundles, d.difference, d.interval[0], d.interval[1]
                )
            } else {
                format!(
                    "{}: {} leads, strong hit {:.3} over {} bundles, but {:+.3} over the control is within the noise (90 % interval {:+.3} to {:+.3})",
                    sc.name, best.name, s.strong_hit, s.bundles, d.difference, d.interval[0], d.interval[1]
                )
            };
            let others: Vec<&str> = above
                .iter()
                .filter(|r| r.name != best.name)
                .map(|r| r.name.as_str())
                .collect();
            if !others.is_empty() {
                text.push_str(&format!("; also above the control: {}", others.join(", ")));
            }
            if !below.is_empty() {
                text.push_str(&format!("; below the control: {}", below.join(", ")));
            }
            Some(Verdict {
                scenario: sc.name.clone(),
                best: best.name.clone(),
                strong_hit: s.strong_hit,
                beats_control: beats,
                text,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heldout() -> Heldout {
        Heldout::new(vec![
            vec![0, 1],
            vec![0, 1, 2],
            vec![2, 3],
            vec![0, 3],
            vec![1, 2],
            vec![0, 1],
        ])
    }

    #[test]
    fn unit_weights_score_as_eval_does() {
        let h = heldout();
        let sets = vec![vec![0, 1], vec![2, 3], vec![0, 1, 2], vec![1, 3]];
        let prepared: Vec<PreparedSet> = sets
            .iter()
            .filter_map(|s| h.prepare(&(s.clone(), None)))
            .collect();
        let products: HashSet<u32> = (0..4).collect();
        let w = Weighting::new(&h, vec![1; h.baskets.len()], &products);
        let ours = arm_stats(&[0, 1, 2, 3], &w.scores(&prepared), None).unwrap();
        let theirs = eval::score_sets(&eval::Holdout::new(&h.baskets), &sets);
        assert_eq!(ours, [theirs.hit, theirs.strong_hit, theirs.median_lift]);
        // At least two of three: as score_sets_at_least.
        let pick = h.prepare(&(vec![0, 2, 3], Some(2))).unwrap();
        let (c, lift) = w.score(&pick);
        let (c2, lift2) = eval::Holdout::new(&h.baskets).score_at_least(&[0, 2, 3], 2);
        assert_eq!((c as usize, lift), (c2, lift2));
    }

    #[test]
    fn a_draw_weighs_orders_and_repeats_with_its_seed() {
        let mut rng = Stream::new(Purpose::CohortResamples, 7);
        let a = draw(1000, &mut rng);
        assert_eq!(a.iter().map(|&w| w as usize).sum::<usize>(), 1000);
        assert_eq!(a, draw(1000, &mut Stream::new(Purpose::CohortResamples, 7)));
        assert_ne!(a, draw(1000, &mut rng));
        // Weighted counts: an order drawn twice counts twice.
        let h = heldout();
        let products: HashSet<u32> = (0..4).collect();
        let w = Weighting::new(&h, vec![2, 0, 0, 0, 0, 0], &products);
        let s = h.prepare(&(vec![0, 1], None)).unwrap();
        assert_eq!(w.score(&s).0, 2);
        assert_eq!(w.total, 2);
    }

    #[test]
    fn a_set_drawn_twice_counts_twice_and_an_arm_with_none_drawn_has_no_value() {
        // Sets: (count, lift) of a miss, a strong hit and a weak hit.
        let scores = [(0, 0.0), (3, 4.0), (1, 1.5)];
        let once = arm_stats(&[0, 1, 2], &scores, None).unwrap();
        assert_eq!(once, [2.0 / 3.0, 1.0 / 3.0, 1.5]);
        // The strong hit drawn three times, the miss not at all.
        let drawn = arm_stats(&[0, 1, 2], &scores, Some(&[0, 3, 1])).unwrap();
        assert_eq!(drawn, [1.0, 0.75, 4.0]);
        assert_eq!(arm_stats(&[0, 2], &scores, Some(&[0, 3, 0])), None);
        // Two arms with the same sets get the same value on every draw: their
        // paired difference is exactly zero.
        assert_eq!(
            arm_stats(&[1, 2], &scores, Some(&[1, 2, 1])),
            arm_stats(&[2, 1], &scores, Some(&[1, 2, 1]))
        );
    }

    #[test]
    fn recall_counts_relevant_partners_in_published_order() {
        // Anchor 0 is in three of seven held-out orders: with 1 in two (lift
        // 2·7 / (3·2) = 2.33: relevant), with 2 in one (not).
        let h = Heldout::new(vec![
            vec![0, 1],
            vec![0, 1],
            vec![2, 3],
            vec![2, 3],
            vec![4],
            vec![5],
            vec![0, 2],
        ]);
        let found = anchors(&[vec![0, 1], vec![0, 2]], &h);
        assert_eq!(found[0].0, 0);
        assert_eq!(found[0].1, HashSet::from([1]));
        let got = recall_at(&found[..1], &[vec![0, 2], vec![0, 1]]);
        assert_eq!(got["5"], 1.0);
        assert_eq!(got["50"], 1.0);
        let none = recall_at(&found[..1], &[vec![2, 3]]);
        assert_eq!(none["10"], 0.0);
        // Popular together but not above chance: 2 and 3 are always together
        // (lift 3.5), 0 and 1 are not, in the first fixture.
        let popular = anchors(&[vec![0, 1]], &heldout());
        assert!(popular[0].1.is_empty(), "{popular:?}");
    }

    #[test]
    fn percentiles_take_the_5th_and_95th() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(percentiles(v), [50.0, 949.0]);
        assert_eq!(percentiles(Vec::new()), [0.0, 0.0]);
    }
}
