//! Phase 2: from scored candidates to the bundles a run publishes. Deduplication
//! ([`dedup`]), the safety guard ([`safety`]), a Bayesian price per candidate
//! ([`pricing`]), the Pareto front over expected revenue, expected margin, clearance
//! value, confidence and novelty ([`pareto`]), then the choice of `max_bundles` by front
//! rank and score, spread over objectives and bundle types with at most
//! `max_per_product` bundles per product and `max_per_objective` per objective. The
//! chosen bundles get the model's price advice (batched) and their final price: the
//! Bayesian discount blended with the advice, clamped to the objective's range and the
//! margin floor.

pub mod dedup;
pub mod pareto;
pub mod pricing;
pub mod safety;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::context::Context;
use super::document::{bundle_doc, bundle_id};
use super::economics::{list_and_cost, units};
use super::error::PipelineError;
use super::evidence::Verdict;
use super::model::{Candidate, DataTag, Demand, FinalPrice, Offer};
use super::observe::{Phase, PhaseScope, RunObserver, TaskTiming, blocking};
use crate::cancel::CancelToken;
use crate::config::OptimizeSettings;
use crate::domain::BundleType;
use crate::llm::gateway::Gateway;
use crate::store_rules::RuleBroken;
pub use safety::Rejection;

/// What phase 2 did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OptimizeReport {
    pub candidates: usize,
    pub duplicates_merged: usize,
    pub rejected: BTreeMap<String, usize>,
    pub priced: usize,
    pub pareto_front: usize,
    pub published: usize,
    /// How much larger the store's discounted orders are than its full-price ones
    /// (scales the price response; 1 without enough discounted orders).
    pub discount_uplift: f64,
    /// Pins the guard dropped, by product set (reported under `run.store_rules`).
    #[serde(skip)]
    pub pin_rejections: Vec<(Vec<u32>, Rejection)>,
}

fn reject(report: &mut OptimizeReport, r: Rejection) {
    let key = serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    *report.rejected.entry(key).or_default() += 1;
}

/// How much more the store's discounted orders hold than its full-price ones: the
/// price response is scaled by it (clamped to 0.5–2) when at least 30 orders carry a
/// discount.
pub fn discount_uplift(ctx: &Context) -> f64 {
    let (mut with, mut with_lines, mut without, mut without_lines) = (0u64, 0u64, 0u64, 0u64);
    for o in ctx.data.orders.iter().filter(|o| o.created_at <= ctx.as_of) {
        let lines = o.lines.len() as u64;
        if o.lines.iter().any(|l| l.discount_minor > 0) {
            with += 1;
            with_lines += lines;
        } else {
            without += 1;
            without_lines += lines;
        }
    }
    if with < 30 || without == 0 || without_lines == 0 {
        return 1.0;
    }
    let ratio = (with_lines as f64 / with as f64) / (without_lines as f64 / without as f64);
    ratio.clamp(0.5, 2.0)
}

/// See [`Offer::gets_minor`].
fn gets_minor(ctx: &Context, c: &Candidate) -> Option<i64> {
    if !matches!(c.bundle_type, BundleType::Bogo | BundleType::Addon) {
        return None;
    }
    let products = &c.draft.products;
    Some(match products.as_slice() {
        [one] => ctx.product(*one).price.minor,
        _ => products[1..]
            .iter()
            .zip(&c.draft.quantities[1..])
            .map(|(&i, &q)| ctx.product(i).price.minor * i64::from(q))
            .sum(),
    })
}

/// The largest discount every way of buying the bundle allows under the floor: for mix
/// & match each item on its own (a shopper may pick the thinnest margins), else the
/// bundle as a whole.
fn floor_max(ctx: &Context, c: &Candidate, list: i64, cost: i64, floor: f64) -> Option<u32> {
    if c.bundle_type == BundleType::MixMatch {
        c.draft
            .products
            .iter()
            .map(|&i| {
                pricing::max_discount_for_floor(
                    ctx.product(i).price.minor,
                    ctx.signals[i as usize].unit_cost_minor,
                    floor,
                )
            })
            .try_fold(u32::MAX, |m, d| d.map(|d| m.min(d)))
    } else {
        pricing::max_discount_for_floor(list, cost, floor)
    }
}

/// Counts a rejection and, for a merchant's pin, keeps it for the report.
fn reject_candidate(report: &mut OptimizeReport, c: &Candidate, r: Rejection) {
    reject(report, r);
    if c.pinned {
        report.pin_rejections.push((c.draft.products.clone(), r));
    }
}

