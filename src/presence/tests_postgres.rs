//! Tests of the PostgreSQL store's own machinery (the shared behaviour is
//! in `tests_store`): migrations, the reader's schema check, the per-agent
//! write lock. Each needs the test server (`test_backends`).

use chrono::{DateTime, TimeZone, Utc};

use super::postgres::{PgStore, LOCK_SPACE_AGENT, PG_MIGRATOR};
use super::store::{PresenceStore, StoreError};
use super::test_backends::fresh_database;
use super::{to_ms, HistoryKind, Window};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

#[tokio::test]
async fn reconnecting_keeps_data_and_applies_each_migration_once() {
    let Some(cfg) = fresh_database().await else {
        return;
    };
    // A reader finds no schema yet and refuses, naming both versions.
    let err = PgStore::connect_reader(&cfg).await.unwrap_err();
    let needed = PG_MIGRATOR.iter().map(|m| m.version).max();
    assert!(
        matches!(err, StoreError::OldSchema { found: 0, needed: n, .. } if Some(n) == needed),
        "{err:?}"
    );
    let s = PgStore::connect(&cfg).await.unwrap();
    s.set_online("ann", t(0), t(100), None, "m").await.unwrap();
    s.close().await;
    let s = PgStore::connect(&cfg).await.unwrap();
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(s.pool())
            .await
            .unwrap();
    let known: Vec<i64> = PG_MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(applied, known, "each migration applied once");
    let reader = PgStore::connect_reader(&cfg).await.unwrap();
    assert_eq!(reader.all_current().await.unwrap().len(), 1);
    reader.close().await;
    s.close().await;
}

/// Another writer (another node's log-in, say) has opened a window for
/// ann but not committed it when ann logs in here. The log-in must wait
/// for it and record it as `replaced`: with a bare read-then-upsert it
/// reads "offline", waits only at its INSERT, overwrites the other window
/// and the history never says it was replaced.
#[tokio::test]
async fn a_log_in_waits_for_another_writer_of_the_agent_and_replaces_its_window() {
    let Some(cfg) = fresh_database().await else {
        return;
    };
    let s = PgStore::connect(&cfg).await.unwrap();
    let mut other = s.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_SPACE_AGENT)
        .bind("ann")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO presence_current (user_id, window_start_ms, window_end_ms, reason) \
         VALUES ('ann', $1, $2, 'other node')",
    )
    .bind(to_ms(t(0)))
    .bind(to_ms(t(100)))
    .execute(&mut *other)
    .await
    .unwrap();
    let task = {
        let s = s.clone();
        tokio::spawn(async move { s.set_online("ann", t(10), t(500), None, "menu").await })
    };
    // Until the log-in is blocked on a lock (the advisory lock, or the
    // uncommitted row); bounded.
    let mut waiting = 0;
    for _ in 0..1000 {
        waiting = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(s.pool())
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(waiting, 1, "the log-in never waited for the other writer");
    other.commit().await.unwrap();
    task.await.unwrap().unwrap();
    let h = s.history("ann", 10).await.unwrap();
    let got: Vec<_> = h.iter().map(|e| (e.kind, e.window)).collect();
    assert_eq!(
        got,
        [
            (HistoryKind::Online, Window::new(t(10), t(500))),
            (HistoryKind::Replaced, Window::new(t(0), t(100))),
        ]
    );
    s.close().await;
}
