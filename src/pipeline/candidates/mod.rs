//! Phase 1: 8 objectives × 5 bundle types = 40 generators, run in parallel. Each
//! proposes product sets for its cell from three sources — co-purchase evidence (pairs
//! and itemsets with lift > 1), embedding neighbours (complements: related, another
//! category, not a near-copy; or alike products for mix & match) and the language
//! model's proposals for the objective — around anchors chosen for the objective. Every
//! draft is scored ([`scoring`]) and keeps its provenance; each cell keeps its best
//! `candidates_per_cell`, and says why when it has none.
//!
//! The model's proposals are asked first, one call per objective, all at once; the
//! generators themselves are pure CPU work over the context.

mod addon;
mod bogo;
mod fixed;
mod mix_match;
pub mod pinned;
pub mod scoring;
mod volume;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use super::context::Context;
use super::document;
use super::economics;
use super::error::PipelineError;
use super::evidence::Verdict;
use super::justify::{self, LeftOut};
use super::model::{
    ALIKE, Candidate, CoPurchase, DataTag, Draft, NEAR_COPY, NeighbourEvidence, RELATED,
    RuleEvidence, Source, co_purchase,
};
use super::observe::{Phase, PhaseScope, RunObserver, TaskTiming, blocking};
use super::variant::{CandidateSources, Variant};
use crate::cancel::CancelToken;
use crate::config::{PipelineSettings, QualitySettings, Settings};
use crate::domain::{BundleItem, BundleType, Justification, Objective, ScoreBreakdown, TextSource};
use crate::llm::gateway::Gateway;
use crate::llm::prompt::ProductDoc;
use crate::stats::Weights;
use scoring::ScoreInput;

/// Categories searched for a complement beyond the similarity graph.
const LINKED_CATEGORIES: usize = 3;

/// One objective × bundle type cell of the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct CellSummary {
    pub objective: Objective,
    pub bundle_type: BundleType,
    pub candidates: usize,
    /// Drafts that passed the quality rules (before the cell kept its best).
    #[serde(skip)]
    pub justified: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Drafts left out for quality, by reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<LeftOut, usize>,
    /// A few of them, for the report (never in the JSON: product sets appear only in
    /// the published bundles).
    #[serde(skip)]
    pub examples: Vec<LeftOutExample>,
}

/// A candidate left out for quality, as the report shows it.
#[derive(Debug, Clone)]
pub struct LeftOutExample {
    pub objective: Objective,
    pub bundle_type: BundleType,
    pub reason: LeftOut,
    pub titles: Vec<String>,
    pub score: f64,
}

/// Examples kept per cell and reason.
const EXAMPLES_PER_REASON: usize = 2;

/// What a generator sees.
pub struct CellInput<'a> {
    pub ctx: &'a Context,
    pub objective: Objective,
    pub anchors: &'a [u32],
    pub partners: usize,
    /// The sources the run may use.
    pub sources: CandidateSources,
    /// The model's proposals of this cell's type, as drafts.
    pub proposed: Vec<Draft>,
    /// Each anchor's partners, when the objective's cells share them (see
    /// [`CellInput::partner_lists`]).
    pub partner_cache: Option<&'a HashMap<u32, Vec<(u32, Source)>>>,
    /// What a published bundle needs: partners are only sought where it can be met.
    pub quality: &'a QualitySettings,
}

