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
