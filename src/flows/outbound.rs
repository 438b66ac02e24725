//! One outbound leg through the trunk, as a sans-IO state machine: the
//! agent legs and the overflow leg of a queue and the notification call all
//! follow these rules, so they are written (and tested) once.
//!
//! The life of a leg:
//! 1. **Ringing** until a 2xx, a final failure, or `ring_timeout`; then
//!    CANCEL (RFC 3261 §9.1). 18x responses, including a 183 with SDP
//!    (early media, RFC 3261 §13.2.1 / RFC 3960), never count as an
//!    answer: what a carrier plays before the answer is not the agent.
//! 2. **Cancelling**: the CANCEL and the callee's 200 can cross. A 2xx
//!    that arrives now has been ACKed by the SIP core (a 2xx is always
//!    ACKed, §13.2.2.4) and must be ended with a BYE (§15), or the
//!    callee's phone stays off-hook with nobody there.
//! 3. **Waiting for media**: a real phone sends RTP (speech or silence)
//!    once it has answered. A 2xx whose SDP never arrives (none in the
//!    2xx, no re-INVITE/UPDATE bringing one) or whose RTP does not start
//!    within `media_grace` is a dead answer (voicemail box, broken phone):
//!    hung up and reported, in every accept mode.
//! 4. **Extension digits** (optional): after `ext_pause`, sent as DTMF;
//!    the shell reports when they are out (`ext_send_guard` bounds a stuck
//!    sender).
//! 5. **Accept**: bridge at once (`Accept::OnAnswer`), or play the whisper
//!    and wait `accept_timeout` for the key (replayed `whisper_replays`
//!    times first).
//! 6. **Connected** until either side hangs up.
//!
//! Every leg ends with exactly one [`Outcome`] for its owner, and the
//! owner can [`Event::Withdraw`] the leg at any point (the customer left).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::Accept;
use crate::flows::prompt_plan::PromptName;
use crate::sip::api::DialOutcome;

/// How long a leg that was cancelled or hung up may take to confirm that
/// it ended before the machine stops waiting: 64·T1, the lifetime of an
/// INVITE client transaction (RFC 3261 §17.1.1.2).
pub const SIP_CLOSE_GUARD: Duration = Duration::from_secs(32);

/// From a 2xx to the first RTP packet, by default: a phone sends RTP
/// (speech or comfort noise) within milliseconds of answering; 5 s leaves
/// room for a slow re-INVITE bringing the SDP a 2xx lacked.
pub const DEFAULT_MEDIA_GRACE: Duration = Duration::from_secs(5);

/// The rules one leg is placed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegRules {
    pub ring_timeout: Duration,
    /// From the 2xx to the first RTP packet (SDP included) at most.
    pub media_grace: Duration,
    /// DTMF sent once the line is up (a PBX extension); empty = none.
    pub ext: String,
    /// Wait after the answer before the extension digits.
    pub ext_pause: Duration,
    /// How long, beyond `ext_pause`, the shell may take to report the
    /// digits sent.
    pub ext_send_guard: Duration,
    pub accept: Accept,
    /// Played before waiting for the accept key; None = wait silently.
    pub whisper: Option<PromptName>,
    /// Silence allowed after the whisper before the leg is not accepted.
    pub accept_timeout: Duration,
    /// How many more times the whisper plays when nobody pressed the key.
    pub whisper_replays: u8,
    /// Played before the whisper, each time it plays: the tone that
    /// announces a customer on a nailed-up line. None on a dialled leg.
    pub announce: Option<PromptName>,
}

impl LegRules {
    /// A leg that is connected as soon as its media runs (an overflow
    /// number, a notification call).
    pub fn on_answer(ring_timeout: Duration, media_grace: Duration) -> Self {
        LegRules {
            ring_timeout,
            media_grace,
            ext: String::new(),
            ext_pause: Duration::ZERO,
            ext_send_guard: Duration::ZERO,
            accept: Accept::OnAnswer,
            whisper: None,
            accept_timeout: Duration::ZERO,
            whisper_replays: 0,
            announce: None,
        }
    }

