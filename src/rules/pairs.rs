//! The exact pair path: the co-occurrence count of every pair of items, without an
//! FP-tree. Pairs are where bundle evidence is densest (millions of pairs co-occur a
//! few times in a large store's history, while a small store has little else), so they
//! are counted in full and filtered at the end.
//!
//! Counting goes item by item: for item a, every basket holding a adds one to each item
//! b > a after it, in one counter per item: an array small enough to stay in cache.
//! That is exactly one increment per co-occurrence, with no matrix of all pairs (83
//! million cells for retail.dat, most of them zero) and no hash map. Threads take
//! contiguous ranges of a, split by work, so the output comes out ordered by (a, b).

use std::ops::Range;

use serde::Serialize;

use super::assoc::{RuleMetrics, metrics};
use super::baskets::Baskets;
use super::parallel::on_threads;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PairCount {
    /// Item ids, `a < b`.
    pub a: u32,
    pub b: u32,
    pub count: u32,
}

/// What independence predicts for a set of products in `baskets` baskets, `nᵢ` of
/// which hold product i — N·∏(nᵢ/N) — and the set's lift, `count` ÷ that (0 when
/// nothing is expected). The one k-ary lift: scoring and evaluation both use it.
pub fn set_lift(
    count: u64,
    item_counts: impl IntoIterator<Item = u64>,
    baskets: u64,
) -> (f64, f64) {
    let n = baskets.max(1) as f64;
    let mut expected = n;
    for c in item_counts {
        expected *= c as f64 / n;
    }
    let lift = if expected > 0.0 {
        count as f64 / expected
    } else {
        0.0
    };
    (expected, lift)
}

/// Every pair bought together at least `min_count` times, ordered by (a, b).
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    pub n_baskets: u64,
    pub item_counts: Vec<u32>,
    pub pairs: Vec<PairCount>,
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

/// Counts all pairs; keeps those with count ≥ `min_count`.
pub fn count_pairs(baskets: &Baskets, min_count: u32, threads: usize) -> Pairs {
    let min = min_count.max(1);
    let item_counts = baskets.item_counts();
    // Only items bought `min` times can be in a pair bought `min` times. Local ids keep
    // item-id order, so baskets stay sorted.
    let mut local = vec![u32::MAX; item_counts.len()];
    let mut global = Vec::new();
    for (item, &c) in item_counts.iter().enumerate() {
        if c >= min {
            local[item] = global.len() as u32;
            global.push(item as u32);
        }
    }
    let m = global.len();

    // The baskets over local ids, and where each item occurs in them: (position, end
    // of its basket), so that the items after it are `flat[pos + 1..end]`.
    let mut flat = Vec::new();
    let mut occ_start = vec![0u32; m + 1];
    for basket in baskets.iter() {
        for &x in basket {
            let l = local[x as usize];
            if l != u32::MAX {
                flat.push(l);
                occ_start[l as usize + 1] += 1;
            }
        }
        flat.push(u32::MAX);
    }
    for a in 0..m {
        occ_start[a + 1] += occ_start[a];
    }
    let mut fill = occ_start.clone();
    let mut occ = vec![(0u32, 0u32); occ_start[m] as usize];
    let mut start = 0;
    for (i, &l) in flat.iter().enumerate() {
        if l == u32::MAX {
            for (pos, &a) in flat[start..i].iter().enumerate() {
                let a = a as usize;
                occ[fill[a] as usize] = ((start + pos) as u32, i as u32);
                fill[a] += 1;
            }
            start = i + 1;
        }
    }
    drop(fill);
    let occ_of = |a: usize| &occ[occ_start[a] as usize..occ_start[a + 1] as usize];

    let work: Vec<u64> = (0..m)
        .map(|a| occ_of(a).iter().map(|&(p, e)| u64::from(e - p - 1)).sum())
        .collect();
    let count_range = |range: Range<usize>| -> Vec<PairCount> {
        let mut counts = vec![0u32; m];
        let mut touched: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        for a in range {
            for &(pos, end) in occ_of(a) {
                for &b in &flat[pos as usize + 1..end as usize] {
                    let c = &mut counts[b as usize];
                    if *c == 0 {
                        touched.push(b);
                    }
                    *c += 1;
                }
            }
            touched.sort_unstable();
            for &b in &touched {
                let c = std::mem::take(&mut counts[b as usize]);
                if c >= min {
                    out.push(PairCount {
                        a: global[a],
                        b: global[b as usize],
                        count: c,
                    });
                }
            }
            touched.clear();
        }
        out
    };
    let ranges = split_by_work(&work, threads.max(1));
    let pairs = on_threads(ranges.len(), |t| count_range(ranges[t].clone()))
        .into_iter()
        .flatten()
        .collect();
    Pairs {
        n_baskets: baskets.len() as u64,
        item_counts,
        pairs,
    }
}

