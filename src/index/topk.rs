//! Top-k selection over a total order.
//!
//! Scores compare with `f32::total_cmp` (so a NaN can never corrupt the order) and ties
//! go to the smaller id, which makes every search deterministic. k is small (10–50) in
//! every use here, so a sorted array with an insertion step beats a heap: the common
//! case is one comparison against the current k-th score.

use std::cmp::Ordering;

/// A search hit. Greater score = closer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    pub id: u32,
    pub score: f32,
}

/// Best-first: higher score, then smaller id.
#[inline]
pub fn better(a: &Neighbour, b: &Neighbour) -> Ordering {
    b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
}

/// The k best neighbours seen so far, kept sorted best-first.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    items: Vec<Neighbour>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    /// The score a candidate must beat to enter (−∞ while not full).
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.items.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.items.last().map_or(f32::NEG_INFINITY, |n| n.score)
        }
    }

    #[inline]
    pub fn push(&mut self, id: u32, score: f32) {
        if self.k == 0 {
            return;
        }
        let cand = Neighbour { id, score };
        if self.items.len() == self.k {
            let Some(last) = self.items.last() else {
                return;
            };
            if better(&cand, last) != Ordering::Less {
                return;
            }
            self.items.pop();
        }
        let pos = self
            .items
            .partition_point(|n| better(n, &cand) == Ordering::Less);
        self.items.insert(pos, cand);
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &TopK) {
        for n in &other.items {
            self.push(n.id, n.score);
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn as_slice(&self) -> &[Neighbour] {
        &self.items
    }

    pub fn into_vec(self) -> Vec<Neighbour> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn top_k_equals_a_full_sort(scores in proptest::collection::vec(-1.0f32..1.0, 0..300), k in 0usize..40) {
            let mut t = TopK::new(k);
            for (i, s) in scores.iter().enumerate() {
                t.push(i as u32, *s);
            }
            let mut all: Vec<Neighbour> = scores
                .iter()
                .enumerate()
                .map(|(i, s)| Neighbour { id: i as u32, score: *s })
                .collect();
            all.sort_by(better);
            all.truncate(k);
            prop_assert_eq!(t.into_vec(), all);
        }
    }

    #[test]
    fn ties_go_to_the_smaller_id_and_nan_never_wins_over_numbers() {
        let mut t = TopK::new(2);
        t.push(5, 0.5);
        t.push(3, 0.5);
        t.push(9, 0.5);
        assert_eq!(
            t.as_slice().iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![3, 5]
        );
        let mut t = TopK::new(1);
        t.push(1, -f32::NAN);
        t.push(2, 0.1);
        assert_eq!(t.as_slice()[0].id, 2);
    }
}
