//! The queue engine's vocabulary: what the shell tells it ([`Event`]), what
//! it asks the shell to do ([`Action`]), and the records it leaves for the
//! store.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{CallId, HungUpBy, SipOutcome};
use crate::config::E164;
pub use crate::flows::outbound::Event as LegEvent;
use crate::flows::prompt_plan::PromptName;

/// One attempt to reach an agent for a call (one outbound leg). Unique for
/// the engine's life, so events from an abandoned attempt are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u64);

/// A queue of this engine, from `QueueEngine::queue_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueId(pub(super) usize);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A customer reached a queue flow (not yet answered).
    CustomerArrived {
        call: CallId,
        queue: QueueId,
    },
    CustomerHungUp {
        call: CallId,
    },
    /// The switch is shutting down: every call ends now, recorded as ended
    /// by the switch, and every leg is hung up.
    Shutdown,
    /// Something happened on an outbound leg (an agent's or the overflow
    /// number's); the engine's leg machine decides what it means.
    Leg {
        call: CallId,
        attempt: AttemptId,
        event: LegEvent,
    },
    AgentOnline {
        user: String,
        until: DateTime<Utc>,
    },
    AgentOffline {
        user: String,
    },
    /// The agent's online window reached its end.
    WindowEnded {
        user: String,
    },
    /// The store granted this node's claim on the attempt's agent
    /// ([`Action::ClaimAgent`]): dial them now. `misses` is the agent's
    /// shared count of consecutive misses, when the store keeps one.
    ClaimGranted {
        attempt: AttemptId,
        misses: Option<u32>,
    },
    /// Another node holds the attempt's agent until `until` (at the
    /// latest, unless it renews): the customer goes back to waiting and
    /// is offered someone else; the agent is held elsewhere here.
    ClaimRefused {
        attempt: AttemptId,
        until: Instant,
    },
    /// Another node let the agent go: they may be offered here again.
    AgentFreedElsewhere {
        user: String,
    },
    /// A nailed-up agent's line (their log-in call, kept connected) is
    /// here and free; `until` is the window it was confirmed with, `tone`
    /// what announces a customer on it (issue 14).
    LineUp {
        user: String,
        until: DateTime<Utc>,
        tone: PromptName,
    },
    /// The agent ended their nailed-up line (hung up, or its media
    /// stopped): an offer on it is withdrawn without counting a miss, a
    /// customer bridged to it is hung up. The shell ends their window.
    LineDown {
        user: String,
    },
    /// The deadline passed.
    Timer,
    /// A reload: the queues' settings by flow name and every configured
    /// agent's profile. Changed queues take their new rules from the next
    /// offer on, new ones are added, one no longer configured keeps its
    /// waiting callers (no mapping sends it new ones). New agents join
    /// offline; a known agent's skills and extension change keeping their
    /// state; an agent no longer configured goes offline as at a log-out.
    Reconfigure {
        queues: Vec<super::QueueSettings>,
        agents: Vec<crate::routing::AgentProfile>,
    },
}

/// Why the engine took an agent offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineReason {
    /// `max_no_answer` consecutive missed offers (`misses` of them): the
    /// agent is set *not responding*, not merely offline (issue 14).
    MaxNoAnswer { misses: u32 },
}

