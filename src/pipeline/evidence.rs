//! What a store's orders say, read once in phase 0: the evidence verdict (strong,
//! weak or none: how much the orders may decide what goes together), the orders
//! holding pairs of categories, and which orders hold each product. Every phase after
//! reads these; none recounts them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::stats::{self, poisson_at_least};
use crate::store::StoreData;

/// How much the store's orders say about what goes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Clear co-purchase structure: the orders are the evidence, and meaning alone
    /// (a complement, an alike group) does not justify a bundle they say nothing for.
    Strong,
    /// Some orders, little structure: meaning carries where orders can't.
    Weak,
    /// No orders to learn from, or none bought together beyond chance.
    None,
}

/// The evidence verdict and its numbers (`run.evidence`).
#[derive(Debug, Clone, Serialize)]
pub struct StoreEvidence {
    /// Pairs bought together at least [`EVIDENCE_MIN_COUNT`] times at lift ≥ 2.
    pub pairs: usize,
    /// The median lift of the best [`EVIDENCE_TOP`] of them (0 without any).
    pub median_top_lift: f64,
    /// Pairs bought together more often than chance explains across all the pairs
    /// the orders hold (Poisson, Bonferroni at 5 %): none means no structure at all.
    pub significant_pairs: usize,
    pub verdict: Verdict,
}

pub const EVIDENCE_MIN_COUNT: u32 = 5;
pub const EVIDENCE_TOP: usize = 10;
/// Strong: this many such pairs, whose best reach this median lift. Chance alone gives
/// a store a few pairs just over 2 (popular products meet); planted or real structure
/// gives pairs far above it.
const STRONG_PAIRS: usize = 5;
const STRONG_MEDIAN_LIFT: f64 = 3.0;

impl StoreEvidence {
    /// One line for a run's summary and report: the verdict, its numbers, and what it
    /// means for the bundles.
    pub fn summary(&self) -> String {
        match self.verdict {
            Verdict::Strong => format!(
                "strong ({} pairs bought together 5+ times at lift 2+, median top lift {:.1}): the orders decide what goes together",
                self.pairs, self.median_top_lift
            ),
            Verdict::Weak => format!(
                "weak ({} such pairs, median top lift {:.1}): bundles lean on meaning, and fewer are published",
                self.pairs, self.median_top_lift
            ),
            Verdict::None => "none (no orders, or none bought together beyond chance): bundles rest on meaning alone, and fewer are published".to_owned(),
        }
    }

    pub fn of(pairs: &crate::rules::Pairs) -> StoreEvidence {
        let mut lifts: Vec<f64> = pairs
            .pairs
            .iter()
            .filter(|p| p.count >= EVIDENCE_MIN_COUNT)
            .map(|p| pairs.lift(p))
            .filter(|&l| l >= 2.0)
            .collect();
        let n = lifts.len();
        lifts.sort_by(|a, b| b.total_cmp(a));
        lifts.truncate(EVIDENCE_TOP);
        let median_top_lift = crate::stats::median(&mut lifts).unwrap_or(0.0);
        // Among many pairs a few always meet more often than expected; structure is a
        // pair chance cannot explain even allowing for how many pairs there are.
        let alpha = 0.05 / pairs.pairs.len().max(1) as f64;
        let significant_pairs = pairs
            .pairs
            .iter()
            .filter(|p| {
                let m = pairs.metrics(p);
                let expected = if m.lift > 0.0 {
                    f64::from(p.count) / m.lift
                } else {
                    f64::INFINITY
                };
                poisson_at_least(p.count, expected) <= alpha
            })
            .count();
        let verdict = if pairs.n_baskets == 0 || significant_pairs == 0 {
            Verdict::None
        } else if n >= STRONG_PAIRS && median_top_lift >= STRONG_MEDIAN_LIFT {
            Verdict::Strong
        } else {
            Verdict::Weak
        };
        StoreEvidence {
            pairs: n,
            median_top_lift: stats::round_to(median_top_lift, 3),
            significant_pairs,
            verdict,
        }
    }
}

/// Orders holding pairs of categories (up to `as_of`): the store's own evidence that
/// two categories go together.
#[derive(Debug, Clone, Default)]
pub struct CategoryLinks {
    index: HashMap<String, u32>,
    /// Orders holding each category.
    orders: Vec<u32>,
    /// Orders holding both, by (smaller, larger) category index.
    pairs: HashMap<(u32, u32), u32>,
    baskets: u64,
    /// Products of each category.
    members: Vec<Vec<u32>>,
}

impl CategoryLinks {
    /// The products of `category` (none for a category the store does not have).
    pub fn members(&self, category: &str) -> &[u32] {
        self.index
            .get(category)
            .map_or(&[], |&x| self.members[x as usize].as_slice())
    }
}

