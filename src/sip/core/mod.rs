//! The SIP core, sans-IO: datagrams, commands and `now` go in; bytes to send
//! and typed events come out, with the next deadline.
//!
//! It owns the transaction layer (§17), the dialogs (§12), the UAS and UAC
//! cores (§8, §13–§15) and the trunk policy. The tokio shell in
//! `endpoint.rs` only moves bytes and time.

mod dialog;
mod flood_gate;
mod registration;
mod targets;
mod uac;
mod uas;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flood;
#[cfg(test)]
mod tests_midcall;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipnet::IpNet;
use rsipstack::sip::{Method, Request, Response};
use tracing::{debug, info, warn};

use super::api::{LegId, SipCommand, SipEvent};
use super::flood::{FloodGuard, FloodPolicy};
use super::inspect::{self, Accepted, Inspection, Limits};
use super::log_limit::{LogLimiter, Source, Verdict, DEFAULT_MAX_SOURCES};
use super::message::{self, Extra, RequestHead, ResponseHead};
use super::timer::TimerQueue;
use super::transaction::{Peer, Timers, TransactionLayer, Transport, TxEvent, TxKey};
use super::trunk::TrunkSet;
use crate::media::codec::Codec;
use crate::media::srtp::SrtpPolicy;

pub use dialog::Local;
use dialog::{Dialog, Role};
pub use registration::RegistrationStatus;

/// What to do with requests from sources outside `trunk.allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    /// 403 Forbidden.
    Reject,
    /// Say nothing (a scanner learns nothing).
    Drop,
}

pub use super::trunk::{Credentials, TrunkRoute};

#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub timers: Timers,
    pub local: Local,
    pub allow: Vec<IpNet>,
    pub untrusted: Untrusted,
    pub max_calls: usize,
    /// Server transactions held at once; beyond it a new request gets a
    /// stateless 503 (each lingers up to 64*T1, so a flood of distinct
    /// requests could otherwise grow memory without bound).
    pub max_transactions: usize,
    pub retry_after: Duration,
    pub codecs: Vec<Codec>,
    pub dtmf_payload_type: u8,
    /// RFC 4028: the interval we ask for and the smallest we accept.
    pub session_expires: u32,
    pub min_se: u32,
    /// The trunks outbound INVITEs go to, first tried first; an inbound
    /// request is the trunk's whose `allow` holds its source. A trunk's
    /// servers come from RFC 3263 ([`SipCommand::TrunkTargets`]).
    pub trunks: Vec<TrunkRoute>,
    pub limits: Limits,
    /// Outbound registrations (RFC 3261 §10), one per registering trunk
    /// (each names its trunk), started by `SipCore::start`.
    pub registrations: Vec<crate::sip::register::RegisterConfig>,
}

/// The part of [`CoreConfig`] a reload may change while calls run: who may
/// send us requests and how much we take on. The rest (our address, the
/// trunk's, timers, codecs, credentials) stays as the core was built.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub allow: Vec<IpNet>,
    pub untrusted: Untrusted,
    pub max_calls: usize,
    pub max_transactions: usize,
    pub retry_after: Duration,
    /// `[sip.flood]`: per-source limits, bans, scanners, REGISTER.
    pub flood: FloodPolicy,
}

/// Something for the shell to do.
#[derive(Debug, Clone)]
pub enum Output {
    Transmit { peer: Peer, data: Bytes },
    Event(SipEvent),
}

/// Counters for metrics and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct CoreStats {
    pub requests: u64,
    pub responses: u64,
    pub rejected_untrusted: u64,
    pub dropped: u64,
    pub bad_requests: u64,
    pub unmatched_responses: u64,
    /// Requests answered 503 at `max_transactions`.
    pub overloaded: u64,
    /// Requests from outside `trunk.allow` left unanswered (`untrusted =
    /// "drop"`, or an ACK, which is never answered).
    pub untrusted_dropped: u64,
    /// Outbound attempts a trunk failed (5xx, 408 before ringing, Timer B)
    /// that moved on to the next trunk or ended the leg.
    pub trunk_failures: u64,
    /// Outbound legs that had to wait for a trunk (max_calls, max_cps,
    /// Retry-After).
    pub outbound_queued: u64,
    /// Requests refused by `sip.flood`, by reason: the one that went over
    /// a limit, those from a banned source, scanner user agents, REGISTER
    /// (dropped, or answered 405).
    pub flood_rate: u64,
    pub flood_banned: u64,
    pub flood_scanner: u64,
    pub flood_register: u64,
}

