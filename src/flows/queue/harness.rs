//! The queue engine and its outbound legs against scripted phones, on one
//! simulated clock (in the manner of quinn-proto's `Pair`): every action
//! the engine takes is stamped with the millisecond it happened, so
//! multi-leg timing is proven exactly, without SIPp and without waiting.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};

use super::tests::{agent, queue};
use super::*;
use crate::config::Accept;

/// How a scripted phone behind the trunk treats an INVITE.
#[derive(Debug, Clone, Copy)]
struct Phone {
    /// Answers (2xx) this long after the INVITE; None = never.
    answer_after: Option<Duration>,
    /// Sends RTP 20 ms after answering (a real phone does; a dead answer
    /// does not).
    rtp: bool,
    /// Presses `key` this long after the whisper ended.
    key: Option<(char, Duration)>,
}

/// The length of every whisper the harness "plays".
const WHISPER: Duration = Duration::from_millis(2_000);
/// How long a CANCEL or BYE takes to be answered.
const ROUND_TRIP: Duration = Duration::from_millis(30);

struct Sim {
    e: QueueEngine,
    t0: Instant,
    now: Instant,
    phones: HashMap<String, Phone>,
    /// Who each leg rings.
    legs: HashMap<AttemptId, String>,
    /// Events the phones will send: (when, order, event).
    pending: BinaryHeap<Reverse<(Instant, u64, Pending)>>,
    seq: u64,
    /// What the engine did, and when (ms since t0).
    log: Vec<(u64, Action)>,
}

/// An event in flight (ordered only to break ties in the heap).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    call: u64,
    attempt: u64,
    event: String,
}

fn leg_event(name: &str) -> LegEvent {
    match name.split_once(':') {
        Some(("digit", d)) => LegEvent::Digit(d.chars().next().unwrap_or('?')),
        _ => match name {
            "answered" => LegEvent::Answered { media: true },
            "rtp" => LegEvent::RtpStarted,
            "whispered" => LegEvent::PlaybackFinished,
            "ext-sent" => LegEvent::ExtSent,
            "cancelled" => LegEvent::Failed(DialOutcome::Cancelled),
            "ended" => LegEvent::Ended,
            other => panic!("unknown scripted event {other}"),
        },
    }
}

impl Sim {
    fn new(q: QueueSettings, phones: &[(&str, Phone)]) -> Sim {
        let agents: Vec<_> = phones.iter().map(|(id, _)| agent(id, &[], "")).collect();
        let t0 = Instant::now();
        let mut sim = Sim {
            e: QueueEngine::new(vec![q], AgentBoard::new(agents), EngineSettings::default()),
            t0,
            now: t0,
            phones: phones.iter().map(|(id, p)| (id.to_string(), *p)).collect(),
            legs: HashMap::new(),
            pending: BinaryHeap::new(),
            seq: 0,
            log: Vec::new(),
        };
        for (id, _) in phones {
            sim.feed(Event::AgentOnline {
                user: id.to_string(),
                until: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
            });
        }
        sim
    }

    fn ms(&self) -> u64 {
        self.now.duration_since(self.t0).as_millis() as u64
    }

    fn send(&mut self, after: Duration, call: CallId, attempt: AttemptId, event: &str) {
        self.seq += 1;
        let p = Pending {
            call: call.0,
            attempt: attempt.0,
            event: event.to_string(),
        };
        self.pending.push(Reverse((self.now + after, self.seq, p)));
    }

    fn feed(&mut self, event: Event) {
        self.e.handle(event, self.now);
        while let Some(a) = self.e.poll_action() {
            self.react(&a);
            self.log.push((self.ms(), a));
        }
    }

    /// What the phones (and the shell) do about an action.
    fn react(&mut self, a: &Action) {
        match a {
            Action::DialAgent {
                call,
                attempt,
                user,
            } => {
                self.legs.insert(*attempt, user.clone());
                let Some(p) = self.phones.get(user).copied() else {
                    return;
                };
                if let Some(after) = p.answer_after {
                    self.send(after, *call, *attempt, "answered");
                    if p.rtp {
                        self.send(after + Duration::from_millis(20), *call, *attempt, "rtp");
                    }
                }
            }
            Action::PlayAgent { call, attempt, .. } => {
                self.send(WHISPER, *call, *attempt, "whispered");
                let key = self
                    .legs
                    .get(attempt)
                    .and_then(|u| self.phones.get(u))
                    .and_then(|p| p.key);
                if let Some((k, after)) = key {
                    self.send(WHISPER + after, *call, *attempt, &format!("digit:{k}"));
                }
            }
            Action::SendExt {
                call,
                attempt,
                pause,
                ..
            } => self.send(*pause, *call, *attempt, "ext-sent"),
            Action::CancelAgent { call, attempt } => {
                self.send(ROUND_TRIP, *call, *attempt, "cancelled")
            }
            Action::HangUpAgent { call, attempt } => {
                self.send(ROUND_TRIP, *call, *attempt, "ended")
            }
            _ => {}
        }
    }

