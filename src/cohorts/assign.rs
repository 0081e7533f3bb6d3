//! Deterministic assignment of customers (or stores) to cohorts, and the
//! sample-ratio-mismatch check.
//!
//! A unit's place is `SHA-256(salt ‖ 0x1F ‖ id)`: its first eight bytes, big-endian,
//! as a fraction of 2⁶⁴, falls into one arm's slice of [0, 1) (the arms in their
//! listed order, each slice as wide as its share). The same id and salt land in the
//! same arm on every machine and in every version that keeps this rule; a new salt
//! reshuffles everyone, independently of the last split.
//!
//! The sample-ratio-mismatch check is Pearson's χ² of the arm counts against the
//! shares; p < 0.001 says the split is not what it claims (a bug in assignment or
//! logging, not chance), as is usual for A/B platforms.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Below this p-value an assignment is a sample-ratio mismatch.
pub const SRM_ALPHA: f64 = 0.001;

/// Where `id` falls in [0, 1) under `salt`.
pub fn position(salt: &str, id: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0x1f]);
    h.update(id.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exact in an f64.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// The arm (index into `shares`) `id` is assigned to. Shares need not sum to 1;
/// they are taken relative to their sum. `None` when no share is positive.
pub fn arm(salt: &str, id: &str, shares: &[f64]) -> Option<usize> {
    let total: f64 = shares.iter().filter(|s| **s > 0.0).sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let x = position(salt, id) * total;
    let mut edge = 0.0;
    let mut last = None;
    for (i, &s) in shares.iter().enumerate() {
        if s <= 0.0 {
            continue;
        }
        edge += s;
        last = Some(i);
        if x < edge {
            return Some(i);
        }
    }
    last
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArmCount {
    pub name: String,
    /// The share the arm should get.
    pub expected_share: f64,
    pub count: u64,
    pub share: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Srm {
    pub chi_square: f64,
    pub degrees_of_freedom: usize,
    pub p_value: f64,
    /// Every arm expects at least 5 units: below that the χ² approximation does not
    /// hold, and no mismatch is declared.
    pub checkable: bool,
    /// p below [`SRM_ALPHA`], on a checkable split.
    pub mismatch: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Assignment {
    pub salt: String,
    /// What was assigned: `customer` ids, or `order` ids when no order names a
    /// customer.
    pub unit: String,
    pub total: u64,
    /// Orders naming no customer when customers are the unit: not assigned (a
    /// storefront shows them the control).
    pub orders_without_customer: u64,
    pub arms: Vec<ArmCount>,
    pub srm: Srm,
}

/// Assigns every id (each once, however often given) to an arm of `arms` (name,
/// share), and checks the split.
pub fn assign<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    salt: &str,
    unit: &str,
    arms: &[(String, f64)],
) -> Assignment {
    let shares: Vec<f64> = arms.iter().map(|a| a.1).collect();
    let mut counts = vec![0u64; arms.len()];
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            continue;
        }
        if let Some(i) = arm(salt, id, &shares) {
            counts[i] += 1;
        }
    }
    let total: u64 = counts.iter().sum();
    let share_total: f64 = shares.iter().filter(|s| **s > 0.0).sum();
    let expected: Vec<f64> = shares
        .iter()
        .map(|&s| {
            if s > 0.0 && share_total > 0.0 {
                s / share_total
            } else {
                0.0
            }
        })
        .collect();
    Assignment {
        salt: salt.to_owned(),
        unit: unit.to_owned(),
        total,
        orders_without_customer: 0,
        arms: arms
            .iter()
            .zip(&counts)
            .zip(&expected)
            .map(|(((name, _), &count), &e)| ArmCount {
                name: name.clone(),
                expected_share: e,
                count,
                share: if total == 0 {
                    0.0
                } else {
                    count as f64 / total as f64
                },
            })
            .collect(),
        srm: srm_check(&counts, &expected),
    }
}

/// Assigns a store's customers (the orders' customer ids or e-mails), or its orders
/// when none names a customer.
pub fn assign_store(
    data: &crate::domain::StoreData,
    salt: &str,
    arms: &[(String, f64)],
) -> Assignment {
    let customers: Vec<&str> = data
        .orders
        .iter()
        .filter_map(|o| o.customer_key.as_deref())
        .collect();
    if customers.is_empty() {
        let orders = data.orders.iter().map(|o| o.order_id.as_str());
        return assign(orders, salt, "order", arms);
    }
    let without = data.orders.len() - customers.len();
    Assignment {
        orders_without_customer: without as u64,
        ..assign(customers, salt, "customer", arms)
    }
}

/// Pearson's χ² of `counts` against `expected` shares (arms with no expected share
/// are left out), with its p-value.
pub fn srm_check(counts: &[u64], expected: &[f64]) -> Srm {
    let total: u64 = counts.iter().sum();
    let mut chi = 0.0;
    let mut arms = 0usize;
    let mut fewest = f64::INFINITY;
    for (&c, &e) in counts.iter().zip(expected) {
        if e <= 0.0 {
            continue;
        }
        arms += 1;
        let want = e * total as f64;
        fewest = fewest.min(want);
        if want > 0.0 {
            chi += (c as f64 - want).powi(2) / want;
        }
    }
    let dof = arms.saturating_sub(1);
    let p_value = if dof == 0 || total == 0 {
        1.0
    } else {
        chi_square_survival(chi, dof as f64)
    };
    let checkable = dof > 0 && fewest >= 5.0;
    Srm {
        chi_square: chi,
        degrees_of_freedom: dof,
        p_value,
        checkable,
        mismatch: checkable && p_value < SRM_ALPHA,
    }
}

/// P(X ≥ x) for X ~ χ²(k): the regularised upper incomplete gamma Q(k/2, x/2).
pub fn chi_square_survival(x: f64, k: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(k / 2.0, x / 2.0)
}

/// Regularised upper incomplete gamma Q(a, x): by its series below a + 1, by its
/// continued fraction (modified Lentz) above, where each converges fast.
fn gamma_q(a: f64, x: f64) -> f64 {
    let log_front = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // P(a, x) = x^a e^-x / Γ(a+1) · Σ x^n / ((a+1)…(a+n)).
        let mut term = 1.0 / a;
        let mut sum = term;
        let mut n = a;
        for _ in 0..1000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * log_front.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (log_front.exp() * h).clamp(0.0, 1.0)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms: about 15 digits).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, &c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn six() -> Vec<(String, f64)> {
        ["control", "A", "B", "C", "D", "E"]
            .iter()
            .map(|n| (n.to_string(), 1.0))
            .collect()
    }

    #[test]
    fn the_same_id_and_salt_land_in_the_same_arm_on_every_machine() {
        // Fixed values: a change here moves every live experiment's customers.
        let shares = vec![1.0; 6];
        let got: Vec<Option<usize>> = ["c-1", "c-2", "c-3", "c-4", "c-5", "17850"]
            .iter()
            .map(|id| arm("spring-2027", id, &shares))
            .collect();
        assert_eq!(got, FIXED_ARMS.map(Some).to_vec());
        assert_eq!(
            format!("{:.12}", position("spring-2027", "c-1")),
            FIXED_POSITION
        );
        // Another salt is another split.
        let other: Vec<Option<usize>> = ["c-1", "c-2", "c-3", "c-4", "c-5", "17850"]
            .iter()
            .map(|id| arm("autumn-2027", id, &shares))
            .collect();
        assert_ne!(got, other);
    }

    const FIXED_ARMS: [usize; 6] = [5, 2, 0, 3, 4, 2];
    const FIXED_POSITION: &str = "0.868999747528";

    #[test]
    fn an_even_split_is_balanced_and_a_skewed_count_is_a_mismatch() {
        let ids: Vec<String> = (0..60_000).map(|i| format!("customer-{i}")).collect();
        let a = assign(ids.iter().map(String::as_str), "s", "customer", &six());
        assert_eq!(a.total, 60_000);
        for arm in &a.arms {
            assert!((arm.share - 1.0 / 6.0).abs() < 0.01, "{arm:?}");
        }
        assert!(!a.srm.mismatch, "{:?}", a.srm);
        assert!(a.srm.p_value > 0.001);
        // Repeats count once.
        let twice = assign(
            ids.iter().chain(ids.iter()).map(String::as_str),
            "s",
            "customer",
            &six(),
        );
        assert_eq!(twice.arms, a.arms);
        // 10,600 against 10,000 expected in the first of six arms of 60,000
        // (χ² = 43.2 on 5 degrees of freedom); 10,300 would still pass (p ≈ 0.055).
        let mut counts = vec![9_880u64; 6];
        counts[0] = 10_600;
        let srm = srm_check(&counts, &[1.0 / 6.0; 6]);
        assert!(srm.checkable && srm.mismatch, "{srm:?}");
        // Twelve units in six arms: too few for the test, whatever the counts.
        let few = srm_check(&[12, 0, 0, 0, 0, 0], &[1.0 / 6.0; 6]);
        assert!(!few.checkable && !few.mismatch, "{few:?}");
        assert!(few.p_value < SRM_ALPHA);
    }

    #[test]
    fn uneven_shares_get_their_slices() {
        let arms = vec![("control".to_string(), 3.0), ("treatment".to_string(), 1.0)];
        let ids: Vec<String> = (0..40_000).map(|i| i.to_string()).collect();
        let a = assign(ids.iter().map(String::as_str), "x", "customer", &arms);
        assert!((a.arms[0].share - 0.75).abs() < 0.01, "{a:?}");
        assert!((a.arms[0].expected_share - 0.75).abs() < 1e-12);
        assert!(!a.srm.mismatch);
        assert_eq!(arm("x", "1", &[0.0, 0.0]), None);
        assert_eq!(arm("x", "1", &[0.0, 2.0]), Some(1));
    }

    #[test]
    fn chi_square_p_values_match_the_tables() {
        // χ²(1) at 3.841: 0.05; χ²(5) at 11.070: 0.05; χ²(5) at 20.515: 0.001.
        assert!((chi_square_survival(3.841_459, 1.0) - 0.05).abs() < 1e-5);
        assert!((chi_square_survival(11.070_5, 5.0) - 0.05).abs() < 1e-5);
        assert!((chi_square_survival(20.515_0, 5.0) - 0.001).abs() < 1e-5);
        assert!((chi_square_survival(2.0, 2.0) - (-1.0f64).exp()).abs() < 1e-12);
        assert_eq!(chi_square_survival(0.0, 3.0), 1.0);
    }
}
