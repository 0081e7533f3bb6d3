//! Seeded synthetic vectors shaped like sentence embeddings: clustered around random
//! centres, L2-normalised. Benchmarks and tests use them so anyone can rebuild the exact
//! same inputs from a seed.

use super::matrix::Matrix;

use crate::rng::{Purpose, Stream};

/// `n` unit vectors of `dim` around `centres` random centres. The noise keeps points
/// of one cluster at cosine ≈ 0.5–0.8 to each other, as product titles of one kind are.
pub fn clustered(n: usize, dim: usize, centres: usize, seed: u64) -> Matrix {
    let mut rng = Stream::new(Purpose::SyntheticVectors, seed);
    let centres = centres.max(1);
    let mut c = Matrix::zeros(centres, dim);
    for i in 0..centres {
        for x in c.row_mut(i) {
            *x = rng.normal();
        }
    }
    c.normalise_rows();
    let sigma = 0.9 / (dim as f32).sqrt();
    let mut m = Matrix::zeros(n, dim);
    for i in 0..n {
        let ci = rng.below(centres);
        for (x, &cx) in m.row_mut(i).iter_mut().zip(c.row(ci)) {
            *x = cx + sigma * rng.normal();
        }
    }
    m.normalise_rows();
    m
}

/// `q` queries, each a random data row plus noise of relative size `noise`.
pub fn queries_near(data: &Matrix, q: usize, noise: f32, seed: u64) -> Matrix {
    let mut rng = Stream::new(Purpose::SyntheticQueries, seed);
    let dim = data.dim();
    let sigma = noise / (dim as f32).sqrt();
    let mut m = Matrix::zeros(q, dim);
    for i in 0..q {
        let src = rng.below(data.rows());
        for (x, &dx) in m.row_mut(i).iter_mut().zip(data.row(src)) {
            *x = dx + sigma * rng.normal();
        }
    }
    m.normalise_rows();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_vectors() {
        let a = clustered(50, 7, 3, 11);
        let b = clustered(50, 7, 3, 11);
        assert_eq!(a.as_slice(), b.as_slice());
        assert_ne!(a.as_slice(), clustered(50, 7, 3, 12).as_slice());
        let norm: f32 = a.row(3).iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
