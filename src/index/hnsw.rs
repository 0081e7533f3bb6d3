//! Approximate search: a hierarchical navigable small-world graph (Malkov & Yashunin),
//! built in parallel over our own SIMD inner-product kernel.
//!
//! Build and search are split. The builder keeps each node's neighbour lists behind
//! its own mutex so that threads insert concurrently (a node's lists are locked only
//! while read or rewritten); `build` then freezes them into flat arrays, so searching
//! takes no locks at all. Levels come from a seeded generator; with one build thread
//! the graph is fully deterministic, with several the insertion order interleaves and
//! the graph (not its quality) varies from run to run.
//!
//! Neighbours are chosen with the diversity heuristic: a candidate joins only if it is
//! closer to the new node than to every neighbour chosen before it, which keeps edges
//! pointing in different directions and the graph navigable in clustered data.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use super::matrix::Matrix;
use super::metric::{Kernels, kernels};
use super::topk::Neighbour;
use crate::cancel::{CancelToken, Cancelled, never_cancelled};

/// Build parameters. `m` links per node on upper layers, `2m` on the bottom one.
#[derive(Debug, Clone, Copy)]
pub struct HnswParams {
    pub m: usize,
    pub ef_construction: usize,
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            seed: 42,
        }
    }
}

/// A scored node in a heap; ordered by score, ties by id, so heaps are deterministic.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored {
    score: f32,
    id: u32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Marks visited nodes without clearing an n-sized array per search.
struct Visited {
    stamp: u32,
    marks: Vec<u32>,
}

impl Visited {
    fn new(n: usize) -> Self {
        Visited {
            stamp: 0,
            marks: vec![0; n],
        }
    }

    fn next_round(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.stamp = 1;
        }
    }

    /// True the first time `id` is seen this round.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let slot = &mut self.marks[id as usize];
        if *slot == self.stamp {
            false
        } else {
            *slot = self.stamp;
            true
        }
    }
}

#[inline]
fn prefetch(data: &Matrix, id: u32) {
    #[cfg(target_arch = "x86_64")]
    {
        let row = data.row(id as usize);
        // SAFETY: prefetch is a hint; the pointer is in bounds of a live slice.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, id);
}

/// Greedy best-first search of one layer from `entry`, keeping the `ef` best.
/// `links(node)` yields a node's neighbours on that layer.
fn search_layer<F>(
    data: &Matrix,
    k: &Kernels,
    query: &[f32],
    entry: &[Scored],
    ef: usize,
    visited: &mut Visited,
    mut links: F,
) -> Vec<Scored>
where
    F: FnMut(u32, &mut Vec<u32>),
{
    visited.next_round();
    let mut candidates: BinaryHeap<Scored> = BinaryHeap::new();
    // Min-heap of the results: the worst kept result on top.
    let mut results: BinaryHeap<std::cmp::Reverse<Scored>> = BinaryHeap::new();
    for &e in entry {
        if visited.insert(e.id) {
            candidates.push(e);
            results.push(std::cmp::Reverse(e));
        }
    }
    while results.len() > ef {
        results.pop();
    }
    let mut buf = Vec::with_capacity(64);
    while let Some(c) = candidates.pop() {
        let worst = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.score);
        if c.score < worst && results.len() >= ef {
            break;
        }
        buf.clear();
        links(c.id, &mut buf);
        buf.retain(|&n| visited.insert(n));
        for &n in &buf {
            prefetch(data, n);
        }
        for &n in &buf {
            let s = k.dot(query, data.row(n as usize));
            let worst = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.score);
            if results.len() < ef || s > worst {
                let sc = Scored { score: s, id: n };
                candidates.push(sc);
                results.push(std::cmp::Reverse(sc));
                if results.len() > ef {
                    results.pop();
                }
            }
        }
    }
    let mut out: Vec<Scored> = results.into_iter().map(|r| r.0).collect();
    out.sort_by(|a, b| b.cmp(a));
    out
}

/// The diversity heuristic: from `candidates` (best first), keep up to `m`, each no
/// closer to a neighbour kept before it than to the query.
fn select_neighbours(data: &Matrix, k: &Kernels, candidates: &[Scored], m: usize) -> Vec<u32> {
    if candidates.len() <= m {
        return candidates.iter().map(|c| c.id).collect();
    }
    let mut kept: Vec<Scored> = Vec::with_capacity(m);
    for &c in candidates {
        if kept.len() == m {
            break;
        }
        let row = data.row(c.id as usize);
        // Reject only what a kept neighbour is strictly closer to: with `<=`, exact
        // duplicates (one title listed twice) would keep nothing but each other and
        // form islands that no search reaches.
        let diverse = kept
            .iter()
            .all(|r| k.dot(row, data.row(r.id as usize)) <= c.score);
        if diverse {
            kept.push(c);
        }
    }
    kept.iter().map(|c| c.id).collect()
}

