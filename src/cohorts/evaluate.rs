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
use std::time::Instant;

use futures_util::StreamExt;

use chrono::NaiveDate;
use serde::Serialize;

use super::measures::{anchors, pairs, recall_at};
use super::{CohortVariant, CohortsError};
use crate::cancel::CancelToken;
use crate::domain::{self, StoreId};
use crate::eval::{self, Holdout, HoldoutSplit, NeedSet, PreparedSet, Scores, Weighting};
use crate::pipeline::{self, Context, NoObserver, OrderScope, PrepareOptions};
use crate::rng::{Purpose, Stream};
use crate::services::Services;

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

/// What one variant's run on one scenario produced, before intervals.
struct Arm {
    bundles: Vec<domain::Bundle>,
    sets: eval::RunSets,
    /// Each bundle of two or more products: (its product set among the scenario's
    /// units, its position in `bundles`).
    members: Vec<(usize, usize)>,
    weights: [f64; 3],
    seconds: f64,
}

/// Every arm of one scenario, over one context: the arms and the distinct product
/// sets they published between them, each scored once.
struct Arms {
    arms: Vec<Arm>,
    units: Vec<PreparedSet>,
}

/// Per arm: its point value (hit, strong hit, median lift) on the held-out orders as
/// they are, and its value on each resample (`None`: none of its sets drawn).
struct Bootstrapped {
    points: Vec<[f64; 3]>,
    draws: Vec<Vec<Option<[f64; 3]>>>,
    /// (count, lift) of each unit on the held-out orders as they are.
    full_scores: Vec<(u64, f64)>,
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
    let split = HoldoutSplit::new(&data, store_id, eval::SplitAt::Day(options.cutoff))
        .map_err(CohortsError::Data)?;
    let holdout = Holdout::new(split.heldout.clone());
    let comparison = Comparison {
        services,
        data: &data,
        split: &split,
        holdout: &holdout,
        variants,
        options,
        control,
    };
    // Per scenario: its phase 0, then each variant.
    let steps_each = variants.len() + 1;
    let total_steps = options.scenarios.len() * steps_each;

    let mut per_variant: Vec<Vec<VariantScenario>> = vec![Vec::new(); variants.len()];
    let mut baselines = BTreeMap::new();
    let mut timings = Vec::with_capacity(options.scenarios.len());
    for (s, scenario) in options.scenarios.iter().enumerate() {
        let step = s * steps_each;
        let outcome = comparison
            .scenario(scenario, |offset, what| {
                progress(
                    step + offset,
                    total_steps,
                    &format!("{}: {what}", scenario.name),
                );
            })
            .await?;
        for (a, row) in outcome.rows.into_iter().enumerate() {
            per_variant[a].push(row);
        }
        baselines.insert(scenario.name.clone(), outcome.baselines);
        timings.push(outcome.timing);
    }
    progress(total_steps, total_steps, "done");

