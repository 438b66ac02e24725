//! Customer queues as one sans-IO state machine per switch.
//!
//! Customers who reach a queue flow are answered, hear a greeting and hold
//! music, and wait until an agent takes their call. Agents are shared
//! between queues, so a single [`QueueEngine`] owns every queue and the
//! [`AgentBoard`]: only then can "which caller gets the agent who just became
//! free" be decided in one place.
//!
//! The shell feeds [`Event`]s with `now`, drains [`Action`]s with
//! [`QueueEngine::poll_action`] after every `handle`, and calls
//! `handle(Event::Timer, ..)` once [`QueueEngine::deadline`] passes.
//!
//! Rules that shape the code:
//! - Callers wait FIFO within a queue; across queues that share agents the
//!   higher `priority` goes first, then the longest waiting.
//! - An agent is offered one call at a time and never the same call twice.
//! - One attempt per customer at a time. Each outbound leg (an agent's,
//!   or the overflow number's) is an [`OutboundLeg`] machine the engine
//!   owns: ring, CANCEL, dead answer, extension digits, whisper and accept
//!   key are its rules (see `flows::outbound`); the engine decides who is
//!   rung and what an outcome means for the customer and the agent.
//! - A customer given up on goes to the overflow number on a leg of its
//!   own, bridged on answer; if that fails, `unavailable` plays.
//! - Misses follow mod_callcenter: busy is not counted; no answer, decline
//!   and not accepting are. `max_no_answer` of them set the agent offline.
//! - Every attempt and every call ends with a record for the store.

mod attempt;
#[cfg(test)]
mod harness;
mod settings;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_agent;
#[cfg(test)]
mod tests_claims;
#[cfg(test)]
mod tests_line;
mod types;

use self::attempt::Ending;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use self::settings::{queues_from_config, EngineSettings, QueuePromptNames, QueueSettings};
pub use self::types::{
    Action, AttemptEnd, AttemptId, AttemptReport, CallOutcome, CallReport, Event, LegEvent,
    LineEnd, OfflineReason, QueueId,
};
use crate::config::NoAgents;
use crate::flows::outbound::{LegRules, OutboundLeg};
pub use crate::flows::prompt_plan::PromptName;
pub use crate::presence::{HungUpBy, SipOutcome};
use crate::routing::{pick, AgentBoard, AgentProfile, RoundRobin};
pub use crate::routing::{AgentState, CallId};
pub use crate::sip::api::DialOutcome;

struct Queue {
    settings: QueueSettings,
    rr: RoundRobin,
}

/// An agent attempt; its leg machine lives in `QueueEngine::legs`.
#[derive(Debug)]
struct Attempt {
    id: AttemptId,
    user: String,
    started: Instant,
    answered: Option<Instant>,
}

#[derive(Debug)]
enum Phase {
    Waiting,
    Offering(Attempt),
    Bridged {
        attempt: Attempt,
        at: Instant,
        accept_latency: Option<Duration>,
    },
    /// Given up on: on the leg to the queue's overflow number.
    Overflow {
        attempt: AttemptId,
        bridged: Option<Instant>,
    },
}

/// An outbound leg the engine placed, kept until its SIP side is over
/// (so a 200 crossing our CANCEL is still hung up).
#[derive(Debug)]
struct Leg {
    call: CallId,
    machine: OutboundLeg,
    /// The nailed-up agent whose line carries this offer; None for a
    /// dialled leg.
    line: Option<String>,
}

#[derive(Debug)]
struct Customer {
    queue: usize,
    arrived: Instant,
    /// Arrival order, to keep FIFO when two arrive in the same instant.
    seq: u64,
    /// Agents already offered this call.
    tried: HashSet<String>,
    phase: Phase,
}

