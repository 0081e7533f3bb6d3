//! A `Variant`: everything one run over a prepared context may vary. A job runs one; a
//! cohort comparison runs several over the same context. Everything else a run reads
//! is the context (the store as of a day) or the process's settings.

use serde::{Deserialize, Serialize};

use crate::config::OptimizeSettings;
use crate::domain::{BundleType, Objective};

/// Where candidates may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CandidateSources {
    /// Pairs, itemsets and repeat purchases in the store's orders.
    pub co_purchase: bool,
    /// Embedding neighbours: complements, and alike products for groups.
    pub meaning: bool,
    /// The language model's (or the offline provider's) proposals.
    pub model: bool,
}

impl Default for CandidateSources {
    fn default() -> Self {
        CandidateSources::ALL
    }
}

impl CandidateSources {
    pub const ALL: CandidateSources = CandidateSources {
        co_purchase: true,
        meaning: true,
        model: true,
    };

    /// Order data alone: what a plain "frequently bought together" engine sees.
    pub const CO_PURCHASE_ONLY: CandidateSources = CandidateSources {
        co_purchase: true,
        meaning: false,
        model: false,
    };

    /// Whether a candidate from `source` may be used.
    pub fn allows(&self, source: super::model::Source) -> bool {
        use super::model::Source;
        match source {
            Source::Pairs | Source::Itemsets | Source::Repeats => self.co_purchase,
            Source::Neighbours => self.meaning,
            Source::Llm => self.model,
            Source::Pinned => true,
        }
    }
}

/// The merchant's own inputs a run honours. Both are on for a merchant's run; `eval`
/// and cohorts turn them off, since they measure the engine, not a merchant's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MerchantInputs {
    /// The store rules' pins, as candidates published ahead of the rest while valid.
    pub pins: bool,
    /// Earlier decisions: a rejected bundle is never published, an approved one is
    /// kept while it is valid (applied as the run's last step).
    pub approvals: bool,
}

impl Default for MerchantInputs {
    fn default() -> Self {
        MerchantInputs::ALL
    }
}

impl MerchantInputs {
    pub const ALL: MerchantInputs = MerchantInputs {
        pins: true,
        approvals: true,
    };
    /// The engine alone.
    pub const NONE: MerchantInputs = MerchantInputs {
        pins: false,
        approvals: false,
    };

    fn is_all(&self) -> bool {
        *self == MerchantInputs::ALL
    }
}

/// Pricing knobs a variant may change (the rest is `optimize` settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingKnobs {
    /// Discount ranges (whole percent) replacing the configured ones per objective.
    pub ranges: Vec<(Objective, [f64; 2])>,
    /// Weight of the Bayesian optimum against the model's advice (0–1).
    pub bayesian_weight: Option<f64>,
}

/// The seed design's weightings (α language model, β transactional, γ business), by
/// name: what the cohorts compare and what calibration tries beside the tier's own.
pub const WEIGHT_PRESETS: [(&str, &str, [f64; 3]); 5] = [
    (
        "A",
        "language model only (α 0.8, β 0, γ 0.2)",
        [0.8, 0.0, 0.2],
    ),
    (
        "B",
        "transactional only (α 0, β 0.8, γ 0.2)",
        [0.0, 0.8, 0.2],
    ),
    (
        "C",
        "hybrid for a small store (α 0.56, β 0.24, γ 0.2)",
        [0.56, 0.24, 0.2],
    ),
    (
        "D",
        "hybrid for a medium store (α 0.32, β 0.48, γ 0.2)",
        [0.32, 0.48, 0.2],
    ),
    (
        "E",
        "hybrid for a large store (α 0.16, β 0.64, γ 0.2)",
        [0.16, 0.64, 0.2],
    ),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Variant {
    /// α, β, γ instead of the tier's.
    pub weights: Option<[f64; 3]>,
    /// Only these objectives (all when empty).
    pub objectives: Vec<Objective>,
    /// Only these bundle types (all when empty).
    pub bundle_types: Vec<BundleType>,
    /// Publish at most this many bundles instead of `optimize.max_bundles`.
    pub max_bundles: Option<usize>,
    pub pricing: PricingKnobs,
    pub sources: CandidateSources,
    /// Seed of phases 1–3 (recorded with the run; phase 0 has its own).
    pub seed: u64,
    /// The merchant's pins and approvals (both honoured unless said otherwise).
    #[serde(skip_serializing_if = "MerchantInputs::is_all")]
    pub merchant: MerchantInputs,
}

impl Default for Variant {
    fn default() -> Self {
        Variant {
            weights: None,
            objectives: Vec::new(),
            bundle_types: Vec::new(),
            max_bundles: None,
            pricing: PricingKnobs::default(),
            sources: CandidateSources::ALL,
            seed: 0,
            merchant: MerchantInputs::ALL,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid variant: {0}")]
pub struct InvalidVariant(pub String);

impl Variant {
    /// The run's objectives, in their canonical order.
    pub fn objectives(&self) -> Vec<Objective> {
        Objective::ALL
            .into_iter()
            .filter(|o| self.objectives.is_empty() || self.objectives.contains(o))
            .collect()
    }

    /// The run's bundle types, in their canonical order.
    pub fn bundle_types(&self) -> Vec<BundleType> {
        BundleType::ALL
            .into_iter()
            .filter(|t| self.bundle_types.is_empty() || self.bundle_types.contains(t))
            .collect()
    }

    /// What types can't say.
    pub fn validate(&self) -> Result<(), InvalidVariant> {
        if let Some(w) = self.weights {
            crate::config::check_weights("weights", w).map_err(|e| match e {
                crate::config::ConfigError::Invalid { key, reason } => {
                    InvalidVariant(format!("{key}: {reason}"))
                }
                other => InvalidVariant(other.to_string()),
            })?;
        }
        if self.max_bundles == Some(0) {
            return Err(InvalidVariant("max_bundles must be at least 1".into()));
        }
        if !(self.sources.co_purchase || self.sources.meaning || self.sources.model) {
            return Err(InvalidVariant(
                "sources: at least one candidate source must be on".into(),
            ));
        }
        for (o, [lo, hi]) in &self.pricing.ranges {
            if !(0.0..=100.0).contains(lo) || !(0.0..=100.0).contains(hi) || lo > hi {
                return Err(InvalidVariant(format!(
                    "pricing.ranges: {o}: [{lo}, {hi}] is not a range within 0-100"
                )));
            }
        }
        if let Some(w) = self.pricing.bayesian_weight
            && !(0.0..=1.0).contains(&w)
        {
            return Err(InvalidVariant(format!(
                "pricing.bayesian_weight: {w} is not within 0-1"
            )));
        }
        Ok(())
    }

    /// The optimisation settings of a run of this variant over `objectives` objectives.
    pub fn optimize_settings(
        &self,
        base: &OptimizeSettings,
        objectives: usize,
    ) -> OptimizeSettings {
        let mut s = base.clone();
        if let Some(n) = self.max_bundles {
            s.max_bundles = n.max(1);
        }
        // A run over fewer objectives may fill its bundles from them.
        s.max_per_objective = s
            .max_per_objective
            .max(s.max_bundles.div_ceil(objectives.max(1)));
        for &(o, range) in &self.pricing.ranges {
            *s.range_mut(o) = range;
        }
        if let Some(w) = self.pricing.bayesian_weight {
            s.bayesian_weight = w;
        }
        s
    }
}
