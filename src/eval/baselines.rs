//! The baselines a run is measured beside, from the same training orders: random
//! product sets of the run's sizes, the top-K pairs by co-purchase count ("frequently
//! bought together") and by lift, and, for a cold start, each product's nearest
//! neighbour in meaning.

use serde::Serialize;

use super::holdout::{Holdout, NeedSet};
use super::score::{Scores, score_sets, score_sets_at_least};
use crate::pipeline;
use crate::rng::{Purpose, Stream};
use crate::rules::{Baskets, count_pairs};

#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    pub random: Scores,
    /// The same random sets scored as ours are by `by_pick`: each takes the pick of
    /// the bundle whose size it copies (a mix & match group's), else needs all.
    pub random_by_pick: Scores,
    pub top_count_pairs: Scores,
    pub top_lift_pairs: Scores,
    /// `--cold`: each product's nearest neighbour in meaning that is not a near-copy
    /// (nor its own variant), the top-K of those pairs by cosine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest_in_meaning: Option<Scores>,
}

/// Every pair of products the training baskets hold together, counted.
pub fn training_pairs(train: &[Vec<u32>], products: usize) -> crate::rules::Pairs {
    let baskets = Baskets::from_ids(products as u32, train.to_vec());
    count_pairs(&baskets, 1, crate::config::thread_count(0))
}

/// The `k` pairs bought together most often (ties by product index).
pub fn top_count_pairs(pairs: &crate::rules::Pairs, k: usize) -> Vec<Vec<u32>> {
    let mut by_count: Vec<&crate::rules::PairCount> = pairs.pairs.iter().collect();
    by_count.sort_by(|a, b| b.count.cmp(&a.count).then((a.a, a.b).cmp(&(b.a, b.b))));
    by_count.iter().take(k).map(|p| vec![p.a, p.b]).collect()
}

/// The baselines of `eval`: random sets of `ours`' sizes, the top-`k` pairs by count
/// and by lift, all from the training baskets (`pairs`: [`training_pairs`] of them).
pub fn baselines(
    holdout: &Holdout,
    train: &[Vec<u32>],
    pairs: &crate::rules::Pairs,
    ours: &[NeedSet],
    k: usize,
    seed: u64,
) -> Baselines {
    let top_count = top_count_pairs(pairs, k);
    let mut by_lift: Vec<(&crate::rules::PairCount, f64)> = pairs
        .pairs
        .iter()
        .filter(|p| p.count >= 5)
        .map(|p| (p, pairs.lift(p)))
        .collect();
    by_lift.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then((a.0.a, a.0.b).cmp(&(b.0.a, b.0.b)))
    });
    let top_lift: Vec<Vec<u32>> = by_lift
        .iter()
        .take(k)
        .map(|(p, _)| vec![p.a, p.b])
        .collect();
    // Random sets of our sets' sizes over the products bought in training.
    let sold: Vec<u32> = {
        let mut s: Vec<u32> = train.iter().flatten().copied().collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let sizes: Vec<(usize, Option<usize>)> = ours
        .iter()
        .map(|(s, pick)| (distinct(s), *pick))
        .filter(|&(n, _)| n >= 2)
        .collect();
    let sizes = if sizes.is_empty() {
        vec![(2, None)]
    } else {
        sizes
    };
    let mut rng = Stream::new(Purpose::RandomSets, seed);
    let random: Vec<Vec<u32>> = (0..2000)
        .map(|i| {
            let want = sizes[i % sizes.len()].0.min(sold.len());
            let mut set: Vec<u32> = Vec::with_capacity(want);
            while set.len() < want {
                let p = sold[rng.below(sold.len())];
                if !set.contains(&p) {
                    set.push(p);
                }
            }
            set
        })
        .collect();
    let random_by_pick: Vec<NeedSet> = random
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), sizes[i % sizes.len()].1))
        .collect();
    Baselines {
        random: score_sets(holdout, &random),
        random_by_pick: score_sets_at_least(holdout, &random_by_pick),
        top_count_pairs: score_sets(holdout, &top_count),
        top_lift_pairs: score_sets(holdout, &top_lift),
        nearest_in_meaning: None,
    }
}

/// The nearest-in-meaning baseline: each eligible product's closest neighbour that is
/// not a near-copy nor its own variant, the `k` such pairs of highest cosine (each
/// pair once).
pub fn nearest_pairs(ctx: &pipeline::Context, k: usize) -> Vec<Vec<u32>> {
    use crate::domain::similarity::NEAR_COPY;
    let mut pairs: Vec<(f32, u32, u32)> = Vec::new();
    for (a, list) in ctx.neighbours.iter().enumerate() {
        let a = a as u32;
        if !ctx.signals[a as usize].eligible {
            continue;
        }
        let best = list.iter().find(|n| {
            n.score < NEAR_COPY
                && ctx.signals[n.id as usize].eligible
                && ctx.product(n.id).product_id != ctx.product(a).product_id
        });
        if let Some(n) = best {
            pairs.push((n.score, a.min(n.id), a.max(n.id)));
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0).then((x.1, x.2).cmp(&(y.1, y.2))));
    pairs.dedup_by(|x, y| (x.1, x.2) == (y.1, y.2));
    pairs
        .into_iter()
        .take(k)
        .map(|(_, a, b)| vec![a, b])
        .collect()
}

fn distinct(s: &[u32]) -> usize {
    s.iter().collect::<std::collections::HashSet<_>>().len()
}
