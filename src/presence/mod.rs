//! Timed presence: agents' online windows, their history, expiry scheduling
//! and the store behind them (SQLite embedded by default).
//!
//! - [`store`]: the [`PresenceStore`] contract and [`StoreError`].
//! - [`backend`]: [`Store`], the handle the rest of the switch holds:
//!   SQLite or PostgreSQL, chosen by the configuration.
//! - [`sqlite`]: the SQLite implementation ([`SqliteStore`]), the default.
//! - [`postgres`]: the PostgreSQL implementation ([`PgStore`], `store.url`).
//! - [`scheduler`]: the sans-IO [`ExpiryScheduler`] that says when a window
//!   is due to be closed.
//! - [`calls`]: customer call records and agent attempts.
//!
//! Times here are `chrono::DateTime<Utc>`, not `Instant`: a window is a
//! wall-clock fact that is stored, shown to people and must survive a restart.

pub mod agent_state;
pub mod backend;
pub mod calls;
pub mod claims;
pub mod clock;
pub mod events;
mod group;
pub mod logins;
pub mod postgres;
mod postgres_calls;
mod postgres_directory;
mod postgres_logins;
pub mod reminders;
pub mod scheduler;
pub mod service;
mod service_error;
pub mod sqlite;
mod sqlite_calls;
pub mod sqlite_directory;
pub mod sqlite_lock;
mod sqlite_logins;
mod sqlite_write;
pub mod store;
#[cfg(test)]
pub(crate) mod test_backends;
#[cfg(test)]
mod tests_claims;
#[cfg(test)]
mod tests_history;
#[cfg(test)]
mod tests_postgres;
#[cfg(test)]
mod tests_sqlite;
#[cfg(test)]
mod tests_store;
pub mod write_health;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

pub use backend::Store;
pub use calls::{
    AttemptRecord, CallFilter, CallRecord, CallUpdate, HungUpBy, NewAttempt, NewCall, SipOutcome,
};
pub use logins::{CallerIdCheck, CallerIdRecord, LoginCallRecord, LoginOutcome, NewLoginCall};
pub use postgres::PgStore;
pub use scheduler::{Expiry, ExpiryScheduler};
pub use sqlite::SqliteStore;
pub use store::{PresenceStore, StoreError};

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An online window: the agent is online from `start` until `end` (exclusive).
///
/// Serialises as `{"start": "2025-01-02T03:04:05Z", "end": "..."}`: RFC 3339,
/// UTC, whole seconds, as the admin API and `tpswitch agents --json` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Window {
    #[serde(with = "rfc3339_secs")]
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    #[serde(with = "rfc3339_secs")]
    #[schema(value_type = String, format = DateTime)]
    pub end: DateTime<Utc>,
}

impl Window {
    /// A window; `None` unless `end` is after `start` (an empty or inverted
    /// window would expire before it began and confuse the history).
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Self> {
        (end > start).then_some(Window { start, end })
    }

    /// Whole seconds left at `now`, rounded up so a window that is still
    /// open never shows 0; 0 once it has ended.
    pub fn remaining_seconds(&self, now: DateTime<Utc>) -> i64 {
        let ms = (self.end - now).num_milliseconds();
        if ms <= 0 {
            0
        } else {
            (ms + 999) / 1000
        }
    }

    /// True while `now` is inside the window.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now < self.end
    }
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HistoryKind {
    /// The agent went online (a new window).
    Online,
    /// The agent went offline on their own (log-in line, menu).
    Offline,
    /// The window reached its end; `at` is that end, not when we noticed.
    Expired,
    /// The window was replaced by a new one before it ended.
    Replaced,
    /// The switch or an administrator set the agent offline.
    ForcedOffline,
    /// The open window's end moved later (same start): by a supervisor,
    /// or by the agent adding hours on the phone.
    Extended,
    /// A supervisor moved the open window's end earlier (same start).
    Shortened,
    /// The switch closed the window after `max_no_answer` missed offers in
    /// a row and marked the agent not responding (issue 14; Webex's RONA).
    NotResponding,
    /// The not-responding mark was cleared: the agent called the log-in
    /// line, or a supervisor set them online or offline.
    Responding,
}

impl HistoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Online => "online",
            HistoryKind::Offline => "offline",
            HistoryKind::Expired => "expired",
            HistoryKind::Replaced => "replaced",
            HistoryKind::ForcedOffline => "forced-offline",
            HistoryKind::Extended => "extended",
            HistoryKind::Shortened => "shortened",
            HistoryKind::NotResponding => "not-responding",
            HistoryKind::Responding => "responding",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "online" => HistoryKind::Online,
            "offline" => HistoryKind::Offline,
            "expired" => HistoryKind::Expired,
            "replaced" => HistoryKind::Replaced,
            "forced-offline" => HistoryKind::ForcedOffline,
            "extended" => HistoryKind::Extended,
            "shortened" => HistoryKind::Shortened,
            "not-responding" => HistoryKind::NotResponding,
            "responding" => HistoryKind::Responding,
            _ => return None,
        })
    }
}

