//! Presence service tests: a real SQLite file and a manual clock, so an
//! eight-hour window ends in microseconds. `current()` doubles as a barrier:
//! the service applies every due expiry before answering a command.

use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone};
use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::presence::agent_state::activities;
use crate::presence::clock::ManualClock;
use crate::presence::{HistoryKind, HistoryQuery};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

const H: i64 = 3600;

async fn store_at(path: &Path) -> Store {
    Store::open(path).await.unwrap()
}

/// Store, clock at t(0), running service, and a subscriber that sees
/// everything from start-up on.
async fn setup(
    path: &Path,
    clock: &Arc<ManualClock>,
) -> (
    Store,
    PresenceHandle,
    broadcast::Receiver<PresenceEvent>,
    JoinHandle<()>,
) {
    let store = store_at(path).await;
    let (service, handle) = PresenceService::new(store.clone(), clock.clone());
    let events = handle.subscribe();
    let task = service.spawn().await.unwrap();
    (store, handle, events, task)
}

/// The next event; fails instead of hanging when none comes.
async fn next(events: &mut broadcast::Receiver<PresenceEvent>) -> PresenceEvent {
    tokio::time::timeout(StdDuration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .unwrap()
}

fn assert_quiet(events: &mut broadcast::Receiver<PresenceEvent>) {
    assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);
}

fn expired(user: &str, end: DateTime<Utc>, while_down: bool, deferred: bool) -> PresenceEvent {
    PresenceEvent::Expired {
        user: user.into(),
        end,
        while_down,
        deferred,
    }
}

#[tokio::test]
async fn online_window_expires_when_the_clock_passes_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;

    let win = h.go_online("ann", 8, Some("c1@x")).await.unwrap();
    assert_eq!(win, Window::new(t(0), t(8 * H)).unwrap());
    // Durable before go_online returned: the store already has it.
    assert_eq!(store.current("ann").await.unwrap(), Some(win));
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::Online {
            user: "ann".into(),
            window: win,
            actor: crate::presence::ACTOR_AGENT.into(),
        }
    );

    clock.advance(Duration::seconds(8 * H - 1));
    assert_eq!(h.current("ann").await.unwrap(), Some(win));
    assert_quiet(&mut ev);

    // Noticed 91 s late: the history still says the real end.
    clock.advance(Duration::seconds(91));
    assert_eq!(next(&mut ev).await, expired("ann", t(8 * H), false, false));
    assert_eq!(h.current("ann").await.unwrap(), None);
    let hist = store.history("ann", 10).await.unwrap();
    assert_eq!(hist[0].kind, HistoryKind::Expired);
    assert_eq!(hist[0].at, t(8 * H));
    assert_eq!(hist[0].window, Some(win));
    assert_eq!(hist[0].reason, "window ended");
    assert_eq!(hist[1].kind, HistoryKind::Online);
    assert_eq!(hist[1].call_id.as_deref(), Some("c1@x"));
}

#[tokio::test]
async fn replacing_a_window_rearms_the_timer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;

    h.go_online("ann", 1, None).await.unwrap();
    clock.advance(Duration::seconds(H / 2));
    let longer = h.go_online("ann", 8, None).await.unwrap();
    assert_eq!(longer.end, t(H / 2 + 8 * H));
    next(&mut ev).await;
    next(&mut ev).await;

    // The old end passes: nothing happens.
    clock.set(t(2 * H));
    assert_eq!(h.current("ann").await.unwrap(), Some(longer));
    assert_quiet(&mut ev);

    // Shortening works too.
    let shorter = h.go_online("ann", 1, None).await.unwrap();
    next(&mut ev).await;
    clock.set(t(3 * H));
    assert_eq!(
        next(&mut ev).await,
        expired("ann", shorter.end, false, false)
    );
    clock.set(t(20 * H));
    assert_eq!(h.current("ann").await.unwrap(), None);
    assert_quiet(&mut ev);
    let kinds: Vec<_> = store
        .history("ann", 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    use HistoryKind::*;
    assert_eq!(
        kinds,
        vec![Expired, Online, Replaced, Online, Replaced, Online]
    );
}

