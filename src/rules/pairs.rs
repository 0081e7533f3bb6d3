//! The exact pair path: the co-occurrence count of every pair of items, in one pass over
//! the baskets, without an FP-tree. Pairs are where bundle evidence is densest (millions
//! of pairs co-occur a few times in a large store's history, while a small store has
//! little else), so they are counted in full and filtered at the end.
//!
//! Counts go into a dense upper-triangular matrix over the items that can reach the
//! threshold when that fits the memory limit, else into a hash map. Each thread counts
//! its own share of the baskets, split by pair work, and the counters are added up.

use serde::Serialize;

use super::assoc::{RuleMetrics, metrics};
use super::baskets::Baskets;
use super::hash::FastMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PairCount {
    /// Item ids, `a < b`.
    pub a: u32,
    pub b: u32,
    pub count: u32,
}

/// Every pair bought together at least `min_count` times, ordered by (a, b).
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    pub n_baskets: u64,
    pub item_counts: Vec<u32>,
    pub pairs: Vec<PairCount>,
    /// Whether the dense counter was used (else the hashed one).
    pub dense: bool,
}

impl Pairs {
    /// Lift of the pair: how much more often a and b are bought together than if they
    /// were bought independently.
    pub fn lift(&self, p: &PairCount) -> f64 {
        self.metrics(p).lift
    }

    /// Measures of a → b (lift and leverage are symmetric; confidence is a → b).
    pub fn metrics(&self, p: &PairCount) -> RuleMetrics {
        metrics(
            p.count,
            self.item_counts[p.a as usize],
            self.item_counts[p.b as usize],
            self.n_baskets,
        )
    }
}

/// Counts all pairs; keeps those with count ≥ `min_count`. The dense counter is used
/// when one per thread fits in `dense_limit_bytes`.
pub fn count_pairs(
    baskets: &Baskets,
    min_count: u32,
    threads: usize,
    dense_limit_bytes: usize,
) -> Pairs {
    let min = min_count.max(1);
    let item_counts = baskets.item_counts();
    // Only items bought `min` times can be in a pair bought `min` times.
    let mut local = vec![u32::MAX; item_counts.len()];
    let mut global = Vec::new();
    for (item, &c) in item_counts.iter().enumerate() {
        if c >= min {
            local[item] = global.len() as u32;
            global.push(item as u32);
        }
    }
    let m = global.len();
    let cells = m * m.saturating_sub(1) / 2;
    let threads = threads.max(1);
    let dense = cells.saturating_mul(4).saturating_mul(threads) <= dense_limit_bytes;
    let shares = split_by_work(baskets, threads);

    let for_each_pair = |range: std::ops::Range<usize>, f: &mut dyn FnMut(u32, u32)| {
        let mut l = Vec::new();
        for i in range {
            l.clear();
            l.extend(
                baskets
                    .basket(i)
                    .iter()
                    .map(|&x| local[x as usize])
                    .filter(|&x| x != u32::MAX),
            );
            // Items are sorted by id, and local ids keep that order.
            for (k, &a) in l.iter().enumerate() {
                for &b in &l[k + 1..] {
                    f(a, b);
                }
            }
        }
    };

    let mut pairs = Vec::new();
    if dense {
        // Row a holds b = a+1..m from a·(2m − a − 1)/2; `row(a) + b` is (a, b)'s cell
        // (the subtraction wraps for a = 0 and the addition unwraps it).
        let row = |a: u32| -> usize {
            let a = a as usize;
            (a * (2 * m - a - 1) / 2).wrapping_sub(a + 1)
        };
        let counters: Vec<Vec<u32>> = run_shares(&shares, |range| {
            let mut tri = vec![0u32; cells];
            for_each_pair(range, &mut |a, b| tri[row(a).wrapping_add(b as usize)] += 1);
            tri
        });
        let mut counters = counters.into_iter();
        let mut total = counters.next().unwrap_or_else(|| vec![0u32; cells]);
        for other in counters {
            for (t, o) in total.iter_mut().zip(other) {
                *t += o;
            }
        }
        for a in 0..m as u32 {
            let r = row(a);
            for b in a + 1..m as u32 {
                let count = total[r.wrapping_add(b as usize)];
                if count >= min {
                    pairs.push(PairCount {
                        a: global[a as usize],
                        b: global[b as usize],
                        count,
                    });
                }
            }
        }
    } else {
        let maps: Vec<FastMap<u64, u32>> = run_shares(&shares, |range| {
            let mut map = FastMap::default();
            for_each_pair(range, &mut |a, b| {
                *map.entry((u64::from(a) << 32) | u64::from(b)).or_insert(0) += 1;
            });
            map
        });
        let mut maps = maps.into_iter();
        let mut total = maps.next().unwrap_or_default();
        for other in maps {
            for (k, c) in other {
                *total.entry(k).or_insert(0) += c;
            }
        }
        pairs.extend(
            total
                .into_iter()
                .filter(|&(_, c)| c >= min)
                .map(|(k, count)| PairCount {
                    a: global[(k >> 32) as usize],
                    b: global[(k & 0xffff_ffff) as usize],
                    count,
                }),
        );
    }
    // Local ids keep item-id order, so (a, b) pairs are already ordered in the dense
    // scan; the hash map's are not.
    if !dense {
        pairs.sort_unstable_by_key(|p| (p.a, p.b));
    }
    Pairs {
        n_baskets: baskets.len() as u64,
        item_counts,
        pairs,
        dense,
    }
}

