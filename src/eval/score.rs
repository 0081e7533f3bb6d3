//! Scores of product sets on held-out orders: the hit and strong-hit rules, the
//! median lift, and their bootstrap intervals (see the module note of [`super`]).

use std::collections::HashSet;

use serde::Serialize;

use super::holdout::{Holdout, NeedSet, Weighting};
use crate::rng::{Purpose, Stream};

/// Bootstrap resamples of `eval`'s intervals.
const RESAMPLES: usize = 1000;

/// One row of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scores {
    /// Sets of two or more distinct products that were scored.
    pub bundles: usize,
    pub hit: f64,
    pub strong_hit: f64,
    pub median_lift: f64,
    /// Distinct products in the scored sets.
    pub products: usize,
}

/// A bootstrap 90 % interval.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// A set hits when a held-out order holds it.
pub fn is_hit(count: u64) -> bool {
    count >= 1
}

/// A set strongly hits when two or more held-out orders hold it at a lift of 2 or more.
pub fn is_strong(count: u64, lift: f64) -> bool {
    count >= 2 && lift >= 2.0
}

/// The strong rule for a pair in exact integers: `c` orders hold both of two products
/// held by `n_a` and `n_b` of `n` orders (lift c·n / (n_a·n_b) ≥ 2).
pub fn is_strong_pair(c: usize, n: usize, n_a: usize, n_b: usize) -> bool {
    c >= 2 && c as f64 * n as f64 >= 2.0 * n_a as f64 * n_b as f64
}

/// Hit rate, strong-hit rate and median lift of scored sets, each counted as many
/// times as it comes with; `None` when nothing is counted.
pub fn rates(scored: impl IntoIterator<Item = ((u64, f64), usize)>) -> Option<[f64; 3]> {
    let (mut n, mut hits, mut strong) = (0usize, 0usize, 0usize);
    let mut lifts = Vec::new();
    for ((c, lift), times) in scored {
        n += times;
        hits += times * usize::from(is_hit(c));
        strong += times * usize::from(is_strong(c, lift));
        lifts.extend(std::iter::repeat_n(lift, times));
    }
    if n == 0 {
        return None;
    }
    Some([
        hits as f64 / n as f64,
        strong as f64 / n as f64,
        crate::stats::median(&mut lifts).unwrap_or(0.0),
    ])
}

/// Scores sets that each need `need` of their products in one order (`None`: all);
/// sets of fewer than two distinct products are left out.
pub fn score_sets_at_least(holdout: &Holdout, sets: &[NeedSet]) -> Scores {
    let prepared: Vec<_> = sets.iter().filter_map(|s| holdout.prepare(s)).collect();
    let products: HashSet<u32> = prepared
        .iter()
        .flat_map(|p| p.products.iter().copied())
        .collect();
    let all: Vec<u32> = products.iter().copied().collect();
    let scores = Weighting::unit(holdout, &all).scores(&prepared);
    let [hit, strong_hit, median_lift] =
        rates(scores.into_iter().map(|s| (s, 1))).unwrap_or([0.0; 3]);
    Scores {
        bundles: prepared.len(),
        hit,
        strong_hit,
        median_lift,
        products: products.len(),
    }
}

/// Scores sets of product indices as wholes.
pub fn score_sets(holdout: &Holdout, sets: &[Vec<u32>]) -> Scores {
    let whole: Vec<NeedSet> = sets.iter().map(|s| (s.clone(), None)).collect();
    score_sets_at_least(holdout, &whole)
}

/// The 5th and 95th percentiles of a statistic of `sets` over bootstrap resamples
/// of the sets (the held-out orders as they are).
pub fn bootstrap(
    holdout: &Holdout,
    sets: &[Vec<u32>],
    seed: u64,
    stat: impl Fn(&[f64; 3]) -> f64,
) -> Interval {
    let whole: Vec<NeedSet> = sets.iter().map(|s| (s.clone(), None)).collect();
    bootstrap_at_least(holdout, &whole, seed, stat)
}

/// [`bootstrap`] of sets that each need `need` of their products in one order.
pub fn bootstrap_at_least(
    holdout: &Holdout,
    sets: &[NeedSet],
    seed: u64,
    stat: impl Fn(&[f64; 3]) -> f64,
) -> Interval {
    let prepared: Vec<_> = sets.iter().filter_map(|s| holdout.prepare(s)).collect();
    if prepared.is_empty() {
        return Interval {
            low: 0.0,
            high: 0.0,
        };
    }
    let products: Vec<u32> = prepared
        .iter()
        .flat_map(|p| p.products.iter().copied())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let scores = Weighting::unit(holdout, &products).scores(&prepared);
    let mut rng = Stream::new(Purpose::Bootstrap, seed);
    let values = (0..RESAMPLES)
        .map(|_| {
            let sample = (0..scores.len()).map(|_| (scores[rng.below(scores.len())], 1));
            rates(sample).map_or(0.0, |r| stat(&r))
        })
        .collect();
    let [low, high] = percentiles(values);
    Interval { low, high }
}