#[tokio::test]
async fn going_offline_disarms_the_timer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;

    let win = h.go_online("ann", 1, None).await.unwrap();
    next(&mut ev).await;
    clock.advance(Duration::minutes(10));
    assert_eq!(h.go_offline("ann", Some("c2@x")).await.unwrap(), Some(win));
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::Offline {
            user: "ann".into(),
            window: Some(win)
        }
    );
    clock.advance(Duration::hours(5));
    assert_eq!(h.current("ann").await.unwrap(), None);
    assert_quiet(&mut ev);
    // Offline when not online is recorded, not an error.
    assert_eq!(h.go_offline("ann", None).await.unwrap(), None);
    let hist = store.history("ann", 10).await.unwrap();
    assert_eq!(hist[0].kind, HistoryKind::Offline);
    assert_eq!(hist[1].kind, HistoryKind::Offline);
    assert_eq!(hist[1].at, t(600));
}

#[tokio::test]
async fn force_offline_is_recorded_and_announced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    let win = h.go_online("bob", 8, None).await.unwrap();
    next(&mut ev).await;
    h.force_offline("bob", "3 missed calls").await.unwrap();
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::ForcedOffline {
            user: "bob".into(),
            window: Some(win),
            reason: "3 missed calls".into(),
            actor: crate::presence::ACTOR_SWITCH.into(),
        }
    );
    clock.advance(Duration::hours(9));
    assert_eq!(h.current("bob").await.unwrap(), None);
    assert_quiet(&mut ev);
    let hist = store.history("bob", 1).await.unwrap();
    assert_eq!(hist[0].kind, HistoryKind::ForcedOffline);
    assert_eq!(hist[0].reason, "3 missed calls");
}

/// Issue 14 on the simulated clock: missed offers close the window (its
/// expiry disarmed: no "window ended" later) and announce not responding;
/// the mark survives a restart of the service and is cleared once.
#[tokio::test]
async fn not_responding_is_announced_kept_and_cleared_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(t(0));
    let why = "missed 3 offers in a row (max_no_answer)";
    {
        let (store, h, mut ev, task) = setup(&path, &clock).await;
        let win = h.go_online("bob", 8, None).await.unwrap();
        next(&mut ev).await;
        clock.advance(Duration::minutes(5));
        assert_eq!(h.set_not_responding("bob", why).await.unwrap(), Some(win));
        assert_eq!(
            next(&mut ev).await,
            PresenceEvent::NotResponding {
                user: "bob".into(),
                window: Some(win),
                reason: why.into(),
            }
        );
        clock.advance(Duration::hours(9));
        assert_eq!(h.current("bob").await.unwrap(), None);
        assert_quiet(&mut ev);
        let marks = store.all_not_responding().await.unwrap();
        assert_eq!((marks[0].user.as_str(), marks[0].since), ("bob", t(300)));
        h.shutdown().await;
        task.await.unwrap();
        store.close().await;
    }
    // A restart: still not responding (durable, not a running state).
    let (store, h, mut ev, _task) = setup(&path, &clock).await;
    assert_eq!(store.all_not_responding().await.unwrap().len(), 1);
    assert!(h
        .clear_not_responding(
            "bob",
            crate::presence::ACTOR_AGENT,
            "called the log-in line"
        )
        .await
        .unwrap());
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::Responding {
            user: "bob".into(),
            actor: crate::presence::ACTOR_AGENT.into(),
        }
    );
    assert!(!h
        .clear_not_responding("bob", "floor", "again")
        .await
        .unwrap());
    assert_quiet(&mut ev);
    let hist = store.history("bob", 2).await.unwrap();
    assert_eq!(
        (hist[0].kind, hist[1].kind),
        (HistoryKind::Responding, HistoryKind::NotResponding)
    );
    assert_eq!(hist[1].reason, why);
}