/// The discounts a candidate may get: the objective's range under the merchant's
/// ceiling, that ceiling when it binds, the largest discount allowed, and what the
/// shopper gets (a BOGO's or add-on's).
struct Bounds {
    range: (u32, u32),
    ceiling: Option<u32>,
    floor_max: u32,
    gets_minor: Option<i64>,
}

/// A candidate's discount bounds; `None` (the rejection counted) when the margin floor
/// or what the shopper gets leaves no discount in the objective's range.
fn discount_bounds(
    ctx: &Context,
    s: &OptimizeSettings,
    c: &Candidate,
    list: i64,
    cost: i64,
    report: &mut OptimizeReport,
) -> Option<Bounds> {
    let objective_range = s.range(c.objective);
    let range = ctx.rules.ceiling(objective_range);
    let ceiling = ctx
        .rules
        .max_discount_pct
        .filter(|_| range != objective_range);
    let Some(floor_max) =
        floor_max(ctx, c, list, cost, s.margin_floor_pct).filter(|&m| m >= range.0)
    else {
        reject_candidate(report, c, Rejection::MarginFloor);
        return None;
    };
    // A BOGO or add-on is stated as a percentage off what the shopper gets: its
    // discount can be at most all of that (a BOGO's "second one free"), and an
    // add-on's at most `addon_max_gets_pct` of it, so it reads as a deal on the
    // add-on, not a gift the bundle gives away.
    let gets_minor = gets_minor(ctx, c);
    let gets_share = match c.bundle_type {
        BundleType::Addon => i128::from(s.addon_max_gets_pct.min(100)),
        _ => 100,
    };
    let floor_max = match gets_minor {
        Some(g) => {
            let most = (range.0..=floor_max).rev().find(|&d| {
                i128::from(list - pricing::price_at(list, d)) * 100 <= i128::from(g) * gets_share
            });
            let Some(most) = most else {
                reject_candidate(report, c, Rejection::GetsTooSmall);
                return None;
            };
            most
        }
        None => floor_max,
    };
    Some(Bounds {
        range,
        ceiling,
        floor_max,
        gets_minor,
    })
}

/// The candidate's demand model. Trials: orders holding the anchor; successes: orders
/// already holding the whole set (or, for one product, buying it again or in
/// multiples).
fn demand_of(ctx: &Context, c: &Candidate, conversion_prior: [f64; 2], elasticity: f64) -> Demand {
    let anchor = c.draft.products[0];
    let trials = f64::from(ctx.item_count(anchor));
    let successes = match (&c.co_purchase, c.draft.products.len()) {
        (Some(cp), n) if n >= 2 => f64::from(cp.count),
        _ => ctx.signals[anchor as usize].repeat_rate * trials,
    };
    Demand::new(conversion_prior, successes, trials, elasticity)
}

/// The candidate's point on the Pareto objectives at its price: expected revenue,
/// expected margin, clearance value, confidence and novelty.
fn pareto_point(
    ctx: &Context,
    c: &Candidate,
    units: &[u32],
    take: f64,
    price: i64,
    cost: i64,
) -> Vec<f64> {
    let clearance_units: u32 = c
        .draft
        .products
        .iter()
        .zip(units)
        .filter(|&(&i, _)| {
            let t = &ctx.signals[i as usize];
            t.has(DataTag::SlowMover) || t.has(DataTag::Overstock)
        })
        .map(|(_, &u)| u)
        .sum();
    let novelty = match &c.co_purchase {
        Some(cp) if c.draft.products.len() >= 2 => {
            1.0 - f64::from(cp.count) / (f64::from(cp.count) + ctx.support_half)
        }
        _ => 0.0,
    };
    vec![
        take * price as f64,
        take * (price - cost) as f64,
        take * f64::from(clearance_units),
        c.score.transactional,
        novelty,
    ]
}