/// Node levels: −ln(U)·mL with mL = 1/ln(m), from a seeded stream.
fn draw_levels(n: usize, m: usize, seed: u64) -> Vec<u8> {
    let ml = 1.0 / (m.max(2) as f64).ln();
    let mut stream = crate::rng::Stream::new(crate::rng::Purpose::IndexLevels, seed);
    (0..n)
        .map(|_| {
            let u = stream.unit_above_zero();
            ((-u.ln() * ml) as usize).min(31) as u8
        })
        .collect()
}

struct Builder<'a> {
    data: &'a Matrix,
    params: HnswParams,
    levels: Vec<u8>,
    /// links[node][layer], each behind the node's mutex.
    links: Vec<Mutex<Vec<Vec<u32>>>>,
    /// (entry node, its level), updated when a node lands above the top.
    entry: Mutex<Option<(u32, u8)>>,
}

impl Builder<'_> {
    fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    fn neighbours(&self, node: u32, layer: usize, out: &mut Vec<u32>) {
        if let Ok(l) = self.links[node as usize].lock()
            && let Some(v) = l.get(layer)
        {
            out.extend_from_slice(v);
        }
    }

    fn insert(&self, q: u32, visited: &mut Visited) {
        let k = kernels();
        let data = self.data;
        let query = data.row(q as usize);
        let level = self.levels[q as usize] as usize;
        let Some((entry, top)) = *self.entry.lock().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let top = top as usize;
        let mut eps = vec![Scored {
            score: k.dot(query, data.row(entry as usize)),
            id: entry,
        }];
        // Greedy descent through the layers above the node's own.
        for layer in (level + 1..=top).rev() {
            eps = search_layer(data, k, query, &eps, 1, visited, |n, out| {
                self.neighbours(n, layer, out)
            });
        }
        for layer in (0..=level.min(top)).rev() {
            let found = search_layer(
                data,
                k,
                query,
                &eps,
                self.params.ef_construction,
                visited,
                |n, out| self.neighbours(n, layer, out),
            );
            let chosen = select_neighbours(data, k, &found, self.params.m);
            let cap = self.max_links(layer);
            if let Ok(mut l) = self.links[q as usize].lock() {
                // Another thread may have reached q through an upper layer and linked
                // itself to q here already: keep those links, or that node loses its
                // only way in.
                let earlier = std::mem::take(&mut l[layer]);
                l[layer] = if earlier.is_empty() {
                    chosen.clone()
                } else {
                    let mut all: Vec<u32> = chosen.clone();
                    all.extend(earlier.into_iter().filter(|x| !chosen.contains(x)));
                    let mut cands: Vec<Scored> = all
                        .into_iter()
                        .map(|x| Scored {
                            score: k.dot(query, data.row(x as usize)),
                            id: x,
                        })
                        .collect();
                    cands.sort_by(|a, b| b.cmp(a));
                    select_neighbours(data, k, &cands, cap)
                };
            }
            for &e in &chosen {
                let Ok(mut l) = self.links[e as usize].lock() else {
                    continue;
                };
                let list = &mut l[layer];
                if list.len() < cap {
                    list.push(q);
                } else {
                    // Re-select e's links among its old ones and q.
                    let erow = data.row(e as usize);
                    let mut cands: Vec<Scored> = list
                        .iter()
                        .chain(std::iter::once(&q))
                        .map(|&x| Scored {
                            score: k.dot(erow, data.row(x as usize)),
                            id: x,
                        })
                        .collect();
                    cands.sort_by(|a, b| b.cmp(a));
                    *list = select_neighbours(data, k, &cands, cap);
                }
            }
            eps = found;
        }
        if level > top {
            let mut e = self.entry.lock().unwrap_or_else(|e| e.into_inner());
            if e.is_none_or(|(_, t)| (t as usize) < level) {
                *e = Some((q, level as u8));
            }
        }
    }
}

