//! Buy X, get Y: the same product again when shoppers buy it in multiples or come back
//! for it, or a cheaper complement.

use super::CellInput;
use crate::pipeline::justify::MULTIPLES;
use crate::pipeline::model::{DataTag, Draft, Source};

pub fn generate(input: &CellInput<'_>) -> Vec<Draft> {
    let ctx = input.ctx;
    let price = |i: u32| ctx.product(i).price.minor;
    let mut out: Vec<Draft> = input
        .proposed
        .iter()
        .filter(|d| d.products.len() == 1 || price(d.products[1]) <= price(d.products[0]))
        .cloned()
        .map(|mut d| {
            if d.products.len() == 1 {
                d.quantities = vec![2];
            }
            d
        })
        .collect();
    for &a in input.anchors {
        let s = &ctx.signals[a as usize];
        if s.repeat_rate >= MULTIPLES || s.has(DataTag::Consumable) {
            let mut d = Draft::new(vec![a], Source::Repeats);
            d.quantities = vec![2];
            out.push(d);
        }
        if let Some((b, source)) = input
            .partners_of(a)
            .into_iter()
            .find(|&(b, _)| price(b) < price(a))
        {
            out.push(Draft::new(vec![a, b], source));
        }
    }
    out
}
