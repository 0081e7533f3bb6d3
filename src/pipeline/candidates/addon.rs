//! Add-ons: the anchor plus one cheaper partner at a discount ("frequently bought
//! together"). The add-on must cost less than the anchor, or it is not an add-on.

use super::CellInput;
use crate::pipeline::model::Draft;

pub fn generate(input: &CellInput<'_>) -> Vec<Draft> {
    let ctx = input.ctx;
    let price = |i: u32| ctx.product(i).price.minor;
    let mut out: Vec<Draft> = input
        .proposed
        .iter()
        .filter(|d| d.products.len() == 2 && price(d.products[1]) <= price(d.products[0]))
        .cloned()
        .collect();
    for &a in input.anchors {
        for (b, source) in input
            .partners_of(a)
            .into_iter()
            .filter(|&(b, _)| price(b) <= price(a))
            .take(3)
        {
            out.push(Draft::new(vec![a, b], source));
        }
    }
    out
}
