//! Customer-side behaviour of the queue engine on a simulated clock, and
//! the harness the agent-side tests share.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};

use super::*;
use crate::config::{Accept, CountryCode, NoAgents, Strategy, E164};
use crate::routing::{AgentBoard, AgentProfile};

pub(super) fn p(name: &str) -> PromptName {
    PromptName::new(name)
}

pub(super) fn queue(name: &str) -> QueueSettings {
    QueueSettings {
        name: name.to_string(),
        skills: Vec::new(),
        strategy: Strategy::LongestIdle,
        ring_timeout: Duration::from_secs(20),
        accept: Accept::Digit('1'),
        accept_timeout: Duration::from_secs(10),
        max_wait: Duration::from_secs(300),
        wrap_up: Duration::from_secs(10),
        max_no_answer: 3,
        priority: 0,
        overflow_number: None,
        no_agents: NoAgents::Wait,
        ext_pause: Duration::from_secs(2),
        prompts: QueuePromptNames {
            greeting: Some(p("queue_greeting")),
            hold: p("hold_music"),
            whisper: Some(p("agent_whisper")),
            unavailable: p("unavailable"),
        },
    }
}

pub(super) fn agent(id: &str, skills: &[&str], ext: &str) -> AgentProfile {
    AgentProfile {
        id: id.to_string(),
        skills: skills.iter().map(|s| s.to_string()).collect(),
        ext: ext.to_string(),
        nailed_up: false,
    }
}

pub(super) struct H {
    pub e: QueueEngine,
    pub t0: Instant,
    pub now: Instant,
}

impl H {
    /// An engine with `queues` and `agents`, every agent online at t0.
    pub fn new(queues: Vec<QueueSettings>, agents: Vec<AgentProfile>) -> H {
        Self::with(queues, agents, EngineSettings::default(), true)
    }

    pub fn with(
        queues: Vec<QueueSettings>,
        agents: Vec<AgentProfile>,
        settings: EngineSettings,
        online: bool,
    ) -> H {
        let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
        let t0 = Instant::now();
        let mut h = H {
            e: QueueEngine::new(queues, AgentBoard::new(agents), settings),
            t0,
            now: t0,
        };
        if online {
            for id in ids {
                h.ev(Event::AgentOnline {
                    user: id,
                    until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
                });
            }
        }
        h
    }

    /// Handles `event` at the current time; returns the actions.
    pub fn ev(&mut self, event: Event) -> Vec<Action> {
        self.e.handle(event, self.now);
        std::iter::from_fn(|| self.e.poll_action()).collect()
    }

    /// Moves the clock to t0 + `secs`, firing every deadline on the way
    /// exactly when it falls due, as the shell would.
    pub fn at(&mut self, secs: u64) -> Vec<Action> {
        let target = self.t0 + Duration::from_secs(secs);
        let mut out = Vec::new();
        while let Some(d) = self.e.deadline().filter(|d| *d <= target) {
            assert!(d >= self.now, "deadline in the past");
            self.now = d;
            out.extend(self.ev(Event::Timer));
        }
        self.now = target;
        out
    }

    pub fn arrive(&mut self, call: u64, queue: &str) -> Vec<Action> {
        let queue = self.e.queue_id(queue).unwrap();
        self.ev(Event::CustomerArrived {
            call: CallId(call),
            queue,
        })
    }

    /// Feeds `event` to the leg of `attempt`.
    pub fn leg(&mut self, call: u64, attempt: AttemptId, event: LegEvent) -> Vec<Action> {
        self.ev(Event::Leg {
            call: CallId(call),
            attempt,
            event,
        })
    }

    /// The agent's 2xx with SDP, and its first RTP packet at the same instant.
    pub fn answer(&mut self, call: u64, attempt: AttemptId) -> Vec<Action> {
        let mut a = self.leg(call, attempt, LegEvent::Answered { media: true });
        a.extend(self.leg(call, attempt, LegEvent::RtpStarted));
        a
    }

    pub fn fail(&mut self, call: u64, attempt: AttemptId, status: u16) -> Vec<Action> {
        let outcome = DialOutcome::from_status(status);
        self.leg(call, attempt, LegEvent::Failed(outcome))
    }

