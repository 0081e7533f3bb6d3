//! The models a run calls and the index over their vectors: `[embed]`, `[index]`,
//! `[llm]`.

use serde::Deserialize;

use super::error::{ConfigError, invalid};
use super::options::{EmbedProvider, IndexMethod, JsonMode, LlmProvider, Secret};
use crate::cpu::thread_count;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSettings {
    pub provider: EmbedProvider,
    pub model_dir: String,
    pub ort_lib: String,
    pub batch_size: usize,
    pub threads: usize,
    pub description_chars: usize,
    pub openai_model: String,
    pub openai_dimensions: usize,
    pub base_url: String,
    pub api_key: Secret,
}

impl EmbedSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.openai_dimensions == 0 {
            return Err(invalid(
                "embed.openai_dimensions",
                "must be at least 1".into(),
            ));
        }
        if self.batch_size == 0 {
            return Err(invalid("embed.batch_size", "must be at least 1".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSettings {
    pub method: IndexMethod,
    pub exact_up_to: usize,
    pub ef_search: usize,
    pub graph_k: usize,
    pub threads: usize,
}

impl IndexSettings {
    /// Threads to use: the setting, or every core when it is 0.
    pub fn thread_count(&self) -> usize {
        thread_count(self.threads)
    }
}

/// The language model: which provider, where, and the limits every call shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    pub provider: LlmProvider,
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    pub org: String,
    pub json_mode: JsonMode,
    pub max_tokens: u32,
    pub temperature: f64,
    pub timeout_seconds: f64,
    pub max_retries: u32,
    /// All model calls of one command together, from its start.
    pub task_budget_seconds: f64,
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
    pub requests_per_minute: u32,
    pub tokens_per_minute: u32,
    pub concurrency: usize,
    pub breaker_failures: u32,
    pub breaker_cooldown_seconds: f64,
    pub classify_batch: usize,
    pub price_batch: usize,
    pub copy_batch: usize,
    pub usd_per_million_prompt_tokens: f64,
    pub usd_per_million_completion_tokens: f64,
}

impl LlmSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds.is_finite()) {
            return Err(invalid("llm.timeout_seconds", "must be above 0".into()));
        }
        if !(self.task_budget_seconds > 0.0 && self.task_budget_seconds.is_finite()) {
            return Err(invalid("llm.task_budget_seconds", "must be above 0".into()));
        }
        if !(self.breaker_cooldown_seconds >= 0.0 && self.breaker_cooldown_seconds.is_finite()) {
            return Err(invalid(
                "llm.breaker_cooldown_seconds",
                "must be 0 or more seconds".into(),
            ));
        }
        // Each setting named on its own: a merchant setting one must not be told
        // another is wrong.
        for (key, value) in [
            (
                "llm.requests_per_minute",
                u64::from(self.requests_per_minute),
            ),
            ("llm.tokens_per_minute", u64::from(self.tokens_per_minute)),
            ("llm.concurrency", self.concurrency as u64),
            ("llm.classify_batch", self.classify_batch as u64),
            ("llm.price_batch", self.price_batch as u64),
            ("llm.copy_batch", self.copy_batch as u64),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        for (key, price) in [
            (
                "llm.usd_per_million_prompt_tokens",
                self.usd_per_million_prompt_tokens,
            ),
            (
                "llm.usd_per_million_completion_tokens",
                self.usd_per_million_completion_tokens,
            ),
        ] {
            if !(price >= 0.0 && price.is_finite()) {
                return Err(invalid(key, format!("{price} is not a price")));
            }
        }
        Ok(())
    }
}