/// A candidate through the merchant's rules, the safety guard and its discount bounds,
/// priced (Bayesian) and placed on the Pareto objectives; `None` when rejected (counted
/// in the report).
fn price_candidate(
    ctx: &Context,
    s: &OptimizeSettings,
    elasticity: f64,
    c: Candidate,
    report: &mut OptimizeReport,
) -> Option<Offer> {
    if let Some(broken) = ctx.rules.breaks(&c.draft.products) {
        reject(
            report,
            match broken {
                RuleBroken::NeverProduct => Rejection::NeverBundle,
                RuleBroken::NeverPair => Rejection::NeverTogether,
            },
        );
        return None;
    }
    let units = units(&c);
    let stock = match safety::check_products(ctx, &c.draft.products, &units) {
        Ok(s) => s,
        Err(r) => {
            reject_candidate(report, &c, r);
            return None;
        }
    };
    let (list, cost, cost_assumed) = list_and_cost(ctx, &c);
    let Bounds {
        range,
        ceiling,
        floor_max,
        gets_minor,
    } = discount_bounds(ctx, s, &c, list, cost, report)?;
    let hi = range.1.min(floor_max);
    let demand = demand_of(ctx, &c, s.conversion_prior, elasticity);
    let bayesian_pct = pricing::bayesian_discount(&demand, list, cost, range.0, hi);
    let price = pricing::price_at(list, bayesian_pct);
    let take = demand.take_rate(f64::from(bayesian_pct));
    let objectives = pareto_point(ctx, &c, &units, take, price, cost);
    Some(Offer {
        candidate: c,
        units,
        list_minor: list,
        cost_minor: cost,
        cost_assumed,
        inventory_untracked: stock.untracked,
        range,
        ceiling,
        floor_max,
        demand,
        bayesian_pct,
        gets_minor,
        objectives,
        pareto_rank: 0,
        crowding: 0.0,
    })
}

/// Dedup, guard, Bayesian prices and Pareto ranks for every candidate; then the
/// published selection (best first).
pub fn optimize(
    ctx: &Context,
    candidates: Vec<Candidate>,
    s: &OptimizeSettings,
) -> (Vec<Offer>, OptimizeReport) {
    let mut report = OptimizeReport {
        candidates: candidates.len(),
        discount_uplift: discount_uplift(ctx),
        ..OptimizeReport::default()
    };
    let keys = dedup::SetKeys::new(ctx);
    let (mut kept, mut merged) = dedup::dedup(candidates, s.near_duplicate_jaccard, &keys);
    if !s.type_variants {
        let price = |i: u32| ctx.product(i).price.minor;
        let across;
        (kept, across) = dedup::one_type_per_set(kept, s.near_duplicate_jaccard, &keys, price);
        merged += across;
    }
    report.duplicates_merged = merged;
    let elasticity = s.elasticity * report.discount_uplift;

    let mut offers: Vec<Offer> = Vec::new();
    for c in kept {
        if let Some(offer) = price_candidate(ctx, s, elasticity, c, &mut report) {
            offers.push(offer);
        }
    }
    report.priced = offers.len();
    let points: Vec<Vec<f64>> = offers.iter().map(|o| o.objectives.clone()).collect();
    let ranks = pareto::ranks(&points);
    let crowding = pareto::crowding(&points, &ranks);
    for (o, (r, c)) in offers.iter_mut().zip(ranks.into_iter().zip(crowding)) {
        o.pareto_rank = r;
        o.crowding = c;
    }
    report.pareto_front = offers.iter().filter(|o| o.pareto_rank == 1).count();
    // Where the orders show little or no structure, a run spreads over the objectives
    // and does not fill their slots with more of the same.
    let thin = ctx.store_evidence.verdict != Verdict::Strong;
    let selected = select(offers, s, thin, &mut report);
    report.published = selected.len();
    (selected, report)
}

