//! Why a candidate may be published. Every published bundle carries a non-empty list
//! of [`Justification`]s — checkable numbers, never a score — and a candidate without
//! one is left out, with its reason counted ([`LeftOut`]). The rules:
//!
//! - **Two or more products** (fixed, add-on, BOGO with a partner): a pair by one of
//!   these; three or four products by a reason for the whole set (a frequent itemset,
//!   or a model's proposal), since pairs that each go with the anchor are rarely
//!   bought all together:
//!   - `co_purchase`: orders hold them together, shrunk lift ≥ `quality.min_shrunk_lift`
//!     (a frequent itemset holding the whole set covers every partner at once); a
//!     partner unrelated to the anchor in meaning and category needs a count chance
//!     reaches with probability ≤ `quality.unrelated_max_p`;
//!   - `complement`: two kinds that go together ([`kinds_link`]) and the pair itself
//!     bought together at least as often as chance predicts (a store without orders
//!     predicts nothing): orders holding both categories at a shrunk lift ≥
//!     `quality.min_category_lift` (source `store`, products related in meaning:
//!     cosine in [`RELATED`], [`NEAR_COPY`]); where they can't tell, the complement
//!     prior (`prior`); failing both, categories a configured model named (`model`);
//!   - `proposal`: a configured language model proposed the set and the orders don't
//!     contradict it (the offline provider's proposals are heuristics, not knowledge:
//!     they need evidence of their own).
//! - **Mix & match**: `alike` — 3 to 6 products, `pick` smaller than the group, one
//!   category, each product the first one's variant or near it in meaning (cosine ≥
//!   [`ALIKE`]), no two with the same normalised title (sizes of one product are one
//!   title: nobody buys three sizes), the dearest at most `quality.price_band` × the
//!   cheapest.
//! - **One product** (volume, BOGO of the same product): `multiples` — orders with two or
//!   more units, or buyers coming back.
//! - **Multi-unit offers** (mix & match, volume, BOGO of one product) are never made on
//!   what shoppers buy one of: products whose orders never hold two, or high-ticket
//!   products (`quality.high_ticket_ratio` × the median price) without orders showing
//!   otherwise.
//!
//! Then the objective's own evidence (`quality.evidence`): only the kinds it lists
//! count, so "bought together" objectives need orders, not meaning alone.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::candidates::scoring::{CoPurchase, NEAR_COPY};
use super::candidates::{ALIKE, Draft, RELATED, set_co_purchase};
use super::context::{Context, DataTag};
use crate::config::QualitySettings;
use crate::domain::{BundleType, Justification, JustificationKind, Objective, Product, TextSource};
use crate::prior::PriorSupport;
use crate::store::StoreData;

/// Orders from at least this many products' worth of evidence say "bought one at a
/// time" when none holds two.
const ONE_AT_A_TIME_ORDERS: u32 = 5;
/// Share of a product's orders with several units (or of its buyers coming back) from
/// which the generators try a multi-unit offer on it.
pub const MULTIPLES: f64 = 0.1;
/// The share that justifies one: orders (or buyers) taking several, shrunk toward none
/// by the store's `prior_count` — two of eight is not yet a habit.
const MULTI_UNIT_SHARE: f64 = 0.15;
/// Orders predicting at least this many co-purchases, and fewer than half of them
/// seen, contradict a pairing.
const CONTRADICTED_EXPECTED: f64 = 5.0;
/// Where the store's orders show structure, a complement must have been bought together
/// this often.
const COMPLEMENT_SEEN: u32 = 2;

/// Why a candidate is not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOut {
    /// Neither orders, nor meaning with category evidence, nor a model support it.
    Unjustified,
    /// Justified, but not by the kinds of evidence its objective needs.
    ObjectiveEvidence,
    /// A mix & match group that is not one kind of thing in one price band.
    NotAlike,
    /// A multi-unit offer on products shoppers buy one of.
    BoughtOneAtATime,
    /// A set holding one product twice (two sizes or colours of it).
    RepeatedProduct,
    /// Score under `quality.min_score`.
    BelowMinScore,
}

impl LeftOut {
    pub fn as_str(self) -> &'static str {
        match self {
            LeftOut::Unjustified => "unjustified",
            LeftOut::ObjectiveEvidence => "objective_evidence",
            LeftOut::NotAlike => "not_alike",
            LeftOut::BoughtOneAtATime => "bought_one_at_a_time",
            LeftOut::RepeatedProduct => "repeated_product",
            LeftOut::BelowMinScore => "below_min_score",
        }
    }
}

/// How much the store's orders say about what goes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Clear co-purchase structure: the orders are the evidence, and meaning alone
    /// (a complement, an alike group) does not justify a bundle they say nothing for.
    Strong,
    /// Some orders, little structure: meaning carries where orders can't.
    Weak,
    /// No orders to learn from, or none bought together beyond chance.
    None,
}