/// At most one WARN per untrusted source per this interval (see
/// `log_limit.rs`); every packet is still counted in `CoreStats`.
const UNTRUSTED_LOG_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialogTimer {
    OkRetransmit,
    SessionExpiry,
    /// A queued outbound leg may find a trunk now (a token or a
    /// Retry-After fell due).
    DialRetry,
}

/// What a client transaction was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientPurpose {
    Invite,
    Cancel,
    Bye,
}

/// §8.2.2.2 merged-request detection: (Call-ID, From tag, CSeq) of ongoing
/// server transactions.
type MergeKey = (String, String, u32, u8);

pub struct SipCore {
    cfg: CoreConfig,
    /// Does a called number (as written) belong to a dispatch mapping?
    dialplan: Box<dyn Fn(&str) -> bool + Send>,
    txl: TransactionLayer,
    out: VecDeque<Output>,
    /// Boxed: a `Dialog` is 1.3 KB, and a map of them inline keeps its
    /// peak's buckets (a table of 4 096 for 2 000 calls, 5.4 MB) for the
    /// rest of the process, because a `HashMap` never shrinks by itself.
    /// Boxed, a bucket is 16 bytes and a dialog's memory goes with it
    /// (issue 15, RSS after a run).
    dialogs: HashMap<LegId, Box<Dialog>>,
    /// UAS dialogs not yet terminating, what `sip.max_calls` limits. Kept as
    /// a count, changed where a dialog is added, terminates or goes: every
    /// INVITE reads it, and counting the dialogs there cost O(calls) per
    /// INVITE, thousands of cache misses with the 5 000 calls that 720
    /// short calls a second keep up (issue 15; `perf` showed it in
    /// `initial_invite`). Debug builds check it against the count.
    active_uas: usize,
    /// (Call-ID, local tag) → leg.
    by_tag: HashMap<(String, String), LegId>,
    /// Server INVITE transaction → leg (CANCEL, answer).
    by_invite: HashMap<TxKey, LegId>,
    /// Server transactions of in-dialog requests we answer later.
    clients: HashMap<TxKey, (LegId, ClientPurpose)>,
    merged: HashMap<MergeKey, TxKey>,
    merged_by_key: HashMap<TxKey, MergeKey>,
    timers: TimerQueue<(LegId, DialogTimer, Instant)>,
    ids: IdGen,
    stats: CoreStats,
    untrusted_log: LogLimiter,
    /// Per-source limits and bans (`sip::flood`), checked before parsing.
    flood: FloodGuard,
    flood_log: LogLimiter,
    registrations: Vec<crate::sip::register::Registration>,
    /// REGISTER client transactions → index in `registrations`.
    reg_clients: HashMap<TxKey, usize>,
    /// Each trunk's servers (RFC 3263) and keepalive, by trunk index;
    /// ordered per call by [`super::dns::order`].
    servers: Vec<targets::Servers>,
    /// OPTIONS keepalive transactions in flight → (trunk index, the
    /// prober's probe id).
    probes: HashMap<TxKey, (usize, u64)>,
    /// Bumped whenever a target's health changes, so the shell republishes.
    health_version: u64,
    /// Trunk selection, limits and Retry-After for outbound legs.
    trunks: TrunkSet,
    /// Outbound legs waiting for a trunk (first come, first served).
    dial_queue: VecDeque<LegId>,
    /// A trunk slot or token may have freed: look at the queue.
    dial_queue_due: bool,
    /// The `now` of the latest input (a transaction timeout reported while
    /// outputs are drained starts the next trunk's INVITE at that time).
    now: Option<Instant>,
    /// Set by [`SipCommand::Drain`]: new INVITEs (and OPTIONS) get 503.
    draining: bool,
}

/// Unique tags, branches and Call-IDs (§19.3: tags and Call-IDs must be
/// globally unique and unguessable enough; 64 random bits plus a counter).
struct IdGen {
    state: u64,
}

impl IdGen {
    fn new(seed: u64) -> Self {
        Self { state: seed | 1 }
    }

