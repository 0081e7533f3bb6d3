//! What a run reports: its summary (`run` in the JSON), phase timings, what quality,
//! the merchant's rules and approvals did, and the finished output. Filled in by
//! `run` from every phase's results; read by the files, the store and the front ends.

use std::collections::BTreeMap;

use serde::Serialize;

use super::candidates::pinned::PinOutcome;
use super::candidates::{CandidateOut, CellSummary, LeftOutExample, ProposalSummary};
use super::context::Context;
use super::evidence::StoreEvidence;
use super::justify::LeftOut;
use super::model::Offer;
use super::observe::TaskTiming;
use super::optimize::{OptimizeReport, Rejection};
use super::variant::Variant;
use crate::domain::{Bundle, TextSource};
use crate::llm::gateway::LlmReport;
use crate::stats::{Assumption, Tier, Weights};
use crate::store_rules::StoreRules;

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
    pub evidence: StoreEvidence,
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
    pub store_rules: StoreRulesReport,
    pub optimize: OptimizeReport,
    pub bundles: usize,
    /// The model's use by this run, with phase 0's classification calls (made once per
    /// context).
    pub llm: LlmReport,
    /// What the run varied.
    pub variant: Variant,
    /// What the run did with the merchant's approvals and rejections (absent when the
    /// store has none, and in `eval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalsReport>,
    /// Whether the weights were calibrated on the store's own held-out orders, and how
    /// each candidate weighting scored there.
    pub calibration: Calibration,
}

/// Weights calibrated on the store's own split (`generate` and jobs; see
/// `eval::calibrate`): each candidate weighting run on all but the store's last
/// orders and scored on those by the pick rule; the best (strong hit, ties broken by
/// product coverage) weights the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Calibration {
    pub used: bool,
    /// Why it was or was not used.
    pub reason: String,
    pub holdout_orders: usize,
    pub variants: Vec<CalibratedVariant>,
    /// The name of the variant that weighted the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
}

impl Calibration {
    /// Not calibrated, for `reason`.
    pub fn not_used(reason: impl Into<String>) -> Calibration {
        Calibration {
            reason: reason.into(),
            ..Calibration::default()
        }
    }
}

/// One candidate weighting as calibration scored it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CalibratedVariant {
    pub name: String,
    /// α, β, γ.
    pub weights: [f64; 3],
    /// Share of its multi-product bundles that strongly hit held-out orders, each as
    /// its offer is used (the pick rule).
    pub strong_hit: f64,
    /// Its bootstrap 90 % interval.
    pub interval: [f64; 2],
    /// Distinct products in those bundles.
    pub coverage: usize,
    /// Multi-product bundles scored.
    pub bundles: usize,
}

/// What the quality rules did: every draft considered, how many were justified, and
/// how many were left out, by reason (see [`justify`]). A run publishes fewer than
/// `max_bundles` rather than fill with what is left out here.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityReport {
    pub considered: usize,
    pub justified: usize,
    pub left_out: std::collections::BTreeMap<LeftOut, usize>,
    /// Published bundles whose list is empty (never more than 0: the rules forbid it).
    pub unjustified_published: usize,
}

impl QualityReport {
    pub fn of(cells: &[CellSummary], bundles: &[Bundle]) -> QualityReport {
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
    pub left_out_examples: Vec<LeftOutExample>,
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

/// What the merchant's rules did in a run (`run.store_rules`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreRulesReport {
    /// The rules in force: the configuration's and the store's own, merged.
    pub rules: StoreRules,
    /// Bundles the lists removed, by rule (`never_bundle`, `never_together`).
    pub removed: BTreeMap<String, usize>,
    pub pins: Vec<PinOutcome>,
}

impl StoreRulesReport {
    /// Settles each pin's state once phase 2 has chosen: `published`, or why not. A
    /// run that does not honour pins shows the rules without them.
    pub fn of(
        ctx: &Context,
        honours_pins: bool,
        mut pins: Vec<PinOutcome>,
        published: &[Offer],
        report: &OptimizeReport,
    ) -> StoreRulesReport {
        for (outcome, resolved) in pins.iter_mut().zip(&ctx.rules.pins) {
            let Ok(products) = &resolved.products else {
                continue;
            };
            if outcome.state != "candidate" {
                continue;
            }
            let shown = published
                .iter()
                .any(|o| o.candidate.pinned && &o.candidate.draft.products == products);
            outcome.state = if shown {
                "published".to_owned()
            } else if let Some((_, r)) = report.pin_rejections.iter().find(|(p, _)| p == products) {
                match r {
                    Rejection::OutOfStock => "left out: not enough stock",
                    Rejection::MarginFloor => {
                        "left out: its smallest discount breaks the margin floor"
                    }
                    _ => "left out by the guard",
                }
                .to_owned()
            } else {
                "left out: another pin of the same products, or max_bundles reached by pins"
                    .to_owned()
            };
        }
        let removed = report
            .rejected
            .iter()
            .filter(|(k, _)| k.as_str() == "never_bundle" || k.as_str() == "never_together")
            .map(|(k, &v)| (k.clone(), v))
            .collect();
        let mut rules = ctx.store_rules.clone();
        if !honours_pins {
            rules.pins.clear();
        }
        StoreRulesReport {
            rules,
            removed,
            pins,
        }
    }
}

/// What a run did with the store's decisions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApprovalsReport {
    /// Approved bundles published as approved.
    pub kept_unchanged: usize,
    /// Approved bundles published at this run's price (their products' prices changed).
    pub kept_repriced: usize,
    /// Approved bundles no longer valid, with why.
    pub dropped: Vec<DroppedApproval>,
    /// Approved bundles of objectives or types this run was not asked for.
    pub out_of_scope: usize,
    /// Bundles this run would have published that the merchant rejected.
    pub rejected_left_out: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DroppedApproval {
    pub bundle_id: String,
    pub reason: String,
}