#[tokio::test]
async fn a_busy_agent_expires_when_the_call_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    let win = h.go_online("ann", 1, None).await.unwrap();
    next(&mut ev).await;

    h.set_busy("ann", true).await.unwrap();
    let s = &store;
    assert_eq!(activities(s).await.unwrap()["ann"].0, Activity::Busy);

    clock.set(t(2 * H));
    // Still on the call: the window is not closed yet.
    assert_eq!(h.current("ann").await.unwrap(), Some(win));
    assert_quiet(&mut ev);

    clock.set(t(2 * H + 300));
    h.set_busy("ann", false).await.unwrap();
    assert_eq!(next(&mut ev).await, expired("ann", t(H), false, true));
    assert_eq!(h.current("ann").await.unwrap(), None);
    let hist = store.history("ann", 1).await.unwrap();
    assert_eq!(hist[0].at, t(H), "the real end, not when the call ended");
    assert_eq!(hist[0].reason, "window ended during a call");
    assert!(activities(s).await.unwrap().is_empty());
}

#[tokio::test]
async fn wrap_up_does_not_hold_back_an_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    h.go_online("ann", 1, None).await.unwrap();
    next(&mut ev).await;
    h.set_activity("ann", Activity::WrapUp).await.unwrap();
    let s = &store;
    assert_eq!(activities(s).await.unwrap()["ann"].0, Activity::WrapUp);
    clock.set(t(H));
    assert_eq!(next(&mut ev).await, expired("ann", t(H), false, false));
}

#[tokio::test]
async fn restart_closes_windows_that_ended_while_down_with_their_real_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(t(0));
    {
        let (store, h, _ev, task) = setup(&path, &clock).await;
        h.go_online("ann", 1, Some("c1@x")).await.unwrap();
        h.go_online("bob", 8, None).await.unwrap();
        h.set_busy("bob", true).await.unwrap();
        h.shutdown().await;
        task.await.unwrap();
        assert!(matches!(h.current("ann").await, Err(ServiceError::Stopped)));
        store.close().await;
    }
    // Down for three hours.
    clock.set(t(3 * H));
    let (store, h, mut ev, _task) = setup(&path, &clock).await;
    assert_eq!(next(&mut ev).await, expired("ann", t(H), true, false));
    assert_quiet(&mut ev);
    let hist = store.history("ann", 1).await.unwrap();
    assert_eq!(hist[0].kind, HistoryKind::Expired);
    assert_eq!(hist[0].at, t(H));
    assert_eq!(hist[0].reason, "ended while down");
    // No call survives a restart.
    let s = &store;
    assert!(activities(s).await.unwrap().is_empty());

    // Bob's window is still open and stays armed.
    assert_eq!(
        h.current("bob").await.unwrap(),
        Some(Window::new(t(0), t(8 * H)).unwrap())
    );
    clock.set(t(8 * H - 1));
    assert_eq!(
        h.current("bob").await.unwrap().map(|w| w.end),
        Some(t(8 * H))
    );
    assert_quiet(&mut ev);
    clock.set(t(8 * H));
    assert_eq!(next(&mut ev).await, expired("bob", t(8 * H), false, false));
}

