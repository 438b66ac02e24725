//! `tpswitch history AGENT [--config PATH] [--since T] [--limit N] [--json]`:
//! an agent's presence history, newest first — every window opened,
//! extended, shortened, ended or expired, with who did it (`agent`,
//! `switch`, or an API token's name) and why. The same rows as
//! `GET /api/v1/agents/{id}/history`, read from the store opened read-only
//! (like `tpswitch calls`), so it works while the switch runs.
//!
//! `T` is an RFC 3339 time or a duration ago, as for `tpswitch calls`;
//! without it the whole history is read, up to `--limit` entries.

use chrono::{DateTime, Utc};

use super::calls::read_store;
use crate::config::Config;
use crate::presence::{fmt_secs, HistoryEntry, HistoryQuery, PresenceStore, StoreError};

/// Entries shown when `--limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most `--limit` may ask for.
pub const MAX_LIMIT: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the history as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no agent {0:?} in the configuration and no history under that id; `tpswitch agents` lists the agents")]
    UnknownAgent(String),
    #[error("--limit {0}: give 1 to {MAX_LIMIT} entries")]
    Limit(u32),
}

/// The entries, newest first. A store that does not exist yet means no
/// history. An id neither configured nor in the history is an error (a
/// typing mistake should not look like an agent who never logged in); one
/// no longer configured still has its history shown.
pub async fn history_rows(
    cfg: &Config,
    agent: &str,
    since: Option<DateTime<Utc>>,
    limit: u32,
) -> Result<Vec<HistoryEntry>, HistoryError> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(HistoryError::Limit(limit));
    }
    let query = HistoryQuery {
        since,
        until: None,
        before: None,
        limit,
    };
    let (rows, any) = read_store(cfg, async |store| {
        let rows = store.history_page(agent, query).await?;
        let any = !rows.is_empty() || !store.history(agent, 1).await?.is_empty();
        Ok((rows, any))
    })
    .await?;
    if !any && cfg.user(agent).is_none() {
        return Err(HistoryError::UnknownAgent(agent.to_owned()));
    }
    Ok(rows)
}

/// The report as printed: a table, or with `json` an array of the API's
/// history items.
pub async fn history_report(
    cfg: &Config,
    agent: &str,
    since: Option<DateTime<Utc>>,
    limit: u32,
    json: bool,
) -> Result<String, HistoryError> {
    let rows = history_rows(cfg, agent, since, limit).await?;
    if json {
        return Ok(super::json(&rows)?);
    }
    const HEAD: [&str; 6] = [
        "AT",
        "CHANGE",
        "ACTOR",
        "WINDOW START",
        "WINDOW END",
        "REASON",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|e| {
            [
                fmt_secs(e.at),
                e.kind.as_str().to_owned(),
                e.actor.clone(),
                e.window
                    .map_or_else(|| "-".to_owned(), |w| fmt_secs(w.start)),
                e.window.map_or_else(|| "-".to_owned(), |w| fmt_secs(w.end)),
                e.reason.clone(),
            ]
        })
        .collect();
    let mut out = super::table(HEAD, &cells);
    if rows.is_empty() {
        out.push_str("(no presence history)\n");
    }
    Ok(out)
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
