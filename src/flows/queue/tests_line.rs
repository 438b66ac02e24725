//! Nailed-up lines (issue 14): an agent's log-in call kept connected,
//! offered customers on it instead of a call per customer.

use chrono::{TimeZone, Utc};

use super::tests::{agent, p, queue, H};
use super::*;
use crate::config::Accept;

fn nailed(id: &str) -> AgentProfile {
    AgentProfile {
        nailed_up: true,
        ..agent(id, &[], "")
    }
}

fn line_up(h: &mut H, user: &str) -> Vec<Action> {
    h.ev(Event::LineUp {
        user: user.to_string(),
        until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        tone: p("line_tone"),
    })
}

fn offered_on_line(actions: &[Action]) -> Option<AttemptId> {
    actions.iter().find_map(|a| match a {
        Action::OfferOnLine { attempt, .. } => Some(*attempt),
        _ => None,
    })
}

fn has(actions: &[Action], pred: impl Fn(&Action) -> bool) -> bool {
    actions.iter().any(pred)
}

/// Nailed-up ann with her line up, customer 1 offered on it and accepted.
fn ann_bridged_to_customer_1() -> H {
    let mut h = H::new(vec![queue("billing")], vec![nailed("ann")]);
    line_up(&mut h, "ann");
    let out = h.arrive(1, "billing");
    let a1 = offered_on_line(&out).expect("offered");
    h.leg(1, a1, LegEvent::PlaybackFinished);
    let out = h.leg(1, a1, LegEvent::Digit('1'));
    assert!(has(&out, |a| matches!(a, Action::Bridge { .. })), "{out:?}");
    h
}

#[test]
fn an_online_nailed_up_agent_without_a_line_is_not_offered() {
    let mut h = H::new(vec![queue("billing")], vec![nailed("ann")]);
    assert_eq!(h.e.board().state("ann"), Some(AgentState::NoLine));
    let out = h.arrive(1, "billing");
    assert!(
        !has(&out, |a| matches!(
            a,
            Action::DialAgent { .. } | Action::OfferOnLine { .. }
        )),
        "{out:?}"
    );
    // The line arrives: the waiting customer is offered on it at once,
    // announced by the tone before the whisper, and no INVITE goes out.
    let out = line_up(&mut h, "ann");
    assert!(has(
        &out,
        |a| matches!(a, Action::LineIdle { user } if user == "ann")
    ));
    assert!(
        offered_on_line(&out).is_some(),
        "offered on the line: {out:?}"
    );
    assert!(
        has(&out, |a| matches!(a, Action::PlayAgent { clips, .. }
            if *clips == vec![p("line_tone"), p("agent_whisper")])),
        "{out:?}"
    );
    assert!(!has(&out, |a| matches!(a, Action::DialAgent { .. })));
    assert_eq!(
        h.e.board().state("ann"),
        Some(AgentState::Offered(CallId(1)))
    );
}

#[test]
fn two_customers_in_a_row_on_one_line() {
    let mut h = H::new(vec![queue("billing")], vec![nailed("ann")]);
    line_up(&mut h, "ann");
    for (call, t) in [(1u64, 0u64), (2, 120)] {
        h.at(t);
        let out = h.arrive(call, "billing");
        let attempt = offered_on_line(&out).expect("offered");
        h.leg(call, attempt, LegEvent::PlaybackFinished);
        let out = h.leg(call, attempt, LegEvent::Digit('1'));
        assert!(
            has(
                &out,
                |a| matches!(a, Action::Bridge { call: c, .. } if c.0 == call)
            ),
            "{out:?}"
        );
        assert_eq!(
            h.e.board().state("ann"),
            Some(AgentState::Busy(CallId(call)))
        );
        // The customer hangs up: the line goes back to waiting, never hung up.
        h.at(t + 60);
        let out = h.ev(Event::CustomerHungUp { call: CallId(call) });
        assert!(
            has(
                &out,
                |a| matches!(a, Action::LineIdle { user } if user == "ann")
            ),
            "{out:?}"
        );
        assert!(!has(&out, |a| matches!(
            a,
            Action::HangUpAgent { .. } | Action::HangUpLine { .. }
        )));
        assert!(has(&out, |a| matches!(a, Action::RecordAttempt(r)
            if r.end == AttemptEnd::Completed && r.user == "ann")));
    }
    assert_eq!(h.e.board().calls_taken("ann"), Some(2));
}

