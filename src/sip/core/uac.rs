//! The UAC side: INVITE to the trunk (§13.2), CANCEL (§9.1), digest
//! challenges (§22.2, RFC 8760), redirects (§8.1.3.4), 2xx ACK (§13.2.2.4).

use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;
use rsipstack::sip::{Method, Response};
use tracing::{debug, info, warn};

use super::dialog::{Dialog, Role, State, Uac};
use super::{ClientPurpose, SipCore};
use crate::sdp;
use crate::sip::api::{DialOutcome, DialRequest, LegId, SipEvent};
use crate::sip::message::{self, header_uri, ResponseHead};
use crate::sip::transaction::{ClientMatch, Peer, TxKey};
use crate::sip::{access, digest};

impl SipCore {
    pub(super) fn uac_dial(&mut self, leg: LegId, request: DialRequest, now: Instant) {
        let mut hops = self.hops().into_iter();
        let Some(first) = hops.next() else {
            // RFC 3263 gave nothing (yet): the trunk's failure, like a 503.
            warn!(leg = %leg, "trunk has no resolved target; call not placed");
            self.emit(SipEvent::Failed {
                leg,
                outcome: DialOutcome::Unavailable(503),
            });
            return;
        };
        let local_tag = self.tag();
        let call_id = format!("{:016x}@tpswitch", self.ids.next());
        let ruri = self.request_uri(&request.target, first);
        let local_uri = format!(
            "<sip:{}@{}>",
            request.from_user,
            self.cfg.local.hostport_for(first.addr.ip())
        );
        let remote_uri = format!("<{ruri}>");
        // What a re-INVITE or UPDATE from the far end is answered with
        // (§14.2): our offer's address, o= id and version.
        let local_media = super::uas::local_media_of(&request.sdp);
        let (sdp_session, sdp_version) = super::uas::origin_of(&request.sdp).unwrap_or((0, 1));
        let d = Dialog {
            leg,
            role: Role::Uac,
            state: State::Early,
            call_id,
            local_tag,
            remote_tag: None,
            local_uri,
            remote_uri,
            remote_target: None,
            route_set: Vec::new(),
            local_cseq: 0,
            remote_cseq: None,
            peer: first,
            invite: None,
            invite_key: None,
            offerless: false,
            local_sdp: Some(request.sdp.clone()),
            local_media,
            sdp_session,
            sdp_version,
            negotiated: None,
            ok_retransmit: None,
            session_interval: None,
            session_deadline: None,
            pending_reinvite: None,
            reinvite_ack: None,
            end_reported: false,
            via_trunk: self.cfg.dialog_via_trunk,
            uac: Some(Uac {
                request,
                ruri: ruri.clone(),
                invite_key: TxKey {
                    branch: String::new(),
                    sent_by: String::new(),
                    method: crate::sip::transaction::TxMethod::Invite,
                },
                invite_via: String::new(),
                invite_cseq: 0,
                auth_tried: false,
                redirects: 0,
                got_provisional: false,
                cancel_requested: false,
                cancel_sent: false,
                ack: None,
                alternates: hops.collect(),
            }),
        };
        // The agent's side may end the dialog (BYE) or change it: its
        // requests carry our tag in To (§12.2.2), like those of a caller.
        self.by_tag
            .insert((d.call_id.clone(), d.local_tag.clone()), leg);
        let call_id = d.call_id.clone();
        self.dialogs.insert(leg, d);
        self.send_invite(leg, ruri, None, now);
        self.emit(SipEvent::Dialling { leg, call_id });
    }

    /// RFC 3263 §4: the Request-URI names the trunk as configured (a host
    /// name stays a name); only an IP-literal trunk puts the address we
    /// send to there.
    fn request_uri(&self, number: &str, hop: Peer) -> String {
        match &self.cfg.request_host {
            Some(h) => format!("sip:{number}@{h}"),
            None => format!("sip:{number}@{}", crate::sip::uri::hostport(hop.addr)),
        }
    }

