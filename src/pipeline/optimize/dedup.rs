//! Deduplication: the same product set (any order) of the same type is one bundle, and
//! so are near-copies (Jaccard similarity of the product sets at or above the
//! threshold). The best-scoring one is kept; the others are counted as merged.
//!
//! A set is compared by product, not variant: the beanie with the vest in S and in L
//! is one offer (the shopper picks the size). Mix & match groups are compared by
//! variant (colours are the choice) and are near-copies too when one mostly holds the
//! other (|A ∩ B| / min(|A|, |B|) at or above the threshold).
//!
//! Across types a product set is offered once too (unless `optimize.type_variants`),
//! in the type that suits it: for two products an add-on when the partner costs at
//! most half the anchor, else a fixed set; for three or more a fixed set; for one
//! product the best-scoring of volume and BOGO. A type the generators did not propose
//! for the set falls back to the best-scoring one.

use std::collections::HashSet;

use crate::pipeline::context::Context;

use crate::domain::BundleType;
use crate::pipeline::model::Candidate;

fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    let a: HashSet<u32> = a.iter().copied().collect();
    let b: HashSet<u32> = b.iter().copied().collect();
    let inter = a.intersection(&b).count();
    let union = a.union(&b).count();
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

fn overlap(a: &[u32], b: &[u32]) -> f64 {
    let a: HashSet<u32> = a.iter().copied().collect();
    let inter = b.iter().filter(|x| a.contains(x)).count();
    let least = a.len().min(b.len());
    if least == 0 {
        1.0
    } else {
        inter as f64 / least as f64
    }
}

/// What a candidate's set is compared by: product families (variant indices for mix &
/// match groups), sorted, each once.
pub struct SetKeys {
    family: Vec<u32>,
}

impl SetKeys {
    pub fn new(ctx: &Context) -> SetKeys {
        let mut ids: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        let family = ctx
            .data
            .products
            .iter()
            .map(|p| {
                let next = ids.len() as u32;
                *ids.entry(p.product_id.as_str()).or_insert(next)
            })
            .collect();
        SetKeys { family }
    }

    pub fn of(&self, c: &Candidate) -> Vec<u32> {
        let mut key: Vec<u32> = if c.bundle_type == BundleType::MixMatch {
            c.draft.products.clone()
        } else {
            c.draft
                .products
                .iter()
                .map(|&i| self.family.get(i as usize).copied().unwrap_or(i))
                .collect()
        };
        key.sort_unstable();
        key.dedup();
        key
    }
}

/// Whether two keyed sets are one offer.
fn near_copy(a: &[u32], b: &[u32], groups: bool, threshold: f64) -> bool {
    a == b || jaccard(a, b) >= threshold || (groups && overlap(a, b) >= threshold)
}

/// Keeps the best of every group of identical or near-identical candidates (same
/// bundle type); returns the kept ones (best first) and how many were merged.
pub fn dedup(
    mut candidates: Vec<Candidate>,
    threshold: f64,
    set_keys: &SetKeys,
) -> (Vec<Candidate>, usize) {
    // A merchant's pin wins over whatever it duplicates.
    candidates.sort_by(|a, b| {
        b.pinned
            .cmp(&a.pinned)
            .then(b.score.total.total_cmp(&a.score.total))
            .then_with(|| a.draft.products.cmp(&b.draft.products))
            .then_with(|| a.objective.as_str().cmp(b.objective.as_str()))
    });
    let mut kept: Vec<Candidate> = Vec::new();
    // Sorted product lists and unit counts of what is kept, by position.
    let mut keys: Vec<(BundleType, u32, Vec<u32>)> = Vec::new();
    let mut merged = 0;
    for c in candidates {
        let key = set_keys.of(&c);
        let units: u32 = c.draft.quantities.iter().sum();
        let groups = c.bundle_type == BundleType::MixMatch;
        // A group's units are the shopper's pick, not its size.
        let duplicate = keys.iter().any(|(t, u, other)| {
            *t == c.bundle_type
                && (groups || *u == units)
                && near_copy(other, &key, groups, threshold)
        });
        if duplicate {
            merged += 1;
        } else {
            keys.push((c.bundle_type, units, key));
            kept.push(c);
        }
    }
    (kept, merged)
}

/// The type a product set suits (see the module note); `None` when score decides.
fn suited_type(prices: &[i64]) -> Option<BundleType> {
    match prices {
        [_] | [] => None,
        [anchor, partner] if partner.saturating_mul(2) <= *anchor => Some(BundleType::Addon),
        _ => Some(BundleType::Fixed),
    }
}

/// Keeps one candidate per product set across bundle types (best first in, best
/// first out); returns the kept ones and how many were merged. `price` gives a
/// product's unit price.
pub fn one_type_per_set(
    candidates: Vec<Candidate>,
    threshold: f64,
    set_keys: &SetKeys,
    price: impl Fn(u32) -> i64,
) -> (Vec<Candidate>, usize) {
    let mut groups: Vec<(Vec<u32>, Vec<usize>)> = Vec::new();
    for (k, c) in candidates.iter().enumerate() {
        let key = set_keys.of(c);
        match groups
            .iter_mut()
            .find(|(other, _)| near_copy(other, &key, false, threshold))
        {
            Some((_, members)) => members.push(k),
            None => groups.push((key, vec![k])),
        }
    }
    let mut chosen = Vec::with_capacity(groups.len());
    for (_, members) in &groups {
        let best = members[0];
        let first = &candidates[best];
        if first.pinned {
            // The merchant chose the type.
            chosen.push(best);
            continue;
        }
        let prices: Vec<i64> = first.draft.products.iter().map(|&i| price(i)).collect();
        let pick = suited_type(&prices)
            .and_then(|t| {
                members
                    .iter()
                    .copied()
                    .find(|&m| candidates[m].bundle_type == t)
            })
            .unwrap_or(best);
        chosen.push(pick);
    }
    let merged = candidates.len() - chosen.len();
    let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
    let kept = chosen.into_iter().filter_map(|k| slots[k].take()).collect();
    (kept, merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_of_sets() {
        assert_eq!(jaccard(&[1, 2, 3, 4], &[4, 3, 2, 1]), 1.0);
        assert_eq!(jaccard(&[1, 2, 3, 4, 5], &[1, 2, 3, 4]), 0.8);
        assert_eq!(jaccard(&[1, 2], &[3, 4]), 0.0);
    }

    #[test]
    fn a_group_mostly_inside_another_is_a_near_copy() {
        assert!(near_copy(&[1, 2, 3], &[1, 2, 3, 4, 5, 6], true, 0.8));
        assert!(!near_copy(&[1, 2, 3], &[1, 2, 3, 4, 5, 6], false, 0.8));
        assert!(!near_copy(&[1, 2, 3, 4], &[1, 2, 5, 6], true, 0.8));
    }

    #[test]
    fn a_pair_suits_an_add_on_only_when_the_partner_is_cheap() {
        assert_eq!(suited_type(&[1000, 500]), Some(BundleType::Addon));
        assert_eq!(suited_type(&[1000, 501]), Some(BundleType::Fixed));
        assert_eq!(suited_type(&[100, 200, 300]), Some(BundleType::Fixed));
        assert_eq!(suited_type(&[100]), None);
    }
}
