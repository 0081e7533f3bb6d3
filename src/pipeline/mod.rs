//! The engine: `prepare` (phase 0) once per store and day, `run` (phases 1–3) once per
//! variant over that context, and `persist::save` (phase 4) the caller's step. This
//! file is the only place the phase order appears:
//!
//! 0. [`context::prepare`]: embeddings, similarity graph, co-purchase evidence,
//!    classification and store statistics, all at once; plain data afterwards;
//! 1. [`candidates::run`]: 8 objectives × 5 bundle types = 40 generators in parallel,
//!    each draft scored α·llm + β·transactional + γ·business;
//! 2. [`optimize::run`]: dedup, safety guard, Pareto front, the published choice,
//!    prices (Bayesian, blended with the model's advice);
//! 3. [`copy::run`]: copy and explanation, batched through the language model, and
//!    the published bundles assembled;
//! 4. [`persist::save`]: the run and its bundles in one transaction ([`output`] writes
//!    the files).
//!
//! Every phase reports to a [`RunObserver`] and stops at a [`CancelToken`]; a
//! cancelled or failed run returns an error and persists nothing.

pub mod approvals;
pub mod candidates;
pub mod clusters;
pub mod context;
pub mod copy;
pub mod justify;
pub mod observe;
pub mod optimize;
pub mod output;
pub mod persist;
pub mod variant;

use std::sync::Arc;

use serde::Serialize;

use crate::cancel::{CancelToken, Cancelled};
use crate::domain::{Bundle, BundleItem, BundleType, Objective, ScoreBreakdown, TextSource};
use crate::error::ErrorKind;
use crate::llm::gateway::{Gateway, LlmReport};
use crate::llm::offline::OfflineLlm;
use crate::services::Services;
use crate::stats::{Assumption, Tier, Weights};
use candidates::{CellSummary, NeighbourEvidence, RuleEvidence, Source};
pub use context::{Context, OrderScope, PrepareOptions, PriorScope, prepare};
pub use observe::{NoObserver, Phase, Recorder, RunEvent, RunObserver};
pub use variant::{CandidateSources, PricingKnobs, Variant};

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
    #[error(transparent)]
    Prior(#[from] crate::prior::PriorError),
    #[error("store {0} has no orders up to the run's date")]
    NoOrders(String),
    #[error(transparent)]
    Invalid(#[from] variant::InvalidVariant),
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error("internal error: {0}")]
    Internal(String),
}

impl PipelineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Store(e) => e.kind(),
            PipelineError::Embed(e) => e.kind(),
            PipelineError::Llm(_) | PipelineError::LlmSetup(_) => ErrorKind::Internal,
            PipelineError::NoOrders(_) => ErrorKind::NotFound,
            PipelineError::Prior(_) => ErrorKind::BadInput,
            PipelineError::Invalid(_) => ErrorKind::BadInput,
            PipelineError::Cancelled(_) => ErrorKind::Cancelled,
            PipelineError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// When a task of a phase ran, in milliseconds from the context's start.
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
    /// When phase 1 started.
    pub started_at: String,
    pub store_id: String,
    pub locale: String,
    pub as_of: String,
    pub as_of_time: String,
    /// Where the date came from: `given`, `latest_order`, or for a store without
    /// orders `latest_product` or `first_ingest`.
    pub as_of_source: crate::stats::AsOfSource,
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
    /// What the store's orders say about what goes together.
    pub evidence: justify::StoreEvidence,
    /// The complement prior's sources: which were used, onto how many products they
    /// mapped, and why one was left out.
    pub prior: Vec<crate::prior::SourceUse>,
    /// The kinds of product shown to a configured model and the pairs it named as
    /// going together (absent when no model was asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_complements: Option<crate::prior::named::NamedSummary>,
    /// What was left out for quality and why (counts only).
    pub quality: QualityReport,
    /// The merchant's rules in force, what they removed, and each pin's fate.
    pub store_rules: candidates::pinned::StoreRulesReport,
    pub optimize: optimize::OptimizeReport,
    pub bundles: usize,
    /// The model's use by this run, with phase 0's classification calls (made once per
    /// context).
    pub llm: LlmReport,
    /// What the run varied.
    pub variant: Variant,
    /// What the run did with the merchant's approvals and rejections (absent when the
    /// store has none, and in `eval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<approvals::ApprovalsReport>,
}

