//! Each trunk's servers inside the core: which hops a call tries (RFC 3263
//! §4.3 with RFC 2782 order) and the OPTIONS keepalive that leaves out
//! targets that stopped answering (the decisions are `sip/dns.rs` and
//! `sip/keepalive.rs`; this is where they meet the transaction layer).
//! Every trunk has its own records and its own prober, probing at its own
//! `keepalive_interval`.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use rsipstack::sip::Method;
use tracing::{info, warn};

use super::SipCore;
use crate::sip::dns::{self, Weighted};
use crate::sip::keepalive::{self, Prober, TrunkTargetStatus};
use crate::sip::message;
use crate::sip::transaction::{Peer, Transport, TxKey};
use crate::sip::trunk::TrunkRoute;

/// One trunk's servers (RFC 3263 records, or its one address) and the
/// prober watching them.
pub(super) struct Servers {
    records: Vec<Weighted>,
    prober: Option<Prober>,
    /// Stream servers → their number in [`trunk_conn`] (each server its own
    /// connection), kept across re-resolutions so a server keeps its
    /// connection; only the current servers are kept, so a zone that
    /// keeps changing cannot grow it.
    ///
    /// [`trunk_conn`]: crate::sip::transport::trunk_conn
    conns: HashMap<dns::Target, u32>,
    /// The next number given. Never reused (until it wraps, after about
    /// a million servers): a server that left may still have a call on its
    /// connection, which a newcomer must not share.
    next_number: u32,
}

impl Servers {
    /// The trunk's configured address stands for its servers until the
    /// shell names them ([`SipCommand::TrunkTargets`], sent for every
    /// trunk before any call); only then are they probed, so an unresolved
    /// trunk's placeholder never gets an OPTIONS.
    ///
    /// [`SipCommand::TrunkTargets`]: crate::sip::SipCommand::TrunkTargets
    pub(super) fn new(route: &TrunkRoute) -> Self {
        let first = dns::Target {
            addr: route.addr,
            transport: route.transport(),
        };
        let mut s = Servers {
            records: vec![Weighted {
                priority: 0,
                weight: 0,
                targets: vec![first],
            }],
            prober: route.keepalive.map(Prober::new),
            conns: HashMap::new(),
            next_number: 0,
        };
        // The configured server is number 0 (`transport::TRUNK_CONN` for
        // the first trunk, which its registration uses).
        s.server_number(first);
        s
    }

    /// `target`'s number among the trunk's servers, given on first sight.
    fn server_number(&mut self, target: dns::Target) -> u32 {
        if let Some(&n) = self.conns.get(&target) {
            return n;
        }
        let n = self.next_number;
        // `trunk_conn` keeps the low bits only; wrap there.
        self.next_number = (n + 1) & ((1 << crate::sip::transport::SERVER_BITS) - 1);
        self.conns.insert(target, n);
        n
    }
}

impl SipCore {
    /// Replaces trunk `i`'s servers and hands them to its prober. Each
    /// stream server has a connection of its own, so an OPTIONS over TCP
    /// or TLS tells one server from another as well as over UDP.
    pub(super) fn set_targets(&mut self, i: usize, records: Vec<Weighted>) {
        let Some(s) = self.servers.get_mut(i) else {
            warn!(trunk = i, "targets for a trunk that does not exist ignored");
            return;
        };
        s.records = records;
        // Numbered in record order, so the first server keeps number 0.
        let all: Vec<dns::Target> = s
            .records
            .iter()
            .flat_map(|w| w.targets.iter().copied())
            .collect();
        s.conns.retain(|t, _| all.contains(t));
        for t in all.iter().filter(|t| t.transport.is_stream()) {
            s.server_number(*t);
        }
        if let Some(p) = s.prober.as_mut() {
            p.set_targets(&all);
            self.health_version += 1;
        }
    }

