//! RFC 3261 §17 transaction layer, sans-IO.
//!
//! It knows keys, states, timers and the bytes of the last message sent; it
//! does not parse. The SIP core hands it the key of each message it receives
//! or sends and gets back what to put on the wire and what to tell the
//! transaction user. Time comes in as `now`, so every timer (A–K, plus RFC
//! 6026's L and M) is testable without waiting.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::TimerQueue;

/// T1, T2 and T4 of RFC 3261 §17.1.1.1 / table 4.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// How a message travels. TCP and TLS carry the connection they belong
/// to, since responses must go back over the connection the request came
/// on (§18.2.2); connection ids are unique across both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp {
        conn: u64,
    },
    /// TLS over TCP (§26.2.1): framed like TCP once the handshake is done.
    Tls {
        conn: u64,
    },
}

impl Transport {
    /// Reliable transports need no retransmissions (§17.1.1.2, §17.2.1).
    pub fn reliable(self) -> bool {
        self.conn().is_some()
    }

    /// The stream connection, for TCP and TLS.
    pub fn conn(self) -> Option<u64> {
        match self {
            Transport::Udp => None,
            Transport::Tcp { conn } | Transport::Tls { conn } => Some(conn),
        }
    }

    /// The Via transport token (§20.42).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp { .. } => "TCP",
            Transport::Tls { .. } => "TLS",
        }
    }
}

/// The other end of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// §17.1.3 / §17.2.3: transactions are matched by the top Via branch, its
/// sent-by, and the method (ACK folded into INVITE; CANCEL kept apart).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    pub branch: String,
    pub sent_by: String,
    pub method: TxMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxMethod {
    Invite,
    Cancel,
    /// Any other non-INVITE request. Distinct non-INVITE methods sharing a
    /// branch are a broken peer; we key them apart so one cannot absorb the
    /// other's response.
    Other(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

/// What a received request is, as far as the transaction layer can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMatch {
    /// A new transaction was created; the TU must answer it.
    New,
    /// A retransmission; the last response (if any) has been re-sent.
    Retransmission,
    /// The ACK for a non-2xx final response: absorbed (§17.2.1).
    AckAbsorbed,
    /// An ACK matching no transaction: the ACK for a 2xx, which belongs to
    /// the dialog (§13.2.2.4, §17.1.1.3).
    AckForDialog,
}

/// What a received response is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMatch {
    /// Hand it to the TU.
    Deliver,
    /// A retransmitted final response: already handled (ACK re-sent for
    /// INVITE non-2xx) or absorbed.
    Absorbed,
    /// No transaction: drop it and log (§17.1.3, §18.1.2).
    Unmatched,
}

/// What the layer tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// Put these bytes on the wire.
    Transmit { peer: Peer, data: Bytes },
    /// Timer B or F fired: the request got no final response (§17.1.1.2,
    /// §17.1.2.2). The TU treats it as a 408.
    ClientTimeout { key: TxKey },
    /// Timer H fired: our non-2xx final response to an INVITE was never
    /// acknowledged (§17.2.1).
    ServerAckTimeout { key: TxKey },
    /// The transaction is gone (used by tests and metrics).
    Terminated { key: TxKey, side: Side },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    /// Client INVITE retransmit (A) / client non-INVITE retransmit (E).
    Retransmit,
    /// Client transaction timeout (B / F).
    Timeout,
    /// Client INVITE Completed wait (D) / non-INVITE Completed wait (K) /
    /// client INVITE Accepted wait (M, RFC 6026).
    ClientLinger,
    /// Server INVITE final-response retransmit (G).
    ResponseRetransmit,
    /// Server INVITE wait for ACK (H).
    AckWait,
    /// Server INVITE Confirmed wait (I) / non-INVITE Completed wait (J) /
    /// INVITE Accepted wait (L, RFC 6026).
    ServerLinger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// Trying (non-INVITE) or Proceeding.
    Proceeding,
    /// Non-2xx final sent.
    Completed,
    /// ACK received for non-2xx (INVITE only).
    Confirmed,
    /// 2xx sent (INVITE, RFC 6026 §7.1).
    Accepted,
}