    /// What plays before the key is awaited: the announcement, then the
    /// whisper.
    fn announcement(&self) -> Vec<PromptName> {
        self.announce
            .iter()
            .chain(self.whisper.iter())
            .cloned()
            .collect()
    }
}

/// What the shell tells a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Every trunk is busy (max_calls, max_cps, Retry-After): the INVITE
    /// waits for one. Waiting is not ringing: it ends as a trunk failure,
    /// never as the callee's miss.
    Queued,
    /// An INVITE went out (the first, or the one to the next trunk after a
    /// trunk failed): the ring time starts again from here.
    Dialled,
    /// A provisional response; `early_media` when it carried SDP (183).
    Progress { status: u16, early_media: bool },
    /// 2xx, ACKed by the SIP core; `media` when its SDP was usable and the
    /// media session is open.
    Answered { media: bool },
    /// A re-INVITE/UPDATE brought the SDP a 2xx lacked; media is open.
    MediaReady,
    /// Media could not be opened for the answered leg (no usable SDP, no
    /// port, engine refused).
    MediaFailed,
    /// The first RTP packet from the callee.
    RtpStarted,
    /// The callee's RTP stopped for longer than `media.rtp_timeout`.
    RtpTimeout,
    /// The extension digits of [`Action::SendExt`] are all sent.
    ExtSent,
    /// The whisper of [`Action::Play`] finished.
    PlaybackFinished,
    /// A key pressed on the leg (RFC 4733, INFO or in-band).
    Digit(char),
    /// A final non-2xx response (or a transport failure) ended the attempt.
    Failed(DialOutcome),
    /// The dialog ended (BYE from the callee, or the answer to ours).
    Ended,
    /// The owner gives the leg up (the customer left, shutdown).
    Withdraw,
    /// [`OutboundLeg::deadline`] passed.
    Timer,
}

/// What a leg asks of the shell, and what it reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send CANCEL for the unanswered INVITE.
    Cancel,
    /// Send BYE on the answered leg.
    HangUp,
    /// Wait `pause`, then send `digits` as DTMF; report [`Event::ExtSent`].
    SendExt { digits: String, pause: Duration },
    /// Play to the callee; report [`Event::PlaybackFinished`].
    Play(Vec<PromptName>),
    /// Report: the callee answered (2xx); ring time ends here.
    Answered,
    /// Report: the callee is on the line and accepted; bridge now.
    Connected,
    /// Report: how the leg ended. Exactly once per leg.
    Finished(Outcome),
}

/// How a leg ended, typed so owners decide on causes, not status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 486/600: the line is busy (not a miss).
    Busy(u16),
    /// 603: declined.
    Declined(u16),
    /// 480, 404, 408: not reachable or not answered (a miss).
    NoAnswer(u16),
    /// Ringing longer than `ring_timeout`: we cancelled (a miss).
    RingTimeout,
    /// 5xx, 408 before ringing, no trunk free in time, or another failure
    /// of the trunks (not the callee's miss). A trunk failure moves the
    /// leg to the next trunk in the SIP core; this is what is left when
    /// every trunk failed.
    TrunkFailed(u16),
    /// Answered, but no media within `media_grace`: a dead answer.
    DeadAnswer,
    /// The extension digits were never reported sent.
    ExtNotSent,
    /// Answered, never pressed the accept key.
    NotAccepted,
    /// Answered and hung up before accepting.
    HungUpBeforeAccept,
    /// Connected, then the callee hung up (or its media stopped).
    CalleeHungUp,
    /// The owner withdrew the leg (answered or not: see
    /// [`OutboundLeg::answered_at`]).
    Withdrawn,
}

impl Outcome {
    /// The SIP status that ended the leg, when one did.
    pub fn status(self) -> Option<u16> {
        match self {
            Outcome::Busy(s)
            | Outcome::Declined(s)
            | Outcome::NoAnswer(s)
            | Outcome::TrunkFailed(s) => Some(s),
            _ => None,
        }
    }