    /// splitmix64: cheap, well distributed, and seeded from the OS RNG.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl SipCore {
    pub fn new(cfg: CoreConfig, dialplan: Box<dyn Fn(&str) -> bool + Send>) -> Self {
        let servers = cfg.trunks.iter().map(targets::Servers::new).collect();
        Self {
            txl: TransactionLayer::new(cfg.timers),
            trunks: TrunkSet::new(cfg.trunks.clone()),
            dial_queue: VecDeque::new(),
            dial_queue_due: false,
            now: None,
            cfg,
            dialplan,
            out: VecDeque::new(),
            dialogs: HashMap::new(),
            active_uas: 0,
            by_tag: HashMap::new(),
            by_invite: HashMap::new(),
            clients: HashMap::new(),
            merged: HashMap::new(),
            merged_by_key: HashMap::new(),
            timers: TimerQueue::default(),
            ids: IdGen::new(rand::random()),
            stats: CoreStats::default(),
            untrusted_log: LogLimiter::new(UNTRUSTED_LOG_INTERVAL, DEFAULT_MAX_SOURCES),
            flood: FloodGuard::new(FloodPolicy::default()),
            flood_log: LogLimiter::new(UNTRUSTED_LOG_INTERVAL, DEFAULT_MAX_SOURCES),
            registrations: Vec::new(),
            reg_clients: HashMap::new(),
            servers,
            probes: HashMap::new(),
            health_version: 0,
            draining: false,
        }
    }

    /// The `[sip.flood]` policy (the core starts with its defaults; a
    /// reload sends it again in [`Policy`]).
    pub fn set_flood(&mut self, policy: FloodPolicy) {
        self.flood.set_policy(policy);
    }

    /// Whether new calls are refused because the switch is shutting down.
    pub fn draining(&self) -> bool {
        self.draining
    }

    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// Inbound calls currently held (for `max_calls`).
    pub fn active_calls(&self) -> usize {
        debug_assert_eq!(
            self.active_uas,
            self.dialogs.values().filter(|d| d.holds_a_call()).count(),
            "the active-call count drifted from the dialogs"
        );
        self.active_uas
    }

    /// TCP connections a transaction or dialog still needs: the transport
    /// closes idle ones only outside this set.
    pub fn tcp_connections_in_use(&self) -> std::collections::HashSet<u64> {
        let mut out = std::collections::HashSet::new();
        self.txl.tcp_connections(&mut out);
        for d in self.dialogs.values() {
            if let Some(conn) = d.peer.transport.conn() {
                out.insert(conn);
            }
        }
        out
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.pump_transactions();
        self.out.pop_front()
    }

