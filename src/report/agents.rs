//! Who is online: every configured user with their presence window, what
//! they are doing (busy and wrap-up come from the `agent_state` table the
//! running switch publishes), their skills and today's figures
//! ([`super::today`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::today::{self, Today};
use crate::config::Config;
use crate::presence::agent_state::{activities, Activity};
use crate::presence::{PresenceStore, Store, StoreError, Window};

/// One agent; also the JSON shape of each array element (`/agents`,
/// `tpswitch agents --json`, `/api/v1/agents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgentRow {
    pub id: String,
    /// "" for a user who has a window in the store but is no longer configured.
    pub name: String,
    /// The user's first PSTN number (E.164); "" when none.
    pub pstn: String,
    pub skills: Vec<String>,
    /// "offline", "online", "busy" (on or being offered a call) or "wrap-up".
    #[schema(value_type = String)]
    pub state: &'static str,
    /// The open window; `null` when offline.
    pub window: Option<Window>,
    /// Whole seconds until the window ends (rounded up); 0 when offline.
    pub remaining_seconds: i64,
    /// Since 00:00 UTC; all zero when read without the store.
    pub today: Today,
}

/// The rows as `store` has them now: the running switch passes its own
/// store, a command-line reader one it opened read-only.
pub async fn from_store(
    cfg: &Config,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<AgentRow>, StoreError> {
    let windows = store.all_current().await?;
    let acts = activities(store).await?;
    let figures = today::from_store(store, now).await?;
    let mut rows = rows(cfg, windows, &acts, now);
    for r in &mut rows {
        if let Some(t) = figures.get(&r.id) {
            r.today = *t;
        }
    }
    Ok(rows)
}

/// Every configured user in configuration order, then any user the store
/// has a window for who is no longer configured (so nobody is hidden).
pub fn rows(
    cfg: &Config,
    windows: Vec<(String, Window)>,
    acts: &BTreeMap<String, (Activity, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> Vec<AgentRow> {
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
        let mut r = row(&user.id, &user.name, pstn, window, activity, now);
        r.skills.clone_from(&user.skills);
        rows.push(r);
    }
    for (id, window) in windows {
        let activity = acts.get(&id).map(|(a, _)| *a);
        rows.push(row(&id, "", String::new(), Some(window), activity, now));
    }
    rows
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
        skills: Vec::new(),
        state,
        remaining_seconds: window.map_or(0, |w| w.remaining_seconds(now)),
        window,
        today: Today::default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::agent_state::set_activity;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    /// The switch's own (read-write) store, as the HTTP API reads it.
    #[tokio::test]
    async fn rows_from_a_live_store_in_configuration_order() {
        let cfg = Config::embedded_default().unwrap();
        let store = Store::open_in_memory().await.unwrap();
        store
            .set_online("akim", t(0), t(3600), None, "m")
            .await
            .unwrap();
        store
            .set_online("jsmith", t(0), t(60), None, "m")
            .await
            .unwrap();
        store
            .set_online("gone", t(0), t(3600), None, "m")
            .await
            .unwrap();
        set_activity(&store, "akim", Activity::Busy, t(10))
            .await
            .unwrap();
        let rows = from_store(&cfg, &store, t(120)).await.unwrap();
        let got: Vec<(&str, &str, i64)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.state, r.remaining_seconds))
            .collect();
        assert_eq!(
            got,
            [
                // jsmith's window ended at 60 s and is not closed yet: offline.
                ("jsmith", "offline", 0),
                ("mgarcia", "offline", 0),
                ("akim", "busy", 3480),
                // No longer configured, still shown.
                ("gone", "online", 3480),
            ]
        );
        assert_eq!(rows[0].pstn, "+12345678910");
        assert_eq!(rows[0].skills, ["billing", "spanish"]);
        assert!(rows[3].skills.is_empty());
        // Today (one UTC day here): each window up to its end or now.
        assert_eq!(rows[0].today.online_seconds, 60);
        assert_eq!(rows[2].today.online_seconds, 120);
        assert!(rows[0].window.is_none());
        assert_eq!(rows[3].name, "");
    }
}
