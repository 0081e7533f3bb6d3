//! Thresholds as exact decimals, so that boundaries match arules and Borgelt's tools:
//! an itemset is frequent iff `count ≥ ⌈minsup × N⌉`, and a rule passes iff
//! `count(X ∪ Y) ≥ minconf × count(X)`, both compared on integers (16/20 is 0.8).

use std::fmt;
use std::str::FromStr;

/// A decimal in [0, 1] held exactly as `num / den` with `den` a power of ten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    num: u64,
    den: u64,
}

impl Fraction {
    pub const ONE: Fraction = Fraction { num: 1, den: 1 };

    pub fn new(num: u64, den: u64) -> Option<Fraction> {
        (den > 0 && num <= den).then_some(Fraction { num, den })
    }

    /// `⌈self × n⌉`, exactly.
    pub fn ceil_times(&self, n: u64) -> u64 {
        let product = u128::from(self.num) * u128::from(n);
        let den = u128::from(self.den);
        product.div_ceil(den) as u64
    }

    /// Whether `part / whole ≥ self`, exactly.
    pub fn at_most_ratio(&self, part: u64, whole: u64) -> bool {
        u128::from(part) * u128::from(self.den) >= u128::from(self.num) * u128::from(whole)
    }

    pub fn as_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// From a configured float: its shortest decimal form is what the user wrote.
    pub fn from_f64(value: f64) -> Result<Fraction, ThresholdError> {
        format!("{value}").parse()
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = self.den.ilog10() as usize;
        if scale == 0 {
            return write!(f, "{}", self.num);
        }
        let whole = self.num / self.den;
        let frac = format!("{:0scale$}", self.num % self.den);
        write!(f, "{whole}.{}", frac.trim_end_matches('0'))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{value:?} is not {expected}")]
pub struct ThresholdError {
    value: String,
    expected: &'static str,
}

const FRACTION: &str = "a decimal fraction between 0 and 1 (such as 0.001)";

impl FromStr for Fraction {
    type Err = ThresholdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ThresholdError {
            value: s.to_owned(),
            expected: FRACTION,
        };
        let t = s.trim();
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
            return Err(err());
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > 18 {
            return Err(err());
        }
        let den = 10u64.pow(frac.len() as u32);
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| err())?
        };
        let part: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| err())?
        };
        let num = whole
            .checked_mul(den)
            .and_then(|w| w.checked_add(part))
            .ok_or_else(err)?;
        Fraction::new(num, den).ok_or_else(err)
    }
}

/// Minimum support: a fraction of the baskets, or an absolute count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinSupport {
    Fraction(Fraction),
    Count(u64),
}

impl MinSupport {
    /// The smallest count a frequent itemset has among `n` baskets (at least 1).
    pub fn min_count(&self, n: u64) -> u64 {
        match self {
            MinSupport::Fraction(f) => f.ceil_times(n).max(1),
            MinSupport::Count(c) => (*c).max(1),
        }
    }
}

impl fmt::Display for MinSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MinSupport::Fraction(x) => x.fmt(f),
            MinSupport::Count(c) => write!(f, "{c}"),
        }
    }
}

impl FromStr for MinSupport {
    type Err = ThresholdError;

    /// A whole number is a count ("40"); anything with a decimal point is a fraction
    /// ("0.002", "1.0" = every basket).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
        if t.strip_prefix('-').is_some_and(digits) {
            return Err(ThresholdError {
                value: s.to_owned(),
                expected: "a count of at least 1 or a fraction such as 0.001",
            });
        }
        if digits(t) {
            return match t.parse::<u64>() {
                Ok(c) if c > 0 => Ok(MinSupport::Count(c)),
                _ => Err(ThresholdError {
                    value: s.to_owned(),
                    expected: "a count of at least 1 or a fraction such as 0.001",
                }),
            };
        }
        let f: Fraction = t.parse()?;
        if f.num == 0 {
            return Err(ThresholdError {
                value: s.to_owned(),
                expected: "a support above 0",
            });
        }
        Ok(MinSupport::Fraction(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_count_rounds_up_exactly() {
        let s: MinSupport = "0.001".parse().unwrap();
        assert_eq!(s.min_count(88_162), 89);
        assert_eq!(s.min_count(9_835), 10);
        // 0.01 × 19,800 is exactly 198: no rounding up past an exact product.
        assert_eq!("0.01".parse::<MinSupport>().unwrap().min_count(19_800), 198);
        assert_eq!(
            "0.0002".parse::<MinSupport>().unwrap().min_count(88_162),
            18
        );
        assert_eq!("40".parse::<MinSupport>().unwrap().min_count(19_773), 40);
        assert_eq!("1.0".parse::<MinSupport>().unwrap().min_count(7), 7);
    }

    #[test]
    fn confidence_compares_integers() {
        let c: Fraction = "0.8".parse().unwrap();
        assert!(c.at_most_ratio(16, 20));
        assert!(!c.at_most_ratio(15, 19));
        let c: Fraction = "0.3333".parse().unwrap();
        assert!(c.at_most_ratio(1, 3));
    }

    #[test]
    fn bad_thresholds_are_refused() {
        for bad in ["", ".", "-0.1", "1.5", "abc", "0", "1e-3", "0.0"] {
            assert!(bad.parse::<MinSupport>().is_err(), "{bad}");
        }
        assert!("1.01".parse::<Fraction>().is_err());
    }

    #[test]
    fn fractions_print_as_written() {
        for s in ["0.001", "0.5", "1", "0.0002"] {
            assert_eq!(s.parse::<Fraction>().unwrap().to_string(), s);
        }
        assert_eq!(Fraction::from_f64(0.005).unwrap().to_string(), "0.005");
    }
}