/// Contiguous basket ranges of about equal pair work (a basket of k items has k²/2).
fn split_by_work(baskets: &Baskets, parts: usize) -> Vec<std::ops::Range<usize>> {
    let work = |b: &[u32]| (b.len() * b.len()) as u64;
    let total: u64 = baskets.iter().map(work).sum();
    let mut ranges = Vec::with_capacity(parts);
    let mut start = 0;
    let mut acc = 0u64;
    for (i, b) in baskets.iter().enumerate() {
        acc += work(b);
        let boundary = total * (ranges.len() as u64 + 1) / parts as u64;
        if acc >= boundary && ranges.len() + 1 < parts {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    ranges.push(start..baskets.len());
    ranges
}

fn run_shares<T: Send>(
    shares: &[std::ops::Range<usize>],
    work: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    if shares.len() == 1 {
        return vec![work(shares[0].clone())];
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|r| {
                let work = &work;
                s.spawn(move || work(r.clone()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baskets() -> Baskets {
        Baskets::from_lists([
            vec!["a", "b", "c"],
            vec!["a", "b"],
            vec!["a", "b", "d"],
            vec!["b", "c"],
            vec!["c", "d", "a"],
            vec!["e"],
        ])
    }

    fn named(b: &Baskets, p: &Pairs) -> Vec<(String, String, u32)> {
        let mut v: Vec<_> = p
            .pairs
            .iter()
            .map(|x| {
                let (mut s, mut t) = (b.label(x.a).to_owned(), b.label(x.b).to_owned());
                if s > t {
                    std::mem::swap(&mut s, &mut t);
                }
                (s, t, x.count)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn dense_and_hashed_counters_agree_for_any_thread_count() {
        let b = baskets();
        let want = vec![
            ("a".to_owned(), "b".to_owned(), 3),
            ("a".to_owned(), "c".to_owned(), 2),
            ("a".to_owned(), "d".to_owned(), 2),
            ("b".to_owned(), "c".to_owned(), 2),
        ];
        for threads in [1, 2, 4] {
            let dense = count_pairs(&b, 2, threads, usize::MAX);
            let hashed = count_pairs(&b, 2, threads, 0);
            assert!(dense.dense && !hashed.dense);
            assert_eq!(named(&b, &dense), want);
            assert_eq!(dense.pairs, hashed.pairs);
        }
        let all = count_pairs(&b, 1, 2, usize::MAX);
        assert_eq!(all.pairs.len(), 6);
    }

    #[test]
    fn lift_is_relative_to_independence() {
        let b = baskets();
        let p = count_pairs(&b, 3, 1, usize::MAX);
        // a in 4 of 6 baskets, b in 4, both in 3: lift = 3·6 / (4·4).
        assert_eq!(p.pairs.len(), 1);
        assert!((p.lift(&p.pairs[0]) - 18.0 / 16.0).abs() < 1e-12);
    }
}
