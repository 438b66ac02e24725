//! Tests of the SQLite store against real files in temporary folders.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use super::calls::SipOutcome;
use super::sqlite::SqliteStore;
use super::store::{PresenceStore, StoreError};
use super::Window;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn w(a: i64, b: i64) -> Window {
    Window::new(t(a), t(b)).unwrap()
}

async fn open_tmp() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("data/tpswitch.db"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn open_creates_folder_and_file_with_durable_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/tpswitch.db");
    let store = SqliteStore::open(&path).await.unwrap();
    assert!(path.exists());
    assert_eq!(store.path(), path.as_path());
    for pool in [store.writer(), store.readers()] {
        let mut conn = pool.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous must be FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        // An in-process connection is not pinged before each use (issue 15).
        assert!(!pool.options().get_test_before_acquire());
    }
}

#[tokio::test]
async fn open_names_the_path_when_the_folder_cannot_be_made() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let err = SqliteStore::open(&file.join("tpswitch.db"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-folder"), "{err}");
}

#[tokio::test]
async fn reopen_is_idempotent_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tpswitch.db");
    {
        let s = SqliteStore::open(&path).await.unwrap();
        s.set_online("ann", t(0), t(100), None, "m").await.unwrap();
        s.close().await;
    }
    {
        // Dropped without close(): what a crash leaves behind.
        let s = SqliteStore::open(&path).await.unwrap();
        s.set_online("bob", t(0), t(200), None, "m").await.unwrap();
        drop(s);
    }
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        s.all_current().await.unwrap(),
        vec![
            ("ann".to_string(), w(0, 100)),
            ("bob".to_string(), w(0, 200))
        ]
    );
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(s.readers())
            .await
            .unwrap();
    let known: Vec<i64> = crate::presence::sqlite::MIGRATOR
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(applied, known, "each migration applied once");
}

#[tokio::test]
async fn a_second_process_reads_while_the_switch_writes() {
    let (dir, switch) = open_tmp().await;
    let path = dir.path().join("data/tpswitch.db");
    switch
        .set_online("ann", t(0), t(100), None, "m")
        .await
        .unwrap();

    let cli = SqliteStore::open_read_only(&path).await.unwrap();
    let cli_rw = SqliteStore::open(&path).await.unwrap();
    assert_eq!(cli.current("ann").await.unwrap(), Some(w(0, 100)));

    // The switch holds the write lock with an uncommitted change: readers
    // are not blocked and see the last committed state.
    let mut tx = switch.writer().begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("DELETE FROM presence_current WHERE user_id = 'ann'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(cli.current("ann").await.unwrap(), Some(w(0, 100)));
    assert_eq!(cli_rw.all_current().await.unwrap().len(), 1);
    tx.rollback().await.unwrap();

    // Committed writes are visible to the other pools at once.
    switch
        .set_online("bob", t(0), t(300), None, "m")
        .await
        .unwrap();
    assert_eq!(cli.all_current().await.unwrap().len(), 2);
    cli_rw
        .set_offline("bob", t(10), None, "admin")
        .await
        .unwrap();
    assert_eq!(switch.current("bob").await.unwrap(), None);

    // The read-only handle cannot write.
    let err = cli
        .set_online("cy", t(0), t(10), None, "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Query { .. }), "{err:?}");
    assert!(err.to_string().contains("tpswitch.db"), "{err}");
}

#[tokio::test]
async fn read_only_open_refuses_missing_or_unmigrated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let err = SqliteStore::open_read_only(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("none.db"));
    assert!(!path.exists(), "a reader must not create the file");

    // An empty SQLite file: no schema yet.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = SqliteStore::open_read_only(&empty).await.unwrap_err();
    let needed = crate::presence::sqlite::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max();
    assert!(
        matches!(
            err,
            StoreError::OldSchema { found: 0, needed: n, .. } if Some(n) == needed
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreadable_rows_are_reported_as_corrupt() {
    let (_dir, s) = open_tmp().await;
    s.set_online("ann", t(0), t(10), None, "m").await.unwrap();
    sqlx::query("UPDATE presence_history SET at_ms = ? WHERE user_id = 'ann'")
        .bind(i64::MAX)
        .execute(s.writer())
        .await
        .unwrap();
    let err = s.history("ann", 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("presence_history.at_ms"), "{err}");
    let row = sqlx::query("SELECT COUNT(*) AS n FROM presence_current")
        .fetch_one(s.readers())
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("n"), 1);
}

/// Set by `confirmed_writes_survive_kill_9` for the copy of itself it starts.
const KILL9_DB_ENV: &str = "TPSWITCH_TEST_KILL9_DB";

/// The child half of `confirmed_writes_survive_kill_9`, in the child
/// process: writes, says so, then waits to be killed (it never returns).
fn kill9_child(path: &std::ffi::OsStr) -> ! {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = SqliteStore::open(std::path::Path::new(path)).await.unwrap();
        s.set_online("ann", t(0), t(100), Some("c1"), "before kill")
            .await
            .unwrap();
        println!("WRITTEN");
        // Bounded: the parent kills us long before this ends.
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    });
    // Not killed in time: fail loudly rather than pass as a test.
    std::process::exit(3)
}

/// The test binary runs this test again in a child process (the only
/// test it runs there, selected by name); with `KILL9_DB_ENV` set that copy
/// is the writer, killed with SIGKILL once it has confirmed its write.
#[test]
fn confirmed_writes_survive_kill_9() {
    use std::io::BufRead;
    if let Some(path) = std::env::var_os(KILL9_DB_ENV) {
        kill9_child(&path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tpswitch.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "presence::tests_sqlite::confirmed_writes_survive_kill_9",
            "--nocapture",
        ])
        .env(KILL9_DB_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let written = std::io::BufReader::new(stdout)
        .lines()
        .map_while(|l| l.ok())
        .any(|l| l.contains("WRITTEN"));
    child.kill().unwrap(); // SIGKILL: no destructors, no pool close.
    child.wait().unwrap();
    assert!(written, "the child process did not confirm its write");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(s.current("ann").await.unwrap(), Some(w(0, 100)));
        assert_eq!(s.history("ann", 10).await.unwrap()[0].reason, "before kill");
    });
}

