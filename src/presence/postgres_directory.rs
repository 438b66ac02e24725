//! The directory objects made through the API, in PostgreSQL: the
//! `directory_objects` table (`migrations/postgres/0007_directory.sql`),
//! as `sqlite_directory` does it for SQLite. And the agents' published
//! activities (`agent_state`, see `agent_state`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::agent_state::Activity;
use super::postgres::PgStore;
use super::sqlite_directory::DirectoryWrite;
use super::{to_ms, Result};
use crate::config::directory::{Declared, Kind};

impl PgStore {
    /// Every stored directory object, in the order they were first made.
    pub async fn directory_objects(&self) -> Result<Vec<Declared>> {
        let rows = sqlx::query("SELECT kind, key, body FROM directory_objects ORDER BY seq")
            .fetch_all(self.pool())
            .await
            .map_err(self.err("listing the directory"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r
                .try_get("kind")
                .map_err(self.err("reading the directory"))?;
            let key: String = r
                .try_get("key")
                .map_err(self.err("reading the directory"))?;
            let body: String = r
                .try_get("body")
                .map_err(self.err("reading the directory"))?;
            let kind = Kind::parse(&kind)
                .ok_or_else(|| self.corrupt(format!("directory_objects.kind = {kind:?}")))?;
            let table: toml::Table = serde_json::from_str(&body).map_err(|e| {
                self.corrupt(format!(
                    "directory_objects {kind} {key:?}: the body is not a table: {e}"
                ))
            })?;
            out.push(Declared { kind, key, table });
        }
        Ok(out)
    }

    /// Apply `write` in one statement (its own transaction); once this
    /// returns `Ok` the change is committed. A replaced object keeps its
    /// place in the order.
    pub async fn write_directory(&self, write: &DirectoryWrite) -> Result<()> {
        match write {
            DirectoryWrite::Put(d) => {
                let body = serde_json::to_string(&d.table).map_err(|e| {
                    self.corrupt(format!("{} {:?} cannot be stored: {e}", d.kind, d.key))
                })?;
                sqlx::query(
                    "INSERT INTO directory_objects (kind, key, body, updated_at_ms) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, \
                     updated_at_ms = excluded.updated_at_ms",
                )
                .bind(d.kind.table())
                .bind(&d.key)
                .bind(body)
                .bind(to_ms(Utc::now()))
                .execute(self.pool())
                .await
                .map_err(self.err("writing a directory object"))?;
            }
            DirectoryWrite::Delete { kind, key } => {
                sqlx::query("DELETE FROM directory_objects WHERE kind = $1 AND key = $2")
                    .bind(kind.table())
                    .bind(key)
                    .execute(self.pool())
                    .await
                    .map_err(self.err("removing a directory object"))?;
            }
        }
        // Other nodes reload the directory from the store (the rows are the
        // truth; a node that misses this finds the change at its resync).
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(super::postgres::DIRECTORY_CHANNEL)
            .bind(self.instance())
            .execute(self.pool())
            .await
            .map_err(self.err("announcing a directory change"))?;
        Ok(())
    }

    /// Record `user`'s activity since `at` (idle deletes the row).
    pub(crate) async fn set_activity(
        &self,
        user: &str,
        activity: Activity,
        at: DateTime<Utc>,
    ) -> Result<()> {
        match activity {
            Activity::Idle => {
                sqlx::query("DELETE FROM agent_state WHERE user_id = $1 AND node = $2")
                    .bind(user)
                    .bind(self.node())
                    .execute(self.pool())
                    .await
                    .map_err(self.err("clearing an agent's activity"))?;
            }
            Activity::Busy | Activity::WrapUp => {
                sqlx::query(
                    "INSERT INTO agent_state (user_id, state, since_ms, node) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, \
                     since_ms = excluded.since_ms, node = excluded.node",
                )
                .bind(user)
                .bind(activity.as_str())
                .bind(to_ms(at))
                .bind(self.node())
                .execute(self.pool())
                .await
                .map_err(self.err("recording an agent's activity"))?;
            }
        }
        Ok(())
    }

    pub(crate) async fn clear_activities(&self) -> Result<()> {
        // Only this node's: another node's calls are still going.
        sqlx::query("DELETE FROM agent_state WHERE node = $1")
            .bind(self.node())
            .execute(self.pool())
            .await
            .map_err(self.err("clearing agent activities"))?;
        Ok(())
    }

    pub(crate) async fn activities(&self) -> Result<BTreeMap<String, (Activity, DateTime<Utc>)>> {
        let rows = sqlx::query("SELECT user_id, state, since_ms FROM agent_state")
            .fetch_all(self.pool())
            .await
            .map_err(self.err("reading agent activities"))?;
        let mut out = BTreeMap::new();
        for r in &rows {
            let user: String = r.try_get("user_id").map_err(self.err("reading a row"))?;
            let state: String = r.try_get("state").map_err(self.err("reading a row"))?;
            let activity = Activity::parse_stored(&state)
                .ok_or_else(|| self.corrupt(format!("agent_state.state = {state:?}")))?;
            let since = self.time(r, "agent_state", "since_ms")?;
            out.insert(user, (activity, since));
        }
        Ok(out)
    }
}