    fn from_dial(outcome: DialOutcome) -> Self {
        match outcome {
            DialOutcome::Busy(s) => Outcome::Busy(s),
            DialOutcome::Rejected(s) => Outcome::Declined(s),
            DialOutcome::NoAnswer(s) => Outcome::NoAnswer(s),
            DialOutcome::Unavailable(s) | DialOutcome::Failed(s) => Outcome::TrunkFailed(s),
            // A 487 we did not ask for: the carrier gave up on the leg.
            DialOutcome::Cancelled => Outcome::TrunkFailed(487),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Waiting for a trunk; given up (a trunk failure) at `until`.
    Queued {
        until: Instant,
    },
    Ringing {
        until: Instant,
    },
    /// CANCEL sent; a crossing 2xx gets a BYE.
    Cancelling {
        until: Instant,
    },
    /// Answered; waiting for the first RTP packet.
    AwaitingMedia {
        until: Instant,
    },
    SendingExt {
        until: Instant,
    },
    /// The whisper plays (`until` None) or the key is awaited.
    Whisper {
        until: Option<Instant>,
        replays_left: u8,
    },
    Connected,
    /// BYE sent; waiting for the dialog to end.
    HangingUp {
        until: Instant,
    },
    Done,
}

/// One outbound leg. Create it when the INVITE is sent.
#[derive(Debug)]
pub struct OutboundLeg {
    rules: LegRules,
    stage: Stage,
    started: Instant,
    answered: Option<Instant>,
    connected: Option<Instant>,
    early_media: bool,
    finished: bool,
    actions: VecDeque<Action>,
}

impl OutboundLeg {
    pub fn new(rules: LegRules, now: Instant) -> Self {
        let until = now + rules.ring_timeout;
        OutboundLeg {
            rules,
            stage: Stage::Ringing { until },
            started: now,
            answered: None,
            connected: None,
            early_media: false,
            finished: false,
            actions: VecDeque::new(),
        }
    }

    /// An offer on a line that is already connected (a nailed-up agent's
    /// log-in call): no ringing, no media wait and no extension digits;
    /// the announcement plays at once and the accept rules follow. With
    /// `Accept::OnAnswer` the leg connects when the announcement ends, so
    /// the agent always hears a customer coming.
    pub fn on_line(rules: LegRules, now: Instant) -> Self {
        let mut leg = OutboundLeg {
            rules,
            stage: Stage::Done,
            started: now,
            answered: Some(now),
            connected: None,
            early_media: false,
            finished: false,
            actions: VecDeque::from([Action::Answered]),
        };
        let clips = leg.rules.announcement();
        if clips.is_empty() {
            leg.accept_stage(now);
        } else {
            leg.stage = Stage::Whisper {
                until: None,
                replays_left: leg.rules.whisper_replays,
            };
            leg.actions.push_back(Action::Play(clips));
        }
        leg
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the 2xx arrived, if it did (a 2xx crossing our CANCEL does not
    /// count: the leg was given up before).
    pub fn answered_at(&self) -> Option<Instant> {
        self.answered
    }

    /// When the leg was accepted (bridged), if it was.
    pub fn connected_at(&self) -> Option<Instant> {
        self.connected
    }

    /// A 183 with SDP was seen while ringing.
    pub fn had_early_media(&self) -> bool {
        self.early_media
    }

    /// True while the callee is connected (the owner's bridge stands).
    pub fn is_connected(&self) -> bool {
        self.stage == Stage::Connected
    }

    /// The leg has reported its outcome and the SIP side is over (or was
    /// given up after [`SIP_CLOSE_GUARD`]): the owner may forget it.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Queued { until }
            | Stage::Ringing { until }
            | Stage::Cancelling { until }
            | Stage::AwaitingMedia { until }
            | Stage::SendingExt { until }
            | Stage::HangingUp { until } => Some(until),
            Stage::Whisper { until, .. } => until,
            Stage::Connected | Stage::Done => None,
        }
    }

    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Queued => {
                if let Stage::Ringing { until } = self.stage {
                    // At most a ring time of waiting, as the caller's
                    // patience was planned for.
                    self.stage = Stage::Queued { until };
                }
            }
            Event::Dialled => {
                if matches!(self.stage, Stage::Queued { .. } | Stage::Ringing { .. }) {
                    // The callee's phone rings from this INVITE on: a
                    // queued or failed-over leg gets its whole ring time.
                    self.stage = Stage::Ringing {
                        until: now + self.rules.ring_timeout,
                    };
                }
            }
            Event::Progress { early_media, .. } => {
                if matches!(self.stage, Stage::Ringing { .. }) && early_media {
                    // Kept for the record only: early media is never
                    // bridged and never stops the ring timer.
                    self.early_media = true;
                }
            }
            Event::Answered { .. } => self.on_answered(now),
            // Media opened after the 2xx; the RTP still decides.
            Event::MediaReady => {}
            Event::MediaFailed => {
                if matches!(self.stage, Stage::AwaitingMedia { .. }) {
                    self.hang_up(Outcome::DeadAnswer, now);
                }
            }
            Event::RtpStarted => {
                if matches!(self.stage, Stage::AwaitingMedia { .. }) {
                    self.media_up(now);
                }
            }
            Event::RtpTimeout => match self.stage {
                Stage::Connected => self.hang_up(Outcome::CalleeHungUp, now),
                Stage::SendingExt { .. } | Stage::Whisper { .. } => {
                    self.hang_up(Outcome::HungUpBeforeAccept, now)
                }
                _ => {}
            },
            Event::ExtSent => {
                if matches!(self.stage, Stage::SendingExt { .. }) {
                    self.accept_stage(now);
                }
            }
            Event::PlaybackFinished => {
                if let Stage::Whisper {
                    until: until @ None,
                    ..
                } = &mut self.stage
                {
                    if self.rules.accept == Accept::OnAnswer {
                        // Only an announced line gets here: connect once
                        // the agent has heard it.
                        self.connect(now);
                        return;
                    }
                    // Silence is counted only once the whisper was heard.
                    *until = Some(now + self.rules.accept_timeout);
                }
            }
            Event::Digit(d) => {
                let key = match self.rules.accept {
                    Accept::Digit(k) => k,
                    Accept::OnAnswer => return,
                };
                // Only the accept key takes the call; other keys, and keys
                // while our own extension digits go out, change nothing.
                if matches!(self.stage, Stage::Whisper { .. }) && d.eq_ignore_ascii_case(&key) {
                    self.connect(now);
                }
            }
            Event::Failed(outcome) => self.on_failed(outcome),
            Event::Ended => self.on_ended(),
            Event::Withdraw => self.withdraw(now),
            Event::Timer => self.on_timer(now),
        }
    }

