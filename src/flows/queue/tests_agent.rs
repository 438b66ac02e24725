//! Agent-side behaviour of the queue engine: misses, accept key, extension
//! digits, agent hang-ups, wrap-up and windows.

use std::time::Duration;

use super::tests::{agent, attempts, calls, dialled, dials, p, queue, H};
use super::*;
use crate::config::{Accept, Strategy};

fn two_agents() -> H {
    H::new(
        vec![queue("Q")],
        vec![agent("alice", &[], ""), agent("bob", &[], "")],
    )
}

#[test]
fn busy_is_not_a_miss_and_tries_the_next_agent() {
    let mut h = two_agents();
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    let a = h.fail(1, first, 486);
    let r = attempts(&a)[0];
    assert_eq!((r.sip_outcome, r.sip_status), (SipOutcome::Busy, Some(486)));
    assert_eq!(r.end, AttemptEnd::Busy);
    dialled(&a, 1, "bob");
    assert_eq!(h.e.board().misses("alice"), Some(0));
}

#[test]
fn no_answer_and_decline_are_misses_and_try_the_next_agent() {
    let mut h = two_agents();
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    let a = h.fail(1, first, 480);
    assert_eq!(attempts(&a)[0].sip_outcome, SipOutcome::NoAnswer);
    let second = dialled(&a, 1, "bob");
    let a = h.fail(1, second, 603);
    assert_eq!(attempts(&a)[0].sip_outcome, SipOutcome::Rejected);
    assert_eq!(attempts(&a)[0].end, AttemptEnd::Declined);
    assert_eq!(h.e.board().misses("alice"), Some(1));
    assert_eq!(h.e.board().misses("bob"), Some(1));
    assert!(dials(&a).is_empty(), "both tried");
}

#[test]
fn trunk_failure_is_not_a_miss() {
    let mut h = two_agents();
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    let a = h.fail(1, first, 503);
    assert_eq!(attempts(&a)[0].sip_outcome, SipOutcome::Failed);
    dialled(&a, 1, "bob");
    assert_eq!(h.e.board().misses("alice"), Some(0));
}

#[test]
fn max_no_answer_sets_the_agent_offline() {
    let mut q = queue("Q");
    q.max_no_answer = 2;
    let mut h = H::new(vec![q], vec![agent("alice", &[], "")]);
    // Busy lines in between do not count and do not reset.
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    let a = h.fail(1, t, 408);
    assert!(!a
        .iter()
        .any(|x| matches!(x, Action::SetAgentOffline { .. })));
    let t = dialled(&h.arrive(2, "Q"), 2, "alice");
    h.fail(2, t, 486);
    let t = dialled(&h.arrive(3, "Q"), 3, "alice");
    let a = h.at(20);
    assert!(a.contains(&Action::CancelAgent {
        call: CallId(3),
        attempt: t
    }));
    assert!(a.contains(&Action::SetAgentOffline {
        user: "alice".into(),
        reason: OfflineReason::MaxNoAnswer { misses: 2 }
    }));
    assert_eq!(h.e.board().state("alice"), Some(AgentState::Offline));
    assert!(dials(&h.arrive(4, "Q")).is_empty());
}

#[test]
fn the_not_responding_reason_counts_the_misses() {
    assert_eq!(
        OfflineReason::MaxNoAnswer { misses: 3 }.describe(),
        "missed 3 offers in a row (max_no_answer)"
    );
    assert_eq!(
        OfflineReason::MaxNoAnswer { misses: 1 }.describe(),
        "missed 1 offer in a row (max_no_answer)"
    );
}

#[test]
fn a_taken_call_resets_the_miss_count() {
    let mut q = queue("Q");
    q.max_no_answer = 2;
    q.wrap_up = Duration::ZERO;
    let mut h = H::new(vec![q], vec![agent("alice", &[], "")]);
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.fail(1, t, 480);
    let t = dialled(&h.arrive(2, "Q"), 2, "alice");
    h.take(2, t);
    h.ev(Event::CustomerHungUp { call: CallId(2) });
    let t = dialled(&h.arrive(3, "Q"), 3, "alice");
    let a = h.fail(3, t, 480);
    assert!(!a
        .iter()
        .any(|x| matches!(x, Action::SetAgentOffline { .. })));
}