/// The evidence verdict and its numbers (`run.evidence`).
#[derive(Debug, Clone, Serialize)]
pub struct StoreEvidence {
    /// Pairs bought together at least [`EVIDENCE_MIN_COUNT`] times at lift ≥ 2.
    pub pairs: usize,
    /// The median lift of the best [`EVIDENCE_TOP`] of them (0 without any).
    pub median_top_lift: f64,
    /// Pairs bought together more often than chance explains across all the pairs
    /// the orders hold (Poisson, Bonferroni at 5 %): none means no structure at all.
    pub significant_pairs: usize,
    pub verdict: Verdict,
}

pub const EVIDENCE_MIN_COUNT: u32 = 5;
pub const EVIDENCE_TOP: usize = 10;
/// Strong: this many such pairs, whose best reach this median lift. Chance alone gives
/// a store a few pairs just over 2 (popular products meet); planted or real structure
/// gives pairs far above it.
const STRONG_PAIRS: usize = 5;
const STRONG_MEDIAN_LIFT: f64 = 3.0;

impl StoreEvidence {
    /// One line for a run's summary and report: the verdict, its numbers, and what it
    /// means for the bundles.
    pub fn summary(&self) -> String {
        match self.verdict {
            Verdict::Strong => format!(
                "strong ({} pairs bought together 5+ times at lift 2+, median top lift {:.1}): the orders decide what goes together",
                self.pairs, self.median_top_lift
            ),
            Verdict::Weak => format!(
                "weak ({} such pairs, median top lift {:.1}): bundles lean on meaning, and fewer are published",
                self.pairs, self.median_top_lift
            ),
            Verdict::None => "none (no orders, or none bought together beyond chance): bundles rest on meaning alone, and fewer are published".to_owned(),
        }
    }

    pub fn of(pairs: &crate::rules::Pairs) -> StoreEvidence {
        let mut lifts: Vec<f64> = pairs
            .pairs
            .iter()
            .filter(|p| p.count >= EVIDENCE_MIN_COUNT)
            .map(|p| pairs.lift(p))
            .filter(|&l| l >= 2.0)
            .collect();
        let n = lifts.len();
        lifts.sort_by(|a, b| b.total_cmp(a));
        lifts.truncate(EVIDENCE_TOP);
        let median_top_lift = crate::stats::median(&mut lifts).unwrap_or(0.0);
        // Among many pairs a few always meet more often than expected; structure is a
        // pair chance cannot explain even allowing for how many pairs there are.
        let alpha = 0.05 / pairs.pairs.len().max(1) as f64;
        let significant_pairs = pairs
            .pairs
            .iter()
            .filter(|p| {
                let m = pairs.metrics(p);
                let expected = if m.lift > 0.0 {
                    f64::from(p.count) / m.lift
                } else {
                    f64::INFINITY
                };
                poisson_at_least(p.count, expected) <= alpha
            })
            .count();
        let verdict = if pairs.n_baskets == 0 || significant_pairs == 0 {
            Verdict::None
        } else if n >= STRONG_PAIRS && median_top_lift >= STRONG_MEDIAN_LIFT {
            Verdict::Strong
        } else {
            Verdict::Weak
        };
        StoreEvidence {
            pairs: n,
            median_top_lift: round(median_top_lift, 3),
            significant_pairs,
            verdict,
        }
    }
}

/// Orders holding pairs of categories (up to `as_of`): the store's own evidence that
/// two categories go together.
#[derive(Debug, Clone, Default)]
pub struct CategoryLinks {
    index: HashMap<String, u32>,
    /// Orders holding each category.
    orders: Vec<u32>,
    /// Orders holding both, by (smaller, larger) category index.
    pairs: HashMap<(u32, u32), u32>,
    baskets: u64,
    /// Products of each category.
    members: Vec<Vec<u32>>,
}

impl CategoryLinks {
    /// The products of `category` (none for a category the store does not have).
    pub fn members(&self, category: &str) -> &[u32] {
        self.index
            .get(category)
            .map_or(&[], |&x| self.members[x as usize].as_slice())
    }
}

impl CategoryLinks {
    pub fn build(data: &StoreData, as_of: DateTime<Utc>, categories: &[String]) -> CategoryLinks {
        let mut links = CategoryLinks::default();
        let ids: Vec<u32> = categories
            .iter()
            .map(|c| {
                let next = links.index.len() as u32;
                *links.index.entry(c.clone()).or_insert(next)
            })
            .collect();
        links.orders = vec![0; links.index.len()];
        links.members = vec![Vec::new(); links.index.len()];
        for (i, &c) in ids.iter().enumerate() {
            links.members[c as usize].push(i as u32);
        }
        let mut present: Vec<u32> = Vec::new();
        for o in data.orders.iter().filter(|o| o.created_at <= as_of) {
            present.clear();
            present.extend(
                o.lines
                    .iter()
                    .filter_map(|l| l.item.and_then(|i| ids.get(i as usize).copied())),
            );
            if present.is_empty() {
                continue;
            }
            present.sort_unstable();
            present.dedup();
            links.baskets += 1;
            for (x, &a) in present.iter().enumerate() {
                links.orders[a as usize] += 1;
                for &b in &present[x + 1..] {
                    *links.pairs.entry((a, b)).or_default() += 1;
                }
            }
        }
        links
    }