impl CellInput<'_> {
    pub fn eligible(&self, i: u32) -> bool {
        self.ctx.signals[i as usize].eligible
    }

    fn same_family(&self, a: u32, b: u32) -> bool {
        self.ctx.product(a).product_id == self.ctx.product(b).product_id
    }

    /// Products bought with `a` clearly more often than chance (a co-purchase that
    /// would justify the pair: see [`justify::co_purchase_holds`]), strongest evidence
    /// first.
    pub fn bought_with(&self, a: u32) -> Vec<u32> {
        let ctx = self.ctx;
        let mut out: Vec<(u32, f64)> = ctx.partners[a as usize]
            .iter()
            .filter(|&&(b, _)| self.eligible(b) && !self.same_family(a, b))
            .map(|&(b, c)| {
                let cp = co_purchase(
                    c,
                    &[ctx.item_count(a), ctx.item_count(b)],
                    ctx.baskets,
                    ctx.prior_count,
                );
                (b, cp)
            })
            .filter(|(b, cp)| justify::co_purchase_holds(ctx, self.quality, &[a, *b], cp))
            .map(|(b, cp)| (b, scoring::transactional(&cp, ctx.support_half)))
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        out.into_iter().map(|(b, _)| b).collect()
    }

    /// Neighbours of `a` in meaning, not near-copies, whose kind goes with `a`'s
    /// ([`justify::kinds_link`]: the store's orders pair the categories, or where they
    /// can't tell, the complement prior or a configured model does); then, from each of
    /// the best such categories (the store's, the prior's, the model's), its product
    /// closest to `a` in
    /// meaning (a product's nearest neighbours are mostly its own kind, so the
    /// backpack's canteen is found through the categories, not the graph).
    pub fn complements(&self, a: u32) -> Vec<u32> {
        let ctx = self.ctx;
        let min_lift = self.quality.min_category_lift;
        let category = &ctx.categories[a as usize];
        let link = |b: u32| justify::kinds_link(ctx, self.quality, a, b);
        let fits = |b: u32| self.eligible(b) && !self.same_family(a, b);
        let mut out: Vec<u32> = ctx.neighbours[a as usize]
            .iter()
            .filter(|n| (RELATED..NEAR_COPY).contains(&n.score))
            .map(|n| n.id)
            .filter(|&b| fits(b) && link(b).is_some())
            .collect();
        let closest = |members: &[u32], related: bool| {
            members
                .iter()
                .copied()
                .filter(|&b| fits(b))
                .map(|b| (b, ctx.similarity(a, b)))
                .filter(|&(_, s)| s < NEAR_COPY && (!related || s >= RELATED))
                .filter(|&(b, _)| link(b).is_some())
                .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))
                .map(|(b, _)| b)
        };
        let store_linked = ctx.category_links.linked_members(
            category,
            ctx.prior_count,
            min_lift,
            LINKED_CATEGORIES,
        );
        let model_linked = ctx
            .model_complements
            .linked(category)
            .iter()
            .take(LINKED_CATEGORIES)
            .map(|c| ctx.category_links.members(c));
        let found: Vec<u32> = store_linked
            .into_iter()
            .filter_map(|m| closest(m, true))
            .chain(
                ctx.prior
                    .linked_members(a, LINKED_CATEGORIES)
                    .into_iter()
                    .filter_map(|m| closest(m, false)),
            )
            .chain(model_linked.filter_map(|m| closest(m, false)))
            .collect();
        for b in found {
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }

    /// Products alike `a` (its other variants first, then close neighbours in its
    /// category).
    pub fn alike(&self, a: u32) -> Vec<u32> {
        let ctx = self.ctx;
        let family = &ctx.product(a).product_id;
        let mut out: Vec<u32> = (0..ctx.data.products.len() as u32)
            .filter(|&b| b != a && &ctx.product(b).product_id == family && self.eligible(b))
            .collect();
        out.extend(
            ctx.neighbours[a as usize]
                .iter()
                .filter(|n| {
                    n.score >= ALIKE
                        && ctx.categories[n.id as usize] == ctx.categories[a as usize]
                        && self.eligible(n.id)
                })
                .map(|n| n.id),
        );
        out
    }

    /// Every anchor's partners: computed once per objective and shared by its five
    /// cells.
    pub fn partner_lists(&self) -> HashMap<u32, Vec<(u32, Source)>> {
        self.anchors
            .iter()
            .map(|&a| (a, self.find_partners(a)))
            .collect()
    }

    /// Partners for an anchor (from the shared lists when there are some).
    pub fn partners_of(&self, a: u32) -> Vec<(u32, Source)> {
        match self.partner_cache.and_then(|c| c.get(&a)) {
            Some(list) => list.clone(),
            None => self.find_partners(a),
        }
    }

    /// Partners for an anchor, by objective: proven sellers for slow movers and new
    /// launches, else co-purchases first and complements after.
    fn find_partners(&self, a: u32) -> Vec<(u32, Source)> {
        let ctx = self.ctx;
        let mut out: Vec<(u32, Source)> = Vec::new();
        if self.sources.co_purchase {
            out.extend(self.bought_with(a).into_iter().map(|b| (b, Source::Pairs)));
        }
        if self.sources.meaning {
            for b in self.complements(a) {
                if !out.iter().any(|&(x, _)| x == b) {
                    out.push((b, Source::Neighbours));
                }
            }
        }
        // Cross-selling is across kinds: same-category partners (another colour, a
        // sibling design) are increase_aov's, unless the prior knows them as two kinds
        // that go together (mustard for the mayonnaise, both "condiments").
        if self.objective == Objective::CrossSell {
            out.retain(|&(b, _)| {
                ctx.categories[b as usize] != ctx.categories[a as usize]
                    || ctx
                        .prior
                        .support(a, b, ctx.prior_count, ctx.prior_min_lift)
                        .is_some()
            });
        }
        // Popular partners carry the anchor: sellers first (stable otherwise), and never
        // another product of the anchor's own kind of trouble. An overstocked partner
        // that sells is welcome: the bundle clears some of its stock too.
        match self.objective {
            Objective::ClearSlowMovers => out.retain(|&(b, _)| {
                let s = &ctx.signals[b as usize];
                !s.has(DataTag::SlowMover) && s.units_window > 0
            }),
            Objective::LaunchNew => {
                out.retain(|&(b, _)| !ctx.signals[b as usize].has(DataTag::NewLaunch));
            }
            _ => {}
        }
        if matches!(
            self.objective,
            Objective::ClearSlowMovers | Objective::LaunchNew
        ) {
            out.sort_by_key(|&(b, _)| std::cmp::Reverse(ctx.signals[b as usize].units_window));
        }
        out.truncate(self.partners);
        out
    }
}

