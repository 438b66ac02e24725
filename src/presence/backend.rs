//! The store the switch holds: SQLite (the embedded default) or
//! PostgreSQL (`store.url`), chosen once at start-up.
//!
//! An enum, not a trait object: [`PresenceStore`] returns `impl Future`
//! (not object-safe), the set of backends is closed, and each arm is a pool
//! handle that is cheap to clone. Each backend keeps its own typed sqlx
//! driver (not sqlx's `Any`, whose values are a lowest common set and
//! whose placeholders differ per database anyway): see docs/decisions.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::agent_state::Activity;
use super::calls::{CallFilter, CallRecord, CallUpdate, NewAttempt, NewCall};
use super::logins::{LoginCallRecord, NewLoginCall};
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::sqlite_directory::DirectoryWrite;
use super::store::{OnlineRequest, PresenceStore};
use super::{HistoryEntry, HistoryQuery, NotResponding, Result, Window, WindowChange};
use crate::config::directory::Declared;
use crate::config::model::StoreConfig;

/// The presence, call and directory store. Cloning shares the pool.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Runs `$e` with `$s` bound to whichever backend `$store` is.
macro_rules! each {
    ($store:expr, $s:ident => $e:expr) => {
        match $store {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

impl From<SqliteStore> for Store {
    fn from(s: SqliteStore) -> Self {
        Store::Sqlite(s)
    }
}

impl From<PgStore> for Store {
    fn from(s: PgStore) -> Self {
        Store::Postgres(s)
    }
}

impl Store {
    /// The store `cfg` names: PostgreSQL when `store.url` is set, else the
    /// SQLite file at `store.path`. Creates and migrates as needed.
    pub async fn connect(cfg: &StoreConfig) -> Result<Self> {
        match &cfg.postgres {
            Some(pg) => Ok(Store::Postgres(
                PgStore::connect(pg).await?.with_node(&cfg.cluster.node),
            )),
            None => Ok(Store::Sqlite(SqliteStore::open(&cfg.path).await?)),
        }
    }

    /// The SQLite file at `path`, created and migrated if needed.
    pub async fn open(path: &Path) -> Result<Self> {
        Ok(Store::Sqlite(SqliteStore::open(path).await?))
    }

    /// The SQLite file at `path`, read-only (see [`SqliteStore::open_read_only`]).
    pub async fn open_read_only(path: &Path) -> Result<Self> {
        Ok(Store::Sqlite(SqliteStore::open_read_only(path).await?))
    }

    /// The store `cfg` names, for a reader in another process (the
    /// commands beside `run`): never created nor migrated; a SQLite file
    /// that does not exist is [`StoreError::Missing`](super::StoreError::Missing).
    pub async fn open_reader(cfg: &StoreConfig) -> Result<Self> {
        match &cfg.postgres {
            Some(pg) => Ok(Store::Postgres(PgStore::connect_reader(pg).await?)),
            None => Self::open_read_only(&cfg.path).await,
        }
    }

    /// A private SQLite database in memory, for tests and dry runs.
    pub async fn open_in_memory() -> Result<Self> {
        Ok(Store::Sqlite(SqliteStore::open_in_memory().await?))
    }

    /// What errors and logs call this store: the SQLite file's path, or
    /// `postgres://user@host:port/db` (never a password).
    pub fn db(&self) -> PathBuf {
        each!(self, s => s.db())
    }

    /// Wait for in-flight queries and close every connection.
    pub async fn close(&self) {
        each!(self, s => s.close().await)
    }

    /// Proves the store can take a write now, for `/readyz`; keeps nothing.
    pub async fn write_probe(&self) -> Result<()> {
        each!(self, s => s.write_probe().await)
    }

    /// Every agent's history entries at or after `since`, oldest first.
    pub async fn history_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        each!(self, s => s.history_since(since, limit).await)
    }

    /// The calls `filter` selects, each with its attempts.
    pub async fn calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>> {
        each!(self, s => s.calls(filter).await)
    }

    /// Every stored directory object, in the order they were first made.
    pub async fn directory_objects(&self) -> Result<Vec<Declared>> {
        each!(self, s => s.directory_objects().await)
    }

    /// Apply one change to the stored directory.
    pub async fn write_directory(&self, write: &DirectoryWrite) -> Result<()> {
        each!(self, s => s.write_directory(write).await)
    }

    /// Every non-idle agent (see [`super::agent_state::activities`]).
    pub async fn activities(&self) -> Result<BTreeMap<String, (Activity, DateTime<Utc>)>> {
        super::agent_state::activities(self).await
    }
}

impl PresenceStore for Store {
    async fn set_online(
        &self,
        user: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        call_id: Option<&str>,
        reason: &str,
    ) -> Result<Window> {
        each!(self, s => s.set_online(user, start, end, call_id, reason).await)
    }

    async fn set_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        call_id: Option<&str>,
        reason: &str,
    ) -> Result<Option<Window>> {
        each!(self, s => s.set_offline(user, at, call_id, reason).await)
    }

    async fn force_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Window>> {
        each!(self, s => s.force_offline(user, at, reason).await)
    }

    async fn set_not_responding(
        &self,
        user: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Window>> {
        each!(self, s => s.set_not_responding(user, at, reason).await)
    }

    async fn clear_not_responding(
        &self,
        user: &str,
        at: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> Result<bool> {
        each!(self, s => s.clear_not_responding(user, at, actor, reason).await)
    }

    async fn all_not_responding(&self) -> Result<Vec<NotResponding>> {
        each!(self, s => s.all_not_responding().await)
    }

    async fn expire(&self, user: &str, end: DateTime<Utc>, reason: &str) -> Result<Option<Window>> {
        each!(self, s => s.expire(user, end, reason).await)
    }

    async fn set_window(
        &self,
        user: &str,
        now: DateTime<Utc>,
        end: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> Result<WindowChange> {
        each!(self, s => s.set_window(user, now, end, actor, reason).await)
    }

    async fn end_window(
        &self,
        user: &str,
        at: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> Result<Option<Window>> {
        each!(self, s => s.end_window(user, at, actor, reason).await)
    }

    async fn history_page(&self, user: &str, query: HistoryQuery) -> Result<Vec<HistoryEntry>> {
        each!(self, s => s.history_page(user, query).await)
    }

    async fn current(&self, user: &str) -> Result<Option<Window>> {
        each!(self, s => s.current(user).await)
    }

    async fn all_current(&self) -> Result<Vec<(String, Window)>> {
        each!(self, s => s.all_current().await)
    }

    async fn mark_reminded(
        &self,
        user: &str,
        end: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        each!(self, s => s.mark_reminded(user, end, at).await)
    }

    async fn history(&self, user: &str, limit: u32) -> Result<Vec<HistoryEntry>> {
        each!(self, s => s.history(user, limit).await)
    }

    async fn close_expired(&self, now: DateTime<Utc>) -> Result<Vec<(String, Window)>> {
        each!(self, s => s.close_expired(now).await)
    }

    async fn insert_call(&self, call: &NewCall) -> Result<i64> {
        each!(self, s => s.insert_call(call).await)
    }

    async fn update_call(&self, id: i64, update: &CallUpdate) -> Result<()> {
        each!(self, s => s.update_call(id, update).await)
    }

    async fn insert_attempt(&self, call: i64, attempt: &NewAttempt) -> Result<i64> {
        each!(self, s => s.insert_attempt(call, attempt).await)
    }

    async fn start_attempt(
        &self,
        call: i64,
        agent_user_id: &str,
        started_at: DateTime<Utc>,
    ) -> Result<i64> {
        each!(self, s => s.start_attempt(call, agent_user_id, started_at).await)
    }

    async fn finish_attempt(&self, id: i64, attempt: &NewAttempt) -> Result<()> {
        each!(self, s => s.finish_attempt(id, attempt).await)
    }

    async fn calls_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<CallRecord>> {
        each!(self, s => s.calls_since(since, limit).await)
    }

    async fn insert_login_call(&self, call: &NewLoginCall) -> Result<i64> {
        each!(self, s => s.insert_login_call(call).await)
    }

    async fn write_group(
        &self,
        onlines: &[OnlineRequest<'_>],
        logins: &[NewLoginCall],
    ) -> Result<Vec<Window>> {
        each!(self, s => s.write_group(onlines, logins).await)
    }

    async fn login_calls_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<LoginCallRecord>> {
        each!(self, s => s.login_calls_since(since, limit).await)
    }
}