    /// Orders holding both categories and their shrunk lift (count + κ) / (expected + κ).
    pub fn lift(&self, a: &str, b: &str, prior: f64) -> (u32, f64) {
        let (Some(&x), Some(&y)) = (self.index.get(a), self.index.get(b)) else {
            return (0, 1.0);
        };
        self.lift_of(x, y, prior)
    }

    /// [`CategoryLinks::lift`] without `n` orders holding both (a pair's own orders,
    /// so that one pair bought together does not make its categories a link).
    pub fn lift_without(&self, a: &str, b: &str, n: u32, prior: f64) -> f64 {
        let (Some(&x), Some(&y)) = (self.index.get(a), self.index.get(b)) else {
            return 1.0;
        };
        if x == y {
            return 1.0;
        }
        let count = self.pairs.get(&(x.min(y), x.max(y))).copied().unwrap_or(0);
        let n = n.min(count);
        let baskets = self.baskets.saturating_sub(u64::from(n));
        if baskets == 0 {
            return 1.0;
        }
        let expected = f64::from(self.orders[x as usize] - n)
            * f64::from(self.orders[y as usize] - n)
            / baskets as f64;
        (f64::from(count - n) + prior) / (expected + prior)
    }

    /// Orders chance predicts to hold both categories (0 for one category, or one
    /// the orders never hold).
    pub fn expected(&self, a: &str, b: &str) -> f64 {
        let (Some(&x), Some(&y)) = (self.index.get(a), self.index.get(b)) else {
            return 0.0;
        };
        if self.baskets == 0 || x == y {
            return 0.0;
        }
        f64::from(self.orders[x as usize]) * f64::from(self.orders[y as usize])
            / self.baskets as f64
    }

    fn lift_of(&self, x: u32, y: u32, prior: f64) -> (u32, f64) {
        if self.baskets == 0 || x == y {
            return (0, 1.0);
        }
        let count = self.pairs.get(&(x.min(y), x.max(y))).copied().unwrap_or(0);
        let expected = f64::from(self.orders[x as usize]) * f64::from(self.orders[y as usize])
            / self.baskets as f64;
        (count, (f64::from(count) + prior) / (expected + prior))
    }
}

impl CategoryLinks {
    /// The products of the `limit` categories that go best with `category` (shrunk
    /// lift at least `min_lift`), best category first.
    pub fn linked_members(
        &self,
        category: &str,
        prior: f64,
        min_lift: f64,
        limit: usize,
    ) -> Vec<&[u32]> {
        let Some(&x) = self.index.get(category) else {
            return Vec::new();
        };
        let mut linked: Vec<(u32, f64)> = (0..self.members.len() as u32)
            .map(|y| (y, self.lift_of(x, y, prior).1))
            .filter(|&(y, lift)| y != x && lift >= min_lift)
            .collect();
        linked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        linked
            .into_iter()
            .take(limit)
            .map(|(y, _)| self.members[y as usize].as_slice())
            .collect()
    }
}

/// Basket indices holding each product (up to `as_of`), ascending.
pub fn orders_holding(data: &StoreData, as_of: DateTime<Utc>) -> Vec<Vec<u32>> {
    let mut holding: Vec<Vec<u32>> = vec![Vec::new(); data.products.len()];
    let mut k = 0u32;
    for o in data.orders.iter().filter(|o| o.created_at <= as_of) {
        let mut any = false;
        for l in &o.lines {
            if let Some(list) = l.item.and_then(|i| holding.get_mut(i as usize)) {
                if list.last() != Some(&k) {
                    list.push(k);
                }
                any = true;
            }
        }
        k += u32::from(any);
    }
    holding
}

/// A title as shoppers tell products apart: lowercase words, size words left out
/// ("Tee - Red / M" and "Tee - Red / L" are one title, and so are "Peru Ground Coffee
/// 1kg" and "Peru Ground Coffee - 500g").
pub fn normalised_title(p: &Product) -> String {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut out: Vec<String> = words(&p.title)
        .into_iter()
        .filter(|w| !is_size_word(w))
        .collect();
    if let Some(v) = &p.variant_title {
        out.extend(words(v).into_iter().filter(|w| !is_size_word(w)));
    }
    out.join(" ")
}

fn is_size_word(w: &str) -> bool {
    const SIZES: &[&str] = &[
        "xxs", "xs", "s", "m", "l", "xl", "xxl", "xxxl", "2xl", "3xl", "4xl", "5xl", "small",
        "medium", "large", "x", "extra", "one", "size", "os", "petite", "tall", "regular", "us",
        "eu", "uk", "cm", "in", "inch", "mm",
    ];
    // Numbers with a short unit or size letter: 8, 32x34, 2t, 12m, 250g, 500ml.
    let digits = w.chars().take_while(char::is_ascii_digit).count();
    SIZES.contains(&w)
        || w.chars().all(|c| c.is_ascii_digit() || c == 'x')
        || (digits > 0
            && w.len() - digits <= 2
            && w[digits..].chars().all(|c| c.is_ascii_lowercase()))
}

