//! The temporal holdout: a store's orders split at a cutoff day or before their last
//! share, the held-out orders
//! indexed by product, and the one rule that scores a product set on them — with the
//! orders as they are, or weighted by a bootstrap draw (cohorts). `eval` and cohorts
//! both score through here, so a hit means one thing in both.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use crate::domain::{Bundle, BundleType, StoreId};
use crate::pipeline::OrderScope;
use crate::stats::{at_least, end_of_day};
use crate::store::{HistoryOrder, StoreData};

/// A product set and how many of it an order must hold (`None`: all).
pub type NeedSet = (Vec<u32>, Option<usize>);

/// Where a store's orders are split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplitAt {
    /// Train on the orders dated on or before this day; hold out the rest.
    Day(NaiveDate),
    /// Hold out the last share of the orders (0 < share < 1) by time, ties broken by
    /// order id: a split that works when many orders carry one date.
    LastShare(f64),
}

impl SplitAt {
    /// A share as `--holdout` takes it: a number above 0 and below 1.
    pub fn share(share: f64) -> Result<SplitAt, String> {
        if share > 0.0 && share < 1.0 {
            Ok(SplitAt::LastShare(share))
        } else {
            Err(format!(
                "a holdout share is above 0 and below 1, not {share}"
            ))
        }
    }
}

/// A store's orders split ([`SplitAt`]): the training orders and the held-out baskets
/// after them, as catalog positions (`index` maps a variant id to its position).
pub struct HoldoutSplit<'a> {
    pub train: Vec<&'a HistoryOrder>,
    pub heldout: Vec<Vec<u32>>,
    pub index: HashMap<&'a str, u32>,
    /// The day the store is taken as of for training: the cutoff, or the day of the
    /// last training order.
    pub as_of: NaiveDate,
    /// Held-out orders placed on or before the end of `as_of` (a split by share can
    /// cut one day's orders): phase 0 must not see them.
    heldout_by_as_of: HashSet<&'a str>,
}

impl<'a> HoldoutSplit<'a> {
    /// The split, or what is missing: no order on either side.
    pub fn new(
        data: &'a StoreData,
        store_id: &StoreId,
        at: SplitAt,
    ) -> Result<HoldoutSplit<'a>, String> {
        let (train, heldout, as_of) = match at {
            SplitAt::Day(cutoff) => {
                let end = end_of_day(cutoff);
                let (train, heldout): (Vec<_>, Vec<_>) =
                    data.orders.iter().partition(|o| o.created_at <= end);
                if train.is_empty() {
                    return Err(format!(
                        "store {store_id} has no orders on or before {cutoff}"
                    ));
                }
                (train, heldout, cutoff)
            }
            SplitAt::LastShare(share) => {
                let mut orders: Vec<&HistoryOrder> = data.orders.iter().collect();
                orders.sort_by(|a, b| {
                    a.created_at
                        .cmp(&b.created_at)
                        .then_with(|| a.order_id.cmp(&b.order_id))
                });
                if orders.len() < 2 {
                    return Err(format!(
                        "store {store_id} has {} orders: a holdout needs at least 2",
                        orders.len()
                    ));
                }
                let held =
                    ((orders.len() as f64 * share).round() as usize).clamp(1, orders.len() - 1);
                let heldout = orders.split_off(orders.len() - held);
                let as_of = orders
                    .last()
                    .map(|o| o.created_at.date_naive())
                    .unwrap_or_default();
                (orders, heldout, as_of)
            }
        };
        let by_as_of = end_of_day(as_of);
        let heldout_by_as_of = heldout
            .iter()
            .filter(|o| o.created_at <= by_as_of)
            .map(|o| o.order_id.as_str())
            .collect();
        let heldout: Vec<Vec<u32>> = heldout
            .into_iter()
            .map(|o| o.basket())
            .filter(|b| !b.is_empty())
            .collect();
        if heldout.is_empty() {
            return Err(format!(
                "store {store_id} has no orders after {as_of}: nothing to evaluate against"
            ));
        }
        let index = data
            .products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.variant_id.as_str(), i as u32))
            .collect();
        Ok(HoldoutSplit {
            train,
            heldout,
            index,
            as_of,
            heldout_by_as_of,
        })
    }

    /// The store as training sees it as of [`HoldoutSplit::as_of`]: every order but the
    /// held-out ones placed by then (phase 0 reads orders up to `as_of` as history, and
    /// later ones only to tell when a product without a launch date first sold).
    pub fn store_as_trained(&self, data: &StoreData) -> StoreData {
        StoreData {
            store: data.store.clone(),
            products: data.products.clone(),
            orders: data
                .orders
                .iter()
                .filter(|o| !self.heldout_by_as_of.contains(o.order_id.as_str()))
                .cloned()
                .collect(),
            first_ingest: data.first_ingest,
        }
    }

    /// The training orders a scope keeps: the last N for `Last(N)`, else all of them
    /// (a cold start's engine sees none, but what it is measured against still does).
    pub fn train_in(&self, scope: OrderScope) -> &[&'a HistoryOrder] {
        let skip = match scope {
            OrderScope::Last(n) => self.train.len().saturating_sub(n),
            OrderScope::All | OrderScope::None => 0,
        };
        &self.train[skip..]
    }

    /// A run's bundles as product sets (catalog positions), each with what an order
    /// must hold of it.
    pub fn run_sets(&self, bundles: &[Bundle]) -> RunSets {
        let sets: Vec<Vec<u32>> = bundles
            .iter()
            .map(|b| {
                b.products
                    .iter()
                    .filter_map(|p| self.index.get(p.product_id.as_str()).copied())
                    .collect()
            })
            .collect();
        let picks = bundles
            .iter()
            .zip(&sets)
            .map(|(b, s)| (s.clone(), need(b)))
            .collect();
        RunSets { sets, picks }
    }
}