#[tokio::test]
async fn start_without_subscribing_still_closes_ended_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = store_at(&path).await;
    store
        .set_online("ann", t(0), t(H), None, "m")
        .await
        .unwrap();
    let clock = ManualClock::new(t(2 * H));
    let (h, _task) = PresenceService::start(store.clone(), clock).await.unwrap();
    assert_eq!(h.current("ann").await.unwrap(), None);
    assert_eq!(store.history("ann", 1).await.unwrap()[0].at, t(H));
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (_store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    let err = h.go_online("ann", 0, None).await.unwrap_err();
    assert!(
        matches!(err, ServiceError::Store(StoreError::InvalidWindow { .. })),
        "{err:?}"
    );
    let err = h.go_online("", 8, None).await.unwrap_err();
    assert!(
        matches!(err, ServiceError::Store(StoreError::EmptyUser)),
        "{err:?}"
    );
    assert_eq!(h.current("ann").await.unwrap(), None);
    assert_quiet(&mut ev);

    // Far beyond the calendar.
    clock.set(DateTime::<Utc>::MAX_UTC - Duration::hours(1));
    let err = h.go_online("ann", 2, None).await.unwrap_err();
    assert!(
        matches!(err, ServiceError::OutOfRange { hours: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("fewer hours"));
}

#[tokio::test]
async fn handles_fail_cleanly_once_every_handle_but_one_is_dropped_and_it_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (_store, h, _ev, task) = setup(&dir.path().join("p.db"), &clock).await;
    let h2 = h.clone();
    drop(h);
    h2.go_online("ann", 1, None).await.unwrap();
    drop(h2);
    // Dropping the last handle ends the loop.
    task.await.unwrap();
}

/// The sped-up clock used by end-to-end tests (TPSWITCH_CLOCK_SPEED): an
/// hour-long window ends after about a second of real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_clock_expires_windows_in_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(&dir.path().join("p.db")).await;
    let clock = crate::presence::clock::ScaledClock::new(3600.0);
    let (service, handle) = PresenceService::new(store.clone(), clock);
    let mut events = handle.subscribe();
    let _task = service.spawn().await.unwrap();
    handle.go_online("jsmith", 1, None).await.unwrap();
    loop {
        match next(&mut events).await {
            PresenceEvent::Expired { user, .. } => {
                assert_eq!(user, "jsmith");
                break;
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_log_in_the_store_cannot_save_is_not_confirmed_and_the_next_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let fresh = crate::presence::SqliteStore::open(&path).await.unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(fresh.readers())
        .await
        .unwrap();
    fresh.close().await;
    let full = crate::presence::SqliteStore::open_full(&path, pages)
        .await
        .unwrap();
    let clock = ManualClock::new(t(0));
    let (service, h) = PresenceService::new(full.clone(), clock.clone());
    let mut ev = h.subscribe();
    let _task = service.spawn().await.unwrap();
    // Enough log-ins to need new pages: each one fails, none is announced.
    let mut failed = 0;
    for i in 0..200 {
        if h.go_online(&format!("agent{i:03}-{}", "x".repeat(500)), 8, Some("c"))
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    assert!(failed > 0, "the store never filled up");
    let announced = std::iter::from_fn(|| ev.try_recv().ok()).count();
    assert_eq!(
        announced,
        200 - failed,
        "an event for every saved window only"
    );
    // Space freed: the store takes writes again without a restart.
    sqlx::query("PRAGMA max_page_count = 1073741823")
        .execute(full.writer())
        .await
        .unwrap();
    let w = h.go_online("jsmith", 8, Some("c2")).await.unwrap();
    assert_eq!(h.current("jsmith").await.unwrap(), Some(w));
    assert!(matches!(next(&mut ev).await, PresenceEvent::Online { .. }));
}

/// Issue 14: an online agent adds hours on the phone. The window grows
/// from its end (not from now), is re-armed, and the history says the
/// agent extended it; an offline agent gets a window from now; the bound
/// clamps, never cuts.
#[tokio::test]
async fn extending_adds_to_the_end_rearms_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, _ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    let longest = Duration::hours(99);

    h.go_online("ann", 8, Some("c1@x")).await.unwrap();
    clock.advance(Duration::hours(5));
    let win = h.extend("ann", 24, longest).await.unwrap();
    assert_eq!(win.end, t(32 * H), "8 h window + 24 h, from its end");
    assert_eq!(store.current("ann").await.unwrap(), Some(win));
    // Re-armed: still online past the old end, closed at the new one.
    clock.set(t(9 * H));
    assert_eq!(h.current("ann").await.unwrap(), Some(win));
    clock.set(t(32 * H + 1));
    assert_eq!(h.current("ann").await.unwrap(), None);
    let history = store
        .history_page(
            "ann",
            HistoryQuery {
                since: None,
                until: None,
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let extended = history
        .iter()
        .find(|e| e.kind == HistoryKind::Extended)
        .expect("an extended entry");
    assert_eq!(extended.actor, crate::presence::ACTOR_AGENT);
    assert_eq!(extended.reason, "added 24 h by phone");

    // Offline: a window from now.
    let now = t(40 * H);
    clock.set(now);
    let win = h.extend("bob", 8, longest).await.unwrap();
    assert_eq!((win.start, win.end), (now, t(48 * H)));

    // Clamped to `longest` from now, and never shortened below its end.
    let win = h.extend("bob", 96, longest).await.unwrap();
    assert_eq!(win.end, t(40 * H + 99 * H));
    let same = h.extend("bob", 8, Duration::hours(24)).await.unwrap();
    assert_eq!(same.end, win.end);
}

/// Issue 14: the reminder comes the lead before the end, is recorded once,
/// and waits while the agent is on a customer call.
#[tokio::test]
async fn a_reminder_comes_before_the_end_and_waits_for_a_call_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    h.remind_before(Some(Duration::minutes(15)));
    h.go_online("ann", 8, None).await.unwrap();
    h.go_online("bob", 8, None).await.unwrap();
    let _ = next(&mut ev).await;
    let _ = next(&mut ev).await;
    h.set_busy("bob", true).await.unwrap();
    clock.set(t(8 * H - 15 * 60));
    h.current("ann").await.unwrap();
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::Remind {
            user: "ann".into(),
            end: t(8 * H)
        }
    );
    assert_quiet(&mut ev);
    // Recorded: a second service on this store would not call again.
    assert!(!store
        .mark_reminded("ann", t(8 * H), t(8 * H))
        .await
        .unwrap());
    // Bob's call ends with 10 minutes left: reminded then.
    clock.set(t(8 * H - 10 * 60));
    h.current("bob").await.unwrap();
    assert_quiet(&mut ev);
    h.set_busy("bob", false).await.unwrap();
    h.current("bob").await.unwrap();
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::Remind {
            user: "bob".into(),
            end: t(8 * H)
        }
    );
}

fn login_record(call_id: &str) -> NewLoginCall {
    use crate::config::CallerIdTrust;
    use crate::presence::{CallerIdRecord, LoginOutcome};
    NewLoginCall {
        call_id: call_id.into(),
        caller: "+12345678910".into(),
        agent_user_id: Some("jsmith".into()),
        outcome: LoginOutcome::Online,
        hours: Some(8),
        started_at: t(0),
        ended_at: t(20),
        trust: CallerIdRecord {
            caller_id_trust: CallerIdTrust::Attested,
            attested: false,
            caller_id: None,
        },
    }
}

/// Frames in the WAL since the last truncation: each commit appends the
/// pages it changed, so a count well under one per record means the
/// records shared commits.
async fn wal_frames(path: &Path) -> i64 {
    let mut c = sqlite_conn(path).await;
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut c)
        .await
        .unwrap();
    sqlx::Row::get(&row, 1)
}

async fn sqlite_conn(path: &Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(StdDuration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

/// Group commit (issue 15): log-in records that queue while a write is in
/// progress go to the store in one transaction, and no caller hears back
/// before it commits; a record the store refuses fails alone.
#[tokio::test]
async fn queued_log_in_records_share_one_commit_and_a_refused_one_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(t(0));
    let (store, handle, _events, _task) = setup(&path, &clock).await;
    let mut other = sqlite_conn(&path).await;
    sqlx::raw_sql(
        "CREATE TRIGGER refuse BEFORE INSERT ON login_calls WHEN NEW.call_id = 'bad@x' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END; PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .execute(&mut other)
    .await
    .unwrap();

    let send = |ids: Vec<String>| {
        ids.into_iter()
            .map(|id| {
                let h = handle.clone();
                tokio::spawn(async move { h.record_login(login_record(&id)).await })
            })
            .collect::<Vec<_>>()
    };
    // Another writer holds the write lock: the records queue behind it.
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let waiting = send((0..20).map(|i| format!("l{i}@x")).collect());
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "a caller heard back before its record was written"
    );
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    let frames = wal_frames(&path).await;
    // One commit per record would append at least 20 frames (the table's
    // page, and its index's); the first alone, then the other 19 together,
    // a handful.
    assert!(frames < 12, "{frames} WAL frames for 20 records");

    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let waiting = send(vec![
        "a@x".into(),
        "bad@x".into(),
        "b@x".into(),
        "c@x".into(),
    ]);
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    let mut results = Vec::new();
    for w in waiting {
        results.push(w.await.unwrap().is_ok());
    }
    assert_eq!(results, [true, false, true, true]);
    let stored = store.login_calls_since(t(-10), 100).await.unwrap();
    assert_eq!(stored.len(), 23);
    assert!(stored.iter().all(|c| c.call_id != "bad@x"));
}

/// A running service whose log-in records wait `linger` for company.
async fn lingering(path: &Path, linger: StdDuration) -> (Store, PresenceHandle, JoinHandle<()>) {
    let store = store_at(path).await;
    let (service, handle) = PresenceService::new(store.clone(), ManualClock::new(t(0)));
    let task = service.with_login_linger(linger).spawn().await.unwrap();
    (store, handle, task)
}

/// Log-in records wait for company (issue 15): records that come one at a
/// time to an idle service are not written one by one; nobody hears back
/// before their commit; a window asked for meanwhile is written at once and
/// takes them along, in one commit.
#[tokio::test]
async fn log_in_records_wait_for_company_and_a_window_takes_them_along() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    // A linger no test run comes near, so "not yet written" cannot be a
    // matter of timing.
    let (store, handle, _task) = lingering(&path, StdDuration::from_secs(600)).await;
    let mut other = sqlite_conn(&path).await;
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut other)
        .await
        .unwrap();

    let mut waiting = Vec::new();
    for i in 0..10 {
        let h = handle.clone();
        let id = format!("l{i}@x");
        waiting.push(tokio::spawn(async move {
            h.record_login(login_record(&id)).await
        }));
        // Each arrives at an idle service (which wrote each at once before).
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "a record was written alone"
    );
    assert!(store
        .login_calls_since(t(-10), 100)
        .await
        .unwrap()
        .is_empty());

    let window = tokio::time::timeout(
        StdDuration::from_secs(10),
        handle.go_online("jsmith", 8, Some("c@x")),
    )
    .await
    .expect("the window is written at once")
    .unwrap();
    assert_eq!(window.end, t(8 * H));
    for w in waiting {
        tokio::time::timeout(StdDuration::from_secs(10), w)
            .await
            .expect("the records went with the window")
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        store.login_calls_since(t(-10), 100).await.unwrap().len(),
        10
    );
    // One commit: the pages of the window's tables and of the records'
    // (9 frames here); one commit per record would append at least 20.
    let frames = wal_frames(&path).await;
    assert!(
        frames < 15,
        "{frames} WAL frames for one window and 10 records"
    );
}

