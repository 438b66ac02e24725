//! The typed boundary between `sip/` and the rest of the switch.
//!
//! Nothing outside `sip/` sees a SIP message: calls get [`SipEvent`]s and
//! give [`SipCommand`]s, keyed by [`LegId`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sdp::Negotiated;

/// One call leg (one dialog, or one attempt at one), unique for the life of
/// the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

static NEXT_LEG: AtomicU64 = AtomicU64::new(1);

impl LegId {
    pub fn next() -> Self {
        LegId(NEXT_LEG.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leg-{}", self.0)
    }
}

/// Who the caller says they are. Kept raw: normalisation to E.164 belongs
/// to the directory, which knows the numbering plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerInfo {
    /// User part (or tel: number) of P-Asserted-Identity (RFC 3325).
    pub asserted: Option<String>,
    /// User part of From.
    pub from_user: Option<String>,
    pub display_name: Option<String>,
    /// Withheld: `Privacy: id`, or From `anonymous@anonymous.invalid`
    /// (RFC 3323 §4.1.1.3).
    pub withheld: bool,
    /// The trunk the call came through: the one whose registered contact
    /// it was sent to, else the one whose `allow` holds its source. That
    /// trunk's rules, such as `trust_pai` and `srtp`, apply to it.
    pub trunk: String,
    /// The carrier's STIR/SHAKEN verification of the PAI entry `asserted`
    /// was read from, and of From (ATIS-1000074 `verstat`).
    pub asserted_verstat: Verstat,
    pub from_verstat: Verstat,
}

/// The result of the terminating carrier's check of the caller's RFC 8224
/// Identity header, as it passes it on: a `verstat` parameter of the
/// caller's tel URI, or of the user part of a SIP URI with `user=phone`
/// (ATIS-1000074 §5.3.1); some carriers write it after the host instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verstat {
    /// No `verstat`: the carrier verified nothing (or says nothing).
    #[default]
    Absent,
    /// `TN-Validation-Passed`: the number is attested.
    Passed,
    /// `TN-Validation-Failed`: the Identity header did not verify.
    Failed,
    /// `No-TN-Validation`: nothing to verify (no Identity header, or a
    /// number the signer did not vouch for).
    NoValidation,
    /// A value ATIS-1000074 does not define; not attested.
    Other,
}

impl Verstat {
    /// One `verstat` value. Tokens are matched without regard to case:
    /// some carriers write them in lower case, and no other value is
    /// spelled like the three defined ones.
    pub fn parse(value: &str) -> Self {
        let v = value.trim();
        if v.eq_ignore_ascii_case("TN-Validation-Passed") {
            Verstat::Passed
        } else if v.eq_ignore_ascii_case("TN-Validation-Failed") {
            Verstat::Failed
        } else if v.eq_ignore_ascii_case("No-TN-Validation") {
            Verstat::NoValidation
        } else {
            Verstat::Other
        }
    }

    /// The weaker of two readings: a URI carrying two `verstat`s that
    /// disagree is attested only if both say so.
    pub fn weaker(self, other: Verstat) -> Self {
        match (self, other) {
            (Verstat::Absent, o) | (o, Verstat::Absent) => o,
            (Verstat::Passed, o) | (o, Verstat::Passed) => o,
            (a, _) => a,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verstat::Absent => "absent",
            Verstat::Passed => "TN-Validation-Passed",
            Verstat::Failed => "TN-Validation-Failed",
            Verstat::NoValidation => "No-TN-Validation",
            Verstat::Other => "other",
        }
    }
}

/// A new INVITE that passed policy and has a usable offer (or none).
#[derive(Debug, Clone)]
pub struct IncomingCall {
    pub leg: LegId,
    pub call_id: String,
    /// The called number as written: Request-URI user part, else To's.
    pub called: String,
    pub caller: CallerInfo,
    /// The negotiated stream, or `None` for an offerless INVITE (we then
    /// offer in the 200 and the answer arrives in the ACK).
    pub media: Option<Negotiated>,
    /// Where the INVITE came from (a front proxy, when there is one).
    pub source: SocketAddr,
    /// The carrier's own address as the front proxy named it in the
    /// trunk's `source_header`; only read from a source in that trunk's
    /// `allow`, and only when it parses as "ip:port".
    pub carrier_source: Option<SocketAddr>,
    /// The trunk whose registered Contact the INVITE was sent to (its
    /// Request-URI user is our registered contact user); `called` is then
    /// the To user.
    pub via_registration: Option<String>,
}

