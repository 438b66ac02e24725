//! Dialog state (§12) for both roles, and the requests a dialog sends.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::api::{DialRequest, LegId};
use super::super::message::{self, header_uri, Extra, RequestHead, MAGIC_COOKIE};
use super::super::nat::Nat;
use super::super::transaction::{Peer, Transport, TxKey};
use super::super::uri;
use crate::sdp::Negotiated;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Uas,
    Uac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// UAS: INVITE received, no final response yet. UAC: INVITE sent.
    Early,
    /// UAS: 2xx sent, waiting for the ACK (§13.3.1.4).
    WaitAck,
    Confirmed,
    /// We sent BYE and wait for its response.
    Terminating,
}

/// §13.3.1.4: the UAS core retransmits its 2xx, T1 doubling to T2, until
/// the ACK arrives or 64*T1 has passed.
#[derive(Debug)]
pub struct OkRetransmit {
    pub data: Bytes,
    pub interval: Duration,
    pub next: Instant,
    pub give_up: Instant,
}

/// An outbound attempt's own state.
#[derive(Debug)]
pub struct Uac {
    pub request: DialRequest,
    /// Request-URI of the current INVITE.
    pub ruri: String,
    pub invite_key: TxKey,
    /// The INVITE's top Via value (CANCEL and non-2xx ACK reuse it, §9.1,
    /// §17.1.1.3).
    pub invite_via: String,
    pub invite_cseq: u32,
    pub auth_tried: bool,
    pub redirects: u32,
    pub got_provisional: bool,
    pub cancel_requested: bool,
    pub cancel_sent: bool,
    /// The ACK we sent for the 2xx, re-sent when the 2xx is retransmitted.
    pub ack: Option<Bytes>,
    /// The current trunk's other servers, in the order RFC 3263 §4.3
    /// tries them after a timeout, a transport failure or a 503/408,
    /// before the leg moves to the next trunk.
    pub alternates: std::collections::VecDeque<Peer>,
    /// The trunk (index in the core's trunk set) of the current INVITE;
    /// None while the leg waits for one.
    pub trunk: Option<usize>,
    /// Trunks this leg has tried (and failed on), in order.
    pub tried: Vec<usize>,
    /// The SipEvent::Queued report was given (once per leg).
    pub queued_reported: bool,
}

#[derive(Debug)]
pub struct Dialog {
    pub leg: LegId,
    pub role: Role,
    pub state: State,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our From (UAC) / To (UAS) value without tag.
    pub local_uri: String,
    /// Their From (UAS) / To (UAC) value without tag.
    pub remote_uri: String,
    /// Contact of the peer (§12.1.1, §12.1.2).
    pub remote_target: Option<String>,
    /// Route set in the order our requests must list it.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    /// Where the dialog's messages come from and go to when no Contact or
    /// route gives an address we can use.
    pub peer: Peer,
    /// UAS: the INVITE we answer (responses are built from it), until its
    /// ACK: nothing answers it after that. Boxed, as `uac`: most of a
    /// call's life the dialog holds neither (issue 15, memory per call).
    pub invite: Option<Box<RequestHead>>,
    pub invite_key: Option<TxKey>,
    /// The INVITE had no SDP: we offer in the 2xx, the answer is in the ACK.
    pub offerless: bool,
    /// Our current SDP, the local media address in it, and its o= version.
    pub local_sdp: Option<Vec<u8>>,
    pub local_media: Option<SocketAddr>,
    pub sdp_session: u64,
    pub sdp_version: u64,
    pub negotiated: Option<Negotiated>,
    pub ok_retransmit: Option<OkRetransmit>,
    /// RFC 4028: the negotiated interval and when the session expires
    /// without a refresh.
    pub session_interval: Option<u32>,
    pub session_deadline: Option<Instant>,
    /// A re-INVITE or UPDATE we are still answering (§14.2).
    pub pending_reinvite: Option<TxKey>,
    /// CSeq of a re-INVITE whose 2xx we re-send until its ACK (§13.3.1.4).
    pub reinvite_ack: Option<u32>,
    /// `Ended` was already emitted (we sent BYE on our own and told the
    /// call at once).
    pub end_reported: bool,
    /// In-dialog requests go to `peer` (the trunk's proxy on legs we place,
    /// the INVITE's source on calls we receive) whatever the
    /// far end's Contact or Record-Route name; the route set still travels
    /// in Route headers for the proxy to follow (as a FreeSWITCH gateway's
    /// outbound proxy does). A carrier SBC that does not record-route then
    /// still sees our ACK and BYE, and a 200 cannot aim them at a third
    /// party.
    pub via_trunk: bool,
    /// The trunk (index in the core's trunk set) the dialog is on: the one
    /// an inbound call is attributed to, or the one an outbound leg's
    /// current INVITE went to. Its SRTP policy and NAT plan apply.
    pub trunk: Option<usize>,
    pub uac: Option<Box<Uac>>,
}