    pub fn digit(&mut self, call: u64, attempt: AttemptId, digit: char) -> Vec<Action> {
        self.leg(call, attempt, LegEvent::Digit(digit))
    }

    pub fn whispered(&mut self, call: u64, attempt: AttemptId) -> Vec<Action> {
        self.leg(call, attempt, LegEvent::PlaybackFinished)
    }

    /// Answer, hear the whisper, press 1: the attempt is bridged.
    pub fn take(&mut self, call: u64, attempt: AttemptId) {
        self.answer(call, attempt);
        self.whispered(call, attempt);
        let a = self.digit(call, attempt, '1');
        assert!(a.contains(&Action::Bridge {
            call: CallId(call),
            attempt
        }));
    }
}

/// The (call, attempt, user) of every DialAgent in `actions`.
pub(super) fn dials(actions: &[Action]) -> Vec<(u64, AttemptId, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::DialAgent {
                call,
                attempt,
                user,
            } => Some((call.0, *attempt, user.clone())),
            _ => None,
        })
        .collect()
}

/// The single DialAgent in `actions`, to `user`.
pub(super) fn dialled(actions: &[Action], call: u64, user: &str) -> AttemptId {
    let d = dials(actions);
    assert_eq!(d.len(), 1, "expected one dial in {actions:?}");
    assert_eq!((d[0].0, d[0].2.as_str()), (call, user), "{actions:?}");
    d[0].1
}

pub(super) fn attempts(actions: &[Action]) -> Vec<&AttemptReport> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordAttempt(r) => Some(r),
            _ => None,
        })
        .collect()
}

pub(super) fn calls(actions: &[Action]) -> Vec<&CallReport> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordCall(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn arrival_answers_greets_holds_and_dials() {
    let mut h = H::new(vec![queue("Billing")], vec![agent("alice", &[], "")]);
    let a = h.arrive(1, "Billing");
    assert_eq!(
        a[0],
        Action::PlayCustomer {
            call: CallId(1),
            once: vec![p("queue_greeting")],
            looped: vec![p("hold_music")],
        }
    );
    let attempt = dialled(&a, 1, "alice");
    assert_eq!(
        h.e.board().state("alice"),
        Some(AgentState::Offered(CallId(1)))
    );
    // Ring timeout is the one deadline.
    assert_eq!(h.e.deadline(), Some(h.t0 + Duration::from_secs(20)));
    h.take(1, attempt);
    assert_eq!(
        h.e.board().state("alice"),
        Some(AgentState::Busy(CallId(1)))
    );
    assert_eq!(h.e.deadline(), None);
}

#[test]
fn no_greeting_goes_straight_to_hold() {
    let mut q = queue("Q");
    q.prompts.greeting = None;
    let mut h = H::new(vec![q], vec![]);
    let a = h.arrive(1, "Q");
    assert!(a.contains(&Action::PlayCustomer {
        call: CallId(1),
        once: vec![],
        looped: vec![p("hold_music")],
    }));
}

#[test]
fn two_customers_one_agent_are_served_fifo() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "")]);
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.at(1);
    // 3 and 2 arrive in the same instant, in that order; a hash map must
    // not reorder them.
    assert!(dials(&h.arrive(3, "Q")).is_empty());
    assert!(dials(&h.arrive(2, "Q")).is_empty());
    h.at(2);
    assert!(dials(&h.arrive(4, "Q")).is_empty());
    let q = h.e.queue_id("Q").unwrap();
    assert_eq!(h.e.waiting(q), [CallId(3), CallId(2), CallId(4)]);
    h.take(1, first);
    h.at(60);
    let a = h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert!(dials(&a).is_empty(), "alice wraps up first");
    // Wrap-up (10 s) ends: the longest-waiting caller gets alice.
    let a = h.at(70);
    let second = dialled(&a, 3, "alice");
    assert_eq!(h.e.waiting(q), [CallId(2), CallId(4)]);
    h.take(3, second);
    h.leg(3, second, LegEvent::Ended);
    dialled(&h.at(80), 2, "alice");
}