/// Opens a migrated store at `path` that cannot grow (a full disk), with
/// one connection, and the statement that frees the space.
async fn full_store(dir: &tempfile::TempDir) -> (SqliteStore, &'static str) {
    let path = dir.path().join("full.db");
    let fresh = SqliteStore::open(&path).await.unwrap();
    // A migration that rebuilds a table leaves its old pages free; a write
    // that reuses them does not grow the file. Without them, no write fits.
    sqlx::query("VACUUM").execute(fresh.writer()).await.unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(fresh.writer())
        .await
        .unwrap();
    fresh.close().await;
    let store = SqliteStore::open_full(&path, pages).await.unwrap();
    (store, "PRAGMA max_page_count = 1073741823")
}

/// A reason long enough that the write needs new pages.
fn big_reason() -> String {
    "x".repeat(64 * 1024)
}

#[tokio::test]
async fn a_full_disk_refuses_writes_then_the_store_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (store, free) = full_store(&dir).await;
    // Full: every kind of write fails, and nothing half-written shows.
    for round in 0..3 {
        let e = store
            .set_online("jsmith", t(0), t(3600), Some("c1"), &big_reason())
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Query { .. }), "round {round}: {e}");
        assert_eq!(store.current("jsmith").await.unwrap(), None);
        assert!(store.history("jsmith", 10).await.unwrap().is_empty());
    }
    // Space freed: the very next writes succeed, with no restart (before,
    // each failed with "non-zero transaction depth" from here on).
    sqlx::query(free).execute(store.writer()).await.unwrap();
    let got = store
        .set_online("jsmith", t(0), t(3600), Some("c2"), &big_reason())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, w(0, 3600));
    assert_eq!(store.current("jsmith").await.unwrap(), Some(w(0, 3600)));
    assert!(store
        .set_offline("jsmith", t(60), None, "test")
        .await
        .unwrap()
        .is_some());
}

/// The store knows when its writes fail for want of space (so it can say
/// so once per interval, and callers need not log each failure), and
/// forgets it at the first write that succeeds.
#[tokio::test]
async fn a_write_refused_for_space_is_known_until_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (store, free) = full_store(&dir).await;
    let store = store.with_write_health(crate::presence::write_health::WriteHealth::new(
        std::time::Duration::from_secs(10),
        std::time::Duration::ZERO,
    ));
    assert!(!store.writes_failing());
    let e = store
        .set_online("jsmith", t(0), t(3600), Some("c1"), &big_reason())
        .await
        .unwrap_err();
    assert!(e.cannot_write(), "{e}");
    assert!(store.writes_failing());
    // A read is no write: it neither fails nor ends the failure.
    assert_eq!(store.current("jsmith").await.unwrap(), None);
    assert!(store.writes_failing());
    sqlx::query(free).execute(store.writer()).await.unwrap();
    store
        .set_online("jsmith", t(0), t(3600), Some("c2"), &big_reason())
        .await
        .unwrap();
    assert!(!store.writes_failing());
}

