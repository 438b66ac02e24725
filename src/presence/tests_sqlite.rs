//! Tests of the SQLite store against real files in temporary folders.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use super::calls::{CallUpdate, HungUpBy, NewAttempt, NewCall, SipOutcome};
use super::sqlite::SqliteStore;
use super::store::{PresenceStore, StoreError};
use super::{HistoryKind, Window};

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
    let mut conn = store.pool().acquire().await.unwrap();
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
async fn online_then_current() {
    let (_dir, s) = open_tmp().await;
    assert_eq!(s.current("ann").await.unwrap(), None);
    let win = s
        .set_online("ann", t(0), t(8 * 3600), Some("c1@x"), "menu key 1")
        .await
        .unwrap();
    assert_eq!(win, w(0, 8 * 3600));
    assert_eq!(s.current("ann").await.unwrap(), Some(win));
    assert_eq!(s.current("bob").await.unwrap(), None);
    assert_eq!(
        s.all_current().await.unwrap(),
        vec![("ann".to_string(), win)]
    );
    let h = s.history("ann", 10).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].kind, HistoryKind::Online);
    assert_eq!(h[0].at, t(0));
    assert_eq!(h[0].window, Some(win));
    assert_eq!(h[0].call_id.as_deref(), Some("c1@x"));
    assert_eq!(h[0].reason, "menu key 1");
}

#[tokio::test]
async fn bad_input_is_refused_without_writing() {
    let (_dir, s) = open_tmp().await;
    let err = s
        .set_online("ann", t(10), t(10), None, "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidWindow { .. }), "{err:?}");
    let err = s.set_online("", t(0), t(10), None, "x").await.unwrap_err();
    assert!(matches!(err, StoreError::EmptyUser));
    assert!(s.history("ann", 10).await.unwrap().is_empty());
    assert!(s.all_current().await.unwrap().is_empty());
}

#[tokio::test]
async fn online_while_online_replaces_the_window() {
    let (_dir, s) = open_tmp().await;
    s.set_online("ann", t(0), t(100), Some("c1"), "first")
        .await
        .unwrap();
    s.set_online("ann", t(50), t(500), Some("c2"), "second")
        .await
        .unwrap();
    assert_eq!(s.current("ann").await.unwrap(), Some(w(50, 500)));
    let h = s.history("ann", 10).await.unwrap();
    let kinds: Vec<_> = h.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            HistoryKind::Online,
            HistoryKind::Replaced,
            HistoryKind::Online
        ]
    );
    assert_eq!(
        h[1].window,
        Some(w(0, 100)),
        "replaced names the old window"
    );
    assert_eq!(h[1].at, t(50));
    assert_eq!(h[0].window, Some(w(50, 500)));
}

#[tokio::test]
async fn offline_and_forced_offline() {
    let (_dir, s) = open_tmp().await;
    s.set_online("ann", t(0), t(100), None, "menu")
        .await
        .unwrap();
    let closed = s
        .set_offline("ann", t(40), Some("c9"), "menu key 0")
        .await
        .unwrap();
    assert_eq!(closed, Some(w(0, 100)));
    assert_eq!(s.current("ann").await.unwrap(), None);
    // Not online: nothing closed, but the request is on record.
    assert_eq!(
        s.set_offline("ann", t(41), None, "again").await.unwrap(),
        None
    );
    let h = s.history("ann", 10).await.unwrap();
    assert_eq!(h[0].kind, HistoryKind::Offline);
    assert_eq!(h[0].window, None);
    assert_eq!(h[1].kind, HistoryKind::Offline);
    assert_eq!(h[1].at, t(40));
    assert_eq!(h[1].window, Some(w(0, 100)));
    assert_eq!(h[1].call_id.as_deref(), Some("c9"));

    s.set_online("bob", t(0), t(100), None, "menu")
        .await
        .unwrap();
    let closed = s
        .force_offline("bob", t(60), "3 missed calls")
        .await
        .unwrap();
    assert_eq!(closed, Some(w(0, 100)));
    let h = s.history("bob", 1).await.unwrap();
    assert_eq!(h[0].kind, HistoryKind::ForcedOffline);
    assert_eq!(h[0].reason, "3 missed calls");
}

