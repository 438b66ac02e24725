//! Offers under claims (several nodes on one store): an agent is rung only
//! once this node's claim on them is granted; a refused claim sends the
//! customer to someone else and holds the agent until the other node lets
//! them go.

use std::time::Duration;

use super::tests::{agent, attempts, calls, dialled, dials, queue, H};
use super::*;

fn claiming(agents: &[&str]) -> H {
    let settings = EngineSettings {
        claims: true,
        ..EngineSettings::default()
    };
    H::with(
        vec![queue("Q")],
        agents.iter().map(|a| agent(a, &[], "")).collect(),
        settings,
        true,
    )
}

/// The single ClaimAgent in `actions`, for `user`.
fn claimed(actions: &[Action], call: u64, user: &str) -> AttemptId {
    let c: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::ClaimAgent {
                call,
                attempt,
                user,
            } => Some((call.0, *attempt, user.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(c.len(), 1, "expected one claim in {actions:?}");
    assert_eq!((c[0].0, c[0].2.as_str()), (call, user), "{actions:?}");
    c[0].1
}

#[test]
fn an_agent_is_rung_only_once_the_claim_is_granted() {
    let mut h = claiming(&["alice"]);
    let a = h.arrive(1, "Q");
    let attempt = claimed(&a, 1, "alice");
    assert!(dials(&a).is_empty(), "no ring before the claim: {a:?}");
    assert_eq!(
        h.e.board().state("alice"),
        Some(AgentState::Offered(CallId(1)))
    );
    // The ring timer starts with the ring, not with the claim.
    h.now += Duration::from_millis(700);
    let a = h.ev(Event::ClaimGranted {
        attempt,
        misses: None,
    });
    assert_eq!(dialled(&a, 1, "alice"), attempt);
    let ring = queue("Q").ring_timeout;
    assert_eq!(h.e.deadline(), Some(h.now + ring));
}

#[test]
fn a_refused_claim_offers_the_next_agent_and_holds_the_first_elsewhere() {
    let mut h = claiming(&["alice", "bob"]);
    let first = claimed(&h.arrive(1, "Q"), 1, "alice");
    let until = h.now + Duration::from_secs(5);
    let a = h.ev(Event::ClaimRefused {
        attempt: first,
        until,
    });
    // Not a try: nothing recorded, nothing counted.
    assert!(attempts(&a).is_empty(), "{a:?}");
    assert_eq!(h.e.board().misses("alice"), Some(0));
    claimed(&a, 1, "bob");
    assert_eq!(
        h.e.board().state("alice"),
        Some(AgentState::Elsewhere { until })
    );
    // Bob's line is busy: the customer waits; alice is not claimed again
    // while held elsewhere...
    let second = claimed(&a, 1, "bob");
    let a = h.ev(Event::ClaimGranted {
        attempt: second,
        misses: None,
    });
    let dial = dialled(&a, 1, "bob");
    let a = h.fail(1, dial, 486);
    assert!(
        !a.iter().any(|x| matches!(x, Action::ClaimAgent { .. })),
        "{a:?}"
    );
    // ...until the hold runs out: then she is claimed again for the same
    // customer (the refusal was not a try).
    let a = h.at(5);
    claimed(&a, 1, "alice");
}

#[test]
fn an_agent_freed_elsewhere_is_claimed_at_once() {
    let mut h = claiming(&["alice"]);
    let first = claimed(&h.arrive(1, "Q"), 1, "alice");
    h.ev(Event::ClaimRefused {
        attempt: first,
        until: h.now + Duration::from_secs(30),
    });
    h.now += Duration::from_secs(2);
    let a = h.ev(Event::AgentFreedElsewhere {
        user: "alice".into(),
    });
    claimed(&a, 1, "alice");
}

#[test]
fn a_customer_who_leaves_during_the_claim_leaves_no_attempt_and_frees_the_agent() {
    let mut h = claiming(&["alice"]);
    let attempt = claimed(&h.arrive(1, "Q"), 1, "alice");
    let a = h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert!(attempts(&a).is_empty(), "never rung: {a:?}");
    assert_eq!(calls(&a)[0].outcome, CallOutcome::Abandoned);
    assert_eq!(h.e.board().state("alice"), Some(AgentState::Available));
    // The grant arriving late rings nobody.
    let a = h.ev(Event::ClaimGranted {
        attempt,
        misses: None,
    });
    assert!(dials(&a).is_empty(), "{a:?}");
}

#[test]
fn the_shared_miss_count_from_the_claim_is_the_one_that_counts() {
    let mut q = queue("Q");
    q.max_no_answer = 3;
    let settings = EngineSettings {
        claims: true,
        ..EngineSettings::default()
    };
    let mut h = H::with(vec![q], vec![agent("alice", &[], "")], settings, true);
    let attempt = claimed(&h.arrive(1, "Q"), 1, "alice");
    // Another node counted two misses already.
    let a = h.ev(Event::ClaimGranted {
        attempt,
        misses: Some(2),
    });
    let dial = dialled(&a, 1, "alice");
    let a = h.fail(1, dial, 480);
    assert!(
        a.iter().any(|x| matches!(
            x,
            Action::SetAgentOffline {
                reason: OfflineReason::MaxNoAnswer { misses: 3 },
                ..
            }
        )),
        "the third miss overall sets her offline: {a:?}"
    );
}