    /// Runs until `ms` after t0: phone events and engine timers, in time order.
    fn run_until(&mut self, ms: u64) {
        let end = self.t0 + Duration::from_millis(ms);
        loop {
            let next_event = self.pending.peek().map(|Reverse((t, ..))| *t);
            let next_timer = self.e.deadline();
            let next = match (next_event, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = next;
            if next_event == Some(next) {
                if let Some(Reverse((_, _, p))) = self.pending.pop() {
                    let event = leg_event(&p.event);
                    self.feed(Event::Leg {
                        call: CallId(p.call),
                        attempt: AttemptId(p.attempt),
                        event,
                    });
                }
            } else {
                self.feed(Event::Timer);
            }
        }
        self.now = end;
    }

    /// The timeline of the actions that show the call's course.
    fn timeline(&self) -> Vec<(u64, String)> {
        self.log
            .iter()
            .filter_map(|(ms, a)| {
                let who = |attempt: &AttemptId| self.legs.get(attempt).cloned().unwrap_or_default();
                let what = match a {
                    Action::DialAgent { user, .. } => format!("dial {user}"),
                    Action::CancelAgent { attempt, .. } => format!("cancel {}", who(attempt)),
                    Action::HangUpAgent { attempt, .. } => format!("bye {}", who(attempt)),
                    Action::PlayAgent { attempt, .. } => format!("whisper {}", who(attempt)),
                    Action::Bridge { attempt, .. } => format!("bridge {}", who(attempt)),
                    Action::RecordAttempt(r) => format!("attempt {} {}", r.user, r.end.as_str()),
                    Action::RecordCall(r) => format!("call {}", r.outcome.as_str()),
                    _ => return None,
                };
                Some((*ms, what))
            })
            .collect()
    }
}

fn tl(items: &[(u64, &str)]) -> Vec<(u64, String)> {
    items.iter().map(|(ms, s)| (*ms, s.to_string())).collect()
}

const DEAD: Phone = Phone {
    answer_after: Some(Duration::from_millis(3_000)),
    rtp: false,
    key: None,
};

#[test]
fn dead_answer_then_second_agent_accepts_with_the_key() {
    let bob = Phone {
        answer_after: Some(Duration::from_millis(2_000)),
        rtp: true,
        key: Some(('1', Duration::from_millis(500))),
    };
    let mut sim = Sim::new(queue("Q"), &[("alice", DEAD), ("bob", bob)]);
    let q = sim.e.queue_id("Q").unwrap();
    sim.feed(Event::CustomerArrived {
        call: CallId(1),
        queue: q,
    });
    sim.run_until(60_000);
    assert_eq!(
        sim.timeline(),
        tl(&[
            (0, "dial alice"),
            // Answered at 3 000 ms, no RTP within the 5 s media grace.
            (8_000, "bye alice"),
            (8_000, "attempt alice no-media"),
            (8_000, "dial bob"),
            // 2xx at 10 000, RTP at 10 020: the whisper starts.
            (10_020, "whisper bob"),
            // 2 s whisper, key 500 ms later.
            (12_520, "bridge bob"),
        ])
    );
    assert_eq!(sim.e.board().misses("alice"), Some(1));
}

#[test]
fn dead_answer_then_second_agent_bridged_on_answer() {
    let mut q = queue("Q");
    q.accept = Accept::OnAnswer;
    let bob = Phone {
        answer_after: Some(Duration::from_millis(2_000)),
        rtp: true,
        key: None,
    };
    let mut sim = Sim::new(q, &[("alice", DEAD), ("bob", bob)]);
    let q = sim.e.queue_id("Q").unwrap();
    sim.feed(Event::CustomerArrived {
        call: CallId(1),
        queue: q,
    });
    sim.run_until(60_000);
    assert_eq!(
        sim.timeline(),
        tl(&[
            (0, "dial alice"),
            (8_000, "bye alice"),
            (8_000, "attempt alice no-media"),
            (8_000, "dial bob"),
            (10_020, "bridge bob"),
        ])
    );
}

#[test]
fn ring_timeout_then_a_200_crossing_the_cancel_is_hung_up_while_bob_rings() {
    // alice answers 10 ms after the ring timeout: her 200 crosses the CANCEL.
    let alice = Phone {
        answer_after: Some(Duration::from_millis(20_010)),
        rtp: true,
        key: None,
    };
    let bob = Phone {
        answer_after: Some(Duration::from_millis(1_000)),
        rtp: true,
        key: Some(('1', Duration::ZERO)),
    };
    let mut sim = Sim::new(queue("Q"), &[("alice", alice), ("bob", bob)]);
    let q = sim.e.queue_id("Q").unwrap();
    sim.feed(Event::CustomerArrived {
        call: CallId(1),
        queue: q,
    });
    sim.run_until(60_000);
    assert_eq!(
        sim.timeline(),
        tl(&[
            (0, "dial alice"),
            (20_000, "cancel alice"),
            (20_000, "attempt alice ring-timeout"),
            (20_000, "dial bob"),
            // The crossing 200 gets its BYE (RFC 3261 §15) and nothing else.
            (20_010, "bye alice"),
            (21_020, "whisper bob"),
            (23_020, "bridge bob"),
        ])
    );
    assert_eq!(sim.e.legs(), 1, "only bob's leg is left");
}
