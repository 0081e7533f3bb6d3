//! Volume breaks: one product in quantity tiers (2 / 3 / 5) for products bought in
//! multiples or again and again.

use super::CellInput;
use crate::pipeline::justify::MULTIPLES;
use crate::pipeline::model::{DataTag, Draft, Source};

pub const TIERS: [u32; 3] = [2, 3, 5];

pub fn generate(input: &CellInput<'_>) -> Vec<Draft> {
    let ctx = input.ctx;
    let mut out: Vec<Draft> = input
        .proposed
        .iter()
        .filter(|d| d.products.len() == 1)
        .cloned()
        .collect();
    for &a in input.anchors {
        let s = &ctx.signals[a as usize];
        if s.repeat_rate >= MULTIPLES || s.has(DataTag::Consumable) {
            out.push(Draft::new(vec![a], Source::Repeats));
        }
    }
    for d in &mut out {
        d.quantities = vec![TIERS[0]];
        d.tiers = TIERS.to_vec();
    }
    out
}
