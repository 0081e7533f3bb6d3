//! `generate`: one run for one store. This file is the only place the phase order
//! appears:
//!
//! 0. [`context`]: embeddings, similarity graph, co-purchase evidence, classification
//!    and store statistics, all at once;
//! 1. [`candidates`]: 8 objectives × 5 bundle types = 40 generators in parallel, each
//!    draft scored α·llm + β·transactional + γ·business;
//! 2. [`optimize`]: dedup, safety guard, Pareto front, the published choice, prices;
//! 3. [`copy`]: copy and explanation, batched through the language model;
//! 4. [`persist`]: the run and its bundles in one transaction ([`output`] writes the
//!    files).

pub mod candidates;
mod clusters;
pub mod context;
pub mod copy;
pub mod optimize;
pub mod output;
mod persist;

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use crate::config::Settings;
use crate::domain::{
    Bundle, BundleCopy, BundleItem, BundleType, Explanation, Objective, PricingDecision,
    ScoreBreakdown, StoreId, TextSource,
};
use crate::embed::Embedder;
use crate::llm::gateway::LlmReport;
use crate::llm::provider::Llm;
use crate::stats::{Assumption, Tier, Weights};
use crate::store::Store;
use candidates::{CellInput, CellSummary, NeighbourEvidence, RuleEvidence, Source};
use context::{Clock, Context};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    #[error(transparent)]
    Llm(#[from] crate::llm::gateway::GatewayError),
    #[error(transparent)]
    LlmSetup(#[from] crate::llm::provider::TaskError),
    #[error("store {0} has no orders up to the run's date: ingest orders first, or pass --as-of")]
    NoOrders(String),
    #[error("invalid run option: {0}")]
    Invalid(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The ports a run uses. `llm` replaces the configured provider (tests, cohorts).
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub embedder: Arc<dyn Embedder>,
    pub llm: Option<Arc<dyn Llm>>,
    pub settings: Arc<Settings>,
}

/// Per-run choices.
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// End every window on this day instead of the latest order.
    pub as_of: Option<NaiveDate>,
    pub seed: u64,
    /// α, β, γ instead of the tier's.
    pub weights: Option<[f64; 3]>,
    /// Only these objectives (all when empty).
    pub objectives: Vec<Objective>,
    /// Publish at most this many bundles instead of `optimize.max_bundles`.
    pub max_bundles: Option<usize>,
}

/// When a task of a phase ran, in milliseconds from the run's start.
#[derive(Debug, Clone, Serialize)]
pub struct TaskTiming {
    pub phase: &'static str,
    pub task: &'static str,
    pub start_ms: f64,
    pub end_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseTimings {
    pub load_seconds: f64,
    pub context_seconds: f64,
    pub candidates_seconds: f64,
    pub optimize_seconds: f64,
    pub copy_seconds: f64,
    pub persist_seconds: f64,
    pub total_seconds: f64,
    pub tasks: Vec<TaskTiming>,
}

/// The run summary (`run` in the JSON).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    /// When the run finished (the wall clock; nothing else in a run reads it).
    pub created_at: String,
    pub store_id: String,
    pub locale: String,
    pub as_of: String,
    pub as_of_time: String,
    pub seed: u64,
    pub orders_in_window: u64,
    pub tier: Tier,
    pub weights: Weights,
    pub weights_overridden: bool,
    pub products: usize,
    pub eligible_products: usize,
    pub baskets: u64,
    pub pairs: usize,
    pub itemsets: usize,
    pub classification: TextSource,
    pub proposals: Vec<ProposalSummary>,
    pub assumed: Vec<Assumption>,
    pub timings: PhaseTimings,
    pub cells: Vec<CellSummary>,
    pub candidates: usize,
    pub optimize: optimize::OptimizeReport,
    pub bundles: usize,
    pub llm: LlmReport,
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

#[derive(Debug, Clone, Serialize)]
pub struct GenerateOutput {
    pub run: RunSummary,
    pub bundles: Vec<Bundle>,
    /// Every scored candidate of phase 1 (for inspection and evaluation; not part of
    /// the printed document).
    #[serde(skip)]
    pub candidates: Vec<CandidateOut>,
}

/// The products of a draft as bundles show them.
fn items(ctx: &Context, draft: &candidates::Draft) -> Vec<BundleItem> {
    draft
        .products
        .iter()
        .zip(&draft.quantities)
        .map(|(&i, &q)| {
            let p = ctx.product(i);
            BundleItem {
                product_id: p.variant_id.clone(),
                sku: p.sku.clone(),
                title: p.display_title(),
                quantity: q,
                unit_price_minor: p.price.minor,
            }
        })
        .collect()
}

fn candidate_out(ctx: &Context, c: &candidates::Candidate) -> CandidateOut {
    let products = items(ctx, &c.draft);
    let list_price_minor = products
        .iter()
        .map(|p| p.unit_price_minor * i64::from(p.quantity))
        .sum();
    CandidateOut {
        objective: c.objective,
        bundle_type: c.bundle_type,
        currency: ctx.product(c.draft.products[0]).price.currency.to_string(),
        products,
        pick: c.draft.pick,
        tiers: c.draft.tiers.clone(),
        list_price_minor,
        score: c.score,
        sources: c.draft.sources.iter().copied().collect(),
        rules: c.rules.clone(),
        neighbours: c.neighbours.clone(),
        llm_reason: c.draft.llm_reason.clone(),
    }
}

type CellResult = (Vec<candidates::Candidate>, CellSummary);
type PartnerLists = std::collections::HashMap<u32, Vec<(u32, Source)>>;

/// Runs the 40 generators on every core; results come back in cell order.
fn run_cells(
    ctx: &Context,
    cells: &[(Objective, BundleType)],
    objectives: &[Objective],
    anchor_lists: &[Vec<u32>],
    proposals: &[Vec<(BundleType, candidates::Draft)>],
    weights: Weights,
    p: &crate::config::PipelineSettings,
) -> Vec<CellResult> {
    let threads = crate::config::thread_count(0).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<CellResult>>> =
        cells.iter().map(|_| std::sync::Mutex::new(None)).collect();
    // An objective's five cells share its anchors' partner lists: the first cell to
    // need them computes them.
    let partner_lists: Vec<std::sync::OnceLock<PartnerLists>> = objectives
        .iter()
        .map(|_| std::sync::OnceLock::new())
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.min(cells.len()) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(o, t)) = cells.get(k) else { break };
                    let oi = objectives.iter().position(|&x| x == o).unwrap_or(0);
                    let mut input = CellInput {
                        ctx,
                        objective: o,
                        anchors: &anchor_lists[oi],
                        partners: p.partners_per_anchor,
                        proposed: proposals[oi]
                            .iter()
                            .filter(|(pt, _)| *pt == t)
                            .map(|(_, d)| d.clone())
                            .collect(),
                        partner_cache: None,
                    };
                    let lists = partner_lists[oi].get_or_init(|| input.partner_lists());
                    input.partner_cache = Some(lists);
                    let result = candidates::run_cell(&input, t, weights, p.candidates_per_cell);
                    if let Ok(mut slot) = slots[k].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|s| s.into_inner().ok().flatten())
        .collect()
}