#[test]
fn an_unaccepted_offer_counts_a_miss_and_the_line_stays() {
    let mut q = queue("billing");
    q.max_no_answer = 2;
    let mut h = H::new(vec![q], vec![nailed("ann")]);
    line_up(&mut h, "ann");
    let out = h.arrive(1, "billing");
    let a1 = offered_on_line(&out).expect("offered");
    h.leg(1, a1, LegEvent::PlaybackFinished);
    // 10 s of silence: replayed (tone and whisper again), then 10 s more.
    let out = h.at(10);
    assert!(has(&out, |a| matches!(a, Action::PlayAgent { clips, .. }
        if *clips == vec![p("line_tone"), p("agent_whisper")])));
    h.leg(1, a1, LegEvent::PlaybackFinished);
    let out = h.at(21);
    assert!(
        has(&out, |a| matches!(a, Action::LineIdle { .. })),
        "{out:?}"
    );
    assert!(has(
        &out,
        |a| matches!(a, Action::RecordAttempt(r) if r.end == AttemptEnd::NotAccepted)
    ));
    assert!(!has(&out, |a| matches!(a, Action::HangUpLine { .. })));
    assert_eq!(h.e.board().misses("ann"), Some(1));
    // A second customer, missed too: not responding, and the line is hung
    // up saying so.
    let out = h.arrive(2, "billing");
    let a2 = offered_on_line(&out).expect("offered the second customer");
    h.leg(2, a2, LegEvent::PlaybackFinished);
    h.at(31);
    h.leg(2, a2, LegEvent::PlaybackFinished);
    let out = h.at(42);
    assert!(
        has(&out, |a| matches!(a, Action::SetAgentOffline { .. })),
        "{out:?}"
    );
    assert!(
        has(
            &out,
            |a| matches!(a, Action::HangUpLine { user, why: LineEnd::NotResponding } if user == "ann")
        ),
        "{out:?}"
    );
}

#[test]
fn hanging_up_the_line_during_an_offer_is_no_miss_and_the_customer_waits_on() {
    let mut h = H::new(vec![queue("billing")], vec![nailed("ann")]);
    line_up(&mut h, "ann");
    let out = h.arrive(1, "billing");
    assert!(offered_on_line(&out).is_some(), "{out:?}");
    let out = h.ev(Event::LineDown { user: "ann".into() });
    assert!(has(
        &out,
        |a| matches!(a, Action::RecordAttempt(r) if r.end == AttemptEnd::AgentHungUp)
    ));
    assert!(!has(&out, |a| matches!(
        a,
        Action::LineIdle { .. } | Action::HangUpLine { .. }
    )));
    assert_eq!(h.e.board().misses("ann"), Some(0));
    assert_eq!(h.e.board().state("ann"), Some(AgentState::NoLine));
    assert_eq!(
        h.e.waiting(h.e.queue_id("billing").unwrap()),
        vec![CallId(1)]
    );
}

#[test]
fn hanging_up_the_line_while_bridged_hangs_up_the_customer() {
    let mut h = ann_bridged_to_customer_1();
    let out = h.ev(Event::LineDown { user: "ann".into() });
    assert!(
        has(
            &out,
            |a| matches!(a, Action::HangUpCustomer { call } if call.0 == 1)
        ),
        "{out:?}"
    );
    assert!(has(&out, |a| matches!(a, Action::RecordCall(r)
        if r.outcome == CallOutcome::Bridged && r.hung_up_by == HungUpBy::Agent)));
}

#[test]
fn a_window_that_ends_on_a_call_hangs_the_line_up_after_it() {
    let mut h = ann_bridged_to_customer_1();
    let out = h.ev(Event::WindowEnded { user: "ann".into() });
    assert!(
        !has(&out, |a| matches!(a, Action::HangUpLine { .. })),
        "{out:?}"
    );
    let out = h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert!(
        has(
            &out,
            |a| matches!(a, Action::HangUpLine { user, why: LineEnd::Offline } if user == "ann")
        ),
        "{out:?}"
    );
    assert_eq!(h.e.board().state("ann"), Some(AgentState::Offline));
}

#[test]
fn an_on_answer_queue_bridges_the_line_after_the_tone() {
    let mut q = queue("billing");
    q.accept = Accept::OnAnswer;
    q.prompts.whisper = None;
    let mut h = H::new(vec![q], vec![nailed("ann")]);
    line_up(&mut h, "ann");
    let out = h.arrive(1, "billing");
    let a1 = offered_on_line(&out).expect("offered");
    assert!(has(
        &out,
        |a| matches!(a, Action::PlayAgent { clips, .. } if *clips == vec![p("line_tone")])
    ));
    assert!(!has(&out, |a| matches!(a, Action::Bridge { .. })));
    let out = h.leg(1, a1, LegEvent::PlaybackFinished);
    assert!(has(&out, |a| matches!(a, Action::Bridge { .. })), "{out:?}");
}

#[test]
fn a_per_call_agent_is_still_dialled_beside_a_nailed_one() {
    let mut h = H::new(
        vec![queue("billing")],
        vec![nailed("ann"), agent("bob", &[], "")],
    );
    let out = h.arrive(1, "billing");
    assert!(
        has(
            &out,
            |a| matches!(a, Action::DialAgent { user, .. } if user == "bob")
        ),
        "{out:?}"
    );
}
