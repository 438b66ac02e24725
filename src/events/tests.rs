use super::*;
use chrono::TimeZone;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap()
}

fn online(agent: &str) -> Body {
    Body::Online {
        agent: agent.into(),
        window: Span {
            start: t0(),
            end: t0() + chrono::Duration::hours(2),
        },
        actor: None,
    }
}

fn ids(events: &[Arc<Event>]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

#[test]
fn ids_grow_by_one_from_the_start_time() {
    let bus = EventBus::new(8, t0());
    let first = u64::try_from(t0().timestamp_millis()).unwrap() << ID_SHIFT;
    let a = bus.publish(online("a"), t0());
    let b = bus.publish(online("b"), t0());
    assert_eq!((a.id, b.id), (first, first + 1));
    assert_eq!(bus.last_id(), Some(first + 1));
    // Below 2^53: exact as a JavaScript number.
    assert!(b.id < 1 << 53);
    // A later run numbers above every id of this one (unless this one
    // published over 1024 events per millisecond between the two starts).
    let later = EventBus::new(8, t0() + chrono::Duration::seconds(1));
    assert!(later.publish(online("a"), t0()).id > first + 1000);
}

#[test]
fn resume_replays_what_followed_the_id() {
    let bus = EventBus::new(8, t0());
    let sent: Vec<u64> = (0..5).map(|_| bus.publish(online("a"), t0()).id).collect();
    let r = bus.replay(Some(sent[1]));
    assert_eq!(r.missed, None);
    assert_eq!(ids(&r.events), sent[2..].to_vec());
    // Up to date: nothing to replay, nothing missed.
    let r = bus.replay(Some(sent[4]));
    assert_eq!((r.missed, r.events.len()), (None, 0));
    // A new reader replays nothing.
    let r = bus.replay(None);
    assert_eq!((r.missed, r.events.len()), (None, 0));
}

#[test]
fn overflow_keeps_the_newest_and_says_what_was_missed() {
    let bus = EventBus::new(3, t0());
    let sent: Vec<u64> = (0..5).map(|_| bus.publish(online("a"), t0()).id).collect();
    let r = bus.replay(None);
    assert!(r.events.is_empty());
    // The oldest two are gone: resuming after the first misses the second.
    let r = bus.replay(Some(sent[0]));
    assert_eq!(
        r.missed,
        Some(Body::Missed {
            after: sent[0],
            oldest: Some(sent[2])
        })
    );
    assert_eq!(ids(&r.events), sent[2..].to_vec());
    // Resuming right before the oldest held loses nothing.
    let r = bus.replay(Some(sent[1]));
    assert_eq!(r.missed, None);
    assert_eq!(ids(&r.events), sent[2..].to_vec());
}

#[test]
fn an_id_from_another_run_is_missed_events() {
    let bus = EventBus::new(8, t0());
    let first = bus.publish(online("a"), t0()).id;
    // From an earlier run (ids start lower) and from nowhere (beyond the last).
    for after in [5, first - 10, first + 50] {
        let r = bus.replay(Some(after));
        assert_eq!(
            r.missed,
            Some(Body::Missed {
                after,
                oldest: Some(first)
            }),
            "after {after}"
        );
        assert_eq!(ids(&r.events), vec![first]);
    }
    // Before any event of this run, the run's own "before the first".
    let empty = EventBus::new(8, t0());
    let r = empty.replay(Some(first - 1));
    assert_eq!((r.missed, r.events.len()), (None, 0));
}

#[tokio::test]
async fn a_subscriber_gets_the_replay_then_live_events_without_a_gap() {
    let bus = EventBus::new(8, t0());
    let a = bus.publish(online("a"), t0()).id;
    let b = bus.publish(online("b"), t0()).id;
    let (replay, mut live) = bus.subscribe(Some(a));
    assert_eq!(ids(&replay.events), vec![b]);
    let c = bus.publish(online("c"), t0()).id;
    assert_eq!(live.recv().await.unwrap().id, c);
}

#[test]
fn events_serialise_with_their_type_id_and_time() {
    let bus = EventBus::new(8, t0());
    let e = bus.publish(online("jsmith"), t0() + chrono::Duration::milliseconds(5));
    let json = serde_json::to_value(&*e).unwrap();
    assert_eq!(json["type"], "presence.online");
    assert_eq!(json["id"], e.id);
    assert_eq!(json["at"], "2026-12-04T09:00:00.005Z");
    assert_eq!(json["agent"], "jsmith");
    assert_eq!(json["window"]["end"], "2026-12-04T11:00:00Z");
    assert_eq!(e.kind(), "presence.online");
    for kind in KINDS {
        assert!(kind.contains('.'), "{kind}");
    }
}
