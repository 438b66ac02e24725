//! SQLite presence store: the embedded default.
//!
//! Durability: WAL journal with `synchronous=FULL`, so once a write has
//! returned `Ok` it is on disk and survives `kill -9` or a power cut (in WAL
//! mode, NORMAL could lose the last commits on power loss). WAL also lets
//! another process — `tpswitch agents` — read while the switch writes.
//! Writes use `BEGIN IMMEDIATE`: they take the write lock up front, so two
//! writers wait on `busy_timeout` instead of one failing with SQLITE_BUSY
//! when it tries to upgrade a read transaction.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;

use super::calls::{CallRecord, CallUpdate, NewAttempt, NewCall};
use super::logins::{LoginCallRecord, NewLoginCall};
use super::sqlite_write::WriteTx;
use super::store::{
    cannot_write, require_user, to_millis_precision, OnlineRequest, PresenceStore, StoreError,
};
use super::write_health::{WriteHealth, WriteReport, REPORT_EVERY};
use super::{
    from_ms, sqlite_calls, sqlite_logins, to_ms, HistoryEntry, HistoryKind, HistoryQuery,
    NotResponding, Result, Window, WindowChange, ACTOR_AGENT, ACTOR_SWITCH,
};

/// The versioned schema, embedded at build time from `migrations/`.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection settings; the defaults suit one switch plus a few readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteSettings {
    /// How long a statement waits for another connection's lock before
    /// failing. Writes are a few milliseconds; seconds cover a slow disk.
    pub busy_timeout: Duration,
    /// Connections in all: the one writer and at least one reader. SQLite
    /// serialises writers anyway; the readers let reads (API, reports)
    /// proceed during a write.
    pub max_connections: u32,
    /// How long a reader may sit unused before it is closed. A connection
    /// is a thread with its own page cache and allocator cache: the readers
    /// grow to meet a burst of reads, and once the burst is over they go,
    /// with the memory they took (issue 15). sqlx looks for them every
    /// `idle_timeout`, so one goes between one and two of these after its
    /// last use. The writer stays open.
    pub idle_timeout: Duration,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        SqliteSettings {
            busy_timeout: Duration::from_secs(5),
            max_connections: 4,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// The SQLite store. Cloning shares the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads (the API, reports, listings): WAL lets them run beside a write.
    readers: SqlitePool,
    /// Every write, on one connection that stays open. SQLite lets one
    /// writer in at a time anyway; on one connection its page cache stays
    /// valid from one write to the next, where a write on whichever pooled
    /// connection was free first read again from the WAL each page the
    /// others had changed (five `pread`s a log-in call record), and one
    /// worker thread is woken instead of several (issue 15). In memory and
    /// read-only, the same pool as `readers`.
    writer: SqlitePool,
    /// Named in every error; `:memory:` for in-memory stores.
    path: Arc<PathBuf>,
    /// Whether writes fail for want of space or permission; shared by the
    /// clones so the log says so once per interval for the whole switch.
    health: Arc<Mutex<WriteHealth>>,
}

/// The store holds what must not be read by every local user: the PINs of
/// users made through the API, callers' numbers, call records. A new
/// database file is made readable and writable by its owner only (SQLite
/// gives its `-wal` and `-shm` files the database file's mode); an existing
/// one is left as it is, with a warning when others may read it. A file
/// that cannot be made here is left to the open that follows, which names
/// the problem.
fn create_private(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    if made.is_err() {
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    db = %path.display(),
                    mode = %format!("{mode:o}"),
                    "the store may be read by other users; it holds PINs and callers' numbers: chmod 600 it and its -wal and -shm files"
                );
            }
        }
    }
}

