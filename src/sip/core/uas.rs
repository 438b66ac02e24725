//! The UAS side: INVITE handling (§13.3), CANCEL (§9.2), BYE (§15.1.2),
//! re-INVITE/UPDATE (§14, RFC 3311), INFO digits, RFC 4028 session timers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rsipstack::sip::{Method, Request};
use tracing::{debug, info};

use super::dialog::{Dialog, OkRetransmit, Role, State};
use super::{DialogTimer, SipCore};
use crate::media::codec::Codec;
use crate::media::srtp::SrtpKey;
use crate::media::stream::Direction;
use crate::sdp;
use crate::sip::access;
use crate::sip::api::{CallerInfo, EndCause, IncomingCall, LegId, SipEvent};
use crate::sip::message::{self, Extra, RequestHead};
use crate::sip::name_addr::NameAddr;
use crate::sip::transaction::{Peer, TxKey};

impl SipCore {
    pub(super) fn initial_invite(
        &mut self,
        req: Request,
        head: RequestHead,
        key: TxKey,
        peer: Peer,
        now: Instant,
    ) {
        // §17.2.1: answer 100 Trying at once so the trunk stops
        // retransmitting while we decide.
        let data = message::response(&head, 100, "Trying", None, &[], None);
        self.txl.respond(&key, 100, Bytes::from(data), now);

        let mut called = access::called_number_user(&req).unwrap_or_default();
        // An INVITE to the Contact we registered (RFC 3261 §10) came from
        // that trunk's registrar, and the number dialled is in To.
        let via_registration = self.registered_trunk(&called);
        // The call is the registration's trunk's when it came to a
        // registered contact (several trunks may share a source, such as
        // one carrier edge), else the trunk whose `allow` holds its source.
        let trunk = via_registration
            .as_deref()
            .and_then(|name| self.trunks.by_name(name))
            .or_else(|| self.trunks.by_source(peer.addr.ip()));
        let srtp = self.srtp_on(trunk);
        if let Some(trunk) = &via_registration {
            if let Some(to) = super::registration::called_on_registration(&head.to) {
                info!(trunk = %trunk, contact_user = %called, called = %to, call_id = %head.call_id, "call on the registered contact");
                called = to;
            }
        }
        if self.draining {
            info!(called = %called, call_id = %head.call_id, "draining: 503");
            self.respond_draining(&key, &head, now);
            return;
        }
        if !(self.dialplan)(&called) {
            info!(called = %called, call_id = %head.call_id, "no dispatch mapping for the called number");
            self.respond(&key, &head, 404, None, &[], None, now);
            return;
        }
        if self.active_calls() >= self.cfg.max_calls {
            let secs = self.cfg.retry_after.as_secs().max(1).to_string();
            info!(call_id = %head.call_id, max = self.cfg.max_calls, "at max_calls: 503");
            self.respond(&key, &head, 503, None, &[("Retry-After", &secs)], None, now);
            return;
        }
        // RFC 4028 §8: an interval below our Min-SE gets 422.
        let session = session_expires(&req);
        if let Some(se) = session {
            if se < self.cfg.min_se {
                let min = self.cfg.min_se.to_string();
                self.respond(&key, &head, 422, None, &[("Min-SE", &min)], None, now);
                return;
            }
        }
        let media = if req.body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            // The gate accepts application/sdp and a multipart body with an
            // SDP part (RFC 4475 mpart01); take the SDP from either.
            let Some(offer) = access::sdp_body(&req) else {
                // §21.4.13: 415 lists what we accept.
                self.respond(
                    &key,
                    &head,
                    415,
                    None,
                    &[("Accept", message::ACCEPT)],
                    None,
                    now,
                );
                return;
            };
            let offered = sdp::parse_offer(offer, srtp).and_then(|o| {
                sdp::check_initial_address(o.addr)?;
                sdp::negotiate(&o, &self.cfg.codecs)
            });
            match offered {
                Ok(n) => Some(n),
                Err(e) => {
                    debug!(call_id = %head.call_id, error = %e, "offer rejected");
                    let status = e.status_code();
                    let warning = format!("399 tpswitch \"{}\"", e.to_string().replace('"', "'"));
                    self.respond(
                        &key,
                        &head,
                        status,
                        None,
                        &[("Warning", &warning)],
                        None,
                        now,
                    );
                    return;
                }
            }
        };
        let leg = LegId::next();
        let local_tag = self.tag();
        let supports_timer = message::has_token(&req.headers, "Supported", "timer")
            || message::has_token(&req.headers, "Require", "timer");
        let dialog = Dialog {
            leg,
            role: Role::Uas,
            state: State::Early,
            call_id: head.call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: head.from_tag.clone(),
            local_uri: strip_tag(&head.to),
            remote_uri: strip_tag(&head.from),
            remote_target: head.contact.clone(),
            // §12.1.1: the UAS keeps Record-Route in order.
            route_set: head.record_route.clone(),
            local_cseq: 0,
            remote_cseq: Some(head.cseq),
            peer,
            offerless: media.is_none(),
            local_sdp: None,
            local_media: None,
            sdp_session: self.ids.next() >> 12,
            sdp_version: 1,
            negotiated: media.clone(),
            ok_retransmit: None,
            // We let the UAC refresh (refresher=uac), so only when it
            // understands session timers.
            session_interval: session.filter(|_| supports_timer),
            session_deadline: None,
            pending_reinvite: None,
            reinvite_ack: None,
            end_reported: false,
            // A call from the trunk: our BYE and re-INVITEs go back to
            // where its INVITE came from (the carrier's edge), the route
            // set in Route headers, not to a Contact the edge may not
            // even route (Asterisk's `rewrite_contact` does the same).
            // The rule of the trunk the call came from (else the first).
            via_trunk: trunk
                .or(Some(0))
                .and_then(|i| self.trunks.route(i))
                .is_none_or(|t| t.via_proxy),
            trunk,
            invite: Some(Box::new(head.clone())),
            invite_key: Some(key.clone()),
            uac: None,
        };
        self.by_tag.insert((head.call_id.clone(), local_tag), leg);
        self.by_invite.insert(key, leg);
        self.dialogs.insert(leg, Box::new(dialog));
        self.active_uas += 1;
        let mut caller = caller_info(&req);
        let mut carrier_source = None;
        if let Some(t) = trunk.and_then(|i| self.trunks.route(i)) {
            caller.trunk = t.name.clone();
            carrier_source = carrier_source_of(&req, t, peer.addr, &head.call_id);
        }
        self.emit(SipEvent::Incoming(Box::new(IncomingCall {
            leg,
            call_id: head.call_id,
            called,
            caller,
            media,
            source: peer.addr,
            carrier_source,
            via_registration,
        })));
    }

    /// The INVITE, its transaction and our tag, while an inbound leg is
    /// still unanswered (the only time it can get a provisional or a reject).
    fn unanswered(&self, leg: LegId) -> Option<(RequestHead, TxKey, String)> {
        let d = self.dialogs.get(&leg)?;
        if d.role != Role::Uas || d.state != State::Early {
            return None;
        }
        Some((
            d.invite.as_deref()?.clone(),
            d.invite_key.clone()?,
            d.local_tag.clone(),
        ))
    }

    pub(super) fn uas_provisional(&mut self, leg: LegId, status: u16, now: Instant) {
        let Some((head, key, tag)) = self.unanswered(leg) else {
            return;
        };
        let Some((peer, trunk)) = self.dialogs.get(&leg).map(|d| (d.peer, d.trunk)) else {
            return;
        };
        let contact = self
            .local_on(trunk)
            .contact_on(peer.transport, peer.addr.ip());
        self.respond(
            &key,
            &head,
            status,
            Some(&tag),
            &[("Contact", &contact)],
            None,
            now,
        );
    }

    pub(super) fn uas_answer(&mut self, leg: LegId, sdp_body: Vec<u8>, now: Instant) {
        let t = self.txl.timers();
        let ua = self.cfg.local.user_agent.clone();
        let local = self.local_on(self.dialogs.get(&leg).and_then(|d| d.trunk));
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let contact = local.contact_on(d.peer.transport, d.peer.addr.ip());
        if d.role != Role::Uas || d.state != State::Early {
            return;
        }
        let (Some(head), Some(key)) = (d.invite.clone(), d.invite_key.clone()) else {
            return;
        };
        let mut extra: Vec<(String, String)> = vec![
            ("Server".into(), ua),
            ("Contact".into(), contact),
            ("Allow".into(), message::ALLOW.into()),
            ("Supported".into(), message::SUPPORTED.into()),
        ];
        if let Some(se) = d.session_interval {
            // RFC 4028 §9: we accept the interval and make the UAC refresh.
            extra.push(("Session-Expires".into(), format!("{se};refresher=uac")));
            extra.push(("Require".into(), "timer".into()));
            d.session_deadline = Some(now + session_guard(se));
        }
        let refs: Vec<Extra<'_>> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let data = Bytes::from(message::response(
            &head,
            200,
            "OK",
            Some(&d.local_tag),
            &refs,
            Some(("application/sdp", &sdp_body)),
        ));
        d.local_media = local_media_of(&sdp_body);
        d.local_sdp = Some(sdp_body);
        d.state = State::WaitAck;
        d.ok_retransmit = (!d.peer.transport.reliable()).then(|| OkRetransmit {
            data: data.clone(),
            interval: t.t1,
            next: now + t.t1,
            give_up: now + t.t1 * 64,
        });
        // Over TCP the 2xx is not retransmitted, but the ACK wait is the same.
        let give_up = now + t.t1 * 64;
        let first = d.ok_retransmit.as_ref().map_or(give_up, |o| o.next);
        let session = d.session_deadline;
        self.txl.respond(&key, 200, data, now);
        self.timers
            .arm(first, (leg, DialogTimer::OkRetransmit, first));
        if let Some(at) = session {
            self.timers.arm(at, (leg, DialogTimer::SessionExpiry, at));
        }
        if let Some(d) = self.dialogs.get_mut(&leg) {
            if d.ok_retransmit.is_none() {
                d.ok_retransmit = Some(OkRetransmit {
                    data: Bytes::new(),
                    interval: t.t1 * 64,
                    next: give_up,
                    give_up,
                });
            }
        }
    }

    pub(super) fn uas_reject(&mut self, leg: LegId, status: u16, now: Instant) {
        let Some((head, key, tag)) = self.unanswered(leg) else {
            return;
        };
        let status = if (300..700).contains(&status) {
            status
        } else {
            500
        };
        let retry;
        let mut extra: Vec<Extra<'_>> = Vec::new();
        if status == 503 {
            retry = self.cfg.retry_after.as_secs().max(1).to_string();
            extra.push(("Retry-After", &retry));
        }
        self.respond(&key, &head, status, Some(&tag), &extra, None, now);
        self.remove_dialog(leg);
    }

    pub(super) fn ok_retransmit_fired(&mut self, leg: LegId, at: Instant, now: Instant) {
        let t2 = self.txl.timers().t2;
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        if d.state != State::WaitAck && d.reinvite_ack.is_none() {
            return;
        }
        let Some(o) = d.ok_retransmit.as_mut() else {
            return;
        };
        if o.next != at {
            return;
        }
        if now >= o.give_up {
            // §13.3.1.4: no ACK within 64*T1: confirm and end with BYE.
            info!(call_id = %d.call_id, "no ACK for our 2xx: ending the call");
            self.send_bye(leg, now);
            // The caller learns now; the BYE's outcome does not matter.
            self.report_end_now(leg, EndCause::NoAck);
            return;
        }
        let data = o.data.clone();
        o.interval = (o.interval * 2).min(t2);
        o.next = (at + o.interval).min(o.give_up);
        let next = o.next;
        let peer = d.peer;
        self.out.push_back(super::Output::Transmit { peer, data });
        self.timers
            .arm(next, (leg, DialogTimer::OkRetransmit, next));
    }

    /// Ends the call for the layers above at once while the BYE we just
    /// sent still needs the dialog for its response.
    fn report_end_now(&mut self, leg: LegId, cause: EndCause) {
        if let Some(d) = self.dialogs.get_mut(&leg) {
            if !d.end_reported {
                d.end_reported = true;
                self.emit(SipEvent::Ended { leg, cause });
            }
        }
    }

    pub(super) fn session_expired(&mut self, leg: LegId, at: Instant, now: Instant) {
        let Some(d) = self.dialogs.get(&leg) else {
            return;
        };
        if d.session_deadline != Some(at) {
            return;
        }
        info!(call_id = %d.call_id, "session timer expired without refresh (RFC 4028 §10)");
        self.send_bye(leg, now);
        self.report_end_now(leg, EndCause::SessionExpired);
    }

    pub(super) fn ack_for_dialog(&mut self, req: &Request, head: &RequestHead, _now: Instant) {
        let Some(tag) = &head.to_tag else {
            return;
        };
        let Some(&leg) = self.by_tag.get(&(head.call_id.clone(), tag.clone())) else {
            debug!(call_id = %head.call_id, "ACK for no dialog dropped");
            return;
        };
        let codecs = self.cfg.codecs.clone();
        let srtp = self.srtp_on(self.dialogs.get(&leg).and_then(|d| d.trunk));
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        if d.state != State::WaitAck {
            if d.reinvite_ack == Some(head.cseq) {
                // The ACK for a re-INVITE's 2xx: stop re-sending it.
                d.reinvite_ack = None;
                d.ok_retransmit = None;
            }
            return; // else a retransmitted ACK
        }
        if d.invite.as_ref().is_some_and(|i| i.cseq != head.cseq) {
            return; // the ACK of an older INVITE (§13.2.2.4)
        }
        d.state = State::Confirmed;
        d.ok_retransmit = None;
        // Answered and acknowledged: no response to this INVITE is built
        // again (a CANCEL now gets only its own 200, §9.2; a retransmitted
        // ACK is absorbed above), so its head need not stay for the call.
        d.invite = None;
        let media = if d.offerless && !req.body.is_empty() {
            // §13.2.1: the answer to the offer in our 2xx is in the ACK.
            let offer = d.local_sdp.as_deref().unwrap_or_default();
            match sdp::parse_answer(&req.body, &codecs, srtp, offer) {
                Ok(n) => {
                    d.negotiated = Some(n.clone());
                    Some(n)
                }
                Err(e) => {
                    debug!(call_id = %d.call_id, error = %e, "unusable answer in ACK");
                    None
                }
            }
        } else {
            None
        };
        self.emit(SipEvent::Confirmed {
            leg,
            media: media.map(Box::new),
        });
    }

    pub(super) fn cancel(&mut self, head: &RequestHead, key: TxKey, now: Instant) {
        let invite_key = TxKey {
            method: crate::sip::transaction::TxMethod::Invite,
            ..key.clone()
        };
        if !self.txl.has_server(&invite_key) {
            // §9.2: no matching transaction: 481.
            self.respond(&key, head, 481, None, &[], None, now);
            return;
        }
        self.respond(&key, head, 200, None, &[], None, now);
        if !self.txl.server_is_proceeding(&invite_key) {
            return; // already answered: the CANCEL has no effect
        }
        let Some(&leg) = self.by_invite.get(&invite_key) else {
            return;
        };
        let Some(d) = self.dialogs.get(&leg) else {
            return;
        };
        if let Some(inv) = d.invite.clone() {
            let tag = d.local_tag.clone();
            // §9.2: the INVITE gets 487.
            self.respond(&invite_key, &inv, 487, Some(&tag), &[], None, now);
        }
        self.remove_dialog(leg);
        self.emit(SipEvent::Cancelled(leg));
    }

    pub(super) fn in_dialog(
        &mut self,
        req: Request,
        head: RequestHead,
        key: TxKey,
        peer: Peer,
        now: Instant,
    ) {
        let tag = head.to_tag.clone().unwrap_or_default();
        let Some(&leg) = self.by_tag.get(&(head.call_id.clone(), tag)) else {
            // §12.2.2: a request for a dialog we do not know: 481.
            self.respond(&key, &head, 481, None, &[], None, now);
            return;
        };
        let Some(d) = self.dialogs.get_mut(&leg) else {
            self.respond(&key, &head, 481, None, &[], None, now);
            return;
        };
        // §12.2.2: CSeq must increase.
        if let Some(last) = d.remote_cseq {
            if head.cseq <= last && head.method != Method::Ack {
                let tag = d.local_tag.clone();
                self.respond(&key, &head, 500, Some(&tag), &[], None, now);
                return;
            }
        }
        d.remote_cseq = Some(head.cseq);
        let tag = d.local_tag.clone();
        let _ = peer;
        match head.method {
            Method::Bye => {
                self.respond(&key, &head, 200, Some(&tag), &[], None, now);
                self.remove_dialog(leg);
                self.emit(SipEvent::Ended {
                    leg,
                    cause: EndCause::RemoteBye,
                });
            }
            Method::Invite | Method::Update => self.reoffer(leg, req, head, key, now),
            Method::Options => self.respond(
                &key,
                &head,
                200,
                Some(&tag),
                &super::capabilities(),
                None,
                now,
            ),
            Method::Info => {
                let digit = info_digit(&req);
                self.respond(&key, &head, 200, Some(&tag), &[], None, now);
                if let Some((digit, duration_ms)) = digit {
                    self.emit(SipEvent::InfoDigit {
                        leg,
                        digit,
                        duration_ms,
                    });
                }
            }
            Method::Register
            | Method::Subscribe
            | Method::Message
            | Method::Refer
            | Method::Publish => self.respond(
                &key,
                &head,
                405,
                Some(&tag),
                &[("Allow", message::ALLOW)],
                None,
                now,
            ),
            _ => self.respond(
                &key,
                &head,
                501,
                Some(&tag),
                &[("Allow", message::ALLOW)],
                None,
                now,
            ),
        }
    }

    /// re-INVITE or UPDATE: hold/unhold, address change, session refresh.
    fn reoffer(&mut self, leg: LegId, req: Request, head: RequestHead, key: TxKey, now: Instant) {
        let codecs = self.cfg.codecs.clone();
        let dtmf_pt = self.cfg.dtmf_payload_type;
        let trunk = self.dialogs.get(&leg).and_then(|d| d.trunk);
        let srtp = self.srtp_on(trunk);
        let local = self.local_on(trunk);
        let session = session_expires(&req);
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        let contact = local.contact_on(d.peer.transport, d.peer.addr.ip());
        let tag = d.local_tag.clone();
        if d.state == State::Early || d.state == State::Terminating {
            // An UPDATE before answer or a re-INVITE while we hang up.
            self.respond(&key, &head, 491, Some(&tag), &[], None, now);
            return;
        }
        if head.method == Method::Invite {
            if let Some(p) = &d.pending_reinvite {
                if self.txl.server_is_proceeding(p) {
                    // §14.2: one re-INVITE at a time: 500 with Retry-After
                    // 0–10 s.
                    self.respond(
                        &key,
                        &head,
                        500,
                        Some(&tag),
                        &[("Retry-After", "3")],
                        None,
                        now,
                    );
                    return;
                }
            }
        }
        let no_offer = req.body.iter().all(u8::is_ascii_whitespace);
        let (body, changed) = if no_offer && head.method == Method::Update {
            // RFC 3311 §5.2: an UPDATE without an offer (a session refresh,
            // RFC 4028 §7.4) is answered without one: an SDP in its 2xx
            // would be an offer where none may be.
            (None, None)
        } else {
            let Some(local) = d.local_media else {
                self.respond(&key, &head, 491, Some(&tag), &[], None, now);
                return;
            };
            if no_offer {
                // A re-INVITE without an offer: we offer our current session
                // again (§14.2), a pure refresh.
                d.sdp_version += 1;
                // The stream keeps its key (RFC 4568 §7.1.4 lets a re-offer
                // reuse it).
                let srtp_key = d
                    .negotiated
                    .as_ref()
                    .and_then(|n| n.stream.srtp.as_ref())
                    .map_or_else(SrtpKey::random, |s| s.local.clone());
                let offer = sdp::build_offer(
                    local,
                    &codecs,
                    dtmf_pt,
                    d.sdp_session,
                    d.sdp_version,
                    Direction::SendRecv,
                    &sdp::OfferCrypto::with_key(srtp, srtp_key),
                );
                (Some(offer), None)
            } else {
                let current = d.negotiated.as_ref().map(|n| n.stream.codec);
                match sdp::parse_offer(&req.body, srtp)
                    .map_err(|e| (e.status_code(), 399, e.to_string()))
                    .and_then(|o| same_codec(&o, current, &codecs))
                {
                    Ok(mut n) => {
                        // Keep our key while the suite stays (RFC 4568
                        // §7.1.4), so a hold or refresh does not re-key the
                        // stream we send.
                        let old = d.negotiated.as_ref().and_then(|o| o.stream.srtp.as_ref());
                        if let (Some(new), Some(old)) = (n.stream.srtp.as_mut(), old) {
                            if new.suite == old.suite {
                                new.local = old.local.clone();
                            }
                        }
                        d.sdp_version += 1;
                        let answer = sdp::build_answer(&n, local, d.sdp_session, d.sdp_version);
                        d.negotiated = Some(n.clone());
                        (Some(answer), Some(n))
                    }
                    Err((status, code, why)) => {
                        // §14.2: a failed re-offer leaves the session, its
                        // media and its timers as they were.
                        info!(call_id = %d.call_id, status, reason = %why, "re-offer refused; the call goes on");
                        let warning = format!("{code} tpswitch \"{}\"", why.replace('"', "'"));
                        self.respond(
                            &key,
                            &head,
                            status,
                            Some(&tag),
                            &[("Warning", &warning)],
                            None,
                            now,
                        );
                        return;
                    }
                }
            }
        };
        let mut extra: Vec<(String, String)> = vec![
            ("Contact".into(), contact),
            ("Allow".into(), message::ALLOW.into()),
            ("Supported".into(), message::SUPPORTED.into()),
        ];
        // RFC 4028 §9: any accepted re-INVITE or UPDATE refreshes the
        // session; a peer that asks for a timer on a dialog that had none
        // (a carrier refreshing a leg we placed) gets one, and refreshes.
        let asks_timer = message::has_token(&req.headers, "Supported", "timer")
            || message::has_token(&req.headers, "Require", "timer");
        let interval = match (session, d.session_interval) {
            (Some(se), Some(_)) => Some(se),
            (Some(se), None) if asks_timer => Some(se),
            (_, current) => current,
        };
        if let Some(se) = interval {
            let se = se.max(self.cfg.min_se);
            d.session_interval = Some(se);
            let at = now + session_guard(se);
            d.session_deadline = Some(at);
            self.timers.arm(at, (leg, DialogTimer::SessionExpiry, at));
            extra.push(("Session-Expires".into(), format!("{se};refresher=uac")));
            extra.push(("Require".into(), "timer".into()));
        }
        if let Some(b) = &body {
            d.local_sdp = Some(b.clone());
        }
        extra.insert(0, ("Server".into(), self.cfg.local.user_agent.clone()));
        let refs: Vec<Extra<'_>> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let data = Bytes::from(message::response(
            &head,
            200,
            "OK",
            Some(&tag),
            &refs,
            body.as_deref().map(|b| ("application/sdp", b)),
        ));
        if head.method == Method::Invite {
            d.pending_reinvite = Some(key.clone());
            // §13.3.1.4 holds for a re-INVITE too: the transaction layer
            // only absorbs the peer's retransmissions (RFC 6026 §7.1), so
            // over UDP we re-send the 2xx until its ACK; a peer that never
            // gets it would time the re-INVITE out and end the call (§14.1).
            let t = self.txl.timers();
            if !d.peer.transport.reliable() {
                let next = now + t.t1;
                d.reinvite_ack = Some(head.cseq);
                d.ok_retransmit = Some(OkRetransmit {
                    data: data.clone(),
                    interval: t.t1,
                    next,
                    give_up: now + t.t1 * 64,
                });
                self.timers
                    .arm(next, (leg, DialogTimer::OkRetransmit, next));
            }
        }
        self.txl.respond(&key, 200, data, now);
        if let Some(media) = changed {
            self.emit(SipEvent::MediaChanged {
                leg,
                media: Box::new(media),
            });
        }
    }
}

