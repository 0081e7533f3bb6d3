//! Seeded synthetic baskets for the stress case: many ordinary baskets over a
//! long-tailed catalog, plus a few hundred wholesale-sized ones drawn from the popular
//! items. The large baskets overlap heavily, so at a low threshold their common subsets
//! explode combinatorially: the case that takes other miners' memory.

use super::baskets::Baskets;
use crate::rng::QuickStream;

#[derive(Debug, Clone, Copy)]
pub struct StressSpec {
    pub baskets: usize,
    pub items: u32,
    /// Baskets of `large_len` items each, among `baskets`.
    pub large: usize,
    pub large_len: usize,
    pub seed: u64,
}

impl Default for StressSpec {
    fn default() -> Self {
        StressSpec {
            baskets: 1_000_000,
            items: 20_000,
            large: 300,
            large_len: 200,
            seed: 42,
        }
    }
}

/// An item with probability falling off as a power of its rank.
fn item(rng: &mut QuickStream, items: u32) -> u32 {
    let u = rng.unit();
    ((f64::from(items)) * u * u * u) as u32
}

pub fn stress_baskets(spec: &StressSpec) -> Baskets {
    let mut rng = QuickStream::new(spec.seed);
    let large_every = spec
        .baskets
        .checked_div(spec.large)
        .map_or(usize::MAX, |every| every.max(1));
    let popular = (spec.large_len as u32 * 5).min(spec.items).max(1);
    let mut lists = Vec::with_capacity(spec.baskets);
    let mut large_made = 0;
    for i in 0..spec.baskets {
        let mut basket = Vec::new();
        if large_made < spec.large && i % large_every == 0 {
            large_made += 1;
            while basket.len() < spec.large_len.min(popular as usize) {
                basket.push(item(&mut rng, popular));
                basket.sort_unstable();
                basket.dedup();
            }
        } else {
            // 1 + geometric: mean basket about 4.5 items.
            let len = 1 + (-(1.0 - rng.unit()).ln() * 3.5) as usize;
            basket.extend((0..len).map(|_| item(&mut rng, spec.items)));
        }
        lists.push(basket);
    }
    Baskets::from_ids(spec.items, lists)
}