impl SqliteStore {
    /// Open the database at `path`, creating its folder and file if missing,
    /// and apply any migrations not yet applied.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteSettings::default()).await
    }

    /// [`SqliteStore::open`] with explicit settings.
    pub async fn open_with(path: &Path, settings: SqliteSettings) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| StoreError::CreateDir {
                    dir: dir.to_path_buf(),
                    db: path.to_path_buf(),
                    source,
                })?;
        }
        create_private(path);
        let store = Self::connect(path, Self::options(path, &settings), &settings).await?;
        store.migrate().await?;
        tracing::info!(db = %path.display(), "presence store open");
        Ok(store)
    }

    fn options(path: &Path, settings: &SqliteSettings) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(settings.busy_timeout)
            .foreign_keys(true)
    }

    async fn connect(
        path: &Path,
        options: SqliteConnectOptions,
        settings: &SqliteSettings,
    ) -> Result<Self> {
        // The writer first: it creates the file and sets WAL on it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // sqlx pings a pooled connection before each use by default: for
            // a network database, a check that the server is still there. An
            // SQLite connection is a thread of this process with the file
            // open; the ping only cost a round trip to that thread, two
            // context switches, per statement (issue 15).
            .test_before_acquire(false)
            // It stays open, so a quiet switch's next write does not pay
            // for opening the file.
            .min_connections(1)
            .idle_timeout(None)
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Open {
                db: path.to_path_buf(),
                source,
            })?;
        // The readers open as reads come (lazily: `connect_with` would open
        // one now to try it, which the writer has just done), and close when
        // idle.
        let readers = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.saturating_sub(1).max(1))
            .test_before_acquire(false)
            .min_connections(0)
            .idle_timeout(Some(settings.idle_timeout))
            .connect_lazy_with(options);
        Ok(SqliteStore {
            readers,
            writer,
            path: Arc::new(path.to_path_buf()),
            health: Arc::default(),
        })
    }

    /// An existing, migrated database that may not grow past `max_pages`
    /// (`PRAGMA max_page_count`, set again on every reconnect): a full disk
    /// that even root cannot write past, for tests. Raising the limit on the
    /// writer's connection is "space freed".
    #[cfg(test)]
    pub(crate) async fn open_full(path: &Path, max_pages: i64) -> Result<Self> {
        let settings = SqliteSettings {
            max_connections: 1,
            ..SqliteSettings::default()
        };
        let options =
            Self::options(path, &settings).pragma("max_page_count", max_pages.to_string());
        Self::connect(path, options, &settings).await
    }

    /// Open an existing database for reading only (`tpswitch agents` while
    /// the switch runs). Never creates or migrates: a reader must not change
    /// the schema under a running switch.
    pub async fn open_read_only(path: &Path) -> Result<Self> {
        // An error here (e.g. no permission on the folder) is left for the
        // open below to report in full.
        if let Ok(false) = tokio::fs::try_exists(path).await {
            return Err(StoreError::Missing {
                db: path.to_path_buf(),
            });
        }
        // No journal_mode here: WAL is a property of the file, set by the
        // switch, and a read-only connection cannot change it.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(SqliteSettings::default().busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            // No ping before each use: see `connect`.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                db: path.to_path_buf(),
                source,
            })?;
        let store = Self::on_one_pool(pool, path.to_path_buf());
        store.check_schema().await?;
        Ok(store)
    }

    /// A private database in memory, for tests and dry runs. One connection
    /// that is never recycled: each SQLite connection to `:memory:` is its
    /// own database, which would vanish with the connection.
    pub async fn open_in_memory() -> Result<Self> {
        let db = PathBuf::from(":memory:");
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                db: db.clone(),
                source,
            })?;
        let store = Self::on_one_pool(pool, db);
        store.migrate().await?;
        Ok(store)
    }

    /// A store whose reads and writes share one pool: read-only (nothing
    /// to write) and in memory (each connection to `:memory:` is a
    /// database of its own).
    fn on_one_pool(pool: SqlitePool, path: PathBuf) -> Self {
        SqliteStore {
            readers: pool.clone(),
            writer: pool,
            path: Arc::new(path),
            health: Arc::default(),
        }
    }

    /// The database file this store uses.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wait for in-flight queries and close every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }

    /// For reads. A read inside a write transaction uses that transaction's
    /// connection instead.
    pub(crate) fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    /// For every write: `BEGIN IMMEDIATE` transactions and single statements.
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|source| StoreError::Migrate {
                db: self.db(),
                source,
            })
    }

    /// A reader built for this schema must not run against an older one.
    async fn check_schema(&self) -> Result<()> {
        let needed = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&self.readers)
        .await
        .map_err(self.err("reading the schema version"))?;
        // No migrations table: an empty file, or one tpswitch never set up.
        let found: Option<i64> = if tables == 0 {
            None
        } else {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.readers)
                .await
                .map_err(self.err("reading the schema version"))?
        };
        let found = found.unwrap_or(0);
        if found < needed {
            return Err(StoreError::OldSchema {
                db: self.db(),
                found,
                needed,
            });
        }
        Ok(())
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.path.as_ref().clone()
    }

    /// Map a sqlx error to one that names the database and the operation.
    /// A write that failed because the store cannot write (full, read-only,
    /// I/O error) is also counted for the once-per-interval log line.
    pub(crate) fn err(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |source| {
            if cannot_write(&source) {
                self.write_failed(op, &source);
            }
            StoreError::Query {
                db: self.db(),
                op,
                source,
            }
        }
    }

    /// This store's write-failure tracker replaced (tests: no settling time).
    #[cfg(test)]
    pub(crate) fn with_write_health(mut self, health: WriteHealth) -> Self {
        self.health = Arc::new(Mutex::new(health));
        self
    }

    /// True from a write that failed for want of space or permission until
    /// one succeeds a moment after the last failure
    /// ([`super::write_health::SETTLE`]).
    pub fn writes_failing(&self) -> bool {
        self.health.lock().is_ok_and(|h| h.is_failing())
    }

    fn write_failed(&self, op: &'static str, source: &sqlx::Error) {
        let report = self
            .health
            .lock()
            .ok()
            .and_then(|mut h| h.failed(Instant::now()));
        let db = self.path.display();
        match report {
            Some(WriteReport::Failing) => tracing::error!(
                db = %db,
                op,
                error = %source,
                every_s = REPORT_EVERY.as_secs(),
                "the store cannot write: what needs saving is refused (a log-in hears the error prompt, /readyz says not ready) until it can; free space or fix the file's permissions, writes resume by themselves"
            ),
            Some(WriteReport::StillFailing { failures, for_ }) => tracing::error!(
                db = %db,
                op,
                error = %source,
                failures,
                seconds = for_.as_secs(),
                "the store still cannot write"
            ),
            Some(WriteReport::Recovered { .. }) | None => {}
        }
    }

    /// A write reached the disk: ends a failure, saying so once.
    pub(crate) fn write_succeeded(&self) {
        let report = self
            .health
            .lock()
            .ok()
            .and_then(|mut h| h.succeeded(Instant::now()));
        if let Some(WriteReport::Recovered { failures, for_ }) = report {
            tracing::warn!(
                db = %self.path.display(),
                failures,
                seconds = for_.as_secs(),
                "the store takes writes again"
            );
        }
    }

    pub(crate) fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            db: self.db(),
            detail,
        }
    }

    /// Read a stored time (milliseconds since the epoch).
    pub(crate) fn time(&self, row: &SqliteRow, table: &str, col: &str) -> Result<DateTime<Utc>> {
        let ms: i64 = row.try_get(col).map_err(self.err("reading a row"))?;
        from_ms(ms).ok_or_else(|| self.corrupt(format!("{table}.{col} = {ms} is not a time")))
    }

    /// Read an optional stored time.
    pub(crate) fn opt_time(
        &self,
        row: &SqliteRow,
        table: &str,
        col: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        let ms: Option<i64> = row.try_get(col).map_err(self.err("reading a row"))?;
        ms.map(|ms| {
            from_ms(ms).ok_or_else(|| self.corrupt(format!("{table}.{col} = {ms} is not a time")))
        })
        .transpose()
    }

    fn window(&self, row: &SqliteRow, table: &str) -> Result<Window> {
        let start = self.time(row, table, "window_start_ms")?;
        let end = self.time(row, table, "window_end_ms")?;
        Window::new(start, end)
            .ok_or_else(|| self.corrupt(format!("{table} window {start}..{end} is empty")))
    }

    /// A write transaction that holds the write lock from its first
    /// statement and never leaves a broken connection in the pool.
    async fn begin_write(&self) -> Result<WriteTx> {
        WriteTx::begin(self).await
    }

    /// One agent comes online inside `tx` (see `PresenceStore::set_online`).
    async fn online_in(&self, tx: &mut WriteTx, r: &OnlineRequest<'_>) -> Result<Window> {
        let window = r.stored_window()?;
        let OnlineRequest {
            user,
            call_id,
            reason,
            ..
        } = *r;
        sqlx::query(ONLINE)
            .bind(user)
            .bind(to_ms(window.start))
            .bind(to_ms(window.end))
            .bind(call_id)
            .bind(reason)
            .bind(ACTOR_AGENT)
            .execute(&mut **tx)
            .await
            .map_err(self.err("writing the current window"))?;
        Ok(window)
    }

    async fn current_in(&self, tx: &mut WriteTx, user: &str) -> Result<Option<Window>> {
        let row = sqlx::query(
            "SELECT window_start_ms, window_end_ms FROM presence_current WHERE user_id = ?",
        )
        .bind(user)
        .fetch_optional(&mut **tx)
        .await
        .map_err(self.err("reading the current window"))?;
        row.map(|r| self.window(&r, "presence_current")).transpose()
    }

    #[allow(clippy::too_many_arguments)]
    async fn append_history(
        &self,
        tx: &mut WriteTx,
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user)
        .bind(kind.as_str())
        .bind(to_ms(at))
        .bind(window.map(|w| to_ms(w.start)))
        .bind(window.map(|w| to_ms(w.end)))
        .bind(call_id)
        .bind(reason)
        .bind(actor)
        .execute(&mut **tx)
        .await
        .map_err(self.err("appending to the presence history"))?;
        Ok(())
    }

    /// Close `user`'s window (if any) and record `kind` at `at`. With no
    /// window open, the request is still recorded if `record_if_offline`
    /// (the agent's own "offline" key is part of their story; a
    /// supervisor's end of nothing changes nothing).
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
        let mut tx = self.begin_write().await?;
        let old = self.current_in(&mut tx, user).await?;
        if old.is_none() && !record_if_offline {
            tx.rollback().await;
            return Ok(None);
        }
        sqlx::query("DELETE FROM presence_current WHERE user_id = ?")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(self.err("closing the current window"))?;
        self.append_history(&mut tx, user, kind, at, old, call_id, reason, actor)
            .await?;
        if kind == HistoryKind::NotResponding {
            sqlx::query(
                "INSERT INTO agent_not_responding (user_id, since_ms, reason) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET since_ms = excluded.since_ms, reason = excluded.reason",
            )
            .bind(user)
            .bind(to_ms(at))
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(self.err("marking the agent not responding"))?;
        }
        tx.commit(self, "committing an offline change").await?;
        Ok(old)
    }
}

