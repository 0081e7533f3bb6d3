//! Bayesian expected-profit pricing. For a bundle at list price L with cost C, the
//! chance a shopper who sees it takes it at discount d (percent) is modelled as
//! `p(d) = σ(logit(p₀) + e·d)`, where p₀ is the posterior mean of a Beta(a, b) prior
//! updated by the store's own orders (of the n orders holding the anchor, s hold the
//! whole set) and e is the price response (per percent point), scaled by how much
//! larger the store's discounted orders are than its full-price ones when it has
//! enough of them. The discount maximising `p(d) × (L·(1 − d) − C)` on the whole-percent
//! grid of the objective's range is the Bayesian choice; it is blended with the
//! model's suggestion and clamped to the range and the margin floor.
//!
//! The model's advice (the middle of its suggested range) is blended here too
//! ([`final_price`]), so every rule that sets a price lives in this file.
//!
//! Money stays integer minor units: the final price is `⌈L × (100 − d) / 100⌉`, rounded
//! *up* so rounding can never push it under the floor, and an optional .99 ending only
//! ever raises it (never above the list price).

use crate::config::OptimizeSettings;
use crate::domain::TextSource;
use crate::llm::answer::PriceAdvice;
use crate::llm::gateway::Sourced;
use crate::pipeline::model::{Demand, FinalPrice, Offer};

/// The margin floor, as the largest whole-percent discount that keeps
/// `(final − cost) / final ≥ floor`; `None` when even no discount does.
pub fn max_discount_for_floor(list_minor: i64, cost_minor: i64, floor_pct: f64) -> Option<u32> {
    if list_minor <= 0 {
        return None;
    }
    let keep = 1.0 - floor_pct / 100.0;
    // final ≥ cost / keep.
    let min_final = cost_minor.max(0) as f64 / keep;
    if (list_minor as f64) < min_final {
        return None;
    }
    let mut d = ((1.0 - min_final / list_minor as f64) * 100.0)
        .floor()
        .max(0.0) as u32;
    // Float error either way: step down until d passes; prices round up to the minor
    // unit, so one more percent may pass too.
    while d > 0 && !keeps_floor(list_minor, cost_minor, d, floor_pct) {
        d -= 1;
    }
    while d < 100 && keeps_floor(list_minor, cost_minor, d + 1, floor_pct) {
        d += 1;
    }
    keeps_floor(list_minor, cost_minor, d, floor_pct).then_some(d)
}

/// The price at a whole-percent discount, rounded up to the minor unit.
pub fn price_at(list_minor: i64, discount_pct: u32) -> i64 {
    let num = i128::from(list_minor) * i128::from(100 - discount_pct.min(100));
    ((num + 99) / 100) as i64
}

/// What `pct` percent off `gets_minor` takes off, rounded down to the minor unit (the
/// shop's discount never gives more than it says).
pub fn off_gets(gets_minor: i64, pct: u32) -> i64 {
    (i128::from(gets_minor) * i128::from(pct.min(100)) / 100) as i64
}

/// The whole percentage off the gets nearest to the bundle discount `d`, never
/// taking off more than the bundle's highest allowed discount `hi` does.
fn gets_offer(list_minor: i64, gets_minor: i64, d: u32, hi: u32) -> u32 {
    let off = list_minor - price_at(list_minor, d);
    let mut p = ((i128::from(off) * 100 + i128::from(gets_minor) / 2) / i128::from(gets_minor))
        .clamp(0, 100) as u32;
    let most = list_minor - price_at(list_minor, hi);
    while p > 0 && off_gets(gets_minor, p) > most {
        p -= 1;
    }
    p
}

/// Whether the price at `d` keeps the margin floor.
pub fn keeps_floor(list_minor: i64, cost_minor: i64, d: u32, floor_pct: f64) -> bool {
    let final_minor = price_at(list_minor, d);
    final_minor > 0
        && (final_minor - cost_minor) as f64 >= floor_pct / 100.0 * final_minor as f64 - 1e-9
}

/// `.99` endings: the smallest price ≥ `minor` ending in 99 minor units, if it does
/// not exceed `list_minor`; else `minor` unchanged.
pub fn ninety_nine(minor: i64, list_minor: i64) -> i64 {
    let up = minor + (99 - minor.rem_euclid(100)).rem_euclid(100);
    if up <= list_minor { up } else { minor }
}

/// The Bayesian choice: the whole-percent discount in `lo..=hi` with the highest
/// expected profit (the smaller discount on ties).
pub fn bayesian_discount(
    demand: &Demand,
    list_minor: i64,
    cost_minor: i64,
    lo: u32,
    hi: u32,
) -> u32 {
    let mut best = (f64::NEG_INFINITY, lo);
    for d in lo..=hi.max(lo) {
        let profit = demand.take_rate(f64::from(d)) * (price_at(list_minor, d) - cost_minor) as f64;
        if profit > best.0 + 1e-9 {
            best = (profit, d);
        }
    }
    best.1
}