/// Runs the pipeline for one store.
#[tracing::instrument(skip_all, fields(store = %store_id))]
pub async fn generate(
    deps: &Deps,
    store_id: &StoreId,
    options: &GenerateOptions,
) -> Result<GenerateOutput, PipelineError> {
    let clock = Clock(Instant::now());
    let started_at = chrono::Utc::now();
    let settings = deps.settings.clone();
    if let Some(w) = options.weights {
        crate::config::check_weights("--weights", w)
            .map_err(|e| PipelineError::Invalid(e.to_string()))?;
    }
    let data = deps.store.load(store_id).await?;
    let load_seconds = clock.ms() / 1000.0;

    // Phase 0.
    let mut ctx = context::prepare(deps, data, options.as_of, options.seed, clock).await?;
    let context_done = clock.ms();
    let weights_overridden = options.weights.is_some();
    if let Some(w) = options.weights {
        ctx.weights = Weights::from_array(w);
    }

    // Phase 1: the model's proposals for every objective at once, then the 40 cells.
    let objectives: Vec<Objective> = if options.objectives.is_empty() {
        Objective::ALL.to_vec()
    } else {
        Objective::ALL
            .into_iter()
            .filter(|o| options.objectives.contains(o))
            .collect()
    };
    let p = &settings.pipeline;
    let anchor_lists: Vec<Vec<u32>> = objectives
        .iter()
        .map(|&o| candidates::anchors(&ctx, o, p.anchors_per_objective))
        .collect();
    let asked = clock.ms();
    let answers = futures_util::future::join_all(
        objectives
            .iter()
            .zip(&anchor_lists)
            .map(|(&o, anchors)| candidates::proposals(&ctx, o, anchors, p)),
    )
    .await;
    let mut proposals = Vec::with_capacity(objectives.len());
    let mut summaries = Vec::with_capacity(objectives.len());
    for (&o, answer) in objectives.iter().zip(answers) {
        let (drafts, source, contradicted) = answer?;
        summaries.push(ProposalSummary {
            objective: o,
            source,
            proposals: drafts.len(),
            contradicted,
        });
        proposals.push(drafts);
    }
    let proposals_timing = clock.span("candidates", "llm_proposals", asked);

    let generated = clock.ms();
    let weights = ctx.weights;
    let cells: Vec<(Objective, BundleType)> = objectives
        .iter()
        .flat_map(|&o| BundleType::ALL.into_iter().map(move |t| (o, t)))
        .collect();
    let results = run_cells(
        &ctx,
        &cells,
        &objectives,
        &anchor_lists,
        &proposals,
        weights,
        p,
    );
    if results.len() != cells.len() {
        return Err(PipelineError::Internal(
            "a candidate generator failed".into(),
        ));
    }
    let cells_timing = clock.span("candidates", "generators", generated);
    let mut cell_summaries = Vec::with_capacity(results.len());
    let mut all = Vec::new();
    for (found, summary) in results {
        all.extend(found);
        cell_summaries.push(summary);
    }
    let candidate_outs: Vec<CandidateOut> = all.iter().map(|c| candidate_out(&ctx, c)).collect();
    let candidate_count = all.len();
    let candidates_done = clock.ms();

    // Phase 2: dedup, guard, Bayesian prices, Pareto front, the published choice; then
    // the model's price advice for the chosen and their final prices.
    let started = clock.ms();
    let mut optimize_settings = settings.optimize.clone();
    if let Some(n) = options.max_bundles {
        optimize_settings.max_bundles = n.max(1);
    }
    // A run over fewer objectives may fill its bundles from them.
    optimize_settings.max_per_objective = optimize_settings.max_per_objective.max(
        optimize_settings
            .max_bundles
            .div_ceil(objectives.len().max(1)),
    );
    let (offers, optimized) = optimize::optimize(&ctx, all, &optimize_settings);
    let optimize_timing = clock.span("optimize", "dedup_guard_pareto", started);
    let started = clock.ms();
    let ids: Vec<String> = offers.iter().map(|o| copy::bundle_id(&ctx, o)).collect();
    let docs: Vec<_> = offers
        .iter()
        .zip(&ids)
        .map(|(o, id)| copy::bundle_doc(&ctx, id, o, None, None))
        .collect();
    let advice = ctx.gateway.advise_price(&docs).await?;
    let prices: Vec<optimize::FinalPrice> = offers
        .iter()
        .zip(&advice)
        .map(|(o, a)| optimize::final_price(o, Some(a), &optimize_settings))
        .collect();
    let pricing_timing = clock.span("optimize", "price_advice", started);
    let optimize_done = clock.ms();

    // Phase 3: copy and explanation, batched.
    let started = clock.ms();
    let docs: Vec<_> = offers
        .iter()
        .zip(&ids)
        .zip(&prices)
        .map(|((o, id), p)| {
            copy::bundle_doc(&ctx, id, o, Some(p.final_minor), Some(p.discount_pct))
        })
        .collect();
    let locale = ctx.data.store.locale.clone();
    let copies = ctx.gateway.write_copy(&docs, &locale).await?;
    let copy_timing = clock.span("copy", "copy_and_explanation", started);
    let copy_done = clock.ms();
    let bundles: Vec<Bundle> = offers
        .iter()
        .zip(ids)
        .zip(prices)
        .zip(copies)
        .map(|(((o, id), p), c)| assemble(&ctx, o, id, p, c))
        .collect();

    let mut tasks = ctx.timings.clone();
    tasks.extend([
        proposals_timing,
        cells_timing,
        optimize_timing,
        pricing_timing,
        copy_timing,
    ]);
    let mut run = RunSummary {
        run_id: String::new(),
        created_at: String::new(),
        store_id: store_id.to_string(),
        locale,
        as_of: ctx.as_of.date_naive().to_string(),
        as_of_time: ctx.as_of.to_rfc3339(),
        seed: options.seed,
        orders_in_window: ctx.orders_in_window,
        tier: ctx.tier,
        weights: ctx.weights,
        weights_overridden,
        products: ctx.data.products.len(),
        eligible_products: ctx.signals.iter().filter(|s| s.eligible).count(),
        baskets: ctx.baskets,
        pairs: ctx.evidence.pairs.pairs.len(),
        itemsets: ctx.itemsets.len(),
        classification: ctx.classification_source,
        proposals: summaries,
        assumed: ctx.assumed.clone(),
        timings: PhaseTimings {
            load_seconds,
            context_seconds: (context_done / 1000.0) - load_seconds,
            candidates_seconds: (candidates_done - context_done) / 1000.0,
            optimize_seconds: (optimize_done - candidates_done) / 1000.0,
            copy_seconds: (copy_done - optimize_done) / 1000.0,
            persist_seconds: 0.0,
            total_seconds: 0.0,
            tasks,
        },
        candidates: candidate_count,
        cells: cell_summaries,
        optimize: optimized,
        bundles: bundles.len(),
        llm: ctx.llm_report(),
    };

    // Phase 4: the run and its bundles in one transaction.
    let started = clock.ms();
    let finished_at = chrono::Utc::now();
    run.created_at = finished_at.to_rfc3339();
    run.run_id = format!(
        "run-{}-{}",
        finished_at.format("%Y%m%dT%H%M%S%.3fZ"),
        &crate::embed::content_hash(&format!(
            "{store_id}{}{}",
            options.seed,
            finished_at.timestamp_nanos_opt().unwrap_or(0)
        ))[..8]
    );
    persist::save(
        deps.store.as_ref(),
        &run,
        &bundles,
        &ctx,
        options,
        started_at,
        finished_at,
    )
    .await?;
    run.timings.persist_seconds = (clock.ms() - started) / 1000.0;
    run.timings
        .tasks
        .push(clock.span("persist", "store", started));
    run.timings.total_seconds = clock.ms() / 1000.0;
    Ok(GenerateOutput {
        run,
        bundles,
        candidates: candidate_outs,
    })
}

