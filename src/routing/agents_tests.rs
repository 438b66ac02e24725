use super::*;
use chrono::TimeZone;

fn profile(id: &str, skills: &[&str]) -> AgentProfile {
    AgentProfile {
        id: id.to_string(),
        skills: skills.iter().map(|s| s.to_string()).collect(),
        ext: String::new(),
        nailed_up: false,
    }
}

fn until() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

fn board_with(ids: &[&str], t0: Instant) -> AgentBoard {
    let mut b = AgentBoard::new(ids.iter().map(|id| profile(id, &[])));
    for id in ids {
        b.set_online(id, until(), t0).unwrap();
    }
    b
}

#[test]
fn offline_until_set_online_then_available() {
    let t0 = Instant::now();
    let mut b = AgentBoard::new([profile("alice", &[])]);
    assert_eq!(b.state("alice"), Some(AgentState::Offline));
    assert!(b.offer("alice", CallId(1)).is_err());
    b.set_online("alice", until(), t0).unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Available));
    assert_eq!(b.window_end("alice"), Some(until()));
    assert_eq!(b.state("bob"), None);
    assert_eq!(
        b.set_online("bob", until(), t0),
        Err(BoardError::UnknownUser("bob".into()))
    );
}

#[test]
fn one_offer_at_a_time() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    b.offer("alice", CallId(1)).unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Offered(CallId(1))));
    assert!(matches!(
        b.offer("alice", CallId(2)),
        Err(OfferError::NotAvailable { .. })
    ));
}

#[test]
fn accept_call_end_wrap_up_then_available() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    b.offer("alice", CallId(1)).unwrap();
    b.accepted("alice").unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Busy(CallId(1))));
    assert_eq!(b.calls_taken("alice"), Some(1));
    let end = t0 + Duration::from_secs(60);
    b.call_ended("alice", end, Duration::from_secs(10)).unwrap();
    let until = end + Duration::from_secs(10);
    assert_eq!(b.state("alice"), Some(AgentState::WrapUp { until }));
    assert_eq!(b.deadline(), Some(until));
    assert!(b.poll(until - Duration::from_millis(1)).is_empty());
    assert_eq!(b.poll(until), vec!["alice".to_string()]);
    assert_eq!(b.state("alice"), Some(AgentState::Available));
    assert_eq!(b.deadline(), None);
    assert_eq!(b.idle_since("alice"), Some(end));
}

#[test]
fn zero_wrap_up_is_available_at_once() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    b.offer("alice", CallId(1)).unwrap();
    b.accepted("alice").unwrap();
    b.call_ended("alice", t0, Duration::ZERO).unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Available));
}

#[test]
fn busy_is_not_a_miss_but_no_answer_and_rejected_are() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    for _ in 0..5 {
        b.offer("alice", CallId(1)).unwrap();
        assert_eq!(
            b.missed("alice", MissKind::Busy, 3),
            Ok(MissVerdict::KeepOnline)
        );
    }
    assert_eq!(b.misses("alice"), Some(0));
    b.offer("alice", CallId(1)).unwrap();
    assert_eq!(
        b.missed("alice", MissKind::NoAnswer, 3),
        Ok(MissVerdict::KeepOnline)
    );
    b.offer("alice", CallId(2)).unwrap();
    assert_eq!(
        b.missed("alice", MissKind::Rejected, 3),
        Ok(MissVerdict::KeepOnline)
    );
    assert_eq!(b.misses("alice"), Some(2));
    b.offer("alice", CallId(3)).unwrap();
    assert_eq!(
        b.missed("alice", MissKind::NotAccepted, 3),
        Ok(MissVerdict::NotResponding { misses: 3 })
    );
    assert_eq!(b.state("alice"), Some(AgentState::Offline));
}