/// What the quality rules did: every draft considered, how many were justified, and
/// how many were left out, by reason (see [`justify`]). A run publishes fewer than
/// `max_bundles` rather than fill with what is left out here.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityReport {
    pub considered: usize,
    pub justified: usize,
    pub left_out: std::collections::BTreeMap<justify::LeftOut, usize>,
    /// Published bundles whose list is empty (never more than 0: the rules forbid it).
    pub unjustified_published: usize,
}

impl QualityReport {
    fn of(cells: &[CellSummary], bundles: &[Bundle]) -> QualityReport {
        let mut q = QualityReport::default();
        for c in cells {
            q.justified += c.justified;
            for (&why, &n) in &c.left_out {
                *q.left_out.entry(why).or_default() += n;
            }
        }
        q.considered = q.justified + q.left_out.values().sum::<usize>();
        q.unjustified_published = bundles
            .iter()
            .filter(|b| b.explanation.justification.is_empty())
            .count();
        q
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

/// A finished run: its summary and bundles (what `generate --json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct RunOutput {
    pub run: RunSummary,
    pub bundles: Vec<Bundle>,
    /// Every scored candidate of phase 1 (for inspection and evaluation; not part of
    /// the printed document).
    #[serde(skip)]
    pub candidates: Vec<CandidateOut>,
    /// A few candidates the quality rules left out, for the report.
    #[serde(skip)]
    pub left_out_examples: Vec<candidates::LeftOutExample>,
    #[serde(skip)]
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub finished_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub as_of: chrono::DateTime<chrono::Utc>,
}

impl RunOutput {
    /// The same run under the caller's id (a job's), instead of its fresh ULID.
    pub fn with_id(mut self, run_id: impl Into<String>) -> RunOutput {
        self.run.run_id = run_id.into();
        self
    }
}

/// Runs CPU work on a blocking thread. Its progress counts come back over a channel
/// to `on_progress`, called on this task, so an observer never has to be `'static`.
async fn blocking<T: Send + 'static>(
    cancel: &CancelToken,
    work: impl FnOnce(&(dyn Fn(u64) + Sync), &CancelToken) -> T + Send + 'static,
    on_progress: impl Fn(u64),
) -> Result<T, PipelineError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let token = cancel.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let progress = move |n: u64| {
            let _ = tx.send(n);
        };
        work(&progress, &token)
    });
    while let Some(n) = rx.recv().await {
        on_progress(n);
    }
    handle
        .await
        .map_err(|e| PipelineError::Internal(format!("a worker failed: {e}")))
}

/// A new globally unique run id.
pub fn new_run_id() -> String {
    ulid::Ulid::new().to_string()
}

/// The language model as one run sees it: the process's client with a usage book of
/// its own, and the offline provider over the context's vectors.
async fn run_gateway(ctx: &Context, services: &Services) -> Result<Gateway, PipelineError> {
    let offline = Arc::new(OfflineLlm::new(
        services.embedder().await?,
        ctx.offline_vectors(),
    ));
    // One budget for phase 0 and this run, as a lone `generate` has: counted from
    // as long before now as phase 0 took, so each of several runs over one context
    // (a cohort's variants) gets the same, not what the runs before it left.
    let prepared = std::time::Duration::try_from_secs_f64(ctx.load_seconds + ctx.context_seconds)
        .unwrap_or_default();
    let started = std::time::Instant::now()
        .checked_sub(prepared)
        .unwrap_or(ctx.clock.0);
    Ok(Gateway::new(
        services.model.for_run(started),
        offline,
        &services.settings.llm,
    ))
}