/// The anchors of an objective, best first.
pub fn anchors(ctx: &Context, objective: Objective, limit: usize) -> Vec<u32> {
    let n = ctx.data.products.len() as u32;
    let eligible = |i: &u32| ctx.signals[*i as usize].eligible;
    let units = |i: u32| ctx.signals[i as usize].units_window;
    let hubs = |i: u32| ctx.partners[i as usize].len();
    let mut list: Vec<u32> = match objective {
        // Products whose orders carry others: the most co-purchase partners.
        Objective::IncreaseAov => (0..n).filter(|&i| hubs(i) > 0).collect(),
        // Where the orders show no structure to follow, any product may lead to its
        // complements (by meaning and the prior), best known to the prior first.
        Objective::CrossSell if ctx.store_evidence.verdict != Verdict::Strong => (0..n).collect(),
        Objective::CrossSell => (0..n)
            .filter(|&i| hubs(i) > 0 || ctx.signals[i as usize].has(DataTag::Bestseller))
            .collect(),
        // Something to clear: in stock, or still selling. A slow mover that neither
        // sells nor is stocked may be gone from the shelf.
        Objective::ClearSlowMovers => (0..n)
            .filter(|&i| {
                let s = &ctx.signals[i as usize];
                let on_hand = ctx.product(i).inventory.is_some_and(|v| v > 0);
                (s.has(DataTag::SlowMover) || s.has(DataTag::Overstock))
                    && (on_hand || s.units_window > 0)
            })
            .collect(),
        Objective::LaunchNew => (0..n)
            .filter(|&i| ctx.signals[i as usize].has(DataTag::NewLaunch))
            .collect(),
        Objective::ProtectMargin => (0..n)
            .filter(|&i| ctx.signals[i as usize].has(DataTag::HighMargin))
            .collect(),
        Objective::Seasonal | Objective::Gift | Objective::Replenish => (0..n)
            .filter(|&i| scoring::suits(ctx, i, objective))
            .collect(),
    };
    list.retain(eligible);
    match objective {
        Objective::IncreaseAov | Objective::CrossSell => {
            let known = |i: u32| ctx.prior.categories_of(i).len();
            list.sort_by(|&a, &b| {
                hubs(b)
                    .cmp(&hubs(a))
                    .then(units(b).cmp(&units(a)))
                    .then(known(b).cmp(&known(a)))
                    .then(a.cmp(&b))
            })
        }
        // What takes longest to sell goes first: slow movers before mere overstock,
        // then by stock cover (units on hand per unit sold in the window), so a
        // shelf of 200 that sold one comes before a bestseller's deep stock.
        Objective::ClearSlowMovers => list.sort_by_cached_key(|&i| {
            let s = &ctx.signals[i as usize];
            let on_hand = i128::from(ctx.product(i).inventory.unwrap_or(0).max(0));
            let cover = on_hand * 1000 / i128::from(s.units_window.max(1));
            (
                !s.has(DataTag::SlowMover),
                std::cmp::Reverse(cover),
                s.units_window,
                i,
            )
        }),
        Objective::ProtectMargin => list.sort_by(|&a, &b| {
            let m = |i: u32| ctx.signals[i as usize].unit_margin_minor;
            m(b).cmp(&m(a)).then(a.cmp(&b))
        }),
        _ => list.sort_by(|&a, &b| units(b).cmp(&units(a)).then(a.cmp(&b))),
    }
    list.truncate(limit);
    list
}

