//! `tpswitch agents [--config PATH] [--json]`: every configured user and
//! whether they are online, read from the store without disturbing a
//! running switch.
//!
//! The store is opened read-only (it may be written by the switch at the
//! same moment; WAL lets us read). A database that does not exist yet means
//! the switch never ran: everyone is offline, which is an answer, not an
//! error. Busy and wrap-up come from the `agent_state` table the running
//! switch publishes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{format_duration, Config};
use crate::presence::agent_state::{activities, Activity};
use crate::presence::{fmt_secs, PresenceStore, SqliteStore, StoreError, Window};

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the agent list as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One line of the report; also the JSON shape of each array element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    pub id: String,
    /// "" for a user who has a window in the store but is no longer configured.
    pub name: String,
    /// The user's first PSTN number (E.164); "" when none.
    pub pstn: String,
    /// "offline", "online", "busy" or "wrap-up".
    pub state: &'static str,
    /// The open window; `null` when offline.
    pub window: Option<Window>,
    /// Whole seconds until the window ends (rounded up); 0 when offline.
    pub remaining_seconds: i64,
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

/// Every configured user in configuration order, then any user the store
/// has a window for who is no longer configured (so nobody is hidden).
pub async fn agent_rows(cfg: &Config, now: DateTime<Utc>) -> Result<Vec<AgentRow>, StoreError> {
    let (windows, acts) = match SqliteStore::open_read_only(&cfg.store.path).await {
        Ok(store) => {
            let windows = store.all_current().await;
            let acts = activities(&store).await;
            store.close().await;
            (windows?, acts?)
        }
        Err(StoreError::Missing { .. }) => (Vec::new(), BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut windows: BTreeMap<String, Window> = windows.into_iter().collect();
    let mut rows = Vec::with_capacity(cfg.users.len());
    for user in &cfg.users {
        let window = windows.remove(&user.id);
        let activity = acts.get(&user.id).map(|(a, _)| *a);
        let pstn = user
            .pstn_numbers()
            .next()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        rows.push(row(&user.id, &user.name, pstn, window, activity, now));
    }
    for (id, window) in windows {
        let activity = acts.get(&id).map(|(a, _)| *a);
        rows.push(row(&id, "", String::new(), Some(window), activity, now));
    }
    Ok(rows)
}

fn row(
    id: &str,
    name: &str,
    pstn: String,
    window: Option<Window>,
    activity: Option<Activity>,
    now: DateTime<Utc>,
) -> AgentRow {
    let state = state(window.as_ref(), activity, now);
    let window = window.filter(|_| state != "offline");
    AgentRow {
        id: id.to_owned(),
        name: name.to_owned(),
        pstn,
        state,
        remaining_seconds: window.map_or(0, |w| w.remaining_seconds(now)),
        window,
    }
}

/// A window that has ended but is not closed yet (the switch is down, or
/// the agent is still on the call the expiry waits for) shows as offline —
/// unless the agent is on that call, which is what "busy" means.
fn state(window: Option<&Window>, activity: Option<Activity>, now: DateTime<Utc>) -> &'static str {
    let Some(w) = window else {
        return "offline";
    };
    match activity {
        Some(Activity::Busy) => Activity::Busy.as_str(),
        Some(Activity::WrapUp) if w.is_active(now) => Activity::WrapUp.as_str(),
        _ if w.is_active(now) => "online",
        _ => "offline",
    }
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