impl PresenceStore for SqliteStore {
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
        let mut tx = self.begin_write().await?;
        let window = self.online_in(&mut tx, &request).await?;
        tx.commit(self, "committing an online change").await?;
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
        // Every log-in call asks, and hardly any agent is marked: a read
        // answers that without taking the write lock (a BEGIN IMMEDIATE
        // and a ROLLBACK, three round trips to the connection's thread and
        // its file locks, issue 15). Only this node writes this file, so a
        // mark set after the read is one set after the clear.
        let marked: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM agent_not_responding WHERE user_id = ?")
                .bind(user)
                .fetch_optional(self.writer())
                .await
                .map_err(self.err("reading the not-responding mark"))?;
        if marked.is_none() {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        let cleared = sqlx::query("DELETE FROM agent_not_responding WHERE user_id = ?")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(self.err("clearing the not-responding mark"))?
            .rows_affected()
            > 0;
        if !cleared {
            tx.rollback().await;
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
        tx.commit(self, "committing a not-responding change")
            .await?;
        Ok(true)
    }

    async fn all_not_responding(&self) -> Result<Vec<NotResponding>> {
        let rows = sqlx::query(
            "SELECT user_id, since_ms, reason FROM agent_not_responding ORDER BY user_id",
        )
        .fetch_all(self.readers())
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
        let mut tx = self.begin_write().await?;
        let window = match self.current_in(&mut tx, user).await? {
            Some(w) if w.end == to_millis_precision(end) => w,
            // Replaced or closed since the timer was armed: nothing to do.
            _ => {
                tx.rollback().await;
                return Ok(None);
            }
        };
        sqlx::query("DELETE FROM presence_current WHERE user_id = ?")
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
        tx.commit(self, "committing an expiry").await?;
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
        let mut tx = self.begin_write().await?;
        let change = match self.current_in(&mut tx, user).await? {
            Some(old) => {
                let window = Window::new(old.start, end).ok_or_else(|| invalid(old.start))?;
                let kind = if end >= old.end {
                    HistoryKind::Extended
                } else {
                    HistoryKind::Shortened
                };
                // The call that opened the window stays its call.
                sqlx::query(
                    "UPDATE presence_current SET window_end_ms = ?, reason = ? WHERE user_id = ?",
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
                     VALUES (?, ?, ?, NULL, ?)",
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
        tx.commit(self, "committing a window set for an agent")
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
        // Absent bounds become bounds no row can cross, so one statement
        // (and its plan on the (user_id, id) index) serves every query.
        let rows = sqlx::query(
            "SELECT id, user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, \
             actor FROM presence_history \
             WHERE user_id = ? AND id < ? AND at_ms >= ? AND at_ms < ? \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(user)
        .bind(q.before.unwrap_or(i64::MAX))
        .bind(q.since.map_or(i64::MIN, to_ms))
        .bind(q.until.map_or(i64::MAX, to_ms))
        .bind(i64::from(q.limit))
        .fetch_all(&self.readers)
        .await
        .map_err(self.err("reading the presence history"))?;
        rows.iter().map(|r| self.history_entry(r)).collect()
    }

    async fn current(&self, user: &str) -> Result<Option<Window>> {
        let row = sqlx::query(
            "SELECT window_start_ms, window_end_ms FROM presence_current WHERE user_id = ?",
        )
        .bind(user)
        .fetch_optional(&self.readers)
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
        require_user(user)?;
        let end_ms = end.timestamp_millis();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM reminders WHERE user_id = ? AND window_end_ms < ?")
            .bind(user)
            .bind(end_ms)
            .execute(&mut *tx)
            .await
            .map_err(self.err("forgetting old reminders"))?;
        let first = sqlx::query(
            "INSERT OR IGNORE INTO reminders (user_id, window_end_ms, at_ms) VALUES (?, ?, ?)",
        )
        .bind(user)
        .bind(end_ms)
        .bind(at.timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(self.err("recording a reminder"))?
        .rows_affected()
            == 1;
        tx.commit(self, "committing a reminder").await?;
        Ok(first)
    }

    async fn all_current(&self) -> Result<Vec<(String, Window)>> {
        let rows = sqlx::query(
            "SELECT user_id, window_start_ms, window_end_ms FROM presence_current ORDER BY user_id",
        )
        .fetch_all(&self.readers)
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
             actor FROM presence_history WHERE user_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(user)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(self.err("reading the presence history"))?;
        rows.iter().map(|r| self.history_entry(r)).collect()
    }

    async fn close_expired(&self, now: DateTime<Utc>) -> Result<Vec<(String, Window)>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT user_id, window_start_ms, window_end_ms FROM presence_current \
             WHERE window_end_ms <= ? ORDER BY window_end_ms, user_id",
        )
        .bind(to_ms(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(self.err("finding expired windows"))?;
        let mut closed = Vec::with_capacity(rows.len());
        for r in &rows {
            let user: String = r.try_get("user_id").map_err(self.err("reading a row"))?;
            closed.push((user, self.window(r, "presence_current")?));
        }
        sqlx::query("DELETE FROM presence_current WHERE window_end_ms <= ?")
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await
            .map_err(self.err("closing expired windows"))?;
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
        tx.commit(self, "committing expiries").await?;
        for (user, window) in &closed {
            tracing::info!(agent = %user, end = %super::fmt_secs(window.end), "window expired");
        }
        Ok(closed)
    }

    async fn insert_call(&self, call: &NewCall) -> Result<i64> {
        sqlite_calls::insert_call(self, call).await
    }

    async fn update_call(&self, id: i64, update: &CallUpdate) -> Result<()> {
        sqlite_calls::update_call(self, id, update).await
    }

    async fn insert_attempt(&self, call: i64, attempt: &NewAttempt) -> Result<i64> {
        sqlite_calls::insert_attempt(self, call, attempt).await
    }

    async fn start_attempt(
        &self,
        call: i64,
        agent_user_id: &str,
        started_at: DateTime<Utc>,
    ) -> Result<i64> {
        sqlite_calls::start_attempt(self, call, agent_user_id, started_at).await
    }

    async fn finish_attempt(&self, id: i64, attempt: &NewAttempt) -> Result<()> {
        sqlite_calls::finish_attempt(self, id, attempt).await
    }

    async fn calls_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<CallRecord>> {
        sqlite_calls::calls_since(self, since, limit).await
    }

    async fn insert_login_call(&self, call: &NewLoginCall) -> Result<i64> {
        sqlite_logins::insert_login_call(self, call).await
    }

    async fn write_group(
        &self,
        onlines: &[OnlineRequest<'_>],
        logins: &[NewLoginCall],
    ) -> Result<Vec<Window>> {
        let mut tx = self.begin_write().await?;
        let mut windows = Vec::with_capacity(onlines.len());
        for r in onlines {
            windows.push(self.online_in(&mut tx, r).await?);
        }
        sqlite_logins::insert_in(self, &mut tx, logins).await?;
        tx.commit(self, "committing a group of presence writes")
            .await?;
        Ok(windows)
    }

    async fn login_calls_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<LoginCallRecord>> {
        sqlite_logins::login_calls_since(self, since, limit).await
    }
}

/// A window's three writes as one statement list, one round trip to the
/// connection's thread instead of four (issue 15: each was a wake-up of that
/// thread and of ours): the window it replaces, if any, copied into the
/// history as `replaced` without reading it out; the current window; its
/// `online` history row. In that order, as the history's ids show.
/// Parameters are numbered, so sqlx binds each statement from the one list:
/// ?1 user, ?2 start (also the rows' time), ?3 end, ?4 Call-ID, ?5 reason,
/// ?6 actor. The kinds are `HistoryKind::Replaced` and `Online` spelled as
/// stored (test `presence::tests_store`'s `online_while_online_replaces_the_window`,
/// which holds both backends to the same rows).
const ONLINE: &str = "INSERT INTO presence_history \
     (user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, actor) \
     SELECT ?1, 'replaced', ?2, window_start_ms, window_end_ms, ?4, ?5, ?6 \
     FROM presence_current WHERE user_id = ?1; \
     INSERT INTO presence_current (user_id, window_start_ms, window_end_ms, call_id, reason) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (user_id) DO UPDATE SET window_start_ms = excluded.window_start_ms, \
     window_end_ms = excluded.window_end_ms, call_id = excluded.call_id, \
     reason = excluded.reason; \
     INSERT INTO presence_history \
     (user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, actor) \
     VALUES (?1, 'online', ?2, ?2, ?3, ?4, ?5, ?6)";

/// What `history_since` asks; read through the `presence_history_at`
/// index (`migrations/0009_history_at.sql`), never a scan of the table.
pub(super) const HISTORY_SINCE: &str =
    "SELECT id, user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, \
     actor FROM presence_history WHERE at_ms >= ? ORDER BY at_ms, id LIMIT ?";

impl SqliteStore {
    /// Every agent's history entries at or after `since`, oldest first, at
    /// most `limit` (what the floor's "online today" is summed from).
    pub async fn history_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(HISTORY_SINCE)
            .bind(to_ms(since))
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(self.err("reading the presence history"))?;
        rows.iter().map(|r| self.history_entry(r)).collect()
    }

    fn history_entry(&self, r: &SqliteRow) -> Result<HistoryEntry> {
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