/// Whether the store's orders contradict a set: they predict several co-purchases and
/// show fewer than half.
fn contradicted(ctx: &Context, products: &[u32]) -> bool {
    let cp = set_co_purchase(ctx, products);
    cp.expected >= CONTRADICTED_EXPECTED && cp.lift < 0.5
}

/// Whether the store's orders hold the pair less often than chance predicts (counted
/// exactly: pairs under the mining threshold too). A store without orders predicts
/// nothing and contradicts nothing.
fn below_chance(ctx: &Context, a: u32, b: u32) -> bool {
    let (Some(x), Some(y)) = (
        ctx.orders_holding.get(a as usize),
        ctx.orders_holding.get(b as usize),
    ) else {
        return false;
    };
    let expected = x.len() as f64 * y.len() as f64 / ctx.baskets.max(1) as f64;
    (sorted_common(x, y) as f64) < expected
}

/// Orders holding both products, counted exactly.
fn pair_orders(ctx: &Context, a: u32, b: u32) -> usize {
    match (
        ctx.orders_holding.get(a as usize),
        ctx.orders_holding.get(b as usize),
    ) {
        (Some(x), Some(y)) => sorted_common(x, y),
        _ => 0,
    }
}

/// Elements two ascending lists share.
fn sorted_common(x: &[u32], y: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

fn ids(ctx: &Context, products: &[u32]) -> Vec<String> {
    products
        .iter()
        .map(|&i| ctx.product(i).variant_id.clone())
        .collect()
}

/// Orders-based reasons for a set of two or more products bought together.
fn co_purchase(ctx: &Context, q: &QualitySettings, products: &[u32]) -> Option<Justification> {
    let cp = set_co_purchase(ctx, products);
    co_purchase_holds(ctx, q, products, &cp).then(|| Justification::CoPurchase {
        products: ids(ctx, products),
        count: cp.count,
        expected: round(cp.expected, 3),
        shrunk_lift: round(cp.shrunk_lift, 3),
    })
}

/// Whether a set's co-purchases justify it: the store's orders show structure at all
/// (verdict not `none`), shrunk lift at least
/// `quality.min_shrunk_lift`, and where a partner is unrelated to the anchor (neither
/// near in meaning nor in the anchor's category or one the orders pair with it) a count
/// chance would reach with probability at most `quality.unrelated_max_p`. Among
/// thousands of pairs a few unrelated ones always meet by luck; related ones are
/// expected to, so the floor is enough for them.
pub fn co_purchase_holds(
    ctx: &Context,
    q: &QualitySettings,
    products: &[u32],
    cp: &CoPurchase,
) -> bool {
    // Where no pair is bought together beyond chance, no co-purchase is evidence.
    if cp.count == 0
        || cp.shrunk_lift < q.min_shrunk_lift
        || ctx.store_evidence.verdict == Verdict::None
    {
        return false;
    }
    let Some((&anchor, partners)) = products.split_first() else {
        return false;
    };
    // Cheapest first: this runs for every partner the generators consider.
    let near = |b: u32| {
        ctx.similarity(anchor, b) >= RELATED
            || ctx.categories[anchor as usize] == ctx.categories[b as usize]
    };
    if partners.iter().all(|&b| near(b))
        || poisson_at_least(cp.count, cp.expected) <= q.unrelated_max_p
    {
        return true;
    }
    // A pair's own count is the set's; a larger set's pairs are looked up.
    let pair_count = |b: u32| {
        if partners.len() == 1 {
            cp.count
        } else {
            ctx.pair_count(anchor, b)
        }
    };
    partners
        .iter()
        .all(|&b| near(b) || linked_categories(ctx, q, anchor, b, pair_count(b)))
}

/// Whether the store's orders pair the two products' categories, by orders other than
/// the pair's own `n`.
fn linked_categories(ctx: &Context, q: &QualitySettings, a: u32, b: u32, n: u32) -> bool {
    let (ca, cb) = (&ctx.categories[a as usize], &ctx.categories[b as usize]);
    ctx.category_links.lift_without(ca, cb, n, ctx.prior_count) >= q.min_category_lift
}

/// P(X ≥ k) for X ~ Poisson(λ), summed from k upward (the terms fall once past λ, and
/// a tail sum keeps its precision where one minus the head would not).
pub fn poisson_at_least(k: u32, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    if f64::from(k) <= lambda {
        // The head is the small side here.
        let mut term = (-lambda).exp();
        let mut head = term;
        for i in 1..k {
            term *= lambda / f64::from(i);
            head += term;
        }
        return (1.0 - head).clamp(0.0, 1.0);
    }
    // ln P(X = k) = k ln λ − λ − ln k!
    let ln_fact = ln_factorial(k);
    let mut term = (f64::from(k) * lambda.ln() - lambda - ln_fact).exp();
    let mut tail = 0.0;
    let mut i = k;
    while term > tail * 1e-12 && i < k + 10_000 {
        tail += term;
        i += 1;
        term *= lambda / f64::from(i);
    }
    tail.min(1.0)
}

/// ln k!: summed up to 20, Stirling's series beyond (error under 1e-10 there).
fn ln_factorial(k: u32) -> f64 {
    if k <= 20 {
        return (2..=k).map(|i| f64::from(i).ln()).sum();
    }
    let k = f64::from(k);
    k * k.ln() - k + 0.5 * (2.0 * std::f64::consts::PI * k).ln() + 1.0 / (12.0 * k)
        - 1.0 / (360.0 * k.powi(3))
}

/// Where the store's categories are expected to meet in at least this many orders,
/// its orders tell whether they go together, and the prior is not asked.
const STORE_TELLS: f64 = 5.0;

/// Why two products' kinds go together.
#[derive(Debug, Clone, PartialEq)]
pub enum KindsLink {
    /// The store's orders pair their categories.
    Store { orders: u32, lift: f64 },
    /// Other stores' baskets pair them, and the store's orders can't tell.
    Prior(PriorSupport),
    /// A language model named their two categories as going together, where neither
    /// the store's orders nor the prior can tell; the store's thin figures beside it.
    Model {
        reason: String,
        orders: u32,
        lift: f64,
    },
}

/// Whether `a`'s and `b`'s kinds of product go together: by the store's orders where
/// they can tell (its two categories expected to meet in [`STORE_TELLS`] orders or
/// more: then they decide, either way), else by the complement prior, else by the
/// store's thin orders where they pair the categories, else by the pairs a language
/// model named. One rule for the generators and for the justification.
pub fn kinds_link(ctx: &Context, q: &QualitySettings, a: u32, b: u32) -> Option<KindsLink> {
    let (ca, cb) = (&ctx.categories[a as usize], &ctx.categories[b as usize]);
    if ca != cb && ctx.category_links.expected(ca, cb) >= STORE_TELLS {
        let (orders, lift) = ctx.category_links.lift(ca, cb, ctx.prior_count);
        return (lift >= q.min_category_lift).then_some(KindsLink::Store { orders, lift });
    }
    if let Some(s) = ctx.prior.support(a, b, ctx.prior_count, ctx.prior_min_lift) {
        return Some(KindsLink::Prior(s));
    }
    if ca == cb {
        return None;
    }
    // Categories the store has hardly sold: its orders' thin word is still its own.
    let (orders, lift) = ctx.category_links.lift(ca, cb, ctx.prior_count);
    if lift >= q.min_category_lift {
        return Some(KindsLink::Store { orders, lift });
    }
    ctx.model_complements
        .reason(ca, cb)
        .map(|reason| KindsLink::Model {
            reason: reason.to_owned(),
            orders,
            lift,
        })
}

fn complement(ctx: &Context, q: &QualitySettings, a: u32, b: u32) -> Option<Justification> {
    let similarity = ctx.similarity(a, b);
    let (ca, cb) = (&ctx.categories[a as usize], &ctx.categories[b as usize]);
    if similarity >= NEAR_COPY
        || ctx.product(a).product_id == ctx.product(b).product_id
        || below_chance(ctx, a, b)
    {
        return None;
    }
    // Where the orders show structure they are the evidence: a complement of products
    // they know must have been bought together at least COMPLEMENT_SEEN times (under
    // the co-purchase bar, which alone would justify it). For a product they cannot
    // know yet (a new launch, or a slow mover with under five orders) meaning carries.
    let known = |i: u32| {
        let s = &ctx.signals[i as usize];
        let unsold = (s.has(DataTag::SlowMover) || s.has(DataTag::Overstock))
            && s.orders < ONE_AT_A_TIME_ORDERS;
        !(s.has(DataTag::NewLaunch) || unsold)
    };
    if ctx.store_evidence.verdict == Verdict::Strong
        && known(a)
        && known(b)
        && (pair_orders(ctx, a, b) as u32) < COMPLEMENT_SEEN
    {
        return None;
    }
    let similarity_rounded = (similarity * 1000.0).round() / 1000.0;
    match kinds_link(ctx, q, a, b)? {
        // The store's link pairs categories; the products must be related in meaning
        // too (a category pair holds many products that don't go together).
        KindsLink::Store { orders, lift } => {
            (similarity >= RELATED).then(|| Justification::Complement {
                products: ids(ctx, &[a, b]),
                similarity: similarity_rounded,
                categories: vec![ca.clone(), cb.clone()],
                category_orders: orders,
                category_lift: round(lift, 3),
                source: "store".to_owned(),
                data_sets: Vec::new(),
                prior_categories: Vec::new(),
                reason: String::new(),
            })
        }
        // The prior's categories are kinds of product already: milk and cereal go
        // together without being alike.
        KindsLink::Prior(s) => Some(Justification::Complement {
            products: ids(ctx, &[a, b]),
            similarity: similarity_rounded,
            categories: vec![ca.clone(), cb.clone()],
            category_orders: s.count,
            category_lift: round(s.shrunk_lift, 3),
            source: "prior".to_owned(),
            data_sets: s.data_sets,
            prior_categories: s.categories.to_vec(),
            reason: String::new(),
        }),
        // Like the prior's, the model's link is between kinds (it saw each category's
        // example titles): coffee and a mug go together without being alike.
        KindsLink::Model {
            reason,
            orders,
            lift,
        } => Some(Justification::Complement {
            products: ids(ctx, &[a, b]),
            similarity: similarity_rounded,
            categories: vec![ca.clone(), cb.clone()],
            category_orders: orders,
            category_lift: round(lift, 3),
            source: "model".to_owned(),
            data_sets: Vec::new(),
            prior_categories: Vec::new(),
            reason,
        }),
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let s = 10f64.powi(digits);
    (x * s).round() / s
}

/// Whether shoppers buy a product in multiples or again.
fn multiples(ctx: &Context, i: u32) -> Option<Justification> {
    let s = &ctx.signals[i as usize];
    let orders = f64::from(s.orders);
    let several = shrunk_share(ctx, f64::from(s.multi_unit_orders), orders) >= MULTI_UNIT_SHARE;
    // A habit takes two orders at least: one order of two headlamps is not one.
    let returning = s.repeat_rate * orders;
    let again = returning >= 1.5 && shrunk_share(ctx, returning, orders) >= MULTI_UNIT_SHARE;
    (s.multi_unit_orders >= 2 && several || again).then(|| Justification::Multiples {
        product: ctx.product(i).variant_id.clone(),
        orders: s.orders,
        multi_unit_orders: s.multi_unit_orders,
        repeat_rate: round(s.repeat_rate, 3),
    })
}

fn shrunk_share(ctx: &Context, part: f64, whole: f64) -> f64 {
    part / (whole + ctx.prior_count)
}

/// Bought in several without orders saying so: a consumable (by its orders or its
/// classification), or priced at most the store's median and not high-ticket.
fn everyday(ctx: &Context, q: &QualitySettings, i: u32) -> bool {
    let s = &ctx.signals[i as usize];
    if s.has(DataTag::Consumable) || s.objectives.contains(&Objective::Replenish) {
        return !high_ticket(ctx, q, i);
    }
    ctx.median_price_minor > 0 && ctx.product(i).price.minor <= ctx.median_price_minor
}

/// High-ticket: priced at `quality.high_ticket_ratio` × the median or more.
pub fn high_ticket(ctx: &Context, q: &QualitySettings, i: u32) -> bool {
    ctx.median_price_minor > 0
        && ctx.product(i).price.minor as f64 >= q.high_ticket_ratio * ctx.median_price_minor as f64
}

/// Orders holding at least `k` distinct products of `group`, and orders holding any.
pub fn orders_with_at_least(ctx: &Context, group: &[u32], k: usize) -> (u32, u32) {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for &i in group {
        for &o in ctx.orders_holding.get(i as usize).map_or(&[][..], |v| v) {
            *counts.entry(o).or_default() += 1;
        }
    }
    let with = counts.values().filter(|&&c| c as usize >= k).count() as u32;
    (with, counts.len() as u32)
}

/// Whether a mix & match group holds together (see the module's rules), and why not.
pub fn alike(
    ctx: &Context,
    q: &QualitySettings,
    group: &[u32],
    pick: u32,
) -> Result<Justification, LeftOut> {
    let n = group.len();
    let Some(&first) = group.first() else {
        return Err(LeftOut::NotAlike);
    };
    if !(3..=6).contains(&n) || pick < 2 || pick as usize >= n {
        return Err(LeftOut::NotAlike);
    }
    let category = &ctx.categories[first as usize];
    let mut titles: Vec<String> = Vec::with_capacity(n);
    let mut min_similarity = 1.0f32;
    let (mut lo, mut hi) = (i64::MAX, 0i64);
    for &i in group {
        let p = ctx.product(i);
        let title = normalised_title(p);
        if &ctx.categories[i as usize] != category || titles.contains(&title) {
            return Err(LeftOut::NotAlike);
        }
        titles.push(title);
        if i != first {
            let s = ctx.similarity(first, i);
            if s < ALIKE && p.product_id != ctx.product(first).product_id {
                return Err(LeftOut::NotAlike);
            }
            min_similarity = min_similarity.min(s);
        }
        lo = lo.min(p.price.minor);
        hi = hi.max(p.price.minor);
    }
    if lo <= 0 || hi as f64 > q.price_band * lo as f64 {
        return Err(LeftOut::NotAlike);
    }
    // Where the group's orders can tell (or the store's orders show structure at all:
    // a group they never saw mixed is not mixed), shoppers must already take `pick`
    // different ones together, more often than chance (the co-purchase standard, for
    // "any `pick`"); twelve of one is not mixing. Otherwise meaning decides, for
    // everyday products only: without orders taking several, durable goods dearer
    // than the store's median (a stove, a backpack) are bought one at a time.
    let mix = pick_evidence(ctx, group, pick as usize);
    let strong = ctx.store_evidence.verdict == Verdict::Strong;
    let seldom = if mix.holding >= ONE_AT_A_TIME_ORDERS || strong {
        mix.shrunk_lift < q.min_shrunk_lift
    } else {
        mix.with_pick == 0 && !group.iter().all(|&i| everyday(ctx, q, i))
    };
    if seldom {
        return Err(LeftOut::BoughtOneAtATime);
    }
    Ok(Justification::Alike {
        products: ids(ctx, group),
        category: category.clone(),
        min_similarity: (min_similarity * 1000.0).round() / 1000.0,
        price_low_minor: lo,
        price_high_minor: hi,
        orders_with_pick: mix.with_pick,
        expected_with_pick: round(mix.expected, 3),
    })
}

/// How the store's orders take a group: orders holding `pick` or more of it, what
/// independence predicts, and the shrunk lift of the two.
pub struct PickEvidence {
    pub with_pick: u32,
    pub holding: u32,
    pub expected: f64,
    pub shrunk_lift: f64,
}

pub fn pick_evidence(ctx: &Context, group: &[u32], pick: usize) -> PickEvidence {
    let (with_pick, holding) = orders_with_at_least(ctx, group, pick);
    let n = ctx.baskets.max(1) as f64;
    let shares: Vec<f64> = group
        .iter()
        .map(|&i| ctx.orders_holding.get(i as usize).map_or(0, Vec::len) as f64 / n)
        .collect();
    let expected = ctx.baskets as f64 * at_least(&shares, pick);
    PickEvidence {
        with_pick,
        holding,
        expected,
        shrunk_lift: (f64::from(with_pick) + ctx.prior_count) / (expected + ctx.prior_count),
    }
}

/// P(at least `k` of independent events with probabilities `p`) (Poisson binomial).
pub fn at_least(p: &[f64], k: usize) -> f64 {
    // dist[j] = P(exactly j so far).
    let mut dist = vec![0.0f64; p.len() + 1];
    dist[0] = 1.0;
    for (n, &q) in p.iter().enumerate() {
        for j in (0..=n + 1).rev() {
            let stay = dist[j] * (1.0 - q);
            let step = if j > 0 { dist[j - 1] * q } else { 0.0 };
            dist[j] = stay + step;
        }
    }
    dist[k.min(p.len())..].iter().sum()
}

/// The justification of a candidate, restricted to the kinds its objective accepts;
/// or why it has none.
pub fn justify(
    ctx: &Context,
    q: &QualitySettings,
    objective: Objective,
    bundle_type: BundleType,
    draft: &Draft,
) -> Result<Vec<Justification>, LeftOut> {
    let accepted = q.evidence.of(objective);
    let accept = |list: Vec<Justification>| -> Result<Vec<Justification>, LeftOut> {
        if list.is_empty() {
            return Err(LeftOut::Unjustified);
        }
        if list.iter().any(|j| !accepted.contains(&j.kind())) {
            return Err(LeftOut::ObjectiveEvidence);
        }
        Ok(list)
    };
    let p = &draft.products;
    if bundle_type == BundleType::MixMatch {
        let pick = draft.pick.unwrap_or(0);
        return accept(vec![alike(ctx, q, p, pick)?]);
    }
    if let [single] = p[..] {
        return match multiples(ctx, single) {
            Some(j) => accept(vec![j]),
            None => {
                let orders = ctx.signals[single as usize].orders;
                if orders >= ONE_AT_A_TIME_ORDERS || high_ticket(ctx, q, single) {
                    Err(LeftOut::BoughtOneAtATime)
                } else {
                    Err(LeftOut::Unjustified)
                }
            }
        };
    }
    let mut families: Vec<&str> = p
        .iter()
        .map(|&i| ctx.product(i).product_id.as_str())
        .collect();
    families.sort_unstable();
    families.dedup();
    if families.len() < p.len() {
        return Err(LeftOut::RepeatedProduct);
    }
    set_reasons(ctx, q, draft, accepted)
}

/// Reasons for a set of two or more products: a whole-set reason covers every partner;
/// otherwise each partner needs a pair reason with the anchor.
fn set_reasons(
    ctx: &Context,
    q: &QualitySettings,
    draft: &Draft,
    accepted: &[JustificationKind],
) -> Result<Vec<Justification>, LeftOut> {
    let p = &draft.products;
    let mut whole: Vec<Justification> = Vec::new();
    if p.len() >= 3 {
        whole.extend(co_purchase(ctx, q, p));
    }
    if draft.proposed_by == Some(TextSource::Llm) && !contradicted(ctx, p) {
        let cp = set_co_purchase(ctx, p);
        whole.push(Justification::Proposal {
            products: ids(ctx, p),
            reason: draft.llm_reason.clone().unwrap_or_default(),
            count: cp.count,
            expected: round(cp.expected, 3),
        });
    }
    let mut pairs: Vec<(usize, usize, Justification)> = Vec::new();
    for x in 0..p.len() {
        for y in x + 1..p.len() {
            pairs.extend(co_purchase(ctx, q, &[p[x], p[y]]).map(|j| (x, y, j)));
            pairs.extend(complement(ctx, q, p[x], p[y]).map(|j| (x, y, j)));
        }
    }
    let whole_ok =
        |kinds: &dyn Fn(JustificationKind) -> bool| whole.iter().any(|j| kinds(j.kind()));
    let linked = |kinds: &dyn Fn(JustificationKind) -> bool| {
        let edges: Vec<(usize, usize)> = pairs
            .iter()
            .filter(|(_, _, j)| kinds(j.kind()))
            .map(|&(x, y, _)| (x, y))
            .collect();
        star(p.len(), &edges)
    };
    let is_accepted = |k: JustificationKind| accepted.contains(&k);
    // Three or more products need a reason for the whole set: pairs that each go with
    // the anchor are rarely bought all together, and each pair is its own offer.
    let enough = |kinds: &dyn Fn(JustificationKind) -> bool| {
        whole_ok(kinds) || (p.len() == 2 && linked(kinds))
    };
    if !enough(&is_accepted) {
        let any = |_: JustificationKind| true;
        return Err(if enough(&any) {
            LeftOut::ObjectiveEvidence
        } else {
            LeftOut::Unjustified
        });
    }
    let mut out: Vec<Justification> = whole
        .into_iter()
        .filter(|j| is_accepted(j.kind()))
        .collect();
    out.extend(
        pairs
            .into_iter()
            .map(|(_, _, j)| j)
            .filter(|j| is_accepted(j.kind())),
    );
    Ok(out)
}

/// Whether every partner has an edge to the anchor (product 0).
fn star(n: usize, edges: &[(usize, usize)]) -> bool {
    (1..n).all(|j| edges.iter().any(|&(x, y)| (x, y) == (0, j)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money};

    fn product(title: &str, variant: Option<&str>) -> Product {
        Product {
            variant_id: "v".into(),
            product_id: "p".into(),
            sku: None,
            handle: None,
            title: title.into(),
            variant_title: variant.map(str::to_owned),
            description: String::new(),
            category: None,
            product_type: None,
            vendor: None,
            tags: Vec::new(),
            price: Money::new(1000, Currency::USD),
            compare_at_price: None,
            cost: None,
            inventory: None,
            status: None,
            created_at: None,
            gift_card: false,
            inventory_item_id: None,
        }
    }

    #[test]
    fn the_poisson_tail_matches_its_sums() {
        // P(X ≥ 4 | λ = 1.6) = 1 − e^−1.6 (1 + 1.6 + 1.28 + 0.682667)
        let head = (-1.6f64).exp() * (1.0 + 1.6 + 1.28 + 1.6f64.powi(3) / 6.0);
        assert!((poisson_at_least(4, 1.6) - (1.0 - head)).abs() < 1e-12);
        // Far in the tail: P(X = 30 | λ = 2) = 2^30 e^−2 / 30! ≈ 5.48e-25, and the
        // terms after it add about 7 %.
        let p = poisson_at_least(30, 2.0);
        assert!(p > 5.8e-25 && p < 5.9e-25, "{p}");
        assert_eq!(poisson_at_least(0, 3.0), 1.0);
        // Stirling beyond 20 matches the sum.
        for k in [21u32, 50, 400] {
            let sum: f64 = (2..=k).map(|i| f64::from(i).ln()).sum();
            assert!((ln_factorial(k) - sum).abs() < 1e-8 * sum, "{k}");
        }
        assert_eq!(poisson_at_least(2, 0.0), 0.0);
        // Below the mean the head is summed: P(X ≥ 1 | λ = 5) = 1 − e^−5.
        assert!((poisson_at_least(1, 5.0) - (1.0 - (-5.0f64).exp())).abs() < 1e-12);
        assert!((poisson_at_least(3, 5.0) - (1.0 - (-5.0f64).exp() * 18.5)).abs() < 1e-12);
    }

    #[test]
    fn sizes_of_one_product_are_one_title_and_colours_are_not() {
        let t = |v| normalised_title(&product("Glow Costume", Some(v)));
        assert_eq!(t("2T-3T"), t("6-8"));
        assert_eq!(t("Red / M"), t("Red / XL"));
        assert_eq!(t("250g"), t("1kg"));
        assert_ne!(t("Red / M"), t("Blue / M"));
        assert_eq!(
            normalised_title(&product("Cast-Iron  MUG", None)),
            normalised_title(&product("cast iron mug", None))
        );
    }

    #[test]
    fn a_set_is_justified_only_when_every_partner_goes_with_the_anchor() {
        assert!(star(2, &[(0, 1)]));
        assert!(star(3, &[(0, 2), (0, 1), (1, 2)]));
        // A chain is not enough: the third product goes with the second, not the anchor.
        assert!(!star(3, &[(0, 1), (1, 2)]));
        assert!(!star(4, &[(0, 1), (2, 3)]));
    }
}