/// A run's bundles as the holdout scores them, in published order.
pub struct RunSets {
    /// Every product of each bundle (scored as a whole).
    pub sets: Vec<Vec<u32>>,
    /// Each as its offer is used ([`need`]).
    pub picks: Vec<NeedSet>,
}

/// The pick rule: a mix & match group is used when an order holds `pick` of it; any
/// other bundle needs all of its products.
pub fn need(b: &Bundle) -> Option<usize> {
    match b.bundle_type {
        BundleType::MixMatch => b.pick.map(|p| p as usize),
        _ => None,
    }
}

/// Non-empty baskets of orders.
pub fn baskets(orders: &[&HistoryOrder]) -> Vec<Vec<u32>> {
    orders
        .iter()
        .map(|o| o.basket())
        .filter(|b| !b.is_empty())
        .collect()
}

/// Held-out orders, with the orders holding each product.
pub struct Holdout {
    baskets: Vec<Vec<u32>>,
    /// Orders holding each product (by product index), ascending.
    holding: HashMap<u32, Vec<u32>>,
}

impl Holdout {
    pub fn new(baskets: Vec<Vec<u32>>) -> Holdout {
        let mut holding: HashMap<u32, Vec<u32>> = HashMap::new();
        for (o, b) in baskets.iter().enumerate() {
            for &i in b {
                holding.entry(i).or_default().push(o as u32);
            }
        }
        Holdout { baskets, holding }
    }

    pub fn len(&self) -> usize {
        self.baskets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.baskets.is_empty()
    }

    pub fn baskets(&self) -> &[Vec<u32>] {
        &self.baskets
    }

    /// The held-out orders holding `product`.
    pub fn holding(&self, product: u32) -> &[u32] {
        self.holding.get(&product).map_or(&[], Vec::as_slice)
    }

    /// A set ready to be scored any number of times: its distinct products (`None`
    /// for fewer than two), what an order must hold of it (clamped to 2..=size) and
    /// the held-out orders that do.
    pub fn prepare(&self, (set, need): &NeedSet) -> Option<PreparedSet> {
        let mut products = set.clone();
        products.sort_unstable();
        products.dedup();
        if products.len() < 2 {
            return None;
        }
        let need = need.unwrap_or(products.len()).clamp(2, products.len());
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for &p in &products {
            for &o in self.holding(p) {
                *counts.entry(o).or_default() += 1;
            }
        }
        let mut orders: Vec<u32> = counts
            .into_iter()
            .filter(|&(_, m)| m >= need)
            .map(|(o, _)| o)
            .collect();
        orders.sort_unstable();
        Some(PreparedSet {
            products,
            need,
            orders,
        })
    }

    /// (orders with every product of `set`, lift); (0, 0) for a set of fewer than two.
    pub fn score(&self, set: &[u32]) -> (usize, f64) {
        self.score_at_least(set, set.len())
    }

    /// (orders holding at least `k` of `set`, lift): observed ÷ the count expected
    /// under independence, each product in an order with its held-out frequency.
    pub fn score_at_least(&self, set: &[u32], k: usize) -> (usize, f64) {
        let Some(prepared) = self.prepare(&(set.to_vec(), Some(k))) else {
            return (0, 0.0);
        };
        let (c, lift) = Weighting::unit(self, &prepared.products).score(&prepared);
        (c as usize, lift)
    }
}