#[test]
fn higher_priority_queue_goes_first_then_longest_waiting() {
    let mut low = queue("Low");
    low.priority = 0;
    let mut high = queue("High");
    high.priority = 5;
    let mut h = H::new(
        vec![low, high, queue("Low2")],
        vec![agent("alice", &[], "")],
    );
    let busy = dialled(&h.arrive(1, "Low"), 1, "alice");
    h.take(1, busy);
    h.at(1);
    h.arrive(2, "Low");
    h.at(2);
    h.arrive(3, "Low2");
    h.at(3);
    h.arrive(4, "High");
    h.ev(Event::CustomerHungUp { call: CallId(1) });
    // High priority (arrived last) before the two low ones.
    let high = dialled(&h.at(13), 4, "alice");
    // Alice's line is busy for 4 (not re-tried for it): then the longest
    // waiting among equal priorities, call 2, then call 3.
    let second = dialled(&h.fail(4, high, 486), 2, "alice");
    dialled(&h.fail(2, second, 486), 3, "alice");
}

#[test]
fn equal_priority_queues_serve_longest_waiting_first() {
    let mut h = H::new(vec![queue("A"), queue("B")], vec![agent("alice", &[], "")]);
    let busy = dialled(&h.arrive(1, "A"), 1, "alice");
    h.take(1, busy);
    h.at(1);
    h.arrive(2, "B");
    h.at(2);
    h.arrive(3, "A");
    h.ev(Event::CustomerHungUp { call: CallId(1) });
    dialled(&h.at(12), 2, "alice");
}

#[test]
fn ring_timeout_cancels_and_tries_next_but_never_the_same_agent() {
    let mut h = H::new(
        vec![queue("Q")],
        vec![agent("alice", &[], ""), agent("bob", &[], "")],
    );
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    let a = h.at(20);
    assert!(a.contains(&Action::CancelAgent {
        call: CallId(1),
        attempt: first
    }));
    let r = attempts(&a);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].sip_outcome, SipOutcome::NoAnswer);
    assert_eq!(r[0].end, AttemptEnd::RingTimeout);
    assert_eq!(r[0].ring, Duration::from_secs(20));
    assert_eq!(r[0].hung_up_by, Some(HungUpBy::Switch));
    let second = dialled(&a, 1, "bob");
    assert_ne!(first, second);
    // The CANCEL's 487 for alice's leg is stale and changes nothing.
    assert!(h.fail(1, first, 487).is_empty());
    assert_eq!(h.e.board().state("alice"), Some(AgentState::Available));
    // Bob times out too: alice is free but already tried, so nobody rings.
    let a = h.at(40);
    assert!(dials(&a).is_empty());
    assert_eq!(h.e.board().misses("alice"), Some(1));
    // A new caller does get alice.
    dialled(&h.arrive(2, "Q"), 2, "alice");
}

#[test]
fn max_wait_without_agents_plays_unavailable_and_hangs_up() {
    let mut h = H::new(vec![queue("Q")], vec![]);
    h.arrive(1, "Q");
    assert_eq!(h.e.deadline(), Some(h.t0 + Duration::from_secs(300)));
    assert!(h.at(299).is_empty());
    let a = h.at(300);
    assert_eq!(
        a[0],
        Action::PlayOverflowAndHangUp {
            call: CallId(1),
            clips: vec![p("unavailable")]
        }
    );
    let c = calls(&a);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].outcome, CallOutcome::Overflow);
    assert_eq!(c[0].hung_up_by, HungUpBy::Switch);
    assert_eq!(c[0].ended - c[0].arrived, Duration::from_secs(300));
    assert!(!h.e.has_call(CallId(1)));
    assert_eq!(h.e.deadline(), None);
}

#[test]
fn max_wait_transfers_when_an_overflow_number_is_set() {
    let number = E164::parse("+15550100999", &CountryCode::nanp()).unwrap();
    let mut q = queue("Q");
    q.overflow_number = Some(number.clone());
    let mut h = H::new(vec![q], vec![]);
    h.arrive(1, "Q");
    let a = h.at(300);
    let attempt = match &a[..] {
        [Action::DialOverflow {
            call: CallId(1),
            attempt,
            number: n,
        }] if *n == number => *attempt,
        other => panic!("expected the overflow dial, got {other:?}"),
    };
    // Bridged on answer once its media runs; recorded when it ends.
    let a = h.answer(1, attempt);
    assert_eq!(
        a,
        [Action::Bridge {
            call: CallId(1),
            attempt
        }]
    );
    let a = h.leg(1, attempt, LegEvent::Ended);
    assert!(a.contains(&Action::HangUpCustomer { call: CallId(1) }));
    assert_eq!(calls(&a)[0].outcome, CallOutcome::Transferred);
    assert!(!h.e.has_call(CallId(1)));
}

