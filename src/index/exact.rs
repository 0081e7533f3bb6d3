//! Exact search: every query against every vector, as blocked matrix products.
//!
//! A batch of queries Q (m × d) against the data X (n × d) is the product Q·Xᵀ. It runs
//! block by block through a packed, register-blocked GEMM (the `gemm` crate, which picks
//! AVX2/AVX-512 micro-kernels at run time), and each block of scores is folded into the
//! queries' top-k at once, so the m × n score matrix never exists whole: memory stays
//! at one block per thread whatever n is. Threads split the queries; each owns its
//! top-k lists, so nothing is shared or locked.

use super::matrix::Matrix;
use super::topk::{Neighbour, TopK};

/// Data rows per GEMM block: large enough that packing the block is amortised over
/// every query of the thread, small enough that a block of scores stays modest.
const DATA_BLOCK: usize = 2048;
/// Queries per GEMM call.
const QUERY_BLOCK: usize = 512;

/// `dst (rows × cols, row stride cols) = a (rows × d) · b (cols × d)ᵀ`.
pub(crate) fn scores_into(
    a: &[f32],
    rows: usize,
    b: &[f32],
    cols: usize,
    d: usize,
    dst: &mut [f32],
) {
    debug_assert!(a.len() >= rows * d && b.len() >= cols * d && dst.len() >= rows * cols);
    if rows == 0 || cols == 0 {
        return;
    }
    // SAFETY: the asserts above bound every access: dst is rows × cols with row stride
    // `cols`; lhs is rows × d row-major; rhs is d × cols read as the transpose of the
    // row-major cols × d block (column stride d, row stride 1).
    unsafe {
        gemm::gemm(
            rows,
            cols,
            d,
            dst.as_mut_ptr(),
            1,
            cols as isize,
            false,
            a.as_ptr(),
            1,
            d as isize,
            b.as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Exact inner-product search over a fixed set of vectors.
pub struct ExactIndex {
    data: Matrix,
}

impl ExactIndex {
    pub fn new(data: Matrix) -> Self {
        ExactIndex { data }
    }

    pub fn data(&self) -> &Matrix {
        &self.data
    }

    /// Top-k of each query row, best first, using up to `threads` threads.
    pub fn search_batch(&self, queries: &Matrix, k: usize, threads: usize) -> Vec<Vec<Neighbour>> {
        assert_eq!(queries.dim(), self.data.dim(), "query dimension");
        let m = queries.rows();
        let threads = threads.clamp(1, m.max(1));
        if threads == 1 {
            return self.search_range(queries, 0..m, k);
        }
        let chunk = m.div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let range = (t * chunk).min(m)..((t + 1) * chunk).min(m);
                    s.spawn(move || self.search_range(queries, range, k))
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    fn search_range(
        &self,
        queries: &Matrix,
        range: std::ops::Range<usize>,
        k: usize,
    ) -> Vec<Vec<Neighbour>> {
        let d = self.data.dim();
        let n = self.data.rows();
        let mut out = Vec::with_capacity(range.len());
        let mut tile = vec![0.0f32; QUERY_BLOCK.min(range.len().max(1)) * DATA_BLOCK.min(n.max(1))];
        let mut q0 = range.start;
        while q0 < range.end {
            let qn = QUERY_BLOCK.min(range.end - q0);
            let qa = &queries.as_slice()[q0 * d..(q0 + qn) * d];
            let mut tops: Vec<TopK> = (0..qn).map(|_| TopK::new(k)).collect();
            let mut d0 = 0;
            while d0 < n {
                let dn = DATA_BLOCK.min(n - d0);
                let xb = &self.data.as_slice()[d0 * d..(d0 + dn) * d];
                scores_into(qa, qn, xb, dn, d, &mut tile);
                for (qi, top) in tops.iter_mut().enumerate() {
                    let row = &tile[qi * dn..(qi + 1) * dn];
                    let mut threshold = top.threshold();
                    for (j, &s) in row.iter().enumerate() {
                        if s >= threshold {
                            top.push((d0 + j) as u32, s);
                            threshold = top.threshold();
                        }
                    }
                }
                d0 += dn;
            }
            out.extend(tops.into_iter().map(TopK::into_vec));
            q0 += qn;
        }
        out
    }
}

/// Brute force, one dot product at a time: the reference the blocked search is
/// tested against.
pub fn search_reference(data: &Matrix, queries: &Matrix, k: usize) -> Vec<Vec<Neighbour>> {
    (0..queries.rows())
        .map(|qi| {
            let mut top = TopK::new(k);
            for i in 0..data.rows() {
                top.push(
                    i as u32,
                    super::metric::dot_scalar(queries.row(qi), data.row(i)),
                );
            }
            top.into_vec()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::synthetic;

    #[test]
    fn blocked_search_equals_brute_force() {
        // Sizes straddle the block sizes so partial blocks are exercised.
        for (n, m, d) in [
            (1, 1, 3),
            (100, 7, 17),
            (DATA_BLOCK + 37, 29, 65),
            (3000, QUERY_BLOCK + 3, 8),
        ] {
            let data = synthetic::clustered(n, d, 10, 1);
            let queries = synthetic::queries_near(&data, m, 0.1, 2);
            let want = search_reference(&data, &queries, 10);
            for threads in [1, 2] {
                let got = ExactIndex::new(data.clone()).search_batch(&queries, 10, threads);
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    let gi: Vec<u32> = g.iter().map(|n| n.id).collect();
                    let wi: Vec<u32> = w.iter().map(|n| n.id).collect();
                    // Scores from two summation orders may differ in the last bits;
                    // ids may swap only where scores are that close.
                    if gi != wi {
                        for (a, b) in g.iter().zip(w) {
                            assert!(
                                (a.score - b.score).abs() < 1e-4,
                                "n={n} m={m} d={d}: {g:?} vs {w:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn k_larger_than_the_data_returns_everything() {
        let data = synthetic::clustered(5, 4, 2, 3);
        let got = ExactIndex::new(data.clone()).search_batch(&data, 10, 1);
        assert!(got.iter().all(|r| r.len() == 5));
    }
}