/// Why a cell has no candidates.
fn why_empty(objective: Objective, t: BundleType, anchors: usize) -> String {
    if anchors == 0 {
        return match objective {
            Objective::ClearSlowMovers => "no slow movers or overstock among eligible products",
            Objective::LaunchNew => "no product launched within stats.new_launch_days",
            Objective::ProtectMargin => "no eligible high-margin products",
            Objective::Seasonal => "no product classified as seasonal",
            Objective::Gift => "no product classified as a gift",
            Objective::Replenish => "no consumables (repeat purchases or refill wording)",
            Objective::IncreaseAov | Objective::CrossSell => {
                "no products with co-purchases or sales in the window"
            }
        }
        .to_owned();
    }
    match t {
        BundleType::Fixed => "no anchor has a co-purchased or complementary partner",
        BundleType::MixMatch => "no anchor has three or more alike products",
        BundleType::Volume => "no anchor is bought in multiples or again",
        BundleType::Bogo => "no anchor is bought in multiples or has a cheaper complement",
        BundleType::Addon => "no anchor has a cheaper partner to add on",
    }
    .to_owned()
}

/// The model's proposals for one objective, asked over its first anchors and their
/// partners (not asked, source `None`, when the objective has no anchors); ids are checked by the gateway, and sets that order data contradicts
/// (clearly fewer co-purchases than chance) are dropped here.
pub async fn proposals(
    ctx: &Context,
    gateway: &Gateway,
    objective: Objective,
    anchor_list: &[u32],
    sources: CandidateSources,
    settings: &PipelineSettings,
    settings_quality: &QualitySettings,
) -> Result<(Vec<(BundleType, Draft)>, Option<TextSource>, usize), PipelineError> {
    let anchors: Vec<u32> = anchor_list
        .iter()
        .copied()
        .take(settings.llm_anchors)
        .collect();
    if anchors.is_empty() {
        return Ok((Vec::new(), None, 0));
    }
    let input = CellInput {
        ctx,
        objective,
        anchors: &anchors,
        partners: settings.partners_per_anchor,
        sources,
        proposed: Vec::new(),
        partner_cache: None,
        quality: settings_quality,
    };
    let mut pool: Vec<u32> = Vec::new();
    for &a in &anchors {
        for (b, _) in input.partners_of(a) {
            if !anchors.contains(&b) && !pool.contains(&b) {
                pool.push(b);
            }
        }
    }
    pool.truncate(settings.llm_candidates);
    let doc = |i: &u32| ProductDoc::from_product(ctx.product(*i));
    let anchor_docs: Vec<ProductDoc> = anchors.iter().map(doc).collect();
    let pool_docs: Vec<ProductDoc> = pool.iter().map(doc).collect();
    let answer = gateway
        .propose(objective, &anchor_docs, &pool_docs, settings.llm_bundles)
        .await?;
    let offered: Vec<u32> = anchors.iter().chain(&pool).copied().collect();
    let mut out = Vec::new();
    let mut contradicted = 0;
    for p in answer.value {
        let products: Vec<u32> = p
            .products
            .iter()
            .filter_map(|&i| offered.get(i).copied())
            .collect();
        if products.len() != p.products.len() || products.iter().any(|&i| !input.eligible(i)) {
            continue;
        }
        if products.len() >= 2 {
            let cp = ctx.co_purchase(&products);
            // Enough orders to expect five co-purchases, and fewer than half of them.
            if cp.expected >= 5.0 && cp.lift < 0.5 {
                contradicted += 1;
                continue;
            }
        }
        let mut draft = Draft::new(products, Source::Llm);
        draft.llm_reason = Some(p.reason);
        draft.proposed_by = Some(answer.source);
        out.push((p.bundle_type, draft));
    }
    Ok((out, Some(answer.source), contradicted))
}

