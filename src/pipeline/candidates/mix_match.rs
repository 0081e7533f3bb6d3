//! Mix & match: pick N from a group of 3–6 alike products (flavours, colours, the same
//! kind of thing in the same category, one price band) for one price. `pick` is always
//! smaller than the group: 3 from groups of five or six whose orders already hold three
//! more often than chance (or that have no orders yet), else 2. The group's rules are checked again, with the
//! model's proposals, in [`crate::pipeline::justify::alike`].

use super::CellInput;
use crate::pipeline::justify::{normalised_title, pick_evidence};
use crate::pipeline::model::{Draft, Source};

/// The most products in a group: more is a catalog page, not an offer.
pub const MAX_GROUP: usize = 6;

pub fn generate(input: &CellInput<'_>) -> Vec<Draft> {
    let mut out: Vec<Draft> = input
        .proposed
        .iter()
        .filter(|d| (3..=MAX_GROUP).contains(&d.products.len()))
        .cloned()
        .collect();
    for &a in input.anchors {
        let group = group_of(input, a);
        if group.len() >= 3 {
            out.push(Draft::new(group, Source::Neighbours));
        }
    }
    for d in &mut out {
        d.pick = Some(pick(input, &d.products));
    }
    out
}

/// The anchor and its alike products in its category, distinct titles, within the
/// price band of the group so far.
fn group_of(input: &CellInput<'_>, a: u32) -> Vec<u32> {
    let ctx = input.ctx;
    let price = |i: u32| ctx.product(i).price.minor;
    let category = &ctx.categories[a as usize];
    let mut group = vec![a];
    let mut titles = vec![normalised_title(ctx.product(a))];
    let (mut lo, mut hi) = (price(a), price(a));
    for b in input.alike(a) {
        if group.len() == MAX_GROUP {
            break;
        }
        let title = normalised_title(ctx.product(b));
        let (l, h) = (lo.min(price(b)), hi.max(price(b)));
        if group.contains(&b)
            || &ctx.categories[b as usize] != category
            || titles.contains(&title)
            || l <= 0
            || h as f64 > input.quality.price_band * l as f64
        {
            continue;
        }
        group.push(b);
        titles.push(title);
        (lo, hi) = (l, h);
    }
    group
}

fn pick(input: &CellInput<'_>, group: &[u32]) -> u32 {
    if group.len() < 5 {
        return 2;
    }
    let three = pick_evidence(input.ctx, group, 3);
    if three.holding == 0 || three.shrunk_lift >= input.quality.min_shrunk_lift {
        3
    } else {
        2
    }
}
