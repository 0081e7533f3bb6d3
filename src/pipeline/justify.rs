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

use serde::Serialize;

use super::context::Context;
use super::evidence::Verdict;
use super::model::{ALIKE, CoPurchase, DataTag, Draft, NEAR_COPY, RELATED};
use crate::config::QualitySettings;
use crate::domain::{BundleType, Justification, JustificationKind, Objective, Product, TextSource};
use crate::prior::PriorSupport;
use crate::stats::{self, at_least, poisson_at_least};

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
    let cp = ctx.co_purchase(products);
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
    let cp = ctx.co_purchase(products);
    co_purchase_holds(ctx, q, products, &cp).then(|| Justification::CoPurchase {
        products: ids(ctx, products),
        count: cp.count,
        expected: stats::round_to(cp.expected, 3),
        shrunk_lift: stats::round_to(cp.shrunk_lift, 3),
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
                category_lift: stats::round_to(lift, 3),
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
            category_lift: stats::round_to(s.shrunk_lift, 3),
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
            category_lift: stats::round_to(lift, 3),
            source: "model".to_owned(),
            data_sets: Vec::new(),
            prior_categories: Vec::new(),
            reason,
        }),
    }
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
        repeat_rate: stats::round_to(s.repeat_rate, 3),
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
        expected_with_pick: stats::round_to(mix.expected, 3),
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
        let cp = ctx.co_purchase(p);
        whole.push(Justification::Proposal {
            products: ids(ctx, p),
            reason: draft.llm_reason.clone().unwrap_or_default(),
            count: cp.count,
            expected: stats::round_to(cp.expected, 3),
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
