//! The engine's side of its outbound legs: feeding each leg machine, and
//! what a leg's outcome means for the customer and the agent.
//!
//! Leg events are routed by attempt id. A leg whose customer moved on (we
//! cancelled or hung it up) stays until its SIP side is over, so a 200
//! crossing our CANCEL still gets its BYE; its outcome changes nothing.

use std::time::{Duration, Instant};

use super::{
    board_in_step, Action, Attempt, AttemptEnd, AttemptId, AttemptReport, CallId, CallOutcome,
    Customer, HungUpBy, LegEvent, OfflineReason, Phase, QueueEngine, SipOutcome,
};
use crate::flows::outbound::{Action as LegAction, Outcome};
use crate::routing::{MissKind, MissVerdict};

/// How an attempt ended, as recorded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ending {
    pub sip: SipOutcome,
    pub status: Option<u16>,
    pub end: AttemptEnd,
    pub by: Option<HungUpBy>,
    pub accept_latency: Option<Duration>,
}

impl Ending {
    fn new(sip: SipOutcome, end: AttemptEnd) -> Self {
        Ending {
            sip,
            status: None,
            end,
            by: None,
            accept_latency: None,
        }
    }
}

/// What an agent leg's outcome means: the record, and the miss it counts
/// (mod_callcenter: busy is not a miss; the trunk's failure is nobody's).
/// None for outcomes that are not the end of an offer.
fn classify(outcome: Outcome) -> Option<(Ending, Option<MissKind>)> {
    let switch = Some(HungUpBy::Switch);
    let (sip, end, miss, by) = match outcome {
        Outcome::Busy(_) => (
            SipOutcome::Busy,
            AttemptEnd::Busy,
            Some(MissKind::Busy),
            None,
        ),
        Outcome::Declined(_) => (
            SipOutcome::Rejected,
            AttemptEnd::Declined,
            Some(MissKind::Rejected),
            None,
        ),
        Outcome::NoAnswer(_) => (
            SipOutcome::NoAnswer,
            AttemptEnd::NoAnswer,
            Some(MissKind::NoAnswer),
            None,
        ),
        Outcome::RingTimeout => (
            SipOutcome::NoAnswer,
            AttemptEnd::RingTimeout,
            Some(MissKind::NoAnswer),
            switch,
        ),
        Outcome::TrunkFailed(_) => (SipOutcome::Failed, AttemptEnd::TrunkFailed, None, None),
        // A dead answer (voicemail box, broken phone) is counted like no
        // answer, so a phone that always does it is soon taken offline
        // instead of costing every caller a ring cycle.
        Outcome::DeadAnswer => (
            SipOutcome::Failed,
            AttemptEnd::NoMedia,
            Some(MissKind::NoAnswer),
            switch,
        ),
        Outcome::ExtNotSent => (SipOutcome::Failed, AttemptEnd::ExtNotSent, None, switch),
        // "Answered and did not accept" is recorded as rejected.
        Outcome::NotAccepted => (
            SipOutcome::Rejected,
            AttemptEnd::NotAccepted,
            Some(MissKind::NotAccepted),
            switch,
        ),
        // Hanging up instead of pressing the key is a decline.
        Outcome::HungUpBeforeAccept => (
            SipOutcome::Rejected,
            AttemptEnd::AgentHungUp,
            Some(MissKind::Rejected),
            Some(HungUpBy::Agent),
        ),
        Outcome::CalleeHungUp | Outcome::Withdrawn => return None,
    };
    let ending = Ending {
        status: outcome.status(),
        by,
        ..Ending::new(sip, end)
    };
    Some((ending, miss))
}

impl QueueEngine {
    /// Feeds `event` to the leg of `attempt` and carries out what it says.
    pub(super) fn on_leg(&mut self, attempt: AttemptId, event: LegEvent, now: Instant) {
        let Some(leg) = self.legs.get_mut(&attempt) else {
            return; // a leg already over
        };
        leg.machine.handle(event, now);
        self.drain_leg(attempt, now);
    }

    /// The owner gives the leg up (the customer left, or shutdown); its
    /// outcome report is then ignored, the owner records it.
    pub(super) fn withdraw_leg(&mut self, attempt: AttemptId, now: Instant) {
        self.on_leg(attempt, LegEvent::Withdraw, now);
    }

