//! `tpswitch calls [--config PATH] [--json] [--since T] [--logins]`: customer
//! calls and the attempts to reach agents for them (attempts are listed from
//! the moment an agent is dialled), or with `--logins` the log-in calls and
//! their outcome; read from the store without disturbing a running switch
//! (read-only, like `tpswitch agents`).
//!
//! `T` is an RFC 3339 time ("2025-01-02T03:04:05Z") or a duration ago
//! ("90m", "1h", "2h30m", "2d", "1w"); the default is the last 24 hours.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{format_duration, parse_duration, Config};
use crate::presence::{fmt_secs, CallRecord, LoginCallRecord, PresenceStore, Store, StoreError};

/// At most this many calls per report.
pub const MAX_CALLS: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the call list as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "--since {0:?}: write an RFC 3339 time (2025-01-02T03:04:05Z) or a duration ago (90m, 1h, 2h30m, 2d, 1w)"
    )]
    Since(String),
}

/// When the report starts: `since` as given, or 24 hours before `now`.
pub fn parse_since(since: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, CallsError> {
    let Some(s) = since.map(str::trim) else {
        return Ok(now - chrono::Duration::hours(24));
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = match days_ago(s) {
        Some(days) => chrono::Duration::try_days(days),
        None => parse_duration(s)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok()),
    }
    .ok_or_else(|| CallsError::Since(s.to_owned()))?;
    now.checked_sub_signed(ago)
        .ok_or_else(|| CallsError::Since(s.to_owned()))
}

/// "2d" or "1w" as a number of days: units a person asks for when looking
/// back, though no configured timer needs them.
fn days_ago(s: &str) -> Option<i64> {
    let (n, per) = match s.strip_suffix('d') {
        Some(n) => (n, 1),
        None => (s.strip_suffix('w')?, 7),
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse::<i64>().ok()?.checked_mul(per)
}

/// Calls since `since`, oldest first. A store that does not exist yet
/// means no call was ever taken.
pub async fn call_records(
    cfg: &Config,
    since: DateTime<Utc>,
) -> Result<Vec<CallRecord>, StoreError> {
    read_store(cfg, async |store| store.calls_since(since, MAX_CALLS).await).await
}

/// Runs `read` on the store opened read-only (and closes it). A store that
/// does not exist yet means nothing was ever recorded: the empty default.
pub(super) async fn read_store<T: Default>(
    cfg: &Config,
    read: impl AsyncFnOnce(&Store) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match Store::open_reader(&cfg.store).await {
        Ok(store) => {
            let got = read(&store).await;
            store.close().await;
            got
        }
        Err(StoreError::Missing { .. }) => Ok(T::default()),
        Err(e) => Err(e),
    }
}

/// The report as printed: a table, or with `json` an array of calls, each
/// with `agent` (who took it) and its `attempts` (agents named by
/// `agent_user_id`).
pub async fn calls_report(
    cfg: &Config,
    json: bool,
    since: DateTime<Utc>,
) -> Result<String, CallsError> {
    let calls = call_records(cfg, since).await?;
    if json {
        let rows: Vec<CallRow<'_>> = calls
            .iter()
            .map(|c| CallRow {
                agent: agent_of(c),
                call: c,
            })
            .collect();
        Ok(super::json(&rows)?)
    } else {
        Ok(table(&calls))
    }
}

/// One element of the JSON array: the stored call plus the agent it was
/// bridged to (`null` when none), so readers need not search the attempts.
#[derive(Serialize)]
struct CallRow<'a> {
    #[serde(flatten)]
    call: &'a CallRecord,
    agent: Option<&'a str>,
}

/// The agent who took the call ([`CallRecord::taken_by`]).
fn agent_of(c: &CallRecord) -> Option<&str> {
    c.taken_by()
}

/// A length of time as the table shows it ("1m30s", "0s").
fn span(ms: i64) -> String {
    format_duration(std::time::Duration::from_secs(
        (ms.max(0) / 1000).unsigned_abs(),
    ))
}

fn table(calls: &[CallRecord]) -> String {
    const HEAD: [&str; 9] = [
        "STARTED",
        "FLOW",
        "CUSTOMER",
        "OUTCOME",
        "AGENT",
        "ATTEMPTS",
        "WAIT",
        "DURATION",
        "HUNG UP BY",
    ];
    let cells: Vec<[String; 9]> = calls
        .iter()
        .map(|c| {
            let duration = c.ended_at.map_or_else(
                || "in progress".to_owned(),
                |end| span((end - c.started_at).num_milliseconds()),
            );
            let outcome = match (&c.outcome, c.bridged_at) {
                (Some(o), _) => o.clone(),
                (None, Some(_)) => "bridged (live)".to_owned(),
                (None, None) => "waiting".to_owned(),
            };
            [
                fmt_secs(c.started_at),
                c.flow.clone(),
                c.customer_number.clone(),
                outcome,
                agent_of(c).unwrap_or("-").to_owned(),
                c.attempts.len().to_string(),
                c.wait_ms.map_or_else(|| "-".to_owned(), span),
                duration,
                c.hung_up_by.map_or("-", |h| h.as_str()).to_owned(),
            ]
        })
        .collect();
    let mut out = super::table(HEAD, &cells);
    if calls.is_empty() {
        out.push_str("(no calls)\n");
    }
    out
}

/// Log-in calls since `since`, oldest first. A store that does not exist
/// yet means none was ever taken.
pub async fn login_records(
    cfg: &Config,
    since: DateTime<Utc>,
) -> Result<Vec<LoginCallRecord>, StoreError> {
    read_store(cfg, async |store| {
        store.login_calls_since(since, MAX_CALLS).await
    })
    .await
}

/// `tpswitch calls --logins`: a table of log-in calls, or with `json` an
/// array of them (`outcome` as a keyword such as `pin-failed`, `hours` for
/// `online`; `caller_id_trust`, `attested` and `caller_id`: the trunk's
/// policy, the carrier's attestation and what let the caller in).
pub async fn logins_report(
    cfg: &Config,
    json: bool,
    since: DateTime<Utc>,
) -> Result<String, CallsError> {
    let calls = login_records(cfg, since).await?;
    if json {
        return Ok(super::json(&calls)?);
    }
    const HEAD: [&str; 6] = [
        "STARTED",
        "CALLER",
        "AGENT",
        "OUTCOME",
        "CALLER ID",
        "DURATION",
    ];
    let cells: Vec<[String; 6]> = calls
        .iter()
        .map(|c| {
            [
                fmt_secs(c.started_at),
                if c.caller.is_empty() {
                    "withheld".to_owned()
                } else {
                    c.caller.clone()
                },
                c.agent_user_id.clone().unwrap_or_else(|| "-".to_owned()),
                c.outcome.words(c.hours),
                caller_id_words(c),
                span((c.ended_at - c.started_at).num_milliseconds()),
            ]
        })
        .collect();
    let mut out = super::table(HEAD, &cells);
    if calls.is_empty() {
        out.push_str("(no log-in calls)\n");
    }
    Ok(out)
}

/// What let the caller in and under which policy: "pin (attested)",
/// "attested (attested)", "unverified (any)"; "-" for a record older than
/// these columns, or when nobody was identified.
fn caller_id_words(c: &LoginCallRecord) -> String {
    match c.trust {
        Some(t) => match t.caller_id {
            Some(check) => format!("{} ({})", check.as_str(), t.caller_id_trust.as_str()),
            None => "-".to_owned(),
        },
        None => "-".to_owned(),
    }
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