    pub fn deadline(&self) -> Option<Instant> {
        [
            self.txl.deadline(),
            self.timers.deadline(),
            self.registrations_deadline(),
            self.probers_deadline(),
            self.flood.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The SRTP policy (which offers and answers are acceptable) of a
    /// call on trunk `trunk`; a call no trunk claims follows the first.
    fn srtp_on(&self, trunk: Option<usize>) -> SrtpPolicy {
        trunk
            .or(Some(0))
            .and_then(|i| self.trunks.route(i))
            .map_or(SrtpPolicy::Off, |r| r.srtp)
    }

    /// Who we are toward trunk `trunk`: its own NAT plan (Via, Contact,
    /// From host) when it has one, else the switch's.
    fn local_on(&self, trunk: Option<usize>) -> Local {
        let mut local = self.cfg.local.clone();
        if let Some(nat) = trunk
            .and_then(|i| self.trunks.route(i))
            .and_then(|r| r.nat.as_ref())
        {
            local.nat = nat.clone();
        }
        local
    }

    fn emit(&mut self, ev: SipEvent) {
        self.out.push_back(Output::Event(ev));
    }

    fn transmit(&mut self, peer: Peer, data: Vec<u8>) {
        self.out.push_back(Output::Transmit {
            peer,
            data: Bytes::from(data),
        });
    }

    fn tag(&mut self) -> String {
        format!("{:012x}", self.ids.next() >> 16)
    }

    fn branch(&mut self) -> String {
        dialog::new_branch(self.ids.next())
    }

    // ------------------------------------------------------------- inbound

    /// One message from the network: a UDP datagram or a framed TCP message.
    pub fn handle_message(&mut self, data: &[u8], peer: Peer, now: Instant) {
        self.tick(now);
        self.message(data, peer, now);
        self.pump_dial_queue(now);
    }

    fn message(&mut self, data: &[u8], peer: Peer, now: Instant) {
        // A socket bound to `[::]` takes IPv4 too and reports such sources
        // as IPv4-mapped `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2). Canonicalise
        // once, here where every message enters, so the allow-list, the
        // dialogs, `received=` (§18.2.1) and the logs all see plain IPv4.
        let peer = Peer {
            addr: SocketAddr::new(peer.addr.ip().to_canonical(), peer.addr.port()),
            ..peer
        };
        let trusted = self.cfg.allow.iter().any(|n| n.contains(&peer.addr.ip()));
        // The cheapest point: before the message is parsed.
        if self.flood_refused(data, peer, trusted, now) {
            return;
        }
        match inspect::inspect(data, &self.cfg.limits) {
            Inspection::Drop { why } => {
                self.stats.dropped += 1;
                debug!(src = %peer.addr, why = %why, "dropped message");
            }
            Inspection::Reject {
                status,
                reason,
                response,
            } => {
                self.stats.bad_requests += 1;
                if !trusted && self.cfg.untrusted == Untrusted::Drop {
                    self.stats.untrusted_dropped += 1;
                    return;
                }
                debug!(src = %peer.addr, status, reason = %reason, "rejected request");
                let to = response_peer(peer, None);
                self.transmit(to, response);
            }
            Inspection::Request(accepted) => {
                self.stats.requests += 1;
                let Accepted { req, mut head } = *accepted;
                stamp_via(&mut head, peer);
                if !trusted {
                    self.untrusted_request(&head, peer, now);
                    return;
                }
                self.request(req, head, peer, now);
            }
            Inspection::Response(resp) => {
                self.stats.responses += 1;
                if !trusted {
                    // Responses from outside the trunk are never ours to act
                    // on (and a rogue challenge must not reach the digest
                    // code).
                    self.stats.dropped += 1;
                    debug!(src = %peer.addr, "dropped response from untrusted source");
                    return;
                }
                self.response(*resp, peer, now);
            }
        }
    }

    fn untrusted_request(&mut self, head: &RequestHead, peer: Peer, now: Instant) {
        self.stats.rejected_untrusted += 1;
        let answer = self.cfg.untrusted == Untrusted::Reject && head.method != Method::Ack;
        if !answer {
            self.stats.untrusted_dropped += 1;
        }
        if let Verdict::Log { source, suppressed } = self.untrusted_log.check(peer.addr.ip(), now) {
            let action = if answer { "403" } else { "dropped" };
            match source {
                Source::Addr(_) => warn!(
                    src = %peer.addr, method = %head.method, action, suppressed,
                    "request from a source outside trunk.allow (one line per source per minute)"
                ),
                Source::Others => warn!(
                    src = %source, method = %head.method, action, suppressed,
                    "requests from many sources outside trunk.allow (one line per minute)"
                ),
            }
        }
        if !answer {
            return;
        }
        // Stateless: no transaction for a stranger, nothing to fill.
        let to_tag = self.tag();
        let data = message::response(head, 403, "Forbidden", Some(&to_tag), &[], None);
        self.transmit(response_peer(peer, Some(head)), data);
    }

    fn request(&mut self, req: Request, head: RequestHead, peer: Peer, now: Instant) {
        let key = head.tx_key();
        let is_ack = head.method == Method::Ack;
        if !is_ack
            && self.txl.server_count() >= self.cfg.max_transactions
            && !self.txl.has_server(&key)
        {
            self.stats.overloaded += 1;
            let secs = self.cfg.retry_after.as_secs().max(1).to_string();
            let tag = self.tag();
            let data = message::response(
                &head,
                503,
                "Service Unavailable",
                Some(&tag),
                &[("Retry-After", &secs)],
                None,
            );
            self.transmit(response_peer(peer, Some(&head)), data);
            return;
        }
        match self.txl.on_request(&key, is_ack, peer, now) {
            super::transaction::ServerMatch::New => {}
            super::transaction::ServerMatch::AckForDialog => {
                self.ack_for_dialog(&req, &head, now);
                return;
            }
            _ => return,
        }
        // §8.2.2.2: same From tag, Call-ID and CSeq as an ongoing
        // transaction but a different branch: a merged (looped or forked)
        // request.
        if head.to_tag.is_none() {
            if let Some(mk) = merge_key(&head) {
                match self.merged.get(&mk) {
                    Some(existing) if *existing != key => {
                        self.respond(&key, &head, 482, None, &[], None, now);
                        return;
                    }
                    _ => {
                        self.merged.insert(mk.clone(), key.clone());
                        self.merged_by_key.insert(key.clone(), mk);
                    }
                }
            }
        }
        let peer = response_peer(peer, Some(&head));
        match head.method {
            Method::Invite if head.to_tag.is_none() => {
                self.initial_invite(req, head, key, peer, now)
            }
            Method::Cancel => self.cancel(&head, key, now),
            // §11.2: OPTIONS is answered as an INVITE would be, so a
            // proxy probing us (Kamailio's dispatcher) sees the drain and
            // sends new calls elsewhere.
            Method::Options if head.to_tag.is_none() && self.draining => {
                self.respond_draining(&key, &head, now)
            }
            Method::Options if head.to_tag.is_none() => {
                self.respond(&key, &head, 200, Some("opt"), &capabilities(), None, now)
            }
            Method::Register
            | Method::Subscribe
            | Method::Message
            | Method::Refer
            | Method::Publish
                if head.to_tag.is_none() =>
            {
                if head.method == Method::Register {
                    // We are not a registrar (`sip.flood.register = "405"`).
                    self.stats.flood_register += 1;
                }
                // §8.2.1: a method we know but do not offer: 405 with Allow.
                self.respond(
                    &key,
                    &head,
                    405,
                    None,
                    &[("Allow", message::ALLOW)],
                    None,
                    now,
                )
            }
            _ if head.to_tag.is_some() => self.in_dialog(req, head, key, peer, now),
            // NOTIFY, PRACK, BYE, INFO, UPDATE outside a dialog.
            _ => self.respond(&key, &head, 481, None, &[], None, now),
        }
    }

    /// 503 with Retry-After (RFC 3261 §21.5.4, §20.33) while draining: the
    /// switch is going away for a restart, so the trunk should try
    /// elsewhere now and here again later.
    pub(super) fn respond_draining(&mut self, key: &TxKey, head: &RequestHead, now: Instant) {
        let secs = self.cfg.retry_after.as_secs().max(1).to_string();
        self.respond(key, head, 503, None, &[("Retry-After", &secs)], None, now);
    }

    /// Sends a response within server transaction `key`.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        key: &TxKey,
        head: &RequestHead,
        status: u16,
        to_tag: Option<&str>,
        extra: &[Extra<'_>],
        body: Option<(&str, &[u8])>,
        now: Instant,
    ) {
        let tag = match to_tag {
            Some(t) => t.to_owned(),
            None => self.tag(),
        };
        let mut headers: Vec<Extra<'_>> = Vec::with_capacity(extra.len() + 1);
        let ua = self.cfg.local.user_agent.clone();
        headers.push(("Server", &ua));
        headers.extend_from_slice(extra);
        let data = message::response(
            head,
            status,
            message::reason(status),
            Some(&tag),
            &headers,
            body,
        );
        self.txl.respond(key, status, Bytes::from(data), now);
    }

    fn response(&mut self, resp: Response, peer: Peer, now: Instant) {
        let head = match ResponseHead::read(&resp) {
            Ok(h) => h,
            Err(e) => {
                self.stats.dropped += 1;
                debug!(src = %peer.addr, error = %e, "unreadable response dropped");
                return;
            }
        };
        let Some(key) = head.tx_key() else {
            self.stats.unmatched_responses += 1;
            return;
        };
        if let Some(&idx) = self.reg_clients.get(&key) {
            self.register_response(idx, key, &resp, &head, peer, now);
            return;
        }
        if let Some((trunk, id)) = self.probes.get(&key).copied() {
            let m = self.txl.on_response(&key, head.status, now, || None);
            if head.status >= 200 && m == super::transaction::ClientMatch::Deliver {
                self.probes.remove(&key);
                self.probe_answered(trunk, id, now);
            }
            return;
        }
        let Some(&(leg, purpose)) = self.clients.get(&key) else {
            // §17.1.3 / §18.1.2: a response matching no transaction is
            // dropped. A 2xx retransmission for an INVITE whose transaction
            // is gone still needs our ACK: look the dialog up.
            if (200..300).contains(&head.status) && head.cseq_method.eq_ignore_ascii_case("INVITE")
            {
                self.uac_stray_2xx(&head);
            } else {
                self.stats.unmatched_responses += 1;
                debug!(src = %peer.addr, status = head.status, call_id = %head.call_id, "unmatched response dropped");
            }
            return;
        };
        match purpose {
            ClientPurpose::Invite => self.uac_invite_response(leg, key, resp, head, peer, now),
            ClientPurpose::Cancel => {
                let _ = self.txl.on_response(&key, head.status, now, || None);
            }
            ClientPurpose::Bye => {
                let m = self.txl.on_response(&key, head.status, now, || None);
                if head.status >= 200 && m == super::transaction::ClientMatch::Deliver {
                    self.clients.remove(&key);
                    self.finish_local_hangup(leg);
                }
            }
        }
    }

    // ------------------------------------------------------------ commands

    pub fn handle_command(&mut self, cmd: SipCommand, now: Instant) {
        // New targets replace the old before any is probed.
        if !matches!(cmd, SipCommand::TrunkTargets { .. }) {
            self.tick(now);
        }
        self.now = Some(now);
        self.command(cmd, now);
        self.pump_dial_queue(now);
    }

    fn command(&mut self, cmd: SipCommand, now: Instant) {
        match cmd {
            SipCommand::Ringing(leg) => self.uas_provisional(leg, 180, now),
            SipCommand::Answer { leg, sdp } => self.uas_answer(leg, sdp, now),
            SipCommand::Reject { leg, status } => self.uas_reject(leg, status, now),
            SipCommand::HangUp(leg) => self.hang_up(leg, now),
            SipCommand::Dial { leg, request } => self.uac_dial(leg, request, now),
            SipCommand::TrunkTargets { trunk, records } => {
                self.set_targets(trunk, records);
                self.tick(now);
            }
            SipCommand::Policy(p) => {
                // Applies to the next request, in or out of a dialog: a
                // source taken out of trunk.allow is no longer trusted, even
                // for a call it holds (its BYE gets 403; the call ends by
                // its RTP timeout or our BYE).
                info!(
                    allow = self.cfg.allow.len(),
                    max_calls = p.max_calls,
                    "SIP policy reloaded"
                );
                self.cfg.allow = p.allow;
                self.cfg.untrusted = p.untrusted;
                self.cfg.max_calls = p.max_calls;
                self.cfg.max_transactions = p.max_transactions;
                self.cfg.retry_after = p.retry_after;
                self.flood.set_policy(p.flood);
            }
            SipCommand::Drain => {
                if !std::mem::replace(&mut self.draining, true) {
                    info!(
                        calls = self.active_calls(),
                        "draining: new INVITEs get 503, calls in progress go on"
                    );
                }
            }
        }
    }

    fn hang_up(&mut self, leg: LegId, now: Instant) {
        let Some(d) = self.dialogs.get(&leg) else {
            return;
        };
        match (d.role, d.state) {
            (Role::Uas, dialog::State::Early) => self.uas_reject(leg, 480, now),
            (Role::Uac, dialog::State::Early) => self.uac_cancel(leg, now),
            (_, dialog::State::WaitAck | dialog::State::Confirmed) => self.send_bye(leg, now),
            (_, dialog::State::Terminating) => {}
        }
    }

    fn send_bye(&mut self, leg: LegId, now: Instant) {
        let branch = self.branch();
        let Some(trunk) = self.dialogs.get(&leg).map(|d| d.trunk) else {
            return;
        };
        let local = self.local_on(trunk);
        let Some(d) = self.dialogs.get_mut(&leg) else {
            return;
        };
        if d.holds_a_call() {
            self.active_uas = self.active_uas.saturating_sub(1);
        }
        d.state = dialog::State::Terminating;
        d.ok_retransmit = None;
        d.session_deadline = None;
        let data = d.request("BYE", &local, &branch, &[], None);
        let peer = d.next_hop();
        let key = TxKey {
            branch,
            sent_by: local
                .sent_by(d.peer.transport, peer.addr.ip())
                .to_ascii_lowercase(),
            method: message::tx_method(Method::Bye),
        };
        self.clients.insert(key.clone(), (leg, ClientPurpose::Bye));
        self.txl.send_request(key, peer, Bytes::from(data), now);
    }

    fn finish_local_hangup(&mut self, leg: LegId) {
        if self.remove_dialog(leg).is_some_and(|d| !d.end_reported) {
            self.emit(SipEvent::Ended {
                leg,
                cause: super::api::EndCause::LocalHangup,
            });
        }
    }

    fn remove_dialog(&mut self, leg: LegId) -> Option<Box<Dialog>> {
        let d = self.dialogs.remove(&leg)?;
        if d.holds_a_call() {
            self.active_uas = self.active_uas.saturating_sub(1);
        }
        if let Some(trunk) = d.uac.as_ref().and_then(|u| u.trunk) {
            // Its slot is free: a queued leg may go now.
            self.trunks.release(trunk);
            self.dial_queue_due = true;
        }
        self.by_tag
            .remove(&(d.call_id.clone(), d.local_tag.clone()));
        if let Some(k) = &d.invite_key {
            self.by_invite.remove(k);
        }
        Some(d)
    }

    /// Our stream connection `conn` could not be opened (TCP connect or
    /// TLS handshake failed): the INVITEs that waited for it were never
    /// sent. §8.1.3.1 treats a transport failure as a 503, so they fail now
    /// as the trunk's failure (`Unavailable(503)`) instead of after Timer B.
    pub fn connection_failed(&mut self, conn: u64, now: Instant) {
        let waiting: Vec<(LegId, TxKey, String)> = self
            .dialogs
            .values()
            .filter(|d| {
                d.role == Role::Uac
                    && d.state == dialog::State::Early
                    && d.peer.transport.conn() == Some(conn)
            })
            .filter_map(|d| Some((d.leg, d.uac.as_ref()?.invite_key.clone(), d.call_id.clone())))
            .collect();
        for (leg, key, call_id) in waiting {
            warn!(call_id = %call_id, "trunk connection failed; call attempt fails as 503");
            self.txl.abandon_client(&key);
            // The trunk's next server, else the next trunk (uac.rs).
            self.uac_failed(leg, super::api::DialOutcome::Unavailable(503), None, now);
        }
        self.handle_timeout(now);
    }

    // -------------------------------------------------------------- timers

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if self.probers_due(now) {
            self.run_probers(now);
        }
        self.txl.handle_timeout(now);
        self.flood.handle_timeout(now);
        self.registrations_timeout(now);
        while let Some((_, (leg, kind, at))) = self.timers.pop_due(now) {
            match kind {
                DialogTimer::OkRetransmit => self.ok_retransmit_fired(leg, at, now),
                DialogTimer::SessionExpiry => self.session_expired(leg, at, now),
                DialogTimer::DialRetry => self.dial_queue_due = true,
            }
        }
        self.pump_transactions();
        self.pump_dial_queue(now);
        self.shrink_tables();
    }

    /// After a peak, the tables give their room back (`capacity`): dialogs
    /// and transactions end in timers, so this runs with them.
    fn shrink_tables(&mut self) {
        use crate::capacity::shrink_map;
        shrink_map(&mut self.dialogs);
        shrink_map(&mut self.by_tag);
        shrink_map(&mut self.by_invite);
        shrink_map(&mut self.clients);
        shrink_map(&mut self.merged);
        shrink_map(&mut self.merged_by_key);
        self.timers.shrink();
    }

    /// Moves transaction-layer events into our outputs.
    fn pump_transactions(&mut self) {
        while let Some(ev) = self.txl.poll_event() {
            match ev {
                TxEvent::Transmit { peer, data } => {
                    self.out.push_back(Output::Transmit { peer, data })
                }
                TxEvent::ClientTimeout { key } => {
                    // An unanswered probe: the prober counts the miss when
                    // the next one is due.
                    self.probes.remove(&key);
                    if self.reg_clients.contains_key(&key) {
                        self.register_timeout(&key);
                        continue;
                    }
                    if let Some((leg, purpose)) = self.clients.remove(&key) {
                        match purpose {
                            ClientPurpose::Invite => {
                                // Reported while outputs drain: the latest
                                // input's time is when the next INVITE goes.
                                if let Some(now) = self.now {
                                    self.uac_timeout(leg, now);
                                }
                            }
                            ClientPurpose::Bye => self.finish_local_hangup(leg),
                            ClientPurpose::Cancel => {}
                        }
                    }
                }
                TxEvent::ServerAckTimeout { key } => {
                    // Timer H: the peer never acknowledged our non-2xx. The
                    // call was already gone from our side.
                    debug!(branch = %key.branch, "no ACK for final response (timer H)");
                }
                TxEvent::Terminated { key, side } => {
                    self.reg_clients.remove(&key);
                    if side == super::transaction::Side::Server {
                        if let Some(mk) = self.merged_by_key.remove(&key) {
                            self.merged.remove(&mk);
                        }
                    } else if let Some((_, ClientPurpose::Cancel | ClientPurpose::Bye)) =
                        self.clients.get(&key)
                    {
                        self.clients.remove(&key);
                    } else if let Some((leg, ClientPurpose::Invite)) =
                        self.clients.get(&key).copied()
                    {
                        // Keep the INVITE's entry while its dialog lives so
                        // 2xx retransmissions are still recognised.
                        if !self.dialogs.contains_key(&leg) {
                            self.clients.remove(&key);
                        }
                    }
                }
            }
        }
    }
}

/// OPTIONS answer headers (§11.2).
fn capabilities() -> Vec<Extra<'static>> {
    vec![
        ("Allow", message::ALLOW),
        ("Accept", message::ACCEPT),
        ("Accept-Encoding", "identity"),
        ("Accept-Language", "en"),
        ("Supported", message::SUPPORTED),
    ]
}