pub struct QueueEngine {
    settings: EngineSettings,
    queues: Vec<Queue>,
    board: AgentBoard,
    customers: HashMap<CallId, Customer>,
    legs: BTreeMap<AttemptId, Leg>,
    /// Offers waiting for the store's answer to their claim: the leg is
    /// made (and its ring timer starts) only once the claim is granted.
    claiming: HashMap<AttemptId, (CallId, LegRules)>,
    next_attempt: u64,
    next_seq: u64,
    /// An agent went offline: queues with `no_agents = immediate` must
    /// check whether anyone is left.
    agents_left: bool,
    actions: VecDeque<Action>,
    /// Agent states as last published through `poll_agent_change`.
    published: HashMap<String, AgentState>,
    agent_changes: VecDeque<(String, AgentState)>,
    /// Nailed-up lines connected here, by agent, with the tone that
    /// announces a customer on each.
    lines: HashMap<String, PromptName>,
    /// Agents with a line just set not responding: their line is hung up
    /// with `LineEnd::NotResponding`.
    line_not_responding: HashSet<String>,
}

impl QueueEngine {
    pub fn new(queues: Vec<QueueSettings>, board: AgentBoard, settings: EngineSettings) -> Self {
        QueueEngine {
            settings,
            queues: queues
                .into_iter()
                .map(|settings| Queue {
                    settings,
                    rr: RoundRobin::new(),
                })
                .collect(),
            board,
            customers: HashMap::new(),
            legs: BTreeMap::new(),
            claiming: HashMap::new(),
            next_attempt: 1,
            next_seq: 0,
            agents_left: false,
            actions: VecDeque::new(),
            published: HashMap::new(),
            agent_changes: VecDeque::new(),
            lines: HashMap::new(),
            line_not_responding: HashSet::new(),
        }
    }

    /// The queue of the flow called `name`.
    pub fn queue_id(&self, name: &str) -> Option<QueueId> {
        self.queues
            .iter()
            .position(|q| q.settings.name == name)
            .map(QueueId)
    }

    pub fn board(&self) -> &AgentBoard {
        &self.board
    }

    /// Customers waiting (not being offered) in `queue`, first in line first.
    pub fn waiting(&self, queue: QueueId) -> Vec<CallId> {
        self.waiting_order()
            .into_iter()
            .filter(|call| self.customers.get(call).is_some_and(|c| c.queue == queue.0))
            .collect()
    }

