//! The first trunk's targets inside the core: which hops a call tries (RFC 3263
//! §4.3 with RFC 2782 order) and the OPTIONS keepalive that leaves out
//! targets that stopped answering (the decisions are `sip/dns.rs` and
//! `sip/keepalive.rs`; this is where they meet the transaction layer).

use std::time::Instant;

use bytes::Bytes;
use rsipstack::sip::Method;
use tracing::{info, warn};

use super::SipCore;
use crate::sip::dns;
use crate::sip::keepalive::{self, TargetStatus};
use crate::sip::message;
use crate::sip::transaction::{Peer, Transport, TxKey};

impl SipCore {
    /// Hands the prober the targets it can probe: UDP ones. Over TCP the
    /// switch holds one connection to the trunk, so an OPTIONS could not
    /// tell one target from another.
    pub(super) fn reprobe(&mut self) {
        let list: Vec<dns::Target> = self
            .targets
            .iter()
            .flat_map(|w| w.targets.iter().copied())
            .filter(|t| t.transport == dns::Transport::Udp)
            .collect();
        if let Some(p) = self.prober.as_mut() {
            p.set_targets(&list);
            self.health_version += 1;
        }
    }

    /// Each target's keepalive state and round trip (empty with keepalive
    /// off), and a number that changes whenever they do.
    pub fn target_status(&self) -> (u64, Vec<TargetStatus>) {
        (
            self.health_version,
            self.prober.as_ref().map(|p| p.status()).unwrap_or_default(),
        )
    }

    /// The hops one outbound call through trunk `i` tries, in order. The
    /// first trunk: the RFC 2782 order of its records, targets the
    /// keepalive marked down left out (unless all are down: then trying
    /// beats failing at once). Another trunk: its one address.
    pub(super) fn hops(&mut self, i: usize) -> Vec<Peer> {
        let Some(route) = self.trunks.route(i) else {
            return Vec::new();
        };
        // A TLS trunk (`;transport=tls`) is reached over our one TLS
        // connection whatever the records said (RFC 3263's TLS records are
        // not looked up yet).
        let (tls, tcp, addr) = (route.tls, route.tcp, route.addr);
        let chosen = if i == 0 {
            let ids = &mut self.ids;
            let ordered = dns::order(&self.targets, &mut || ids.next());
            let up: Vec<dns::Target> = ordered
                .iter()
                .copied()
                .filter(|t| !self.prober.as_ref().is_some_and(|p| p.is_down(t)))
                .collect();
            if up.is_empty() {
                ordered
            } else {
                up
            }
        } else {
            vec![dns::Target {
                addr,
                transport: if tcp {
                    dns::Transport::Tcp
                } else {
                    dns::Transport::Udp
                },
            }]
        };
        chosen
            .into_iter()
            .map(|t| Peer {
                transport: match t.transport {
                    _ if tls => Transport::Tls {
                        conn: crate::sip::transport::TRUNK_CONN,
                    },
                    dns::Transport::Udp => Transport::Udp,
                    dns::Transport::Tcp => Transport::Tcp {
                        conn: crate::sip::transport::TRUNK_CONN,
                    },
                },
                addr: t.addr,
            })
            .collect()
    }

    /// Called on every input: remembers `now`, and starts probing targets
    /// the prober has not scheduled yet (it learns `now` only here).
    pub(super) fn tick(&mut self, now: Instant) {
        self.now = Some(now);
        if self.prober.as_ref().is_some_and(|p| p.has_unscheduled()) {
            self.run_prober(now);
        }
    }

    pub(super) fn run_prober(&mut self, now: Instant) {
        if let Some(p) = self.prober.as_mut() {
            p.handle_timer(now);
        }
        self.run_prober_actions(now);
    }

    pub(super) fn run_prober_actions(&mut self, now: Instant) {
        while let Some(action) = self.prober.as_mut().and_then(|p| p.poll_action()) {
            match action {
                keepalive::Action::Probe { target, id } => self.send_probe(target, id, now),
                keepalive::Action::Changed(st) => {
                    self.health_version += 1;
                    let rtt_ms = st.rtt.map(|d| d.as_secs_f64() * 1000.0);
                    match st.health {
                        keepalive::Health::Down => warn!(
                            target = %st.target, health = %st.health,
                            "trunk target stopped answering OPTIONS; calls skip it"
                        ),
                        _ => info!(
                            target = %st.target, health = %st.health, rtt_ms,
                            "trunk target answers OPTIONS"
                        ),
                    }
                }
            }
        }
    }

    /// RFC 3261 §11.1: an out-of-dialog OPTIONS to one target.
    fn send_probe(&mut self, target: dns::Target, id: u64, now: Instant) {
        let branch = self.branch();
        let tag = self.tag();
        let call_id = format!("{:016x}@tpswitch", self.ids.next());
        let local = &self.cfg.local;
        let host = crate::sip::uri::hostport(target.addr);
        let s = format!(
            "OPTIONS sip:{host} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:tpswitch@{}>;tag={tag}\r\nTo: <sip:{host}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nUser-Agent: {}\r\n",
            local.hostport, local.hostport, local.user_agent
        );
        let data = message::finish(s, &[], None);
        let key = TxKey {
            branch,
            sent_by: local.hostport.to_ascii_lowercase(),
            method: message::tx_method(Method::Options),
        };
        self.probes.insert(key.clone(), id);
        let peer = Peer {
            transport: Transport::Udp,
            addr: target.addr,
        };
        self.txl.send_request(key, peer, Bytes::from(data), now);
    }
}
