//! `tpswitch agents [--config PATH] [--json]`: every configured user and
//! whether they are online, read from the store without disturbing a
//! running switch. The rows are [`crate::report::agents`]'s, which the HTTP
//! API shows too.
//!
//! The store is opened read-only (it may be written by the switch at the
//! same moment; WAL lets us read). A database that does not exist yet means
//! the switch never ran: everyone is offline, which is an answer, not an
//! error. Busy and wrap-up come from the `agent_state` table the running
//! switch publishes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{format_duration, Config};
use crate::presence::{fmt_secs, Store, StoreError};
use crate::report::agents::{self, AgentRow};

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the agent list as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The report as printed: a table for people, or with `json` an array.
pub async fn agents_report(
    cfg: &Config,
    json: bool,
    now: DateTime<Utc>,
) -> Result<String, AgentsError> {
    let rows = agent_rows(cfg, now).await?;
    if json {
        Ok(super::json(&rows)?)
    } else {
        Ok(table(&rows))
    }
}

/// The rows from the store `cfg.store` names, opened for reading.
pub async fn agent_rows(cfg: &Config, now: DateTime<Utc>) -> Result<Vec<AgentRow>, StoreError> {
    match Store::open_reader(&cfg.store).await {
        Ok(store) => {
            // The users made through the API are agents too.
            let joined = with_api_users(cfg, &store).await;
            let rows = agents::from_store(joined.as_ref().unwrap_or(cfg), &store, now).await;
            store.close().await;
            rows
        }
        Err(StoreError::Missing { .. }) => Ok(agents::rows(cfg, Vec::new(), &BTreeMap::new(), now)),
        Err(e) => Err(e),
    }
}

/// `cfg` joined with the store's directory (`config::directory`), or
/// `None` when the store has nothing of its own or the two cannot be joined
/// (the switch then refuses to start or reload, and says why; this list
/// shows the file's users).
async fn with_api_users(cfg: &Config, store: &Store) -> Option<Config> {
    let api = store.directory_objects().await.ok()?;
    if api.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(&cfg.source).ok()?;
    let file = crate::config::directory::declared_in(&text);
    let db = store.db().display().to_string();
    let file_name = cfg.source.display().to_string();
    if !crate::config::directory::conflicts(&file, &api, &file_name, &db).is_empty() {
        return None;
    }
    crate::config::directory::build(&text, &cfg.source, &api).ok()
}

fn table(rows: &[AgentRow]) -> String {
    const HEAD: [&str; 6] = ["ID", "NAME", "PSTN", "STATE", "WINDOW END", "REMAINING"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.name.clone(),
                r.pstn.clone(),
                r.state.to_owned(),
                r.window.map_or_else(|| "-".to_owned(), |w| fmt_secs(w.end)),
                r.window.map_or_else(
                    || "-".to_owned(),
                    |_| {
                        let secs = u64::try_from(r.remaining_seconds).unwrap_or(0);
                        format_duration(std::time::Duration::from_secs(secs))
                    },
                ),
            ]
        })
        .collect();
    super::table(HEAD, &cells)
}

#[cfg(test)]
#[path = "agents_tests.rs"]
mod tests;
