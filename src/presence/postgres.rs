//! PostgreSQL presence store: the same tables and meaning as the SQLite
//! one (`migrations/postgres/`, numbered as `migrations/`), for a switch
//! whose state must live in a database server (issue 13).
//!
//! Writes run in a transaction that first takes a transaction-scoped
//! advisory lock on the agent (`pg_advisory_xact_lock`), so two writers
//! to one agent serialise as SQLite's `BEGIN IMMEDIATE` makes them: each
//! reads the open window the other committed (under READ COMMITTED a bare
//! read-then-upsert could lose a `replaced` entry). PostgreSQL's COMMIT
//! either succeeds or reports the rollback, and sqlx's transaction type
//! never returns a connection with an open transaction, so the SQLite
//! store's own `WriteTx` is not needed here.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};

use super::calls::{CallRecord, CallUpdate, NewAttempt, NewCall};
use super::logins::{LoginCallRecord, NewLoginCall};
use super::store::{require_user, to_millis_precision, OnlineRequest, PresenceStore, StoreError};
use super::{
    from_ms, postgres_calls, postgres_logins, to_ms, HistoryEntry, HistoryKind, HistoryQuery,
    NotResponding, Result, Window, WindowChange, ACTOR_AGENT, ACTOR_SWITCH,
};
use crate::config::model::PostgresConfig;

/// The versioned schema for PostgreSQL, embedded at build time.
/// The notification channel presence changes are announced on (payload:
/// the writing process's instance, a space, the user id).
pub const PRESENCE_CHANNEL: &str = "tpswitch_presence";
/// The notification channel directory changes are announced on (payload:
/// the writing process's instance).
pub const DIRECTORY_CHANNEL: &str = "tpswitch_directory";

pub(crate) static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// First key of every advisory lock tpswitch takes (the second names the
/// object), so ours never collide with another application's on the same
/// server. `pg_advisory_xact_lock(int4, int4)`.
pub(crate) const LOCK_SPACE_AGENT: i32 = 0x7470_0001;

/// The PostgreSQL store. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// `postgres://user@host:port/db`, never the password: named in every
    /// error and log line.
    label: Arc<String>,
    /// This switch's node name (`store.node`): written with its claims and
    /// activities, and sent with its change notifications so it can skip
    /// its own. Empty for a reader.
    node: Arc<String>,
    /// This process under `node` (`<pid>-<start>`): two processes started
    /// under one name are told apart by it, in `cluster_nodes`, in claims
    /// and in notification payloads.
    instance: Arc<String>,
}

/// The connection options for `cfg`, with the password from
/// `store.password_env` when it names one.
pub(crate) fn connect_options(cfg: &PostgresConfig) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(&cfg.url).map_err(|source| StoreError::PgConnect {
        db: cfg.label.clone(),
        source,
    })?;
    let options = match &cfg.password_env {
        Some(var) => {
            let password = std::env::var(var).map_err(|_| StoreError::PgPassword {
                db: cfg.label.clone(),
                var: var.clone(),
            })?;
            options.password(&password)
        }
        None => options,
    };
    // Shown in pg_stat_activity: which process holds a connection (and the
    // store lock, `postgres_lock`).
    Ok(options.application_name(&format!("tpswitch-{}", std::process::id())))
}

impl PgStore {
    /// The store as node `node` of a shared store writes it, as a new
    /// process under that name (a new instance).
    pub fn with_node(mut self, node: &str) -> Self {
        self.node = Arc::new(node.to_owned());
        self.instance = Arc::new(super::claims::new_instance());
        self
    }

