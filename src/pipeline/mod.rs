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
//!    the published bundles assembled; then the merchant's approvals
//!    ([`approvals::apply`]) over them, when the [`Variant`] honours them;
//! 4. [`persist::save`]: the run and its bundles in one transaction ([`output`] writes
//!    the files).
//!
//! A [`RunRequest`] says what to prepare and what the run varies. The context is
//! plain data, never changed after `prepare`: what a run may vary (the merchant's pins
//! and approvals included) is the variant's. Every phase reports to a
//! [`RunObserver`] and stops at a [`CancelToken`]; a cancelled or failed run returns
//! an error and persists nothing.
//!
//! The files below read bottom-up (`docs/architecture.md` draws them): [`model`] the
//! shared vocabulary, then [`variant`] and [`request`], [`evidence`], [`context`],
//! [`justify`] / [`economics`] / [`document`], [`candidates`], [`optimize`],
//! [`copy`], [`summary`] and [`approvals`], this file, and [`output`] / [`persist`].

pub mod approvals;
pub mod candidates;
pub mod context;
pub mod copy;
pub mod document;
pub mod economics;
pub mod error;
pub mod evidence;
pub mod justify;
pub mod model;
pub mod observe;
pub mod optimize;
pub mod output;
pub mod persist;
pub mod request;
pub mod summary;
pub mod variant;

use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::domain::Bundle;
use crate::llm::gateway::Gateway;
use crate::llm::offline::OfflineLlm;
use crate::services::Services;
use crate::stats::Weights;
use candidates::Found;
pub use candidates::{CandidateOut, ProposalSummary};
pub use context::{Context, prepare, prepare_loaded};
pub use error::PipelineError;
pub use observe::{
    NoObserver, Phase, PhaseProgress, PhaseState, Recorder, RunEvent, RunObserver, RunProgress,
    Step, StepProgress, TaskTiming,
};
use optimize::Priced;
pub use request::{
    FlatRequest, InvalidRequest, OrderScope, PrepareOptions, PriorScope, RunRequest,
};
pub use summary::{
    ApprovalsReport, CalibratedVariant, Calibration, DroppedApproval, PhaseTimings, QualityReport,
    RunOutput, RunSummary, StoreRulesReport,
};
pub use variant::{CandidateSources, MerchantInputs, PricingKnobs, Variant, WEIGHT_PRESETS};

/// A new globally unique run id.
pub fn new_run_id() -> String {
    ulid::Ulid::new().to_string()
}

/// The language model as one run sees it: the process's client with a usage book of
/// its own, and the offline provider over the context's vectors.
async fn run_gateway(ctx: &Context, services: &Services) -> Result<Gateway, PipelineError> {
    let offline =
        OfflineLlm::over_catalog(services.embedder().await?, &ctx.data.products, &ctx.vectors);
    // One budget for phase 0 and this run, as a lone `generate` has: counted from
    // as long before now as phase 0 took, so each of several runs over one context
    // (a cohort's variants) gets the same, not what the runs before it left.
    let prepared = std::time::Duration::try_from_secs_f64(ctx.load_seconds + ctx.context_seconds)
        .unwrap_or_default();
    let started = std::time::Instant::now()
        .checked_sub(prepared)
        .unwrap_or(ctx.clock.0);
    Ok(services.gateway(offline, started))
}

/// When a run started and finished, and where its phases ended on the context's clock
/// (milliseconds).
struct RunTimes {
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: chrono::DateTime<chrono::Utc>,
    started: f64,
    candidates_done: f64,
    optimize_done: f64,
    copy_done: f64,
}

/// A run's output from what its phases produced: the summary (counts, timings, the
/// model's use, the reports), the published bundles, every candidate and a few left out.
fn run_output(
    ctx: &Context,
    variant: &Variant,
    gateway: &Gateway,
    found: Found,
    priced: Priced,
    bundles: Vec<Bundle>,
    times: RunTimes,
) -> RunOutput {
    let mut llm = ctx.llm.clone();
    llm.merge(&gateway.report());
    let mut tasks = ctx.timings.clone();
    tasks.extend(found.timings);
    tasks.extend(priced.timings);
    tasks.push(
        ctx.clock
            .span("copy", "copy_and_explanation", times.optimize_done),
    );
    let weights = variant.weights.map_or(ctx.weights, Weights::from_array);
    let run = RunSummary {
        run_id: new_run_id(),
        created_at: times.finished_at.to_rfc3339(),
        started_at: times.started_at.to_rfc3339(),
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
            candidates_seconds: (times.candidates_done - times.started) / 1000.0,
            optimize_seconds: (times.optimize_done - times.candidates_done) / 1000.0,
            copy_seconds: (times.copy_done - times.optimize_done) / 1000.0,
            persist_seconds: 0.0,
            total_seconds: ctx.load_seconds
                + ctx.context_seconds
                + (times.copy_done - times.started) / 1000.0,
            tasks,
        },
        candidates: found.outs.len(),
        evidence: ctx.store_evidence.clone(),
        prior: ctx.prior.sources.clone(),
        model_complements: ctx.model_complements.summary(),
        quality: QualityReport::of(&found.cells, &bundles),
        store_rules: StoreRulesReport::of(
            ctx,
            variant.merchant.pins,
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
        calibration: Calibration::not_used(if variant.weights.is_some() {
            "the run's weights were given"
        } else {
            "not asked"
        }),
    };
    let left_out_examples = found
        .cells
        .into_iter()
        .flat_map(|c| c.examples)
        .take(40)
        .collect();
    RunOutput {
        run,
        bundles,
        candidates: found.outs,
        left_out_examples,
        started_at: times.started_at,
        finished_at: times.finished_at,
        as_of: ctx.as_of,
    }
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
    let mut found = candidates::run(ctx, variant, settings, &gateway, observer, cancel).await?;
    let candidates_done = ctx.clock.ms();
    cancel.check()?;

    // Phase 2 (it takes the candidates; the rest of `found` goes into the output).
    let optimize_settings =
        variant.optimize_settings(&settings.optimize, variant.objectives().len());
    let priced = optimize::run(
        ctx,
        std::mem::take(&mut found.candidates),
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

    let times = RunTimes {
        started_at,
        finished_at,
        started,
        candidates_done,
        optimize_done,
        copy_done,
    };
    let mut out = run_output(ctx, variant, &gateway, found, priced, bundles, times);
    // Last: the merchant's earlier decisions over what the engine chose.
    if variant.merchant.approvals && !ctx.approvals.is_empty() {
        approvals::apply(ctx, variant, &optimize_settings, &ctx.approvals, &mut out);
    }
    Ok(out)
}
