//! Clusters of embeddings: spherical k-means. Complementarity needs categories ("a
//! related product from another category"), and many exports (UCI Online Retail, flat
//! product lists) have none; a derived category is a label (`cluster-07`) used only for
//! that comparison.

use super::Matrix;
use super::metric::kernels;
use crate::rng::{Purpose, Stream};

const ITERATIONS: usize = 12;

/// How a derived label begins (`cluster-07`), so a reader can tell it from a merchant's.
pub const CLUSTER_PREFIX: &str = "cluster-";

/// `own` with every empty label replaced by a cluster of its row's vector, over
/// `k(rows without a label)` clusters. Deterministic for a given seed.
pub fn label_missing(
    mut own: Vec<String>,
    vectors: &Matrix,
    seed: u64,
    k: impl Fn(usize) -> usize,
) -> Vec<String> {
    let missing: Vec<usize> = (0..own.len()).filter(|&i| own[i].is_empty()).collect();
    if missing.is_empty() {
        return own;
    }
    let k = k(missing.len()).max(1);
    let labels = kmeans(vectors, &missing, k, seed);
    for (&i, label) in missing.iter().zip(labels) {
        own[i] = format!("{CLUSTER_PREFIX}{label:02}");
    }
    own
}

/// Cluster of each of `rows` (indices into `vectors`): k-means++-style seeding (the
/// farthest of a few seeded draws), then Lloyd iterations on the unit sphere.
pub fn kmeans(vectors: &Matrix, rows: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let dim = vectors.dim();
    let kern = kernels();
    let k = k.min(rows.len()).max(1);
    let mut stream = Stream::new(Purpose::ClusterCentres, seed);
    let mut centres: Vec<Vec<f32>> = Vec::with_capacity(k);
    let first = rows[stream.below(rows.len())];
    centres.push(vectors.row(first).to_vec());
    while centres.len() < k {
        // Of eight seeded candidates, the one least similar to its closest centre.
        let mut best = (f32::INFINITY, rows[0]);
        for _ in 0..8 {
            let r = rows[stream.below(rows.len())];
            let closest = centres
                .iter()
                .map(|c| kern.dot(c, vectors.row(r)))
                .fold(f32::NEG_INFINITY, f32::max);
            if closest < best.0 {
                best = (closest, r);
            }
        }
        centres.push(vectors.row(best.1).to_vec());
    }
    let mut labels = vec![0usize; rows.len()];
    for _ in 0..ITERATIONS {
        let mut changed = false;
        for (slot, &r) in labels.iter_mut().zip(rows) {
            let v = vectors.row(r);
            let mut best = (f32::NEG_INFINITY, 0usize);
            for (c, centre) in centres.iter().enumerate() {
                let s = kern.dot(centre, v);
                if s > best.0 {
                    best = (s, c);
                }
            }
            changed |= *slot != best.1;
            *slot = best.1;
        }
        let mut sums = vec![vec![0.0f32; dim]; k];
        let mut counts = vec![0usize; k];
        for (&label, &r) in labels.iter().zip(rows) {
            counts[label] += 1;
            for (s, x) in sums[label].iter_mut().zip(vectors.row(r)) {
                *s += x;
            }
        }
        for (c, sum) in sums.iter_mut().enumerate() {
            if counts[c] == 0 {
                continue;
            }
            super::metric::normalise(sum);
            centres[c].copy_from_slice(sum);
        }
        if !changed {
            break;
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alike_vectors_share_a_cluster_and_given_labels_are_kept() {
        let rows: Vec<Vec<f32>> = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.99, 0.1, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.1, 0.99, 0.0],
            vec![0.0, 0.0, 1.0],
            vec![0.0, 0.1, 0.99],
            vec![0.0, 0.0, 1.0],
            vec![0.0, 0.0, 1.0],
        ];
        let mut m = Matrix::from_rows(3, &rows).unwrap();
        m.normalise_rows();
        let labels = kmeans(&m, &(0..8).collect::<Vec<_>>(), 3, 7);
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[2], labels[3]);
        assert_eq!(labels[4], labels[5]);
        assert_ne!(labels[0], labels[2]);
        assert_ne!(labels[2], labels[4]);
        assert_eq!(labels, kmeans(&m, &(0..8).collect::<Vec<_>>(), 3, 7));
        let own: Vec<String> = (0..8)
            .map(|i| if i == 0 { "mugs".into() } else { String::new() })
            .collect();
        let labelled = label_missing(own, &m, 7, |_| 3);
        assert_eq!(labelled[0], "mugs");
        assert!(labelled[1..].iter().all(|l| l.starts_with(CLUSTER_PREFIX)));
    }
}
