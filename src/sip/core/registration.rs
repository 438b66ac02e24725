//! The core's side of outbound registration: carries each trunk's
//! `sip::register::Registration` requests in non-INVITE client
//! transactions (§17.1.2) to the trunk, feeds back their final responses
//! and time-outs, and logs what the machine reports.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rsipstack::sip::{Method, Response};
use tracing::{debug, info, warn};

use super::SipCore;
use crate::sip::access;
use crate::sip::message::{self, ResponseHead};
use crate::sip::register::{Action, Event, Registration, Reply, State};
use crate::sip::transaction::{ClientMatch, Peer, Transport, TxKey};

/// One trunk's registration as `/metrics` shows it.
#[derive(Debug, Clone)]
pub struct RegistrationStatus {
    pub trunk: String,
    pub state: State,
    /// Seconds left of the binding the registrar granted (0 when none).
    pub expires_in: u64,
    pub registered_total: u64,
    pub failures_total: u64,
}

impl SipCore {
    /// Starts the configured registrations: the first REGISTERs go out at
    /// the next `handle_timeout`. Called once by the shell, which owns the
    /// clock. Their `hostport`, `tcp` and `user_agent` are filled in here.
    pub fn start(&mut self, now: Instant) {
        self.now = Some(now);
        let pending = std::mem::take(&mut self.cfg.registrations);
        for mut cfg in pending {
            // Contact and Via carry the address we listen on (learnt only
            // once the socket is bound), as the trunk's NAT plan tells its
            // registrar (else its INVITEs would go to an address it cannot
            // reach, §10.2.1), and the trunk's transport.
            let trunk = self.trunks.by_name(&cfg.trunk);
            let peer = self.registrar_peer(&cfg.trunk);
            let local = self.local_on(trunk);
            cfg.hostport = match peer {
                Some(p) => local.hostport_for(p.addr.ip()).into_owned(),
                None => local.hostport.clone(),
            };
            cfg.tcp = peer.is_some_and(|p| p.transport.reliable());
            cfg.user_agent = self.cfg.local.user_agent.clone();
            info!(trunk = %cfg.trunk, registrar = %cfg.registrar, aor = %cfg.aor, contact = %cfg.contact_uri(), expires = cfg.expires, "registering with the trunk");
            let seed = self.ids.next();
            self.registrations.push(Registration::new(cfg, seed, now));
        }
    }

    /// Unregisters (Expires: 0) every registration; the shell keeps the
    /// core running until `registrations_done` or its own bound.
    pub fn shutdown_registrations(&mut self, now: Instant) {
        self.now = Some(now);
        for r in &mut self.registrations {
            r.handle(Event::Shutdown, now);
        }
        self.pump_registrations(now);
    }

    pub fn registrations_done(&self) -> bool {
        self.registrations
            .iter()
            .all(|r| r.state() == State::Stopped)
    }

    pub fn registration_status(&self, now: Instant) -> Vec<RegistrationStatus> {
        self.registrations
            .iter()
            .map(|r| RegistrationStatus {
                trunk: r.config().trunk.clone(),
                state: r.state(),
                expires_in: r
                    .expires_at()
                    .map(|t| t.saturating_duration_since(now).as_secs())
                    .unwrap_or(0),
                registered_total: r.registered_total,
                failures_total: r.failures_total,
            })
            .collect()
    }

    /// The trunk whose registered Contact user is `ruri_user`: an INVITE
    /// sent to it arrived on that registration.
    pub(super) fn registered_trunk(&self, ruri_user: &str) -> Option<String> {
        self.registrations
            .iter()
            .map(Registration::config)
            .find(|c| c.contact_user == ruri_user)
            .map(|c| c.trunk.clone())
    }

    pub(super) fn registrations_deadline(&self) -> Option<Instant> {
        self.registrations.iter().filter_map(|r| r.deadline()).min()
    }

    pub(super) fn registrations_timeout(&mut self, now: Instant) {
        for r in &mut self.registrations {
            if r.deadline().is_some_and(|d| d <= now) {
                r.handle(Event::Timer, now);
            }
        }
        self.pump_registrations(now);
    }

