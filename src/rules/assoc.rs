//! Association rules with one item on the right, from frequent itemsets.
//!
//! Rule support is the support of LHS ∪ RHS (the arules convention); a rule is kept iff
//! `count(LHS ∪ RHS) ≥ minconf × count(LHS)` on integers. Rules with an empty left-hand
//! side (`{} → y`, confidence = support of y) say nothing about buying together and are
//! not produced.

use serde::Serialize;

use super::budget::{Budget, Halt};
use super::itemsets::{ItemsetIndex, Itemsets};
use super::parallel::map_chunks;
use super::threshold::Fraction;

/// `itemsets[itemset] \ {rhs} → {rhs}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Index of LHS ∪ RHS in the itemsets.
    pub itemset: u32,
    pub rhs: u32,
    pub count: u32,
    pub lhs_count: u32,
    pub rhs_count: u32,
}

/// The measures of a rule over `n` baskets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RuleMetrics {
    pub support: f64,
    pub confidence: f64,
    pub lift: f64,
    pub leverage: f64,
    /// `None` when confidence is 1 (conviction is infinite).
    pub conviction: Option<f64>,
}

impl Rule {
    pub fn metrics(&self, n: u64) -> RuleMetrics {
        metrics(self.count, self.lhs_count, self.rhs_count, n)
    }
}

/// Support, confidence, lift, leverage and conviction of X → Y from counts.
pub fn metrics(count: u32, lhs_count: u32, rhs_count: u32, n: u64) -> RuleMetrics {
    let n = n.max(1) as f64;
    let (xy, x, y) = (f64::from(count), f64::from(lhs_count), f64::from(rhs_count));
    let confidence = xy / x;
    let supp_y = y / n;
    RuleMetrics {
        support: xy / n,
        confidence,
        lift: xy * n / (x * y),
        leverage: xy / n - (x / n) * supp_y,
        conviction: (count < lhs_count).then(|| (1.0 - supp_y) / (1.0 - confidence)),
    }
}

/// All rules with one item on the right and confidence ≥ `minconf`, in itemset order.
pub fn rules(
    sets: &Itemsets,
    index: &ItemsetIndex<'_>,
    minconf: Fraction,
    threads: usize,
    budget: &Budget,
) -> Result<Vec<Rule>, Halt> {
    let parts = map_chunks(sets.len(), threads, |range| {
        let mut found = Vec::new();
        let mut lhs = Vec::new();
        let mut charged = 0;
        for i in range {
            if i % 4096 == 0 {
                budget.check()?;
            }
            let items = sets.items(i);
            if items.len() < 2 {
                continue;
            }
            let count = sets.count(i);
            for skip in 0..items.len() {
                lhs.clear();
                lhs.extend_from_slice(&items[..skip]);
                lhs.extend_from_slice(&items[skip + 1..]);
                // Every subset of a frequent itemset is frequent, so both are found.
                let (Some(lhs_count), Some(rhs_count)) =
                    (index.count_of(&lhs), index.count_of(&items[skip..=skip]))
                else {
                    continue;
                };
                if minconf.at_most_ratio(u64::from(count), u64::from(lhs_count)) {
                    found.push(Rule {
                        itemset: i as u32,
                        rhs: items[skip],
                        count,
                        lhs_count,
                        rhs_count,
                    });
                }
            }
            let bytes = found.capacity() * std::mem::size_of::<Rule>();
            if bytes > charged {
                budget.charge(bytes - charged)?;
                charged = bytes;
            }
        }
        Ok(found)
    });
    let mut all = Vec::new();
    for part in parts {
        all.extend(part?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_their_definitions() {
        // 10 baskets: X in 4, Y in 5, both in 2.
        let m = metrics(2, 4, 5, 10);
        assert_eq!(m.support, 0.2);
        assert_eq!(m.confidence, 0.5);
        assert_eq!(m.lift, 1.0);
        assert!(m.leverage.abs() < 1e-12);
        assert_eq!(m.conviction, Some(1.0));
        assert_eq!(metrics(4, 4, 5, 10).conviction, None);
    }
}