    /// This process's instance under its node name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// This switch's node name (`store.node`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Connect to the database `cfg` names and apply any migrations not
    /// yet applied.
    pub async fn connect(cfg: &PostgresConfig) -> Result<Self> {
        let options = connect_options(cfg)?;
        // One connection first: a server that refuses or rejects us is
        // reported at once, where the pool would retry until its acquire
        // timeout and report only that.
        let probe = PgConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::PgConnect {
                db: cfg.label.clone(),
                source,
            })?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::PgConnect {
                db: cfg.label.clone(),
                source,
            })?;
        let store = PgStore {
            pool,
            label: Arc::new(cfg.label.clone()),
            node: Arc::default(),
            instance: Arc::new(super::claims::new_instance()),
        };
        PG_MIGRATOR
            .run(&store.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                db: store.db(),
                source,
            })?;
        tracing::info!(db = %store.label, "presence store open (PostgreSQL)");
        Ok(store)
    }

    /// Connect for reading (`tpswitch agents`, `calls`, `history`,
    /// `export`): never migrates, since a reader must not change the
    /// schema under a running switch, and refuses an older schema.
    pub async fn connect_reader(cfg: &PostgresConfig) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(connect_options(cfg)?)
            .await
            .map_err(|source| StoreError::PgConnect {
                db: cfg.label.clone(),
                source,
            })?;
        let store = PgStore {
            pool,
            label: Arc::new(cfg.label.clone()),
            node: Arc::default(),
            instance: Arc::new(super::claims::new_instance()),
        };
        let needed = PG_MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        // No migrations table: a database tpswitch never set up. (Two
        // statements: one naming a missing table fails as a whole, even
        // in a branch a CASE would not take.)
        let set_up: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&store.pool)
            .await
            .map_err(store.err("reading the schema version"))?;
        let found: Option<i64> = if set_up {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&store.pool)
                .await
                .map_err(store.err("reading the schema version"))?
        } else {
            None
        };
        let found = found.unwrap_or(0);
        if found < needed {
            return Err(StoreError::OldSchema {
                db: store.db(),
                found,
                needed,
            });
        }
        Ok(store)
    }

    /// `postgres://user@host:port/db`, without the password.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Wait for in-flight queries and close every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The name errors carry (`StoreError` names a database by path).
    pub(crate) fn db(&self) -> PathBuf {
        PathBuf::from(self.label.as_str())
    }

    pub(crate) fn err(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |source| StoreError::Query {
            db: self.db(),
            op,
            source,
        }
    }

    pub(crate) fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            db: self.db(),
            detail,
        }
    }

    pub(crate) fn time(&self, row: &PgRow, table: &str, col: &str) -> Result<DateTime<Utc>> {
        let ms: i64 = row.try_get(col).map_err(self.err("reading a row"))?;
        from_ms(ms).ok_or_else(|| self.corrupt(format!("{table}.{col} = {ms} is not a time")))
    }

    pub(crate) fn opt_time(
        &self,
        row: &PgRow,
        table: &str,
        col: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        let ms: Option<i64> = row.try_get(col).map_err(self.err("reading a row"))?;
        ms.map(|ms| {
            from_ms(ms).ok_or_else(|| self.corrupt(format!("{table}.{col} = {ms} is not a time")))
        })
        .transpose()
    }

    fn window(&self, row: &PgRow, table: &str) -> Result<Window> {
        let start = self.time(row, table, "window_start_ms")?;
        let end = self.time(row, table, "window_end_ms")?;
        Window::new(start, end)
            .ok_or_else(|| self.corrupt(format!("{table} window {start}..{end} is empty")))
    }

    /// A write transaction holding `user`'s advisory lock until it ends.
    async fn begin_for(&self, user: &str) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("starting a write transaction"))?;
        self.lock_agent(&mut tx, user).await?;
        Ok(tx)
    }

    /// Takes `user`'s advisory lock for the rest of the transaction, and
    /// tells the other nodes to re-read the agent once it commits.
    async fn lock_agent(&self, tx: &mut PgConnection, user: &str) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(LOCK_SPACE_AGENT)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(self.err("locking the agent's presence"))?;
        // Other nodes re-read the agent's window when this commits (and
        // not at all if it rolls back): a wake-up, the row is the truth.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PRESENCE_CHANNEL)
            .bind(format!("{} {user}", self.instance()))
            .execute(&mut *tx)
            .await
            .map_err(self.err("announcing a presence change"))?;
        Ok(())
    }

    async fn commit(&self, tx: Transaction<'static, Postgres>, op: &'static str) -> Result<()> {
        tx.commit().await.map_err(self.err(op))
    }

    /// One agent comes online inside `tx`, which holds the agent's lock
    /// (see `PresenceStore::set_online`).
    async fn online_in(&self, tx: &mut PgConnection, r: &OnlineRequest<'_>) -> Result<Window> {
        let window = r.stored_window()?;
        let OnlineRequest {
            user,
            call_id,
            reason,
            ..
        } = *r;
        let (start, end) = (window.start, window.end);
        let was_online = self.current_in(tx, user).await?;
        if was_online.is_none() {
            // Coming online starts a fresh count of consecutive misses, on
            // every node (as `AgentBoard::set_online` does on one).
            sqlx::query("UPDATE agent_claims SET misses = 0 WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(self.err("resetting the agent's missed offers"))?;
        }
        if let Some(old) = was_online {
            self.append_history(
                tx,
                user,
                HistoryKind::Replaced,
                start,
                Some(old),
                call_id,
                reason,
                ACTOR_AGENT,
            )
            .await?;
        }
        sqlx::query(
            "INSERT INTO presence_current (user_id, window_start_ms, window_end_ms, call_id, reason) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET window_start_ms = excluded.window_start_ms, \
             window_end_ms = excluded.window_end_ms, call_id = excluded.call_id, \
             reason = excluded.reason",
        )
        .bind(user)
        .bind(to_ms(start))
        .bind(to_ms(end))
        .bind(call_id)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(self.err("writing the current window"))?;
        self.append_history(
            tx,
            user,
            HistoryKind::Online,
            start,
            Some(window),
            call_id,
            reason,
            ACTOR_AGENT,
        )
        .await?;
        Ok(window)
    }

    async fn current_in(&self, conn: &mut PgConnection, user: &str) -> Result<Option<Window>> {
        let row = sqlx::query(
            "SELECT window_start_ms, window_end_ms FROM presence_current WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(conn)
        .await
        .map_err(self.err("reading the current window"))?;
        row.map(|r| self.window(&r, "presence_current")).transpose()
    }

    #[allow(clippy::too_many_arguments)]
    async fn append_history(
        &self,
        conn: &mut PgConnection,
        user: &str,
        kind: HistoryKind,
        at: DateTime<Utc>,
        window: Option<Window>,
        call_id: Option<&str>,
        reason: &str,
        actor: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO presence_history \
             (user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user)
        .bind(kind.as_str())
        .bind(to_ms(at))
        .bind(window.map(|w| to_ms(w.start)))
        .bind(window.map(|w| to_ms(w.end)))
        .bind(call_id)
        .bind(reason)
        .bind(actor)
        .execute(conn)
        .await
        .map_err(self.err("appending to the presence history"))?;
        Ok(())
    }

    /// As the SQLite store's `go_offline`.
    #[allow(clippy::too_many_arguments)]
    async fn go_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        call_id: Option<&str>,
        reason: &str,
        kind: HistoryKind,
        actor: &str,
        record_if_offline: bool,
    ) -> Result<Option<Window>> {
        require_user(user)?;
        let mut tx = self.begin_for(user).await?;
        let old = self.current_in(&mut tx, user).await?;
        if old.is_none() && !record_if_offline {
            // Dropping the transaction rolls it back.
            return Ok(None);
        }
        sqlx::query("DELETE FROM presence_current WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(self.err("closing the current window"))?;
        self.append_history(&mut tx, user, kind, at, old, call_id, reason, actor)
            .await?;
        if kind == HistoryKind::NotResponding {
            sqlx::query(
                "INSERT INTO agent_not_responding (user_id, since_ms, reason) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET since_ms = excluded.since_ms, reason = excluded.reason",
            )
            .bind(user)
            .bind(to_ms(at))
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(self.err("marking the agent not responding"))?;
        }
        self.commit(tx, "committing an offline change").await?;
        Ok(old)
    }

    /// Proves the store can take a write now, for `/readyz`, and keeps
    /// nothing: a temporary table made in a transaction that is rolled back.
    pub async fn write_probe(&self) -> Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("probing that the store is writable"))?;
        sqlx::query("CREATE TEMPORARY TABLE readyz_probe (x BIGINT) ON COMMIT DROP")
            .execute(&mut *tx)
            .await
            .map_err(self.err("probing that the store is writable"))?;
        tx.rollback()
            .await
            .map_err(self.err("probing that the store is writable"))
    }

    /// Every agent's history entries at or after `since`, oldest first.
    pub async fn history_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT id, user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, \
             actor FROM presence_history WHERE at_ms >= $1 ORDER BY at_ms, id LIMIT $2",
        )
        .bind(to_ms(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading the presence history"))?;
        rows.iter().map(|r| self.history_entry(r)).collect()
    }

    fn history_entry(&self, r: &PgRow) -> Result<HistoryEntry> {
        let kind: String = r.try_get("kind").map_err(self.err("reading a row"))?;
        let kind = HistoryKind::parse(&kind)
            .ok_or_else(|| self.corrupt(format!("presence_history.kind = {kind:?}")))?;
        let start = self.opt_time(r, "presence_history", "window_start_ms")?;
        let end = self.opt_time(r, "presence_history", "window_end_ms")?;
        let window = match (start, end) {
            (Some(s), Some(e)) => Some(Window::new(s, e).ok_or_else(|| {
                self.corrupt(format!("presence_history window {s}..{e} is empty"))
            })?),
            _ => None,
        };
        Ok(HistoryEntry {
            id: r.try_get("id").map_err(self.err("reading a row"))?,
            actor: r.try_get("actor").map_err(self.err("reading a row"))?,
            user: r.try_get("user_id").map_err(self.err("reading a row"))?,
            kind,
            at: self.time(r, "presence_history", "at_ms")?,
            window,
            call_id: r.try_get("call_id").map_err(self.err("reading a row"))?,
            reason: r.try_get("reason").map_err(self.err("reading a row"))?,
        })
    }
}