#[test]
fn an_overflow_number_that_fails_plays_unavailable() {
    let number = E164::parse("+15550100999", &CountryCode::nanp()).unwrap();
    let mut q = queue("Q");
    q.overflow_number = Some(number);
    let mut h = H::new(vec![q], vec![]);
    h.arrive(1, "Q");
    let attempt = match &h.at(300)[..] {
        [Action::DialOverflow { attempt, .. }] => *attempt,
        other => panic!("expected the overflow dial, got {other:?}"),
    };
    let a = h.fail(1, attempt, 503);
    assert!(a.contains(&Action::PlayOverflowAndHangUp {
        call: CallId(1),
        clips: vec![p("unavailable")]
    }));
    assert_eq!(calls(&a)[0].outcome, CallOutcome::Overflow);
}

#[test]
fn a_customer_leaving_while_the_overflow_rings_cancels_it() {
    let number = E164::parse("+15550100999", &CountryCode::nanp()).unwrap();
    let mut q = queue("Q");
    q.overflow_number = Some(number);
    let mut h = H::new(vec![q], vec![]);
    h.arrive(1, "Q");
    let attempt = match &h.at(300)[..] {
        [Action::DialOverflow { attempt, .. }] => *attempt,
        other => panic!("expected the overflow dial, got {other:?}"),
    };
    let a = h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert_eq!(
        a[0],
        Action::CancelAgent {
            call: CallId(1),
            attempt
        }
    );
    assert_eq!(calls(&a)[0].outcome, CallOutcome::Abandoned);
    // The 200 that crossed the CANCEL is hung up, and nothing else happens.
    let a = h.answer(1, attempt);
    assert_eq!(
        a,
        [Action::HangUpAgent {
            call: CallId(1),
            attempt
        }]
    );
}

#[test]
fn max_wait_during_an_attempt_lets_it_finish_then_overflows() {
    let mut q = queue("Q");
    q.max_wait = Duration::from_secs(15);
    let mut h = H::new(
        vec![q],
        vec![agent("alice", &[], ""), agent("bob", &[], "")],
    );
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    assert!(h.at(15).is_empty(), "alice still rings");
    let a = h.at(20);
    assert!(a.contains(&Action::CancelAgent {
        call: CallId(1),
        attempt: first
    }));
    assert!(dials(&a).is_empty(), "bob is not tried after max_wait");
    assert!(a.contains(&Action::PlayOverflowAndHangUp {
        call: CallId(1),
        clips: vec![p("unavailable")]
    }));
}

#[test]
fn no_agents_online_with_immediate_overflows_at_once() {
    let mut q = queue("Q");
    q.no_agents = NoAgents::Immediate;
    q.skills = vec!["billing".into()];
    // Sales-only alice is online but has not the skill.
    let mut h = H::new(vec![q], vec![agent("alice", &["sales"], "")]);
    let a = h.arrive(1, "Q");
    assert_eq!(
        a[0],
        Action::PlayOverflowAndHangUp {
            call: CallId(1),
            clips: vec![p("unavailable")]
        }
    );
    assert!(!a.iter().any(|x| matches!(x, Action::PlayCustomer { .. })));
    assert!(!h.e.has_call(CallId(1)));
}

#[test]
fn immediate_waits_while_an_agent_is_online_but_busy() {
    let mut q = queue("Q");
    q.no_agents = NoAgents::Immediate;
    let mut h = H::new(vec![q], vec![agent("alice", &[], "")]);
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.take(1, first);
    let a = h.arrive(2, "Q");
    assert!(!a
        .iter()
        .any(|x| matches!(x, Action::PlayOverflowAndHangUp { .. })));
    // Alice logs off mid-call: nobody is left, so caller 2 overflows now.
    let a = h.ev(Event::AgentOffline {
        user: "alice".into(),
    });
    assert!(a.contains(&Action::PlayOverflowAndHangUp {
        call: CallId(2),
        clips: vec![p("unavailable")]
    }));
    assert!(h.e.has_call(CallId(1)), "alice's call goes on");
}