/// Our local identity for building messages.
#[derive(Debug, Clone)]
pub struct Local {
    /// host:port put in Via sent-by and Contact toward local peers (and
    /// toward every peer when `nat` has no external address).
    pub hostport: String,
    pub user_agent: String,
    /// The external addresses and the networks that do not need them.
    pub nat: Nat,
    /// host:port of the TLS listener (`sip.tls_bind`), when there is one.
    pub tls_hostport: Option<String>,
}

impl Local {
    pub fn contact(&self) -> String {
        format!("<sip:tpswitch@{}>", self.hostport)
    }

    /// host:port for Via sent-by and Contact of a UDP/TCP message to `dest`.
    pub fn hostport_for(&self, dest: IpAddr) -> Cow<'_, str> {
        self.nat.signaling_for(dest, &self.hostport)
    }

    /// Our Contact in a UDP/TCP message to `dest`.
    pub fn contact_for(&self, dest: IpAddr) -> String {
        format!("<sip:tpswitch@{}>", self.hostport_for(dest))
    }

    /// Contact for a dialog on `transport` with `dest`: over TLS it names the
    /// TLS listener with `;transport=tls`, so the peer's in-dialog requests
    /// come back over TLS (§26.2.1; a `sips:` Contact would demand TLS on
    /// every hop beyond the trunk too, §26.2.2, which a carrier may not
    /// offer).
    pub fn contact_on(&self, transport: Transport, dest: IpAddr) -> String {
        match (&self.tls_hostport, transport) {
            (Some(_), Transport::Tls { .. }) => format!(
                "<sip:tpswitch@{};transport=tls>",
                self.sent_by(transport, dest)
            ),
            _ => self.contact_for(dest),
        }
    }

    /// Via header value for a request sent on `transport` to `dest`
    /// (§18.1.1), with RFC 5923's `alias` over TLS: the trunk may send its
    /// requests back on the connection we opened instead of opening one.
    pub fn via(&self, transport: Transport, dest: IpAddr, branch: &str) -> String {
        let alias = if matches!(transport, Transport::Tls { .. }) {
            ";alias"
        } else {
            ""
        };
        format!(
            "SIP/2.0/{} {};branch={branch};rport{alias}",
            transport.via_token(),
            self.sent_by(transport, dest)
        )
    }

    /// The Via sent-by for `transport` toward `dest`: the TLS listener over
    /// TLS (when we have one), else the UDP/TCP address; either as the
    /// external address for peers outside `local_networks`.
    pub fn sent_by(&self, transport: Transport, dest: IpAddr) -> Cow<'_, str> {
        match (&self.tls_hostport, transport) {
            (Some(hp), Transport::Tls { .. }) => match self.nat.signaling_for(dest, hp) {
                // Behind a NAT the external host, with the TLS listener's port.
                Cow::Owned(ext) => {
                    let host = ext.rsplit_once(':').map_or(ext.as_str(), |(h, _)| h);
                    let port = hp.rsplit_once(':').map_or("5061", |(_, p)| p);
                    Cow::Owned(format!("{host}:{port}"))
                }
                private => private,
            },
            _ => self.hostport_for(dest),
        }
    }
}

