//! E.164 phone numbers: one newtype, built only through normalisation.
//!
//! Callers and agents write numbers in many shapes ("+1-234-567-8910",
//! "001 234 567 8910", "(234) 567-8910"); tpswitch compares numbers, so every
//! number is normalised once, on entry, into `+<country code><national number>`.

use serde::{Serialize, Serializer};
use std::fmt;
use thiserror::Error;

/// ITU-T E.164 §6.1: an international number is at most 15 digits, country
/// code included.
pub const MAX_DIGITS: usize = 15;

/// E.164 sets no minimum length. The shortest international numbers in
/// service are 7 digits: a 3-digit country code plus a 4-digit subscriber
/// number (Niue +683, Tokelau +690). Anything shorter cannot be a complete
/// number, so it is almost certainly a typo or a truncated caller ID. Test
/// numbers such as +15550100000 (11 digits) are well above this.
pub const MIN_DIGITS: usize = 7;

/// The North American Numbering Plan (country code 1) always has a 10-digit
/// national number (3-digit area code + 7-digit subscriber number), so a
/// "+1" number has exactly 11 digits. Checking this catches most typos in
/// the most common deployment.
const NANP_DIGITS: usize = 11;

/// Why a text is not an E.164 number. Messages say what is wrong; the config
/// layer adds how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum E164Error {
    #[error("is empty")]
    Empty,
    #[error("contains {0:?}, which is not a digit or a separator")]
    InvalidChar(char),
    #[error("has '+' somewhere other than at the start")]
    MisplacedPlus,
    #[error("has too few digits ({0}; at least {MIN_DIGITS} including the country code)")]
    TooShort(usize),
    #[error("has too many digits ({0}; at most {MAX_DIGITS} including the country code)")]
    TooLong(usize),
    #[error("has {0} digits, but numbers in country code 1 (NANP) have exactly {NANP_DIGITS}")]
    NanpLength(usize),
    #[error("starts with country code 0, which does not exist")]
    ZeroCountryCode,
    #[error("is not a country code (1 to 3 digits, not starting with 0)")]
    BadCountryCode,
}