#[test]
fn wait_policy_holds_until_an_agent_logs_in() {
    let mut h = H::with(
        vec![queue("Q")],
        vec![agent("alice", &[], "")],
        EngineSettings::default(),
        false,
    );
    assert!(dials(&h.arrive(1, "Q")).is_empty());
    h.at(30);
    let a = h.ev(Event::AgentOnline {
        user: "alice".into(),
        until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    });
    dialled(&a, 1, "alice");
}

#[test]
fn customer_hangs_up_while_waiting() {
    let mut h = H::new(vec![queue("Q")], vec![]);
    h.arrive(1, "Q");
    h.at(42);
    let a = h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert_eq!(a.len(), 1);
    let c = calls(&a);
    assert_eq!(c[0].outcome, CallOutcome::Abandoned);
    assert_eq!(c[0].hung_up_by, HungUpBy::Customer);
    assert_eq!(h.e.deadline(), None);
    assert!(h.ev(Event::CustomerHungUp { call: CallId(1) }).is_empty());
}

#[test]
fn customer_hangs_up_while_agent_rings() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "")]);
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.arrive(2, "Q");
    h.at(5);
    let a = h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert_eq!(
        a[0],
        Action::CancelAgent {
            call: CallId(1),
            attempt: first
        }
    );
    let r = attempts(&a);
    assert_eq!(r[0].end, AttemptEnd::CustomerHungUp);
    assert_eq!(r[0].hung_up_by, Some(HungUpBy::Customer));
    assert_eq!(calls(&a)[0].outcome, CallOutcome::Abandoned);
    // Not a miss; alice is offered the next caller at once.
    assert_eq!(h.e.board().misses("alice"), Some(0));
    dialled(&a, 2, "alice");
    // If alice's phone answers anyway (200 crossed the CANCEL), hang it up.
    assert_eq!(
        h.answer(1, first),
        [Action::HangUpAgent {
            call: CallId(1),
            attempt: first
        }]
    );
}

#[test]
fn customer_hangs_up_during_whisper() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "")]);
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.at(3);
    h.answer(1, first);
    let a = h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert_eq!(
        a[0],
        Action::HangUpAgent {
            call: CallId(1),
            attempt: first
        }
    );
    assert_eq!(attempts(&a)[0].sip_outcome, SipOutcome::Answered);
    assert_eq!(attempts(&a)[0].ring, Duration::from_secs(3));
    assert_eq!(h.e.board().state("alice"), Some(AgentState::Available));
    // Late whisper-finished and key for the gone call do nothing.
    assert!(h.whispered(1, first).is_empty());
    assert!(h.digit(1, first, '1').is_empty());
}

#[test]
fn customer_hangs_up_after_bridge() {
    let mut h = H::new(vec![queue("Q")], vec![agent("alice", &[], "")]);
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.at(4);
    h.answer(1, first);
    h.whispered(1, first);
    h.at(6);
    h.digit(1, first, '1');
    h.at(100);
    let a = h.ev(Event::CustomerHungUp { call: CallId(1) });
    assert_eq!(
        a[0],
        Action::HangUpAgent {
            call: CallId(1),
            attempt: first
        }
    );
    let r = attempts(&a)[0];
    assert_eq!(
        (r.sip_outcome, r.end, r.hung_up_by),
        (
            SipOutcome::Answered,
            AttemptEnd::Completed,
            Some(HungUpBy::Customer)
        )
    );
    assert_eq!(r.ring, Duration::from_secs(4));
    assert_eq!(r.accept_latency, Some(Duration::from_secs(2)));
    let c = calls(&a)[0];
    assert_eq!(c.outcome, CallOutcome::Bridged);
    assert_eq!(c.agent.as_deref(), Some("alice"));
    assert_eq!(c.bridged, Some(h.t0 + Duration::from_secs(6)));
    let until = h.now + Duration::from_secs(10);
    assert_eq!(
        h.e.board().state("alice"),
        Some(AgentState::WrapUp { until })
    );
    assert_eq!(h.e.deadline(), Some(until));
    h.at(110);
    assert_eq!(h.e.board().state("alice"), Some(AgentState::Available));
}