#[tokio::test]
async fn a_write_that_changes_nothing_keeps_its_connection() {
    // `expire` for a window already replaced ends its transaction with a
    // ROLLBACK: the pool's one connection must come back usable.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        &dir.path().join("one.db"),
        super::sqlite::SqliteSettings {
            max_connections: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    store.set_online("a", t(0), t(60), None, "r").await.unwrap();
    for _ in 0..3 {
        assert_eq!(store.expire("a", t(30), "stale").await.unwrap(), None);
    }
    assert_eq!(
        store.expire("a", t(60), "due").await.unwrap(),
        Some(w(0, 60))
    );
}

/// The readers grow for a burst of reads and give their connections
/// (threads, page caches) back once they sit idle; the writer stays open
/// (issue 15).
#[tokio::test]
async fn connections_opened_for_a_burst_are_closed_once_idle() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        &dir.path().join("burst.db"),
        super::sqlite::SqliteSettings {
            idle_timeout: std::time::Duration::from_millis(100),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let readers = store.readers();
    let held: Vec<_> = futures_util::future::join_all((0..3).map(|_| readers.acquire()))
        .await
        .into_iter()
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    assert!(readers.size() >= 3, "the burst opened its own connections");
    drop(held);
    // The reaper runs every idle_timeout: bounded wait, 5 s at most.
    let mut waited = 0;
    while readers.size() > 0 && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(readers.size(), 0, "idle readers are closed");
    assert_eq!(store.writer().size(), 1, "the writer stays open");
    store.set_online("a", t(0), t(60), None, "r").await.unwrap();
    assert_eq!(store.current("a").await.unwrap(), Some(w(0, 60)));
}

/// Every write goes through the one writer connection, whatever runs at
/// once: a burst of writes from many tasks opens no second connection (a
/// write on another would find the first's pages changed under its cache
/// and read them again from the WAL, issue 15), and each write lands.
#[tokio::test]
async fn writes_share_one_connection() {
    use crate::presence::{CallerIdRecord, LoginOutcome, NewLoginCall};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("one-writer.db"))
        .await
        .unwrap();
    let writes = (0..40).map(|i| {
        let store = store.clone();
        async move {
            let user = format!("agent{}", i % 10);
            if i % 2 == 0 {
                store
                    .set_online(&user, t(0), t(60 + i), None, "r")
                    .await
                    .map(|_| ())
            } else {
                store
                    .insert_login_call(&NewLoginCall {
                        call_id: format!("c{i}"),
                        caller: "+15550100000".into(),
                        agent_user_id: None,
                        outcome: LoginOutcome::UnknownCaller,
                        hours: None,
                        started_at: t(0),
                        ended_at: t(1),
                        trust: CallerIdRecord {
                            caller_id_trust: crate::config::CallerIdTrust::Any,
                            attested: false,
                            caller_id: None,
                        },
                    })
                    .await
                    .map(|_| ())
            }
        }
    });
    for r in futures_util::future::join_all(writes).await {
        r.unwrap();
    }
    assert_eq!(store.writer().size(), 1);
    assert_eq!(store.readers().size(), 0, "no write took a reader");
    assert_eq!(store.login_calls_since(t(0), 100).await.unwrap().len(), 20);
}

/// A new database at `path` migrated only up to `version`, as an older
/// switch left it; the caller writes its rows and closes the pool.
async fn old_schema(path: &std::path::Path, version: i64) -> sqlx::SqlitePool {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
    crate::presence::sqlite::MIGRATOR
        .run_to(version, &pool)
        .await
        .unwrap();
    pool
}

/// A store written before attempts were recorded live (schema 3) keeps its
/// attempts, ids and outcomes through the table rebuild of migration 4.
#[tokio::test]
async fn attempts_written_before_live_attempts_survive_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let pool = old_schema(&path, 3).await;
    sqlx::query(
        "INSERT INTO calls (id, call_id, flow, customer_number, contact_point, started_at_ms) \
         VALUES (7, 'old@x', 'Billing', '+15550109999', '+15550100001', 1700000000000)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO call_attempts (id, call_id, agent_user_id, started_at_ms, sip_outcome, \
         sip_status) VALUES (42, 7, 'ann', 1700000001000, 'busy', 486)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let s = SqliteStore::open(&path).await.unwrap();
    let calls = s.calls_since(t(-10), 10).await.unwrap();
    let a = &calls[0].attempts[0];
    assert_eq!((a.id, a.agent_user_id.as_str()), (42, "ann"));
    assert_eq!(
        (a.sip_outcome, a.sip_status),
        (Some(SipOutcome::Busy), Some(486))
    );
    assert_eq!(calls[0].bridged_at, None);
    // New attempts still get fresh ids after the rebuild.
    assert!(s.start_attempt(7, "bob", t(5)).await.unwrap() > 42);
}