/// A log-in record alone is written once its linger is over, without any
/// other command to wake the service.
#[tokio::test]
async fn a_lone_log_in_record_is_written_when_its_linger_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let (store, handle, _task) = lingering(&path, StdDuration::from_millis(50)).await;
    // The service would otherwise sleep MAX_SLEEP (60 s) before looking.
    tokio::time::timeout(
        StdDuration::from_secs(20),
        handle.record_login(login_record("alone@x")),
    )
    .await
    .expect("written after its linger, not at the next wake-up")
    .unwrap();
    let stored = store.login_calls_since(t(-10), 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].call_id, "alone@x");
}

/// Group commit for windows (issue 15): windows that queue behind a write
/// share one transaction with the queued log-in records, while other
/// agents' requests go ahead. Nobody hears "online", no event goes out and
/// no timer is armed before that commit. A command for the same agent
/// queued behind a window sees it written (the group is written first),
/// and a window the store refuses fails alone.
#[tokio::test]
async fn queued_windows_share_one_commit_and_are_told_only_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(t(0));
    let (store, handle, mut events, _task) = setup(&path, &clock).await;
    let mut other = sqlite_conn(&path).await;
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut other)
        .await
        .unwrap();
    let online = |user: &str| {
        let (h, user) = (handle.clone(), user.to_owned());
        tokio::spawn(async move { h.go_online(&user, 8, Some("c@x")).await })
    };
    let record = |id: &str| {
        let (h, id) = (handle.clone(), id.to_owned());
        tokio::spawn(async move { h.record_login(login_record(&id)).await })
    };
    let lock = || sqlx::raw_sql("BEGIN IMMEDIATE");

    lock().execute(&mut other).await.unwrap();
    let first = online("agent0");
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    let mut windows = Vec::new();
    let mut others = Vec::new();
    for i in 1..20 {
        windows.push(online(&format!("agent{i}")));
        // Another agent's request between the windows goes ahead without
        // breaking the group (each log-in call makes one).
        let h = handle.clone();
        others.push(tokio::spawn(async move {
            h.clear_not_responding(&format!("other{i}"), "agent", "called in")
                .await
        }));
    }
    let records: Vec<_> = (0..20).map(|i| record(&format!("l{i}@x"))).collect();
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(
        windows.iter().all(|w| !w.is_finished()) && !first.is_finished(),
        "an agent heard back before their window was written"
    );
    assert!(matches!(events.try_recv(), Err(TryRecvError::Empty)));
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    first.await.unwrap().unwrap();
    for o in others {
        assert!(!o.await.unwrap().unwrap());
    }
    for w in windows {
        assert_eq!(
            w.await.unwrap().unwrap(),
            Window::new(t(0), t(8 * H)).unwrap()
        );
    }
    for r in records {
        r.await.unwrap().unwrap();
    }
    // One commit per write would append at least 60 frames: a window
    // changes two tables and their indexes, a record one. The first window
    // alone, then the other 39 writes together: a handful.
    let frames = wal_frames(&path).await;
    assert!(
        frames < 25,
        "{frames} WAL frames for 20 windows and 20 records"
    );
    let mut online_events = 0;
    while let Ok(e) = events.try_recv() {
        online_events += usize::from(matches!(e, PresenceEvent::Online { .. }));
    }
    assert_eq!(online_events, 20);
    assert_eq!(store.all_current().await.unwrap().len(), 20);

    // Queued in this order behind a write: a window, then that agent's
    // "offline". The offline closes the window; had it run first it would
    // have found nothing to close and left the agent online.
    lock().execute(&mut other).await.unwrap();
    let blocker = online("agent0");
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    let zed = online("zed");
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let off = {
        let h = handle.clone();
        tokio::spawn(async move { h.go_offline("zed", None).await })
    };
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    blocker.await.unwrap().unwrap();
    let opened = zed.await.unwrap().unwrap();
    assert_eq!(off.await.unwrap().unwrap(), Some(opened));
    assert_eq!(store.current("zed").await.unwrap(), None);

    // One refused window in a group (an empty user) fails alone.
    lock().execute(&mut other).await.unwrap();
    let blocker = online("agent0");
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    let group = [online("ann"), online(""), online("bob")];
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    blocker.await.unwrap().unwrap();
    let mut ok = Vec::new();
    for w in group {
        ok.push(w.await.unwrap().is_ok());
    }
    assert_eq!(ok, [true, false, true]);
    assert!(store.current("ann").await.unwrap().is_some());
    assert!(store.current("bob").await.unwrap().is_some());
}

