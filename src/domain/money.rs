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
    #[error("amount is too large (the ceiling is 10^12 minor units)")]
    Overflow,
    #[error("amount is negative")]
    Negative,
    #[error(
        "a thousands separator must group exactly three digits ({mark} is this file's decimal mark)"
    )]
    Grouping { mark: DecimalMark },
    #[error("{currency} has {allowed} decimals, the amount has {written}")]
    TooManyDecimals {
        written: u32,
        allowed: u32,
        currency: Currency,
    },
    #[error("the amount is marked {written}, but the store's prices are in {currency}")]
    WrongCurrency { written: String, currency: Currency },
}

/// How a file writes the decimal point: `12.50` or `12,50`. Decided once per file from
/// its values (see the ingest), never guessed per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalMark {
    #[default]
    Point,
    Comma,
}

impl DecimalMark {
    pub fn char(self) -> char {
        match self {
            DecimalMark::Point => '.',
            DecimalMark::Comma => ',',
        }
    }

    /// The separators that may group thousands beside this decimal mark.
    fn groups_with(self, c: char) -> bool {
        match c {
            ' ' | '\u{a0}' | '\u{202f}' | '_' | '\'' => true,
            ',' => self == DecimalMark::Point,
            '.' => self == DecimalMark::Comma,
            _ => false,
        }
    }
}

impl fmt::Display for DecimalMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.char())
    }
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

    /// Parses a decimal string written with a decimal point ("1,299.50", "24",
    /// "-3.5", "$19.99"): see [`Money::parse_in`].
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        Money::parse_in(text, currency, DecimalMark::Point)
    }

    /// Parses an amount exactly, at the currency's exponent: grouping separators only
    /// where they group three digits, no more decimals than the currency has, and a
    /// currency sign or code (`€12`, `12,50 EUR`) only if it is the store's currency.
    pub fn parse_in(text: &str, currency: Currency, mark: DecimalMark) -> Result<Self, MoneyError> {
        let amount = scan_amount(text, mark)?;
        if let Some(written) = amount.marked
            && !written.fits(currency)
        {
            return Err(MoneyError::WrongCurrency {
                written: written.to_string(),
                currency,
            });
        }
        let allowed = currency.exponent();
        if amount.decimals > allowed {
            return Err(MoneyError::TooManyDecimals {
                written: amount.decimals,
                allowed,
                currency,
            });
        }
        let minor = micros_to_minor(amount.micros, 1, allowed)?;
        if minor.abs() > MAX_MINOR {
            return Err(MoneyError::Overflow);
        }
        Ok(Money::new(minor, currency))
    }

    /// [`Money::parse`] for an amount that may not be below zero (a price, a cost): a
    /// negative one, whether its sign stands before or after its currency (`-3.00`,
    /// `-$3.00`, `$-3.00`, `USD -3`), is refused as [`MoneyError::Negative`], so callers
    /// tell it apart from an unreadable one by its variant.
    pub fn parse_non_negative(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let money = Money::parse(text, currency)?;
        if money.minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(money)
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

/// The largest amount an input may state, in minor units (10¹², e.g. ten billion
/// dollars): far above any price, and low enough that a line's quantity × price
/// (quantities are bounded at ingest) cannot overflow.
pub const MAX_MINOR: i64 = 1_000_000_000_000;

/// Millionths of a unit: six decimal places is enough for every price any export
/// writes, and leaves room to take exact medians before rounding to minor units.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// Parses a decimal amount into millionths of a unit, exactly, written with a decimal
/// point. Further digits than six are rounded half away from zero; a currency sign is
/// allowed but not checked. For derived prices (medians) that may fall between minor
/// units: merchants' prices go through [`Money::parse_in`].
pub fn parse_decimal_micros(text: &str) -> Result<i64, MoneyError> {
    parse_micros_in(text, DecimalMark::Point)
}

/// Whether an amount is written with a minus sign, where [`Money::parse`] reads one:
/// before the amount or after its currency sign or code (`-3`, `-$3.00`, `$-3.00`,
/// `USD -3`). For a reader that must refuse a negative amount before it can parse it
/// (an order's currency may come on a later row); `-0` counts, as it is written so.
pub fn is_written_negative(text: &str) -> bool {
    let (negative, t) = split_sign(text.trim());
    negative || split_sign(strip_marker(t).1).0
}

/// [`parse_decimal_micros`] for a file that writes decimals with `mark`.
pub fn parse_micros_in(text: &str, mark: DecimalMark) -> Result<i64, MoneyError> {
    scan_amount(text, mark).map(|a| a.micros)
}

/// The decimal mark an amount shows, when it shows one: `12,50` and `1.234,56` are
/// written with a comma, `12.50` and `1,234.56` with a point; `1,234`, `1.234` and
/// `12` tell nothing.
pub fn decimal_mark_evidence(text: &str) -> Option<DecimalMark> {
    let t = text.trim();
    let (_, t) = split_sign(t);
    let (_, t) = strip_marker(t);
    let (_, t) = split_sign(t);
    let last_point = t.rfind('.');
    let last_comma = t.rfind(',');
    let (c, at) = match (last_point, last_comma) {
        (Some(p), Some(c)) => {
            return Some(if p > c {
                DecimalMark::Point
            } else {
                DecimalMark::Comma
            });
        }
        (Some(p), None) => ('.', p),
        (None, Some(c)) => (',', c),
        (None, None) => return None,
    };
    let as_mark = if c == '.' {
        DecimalMark::Point
    } else {
        DecimalMark::Comma
    };
    let other = if c == '.' {
        DecimalMark::Comma
    } else {
        DecimalMark::Point
    };
    if t.matches(c).count() > 1 {
        return Some(other);
    }
    let before = t[..at].chars().filter(char::is_ascii_digit).count();
    let after = t[at + 1..].chars().filter(char::is_ascii_digit).count();
    if after == 3 && (1..=3).contains(&before) {
        None
    } else {
        Some(as_mark)
    }
}

/// A currency as an amount may mark it: a sign (`$`, `€`) or an ISO code (`EUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marked {
    Sign(char),
    Code(Currency),
}

