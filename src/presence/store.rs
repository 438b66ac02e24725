//! The presence store's contract and its errors.
//!
//! Two backends implement it, [`SqliteStore`](super::SqliteStore) and
//! [`PgStore`](super::PgStore); the rest of the switch holds
//! [`Store`](super::Store), which is one or the other.

use std::future::Future;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::calls::{CallRecord, CallUpdate, NewAttempt, NewCall};
use super::logins::{LoginCallRecord, NewLoginCall};
use super::{HistoryEntry, HistoryQuery, NotResponding, Result, Window, WindowChange};

/// Everything that can go wrong in the store. Every variant that touches the
/// database names its file, so the message alone tells an operator where to look.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the folder {dir} for the database {db}: {source}; create it by hand or point [store] path at a writable place")]
    CreateDir {
        dir: PathBuf,
        db: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database {db} does not exist; start tpswitch once to create it, or check [store] path"
    )]
    Missing { db: PathBuf },
    #[error("cannot open the database {db}: {source}; check that it is a SQLite file and that this user may read and write it and its folder")]
    Open { db: PathBuf, source: sqlx::Error },
    #[error("cannot bring the database {db} up to date: {source}; if a newer tpswitch wrote it, run that version or restore a backup")]
    Migrate {
        db: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("the database {db} has schema version {found}, this tpswitch needs {needed}; start the switch (which upgrades it) before reading it")]
    OldSchema {
        db: PathBuf,
        found: i64,
        needed: i64,
    },
    #[error("database {db}: {op} failed: {source}")]
    Query {
        db: PathBuf,
        op: &'static str,
        source: sqlx::Error,
    },
    #[error("database {db} holds a value this tpswitch cannot read: {detail}; was it written by a newer version?")]
    Corrupt { db: PathBuf, detail: String },
    #[error("database {db}: no call with row id {id}")]
    CallNotFound { db: PathBuf, id: i64 },
    #[error("database {db}: no call attempt with row id {id}")]
    AttemptNotFound { db: PathBuf, id: i64 },
    #[error("cannot set {user:?} online: the window end {end} is not after its start {start}")]
    InvalidWindow {
        user: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("a user id is required, got an empty one")]
    EmptyUser,
    #[error("cannot connect to the PostgreSQL store {db}: {source}; check store.url, that the server runs and that it accepts this user (password from store.password_env, if set)")]
    PgConnect { db: String, source: sqlx::Error },
    #[error("the PostgreSQL store {db} takes its password from the environment variable {var}, which is not set; export it, or change store.password_env")]
    PgPassword { db: String, var: String },
}

impl StoreError {
    /// The store could not write for want of space or permission, or an
    /// I/O error: the store itself says so once per interval, so callers
    /// need not log each one.
    pub fn cannot_write(&self) -> bool {
        matches!(self, StoreError::Query { source, .. } if cannot_write(source))
    }
}

/// SQLITE_READONLY (8), SQLITE_IOERR (10) and SQLITE_FULL (13), with their
/// extended codes (<https://sqlite.org/rescode.html>: the low byte is the
/// primary code): the store cannot write, whatever the statement.
pub(crate) fn cannot_write(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 8 | 10 | 13))
}

/// One agent coming online, as [`PresenceStore::set_online`] takes it; a
/// batch of them goes to [`PresenceStore::write_group`].
#[derive(Debug, Clone, Copy)]
pub struct OnlineRequest<'a> {
    pub user: &'a str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub call_id: Option<&'a str>,
    pub reason: &'a str,
}

/// Every write names its agent.
pub(super) fn require_user(user: &str) -> Result<()> {
    if user.is_empty() {
        Err(StoreError::EmptyUser)
    } else {
        Ok(())
    }
}

/// The precision both stores keep: whole milliseconds UTC (an INTEGER in
/// SQLite, a BIGINT in PostgreSQL).
pub(super) fn to_millis_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl OnlineRequest<'_> {
    /// The window as both stores keep it: whole milliseconds, so a timer
    /// armed with the end handed back matches the row again (`expire`
    /// compares ends). An empty user or an empty window is refused.
    pub(super) fn stored_window(&self) -> Result<Window> {
        require_user(self.user)?;
        let (start, end) = (
            to_millis_precision(self.start),
            to_millis_precision(self.end),
        );
        Window::new(start, end).ok_or_else(|| StoreError::InvalidWindow {
            user: self.user.to_owned(),
            start,
            end,
        })
    }
}

/// The presence and call store. All writes of presence change the current
/// state and append to the history in one transaction: either both are
/// durable or neither is.
///
/// Every method returns a `Send` future so the store can be used from tokio
/// tasks.
pub trait PresenceStore: Send + Sync {
    /// Put `user` online for `start..end`. If they were already online, the
    /// old window is recorded as `replaced` (at `start`) and this one takes over.
    fn set_online(
        &self,
        user: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        call_id: Option<&str>,
        reason: &str,
    ) -> impl Future<Output = Result<Window>> + Send;