/// Contiguous ranges of `0..work.len()` of about equal total work.
fn split_by_work(work: &[u64], parts: usize) -> Vec<Range<usize>> {
    let total: u64 = work.iter().sum();
    let mut ranges = Vec::with_capacity(parts);
    let mut start = 0;
    let mut acc = 0u64;
    for (i, w) in work.iter().enumerate() {
        acc += w;
        if ranges.len() + 1 < parts && acc * parts as u64 >= total * (ranges.len() as u64 + 1) {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    ranges.push(start..work.len());
    ranges
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
    fn counts_are_exact_and_the_same_for_any_thread_count() {
        let b = baskets();
        let want = vec![
            ("a".to_owned(), "b".to_owned(), 3),
            ("a".to_owned(), "c".to_owned(), 2),
            ("a".to_owned(), "d".to_owned(), 2),
            ("b".to_owned(), "c".to_owned(), 2),
        ];
        let one = count_pairs(&b, 2, 1);
        assert_eq!(named(&b, &one), want);
        for threads in [2, 3, 8] {
            assert_eq!(count_pairs(&b, 2, threads).pairs, one.pairs);
        }
        let all = count_pairs(&b, 1, 2);
        assert_eq!(all.pairs.len(), 6);
        assert!(
            all.pairs
                .windows(2)
                .all(|w| (w[0].a, w[0].b) < (w[1].a, w[1].b))
        );
    }

    #[test]
    fn pairs_are_the_two_item_frequent_itemsets() {
        use crate::rules::{Budget, MineParams, frequent_itemsets};
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let lists: Vec<Vec<String>> = (0..3_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let len = 1 + (state % 12) as usize;
                (0..len)
                    .map(|k| format!("i{}", (state >> (k * 5)) % 60))
                    .collect()
            })
            .collect();
        let b = Baskets::from_lists(lists);
        let params = MineParams {
            min_count: 4,
            max_len: Some(2),
            max_basket: None,
            threads: 2,
        };
        let sets = frequent_itemsets(&b, &params, &Budget::new(usize::MAX)).unwrap();
        let mut want: Vec<(u32, u32, u32)> = sets
            .iter()
            .filter(|(items, _)| items.len() == 2)
            .map(|(items, c)| (items[0].min(items[1]), items[0].max(items[1]), c))
            .collect();
        want.sort_unstable();
        let got: Vec<(u32, u32, u32)> = count_pairs(&b, 4, 2)
            .pairs
            .iter()
            .map(|p| (p.a, p.b, p.count))
            .collect();
        assert!(want.len() > 100);
        assert_eq!(got, want);
    }

    #[test]
    fn lift_is_relative_to_independence() {
        let b = baskets();
        let p = count_pairs(&b, 3, 1);
        // a in 4 of 6 baskets, b in 4, both in 3: lift = 3·6 / (4·4).
        assert_eq!(p.pairs.len(), 1);
        assert!((p.lift(&p.pairs[0]) - 18.0 / 16.0).abs() < 1e-12);
    }
}