/// A set prepared for repeated scoring ([`Holdout::prepare`]).
#[derive(Debug, Clone)]
pub struct PreparedSet {
    /// Distinct, ascending.
    pub products: Vec<u32>,
    /// An order counts when it holds this many of them.
    pub need: usize,
    /// Held-out orders holding at least `need` of `products`.
    orders: Vec<u32>,
}

/// One weighting of the held-out orders: each counted once, or as often as a
/// bootstrap draw took it.
pub struct Weighting {
    weights: Option<Vec<u32>>,
    total: u64,
    /// Weighted orders holding each product asked for.
    product_counts: HashMap<u32, u64>,
}

impl Weighting {
    /// The held-out orders as they are, for sets over `products`.
    pub fn unit(holdout: &Holdout, products: &[u32]) -> Weighting {
        Weighting {
            weights: None,
            total: holdout.len() as u64,
            product_counts: products
                .iter()
                .map(|&p| (p, holdout.holding(p).len() as u64))
                .collect(),
        }
    }

    /// The held-out orders weighted by a draw (`weights[o]`: how often order `o` was
    /// drawn), for sets over `products`.
    pub fn drawn(holdout: &Holdout, weights: Vec<u32>, products: &HashSet<u32>) -> Weighting {
        let product_counts = products
            .iter()
            .map(|&p| {
                let n = holdout
                    .holding(p)
                    .iter()
                    .map(|&o| u64::from(weights[o as usize]))
                    .sum();
                (p, n)
            })
            .collect();
        Weighting {
            total: weights.iter().map(|&w| u64::from(w)).sum(),
            weights: Some(weights),
            product_counts,
        }
    }

    /// The orders counted in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// (weighted orders holding enough of the set, lift). Lift is observed ÷
    /// expected: for the whole set c·N^(k−1) / ∏ nᵢ (0 when a product was never
    /// bought); for `need` of it, over the count independence predicts.
    pub fn score(&self, s: &PreparedSet) -> (u64, f64) {
        let c: u64 = match &self.weights {
            None => s.orders.len() as u64,
            Some(w) => s.orders.iter().map(|&o| u64::from(w[o as usize])).sum(),
        };
        let n = self.total;
        let counts: Vec<u64> = s
            .products
            .iter()
            .map(|p| self.product_counts.get(p).copied().unwrap_or(0))
            .collect();
        if n == 0 {
            return (c, 0.0);
        }
        if s.need >= s.products.len() {
            if counts.contains(&0) {
                return (c, 0.0);
            }
            let (_, lift) = crate::rules::set_lift(c, counts.iter().copied(), n);
            return (c, lift);
        }
        let probs: Vec<f64> = counts.iter().map(|&k| k as f64 / n as f64).collect();
        let expected = n as f64 * at_least(&probs, s.need);
        (
            c,
            if expected > 0.0 {
                c as f64 / expected
            } else {
                0.0
            },
        )
    }

    /// (count, lift) of every set.
    pub fn scores(&self, sets: &[PreparedSet]) -> Vec<(u64, f64)> {
        sets.iter().map(|s| self.score(s)).collect()
    }
}

