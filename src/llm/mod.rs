//! The language-model layer. A model classifies products into objectives, proposes
//! bundles, advises prices and writes copy; it is also the least reliable input the
//! engine has, so everything it answers goes through [`answer`] before any caller sees
//! it: parsed into typed structs, enums and ranges checked, every product id checked
//! against what the prompt offered.

pub mod answer;
pub mod client;
pub mod embeddings;
pub mod gateway;
pub mod offline;
pub mod prompt;
pub mod provider;
