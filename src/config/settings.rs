//! [`Settings`]: every section, and the checks of the whole (each section checks
//! itself; the order here is the order errors are reported in).

use serde::Deserialize;

use super::error::{ConfigError, invalid};
use super::generate::{PipelineSettings, PriorSettings, RulesSettings};
use super::models::{EmbedSettings, IndexSettings, LlmSettings};
use super::optimize::{OptimizeSettings, QualitySettings};
use super::service::{DatabaseSettings, ServerSettings, ShopifySettings};
use super::store::{
    AssumptionSettings, IngestSettings, ScoringSettings, StatsSettings, StoreDefaults,
};
use crate::cpu::thread_count;
use crate::domain::Currency;

/// Every setting, by section. Built and validated by
/// [`SettingsBuilder`](super::SettingsBuilder); [`Settings::defaults`] is beside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub store: StoreDefaults,
    pub ingest: IngestSettings,
    pub assumptions: AssumptionSettings,
    pub embed: EmbedSettings,
    pub index: IndexSettings,
    pub scoring: ScoringSettings,
    pub stats: StatsSettings,
    pub rules: RulesSettings,
    pub llm: LlmSettings,
    pub pipeline: PipelineSettings,
    pub optimize: OptimizeSettings,
    pub quality: QualitySettings,
    pub prior: PriorSettings,
    pub server: ServerSettings,
    pub shopify: ShopifySettings,
    /// Rules for every store (see [`crate::store_rules`]).
    pub store_rules: crate::store_rules::StoreRules,
}

impl Settings {
    /// Threads a run may use: `pipeline.threads`, or every core.
    pub fn pipeline_threads(&self) -> usize {
        thread_count(self.pipeline.threads)
    }

    /// Gives each of `runs` runs at once its share of `pipeline.threads` (at least one),
    /// so that N workers do not each start a pool of every core.
    pub fn share_threads(&mut self, runs: usize) {
        if runs > 1 {
            self.pipeline.threads = (self.pipeline_threads() / runs).max(1);
        }
    }

    /// Threads of a stage whose own setting is `stage` (0: no cap of its own), within
    /// the run's `pipeline.threads`.
    pub fn threads_for(&self, stage: usize) -> usize {
        thread_count(stage).min(self.pipeline_threads()).max(1)
    }

    pub fn store_currency(&self) -> Currency {
        // Validated in `validate`.
        Currency::parse(&self.store.currency).unwrap_or(Currency::USD)
    }

    /// The first setting that is wrong, section by section in this order.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.server.validate()?;
        self.store.validate()?;
        self.assumptions.validate()?;
        self.embed.validate()?;
        if let Err((field, reason)) = self.store_rules.validate() {
            return Err(invalid(&format!("store_rules.{field}"), reason));
        }
        self.prior.validate()?;
        self.quality.validate()?;
        self.scoring.validate()?;
        self.llm.validate()?;
        self.optimize.validate()?;
        self.pipeline.validate()?;
        self.rules.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_limit_names_its_own_setting() {
        for (key, set) in [
            (
                "llm.concurrency",
                (|s: &mut Settings| s.llm.concurrency = 0) as fn(&mut Settings),
            ),
            ("llm.tokens_per_minute", |s: &mut Settings| {
                s.llm.tokens_per_minute = 0
            }),
            ("llm.copy_batch", |s: &mut Settings| s.llm.copy_batch = 0),
            ("server.header_timeout_seconds", |s: &mut Settings| {
                s.server.header_timeout_seconds = 0
            }),
            ("server.body_timeout_seconds", |s: &mut Settings| {
                s.server.body_timeout_seconds = 0
            }),
            ("server.max_connections", |s: &mut Settings| {
                s.server.max_connections = 0
            }),
            ("server.webhook_max_body_kb", |s: &mut Settings| {
                s.server.webhook_max_body_kb = 0
            }),
            ("server.max_json_body_kb", |s: &mut Settings| {
                s.server.max_json_body_kb = 0
            }),
        ] {
            let mut s = Settings::defaults().unwrap();
            set(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(
                err.contains(&format!("`{key}`")) && err.contains("at least 1"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_short_admin_token_is_refused_by_name_and_an_empty_one_means_none() {
        let mut s = Settings::defaults().unwrap();
        s.server.admin_token = "a-short-token".into();
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("`server.admin_token`") && err.contains("at least 32"),
            "{err}"
        );
        assert!(
            !err.contains("a-short-token"),
            "the token is never said: {err}"
        );
        s.server.admin_token = "".into();
        s.validate().unwrap();
        s.server.admin_token = "x".repeat(32).as_str().into();
        s.validate().unwrap();
    }
}
