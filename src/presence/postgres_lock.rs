//! One switch per PostgreSQL store, as `sqlite_lock` is for SQLite: a
//! session-level advisory lock (`pg_try_advisory_lock`) held on a
//! connection of its own for as long as the switch runs. The server drops
//! it when that connection ends, so a switch killed with SIGKILL leaves no
//! stale lock (once the server sees the socket close).
//!
//! Several nodes on one store (issue 13, later) need claims on agents and
//! one expiry runner instead; until those exist, a second switch on the
//! same database is refused here rather than offering agents twice.

use sqlx::{Connection, PgConnection};

use super::postgres::connect_options;
use super::store::StoreError;
use crate::config::model::PostgresConfig;

/// The advisory lock key: (tpswitch's key space, 0 = "the switch").
const LOCK_SPACE_SWITCH: i32 = 0x7470_0000;

#[derive(Debug, thiserror::Error)]
pub enum PgLockError {
    #[error("the PostgreSQL store {db} is in use by another tpswitch ({holder}); stop that one first, or give this one its own database in store.url")]
    Held { db: String, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot take the store lock on the PostgreSQL store {db}: {source}")]
    Query { db: String, source: sqlx::Error },
}

/// Held while the switch runs; dropping it closes the connection, which
/// releases the lock.
#[derive(Debug)]
pub struct PgStoreLock {
    _conn: PgConnection,
    label: String,
}

impl PgStoreLock {
    /// Takes the lock without waiting, or names who holds it.
    pub async fn acquire(cfg: &PostgresConfig) -> Result<PgStoreLock, PgLockError> {
        let options = connect_options(cfg)?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|source| StoreError::PgConnect {
                db: cfg.label.clone(),
                source,
            })?;
        let query = |source| PgLockError::Query {
            db: cfg.label.clone(),
            source,
        };
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, 0)")
            .bind(LOCK_SPACE_SWITCH)
            .fetch_one(&mut conn)
            .await
            .map_err(query)?;
        if got {
            return Ok(PgStoreLock {
                _conn: conn,
                label: cfg.label.clone(),
            });
        }
        // The holder's application_name is `tpswitch-<pid>` (see
        // `postgres::connect_options`); best effort, for the message only.
        // Advisory locks are per database: a switch holding the same key
        // on another database of the server is not the holder.
        let holder: Option<String> = sqlx::query_scalar(
            "SELECT a.application_name || ' on ' || COALESCE(host(a.client_addr), 'a local socket') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objid = 0 \
             AND l.granted \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             LIMIT 1",
        )
        .bind(i64::from(LOCK_SPACE_SWITCH))
        .fetch_optional(&mut conn)
        .await
        .ok()
        .flatten();
        Err(PgLockError::Held {
            db: cfg.label.clone(),
            holder: holder.unwrap_or_else(|| "holder unknown".into()),
        })
    }

    /// The store it locks, `postgres://user@host:port/db`.
    pub fn label(&self) -> &str {
        &self.label
    }
}
