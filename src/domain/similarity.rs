//! How alike two products are in meaning: the cosine thresholds the readers of the
//! embeddings share (the engine's generators and quality rules, the evaluation's
//! baselines), so that "related" means one thing everywhere; the offline provider's
//! looser bounds for its own proposals are named here too, beside them.

/// At and above this, two products are near-copies (two variants, two sizes), never
/// complements.
pub const NEAR_COPY: f32 = 0.9;
/// Related enough to be a complement.
pub const RELATED: f32 = 0.25;
/// Alike enough for a mix & match group.
pub const ALIKE: f32 = 0.6;

/// The offline provider's bound for a complement it proposes: looser than [`RELATED`],
/// from before that was shared. Moving it (and [`OFFLINE_ALIKE`]) onto the shared
/// bounds changes the bundles of every run without a model, so they stay apart until a
/// measurement on held-out stores decides between them.
pub const OFFLINE_RELATED: f32 = 0.2;
/// The offline provider's bound for a mix & match group it proposes: looser than
/// [`ALIKE`] (see [`OFFLINE_RELATED`]).
pub const OFFLINE_ALIKE: f32 = 0.55;