/// A published bundle from its offer, price and copy.
fn assemble(
    ctx: &Context,
    o: &optimize::Offer,
    id: String,
    p: optimize::FinalPrice,
    copy: crate::llm::gateway::Sourced<crate::llm::answer::Copy>,
) -> Bundle {
    let c = &o.candidate;
    let currency = ctx.product(c.draft.products[0]).price.currency;
    let products = items(ctx, &c.draft);
    let discount_pct = if o.list_minor > 0 {
        ((o.list_minor - p.final_minor) as f64 / o.list_minor as f64 * 10_000.0).round() / 100.0
    } else {
        0.0
    };
    Bundle {
        id,
        objective: c.objective,
        bundle_type: c.bundle_type,
        products,
        pick: c.draft.pick,
        tiers: c.draft.tiers.clone(),
        currency,
        list_price_minor: o.list_minor,
        final_price_minor: p.final_minor,
        discount_pct,
        expected_margin_minor: p.final_minor - o.cost_minor,
        cost_assumed: o.cost_assumed,
        inventory_untracked: o.inventory_untracked,
        pareto_rank: o.pareto_rank,
        score: c.score,
        pricing: PricingDecision {
            bayesian_pct: f64::from(o.bayesian_pct),
            llm_pct: p.llm_pct,
            reason: p.reason,
        },
        copy: BundleCopy {
            title: copy.value.title,
            description: copy.value.description,
            badge: copy.value.badge,
            source: copy.source,
        },
        explanation: Explanation {
            text: copy.value.explanation,
            rules: c
                .rules
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect(),
            neighbours: c
                .neighbours
                .iter()
                .map(|n| serde_json::to_value(n).unwrap_or_default())
                .collect(),
            source: copy.source,
        },
    }
}