impl Marked {
    fn fits(self, currency: Currency) -> bool {
        match self {
            Marked::Code(c) => c == currency,
            Marked::Sign(sign) => {
                let codes: &[&str] = match sign {
                    '$' => &[
                        "USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "TWD", "ARS", "CLP",
                        "COP", "BRL", "FJD", "JMD", "TTD", "BSD", "BBD", "BZD", "LRD", "NAD",
                        "SBD", "SRD", "XCD", "KYD", "GYD", "BMD", "UYU",
                    ],
                    '£' => &["GBP", "GIP", "FKP", "SHP", "EGP", "LBP", "SYP"],
                    '€' => &["EUR"],
                    '¥' | '￥' => &["JPY", "CNY"],
                    '₹' => &["INR"],
                    '₩' => &["KRW"],
                    '₽' => &["RUB"],
                    '₺' => &["TRY"],
                    '₪' => &["ILS"],
                    '₫' => &["VND"],
                    '₱' => &["PHP"],
                    '฿' => &["THB"],
                    '₴' => &["UAH"],
                    '₦' => &["NGN"],
                    _ => &[],
                };
                codes.contains(&currency.code())
            }
        }
    }
}

impl fmt::Display for Marked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marked::Sign(c) => write!(f, "{c}"),
            Marked::Code(c) => write!(f, "{c}"),
        }
    }
}

const SIGNS: &[char] = &[
    '$', '£', '€', '¥', '￥', '₹', '₩', '₽', '₺', '₪', '₫', '₱', '฿', '₴', '₦',
];

/// An amount as written: its value, how many decimals it wrote, and the currency it
/// marks, if any.
struct Scanned {
    micros: i64,
    decimals: u32,
    marked: Option<Marked>,
}

/// Strips a currency sign or code from either end of `t` (with the spaces around it).
fn strip_marker(t: &str) -> (Option<Marked>, &str) {
    if let Some(rest) = t.strip_prefix(SIGNS) {
        let sign = t.chars().next().unwrap_or('$');
        return (Some(Marked::Sign(sign)), rest.trim_start());
    }
    if let Some(rest) = t.strip_suffix(SIGNS) {
        let sign = t.chars().last().unwrap_or('$');
        return (Some(Marked::Sign(sign)), rest.trim_end());
    }
    let code_at = |s: &str| -> Option<Currency> {
        (s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()))
            .then(|| Currency::parse(s).ok())
            .flatten()
    };
    if let Some((head, rest)) = t.split_once(' ')
        && let Some(c) = code_at(head)
    {
        return (Some(Marked::Code(c)), rest.trim_start());
    }
    if let Some((rest, tail)) = t.rsplit_once(' ')
        && let Some(c) = code_at(tail)
    {
        return (Some(Marked::Code(c)), rest.trim_end());
    }
    (None, t)
}