/// A frozen HNSW graph: flat link arrays, no locks.
pub struct HnswIndex {
    data: Matrix,
    /// Bottom layer: `2m` slots per node, `u32::MAX` marks an empty slot.
    layer0: Vec<u32>,
    /// Upper layers: per node, its links on layers 1..=level, concatenated.
    upper: Vec<Vec<Vec<u32>>>,
    m0: usize,
    entry: u32,
    top: usize,
    pub params: HnswParams,
}

impl HnswIndex {
    /// Builds the graph with `threads` inserting concurrently.
    pub fn build(data: Matrix, params: HnswParams, threads: usize) -> Self {
        never_cancelled(Self::build_until(
            data,
            params,
            threads,
            &CancelToken::never(),
        ))
    }

    /// [`HnswIndex::build`], stopping within an insert once `cancel` is cancelled.
    pub fn build_until(
        data: Matrix,
        params: HnswParams,
        threads: usize,
        cancel: &CancelToken,
    ) -> Result<Self, Cancelled> {
        let n = data.rows();
        let levels = draw_levels(n, params.m, params.seed);
        let links: Vec<Mutex<Vec<Vec<u32>>>> = levels
            .iter()
            .map(|&l| Mutex::new(vec![Vec::new(); l as usize + 1]))
            .collect();
        let builder = Builder {
            data: &data,
            params,
            levels,
            links,
            entry: Mutex::new(if n > 0 { Some((0, 0)) } else { None }),
        };
        if n > 0 {
            // Node 0 is the first entry; give it its real level.
            if let Ok(mut e) = builder.entry.lock() {
                *e = Some((0, builder.levels[0]));
            }
        }
        let next = AtomicUsize::new(1);
        let work = || {
            let mut visited = Visited::new(n);
            loop {
                let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                if i >= n || cancel.is_cancelled() {
                    break;
                }
                builder.insert(i as u32, &mut visited);
            }
        };
        let threads = threads.max(1);
        if threads == 1 || n < 1000 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        cancel.check()?;
        let m0 = 2 * params.m;
        let (entry, top) = builder
            .entry
            .lock()
            .ok()
            .and_then(|e| *e)
            .map_or((0, 0), |(e, t)| (e, t as usize));
        let mut layer0 = vec![u32::MAX; n * m0];
        let mut upper = Vec::with_capacity(n);
        for (i, l) in builder.links.into_iter().enumerate() {
            let mut l = l.into_inner().unwrap_or_else(|e| e.into_inner());
            let bottom = std::mem::take(&mut l[0]);
            layer0[i * m0..i * m0 + bottom.len().min(m0)]
                .copy_from_slice(&bottom[..bottom.len().min(m0)]);
            l.remove(0);
            upper.push(l);
        }
        Ok(HnswIndex {
            data,
            layer0,
            upper,
            m0,
            entry,
            top,
            params,
        })
    }

    pub fn len(&self) -> usize {
        self.data.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.data.rows() == 0
    }

    pub fn data(&self) -> &Matrix {
        &self.data
    }

    fn search_one(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        visited: &mut Visited,
    ) -> Vec<Neighbour> {
        if self.is_empty() || k == 0 {
            return Vec::new();
        }
        let kern = kernels();
        let data = &self.data;
        let mut eps = vec![Scored {
            score: kern.dot(query, data.row(self.entry as usize)),
            id: self.entry,
        }];
        for layer in (1..=self.top).rev() {
            eps = search_layer(data, kern, query, &eps, 1, visited, |n, out| {
                if let Some(l) = self.upper[n as usize].get(layer - 1) {
                    out.extend_from_slice(l);
                }
            });
        }
        let m0 = self.m0;
        let found = search_layer(data, kern, query, &eps, ef.max(k), visited, |n, out| {
            let slots = &self.layer0[n as usize * m0..(n as usize + 1) * m0];
            out.extend(slots.iter().copied().take_while(|&x| x != u32::MAX));
        });
        found
            .into_iter()
            .take(k)
            .map(|s| Neighbour {
                id: s.id,
                score: s.score,
            })
            .collect()
    }

    /// Top-k of each query row with search breadth `ef` (≥ k), over `threads` threads.
    pub fn search_batch(
        &self,
        queries: &Matrix,
        k: usize,
        ef: usize,
        threads: usize,
    ) -> Vec<Vec<Neighbour>> {
        let never = CancelToken::never();
        never_cancelled(self.search_batch_until(queries, k, ef, threads, &never))
    }