/// How often each of `n` items is drawn in `n` draws with replacement.
pub fn draw(n: usize, rng: &mut Stream) -> Vec<u32> {
    let mut w = vec![0u32; n];
    for _ in 0..n {
        w[rng.below(n)] += 1;
    }
    w
}

/// The 5th and 95th percentiles (nearest rank); `[0, 0]` of nothing.
pub fn percentiles(mut values: Vec<f64>) -> [f64; 2] {
    if values.is_empty() {
        return [0.0, 0.0];
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    [at(0.05), at(0.95)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holdout() -> Holdout {
        super::super::holdout::worked_holdout()
    }

    #[test]
    fn sets_score_as_their_rules_say() {
        let h = holdout();
        let s = score_sets(
            &h,
            &[vec![0, 1], vec![2, 3], vec![0, 4], vec![3], vec![1, 1]],
        );
        // Single-product sets ({3}, {1,1}) do not count.
        assert_eq!(s.bundles, 3);
        assert!((s.hit - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.strong_hit, 0.0, "lift 1.5 is under 2");
        assert!((s.median_lift - 8.0 / 12.0).abs() < 1e-12);
        assert_eq!(s.products, 5);
        let s = score_sets_at_least(&h, &[(vec![0, 1, 2], Some(2)), (vec![3], None)]);
        assert_eq!((s.bundles, s.hit), (1, 1.0));
    }

    #[test]
    fn a_strong_hit_needs_two_orders_and_lift_two() {
        let h = Holdout::new(vec![vec![0, 1], vec![0, 1], vec![2], vec![3], vec![2, 3]]);
        // {0,1}: c = 2, n₀ = n₁ = 2, N = 5 → lift 2.5.
        let s = score_sets(&h, &[vec![0, 1]]);
        assert_eq!((s.hit, s.strong_hit), (1.0, 1.0));
        assert!(is_strong_pair(2, 5, 2, 2));
        // {2,3}: c = 1 → hit only.
        let s = score_sets(&h, &[vec![2, 3]]);
        assert_eq!((s.hit, s.strong_hit), (1.0, 0.0));
        assert!(!is_strong_pair(1, 5, 2, 2));
    }

    #[test]
    fn a_set_counted_twice_counts_twice_and_nothing_counted_has_no_value() {
        // Sets: (count, lift) of a miss, a strong hit and a weak hit.
        let scores = [(0, 0.0), (3, 4.0), (1, 1.5)];
        let once = rates(scores.iter().map(|&s| (s, 1))).unwrap();
        assert_eq!(once, [2.0 / 3.0, 1.0 / 3.0, 1.5]);
        // The strong hit three times, the miss not at all.
        let drawn = rates(scores.iter().zip([0, 3, 1]).map(|(&s, t)| (s, t))).unwrap();
        assert_eq!(drawn, [1.0, 0.75, 4.0]);
        assert_eq!(rates(scores.iter().map(|&s| (s, 0))), None);
    }

    #[test]
    fn percentiles_take_the_5th_and_95th_and_a_draw_repeats_with_its_seed() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(percentiles(v), [50.0, 949.0]);
        assert_eq!(percentiles(Vec::new()), [0.0, 0.0]);
        let mut rng = Stream::new(Purpose::CohortResamples, 7);
        let a = draw(1000, &mut rng);
        assert_eq!(a.iter().map(|&w| w as usize).sum::<usize>(), 1000);
        assert_eq!(a, draw(1000, &mut Stream::new(Purpose::CohortResamples, 7)));
        assert_ne!(a, draw(1000, &mut rng));
    }

    #[test]
    fn the_bootstrap_interval_holds_the_point_and_repeats_with_its_seed() {
        let h = holdout();
        let sets = vec![vec![0, 1], vec![2, 3], vec![0, 1, 2], vec![1, 2]];
        let point = score_sets(&h, &sets).hit;
        let i = bootstrap(&h, &sets, 3, |r| r[0]);
        assert!(i.low <= point && point <= i.high, "{i:?} {point}");
        assert_eq!(i, bootstrap(&h, &sets, 3, |r| r[0]));
    }
}
