//! A write transaction that can never poison the pool.
//!
//! sqlx counts transaction depth per connection and decrements it only when
//! its COMMIT or ROLLBACK succeeds. When a COMMIT fails with SQLITE_FULL or
//! SQLITE_IOERR, SQLite has already rolled the transaction back itself
//! (<https://sqlite.org/lang_transaction.html>, "Response To Errors Within A
//! Transaction"); the ROLLBACK sqlx sends on drop then fails with "no
//! transaction is active", the count stays at 1, the connection goes back to
//! the pool, and every later `BEGIN IMMEDIATE` on it fails with "non-zero
//! transaction depth" until the process restarts.
//!
//! So we do not use sqlx's transaction type for writes: `BEGIN IMMEDIATE`
//! and `COMMIT` are plain statements on a connection of our own, and unless
//! COMMIT succeeded the connection is closed instead of returned (closing a
//! SQLite connection rolls back whatever it had open). That covers an error
//! at any statement, a failed COMMIT, and a future dropped half-way.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection};

use super::sqlite::SqliteStore;
use super::Result;

/// Derefs to the connection, so statements run with `.execute(&mut *tx)`.
pub(crate) struct WriteTx {
    conn: PoolConnection<Sqlite>,
    /// True once the connection is known to be out of any transaction.
    committed: bool,
}

impl WriteTx {
    /// Takes the write lock at once (`BEGIN IMMEDIATE`): two writers then
    /// wait on `busy_timeout` instead of one failing when it upgrades.
    pub(crate) async fn begin(store: &SqliteStore) -> Result<WriteTx> {
        let mut conn = store
            .writer()
            .acquire()
            .await
            .map_err(store.err("starting a write transaction"))?;
        if let Err(e) = sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(store.err("starting a write transaction")(e));
        }
        Ok(WriteTx {
            conn,
            committed: false,
        })
    }

    pub(crate) async fn commit(mut self, store: &SqliteStore, op: &'static str) -> Result<()> {
        sqlx::raw_sql("COMMIT")
            .execute(&mut *self.conn)
            .await
            .map_err(store.err(op))?;
        self.committed = true;
        store.write_succeeded();
        Ok(())
    }

    /// Ends a transaction that decided to change nothing. The connection
    /// goes back to the pool only when SQLite confirms it is out of the
    /// transaction.
    pub(crate) async fn rollback(mut self) {
        if sqlx::raw_sql("ROLLBACK")
            .execute(&mut *self.conn)
            .await
            .is_ok()
        {
            self.committed = true;
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl SqliteStore {
    /// Proves the store can take a write now, for `/readyz`, and changes
    /// nothing a reader could see. Two parts, each catching a fault the
    /// other passes:
    /// - a table created inside a savepoint and rolled back: creating a
    ///   table allocates a page, so this fails when the database may not
    ///   grow (SQLITE_FULL from `max_page_count`, even with free bytes
    ///   inside existing pages; with `SELECT 1` in place of the CREATE,
    ///   `the_write_probe_sees_a_full_disk_and_keeps_nothing` fails);
    /// - a commit that rewrites the header's `user_version` with its own
    ///   value: a rolled-back change never reaches the file, so only a
    ///   commit meets a full file system or a file SQLite may not write
    ///   (without it `bench/store_fault.sh` saw `/readyz` ready on a full
    ///   tmpfs while every log-in failed). tpswitch does not use
    ///   `user_version` (sqlx keeps its own migrations table).
    pub async fn write_probe(&self) -> Result<()> {
        let op = "probing that the store is writable";
        let mut tx = WriteTx::begin(self).await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(self.err(op))?;
        sqlx::raw_sql(
            "SAVEPOINT readyz_probe; CREATE TABLE readyz_probe (x INTEGER); \
             ROLLBACK TO readyz_probe; RELEASE readyz_probe",
        )
        .execute(&mut *tx)
        .await
        .map_err(self.err(op))?;
        // PRAGMA takes no bound parameter; `version` is an integer we read.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {version}"
        )))
        .execute(&mut *tx)
        .await
        .map_err(self.err(op))?;
        tx.commit(self, op).await
    }
}