/// Reads `[sign][marker][sign]digits[groups][mark decimals][marker]` exactly.
fn scan_amount(text: &str, mark: DecimalMark) -> Result<Scanned, MoneyError> {
    let t = text.trim();
    let (negative, t) = split_sign(t);
    let (marked, t) = strip_marker(t);
    let (negative, t) = if negative { (true, t) } else { split_sign(t) };
    let (int_text, frac_text) = match t.split_once(mark.char()) {
        Some((i, f)) => (i, Some(f)),
        None => (t, None),
    };
    // The integer part: digits, optionally grouped in threes by one separator.
    let mut int_part: i64 = 0;
    let mut digits = 0usize;
    let mut group_len = 0usize;
    let mut separator: Option<char> = None;
    let mut first_group = true;
    for c in int_text.chars() {
        if let Some(d) = c.to_digit(10) {
            int_part = int_part
                .checked_mul(10)
                .and_then(|v| v.checked_add(i64::from(d)))
                .ok_or(MoneyError::Overflow)?;
            digits += 1;
            group_len += 1;
        } else if mark.groups_with(c) && separator.is_none_or(|s| s == c) {
            let fits = if first_group {
                (1..=3).contains(&group_len)
            } else {
                group_len == 3
            };
            if !fits {
                return Err(MoneyError::Grouping { mark });
            }
            separator = Some(c);
            first_group = false;
            group_len = 0;
        } else if c == '.' || c == ',' {
            return Err(MoneyError::Grouping { mark });
        } else {
            return Err(MoneyError::NotANumber);
        }
    }
    if separator.is_some() && group_len != 3 {
        return Err(MoneyError::Grouping { mark });
    }
    let mut frac: i64 = 0;
    let mut decimals = 0u32;
    let mut round_up = false;
    if let Some(f) = frac_text {
        for c in f.chars() {
            let Some(d) = c.to_digit(10) else {
                return Err(if c == '.' || c == ',' {
                    MoneyError::Grouping { mark }
                } else {
                    MoneyError::NotANumber
                });
            };
            if decimals < 6 {
                frac = frac * 10 + i64::from(d);
            } else if decimals == 6 {
                round_up = d >= 5;
            }
            decimals += 1;
        }
    }
    if int_part > MAX_MINOR {
        return Err(MoneyError::Overflow);
    }
    if digits == 0 && decimals == 0 {
        return Err(MoneyError::NotANumber);
    }
    let kept = decimals.min(6);
    let frac_micros = frac * 10i64.pow(6 - kept) + i64::from(round_up);
    let micros = int_part
        .checked_mul(MICROS_PER_UNIT)
        .and_then(|v| v.checked_add(frac_micros))
        .ok_or(MoneyError::Overflow)?;
    Ok(Scanned {
        micros: if negative { -micros } else { micros },
        decimals,
        marked,
    })
}