/// A log-in call recorded before the caller-ID columns (schema 9) keeps
/// its id and outcome through migration 12's rebuild and reads back with
/// no caller-ID record; the rebuilt table takes the new outcome.
#[tokio::test]
async fn log_in_calls_written_before_caller_id_trust_survive_the_upgrade() {
    use crate::config::CallerIdTrust;
    use crate::presence::{CallerIdCheck, CallerIdRecord, LoginOutcome, NewLoginCall};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let pool = old_schema(&path, 9).await;
    sqlx::query(
        "INSERT INTO login_calls (id, call_id, caller, agent_user_id, outcome, hours, \
         started_at_ms, ended_at_ms) VALUES (5, 'old@x', '+12345678910', 'jsmith', 'online', \
         8, 1700000000000, 1700000012000)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let s = SqliteStore::open(&path).await.unwrap();
    let refused = NewLoginCall {
        call_id: "new@x".into(),
        caller: "+12345678919".into(),
        agent_user_id: Some("nopin".into()),
        outcome: LoginOutcome::CallerIdRefused,
        hours: None,
        started_at: t(20),
        ended_at: t(25),
        trust: CallerIdRecord {
            caller_id_trust: CallerIdTrust::Attested,
            attested: false,
            caller_id: Some(CallerIdCheck::Unverified),
        },
    };
    assert!(s.insert_login_call(&refused).await.unwrap() > 5);
    let calls = s.login_calls_since(t(-10), 10).await.unwrap();
    assert_eq!((calls[0].id, calls[0].outcome), (5, LoginOutcome::Online));
    assert_eq!((calls[0].hours, calls[0].trust), (Some(8), None));
    assert_eq!(calls[1].outcome, LoginOutcome::CallerIdRefused);
    assert_eq!(calls[1].trust, Some(refused.trust));
}

/// Migrations 13 and 14 (issue 15): the tables every log-in call and every
/// offer to an agent write check their values with comparisons, so a write
/// builds no temporary b-tree (`OpenEphemeral`, one per `IN` list of more
/// than two values); rows and ids survive the rebuild, and a value outside
/// the list is still refused.
#[tokio::test]
async fn per_call_writes_build_no_temporary_tables_and_keep_their_checks() {
    use crate::config::CallerIdTrust;
    use crate::presence::{CallerIdRecord, LoginOutcome, NewLoginCall};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let pool = old_schema(&path, 12).await;
    sqlx::raw_sql(
        "INSERT INTO login_calls (id, call_id, caller, agent_user_id, outcome, hours, \
         started_at_ms, ended_at_ms, caller_id_trust, attested, caller_id) VALUES \
         (5, 'old@x', '+12345678910', 'jsmith', 'online', 8, 1700000000000, 1700000012000, \
         'attested', 1, 'attested'); \
         INSERT INTO presence_history (id, user_id, kind, at_ms, window_start_ms, \
         window_end_ms, call_id, reason, actor) VALUES (9, 'jsmith', 'online', 1700000000000, \
         1700000000000, 1700028800000, 'old@x', 'log-in menu', 'agent')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let s = SqliteStore::open(&path).await.unwrap();
    let calls = s.login_calls_since(t(-10), 10).await.unwrap();
    assert_eq!((calls[0].id, calls[0].outcome), (5, LoginOutcome::Online));
    assert!(calls[0].trust.is_some_and(|t| t.attested));
    let history: i64 =
        sqlx::query_scalar("SELECT id FROM presence_history WHERE call_id = 'old@x'")
            .fetch_one(s.readers())
            .await
            .unwrap();
    assert_eq!(history, 9);
    // Ids go on from the old ones.
    let new = NewLoginCall {
        call_id: "new@x".into(),
        caller: "+12345678910".into(),
        agent_user_id: None,
        outcome: LoginOutcome::UnknownCaller,
        hours: None,
        started_at: t(20),
        ended_at: t(25),
        trust: CallerIdRecord {
            caller_id_trust: CallerIdTrust::Any,
            attested: false,
            caller_id: None,
        },
    };
    assert!(s.insert_login_call(&new).await.unwrap() > 5);

    let inserts = [
        "INSERT INTO login_calls (call_id, caller, agent_user_id, outcome, hours, \
         started_at_ms, ended_at_ms, caller_id_trust, attested, caller_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "INSERT INTO presence_history (user_id, kind, at_ms, window_start_ms, window_end_ms, \
         call_id, reason, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "INSERT INTO call_attempts (call_id, agent_user_id, started_at_ms, sip_outcome) \
         VALUES (?, ?, ?, ?)",
        "UPDATE call_attempts SET sip_outcome = ?, sip_status = ? WHERE id = ?",
    ];
    for insert in inserts {
        let opcodes: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT opcode FROM (EXPLAIN {insert})"
        )))
        .fetch_all(s.readers())
        .await
        .unwrap_or_default();
        let opcodes = if opcodes.is_empty() {
            // Older SQLite has no EXPLAIN as a table: read its rows.
            sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {insert}")))
                .fetch_all(s.readers())
                .await
                .unwrap()
                .iter()
                .map(|r| sqlx::Row::get::<String, _>(r, 1))
                .collect()
        } else {
            opcodes
        };
        assert!(
            opcodes.iter().any(|o| o == "Insert"),
            "{insert}: {opcodes:?}"
        );
        assert!(
            !opcodes.iter().any(|o| o == "OpenEphemeral"),
            "{insert} builds a temporary table: {opcodes:?}"
        );
    }

    for bad in [
        "INSERT INTO login_calls (call_id, caller, outcome, started_at_ms, ended_at_ms) \
         VALUES ('b@x', '', 'maybe', 0, 0)",
        "INSERT INTO login_calls (call_id, caller, outcome, started_at_ms, ended_at_ms, \
         caller_id_trust) VALUES ('b@x', '', 'online', 0, 0, 'some')",
        "INSERT INTO login_calls (call_id, caller, outcome, started_at_ms, ended_at_ms, \
         attested) VALUES ('b@x', '', 'online', 0, 0, 2)",
        "INSERT INTO login_calls (call_id, caller, outcome, started_at_ms, ended_at_ms, \
         caller_id) VALUES ('b@x', '', 'online', 0, 0, 'guess')",
        "INSERT INTO presence_history (user_id, kind, at_ms, reason, actor) \
         VALUES ('x', 'asleep', 0, '', '')",
    ] {
        let e = sqlx::raw_sql(sqlx::AssertSqlSafe(bad))
            .execute(s.writer())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("CHECK"), "{bad}: {e}");
    }
}

