//! What an online agent is doing right now (idle, on a call, in wrap-up),
//! published in the `agent_state` table for readers in other processes
//! (`tpswitch agents`).
//!
//! The running switch keeps the truth in memory; this table is only a
//! display copy, so the switch never reads it back and clears it at start-up
//! (no call survives a restart).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::backend::Store;
use super::sqlite::SqliteStore;
use super::{to_ms, Result};

/// An agent's activity while online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// Free to take a call.
    Idle,
    /// On a call: a window that ends now is closed only after the call.
    Busy,
    /// After a call, before the next may be offered.
    WrapUp,
}

impl Activity {
    /// The state name people see: "online" for idle, "busy", "wrap-up".
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Idle => "online",
            Activity::Busy => "busy",
            Activity::WrapUp => "wrap-up",
        }
    }

    /// The stored form (`agent_state.state`); idle is stored as no row.
    pub(crate) fn parse_stored(s: &str) -> Option<Self> {
        match s {
            "busy" => Some(Activity::Busy),
            "wrap-up" => Some(Activity::WrapUp),
            _ => None,
        }
    }
}

/// Record `user`'s activity since `at` (idle deletes the row).
pub async fn set_activity(
    store: &Store,
    user: &str,
    activity: Activity,
    at: DateTime<Utc>,
) -> Result<()> {
    match store {
        Store::Sqlite(s) => set_activity_sqlite(s, user, activity, at).await,
        Store::Postgres(p) => p.set_activity(user, activity, at).await,
    }
}

async fn set_activity_sqlite(
    store: &SqliteStore,
    user: &str,
    activity: Activity,
    at: DateTime<Utc>,
) -> Result<()> {
    match activity {
        Activity::Idle => {
            sqlx::query("DELETE FROM agent_state WHERE user_id = ?")
                .bind(user)
                .execute(store.writer())
                .await
                .map_err(store.err("clearing an agent's activity"))?;
        }
        Activity::Busy | Activity::WrapUp => {
            sqlx::query(
                "INSERT INTO agent_state (user_id, state, since_ms) VALUES (?, ?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, \
                 since_ms = excluded.since_ms",
            )
            .bind(user)
            .bind(activity.as_str())
            .bind(to_ms(at))
            .execute(store.writer())
            .await
            .map_err(store.err("recording an agent's activity"))?;
        }
    }
    Ok(())
}

/// Forget every activity: at start-up, when no call can be in progress.
pub async fn clear_activities(store: &Store) -> Result<()> {
    let store = match store {
        Store::Sqlite(s) => s,
        Store::Postgres(p) => return p.clear_activities().await,
    };
    sqlx::query("DELETE FROM agent_state")
        .execute(store.writer())
        .await
        .map_err(store.err("clearing agent activities"))?;
    Ok(())
}

/// Every non-idle agent: user -> (activity, since). Works on a read-only store.
pub async fn activities(store: &Store) -> Result<BTreeMap<String, (Activity, DateTime<Utc>)>> {
    let store = match store {
        Store::Sqlite(s) => s,
        Store::Postgres(p) => return p.activities().await,
    };
    let rows = sqlx::query("SELECT user_id, state, since_ms FROM agent_state")
        .fetch_all(store.readers())
        .await
        .map_err(store.err("reading agent activities"))?;
    let mut out = BTreeMap::new();
    for r in &rows {
        let user: String = r.try_get("user_id").map_err(store.err("reading a row"))?;
        let state: String = r.try_get("state").map_err(store.err("reading a row"))?;
        let activity = Activity::parse_stored(&state)
            .ok_or_else(|| store.corrupt(format!("agent_state.state = {state:?}")))?;
        let since = store.time(r, "agent_state", "since_ms")?;
        out.insert(user, (activity, since));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[tokio::test]
    async fn set_read_replace_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::from(SqliteStore::open(&path).await.unwrap());
        assert!(activities(&store).await.unwrap().is_empty());

        set_activity(&store, "ann", Activity::Busy, t(5))
            .await
            .unwrap();
        set_activity(&store, "bob", Activity::WrapUp, t(6))
            .await
            .unwrap();
        set_activity(&store, "cy", Activity::Idle, t(7))
            .await
            .unwrap();
        let reader = Store::from(SqliteStore::open_read_only(&path).await.unwrap());
        let got = activities(&reader).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["ann"], (Activity::Busy, t(5)));
        assert_eq!(got["bob"], (Activity::WrapUp, t(6)));

        // Busy -> wrap-up replaces; idle removes.
        set_activity(&store, "ann", Activity::WrapUp, t(9))
            .await
            .unwrap();
        set_activity(&store, "bob", Activity::Idle, t(9))
            .await
            .unwrap();
        let got = activities(&reader).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["ann"], (Activity::WrapUp, t(9)));

        clear_activities(&store).await.unwrap();
        assert!(activities(&reader).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn unknown_stored_state_is_reported_as_corrupt() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        // The CHECK constraint stops bad values; drop it the way an older or
        // newer schema might differ, by recreating the table without it.
        sqlx::query("DROP TABLE agent_state")
            .execute(store.writer())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE agent_state (user_id TEXT, state TEXT, since_ms INTEGER)")
            .execute(store.writer())
            .await
            .unwrap();
        sqlx::query("INSERT INTO agent_state VALUES ('ann', 'napping', 0)")
            .execute(store.writer())
            .await
            .unwrap();
        let err = activities(&Store::from(store)).await.unwrap_err();
        assert!(err.to_string().contains("napping"), "{err}");
    }
}
