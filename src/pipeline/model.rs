//! The engine's shared vocabulary, below every phase: what phase 0 knows of a product
//! ([`ProductSignals`], [`DataTag`]), what phase 1 proposes and scores ([`Draft`],
//! [`Candidate`], [`Source`], [`CoPurchase`]), and what phase 2 hands to phase 3
//! ([`Offer`], [`FinalPrice`]). Plain data: the phases that fill these in import them
//! from here, never from each other.

use std::collections::BTreeSet;

use serde::Serialize;

pub use crate::domain::similarity::{ALIKE, NEAR_COPY, RELATED};
use crate::domain::{BundleType, Justification, Objective, ScoreBreakdown, TextSource};

/// Data-derived product tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataTag {
    Bestseller,
    SlowMover,
    Overstock,
    NewLaunch,
    HighMargin,
    Consumable,
}

/// What the engine knows of one product at `as_of`.
#[derive(Debug, Clone)]
pub struct ProductSignals {
    pub units_window: i64,
    /// Units a day over the window.
    pub velocity: f64,
    /// `None` when inventory is not tracked.
    pub days_of_cover: Option<f64>,
    pub unit_cost_minor: i64,
    pub cost_assumed: bool,
    /// Price − cost, in minor units.
    pub unit_margin_minor: i64,
    pub age_days: Option<i64>,
    /// Share of the product's buyers who bought it in two or more orders (customers
    /// known), else of its orders with two or more units.
    pub repeat_rate: f64,
    /// Orders that contain it (before `as_of`).
    pub orders: u32,
    /// Of those, orders with two or more units of it.
    pub multi_unit_orders: u32,
    /// May appear in a bundle: active, not a gift card, not a restricted category.
    pub eligible: bool,
    pub data_tags: Vec<DataTag>,
    /// The model's (or the offline provider's) objectives for it.
    pub objectives: Vec<Objective>,
}

impl ProductSignals {
    pub fn has(&self, tag: DataTag) -> bool {
        self.data_tags.contains(&tag)
    }
}

/// Where a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Pair counts: the products are bought together.
    Pairs,
    /// A frequent itemset of three or four products.
    Itemsets,
    /// Embedding neighbours.
    Neighbours,
    /// One product, bought again or in multiples.
    Repeats,
    /// The language model's (or offline provider's) proposal.
    Llm,
    /// The merchant pinned it (see [`crate::store_rules`]).
    Pinned,
}

/// A product set a generator proposes, before scoring.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Product indices, anchor first.
    pub products: Vec<u32>,
    pub quantities: Vec<u32>,
    /// Mix & match: how many of the group the shopper picks.
    pub pick: Option<u32>,
    /// Volume: the quantity tiers.
    pub tiers: Vec<u32>,
    pub sources: BTreeSet<Source>,
    pub llm_reason: Option<String>,
    /// Who proposed the very set, when a model (or the offline provider) did.
    pub proposed_by: Option<TextSource>,
}

impl Draft {
    pub fn new(products: Vec<u32>, source: Source) -> Draft {
        let quantities = vec![1; products.len()];
        Draft {
            products,
            quantities,
            pick: None,
            tiers: Vec::new(),
            sources: BTreeSet::from([source]),
            llm_reason: None,
            proposed_by: None,
        }
    }
}

/// Co-purchase statistics of a pair or itemset behind a candidate.
#[derive(Debug, Clone, Serialize)]
pub struct RuleEvidence {
    pub products: Vec<String>,
    pub count: u32,
    pub expected: f64,
    pub lift: f64,
    pub shrunk_lift: f64,
    /// Confidence of "first product → the rest": count ÷ orders of the first.
    pub confidence: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NeighbourEvidence {
    pub product_id: String,
    pub neighbour_id: String,
    pub score: f32,
}

/// A scored candidate with its provenance.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub objective: Objective,
    pub bundle_type: BundleType,
    pub draft: Draft,
    pub co_purchase: Option<CoPurchase>,
    pub rules: Vec<RuleEvidence>,
    pub neighbours: Vec<NeighbourEvidence>,
    pub score: ScoreBreakdown,
    /// Why it may be published (see [`crate::pipeline::justify`]).
    pub justification: Vec<Justification>,
    /// The merchant pinned it: published ahead of the rest while valid.
    pub pinned: bool,
}