fn evidence(ctx: &Context, draft: &Draft) -> (Vec<RuleEvidence>, Vec<NeighbourEvidence>) {
    let id = |i: u32| ctx.product(i).variant_id.clone();
    let mut rules = Vec::new();
    let p = &draft.products;
    let record = |set: &[u32]| {
        let cp = ctx.co_purchase(set);
        (cp.count > 0).then(|| RuleEvidence {
            products: set.iter().map(|&i| id(i)).collect(),
            count: cp.count,
            expected: cp.expected,
            lift: cp.lift,
            shrunk_lift: cp.shrunk_lift,
            confidence: f64::from(cp.count) / f64::from(ctx.item_count(set[0]).max(1)),
        })
    };
    if p.len() >= 3 {
        rules.extend(record(p));
    }
    for x in 0..p.len() {
        for y in x + 1..p.len() {
            rules.extend(record(&[p[x], p[y]]));
        }
    }
    let mut neighbours = Vec::new();
    for &b in p.iter().skip(1) {
        if let Some(n) = ctx.neighbours[p[0] as usize].iter().find(|n| n.id == b) {
            neighbours.push(NeighbourEvidence {
                product_id: id(p[0]),
                neighbour_id: id(b),
                score: n.score,
            });
        }
    }
    (rules, neighbours)
}

/// A draft's co-purchase record (two or more products) and score.
fn score_draft(
    ctx: &Context,
    weights: Weights,
    objective: Objective,
    bundle_type: BundleType,
    draft: &Draft,
) -> (Option<CoPurchase>, ScoreBreakdown) {
    let cp = (draft.products.len() >= 2).then(|| ctx.co_purchase(&draft.products));
    let score = scoring::score(
        ctx,
        weights,
        ctx.support_half,
        &ScoreInput {
            objective,
            bundle_type,
            products: &draft.products,
            quantities: &draft.quantities,
            proposed: draft.sources.contains(&Source::Llm),
            co_purchase: cp,
        },
    );
    (cp, score)
}

impl Candidate {
    /// A scored, justified draft with its evidence.
    fn new(
        ctx: &Context,
        (objective, bundle_type): (Objective, BundleType),
        draft: Draft,
        (co_purchase, score): (Option<CoPurchase>, ScoreBreakdown),
        justification: Vec<Justification>,
        pinned: bool,
    ) -> Candidate {
        let (rules, neighbours) = evidence(ctx, &draft);
        Candidate {
            objective,
            bundle_type,
            draft,
            co_purchase,
            rules,
            neighbours,
            score,
            justification,
            pinned,
        }
    }
}

/// The summary of a cell whose bundle type no kind of evidence the objective accepts
/// (`quality.evidence`) can justify; `None` when some kind can.
fn unjustifiable_cell(
    objective: Objective,
    bundle_type: BundleType,
    quality: &QualitySettings,
) -> Option<CellSummary> {
    let accepted = quality.evidence.of(objective);
    if bundle_type
        .justified_by()
        .iter()
        .any(|k| accepted.contains(k))
    {
        return None;
    }
    Some(CellSummary {
        objective,
        bundle_type,
        candidates: 0,
        justified: 0,
        why: Some(format!(
            "quality.evidence.{} accepts none of the kinds a {} bundle is justified by",
            objective.as_str(),
            bundle_type.as_str()
        )),
        left_out: BTreeMap::new(),
        examples: Vec::new(),
    })
}

