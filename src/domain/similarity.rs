//! How alike two products are in meaning: the cosine thresholds that every reader of
//! the embeddings shares (the engine's generators and quality rules, the offline
//! provider's proposals, the evaluation's baselines), so that "related" means one
//! thing everywhere.

/// At and above this, two products are near-copies (two variants, two sizes), never
/// complements.
pub const NEAR_COPY: f32 = 0.9;
/// Related enough to be a complement.
pub const RELATED: f32 = 0.25;
/// Alike enough for a mix & match group.
pub const ALIKE: f32 = 0.6;

/// The offline provider's bounds for the bundles it proposes: looser than [`RELATED`]
/// and [`ALIKE`], from before those were shared. Moving them onto the shared ones
/// changes the bundles of every run without a model, so they stay apart until a
/// measurement on held-out stores decides between them.
pub const OFFLINE_RELATED: f32 = 0.2;
pub const OFFLINE_ALIKE: f32 = 0.55;
