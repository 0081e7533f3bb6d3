//! Timestamps as exports write them. Everything becomes a UTC instant; a timestamp
//! without an offset is taken as UTC (Online Retail's are UK local time, which is
//! within an hour of it and never crosses a day boundary that matters here).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// Years an order or a launch may be dated in: outside them a date is a typo or a
/// placeholder (`9999-12-31`, `0000-01-01`) that would move every window.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=2100;

/// The forms [`parse_datetime`] reads, for error messages.
pub const ACCEPTED: &str = "accepted: 2024-03-05 14:22:10, 2024-03-05T14:22:10Z (RFC 3339, \
     any offset), 2024-03-05 14:22:10 -0500, 2024-03-05, 3/5/2024 14:22 (month or day first, \
     decided per file), 5.3.2024 (day first)";

/// Which comes first in a date written `a/b/yyyy`: decided once per file from its
/// values (a first number over 12 is a day), month first when nothing tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    #[default]
    MonthFirst,
    DayFirst,
}

/// [`parse_datetime`] with the reason a value is refused: not a date in an accepted
/// form (they are listed), or a year outside [`YEARS`].
pub fn parse_checked(raw: &str) -> Result<DateTime<Utc>, String> {
    parse_checked_in(raw, DateOrder::MonthFirst)
}

/// [`parse_checked`] for a file whose slash dates are in `order`.
pub fn parse_checked_in(raw: &str, order: DateOrder) -> Result<DateTime<Utc>, String> {
    let Some(t) = parse_datetime_in(raw, order) else {
        let order_note = match order {
            DateOrder::MonthFirst => "this file's slash dates are month first",
            DateOrder::DayFirst => "this file's slash dates are day first",
        };
        return Err(format!("not a date and time ({ACCEPTED}; {order_note})"));
    };
    let year = chrono::Datelike::year(&t);
    if !YEARS.contains(&year) {
        return Err(format!(
            "the year {year} is outside {}–{}",
            YEARS.start(),
            YEARS.end()
        ));
    }
    Ok(t)
}

/// The order a date value shows, when it shows one: `13/1/2024` is day first,
/// `1/13/2024` month first, `1/3/2024` and ISO dates tell nothing.
pub fn date_order_evidence(raw: &str) -> Option<DateOrder> {
    let s = raw.trim();
    let sep = s.find(['/', '.'])?;
    let mut parts = s.splitn(3, ['/', '.']);
    let a: u32 = parts.next()?.trim().parse().ok()?;
    let b: u32 = parts.next()?.trim().parse().ok()?;
    if sep > 2 {
        return None;
    }
    match (a > 12, b > 12) {
        (true, false) if a <= 31 => Some(DateOrder::DayFirst),
        (false, true) if b <= 31 => Some(DateOrder::MonthFirst),
        _ => None,
    }
}

/// Whether a value is written `a/b/yyyy` (the form whose order a file must decide).
pub fn is_slash_date(raw: &str) -> bool {
    let s = raw.trim();
    s.find(['/', '.']).is_some_and(|i| (1..=2).contains(&i))
        && s.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Parses with slash dates month first: see [`parse_datetime_in`].
pub fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    parse_datetime_in(raw, DateOrder::MonthFirst)
}

/// Parses `2011-12-09 12:50:00`, `2024-03-05 14:22:10 -0500`, RFC 3339
/// (`2024-03-05T14:22:10-05:00`, `…Z`, fractional seconds), `2024-03-05T14:22:10`,
/// `2024-03-05`, the spreadsheet form `12/9/2011 12:50` (in `order`), and the
/// European `9.12.2011` (day first).
pub fn parse_datetime_in(raw: &str, order: DateOrder) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if let Some(t) = fast_iso(s.as_bytes()) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%d %H:%M %z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::<FixedOffset>::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let slash: [&str; 3] = match order {
        DateOrder::MonthFirst => ["%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y"],
        DateOrder::DayFirst => ["%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y"],
    };
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        slash[0],
        slash[1],
        "%d.%m.%Y %H:%M",
        "%d.%m.%Y %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    for fmt in ["%Y-%m-%d", slash[2], "%d.%m.%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)));
        }
    }
    None
}

/// `YYYY-MM-DD HH:MM:SS` exactly: the common case, without chrono's format machinery.
fn fast_iso(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(Utc.from_utc_datetime(&date.and_time(time)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_years_are_refused_with_the_reason() {
        for raw in ["9999-12-31", "0000-01-01 00:00:00", "1900-05-05"] {
            let err = parse_checked(raw).unwrap_err();
            assert!(err.contains("outside 1970–2100"), "{raw}: {err}");
        }
        let err = parse_checked("yesterday").unwrap_err();
        assert!(err.contains("accepted: 2024-03-05 14:22:10"), "{err}");
        assert!(parse_checked("2024-03-05").is_ok());
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn export_formats_parse_to_utc_instants() {
        assert_eq!(
            parse_datetime("2011-12-09 12:50:00"),
            Some(utc("2011-12-09T12:50:00Z"))
        );
        assert_eq!(
            parse_datetime("2024-03-05 14:22:10 -0500"),
            Some(utc("2024-03-05T19:22:10Z"))
        );
        assert_eq!(
            parse_datetime("2024-03-05T14:22:10-05:00"),
            Some(utc("2024-03-05T19:22:10Z"))
        );
        assert_eq!(
            parse_datetime("2024-03-05T14:22:10.123Z").map(|t| t.timestamp()),
            Some(utc("2024-03-05T14:22:10Z").timestamp())
        );
        assert_eq!(
            parse_datetime("2024-03-05"),
            Some(utc("2024-03-05T00:00:00Z"))
        );
        assert_eq!(
            parse_datetime("12/9/2011 12:50"),
            Some(utc("2011-12-09T12:50:00Z"))
        );
    }

    #[test]
    fn slash_dates_follow_the_files_order() {
        let day_first = parse_datetime_in("01/03/2025", DateOrder::DayFirst);
        assert_eq!(day_first, Some(utc("2025-03-01T00:00:00Z")));
        assert_eq!(
            parse_datetime_in("13/01/2025 10:00", DateOrder::DayFirst),
            Some(utc("2025-01-13T10:00:00Z"))
        );
        assert_eq!(parse_datetime_in("13/01/2025", DateOrder::MonthFirst), None);
        assert_eq!(
            parse_datetime_in("5.3.2024", DateOrder::MonthFirst),
            Some(utc("2024-03-05T00:00:00Z"))
        );
        assert_eq!(date_order_evidence("13/01/2025"), Some(DateOrder::DayFirst));
        assert_eq!(
            date_order_evidence("1/13/2025 8:00"),
            Some(DateOrder::MonthFirst)
        );
        assert_eq!(date_order_evidence("01/03/2025"), None);
        assert_eq!(date_order_evidence("2025-01-13"), None);
        let err = parse_checked_in("13/01/2025", DateOrder::MonthFirst).unwrap_err();
        assert!(err.contains("month first"), "{err}");
    }

    #[test]
    fn impossible_dates_are_refused() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01 00:00:00",
            "2024-02-30",
            "2024-01-01 25:00:00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }
}