#[derive(Debug)]
struct ServerTx {
    invite: bool,
    peer: Peer,
    state: ServerState,
    last_response: Option<Bytes>,
    /// Armed timers: (kind, deadline). Anything popped from the queue that
    /// is not listed here is stale.
    timers: Vec<(TimerKind, Instant)>,
    retransmit_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
}

#[derive(Debug)]
struct ClientTx {
    invite: bool,
    peer: Peer,
    state: ClientState,
    request: Bytes,
    /// The ACK we sent for a non-2xx final (re-sent on retransmitted finals).
    ack: Option<Bytes>,
    timers: Vec<(TimerKind, Instant)>,
    retransmit_interval: Duration,
}

fn arm_timer(
    queue: &mut TimerQueue<(TxKey, Side, TimerKind)>,
    timers: &mut Vec<(TimerKind, Instant)>,
    key: &TxKey,
    side: Side,
    kind: TimerKind,
    at: Instant,
) {
    timers.retain(|(k, _)| *k != kind);
    timers.push((kind, at));
    queue.arm(at, (key.clone(), side, kind));
}

fn disarm(timers: &mut Vec<(TimerKind, Instant)>, kind: TimerKind) {
    timers.retain(|(k, _)| *k != kind);
}

/// All transactions of one SIP endpoint.
#[derive(Debug)]
pub struct TransactionLayer {
    timers: Timers,
    queue: TimerQueue<(TxKey, Side, TimerKind)>,
    servers: HashMap<TxKey, ServerTx>,
    clients: HashMap<TxKey, ClientTx>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    pub fn new(timers: Timers) -> Self {
        Self {
            timers,
            queue: TimerQueue::default(),
            servers: HashMap::new(),
            clients: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    pub fn has_server(&self, key: &TxKey) -> bool {
        self.servers.contains_key(key)
    }

    /// True while a server INVITE transaction has not sent a final response:
    /// CANCEL can still end it (§9.2).
    pub fn server_is_proceeding(&self, key: &TxKey) -> bool {
        self.servers
            .get(key)
            .is_some_and(|tx| tx.state == ServerState::Proceeding)
    }

    /// The next instant at which `handle_timeout` has work.
    pub fn deadline(&self) -> Option<Instant> {
        self.queue.deadline()
    }

    /// Adds the TCP connections some transaction still answers or sends on
    /// (the idle sweep must not close them, §18.2.2).
    pub fn tcp_connections(&self, out: &mut std::collections::HashSet<u64>) {
        let peers = self.servers.values().map(|t| t.peer);
        for peer in peers.chain(self.clients.values().map(|t| t.peer)) {
            if let Some(conn) = peer.transport.conn() {
                out.insert(conn);
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------- server

    /// A request arrived. `is_ack` requests are matched against INVITE
    /// server transactions (§17.2.3: the ACK's key is the INVITE's).
    pub fn on_request(
        &mut self,
        key: &TxKey,
        is_ack: bool,
        peer: Peer,
        now: Instant,
    ) -> ServerMatch {
        let t = self.timers;
        if is_ack {
            let Some(tx) = self.servers.get_mut(key) else {
                return ServerMatch::AckForDialog;
            };
            return match tx.state {
                ServerState::Completed => {
                    // §17.2.1: ACK moves Completed to Confirmed; Timer I is
                    // T4 on unreliable transports, zero on reliable ones.
                    tx.state = ServerState::Confirmed;
                    disarm(&mut tx.timers, TimerKind::ResponseRetransmit);
                    disarm(&mut tx.timers, TimerKind::AckWait);
                    let wait = if peer.transport.reliable() {
                        Duration::ZERO
                    } else {
                        t.t4
                    };
                    arm_timer(
                        &mut self.queue,
                        &mut tx.timers,
                        key,
                        Side::Server,
                        TimerKind::ServerLinger,
                        now + wait,
                    );
                    ServerMatch::AckAbsorbed
                }
                ServerState::Confirmed => ServerMatch::AckAbsorbed,
                // An ACK for a 2xx carries a new branch, so it cannot match
                // here; one that does is a broken peer reusing the INVITE's
                // branch. The dialog decides.
                ServerState::Accepted | ServerState::Proceeding => ServerMatch::AckForDialog,
            };
        }
        if let Some(tx) = self.servers.get_mut(key) {
            // §17.2.1 / §17.2.2: a retransmitted request re-sends the most
            // recent response. RFC 6026 §7.1: in Accepted the INVITE is
            // absorbed; the TU's 2xx retransmissions cover a lost 2xx.
            if tx.state != ServerState::Accepted {
                if let Some(data) = tx.last_response.clone() {
                    self.events.push_back(TxEvent::Transmit {
                        peer: tx.peer,
                        data,
                    });
                }
            }
            return ServerMatch::Retransmission;
        }
        let invite = key.method == TxMethod::Invite;
        self.servers.insert(
            key.clone(),
            ServerTx {
                invite,
                peer,
                state: ServerState::Proceeding,
                last_response: None,
                timers: Vec::new(),
                retransmit_interval: t.t1,
            },
        );
        ServerMatch::New
    }

    /// The TU answers server transaction `key` with `status` (already
    /// serialised in `data`). Returns false when there is no such
    /// transaction or it already has a final response.
    pub fn respond(&mut self, key: &TxKey, status: u16, data: Bytes, now: Instant) -> bool {
        let t = self.timers;
        let Some(tx) = self.servers.get_mut(key) else {
            return false;
        };
        if tx.state != ServerState::Proceeding {
            return false;
        }
        self.events.push_back(TxEvent::Transmit {
            peer: tx.peer,
            data: data.clone(),
        });
        tx.last_response = Some(data);
        if status < 200 {
            return true;
        }
        let reliable = tx.peer.transport.reliable();
        if tx.invite && (200..300).contains(&status) {
            // RFC 6026 §7.1: Accepted for 64*T1 (Timer L) so that retransmitted
            // INVITEs are absorbed rather than seen as new requests; the TU
            // owns 2xx retransmission (§13.3.1.4).
            tx.state = ServerState::Accepted;
            // Nothing re-sends it from here (the dialog keeps its own copy
            // until the ACK): not kept for Timer L's 32 s, 1 KB of every
            // call that just answered (issue 15).
            tx.last_response = None;
            arm_timer(
                &mut self.queue,
                &mut tx.timers,
                key,
                Side::Server,
                TimerKind::ServerLinger,
                now + t.t1x64(),
            );
        } else if tx.invite {
            tx.state = ServerState::Completed;
            if !reliable {
                // Timer G: T1, doubling up to T2.
                tx.retransmit_interval = t.t1;
                arm_timer(
                    &mut self.queue,
                    &mut tx.timers,
                    key,
                    Side::Server,
                    TimerKind::ResponseRetransmit,
                    now + t.t1,
                );
            }
            // Timer H: 64*T1 for the ACK, whatever the transport.
            arm_timer(
                &mut self.queue,
                &mut tx.timers,
                key,
                Side::Server,
                TimerKind::AckWait,
                now + t.t1x64(),
            );
        } else {
            tx.state = ServerState::Completed;
            // Timer J: 64*T1 on unreliable transports, zero on reliable.
            let wait = if reliable { Duration::ZERO } else { t.t1x64() };
            arm_timer(
                &mut self.queue,
                &mut tx.timers,
                key,
                Side::Server,
                TimerKind::ServerLinger,
                now + wait,
            );
        }
        true
    }

    // ---------------------------------------------------------------- client

    /// Starts a client transaction and transmits `request`.
    pub fn send_request(&mut self, key: TxKey, peer: Peer, request: Bytes, now: Instant) {
        let t = self.timers;
        let invite = key.method == TxMethod::Invite;
        self.events.push_back(TxEvent::Transmit {
            peer,
            data: request.clone(),
        });
        let mut tx = ClientTx {
            invite,
            peer,
            state: ClientState::Calling,
            request,
            ack: None,
            timers: Vec::new(),
            retransmit_interval: t.t1,
        };
        if !peer.transport.reliable() {
            // Timer A (INVITE) / Timer E (non-INVITE): T1, doubling.
            arm_timer(
                &mut self.queue,
                &mut tx.timers,
                &key,
                Side::Client,
                TimerKind::Retransmit,
                now + t.t1,
            );
        }
        // Timer B / Timer F: 64*T1.
        arm_timer(
            &mut self.queue,
            &mut tx.timers,
            &key,
            Side::Client,
            TimerKind::Timeout,
            now + t.t1x64(),
        );
        self.clients.insert(key, tx);
    }

    /// A response arrived for client transaction `key`. `make_ack` builds the
    /// ACK for a non-2xx final to an INVITE (§17.1.1.3); it is called at most
    /// once per transaction.
    pub fn on_response(
        &mut self,
        key: &TxKey,
        status: u16,
        now: Instant,
        make_ack: impl FnOnce() -> Option<Bytes>,
    ) -> ClientMatch {
        let t = self.timers;
        let Some(tx) = self.clients.get_mut(key) else {
            return ClientMatch::Unmatched;
        };
        let reliable = tx.peer.transport.reliable();
        match (tx.state, status) {
            (ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                if tx.invite {
                    // §17.1.1.2: a provisional stops Timer A.
                    disarm(&mut tx.timers, TimerKind::Retransmit);
                } else if tx.state == ClientState::Calling && !reliable {
                    // §17.1.2.2: in Proceeding, Timer E fires at T2.
                    tx.retransmit_interval = t.t2;
                }
                tx.state = ClientState::Proceeding;
                ClientMatch::Deliver
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=299) if tx.invite => {
                // RFC 6026 §7.2: Accepted for Timer M (64*T1) so 2xx
                // retransmissions from forks still reach the TU.
                tx.state = ClientState::Accepted;
                disarm(&mut tx.timers, TimerKind::Retransmit);
                disarm(&mut tx.timers, TimerKind::Timeout);
                arm_timer(
                    &mut self.queue,
                    &mut tx.timers,
                    key,
                    Side::Client,
                    TimerKind::ClientLinger,
                    now + t.t1x64(),
                );
                ClientMatch::Deliver
            }
            (ClientState::Accepted, 200..=299) => ClientMatch::Deliver,
            (ClientState::Accepted, _) => ClientMatch::Absorbed,
            (ClientState::Calling | ClientState::Proceeding, _) => {
                tx.state = ClientState::Completed;
                disarm(&mut tx.timers, TimerKind::Retransmit);
                disarm(&mut tx.timers, TimerKind::Timeout);
                let wait = if tx.invite {
                    if let Some(ack) = make_ack() {
                        self.events.push_back(TxEvent::Transmit {
                            peer: tx.peer,
                            data: ack.clone(),
                        });
                        tx.ack = Some(ack);
                    }
                    // Timer D: at least 32 s unreliable, zero reliable.
                    if reliable {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32).max(t.t1x64())
                    }
                } else if reliable {
                    Duration::ZERO
                } else {
                    // Timer K: T4.
                    t.t4
                };
                arm_timer(
                    &mut self.queue,
                    &mut tx.timers,
                    key,
                    Side::Client,
                    TimerKind::ClientLinger,
                    now + wait,
                );
                ClientMatch::Deliver
            }
            (ClientState::Completed, _) => {
                // §17.1.1.2: a retransmitted final gets the ACK again.
                if let Some(ack) = tx.ack.clone() {
                    self.events.push_back(TxEvent::Transmit {
                        peer: tx.peer,
                        data: ack,
                    });
                }
                ClientMatch::Absorbed
            }
        }
    }

    /// Forgets a client transaction at once (the TU no longer cares, e.g.
    /// after a transport error).
    pub fn abandon_client(&mut self, key: &TxKey) {
        if self.clients.remove(key).is_some() {
            self.events.push_back(TxEvent::Terminated {
                key: key.clone(),
                side: Side::Client,
            });
        }
    }

    // ---------------------------------------------------------------- timers

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, (key, side, kind))) = self.queue.pop_due(now) {
            match side {
                Side::Server => self.fire_server(key, kind, at),
                Side::Client => self.fire_client(key, kind, at),
            }
        }
        // Transactions end here (Timers J, K, L, D, H, B, F): a peak's
        // tables shrink once it is over.
        crate::capacity::shrink_map(&mut self.servers);
        crate::capacity::shrink_map(&mut self.clients);
        self.queue.shrink();
    }

    fn fire_server(&mut self, key: TxKey, kind: TimerKind, at: Instant) {
        let t = self.timers;
        let Some(tx) = self.servers.get_mut(&key) else {
            return;
        };
        if !tx.timers.contains(&(kind, at)) {
            return; // stale
        }
        disarm(&mut tx.timers, kind);
        match kind {
            TimerKind::ResponseRetransmit => {
                if let Some(data) = tx.last_response.clone() {
                    self.events.push_back(TxEvent::Transmit {
                        peer: tx.peer,
                        data,
                    });
                }
                // Timer G doubles up to T2 (§17.2.1).
                tx.retransmit_interval = (tx.retransmit_interval * 2).min(t.t2);
                let next = at + tx.retransmit_interval;
                arm_timer(
                    &mut self.queue,
                    &mut tx.timers,
                    &key,
                    Side::Server,
                    TimerKind::ResponseRetransmit,
                    next,
                );
            }
            TimerKind::AckWait => {
                self.servers.remove(&key);
                self.events
                    .push_back(TxEvent::ServerAckTimeout { key: key.clone() });
                self.events.push_back(TxEvent::Terminated {
                    key,
                    side: Side::Server,
                });
            }
            _ => {
                self.servers.remove(&key);
                self.events.push_back(TxEvent::Terminated {
                    key,
                    side: Side::Server,
                });
            }
        }
    }

    fn fire_client(&mut self, key: TxKey, kind: TimerKind, at: Instant) {
        let t = self.timers;
        let Some(tx) = self.clients.get_mut(&key) else {
            return;
        };
        if !tx.timers.contains(&(kind, at)) {
            return;
        }
        disarm(&mut tx.timers, kind);
        match kind {
            TimerKind::Retransmit => {
                self.events.push_back(TxEvent::Transmit {
                    peer: tx.peer,
                    data: tx.request.clone(),
                });
                // Timer A doubles without bound (B ends it); Timer E doubles
                // up to T2 (§17.1.2.2).
                tx.retransmit_interval = if tx.invite {
                    tx.retransmit_interval * 2
                } else {
                    (tx.retransmit_interval * 2).min(t.t2)
                };
                let next = at + tx.retransmit_interval;
                arm_timer(
                    &mut self.queue,
                    &mut tx.timers,
                    &key,
                    Side::Client,
                    TimerKind::Retransmit,
                    next,
                );
            }
            TimerKind::Timeout => {
                self.clients.remove(&key);
                self.events
                    .push_back(TxEvent::ClientTimeout { key: key.clone() });
                self.events.push_back(TxEvent::Terminated {
                    key,
                    side: Side::Client,
                });
            }
            _ => {
                self.clients.remove(&key);
                self.events.push_back(TxEvent::Terminated {
                    key,
                    side: Side::Client,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