    /// Each probed target's keepalive state and round trip, with its trunk
    /// (empty with keepalive off everywhere), and a number that changes
    /// whenever they do.
    pub fn target_status(&self) -> (u64, Vec<TrunkTargetStatus>) {
        let mut out = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let (Some(p), Some(route)) = (s.prober.as_ref(), self.trunks.route(i)) else {
                continue;
            };
            out.extend(p.status().into_iter().map(|status| TrunkTargetStatus {
                trunk: route.name.clone(),
                status,
            }));
        }
        (self.health_version, out)
    }

    /// The hops one outbound call through trunk `i` tries, in order: the
    /// RFC 2782 order of its records, targets its keepalive marked down
    /// left out (unless all are down: then trying beats failing at once).
    /// Stream targets go over the trunk's own connection.
    pub(super) fn hops(&mut self, i: usize) -> Vec<Peer> {
        let Some(s) = self.servers.get_mut(i) else {
            return Vec::new();
        };
        let ids = &mut self.ids;
        let ordered = dns::order(&s.records, &mut || ids.next());
        let up: Vec<dns::Target> = ordered
            .iter()
            .copied()
            .filter(|t| !s.prober.as_ref().is_some_and(|p| p.is_down(t)))
            .collect();
        let chosen = if up.is_empty() { ordered } else { up };
        chosen
            .into_iter()
            .map(|t| {
                let conn = crate::sip::transport::trunk_conn(i, s.server_number(t));
                Peer {
                    transport: match t.transport {
                        dns::Transport::Udp => Transport::Udp,
                        dns::Transport::Tcp => Transport::Tcp { conn },
                        dns::Transport::Tls => Transport::Tls { conn },
                    },
                    addr: t.addr,
                }
            })
            .collect()
    }

    /// Called on every input: remembers `now`, and starts probing targets
    /// a prober has not scheduled yet (it learns `now` only here).
    pub(super) fn tick(&mut self, now: Instant) {
        self.now = Some(now);
        if self.probers().any(|p| p.has_unscheduled()) {
            self.run_probers(now);
        }
    }

    fn probers(&self) -> impl Iterator<Item = &Prober> {
        self.servers.iter().filter_map(|s| s.prober.as_ref())
    }

    /// The earliest instant a prober must run.
    pub(super) fn probers_deadline(&self) -> Option<Instant> {
        self.probers().filter_map(|p| p.deadline()).min()
    }

    /// Whether a prober is due at `now` or has a target never probed.
    pub(super) fn probers_due(&self, now: Instant) -> bool {
        self.probers()
            .any(|p| p.has_unscheduled() || p.deadline().is_some_and(|d| d <= now))
    }

    pub(super) fn run_probers(&mut self, now: Instant) {
        for i in 0..self.servers.len() {
            if let Some(p) = self.servers[i].prober.as_mut() {
                p.handle_timer(now);
            }
            self.run_prober_actions(i, now);
        }
    }

    /// A final response to probe `id` of trunk `i`'s prober.
    pub(super) fn probe_answered(&mut self, i: usize, id: u64, now: Instant) {
        if let Some(p) = self.servers.get_mut(i).and_then(|s| s.prober.as_mut()) {
            p.answered(id, now);
        }
        self.run_prober_actions(i, now);
    }

    fn run_prober_actions(&mut self, i: usize, now: Instant) {
        let trunk = self
            .trunks
            .route(i)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        while let Some(action) = self
            .servers
            .get_mut(i)
            .and_then(|s| s.prober.as_mut())
            .and_then(|p| p.poll_action())
        {
            match action {
                keepalive::Action::Probe { target, id } => self.send_probe(i, target, id, now),
                keepalive::Action::Changed(st) => {
                    self.health_version += 1;
                    let rtt_ms = st.rtt.map(|d| d.as_secs_f64() * 1000.0);
                    match st.health {
                        keepalive::Health::Down => warn!(
                            trunk = %trunk, target = %st.target, health = %st.health,
                            "trunk target stopped answering OPTIONS; calls skip it"
                        ),
                        _ => info!(
                            trunk = %trunk, target = %st.target, health = %st.health, rtt_ms,
                            "trunk target answers OPTIONS"
                        ),
                    }
                }
            }
        }
    }

    /// RFC 3261 §11.1: an out-of-dialog OPTIONS to one target of trunk `i`,
    /// over the target's own transport (a stream server's own connection).
    fn send_probe(&mut self, i: usize, target: dns::Target, id: u64, now: Instant) {
        let branch = self.branch();
        let tag = self.tag();
        let call_id = format!("{:016x}@tpswitch", self.ids.next());
        let transport = match target.transport {
            dns::Transport::Udp => Transport::Udp,
            stream => {
                let Some(n) = self.servers.get_mut(i).map(|s| s.server_number(target)) else {
                    return;
                };
                let conn = crate::sip::transport::trunk_conn(i, n);
                if stream == dns::Transport::Tls {
                    Transport::Tls { conn }
                } else {
                    Transport::Tcp { conn }
                }
            }
        };
        let local = &self.cfg.local;
        let ip = target.addr.ip();
        let host = crate::sip::uri::hostport(target.addr);
        let s = format!(
            "OPTIONS sip:{host} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: <sip:tpswitch@{}>;tag={tag}\r\nTo: <sip:{host}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nUser-Agent: {}\r\n",
            local.via(transport, ip, &branch),
            local.hostport_for(ip),
            local.user_agent
        );
        let data = message::finish(s, &[], None);
        let key = TxKey {
            branch,
            sent_by: local.sent_by(transport, ip).to_ascii_lowercase(),
            method: message::tx_method(Method::Options),
        };
        self.probes.insert(key.clone(), (i, id));
        let peer = Peer {
            transport,
            addr: target.addr,
        };
        self.txl.send_request(key, peer, Bytes::from(data), now);
    }
}