/// Why a dialog ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The peer sent BYE.
    RemoteBye,
    /// Our 2xx was never acknowledged (§13.3.1.4); we sent BYE.
    NoAck,
    /// RFC 4028 §10: no refresh before the session expired; we sent BYE.
    SessionExpired,
    /// We hung up and the BYE transaction finished.
    LocalHangup,
}

/// How an outbound call attempt ended without a dialog, in the terms the
/// routing layer acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOutcome {
    /// 486, 600: busy does not count as a missed call.
    Busy(u16),
    /// 603: the agent declined.
    Rejected(u16),
    /// 480, 404, 408, or our own timeout.
    NoAnswer(u16),
    /// The trunk could not place it: 5xx on every trunk tried, or 408 (or
    /// no answer at all) before any provisional response. A trunk's
    /// failure, never the callee's miss.
    Unavailable(u16),
    /// Anything else (including an authentication failure).
    Failed(u16),
    /// We cancelled it (487 or CANCEL won).
    Cancelled,
}

impl DialOutcome {
    pub fn from_status(status: u16) -> Self {
        match status {
            486 | 600 => DialOutcome::Busy(status),
            603 => DialOutcome::Rejected(status),
            480 | 404 | 408 => DialOutcome::NoAnswer(status),
            487 => DialOutcome::Cancelled,
            500..=599 => DialOutcome::Unavailable(status),
            _ => DialOutcome::Failed(status),
        }
    }
}

/// Where an outbound leg's INVITE went ([`SipEvent::Dialling`]). Boxed
/// there: inline, its two strings made every event 56 bytes instead of 24,
/// and each call's event channel allocates room for 32 events when it is
/// made (1.8 KB of a held call's memory; issue 15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialled {
    pub call_id: String,
    pub trunk: String,
}

#[derive(Debug, Clone)]
pub enum SipEvent {
    Incoming(Box<IncomingCall>),
    /// CANCEL arrived before we answered; 487 has been sent.
    Cancelled(LegId),
    /// The ACK for our 2xx arrived. For an offerless INVITE it carries the
    /// answer to the offer in our 2xx.
    Confirmed {
        leg: LegId,
        media: Option<Box<Negotiated>>,
    },
    /// A re-INVITE or UPDATE changed the stream (hold, unhold, new address).
    MediaChanged {
        leg: LegId,
        media: Box<Negotiated>,
    },
    /// A digit from SIP INFO (application/dtmf-relay or application/dtmf).
    InfoDigit {
        leg: LegId,
        digit: char,
        duration_ms: u32,
    },
    Ended {
        leg: LegId,
        cause: EndCause,
    },
    /// Outbound: the INVITE went out with this Call-ID (what a carrier's
    /// trace of the leg is matched against) to this trunk. Again for each
    /// trunk a leg fails over to.
    Dialling {
        leg: LegId,
        to: Box<Dialled>,
    },
    /// Outbound: every trunk is at its `max_calls`, out of `max_cps`
    /// tokens or in a Retry-After: the INVITE waits for one (no ringing
    /// yet). `Dialling` follows when it goes.
    Queued {
        leg: LegId,
    },
    /// Outbound: a provisional response (183 may carry early media, which
    /// callers keep to themselves).
    Progress {
        leg: LegId,
        status: u16,
        early_media: Option<Box<Negotiated>>,
    },
    /// Outbound: 2xx received and ACKed.
    Answered {
        leg: LegId,
        media: Option<Box<Negotiated>>,
    },
    /// Outbound: the attempt ended without a dialog.
    Failed {
        leg: LegId,
        outcome: DialOutcome,
    },
}

// Each call's event channel allocates a block of 32 events up front: keep
// the event small (see `Dialled`).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<SipEvent>() <= 24);

/// Words for log lines.
impl std::fmt::Display for EndCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EndCause::RemoteBye => "remote BYE",
            EndCause::NoAck => "no ACK",
            EndCause::SessionExpired => "session expired",
            EndCause::LocalHangup => "local hang-up",
        })
    }
}

/// Words and the status code for log lines: "busy 486", "cancelled".
impl std::fmt::Display for DialOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialOutcome::Busy(s) => write!(f, "busy {s}"),
            DialOutcome::Rejected(s) => write!(f, "rejected {s}"),
            DialOutcome::NoAnswer(s) => write!(f, "no answer {s}"),
            DialOutcome::Unavailable(s) => write!(f, "unavailable {s}"),
            DialOutcome::Failed(s) => write!(f, "failed {s}"),
            DialOutcome::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// What happened, in words, for log lines. Deliberately without the