/// The drafts a cell may use (its type's product count, eligible products, a source
/// the run allows), drafts of one product set and quantities merged into the first
/// (every source kept).
fn merge_drafts(input: &CellInput<'_>, bundle_type: BundleType, drafts: Vec<Draft>) -> Vec<Draft> {
    let mut merged: Vec<Draft> = Vec::new();
    let mut at: HashMap<(Vec<u32>, Vec<u32>), usize> = HashMap::new();
    for d in drafts {
        if !bundle_type.product_count().contains(&d.products.len())
            || d.products.iter().any(|&i| !input.eligible(i))
            || !d.sources.iter().any(|&s| input.sources.allows(s))
        {
            continue;
        }
        let mut key: Vec<(u32, u32)> = d
            .products
            .iter()
            .copied()
            .zip(d.quantities.iter().copied())
            .collect();
        key.sort_unstable();
        let key: (Vec<u32>, Vec<u32>) = key.into_iter().unzip();
        match at.get(&key) {
            Some(&j) => {
                let m = &mut merged[j];
                m.sources.extend(d.sources.iter().copied());
                if m.llm_reason.is_none() {
                    m.llm_reason = d.llm_reason;
                }
                if m.proposed_by != Some(TextSource::Llm) {
                    m.proposed_by = d.proposed_by.or(m.proposed_by);
                }
            }
            None => {
                at.insert(key, merged.len());
                merged.push(d);
            }
        }
    }
    merged
}

/// A cell's drafts left out for quality: counts by reason, and the first few of each
/// reason as examples.
#[derive(Default)]
struct LeftOutTally {
    left_out: BTreeMap<LeftOut, usize>,
    examples: Vec<LeftOutExample>,
}

impl LeftOutTally {
    /// Counts a draft left out, kept as an example while its reason has few.
    fn note(
        &mut self,
        input: &CellInput<'_>,
        bundle_type: BundleType,
        why: LeftOut,
        draft: &Draft,
        score: f64,
    ) {
        let seen = self.left_out.entry(why).or_default();
        *seen += 1;
        if *seen <= EXAMPLES_PER_REASON {
            self.examples.push(LeftOutExample {
                objective: input.objective,
                bundle_type,
                reason: why,
                titles: draft
                    .products
                    .iter()
                    .map(|&i| input.ctx.product(i).display_title())
                    .collect(),
                score,
            });
        }
    }
}

/// A draft scored and justified as a candidate; `None` (tallied) when the quality rules
/// or the minimum score leave it out.
fn judge(
    input: &CellInput<'_>,
    bundle_type: BundleType,
    weights: Weights,
    quality: &QualitySettings,
    draft: Draft,
    tally: &mut LeftOutTally,
) -> Option<Candidate> {
    let ctx = input.ctx;
    let (cp, score) = score_draft(ctx, weights, input.objective, bundle_type, &draft);
    let verdict =
        justify::justify(ctx, quality, input.objective, bundle_type, &draft).and_then(|j| {
            if score.total < quality.min_score {
                Err(LeftOut::BelowMinScore)
            } else {
                Ok(j)
            }
        });
    let justification = match verdict {
        Ok(j) => j,
        Err(why) => {
            tally.note(input, bundle_type, why, &draft, score.total);
            return None;
        }
    };
    Some(Candidate::new(
        ctx,
        (input.objective, bundle_type),
        draft,
        (cp, score),
        justification,
        false,
    ))
}

/// Runs one cell's generator, scores its drafts, merges duplicates (keeping every
/// source) and keeps the best.
pub fn run_cell(
    input: &CellInput<'_>,
    bundle_type: BundleType,
    weights: Weights,
    quality: &QualitySettings,
    keep: usize,
) -> (Vec<Candidate>, CellSummary) {
    if let Some(summary) = unjustifiable_cell(input.objective, bundle_type, quality) {
        return (Vec::new(), summary);
    }
    let drafts = match bundle_type {
        BundleType::Fixed => fixed::generate(input),
        BundleType::MixMatch => mix_match::generate(input),
        BundleType::Volume => volume::generate(input),
        BundleType::Bogo => bogo::generate(input),
        BundleType::Addon => addon::generate(input),
    };
    let merged = merge_drafts(input, bundle_type, drafts);
    let mut tally = LeftOutTally::default();
    let mut out: Vec<Candidate> = merged
        .into_iter()
        .filter_map(|draft| judge(input, bundle_type, weights, quality, draft, &mut tally))
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total
            .total_cmp(&a.score.total)
            .then_with(|| a.draft.products.cmp(&b.draft.products))
    });
    let justified = out.len();
    out.truncate(keep);
    let summary = CellSummary {
        objective: input.objective,
        bundle_type,
        candidates: out.len(),
        justified,
        why: out.is_empty().then(|| {
            if tally.left_out.is_empty() {
                why_empty(input.objective, bundle_type, input.anchors.len())
            } else {
                "every candidate was left out for quality (see left_out)".to_owned()
            }
        }),
        left_out: tally.left_out,
        examples: tally.examples,
    };
    (out, summary)
}