#[test]
fn accept_key_bridges_other_keys_do_not() {
    let mut h = two_agents();
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    let a = h.answer(1, t);
    assert_eq!(
        a,
        [Action::PlayAgent {
            call: CallId(1),
            attempt: t,
            clips: vec![p("agent_whisper")]
        }]
    );
    assert_eq!(
        h.e.deadline(),
        None,
        "no accept timer while the whisper plays"
    );
    h.whispered(1, t);
    assert_eq!(h.e.deadline(), Some(h.now + Duration::from_secs(10)));
    assert!(h.digit(1, t, '2').is_empty());
    assert!(h.digit(1, t, '#').is_empty());
    let a = h.digit(1, t, '1');
    assert_eq!(
        a,
        [Action::Bridge {
            call: CallId(1),
            attempt: t
        }]
    );
    assert_eq!(
        h.e.board().state("alice"),
        Some(AgentState::Busy(CallId(1)))
    );
    assert_eq!(h.e.board().calls_taken("alice"), Some(1));
    assert!(h.digit(1, t, '1').is_empty(), "already bridged");
}

#[test]
fn accept_key_during_the_whisper_bridges() {
    let mut h = two_agents();
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.answer(1, t);
    assert_eq!(
        h.digit(1, t, '1'),
        [Action::Bridge {
            call: CallId(1),
            attempt: t
        }]
    );
}

#[test]
fn letter_accept_key_matches_either_case() {
    let mut q = queue("Q");
    q.accept = Accept::Digit('A');
    let mut h = H::new(vec![q], vec![agent("alice", &[], "")]);
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.answer(1, t);
    assert_eq!(h.digit(1, t, 'a').len(), 1);
}

#[test]
fn no_accept_reprompts_once_then_hangs_up_and_tries_next() {
    let mut h = two_agents();
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.answer(1, t);
    h.whispered(1, t);
    // First silence: the whisper plays again.
    let a = h.at(10);
    assert_eq!(
        a,
        [Action::PlayAgent {
            call: CallId(1),
            attempt: t,
            clips: vec![p("agent_whisper")]
        }]
    );
    h.whispered(1, t);
    // Second silence: the offer is missed.
    let a = h.at(20);
    assert_eq!(
        a[0],
        Action::HangUpAgent {
            call: CallId(1),
            attempt: t
        }
    );
    let r = attempts(&a)[0];
    assert_eq!(
        (r.sip_outcome, r.end),
        (SipOutcome::Rejected, AttemptEnd::NotAccepted)
    );
    assert_eq!(r.ring, Duration::ZERO);
    dialled(&a, 1, "bob");
    assert_eq!(h.e.board().misses("alice"), Some(1));
}

#[test]
fn no_whisper_prompt_waits_one_accept_timeout() {
    let mut q = queue("Q");
    q.prompts.whisper = None;
    let mut h = H::new(vec![q], vec![agent("alice", &[], "")]);
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    assert!(h.answer(1, t).is_empty());
    let a = h.at(10);
    assert_eq!(
        a[0],
        Action::HangUpAgent {
            call: CallId(1),
            attempt: t
        }
    );
}

#[test]
fn accept_on_answer_bridges_at_once() {
    let mut q = queue("Q");
    q.accept = Accept::OnAnswer;
    let mut h = H::new(vec![q], vec![agent("alice", &[], "")]);
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    assert_eq!(
        h.answer(1, t),
        [Action::Bridge {
            call: CallId(1),
            attempt: t
        }]
    );
    assert_eq!(
        h.e.board().state("alice"),
        Some(AgentState::Busy(CallId(1)))
    );
}

#[test]
fn extension_digits_are_sent_before_the_whisper() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "4711")]);
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    let a = h.answer(1, t);
    assert_eq!(
        a,
        [Action::SendExt {
            call: CallId(1),
            attempt: t,
            digits: "4711".into(),
            pause: Duration::from_secs(2)
        }]
    );
    // Keys heard while our own digits go out are not the accept key.
    assert!(h.digit(1, t, '1').is_empty());
    let a = h.leg(1, t, LegEvent::ExtSent);
    assert_eq!(
        a,
        [Action::PlayAgent {
            call: CallId(1),
            attempt: t,
            clips: vec![p("agent_whisper")]
        }]
    );
}

