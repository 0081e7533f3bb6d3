//! Fast non-dominated sorting (Deb et al.'s NSGA-II ranking) with crowding distance:
//! rank 1 is the front no other point beats on every objective; crowding distance
//! prefers, within a rank, points in sparse parts of the front. Every objective is
//! maximised. O(M·N²) for N points and M objectives: a few thousand candidates take
//! milliseconds.

/// The front rank of every point, from 1.
pub fn ranks(points: &[Vec<f64>]) -> Vec<u32> {
    let n = points.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominates: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in i + 1..n {
            if dominates_point(&points[i], &points[j]) {
                dominates[i].push(j);
                dominated_by[j] += 1;
            } else if dominates_point(&points[j], &points[i]) {
                dominates[j].push(i);
                dominated_by[i] += 1;
            }
        }
    }
    let mut rank = vec![0u32; n];
    let mut front: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    let mut r = 1;
    while !front.is_empty() {
        let mut next = Vec::new();
        for &i in &front {
            rank[i] = r;
            for &j in &dominates[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        front = next;
        r += 1;
    }
    rank
}

/// a dominates b: at least as good on every objective and better on one.
pub fn dominates_point(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x < y {
            return false;
        }
        better |= x > y;
    }
    better
}

/// Crowding distance of each point within its rank (infinite at a front's ends).
// k indexes an objective across many points, not one slice.
#[allow(clippy::needless_range_loop)]
pub fn crowding(points: &[Vec<f64>], rank: &[u32]) -> Vec<f64> {
    let n = points.len();
    let m = points.first().map_or(0, Vec::len);
    let mut dist = vec![0.0f64; n];
    let max_rank = rank.iter().copied().max().unwrap_or(0);
    for r in 1..=max_rank {
        let members: Vec<usize> = (0..n).filter(|&i| rank[i] == r).collect();
        if members.len() <= 2 {
            for &i in &members {
                dist[i] = f64::INFINITY;
            }
            continue;
        }
        for k in 0..m {
            let mut sorted = members.clone();
            sorted.sort_by(|&a, &b| points[a][k].total_cmp(&points[b][k]).then(a.cmp(&b)));
            let lo = points[sorted[0]][k];
            let hi = points[sorted[sorted.len() - 1]][k];
            dist[sorted[0]] = f64::INFINITY;
            dist[sorted[sorted.len() - 1]] = f64::INFINITY;
            if hi > lo {
                for w in 1..sorted.len() - 1 {
                    dist[sorted[w]] +=
                        (points[sorted[w + 1]][k] - points[sorted[w - 1]][k]) / (hi - lo);
                }
            }
        }
    }
    dist
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fronts_peel_in_order() {
        let pts = vec![
            vec![1.0, 1.0],
            vec![2.0, 2.0],
            vec![3.0, 1.0],
            vec![0.5, 0.5],
        ];
        assert_eq!(ranks(&pts), [2, 1, 1, 3]);
    }

    proptest! {
        #[test]
        fn the_first_front_is_non_dominated_and_dominates_the_rest(
            pts in prop::collection::vec(prop::collection::vec(0.0f64..10.0, 5), 1..60)
        ) {
            let r = ranks(&pts);
            for i in 0..pts.len() {
                for j in 0..pts.len() {
                    if dominates_point(&pts[i], &pts[j]) {
                        prop_assert!(r[i] < r[j], "{:?} beats {:?} but ranks {} vs {}", pts[i], pts[j], r[i], r[j]);
                    }
                }
                if r[i] > 1 {
                    // Something in the rank above beats it.
                    prop_assert!((0..pts.len()).any(|j| r[j] == r[i] - 1 && dominates_point(&pts[j], &pts[i])));
                }
            }
            let c = crowding(&pts, &r);
            prop_assert!(c.iter().all(|&d| d >= 0.0));
        }
    }
}