impl OfflineReason {
    /// The history's reason, as `tpswitch history` and the API show it.
    pub fn describe(self) -> String {
        match self {
            OfflineReason::MaxNoAnswer { misses } => {
                let offers = if misses == 1 { "offer" } else { "offers" };
                format!("missed {misses} {offers} in a row (max_no_answer)")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play `once`, then loop `looped` until the next play, bridge or hang-up.
    PlayCustomer {
        call: CallId,
        once: Vec<PromptName>,
        looped: Vec<PromptName>,
    },
    /// Claim `user` in the shared store before ringing them (only with
    /// [`EngineSettings::claims`](super::EngineSettings)); answer with
    /// [`Event::ClaimGranted`] or [`Event::ClaimRefused`].
    ClaimAgent {
        call: CallId,
        attempt: AttemptId,
        user: String,
    },
    /// Call `user` (their first extension) through the trunk; report
    /// what happens as [`Event::Leg`] with `attempt`.
    DialAgent {
        call: CallId,
        attempt: AttemptId,
        user: String,
    },
    /// Call the queue's overflow number for the customer; report as
    /// [`Event::Leg`] with `attempt`, bridge on [`Action::Bridge`].
    DialOverflow {
        call: CallId,
        attempt: AttemptId,
        number: E164,
    },
    /// Offer the call on `user`'s nailed-up line: the attempt's
    /// `PlayAgent`, keys and `Bridge` are the line's (no INVITE).
    OfferOnLine {
        call: CallId,
        attempt: AttemptId,
        user: String,
    },
    /// The line is free again (the offer ended, the customer left): end
    /// any bridge on it and play its waiting sound.
    LineIdle {
        user: String,
    },
    /// The agent is offline (their window ended, they were set not
    /// responding, a supervisor ended it): say so on the line, then hang
    /// it up.
    HangUpLine {
        user: String,
        why: LineEnd,
    },
    /// Stop a ringing attempt (CANCEL, RFC 3261 §9.1).
    CancelAgent {
        call: CallId,
        attempt: AttemptId,
    },
    /// Wait `pause`, then send `digits` as DTMF on the agent's leg; report
    /// `LegEvent::ExtSent`.
    SendExt {
        call: CallId,
        attempt: AttemptId,
        digits: String,
        pause: Duration,
    },
    /// Play to the agent; report `LegEvent::PlaybackFinished`. Keys stay live.
    PlayAgent {
        call: CallId,
        attempt: AttemptId,
        clips: Vec<PromptName>,
    },
    /// Stop both playbacks and connect the customer and the agent (or the
    /// overflow number).
    Bridge {
        call: CallId,
        attempt: AttemptId,
    },
    /// End the agent's answered leg (BYE).
    HangUpAgent {
        call: CallId,
        attempt: AttemptId,
    },
    HangUpCustomer {
        call: CallId,
    },
    PlayOverflowAndHangUp {
        call: CallId,
        clips: Vec<PromptName>,
    },
    /// Close the agent's window and persist them as not responding
    /// (with `OfflineReason::MaxNoAnswer`).
    SetAgentOffline {
        user: String,
        reason: OfflineReason,
    },
    RecordAttempt(AttemptReport),
    RecordCall(CallReport),
}

/// Why a nailed-up line is hung up by the switch: which prompt says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// The window ended or was ended: `offline`.
    Offline,
    /// `max_no_answer` missed offers: `not_responding`.
    NotResponding,
}

/// How an attempt ended, for the `hangup_cause` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// Bridged, then one side hung up.
    Completed,
    RingTimeout,
    Busy,
    Declined,
    NoAnswer,
    /// 5xx or another failure from the trunk.
    TrunkFailed,
    /// Answered without media.
    NoMedia,
    /// Answered, never pressed the accept key.
    NotAccepted,
    /// Answered and hung up before accepting.
    AgentHungUp,
    /// The customer hung up before the agent accepted.
    CustomerHungUp,
    /// The extension digits were never reported sent.
    ExtNotSent,
    /// The switch shut down during the attempt.
    Shutdown,
}

impl AttemptEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptEnd::Completed => "completed",
            AttemptEnd::RingTimeout => "ring-timeout",
            AttemptEnd::Busy => "busy",
            AttemptEnd::Declined => "declined",
            AttemptEnd::NoAnswer => "no-answer",
            AttemptEnd::TrunkFailed => "trunk-failed",
            AttemptEnd::NoMedia => "no-media",
            AttemptEnd::NotAccepted => "not-accepted",
            AttemptEnd::AgentHungUp => "agent-hung-up",
            AttemptEnd::CustomerHungUp => "customer-hung-up",
            AttemptEnd::ExtNotSent => "ext-not-sent",
            AttemptEnd::Shutdown => "shutdown",
        }
    }
}

/// One finished attempt, for `NewAttempt` (the shell turns `Instant`s into
/// wall-clock times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    pub call: CallId,
    pub attempt: AttemptId,
    pub user: String,
    pub started: Instant,
    /// From the INVITE to the answer, final response or CANCEL.
    pub ring: Duration,
    pub sip_outcome: SipOutcome,
    pub sip_status: Option<u16>,
    /// From the answer to the accept key.
    pub accept_latency: Option<Duration>,
    pub end: AttemptEnd,
    pub hung_up_by: Option<HungUpBy>,
}

/// How a customer call left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Bridged,
    /// The customer hung up before being bridged.
    Abandoned,
    /// Played `unavailable` and hung up.
    Overflow,
    Transferred,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Bridged => "bridged",
            CallOutcome::Abandoned => "abandoned",
            CallOutcome::Overflow => "overflow",
            CallOutcome::Transferred => "transferred",
        }
    }
}

/// One finished customer call, for `CallUpdate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    pub call: CallId,
    pub queue: String,
    pub outcome: CallOutcome,
    /// The agent the call was bridged to.
    pub agent: Option<String>,
    pub arrived: Instant,
    pub bridged: Option<Instant>,
    pub ended: Instant,
    pub hung_up_by: HungUpBy,
}
