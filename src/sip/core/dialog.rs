//! Dialog state (§12) for both roles, and the requests a dialog sends.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::api::{DialRequest, LegId};
use super::super::message::{self, header_uri, Extra, RequestHead, MAGIC_COOKIE};
use super::super::transaction::{Peer, TxKey};
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
    /// UAS: the INVITE we answer (responses are built from it).
    pub invite: Option<RequestHead>,
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
    /// `Ended` was already emitted (we sent BYE on our own and told the
    /// call at once).
    pub end_reported: bool,
    pub uac: Option<Uac>,
}

/// Our local identity for building messages.
#[derive(Debug, Clone)]
pub struct Local {
    /// host:port put in Via sent-by and Contact.
    pub hostport: String,
    pub user_agent: String,
}

impl Local {
    pub fn contact(&self) -> String {
        format!("<sip:tpswitch@{}>", self.hostport)
    }
}

pub fn new_branch(id: u64) -> String {
    format!("{MAGIC_COOKIE}-tp{id:016x}")
}

impl Dialog {
    pub fn local_header(&self) -> String {
        format!("{};tag={}", self.local_uri, self.local_tag)
    }

    pub fn remote_header(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("{};tag={t}", self.remote_uri),
            None => self.remote_uri.clone(),
        }
    }

    /// Where an in-dialog request goes (§12.2.1.1 and §8.1.2): the first
    /// loose route, else the remote target; when that is a name we cannot
    /// resolve, the peer the dialog was built with.
    pub fn next_hop(&self) -> Peer {
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
        let ruri = self
            .remote_target
            .as_deref()
            .map(header_uri)
            .unwrap_or_else(|| header_uri(&self.remote_uri))
            .to_owned();
        let mut s = String::with_capacity(512);
        let transport = if self.peer.transport.reliable() {
            "TCP"
        } else {
            "UDP"
        };
        let _ = write!(
            s,
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{transport} {};branch={branch};rport\r\nMax-Forwards: 70\r\n",
            local.hostport
        );
        for r in &self.route_set {
            let _ = write!(s, "Route: {r}\r\n");
        }
        let _ = write!(
            s,
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nContact: {}\r\nUser-Agent: {}\r\n",
            self.local_header(),
            self.remote_header(),
            self.call_id,
            self.local_cseq,
            local.contact(),
            local.user_agent
        );
        message::finish(s, extra, body)
    }
}
