//! Claims, fencing tokens and heartbeats on the PostgreSQL store, as two
//! nodes on one database see them (each test: its own database on the
//! test server, `test_backends`).

use std::time::Duration;

use chrono::Utc;

use super::claims::{ClaimHold, ClaimOutcome};
use super::postgres::PgStore;
use super::store::PresenceStore;
use super::test_backends::fresh_database;

const LEASE: Duration = Duration::from_secs(30);

/// Two nodes on one fresh database, or `None` without a test server.
async fn two_nodes() -> Option<(PgStore, PgStore)> {
    let cfg = fresh_database().await?;
    let a = PgStore::connect(&cfg).await.unwrap().with_node("a");
    let b = PgStore::connect(&cfg).await.unwrap().with_node("b");
    a.register_node(LEASE).await.unwrap().unwrap();
    b.register_node(LEASE).await.unwrap().unwrap();
    Some((a, b))
}

/// Two heartbeats of `node`: a busy claim whose lease ended before the
/// first of them may be taken by it.
async fn beat_twice(node: &PgStore) {
    for _ in 0..2 {
        assert!(node.heartbeat(LEASE).await.unwrap());
    }
}

fn token(o: &ClaimOutcome) -> i64 {
    match o {
        ClaimOutcome::Granted { token, .. } => *token,
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[tokio::test]
async fn of_two_nodes_claiming_one_agent_at_once_exactly_one_is_granted() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    for i in 0..40 {
        let user = format!("agent{i}");
        let (ra, rb) = tokio::join!(a.claim_agent(&user, LEASE), b.claim_agent(&user, LEASE));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let granted = [&ra, &rb]
            .iter()
            .filter(|o| matches!(o, ClaimOutcome::Granted { .. }))
            .count();
        assert_eq!(granted, 1, "{user}: {ra:?} / {rb:?}");
        // The loser is told who holds the agent, and for about a lease.
        let held = if matches!(ra, ClaimOutcome::Held { .. }) {
            ra
        } else {
            rb
        };
        match held {
            ClaimOutcome::Held { node, remaining } => {
                assert!(node == "a" || node == "b");
                assert!(remaining > LEASE / 2 && remaining <= LEASE, "{remaining:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_node_frozen_past_its_lease_has_its_later_write_refused() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let short = Duration::from_millis(300);
    let old = token(&a.claim_agent("ann", short).await.unwrap());
    // Within a's lease b is refused...
    assert!(matches!(
        b.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Held { ref node, .. } if node == "a"
    ));
    // ...then a stops (no heartbeat renews the claim) and the lease ends,
    // while b is seen alive, beating twice since.
    tokio::time::sleep(Duration::from_millis(400)).await;
    beat_twice(&b).await;
    let new = token(&b.claim_agent("ann", LEASE).await.unwrap());
    assert!(new > old, "a new claim takes a new token");
    // a wakes up and writes as if it still held her: refused.
    assert!(!a
        .update_claim("ann", old, ClaimHold::Free, LEASE, 0)
        .await
        .unwrap());
    assert!(!a
        .update_claim("ann", old, ClaimHold::WrapUp(LEASE), LEASE, 0)
        .await
        .unwrap());
    // b's claim stands: a third claim is still refused, naming b.
    assert!(matches!(
        a.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Held { ref node, .. } if node == "b"
    ));
    assert!(b
        .update_claim("ann", new, ClaimHold::Free, LEASE, 0)
        .await
        .unwrap());
}

#[tokio::test]
async fn the_heartbeat_renews_busy_claims_and_a_wrap_up_holds_for_its_time() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let short = Duration::from_millis(400);
    let t = token(&a.claim_agent("ann", short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(a.heartbeat(short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        matches!(
            b.claim_agent("ann", LEASE).await.unwrap(),
            ClaimOutcome::Held { .. }
        ),
        "renewed by the heartbeat"
    );
    // The call ends: wrap-up for 300 ms, not renewed by heartbeats.
    assert!(a
        .update_claim(
            "ann",
            t,
            ClaimHold::WrapUp(Duration::from_millis(300)),
            short,
            1
        )
        .await
        .unwrap());
    assert!(a.heartbeat(short).await.unwrap());
    assert!(matches!(
        b.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Held { .. }
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    // The misses a counted travel with the agent.
    assert_eq!(
        b.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Granted {
            token: t + 1,
            misses: 1
        }
    );
}

#[tokio::test]
async fn a_release_is_free_at_once_and_announced() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let mut listener = sqlx::postgres::PgListener::connect_with(b.pool())
        .await
        .unwrap();
    listener
        .listen(super::claims::AGENTS_CHANNEL)
        .await
        .unwrap();
    let t = token(&a.claim_agent("ann", LEASE).await.unwrap());
    assert!(a
        .update_claim("ann", t, ClaimHold::Free, LEASE, 0)
        .await
        .unwrap());
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(n.payload(), format!("{} ann", a.instance()));
    token(&b.claim_agent("ann", LEASE).await.unwrap());
}

#[tokio::test]
async fn a_node_name_in_use_is_refused_until_its_lease_ends_and_old_claims_go() {
    let Some(cfg) = fresh_database().await else {
        return;
    };
    let short = Duration::from_millis(400);
    let first = PgStore::connect(&cfg).await.unwrap().with_node("a");
    first.register_node(short).await.unwrap().unwrap();
    token(&first.claim_agent("ann", LEASE).await.unwrap());
    let second = PgStore::connect(&cfg).await.unwrap().with_node("a");
    let refused = second.register_node(short).await.unwrap();
    assert!(
        matches!(refused, Err(ref e) if e.node == "a"),
        "{refused:?}"
    );
    // The same process registering again is not refused.
    first.register_node(short).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The first process is gone (no heartbeat): the name is free, and its
    // claims died with it.
    second.register_node(short).await.unwrap().unwrap();
    assert!(!first.heartbeat(short).await.unwrap(), "replaced");
    // Replaced, the first process may claim no one.
    assert_eq!(
        first.claim_agent("bob", LEASE).await.unwrap(),
        ClaimOutcome::Replaced
    );
    let other = PgStore::connect(&cfg).await.unwrap().with_node("b");
    other.register_node(LEASE).await.unwrap().unwrap();
    token(&other.claim_agent("ann", LEASE).await.unwrap());
}

#[tokio::test]
async fn a_window_ending_during_a_call_through_another_node_is_left_to_that_node() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let now = Utc::now();
    let end = now + chrono::Duration::milliseconds(100);
    a.set_online("ann", now, end, None, "menu").await.unwrap();
    token(&a.claim_agent("ann", LEASE).await.unwrap());
    assert_eq!(b.expire("ann", end, "window ended").await.unwrap(), None);
    assert!(b.current("ann").await.unwrap().is_some());
    // The node with the call closes it.
    assert!(a
        .expire("ann", end, "window ended")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn coming_online_again_starts_a_fresh_count_of_misses() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let t = token(&a.claim_agent("ann", LEASE).await.unwrap());
    assert!(a
        .update_claim("ann", t, ClaimHold::Free, LEASE, 2)
        .await
        .unwrap());
    let now = Utc::now();
    b.set_online("ann", now, now + chrono::Duration::hours(1), None, "menu")
        .await
        .unwrap();
    assert!(matches!(
        a.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Granted { misses: 0, .. }
    ));
}

/// Two presence services, one per node: a window opened on one is armed on
/// the other by a resync, and when it ends exactly one of them closes it
/// (the other learns of it at its next resync).
#[tokio::test]
async fn two_nodes_arm_each_others_windows_and_close_each_once() {
    use super::clock::ManualClock;
    use super::service::{PresenceEvent, PresenceService};
    use super::Store;
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let clock = ManualClock::new(Utc::now());
    let (sa, ha) = PresenceService::new(Store::Postgres(a), clock.clone());
    let (sb, hb) = PresenceService::new(Store::Postgres(b), clock.clone());
    let (mut ea, mut eb) = (ha.subscribe(), hb.subscribe());
    sa.spawn().await.unwrap();
    sb.spawn().await.unwrap();
    let next = |rx: &mut tokio::sync::broadcast::Receiver<PresenceEvent>| {
        let mut rx = rx.resubscribe();
        async move {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .ok()
                .and_then(Result::ok)
        }
    };
    let w = ha.go_online("ann", 1, None).await.unwrap();
    let synced = next(&mut eb);
    hb.resync(Some("ann"));
    assert_eq!(
        synced.await,
        Some(PresenceEvent::Synced {
            user: "ann".into(),
            window: Some(w)
        })
    );
    // Nothing new on a full resync.
    hb.resync(None);
    hb.current("ann").await.unwrap();
    while let Ok(e) = eb.try_recv() {
        assert!(
            matches!(
                e,
                PresenceEvent::Synced {
                    window: Some(_),
                    ..
                }
            ),
            "{e:?}"
        );
    }
    while ea.try_recv().is_ok() {}
    // Both have it armed; the end passes on both at once.
    clock.advance(chrono::Duration::hours(2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    ha.current("ann").await.unwrap();
    hb.current("ann").await.unwrap();
    let mut expired = 0;
    for rx in [&mut ea, &mut eb] {
        while let Ok(e) = rx.try_recv() {
            if matches!(e, PresenceEvent::Expired { .. }) {
                expired += 1;
            }
        }
    }
    assert_eq!(expired, 1, "closed once, by one node");
}

/// A stall of the store (or of the whole machine) longer than the lease:
/// nobody beats or writes meanwhile, and by the store's clock every busy
/// claim has lapsed once it is over. a, alive all along, still has ann on
/// a call. b's first claims after the stall must not take her: b has not
/// been seen alive past a's lease either (before the fix, b's first claim
/// was granted and ann was rung by both nodes). Once a beats again its
/// claim is renewed; only a truly silent a loses ann, after b has beaten
/// twice past a's lease.
#[tokio::test]
async fn a_stall_of_the_store_hands_no_live_nodes_busy_agent_to_another() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let short = Duration::from_millis(300);
    token(&a.claim_agent("ann", short).await.unwrap());
    assert!(a.heartbeat(short).await.unwrap());
    assert!(b.heartbeat(short).await.unwrap());
    // The stall: time passes, nothing reaches the store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // b's claim, queued during the stall, runs first...
    assert!(
        matches!(b.claim_agent("ann", LEASE).await.unwrap(), ClaimOutcome::Held { ref node, .. } if node == "a"),
        "a claim right after a stall takes no busy agent"
    );
    // ...then b's own heartbeat, and its claim again: b has beaten once
    // since a's lease ended, which a stalled store's first beat can be.
    assert!(b.heartbeat(short).await.unwrap());
    assert!(matches!(
        b.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Held { .. }
    ));
    // a's heartbeat, queued during the stall too, renews its claim: b
    // beating on changes nothing within the renewed lease.
    assert!(a.heartbeat(short).await.unwrap());
    assert!(b.heartbeat(short).await.unwrap());
    assert!(matches!(
        b.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Held { .. }
    ));
    // a is silent from now on: one lease later, and two of b's beats
    // after it, b takes ann.
    tokio::time::sleep(Duration::from_millis(350)).await;
    beat_twice(&b).await;
    token(&b.claim_agent("ann", LEASE).await.unwrap());
}