/// payload: an INFO digit may be part of a PIN, and an SDP is noise.
impl std::fmt::Display for SipEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SipEvent::Incoming(c) => write!(f, "incoming call {}", c.call_id),
            SipEvent::Cancelled(_) => f.write_str("cancelled"),
            SipEvent::Confirmed { .. } => f.write_str("confirmed (ACK)"),
            SipEvent::MediaChanged { .. } => f.write_str("media changed"),
            SipEvent::InfoDigit { .. } => f.write_str("INFO digit"),
            SipEvent::Ended { cause, .. } => write!(f, "ended ({cause})"),
            SipEvent::Dialling { to, .. } => {
                write!(f, "dialling {} on trunk {}", to.call_id, to.trunk)
            }
            SipEvent::Queued { .. } => f.write_str("waiting for a trunk"),
            SipEvent::Progress { status, .. } => write!(f, "progress {status}"),
            SipEvent::Answered { .. } => f.write_str("answered"),
            SipEvent::Failed { outcome, .. } => write!(f, "failed ({outcome})"),
        }
    }
}

impl SipEvent {
    pub fn leg(&self) -> LegId {
        match self {
            SipEvent::Incoming(c) => c.leg,
            SipEvent::Cancelled(leg) | SipEvent::Queued { leg } => *leg,
            SipEvent::Confirmed { leg, .. }
            | SipEvent::MediaChanged { leg, .. }
            | SipEvent::InfoDigit { leg, .. }
            | SipEvent::Ended { leg, .. }
            | SipEvent::Dialling { leg, .. }
            | SipEvent::Progress { leg, .. }
            | SipEvent::Answered { leg, .. }
            | SipEvent::Failed { leg, .. } => *leg,
        }
    }
}

/// An outbound call through a trunk (the SIP core picks which).
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// The Request-URI user part for each trunk, in the core's trunk order,
    /// already formatted per that trunk's `number_format` and `prefix`. A
    /// shorter list repeats its last entry for the trunks beyond it.
    pub targets: Vec<String>,
    /// Who we present as on each trunk (its `caller_id` policy), in the
    /// same order; a shorter list repeats its last entry.
    pub from: Vec<Presentation>,
    /// Our SDP offer on each trunk (its SRTP policy and the c= its NAT
    /// plan gives), in the same order; a shorter list repeats its last
    /// entry.
    pub sdp: Vec<Vec<u8>>,
}

/// Who an outbound leg presents itself as on one trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    /// Our From user part (the contact point's number, or the customer's).
    pub from_user: String,
    /// RFC 5806 Diversion, when presenting the customer's number.
    pub diversion: Option<String>,
}

impl DialRequest {
    /// Who we present as on trunk `i`.
    pub fn from_on(&self, i: usize) -> Option<&Presentation> {
        self.from.get(i).or(self.from.last())
    }

    /// Our SDP offer on trunk `i`.
    pub fn sdp_on(&self, i: usize) -> &[u8] {
        self.sdp
            .get(i)
            .or(self.sdp.last())
            .map_or(&[], Vec::as_slice)
    }

    /// The Request-URI user part on trunk `i`.
    pub fn target_on(&self, i: usize) -> &str {
        self.targets
            .get(i)
            .or(self.targets.last())
            .map_or("", String::as_str)
    }
}

#[derive(Debug, Clone)]
pub enum SipCommand {
    /// 180 Ringing for an incoming leg.
    Ringing(LegId),
    /// 200 with our SDP (answer, or offer for an offerless INVITE).
    Answer { leg: LegId, sdp: Vec<u8> },
    /// Final non-2xx for an incoming leg not yet answered.
    Reject { leg: LegId, status: u16 },
    /// End the leg whatever its state: BYE when confirmed, CANCEL when an
    /// outbound attempt rings, 480 when an inbound one was never answered.
    HangUp(LegId),
    /// Place a call to the trunk.
    Dial { leg: LegId, request: DialRequest },
    /// One trunk's servers as DNS last gave them (RFC 3263), or its one
    /// address: sent for every trunk at start, and by that trunk's
    /// resolver whenever a refresh changes them. Empty means unresolved:
    /// outbound calls skip to the next trunk (as this one's 503) until an
    /// answer comes.
    TrunkTargets {
        /// The trunk's index in priority order (as in `CoreConfig::trunks`).
        trunk: usize,
        records: Vec<super::dns::Weighted>,
    },
    /// A reload changed who may send us requests or how many calls and
    /// transactions we hold: applies to the next request.
    Policy(Box<super::core::Policy>),
    /// The switch is shutting down: refuse new calls (503 + Retry-After),
    /// keep serving the dialogs in progress. There is no way back; a
    /// drained switch exits.
    Drain,
}