impl CategoryLinks {
    pub fn build(data: &StoreData, as_of: DateTime<Utc>, categories: &[String]) -> CategoryLinks {
        let mut links = CategoryLinks::default();
        let ids: Vec<u32> = categories
            .iter()
            .map(|c| {
                let next = links.index.len() as u32;
                *links.index.entry(c.clone()).or_insert(next)
            })
            .collect();
        links.orders = vec![0; links.index.len()];
        links.members = vec![Vec::new(); links.index.len()];
        for (i, &c) in ids.iter().enumerate() {
            links.members[c as usize].push(i as u32);
        }
        let mut present: Vec<u32> = Vec::new();
        for basket in data.baskets_until(as_of) {
            present.clear();
            present.extend(basket.iter().filter_map(|&i| ids.get(i as usize).copied()));
            if present.is_empty() {
                continue;
            }
            present.sort_unstable();
            present.dedup();
            links.baskets += 1;
            for (x, &a) in present.iter().enumerate() {
                links.orders[a as usize] += 1;
                for &b in &present[x + 1..] {
                    *links.pairs.entry((a, b)).or_default() += 1;
                }
            }
        }
        links
    }

    /// Orders holding both categories and their shrunk lift (count + κ) / (expected + κ).
    pub fn lift(&self, a: &str, b: &str, prior: f64) -> (u32, f64) {
        let (Some(&x), Some(&y)) = (self.index.get(a), self.index.get(b)) else {
            return (0, 1.0);
        };
        self.lift_of(x, y, prior)
    }

    /// [`CategoryLinks::lift`] without `n` orders holding both (a pair's own orders,
    /// so that one pair bought together does not make its categories a link).
    pub fn lift_without(&self, a: &str, b: &str, n: u32, prior: f64) -> f64 {
        let (Some(&x), Some(&y)) = (self.index.get(a), self.index.get(b)) else {
            return 1.0;
        };
        if x == y {
            return 1.0;
        }
        let count = self.pairs.get(&(x.min(y), x.max(y))).copied().unwrap_or(0);
        let n = n.min(count);
        let baskets = self.baskets.saturating_sub(u64::from(n));
        if baskets == 0 {
            return 1.0;
        }
        let expected = f64::from(self.orders[x as usize] - n)
            * f64::from(self.orders[y as usize] - n)
            / baskets as f64;
        (f64::from(count - n) + prior) / (expected + prior)
    }

    /// Orders chance predicts to hold both categories (0 for one category, or one
    /// the orders never hold).
    pub fn expected(&self, a: &str, b: &str) -> f64 {
        let (Some(&x), Some(&y)) = (self.index.get(a), self.index.get(b)) else {
            return 0.0;
        };
        if self.baskets == 0 || x == y {
            return 0.0;
        }
        f64::from(self.orders[x as usize]) * f64::from(self.orders[y as usize])
            / self.baskets as f64
    }

    fn lift_of(&self, x: u32, y: u32, prior: f64) -> (u32, f64) {
        if self.baskets == 0 || x == y {
            return (0, 1.0);
        }
        let count = self.pairs.get(&(x.min(y), x.max(y))).copied().unwrap_or(0);
        let expected = f64::from(self.orders[x as usize]) * f64::from(self.orders[y as usize])
            / self.baskets as f64;
        (count, (f64::from(count) + prior) / (expected + prior))
    }
}

impl CategoryLinks {
    /// The products of the `limit` categories that go best with `category` (shrunk
    /// lift at least `min_lift`), best category first.
    pub fn linked_members(
        &self,
        category: &str,
        prior: f64,
        min_lift: f64,
        limit: usize,
    ) -> Vec<&[u32]> {
        let Some(&x) = self.index.get(category) else {
            return Vec::new();
        };
        let mut linked: Vec<(u32, f64)> = (0..self.members.len() as u32)
            .map(|y| (y, self.lift_of(x, y, prior).1))
            .filter(|&(y, lift)| y != x && lift >= min_lift)
            .collect();
        linked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        linked
            .into_iter()
            .take(limit)
            .map(|(y, _)| self.members[y as usize].as_slice())
            .collect()
    }
}

/// Basket indices holding each product (up to `as_of`), ascending.
pub fn orders_holding(data: &StoreData, as_of: DateTime<Utc>) -> Vec<Vec<u32>> {
    let mut holding: Vec<Vec<u32>> = vec![Vec::new(); data.products.len()];
    for (k, basket) in data.baskets_until(as_of).enumerate() {
        for i in basket {
            if let Some(list) = holding.get_mut(i as usize) {
                list.push(k as u32);
            }
        }
    }
    holding
}
