//! # bundleforge
//!
//! Turns a merchant's catalog and order history into ready-to-publish product bundles:
//! which products go together, as what offer, at what discount, and why.
//!
//! "LLM drives, data validates": a language model brings semantic understanding, order
//! data validates it (co-purchase lift), and business data keeps it safe (margin,
//! stock). How much each signal counts follows how much order data a store has (see
//! [`stats::tier_for`]).
//!
//! The crate is organised by stage, in floors (`docs/architecture.md`; a test holds the
//! code to them). Data flows forward through plain structs:
//!
//! - [`domain`]: the data model (products, orders, money, bundles); no I/O.
//! - [`ingest`]: merchants' exports in (Shopify CSV/JSON, order rows, UCI Online
//!   Retail), validated row by row.
//! - [`embed`]: product texts, the `Embedder` port (local ONNX model), the vector cache.
//! - [`index`]: the vector core (SIMD kernels, blocked exact search, kNN graph).
//! - [`llm`]: the language-model layer; [`llm::answer`] validates every answer.
//! - [`rules`]: co-purchase evidence: FP-Growth itemsets, rules with lift, pair counts.
//! - [`store`]: storage behind the `Store` port (SQLite through sqlx).
//! - [`store_rules`]: the merchant's word: never-bundle lists, pins, a discount ceiling.
//! - [`stats`]: order volume, weight tier, velocity, stock cover, assumptions.
//! - [`config`]: layered settings, validated once.
//! - [`pipeline`]: `generate`, one run for one store, phase by phase.
//! - [`eval`]: bundle quality on a temporal holdout, beside baselines.
//! - [`bench`]: whole-operation benchmarks (`bundleforge bench`): options in, a report out.
//! - [`services`]: the process's ports, built once ([`app::Services`]).
//! - [`app`]: the use cases the CLI, the service and cohorts call.
//! - [`sync`]: Shopify webhooks applied to a store (last write wins, refunds,
//!   cancellations, redaction).
//! - [`cohorts`]: offline A/B cohorts over one context per scenario.
//! - [`server`]: `bundleforge serve`: the HTTP API and its durable job workers.
//! - [`render`], [`terminal`]: results as text, progress bars (what the CLI prints).
//! - [`rng`]: every seeded random stream.
//! - [`cancel`], [`error`]: a run's cancel token; what kind of failure an error is.
//! - [`fixtures`]: seeded synthetic stores for tests, benches and demos.

pub mod app;
pub mod bench;
pub mod cancel;
pub mod cohorts;
pub mod config;
pub mod cpu;
pub mod destination;
pub mod domain;
pub mod embed;
pub mod error;
pub mod eval;
pub mod fixtures;
pub mod index;
pub mod ingest;
pub mod llm;
pub mod memory;
pub mod pipeline;
pub mod prior;
pub mod render;
pub mod rng;
pub mod rules;
pub mod server;
pub mod services;
pub mod stats;
pub mod store;
pub mod store_rules;
pub mod sync;
pub mod terminal;