#[test]
fn unknown_queue_hangs_up() {
    let mut h = H::new(vec![queue("Q")], vec![]);
    let a = h.ev(Event::CustomerArrived {
        call: CallId(1),
        queue: QueueId(7),
    });
    assert_eq!(a, [Action::HangUpCustomer { call: CallId(1) }]);
    assert!(h.e.queue_id("Nope").is_none());
}

#[test]
fn skills_filter_agents_in_the_engine() {
    let mut q = queue("Q");
    q.skills = vec!["billing".into(), "spanish".into()];
    let mut h = H::new(
        vec![q],
        vec![
            agent("alice", &["billing"], ""),
            agent("bob", &["spanish", "billing"], ""),
        ],
    );
    dialled(&h.arrive(1, "Q"), 1, "bob");
}

#[test]
fn shutdown_ends_every_call_as_ended_by_the_switch() {
    let mut h = H::new(
        vec![queue("Q")],
        vec![agent("alice", &[], ""), agent("bob", &[], "")],
    );
    // Call 1 bridged to alice, call 2 ringing bob, call 3 waiting.
    let first = dialled(&h.arrive(1, "Q"), 1, "alice");
    h.take(1, first);
    let ringing = dialled(&h.arrive(2, "Q"), 2, "bob");
    h.arrive(3, "Q");
    h.at(5);
    let a = h.ev(Event::Shutdown);
    // Every customer is hung up, the bridged agent too, the ringing one
    // cancelled.
    for call in 1..=3 {
        assert!(
            a.contains(&Action::HangUpCustomer { call: CallId(call) }),
            "{a:?}"
        );
    }
    assert!(a.contains(&Action::HangUpAgent {
        call: CallId(1),
        attempt: first
    }));
    assert!(a.contains(&Action::CancelAgent {
        call: CallId(2),
        attempt: ringing
    }));
    // Each call is recorded once, ended by the switch.
    let c = calls(&a);
    assert_eq!(c.len(), 3, "{a:?}");
    assert!(c.iter().all(|r| r.hung_up_by == HungUpBy::Switch));
    let ringing_attempt = attempts(&a)
        .into_iter()
        .find(|r| r.user == "bob")
        .expect("bob's attempt recorded");
    assert_eq!(ringing_attempt.end, AttemptEnd::Shutdown);
    assert!(!h.e.has_call(CallId(1)) && !h.e.has_call(CallId(3)));
}

/// A reload adds a queue and an agent, gives a known agent a new skill and
/// removes another: the next offers follow the new settings.
#[test]
fn reconfigure_adds_queues_and_agents_and_retires_removed_agents() {
    let mut billing = queue("Billing");
    billing.skills = vec!["billing".into()];
    let mut h = H::new(
        vec![billing.clone()],
        vec![agent("alice", &["sales"], ""), agent("bob", &[], "")],
    );
    // Nobody has the skill: the customer waits.
    assert!(dials(&h.arrive(1, "Billing")).is_empty());
    let mut sales = queue("Sales");
    sales.skills = vec!["sales".into()];
    // alice learns billing (online, so the waiting customer is offered to
    // her at once); bob is removed; carol joins offline.
    let a = h.ev(Event::Reconfigure {
        queues: vec![billing, sales],
        agents: vec![
            agent("alice", &["sales", "billing"], ""),
            agent("carol", &["sales"], ""),
        ],
    });
    dialled(&a, 1, "alice");
    assert_eq!(h.e.board().state("bob"), Some(AgentState::Offline));
    assert_eq!(h.e.board().state("carol"), Some(AgentState::Offline));
    assert!(h.e.queue_id("Sales").is_some());
    // carol logs in and takes the new queue's first call.
    h.ev(Event::AgentOnline {
        user: "carol".into(),
        until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    });
    dialled(&h.arrive(2, "Sales"), 2, "carol");
}
