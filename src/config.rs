//! Settings: embedded defaults → `--config` file → `BUNDLEFORGE__SECTION__KEY`
//! environment → command-line flags, validated once at start.
//!
//! The embedded defaults file lists every key there is, so it doubles as the schema: a
//! key in a config file that the defaults lack is an error naming it (a typo must not
//! silently leave a default in force), while an unknown environment variable is only
//! warned about (environments carry variables for other versions and tools).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Table, Value};

pub use crate::cpu::thread_count;
use crate::domain::Currency;

const DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "BUNDLEFORGE__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown key `{key}` in {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("`{key}` from {origin} must be {expected}, got {value:?}")]
    WrongType {
        key: String,
        origin: String,
        expected: &'static str,
        value: String,
    },
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub store: StoreDefaults,
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

/// Option values as types: what a setting may say is its enum's variants.
macro_rules! option_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

option_enum!(
    /// Who answers the model's tasks.
    LlmProvider { Offline = "offline", Openai = "openai" }
);
option_enum!(
    /// How the client asks for JSON: `response_format` json_object, a JSON schema, or
    /// nothing (the prompt alone).
    JsonMode { Object = "object", Schema = "schema", None = "none" }
);
option_enum!(
    /// Which embedder turns products into vectors.
    EmbedProvider { Local = "local", Openai = "openai" }
);
option_enum!(
    /// Exact search, the approximate index, or the measured crossover between them.
    IndexMethod { Auto = "auto", Exact = "exact", Approximate = "approximate" }
);
option_enum!(
    /// Final prices as computed, or raised to end in .99.
    PriceEnding { None = "none", NinetyNine = "99" }
);

/// The `section.key` of the first value that does not read as its section's field, by
/// reading each field alone into a copy of the embedded defaults.
fn first_bad_field(merged: &Value) -> Option<String> {
    let defaults: Table = DEFAULTS.parse().ok()?;
    let Value::Table(sections) = merged else {
        return None;
    };
    for (section, table) in sections {
        let Value::Table(fields) = table else {
            continue;
        };
        for (name, value) in fields {
            let mut probe = defaults.clone();
            if let Some(Value::Table(t)) = probe.get_mut(section.as_str()) {
                t.insert(name.clone(), value.clone());
            }
            if Value::Table(probe).try_into::<Settings>().is_err() {
                return Some(format!("{section}.{name}"));
            }
        }
    }
    None
}

/// A credential: read like any setting, never shown. `Debug` prints whether it is set,
/// so settings can be logged and errors can quote them without leaking it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_empty() {
            "<unset>"
        } else {
            "<secret>"
        })
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

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
    pub fn range_mut(&mut self, o: crate::domain::Objective) -> &mut [f64; 2] {
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
    pub fn range(&self, o: crate::domain::Objective) -> (u32, u32) {
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
    pub evidence: ObjectiveEvidence,
}

/// What the service needs of Shopify.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifySettings {
    /// The app's secret: webhooks are signed with it (HMAC-SHA256). Empty: webhooks
    /// are refused (401).
    pub webhook_secret: Secret,
}

/// `bundleforge serve`: the HTTP service and its job workers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub bind: String,
    /// Jobs run at once in this process.
    pub workers: usize,
    /// Accepted on every route, for every store; empty: no admin token.
    pub admin_token: Secret,
    /// A claimed job's lease; a worker renews it every `heartbeat_seconds`.
    pub lease_seconds: u64,
    pub heartbeat_seconds: u64,
    /// Attempts of a job before it fails (retryable errors and lost leases).
    pub max_attempts: u32,
    /// On SIGTERM, how long running jobs may take to finish before they are cancelled
    /// and released to the queue.
    pub shutdown_seconds: u64,
    /// Largest request body, in MiB.
    pub max_body_mb: usize,
    /// Browser origins allowed to call the API (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// Requests a token may make per minute, on average (429 beyond, with
    /// `Retry-After`), and how many it may make at once before that rate applies.
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    /// Deepest nesting a JSON request body may have (a job request, an upload's JSON).
    pub max_json_depth: usize,
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