/// Other agents' commands go ahead of a gathered window, but not for ever:
/// after as many as a group holds, the window is written even while more
/// keep coming, so a busy API or floor cannot keep an agent from hearing
/// "online".
#[tokio::test]
async fn a_stream_of_other_agents_commands_cannot_keep_a_window_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(t(0));
    let (_store, handle, _events, _task) = setup(&path, &clock).await;
    let mut other = sqlite_conn(&path).await;
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    // Blocks the service in its write, so the rest queue behind it.
    let blocker = {
        let h = handle.clone();
        tokio::spawn(async move { h.go_online("blocker", 8, None).await })
    };
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    let window = {
        let (h, done) = (handle.clone(), done_tx.clone());
        tokio::spawn(async move {
            h.go_online("ann", 8, None).await.unwrap();
            done.send("window").unwrap();
        })
    };
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let reads = 2 * super::super::group::MAX_GROUP;
    let mut tasks = Vec::new();
    for i in 0..reads {
        let (h, done) = (handle.clone(), done_tx.clone());
        tasks.push(tokio::spawn(async move {
            h.current(&format!("other{i}")).await.unwrap();
            done.send("read").unwrap();
        }));
    }
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    blocker.await.unwrap().unwrap();
    window.await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    drop(done_tx);
    let mut order = Vec::new();
    while let Some(what) = done.recv().await {
        order.push(what);
    }
    let at = order.iter().position(|w| *w == "window").unwrap();
    assert!(
        at < reads,
        "the window was written after all {reads} reads that queued behind it"
    );
}
