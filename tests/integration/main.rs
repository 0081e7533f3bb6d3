//! Integration tests: one binary, real SQLite files in temp dirs, real input files
//! written in each shape's real column layout.

mod bad_input;
mod calibration;
mod cli;
mod cohorts;
mod cold_start;
mod embed;
mod engine;
mod eval;
mod fixtures;
mod generate;
mod golden;
mod hardening;
mod house;
mod idempotent;
mod llm_client;
mod llm_gateway;
mod mock_llm;
mod model_complements;
mod online_retail;
mod prior;
mod publish;
mod real_llm;
mod reingest;
mod rules;
mod serve;
mod shapes;
mod shopify_app;
mod stats;
mod store_rules;
mod support;
mod webhooks;
