//! The presence store: the shape every backend implements, and the handle
//! the rest of the switch holds.
//!
//! Why an enum next to the trait: a trait whose methods are `async` (or
//! return `impl Future`) is not dyn-compatible, so `Arc<dyn PresenceStore>`
//! is impossible without boxing every future (what `async_trait` does). The
//! backends are a closed set we own (SQLite now, PostgreSQL later), so
//! [`Store`] is an enum that implements the trait by delegation: no boxing,
//! futures stay `Send` for `tokio::spawn`, and it is cheap to clone (each
//! backend holds a connection pool that is itself a shared handle). Code
//! that wants to be generic can take `S: PresenceStore`.

use std::future::Future;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::calls::{CallRecord, CallUpdate, NewAttempt, NewCall};
use super::logins::{LoginCallRecord, NewLoginCall};
use super::sqlite::SqliteStore;
use super::{HistoryEntry, Result, Window};

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

    /// Close `user`'s window if it is still the one that ends at `end` (what
    /// the scheduler armed); recorded as `expired` at `end`. Returns `None`
    /// when the window was replaced or closed meanwhile, which is not an error.
    fn expire(
        &self,
        user: &str,
        end: DateTime<Utc>,
        reason: &str,
    ) -> impl Future<Output = Result<Option<Window>>> + Send;

    /// The open window of `user`, if any (it may have ended and not be closed yet).
    fn current(&self, user: &str) -> impl Future<Output = Result<Option<Window>>> + Send;

    /// Every open window, ordered by user id.
    fn all_current(&self) -> impl Future<Output = Result<Vec<(String, Window)>>> + Send;

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

    /// Log-in calls started at or after `since`, oldest first, at most `limit`.
    fn login_calls_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LoginCallRecord>>> + Send;
}

/// The store handle the switch passes around (clone it freely).
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
}

impl Store {
    /// Open (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        Ok(Store::Sqlite(SqliteStore::open(path).await?))
    }

    /// Flush and close every connection; call on shutdown.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
        }
    }
}

/// Forward every trait method to the backend in the enum.
macro_rules! delegate {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(s) => s.$method($($arg),*).await,
        }
    };
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
        delegate!(self, set_online(user, start, end, call_id, reason))
    }

    async fn set_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        call_id: Option<&str>,
        reason: &str,
    ) -> Result<Option<Window>> {
        delegate!(self, set_offline(user, at, call_id, reason))
    }

    async fn force_offline(
        &self,
        user: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Window>> {
        delegate!(self, force_offline(user, at, reason))
    }

    async fn expire(&self, user: &str, end: DateTime<Utc>, reason: &str) -> Result<Option<Window>> {
        delegate!(self, expire(user, end, reason))
    }

    async fn current(&self, user: &str) -> Result<Option<Window>> {
        delegate!(self, current(user))
    }

    async fn all_current(&self) -> Result<Vec<(String, Window)>> {
        delegate!(self, all_current())
    }

    async fn history(&self, user: &str, limit: u32) -> Result<Vec<HistoryEntry>> {
        delegate!(self, history(user, limit))
    }

    async fn close_expired(&self, now: DateTime<Utc>) -> Result<Vec<(String, Window)>> {
        delegate!(self, close_expired(now))
    }

    async fn insert_call(&self, call: &NewCall) -> Result<i64> {
        delegate!(self, insert_call(call))
    }

    async fn update_call(&self, id: i64, update: &CallUpdate) -> Result<()> {
        delegate!(self, update_call(id, update))
    }

    async fn insert_attempt(&self, call: i64, attempt: &NewAttempt) -> Result<i64> {
        delegate!(self, insert_attempt(call, attempt))
    }

    async fn start_attempt(
        &self,
        call: i64,
        agent_user_id: &str,
        started_at: DateTime<Utc>,
    ) -> Result<i64> {
        delegate!(self, start_attempt(call, agent_user_id, started_at))
    }

    async fn finish_attempt(&self, id: i64, attempt: &NewAttempt) -> Result<()> {
        delegate!(self, finish_attempt(id, attempt))
    }

    async fn calls_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<CallRecord>> {
        delegate!(self, calls_since(since, limit))
    }

    async fn insert_login_call(&self, call: &NewLoginCall) -> Result<i64> {
        delegate!(self, insert_login_call(call))
    }

    async fn login_calls_since(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<LoginCallRecord>> {
        delegate!(self, login_calls_since(since, limit))
    }
}
