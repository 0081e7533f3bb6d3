//! The offer economics, one definition for every phase: the units a bundle sells, its
//! list price and cost as sold (a mix & match group as `pick` items at the group's mean
//! price). Candidates show it, optimize prices from it, approvals compare against it.

use super::context::Context;
use super::model::Candidate;
use crate::domain::BundleType;

/// Units of each product a bundle sells at its list price: its largest tier for a
/// volume break, else its quantities.
pub fn units_sold(bundle_type: BundleType, quantities: &[u32], tiers: &[u32]) -> Vec<u32> {
    match bundle_type {
        BundleType::Volume => vec![tiers.iter().copied().max().unwrap_or(2)],
        _ => quantities.to_vec(),
    }
}

/// An amount of a bundle as sold, from each item's (unit amount, quantity): for mix &
/// match `pick` items at the group's mean, rounded up (the shopper picks any of them);
/// else the sum. Used for list prices and costs alike.
pub fn as_sold(bundle_type: BundleType, pick: Option<u32>, items: &[(i64, u32)]) -> i64 {
    if bundle_type == BundleType::MixMatch {
        let n = items.len().max(1) as i64;
        let pick = i64::from(pick.unwrap_or(2));
        let sum: i64 = items.iter().map(|&(unit, _)| unit).sum();
        return (sum * pick + n - 1) / n;
    }
    items
        .iter()
        .map(|&(unit, quantity)| unit * i64::from(quantity))
        .sum()
}

/// [`units_sold`] of a candidate.
pub fn units(c: &Candidate) -> Vec<u32> {
    units_sold(c.bundle_type, &c.draft.quantities, &c.draft.tiers)
}

/// The list price of a candidate as sold (see [`list_and_cost`]): the one definition the
/// output, the prompts and pricing share.
pub fn list_price(ctx: &Context, c: &Candidate) -> i64 {
    list_and_cost(ctx, c).0
}

/// List price, cost and whether a cost was assumed, for the bundle as sold.
pub fn list_and_cost(ctx: &Context, c: &Candidate) -> (i64, i64, bool) {
    let d = &c.draft;
    let assumed = d
        .products
        .iter()
        .any(|&i| ctx.signals[i as usize].cost_assumed);
    let amounts = |unit: &dyn Fn(u32) -> i64| -> Vec<(i64, u32)> {
        d.products
            .iter()
            .zip(&d.quantities)
            .map(|(&i, &q)| (unit(i), q))
            .collect()
    };
    let list = amounts(&|i| ctx.product(i).price.minor);
    let cost = amounts(&|i| ctx.signals[i as usize].unit_cost_minor);
    (
        as_sold(c.bundle_type, d.pick, &list),
        as_sold(c.bundle_type, d.pick, &cost),
        assumed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_and_match_sells_pick_items_at_the_group_mean_rounded_up() {
        let group = [(1000, 1), (1200, 1), (1400, 1)];
        assert_eq!(as_sold(BundleType::MixMatch, Some(2), &group), 2400);
        // 3601 × 2 / 3 = 2400.67: rounded up.
        let dearer = [(1000, 1), (1201, 1), (1400, 1)];
        assert_eq!(as_sold(BundleType::MixMatch, Some(2), &dearer), 2401);
        assert_eq!(as_sold(BundleType::Fixed, None, &dearer), 3601);
        assert_eq!(as_sold(BundleType::Bogo, None, &[(500, 2)]), 1000);
    }

    #[test]
    fn a_volume_break_sells_its_largest_tier() {
        assert_eq!(units_sold(BundleType::Volume, &[2], &[2, 3, 5]), [5]);
        assert_eq!(units_sold(BundleType::Fixed, &[1, 2], &[]), [1, 2]);
    }
}
