//! Settings: embedded defaults → `--config` file → `BUNDLEFORGE__SECTION__KEY`
//! environment → command-line flags, validated once at start.
//!
//! The embedded defaults file lists every key there is, so it doubles as the schema: a
//! key in a config file that the defaults lack is an error naming it (a typo must not
//! silently leave a default in force), while an unknown environment variable is only
//! warned about (environments carry variables for other versions and tools).
//!
//! `layers.rs` reads the layers into [`Settings`] (`settings.rs`), whose sections each
//! check themselves (`validate`), kept in files by what they configure: `service.rs`
//! (database, server, Shopify), `store.rs` (a store's defaults, ingest, scoring, statistics),
//! `models.rs` (embedder, index, language model), `generate.rs` (candidates, the
//! prior, co-purchase rules), `optimize.rs` (pricing and the bar to publish);
//! `options.rs` holds the option enums and [`Secret`], `error.rs` [`ConfigError`].

mod error;
mod generate;
mod layers;
mod models;
mod optimize;
mod options;
mod service;
mod settings;
mod store;

pub use crate::cpu::thread_count;
pub use error::{ConfigError, check_weights};
pub use generate::{PipelineSettings, PriorSettings, RulesSettings};
pub use layers::SettingsBuilder;
pub use models::{EmbedSettings, IndexSettings, LlmSettings};
pub use optimize::{ObjectiveEvidence, OptimizeSettings, QualitySettings};
pub use options::{EmbedProvider, IndexMethod, JsonMode, LlmProvider, PriceEnding, Secret};
pub use service::{DatabaseSettings, ServerSettings, ShopifySettings};
pub use settings::Settings;
pub use store::{
    AssumptionSettings, IngestSettings, ScoringSettings, StatsSettings, StoreDefaults,
};