    fn on_answered(&mut self, now: Instant) {
        match self.stage {
            Stage::Queued { .. } | Stage::Ringing { .. } => {
                self.answered = Some(now);
                self.actions.push_back(Action::Answered);
                self.stage = Stage::AwaitingMedia {
                    until: now + self.rules.media_grace,
                };
            }
            // The 200 crossed our CANCEL (§9.1): the core ACKed it; end
            // the dialog it made with a BYE (§15).
            Stage::Cancelling { .. } => {
                self.actions.push_back(Action::HangUp);
                self.stage = Stage::HangingUp {
                    until: now + SIP_CLOSE_GUARD,
                };
            }
            // A retransmitted 2xx, or one after we gave up: nothing new.
            _ => {}
        }
    }

    fn on_failed(&mut self, outcome: DialOutcome) {
        match self.stage {
            Stage::Queued { .. } | Stage::Ringing { .. } => {
                self.stage = Stage::Done;
                self.finish(Outcome::from_dial(outcome));
            }
            // The 487 to our CANCEL (or any final answer): over.
            Stage::Cancelling { .. } | Stage::HangingUp { .. } => self.stage = Stage::Done,
            // After a 2xx there is a dialog: only `Ended` ends it.
            _ => {}
        }
    }

    fn on_ended(&mut self) {
        let outcome = match self.stage {
            Stage::Queued { .. } | Stage::Ringing { .. } => Some(Outcome::TrunkFailed(0)),
            Stage::AwaitingMedia { .. } => Some(Outcome::DeadAnswer),
            Stage::SendingExt { .. } | Stage::Whisper { .. } => Some(Outcome::HungUpBeforeAccept),
            Stage::Connected => Some(Outcome::CalleeHungUp),
            Stage::Cancelling { .. } | Stage::HangingUp { .. } | Stage::Done => None,
        };
        self.stage = Stage::Done;
        if let Some(o) = outcome {
            self.finish(o);
        }
    }

