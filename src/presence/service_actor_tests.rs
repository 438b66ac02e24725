//! Presence changes made on an agent's behalf (a supervisor through the
//! API): set, extend, shorten and end a window, on a manual clock and a
//! real SQLite file.

use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone};
use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::presence::clock::ManualClock;
use crate::presence::{HistoryKind, ACTOR_AGENT, ACTOR_SWITCH};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

const H: i64 = 3600;
const M: i64 = 60;

fn longest() -> chrono::Duration {
    chrono::Duration::hours(99)
}

fn floor(reason: &str) -> Actor {
    Actor {
        name: "floor".into(),
        reason: reason.into(),
    }
}

async fn setup(
    path: &Path,
    clock: &Arc<ManualClock>,
) -> (
    Store,
    PresenceHandle,
    broadcast::Receiver<PresenceEvent>,
    JoinHandle<()>,
) {
    let store = Store::open(path).await.unwrap();
    let (service, handle) = PresenceService::new(store.clone(), clock.clone());
    let events = handle.subscribe();
    let task = service.spawn().await.unwrap();
    (store, handle, events, task)
}

async fn next(events: &mut broadcast::Receiver<PresenceEvent>) -> PresenceEvent {
    tokio::time::timeout(StdDuration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .unwrap()
}

fn assert_quiet(events: &mut broadcast::Receiver<PresenceEvent>) {
    assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);
}

/// (kind, actor, reason) of every history entry, newest first.
async fn story(store: &Store, user: &str) -> Vec<(HistoryKind, String, String)> {
    store
        .history(user, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor, e.reason))
        .collect()
}

fn line(kind: HistoryKind, actor: &str, reason: &str) -> (HistoryKind, String, String) {
    (kind, actor.to_owned(), reason.to_owned())
}

#[tokio::test]
async fn extending_a_window_rearms_its_expiry_and_keeps_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    h.go_online("ann", 1, Some("c1@x")).await.unwrap();
    next(&mut ev).await;

    clock.advance(Duration::seconds(30 * M));
    let change = h
        .set_window(
            "ann",
            WindowEnd::Minutes(120),
            longest(),
            floor("covering lunch"),
        )
        .await
        .unwrap();
    assert_eq!(change.kind, HistoryKind::Extended);
    let extended = Window::new(t(0), t(30 * M + 2 * H)).unwrap();
    assert_eq!(change.window, extended);
    // Durable before the answer.
    assert_eq!(store.current("ann").await.unwrap(), Some(extended));
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::Online {
            user: "ann".into(),
            window: extended,
            actor: "floor".into(),
        }
    );

    // The old end passes: still online, nothing announced.
    clock.set(t(H + 1));
    assert_eq!(h.current("ann").await.unwrap(), Some(extended));
    assert_quiet(&mut ev);

    // The new end closes it, and the agent is told as for any expiry.
    clock.set(extended.end);
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::Expired {
            user: "ann".into(),
            end: extended.end,
            while_down: false,
            deferred: false,
        }
    );
    assert_eq!(
        story(&store, "ann").await,
        vec![
            line(HistoryKind::Expired, ACTOR_SWITCH, "window ended"),
            line(HistoryKind::Extended, "floor", "covering lunch"),
            line(HistoryKind::Online, ACTOR_AGENT, "log-in menu"),
        ]
    );
}

#[tokio::test]
async fn shortening_a_window_brings_its_expiry_forward() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    h.go_online("ann", 8, None).await.unwrap();
    next(&mut ev).await;

    let change = h
        .set_window(
            "ann",
            WindowEnd::Until(t(H)),
            longest(),
            floor("leaves at ten"),
        )
        .await
        .unwrap();
    assert_eq!(change.kind, HistoryKind::Shortened);
    next(&mut ev).await;
    clock.set(t(H));
    assert!(matches!(next(&mut ev).await, PresenceEvent::Expired { end, .. } if end == t(H)));
    assert_eq!(store.current("ann").await.unwrap(), None);
}

#[tokio::test]
async fn a_supervisor_puts_an_offline_agent_online() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    let change = h
        .set_window(
            "bob",
            WindowEnd::Minutes(90),
            longest(),
            floor("phone broken"),
        )
        .await
        .unwrap();
    assert_eq!(change.kind, HistoryKind::Online);
    assert_eq!(change.window, Window::new(t(0), t(90 * M)).unwrap());
    next(&mut ev).await;
    clock.set(t(90 * M));
    assert!(matches!(next(&mut ev).await, PresenceEvent::Expired { .. }));
    assert_eq!(
        story(&store, "bob").await[1],
        line(HistoryKind::Online, "floor", "phone broken")
    );
}