#[tokio::test]
async fn close_expired_uses_the_real_end_time() {
    let (_dir, s) = open_tmp().await;
    s.set_online("ann", t(0), t(100), None, "m").await.unwrap();
    s.set_online("bob", t(0), t(200), None, "m").await.unwrap();
    s.set_online("cy", t(0), t(300), None, "m").await.unwrap();
    // Noticed late, at 250 (e.g. after a restart).
    let closed = s.close_expired(t(250)).await.unwrap();
    assert_eq!(
        closed,
        vec![
            ("ann".to_string(), w(0, 100)),
            ("bob".to_string(), w(0, 200))
        ]
    );
    assert_eq!(
        s.all_current().await.unwrap(),
        vec![("cy".to_string(), w(0, 300))]
    );
    let h = s.history("bob", 1).await.unwrap();
    assert_eq!(h[0].kind, HistoryKind::Expired);
    assert_eq!(h[0].at, t(200), "history carries the real end, not 250");
    assert!(s.close_expired(t(250)).await.unwrap().is_empty());
    // Exactly at the end counts as ended.
    assert_eq!(s.close_expired(t(300)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn expire_closes_only_the_window_it_was_armed_for() {
    let (_dir, s) = open_tmp().await;
    s.set_online("ann", t(0), t(100), None, "m").await.unwrap();
    s.set_online("ann", t(50), t(400), None, "m").await.unwrap();
    // A stale timer for the replaced window must not close the new one.
    assert_eq!(s.expire("ann", t(100), "window ended").await.unwrap(), None);
    assert_eq!(s.current("ann").await.unwrap(), Some(w(50, 400)));
    let closed = s
        .expire("ann", t(400), "ended during a call")
        .await
        .unwrap();
    assert_eq!(closed, Some(w(50, 400)));
    let h = s.history("ann", 1).await.unwrap();
    assert_eq!((h[0].kind, h[0].at), (HistoryKind::Expired, t(400)));
    assert_eq!(h[0].reason, "ended during a call");
    assert_eq!(s.expire("nobody", t(1), "x").await.unwrap(), None);
}

#[tokio::test]
async fn history_is_newest_first_and_limited_per_user() {
    let (_dir, s) = open_tmp().await;
    for i in 0..5 {
        s.set_online("ann", t(i * 10), t(i * 10 + 5), None, &format!("n{i}"))
            .await
            .unwrap();
        s.set_offline("ann", t(i * 10 + 1), None, &format!("f{i}"))
            .await
            .unwrap();
    }
    s.set_online("bob", t(0), t(5), None, "b").await.unwrap();
    let h = s.history("ann", 3).await.unwrap();
    let reasons: Vec<_> = h.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, vec!["f4", "n4", "f3"]);
    assert_eq!(s.history("ann", 100).await.unwrap().len(), 10);
    assert!(s.history("ann", 0).await.unwrap().is_empty());
    assert!(s
        .history("bob", 10)
        .await
        .unwrap()
        .iter()
        .all(|e| e.user == "bob"));
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
            .fetch_all(s.pool())
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
    let mut tx = switch.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
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
async fn store_handle_works_from_spawned_tasks() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.set_online(&format!("u{i}"), t(0), t(100 + i), None, "m")
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.all_current().await.unwrap().len(), 4);
    assert_eq!(store.close_expired(t(101)).await.unwrap().len(), 2);
    store.close().await;
}

fn new_call(call_id: &str, at: i64) -> NewCall {
    NewCall {
        call_id: call_id.into(),
        flow: "Billing".into(),
        customer_number: "+15550109999".into(),
        contact_point: "+15550100001".into(),
        started_at: t(at),
        answered_at: None,
    }
}

/// A queue call is answered before its row exists: one insert records both times.
#[tokio::test]
async fn a_call_inserted_answered_reads_back_answered() {
    let (_dir, s) = open_tmp().await;
    let call = NewCall {
        answered_at: Some(t(7)),
        ..new_call("q@x", 7)
    };
    s.insert_call(&call).await.unwrap();
    let calls = s.calls_since(t(0), 10).await.unwrap();
    assert_eq!(
        (calls[0].started_at, calls[0].answered_at),
        (t(7), Some(t(7)))
    );
    s.close().await;
}

#[tokio::test]
async fn calls_and_attempts_round_trip() {
    let (_dir, s) = open_tmp().await;
    let old = s.insert_call(&new_call("old@x", 0)).await.unwrap();
    let id = s.insert_call(&new_call("c1@x", 100)).await.unwrap();
    assert_ne!(old, id);
    let missed = NewAttempt {
        agent_user_id: "ann".into(),
        started_at: t(101),
        ring_ms: Some(20_000),
        sip_outcome: SipOutcome::NoAnswer,
        sip_status: Some(487),
        accept_latency_ms: None,
        hangup_cause: Some("ring timeout".into()),
        hung_up_by: Some(HungUpBy::Switch),
        sip_call_id: Some("00000000000000a1@tpswitch".into()),
    };
    let taken = NewAttempt {
        agent_user_id: "bob".into(),
        started_at: t(121),
        ring_ms: Some(3_200),
        sip_outcome: SipOutcome::Answered,
        sip_status: Some(200),
        accept_latency_ms: Some(850),
        hangup_cause: None,
        hung_up_by: Some(HungUpBy::Customer),
        sip_call_id: None,
    };
    s.insert_attempt(id, &missed).await.unwrap();
    s.insert_attempt(id, &taken).await.unwrap();
    // Answer first, end later: the second update keeps the answer time.
    s.update_call(
        id,
        &CallUpdate {
            answered_at: Some(t(125)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let end = CallUpdate {
        ended_at: Some(t(300)),
        outcome: Some("bridged".into()),
        hung_up_by: Some(HungUpBy::Customer),
        ..Default::default()
    };
    s.update_call(id, &end).await.unwrap();

    let calls = s.calls_since(t(50), 100).await.unwrap();
    assert_eq!(calls.len(), 1, "calls before `since` are left out");
    let c = &calls[0];
    assert_eq!(
        (c.id, c.call_id.as_str(), c.flow.as_str()),
        (id, "c1@x", "Billing")
    );
    assert_eq!(c.customer_number, "+15550109999");
    assert_eq!(c.contact_point, "+15550100001");
    assert_eq!(c.started_at, t(100));
    assert_eq!(c.answered_at, Some(t(125)));
    assert_eq!(c.ended_at, Some(t(300)));
    assert_eq!(c.outcome.as_deref(), Some("bridged"));
    assert_eq!(c.hung_up_by, Some(HungUpBy::Customer));
    assert_eq!(c.attempts.len(), 2);
    let a = &c.attempts[0];
    assert_eq!(a.agent_user_id, "ann");
    assert_eq!(a.started_at, t(101));
    assert_eq!(
        (a.ring_ms, a.sip_outcome, a.sip_status),
        (Some(20_000), Some(SipOutcome::NoAnswer), Some(487))
    );
    assert_eq!(a.hangup_cause.as_deref(), Some("ring timeout"));
    assert_eq!(a.hung_up_by, Some(HungUpBy::Switch));
    assert_eq!(a.sip_call_id.as_deref(), Some("00000000000000a1@tpswitch"));
    let b = &c.attempts[1];
    assert_eq!(b.sip_call_id, None);
    assert_eq!(
        (b.agent_user_id.as_str(), b.accept_latency_ms),
        ("bob", Some(850))
    );
    assert_eq!(b.sip_outcome, Some(SipOutcome::Answered));

    let all = s.calls_since(t(0), 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].attempts.is_empty());
    assert_eq!(all[0].answered_at, None);
    let first = s.calls_since(t(0), 1).await.unwrap();
    assert_eq!((first.len(), first[0].call_id.as_str()), (1, "old@x"));

    let json = serde_json::to_value(c).unwrap();
    assert_eq!(json["attempts"][0]["sip_outcome"], "no-answer");
    assert_eq!(
        json["attempts"][0]["sip_call_id"],
        "00000000000000a1@tpswitch"
    );
    assert_eq!(json["started_at"], "2023-11-14T22:15:00.000Z");
}

#[tokio::test]
async fn an_attempt_is_listed_while_it_rings_and_completed_when_it_ends() {
    let (_dir, s) = open_tmp().await;
    let call = NewCall {
        answered_at: Some(t(100)),
        ..new_call("c1@x", 100)
    };
    let id = s.insert_call(&call).await.unwrap();
    let row = s.start_attempt(id, "ann", t(101)).await.unwrap();
    let live = s.calls_since(t(0), 10).await.unwrap();
    let a = &live[0].attempts[0];
    assert_eq!((a.id, a.agent_user_id.as_str()), (row, "ann"));
    assert_eq!(
        (a.sip_outcome, a.ring_ms, a.hangup_cause.as_deref()),
        (None, None, None)
    );
    assert_eq!(
        serde_json::to_value(a).unwrap()["sip_outcome"],
        serde_json::Value::Null
    );

    // Bridged at 110 after answering at 100: a 10 s wait, shown at once.
    s.update_call(
        id,
        &CallUpdate {
            bridged_at: Some(t(110)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let done = NewAttempt {
        agent_user_id: "ann".into(),
        started_at: t(101),
        ring_ms: Some(4_000),
        sip_outcome: SipOutcome::Answered,
        sip_status: Some(200),
        accept_latency_ms: Some(900),
        hangup_cause: Some("completed".into()),
        hung_up_by: Some(HungUpBy::Customer),
        sip_call_id: Some("leg-ann@tpswitch".into()),
    };
    s.finish_attempt(row, &done).await.unwrap();
    let c = &s.calls_since(t(0), 10).await.unwrap()[0];
    assert_eq!(c.attempts.len(), 1, "completed in place, not a second row");
    assert_eq!(c.attempts[0].sip_outcome, Some(SipOutcome::Answered));
    assert_eq!(c.attempts[0].hangup_cause.as_deref(), Some("completed"));
    // The agent leg's Call-ID is written when the attempt completes.
    assert_eq!(
        c.attempts[0].sip_call_id.as_deref(),
        Some("leg-ann@tpswitch")
    );
    assert_eq!((c.bridged_at, c.wait_ms), (Some(t(110)), Some(10_000)));
    let err = s.finish_attempt(row + 100, &done).await.unwrap_err();
    assert!(matches!(err, StoreError::AttemptNotFound { .. }), "{err:?}");
    let err = s.start_attempt(id + 100, "ann", t(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::CallNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn login_calls_round_trip() {
    use crate::presence::{LoginOutcome, NewLoginCall};
    let (_dir, s) = open_tmp().await;
    for (i, (outcome, hours, agent)) in [
        (LoginOutcome::UnknownCaller, None, None),
        (LoginOutcome::Online, Some(8), Some("jsmith")),
        (LoginOutcome::PinFailed, None, Some("jsmith")),
    ]
    .into_iter()
    .enumerate()
    {
        let at = i64::try_from(i).unwrap() * 100;
        s.insert_login_call(&NewLoginCall {
            call_id: format!("l{i}@x"),
            caller: "+12345678910".into(),
            agent_user_id: agent.map(str::to_owned),
            outcome,
            hours,
            started_at: t(at),
            ended_at: t(at + 20),
        })
        .await
        .unwrap();
    }
    let all = s.login_calls_since(t(0), 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].outcome, LoginOutcome::UnknownCaller);
    assert_eq!(all[0].agent_user_id, None);
    assert_eq!(
        (all[1].outcome, all[1].hours),
        (LoginOutcome::Online, Some(8))
    );
    assert_eq!(all[1].agent_user_id.as_deref(), Some("jsmith"));
    assert_eq!(all[2].ended_at, t(220));
    assert_eq!(s.login_calls_since(t(150), 10).await.unwrap().len(), 1);
    assert_eq!(
        s.login_calls_since(t(0), 1).await.unwrap()[0].call_id,
        "l0@x"
    );
}

#[tokio::test]
async fn unknown_call_ids_are_reported() {
    let (_dir, s) = open_tmp().await;
    let err = s.update_call(42, &CallUpdate::default()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::CallNotFound { id: 42, .. }),
        "{err:?}"
    );
    let attempt = NewAttempt {
        agent_user_id: "ann".into(),
        started_at: t(0),
        ring_ms: None,
        sip_outcome: SipOutcome::Failed,
        sip_status: None,
        accept_latency_ms: None,
        hangup_cause: None,
        hung_up_by: None,
        sip_call_id: None,
    };
    let err = s.insert_attempt(42, &attempt).await.unwrap_err();
    assert!(
        matches!(err, StoreError::CallNotFound { id: 42, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreadable_rows_are_reported_as_corrupt() {
    let (_dir, s) = open_tmp().await;
    s.set_online("ann", t(0), t(10), None, "m").await.unwrap();
    sqlx::query("UPDATE presence_history SET at_ms = ? WHERE user_id = 'ann'")
        .bind(i64::MAX)
        .execute(s.pool())
        .await
        .unwrap();
    let err = s.history("ann", 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("presence_history.at_ms"), "{err}");
    let row = sqlx::query("SELECT COUNT(*) AS n FROM presence_current")
        .fetch_one(s.pool())
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

/// Real clocks have nanoseconds; the store keeps milliseconds. A window set
/// at a nanosecond instant must still expire by the end it was armed with.
#[tokio::test]
async fn sub_millisecond_times_still_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
    let start = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap();
    let end = start + chrono::Duration::hours(8);
    let w = store
        .set_online("jsmith", start, end, None, "menu")
        .await
        .unwrap();
    assert_eq!(w.end.timestamp_subsec_nanos() % 1_000_000, 0);
    assert!(store.expire("jsmith", w.end, "t").await.unwrap().is_some());
    let w = store
        .set_online("jsmith", start, end, None, "menu")
        .await
        .unwrap();
    // The unrounded end works too.
    assert!(store.expire("jsmith", end, "t").await.unwrap().is_some());
    let _ = w;
}

/// Opens a migrated store at `path` that cannot grow (a full disk), with
/// one connection, and the statement that frees the space.
async fn full_store(dir: &tempfile::TempDir) -> (SqliteStore, &'static str) {
    let path = dir.path().join("full.db");
    let fresh = SqliteStore::open(&path).await.unwrap();
    // A migration that rebuilds a table leaves its old pages free; a write
    // that reuses them does not grow the file. Without them, no write fits.
    sqlx::query("VACUUM").execute(fresh.pool()).await.unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(fresh.pool())
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
    sqlx::query(free).execute(store.pool()).await.unwrap();
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
    sqlx::query(free).execute(store.pool()).await.unwrap();
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

/// A store written before attempts were recorded live (schema 3) keeps its
/// attempts, ids and outcomes through the table rebuild of migration 4.
#[tokio::test]
async fn attempts_written_before_live_attempts_survive_the_upgrade() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
    crate::presence::sqlite::MIGRATOR
        .run_to(3, &pool)
        .await
        .unwrap();
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

/// `/readyz` asks the store for a write it then throws away: a full disk
/// says no, freed space says yes, and the probe leaves no table behind.
#[tokio::test]
async fn the_write_probe_sees_a_full_disk_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, free) = full_store(&dir).await;
    let e = store.write_probe().await.unwrap_err();
    assert!(matches!(e, StoreError::Query { .. }), "{e}");
    sqlx::query(free).execute(store.pool()).await.unwrap();
    store.write_probe().await.unwrap();
    store.write_probe().await.unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'readyz_probe'")
            .fetch_one(store.pool())
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
