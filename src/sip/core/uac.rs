//! The UAC side: INVITE to the trunk (§13.2), CANCEL (§9.1), digest
//! challenges (§22.2, RFC 8760), redirects (§8.1.3.4), 2xx ACK (§13.2.2.4).

use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;
use rsipstack::sip::{Method, Response};
use tracing::{debug, info, warn};

use super::dialog::{Dialog, Role, State, Uac};
use super::{ClientPurpose, DialogTimer, SipCore};
use crate::sdp;
use crate::sip::api::{DialOutcome, DialRequest, Dialled, LegId, SipEvent};
use crate::sip::message::{self, header_uri, ResponseHead};
use crate::sip::transaction::{ClientMatch, Peer, Transport, TxKey};
use crate::sip::trunk::{parse_retry_after, Choice};
use crate::sip::{access, digest};

impl SipCore {
    pub(super) fn uac_dial(&mut self, leg: LegId, request: DialRequest, now: Instant) {
        if self.dialogs.contains_key(&leg) {
            debug!(leg = %leg, "dial for a leg that already exists ignored");
            return;
        }
        let d = Dialog {
            leg,
            role: Role::Uac,
            state: State::Early,
            // Filled in per attempt (each trunk gets its own Call-ID).
            call_id: String::new(),
            local_tag: String::new(),
            remote_tag: None,
            local_uri: String::new(),
            remote_uri: String::new(),
            remote_target: None,
            route_set: Vec::new(),
            local_cseq: 0,
            remote_cseq: None,
            peer: Peer {
                transport: Transport::Udp,
                addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            },
            invite: None,
            invite_key: None,
            offerless: false,
            // Set per attempt from the trunk's own offer.
            local_sdp: None,
            local_media: None,
            sdp_session: 0,
            sdp_version: 1,
            negotiated: None,
            ok_retransmit: None,
            session_interval: None,
            session_deadline: None,
            pending_reinvite: None,
            reinvite_ack: None,
            end_reported: false,
            // Set per attempt from the trunk the INVITE goes to.
            via_trunk: false,
            trunk: None,
            uac: Some(Box::new(Uac {
                request,
                ruri: String::new(),
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
                alternates: std::collections::VecDeque::new(),
                trunk: None,
                tried: Vec::new(),
                queued_reported: false,
            })),
        };
        self.dialogs.insert(leg, Box::new(d));
        self.uac_attempt(leg, DialOutcome::Unavailable(503), now);
    }

    /// Sends the leg's INVITE to the best trunk it has not tried, or
    /// queues it while every such trunk is busy, or ends it with
    /// `last` (the outcome of its last attempt) when none is left.
    fn uac_attempt(&mut self, leg: LegId, last: DialOutcome, now: Instant) {
        let Some(tried) = self
            .dialogs
            .get(&leg)
            .and_then(|d| d.uac.as_ref())
            .map(|u| u.tried.clone())
        else {
            return;
        };
        match self.trunks.choose(&tried, now) {
            Choice::Use(i) => self.uac_send_on(leg, i, now),
            Choice::Wait(at) => {
                if let Some(at) = at {
                    self.timers.arm(at, (leg, DialogTimer::DialRetry, at));
                }
                if !self.dial_queue.contains(&leg) {
                    self.dial_queue.push_back(leg);
                }
                let first = self
                    .dialogs
                    .get_mut(&leg)
                    .and_then(|d| d.uac.as_mut())
                    .is_some_and(|u| !std::mem::replace(&mut u.queued_reported, true));
                if first {
                    self.stats.outbound_queued += 1;
                    info!(leg = %leg, "every trunk is busy: the INVITE waits for one");
                    self.emit(SipEvent::Queued { leg });
                }
            }
            Choice::Exhausted => self.uac_finish(leg, last),
        }
    }

    /// Outbound legs waiting for a trunk try again, in arrival order.
    pub(super) fn pump_dial_queue(&mut self, now: Instant) {
        if !std::mem::take(&mut self.dial_queue_due) || self.dial_queue.is_empty() {
            return;
        }
        for leg in std::mem::take(&mut self.dial_queue) {
            let waiting = self
                .dialogs
                .get(&leg)
                .and_then(|d| d.uac.as_ref())
                .is_some_and(|u| u.trunk.is_none() && !u.cancel_requested);
            if waiting {
                self.uac_attempt(leg, DialOutcome::Unavailable(503), now);
            }
        }
    }

