//! What cohorts measure beyond `eval`'s scores: recall at K for the best-selling
//! products and the product pairs behind novelty (see the module note of
//! [`super::evaluate`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::eval::{self, Holdout};

/// Ks of `recall_at`.
pub const RECALL_KS: [usize; 3] = [5, 10, 50];
/// Anchors of `recall_at`: the best-selling training products.
const ANCHORS: usize = 100;

/// The product pairs of a sorted set, each as (low, high).
pub(super) fn pairs(set: &[u32]) -> impl Iterator<Item = (u32, u32)> + '_ {
    set.iter()
        .enumerate()
        .flat_map(move |(i, &a)| set[i + 1..].iter().map(move |&b| (a.min(b), a.max(b))))
}

/// The best-selling training products, each with its relevant held-out partners.
pub(super) fn anchors(train: &[Vec<u32>], heldout: &Holdout) -> Vec<(u32, HashSet<u32>)> {
    let mut sold: HashMap<u32, usize> = HashMap::new();
    for b in train {
        for &p in b {
            *sold.entry(p).or_default() += 1;
        }
    }
    let mut by_count: Vec<(u32, usize)> = sold.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    by_count
        .into_iter()
        .take(ANCHORS)
        .map(|(a, _)| {
            let mut with: HashMap<u32, usize> = HashMap::new();
            for &o in heldout.holding(a) {
                for &p in &heldout.baskets()[o as usize] {
                    if p != a {
                        *with.entry(p).or_default() += 1;
                    }
                }
            }
            // The strong rule of `eval`, for the pair.
            let n_a = heldout.holding(a).len();
            let relevant = with
                .into_iter()
                .filter(|&(p, c)| {
                    eval::is_strong_pair(c, heldout.len(), n_a, heldout.holding(p).len())
                })
                .map(|(p, _)| p)
                .collect();
            (a, relevant)
        })
        .collect()
}

/// Recall@K over the anchors with relevant partners (see the module note).
pub(super) fn recall_at(
    anchors: &[(u32, HashSet<u32>)],
    sets: &[Vec<u32>],
) -> BTreeMap<String, f64> {
    let scored: Vec<&(u32, HashSet<u32>)> = anchors.iter().filter(|(_, r)| !r.is_empty()).collect();
    RECALL_KS
        .iter()
        .map(|&k| {
            let mut sum = 0.0;
            for (a, relevant) in &scored {
                let mut partners: Vec<u32> = Vec::new();
                for s in sets.iter().filter(|s| s.contains(a)) {
                    for &p in s {
                        if p != *a && !partners.contains(&p) {
                            partners.push(p);
                        }
                    }
                }
                let found = partners
                    .iter()
                    .take(k)
                    .filter(|p| relevant.contains(p))
                    .count();
                sum += found as f64 / relevant.len().min(k) as f64;
            }
            let value = if scored.is_empty() {
                0.0
            } else {
                sum / scored.len() as f64
            };
            (k.to_string(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first() -> Holdout {
        Holdout::new(vec![
            vec![0, 1],
            vec![0, 1, 2],
            vec![2, 3],
            vec![0, 3],
            vec![1, 2],
            vec![0, 1],
        ])
    }

    #[test]
    fn recall_counts_relevant_partners_in_published_order() {
        // Anchor 0 is in three of seven held-out orders: with 1 in two (lift
        // 2·7 / (3·2) = 2.33: relevant), with 2 in one (not).
        let h = Holdout::new(vec![
            vec![0, 1],
            vec![0, 1],
            vec![2, 3],
            vec![2, 3],
            vec![4],
            vec![5],
            vec![0, 2],
        ]);
        let found = anchors(&[vec![0, 1], vec![0, 2]], &h);
        assert_eq!(found[0].0, 0);
        assert_eq!(found[0].1, HashSet::from([1]));
        let got = recall_at(&found[..1], &[vec![0, 2], vec![0, 1]]);
        assert_eq!(got["5"], 1.0);
        assert_eq!(got["50"], 1.0);
        let none = recall_at(&found[..1], &[vec![2, 3]]);
        assert_eq!(none["10"], 0.0);
        // Popular together but not above chance: 2 and 3 are always together
        // (lift 3.5), 0 and 1 are not, in the first fixture.
        let popular = anchors(&[vec![0, 1]], &first());
        assert!(popular[0].1.is_empty(), "{popular:?}");
    }
}
