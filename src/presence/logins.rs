//! Log-in call records: one per call to the timed-presence menu, written
//! when the call ends, read back by `tpswitch calls --logins`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::rfc3339_millis;

/// How a log-in call ended, as stored (`login_calls.outcome`). The menu's
/// own outcome type lives in `flows/` (above this layer) and maps onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginOutcome {
    /// Online for `hours` (stored in its own column).
    Online,
    Offline,
    /// Too many invalid keys.
    Invalid,
    UnknownCaller,
    Withheld,
    HungUp,
    PinFailed,
    StoreFailed,
}

impl LoginOutcome {
    pub const ALL: [LoginOutcome; 8] = [
        LoginOutcome::Online,
        LoginOutcome::Offline,
        LoginOutcome::Invalid,
        LoginOutcome::UnknownCaller,
        LoginOutcome::Withheld,
        LoginOutcome::HungUp,
        LoginOutcome::PinFailed,
        LoginOutcome::StoreFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Online => "online",
            LoginOutcome::Offline => "offline",
            LoginOutcome::Invalid => "invalid",
            LoginOutcome::UnknownCaller => "unknown-caller",
            LoginOutcome::Withheld => "withheld",
            LoginOutcome::HungUp => "hung-up",
            LoginOutcome::PinFailed => "pin-failed",
            LoginOutcome::StoreFailed => "store-failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Words for a listing: "online 8 h", "PIN failed".
    pub fn words(self, hours: Option<u32>) -> String {
        match (self, hours) {
            (LoginOutcome::Online, Some(h)) => format!("online {h} h"),
            (LoginOutcome::UnknownCaller, _) => "unknown caller".to_owned(),
            (LoginOutcome::HungUp, _) => "hung up".to_owned(),
            (LoginOutcome::PinFailed, _) => "PIN failed".to_owned(),
            (LoginOutcome::StoreFailed, _) => "store failed".to_owned(),
            (o, _) => o.as_str().to_owned(),
        }
    }
}

/// A log-in call as it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLoginCall {
    /// SIP Call-ID of the caller's leg.
    pub call_id: String,
    /// The caller ID as received (empty when withheld).
    pub caller: String,
    /// Who the caller was identified as, when known.
    pub agent_user_id: Option<String>,
    pub outcome: LoginOutcome,
    /// The hours chosen, for `Online`.
    pub hours: Option<u32>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

/// A stored log-in call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginCallRecord {
    pub id: i64,
    pub call_id: String,
    pub caller: String,
    pub agent_user_id: Option<String>,
    pub outcome: LoginOutcome,
    pub hours: Option<u32>,
    #[serde(with = "rfc3339_millis")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "rfc3339_millis")]
    pub ended_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip_and_read_as_words() {
        for o in LoginOutcome::ALL {
            assert_eq!(LoginOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert_eq!(LoginOutcome::parse("Online"), None);
        assert_eq!(LoginOutcome::Online.words(Some(8)), "online 8 h");
        assert_eq!(LoginOutcome::PinFailed.words(None), "PIN failed");
        assert_eq!(LoginOutcome::UnknownCaller.words(None), "unknown caller");
    }
}