/// What phase 1 found.
pub struct Found {
    pub candidates: Vec<Candidate>,
    /// The same candidates as the output shows them.
    pub outs: Vec<CandidateOut>,
    pub cells: Vec<CellSummary>,
    pub proposals: Vec<ProposalSummary>,
    /// What became of the merchant's pins.
    pub pins: Vec<pinned::PinOutcome>,
    pub timings: Vec<TaskTiming>,
}

/// Phase 1: the model's proposals for every objective at once, then the variant's
/// objective × type cells on blocking threads (at most `pipeline.threads`); results
/// come back in cell order.
pub async fn run(
    ctx: &Arc<Context>,
    variant: &Variant,
    settings: &Settings,
    gateway: &Gateway,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<Found, PipelineError> {
    let p = &settings.pipeline;
    let objectives = variant.objectives();
    let types = variant.bundle_types();
    let cells: Vec<(Objective, BundleType)> = objectives
        .iter()
        .flat_map(|&o| types.iter().map(move |&t| (o, t)))
        .collect();
    let total = cells.len() as u64;
    let phase = PhaseScope::start(observer, Phase::Candidates, Some(total));
    let anchor_lists: Vec<Vec<u32>> = objectives
        .iter()
        .map(|&o| anchors(ctx, o, p.anchors_per_objective))
        .collect();

    let asked = ctx.clock.ms();
    let mut proposed = Vec::with_capacity(objectives.len());
    let mut summaries = Vec::with_capacity(objectives.len());
    if variant.sources.model {
        let answers = cancel
            .guard(futures_util::future::join_all(
                objectives.iter().zip(&anchor_lists).map(|(&o, anchors)| {
                    proposals(
                        ctx,
                        gateway,
                        o,
                        anchors,
                        variant.sources,
                        p,
                        &settings.quality,
                    )
                }),
            ))
            .await?;
        for (&o, answer) in objectives.iter().zip(answers) {
            let (drafts, source, contradicted) = answer?;
            summaries.push(ProposalSummary {
                objective: o,
                source,
                proposals: drafts.len(),
                contradicted,
            });
            proposed.push(drafts);
        }
    } else {
        proposed.resize_with(objectives.len(), Vec::new);
    }
    let proposals_timing = ctx.clock.span("candidates", "llm_proposals", asked);

    let generated = ctx.clock.ms();
    let job = CellJob {
        ctx: ctx.clone(),
        cells,
        objectives,
        anchor_lists,
        proposed,
        weights: variant.weights.map_or(ctx.weights, Weights::from_array),
        quality: settings.quality.clone(),
        sources: variant.sources,
        partners: p.partners_per_anchor,
        keep: p.candidates_per_cell,
        threads: settings.pipeline_threads(),
    };
    let results = blocking(
        cancel,
        move |progress, cancel| job.run(progress, cancel),
        |done| phase.progress(done, total),
    )
    .await??;
    let cells_timing = ctx.clock.span("candidates", "generators", generated);
    let mut cell_summaries = Vec::with_capacity(results.len());
    let weights = variant.weights.map_or(ctx.weights, Weights::from_array);
    // The merchant's pins first (when the run honours them): they go through phase 2
    // like any candidate, so they absorb their near-copies and share its caps.
    let (mut all, pins) = if variant.merchant.pins {
        pinned::candidates(ctx, weights, &settings.quality)
    } else {
        (Vec::new(), Vec::new())
    };
    for (found, summary) in results {
        all.extend(found);
        cell_summaries.push(summary);
    }
    let outs: Vec<CandidateOut> = all.iter().map(|c| candidate_out(ctx, c)).collect();
    phase.finish(vec![("cells", total), ("candidates", all.len() as u64)]);
    Ok(Found {
        candidates: all,
        outs,
        cells: cell_summaries,
        proposals: summaries,
        pins,
        timings: vec![proposals_timing, cells_timing],
    })
}

fn candidate_out(ctx: &Context, c: &Candidate) -> CandidateOut {
    let products = document::items(ctx, &c.draft);
    CandidateOut {
        objective: c.objective,
        bundle_type: c.bundle_type,
        currency: ctx.product(c.draft.products[0]).price.currency.to_string(),
        list_price_minor: economics::list_price(ctx, c),
        products,
        pick: c.draft.pick,
        tiers: c.draft.tiers.clone(),
        score: c.score,
        sources: c.draft.sources.iter().copied().collect(),
        rules: c.rules.clone(),
        neighbours: c.neighbours.clone(),
        llm_reason: c.draft.llm_reason.clone(),
    }
}

type CellResult = (Vec<Candidate>, CellSummary);
type PartnerLists = HashMap<u32, Vec<(u32, Source)>>;

/// The generators' work, owned, so it can move to blocking threads.
struct CellJob {
    ctx: Arc<Context>,
    cells: Vec<(Objective, BundleType)>,
    objectives: Vec<Objective>,
    anchor_lists: Vec<Vec<u32>>,
    proposed: Vec<Vec<(BundleType, Draft)>>,
    weights: Weights,
    quality: QualitySettings,
    sources: CandidateSources,
    partners: usize,
    keep: usize,
    threads: usize,
}

impl CellJob {
    /// Runs every cell on `threads` threads; checks the token before each cell.
    fn run(
        self,
        progress: &(dyn Fn(u64) + Sync),
        cancel: &CancelToken,
    ) -> Result<Vec<CellResult>, PipelineError> {
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<CellResult>>> = self
            .cells
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        // An objective's cells share its anchors' partner lists: the first cell to
        // need them computes them.
        let partner_lists: Vec<std::sync::OnceLock<PartnerLists>> = self
            .objectives
            .iter()
            .map(|_| std::sync::OnceLock::new())
            .collect();
        std::thread::scope(|scope| {
            for _ in 0..self.threads.clamp(1, self.cells.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        if cancel.is_cancelled() {
                            break;
                        }
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(o, t)) = self.cells.get(k) else {
                            break;
                        };
                        let oi = self.objectives.iter().position(|&x| x == o).unwrap_or(0);
                        let mut input = CellInput {
                            ctx: &self.ctx,
                            objective: o,
                            anchors: &self.anchor_lists[oi],
                            partners: self.partners,
                            sources: self.sources,
                            proposed: self.proposed[oi]
                                .iter()
                                .filter(|(pt, _)| *pt == t)
                                .map(|(_, d)| d.clone())
                                .collect(),
                            partner_cache: None,
                            quality: &self.quality,
                        };
                        let lists = partner_lists[oi].get_or_init(|| input.partner_lists());
                        input.partner_cache = Some(lists);
                        let result = run_cell(&input, t, self.weights, &self.quality, self.keep);
                        if let Ok(mut slot) = slots[k].lock() {
                            *slot = Some(result);
                        }
                        progress(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
                    }
                });
            }
        });
        cancel.check()?;
        let results: Vec<CellResult> = slots
            .into_iter()
            .filter_map(|s| s.into_inner().ok().flatten())
            .collect();
        if results.len() != self.cells.len() {
            return Err(PipelineError::Internal(
                "a candidate generator failed".into(),
            ));
        }
        Ok(results)
    }
}

/// What the model proposed for one objective.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalSummary {
    pub objective: Objective,
    /// Who answered; `null` when the objective had no anchors to ask about.
    pub source: Option<TextSource>,
    pub proposals: usize,
    /// Proposals the store's orders contradict (well under chance), dropped.
    pub contradicted: usize,
}

/// A scored candidate as `generate --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateOut {
    pub objective: Objective,
    pub bundle_type: BundleType,
    pub products: Vec<BundleItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pick: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<u32>,
    pub currency: String,
    pub list_price_minor: i64,
    pub score: ScoreBreakdown,
    pub sources: Vec<Source>,
    pub rules: Vec<RuleEvidence>,
    pub neighbours: Vec<NeighbourEvidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_reason: Option<String>,
}
