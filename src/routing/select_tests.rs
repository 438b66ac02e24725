use super::*;
use crate::routing::{AgentProfile, CallId};
use chrono::{TimeZone, Utc};
use std::time::{Duration, Instant};

fn profile(id: &str, skills: &[&str]) -> AgentProfile {
    AgentProfile {
        id: id.to_string(),
        skills: skills.iter().map(|s| s.to_string()).collect(),
        ext: String::new(),
        nailed_up: false,
    }
}

fn online(b: &mut AgentBoard, id: &str, at: Instant) {
    let until = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    b.set_online(id, until, at).unwrap();
}

/// Gives `id` a finished call ending at `end` (zero wrap-up).
fn take_call(b: &mut AgentBoard, id: &str, end: Instant) {
    b.offer(id, CallId(99)).unwrap();
    b.accepted(id).unwrap();
    b.call_ended(id, end, Duration::ZERO).unwrap();
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

fn none() -> HashSet<String> {
    HashSet::new()
}

#[test]
fn longest_idle_prefers_earliest_call_end_or_online_time() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new(["a", "b", "c"].map(|id| profile(id, &[])));
    online(&mut b, "a", t0);
    online(&mut b, "b", t0);
    online(&mut b, "c", secs(t0, 5));
    take_call(&mut b, "a", secs(t0, 30));
    take_call(&mut b, "b", secs(t0, 10));
    // b idle since 10, c since 5 (online, no calls), a since 30.
    let mut rr = RoundRobin::new();
    let got = pick(&b, Strategy::LongestIdle, &[], &none(), &mut rr);
    assert_eq!(got.as_deref(), Some("c"));
    assert_eq!(rr.last(), None, "only round-robin moves the pointer");
    b.offer("c", CallId(1)).unwrap();
    let got = pick(&b, Strategy::LongestIdle, &[], &none(), &mut rr);
    assert_eq!(got.as_deref(), Some("b"));
}

#[test]
fn longest_idle_ties_go_to_config_order() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new(["z", "a"].map(|id| profile(id, &[])));
    online(&mut b, "a", t0);
    online(&mut b, "z", t0);
    let got = pick(
        &b,
        Strategy::LongestIdle,
        &[],
        &none(),
        &mut RoundRobin::new(),
    );
    assert_eq!(got.as_deref(), Some("z"));
}

#[test]
fn round_robin_rotates_and_wraps_skipping_unavailable() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new(["a", "b", "c"].map(|id| profile(id, &[])));
    for id in ["a", "b", "c"] {
        online(&mut b, id, t0);
    }
    let mut rr = RoundRobin::new();
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(pick(&b, Strategy::RoundRobin, &[], &none(), &mut rr).unwrap());
    }
    assert_eq!(order, ["a", "b", "c", "a"]);
    b.offer("b", CallId(1)).unwrap();
    assert_eq!(
        pick(&b, Strategy::RoundRobin, &[], &none(), &mut rr).as_deref(),
        Some("c")
    );
    assert_eq!(
        pick(&b, Strategy::RoundRobin, &[], &none(), &mut rr).as_deref(),
        Some("a")
    );
}

#[test]
fn round_robin_pointers_are_per_queue() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new(["a", "b"].map(|id| profile(id, &[])));
    online(&mut b, "a", t0);
    online(&mut b, "b", t0);
    let (mut q1, mut q2) = (RoundRobin::new(), RoundRobin::new());
    assert_eq!(
        pick(&b, Strategy::RoundRobin, &[], &none(), &mut q1).as_deref(),
        Some("a")
    );
    assert_eq!(
        pick(&b, Strategy::RoundRobin, &[], &none(), &mut q1).as_deref(),
        Some("b")
    );
    assert_eq!(
        pick(&b, Strategy::RoundRobin, &[], &none(), &mut q2).as_deref(),
        Some("a")
    );
}

#[test]
fn fewest_calls_then_longest_idle() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new(["a", "b", "c"].map(|id| profile(id, &[])));
    for id in ["a", "b", "c"] {
        online(&mut b, id, t0);
    }
    take_call(&mut b, "a", secs(t0, 10));
    take_call(&mut b, "a", secs(t0, 20));
    take_call(&mut b, "b", secs(t0, 40));
    take_call(&mut b, "c", secs(t0, 30));
    // b and c have one call each; c has been idle longer.
    let got = pick(
        &b,
        Strategy::FewestCalls,
        &[],
        &none(),
        &mut RoundRobin::new(),
    );
    assert_eq!(got.as_deref(), Some("c"));
    // Longest-idle alone would pick a (idle since 20).
    let got = pick(
        &b,
        Strategy::LongestIdle,
        &[],
        &none(),
        &mut RoundRobin::new(),
    );
    assert_eq!(got.as_deref(), Some("a"));
}

#[test]
fn fewest_calls_restarts_when_going_online_again() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new(["a", "b"].map(|id| profile(id, &[])));
    online(&mut b, "a", t0);
    online(&mut b, "b", t0);
    take_call(&mut b, "a", secs(t0, 1));
    take_call(&mut b, "b", secs(t0, 2));
    take_call(&mut b, "b", secs(t0, 3));
    b.set_offline("b").unwrap();
    online(&mut b, "b", secs(t0, 4));
    assert_eq!(b.calls_taken("b"), Some(0));
    let got = pick(
        &b,
        Strategy::FewestCalls,
        &[],
        &none(),
        &mut RoundRobin::new(),
    );
    assert_eq!(got.as_deref(), Some("b"));
}

#[test]
fn skills_must_all_be_held_and_empty_means_anyone() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new([
        profile("a", &["billing"]),
        profile("b", &["billing", "spanish"]),
        profile("c", &[]),
    ]);
    for id in ["a", "b", "c"] {
        online(&mut b, id, t0);
    }
    let tried = none();
    let need = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let billing = need(&["billing"]);
    let both = need(&["billing", "spanish"]);
    let french = need(&["french"]);
    assert_eq!(
        eligible(&b, &[], &tried).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(
        eligible(&b, &billing, &tried).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(eligible(&b, &both, &tried).collect::<Vec<_>>(), ["b"]);
    assert_eq!(eligible(&b, &french, &tried).count(), 0);
    assert_eq!(
        pick(
            &b,
            Strategy::LongestIdle,
            &french,
            &tried,
            &mut RoundRobin::new()
        ),
        None
    );
}

#[test]
fn tried_offline_offered_and_wrapping_up_agents_are_not_eligible() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new(["a", "b", "c", "d", "e"].map(|id| profile(id, &[])));
    for id in ["a", "b", "c", "d"] {
        online(&mut b, id, t0);
    }
    b.offer("b", CallId(1)).unwrap();
    b.offer("c", CallId(2)).unwrap();
    b.accepted("c").unwrap();
    b.call_ended("c", t0, Duration::from_secs(30)).unwrap();
    let tried: HashSet<String> = ["a".to_string()].into();
    assert_eq!(eligible(&b, &[], &tried).collect::<Vec<_>>(), ["d"]);
}