fn merge_key(head: &RequestHead) -> Option<MergeKey> {
    if head.method == Method::Ack || head.method == Method::Cancel {
        return None;
    }
    Some((
        head.call_id.clone(),
        head.from_tag.clone()?,
        head.cseq,
        head.method as u8,
    ))
}

/// §18.2.2 and RFC 3581 §4: UDP responses go to the source address, to the
/// source port when `rport` was asked for, else to the sent-by port; TCP
/// responses go back over the connection.
fn response_peer(src: Peer, head: Option<&RequestHead>) -> Peer {
    if let (Transport::Udp, Some(h)) = (src.transport, head) {
        if !h.top_via.rport {
            let port = sent_by_port(&h.top_via.sent_by).unwrap_or(5060);
            return Peer {
                transport: src.transport,
                addr: SocketAddr::new(src.addr.ip(), port),
            };
        }
    }
    src
}

/// Stamps the top Via with where the request came from (§18.2.1:
/// `received` when sent-by differs; RFC 3581 §4: `rport` filled in, and
/// then `received` always), so responses and the dialog's route find their
/// way back.
fn stamp_via(head: &mut RequestHead, peer: Peer) {
    let src_ip = peer.addr.ip();
    // §18.2.1: `received` when sent-by's host is a name or an address other
    // than the packet's source; compared as addresses, not as text (an
    // IPv6 address has many spellings). Formatted only when written.
    let same_host = sent_by_host(&head.top_via.sent_by)
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip == src_ip);
    if let Some(top) = head.vias.first_mut() {
        let has_received = top.split(';').skip(1).any(|p| {
            p.trim()
                .get(..8)
                .is_some_and(|n| n.eq_ignore_ascii_case("received"))
        });
        if head.top_via.rport {
            *top = fill_rport(top, peer.addr.port());
        }
        if !has_received && (head.top_via.rport || !same_host) {
            use std::fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = write!(top, ";received={src_ip}");
        }
    }
}

fn sent_by_host(sent_by: &str) -> &str {
    if let Some(rest) = sent_by.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    sent_by.split(':').next().unwrap_or("")
}

fn sent_by_port(sent_by: &str) -> Option<u16> {
    let port = match sent_by.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.1.strip_prefix(':')?,
        None => sent_by.split_once(':')?.1,
    };
    port.parse().ok()
}

/// Replaces a bare `;rport` with `;rport=<port>` (RFC 3581 §4).
fn fill_rport(via: &str, port: u16) -> String {
    let mut out = String::with_capacity(via.len() + 8);
    for (i, part) in via.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        if i > 0 && part.trim().eq_ignore_ascii_case("rport") {
            out.push_str(&format!("rport={port}"));
        } else {
            out.push_str(part);
        }
    }
    out
}