    pub(super) fn drain_leg(&mut self, attempt: AttemptId, now: Instant) {
        let mut idled = false;
        loop {
            let Some(leg) = self.legs.get_mut(&attempt) else {
                return;
            };
            let call = leg.call;
            let Some(action) = leg.machine.poll_action() else {
                break;
            };
            if let (Some(user), LegAction::Cancel | LegAction::HangUp) = (&leg.line, &action) {
                // A line is never hung up for an offer: it goes back to
                // waiting, and the offer's side of it is over at once.
                let user = user.clone();
                leg.machine.handle(LegEvent::Ended, now);
                if self.lines.contains_key(&user) {
                    self.actions.push_back(Action::LineIdle { user });
                }
                idled = true;
                continue;
            }
            match action {
                LegAction::Cancel => self
                    .actions
                    .push_back(Action::CancelAgent { call, attempt }),
                LegAction::HangUp => self
                    .actions
                    .push_back(Action::HangUpAgent { call, attempt }),
                LegAction::SendExt { digits, pause } => self.actions.push_back(Action::SendExt {
                    call,
                    attempt,
                    digits,
                    pause,
                }),
                LegAction::Play(clips) => self.actions.push_back(Action::PlayAgent {
                    call,
                    attempt,
                    clips,
                }),
                LegAction::Answered => {
                    if let Some(a) = self.current(call, attempt) {
                        a.answered = Some(now);
                    }
                }
                LegAction::Connected => self.on_connected(call, attempt, now),
                LegAction::Finished(outcome) => self.on_finished(call, attempt, outcome, now),
            }
        }
        if self.legs.get(&attempt).is_some_and(|l| l.machine.is_done()) {
            let line = self.legs.remove(&attempt).and_then(|l| l.line);
            // An offer on a line that ended any other way (a failed
            // bridge) still frees the line.
            if let Some(user) = line.filter(|u| !idled && self.lines.contains_key(u)) {
                self.actions.push_back(Action::LineIdle { user });
            }
        }
    }

    /// The customer's current agent attempt, when `attempt` is it.
    fn current(&mut self, call: CallId, attempt: AttemptId) -> Option<&mut Attempt> {
        match self.customers.get_mut(&call).map(|c| &mut c.phase) {
            Some(Phase::Offering(a)) if a.id == attempt => Some(a),
            _ => None,
        }
    }

    /// The leg is up and accepted: bridge it to the customer.
    fn on_connected(&mut self, call: CallId, attempt: AttemptId, now: Instant) {
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        match std::mem::replace(&mut c.phase, Phase::Waiting) {
            Phase::Offering(a) if a.id == attempt => {
                if let Err(e) = self.board.accepted(&a.user) {
                    tracing::warn!(%e, "queue: agent board out of step");
                }
                let accept_latency = a
                    .answered
                    .map(|t| now.saturating_duration_since(t))
                    .filter(|d| !d.is_zero());
                c.phase = Phase::Bridged {
                    attempt: a,
                    at: now,
                    accept_latency,
                };
            }
            Phase::Overflow {
                attempt: o,
                bridged: None,
            } if o == attempt => {
                c.phase = Phase::Overflow {
                    attempt,
                    bridged: Some(now),
                };
            }
            other => {
                c.phase = other;
                return;
            }
        }
        self.actions.push_back(Action::Bridge { call, attempt });
    }

    fn on_finished(&mut self, call: CallId, attempt: AttemptId, outcome: Outcome, now: Instant) {
        let (offering, bridged, overflow) = match self.customers.get(&call).map(|c| &c.phase) {
            Some(Phase::Offering(a)) => (a.id == attempt, false, false),
            Some(Phase::Bridged { attempt: a, .. }) => (false, a.id == attempt, false),
            Some(Phase::Overflow { attempt: o, .. }) => (false, false, *o == attempt),
            _ => (false, false, false),
        };
        if offering {
            // The agent hung up their nailed-up line during the offer:
            // their window ends with it, which is no miss.
            let line_gone = self
                .legs
                .get(&attempt)
                .and_then(|l| l.line.as_ref())
                .is_some_and(|user| !self.lines.contains_key(user));
            if let Some((ending, miss)) = classify(outcome) {
                let miss = if line_gone { None } else { miss };
                self.end_attempt(call, ending, miss, now);
            }
        } else if bridged && outcome == Outcome::CalleeHungUp {
            self.agent_left_bridge(call, now);
        } else if overflow {
            self.overflow_ended(call, outcome, now);
        }
    }