    /// A new INVITE for `leg` on trunk `i`: a new Call-ID and tag (a call
    /// to another carrier is a new call, §8.1.1.4), the trunk's
    /// Request-URI, From and To hosts.
    fn uac_send_on(&mut self, leg: LegId, i: usize, now: Instant) {
        let local_tag = self.tag();
        let call_id = format!("{:016x}@tpswitch", self.ids.next());
        let Some(route) = self.trunks.route(i).cloned() else {
            return;
        };
        // The trunk's servers (RFC 3263 §4.3 order): the first now, the
        // rest after a timeout, a transport failure or a 503/408.
        let mut hops = self.hops(i).into_iter();
        let first = hops.next();
        // The trunk's own NAT plan, if it has one, names us on this leg.
        let local = self.local_on(Some(i));
        let own_host = match first {
            Some(hop) => local.hostport_for(hop.addr.ip()).into_owned(),
            None => local.hostport.clone(),
        };
        let target = self
            .dialogs
            .get(&leg)
            .and_then(|d| d.uac.as_ref())
            .map(|u| u.request.target_on(i).to_owned())
            .unwrap_or_default();
        let ruri = first.map(|hop| self.request_uri(i, &target, hop));
        let Some(d) = self.dialogs.get_mut(&leg) else {
            self.trunks.release(i);
            return;
        };
        let Some(uac) = d.uac.as_mut() else {
            self.trunks.release(i);
            return;
        };
        let (Some(first), Some(ruri)) = (first, ruri) else {
            // RFC 3263 gave nothing (yet): the trunk's failure, like a 503.
            uac.trunk = Some(i);
            uac.tried.push(i);
            warn!(leg = %leg, trunk = %route.name, "trunk has no resolved target");
            self.uac_failed(leg, DialOutcome::Unavailable(503), None, now);
            return;
        };
        let ruri_host = ruri.rsplit_once('@').map_or("", |(_, h)| h).to_owned();
        let from_host = route.from_host.as_deref().unwrap_or(&own_host);
        let to_host = route.to_host.as_deref().unwrap_or(&ruri_host);
        let old_tag = (
            std::mem::replace(&mut d.call_id, call_id.clone()),
            std::mem::replace(&mut d.local_tag, local_tag.clone()),
        );
        let from_user = uac.request.from_on(i).map_or("", |p| p.from_user.as_str());
        d.local_uri = format!("<sip:{from_user}@{from_host}>");
        d.remote_uri = format!("<sip:{target}@{to_host}>");
        d.peer = first;
        d.via_trunk = route.via_proxy;
        d.trunk = Some(i);
        // This trunk's offer (its SRTP policy, the c= its NAT plan gives):
        // what its answer is matched against and what a re-INVITE from
        // the far end is answered with (§14.2).
        let offer = uac.request.sdp_on(i).to_vec();
        d.local_media = super::uas::local_media_of(&offer);
        (d.sdp_session, d.sdp_version) = super::uas::origin_of(&offer).unwrap_or((0, 1));
        d.local_sdp = Some(offer);
        uac.alternates = hops.collect();
        uac.trunk = Some(i);
        uac.tried.push(i);
        uac.auth_tried = false;
        uac.redirects = 0;
        uac.got_provisional = false;
        self.by_tag.remove(&old_tag);
        // The agent's side may end the dialog (BYE) or change it: its
        // requests carry our tag in To (§12.2.2), like those of a caller.
        self.by_tag.insert((call_id.clone(), local_tag), leg);
        info!(
            leg = %leg,
            trunk = %route.name,
            sip = %local.sent_by(first.transport, first.addr.ip()),
            rtp = %d.local_media.map_or_else(|| "none".to_owned(), |a| a.to_string()),
            srtp = route.srtp.as_str(),
            "dialling on the trunk"
        );
        self.send_invite(leg, ruri, None, now);
        self.emit(SipEvent::Dialling {
            leg,
            to: Box::new(Dialled {
                call_id,
                trunk: route.name,
            }),
        });
    }

    /// RFC 3263 §4: the Request-URI names the trunk as configured (its
    /// `request_uri_host`, or a host name that stays a name); only an
    /// IP-literal trunk puts the address we send to there.
    fn request_uri(&self, trunk: usize, number: &str, hop: Peer) -> String {
        match self.trunks.route(trunk).and_then(|r| r.ruri_host.as_ref()) {
            Some(h) => format!("sip:{number}@{h}"),
            None => format!("sip:{number}@{}", crate::sip::uri::hostport(hop.addr)),
        }
    }