/// Negotiates a re-offer (RFC 3264 §8) keeping the codec the stream runs:
/// an offer that still lists it keeps it, whatever its place; one that
/// does not would change the codec mid-call, which the switch refuses (488
/// with Warning 305, §20.43) so the session stays as it was (§14.2).
/// Before any codec is settled the ordinary rules apply. Errors are (status,
/// warning code, reason).
fn same_codec(
    offer: &sdp::RemoteMedia,
    current: Option<Codec>,
    ours: &[Codec],
) -> Result<sdp::Negotiated, (u16, u16, String)> {
    let Some(codec) = current else {
        return sdp::negotiate(offer, ours).map_err(|e| (e.status_code(), 399, e.to_string()));
    };
    if !offer.codecs.iter().any(|(c, _)| *c == codec) {
        return Err((
            488,
            305,
            format!(
                "the call runs {}; a codec change mid-call is not supported",
                codec.name()
            ),
        ));
    }
    sdp::negotiate(offer, &[codec]).map_err(|e| (e.status_code(), 305, e.to_string()))
}

fn strip_tag(value: &str) -> String {
    // Remove a ;tag= header parameter (after the URI), keep everything else.
    let na = NameAddr::read(value);
    let mut out = na.head.to_owned();
    for (k, v) in na.params().filter(|(k, _)| !k.eq_ignore_ascii_case("tag")) {
        out.push(';');
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// RFC 4028 §10: the refresh is due before the interval minus
/// min(32 s, interval/3); we end the session once that margin is also gone.
fn session_guard(se: u32) -> Duration {
    let se = u64::from(se);
    Duration::from_secs(se.saturating_sub((se / 3).min(32)).max(1) + (se / 3).min(32))
}

fn session_expires(req: &Request) -> Option<u32> {
    let v = message::header_values(&req.headers, "Session-Expires")
        .into_iter()
        .chain(message::header_values(&req.headers, "x"))
        .next()?;
    v.split(';').next()?.trim().parse().ok()
}

/// Our own SDP's `o=` session id and version (RFC 4566 §5.2): a later
/// offer or answer in the dialog keeps the id and raises the version
/// (RFC 3264 §8).
pub(super) fn origin_of(body: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let o = text.lines().find_map(|l| l.strip_prefix("o="))?;
    let mut f = o.split_whitespace().skip(1);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Our own SDP's connection address and audio port.
pub(super) fn local_media_of(body: &[u8]) -> Option<std::net::SocketAddr> {
    let text = std::str::from_utf8(body).ok()?;
    let mut ip = None;
    let mut port = None;
    for line in text.lines() {
        if let Some(c) = line
            .strip_prefix("c=IN IP4 ")
            .or_else(|| line.strip_prefix("c=IN IP6 "))
        {
            ip = c.trim().parse().ok();
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m.split_whitespace().next().and_then(|p| p.parse().ok());
        }
    }
    Some(std::net::SocketAddr::new(ip?, port?))
}

/// application/dtmf-relay (`Signal=5\r\nDuration=160`) or application/dtmf
/// (`5`) bodies of SIP INFO.
fn info_digit(req: &Request) -> Option<(char, u32)> {
    let ct = message::content_type(&req.headers)?;
    let body = std::str::from_utf8(&req.body).ok()?;
    let (signal, duration) = match ct.as_str() {
        "application/dtmf-relay" => {
            let mut signal = None;
            let mut duration = 250;
            for line in body.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("signal") {
                        signal = v.trim().chars().next();
                    } else if k.trim().eq_ignore_ascii_case("duration") {
                        duration = v.trim().parse().unwrap_or(250);
                    }
                }
            }
            (signal?, duration)
        }
        "application/dtmf" => (body.trim().chars().next()?, 250),
        _ => return None,
    };
    let signal = signal.to_ascii_uppercase();
    matches!(signal, '0'..='9' | '*' | '#' | 'A'..='D').then_some((signal, duration))
}

/// The carrier's address a front proxy wrote in the trunk's
/// `source_header` ("ip:port", "[ipv6]:port"). Anyone can write a header,
/// so it is believed only when the request's real source is in that
/// trunk's `allow` (the trunk may also be the registration's, whatever the
/// source); a value that is not an address is ignored.
pub(super) fn carrier_source_of(
    req: &Request,
    trunk: &crate::sip::trunk::TrunkRoute,
    peer: std::net::SocketAddr,
    call_id: &str,
) -> Option<std::net::SocketAddr> {
    let name = trunk.source_header.as_deref()?;
    if !trunk.allow.iter().any(|n| n.contains(&peer.ip())) {
        return None;
    }
    // The last one is the nearest proxy's (RFC 3261 §7.3.1 keeps the order).
    let value = message::header_values(&req.headers, name).pop()?;
    match value.trim().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            debug!(call_id = %call_id, header = %name, "source header is not ip:port; ignored");
            None
        }
    }
}

fn caller_info(req: &Request) -> CallerInfo {
    let c = access::caller_candidates(req);
    CallerInfo {
        asserted: c.pai,
        from_user: c.from_user,
        display_name: c.from_display,
        withheld: c.anonymous,
        trunk: String::new(),
        asserted_verstat: c.pai_verstat,
        from_verstat: c.from_verstat,
    }
}