/// Phases 1–3 of one variant over a prepared context. Persists nothing: the caller
/// saves the output ([`persist::save`]) if it wants it kept.
#[tracing::instrument(skip_all, fields(store = %ctx.data.store.id))]
pub async fn run(
    ctx: &Arc<Context>,
    variant: &Variant,
    services: &Services,
    observer: &dyn RunObserver,
    cancel: &CancelToken,
) -> Result<RunOutput, PipelineError> {
    variant.validate()?;
    cancel.check()?;
    let started_at = chrono::Utc::now();
    let started = ctx.clock.ms();
    let settings = &services.settings;
    let gateway = run_gateway(ctx, services).await?;

    // Phase 1.
    let found = candidates::run(ctx, variant, settings, &gateway, observer, cancel).await?;
    let candidates_done = ctx.clock.ms();
    cancel.check()?;

    // Phase 2.
    let optimize_settings =
        variant.optimize_settings(&settings.optimize, variant.objectives().len());
    let priced = optimize::run(
        ctx,
        found.candidates,
        &optimize_settings,
        &gateway,
        observer,
        cancel,
    )
    .await?;
    let optimize_done = ctx.clock.ms();
    cancel.check()?;

    // Phase 3.
    let bundles = copy::run(
        ctx,
        &priced.offers,
        &priced.prices,
        &gateway,
        observer,
        cancel,
    )
    .await?;
    let copy_done = ctx.clock.ms();
    let finished_at = chrono::Utc::now();

    let mut llm = ctx.llm.clone();
    llm.merge(&gateway.report());
    let mut tasks = ctx.timings.clone();
    tasks.extend(found.timings);
    tasks.extend(priced.timings);
    tasks.push(
        ctx.clock
            .span("copy", "copy_and_explanation", optimize_done),
    );
    let weights = variant.weights.map_or(ctx.weights, Weights::from_array);
    let run = RunSummary {
        run_id: new_run_id(),
        created_at: finished_at.to_rfc3339(),
        started_at: started_at.to_rfc3339(),
        store_id: ctx.data.store.id.to_string(),
        locale: ctx.data.store.locale.clone(),
        as_of: ctx.as_of.date_naive().to_string(),
        as_of_time: ctx.as_of.to_rfc3339(),
        as_of_source: ctx.as_of_source,
        seed: variant.seed,
        orders_in_window: ctx.orders_in_window,
        tier: ctx.tier,
        weights,
        weights_overridden: variant.weights.is_some(),
        products: ctx.data.products.len(),
        eligible_products: ctx.signals.iter().filter(|s| s.eligible).count(),
        baskets: ctx.baskets,
        pairs: ctx.evidence.pairs.pairs.len(),
        itemsets: ctx.itemsets.len(),
        classification: ctx.classification_source,
        proposals: found.proposals,
        assumed: ctx.assumed.clone(),
        timings: PhaseTimings {
            load_seconds: ctx.load_seconds,
            context_seconds: ctx.context_seconds,
            candidates_seconds: (candidates_done - started) / 1000.0,
            optimize_seconds: (optimize_done - candidates_done) / 1000.0,
            copy_seconds: (copy_done - optimize_done) / 1000.0,
            persist_seconds: 0.0,
            total_seconds: ctx.load_seconds + ctx.context_seconds + (copy_done - started) / 1000.0,
            tasks,
        },
        candidates: found.outs.len(),
        evidence: ctx.store_evidence.clone(),
        prior: ctx.prior.sources.clone(),
        model_complements: ctx.model_complements.summary(),
        quality: QualityReport::of(&found.cells, &bundles),
        store_rules: candidates::pinned::StoreRulesReport::of(
            ctx,
            found.pins,
            &priced.offers,
            &priced.report,
        ),
        cells: found.cells.clone(),
        optimize: priced.report,
        bundles: bundles.len(),
        llm,
        variant: variant.clone(),
        approvals: None,
    };
    let left_out_examples = found
        .cells
        .into_iter()
        .flat_map(|c| c.examples)
        .take(40)
        .collect();
    Ok(RunOutput {
        run,
        bundles,
        candidates: found.outs,
        left_out_examples,
        started_at,
        finished_at,
        as_of: ctx.as_of,
    })
}
