//! Secrets that come from the configuration, in types that cannot leak into a
//! log line by accident: `Debug` and `Display` print a mask, never the value.
//!
//! Why a type and not care at each `info!`: a PIN travels inside larger
//! values (a user, the caller match a log-in call logs), and one derived
//! `Debug` anywhere on that path would print it.

use std::fmt;

use serde::Deserialize;

/// An agent's log-in PIN (4 to 8 digits once validated).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Pin(String);

impl Pin {
    pub fn new(digits: impl Into<String>) -> Self {
        Pin(digits.into())
    }

    /// The digits, for comparing with what the caller keyed. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares every byte whatever the first difference, so the time a
    /// check takes does not tell how many leading digits were right.
    pub fn matches(&self, keyed: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), keyed.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl From<&str> for Pin {
    fn from(digits: &str) -> Self {
        Pin::new(digits)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_digits() {
        let pin = Pin::new("2468");
        assert_eq!(format!("{pin:?}"), "Pin(****)");
        assert_eq!(format!("{pin}"), "****");
        let nested = Some(pin.clone());
        assert!(!format!("{nested:?}").contains("2468"));
        assert_eq!(pin.expose(), "2468");
    }

    #[test]
    fn matches_only_the_same_digits() {
        let pin = Pin::new("2468");
        assert!(pin.matches("2468"));
        assert!(!pin.matches("2469"));
        assert!(!pin.matches("246"));
        assert!(!pin.matches("24680"));
        assert!(!pin.matches(""));
    }
}