    /// [`HnswIndex::search_batch`], stopping within a query once `cancel` is cancelled.
    pub fn search_batch_until(
        &self,
        queries: &Matrix,
        k: usize,
        ef: usize,
        threads: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<Vec<Neighbour>>, Cancelled> {
        assert_eq!(queries.dim(), self.data.dim(), "query dimension");
        let m = queries.rows();
        let threads = threads.clamp(1, m.max(1));
        let run = |range: std::ops::Range<usize>| {
            let mut visited = Visited::new(self.len());
            range
                .map_while(|i| {
                    (!cancel.is_cancelled())
                        .then(|| self.search_one(queries.row(i), k, ef, &mut visited))
                })
                .collect::<Vec<_>>()
        };
        let hits = if threads == 1 {
            run(0..m)
        } else {
            self.search_chunks(m, threads, run)
        };
        cancel.check()?;
        Ok(hits)
    }

    fn search_chunks(
        &self,
        m: usize,
        threads: usize,
        run: impl Fn(std::ops::Range<usize>) -> Vec<Vec<Neighbour>> + Sync,
    ) -> Vec<Vec<Neighbour>> {
        let run = &run;
        let chunk = m.div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let range = (t * chunk).min(m)..((t + 1) * chunk).min(m);
                    s.spawn(move || run(range))
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{ExactIndex, recall_at_k, synthetic};

    #[test]
    fn recall_against_exact_search_stays_within_its_budget() {
        let data = synthetic::clustered(5000, 64, 50, 3);
        let queries = synthetic::queries_near(&data, 200, 0.3, 4);
        let truth = ExactIndex::new(data.clone()).search_batch(&queries, 10, 1);
        for threads in [1, 2] {
            let index = HnswIndex::build(data.clone(), HnswParams::default(), threads);
            let got = index.search_batch(&queries, 10, 64, 2);
            let recall = recall_at_k(&truth, &got, 10);
            // Failure budget: at most 5 % of the true top-10 may be missed at ef = 64.
            assert!(
                recall >= 0.95,
                "recall@10 {recall} with {threads} build threads"
            );
            assert!(got.iter().all(|r| r.len() == 10));
        }
    }

    #[test]
    fn every_node_is_reachable_and_results_are_sorted() {
        let data = synthetic::clustered(1500, 16, 10, 8);
        let index = HnswIndex::build(
            data.clone(),
            HnswParams {
                m: 8,
                ef_construction: 100,
                seed: 1,
            },
            1,
        );
        // Searching for each vector finds itself first (it is its own best match).
        let got = index.search_batch(&data, 3, 50, 2);
        let found_self = got
            .iter()
            .enumerate()
            .filter(|(i, r)| r[0].id as usize == *i)
            .count();
        assert!(found_self as f64 >= 0.99 * 1500.0, "{found_self}");
        assert!(
            got.iter()
                .all(|r| r.windows(2).all(|w| w[0].score >= w[1].score))
        );
    }

    #[test]
    fn duplicate_vectors_do_not_form_unreachable_islands() {
        // Every vector three times over, as catalogs list one title several times.
        let base = synthetic::clustered(800, 32, 20, 12);
        let mut values = Vec::new();
        for _ in 0..3 {
            values.extend_from_slice(base.as_slice());
        }
        let data = Matrix::from_vec(32, &values).unwrap();
        let truth = ExactIndex::new(data.clone()).search_batch(&data, 10, 2);
        // Two build threads as well: a node reached through an upper layer before its
        // own bottom links exist must not lose the links others made to it.
        for threads in [1, 2] {
            let index = HnswIndex::build(data.clone(), HnswParams::default(), threads);
            let recall = recall_at_k(&truth, &index.search_batch(&data, 10, 64, 2), 10);
            assert!(
                recall >= 0.97,
                "recall@10 {recall} with {threads} build threads"
            );
        }
    }

    #[test]
    fn tiny_and_empty_indexes_answer() {
        let empty = HnswIndex::build(Matrix::zeros(0, 4), HnswParams::default(), 1);
        assert!(empty.search_batch(&Matrix::zeros(1, 4), 5, 10, 1)[0].is_empty());
        let one = HnswIndex::build(
            Matrix::from_vec(2, &[1.0, 0.0]).unwrap(),
            HnswParams::default(),
            1,
        );
        assert_eq!(
            one.search_batch(&Matrix::from_vec(2, &[1.0, 0.0]).unwrap(), 5, 10, 1)[0].len(),
            1
        );
    }
}
