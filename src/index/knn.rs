//! The all-pairs kNN graph: each vector's k nearest others.
//!
//! The score matrix X·Xᵀ is symmetric, so only blocks on and above the diagonal are
//! computed: a block (I, J) feeds the top-k of I's rows with J's columns and, read
//! column-wise, J's rows with I's, halving the arithmetic of an all-vs-all search.
//! A row never lists itself, nor (with `groups`) any vector of its own group, such as
//! the other variants of one product.

use super::exact::scores_into;
use super::matrix::Matrix;
use super::topk::{Neighbour, TopK};
use crate::cancel::{CancelToken, Cancelled, never_cancelled};

const BLOCK: usize = 1024;

/// Each row's `k` nearest other rows, best first. `groups[i] == groups[j]` excludes j
/// from i's list (and i itself always).
pub fn knn_graph(
    data: &Matrix,
    k: usize,
    groups: Option<&[u32]>,
    threads: usize,
) -> Vec<Vec<Neighbour>> {
    let never = CancelToken::never();
    never_cancelled(knn_graph_until(data, k, groups, threads, &never))
}

/// [`knn_graph`], stopping within a block (tens of milliseconds) once `cancel` is
/// cancelled.
pub fn knn_graph_until(
    data: &Matrix,
    k: usize,
    groups: Option<&[u32]>,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Vec<Vec<Neighbour>>, Cancelled> {
    let n = data.rows();
    if let Some(g) = groups {
        assert_eq!(g.len(), n, "one group per row");
    }
    let blocks = n.div_ceil(BLOCK);
    let pairs: Vec<(usize, usize)> = (0..blocks)
        .flat_map(|i| (i..blocks).map(move |j| (i, j)))
        .collect();
    let threads = threads.clamp(1, pairs.len().max(1));
    let partials: Vec<Vec<TopK>> = if threads == 1 {
        vec![graph_part(data, k, groups, &pairs, cancel)]
    } else {
        // Deal pairs round-robin so diagonal and off-diagonal work spread evenly.
        let shares: Vec<Vec<(usize, usize)>> = (0..threads)
            .map(|t| pairs.iter().copied().skip(t).step_by(threads).collect())
            .collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = shares
                .iter()
                .map(|share| s.spawn(move || graph_part(data, k, groups, share, cancel)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    cancel.check()?;
    let mut partials = partials.into_iter();
    let mut merged = partials.next().unwrap_or_default();
    for part in partials {
        for (m, p) in merged.iter_mut().zip(&part) {
            m.merge(p);
        }
    }
    Ok(merged.into_iter().map(TopK::into_vec).collect())
}

fn graph_part(
    data: &Matrix,
    k: usize,
    groups: Option<&[u32]>,
    pairs: &[(usize, usize)],
    cancel: &CancelToken,
) -> Vec<TopK> {
    let n = data.rows();
    let d = data.dim();
    let x = data.as_slice();
    let mut tops: Vec<TopK> = (0..n).map(|_| TopK::new(k)).collect();
    let mut tile = vec![0.0f32; BLOCK * BLOCK];
    let excluded = |i: usize, j: usize| i == j || groups.is_some_and(|g| g[i] == g[j]);
    for &(bi, bj) in pairs {
        if cancel.is_cancelled() {
            break;
        }
        let (i0, j0) = (bi * BLOCK, bj * BLOCK);
        let (ni, nj) = (BLOCK.min(n - i0), BLOCK.min(n - j0));
        scores_into(
            &x[i0 * d..(i0 + ni) * d],
            ni,
            &x[j0 * d..(j0 + nj) * d],
            nj,
            d,
            &mut tile,
        );
        // Rows of I take columns of J.
        for r in 0..ni {
            let i = i0 + r;
            let row = &tile[r * nj..(r + 1) * nj];
            let top = &mut tops[i];
            let mut threshold = top.threshold();
            for (c, &s) in row.iter().enumerate() {
                if s >= threshold && !excluded(i, j0 + c) {
                    top.push((j0 + c) as u32, s);
                    threshold = top.threshold();
                }
            }
        }
        if bi == bj {
            continue;
        }
        // Rows of J take columns of I: the same scores, read down the columns.
        let mut thresholds: Vec<f32> = (0..nj).map(|c| tops[j0 + c].threshold()).collect();
        for r in 0..ni {
            let i = i0 + r;
            let row = &tile[r * nj..(r + 1) * nj];
            for (c, &s) in row.iter().enumerate() {
                if s >= thresholds[c] && !excluded(i, j0 + c) {
                    let top = &mut tops[j0 + c];
                    top.push(i as u32, s);
                    thresholds[c] = top.threshold();
                }
            }
        }
    }
    tops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{exact, synthetic};

    fn ids(v: &[Neighbour]) -> Vec<u32> {
        v.iter().map(|n| n.id).collect()
    }

    #[test]
    fn the_graph_equals_brute_force_without_self() {
        for (n, threads) in [(10, 1), (BLOCK + 300, 1), (2 * BLOCK + 5, 2)] {
            let data = synthetic::clustered(n, 24, 8, 5);
            let graph = knn_graph(&data, 7, None, threads);
            let reference = exact::search_reference(&data, &data, 8);
            for (i, (g, r)) in graph.iter().zip(&reference).enumerate() {
                let want: Vec<u32> = ids(r)
                    .into_iter()
                    .filter(|&j| j as usize != i)
                    .take(7)
                    .collect();
                if ids(g) != want {
                    // Allow swaps among near-equal scores only.
                    let rs: Vec<f32> = r
                        .iter()
                        .filter(|x| x.id as usize != i)
                        .map(|x| x.score)
                        .collect();
                    for (a, b) in g.iter().zip(&rs) {
                        assert!((a.score - b).abs() < 1e-4, "row {i}: {g:?} vs {r:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn rows_of_one_group_never_list_each_other() {
        let data = synthetic::clustered(300, 16, 4, 9);
        let groups: Vec<u32> = (0..300).map(|i| i / 3).collect();
        let graph = knn_graph(&data, 10, Some(&groups), 2);
        for (i, row) in graph.iter().enumerate() {
            assert_eq!(row.len(), 10);
            assert!(row.iter().all(|n| groups[n.id as usize] != groups[i]));
        }
    }
}