    let reports = variant_reports(variants, per_variant);
    let verdict = verdicts(&reports, &options.scenarios);
    Ok(CohortsReport {
        store_id: store_id.to_string(),
        cutoff: options.cutoff.to_string(),
        seed: options.seed,
        heldout_orders: holdout.len(),
        resamples: options.resamples,
        k: options.k,
        variants: reports,
        baselines,
        verdict,
        timings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What every scenario of one comparison shares: the store as read once, its split at
/// the cutoff and the held-out orders, the variants and the options.
struct Comparison<'a> {
    services: &'a Services,
    data: &'a domain::StoreData,
    split: &'a HoldoutSplit<'a>,
    holdout: &'a Holdout,
    variants: &'a [CohortVariant],
    options: &'a CohortOptions,
    /// The control's position in `variants`.
    control: usize,
}

/// What one scenario adds to the report: a row per arm, its baselines, its timings.
struct ScenarioOutcome {
    rows: Vec<VariantScenario>,
    baselines: ScenarioBaselines,
    timing: ScenarioTiming,
}

impl Comparison<'_> {
    /// One scenario: its phase 0 once, every variant over that context, then the
    /// scoring. `progress` hears the step within the scenario (0: phase 0, then one
    /// per variant) and what it is.
    async fn scenario(
        &self,
        scenario: &Scenario,
        progress: impl Fn(usize, &str),
    ) -> Result<ScenarioOutcome, CohortsError> {
        progress(0, "phase 0");
        let scenario_started = Instant::now();
        // The store as read once above: each scenario's phase 0 takes a copy.
        let prepare = PrepareOptions {
            seed: self.options.seed,
            orders: scenario.orders,
            ..PrepareOptions::default()
        };
        let ctx = eval::prepare_at(
            self.services,
            self.data.clone(),
            self.options.cutoff,
            &prepare,
        )
        .await?;
        let prepare_seconds = scenario_started.elapsed().as_secs_f64();
        let train = eval::baskets(self.split.train_in(scenario.orders));
        let train_orders = match scenario.orders {
            OrderScope::None => 0,
            scope => self.split.train_in(scope).len(),
        };

        let runs_started = Instant::now();
        let arms = run_arms(
            self.services,
            &ctx,
            self.split,
            self.holdout,
            self.variants,
            self.options,
            |v, name| progress(1 + v, name),
        )
        .await?;
        let runs_seconds = runs_started.elapsed().as_secs_f64();

        let scoring_started = Instant::now();
        let (baselines, rows) = self.score(&scenario.name, &train, train_orders, &arms);
        Ok(ScenarioOutcome {
            rows,
            baselines,
            timing: ScenarioTiming {
                scenario: scenario.name.clone(),
                prepare_seconds,
                runs_seconds,
                scoring_seconds: scoring_started.elapsed().as_secs_f64(),
            },
        })
    }

    /// A scenario's baselines from its training orders, then each arm's row: the
    /// bootstrap draws every arm's intervals on the same resamples.
    fn score(
        &self,
        scenario: &str,
        train: &[Vec<u32>],
        train_orders: usize,
        arms: &Arms,
    ) -> (ScenarioBaselines, Vec<VariantScenario>) {
        let options = self.options;
        // Baselines from the scenario's training orders; random sets of the sizes
        // every arm published.
        let pooled: Vec<NeedSet> = arms
            .arms
            .iter()
            .flat_map(|a| a.sets.picks.clone())
            .collect();
        let counted = eval::training_pairs(train, self.data.products.len());
        let b = eval::baselines(
            self.holdout,
            train,
            &counted,
            &pooled,
            options.k,
            options.seed,
        );
        let baselines = ScenarioBaselines {
            orders: train_orders,
            random: b.random,
            random_by_pick: b.random_by_pick,
            top_count_pairs: b.top_count_pairs,
            top_lift_pairs: b.top_lift_pairs,
        };
        let top_pairs: HashSet<(u32, u32)> = eval::top_count_pairs(&counted, options.k)
            .into_iter()
            .map(|p| (p[0].min(p[1]), p[0].max(p[1])))
            .collect();
        drop(counted);
        let measured = Measured {
            anchors: anchors(train, self.holdout),
            top_pairs,
            boot: paired_bootstrap(self.holdout, arms, options),
        };
        let rows = arms
            .arms
            .iter()
            .enumerate()
            .map(|(a, arm)| {
                variant_scenario(
                    self.holdout,
                    &arms.units,
                    arm,
                    (a, self.control),
                    &measured,
                    (scenario, train_orders),
                    self.data.store.currency,
                )
            })
            .collect();
        (baselines, rows)
    }
}

/// Each variant's report: how it is configured, and its row of every scenario.
fn variant_reports(
    variants: &[CohortVariant],
    per_variant: Vec<Vec<VariantScenario>>,
) -> Vec<VariantReport> {
    variants
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
        .collect()
}

/// Every variant over one context, `concurrent_runs` at a time (much of a run's CPU
/// work keeps one core busy), in order; `started` hears each variant's position and
/// name as its turn comes.
async fn run_arms(
    services: &Services,
    ctx: &std::sync::Arc<Context>,
    split: &HoldoutSplit<'_>,
    holdout: &Holdout,
    variants: &[CohortVariant],
    options: &CohortOptions,
    started: impl Fn(usize, &str),
) -> Result<Arms, CohortsError> {
    let never = CancelToken::never();
    let runs = futures_util::stream::iter(variants.iter().map(|v| {
        let never = &never;
        async move {
            let t = Instant::now();
            let out =
                pipeline::run(ctx, &v.variant(options.seed), services, &NoObserver, never).await;
            (out, t.elapsed().as_secs_f64())
        }
    }))
    .buffered(options.concurrent_runs.max(1));
    futures_util::pin_mut!(runs);
    let mut arms = Vec::with_capacity(variants.len());
    let mut units: Vec<PreparedSet> = Vec::new();
    let mut unit_of: HashMap<Vec<u32>, usize> = HashMap::new();
    for (i, v) in variants.iter().enumerate() {
        started(i, &v.name);
        let Some((out, seconds)) = runs.next().await else {
            break;
        };
        let out = out?;
        let sets = split.run_sets(&out.bundles);
        let mut members = Vec::new();
        for (i, set) in sets.sets.iter().enumerate() {
            if let Some(p) = holdout.prepare(&(set.clone(), None)) {
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
            weights: [w.alpha, w.beta, w.gamma],
            seconds,
        });
    }
    Ok(Arms { arms, units })
}

/// The paired bootstrap: every arm on the same draws of orders and of sets.
fn paired_bootstrap(holdout: &Holdout, arms: &Arms, options: &CohortOptions) -> Bootstrapped {
    let units = &arms.units;
    let products: HashSet<u32> = units
        .iter()
        .flat_map(|s| s.products.iter().copied())
        .collect();
    let members: Vec<Vec<usize>> = arms
        .arms
        .iter()
        .map(|a| a.members.iter().map(|&(u, _)| u).collect())
        .collect();
    // Each arm's units with how often a draw took them (once each on the orders as
    // they are).
    let stats = |scores: &[(u64, f64)], times: Option<&[u32]>| -> Vec<Option<[f64; 3]>> {
        members
            .iter()
            .map(|m| {
                eval::rates(
                    m.iter()
                        .map(|&u| (scores[u], times.map_or(1, |t| t[u] as usize))),
                )
            })
            .collect()
    };
    let full = Weighting::drawn(holdout, vec![1; holdout.len()], &products);
    let full_scores = full.scores(units);
    let points = stats(&full_scores, None)
        .into_iter()
        .map(|p| p.unwrap_or([0.0; 3]))
        .collect();
    let mut draws: Vec<Vec<Option<[f64; 3]>>> =
        vec![Vec::with_capacity(options.resamples); members.len()];
    let mut rng = Stream::new(Purpose::CohortResamples, options.seed);
    for _ in 0..options.resamples {
        let orders = eval::draw(holdout.len(), &mut rng);
        let times = eval::draw(units.len(), &mut rng);
        let scores = Weighting::drawn(holdout, orders, &products).scores(units);
        for (a, value) in stats(&scores, Some(&times)).into_iter().enumerate() {
            draws[a].push(value);
        }
    }
    Bootstrapped {
        points,
        draws,
        full_scores,
    }
}

/// What a scenario's arms are measured against besides the held-out orders.
struct Measured {
    anchors: Vec<(u32, HashSet<u32>)>,
    /// The top-K training pairs by count (what novelty is measured against).
    top_pairs: HashSet<(u32, u32)>,
    boot: Bootstrapped,
}

/// One arm's row for one scenario: its scores, recall, novelty, the margin of its
/// hits, its intervals and its paired difference from the control.
fn variant_scenario(
    holdout: &Holdout,
    units: &[PreparedSet],
    arm: &Arm,
    (a, control): (usize, usize),
    measured: &Measured,
    (scenario, train_orders): (&str, usize),
    store_currency: domain::Currency,
) -> VariantScenario {
    let boot = &measured.boot;
    let interval =
        |m: usize| eval::percentiles(boot.draws[a].iter().flatten().map(|s| s[m]).collect());
    let difference = |m: usize| Difference {
        difference: boot.points[a][m] - boot.points[control][m],
        interval: eval::percentiles(
            boot.draws[a]
                .iter()
                .zip(&boot.draws[control])
                .filter_map(|(x, c)| Some(x.as_ref()?[m] - c.as_ref()?[m]))
                .collect(),
        ),
    };
    let scores = eval::score_sets(holdout, &arm.sets.sets);
    let hits: Vec<(usize, &PreparedSet)> = arm
        .members
        .iter()
        .filter(|&&(u, _)| eval::is_hit(boot.full_scores[u].0))
        .map(|&(u, i)| (i, &units[u]))
        .collect();
    let novel_hits = hits
        .iter()
        .filter(|(_, s)| pairs(&s.products).any(|p| !measured.top_pairs.contains(&p)))
        .count();
    VariantScenario {
        name: scenario.to_owned(),
        orders: train_orders,
        weights: arm.weights,
        bundles: scores.bundles,
        hit: scores.hit,
        strong_hit: scores.strong_hit,
        median_lift: scores.median_lift,
        products: scores.products,
        by_pick: eval::score_sets_at_least(holdout, &arm.sets.picks),
        recall_at: recall_at(&measured.anchors, &arm.sets.sets),
        novelty: if hits.is_empty() {
            0.0
        } else {
            novel_hits as f64 / hits.len() as f64
        },
        novel_hits,
        hit_margin: hit_margin(arm, &hits, store_currency),
        intervals: Intervals {
            hit: interval(0),
            strong_hit: interval(1),
            median_lift: interval(2),
        },
        vs_control: VsControl {
            hit: difference(0),
            strong_hit: difference(1),
            median_lift: difference(2),
        },
        seconds: arm.seconds,
    }
}

/// The expected margin of an arm's hitting bundles (`hits`: their positions).
fn hit_margin(
    arm: &Arm,
    hits: &[(usize, &PreparedSet)],
    store_currency: domain::Currency,
) -> HitMargin {
    let currency = arm.bundles.first().map_or(store_currency, |b| b.currency);
    let total_minor: i64 = hits
        .iter()
        .map(|(i, _)| arm.bundles[*i].expected_margin_minor)
        .sum();
    let assumed = hits
        .iter()
        .filter(|(i, _)| arm.bundles[*i].cost_assumed)
        .count();
    HitMargin {
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
    }
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