/// The actor of a change the agent made from their own phone.
pub const ACTOR_AGENT: &str = "agent";
/// The actor of a change the switch made on its own (expiry, missed calls).
pub const ACTOR_SWITCH: &str = "switch";

/// One line of an agent's presence history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Its row id: entries are numbered in the order they were recorded.
    pub id: i64,
    pub user: String,
    pub kind: HistoryKind,
    #[serde(with = "rfc3339_secs")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// The window concerned; `None` for an offline request while not online.
    pub window: Option<Window>,
    pub call_id: Option<String>,
    pub reason: String,
    /// Who made the change: `agent` (from their own phone), `switch`
    /// (expiry, missed calls), or the name of the API token a supervisor or
    /// admin used.
    pub actor: String,
}

/// An agent marked not responding: since when, and why (the history's
/// reason, e.g. "missed 3 offers in a row (max_no_answer)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotResponding {
    pub user: String,
    #[serde(with = "rfc3339_secs")]
    #[schema(value_type = String, format = DateTime)]
    pub since: DateTime<Utc>,
    pub reason: String,
}

/// What setting an agent's window on their behalf did: `Online` (they
/// were offline: a new window from now), `Extended` or `Shortened` (the
/// open window keeps its start and takes the new end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowChange {
    pub kind: HistoryKind,
    pub window: Window,
}

/// Which entries of an agent's history to read: newest first, those
/// recorded before row `before` (a cursor), with `since <= at < until`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// RFC 3339, UTC, whole seconds: `2025-01-02T03:04:05Z`.
pub fn fmt_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Milliseconds since the epoch, the stored form of every time.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`to_ms`]; `None` outside chrono's range (a corrupt row).
pub(crate) fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// Serde for `DateTime<Utc>` as RFC 3339 UTC with whole seconds.
pub mod rfc3339_secs {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_secs(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("bad RFC 3339 time {s:?}: {e}")))
    }
}

/// Serde for `DateTime<Utc>` as RFC 3339 UTC with milliseconds (call timing).
pub mod rfc3339_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    /// For `Option<DateTime<Utc>>` fields.
    pub mod option {
        use chrono::{DateTime, SecondsFormat, Utc};
        use serde::Serializer;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn window_rejects_empty_and_inverted() {
        assert!(Window::new(t(0), t(0)).is_none());
        assert!(Window::new(t(1), t(0)).is_none());
        assert!(Window::new(t(0), t(1)).is_some());
    }

    #[test]
    fn remaining_seconds_rounds_up_and_clamps() {
        let w = Window::new(t(0), t(3600)).unwrap();
        assert_eq!(w.remaining_seconds(t(0)), 3600);
        assert_eq!(w.remaining_seconds(t(3599)), 1);
        let almost = t(3599) + chrono::Duration::milliseconds(999);
        assert_eq!(w.remaining_seconds(almost), 1);
        assert_eq!(w.remaining_seconds(t(3600)), 0);
        assert_eq!(w.remaining_seconds(t(9999)), 0);
        assert!(w.is_active(t(0)));
        assert!(!w.is_active(t(3600)));
    }

    #[test]
    fn window_serialises_rfc3339_utc_seconds() {
        let start = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
            + chrono::Duration::milliseconds(678);
        let end = Utc.with_ymd_and_hms(2025, 1, 2, 11, 4, 5).unwrap();
        let w = Window::new(start, end).unwrap();
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(
            json,
            r#"{"start":"2025-01-02T03:04:05Z","end":"2025-01-02T11:04:05Z"}"#
        );
        let back: Window = serde_json::from_str(&json).unwrap();
        assert_eq!(back.end, end);
        assert!(serde_json::from_str::<Window>(r#"{"start":"yesterday","end":"x"}"#).is_err());
    }

    #[test]
    fn history_kind_round_trips() {
        for k in [
            HistoryKind::Online,
            HistoryKind::Offline,
            HistoryKind::Expired,
            HistoryKind::Replaced,
            HistoryKind::ForcedOffline,
            HistoryKind::Extended,
            HistoryKind::Shortened,
            HistoryKind::NotResponding,
            HistoryKind::Responding,
        ] {
            assert_eq!(HistoryKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(HistoryKind::parse("Online"), None);
    }
}