#[test]
fn extension_never_reported_sent_gives_up_without_a_miss() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "4711")]);
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.answer(1, t);
    // ext_pause 2 s + guard 10 s.
    let a = h.at(12);
    assert_eq!(attempts(&a)[0].end, AttemptEnd::ExtNotSent);
    assert_eq!(h.e.board().misses("alice"), Some(0));
}

#[test]
fn answer_without_media_hangs_up_and_tries_next() {
    let mut h = two_agents();
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.leg(1, t, LegEvent::Answered { media: true });
    let a = h.at(5);
    assert_eq!(
        a[0],
        Action::HangUpAgent {
            call: CallId(1),
            attempt: t
        }
    );
    assert_eq!(attempts(&a)[0].end, AttemptEnd::NoMedia);
    dialled(&a, 1, "bob");
    assert_eq!(h.e.board().misses("alice"), Some(1));
}

#[test]
fn agent_hangs_up_during_whisper_counts_and_tries_next() {
    let mut h = two_agents();
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.answer(1, t);
    let a = h.leg(1, t, LegEvent::Ended);
    let r = attempts(&a)[0];
    assert_eq!(
        (r.end, r.hung_up_by),
        (AttemptEnd::AgentHungUp, Some(HungUpBy::Agent))
    );
    dialled(&a, 1, "bob");
    assert_eq!(h.e.board().misses("alice"), Some(1));
}

#[test]
fn agent_hangs_up_after_bridge_then_wraps_up_and_takes_the_next_caller() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "")]);
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.take(1, t);
    h.at(5);
    h.arrive(2, "Q");
    h.at(50);
    let a = h.leg(1, t, LegEvent::Ended);
    assert_eq!(a[0], Action::HangUpCustomer { call: CallId(1) });
    assert_eq!(attempts(&a)[0].hung_up_by, Some(HungUpBy::Agent));
    let c = calls(&a)[0];
    assert_eq!(
        (c.outcome, c.hung_up_by),
        (CallOutcome::Bridged, HungUpBy::Agent)
    );
    assert!(dials(&a).is_empty(), "wrap-up first");
    assert!(h.at(59).is_empty());
    dialled(&h.at(60), 2, "alice");
    // The customer's BYE arriving after ours changes nothing.
    assert!(h.ev(Event::CustomerHungUp { call: CallId(1) }).is_empty());
}

#[test]
fn window_ending_mid_call_ends_with_the_call() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "")]);
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.take(1, t);
    h.arrive(2, "Q");
    assert!(h
        .ev(Event::WindowEnded {
            user: "alice".into()
        })
        .is_empty());
    assert_eq!(
        h.e.board().state("alice"),
        Some(AgentState::Busy(CallId(1)))
    );
    h.at(30);
    h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert_eq!(h.e.board().state("alice"), Some(AgentState::Offline));
    let a = h.at(60);
    assert!(dials(&a).is_empty(), "alice stays offline after wrap-up");
    assert_eq!(h.e.waiting(h.e.queue_id("Q").unwrap()), [CallId(2)]);
}

#[test]
fn longest_idle_agent_gets_the_next_call() {
    let mut q = queue("Q");
    q.wrap_up = Duration::ZERO;
    let mut h = H::new(
        vec![q],
        vec![agent("alice", &[], ""), agent("bob", &[], "")],
    );
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.take(1, t);
    h.at(10);
    h.ev(Event::CustomerHungUp { call: CallId(1) });
    // Bob has been idle since t0, alice only since 10 s.
    dialled(&h.arrive(2, "Q"), 2, "bob");
}

