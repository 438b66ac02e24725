//! The first look at every inbound request, before it is parsed: scanner
//! user agents, REGISTER when it is dropped, and the per-source limits of
//! `sip::flood`. A request refused here creates no transaction, no dialog
//! and no RTP port; with `refuse = "drop"` it is not even parsed.

use std::time::Instant;

use rsipstack::sip::Method;
use tracing::warn;

use super::{response_peer, stamp_via, SipCore};
use crate::sip::flood::{self, Class, Refuse, RegisterPolicy, Verdict};
use crate::sip::inspect::{self, Inspection};
use crate::sip::log_limit::{Source, Verdict as LogVerdict};
use crate::sip::message;
use crate::sip::transaction::Peer;

/// Why a request was refused, as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Rate,
    Banned,
    Scanner,
    Register,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Rate => "rate",
            Reason::Banned => "banned",
            Reason::Scanner => "scanner",
            Reason::Register => "register",
        }
    }
}

impl SipCore {
    /// True when the request in `data` is refused here (and answered, if
    /// the policy says 403); the caller then does nothing more with it.
    pub(super) fn flood_refused(
        &mut self,
        data: &[u8],
        peer: Peer,
        trusted: bool,
        now: Instant,
    ) -> bool {
        let Some(class) = flood::peek_method(data) else {
            return false; // a response, or not SIP: the inspector decides
        };
        let policy = self.flood.policy();
        // A scanner is never answered, whoever it claims to be: no answer
        // tells it nothing about us (RFC 3261 §26.1.5 "denial of service").
        if flood::scanner_agent(data, &policy.scanner_agents) {
            self.flood_log(Reason::Scanner, class, peer, now);
            return true;
        }
        if class == Class::Register && policy.register == RegisterPolicy::Drop {
            self.flood_log(Reason::Register, class, peer, now);
            return true;
        }
        if trusted && !policy.apply_to_trunks {
            return false;
        }
        let reason = match self.flood.check(peer.addr.ip(), class, now) {
            Verdict::Pass => return false,
            Verdict::Limited => Reason::Rate,
            Verdict::Banned => Reason::Banned,
        };
        let refuse = self.flood.policy().refuse;
        self.flood_log(reason, class, peer, now);
        if refuse == Refuse::Forbidden {
            self.forbid(data, peer);
        }
        true
    }

    /// A stateless 403 (§8.2.6.1: no transaction for a refused request).
    fn forbid(&mut self, data: &[u8], peer: Peer) {
        let Inspection::Request(accepted) = inspect::inspect(data, &self.cfg.limits) else {
            return;
        };
        let mut head = accepted.head;
        if head.method == Method::Ack {
            return; // §17.1.1.3: an ACK is never answered
        }
        stamp_via(&mut head, peer);
        let to_tag = self.tag();
        let out = message::response(&head, 403, "Forbidden", Some(&to_tag), &[], None);
        self.transmit(response_peer(peer, Some(&head)), out);
    }

    /// Counts the refusal and logs at most one line per source per minute
    /// (a ban alone would otherwise log up to 1 000 lines a second).
    fn flood_log(&mut self, reason: Reason, class: Class, peer: Peer, now: Instant) {
        let s = &mut self.stats;
        match reason {
            Reason::Rate => s.flood_rate += 1,
            Reason::Banned => s.flood_banned += 1,
            Reason::Scanner => s.flood_scanner += 1,
            Reason::Register => s.flood_register += 1,
        }
        let LogVerdict::Log { source, suppressed } = self.flood_log.check(peer.addr.ip(), now)
        else {
            return;
        };
        let ban_seconds = self.flood.policy().ban.as_secs();
        match source {
            Source::Addr(_) => warn!(
                src = %peer.addr, reason = reason.as_str(), method = class.as_str(),
                ban_seconds, suppressed,
                "request refused by sip.flood (one line per source per minute)"
            ),
            Source::Others => warn!(
                src = %source, reason = reason.as_str(), method = class.as_str(),
                ban_seconds, suppressed,
                "requests from many sources refused by sip.flood (one line per minute)"
            ),
        }
    }
}
