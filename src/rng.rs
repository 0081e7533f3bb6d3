//! Seeded random streams: the one place that knows how random numbers are made. The
//! rest of the crate asks for a stream for a purpose and a seed and never names an
//! algorithm. Every stream is fixed here forever, so no crate upgrade can move an
//! output that depends on one (golden files, fixtures, benchmarks' inputs).
//!
//! Three generators, by need: [`Stream`] (one word of state, for sampling in the
//! engine, evaluation and synthetic vectors), [`WideStream`] (four words, for long
//! fixture generations with independent stages) and [`QuickStream`] (one word, the
//! cheapest, for millions of synthetic baskets).

/// What a stream is for: each purpose mixes its own constant into the seed, so that
/// two purposes with one seed never draw the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The initial centres of category clustering.
    ClusterCentres,
    /// Node levels of the approximate index.
    IndexLevels,
    /// Seeded synthetic vectors.
    SyntheticVectors,
    /// Queries near seeded synthetic vectors.
    SyntheticQueries,
    /// Evaluation's random baseline sets.
    RandomSets,
    /// Evaluation's bootstrap resamples.
    Bootstrap,
    /// A cohort comparison's paired resamples of orders and product sets.
    CohortResamples,
}

impl Purpose {
    fn salt(self) -> u64 {
        match self {
            Purpose::ClusterCentres => 0x5eed_c1a5_7e25,
            Purpose::IndexLevels => 0x4853_5753_0000_0001,
            Purpose::SyntheticVectors => 0x5EED_0FB0_D1E5,
            Purpose::SyntheticQueries => 0x0051_EA5C_0FFE,
            Purpose::RandomSets => 0x7a11,
            Purpose::Bootstrap => 0xb007,
            Purpose::CohortResamples => 0xc0_4027,
        }
    }
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small seeded stream.
#[derive(Debug, Clone)]
pub struct Stream(u64);

impl Stream {
    pub fn new(purpose: Purpose, seed: u64) -> Stream {
        Stream(seed ^ purpose.salt())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// In `0..n` (by remainder; `n` of 0 counts as 1).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in (0, 1]: safe to take a logarithm of.
    pub fn unit_above_zero(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit_above_zero(), self.unit_above_zero());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// A stream with a wide state, for long generations split into independent stages.
#[derive(Debug, Clone)]
pub struct WideStream {
    state: [u64; 4],
}

impl WideStream {
    pub fn new(seed: u64) -> WideStream {
        let mut seeder = seed;
        let mut next = || {
            seeder = seeder.wrapping_add(GOLDEN_GAMMA);
            mix(seeder)
        };
        WideStream {
            state: [next(), next(), next(), next()],
        }
    }

    /// An independent stream per stage of one generation.
    pub fn stage(seed: u64, stage: u64) -> WideStream {
        WideStream::new(seed ^ stage.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (multiply-shift; its bias is far below anything a fixture
    /// notices).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given integer weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut roll = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if roll < u64::from(w) {
                return i;
            }
            roll -= u64::from(w);
        }
        weights.len() - 1
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The cheapest stream, for bulk synthetic data.
#[derive(Debug, Clone)]
pub struct QuickStream(u64);

impl QuickStream {
    pub fn new(seed: u64) -> QuickStream {
        QuickStream(seed.max(1) ^ GOLDEN_GAMMA)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A number in [0, 1) that differs between calls and processes (retry jitter: the one
/// use that must not be reproducible, so parallel callers do not retry in lockstep).
pub fn unseeded_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streams' first values, pinned (worked out independently of this code):
    /// outputs built on them must never move.
    #[test]
    fn streams_are_fixed_forever() {
        assert_eq!(
            Stream::new(Purpose::Bootstrap, 5).next_u64(),
            0x5f35_f7ee_72cd_6ced
        );
        assert_eq!(WideStream::stage(42, 3).next_u64(), 0x3cf8_60af_930c_c916);
        assert_eq!(QuickStream::new(0).next_u64(), 0xdc1b_77ae_4b71_6dec);
        let u = Stream::new(Purpose::IndexLevels, 1).unit_above_zero();
        assert!(u > 0.0 && u <= 1.0);
    }
}
