//! How `generate` picks, prices and publishes: `[optimize]`, `[quality]`.

use serde::Deserialize;

use super::error::{ConfigError, invalid};
use super::options::PriceEnding;
use crate::domain::{JustificationKind, Objective};

/// Phase 2 of `generate`: deduplication, the safety guard, the Pareto front, pricing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizeSettings {
    pub max_bundles: usize,
    pub near_duplicate_jaccard: f64,
    /// Keep one product set in several bundle types (for A/B tests of the type).
    #[serde(default)]
    pub type_variants: bool,
    pub max_per_product: usize,
    pub max_per_objective: usize,
    pub margin_floor_pct: f64,
    /// The most an add-on offer takes off the add-on, whole percent (1–100).
    pub addon_max_gets_pct: u32,
    pub increase_aov: [f64; 2],
    pub clear_slow_movers: [f64; 2],
    pub protect_margin: [f64; 2],
    pub launch_new: [f64; 2],
    pub seasonal: [f64; 2],
    pub gift: [f64; 2],
    pub cross_sell: [f64; 2],
    pub replenish: [f64; 2],
    pub conversion_prior: [f64; 2],
    pub elasticity: f64,
    pub bayesian_weight: f64,
    pub price_ending: PriceEnding,
}

impl OptimizeSettings {
    /// The configured discount range of an objective.
    pub fn range_mut(&mut self, o: Objective) -> &mut [f64; 2] {
        use crate::domain::Objective::*;
        match o {
            IncreaseAov => &mut self.increase_aov,
            ClearSlowMovers => &mut self.clear_slow_movers,
            ProtectMargin => &mut self.protect_margin,
            LaunchNew => &mut self.launch_new,
            Seasonal => &mut self.seasonal,
            Gift => &mut self.gift,
            CrossSell => &mut self.cross_sell,
            Replenish => &mut self.replenish,
        }
    }

    /// The discount range of an objective, whole percent.
    pub fn range(&self, o: Objective) -> (u32, u32) {
        use crate::domain::Objective::*;
        let r = match o {
            IncreaseAov => self.increase_aov,
            ClearSlowMovers => self.clear_slow_movers,
            ProtectMargin => self.protect_margin,
            LaunchNew => self.launch_new,
            Seasonal => self.seasonal,
            Gift => self.gift,
            CrossSell => self.cross_sell,
            Replenish => self.replenish,
        };
        (r[0].round() as u32, r[1].round() as u32)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for obj in Objective::ALL {
            let r = match obj.as_str() {
                "increase_aov" => self.increase_aov,
                "clear_slow_movers" => self.clear_slow_movers,
                "protect_margin" => self.protect_margin,
                "launch_new" => self.launch_new,
                "seasonal" => self.seasonal,
                "gift" => self.gift,
                "cross_sell" => self.cross_sell,
                _ => self.replenish,
            };
            if !(0.0 <= r[0] && r[0] <= r[1] && r[1] <= 90.0) {
                return Err(invalid(
                    &format!("optimize.{obj}"),
                    format!("{r:?} must be [min, max] with 0 <= min <= max <= 90"),
                ));
            }
        }
        if !(0.0..100.0).contains(&self.margin_floor_pct) {
            return Err(invalid(
                "optimize.margin_floor_pct",
                "must be in [0, 100)".into(),
            ));
        }
        if !(1..=100).contains(&self.addon_max_gets_pct) {
            return Err(invalid(
                "optimize.addon_max_gets_pct",
                format!(
                    "{} must be a whole percent from 1 to 100",
                    self.addon_max_gets_pct
                ),
            ));
        }
        if self.max_bundles == 0 || self.max_per_product == 0 || self.max_per_objective == 0 {
            return Err(invalid(
                "optimize.max_bundles",
                "bundle counts must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.near_duplicate_jaccard)
            || !(0.0..=1.0).contains(&self.bayesian_weight)
        {
            return Err(invalid(
                "optimize.near_duplicate_jaccard",
                "near_duplicate_jaccard and bayesian_weight must be in [0, 1]".into(),
            ));
        }
        if !(self.conversion_prior[0] > 0.0 && self.conversion_prior[1] > 0.0) {
            return Err(invalid(
                "optimize.conversion_prior",
                "both Beta parameters must be above 0".into(),
            ));
        }
        Ok(())
    }
}

/// What a bundle needs to be published (see `pipeline::justify`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySettings {
    pub min_score: f64,
    pub min_shrunk_lift: f64,
    pub min_category_lift: f64,
    pub unrelated_max_p: f64,
    pub price_band: f64,
    pub high_ticket_ratio: f64,
    /// Whether runs calibrate their weights on the store's own split.
    pub calibrate: bool,
    /// Orders a store needs before its weights are calibrated on its own split.
    pub calibrate_min_orders: usize,
    /// The share of the store's last orders calibration holds out.
    pub calibrate_holdout: f64,
    pub evidence: ObjectiveEvidence,
}

impl QualitySettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(invalid(
                "quality.min_score",
                format!("{} is not in [0, 1]", self.min_score),
            ));
        }
        if !(self.unrelated_max_p > 0.0 && self.unrelated_max_p <= 1.0) {
            return Err(invalid(
                "quality.unrelated_max_p",
                format!("{} is not in (0, 1]", self.unrelated_max_p),
            ));
        }
        for (key, v) in [
            ("quality.min_shrunk_lift", self.min_shrunk_lift),
            ("quality.min_category_lift", self.min_category_lift),
            ("quality.price_band", self.price_band),
            ("quality.high_ticket_ratio", self.high_ticket_ratio),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                return Err(invalid(key, format!("{v} must be at least 1")));
            }
        }
        if !(self.calibrate_holdout > 0.0 && self.calibrate_holdout < 1.0) {
            return Err(invalid(
                "quality.calibrate_holdout",
                format!("{} is not above 0 and below 1", self.calibrate_holdout),
            ));
        }
        if self.calibrate_min_orders < 2 {
            return Err(invalid(
                "quality.calibrate_min_orders",
                format!(
                    "{} is under 2: a split needs an order on each side",
                    self.calibrate_min_orders
                ),
            ));
        }
        for o in Objective::ALL {
            if self.evidence.of(o).is_empty() {
                return Err(invalid(
                    &format!("quality.evidence.{}", o.as_str()),
                    "must name at least one kind of justification".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Per objective, the kinds of justification that count as its evidence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveEvidence {
    pub increase_aov: Vec<JustificationKind>,
    pub clear_slow_movers: Vec<JustificationKind>,
    pub protect_margin: Vec<JustificationKind>,
    pub launch_new: Vec<JustificationKind>,
    pub seasonal: Vec<JustificationKind>,
    pub gift: Vec<JustificationKind>,
    pub cross_sell: Vec<JustificationKind>,
    pub replenish: Vec<JustificationKind>,
}

impl ObjectiveEvidence {
    pub fn of(&self, o: Objective) -> &[JustificationKind] {
        use crate::domain::Objective::*;
        match o {
            IncreaseAov => &self.increase_aov,
            ClearSlowMovers => &self.clear_slow_movers,
            ProtectMargin => &self.protect_margin,
            LaunchNew => &self.launch_new,
            Seasonal => &self.seasonal,
            Gift => &self.gift,
            CrossSell => &self.cross_sell,
            Replenish => &self.replenish,
        }
    }
}
