//! Deduplication: the same product set (any order) of the same type is one bundle, and
//! so are near-copies (Jaccard similarity of the product sets at or above the
//! threshold). The best-scoring one is kept; the others are counted as merged.

use std::collections::HashSet;

use crate::pipeline::candidates::Candidate;

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

/// Keeps the best of every group of identical or near-identical candidates (same
/// bundle type); returns the kept ones (best first) and how many were merged.
pub fn dedup(mut candidates: Vec<Candidate>, threshold: f64) -> (Vec<Candidate>, usize) {
    candidates.sort_by(|a, b| {
        b.score
            .total
            .total_cmp(&a.score.total)
            .then_with(|| a.draft.products.cmp(&b.draft.products))
            .then_with(|| a.objective.as_str().cmp(b.objective.as_str()))
    });
    let mut kept: Vec<Candidate> = Vec::new();
    // Sorted product lists and unit counts of what is kept, by position.
    let mut keys: Vec<(crate::domain::BundleType, u32, Vec<u32>)> = Vec::new();
    let mut merged = 0;
    for c in candidates {
        let mut key = c.draft.products.clone();
        key.sort_unstable();
        key.dedup();
        let units: u32 = c.draft.quantities.iter().sum();
        let duplicate = keys.iter().any(|(t, u, other)| {
            *t == c.bundle_type
                && *u == units
                && (*other == key || jaccard(other, &key) >= threshold)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_of_sets() {
        assert_eq!(jaccard(&[1, 2, 3, 4], &[4, 3, 2, 1]), 1.0);
        assert_eq!(jaccard(&[1, 2, 3, 4, 5], &[1, 2, 3, 4]), 0.8);
        assert_eq!(jaccard(&[1, 2], &[3, 4]), 0.0);
    }
}
