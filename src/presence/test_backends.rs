//! Test stores on either backend, so one store test runs against both.
//!
//! PostgreSQL needs a server: `TPSWITCH_TEST_POSTGRES` names it (a URL of a
//! user that may create databases; `scripts/test` starts a throwaway
//! cluster and sets it). Each test gets a database of its own. Without the
//! variable a PostgreSQL test says so loudly and passes, except under CI
//! (`CI` set), where a missing server is a failure.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

use super::backend::Store;
use super::postgres::PgStore;
use crate::config::model::PostgresConfig;

/// The variable naming the test server.
pub(crate) const TEST_POSTGRES_ENV: &str = "TPSWITCH_TEST_POSTGRES";

/// A fresh store and what keeps it alive (a temporary folder for SQLite).
pub(crate) struct Fresh {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

/// A new SQLite store in a file of its own.
pub(crate) async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Store::open(&dir.path().join("data/tpswitch.db"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Fresh {
        store,
        _dir: Some(dir),
    }
}

/// A new PostgreSQL store in a database of its own, or `None` (after a loud
/// message) when no test server is named outside CI.
pub(crate) async fn postgres() -> Option<Fresh> {
    let cfg = fresh_database().await?;
    let store = PgStore::connect(&cfg)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Some(Fresh {
        store: Store::Postgres(store),
        _dir: None,
    })
}

/// Creates an empty database on the test server and returns how to reach
/// it; `None` when no server is named and `CI` is not set.
pub(crate) async fn fresh_database() -> Option<PostgresConfig> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let Ok(admin) = std::env::var(TEST_POSTGRES_ENV) else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{TEST_POSTGRES_ENV} is not set under CI: the PostgreSQL store tests need a server \
                 (scripts/test starts one with scripts/pg-test-cluster)"
            );
        }
        eprintln!(
            "SKIPPED: no PostgreSQL test server ({TEST_POSTGRES_ENV} unset); \
             run `eval \"$(scripts/pg-test-cluster start)\"` first, or use scripts/test"
        );
        return None;
    };
    let name = format!(
        "tps_test_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach {TEST_POSTGRES_ENV}: {e}"));
    // A leftover of an earlier run with the same pid would fail the CREATE.
    // Two statements, two round trips: several in one string would run
    // as one transaction, where neither may run.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
    }
    let mut url = url::Url::parse(&admin).expect("the test server's URL");
    url.set_path(&format!("/{name}"));
    Some(PostgresConfig {
        url: url.to_string(),
        password_env: None,
        label: format!("postgres://test/{name}"),
    })
}

/// Runs each named `async fn NAME(s: &Store)` of the enclosing module on
/// both backends: `on_sqlite::NAME` and `on_postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let fresh = crate::presence::test_backends::sqlite().await;
                    super::$name(&fresh.store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(fresh) = crate::presence::test_backends::postgres().await {
                        super::$name(&fresh.store).await;
                        fresh.store.close().await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