/// `max_bundles` offers: the merchant's pins that are still valid, then by front rank,
/// score and crowding: first the best of
/// every objective × type cell (so the run spreads), then the rest in order with at
/// most `max_per_objective` per objective, then — slots left, and every objective's
/// share taken or its candidates spent — the rest from any objective. A product at its
/// cap is always skipped. `thin` (the orders show little or no structure): half the
/// slots, so such a run publishes fewer.
fn select(
    mut offers: Vec<Offer>,
    s: &OptimizeSettings,
    thin: bool,
    report: &mut OptimizeReport,
) -> Vec<Offer> {
    offers.sort_by(|a, b| {
        a.pareto_rank
            .cmp(&b.pareto_rank)
            .then(b.candidate.score.total.total_cmp(&a.candidate.score.total))
            .then(b.crowding.total_cmp(&a.crowding))
            .then_with(|| a.candidate.draft.products.cmp(&b.candidate.draft.products))
    });
    // The per-objective cap spreads a run; objectives with nothing to publish leave
    // their share to those that have (the cap divides by those).
    let active: std::collections::HashSet<_> =
        offers.iter().map(|o| o.candidate.objective).collect();
    // Thin evidence: half the slots (meaning alone supports fewer offers well).
    let max_bundles = if thin {
        s.max_bundles.div_ceil(2)
    } else {
        s.max_bundles
    };
    let objective_cap = s
        .max_per_objective
        .max(max_bundles.div_ceil(active.len().max(1)));
    let mut per_product: HashMap<u32, usize> = HashMap::new();
    let mut per_objective: HashMap<&'static str, usize> = HashMap::new();
    let mut taken = vec![false; offers.len()];
    let mut order: Vec<usize> = Vec::new();
    let mut cells_seen = std::collections::HashSet::new();
    // The merchant's pins first, whatever the caps.
    for (k, o) in offers.iter().enumerate() {
        if o.candidate.pinned && order.len() < max_bundles {
            taken[k] = true;
            order.push(k);
            for &p in &o.candidate.draft.products {
                *per_product.entry(p).or_default() += 1;
            }
            *per_objective
                .entry(o.candidate.objective.as_str())
                .or_default() += 1;
        }
    }
    for pass in 0..3 {
        for (k, o) in offers.iter().enumerate() {
            if order.len() >= max_bundles || taken[k] {
                continue;
            }
            let c = &o.candidate;
            let cell = (c.objective, c.bundle_type);
            if pass == 0 && cells_seen.contains(&cell) {
                continue;
            }
            if c.draft
                .products
                .iter()
                .any(|p| per_product.get(p).copied().unwrap_or(0) >= s.max_per_product)
            {
                if pass == 2 {
                    reject(report, Rejection::ProductCap);
                }
                continue;
            }
            let nested = |other: &[u32]| {
                let (small, large) = if other.len() < c.draft.products.len() {
                    (other, c.draft.products.as_slice())
                } else {
                    (c.draft.products.as_slice(), other)
                };
                small.len() >= 2 && small.iter().all(|p| large.contains(p))
            };
            if order
                .iter()
                .any(|&j| nested(&offers[j].candidate.draft.products))
            {
                if pass == 2 {
                    reject(report, Rejection::NestedSet);
                }
                continue;
            }
            if pass < 2
                && per_objective
                    .get(c.objective.as_str())
                    .copied()
                    .unwrap_or(0)
                    >= objective_cap
            {
                continue;
            }
            cells_seen.insert(cell);
            taken[k] = true;
            order.push(k);
            for &p in &c.draft.products {
                *per_product.entry(p).or_default() += 1;
            }
            *per_objective.entry(c.objective.as_str()).or_default() += 1;
        }
    }
    order.sort_unstable();
    let mut slots: Vec<Option<Offer>> = offers.into_iter().map(Some).collect();
    order.into_iter().filter_map(|k| slots[k].take()).collect()
}

/// What phase 2 chose and priced.
pub struct Priced {
    /// The published selection, best first.
    pub offers: Vec<Offer>,
    /// Their final prices, in the same order.
    pub prices: Vec<FinalPrice>,
    pub report: OptimizeReport,
    pub timings: Vec<TaskTiming>,
}

/// Phase 2: dedup, guard, Bayesian prices, Pareto front and the published choice on a
/// blocking thread; then the model's price advice for the chosen and their final
/// prices.
pub async fn run(
    ctx: &Arc<Context>,
    candidates: Vec<Candidate>,
    s: &OptimizeSettings,
    gateway: &Gateway,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<Priced, PipelineError> {
    let phase = PhaseScope::start(observer, Phase::Optimize, None);
    let started = ctx.clock.ms();
    let (job_ctx, job_settings) = (ctx.clone(), s.clone());
    let (offers, report) = blocking(
        cancel,
        move |_, _| optimize(&job_ctx, candidates, &job_settings),
        |_| {},
    )
    .await?;
    let optimize_timing = ctx.clock.span("optimize", "dedup_guard_pareto", started);
    cancel.check()?;

    let started = ctx.clock.ms();
    let ids: Vec<String> = offers.iter().map(|o| bundle_id(ctx, o)).collect();
    let docs: Vec<_> = offers
        .iter()
        .zip(&ids)
        .map(|(o, id)| bundle_doc(ctx, id, o, None, None))
        .collect();
    let total = offers.len() as u64;
    let advice = cancel
        .guard(gateway.advise_price_with(&docs, &|done, _| {
            phase.progress(done, total);
        }))
        .await??;
    let prices: Vec<FinalPrice> = offers
        .iter()
        .zip(&advice)
        .map(|(o, a)| pricing::final_price(o, Some(a), s))
        .collect();
    let pricing_timing = ctx.clock.span("optimize", "price_advice", started);
    phase.finish(vec![
        ("candidates", report.candidates as u64),
        ("priced", report.priced as u64),
        ("published", offers.len() as u64),
    ]);
    Ok(Priced {
        offers,
        prices,
        report,
        timings: vec![optimize_timing, pricing_timing],
    })
}
