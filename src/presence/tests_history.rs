//! The presence history with its actors: reading it by page and time, and
//! the migration that added the actor to rows written before it.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};

use super::sqlite::{SqliteStore, MIGRATOR};
use super::store::PresenceStore;
use super::HistoryKind;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

/// Rows written before migration 0008 keep their ids and get the actor
/// their kind implies; the new kinds are accepted after it.
#[tokio::test]
async fn the_actor_migration_keeps_old_rows_and_names_their_actor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        let before = sqlx::migrate::Migrator {
            migrations: Cow::Owned(MIGRATOR.iter().filter(|m| m.version < 8).cloned().collect()),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before.run(&pool).await.unwrap();
        for (kind, at) in [
            ("online", 0),
            ("expired", 10),
            ("forced-offline", 20),
            ("offline", 30),
        ] {
            sqlx::query(
                "INSERT INTO presence_history (user_id, kind, at_ms, reason) VALUES ('ann', ?, ?, 'r')",
            )
            .bind(kind)
            .bind(t(at).timestamp_millis())
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let h = store.history("ann", 10).await.unwrap();
    let got: Vec<_> = h.iter().map(|e| (e.id, e.kind, e.actor.as_str())).collect();
    assert_eq!(
        got,
        [
            (4, HistoryKind::Offline, "agent"),
            (3, HistoryKind::ForcedOffline, "switch"),
            (2, HistoryKind::Expired, "switch"),
            (1, HistoryKind::Online, "agent"),
        ]
    );
    // New rows continue the numbering and may use the new kinds.
    store
        .set_online("ann", t(100), t(200), None, "menu")
        .await
        .unwrap();
    let c = store
        .set_window("ann", t(110), t(300), "floor", "overtime")
        .await
        .unwrap();
    assert_eq!(c.kind, HistoryKind::Extended);
    let h = store.history("ann", 1).await.unwrap();
    assert_eq!(
        (h[0].id, h[0].kind, h[0].actor.as_str()),
        (6, HistoryKind::Extended, "floor")
    );
}

/// A store made before migration 0009 gets the history's time index on
/// its next open, and the floor's "since midnight" read uses it instead of
/// scanning the whole history.
#[tokio::test]
async fn the_history_time_index_is_added_to_an_older_store_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    {
        let pool = sqlx::SqlitePool::connect_with(options.clone())
            .await
            .unwrap();
        let before = sqlx::migrate::Migrator {
            migrations: Cow::Owned(MIGRATOR.iter().filter(|m| m.version < 9).cloned().collect()),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO presence_history (user_id, kind, at_ms, reason, actor) \
             VALUES ('ann', 'online', ?, 'r', 'agent')",
        )
        .bind(t(0).timestamp_millis())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let rows = store.history_since(t(0), 10).await.unwrap();
    assert_eq!(rows.len(), 1, "the old row is still read");
    drop(store);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {}",
        super::sqlite::HISTORY_SINCE
    )))
    .bind(0_i64)
    .bind(10_i64)
    .fetch_all(&pool)
    .await
    .unwrap();
    let plan: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
    assert!(
        plan.iter()
            .any(|d| d.contains("USING INDEX presence_history_at")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|d| d.starts_with("SCAN presence_history")),
        "{plan:?}"
    );
    pool.close().await;
}