/// Eight held-out orders over products 0–4 (4 is never bought), worked by hand: the
/// unit tests' holdout here and in `score`.
#[cfg(test)]
pub(super) fn worked_holdout() -> Holdout {
    Holdout::new(vec![
        vec![0, 1],
        vec![0, 1, 2],
        vec![0, 1, 3],
        vec![0],
        vec![2, 3],
        vec![2],
        vec![3],
        vec![1, 2],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, HistoryLine, Store};

    fn holdout() -> Holdout {
        worked_holdout()
    }

    /// Ten orders all placed in one second, listed out of id order.
    fn one_day_store() -> StoreData {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let orders = [3, 9, 0, 7, 1, 8, 2, 6, 4, 5]
            .into_iter()
            .map(|i| HistoryOrder {
                order_id: format!("o{i:02}"),
                created_at: at,
                customer_key: None,
                currency_assumed: false,
                lines: vec![HistoryLine {
                    item: Some(i),
                    quantity: 1,
                    unit_price_minor: 100,
                    discount_minor: 0,
                }],
            })
            .collect();
        StoreData {
            store: Store {
                id: StoreId::parse("one-day").unwrap(),
                currency: Currency::USD,
                locale: "en".into(),
            },
            products: Vec::new(),
            orders,
            first_ingest: None,
        }
    }

    /// Issue: a split by day cannot split a store whose orders all carry one date; a
    /// split by share holds out the last share by time, ties broken by order id.
    #[test]
    fn a_share_splits_orders_of_one_day_by_id_and_a_day_cannot() {
        let data = one_day_store();
        let id = data.store.id.clone();
        let split = HoldoutSplit::new(&data, &id, SplitAt::share(0.3).unwrap()).unwrap();
        let train: Vec<&str> = split.train.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(train, ["o00", "o01", "o02", "o03", "o04", "o05", "o06"]);
        assert_eq!(split.heldout, [vec![7], vec![8], vec![9]]);
        assert_eq!(split.as_of, data.orders[0].created_at.date_naive());
        let trained = split.store_as_trained(&data);
        assert_eq!(
            trained.orders.len(),
            7,
            "a held-out order of the last day stays out"
        );

        let day = SplitAt::Day(split.as_of);
        assert!(HoldoutSplit::new(&data, &id, day).is_err());
        // At least one order on each side, whatever the share.
        let tiny = HoldoutSplit::new(&data, &id, SplitAt::share(0.01).unwrap()).unwrap();
        assert_eq!((tiny.train.len(), tiny.heldout.len()), (9, 1));
        let most = HoldoutSplit::new(&data, &id, SplitAt::share(0.99).unwrap()).unwrap();
        assert_eq!((most.train.len(), most.heldout.len()), (1, 9));
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(SplitAt::share(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metric_definitions_give_the_known_answers() {
        let h = holdout();
        let (c, lift) = h.score(&[0, 1]);
        assert_eq!(c, 3);
        // 1 appears in orders 0, 1, 2, 7: n₁ = 4, so lift = 3·8/(4·4) = 1.5.
        assert!((lift - 1.5).abs() < 1e-12, "{lift}");
        let (c, lift) = h.score(&[2, 3]);
        // 2 in 1, 4, 5, 7 (4); 3 in 2, 4, 6 (3); together in 4 (1): 1·8/12.
        assert_eq!(c, 1);
        assert!((lift - 8.0 / 12.0).abs() < 1e-12);
        assert_eq!(h.score(&[0, 4]), (0, 0.0));
        // A triple: 0, 1, 2 together in order 1 only: 1·8²/(4·4·4) = 1.
        let (c, lift) = h.score(&[0, 1, 2]);
        assert_eq!(c, 1);
        assert!((lift - 1.0).abs() < 1e-12);
    }

    #[test]
    fn by_pick_counts_orders_holding_enough_of_a_group() {
        let h = holdout();
        // {0, 1, 2} with pick 2: orders 0, 1, 2, 7 hold two or more.
        let (c, lift) = h.score_at_least(&[0, 1, 2], 2);
        assert_eq!(c, 4);
        // p = 4/8 each: P(≥ 2 of 3) = 3·(1/4)(1/2) + 1/8 = 1/2, so 4 expected.
        assert!((lift - 1.0).abs() < 1e-12, "{lift}");
        // Needing all of a set is the plain score.
        assert_eq!(h.score_at_least(&[0, 1], 2), h.score(&[0, 1]));
        // A product never bought still leaves an expectation for "two of three".
        let (c, lift) = h.score_at_least(&[0, 1, 4], 2);
        assert_eq!(c, 3);
        // P(≥ 2 of p = ½, ½, 0) = ¼: 2 expected.
        assert!((lift - 1.5).abs() < 1e-12, "{lift}");
    }

    #[test]
    fn a_draw_weighs_orders_and_unit_weights_score_as_the_orders_are() {
        let h = holdout();
        let products: HashSet<u32> = (0..5).collect();
        let ones = Weighting::drawn(&h, vec![1; h.len()], &products);
        let unit = Weighting::unit(&h, &[0, 1, 2, 3, 4]);
        for set in [vec![0, 1], vec![2, 3], vec![0, 1, 2], vec![0, 4]] {
            let p = h.prepare(&(set.clone(), None)).unwrap();
            assert_eq!(ones.score(&p), unit.score(&p), "{set:?}");
        }
        // An order drawn twice counts twice.
        let twice = Weighting::drawn(&h, vec![2, 0, 0, 0, 0, 0, 0, 0], &products);
        let s = h.prepare(&(vec![0, 1], None)).unwrap();
        assert_eq!(twice.score(&s).0, 2);
        assert_eq!(twice.total(), 2);
    }
}
