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
//! - [`hnsw`]: approximate search for large catalogs (HNSW over the same kernels).
//! - [`knn`]: the all-pairs kNN graph, computing only half the symmetric product.
//! - [`clusters`]: spherical k-means, labels for rows that have none.
//! - [`synthetic`]: seeded clustered vectors for tests and benchmarks.

pub mod clusters;
pub mod exact;
pub mod hnsw;
pub mod knn;
pub mod matrix;
pub mod metric;
pub mod synthetic;
pub mod topk;

pub use exact::ExactIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use knn::{knn_graph, knn_graph_until};

use crate::cancel::{CancelToken, Cancelled};
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

/// Recall@k of `got` against `truth`: the share of the true top-k found. A hit whose
/// score ties the true k-th score (within float noise) counts as found, since catalogs
/// hold exact duplicates (one title listed twice) and which of them ranks k-th is
/// arbitrary.
pub fn recall_at_k(truth: &[Vec<Neighbour>], got: &[Vec<Neighbour>], k: usize) -> f64 {
    const TIE: f32 = 1e-5;
    let mut hit = 0usize;
    let mut total = 0usize;
    for (t, g) in truth.iter().zip(got) {
        let want: Vec<u32> = t.iter().take(k).map(|n| n.id).collect();
        let kth = t[..t.len().min(k)]
            .last()
            .map_or(f32::INFINITY, |n| n.score);
        total += want.len();
        hit += g
            .iter()
            .take(k)
            .filter(|n| want.contains(&n.id) || n.score >= kth - TIE)
            .count()
            .min(want.len());
    }
    if total == 0 {
        1.0
    } else {
        hit as f64 / total as f64
    }
}

/// How a neighbour graph is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphMethod {
    Exact,
    Approximate { ef: usize },
}

impl GraphMethod {
    /// `auto` picks exact search up to `exact_up_to` vectors and HNSW above: the
    /// measured crossover of the whole-catalog kNN graph on 2 cores lies between 100k
    /// (exact 24.7 s, HNSW 28.6 s) and 200k (96.6 s vs 57.6 s); see BENCHMARKS.md.
    pub fn choose(setting: &str, n: usize, exact_up_to: usize, ef: usize) -> GraphMethod {
        match setting {
            "exact" => GraphMethod::Exact,
            "approximate" => GraphMethod::Approximate { ef },
            _ if n <= exact_up_to => GraphMethod::Exact,
            _ => GraphMethod::Approximate { ef },
        }
    }
}

/// Each row's `k` nearest other rows, excluding its own group (see [`knn_graph`]), by
/// the given method.
pub fn neighbour_graph(
    data: &Matrix,
    k: usize,
    groups: Option<&[u32]>,
    method: GraphMethod,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Vec<Vec<Neighbour>>, Cancelled> {
    match method {
        GraphMethod::Exact => knn_graph_until(data, k, groups, threads, cancel),
        GraphMethod::Approximate { ef } => {
            // Ask for enough extra hits to drop the row's own group and still have k.
            let widest_group = groups.map_or(1, |g| {
                let mut sizes = std::collections::HashMap::new();
                g.iter()
                    .for_each(|x| *sizes.entry(*x).or_insert(0usize) += 1);
                sizes.values().copied().max().unwrap_or(1)
            });
            let want = k + widest_group;
            let index =
                HnswIndex::build_until(data.clone(), HnswParams::default(), threads, cancel)?;
            let hits = index.search_batch_until(data, want, ef.max(want), threads, cancel)?;
            Ok(hits
                .into_iter()
                .enumerate()
                .map(|(i, row)| {
                    row.into_iter()
                        .filter(|n| {
                            n.id as usize != i && groups.is_none_or(|g| g[n.id as usize] != g[i])
                        })
                        .take(k)
                        .collect()
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_ids_and_tied_scores() {
        let n = |id, score| Neighbour { id, score };
        let truth = vec![vec![n(1, 0.9), n(2, 0.8), n(3, 0.5)]];
        assert_eq!(recall_at_k(&truth, &truth, 3), 1.0);
        // Id 7 ties the third true score: a duplicate, as good as id 3.
        assert_eq!(
            recall_at_k(&truth, &[vec![n(1, 0.9), n(2, 0.8), n(7, 0.5)]], 3),
            1.0
        );
        let got = vec![vec![n(1, 0.9), n(8, 0.4), n(9, 0.3)]];
        assert!((recall_at_k(&truth, &got, 3) - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn auto_switches_to_approximate_above_the_crossover() {
        assert_eq!(
            GraphMethod::choose("auto", 1000, 120_000, 64),
            GraphMethod::Exact
        );
        assert_eq!(
            GraphMethod::choose("auto", 120_001, 120_000, 64),
            GraphMethod::Approximate { ef: 64 }
        );
        assert_eq!(
            GraphMethod::choose("exact", 10_000_000, 120_000, 64),
            GraphMethod::Exact
        );
        assert_eq!(
            GraphMethod::choose("approximate", 10, 120_000, 64),
            GraphMethod::Approximate { ef: 64 }
        );
    }

    #[test]
    fn both_methods_agree_on_a_small_graph_with_groups() {
        let data = synthetic::clustered(3000, 32, 30, 21);
        let groups: Vec<u32> = (0..3000).map(|i| i / 2).collect();
        let never = CancelToken::never();
        let exact = neighbour_graph(&data, 10, Some(&groups), GraphMethod::Exact, 2, &never);
        let approx = neighbour_graph(
            &data,
            10,
            Some(&groups),
            GraphMethod::Approximate { ef: 64 },
            2,
            &never,
        );
        let (exact, approx) = (exact.unwrap(), approx.unwrap());
        assert!(
            approx
                .iter()
                .enumerate()
                .all(|(i, r)| r.iter().all(|n| groups[n.id as usize] != groups[i]))
        );
        let recall = recall_at_k(&exact, &approx, 10);
        assert!(recall >= 0.95, "graph recall {recall}");
    }

    #[test]
    fn a_cancelled_token_stops_either_method() {
        let data = synthetic::clustered(2500, 16, 10, 3);
        let cancel = CancelToken::new();
        cancel.cancel();
        for method in [GraphMethod::Exact, GraphMethod::Approximate { ef: 32 }] {
            let got = neighbour_graph(&data, 5, None, method, 2, &cancel);
            assert_eq!(got.err(), Some(Cancelled), "{method:?}");
        }
    }
}