fn split_sign(t: &str) -> (bool, &str) {
    match t.as_bytes().first() {
        Some(b'-') => (true, t[1..].trim_start()),
        Some(b'+') => (false, t[1..].trim_start()),
        _ => (false, t),
    }
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
            Money::parse("1.234", Currency::parse("KWD").unwrap())
                .unwrap()
                .minor,
            1234
        );
    }

    #[test]
    fn a_negative_amount_is_refused_by_its_own_variant() {
        let usd = |t: &str| Money::parse_non_negative(t, Currency::USD).map(|m| m.minor);
        assert_eq!(usd("3.50"), Ok(350));
        assert_eq!(usd("-0"), Ok(0));
        assert_eq!(usd("-3.5"), Err(MoneyError::Negative));
        assert_eq!(usd("abc"), Err(MoneyError::NotANumber));
    }

    #[test]
    fn a_sign_after_the_currency_is_as_negative_as_one_before_it() {
        let usd = |t: &str| Money::parse_non_negative(t, Currency::USD).map(|m| m.minor);
        for text in [
            "-3.00", "$-3.00", "-$3.00", "$ -3", "USD -3", "-3 USD", "-USD 3", "- 3.00", "+-3",
        ] {
            assert_eq!(usd(text), Err(MoneyError::Negative), "{text}");
            assert_eq!(
                Money::parse(text, Currency::USD).map(|m| m.minor),
                Ok(-300),
                "{text}"
            );
            assert!(is_written_negative(text), "{text}");
        }
        // Every form accepted before still is.
        for (text, minor) in [
            ("3.00", 300),
            ("$3.00", 300),
            ("3.00 $", 300),
            ("USD 3", 300),
            ("3 USD", 300),
            ("+3", 300),
            ("$+3", 300),
            ("+$3", 300),
            ("1,234.50", 123_450),
        ] {
            assert_eq!(usd(text), Ok(minor), "{text}");
            assert!(!is_written_negative(text), "{text}");
        }
        // Written negative, though it is worth nothing; unreadable signs stay unreadable.
        assert!(is_written_negative("-0"));
        for bad in ["3.00-", "USD-3", "--3", "$--3"] {
            assert!(
                matches!(usd(bad), Err(MoneyError::NotANumber)),
                "{bad}: {:?}",
                usd(bad)
            );
        }
    }

    #[test]
    fn extra_digits_round_half_away_from_zero() {
        assert_eq!(micros_to_minor(125_000, 1, 2).unwrap(), 13);
        assert_eq!(micros_to_minor(124_000, 1, 2).unwrap(), 12);
        assert_eq!(micros_to_minor(-125_000, 1, 2).unwrap(), -13);
        // The mean of 1.25 and 1.30 is 1.275: half-up gives 1.28.
        let sum = parse_decimal_micros("1.25").unwrap() + parse_decimal_micros("1.30").unwrap();
        assert_eq!(micros_to_minor(sum, 2, 2).unwrap(), 128);
    }

    #[test]
    fn a_decimal_comma_file_reads_european_amounts() {
        let eur = |t: &str| Money::parse_in(t, Currency::EUR, DecimalMark::Comma).map(|m| m.minor);
        assert_eq!(eur("0,99"), Ok(99));
        assert_eq!(eur("12,50"), Ok(1250));
        assert_eq!(eur("1.234,56"), Ok(123_456));
        assert_eq!(eur("1 234,56 €"), Ok(123_456));
        assert_eq!(eur("EUR 3"), Ok(300));
        // In a comma file a point groups thousands, so it must group three digits.
        assert!(matches!(eur("12.50"), Err(MoneyError::Grouping { .. })));
    }

    #[test]
    fn an_amount_shows_its_decimal_mark_unless_it_is_ambiguous() {
        use DecimalMark::{Comma, Point};
        for (text, mark) in [
            ("12,50", Some(Comma)),
            ("0,99", Some(Comma)),
            ("1.234,56", Some(Comma)),
            ("1.234.567", Some(Comma)),
            ("€ 2,5", Some(Comma)),
            ("12.50", Some(Point)),
            ("1,234.56", Some(Point)),
            ("1,234,567", Some(Point)),
            ("1234.567", Some(Point)),
            ("1,234", None),
            ("1.234", None),
            ("12", None),
        ] {
            assert_eq!(decimal_mark_evidence(text), mark, "{text}");
        }
    }

    #[test]
    fn grouping_is_only_accepted_in_threes() {
        let usd = |t: &str| Money::parse(t, Currency::USD).map(|m| m.minor);
        assert_eq!(usd("1,234"), Ok(123_400));
        assert_eq!(usd("1,234,567.89"), Ok(123_456_789));
        assert_eq!(usd("12 345.00"), Ok(1_234_500));
        for bad in [
            "0,99", "12,50", "1,23,456", "1234,567", "1,2345", "1.234,56", ",5",
        ] {
            assert!(
                matches!(usd(bad), Err(MoneyError::Grouping { .. })),
                "{bad}: {:?}",
                usd(bad)
            );
        }
    }

    #[test]
    fn more_decimals_than_the_currency_has_are_refused() {
        let err = Money::parse("12.345", Currency::USD).unwrap_err();
        assert_eq!(err.to_string(), "USD has 2 decimals, the amount has 3");
        assert!(Money::parse("1200.5", Currency::parse("JPY").unwrap()).is_err());
        // Micros (derived medians) keep them.
        assert_eq!(parse_decimal_micros("0.001"), Ok(1000));
    }

    #[test]
    fn a_currency_sign_must_be_the_stores() {
        assert_eq!(Money::parse("$5.00", Currency::USD).unwrap().minor, 500);
        assert_eq!(Money::parse("CA$5.00", Currency::USD).ok(), None);
        for (text, currency) in [
            ("€12", Currency::USD),
            ("¥500", Currency::USD),
            ("12.00 EUR", Currency::USD),
            ("$3", Currency::EUR),
        ] {
            let err = Money::parse(text, currency).unwrap_err();
            assert!(
                matches!(err, MoneyError::WrongCurrency { .. }),
                "{text}: {err}"
            );
        }
        assert_eq!(
            Money::parse("€12", Currency::USD).unwrap_err().to_string(),
            "the amount is marked €, but the store's prices are in USD"
        );
        assert_eq!(Money::parse("£2.55", Currency::GBP).unwrap().minor, 255);
        assert_eq!(Money::parse("-$3.50", Currency::USD).unwrap().minor, -350);
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