    /// RFC 3263 §4.3: after a timeout, a transport failure or a 503 (and,
    /// as carriers use it, a 408 before any provisional response), the
    /// same request goes to the trunk's next server as a new transaction.
    /// Not once the far end rang (a 408 then is the agent's no-answer) nor
    /// after we asked to cancel. False: no server of this trunk is left.
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
        let Some(trunk) = uac.trunk else {
            return false;
        };
        let Some(next) = uac.alternates.pop_front() else {
            return false;
        };
        let failed = d.peer.addr;
        d.peer = next;
        uac.auth_tried = false;
        let old_key = uac.invite_key.clone();
        let number = uac.request.target_on(trunk).to_owned();
        self.clients.remove(&old_key);
        info!(leg = %leg, failed = %failed, next = %next.addr, why, "trunk target failed; trying the next one");
        let ruri = self.request_uri(trunk, &number, next);
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
        let local = self.local_on(self.dialogs.get(&leg).and_then(|d| d.trunk));
        let trunks = &self.trunks;
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
        let presented = uac.trunk.and_then(|i| uac.request.from_on(i));
        if let Some(div) = presented.and_then(|p| p.diversion.as_ref()) {
            let _ = write!(s, "Diversion: {div}\r\n");
        }
        if let Some(route) = uac.trunk.and_then(|i| trunks.route(i)) {
            if route.pai {
                // RFC 3325 §9.1: the identity we assert is our From's.
                let _ = write!(s, "P-Asserted-Identity: {}\r\n", d.local_uri);
            }
            if let Some(p) = &route.privacy {
                // RFC 3323 §4.2.
                let _ = write!(s, "Privacy: {p}\r\n");
            }
            // Checked at load: token names, one line of printable text.
            for (name, value) in &route.headers {
                let _ = write!(s, "{name}: {value}\r\n");
            }
        }
        if let Some((name, value)) = &auth {
            let _ = write!(s, "{name}: {value}\r\n");
        }
        let offer = d.local_sdp.as_deref().unwrap_or_default();
        let data = message::finish(s, &[], Some(("application/sdp", offer)));
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
            status => {
                let retry_after = message::header_values(&resp.headers, "Retry-After")
                    .first()
                    .and_then(|v| parse_retry_after(v));
                let ringing = self
                    .dialogs
                    .get(&leg)
                    .and_then(|d| d.uac.as_ref())
                    .is_some_and(|u| u.got_provisional);
                let outcome = match DialOutcome::from_status(status) {
                    // A 408 before any provisional: the carrier never
                    // reached the callee (RFC 3261 §21.4.9), its failure.
                    // After a 180 it is the callee's no-answer.
                    DialOutcome::NoAnswer(408) if !ringing => DialOutcome::Unavailable(408),
                    other => other,
                };
                self.uac_failed(leg, outcome, retry_after, now)
            }
        }
    }

    fn uac_provisional(&mut self, leg: LegId, resp: &Response, head: &ResponseHead, now: Instant) {
        let codecs = self.cfg.codecs.clone();
        let srtp = self.srtp_on(self.dialogs.get(&leg).and_then(|d| d.trunk));
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
            early_media: early_media.map(Box::new),
        });
    }

    fn uac_answered(&mut self, leg: LegId, resp: &Response, head: &ResponseHead, now: Instant) {
        let _ = now;
        let codecs = self.cfg.codecs.clone();
        let trunk = self.dialogs.get(&leg).and_then(|d| d.trunk);
        let local = self.local_on(trunk);
        let srtp = self.srtp_on(trunk);
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
            srtp,
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
        self.emit(SipEvent::Answered {
            leg,
            media: media.map(Box::new),
        });
    }

    fn uac_challenged(
        &mut self,
        leg: LegId,
        resp: &Response,
        head: &ResponseHead,
        src: Peer,
        now: Instant,
    ) {
        let route = self
            .dialogs
            .get(&leg)
            .and_then(|d| d.uac.as_ref())
            .and_then(|u| u.trunk)
            .and_then(|i| self.trunks.route(i));
        let creds = route.and_then(|r| r.credentials.clone());
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        // Answer a challenge only once, only for our own INVITE, and only
        // when it comes from the trunk server it went to: a rogue
        // challenger (or another trunk) must never get a response computed
        // with this trunk's password.
        let from_trunk = src.addr == d.peer.addr;
        let (Some(creds), false, true) = (creds, uac.auth_tried, from_trunk) else {
            if !from_trunk {
                warn!(src = %src.addr, "challenge from a source that is not the trunk ignored");
            }
            self.uac_failed(leg, DialOutcome::Failed(head.status), None, now);
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
            self.uac_failed(leg, DialOutcome::Failed(head.status), None, now);
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
        let (follow, max) = self
            .dialogs
            .get(&leg)
            .and_then(|d| d.uac.as_ref())
            .and_then(|u| u.trunk)
            .and_then(|i| self.trunks.route(i))
            .map_or((false, 0), |r| (r.follow_redirects, r.max_redirects));
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
        let ours = uac.trunk.map_or("", |i| uac.request.target_on(i));
        let same_number = target
            .and_then(access::uri_user)
            .is_some_and(|u| digits(&u) == digits(ours));
        match target {
            Some(t) if follow && uac.redirects < max && same_number => {
                uac.redirects += 1;
                let ruri = uac.ruri.clone();
                info!(leg = %leg, contact = %t, target = %ruri, "following redirect");
                self.send_invite(leg, ruri, None, now);
            }
            _ => self.uac_failed(leg, DialOutcome::Failed(head.status), None, now),
        }
    }

    /// The attempt on the current trunk failed. A trunk failure
    /// ([`DialOutcome::Unavailable`]: 5xx, or 408 / no answer at all
    /// before a provisional) moves the leg to the next trunk, honouring a
    /// Retry-After (RFC 3261 §20.33) by skipping this trunk until then;
    /// anything else, or a leg we are cancelling, ends it.
    pub(super) fn uac_failed(
        &mut self,
        leg: LegId,
        outcome: DialOutcome,
        retry_after: Option<std::time::Duration>,
        now: Instant,
    ) {
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        let failover = matches!(outcome, DialOutcome::Unavailable(_)) && !uac.cancel_requested;
        if !failover {
            self.uac_finish(leg, outcome);
            return;
        }
        // First the trunk's other servers (RFC 3263 §4.3: a timeout, a
        // transport error or a 503; a 408 too, as carriers use it); a
        // Retry-After then speaks for the one server, not the trunk.
        if let DialOutcome::Unavailable(status @ (408 | 503)) = outcome {
            let why = if status == 408 {
                "408 or no answer"
            } else {
                "503"
            };
            if self.try_next_target(leg, why, now) {
                return;
            }
        }
        let Some(uac) = self.dialogs.get_mut(&leg).and_then(|d| d.uac.as_mut()) else {
            return;
        };
        let key = uac.invite_key.clone();
        let trunk = uac.trunk.take();
        // The next trunk has servers of its own.
        uac.alternates.clear();
        self.clients.remove(&key);
        self.stats.trunk_failures += 1;
        if let Some(i) = trunk {
            self.trunks.release(i);
            self.dial_queue_due = true;
            if let Some(after) = retry_after {
                self.trunks.retry_after(i, after, now);
            }
            let name = self.trunks.route(i).map_or("", |r| r.name.as_str());
            warn!(
                leg = %leg,
                trunk = name,
                outcome = %outcome,
                retry_after_s = retry_after.map_or(0, |d| d.as_secs()),
                "trunk failed the call attempt: trying the next trunk"
            );
        }
        self.uac_attempt(leg, outcome, now);
    }

    /// The leg ends without a dialog: reported once, with `outcome`.
    fn uac_finish(&mut self, leg: LegId, outcome: DialOutcome) {
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

    /// Our connection to the trunk at `addr` could not be opened (or
    /// closed with requests queued): §8.1.3.1 / §17.1.4 treat a transport
    /// error as a 503, so each leg whose INVITE is waiting on it moves to
    /// the next trunk now rather than at Timer B.
    pub fn trunk_unreachable(&mut self, addr: std::net::SocketAddr, now: Instant) {
        self.now = Some(now);
        let legs: Vec<LegId> = self
            .dialogs
            .values()
            .filter(|d| d.role == Role::Uac && d.state == State::Early && d.peer.addr == addr)
            .filter(|d| {
                d.uac
                    .as_ref()
                    .is_some_and(|u| u.trunk.is_some() && !u.got_provisional)
            })
            .map(|d| d.leg)
            .collect();
        for leg in legs {
            self.uac_failed(leg, DialOutcome::Unavailable(503), None, now);
        }
        self.pump_dial_queue(now);
    }

    /// Timer B (§17.1.1.2): not even a 100 Trying came back within 64*T1.
    /// The carrier never took the call: a trunk failure, so the leg moves
    /// to the next trunk (and this is never the callee's miss).
    pub(super) fn uac_timeout(&mut self, leg: LegId, now: Instant) {
        self.uac_failed(leg, DialOutcome::Unavailable(408), None, now);
    }

    pub(super) fn uac_cancel(&mut self, leg: LegId, now: Instant) {
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let Some(uac) = d.uac.as_mut() else {
            return;
        };
        uac.cancel_requested = true;
        if uac.trunk.is_none() {
            // Still waiting for a trunk: nothing went out to cancel.
            self.dial_queue.retain(|l| *l != leg);
            self.uac_finish(leg, DialOutcome::Cancelled);
            return;
        }
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
