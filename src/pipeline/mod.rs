//! `generate`: one run for one store. This file is the only place the phase order
//! appears:
//!
//! 0. [`context`]: embeddings, similarity graph, co-purchase evidence, classification
//!    and store statistics, all at once;
//! 1. [`candidates`]: 8 objectives × 5 bundle types = 40 generators in parallel, each
//!    draft scored α·llm + β·transactional + γ·business.
//!
//! Phases 2–4 (optimisation, pricing, copy, storage) follow in the next part.

pub mod candidates;
mod clusters;
pub mod context;

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use crate::config::Settings;
use crate::domain::{BundleType, Objective, ScoreBreakdown, StoreId, TextSource};
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
    pub total_seconds: f64,
    pub tasks: Vec<TaskTiming>,
}

/// The run summary (`run` in the JSON).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub store_id: String,
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

#[derive(Debug, Clone, Serialize)]
pub struct ProductOut {
    pub product_id: String,
    pub sku: Option<String>,
    pub title: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

/// A scored candidate as `generate --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateOut {
    pub objective: Objective,
    pub bundle_type: BundleType,
    pub products: Vec<ProductOut>,
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
    pub candidates: Vec<CandidateOut>,
}

fn candidate_out(ctx: &Context, c: &candidates::Candidate) -> CandidateOut {
    let products: Vec<ProductOut> = c
        .draft
        .products
        .iter()
        .zip(&c.draft.quantities)
        .map(|(&i, &q)| {
            let p = ctx.product(i);
            ProductOut {
                product_id: p.variant_id.clone(),
                sku: p.sku.clone(),
                title: p.display_title(),
                quantity: q,
                unit_price_minor: p.price.minor,
            }
        })
        .collect();
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
    std::thread::scope(|scope| {
        for _ in 0..threads.min(cells.len()) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(o, t)) = cells.get(k) else { break };
                    let oi = objectives.iter().position(|&x| x == o).unwrap_or(0);
                    let input = CellInput {
                        ctx,
                        objective: o,
                        anchors: &anchor_lists[oi],
                        partners: p.partners_per_anchor,
                        proposed: proposals[oi]
                            .iter()
                            .filter(|(pt, _)| *pt == t)
                            .map(|(_, d)| d.clone())
                            .collect(),
                    };
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
    let proposals_timing = TaskTiming {
        phase: "candidates",
        task: "llm_proposals",
        start_ms: asked,
        end_ms: clock.ms(),
    };

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
    let cells_timing = TaskTiming {
        phase: "candidates",
        task: "generators",
        start_ms: generated,
        end_ms: clock.ms(),
    };
    let mut cell_summaries = Vec::with_capacity(results.len());
    let mut out = Vec::new();
    for (found, summary) in results {
        out.extend(found.iter().map(|c| candidate_out(&ctx, c)));
        cell_summaries.push(summary);
    }
    let total = clock.ms();
    let mut tasks = ctx.timings.clone();
    tasks.push(proposals_timing);
    tasks.push(cells_timing);
    let run = RunSummary {
        store_id: store_id.to_string(),
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
            candidates_seconds: (total - context_done) / 1000.0,
            total_seconds: total / 1000.0,
            tasks,
        },
        candidates: out.len(),
        cells: cell_summaries,
        llm: ctx.llm_report(),
    };
    Ok(GenerateOutput {
        run,
        candidates: out,
    })
}