pub fn new_branch(id: u64) -> String {
    format!("{MAGIC_COOKIE}-tp{id:016x}")
}

impl Dialog {
    /// An inbound call that counts against `sip.max_calls`: a UAS dialog not
    /// yet ending. The SIP core keeps the count of these as they change.
    pub(super) fn holds_a_call(&self) -> bool {
        self.role == Role::Uas && self.state != State::Terminating
    }

    pub fn local_header(&self) -> String {
        format!("{};tag={}", self.local_uri, self.local_tag)
    }

    pub fn remote_header(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("{};tag={t}", self.remote_uri),
            None => self.remote_uri.clone(),
        }
    }

    /// Where an in-dialog request goes: the trunk when `via_trunk`, else
    /// (§12.2.1.1 and §8.1.2) the first route, else the remote target; when
    /// that is a name we cannot resolve, the peer the dialog was built with.
    pub fn next_hop(&self) -> Peer {
        if self.via_trunk {
            return self.peer;
        }
        let hop = self
            .route_set
            .first()
            .map(|r| header_uri(r).to_owned())
            .or_else(|| {
                self.remote_target
                    .as_deref()
                    .map(|t| header_uri(t).to_owned())
            });
        match hop.as_deref().and_then(uri::socket_addr) {
            Some(addr) if !self.peer.transport.reliable() => Peer {
                transport: self.peer.transport,
                addr,
            },
            // Over TCP the dialog's connection is reused (§18.1.1 allows it,
            // and a trunk expects it).
            _ => self.peer,
        }
    }

    /// The Request-URI and Route header values of an in-dialog request
    /// (§12.2.1.1). A loose router first in the route set (`;lr`, §16.12)
    /// leaves the remote target in the Request-URI and the route set in
    /// Route; a strict router takes the Request-URI itself (without URI
    /// headers, §19.1.5) and the remote target goes last in Route.
    /// `fallback` is the Request-URI when the peer gave no Contact.
    pub fn target_and_routes(&self, fallback: &str) -> (String, Vec<String>) {
        let target = self
            .remote_target
            .as_deref()
            .map(header_uri)
            .unwrap_or(fallback)
            .to_owned();
        match self.route_set.split_first() {
            Some((first, rest)) if !is_loose_route(header_uri(first)) => {
                let uri = header_uri(first);
                let ruri = uri.split('?').next().unwrap_or(uri).to_owned();
                let mut routes = rest.to_vec();
                routes.push(format!("<{target}>"));
                (ruri, routes)
            }
            _ => (target, self.route_set.clone()),
        }
    }

    /// Writes an in-dialog request (§12.2.1.1). Returns its bytes and its
    /// branch.
    pub fn request(
        &mut self,
        method: &str,
        local: &Local,
        branch: &str,
        extra: &[Extra<'_>],
        body: Option<(&str, &[u8])>,
    ) -> Vec<u8> {
        self.local_cseq += 1;
        let (ruri, routes) = self.target_and_routes(header_uri(&self.remote_uri));
        let mut s = String::with_capacity(512);
        let dest = self.next_hop().addr.ip();
        let _ = write!(
            s,
            "{method} {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\n",
            local.via(self.peer.transport, dest, branch)
        );
        for r in &routes {
            let _ = write!(s, "Route: {r}\r\n");
        }
        let _ = write!(
            s,
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nContact: {}\r\nUser-Agent: {}\r\n",
            self.local_header(),
            self.remote_header(),
            self.call_id,
            self.local_cseq,
            local.contact_on(self.peer.transport, dest),
            local.user_agent
        );
        message::finish(s, extra, body)
    }
}

/// Does a Route URI carry the `lr` parameter (§19.1.1, loose routing)?
fn is_loose_route(uri: &str) -> bool {
    let no_headers = uri.split('?').next().unwrap_or(uri);
    no_headers.split(';').skip(1).any(|p| {
        p.split('=')
            .next()
            .is_some_and(|k| k.trim().eq_ignore_ascii_case("lr"))
    })
}