/// The final price of an offer (see [`FinalPrice`]).
pub fn final_price(
    o: &Offer,
    advice: Option<&Sourced<PriceAdvice>>,
    s: &OptimizeSettings,
) -> FinalPrice {
    let bayes = f64::from(o.bayesian_pct);
    let llm_pct = advice.map(|a| (f64::from(a.value.min_pct) + f64::from(a.value.max_pct)) / 2.0);
    let blended = match llm_pct {
        Some(l) => s.bayesian_weight * bayes + (1.0 - s.bayesian_weight) * l,
        None => bayes,
    };
    let hi = o.range.1.min(o.floor_max);
    let d = (blended.round() as u32).clamp(o.range.0, hi);
    let mut final_minor = price_at(o.list_minor, d);
    let gets = o.gets_minor.filter(|&g| g > 0);
    let gets_pct = gets.map(|g| gets_offer(o.list_minor, g, d, hi));
    match (gets, gets_pct) {
        // One offer, stated one way: the price is what the percentage off the gets gives
        // (no .99 ending, which would make the stated percentage untrue).
        (Some(g), Some(p)) => final_minor = o.list_minor - off_gets(g, p),
        _ if s.price_ending == crate::config::PriceEnding::NinetyNine => {
            final_minor = ninety_nine(final_minor, o.list_minor);
        }
        _ => {}
    }
    let source = advice.map_or(TextSource::Offline, |a| a.source);
    let reason = format!(
        "Bayesian optimum {bayes:.0}% (take rate {:.1}% at list, {:.1}% at {bayes:.0}%){}; \
         chose {d}% within the objective's {}-{}%{} and the {:.0}% margin floor (at most {}%).",
        o.demand.take_rate(0.0) * 100.0,
        o.demand.take_rate(bayes) * 100.0,
        match llm_pct {
            Some(l) => format!(
                ", suggested {l:.1}% ({}): {:.1} × {bayes:.0} + {:.1} × {l:.1} = {blended:.1}",
                match source {
                    TextSource::Llm => "model",
                    TextSource::Offline => "offline",
                },
                s.bayesian_weight,
                1.0 - s.bayesian_weight
            ),
            None => String::new(),
        },
        o.range.0,
        o.range.1,
        o.ceiling
            .map(|c| format!(" (the store's {c}% ceiling)"))
            .unwrap_or_default(),
        s.margin_floor_pct,
        o.floor_max,
    );
    let reason = match gets_pct {
        Some(p) => format!("{reason} Stated as {p}% off what the shopper gets."),
        None => reason,
    };
    FinalPrice {
        discount_pct: d,
        final_minor,
        gets_pct,
        llm_pct,
        reason,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prices_round_up_and_endings_only_raise() {
        assert_eq!(price_at(1999, 10), 1800); // 1799.1 → 1800
        assert_eq!(price_at(1000, 0), 1000);
        assert_eq!(ninety_nine(1800, 1999), 1899);
        assert_eq!(ninety_nine(1899, 1999), 1899);
        assert_eq!(ninety_nine(1950, 1960), 1950, "never above the list price");
    }

    #[test]
    fn the_floor_discount_counts_the_price_rounding_up() {
        // 55 % off 83.36 is 37.512, charged 37.52: still above the floor at cost 34.19.
        let d = max_discount_for_floor(8336, 3419, 8.858826916091555).unwrap();
        assert!(keeps_floor(8336, 3419, d, 8.858826916091555));
        assert!(!keeps_floor(8336, 3419, d + 1, 8.858826916091555));
    }

    #[test]
    fn a_bigger_discount_wins_only_where_demand_responds() {
        let flat = Demand::new([2.0, 38.0], 0.0, 0.0, 0.0);
        assert_eq!(bayesian_discount(&flat, 10_000, 5_000, 5, 20), 5);
        let keen = Demand::new([2.0, 38.0], 0.0, 0.0, 0.2);
        assert!(bayesian_discount(&keen, 10_000, 2_000, 5, 40) > 5);
    }

    proptest! {
        #[test]
        fn price_never_falls_below_margin_floor(
            list in 1i64..10_000_000,
            cost_share in 0.0f64..1.2,
            floor in 0.0f64..60.0,
        ) {
            let cost = (list as f64 * cost_share) as i64;
            if let Some(d) = max_discount_for_floor(list, cost, floor) {
                let p = price_at(list, d);
                prop_assert!((p - cost) as f64 >= floor / 100.0 * p as f64 - 1e-6);
                let p99 = ninety_nine(p, list);
                prop_assert!((p99 - cost) as f64 >= floor / 100.0 * p99 as f64 - 1e-6);
                prop_assert!(p99 <= list);
                // One percent more would break it (or it is the whole range).
                if d < 100 && keeps_floor(list, cost, d + 1, floor) {
                    prop_assert!(false, "d = {} is not the largest", d);
                }
            } else {
                prop_assert!(!keeps_floor(list, cost, 0, floor));
            }
        }
    }
}