    /// RFC 3263 §4.3: after a timeout, a transport failure or a 503 (and,
    /// as carriers use it, a 408 before any provisional response), the
    /// same request goes to the next target as a new transaction. Not
    /// once the far end rang (a 408 then is the agent's no-answer) nor
    /// after we asked to cancel.
    fn try_next_target(&mut self, leg: LegId, why: &str, now: Instant) -> bool {
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return false;
        };
        let Some(uac) = d.uac.as_mut() else {
            return false;
        };
        if uac.cancel_requested || uac.got_provisional {
            return false;
        }
        let Some(next) = uac.alternates.pop_front() else {
            return false;
        };
        let failed = d.peer.addr;
        d.peer = next;
        uac.auth_tried = false;
        let old_key = uac.invite_key.clone();
        let number = uac.request.target.clone();
        self.clients.remove(&old_key);
        info!(leg = %leg, failed = %failed, next = %next.addr, why, "trunk target failed; trying the next one");
        let ruri = self.request_uri(&number, next);
        self.send_invite(leg, ruri, None, now);
        true
    }

    /// Sends (or re-sends, after a challenge or redirect) the INVITE.
    fn send_invite(
        &mut self,
        leg: LegId,
        ruri: String,
        auth: Option<(&str, String)>,
        now: Instant,
    ) {
        let branch = self.branch();
        let local = self.cfg.local.clone();
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        d.local_cseq += 1;
        let sent_by = local
            .sent_by(d.peer.transport, d.peer.addr.ip())
            .into_owned();
        let via = local.via(d.peer.transport, d.peer.addr.ip(), &branch);
        let mut s = String::with_capacity(1024);
        let _ = write!(
            s,
            "INVITE {ruri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} INVITE\r\nContact: {}\r\nAllow: {}\r\nSupported: {}\r\nUser-Agent: {}\r\n",
            d.local_uri,
            d.local_tag,
            d.remote_uri,
            d.call_id,
            d.local_cseq,
            local.contact_on(d.peer.transport, d.peer.addr.ip()),
            message::ALLOW,
            message::SUPPORTED,
            local.user_agent,
        );
        if let Some(div) = &uac.request.diversion {
            let _ = write!(s, "Diversion: {div}\r\n");
        }
        if let Some((name, value)) = &auth {
            let _ = write!(s, "{name}: {value}\r\n");
        }
        let data = message::finish(s, &[], Some(("application/sdp", &uac.request.sdp)));
        let key = TxKey {
            branch,
            sent_by: sent_by.to_ascii_lowercase(),
            method: crate::sip::transaction::TxMethod::Invite,
        };
        uac.ruri = ruri;
        uac.invite_key = key.clone();
        uac.invite_via = via;
        uac.invite_cseq = d.local_cseq;
        uac.got_provisional = false;
        let peer = d.peer;
        self.clients
            .insert(key.clone(), (leg, ClientPurpose::Invite));
        self.txl.send_request(key, peer, Bytes::from(data), now);
    }

    /// §17.1.1.3: the ACK for a non-2xx final reuses the INVITE's Via and
    /// Request-URI, with the response's To.
    fn non_2xx_ack(d: &Dialog, head: &ResponseHead) -> Option<Bytes> {
        let uac = d.uac.as_ref()?;
        let s = format!(
            "ACK {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\n",
            uac.ruri,
            uac.invite_via,
            d.local_header(),
            head.to,
            d.call_id,
            uac.invite_cseq
        );
        Some(Bytes::from(message::finish(s, &[], None)))
    }

    pub(super) fn uac_invite_response(
        &mut self,
        leg: LegId,
        key: TxKey,
        resp: Response,
        head: ResponseHead,
        src: Peer,
        now: Instant,
    ) {
        let Some(d) = self.dialogs.get(&leg) else {
            let _ = self.txl.on_response(&key, head.status, now, || None);
            return;
        };
        let ack = if head.status >= 300 {
            Self::non_2xx_ack(d, &head)
        } else {
            None
        };
        let m = self.txl.on_response(&key, head.status, now, || ack);
        if m != ClientMatch::Deliver {
            return;
        }
        match head.status {
            100 => {}
            101..=199 => self.uac_provisional(leg, &resp, &head, now),
            200..=299 => self.uac_answered(leg, &resp, &head, now),
            401 | 407 => self.uac_challenged(leg, &resp, &head, src, now),
            300..=399 => self.uac_redirected(leg, &head, now),
            408 | 503 if self.try_next_target(leg, "408 or 503", now) => {}
            status => self.uac_failed(leg, DialOutcome::from_status(status)),
        }
    }

    fn uac_provisional(&mut self, leg: LegId, resp: &Response, head: &ResponseHead, now: Instant) {
        let codecs = self.cfg.codecs.clone();
        let srtp = self.cfg.srtp;
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let offer = d.local_sdp.clone().unwrap_or_default();
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        uac.got_provisional = true;
        let cancel_now = uac.cancel_requested && !uac.cancel_sent;
        let early_media = if head.status == 183 && !resp.body.is_empty() {
            sdp::parse_answer(&resp.body, &codecs, srtp, &offer).ok()
        } else {
            None
        };
        if cancel_now {
            self.send_cancel(leg, now);
            return;
        }
        self.emit(SipEvent::Progress {
            leg,
            status: head.status,
            early_media,
        });
    }

    fn uac_answered(&mut self, leg: LegId, resp: &Response, head: &ResponseHead, now: Instant) {
        let _ = now;
        let codecs = self.cfg.codecs.clone();
        let local = self.cfg.local.clone();
        let branch = self.branch();
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        if d.state != State::Early {
            // A retransmitted 2xx: re-send our ACK (§13.2.2.4).
            if let Some(ack) = d.uac.as_ref().and_then(|u| u.ack.clone()) {
                let peer = d.next_hop();
                self.out
                    .push_back(super::Output::Transmit { peer, data: ack });
            }
            return;
        }
        // §12.1.2: the UAC's route set is the Record-Route in reverse.
        d.remote_tag = head.to_tag.clone();
        d.remote_target = head.contact.clone();
        d.route_set = head.record_route.iter().rev().cloned().collect();
        d.state = State::Confirmed;
        let Some(uac) = d.uac.as_ref() else {
            return;
        };
        let cancelled = uac.cancel_requested;
        // §13.2.2.4: the ACK for a 2xx is a new transaction-less request
        // with the INVITE's CSeq number.
        let cseq = uac.invite_cseq;
        let fallback = uac.ruri.clone();
        let (ruri, routes) = d.target_and_routes(&fallback);
        let mut s = format!(
            "ACK {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\n",
            local.via(d.peer.transport, d.next_hop().addr.ip(), &branch)
        );
        for r in &routes {
            let _ = write!(s, "Route: {r}\r\n");
        }
        let _ = write!(
            s,
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} ACK\r\n",
            d.local_header(),
            d.remote_header(),
            d.call_id
        );
        let ack = Bytes::from(message::finish(s, &[], None));
        if let Some(uac) = d.uac.as_mut() {
            uac.ack = Some(ack.clone());
        }
        let media = sdp::parse_answer(
            &resp.body,
            &codecs,
            self.cfg.srtp,
            d.local_sdp.as_deref().unwrap_or_default(),
        )
        .ok();
        d.negotiated = media.clone();
        let peer = d.next_hop();
        self.out
            .push_back(super::Output::Transmit { peer, data: ack });
        if cancelled {
            // CANCEL lost the race with the 2xx (§9.1): end with BYE.
            info!(leg = %leg, "answered after cancel: sending BYE");
            self.send_bye(leg, now);
            if let Some(d) = self.dialogs.get_mut(&leg) {
                d.end_reported = true;
            }
            self.emit(SipEvent::Failed {
                leg,
                outcome: DialOutcome::Cancelled,
            });
            return;
        }
        self.emit(SipEvent::Answered { leg, media });
    }

    fn uac_challenged(
        &mut self,
        leg: LegId,
        resp: &Response,
        head: &ResponseHead,
        src: Peer,
        now: Instant,
    ) {
        let creds = self.cfg.credentials.clone();
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        // Answer a challenge only once, only for our own INVITE, and only
        // when it comes from the trunk: a rogue challenger must never get a
        // response computed with our password.
        let from_trunk = src.addr == d.peer.addr;
        let (Some(creds), false, true) = (creds, uac.auth_tried, from_trunk) else {
            if !from_trunk {
                warn!(src = %src.addr, "challenge from a source that is not the trunk ignored");
            }
            self.uac_failed(leg, DialOutcome::Failed(head.status));
            return;
        };
        let (challenge_header, answer_header) = if head.status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let challenges = digest::parse_all(message::header_values(&resp.headers, challenge_header));
        let Some(ch) = digest::pick(&challenges) else {
            debug!("no usable digest challenge");
            self.uac_failed(leg, DialOutcome::Failed(head.status));
            return;
        };
        uac.auth_tried = true;
        let value = digest::authorize(
            ch,
            "INVITE",
            &uac.ruri,
            &creds.username,
            &creds.password,
            &digest::new_cnonce(),
            1,
        );
        let ruri = uac.ruri.clone();
        self.send_invite(leg, ruri, Some((answer_header, value)), now);
    }

    fn uac_redirected(&mut self, leg: LegId, head: &ResponseHead, now: Instant) {
        let (follow, max) = (self.cfg.follow_redirects, self.cfg.max_redirects);
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        // Follow only to the same number: nothing a peer sends can make us
        // dial someone else. The Contact is only read for its number; the
        // new Request-URI is rebuilt from our own number and the trunk
        // (the one we first sent), so nothing else in it is ever copied:
        // not `;rn=` / `;npdi` (RFC 4694 number portability), not
        // `;phone-context=` (RFC 3966 §5.1.5), not a password, `maddr`
        // (§19.1.1) or URI headers such as `?Route=` (§19.1.5), any of
        // which could steer the carrier to another number or host.
        let target = head.contact.as_deref().map(header_uri);
        let same_number = target
            .and_then(access::uri_user)
            .is_some_and(|u| digits(&u) == digits(&uac.request.target));
        match target {
            Some(t) if follow && uac.redirects < max && same_number => {
                uac.redirects += 1;
                let ruri = uac.ruri.clone();
                info!(leg = %leg, contact = %t, target = %ruri, "following redirect");
                self.send_invite(leg, ruri, None, now);
            }
            _ => self.uac_failed(leg, DialOutcome::Failed(head.status)),
        }
    }

    pub(super) fn uac_failed(&mut self, leg: LegId, outcome: DialOutcome) {
        let Some(d) = self.remove_dialog(leg) else {
            return;
        };
        if let Some(uac) = &d.uac {
            self.clients.remove(&uac.invite_key);
        }
        let outcome = if d.uac.as_ref().is_some_and(|u| u.cancel_requested) {
            DialOutcome::Cancelled
        } else {
            outcome
        };
        self.emit(SipEvent::Failed { leg, outcome });
    }

    pub(super) fn uac_timeout(&mut self, leg: LegId) {
        // Timer B (§17.1.1.2), or a TCP connection that never came up.
        if let Some(now) = self.last_now {
            if self.try_next_target(leg, "no answer (timer B)", now) {
                return;
            }
        }
        self.uac_failed(leg, DialOutcome::NoAnswer(408));
    }

    pub(super) fn uac_cancel(&mut self, leg: LegId, now: Instant) {
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        uac.cancel_requested = true;
        // §9.1: a CANCEL must not be sent before a provisional response;
        // it goes out when the first one arrives.
        if uac.got_provisional && !uac.cancel_sent {
            self.send_cancel(leg, now);
        }
    }

    fn send_cancel(&mut self, leg: LegId, now: Instant) {
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let from = d.local_header();
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        uac.cancel_sent = true;
        // §9.1: same Request-URI, Call-ID, From, To (no tag), CSeq number and
        // top Via as the INVITE.
        let s = format!(
            "CANCEL {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} CANCEL\r\n",
            uac.ruri,
            uac.invite_via,
            from,
            d.remote_uri,
            d.call_id,
            uac.invite_cseq
        );
        let data = Bytes::from(message::finish(s, &[], None));
        let key = TxKey {
            method: crate::sip::transaction::TxMethod::Cancel,
            ..uac.invite_key.clone()
        };
        let peer = d.peer;
        self.clients
            .insert(key.clone(), (leg, ClientPurpose::Cancel));
        self.txl.send_request(key, peer, data, now);
    }

    /// A 2xx after its transaction ended (a fork or a late retransmission):
    /// ACK it if it belongs to a dialog of ours, else it is stray.
    pub(super) fn uac_stray_2xx(&mut self, head: &ResponseHead) {
        let leg = self
            .dialogs
            .values()
            .find(|d| d.role == Role::Uac && d.call_id == head.call_id)
            .map(|d| d.leg);
        match leg.and_then(|l| self.dialogs.get(&l)) {
            Some(d) if d.uac.as_ref().and_then(|u| u.ack.as_ref()).is_some() => {
                let peer = d.next_hop();
                if let Some(ack) = d.uac.as_ref().and_then(|u| u.ack.clone()) {
                    self.out
                        .push_back(super::Output::Transmit { peer, data: ack });
                }
            }
            _ => {
                self.stats.unmatched_responses += 1;
                debug!(call_id = %head.call_id, "stray 2xx dropped");
            }
        }
        let _ = Method::Ack;
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}
