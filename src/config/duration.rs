//! Durations written with units: "500ms", "5s", "20m", "8h", "1h30m".
//!
//! A bare number is rejected on purpose: "30" could mean seconds or
//! milliseconds, and guessing wrong makes a timer 1000 times off.

use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("is empty")]
    Empty,
    #[error("{0:?} has no unit")]
    MissingUnit(String),
    #[error("{0:?} has an unknown unit {1:?} (use ms, s, m or h)")]
    UnknownUnit(String, String),
    #[error("{0:?} is not a whole number with a unit")]
    Malformed(String),
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Parse one or more `<digits><unit>` parts, units ms, s, m, h, largest
/// first by convention ("1h30m"), though any order adds up the same.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = || DurationError::Malformed(s.to_string());
    let overflow = || DurationError::Overflow(s.to_string());
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if num_len == 0 {
            return Err(malformed());
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(if after.is_empty() {
                DurationError::MissingUnit(s.to_string())
            } else {
                malformed()
            });
        }
        let value: u64 = num.parse().map_err(|_| overflow())?;
        let ms_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            other => return Err(DurationError::UnknownUnit(s.to_string(), other.to_string())),
        };
        let part = value.checked_mul(ms_per_unit).ok_or_else(overflow)?;
        total_ms = total_ms.checked_add(part).ok_or_else(overflow)?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

/// The shortest unit string that `parse_duration` reads back to `d`
/// (millisecond precision), for messages and for writing config back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn combinations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1m500ms"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse_duration("2h0m5s"), Ok(Duration::from_secs(7205)));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("30"),
            Err(DurationError::MissingUnit("30".into()))
        );
        assert_eq!(
            parse_duration("5 s"),
            Err(DurationError::Malformed("5 s".into()))
        );
        assert_eq!(
            parse_duration("5sec"),
            Err(DurationError::UnknownUnit("5sec".into(), "sec".into()))
        );
        assert_eq!(
            parse_duration("1.5s"),
            Err(DurationError::Malformed("1.5s".into()))
        );
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::Malformed("-5s".into()))
        );
        assert_eq!(
            parse_duration("s"),
            Err(DurationError::Malformed("s".into()))
        );
        assert_eq!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow("99999999999999999999h".into()))
        );
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err(DurationError::Overflow("18446744073709551615h".into()))
        );
    }

    #[test]
    fn format_round_trips() {
        for s in ["500ms", "5s", "20m", "8h", "1h30m", "1m0s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(
            format_duration(Duration::from_millis(5_400_250)),
            "1h30m250ms"
        );
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