    /// A response in a REGISTER client transaction.
    pub(super) fn register_response(
        &mut self,
        idx: usize,
        key: TxKey,
        resp: &Response,
        head: &ResponseHead,
        src: Peer,
        now: Instant,
    ) {
        if self.txl.on_response(&key, head.status, now, || None) != ClientMatch::Deliver {
            return;
        }
        if head.status < 200 {
            return;
        }
        self.reg_clients.remove(&key);
        let values = |name: &str| -> Vec<String> {
            message::header_values(&resp.headers, name)
                .into_iter()
                .map(str::to_owned)
                .collect()
        };
        // Only the trunk's own challenge gets an answer computed with our
        // password (as for INVITE, uac.rs).
        let registrar = self
            .registrations
            .get(idx)
            .and_then(|r| self.registrar_peer(&r.config().trunk))
            .map(|p| p.addr);
        let challenges = match head.status {
            401 if Some(src.addr) == registrar => values("WWW-Authenticate"),
            407 if Some(src.addr) == registrar => values("Proxy-Authenticate"),
            401 | 407 => {
                warn!(src = %src.addr, "REGISTER challenge from a source that is not the trunk ignored");
                Vec::new()
            }
            _ => Vec::new(),
        };
        let reply = Reply {
            status: head.status,
            cseq: head.cseq,
            contacts: values("Contact"),
            expires: values("Expires").into_iter().next(),
            min_expires: values("Min-Expires").into_iter().next(),
            challenges,
        };
        if let Some(r) = self.registrations.get_mut(idx) {
            r.handle(Event::Response(reply), now);
        }
        self.pump_registrations(now);
    }

    /// Timer F, or the transport gave up, for a REGISTER.
    pub(super) fn register_timeout(&mut self, key: &TxKey) {
        let Some(idx) = self.reg_clients.remove(key) else {
            return;
        };
        // Set by `start`, which created the registration.
        let Some(now) = self.now else {
            return;
        };
        if let Some(r) = self.registrations.get_mut(idx) {
            r.handle(Event::Timeout, now);
        }
        self.pump_registrations(now);
    }

    /// Where the REGISTERs of the trunk named `trunk` go: its configured
    /// address (the trunk's server 0), over that trunk's own connection
    /// when it is TCP or TLS — never another trunk's, whose TLS client
    /// would present the wrong name and CA.
    fn registrar_peer(&self, trunk: &str) -> Option<Peer> {
        let index = self.trunks.by_name(trunk)?;
        let route = self.trunks.route(index)?;
        Some(Peer {
            transport: if route.tcp || route.tls {
                Transport::Tcp {
                    conn: crate::sip::transport::trunk_conn(index, 0),
                }
            } else {
                Transport::Udp
            },
            addr: route.addr,
        })
    }

    /// Carries out what the registrations ask for.
    pub(super) fn pump_registrations(&mut self, now: Instant) {
        for idx in 0..self.registrations.len() {
            let Some(peer) = self.registrar_peer(&self.registrations[idx].config().trunk) else {
                continue;
            };
            while let Some(action) = self.registrations[idx].poll_action() {
                let cfg = self.registrations[idx].config();
                match action {
                    Action::Send {
                        branch,
                        expires,
                        data,
                    } => {
                        debug!(trunk = %cfg.trunk, expires, "REGISTER sent");
                        let key = TxKey {
                            branch,
                            sent_by: cfg.hostport.to_ascii_lowercase(),
                            method: message::tx_method(Method::Register),
                        };
                        self.reg_clients.insert(key.clone(), idx);
                        self.txl.send_request(key, peer, Bytes::from(data), now);
                    }
                    Action::Registered { expires } => {
                        info!(trunk = %cfg.trunk, contact = %cfg.contact_uri(), expires, "registered with the trunk's registrar");
                    }
                    Action::Failed { status, retry_in } => {
                        let status =
                            status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
                        warn!(trunk = %cfg.trunk, status = %status, retry_in_ms = millis(retry_in), "registration failed; retrying");
                    }
                    Action::Stopped => {
                        info!(trunk = %cfg.trunk, "unregistered from the trunk's registrar");
                    }
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The called number of an INVITE that arrived on a registered contact: the
/// Request-URI then names our contact, and the number dialled is in To
/// (where credential-based carriers put it).
pub(super) fn called_on_registration(to: &str) -> Option<String> {
    access::uri_user(message::header_uri(to))
}
