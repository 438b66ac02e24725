//! Log-in call records: one per call to the timed-presence menu, written
//! when the call ends, read back by `tpswitch calls --logins`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::rfc3339_millis;
pub use crate::config::CallerIdTrust;

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
    /// The trunk's `caller_id_trust` wanted a PIN the user does not have.
    CallerIdRefused,
}

impl LoginOutcome {
    pub const ALL: [LoginOutcome; 9] = [
        LoginOutcome::Online,
        LoginOutcome::Offline,
        LoginOutcome::Invalid,
        LoginOutcome::UnknownCaller,
        LoginOutcome::Withheld,
        LoginOutcome::HungUp,
        LoginOutcome::PinFailed,
        LoginOutcome::StoreFailed,
        LoginOutcome::CallerIdRefused,
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
            LoginOutcome::CallerIdRefused => "caller-id-refused",
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
            (LoginOutcome::CallerIdRefused, _) => "caller ID refused".to_owned(),
            (o, _) => o.as_str().to_owned(),
        }
    }
}

/// What let the caller in as the agent (`login_calls.caller_id`); the
/// menu's own type maps onto it, as its outcome does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerIdCheck {
    /// The agent's PIN.
    Pin,
    /// The carrier's attestation of the caller ID (STIR/SHAKEN).
    Attested,
    /// The caller ID alone.
    Unverified,
}

impl CallerIdCheck {
    pub const ALL: [CallerIdCheck; 3] = [
        CallerIdCheck::Pin,
        CallerIdCheck::Attested,
        CallerIdCheck::Unverified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallerIdCheck::Pin => "pin",
            CallerIdCheck::Attested => "attested",
            CallerIdCheck::Unverified => "unverified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// How the caller ID of a log-in call was judged: the trunk's policy,
/// the carrier's attestation and what the menu took as proof. `None` in a
/// record written before these were kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CallerIdRecord {
    /// The trunk's `caller_id_trust` when the call came in.
    pub caller_id_trust: CallerIdTrust,
    /// `verstat=TN-Validation-Passed` on the header the number came from.
    pub attested: bool,
    /// What let the caller in (or, for a call that did not get in, what was
    /// proven); `None` when nobody was identified.
    pub caller_id: Option<CallerIdCheck>,
}

impl CallerIdRecord {
    /// The record from its stored columns (`caller_id_trust`, `attested`,
    /// `caller_id`), for both stores; `None` for a row written before they
    /// existed. `Err` is the column that holds a word we never write, for
    /// the store's corruption error.
    pub(crate) fn from_columns(
        trust: Option<String>,
        attested: bool,
        check: Option<String>,
    ) -> std::result::Result<Option<Self>, String> {
        let Some(trust) = trust else {
            return Ok(None);
        };
        let caller_id_trust = CallerIdTrust::parse(&trust)
            .ok_or_else(|| format!("login_calls.caller_id_trust = {trust:?}"))?;
        let caller_id = check
            .map(|c| {
                CallerIdCheck::parse(&c).ok_or_else(|| format!("login_calls.caller_id = {c:?}"))
            })
            .transpose()?;
        Ok(Some(CallerIdRecord {
            caller_id_trust,
            attested,
            caller_id,
        }))
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
    pub trust: CallerIdRecord,
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
    /// Shown in `--json` as `caller_id_trust`, `attested` and `caller_id`
    /// (all three absent for a record older than them).
    #[serde(flatten)]
    pub trust: Option<CallerIdRecord>,
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
        assert_eq!(
            LoginOutcome::CallerIdRefused.words(None),
            "caller ID refused"
        );
        for c in CallerIdCheck::ALL {
            assert_eq!(CallerIdCheck::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        for t in [
            CallerIdTrust::Any,
            CallerIdTrust::Attested,
            CallerIdTrust::PinAlways,
        ] {
            assert_eq!(CallerIdTrust::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