    /// The agent asked to go offline at `at`. Returns the window that was
    /// closed, or `None` if they were not online (the request is still
    /// recorded in the history).
    fn set_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        call_id: Option<&str>,
        reason: &str,
    ) -> impl Future<Output = Result<Option<Window>>> + Send;

    /// The switch or an administrator set the agent offline (e.g. too many
    /// missed calls); recorded as `forced-offline`.
    fn force_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> impl Future<Output = Result<Option<Window>>> + Send;

    /// The switch closes `user`'s window at `at` after missed offers and
    /// marks them not responding (recorded as `not-responding`, actor
    /// `switch`), both in one transaction. Returns the window closed; the
    /// mark is set even when there was none (their window ended meanwhile:
    /// they still missed the offers).
    fn set_not_responding(
        &self,
        user: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> impl Future<Output = Result<Option<Window>>> + Send;

    /// Clear `user`'s not-responding mark, recorded as `responding` with
    /// `actor` and `reason`. `false`, and nothing recorded, when they had
    /// no mark.
    fn clear_not_responding(
        &self,
        user: &str,
        at: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Every agent marked not responding, ordered by user id.
    fn all_not_responding(&self) -> impl Future<Output = Result<Vec<NotResponding>>> + Send;

    /// Close `user`'s window if it is still the one that ends at `end` (what
    /// the scheduler armed); recorded as `expired` at `end`. Returns `None`
    /// when the window was replaced or closed meanwhile, which is not an error.
    fn expire(
        &self,
        user: &str,
        end: DateTime<Utc>,
        reason: &str,
    ) -> impl Future<Output = Result<Option<Window>>> + Send;

    /// A supervisor sets `user`'s window to end at `end` (after `now`): a
    /// new window from `now` if they are offline, otherwise the open one
    /// keeps its start and takes the new end (`extended` or `shortened`).
    /// Recorded with `actor` and `reason`.
    fn set_window(
        &self,
        user: &str,
        now: DateTime<Utc>,
        end: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> impl Future<Output = Result<WindowChange>> + Send;

    /// A supervisor ends `user`'s window at `at`: recorded as
    /// `forced-offline` with `actor` and `reason`. `None`, and nothing
    /// recorded, when there is no open window.
    fn end_window(
        &self,
        user: &str,
        at: DateTime<Utc>,
        actor: &str,
        reason: &str,
    ) -> impl Future<Output = Result<Option<Window>>> + Send;

    /// `user`'s history entries chosen by `query`, newest first.
    fn history_page(
        &self,
        user: &str,
        query: HistoryQuery,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>>> + Send;

    /// The open window of `user`, if any (it may have ended and not be closed yet).
    fn current(&self, user: &str) -> impl Future<Output = Result<Option<Window>>> + Send;

    /// Every open window, ordered by user id.
    fn all_current(&self) -> impl Future<Output = Result<Vec<(String, Window)>>> + Send;

    /// Records that `user` is being reminded, at `at`, of the window ending
    /// at `end`: `true` if this is the first reminder for that end (place
    /// the call), `false` if one was recorded already (by this process
    /// before a restart, or by another node). Older ends' records go.
    fn mark_reminded(
        &self,
        user: &str,
        end: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// `user`'s latest `limit` history entries, newest first.
    fn history(
        &self,
        user: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>>> + Send;

    /// Close every window with `end <= now`, each recorded as `expired` at
    /// its real end. Returns them, oldest end first. For start-up; while
    /// running, prefer [`PresenceStore::expire`] so busy agents are not cut off.
    fn close_expired(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(String, Window)>>> + Send;

    /// Record a new customer call; returns its row id.
    fn insert_call(&self, call: &NewCall) -> impl Future<Output = Result<i64>> + Send;

    /// Set the fields of `update` that are `Some` on call row `id`.
    fn update_call(&self, id: i64, update: &CallUpdate) -> impl Future<Output = Result<()>> + Send;

    /// Record an attempt to reach an agent for call row `call`; returns its row id.
    fn insert_attempt(
        &self,
        call: i64,
        attempt: &NewAttempt,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// Record that an attempt to reach `agent_user_id` for call row `call`
    /// has started (listed as in progress); returns its row id for
    /// [`PresenceStore::finish_attempt`].
    fn start_attempt(
        &self,
        call: i64,
        agent_user_id: &str,
        started_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// Complete the attempt row `id` made by `start_attempt`.
    fn finish_attempt(
        &self,
        id: i64,
        attempt: &NewAttempt,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Calls started at or after `since`, oldest first, at most `limit`,
    /// each with its attempts.
    fn calls_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<CallRecord>>> + Send;

    /// Record a finished log-in call; returns its row id.
    fn insert_login_call(&self, call: &NewLoginCall) -> impl Future<Output = Result<i64>> + Send;

    /// The presence service's group commit: open each window as
    /// [`set_online`](Self::set_online) would, in the order given, then
    /// record the finished log-in calls, all in one transaction, all or
    /// none: one durable write for many. Returns the windows as stored, in
    /// the order asked.
    fn write_group(
        &self,
        onlines: &[OnlineRequest<'_>],
        logins: &[NewLoginCall],
    ) -> impl Future<Output = Result<Vec<Window>>> + Send;

    /// Log-in calls started at or after `since`, oldest first, at most `limit`.
    fn login_calls_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LoginCallRecord>>> + Send;
}