#[test]
fn round_robin_queue_rotates_through_agents() {
    let mut q = queue("Q");
    q.strategy = Strategy::RoundRobin;
    let mut h = H::new(
        vec![q],
        vec![
            agent("a", &[], ""),
            agent("b", &[], ""),
            agent("c", &[], ""),
        ],
    );
    let mut order = Vec::new();
    for call in 1..=4 {
        let d = dials(&h.arrive(call, "Q"));
        order.push(d[0].2.clone());
        h.ev(Event::CustomerHungUp { call: CallId(call) });
    }
    assert_eq!(order, ["a", "b", "c", "a"]);
}

#[test]
fn fewest_calls_queue_prefers_the_least_used_agent() {
    let mut q = queue("Q");
    q.strategy = Strategy::FewestCalls;
    q.wrap_up = Duration::ZERO;
    let mut h = H::new(
        vec![q],
        vec![agent("alice", &[], ""), agent("bob", &[], "")],
    );
    h.ev(Event::AgentOffline { user: "bob".into() });
    let serve = |h: &mut H, call: u64, start: u64, who: &str| {
        h.at(start);
        let t = dialled(&h.arrive(call, "Q"), call, who);
        h.take(call, t);
        h.at(start + 10);
        h.ev(Event::CustomerHungUp { call: CallId(call) });
    };
    serve(&mut h, 1, 0, "alice");
    serve(&mut h, 2, 10, "alice");
    h.at(25);
    h.ev(Event::AgentOnline {
        user: "bob".into(),
        until: chrono::Utc::now() + chrono::Duration::hours(1),
    });
    // Alice: 2 calls, idle since 20. Bob: 0 calls, online since 25.
    serve(&mut h, 3, 30, "bob");
    // Alice: 2 calls, idle since 20; bob: 1 call, idle since 40. Fewest
    // calls picks bob where longest-idle would pick alice.
    serve(&mut h, 4, 50, "bob");
    // Both have 2 calls now: the tie goes to the longer idle, alice.
    serve(&mut h, 5, 70, "alice");
}

#[test]
fn agent_state_changes_are_published_once_each() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "")]);
    let changes = |h: &mut H| std::iter::from_fn(|| h.e.poll_agent_change()).collect::<Vec<_>>();
    assert_eq!(
        changes(&mut h),
        [("alice".to_string(), AgentState::Available)]
    );
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    assert_eq!(
        changes(&mut h),
        [("alice".to_string(), AgentState::Offered(CallId(1)))]
    );
    h.take(1, t);
    assert_eq!(
        changes(&mut h),
        [("alice".to_string(), AgentState::Busy(CallId(1)))]
    );
    h.at(30);
    h.ev(Event::CustomerHungUp { call: CallId(1) });
    let until = h.now + Duration::from_secs(10);
    assert_eq!(
        changes(&mut h),
        [("alice".to_string(), AgentState::WrapUp { until })]
    );
    assert!(changes(&mut h).is_empty());
    h.at(40);
    assert_eq!(
        changes(&mut h),
        [("alice".to_string(), AgentState::Available)]
    );
}

/// Issue 9, bug 1: with `accept_digit = ""` a dead answer was bridged,
/// ended the customer's call as "bridged, completed", and the next agent
/// was never tried.
#[test]
fn dead_answer_with_bridge_on_answer_moves_on_to_the_next_agent() {
    let mut q = queue("Q");
    q.accept = Accept::OnAnswer;
    let mut h = H::new(
        vec![q],
        vec![agent("alice", &[], ""), agent("bob", &[], "")],
    );
    let t = dialled(&h.arrive(1, "Q"), 1, "alice");
    let a = h.leg(1, t, LegEvent::Answered { media: true });
    assert!(
        !a.iter().any(|x| matches!(x, Action::Bridge { .. })),
        "no bridge before the agent's media runs: {a:?}"
    );
    let a = h.at(5);
    assert_eq!(
        a[0],
        Action::HangUpAgent {
            call: CallId(1),
            attempt: t
        }
    );
    assert_eq!(attempts(&a)[0].end, AttemptEnd::NoMedia);
    assert!(calls(&a).is_empty(), "the customer's call goes on");
    assert!(h.e.has_call(CallId(1)));
    let second = dialled(&a, 1, "bob");
    let a = h.answer(1, second);
    assert_eq!(
        a,
        [Action::Bridge {
            call: CallId(1),
            attempt: second
        }]
    );
}
