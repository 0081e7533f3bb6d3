//! The vector core: similarity search over product embeddings.
//!
//! Sync and self-contained (no tokio, no logging in loops): callers run it on blocking
//! threads. Vectors live in one contiguous aligned matrix ([`Matrix`]) and are
//! L2-normalised, so the metric is the inner product and **greater score = closer**.
//!
//! - [`metric`]: the inner-product kernel — scalar reference plus AVX2+FMA and AVX-512
//!   versions picked at run time.
//! - [`topk`]: top-k over a total order (ties to the smaller id): deterministic.
//! - [`exact`]: batched exact search as blocked GEMM with top-k fused over blocks.
//! - [`knn`]: the all-pairs kNN graph, computing only half the symmetric product.
//! - [`synthetic`]: seeded clustered vectors for tests and benchmarks.

pub mod exact;
pub mod knn;
pub mod matrix;
pub mod metric;
pub mod synthetic;
pub mod topk;

pub use exact::ExactIndex;
pub use knn::knn_graph;
pub use matrix::{Matrix, MatrixError};
pub use topk::{Neighbour, TopK};

/// Search any index answers. Batched, because every caller has many queries.
pub trait VectorIndex: Send + Sync {
    fn dim(&self) -> usize;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `k` best rows for each query row, best first.
    fn search(&self, queries: &Matrix, k: usize, threads: usize) -> Vec<Vec<Neighbour>>;
}

impl VectorIndex for ExactIndex {
    fn dim(&self) -> usize {
        self.data().dim()
    }
    fn len(&self) -> usize {
        self.data().rows()
    }
    fn search(&self, queries: &Matrix, k: usize, threads: usize) -> Vec<Vec<Neighbour>> {
        self.search_batch(queries, k, threads)
    }
}

/// Recall@k of `got` against `truth`: the share of the true top-k ids found.
pub fn recall_at_k(truth: &[Vec<Neighbour>], got: &[Vec<Neighbour>], k: usize) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    for (t, g) in truth.iter().zip(got) {
        let want: Vec<u32> = t.iter().take(k).map(|n| n.id).collect();
        total += want.len();
        hit += g.iter().take(k).filter(|n| want.contains(&n.id)).count();
    }
    if total == 0 {
        1.0
    } else {
        hit as f64 / total as f64
    }
}