    /// True while the engine still handles `call`.
    pub fn has_call(&self, call: CallId) -> bool {
        self.customers.contains_key(&call)
    }

    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::CustomerArrived { call, queue } => self.on_arrived(call, queue, now),
            Event::CustomerHungUp { call } => self.end_customer(call, HungUpBy::Customer, now),
            Event::Shutdown => {
                let mut calls: Vec<(u64, CallId)> =
                    self.customers.iter().map(|(id, c)| (c.seq, *id)).collect();
                calls.sort_unstable();
                for (_, call) in calls {
                    self.end_customer(call, HungUpBy::Switch, now);
                    self.actions.push_back(Action::HangUpCustomer { call });
                }
            }
            Event::Leg { attempt, event, .. } => self.on_leg(attempt, event, now),
            Event::AgentOnline { user, until } => {
                if let Err(e) = self.board.set_online(&user, until, now) {
                    tracing::warn!(%e, "queue: ignoring AgentOnline");
                }
            }
            Event::AgentOffline { user } => {
                if let Err(e) = self.board.set_offline(&user) {
                    tracing::warn!(%e, "queue: ignoring AgentOffline");
                }
                self.agents_left = true;
            }
            Event::WindowEnded { user } => {
                if let Err(e) = self.board.window_ended(&user) {
                    tracing::warn!(%e, "queue: ignoring WindowEnded");
                }
                self.agents_left = true;
            }
            Event::ClaimGranted { attempt, misses } => self.claim_granted(attempt, misses, now),
            Event::ClaimRefused { attempt, until } => self.claim_refused(attempt, until),
            Event::AgentFreedElsewhere { user } => {
                if let Err(e) = self.board.freed_elsewhere(&user) {
                    tracing::warn!(%e, "queue: ignoring AgentFreedElsewhere");
                }
            }
            Event::LineUp { user, until, tone } => self.line_up(user, until, tone, now),
            Event::LineDown { user } => self.line_down(&user, now),
            Event::Timer => self.on_timer(now),
            Event::Reconfigure { queues, agents } => self.reconfigure(queues, agents),
        }
        if std::mem::take(&mut self.agents_left) {
            self.overflow_unstaffed(now);
        }
        self.dispatch(now);
        self.hang_up_offline_lines();
        self.publish_agent_changes();
    }

    /// A nailed-up line arrives: the agent is online (the log-in menu
    /// confirmed `until` durably before handing the line over) and
    /// reachable on it. A second line for the same agent replaces the
    /// first in the shell; here it is the same agent, still reachable.
    fn line_up(&mut self, user: String, until: DateTime<Utc>, tone: PromptName, now: Instant) {
        let known = self.board.set_online(&user, until, now).is_ok()
            && self.board.set_line(&user, true).is_ok();
        if !known {
            tracing::warn!(agent = %user, "queue: a line for an agent not in the board; hanging it up");
            self.actions.push_back(Action::HangUpLine {
                user,
                why: LineEnd::Offline,
            });
            return;
        }
        self.lines.insert(user.clone(), tone);
        self.actions.push_back(Action::LineIdle { user });
    }

    /// The agent ended their line: whatever it carried ends with it (the
    /// leg machine sees the far end go; `on_finished` counts no miss for
    /// an offer on a line that is gone).
    fn line_down(&mut self, user: &str, now: Instant) {
        if self.lines.remove(user).is_none() {
            return;
        }
        board_in_step(self.board.set_line(user, false));
        let carried: Vec<AttemptId> = self
            .legs
            .iter()
            .filter(|(_, l)| l.line.as_deref() == Some(user) && !l.machine.is_done())
            .map(|(id, _)| *id)
            .collect();
        for attempt in carried {
            self.on_leg(attempt, LegEvent::Ended, now);
        }
        self.agents_left = true;
    }

    /// Lines of agents who are offline now (and not on a call, which the
    /// board lets finish first) are hung up, saying why.
    fn hang_up_offline_lines(&mut self) {
        let mut offline: Vec<String> = self
            .lines
            .keys()
            .filter(|u| self.board.state(u) == Some(AgentState::Offline))
            .cloned()
            .collect();
        offline.sort_unstable();
        for user in offline {
            self.lines.remove(&user);
            board_in_step(self.board.set_line(&user, false));
            let why = if self.line_not_responding.remove(&user) {
                LineEnd::NotResponding
            } else {
                LineEnd::Offline
            };
            self.actions.push_back(Action::HangUpLine { user, why });
        }
        self.line_not_responding.clear();
    }

    fn reconfigure(&mut self, queues: Vec<QueueSettings>, agents: Vec<AgentProfile>) {
        for settings in queues {
            match self
                .queues
                .iter_mut()
                .find(|q| q.settings.name == settings.name)
            {
                Some(q) => q.settings = settings,
                // Appended: the QueueIds of the queues already known stay.
                None => self.queues.push(Queue {
                    settings,
                    rr: RoundRobin::new(),
                }),
            }
        }
        let configured: HashSet<&str> = agents.iter().map(|p| p.id.as_str()).collect();
        let gone: Vec<String> = self
            .board
            .states()
            .map(|(id, _)| id)
            .filter(|id| !configured.contains(id))
            .map(str::to_owned)
            .collect();
        for profile in agents {
            self.board.add_agent(profile);
        }
        for user in gone {
            if let Err(e) = self.board.set_offline(&user) {
                tracing::warn!(%e, "queue: reload could not set a removed agent offline");
            }
            self.agents_left = true;
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// An agent whose state changed since the last call, for the display
    /// table and the expiry scheduler (`set_busy` while `Offered`/`Busy`).
    /// Drain after every `handle`, like `poll_action`.
    pub fn poll_agent_change(&mut self) -> Option<(String, AgentState)> {
        self.agent_changes.pop_front()
    }

    /// Outbound legs placed and not yet over (for the record: the shell
    /// counts them against `trunk.max_outbound_calls` where it places them).
    pub fn legs(&self) -> usize {
        self.legs.len()
    }

    /// When to deliver `Event::Timer`: the earliest of every waiting
    /// customer's max wait, every leg's timer and every agent's wrap-up end.
    pub fn deadline(&self) -> Option<Instant> {
        let waits = self.customers.values().filter_map(|c| match &c.phase {
            Phase::Waiting => Some(c.arrived + self.max_wait(c)),
            _ => None,
        });
        let legs = self.legs.values().filter_map(|l| l.machine.deadline());
        waits.chain(legs).chain(self.board.deadline()).min()
    }

    fn on_arrived(&mut self, call: CallId, queue: QueueId, now: Instant) {
        if self.customers.contains_key(&call) {
            return;
        }
        let Some(q) = self.queues.get(queue.0) else {
            tracing::warn!(%call, "queue: unknown queue id; hanging up");
            self.actions.push_back(Action::HangUpCustomer { call });
            return;
        };
        let s = &q.settings;
        let (once, hold) = (
            s.prompts.greeting.iter().cloned().collect(),
            s.prompts.hold.clone(),
        );
        let unstaffed =
            s.no_agents == NoAgents::Immediate && !self.board.any_online_with(&s.skills);
        self.customers.insert(
            call,
            Customer {
                queue: queue.0,
                arrived: now,
                seq: self.next_seq,
                tried: HashSet::new(),
                phase: Phase::Waiting,
            },
        );
        self.next_seq += 1;
        if unstaffed {
            self.overflow(call, now);
            return;
        }
        self.actions.push_back(Action::PlayCustomer {
            call,
            once,
            looped: vec![hold],
        });
    }

    /// The customer's call is over (`by` ended it): stop any agent attempt,
    /// record the attempt and the call.
    fn end_customer(&mut self, call: CallId, by: HungUpBy, now: Instant) {
        let Some(c) = self.customers.remove(&call) else {
            return;
        };
        let mut agent = None;
        let mut bridged_at = None;
        let outcome = match &c.phase {
            Phase::Waiting => CallOutcome::Abandoned,
            // Never rung: nothing to record; the agent's release (through
            // `poll_agent_change`) lets the claim go once it is granted.
            Phase::Offering(a) if self.claiming.remove(&a.id).is_some() => {
                board_in_step(self.board.withdraw(&a.user));
                CallOutcome::Abandoned
            }
            Phase::Offering(a) => {
                self.withdraw_leg(a.id, now);
                board_in_step(self.board.withdraw(&a.user));
                let outcome = if a.answered.is_some() {
                    SipOutcome::Answered
                } else {
                    SipOutcome::NoAnswer
                };
                let ending = Ending {
                    sip: outcome,
                    status: None,
                    end: if by == HungUpBy::Switch {
                        AttemptEnd::Shutdown
                    } else {
                        AttemptEnd::CustomerHungUp
                    },
                    by: Some(by),
                    accept_latency: None,
                };
                self.record_attempt(call, a, now, ending);
                CallOutcome::Abandoned
            }
            Phase::Overflow { attempt, bridged } => {
                self.withdraw_leg(*attempt, now);
                bridged_at = *bridged;
                if bridged.is_some() {
                    CallOutcome::Transferred
                } else {
                    CallOutcome::Abandoned
                }
            }
            Phase::Bridged {
                attempt,
                at,
                accept_latency,
            } => {
                self.withdraw_leg(attempt.id, now);
                self.end_bridged(call, &c, attempt, *accept_latency, by, now);
                agent = Some(attempt.user.clone());
                bridged_at = Some(*at);
                CallOutcome::Bridged
            }
        };
        self.record_call(&c, call, outcome, agent, bridged_at, by, now);
    }

    fn on_timer(&mut self, now: Instant) {
        // Wrap-ups that ended free agents; dispatch (in `handle`) uses them.
        self.board.poll(now);
        let legs: Vec<AttemptId> = self
            .legs
            .iter()
            .filter(|(_, l)| l.machine.deadline().is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for attempt in legs {
            self.on_leg(attempt, LegEvent::Timer, now);
        }
        let mut due: Vec<(u64, CallId)> = self
            .customers
            .iter()
            .filter(|(_, c)| {
                matches!(c.phase, Phase::Waiting) && c.arrived + self.max_wait(c) <= now
            })
            .map(|(call, c)| (c.seq, *call))
            .collect();
        // In arrival order, so the actions do not depend on hashing.
        due.sort_unstable();
        for (_, call) in due {
            self.overflow(call, now);
        }
    }

    /// Offers waiting callers to free agents: callers in priority order,
    /// then longest waiting; each gets the agent its queue's strategy picks.
    fn dispatch(&mut self, now: Instant) {
        if self.customers.is_empty() {
            return;
        }
        for call in self.waiting_order() {
            let Some(c) = self.customers.get_mut(&call) else {
                continue;
            };
            let Some(q) = self.queues.get_mut(c.queue) else {
                continue;
            };
            let s = &q.settings;
            if c.arrived + s.max_wait <= now {
                continue; // the overflow is due; a late Timer must not ring anyone
            }
            let Some(user) = pick(&self.board, s.strategy, &s.skills, &c.tried, &mut q.rr) else {
                continue;
            };
            if let Err(e) = self.board.offer(&user, call) {
                // `pick` only returns available agents; log and move on.
                tracing::warn!(%e, "queue: offer refused");
                continue;
            }
            let id = AttemptId(self.next_attempt);
            self.next_attempt += 1;
            c.tried.insert(user.clone());
            c.phase = Phase::Offering(Attempt {
                id,
                user: user.clone(),
                started: now,
                answered: None,
            });
            let ext = self
                .board
                .profile(&user)
                .map(|p| p.ext.clone())
                .unwrap_or_default();
            let line = self.lines.get(&user).cloned();
            let rules = LegRules {
                ring_timeout: s.ring_timeout,
                media_grace: self.settings.media_grace,
                // The line is the agent's own phone, already reached.
                ext: if line.is_some() { String::new() } else { ext },
                ext_pause: s.ext_pause,
                ext_send_guard: self.settings.ext_send_guard,
                accept: s.accept,
                whisper: s.prompts.whisper.clone(),
                accept_timeout: s.accept_timeout,
                whisper_replays: 1,
                announce: line.clone(),
            };
            if line.is_some() {
                // No claim: only the node holding the line can reach the
                // agent (elsewhere they are `NoLine`), and no INVITE.
                self.legs.insert(
                    id,
                    Leg {
                        call,
                        machine: OutboundLeg::on_line(rules, now),
                        line: Some(user.clone()),
                    },
                );
                self.actions.push_back(Action::OfferOnLine {
                    call,
                    attempt: id,
                    user,
                });
                self.drain_leg(id, now);
                continue;
            }
            if self.settings.claims {
                self.claiming.insert(id, (call, rules));
                self.actions.push_back(Action::ClaimAgent {
                    call,
                    attempt: id,
                    user,
                });
                continue;
            }
            self.legs.insert(
                id,
                Leg {
                    call,
                    machine: OutboundLeg::new(rules, now),
                    line: None,
                },
            );
            self.actions.push_back(Action::DialAgent {
                call,
                attempt: id,
                user,
            });
        }
    }

    /// The claim is ours: ring the agent, timing the ring from now.
    fn claim_granted(&mut self, attempt: AttemptId, misses: Option<u32>, now: Instant) {
        let Some((call, rules)) = self.claiming.remove(&attempt) else {
            return; // the customer left meanwhile; the agent was withdrawn
        };
        let Some(Customer {
            phase: Phase::Offering(a),
            ..
        }) = self.customers.get_mut(&call)
        else {
            return;
        };
        a.started = now;
        let user = a.user.clone();
        if let Some(m) = misses {
            board_in_step(self.board.set_misses(&user, m));
        }
        self.legs.insert(
            attempt,
            Leg {
                call,
                machine: OutboundLeg::new(rules, now),
                line: None,
            },
        );
        self.actions.push_back(Action::DialAgent {
            call,
            attempt,
            user,
        });
    }

    /// Another node has the agent: this was not a try (the agent was never
    /// rung), so the customer may be offered them again later.
    fn claim_refused(&mut self, attempt: AttemptId, until: Instant) {
        let Some((call, _)) = self.claiming.remove(&attempt) else {
            return;
        };
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        let Phase::Offering(a) = std::mem::replace(&mut c.phase, Phase::Waiting) else {
            return;
        };
        c.tried.remove(&a.user);
        board_in_step(self.board.held_elsewhere(&a.user, call, until));
    }

    fn publish_agent_changes(&mut self) {
        for (user, state) in self.board.states() {
            // Agents never seen are offline: no need to announce that.
            let before = self
                .published
                .get(user)
                .copied()
                .unwrap_or(AgentState::Offline);
            if before != state {
                self.published.insert(user.to_string(), state);
                self.agent_changes.push_back((user.to_string(), state));
            }
        }
    }

    /// Waiting callers, in the order they get agents.
    fn waiting_order(&self) -> Vec<CallId> {
        let mut waiting: Vec<_> = self
            .customers
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Waiting))
            .map(|(call, c)| {
                let priority = self.queues.get(c.queue).map_or(0, |q| q.settings.priority);
                (Reverse(priority), c.arrived, c.seq, *call)
            })
            .collect();
        waiting.sort_unstable();
        waiting.into_iter().map(|(.., call)| call).collect()
    }

    /// `no_agents = immediate`: waiting callers of a queue nobody with its
    /// skills is online for go to the overflow now.
    fn overflow_unstaffed(&mut self, now: Instant) {
        for call in self.waiting_order() {
            let unstaffed = self
                .customers
                .get(&call)
                .and_then(|c| self.queues.get(c.queue))
                .is_some_and(|q| {
                    q.settings.no_agents == NoAgents::Immediate
                        && !self.board.any_online_with(&q.settings.skills)
                });
            if unstaffed {
                self.overflow(call, now);
            }
        }
    }

    /// Sends a waiting caller to the overflow: a leg to the overflow number
    /// (the customer stays until it ends), or `unavailable` and hang-up.
    fn overflow(&mut self, call: CallId, now: Instant) {
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        let Some(q) = self.queues.get(c.queue) else {
            self.customers.remove(&call);
            self.actions.push_back(Action::HangUpCustomer { call });
            return;
        };
        match q.settings.overflow_number.clone() {
            Some(number) => {
                let attempt = AttemptId(self.next_attempt);
                self.next_attempt += 1;
                c.phase = Phase::Overflow {
                    attempt,
                    bridged: None,
                };
                let rules = LegRules::on_answer(q.settings.ring_timeout, self.settings.media_grace);
                self.legs.insert(
                    attempt,
                    Leg {
                        call,
                        machine: OutboundLeg::new(rules, now),
                        line: None,
                    },
                );
                self.actions.push_back(Action::DialOverflow {
                    call,
                    attempt,
                    number,
                });
            }
            None => self.unavailable(call, now),
        }
    }

    /// Plays the queue's `unavailable` prompt, hangs up and forgets the caller.
    fn unavailable(&mut self, call: CallId, now: Instant) {
        let Some(c) = self.customers.remove(&call) else {
            return;
        };
        let clips = self
            .queues
            .get(c.queue)
            .map(|q| vec![q.settings.prompts.unavailable.clone()])
            .unwrap_or_default();
        self.actions
            .push_back(Action::PlayOverflowAndHangUp { call, clips });
        self.record_call(
            &c,
            call,
            CallOutcome::Overflow,
            None,
            None,
            HungUpBy::Switch,
            now,
        );
    }

    fn max_wait(&self, c: &Customer) -> Duration {
        self.queues
            .get(c.queue)
            .map_or(Duration::ZERO, |q| q.settings.max_wait)
    }

    #[allow(clippy::too_many_arguments)]
    fn record_call(
        &mut self,
        c: &Customer,
        call: CallId,
        outcome: CallOutcome,
        agent: Option<String>,
        bridged: Option<Instant>,
        hung_up_by: HungUpBy,
        now: Instant,
    ) {
        let queue = self
            .queues
            .get(c.queue)
            .map(|q| q.settings.name.clone())
            .unwrap_or_default();
        self.actions.push_back(Action::RecordCall(CallReport {
            call,
            queue,
            outcome,
            agent,
            arrived: c.arrived,
            bridged,
            ended: now,
            hung_up_by,
        }));
    }
}

/// Board calls made on behalf of a known attempt only fail if the shell
/// reported something inconsistent; the call goes on either way.
fn board_in_step<E: std::fmt::Display>(result: Result<(), E>) {
    if let Err(e) = result {
        tracing::warn!(%e, "queue: agent board out of step");
    }
}
