//! One attempt to reach an agent: ringing, extension digits, whisper and
//! accept key, bridge, and every way it can end.
//!
//! Events name the attempt they are about; one that is not the customer's
//! current attempt is stale (a leg we already cancelled or hung up) and
//! changes nothing, except a late answer, whose leg must still be hung up.

use std::time::{Duration, Instant};

use super::{
    board_in_step, Action, Attempt, AttemptEnd, AttemptId, AttemptReport, CallId, CallOutcome,
    Customer, DialOutcome, HungUpBy, OfflineReason, Phase, QueueEngine, SipOutcome, Stage,
};
use crate::config::Accept;
use crate::flows::prompt_plan::PromptName;
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

impl Attempt {
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Ringing { until } | Stage::SendingExt { until } => Some(until),
            Stage::Whisper { until, .. } => until,
        }
    }
}

/// What a failed dial means: recorded outcome, cause, and the miss it counts.
fn classify(outcome: DialOutcome) -> (Ending, Option<MissKind>) {
    let (sip, end, miss, status) = match outcome {
        DialOutcome::Busy(s) => (SipOutcome::Busy, AttemptEnd::Busy, MissKind::Busy, Some(s)),
        DialOutcome::Rejected(s) => (
            SipOutcome::Rejected,
            AttemptEnd::Declined,
            MissKind::Rejected,
            Some(s),
        ),
        DialOutcome::NoAnswer(s) => (
            SipOutcome::NoAnswer,
            AttemptEnd::NoAnswer,
            MissKind::NoAnswer,
            Some(s),
        ),
        // The trunk, not the agent, failed: try someone else, count nothing.
        DialOutcome::Unavailable(s) | DialOutcome::Failed(s) => {
            let e = Ending {
                status: Some(s),
                ..Ending::new(SipOutcome::Failed, AttemptEnd::TrunkFailed)
            };
            return (e, None);
        }
        DialOutcome::Cancelled => {
            let e = Ending {
                status: Some(487),
                ..Ending::new(SipOutcome::Failed, AttemptEnd::TrunkFailed)
            };
            return (e, None);
        }
    };
    (
        Ending {
            status,
            ..Ending::new(sip, end)
        },
        Some(miss),
    )
}

impl QueueEngine {
    /// The customer's current attempt, when `attempt` is it.
    fn current(&mut self, call: CallId, attempt: AttemptId) -> Option<&mut Attempt> {
        match self.customers.get_mut(&call).map(|c| &mut c.phase) {
            Some(Phase::Offering(a)) if a.id == attempt => Some(a),
            _ => None,
        }
    }

    pub(super) fn on_answered(&mut self, call: CallId, attempt: AttemptId, now: Instant) {
        let ext = match self.current(call, attempt) {
            Some(a) if matches!(a.stage, Stage::Ringing { .. }) => {
                a.answered = Some(now);
                let user = a.user.clone();
                self.board
                    .profile(&user)
                    .map(|p| p.ext.clone())
                    .unwrap_or_default()
            }
            Some(_) => return, // a repeated 2xx
            None => {
                // The 200 crossed our CANCEL, or the customer left: the
                // agent's phone is now off-hook with nobody there.
                if attempt.0 < self.next_attempt {
                    self.actions
                        .push_back(Action::HangUpAgent { call, attempt });
                }
                return;
            }
        };
        let Some(q) = self.queue_of(call) else {
            return;
        };
        if ext.is_empty() {
            self.after_answer(call, attempt, now);
            return;
        }
        let (pause, guard) = (q.ext_pause, self.settings.ext_send_guard);
        if let Some(a) = self.current(call, attempt) {
            a.stage = Stage::SendingExt {
                until: now + pause + guard,
            };
        }
        self.actions.push_back(Action::SendExt {
            call,
            attempt,
            digits: ext,
            pause,
        });
    }

    pub(super) fn on_ext_sent(&mut self, call: CallId, attempt: AttemptId, now: Instant) {
        if matches!(
            self.current(call, attempt).map(|a| &a.stage),
            Some(Stage::SendingExt { .. })
        ) {
            self.after_answer(call, attempt, now);
        }
    }

    /// The agent is on the line (extension reached): bridge at once, or
    /// whisper and wait for the accept key.
    fn after_answer(&mut self, call: CallId, attempt: AttemptId, now: Instant) {
        let Some(q) = self.queue_of(call) else {
            return;
        };
        if q.accept == Accept::OnAnswer {
            self.bridge(call, attempt, now);
            return;
        }
        let (whisper, timeout) = (q.prompts.whisper.clone(), q.accept_timeout);
        let Some(a) = self.current(call, attempt) else {
            return;
        };
        match whisper {
            Some(clip) => {
                // Silence is counted only once the whisper has been heard.
                a.stage = Stage::Whisper {
                    until: None,
                    replays_left: 1,
                };
                self.actions.push_back(Action::PlayAgent {
                    call,
                    attempt,
                    clips: vec![clip],
                });
            }
            None => {
                a.stage = Stage::Whisper {
                    until: Some(now + timeout),
                    replays_left: 0,
                };
            }
        }
    }

    pub(super) fn on_whisper_done(&mut self, call: CallId, attempt: AttemptId, now: Instant) {
        let Some(timeout) = self.queue_of(call).map(|q| q.accept_timeout) else {
            return;
        };
        if let Some(a) = self.current(call, attempt) {
            if let Stage::Whisper {
                until: until @ None,
                ..
            } = &mut a.stage
            {
                *until = Some(now + timeout);
            }
        }
    }

