//! Where `generate` finds its candidates: `[pipeline]`, `[prior]`, `[rules]`.

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// Candidate generation (phase 1 of `generate`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    pub restricted_categories: Vec<String>,
    pub consumable_repeat_rate: f64,
    pub anchors_per_objective: usize,
    pub partners_per_anchor: usize,
    pub candidates_per_cell: usize,
    pub llm_anchors: usize,
    pub llm_candidates: usize,
    pub llm_bundles: usize,
    pub prior_count: f64,
    pub support_half: f64,
    /// Threads of every pool a run uses (0: every core); the `embed`, `index` and
    /// `rules` thread settings cap their stages further.
    pub threads: usize,
}

impl PipelineSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.anchors_per_objective == 0
            || self.partners_per_anchor == 0
            || self.candidates_per_cell == 0
        {
            return Err(invalid(
                "pipeline.anchors_per_objective",
                "anchors, partners and candidates per cell must be at least 1".into(),
            ));
        }
        if !(self.prior_count > 0.0 && self.support_half > 0.0) {
            return Err(invalid(
                "pipeline.prior_count",
                "prior_count and support_half must be above 0".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.consumable_repeat_rate) {
            return Err(invalid(
                "pipeline.consumable_repeat_rate",
                "must be in [0, 1]".into(),
            ));
        }
        Ok(())
    }
}

/// The complement prior (see [`crate::prior`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorSettings {
    /// Use it at all.
    pub enabled: bool,
    /// A prior file; empty: the one built in.
    pub file: String,
    /// A product maps onto a prior category at this cosine or more.
    pub min_similarity: f32,
    /// A prior link justifies a complement at this shrunk lift or more.
    pub min_lift: f64,
    /// Sources (data set names) never used.
    pub exclude: Vec<String>,
    /// Ask a configured language model which of the store's kinds go together, for
    /// the pairs the prior lacks (never asked offline).
    pub ask_model: bool,
}

impl PriorSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.min_similarity) {
            return Err(invalid(
                "prior.min_similarity",
                format!("{} is not in [0, 1]", self.min_similarity),
            ));
        }
        Ok(())
    }
}

/// Co-purchase mining at the pipeline's defaults (read by `rules::evidence`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSettings {
    pub pair_min_count: u32,
    pub itemset_minsup: f64,
    pub itemset_min_count: u64,
    pub itemset_max_len: usize,
    pub min_confidence: f64,
    pub max_basket: usize,
    pub memory_budget_mb: usize,
    pub threads: usize,
}

impl RulesSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("rules.itemset_minsup", self.itemset_minsup),
            ("rules.min_confidence", self.min_confidence),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(invalid(
                    key,
                    format!("{value} is not a fraction from 0 to 1"),
                ));
            }
        }
        if self.itemset_minsup <= 0.0 {
            return Err(invalid("rules.itemset_minsup", "must be above 0".into()));
        }
        if self.pair_min_count == 0 || self.itemset_min_count == 0 {
            return Err(invalid(
                "rules.pair_min_count",
                "minimum counts must be at least 1".into(),
            ));
        }
        if self.itemset_max_len < 2 {
            return Err(invalid(
                "rules.itemset_max_len",
                "must be at least 2".into(),
            ));
        }
        if self.memory_budget_mb < 16 {
            return Err(invalid(
                "rules.memory_budget_mb",
                "must be at least 16".into(),
            ));
        }
        Ok(())
    }
}