    fn withdraw(&mut self, now: Instant) {
        match self.stage {
            Stage::Queued { .. } | Stage::Ringing { .. } => {
                self.cancel(now);
                self.finish(Outcome::Withdrawn);
            }
            Stage::AwaitingMedia { .. }
            | Stage::SendingExt { .. }
            | Stage::Whisper { .. }
            | Stage::Connected => self.hang_up(Outcome::Withdrawn, now),
            Stage::Cancelling { .. } | Stage::HangingUp { .. } | Stage::Done => {}
        }
    }

    fn on_timer(&mut self, now: Instant) {
        if self.deadline().is_none_or(|d| d > now) {
            return;
        }
        match &mut self.stage {
            // No trunk took the INVITE in time: the trunks' failure (503,
            // "service unavailable"), not the callee's.
            Stage::Queued { .. } => {
                self.cancel(now);
                self.finish(Outcome::TrunkFailed(503));
            }
            Stage::Ringing { .. } => {
                self.cancel(now);
                self.finish(Outcome::RingTimeout);
            }
            Stage::AwaitingMedia { .. } => self.hang_up(Outcome::DeadAnswer, now),
            Stage::SendingExt { .. } => self.hang_up(Outcome::ExtNotSent, now),
            Stage::Whisper {
                until,
                replays_left,
            } if *replays_left > 0 => {
                // One more chance: the callee may not have caught it.
                *replays_left -= 1;
                *until = None;
                let clips = self.rules.announcement();
                self.actions.push_back(Action::Play(clips));
            }
            Stage::Whisper { .. } => self.hang_up(Outcome::NotAccepted, now),
            // Nothing came back from the far end: stop waiting.
            Stage::Cancelling { .. } | Stage::HangingUp { .. } => self.stage = Stage::Done,
            Stage::Connected | Stage::Done => {}
        }
    }

    fn media_up(&mut self, now: Instant) {
        if self.rules.ext.is_empty() {
            self.accept_stage(now);
            return;
        }
        let pause = self.rules.ext_pause;
        self.stage = Stage::SendingExt {
            until: now + pause + self.rules.ext_send_guard,
        };
        self.actions.push_back(Action::SendExt {
            digits: self.rules.ext.clone(),
            pause,
        });
    }

    fn accept_stage(&mut self, now: Instant) {
        if self.rules.accept == Accept::OnAnswer {
            self.connect(now);
            return;
        }
        let clips = self.rules.announcement();
        match clips.is_empty() {
            false => {
                self.stage = Stage::Whisper {
                    until: None,
                    replays_left: self.rules.whisper_replays,
                };
                self.actions.push_back(Action::Play(clips));
            }
            true => {
                self.stage = Stage::Whisper {
                    until: Some(now + self.rules.accept_timeout),
                    replays_left: 0,
                };
            }
        }
    }

    fn connect(&mut self, now: Instant) {
        self.stage = Stage::Connected;
        self.connected = Some(now);
        self.actions.push_back(Action::Connected);
    }

    fn cancel(&mut self, now: Instant) {
        self.actions.push_back(Action::Cancel);
        self.stage = Stage::Cancelling {
            until: now + SIP_CLOSE_GUARD,
        };
    }

    fn hang_up(&mut self, outcome: Outcome, now: Instant) {
        self.actions.push_back(Action::HangUp);
        self.stage = Stage::HangingUp {
            until: now + SIP_CLOSE_GUARD,
        };
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        if !std::mem::replace(&mut self.finished, true) {
            self.actions.push_back(Action::Finished(outcome));
        }
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