    /// The bridged agent hung up: so does the customer.
    fn agent_left_bridge(&mut self, call: CallId, now: Instant) {
        let Some(c) = self.customers.remove(&call) else {
            return;
        };
        if let Phase::Bridged {
            attempt: a,
            at,
            accept_latency,
        } = &c.phase
        {
            self.actions.push_back(Action::HangUpCustomer { call });
            self.end_bridged(call, &c, a, *accept_latency, HungUpBy::Agent, now);
            let (user, at) = (Some(a.user.clone()), Some(*at));
            self.record_call(
                &c,
                call,
                CallOutcome::Bridged,
                user,
                at,
                HungUpBy::Agent,
                now,
            );
        }
    }

    /// The overflow leg is over: after a bridge the customer is hung up;
    /// before one, they hear `unavailable`.
    fn overflow_ended(&mut self, call: CallId, outcome: Outcome, now: Instant) {
        let bridged = match self.customers.get(&call).map(|c| &c.phase) {
            Some(Phase::Overflow { bridged, .. }) => *bridged,
            _ => return,
        };
        match bridged {
            Some(at) if outcome != Outcome::Withdrawn => {
                let Some(c) = self.customers.remove(&call) else {
                    return;
                };
                self.actions.push_back(Action::HangUpCustomer { call });
                let by = HungUpBy::Agent;
                let outcome = CallOutcome::Transferred;
                self.record_call(&c, call, outcome, None, Some(at), by, now);
            }
            Some(_) => {}
            None => {
                tracing::info!(%call, "queue: the overflow number was not reached");
                self.unavailable(call, now);
            }
        }
    }

    /// Ends the customer's current attempt short of a bridge (the leg
    /// machine has stopped the leg): record, count the miss, and put the customer back in line (at their
    /// original place) or to the overflow once max_wait has passed.
    fn end_attempt(&mut self, call: CallId, ending: Ending, miss: Option<MissKind>, now: Instant) {
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        let Phase::Offering(a) = std::mem::replace(&mut c.phase, Phase::Waiting) else {
            return;
        };
        let (max_no_answer, past_max_wait) = match self.queues.get(c.queue) {
            Some(q) => (
                q.settings.max_no_answer,
                c.arrived + q.settings.max_wait <= now,
            ),
            None => (0, true),
        };
        self.record_attempt(call, &a, now, ending);
        match miss {
            Some(kind) => match self.board.missed(&a.user, kind, max_no_answer) {
                Ok(MissVerdict::NotResponding { misses }) => {
                    tracing::info!(user = %a.user, misses, "queue: agent not responding after missed calls");
                    if self.lines.contains_key(&a.user) {
                        self.line_not_responding.insert(a.user.clone());
                    }
                    self.actions.push_back(Action::SetAgentOffline {
                        user: a.user.clone(),
                        reason: OfflineReason::MaxNoAnswer { misses },
                    });
                    self.agents_left = true;
                }
                Ok(MissVerdict::KeepOnline) => {}
                Err(e) => tracing::warn!(%e, "queue: agent board out of step"),
            },
            None => board_in_step(self.board.withdraw(&a.user)),
        }
        if past_max_wait {
            self.overflow(call, now);
        }
    }

    /// The bridged call is over: the agent wraps up, the attempt is recorded.
    pub(super) fn end_bridged(
        &mut self,
        call: CallId,
        c: &Customer,
        a: &Attempt,
        accept_latency: Option<Duration>,
        by: HungUpBy,
        now: Instant,
    ) {
        let wrap_up = self
            .queues
            .get(c.queue)
            .map_or(Duration::ZERO, |q| q.settings.wrap_up);
        board_in_step(self.board.call_ended(&a.user, now, wrap_up));
        let ending = Ending {
            by: Some(by),
            accept_latency,
            ..Ending::new(SipOutcome::Answered, AttemptEnd::Completed)
        };
        self.record_attempt(call, a, now, ending);
    }

    pub(super) fn record_attempt(&mut self, call: CallId, a: &Attempt, now: Instant, e: Ending) {
        let rang_until = a.answered.unwrap_or(now);
        self.actions.push_back(Action::RecordAttempt(AttemptReport {
            call,
            attempt: a.id,
            user: a.user.clone(),
            started: a.started,
            ring: rang_until.saturating_duration_since(a.started),
            sip_outcome: e.sip,
            sip_status: e.status,
            accept_latency: e.accept_latency,
            end: e.end,
            hung_up_by: e.by,
        }));
    }
}