#[tokio::test]
async fn a_supervisor_ending_a_window_disarms_it_and_announces_it_like_a_forced_offline() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    let win = h.go_online("ann", 1, None).await.unwrap();
    next(&mut ev).await;

    clock.set(t(10 * M));
    let ended = h.end_window("ann", floor("went home ill")).await.unwrap();
    assert_eq!(ended, Some(win));
    assert_eq!(store.current("ann").await.unwrap(), None);
    // The queue turns this into AgentOffline (no more offers) and the
    // notifier calls the agent, as for any forced offline.
    assert_eq!(
        next(&mut ev).await,
        PresenceEvent::ForcedOffline {
            user: "ann".into(),
            window: Some(win),
            reason: "went home ill".into(),
            actor: "floor".into(),
        }
    );
    // The old end passes: no expiry of a window that is gone.
    clock.set(t(2 * H));
    assert_eq!(h.current("ann").await.unwrap(), None);
    assert_quiet(&mut ev);

    // Ending nothing changes nothing, and records nothing.
    assert_eq!(h.end_window("ann", floor("again")).await.unwrap(), None);
    assert_quiet(&mut ev);
    let hist = store.history("ann", 10).await.unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0].kind, HistoryKind::ForcedOffline);
    assert_eq!(hist[0].actor, "floor");
    assert_eq!(hist[0].reason, "went home ill");
    assert_eq!(hist[0].at, t(10 * M));
    assert_eq!(hist[0].window, Some(win));
}

#[tokio::test]
async fn an_end_not_after_now_or_too_far_is_refused_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    let past = h
        .set_window("ann", WindowEnd::Until(t(0)), longest(), floor("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(past, ServiceError::EndNotAfterNow { .. }),
        "{past}"
    );
    let far = h
        .set_window("ann", WindowEnd::Minutes(100 * 60), longest(), floor("x"))
        .await
        .unwrap_err();
    assert!(matches!(far, ServiceError::TooLong { .. }), "{far}");
    assert!(far.to_string().contains("99 hours"), "{far}");
    assert!(store.history("ann", 10).await.unwrap().is_empty());
    assert_eq!(h.current("ann").await.unwrap(), None);
    assert_quiet(&mut ev);
}

/// A window extended before a restart is re-armed at its new end, and the
/// history keeps who did it.
#[tokio::test]
async fn an_extension_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let clock = ManualClock::new(t(0));
    {
        let (store, h, _ev, task) = setup(&path, &clock).await;
        h.go_online("ann", 1, None).await.unwrap();
        h.set_window("ann", WindowEnd::Minutes(180), longest(), floor("busy day"))
            .await
            .unwrap();
        h.shutdown().await;
        task.await.unwrap();
        store.close().await;
    }
    clock.set(t(2 * H));
    let (store, h, mut ev, _task) = setup(&path, &clock).await;
    assert_eq!(
        h.current("ann").await.unwrap(),
        Some(Window::new(t(0), t(3 * H)).unwrap())
    );
    assert_quiet(&mut ev);
    clock.set(t(3 * H));
    assert!(matches!(next(&mut ev).await, PresenceEvent::Expired { end, .. } if end == t(3 * H)));
    assert_eq!(
        story(&store, "ann").await[1],
        line(HistoryKind::Extended, "floor", "busy day")
    );
}

#[tokio::test]
async fn a_hung_up_nailed_up_line_ends_the_window_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t(0));
    let (store, h, mut ev, _task) = setup(&dir.path().join("p.db"), &clock).await;
    h.go_online("ann", 8, Some("line-1")).await.unwrap();
    next(&mut ev).await;
    clock.set(t(H));
    let closed = h.line_hung_up("ann", "line-1").await.unwrap();
    assert!(closed.is_some(), "the open window was closed");
    assert!(matches!(next(&mut ev).await, PresenceEvent::Offline { .. }));
    assert_eq!(store.current("ann").await.unwrap(), None);
    assert_eq!(
        story(&store, "ann").await,
        vec![
            line(
                HistoryKind::Offline,
                ACTOR_AGENT,
                "hung up the nailed-up line"
            ),
            line(HistoryKind::Online, ACTOR_AGENT, "log-in menu"),
        ]
    );
    // Nothing left to expire.
    clock.set(t(9 * H));
    assert_quiet(&mut ev);
}