/// A country calling code (ITU-T E.164 §6.2.1): 1 to 3 digits, never
/// starting with 0. Used to normalise national-format numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(input: &str) -> Result<CountryCode, E164Error> {
        let s = input.trim().trim_start_matches('+');
        let ok = (1..=3).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_digit())
            && !s.starts_with('0');
        if ok {
            Ok(CountryCode(s.to_string()))
        } else {
            Err(E164Error::BadCountryCode)
        }
    }

    /// Country code 1 (North American Numbering Plan).
    pub fn nanp() -> CountryCode {
        CountryCode("1".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_nanp(&self) -> bool {
        self.0 == "1"
    }

    /// Whether national numbers of this country are written with a leading
    /// "0" trunk prefix that is not part of the international number.
    /// Italy (+39), San Marino (+378) and the Vatican (+379) keep the 0 in the
    /// international form (+39 06 ...), so it must not be dropped there.
    fn drops_trunk_zero(&self) -> bool {
        !matches!(self.0.as_str(), "1" | "39" | "378" | "379")
    }

    /// International call prefix dialled from this country: 011 in the NANP,
    /// 00 elsewhere (the prefix ITU-T recommends and most countries use; the
    /// few exceptions are out of scope until a deployment needs them).
    fn international_prefix(&self) -> &'static str {
        if self.is_nanp() {
            "011"
        } else {
            "00"
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A normalised E.164 number: '+' followed by 7 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// Normalise a number written in any common form.
    ///
    /// Accepted: "+1-234-567-8910", "+1 (234) 567.8910", "00" or (in the
    /// NANP) "011" international prefix, and national numbers, which get
    /// `default_cc` prepended after removing the national trunk prefix
    /// ("1" in the NANP, "0" elsewhere, except where the 0 is kept).
    pub fn parse(input: &str, default_cc: &CountryCode) -> Result<E164, E164Error> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(E164Error::Empty);
        }
        let mut plus = false;
        let mut digits = String::with_capacity(16);
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                '+' => return Err(E164Error::MisplacedPlus),
                ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
                other => return Err(E164Error::InvalidChar(other)),
            }
        }
        if digits.is_empty() {
            return Err(E164Error::Empty);
        }
        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            // "00" is the international prefix in most of the world; no
            // national number starts with 00, so this is unambiguous.
            rest.to_string()
        } else if let Some(rest) = digits.strip_prefix("011").filter(|_| default_cc.is_nanp()) {
            // NANP international prefix. Only in the NANP: elsewhere "011..."
            // is a national number (e.g. UK 0114 = Sheffield).
            rest.to_string()
        } else if default_cc.is_nanp() {
            // NANP long-distance form "1 NXX NXX XXXX": the leading 1 is the
            // trunk prefix, equal to the country code.
            match digits.strip_prefix('1') {
                Some(rest) if digits.len() == NANP_DIGITS => ["1", rest].concat(),
                _ => ["1", digits.as_str()].concat(),
            }
        } else {
            let national = match digits.strip_prefix('0') {
                Some(rest) if default_cc.drops_trunk_zero() => rest,
                _ => digits.as_str(),
            };
            [default_cc.as_str(), national].concat()
        };
        Self::check(international)
    }

    fn check(digits: String) -> Result<E164, E164Error> {
        if digits.starts_with('0') {
            return Err(E164Error::ZeroCountryCode);
        }
        let n = digits.len();
        if digits.starts_with('1') && n != NANP_DIGITS && (MIN_DIGITS..=MAX_DIGITS).contains(&n) {
            return Err(E164Error::NanpLength(n));
        }
        if n < MIN_DIGITS {
            return Err(E164Error::TooShort(n));
        }
        if n > MAX_DIGITS {
            return Err(E164Error::TooLong(n));
        }
        let mut number = digits;
        number.insert(0, '+');
        Ok(E164(number))
    }

    /// "+12345678910".
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "12345678910": the digits without '+'.
    pub fn digits(&self) -> &str {
        self.0.get(1..).unwrap_or("")
    }

    /// The number as dialled from inside `cc` (trunk.number_format =
    /// "national"): the national number with its trunk prefix ("2345678910"
    /// in the NANP, "02079460000" in the UK, "0612345678" in Italy), or, for a
    /// number in another country, the international prefix + digits
    /// ("011442079460000" from the NANP, "0012345678910" from elsewhere).
    pub fn national(&self, cc: &CountryCode) -> String {
        let digits = self.digits();
        match digits.strip_prefix(cc.as_str()) {
            Some(rest) if cc.is_nanp() => rest.to_string(),
            Some(rest) if cc.drops_trunk_zero() => format!("0{rest}"),
            Some(rest) => rest.to_string(),
            None => format!("{}{digits}", cc.international_prefix()),
        }
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        CountryCode::parse(s).unwrap()
    }
    fn p(s: &str) -> Result<String, E164Error> {
        E164::parse(s, &cc("1")).map(|n| n.as_str().to_string())
    }

    #[test]
    fn international_forms() {
        for s in [
            "+1-234-567-8910",
            "+1 (234) 567.8910",
            "+12345678910",
            "0012345678910",
            "01112345678910",
            "  +1 234 567 8910 ",
        ] {
            assert_eq!(p(s).as_deref(), Ok("+12345678910"), "{s}");
        }
    }

    #[test]
    fn nanp_national_forms() {
        assert_eq!(p("2345678910").as_deref(), Ok("+12345678910"));
        assert_eq!(p("(234) 567-8910").as_deref(), Ok("+12345678910"));
        assert_eq!(p("1-234-567-8910").as_deref(), Ok("+12345678910"));
        assert_eq!(p("+15550100000").as_deref(), Ok("+15550100000"));
    }

    #[test]
    fn uk_trunk_zero_dropped() {
        let uk = cc("44");
        let n = E164::parse("020 7946 0000", &uk).unwrap();
        assert_eq!(n.as_str(), "+442079460000");
        // 011 is a national (Sheffield) prefix in the UK, not the IDD.
        let n = E164::parse("0114 496 0000", &uk).unwrap();
        assert_eq!(n.as_str(), "+441144960000");
        assert_eq!(
            E164::parse("00 1 234 567 8910", &uk).unwrap().as_str(),
            "+12345678910"
        );
    }

    #[test]
    fn italy_keeps_zero() {
        let n = E164::parse("06 1234 5678", &cc("39")).unwrap();
        assert_eq!(n.as_str(), "+390612345678");
        assert_eq!(n.national(&cc("39")), "0612345678");
    }

    #[test]
    fn rejects() {
        assert_eq!(p(""), Err(E164Error::Empty));
        assert_eq!(p(" - "), Err(E164Error::Empty));
        assert_eq!(p("+1-800-FLOWERS"), Err(E164Error::InvalidChar('F')));
        assert_eq!(p("12+34567890"), Err(E164Error::MisplacedPlus));
        assert_eq!(p("+1-234"), Err(E164Error::TooShort(4)));
        assert_eq!(p("+44 1234"), Err(E164Error::TooShort(6)));
        assert_eq!(p("+4412345678901234"), Err(E164Error::TooLong(16)));
        assert_eq!(p("+1234567891"), Err(E164Error::NanpLength(10)));
        assert_eq!(p("+0123456789"), Err(E164Error::ZeroCountryCode));
        assert_eq!(p("000123456789"), Err(E164Error::ZeroCountryCode));
    }

    #[test]
    fn boundaries() {
        assert_eq!(p("+6831234").as_deref(), Ok("+6831234")); // 7 digits, Niue
        assert_eq!(p("+683123"), Err(E164Error::TooShort(6)));
        assert_eq!(p("+491234567890123").as_deref(), Ok("+491234567890123")); // 15
    }

    #[test]
    fn accessors_and_national() {
        let n = E164::parse("+1-234-567-8910", &cc("1")).unwrap();
        assert_eq!(n.digits(), "12345678910");
        assert_eq!(n.to_string(), "+12345678910");
        assert_eq!(n.national(&cc("1")), "2345678910");
        assert_eq!(n.national(&cc("44")), "0012345678910");
        let uk = E164::parse("+44 20 7946 0000", &cc("1")).unwrap();
        assert_eq!(uk.national(&cc("44")), "02079460000");
        assert_eq!(uk.national(&cc("1")), "011442079460000");
    }

    #[test]
    fn ordering_hash_serialize() {
        let a = E164::parse("+12345678910", &cc("1")).unwrap();
        let b = E164::parse("2345678910", &cc("1")).unwrap();
        let c = E164::parse("+442079460000", &cc("1")).unwrap();
        assert_eq!(a, b);
        assert!(a < c);
        let set: std::collections::HashSet<_> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(
            toml::Value::try_from(&a).unwrap().as_str(),
            Some("+12345678910")
        );
    }

    #[test]
    fn country_codes() {
        assert!(CountryCode::parse("1").is_ok());
        assert!(CountryCode::parse("+44").is_ok());
        assert!(CountryCode::parse("358").is_ok());
        assert!(CountryCode::parse("").is_err());
        assert!(CountryCode::parse("0").is_err());
        assert!(CountryCode::parse("1234").is_err());
        assert!(CountryCode::parse("4a").is_err());
    }
}