/// What co-purchase data says about a set of products.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoPurchase {
    /// Orders with every product of the set (0 when not counted).
    pub count: u32,
    /// What independence predicts.
    pub expected: f64,
    /// count / expected (0 when nothing is expected).
    pub lift: f64,
    /// (count + κ) / (expected + κ).
    pub shrunk_lift: f64,
}

pub fn co_purchase(count: u32, item_counts: &[u32], baskets: u64, prior: f64) -> CoPurchase {
    let (expected, lift) = crate::rules::set_lift(
        u64::from(count),
        item_counts.iter().map(|&c| u64::from(c)),
        baskets,
    );
    CoPurchase {
        count,
        expected,
        lift,
        shrunk_lift: (f64::from(count) + prior) / (expected + prior),
    }
}

/// A candidate that passed the guard, with its economics at the Bayesian price.
#[derive(Debug, Clone)]
pub struct Offer {
    pub candidate: Candidate,
    /// Units of each product the bundle sells at its list price.
    pub units: Vec<u32>,
    pub list_minor: i64,
    pub cost_minor: i64,
    pub cost_assumed: bool,
    pub inventory_untracked: bool,
    /// The objective's range, whole percent, under the store's ceiling.
    pub range: (u32, u32),
    /// The store's discount ceiling when it narrowed the range.
    pub ceiling: Option<u32>,
    /// The largest discount the margin floor allows (≥ range.0); for a BOGO or
    /// add-on also at most what the shopper gets is worth.
    pub floor_max: u32,
    pub demand: Demand,
    pub bayesian_pct: u32,
    /// BOGO and add-on: the list value of what the shopper gets at the offer's
    /// percentage (the second unit of one product, else every product after the
    /// first). The offer is stated as that percentage off that value.
    pub gets_minor: Option<i64>,
    /// Expected revenue, expected margin, clearance value, confidence, novelty.
    pub objectives: Vec<f64>,
    pub pareto_rank: u32,
    pub crowding: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The demand model of one bundle.
#[derive(Debug, Clone, Copy)]
pub struct Demand {
    /// Posterior mean take rate at no discount.
    pub base: f64,
    /// Logit change per percent point of discount.
    pub elasticity: f64,
}

impl Demand {
    /// Beta(a, b) prior updated with s successes in n trials.
    pub fn new(prior: [f64; 2], successes: f64, trials: f64, elasticity: f64) -> Demand {
        let s = successes.clamp(0.0, trials.max(0.0));
        let base = (prior[0] + s) / (prior[0] + prior[1] + trials.max(0.0));
        Demand {
            base: base.clamp(1e-6, 1.0 - 1e-6),
            elasticity,
        }
    }

    pub fn take_rate(&self, discount_pct: f64) -> f64 {
        let logit = (self.base / (1.0 - self.base)).ln();
        sigmoid(logit + self.elasticity * discount_pct)
    }
}

/// The final price of an offer: the Bayesian discount blended with the model's
/// suggestion (the middle of its range), clamped to the objective's range and the
/// margin floor, with the reason.
#[derive(Debug, Clone)]
pub struct FinalPrice {
    pub discount_pct: u32,
    pub final_minor: i64,
    /// BOGO and add-on: the whole percentage off what the shopper gets, which the copy
    /// states and the Shopify discount applies; `final_minor` is exactly that offer.
    pub gets_pct: Option<u32>,
    pub llm_pct: Option<f64>,
    pub reason: String,
    pub source: TextSource,
}