impl PresenceStore for PgStore {
    async fn set_online(
        &self,
        user: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        call_id: Option<&str>,
        reason: &str,
    ) -> Result<Window> {
        let request = OnlineRequest {
            user,
            start,
            end,
            call_id,
            reason,
        };
        let mut tx = self.begin_for(user).await?;
        let window = self.online_in(&mut tx, &request).await?;
        self.commit(tx, "committing an online change").await?;
        Ok(window)
    }

    async fn set_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        call_id: Option<&str>,
        reason: &str,
    ) -> Result<Option<Window>> {
        self.go_offline(
            user,
            at,
            call_id,
            reason,
            HistoryKind::Offline,
            ACTOR_AGENT,
            true,
        )
        .await
    }

    async fn force_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Window>> {
        self.go_offline(
            user,
            at,
            None,
            reason,
            HistoryKind::ForcedOffline,
            ACTOR_SWITCH,
            true,
        )
        .await
    }

    async fn set_not_responding(
        &self,
        user: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Window>> {
        self.go_offline(
            user,
            at,
            None,
            reason,
            HistoryKind::NotResponding,
            ACTOR_SWITCH,
            true,
        )
        .await
    }

    async fn clear_not_responding(
        &self,
        user: &str,
        at: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> Result<bool> {
        require_user(user)?;
        let mut tx = self.begin_for(user).await?;
        let cleared = sqlx::query("DELETE FROM agent_not_responding WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(self.err("clearing the not-responding mark"))?
            .rows_affected()
            > 0;
        if !cleared {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
        self.append_history(
            &mut tx,
            user,
            HistoryKind::Responding,
            at,
            None,
            None,
            reason,
            actor,
        )
        .await?;
        self.commit(tx, "committing a not-responding change")
            .await?;
        Ok(true)
    }

    async fn all_not_responding(&self) -> Result<Vec<NotResponding>> {
        let rows = sqlx::query(
            "SELECT user_id, since_ms, reason FROM agent_not_responding ORDER BY user_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading the not-responding agents"))?;
        rows.iter()
            .map(|r| {
                Ok(NotResponding {
                    user: r.try_get("user_id").map_err(self.err("reading a row"))?,
                    since: self.time(r, "agent_not_responding", "since_ms")?,
                    reason: r.try_get("reason").map_err(self.err("reading a row"))?,
                })
            })
            .collect()
    }

    async fn expire(&self, user: &str, end: DateTime<Utc>, reason: &str) -> Result<Option<Window>> {
        require_user(user)?;
        let mut tx = self.begin_for(user).await?;
        let window = match self.current_in(&mut tx, user).await? {
            Some(w) if w.end == to_millis_precision(end) => w,
            // Replaced or closed since the timer was armed: nothing to do.
            _ => return Ok(None),
        };
        // On a call through another node: that node closes the window when
        // the call ends (its scheduler deferred it). If that node dies, its
        // claim runs out and the next resync of any node closes it.
        let held: Option<String> = sqlx::query_scalar(
            "SELECT node FROM agent_claims WHERE user_id = $1 AND state = 'busy' \
             AND node <> $2 AND until_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint",
        )
        .bind(user)
        .bind(self.node())
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.err("reading the agent's claim"))?;
        if let Some(node) = held {
            tracing::debug!(agent = %user, node = %node, "window end deferred: on a call through another node");
            return Ok(None);
        }
        sqlx::query("DELETE FROM presence_current WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(self.err("closing an expired window"))?;
        self.append_history(
            &mut tx,
            user,
            HistoryKind::Expired,
            end,
            Some(window),
            None,
            reason,
            ACTOR_SWITCH,
        )
        .await?;
        self.commit(tx, "committing an expiry").await?;
        Ok(Some(window))
    }

    async fn set_window(
        &self,
        user: &str,
        now: DateTime<Utc>,
        end: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> Result<WindowChange> {
        require_user(user)?;
        let (now, end) = (to_millis_precision(now), to_millis_precision(end));
        let invalid = |start| StoreError::InvalidWindow {
            user: user.to_owned(),
            start,
            end,
        };
        if end <= now {
            return Err(invalid(now));
        }
        let mut tx = self.begin_for(user).await?;
        let change = match self.current_in(&mut tx, user).await? {
            Some(old) => {
                let window = Window::new(old.start, end).ok_or_else(|| invalid(old.start))?;
                let kind = if end >= old.end {
                    HistoryKind::Extended
                } else {
                    HistoryKind::Shortened
                };
                sqlx::query(
                    "UPDATE presence_current SET window_end_ms = $1, reason = $2 \
                     WHERE user_id = $3",
                )
                .bind(to_ms(end))
                .bind(reason)
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(self.err("moving the end of the current window"))?;
                WindowChange { kind, window }
            }
            None => {
                let window = Window::new(now, end).ok_or_else(|| invalid(now))?;
                sqlx::query(
                    "INSERT INTO presence_current \
                     (user_id, window_start_ms, window_end_ms, call_id, reason) \
                     VALUES ($1, $2, $3, NULL, $4)",
                )
                .bind(user)
                .bind(to_ms(now))
                .bind(to_ms(end))
                .bind(reason)
                .execute(&mut *tx)
                .await
                .map_err(self.err("writing the current window"))?;
                WindowChange {
                    kind: HistoryKind::Online,
                    window,
                }
            }
        };
        self.append_history(
            &mut tx,
            user,
            change.kind,
            now,
            Some(change.window),
            None,
            reason,
            actor,
        )
        .await?;
        self.commit(tx, "committing a window set for an agent")
            .await?;
        Ok(change)
    }

    async fn end_window(
        &self,
        user: &str,
        at: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> Result<Option<Window>> {
        self.go_offline(
            user,
            at,
            None,
            reason,
            HistoryKind::ForcedOffline,
            actor,
            false,
        )
        .await
    }

    async fn history_page(&self, user: &str, q: HistoryQuery) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT id, user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, \
             actor FROM presence_history \
             WHERE user_id = $1 AND id < $2 AND at_ms >= $3 AND at_ms < $4 \
             ORDER BY id DESC LIMIT $5",
        )
        .bind(user)
        .bind(q.before.unwrap_or(i64::MAX))
        .bind(q.since.map_or(i64::MIN, to_ms))
        .bind(q.until.map_or(i64::MAX, to_ms))
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading the presence history"))?;
        rows.iter().map(|r| self.history_entry(r)).collect()
    }

    async fn current(&self, user: &str) -> Result<Option<Window>> {
        let row = sqlx::query(
            "SELECT window_start_ms, window_end_ms FROM presence_current WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("reading the current window"))?;
        row.map(|r| self.window(&r, "presence_current")).transpose()
    }

    async fn mark_reminded(
        &self,
        user: &str,
        end: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        if user.is_empty() {
            return Err(StoreError::EmptyUser);
        }
        let end_ms = end.timestamp_millis();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("starting a reminder"))?;
        sqlx::query("DELETE FROM reminders WHERE user_id = $1 AND window_end_ms < $2")
            .bind(user)
            .bind(end_ms)
            .execute(&mut *tx)
            .await
            .map_err(self.err("forgetting old reminders"))?;
        // Two nodes due at once: the primary key lets exactly one in.
        let first = sqlx::query(
            "INSERT INTO reminders (user_id, window_end_ms, at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .bind(end_ms)
        .bind(at.timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(self.err("recording a reminder"))?
        .rows_affected()
            == 1;
        tx.commit()
            .await
            .map_err(self.err("committing a reminder"))?;
        Ok(first)
    }

    async fn all_current(&self) -> Result<Vec<(String, Window)>> {
        // COLLATE "C": the byte order SQLite's BINARY collation gives, so
        // both stores list agents alike whatever the database's locale.
        let rows = sqlx::query(
            "SELECT user_id, window_start_ms, window_end_ms FROM presence_current \
             ORDER BY user_id COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("listing online agents"))?;
        rows.iter()
            .map(|r| {
                let user: String = r.try_get("user_id").map_err(self.err("reading a row"))?;
                Ok((user, self.window(r, "presence_current")?))
            })
            .collect()
    }

    async fn history(&self, user: &str, limit: u32) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT id, user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, \
             actor FROM presence_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(user)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading the presence history"))?;
        rows.iter().map(|r| self.history_entry(r)).collect()
    }

    async fn close_expired(&self, now: DateTime<Utc>) -> Result<Vec<(String, Window)>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("starting a write transaction"))?;
        // One statement picks and closes: a row another writer closes
        // meanwhile is not returned here, so no window is recorded as
        // expired twice.
        let rows = sqlx::query(
            "DELETE FROM presence_current WHERE window_end_ms <= $1 \
             RETURNING user_id, window_start_ms, window_end_ms",
        )
        .bind(to_ms(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(self.err("closing expired windows"))?;
        let mut closed = Vec::with_capacity(rows.len());
        for r in &rows {
            let user: String = r.try_get("user_id").map_err(self.err("reading a row"))?;
            closed.push((user, self.window(r, "presence_current")?));
        }
        closed.sort_by(|(ua, a), (ub, b)| a.end.cmp(&b.end).then_with(|| ua.cmp(ub)));
        for (user, window) in &closed {
            self.append_history(
                &mut tx,
                user,
                HistoryKind::Expired,
                window.end,
                Some(*window),
                None,
                "window ended",
                ACTOR_SWITCH,
            )
            .await?;
        }
        self.commit(tx, "committing expiries").await?;
        for (user, window) in &closed {
            tracing::info!(agent = %user, end = %super::fmt_secs(window.end), "window expired");
        }
        Ok(closed)
    }

    async fn insert_call(&self, call: &NewCall) -> Result<i64> {
        postgres_calls::insert_call(self, call).await
    }

    async fn update_call(&self, id: i64, update: &CallUpdate) -> Result<()> {
        postgres_calls::update_call(self, id, update).await
    }

    async fn insert_attempt(&self, call: i64, attempt: &NewAttempt) -> Result<i64> {
        postgres_calls::insert_attempt(self, call, attempt).await
    }

    async fn start_attempt(
        &self,
        call: i64,
        agent_user_id: &str,
        started_at: DateTime<Utc>,
    ) -> Result<i64> {
        postgres_calls::start_attempt(self, call, agent_user_id, started_at).await
    }

    async fn finish_attempt(&self, id: i64, attempt: &NewAttempt) -> Result<()> {
        postgres_calls::finish_attempt(self, id, attempt).await
    }

    async fn calls_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<CallRecord>> {
        postgres_calls::calls_since(self, since, limit).await
    }

    async fn insert_login_call(&self, call: &NewLoginCall) -> Result<i64> {
        postgres_logins::insert_login_call(self, call).await
    }

    async fn write_group(
        &self,
        onlines: &[OnlineRequest<'_>],
        logins: &[NewLoginCall],
    ) -> Result<Vec<Window>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("starting a write transaction"))?;
        // Every agent's lock first, in one order on every node: two groups
        // (or a group and a single write, which takes one lock) then never
        // wait on each other in a cycle.
        let mut users: Vec<&str> = onlines.iter().map(|r| r.user).collect();
        users.sort_unstable();
        users.dedup();
        for user in users {
            self.lock_agent(&mut tx, user).await?;
        }
        let mut windows = Vec::with_capacity(onlines.len());
        for r in onlines {
            windows.push(self.online_in(&mut tx, r).await?);
        }
        postgres_logins::insert_in(self, &mut tx, logins).await?;
        self.commit(tx, "committing a group of presence writes")
            .await?;
        Ok(windows)
    }

    async fn login_calls_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<LoginCallRecord>> {
        postgres_logins::login_calls_since(self, since, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, password_env: Option<&str>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            password_env: password_env.map(str::to_owned),
            label: "postgres://tp@127.0.0.1:1/switch".into(),
        }
    }

    #[tokio::test]
    async fn a_password_variable_that_is_not_set_is_named() {
        let var = "TPSWITCH_TEST_PG_PASSWORD_NEVER_SET";
        let err = PgStore::connect(&cfg("postgres://tp@127.0.0.1:1/switch", Some(var)))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(var) && err.contains("not set"), "{err}");
    }

    /// Nothing listens on port 1: the refusal names the label, never the
    /// URL's password.
    #[tokio::test]
    async fn a_refused_connection_names_the_store_without_its_password() {
        let err = PgStore::connect(&cfg("postgres://tp:s3cret@127.0.0.1:1/switch", None))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres://tp@127.0.0.1:1/switch"), "{err}");
        assert!(err.contains("store.url"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