/// Per objective, the kinds of justification that count as its evidence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveEvidence {
    pub increase_aov: Vec<crate::domain::JustificationKind>,
    pub clear_slow_movers: Vec<crate::domain::JustificationKind>,
    pub protect_margin: Vec<crate::domain::JustificationKind>,
    pub launch_new: Vec<crate::domain::JustificationKind>,
    pub seasonal: Vec<crate::domain::JustificationKind>,
    pub gift: Vec<crate::domain::JustificationKind>,
    pub cross_sell: Vec<crate::domain::JustificationKind>,
    pub replenish: Vec<crate::domain::JustificationKind>,
}

impl ObjectiveEvidence {
    pub fn of(&self, o: crate::domain::Objective) -> &[crate::domain::JustificationKind] {
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDefaults {
    pub currency: String,
    pub locale: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumptionSettings {
    pub cost_ratio: f64,
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSettings {
    pub slow_mover_max_units: u64,
    pub new_launch_days: u32,
    pub low_cover_days: u32,
    pub overstock_cover_days: u32,
    pub list_limit: usize,
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

    /// The embedded defaults alone.
    pub fn defaults() -> Result<Self, ConfigError> {
        SettingsBuilder::new()?.build()
    }

    pub fn store_currency(&self) -> Currency {
        // Validated in `validate`.
        Currency::parse(&self.store.currency).unwrap_or(Currency::USD)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.to_owned(),
            reason,
        };
        if self.database.url.trim().is_empty() {
            return Err(invalid("database.url", "must not be empty".into()));
        }
        let srv = &self.server;
        if srv.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.bind",
                format!("{:?} is not an address and port (127.0.0.1:8080)", srv.bind),
            ));
        }
        for (key, zero) in [
            ("server.workers", srv.workers == 0),
            ("server.lease_seconds", srv.lease_seconds == 0),
            ("server.heartbeat_seconds", srv.heartbeat_seconds == 0),
            ("server.max_attempts", srv.max_attempts == 0),
            ("server.max_body_mb", srv.max_body_mb == 0),
            (
                "server.rate_limit_per_minute",
                srv.rate_limit_per_minute == 0,
            ),
            ("server.rate_limit_burst", srv.rate_limit_burst == 0),
            ("server.max_json_depth", srv.max_json_depth == 0),
        ] {
            if zero {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if srv.heartbeat_seconds >= srv.lease_seconds {
            return Err(invalid(
                "server.heartbeat_seconds",
                format!(
                    "{} must be shorter than server.lease_seconds ({}), or leases run out between beats",
                    srv.heartbeat_seconds, srv.lease_seconds
                ),
            ));
        }
        Currency::parse(&self.store.currency)
            .map_err(|e| invalid("store.currency", format!("{:?}: {e}", self.store.currency)))?;
        if !(0.0..1.0).contains(&self.assumptions.cost_ratio) {
            return Err(invalid(
                "assumptions.cost_ratio",
                format!("{} is not in [0, 1)", self.assumptions.cost_ratio),
            ));
        }
        if self.embed.openai_dimensions == 0 {
            return Err(invalid(
                "embed.openai_dimensions",
                "must be at least 1".into(),
            ));
        }
        if self.embed.batch_size == 0 {
            return Err(invalid("embed.batch_size", "must be at least 1".into()));
        }
        if let Err((field, reason)) = self.store_rules.validate() {
            return Err(invalid(&format!("store_rules.{field}"), reason));
        }
        if !(0.0..=1.0).contains(&self.prior.min_similarity) {
            return Err(invalid(
                "prior.min_similarity",
                format!("{} is not in [0, 1]", self.prior.min_similarity),
            ));
        }
        let q = &self.quality;
        if !(0.0..=1.0).contains(&q.min_score) {
            return Err(invalid(
                "quality.min_score",
                format!("{} is not in [0, 1]", q.min_score),
            ));
        }
        if !(q.unrelated_max_p > 0.0 && q.unrelated_max_p <= 1.0) {
            return Err(invalid(
                "quality.unrelated_max_p",
                format!("{} is not in (0, 1]", q.unrelated_max_p),
            ));
        }
        for (key, v) in [
            ("quality.min_shrunk_lift", q.min_shrunk_lift),
            ("quality.min_category_lift", q.min_category_lift),
            ("quality.price_band", q.price_band),
            ("quality.high_ticket_ratio", q.high_ticket_ratio),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                return Err(invalid(key, format!("{v} must be at least 1")));
            }
        }
        for o in crate::domain::Objective::ALL {
            if q.evidence.of(o).is_empty() {
                return Err(invalid(
                    &format!("quality.evidence.{}", o.as_str()),
                    "must name at least one kind of justification".into(),
                ));
            }
        }
        let s = &self.scoring;
        if s.window_days == 0 {
            return Err(invalid("scoring.window_days", "must be at least 1".into()));
        }
        if s.medium_tier_from >= s.large_tier_from {
            return Err(invalid(
                "scoring.medium_tier_from",
                format!(
                    "{} must be below scoring.large_tier_from ({})",
                    s.medium_tier_from, s.large_tier_from
                ),
            ));
        }
        for (key, w) in [
            ("scoring.small_weights", s.small_weights),
            ("scoring.medium_weights", s.medium_weights),
            ("scoring.large_weights", s.large_weights),
        ] {
            check_weights(key, w)?;
        }
        let l = &self.llm;
        if !(l.timeout_seconds > 0.0 && l.timeout_seconds.is_finite()) {
            return Err(invalid("llm.timeout_seconds", "must be above 0".into()));
        }
        if !(l.task_budget_seconds > 0.0 && l.task_budget_seconds.is_finite()) {
            return Err(invalid("llm.task_budget_seconds", "must be above 0".into()));
        }
        if !(l.breaker_cooldown_seconds >= 0.0 && l.breaker_cooldown_seconds.is_finite()) {
            return Err(invalid(
                "llm.breaker_cooldown_seconds",
                "must be 0 or more seconds".into(),
            ));
        }
        // Each setting named on its own: a merchant setting one must not be told
        // another is wrong.
        for (key, value) in [
            ("llm.requests_per_minute", u64::from(l.requests_per_minute)),
            ("llm.tokens_per_minute", u64::from(l.tokens_per_minute)),
            ("llm.concurrency", l.concurrency as u64),
            ("llm.classify_batch", l.classify_batch as u64),
            ("llm.price_batch", l.price_batch as u64),
            ("llm.copy_batch", l.copy_batch as u64),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        for (key, price) in [
            (
                "llm.usd_per_million_prompt_tokens",
                l.usd_per_million_prompt_tokens,
            ),
            (
                "llm.usd_per_million_completion_tokens",
                l.usd_per_million_completion_tokens,
            ),
        ] {
            if !(price >= 0.0 && price.is_finite()) {
                return Err(invalid(key, format!("{price} is not a price")));
            }
        }
        let o = &self.optimize;
        for obj in crate::domain::Objective::ALL {
            let r = match obj.as_str() {
                "increase_aov" => o.increase_aov,
                "clear_slow_movers" => o.clear_slow_movers,
                "protect_margin" => o.protect_margin,
                "launch_new" => o.launch_new,
                "seasonal" => o.seasonal,
                "gift" => o.gift,
                "cross_sell" => o.cross_sell,
                _ => o.replenish,
            };
            if !(0.0 <= r[0] && r[0] <= r[1] && r[1] <= 90.0) {
                return Err(invalid(
                    &format!("optimize.{obj}"),
                    format!("{r:?} must be [min, max] with 0 <= min <= max <= 90"),
                ));
            }
        }
        if !(0.0..100.0).contains(&o.margin_floor_pct) {
            return Err(invalid(
                "optimize.margin_floor_pct",
                "must be in [0, 100)".into(),
            ));
        }
        if !(1..=100).contains(&o.addon_max_gets_pct) {
            return Err(invalid(
                "optimize.addon_max_gets_pct",
                format!(
                    "{} must be a whole percent from 1 to 100",
                    o.addon_max_gets_pct
                ),
            ));
        }
        if o.max_bundles == 0 || o.max_per_product == 0 || o.max_per_objective == 0 {
            return Err(invalid(
                "optimize.max_bundles",
                "bundle counts must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&o.near_duplicate_jaccard)
            || !(0.0..=1.0).contains(&o.bayesian_weight)
        {
            return Err(invalid(
                "optimize.near_duplicate_jaccard",
                "near_duplicate_jaccard and bayesian_weight must be in [0, 1]".into(),
            ));
        }
        if !(o.conversion_prior[0] > 0.0 && o.conversion_prior[1] > 0.0) {
            return Err(invalid(
                "optimize.conversion_prior",
                "both Beta parameters must be above 0".into(),
            ));
        }
        let p = &self.pipeline;
        if p.anchors_per_objective == 0 || p.partners_per_anchor == 0 || p.candidates_per_cell == 0
        {
            return Err(invalid(
                "pipeline.anchors_per_objective",
                "anchors, partners and candidates per cell must be at least 1".into(),
            ));
        }
        if !(p.prior_count > 0.0 && p.support_half > 0.0) {
            return Err(invalid(
                "pipeline.prior_count",
                "prior_count and support_half must be above 0".into(),
            ));
        }
        if !(0.0..=1.0).contains(&p.consumable_repeat_rate) {
            return Err(invalid(
                "pipeline.consumable_repeat_rate",
                "must be in [0, 1]".into(),
            ));
        }
        let r = &self.rules;
        for (key, value) in [
            ("rules.itemset_minsup", r.itemset_minsup),
            ("rules.min_confidence", r.min_confidence),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(invalid(
                    key,
                    format!("{value} is not a fraction from 0 to 1"),
                ));
            }
        }
        if r.itemset_minsup <= 0.0 {
            return Err(invalid("rules.itemset_minsup", "must be above 0".into()));
        }
        if r.pair_min_count == 0 || r.itemset_min_count == 0 {
            return Err(invalid(
                "rules.pair_min_count",
                "minimum counts must be at least 1".into(),
            ));
        }
        if r.itemset_max_len < 2 {
            return Err(invalid(
                "rules.itemset_max_len",
                "must be at least 2".into(),
            ));
        }
        if r.memory_budget_mb < 16 {
            return Err(invalid(
                "rules.memory_budget_mb",
                "must be at least 16".into(),
            ));
        }
        Ok(())
    }
}

/// Weights must be non-negative and sum to 1 (within rounding).
pub fn check_weights(key: &str, w: [f64; 3]) -> Result<(), ConfigError> {
    let sum: f64 = w.iter().sum();
    if w.iter().any(|x| !x.is_finite() || *x < 0.0) || (sum - 1.0).abs() > 1e-6 {
        return Err(ConfigError::Invalid {
            key: key.to_owned(),
            reason: format!("{w:?} must be three non-negative numbers that sum to 1"),
        });
    }
    Ok(())
}

/// Builds [`Settings`] layer by layer; `build` validates once.
pub struct SettingsBuilder {
    defaults: Table,
    merged: Table,
    warnings: Vec<String>,
}

impl SettingsBuilder {
    pub fn new() -> Result<Self, ConfigError> {
        let defaults: Table =
            DEFAULTS
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: PathBuf::from("<embedded defaults>"),
                    message: e.to_string(),
                })?;
        Ok(SettingsBuilder {
            merged: defaults.clone(),
            defaults,
            warnings: Vec::new(),
        })
    }

    /// Layers a TOML config file; a key the defaults lack is an error.
    pub fn file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let origin = path.display().to_string();
        for (section, value) in table {
            let Value::Table(keys) = value else {
                if self.defaults.contains_key(&section) {
                    return Err(ConfigError::WrongType {
                        value: value.to_string(),
                        key: section,
                        origin,
                        expected: "a section (`[name]` and its keys)",
                    });
                }
                return Err(ConfigError::UnknownKey {
                    key: section,
                    origin,
                });
            };
            for (key, value) in keys {
                self.set(
                    &[section.as_str(), key.as_str()],
                    SetValue::Toml(value),
                    &origin,
                )?;
            }
        }
        Ok(self)
    }

    /// Layers the generic variables (`DATABASE_URL`, and `OPENAI_API_KEY` /
    /// `OPENAI_BASE_URL` for the chat model only) and then every
    /// `BUNDLEFORGE__SECTION__KEY` variable, which wins over them. Unknown variables are
    /// kept as warnings for the caller to log.
    pub fn env<I>(mut self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        const GENERIC: [(&str, [&str; 2]); 3] = [
            ("DATABASE_URL", ["database", "url"]),
            ("OPENAI_API_KEY", ["llm", "api_key"]),
            ("OPENAI_BASE_URL", ["llm", "base_url"]),
        ];
        let generic = |k: &str| GENERIC.iter().find(|(name, _)| *name == k);
        let mut vars: Vec<(String, String)> = vars.into_iter().collect();
        // Generic names first, so the BUNDLEFORGE__ ones win over them.
        vars.sort_by_key(|(k, _)| generic(k).is_none());
        for (name, value) in vars {
            if let Some((label, path)) = generic(&name) {
                self.set(path, SetValue::Text(value), label)?;
                continue;
            }
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            if path.len() != 2 || lookup(&self.defaults, &path).is_none() {
                self.warnings
                    .push(format!("ignoring unknown environment variable {name}"));
                continue;
            }
            self.set(&path, SetValue::Text(value), &name)?;
        }
        Ok(self)
    }

    /// Layers one command-line override, e.g. `("database.url", "sqlite://x.db")`.
    pub fn flag(mut self, dotted_key: &str, value: &str) -> Result<Self, ConfigError> {
        let path: Vec<&str> = dotted_key.split('.').collect();
        self.set(&path, SetValue::Text(value.to_owned()), "the command line")?;
        Ok(self)
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn build(self) -> Result<Settings, ConfigError> {
        let merged = Value::Table(self.merged);
        let settings: Settings = merged.clone().try_into().map_err(|e: toml::de::Error| {
            // Name the setting: the first field whose own value does not read.
            let key = first_bad_field(&merged).unwrap_or_else(|| "settings".into());
            ConfigError::Invalid {
                key,
                reason: plain_reason(e.message().trim()),
            }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn set(&mut self, path: &[&str], value: SetValue, origin: &str) -> Result<(), ConfigError> {
        let key = path.join(".");
        let Some(default) = lookup(&self.defaults, path) else {
            return Err(ConfigError::UnknownKey {
                key,
                origin: origin.to_owned(),
            });
        };
        let value = match value {
            SetValue::Toml(v) => coerce_toml(v, default, &key, origin)?,
            SetValue::Text(t) => coerce_text(&t, default, &key, origin)?,
        };
        if let [section, name] = path
            && let Some(Value::Table(t)) = self.merged.get_mut(*section)
        {
            t.insert((*name).to_owned(), value);
        }
        Ok(())
    }
}

/// serde's wording for the mistakes a person makes in a setting, said in theirs.
fn plain_reason(message: &str) -> String {
    let unsigned = [
        "expected usize",
        "expected u64",
        "expected u32",
        "expected u16",
    ];
    if let Some(rest) = message.strip_prefix("invalid value: integer `")
        && let Some((value, expected)) = rest.split_once("`, ")
        && unsigned.contains(&expected)
    {
        return if value.starts_with('-') {
            format!("{value} is not a whole number of 0 or more")
        } else {
            format!("{value} is too large")
        };
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((got, want)) = rest.split_once(", expected an array of length ")
    {
        return format!("expected a list of {want} values, got {got}");
    }
    message.to_owned()
}

enum SetValue {
    Toml(Value),
    Text(String),
}

fn lookup<'a>(table: &'a Table, path: &[&str]) -> Option<&'a Value> {
    match path {
        [section, key] => table.get(*section)?.as_table()?.get(*key),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Array(_) => "a list",
        _ => "a table",
    }
}

fn coerce_toml(v: Value, default: &Value, key: &str, origin: &str) -> Result<Value, ConfigError> {
    let ok = match (default, &v) {
        (Value::Float(_), Value::Integer(i)) => return Ok(Value::Float(*i as f64)),
        (Value::Array(_), Value::Array(items)) => {
            let all_num = items
                .iter()
                .all(|x| matches!(x, Value::Float(_) | Value::Integer(_)));
            if all_num {
                let floats = items
                    .iter()
                    .map(|x| {
                        Value::Float(
                            x.as_float()
                                .or(x.as_integer().map(|i| i as f64))
                                .unwrap_or(0.0),
                        )
                    })
                    .collect();
                return Ok(Value::Array(floats));
            }
            false
        }
        (d, v) => std::mem::discriminant(d) == std::mem::discriminant(v),
    };
    if ok {
        Ok(v)
    } else {
        Err(ConfigError::WrongType {
            key: key.to_owned(),
            origin: origin.to_owned(),
            expected: type_name(default),
            value: v.to_string(),
        })
    }
}

/// Environment variables and flags are text: read them as the default's type.
fn coerce_text(t: &str, default: &Value, key: &str, origin: &str) -> Result<Value, ConfigError> {
    let wrong = || ConfigError::WrongType {
        key: key.to_owned(),
        origin: origin.to_owned(),
        expected: type_name(default),
        value: t.to_owned(),
    };
    let t = t.trim();
    Ok(match default {
        Value::String(_) => Value::String(t.to_owned()),
        Value::Integer(_) => Value::Integer(t.parse().map_err(|_| wrong())?),
        Value::Float(_) => Value::Float(t.parse().map_err(|_| wrong())?),
        Value::Boolean(_) => Value::Boolean(match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(wrong()),
        }),
        Value::Array(defaults) => {
            let inner = t.trim().trim_start_matches('[').trim_end_matches(']');
            let parts: Vec<&str> = inner
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect();
            // A list of text (origins, names) is written `a,b` or `["a", "b"]`; a
            // list of numbers `1,2`.
            let text = match defaults.first() {
                Some(Value::String(_)) => true,
                Some(_) => false,
                None => parts.iter().any(|x| x.parse::<f64>().is_err()),
            };
            if text {
                Value::Array(
                    parts
                        .iter()
                        .map(|x| Value::String(x.trim_matches(['"', '\'']).to_owned()))
                        .collect(),
                )
            } else {
                let items: Result<Vec<Value>, _> = parts
                    .iter()
                    .map(|x| x.parse::<f64>().map(Value::Float))
                    .collect();
                Value::Array(items.map_err(|_| wrong())?)
            }
        }
        _ => return Err(wrong()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

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
    fn embedded_defaults_are_valid() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.database.url, "sqlite://bundleforge.sqlite");
        assert_eq!(s.assumptions.cost_ratio, 0.5);
        assert_eq!(s.scoring.small_weights, [0.6, 0.2, 0.2]);
    }

    #[test]
    fn layers_apply_in_order_defaults_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bf.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"sqlite://from-file.db\"\n[store]\ncurrency = \"EUR\"\n",
        )
        .unwrap();
        let b = SettingsBuilder::new().unwrap().file(&file).unwrap();
        let s = b.build().unwrap();
        assert_eq!(s.database.url, "sqlite://from-file.db");
        assert_eq!(s.store.currency, "EUR");

        let s = SettingsBuilder::new()
            .unwrap()
            .file(&file)
            .unwrap()
            .env(env(&[
                ("BUNDLEFORGE__DATABASE__URL", "sqlite://from-env.db"),
                ("DATABASE_URL", "sqlite://generic.db"),
                ("BUNDLEFORGE__ASSUMPTIONS__COST_RATIO", "0.4"),
            ]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.database.url, "sqlite://from-env.db");
        assert_eq!(s.assumptions.cost_ratio, 0.4);

        let s = SettingsBuilder::new()
            .unwrap()
            .env(env(&[(
                "BUNDLEFORGE__DATABASE__URL",
                "sqlite://from-env.db",
            )]))
            .unwrap()
            .flag("database.url", "sqlite://from-flag.db")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.database.url, "sqlite://from-flag.db");
    }

    #[test]
    fn openai_variables_are_fallbacks_for_the_chat_model_only() {
        let s = SettingsBuilder::new()
            .unwrap()
            .env(env(&[
                ("OPENAI_API_KEY", "sk-generic"),
                ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
                ("BUNDLEFORGE__LLM__API_KEY", "sk-ours"),
            ]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.llm.api_key.expose(), "sk-ours");
        assert!(
            !format!("{:?}", s.llm).contains("sk-ours"),
            "a key in Debug"
        );
        assert_eq!(s.llm.base_url, "http://127.0.0.1:9/v1");
        // Configuring a chat endpoint never moves embeddings off the local model.
        assert_eq!(s.embed.provider, EmbedProvider::Local);
        assert_eq!(s.llm.provider, LlmProvider::Offline);
    }

    #[test]
    fn database_url_alone_is_honoured() {
        let s = SettingsBuilder::new()
            .unwrap()
            .env(env(&[("DATABASE_URL", "sqlite://generic.db")]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.database.url, "sqlite://generic.db");
    }

    #[test]
    fn an_unknown_key_in_a_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bf.toml");
        std::fs::write(&file, "[scoring]\nwindow_dayz = 30\n").unwrap();
        let err = SettingsBuilder::new().unwrap().file(&file).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("scoring.window_dayz"), "{msg}");
        assert!(msg.contains("bf.toml"), "{msg}");
    }

    #[test]
    fn workers_share_the_pipeline_threads_and_server_settings_are_checked() {
        let mut s = SettingsBuilder::new()
            .unwrap()
            .flag("pipeline.threads", "8")
            .unwrap()
            .build()
            .unwrap();
        s.share_threads(3);
        assert_eq!(s.pipeline.threads, 2);
        s.share_threads(5);
        assert_eq!(s.pipeline.threads, 1, "never none");
        for (key, value, says) in [
            ("server.bind", "localhost", "not an address and port"),
            ("server.workers", "0", "at least 1"),
            (
                "server.heartbeat_seconds",
                "30",
                "shorter than server.lease_seconds",
            ),
        ] {
            let err = SettingsBuilder::new()
                .unwrap()
                .flag(key, value)
                .unwrap()
                .build()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(says), "{err}");
        }
    }

    #[test]
    fn unknown_environment_variables_are_warned_about_and_ignored() {
        let b = SettingsBuilder::new()
            .unwrap()
            .env(env(&[("BUNDLEFORGE__NOPE__KEY", "1"), ("PATH", "/bin")]))
            .unwrap();
        assert_eq!(b.warnings().len(), 1);
        assert!(b.warnings()[0].contains("BUNDLEFORGE__NOPE__KEY"));
        assert!(b.build().is_ok());
    }

    #[test]
    fn wrong_types_and_invalid_values_are_refused_with_the_key() {
        let err = SettingsBuilder::new()
            .unwrap()
            .env(env(&[("BUNDLEFORGE__SCORING__WINDOW_DAYS", "sixty")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("scoring.window_days"), "{err}");

        let err = SettingsBuilder::new()
            .unwrap()
            .flag("scoring.small_weights", "0.5,0.5,0.5")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("scoring.small_weights"), "{err}");

        let err = SettingsBuilder::new()
            .unwrap()
            .flag("store.currency", "dollars")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("store.currency"), "{err}");
    }
}
