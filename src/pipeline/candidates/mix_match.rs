//! Mix & match: pick N from a group of 4–8 alike products (variants, flavours, the
//! same kind of thing in the same category) for one price.

use super::{CellInput, Draft, Source};

pub fn generate(input: &CellInput<'_>) -> Vec<Draft> {
    let mut out: Vec<Draft> = input
        .proposed
        .iter()
        .filter(|d| d.products.len() >= 4)
        .cloned()
        .collect();
    for &a in input.anchors {
        let alike = input.alike(a);
        if alike.len() < 3 {
            continue;
        }
        let mut group = vec![a];
        group.extend(alike.into_iter().take(7));
        out.push(Draft::new(group, Source::Neighbours));
    }
    for d in &mut out {
        d.pick = Some(if d.products.len() >= 6 { 3 } else { 2 });
    }
    out
}
