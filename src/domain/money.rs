//! Money as integer minor units plus an ISO 4217 currency.
//!
//! Prices never pass through `f64`: merchant exports write decimals ("24.99"), which are
//! parsed digit by digit into minor units (cents) at the currency's exponent. Where more
//! digits arrive than the currency has (UCI prices are medians that can fall between
//! pennies), rounding is explicit: half away from zero.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code, upper-case, three ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// Why a currency code or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a currency code (three letters, e.g. USD)")]
    BadCurrency,
    #[error("not a decimal amount")]
    NotANumber,
    #[error("amount is too large")]
    Overflow,
    #[error("amount is negative")]
    Negative,
}

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const GBP: Currency = Currency(*b"GBP");
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses a code case-insensitively ("usd" → USD).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let code = code.trim().as_bytes();
        if code.len() != 3 || !code.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::BadCurrency);
        }
        Ok(Currency([
            code[0].to_ascii_uppercase(),
            code[1].to_ascii_uppercase(),
            code[2].to_ascii_uppercase(),
        ]))
    }

    pub fn code(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (ISO 4217 minor unit).
    pub fn exponent(&self) -> u32 {
        match &self.0 {
            b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG"
            | b"RWF" | b"UGX" | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
            b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Parses a decimal string ("1,299.50", "24", "-3.5", "$19.99") at the currency's
    /// exponent, rounding extra digits half away from zero.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let micros = parse_decimal_micros(text)?;
        Ok(Money::new(
            micros_to_minor(micros, 1, currency.exponent())?,
            currency,
        ))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let scale = 10u64.pow(exp);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency,
            width = exp as usize
        )
    }
}

/// Millionths of a unit: six decimal places is enough for every price any export
/// writes, and leaves room to take exact medians before rounding to minor units.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// Parses a decimal amount into millionths of a unit, exactly. Accepts an optional sign,
/// a leading currency symbol, thousands separators (",", "_", spaces) and up to six
/// decimals (further digits are rounded half away from zero).
pub fn parse_decimal_micros(text: &str) -> Result<i64, MoneyError> {
    let t = text.trim();
    let t = t.trim_start_matches(['$', '£', '€', '¥']);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let t = t.trim_start_matches(['$', '£', '€', '¥']);
    let mut int_part: i64 = 0;
    let mut frac: i64 = 0;
    let mut frac_digits = 0u32;
    let mut round_up = false;
    let mut seen_digit = false;
    let mut in_frac = false;
    for b in t.bytes() {
        match b {
            b'0'..=b'9' => {
                seen_digit = true;
                let d = i64::from(b - b'0');
                if in_frac {
                    if frac_digits < 6 {
                        frac = frac * 10 + d;
                        frac_digits += 1;
                    } else if frac_digits == 6 {
                        round_up = d >= 5;
                        frac_digits += 1;
                    }
                } else {
                    int_part = int_part
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(d))
                        .ok_or(MoneyError::Overflow)?;
                }
            }
            b'.' if !in_frac => in_frac = true,
            b',' | b'_' | b' ' if !in_frac => {}
            _ => return Err(MoneyError::NotANumber),
        }
    }
    if !seen_digit {
        return Err(MoneyError::NotANumber);
    }
    let frac_digits = frac_digits.min(6);
    let frac_micros = frac * 10i64.pow(6 - frac_digits) + i64::from(round_up);
    let micros = int_part
        .checked_mul(MICROS_PER_UNIT)
        .and_then(|v| v.checked_add(frac_micros))
        .ok_or(MoneyError::Overflow)?;
    Ok(if negative { -micros } else { micros })
}

/// Converts `micros / divisor` to minor units at `exponent`, rounding half away from
/// zero. The divisor lets a caller round an exact mean (sum of two, divisor 2).
pub fn micros_to_minor(micros: i64, divisor: i64, exponent: u32) -> Result<i64, MoneyError> {
    let per_minor = MICROS_PER_UNIT / 10i64.pow(exponent.min(6));
    let denom = i128::from(per_minor) * i128::from(divisor.max(1));
    let n = i128::from(micros);
    let q = (n.abs() * 2 + denom) / (denom * 2);
    let q = if n < 0 { -q } else { q };
    i64::try_from(q).map_err(|_| MoneyError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_into_minor_units() {
        assert_eq!(Money::parse("24.99", Currency::USD).unwrap().minor, 2499);
        assert_eq!(Money::parse("24", Currency::USD).unwrap().minor, 2400);
        assert_eq!(Money::parse("0.1", Currency::USD).unwrap().minor, 10);
        assert_eq!(
            Money::parse("1,299.50", Currency::USD).unwrap().minor,
            129_950
        );
        assert_eq!(Money::parse("$5.00", Currency::USD).unwrap().minor, 500);
        assert_eq!(Money::parse("-3.5", Currency::USD).unwrap().minor, -350);
        assert_eq!(
            Money::parse("1200", Currency::parse("jpy").unwrap())
                .unwrap()
                .minor,
            1200
        );
        assert_eq!(
            Money::parse("1.2345", Currency::parse("KWD").unwrap())
                .unwrap()
                .minor,
            1235
        );
    }

    #[test]
    fn extra_digits_round_half_away_from_zero() {
        assert_eq!(Money::parse("0.125", Currency::GBP).unwrap().minor, 13);
        assert_eq!(Money::parse("0.124", Currency::GBP).unwrap().minor, 12);
        assert_eq!(Money::parse("-0.125", Currency::GBP).unwrap().minor, -13);
        // The mean of 1.25 and 1.30 is 1.275: half-up gives 1.28.
        let sum = parse_decimal_micros("1.25").unwrap() + parse_decimal_micros("1.30").unwrap();
        assert_eq!(micros_to_minor(sum, 2, 2).unwrap(), 128);
    }

    #[test]
    fn garbage_is_refused_not_guessed() {
        for bad in ["", "abc", "1.2.3", "12a", "--1", "."] {
            assert!(Money::parse(bad, Currency::USD).is_err(), "{bad}");
        }
        assert!(Money::parse("99999999999999999999", Currency::USD).is_err());
    }

    #[test]
    fn currency_codes_are_validated_and_upper_cased() {
        assert_eq!(Currency::parse("gbp").unwrap(), Currency::GBP);
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U5D").is_err());
        assert_eq!(Money::new(-1205, Currency::EUR).to_string(), "-12.05 EUR");
    }
}
