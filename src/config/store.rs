//! How a store's own data is read: `[store]` defaults, `[ingest]` what an ingest keeps
//! of the rows it rejects, `[assumptions]` where the data is silent, `[scoring]`
//! windows and tiers, `[stats]` thresholds.

use serde::Deserialize;

use super::error::{ConfigError, check_weights, invalid};
use crate::domain::Currency;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDefaults {
    pub currency: String,
    pub locale: String,
}

impl StoreDefaults {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        Currency::parse(&self.currency)
            .map_err(|e| invalid("store.currency", format!("{:?}: {e}", self.currency)))?;
        Ok(())
    }
}

/// `[ingest]`: what an ingest's report keeps of the rows it rejects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Rows for the rejected-rows file a report keeps in full; past them, rows are
    /// only counted (the counts by reason stay exact), so a file of millions of bad
    /// rows cannot fill the memory. A caller writing that file keeps every one on disk.
    /// Any number is valid (0: none listed).
    pub max_rejected_rows_kept: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumptionSettings {
    pub cost_ratio: f64,
}

impl AssumptionSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..1.0).contains(&self.cost_ratio) {
            return Err(invalid(
                "assumptions.cost_ratio",
                format!("{} is not in [0, 1)", self.cost_ratio),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringSettings {
    pub window_days: u32,
    pub medium_tier_from: u64,
    pub large_tier_from: u64,
    pub small_weights: [f64; 3],
    pub medium_weights: [f64; 3],
    pub large_weights: [f64; 3],
}

impl ScoringSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.window_days == 0 {
            return Err(invalid("scoring.window_days", "must be at least 1".into()));
        }
        if self.medium_tier_from >= self.large_tier_from {
            return Err(invalid(
                "scoring.medium_tier_from",
                format!(
                    "{} must be below scoring.large_tier_from ({})",
                    self.medium_tier_from, self.large_tier_from
                ),
            ));
        }
        for (key, w) in [
            ("scoring.small_weights", self.small_weights),
            ("scoring.medium_weights", self.medium_weights),
            ("scoring.large_weights", self.large_weights),
        ] {
            check_weights(key, w)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSettings {
    pub slow_mover_max_units: u64,
    pub new_launch_days: u32,
    pub low_cover_days: u32,
    pub overstock_cover_days: u32,
    pub list_limit: usize,
}
