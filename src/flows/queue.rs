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
//! - One attempt per customer at a time: the agent's line rings for
//!   `ring_timeout`; if it answers, the extension digits (if any) are sent,
//!   then the whisper plays and the accept key is awaited. Only the accept
//!   key bridges.
//! - Misses follow mod_callcenter: busy is not counted; no answer, decline
//!   and not accepting are. `max_no_answer` of them set the agent offline.
//! - Every attempt and every call ends with a record for the store.

mod attempt;
mod settings;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_agent;
mod types;

use self::attempt::Ending;
use std::cmp::Reverse;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

pub use self::settings::{
    engine_settings_from_config, queues_from_config, EngineSettings, QueuePromptNames,
    QueueSettings,
};
pub use self::types::{
    Action, AttemptEnd, AttemptId, AttemptReport, CallOutcome, CallReport, Event, OfflineReason,
    QueueId,
};
use crate::config::NoAgents;
pub use crate::flows::prompt_plan::PromptName;
pub use crate::presence::{HungUpBy, SipOutcome};
use crate::routing::{pick, AgentBoard, RoundRobin};
pub use crate::routing::{AgentState, CallId};
pub use crate::sip::api::DialOutcome;

struct Queue {
    settings: QueueSettings,
    rr: RoundRobin,
}

#[derive(Debug)]
enum Stage {
    Ringing {
        until: Instant,
    },
    SendingExt {
        until: Instant,
    },
    /// The whisper plays (`until` None) or the engine waits for the key.
    Whisper {
        until: Option<Instant>,
        replays_left: u8,
    },
}

#[derive(Debug)]
struct Attempt {
    id: AttemptId,
    user: String,
    started: Instant,
    answered: Option<Instant>,
    stage: Stage,
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
    next_attempt: u64,
    next_seq: u64,
    /// An agent went offline: queues with `no_agents = immediate` must
    /// check whether anyone is left.
    agents_left: bool,
    actions: VecDeque<Action>,
    /// Agent states as last published through `poll_agent_change`.
    published: HashMap<String, AgentState>,
    agent_changes: VecDeque<(String, AgentState)>,
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
            next_attempt: 1,
            next_seq: 0,
            agents_left: false,
            actions: VecDeque::new(),
            published: HashMap::new(),
            agent_changes: VecDeque::new(),
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
            Event::AgentLegProgress { .. } => {}
            Event::AgentLegAnswered { call, attempt } => self.on_answered(call, attempt, now),
            Event::AgentLegMediaTimeout { call, attempt } => {
                self.on_media_timeout(call, attempt, now)
            }
            Event::AgentLegFailed {
                call,
                attempt,
                outcome,
            } => self.on_failed(call, attempt, outcome, now),
            Event::AgentExtSent { call, attempt } => self.on_ext_sent(call, attempt, now),
            Event::WhisperFinished { call, attempt } => self.on_whisper_done(call, attempt, now),
            Event::AgentDigit {
                call,
                attempt,
                digit,
            } => self.on_digit(call, attempt, digit, now),
            Event::AgentHungUp { call, attempt } => self.on_agent_hung_up(call, attempt, now),
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
            Event::Timer => self.on_timer(now),
        }
        if std::mem::take(&mut self.agents_left) {
            self.overflow_unstaffed(now);
        }
        self.dispatch(now);
        self.publish_agent_changes();
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

    /// When to deliver `Event::Timer`: the earliest of every waiting
    /// customer's max wait, every attempt's ring/accept timeout and every
    /// agent's wrap-up end.
    pub fn deadline(&self) -> Option<Instant> {
        let calls = self.customers.values().filter_map(|c| match &c.phase {
            Phase::Waiting => Some(c.arrived + self.max_wait(c)),
            Phase::Offering(a) => a.deadline(),
            Phase::Bridged { .. } => None,
        });
        calls.chain(self.board.deadline()).min()
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
        self.actions.push_back(Action::AnswerCustomer { call });
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
        let mut bridged = None;
        let outcome = match &c.phase {
            Phase::Waiting => CallOutcome::Abandoned,
            Phase::Offering(a) => {
                let action = if a.answered.is_some() {
                    Action::HangUpAgent {
                        call,
                        attempt: a.id,
                    }
                } else {
                    Action::CancelAgent {
                        call,
                        attempt: a.id,
                    }
                };
                self.actions.push_back(action);
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
            Phase::Bridged {
                attempt,
                at,
                accept_latency,
            } => {
                self.actions.push_back(Action::HangUpAgent {
                    call,
                    attempt: attempt.id,
                });
                self.end_bridged(call, &c, attempt, *accept_latency, by, now);
                agent = Some(attempt.user.clone());
                bridged = Some(*at);
                CallOutcome::Bridged
            }
        };
        self.record_call(&c, call, outcome, agent, bridged, by, now);
    }

    fn on_timer(&mut self, now: Instant) {
        // Wrap-ups that ended free agents; dispatch (in `handle`) uses them.
        self.board.poll(now);
        let mut due: Vec<(u64, CallId)> = self
            .customers
            .iter()
            .filter(|(_, c)| match &c.phase {
                Phase::Waiting => c.arrived + self.max_wait(c) <= now,
                Phase::Offering(a) => a.deadline().is_some_and(|d| d <= now),
                Phase::Bridged { .. } => false,
            })
            .map(|(call, c)| (c.seq, *call))
            .collect();
        // In arrival order, so the actions do not depend on hashing.
        due.sort_unstable();
        for (_, call) in due {
            let waiting = self
                .customers
                .get(&call)
                .is_some_and(|c| matches!(c.phase, Phase::Waiting));
            if waiting {
                self.overflow(call, now);
            } else {
                self.on_attempt_deadline(call, now);
            }
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
                stage: Stage::Ringing {
                    until: now + s.ring_timeout,
                },
            });
            self.actions.push_back(Action::DialAgent {
                call,
                attempt: id,
                user,
            });
        }
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

    /// Sends a waiting caller to the overflow and forgets them.
    fn overflow(&mut self, call: CallId, now: Instant) {
        let Some(c) = self.customers.remove(&call) else {
            return;
        };
        let Some(q) = self.queues.get(c.queue) else {
            self.actions.push_back(Action::HangUpCustomer { call });
            return;
        };
        let outcome = match &q.settings.overflow_number {
            Some(number) => {
                self.actions.push_back(Action::TransferToOverflow {
                    call,
                    number: number.clone(),
                });
                CallOutcome::Transferred
            }
            None => {
                self.actions.push_back(Action::PlayOverflowAndHangUp {
                    call,
                    clips: vec![q.settings.prompts.unavailable.clone()],
                });
                CallOutcome::Overflow
            }
        };
        self.record_call(&c, call, outcome, None, None, HungUpBy::Switch, now);
    }

    fn max_wait(&self, c: &Customer) -> Duration {
        self.queues
            .get(c.queue)
            .map_or(Duration::ZERO, |q| q.settings.max_wait)
    }

    fn queue_of(&self, call: CallId) -> Option<&QueueSettings> {
        let c = self.customers.get(&call)?;
        self.queues.get(c.queue).map(|q| &q.settings)
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
