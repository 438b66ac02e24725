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
    /// "offline", "not-responding" (offline after `max_no_answer` missed
    /// offers in a row, until they call in or a supervisor acts), "online",
    /// "busy" (on or being offered a call) or "wrap-up".
    #[schema(value_type = String)]
    pub state: &'static str,
    /// Since when, and why, the agent is not responding; `null` otherwise.
    pub not_responding: Option<Mark>,
    /// The open window; `null` when offline.
    pub window: Option<Window>,
    /// Whole seconds until the window ends (rounded up); 0 when offline.
    pub remaining_seconds: i64,
    /// Since 00:00 UTC; all zero when read without the store.
    pub today: Today,
}

/// Why an agent is not responding, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Mark {
    #[serde(with = "crate::presence::rfc3339_secs")]
    #[schema(value_type = String, format = DateTime)]
    pub since: DateTime<Utc>,
    /// As the history has it: "missed 3 offers in a row (max_no_answer)".
    pub reason: String,
}

/// The state shown for an agent marked not responding.
pub const NOT_RESPONDING: &str = "not-responding";

/// The rows as `store` has them now: the running switch passes its own
/// store, a command-line reader one it opened read-only.
pub async fn from_store(
    cfg: &Config,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<AgentRow>, StoreError> {
    let windows = store.all_current().await?;
    let acts = activities(store).await?;
    let figures = today::from_store(store, now, cfg.presence.time_zone).await?;
    let marks = store.all_not_responding().await?;
    let mut rows = rows(cfg, windows, &acts, now);
    for r in &mut rows {
        if let Some(t) = figures.get(&r.id) {
            r.today = *t;
        }
    }
    mark(&mut rows, marks);
    Ok(rows)
}

/// Agents marked not responding show so while offline. An open window
/// wins: they came online again (a mark a failed clear left behind must
/// not hide that).
pub fn mark(rows: &mut [AgentRow], marks: Vec<crate::presence::NotResponding>) {
    for m in marks {
        if let Some(r) = rows
            .iter_mut()
            .find(|r| r.id == m.user && r.state == "offline")
        {
            r.state = NOT_RESPONDING;
            r.not_responding = Some(Mark {
                since: m.since,
                reason: m.reason,
            });
        }
    }
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
        not_responding: None,
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

    /// Issue 14: an agent marked not responding shows so, with why and
    /// since when, until they have a window again.
    #[tokio::test]
    async fn a_marked_agent_shows_not_responding_until_online() {
        let cfg = Config::embedded_default().unwrap();
        let store = Store::open_in_memory().await.unwrap();
        let why = "missed 3 offers in a row (max_no_answer)";
        store
            .set_online("akim", t(0), t(3600), None, "m")
            .await
            .unwrap();
        store.set_not_responding("akim", t(60), why).await.unwrap();
        let rows = from_store(&cfg, &store, t(120)).await.unwrap();
        let akim = rows.iter().find(|r| r.id == "akim").unwrap();
        assert_eq!(akim.state, NOT_RESPONDING);
        assert_eq!(akim.window, None);
        let mark = akim.not_responding.as_ref().unwrap();
        assert_eq!((mark.since, mark.reason.as_str()), (t(60), why));
        let json = serde_json::to_value(akim).unwrap();
        assert_eq!(json["state"], "not-responding");
        assert_eq!(json["not_responding"]["reason"], why);
        // Others are untouched.
        assert!(rows
            .iter()
            .filter(|r| r.id != "akim")
            .all(|r| r.not_responding.is_none()));
        // A window again (a clear that failed left the mark): online wins.
        store
            .set_online("akim", t(130), t(3600), None, "m")
            .await
            .unwrap();
        let rows = from_store(&cfg, &store, t(140)).await.unwrap();
        let akim = rows.iter().find(|r| r.id == "akim").unwrap();
        assert_eq!(
            (akim.state, akim.not_responding.is_none()),
            ("online", true)
        );
    }
}