/// `/readyz` asks the store for a write it then throws away: a full disk
/// says no, freed space says yes, and the probe leaves no table behind.
#[tokio::test]
async fn the_write_probe_sees_a_full_disk_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, free) = full_store(&dir).await;
    let e = store.write_probe().await.unwrap_err();
    assert!(matches!(e, StoreError::Query { .. }), "{e}");
    sqlx::query(free).execute(store.writer()).await.unwrap();
    store.write_probe().await.unwrap();
    store.write_probe().await.unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'readyz_probe'")
            .fetch_one(store.readers())
            .await
            .unwrap();
    assert_eq!(left, 0);
}

/// A new store is its owner's alone: it holds API-made users' PINs and
/// callers' numbers, and the process umask (often 022) would have left it,
/// its write-ahead log and its shared memory readable by every local user.
#[tokio::test]
async fn a_new_store_and_its_wal_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = open_tmp().await;
    // A write, so the -wal and -shm files exist.
    store.set_online("a", t(0), t(60), None, "r").await.unwrap();
    for name in ["tpswitch.db", "tpswitch.db-wal", "tpswitch.db-shm"] {
        let meta = std::fs::metadata(dir.path().join("data").join(name)).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(format!("{mode:o}"), "600", "{name}");
    }
}

/// Every log-in call asks to clear its agent's not-responding mark; for an
/// agent with none that is a read, not a write transaction (issue 15): it
/// answers while another writer holds the file's write lock, where a
/// `BEGIN IMMEDIATE` would wait out the 5 s busy timeout and fail.
#[tokio::test]
async fn clearing_an_absent_mark_takes_no_write_lock() {
    use sqlx::ConnectOptions;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let cleared = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        store.clear_not_responding("nobody", t(0), "agent", "called the log-in line"),
    )
    .await
    .expect("answered without waiting for the write lock")
    .unwrap();
    assert!(!cleared);
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
}
