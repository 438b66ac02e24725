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
    a.register_node("a-1", LEASE).await.unwrap().unwrap();
    b.register_node("b-1", LEASE).await.unwrap().unwrap();
    Some((a, b))
}

/// Two heartbeats of `node`: a busy claim whose lease ended before the
/// first of them may be taken by it.
async fn beat_twice(node: &PgStore, instance: &str) {
    for _ in 0..2 {
        assert!(node.heartbeat(instance, LEASE).await.unwrap());
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
    beat_twice(&b, "b-1").await;
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
    assert!(a.heartbeat("a-1", short).await.unwrap());
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
    assert!(a.heartbeat("a-1", short).await.unwrap());
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
    assert_eq!(n.payload(), "a ann");
    token(&b.claim_agent("ann", LEASE).await.unwrap());
}

#[tokio::test]
async fn a_node_name_in_use_is_refused_until_its_lease_ends_and_old_claims_go() {
    let Some(cfg) = fresh_database().await else {
        return;
    };
    let short = Duration::from_millis(400);
    let first = PgStore::connect(&cfg).await.unwrap().with_node("a");
    first.register_node("a-1", short).await.unwrap().unwrap();
    token(&first.claim_agent("ann", LEASE).await.unwrap());
    let second = PgStore::connect(&cfg).await.unwrap().with_node("a");
    let refused = second.register_node("a-2", short).await.unwrap();
    assert!(
        matches!(refused, Err(ref e) if e.node == "a"),
        "{refused:?}"
    );
    // The same process registering again is not refused.
    first.register_node("a-1", short).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The first process is gone (no heartbeat): the name is free, and its
    // claims died with it.
    second.register_node("a-2", short).await.unwrap().unwrap();
    assert!(!first.heartbeat("a-1", short).await.unwrap(), "replaced");
    let other = PgStore::connect(&cfg).await.unwrap().with_node("b");
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
    assert!(a.heartbeat("a-1", short).await.unwrap());
    assert!(b.heartbeat("b-1", short).await.unwrap());
    // The stall: time passes, nothing reaches the store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // b's claim, queued during the stall, runs first...
    assert!(
        matches!(b.claim_agent("ann", LEASE).await.unwrap(), ClaimOutcome::Held { ref node, .. } if node == "a"),
        "a claim right after a stall takes no busy agent"
    );
    // ...then b's own heartbeat, and its claim again: b has beaten once
    // since a's lease ended, which a stalled store's first beat can be.
    assert!(b.heartbeat("b-1", short).await.unwrap());
    assert!(matches!(
        b.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Held { .. }
    ));
    // a's heartbeat, queued during the stall too, renews its claim: b
    // beating on changes nothing within the renewed lease.
    assert!(a.heartbeat("a-1", short).await.unwrap());
    assert!(b.heartbeat("b-1", short).await.unwrap());
    assert!(matches!(
        b.claim_agent("ann", LEASE).await.unwrap(),
        ClaimOutcome::Held { .. }
    ));
    // a is silent from now on: one lease later, and two of b's beats
    // after it, b takes ann.
    tokio::time::sleep(Duration::from_millis(350)).await;
    beat_twice(&b, "b-1").await;
    token(&b.claim_agent("ann", LEASE).await.unwrap());
}