#[test]
fn a_taken_call_resets_the_miss_count() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    for call in 0..2 {
        b.offer("alice", CallId(call)).unwrap();
        b.missed("alice", MissKind::NoAnswer, 3).unwrap();
    }
    b.offer("alice", CallId(9)).unwrap();
    b.accepted("alice").unwrap();
    assert_eq!(b.misses("alice"), Some(0));
    b.call_ended("alice", t0, Duration::ZERO).unwrap();
    for call in 10..12 {
        b.offer("alice", CallId(call)).unwrap();
        assert_eq!(
            b.missed("alice", MissKind::NoAnswer, 3),
            Ok(MissVerdict::KeepOnline)
        );
    }
}

#[test]
fn max_no_answer_zero_never_forces_offline() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    for call in 0..10 {
        b.offer("alice", CallId(call)).unwrap();
        assert_eq!(
            b.missed("alice", MissKind::NoAnswer, 0),
            Ok(MissVerdict::KeepOnline)
        );
    }
}

#[test]
fn window_ending_mid_call_waits_for_the_call() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice", "bob"], t0);
    b.offer("alice", CallId(1)).unwrap();
    b.accepted("alice").unwrap();
    b.window_ended("alice").unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Busy(CallId(1))));
    assert!(b.any_online_with(&[]), "bob is still online");
    b.window_ended("bob").unwrap();
    assert!(!b.any_online_with(&[]), "alice is leaving: not counted");
    b.set_online("bob", until(), t0).unwrap();
    b.call_ended("alice", t0, Duration::from_secs(10)).unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Offline));
    // Wrap-up of an offline agent frees nobody.
    assert!(b.poll(t0 + Duration::from_secs(10)).is_empty());
    assert_eq!(b.state("alice"), Some(AgentState::Offline));

    // Idle agent: offline at once.
    b.window_ended("bob").unwrap();
    assert_eq!(b.state("bob"), Some(AgentState::Offline));
}

#[test]
fn window_ending_during_offer_goes_offline_after_a_miss() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    b.offer("alice", CallId(1)).unwrap();
    b.window_ended("alice").unwrap();
    assert!(!b.any_online_with(&[]));
    b.missed("alice", MissKind::Busy, 3).unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Offline));
}

#[test]
fn new_window_before_the_call_ends_keeps_the_agent_online() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    b.offer("alice", CallId(1)).unwrap();
    b.accepted("alice").unwrap();
    b.window_ended("alice").unwrap();
    b.set_online("alice", until(), t0).unwrap();
    b.call_ended("alice", t0, Duration::ZERO).unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Available));
}

#[test]
fn withdrawn_offer_counts_nothing() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    b.offer("alice", CallId(1)).unwrap();
    b.withdraw("alice").unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Available));
    assert_eq!(b.misses("alice"), Some(0));
    assert_eq!(b.calls_taken("alice"), Some(0));
}

#[test]
fn set_offline_during_a_call_lets_it_finish() {
    let t0 = Instant::now();
    let mut b = board_with(&["alice"], t0);
    b.offer("alice", CallId(1)).unwrap();
    b.accepted("alice").unwrap();
    b.set_offline("alice").unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Busy(CallId(1))));
    b.call_ended("alice", t0, Duration::ZERO).unwrap();
    assert_eq!(b.state("alice"), Some(AgentState::Offline));
}

#[test]
fn profile_from_user_takes_first_extension_ext() {
    use crate::config::{CountryCode, E164};
    let cc = CountryCode::nanp();
    let user = User {
        id: "alice".into(),
        name: "Alice".into(),
        skills: vec!["billing".into()],
        pin: None,
        time_zone: None,
        connection: Default::default(),
        extensions: vec![Extension::Pstn {
            value: E164::parse("+15550100123", &cc).unwrap(),
            ext: "42".into(),
            description: String::new(),
        }],
    };
    let p = AgentProfile::from_user(&user);
    assert_eq!(p.ext, "42");
    assert!(p.has_all(&["billing".into()]));
    assert!(p.has_all(&[]));
    assert!(!p.has_all(&["billing".into(), "sales".into()]));
}