    pub(super) fn on_digit(&mut self, call: CallId, attempt: AttemptId, digit: char, now: Instant) {
        let Some(Accept::Digit(key)) = self.queue_of(call).map(|q| q.accept) else {
            return;
        };
        let whispering = matches!(
            self.current(call, attempt).map(|a| &a.stage),
            Some(Stage::Whisper { .. })
        );
        // Only the accept key takes the call; other keys (and keys while
        // our own extension digits are sent) are ignored.
        if whispering && digit.eq_ignore_ascii_case(&key) {
            self.bridge(call, attempt, now);
        }
    }

    fn bridge(&mut self, call: CallId, attempt: AttemptId, now: Instant) {
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        let phase = std::mem::replace(&mut c.phase, Phase::Waiting);
        let a = match phase {
            Phase::Offering(a) if a.id == attempt => a,
            other => {
                c.phase = other;
                return;
            }
        };
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
        self.actions.push_back(Action::Bridge { call, attempt });
    }

    pub(super) fn on_failed(
        &mut self,
        call: CallId,
        attempt: AttemptId,
        outcome: DialOutcome,
        now: Instant,
    ) {
        if self.current(call, attempt).is_none() {
            return; // the CANCEL we sent, or a leg already given up
        }
        let (ending, miss) = classify(outcome);
        self.end_attempt(call, ending, miss, None, now);
    }

    pub(super) fn on_media_timeout(&mut self, call: CallId, attempt: AttemptId, now: Instant) {
        let answered = self
            .current(call, attempt)
            .is_some_and(|a| a.answered.is_some());
        if !answered {
            return;
        }
        // A dead answer (voicemail box, broken phone) is counted like no
        // answer, so a phone that always does it is soon taken offline
        // instead of costing every caller a ring cycle.
        let ending = Ending::new(SipOutcome::Failed, AttemptEnd::NoMedia);
        let stop = Action::HangUpAgent { call, attempt };
        self.end_attempt(call, ending, Some(MissKind::NoAnswer), Some(stop), now);
    }

    pub(super) fn on_agent_hung_up(&mut self, call: CallId, attempt: AttemptId, now: Instant) {
        let (offering, bridged) = match self.customers.get(&call).map(|c| &c.phase) {
            Some(Phase::Offering(a)) => (a.id == attempt, false),
            Some(Phase::Bridged { attempt: a, .. }) => (false, a.id == attempt),
            _ => (false, false),
        };
        if offering {
            // Hanging up instead of pressing the key is a decline.
            let ending = Ending {
                by: Some(HungUpBy::Agent),
                ..Ending::new(SipOutcome::Rejected, AttemptEnd::AgentHungUp)
            };
            self.end_attempt(call, ending, Some(MissKind::Rejected), None, now);
            return;
        }
        if !bridged {
            return;
        }
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

    /// A ring, extension or accept timeout of the customer's attempt.
    pub(super) fn on_attempt_deadline(&mut self, call: CallId, now: Instant) {
        enum Due {
            RingTimeout,
            ExtNotSent,
            Replay(Option<PromptName>),
            NotAccepted,
        }
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        let whisper = self
            .queues
            .get(c.queue)
            .and_then(|q| q.settings.prompts.whisper.clone());
        let Phase::Offering(a) = &mut c.phase else {
            return;
        };
        let attempt = a.id;
        let due = match &mut a.stage {
            Stage::Ringing { .. } => Due::RingTimeout,
            Stage::SendingExt { .. } => Due::ExtNotSent,
            Stage::Whisper {
                until,
                replays_left,
            } if *replays_left > 0 => {
                // One more chance: the agent may not have caught the whisper.
                *replays_left -= 1;
                *until = None;
                Due::Replay(whisper)
            }
            Stage::Whisper { .. } => Due::NotAccepted,
        };
        let hang_up = Action::HangUpAgent { call, attempt };
        match due {
            Due::RingTimeout => {
                let ending = Ending::new(SipOutcome::NoAnswer, AttemptEnd::RingTimeout);
                let stop = Action::CancelAgent { call, attempt };
                self.end_attempt(call, ending, Some(MissKind::NoAnswer), Some(stop), now);
            }
            Due::ExtNotSent => {
                let ending = Ending::new(SipOutcome::Failed, AttemptEnd::ExtNotSent);
                self.end_attempt(call, ending, None, Some(hang_up), now);
            }
            Due::Replay(clip) => self.actions.push_back(Action::PlayAgent {
                call,
                attempt,
                clips: clip.into_iter().collect(),
            }),
            Due::NotAccepted => {
                // "Answered and did not accept" is recorded as rejected.
                let ending = Ending::new(SipOutcome::Rejected, AttemptEnd::NotAccepted);
                let miss = Some(MissKind::NotAccepted);
                self.end_attempt(call, ending, miss, Some(hang_up), now);
            }
        }
    }

    /// Ends the customer's current attempt short of a bridge: stop the leg,
    /// record, count the miss, and put the customer back in line (at their
    /// original place) or to the overflow once max_wait has passed.
    fn end_attempt(
        &mut self,
        call: CallId,
        mut ending: Ending,
        miss: Option<MissKind>,
        stop: Option<Action>,
        now: Instant,
    ) {
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
        if let Some(stop) = stop {
            ending.by.get_or_insert(HungUpBy::Switch);
            self.actions.push_back(stop);
        }
        self.record_attempt(call, &a, now, ending);
        match miss {
            Some(kind) => match self.board.missed(&a.user, kind, max_no_answer) {
                Ok(MissVerdict::SetOffline) => {
                    tracing::info!(user = %a.user, "queue: agent set offline after missed calls");
                    self.actions.push_back(Action::SetAgentOffline {
                        user: a.user.clone(),
                        reason: OfflineReason::MaxNoAnswer,
                    });
                    if self.settings.notify_on_forced_offline {
                        self.actions.push_back(Action::NotifyAgent { user: a.user });
                    }
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
