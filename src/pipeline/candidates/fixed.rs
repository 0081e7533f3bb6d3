//! Fixed sets of 2–4 products sold together at one price: the anchor with its best
//! partners, frequent itemsets holding the anchor, and the model's proposals.

use super::CellInput;
use crate::pipeline::model::{Draft, RELATED, Source};

pub fn generate(input: &CellInput<'_>) -> Vec<Draft> {
    let ctx = input.ctx;
    let mut out = input.proposed.clone();
    for &a in input.anchors {
        let partners = input.partners_of(a);
        for &(b, source) in partners.iter().take(3) {
            out.push(Draft::new(vec![a, b], source));
        }
        // A trio of the two best partners when they go together too.
        if let [(b, sb), (c, sc), ..] = partners[..] {
            let related = ctx.pair_count(b, c) > 0 || ctx.similarity(b, c) >= RELATED;
            if related {
                let mut d = Draft::new(vec![a, b, c], sb);
                d.sources.insert(sc);
                out.push(d);
            }
        }
        for set in ctx.itemsets_of[a as usize].iter().take(2) {
            let (items, _) = &ctx.itemsets[*set];
            let mut products = vec![a];
            products.extend(items.iter().copied().filter(|&i| i != a));
            out.push(Draft::new(products, Source::Itemsets));
        }
    }
    out
}
