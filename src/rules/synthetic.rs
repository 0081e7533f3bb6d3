//! Seeded synthetic baskets for the stress case: many ordinary baskets over a
//! long-tailed catalog, plus a few hundred wholesale-sized ones drawn from the popular
//! items. The large baskets overlap heavily, so at a low threshold their common subsets
//! explode combinatorially: the case that takes other miners' memory.

use super::baskets::Baskets;

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

/// A xorshift generator: fast, seeded, enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An item with probability falling off as a power of its rank.
    fn item(&mut self, items: u32) -> u32 {
        let u = self.unit();
        ((f64::from(items)) * u * u * u) as u32
    }
}

pub fn stress_baskets(spec: &StressSpec) -> Baskets {
    let mut rng = Rng(spec.seed.max(1) ^ 0x9e37_79b9_7f4a_7c15);
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
                basket.push(rng.item(popular));
                basket.sort_unstable();
                basket.dedup();
            }
        } else {
            // 1 + geometric: mean basket about 4.5 items.
            let len = 1 + (-(1.0 - rng.unit()).ln() * 3.5) as usize;
            basket.extend((0..len).map(|_| rng.item(spec.items)));
        }
        lists.push(basket);
    }
    Baskets::from_ids(spec.items, lists)
}
