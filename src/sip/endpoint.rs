//! The tokio shell around [`SipCore`]: one task owns the core, feeds it
//! messages, commands and timer wake-ups, and carries out its outputs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::api::{SipCommand, SipEvent};
use super::core::{CoreConfig, Output, SipCore};
use super::tcp_idle::IdleConnections;
use super::trace::{Direction, SipTracer};
use super::transaction::Transport;
use super::transport::{
    self, FrameLimits, Inbound, ListenTls, StreamSlots, TcpAdmission, TransportStats, TrunkTls,
};

/// Queue sizes: bounded everywhere a peer can push.
const INBOUND_QUEUE: usize = 8192;
const COMMAND_QUEUE: usize = 8192;
/// At most this many queued messages are handled per wake-up before timers
/// and commands get their turn.
const BATCH: usize = 256;

pub struct EndpointConfig {
    pub bind: SocketAddr,
    pub tcp: bool,
    pub frame: FrameLimits,
    pub admission: TcpAdmission,
    /// Close TCP connections with no transaction or dialog after this long
    /// without traffic.
    pub tcp_idle_timeout: std::time::Duration,
    /// The TLS listener (`sip.tls_bind`), if any, already bound (and
    /// non-blocking) by the caller, who wrote its port into Contact.
    pub tls: Option<(std::net::TcpListener, ListenTls)>,
    /// TLS toward each trunk (by trunk index, in priority order), for
    /// those whose `outbound_proxy` says `sips:` or `transport=tls`.
    pub trunk_tls: Vec<Option<TrunkTls>>,
    /// Which messages are logged whole (`sip.trace`); [`SipTracer::off`]
    /// by default.
    pub trace: SipTracer,
}

/// Handles the rest of the switch keeps.
pub struct SipHandle {
    pub commands: mpsc::Sender<SipCommand>,
    pub local_addr: SocketAddr,
    /// Where the TLS listener is bound, when there is one.
    pub tls_addr: Option<SocketAddr>,
    pub stats: Arc<TransportStats>,
    /// The core's counters, published after each turn of the loop.
    pub sip_stats: Arc<std::sync::Mutex<super::core::CoreStats>>,
    /// Each trunk registration's state, published like `sip_stats`.
    pub registrations: Arc<std::sync::Mutex<Vec<super::core::RegistrationStatus>>>,
    /// The trunk targets' keepalive state, published when it changes.
    pub trunk_targets: Arc<std::sync::Mutex<Vec<super::keepalive::TrunkTargetStatus>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "cannot bind SIP UDP on {addr}: {source}; check sip.bind (is another process on the port?)"
    )]
    BindUdp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot bind SIP TCP on {addr}: {source}; check sip.bind or set sip.tcp = false")]
    BindTcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot bind SIP TLS on {addr}: {source}; check sip.tls_bind (is another process on the port?)")]
    BindTls {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How many UDP ports the kernel may offer for `sip.bind` port 0 before we
/// give up finding one whose TCP twin is free too.
const PORT_ZERO_TRIES: usize = 16;

/// The UDP socket and, with `tcp`, the TCP listener on the same port
/// (RFC 3261 §18: a UA listens on both). With port 0 the kernel picks the
/// UDP port, and that number may be held on the TCP side by another
/// socket (an established connection's ephemeral port): then another UDP
/// port is taken, a bounded number of times. A fixed port is tried once.
async fn bind_pair(
    bind: SocketAddr,
    tcp: bool,
) -> Result<(tokio::net::UdpSocket, Option<TcpListener>, SocketAddr), EndpointError> {
    let tries = if bind.port() == 0 { PORT_ZERO_TRIES } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = transport::bind_udp(bind)
            .await
            .map_err(|source| EndpointError::BindUdp { addr: bind, source })?;
        let local_addr = udp
            .local_addr()
            .map_err(|source| EndpointError::BindUdp { addr: bind, source })?;
        if !tcp {
            return Ok((udp, None, local_addr));
        }
        match TcpListener::bind(local_addr).await {
            Ok(listener) => return Ok((udp, Some(listener), local_addr)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < tries => {
                tracing::debug!(
                    port = local_addr.port(),
                    "TCP twin of the UDP port is taken; another port"
                );
            }
            Err(source) => {
                return Err(EndpointError::BindTcp {
                    addr: local_addr,
                    source,
                })
            }
        }
    }
}

/// Binds the sockets and starts the endpoint. Events go to `events`.
/// The core is built by `core` once the sockets are bound, from the
/// address they got: with `sip.bind` port 0 only then is the port known
/// that the core writes into Via and Contact. (Learning it from a probe
/// socket first and binding again would race other programs for it.)
pub async fn start(
    cfg: EndpointConfig,
    core: impl FnOnce(SocketAddr) -> SipCore,
    events: mpsc::Sender<SipEvent>,
    cancel: CancellationToken,
) -> Result<(SipHandle, tokio::task::JoinHandle<()>), EndpointError> {
    let (udp, tcp, local_addr) = bind_pair(cfg.bind, cfg.tcp).await?;
    let core = core(local_addr);
    let udp = Arc::new(udp);
    let stats = Arc::new(TransportStats::default());
    let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(transport::udp_reader(
        udp.clone(),
        in_tx.clone(),
        stats.clone(),
        cfg.frame.max_message_bytes,
    )));
    let slots = StreamSlots::new(cfg.admission);
    if let Some(listener) = tcp {
        tasks.push(tokio::spawn(transport::tcp_acceptor(
            listener,
            in_tx.clone(),
            stats.clone(),
            cfg.frame,
            slots.clone(),
        )));
    }
    let mut tls_addr = None;
    if let Some((listener, tls)) = cfg.tls {
        let addr = listener
            .local_addr()
            .map_err(|source| EndpointError::BindTls {
                addr: SocketAddr::new(local_addr.ip(), 0),
                source,
            })?;
        let listener = TcpListener::from_std(listener)
            .map_err(|source| EndpointError::BindTls { addr, source })?;
        tls_addr = Some(addr);
        tasks.push(tokio::spawn(transport::tls_acceptor(
            listener,
            tls,
            in_tx.clone(),
            stats.clone(),
            cfg.frame,
            slots.clone(),
        )));
    }
    match tls_addr {
        Some(tls) => {
            info!(udp = %local_addr, tcp = cfg.tcp, tls = %tls, "SIP endpoint listening")
        }
        None => info!(udp = %local_addr, tcp = cfg.tcp, "SIP endpoint listening"),
    }
    let trunk = TrunkLinks {
        inbound: in_tx,
        stats: stats.clone(),
        frame: cfg.frame,
        tls: cfg.trunk_tls,
        links: HashMap::new(),
    };
    let sip_stats = Arc::new(std::sync::Mutex::new(core.stats()));
    let published = sip_stats.clone();
    let registrations = Arc::new(std::sync::Mutex::new(Vec::new()));
    let published_reg = registrations.clone();
    let trunk_targets = Arc::new(std::sync::Mutex::new(core.target_status().1));
    let targets_published = trunk_targets.clone();
    let idle = IdleConnections::new(cfg.tcp_idle_timeout);
    let mut trace = cfg.trace;
    let run = tokio::spawn(async move {
        run(
            core,
            udp,
            in_rx,
            cmd_rx,
            events,
            cancel,
            trunk,
            Published {
                stats: published,
                registrations: published_reg,
                targets: targets_published,
            },
            idle,
            slots,
            &mut trace,
        )
        .await;
        for t in tasks {
            t.abort();
        }
    });
    Ok((
        SipHandle {
            commands: cmd_tx,
            local_addr,
            tls_addr,
            stats,
            sip_stats,
            registrations,
            trunk_targets,
        },
        run,
    ))
}

/// A command for the core. A reload's policy also carries the new
/// `trunk.allow`, which the TCP and TLS listeners sort connections by: one
/// list for both, so a source the reload added is not trusted for requests
/// while its connections still count as a stranger's.
fn on_command(core: &mut SipCore, slots: &StreamSlots, cmd: SipCommand, now: Instant) {
    if let SipCommand::Policy(policy) = &cmd {
        slots.set_allow(policy.allow.clone());
    }
    core.handle_command(cmd, now);
}

/// Our outbound TCP/TLS connections, one per server of each trunk
/// ([`transport::trunk_conn`]): each opened on first use, with its
/// trunk's TLS client (its CA and server name).
struct TrunkLinks {
    inbound: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    frame: FrameLimits,
    /// By trunk index; `None` (or missing): plain TCP.
    tls: Vec<Option<TrunkTls>>,
    links: HashMap<u64, TrunkLink>,
}

/// One of them while it opens: what is sent before it is up
/// waits here (bounded).
#[derive(Default)]
struct TrunkLink {
    pending: Vec<(SocketAddr, Bytes)>,
    connecting: bool,
}

const TRUNK_PENDING: usize = 256;

/// How long shutdown waits for the registrar to answer our unregister
/// (and one challenge): a registrar that is down must not hold the exit.
const UNREGISTER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[allow(clippy::too_many_arguments)]
async fn run(
    mut core: SipCore,
    udp: Arc<UdpSocket>,
    mut inbound: mpsc::Receiver<Inbound>,
    mut commands: mpsc::Receiver<SipCommand>,
    events: mpsc::Sender<SipEvent>,
    cancel: CancellationToken,
    mut trunk: TrunkLinks,
    Published {
        stats: published,
        registrations: published_reg,
        targets: targets_published,
    }: Published,
    idle: IdleConnections,
    slots: StreamSlots,
    trace: &mut SipTracer,
) {
    core.start(Instant::now());
    // Set once cancelled while REGISTERs with Expires: 0 are still out:
    // keep running until they are answered or this passes.
    let mut draining: Option<Instant> = None;
    let mut targets_seen = core.target_status().0;
    // The core speaks plain IPv4 for IPv4 peers (it canonicalises what
    // arrives); a dual-stack `[::]` socket wants them IPv4-mapped again.
    let udp_v6 = udp.local_addr().is_ok_and(|a| a.is_ipv6());
    let mut tcp = TcpConns {
        conns: HashMap::new(),
        idle,
    };
    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
    loop {
        let next = match (core.deadline(), tcp.idle.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let deadline = next.map(tokio::time::Instant::from_std).unwrap_or(far);
        if draining.is_some_and(|until| core.registrations_done() || Instant::now() >= until) {
            break;
        }
        let deadline = match draining {
            Some(until) => deadline.min(tokio::time::Instant::from_std(until)),
            None => deadline,
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled(), if draining.is_none() => {
                let now = Instant::now();
                core.shutdown_registrations(now);
                if core.registrations_done() {
                    break;
                }
                draining = Some(now + UNREGISTER_WAIT);
            }
            msg = inbound.recv() => {
                let Some(msg) = msg else { break };
                let now = Instant::now();
                on_inbound(&mut core, &mut tcp, &mut trunk, trace, msg, now);
                for _ in 0..BATCH {
                    match inbound.try_recv() {
                        Ok(m) => on_inbound(&mut core, &mut tcp, &mut trunk, trace, m, now),
                        Err(_) => break,
                    }
                }
            }
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { break };
                let now = Instant::now();
                on_command(&mut core, &slots, cmd, now);
                for _ in 0..BATCH {
                    match commands.try_recv() {
                        Ok(c) => on_command(&mut core, &slots, c, now),
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                core.handle_timeout(Instant::now());
            }
        }
        // Timers that fell due while we handled input.
        let now = Instant::now();
        core.handle_timeout(now);
        for conn in tcp.idle.expire(now, || core.tcp_connections_in_use()) {
            // The connection task closes the socket and reports TcpClosed.
            if let Some(c) = tcp.conns.remove(&conn) {
                c.close.cancel();
            }
        }
        if let Ok(mut s) = published.lock() {
            *s = core.stats();
        }
        if let Ok(mut s) = published_reg.lock() {
            *s = core.registration_status(now);
        }
        let (version, status) = core.target_status();
        if version != targets_seen {
            targets_seen = version;
            if let Ok(mut t) = targets_published.lock() {
                *t = status;
            }
        }
        while let Some(out) = core.poll_output() {
            match out {
                Output::Transmit { peer, data } => {
                    trace.message(Direction::Sent, peer.addr, peer.transport, &data);
                    match peer.transport {
                        Transport::Udp => {
                            let dst = udp_destination(peer.addr, udp_v6);
                            if let Err(e) = udp.try_send_to(&data, dst) {
                                if e.kind() == std::io::ErrorKind::WouldBlock {
                                    // Socket buffer full: wait for room rather
                                    // than lose a response.
                                    let _ = udp.send_to(&data, dst).await;
                                } else {
                                    debug!(dst = %peer.addr, error = %e, "udp send failed");
                                }
                            }
                        }
                        Transport::Tcp { conn } | Transport::Tls { conn } => {
                            match tcp.conns.get(&conn) {
                                Some(c) => {
                                    tcp.idle.activity(conn, Instant::now());
                                    if c.tx.try_send(data).is_err() {
                                        debug!(conn, "tcp writer full or gone; message dropped");
                                    }
                                }
                                None => match transport::trunk_index(conn) {
                                    Some(i) => {
                                        let link = trunk.links.entry(conn).or_default();
                                        if link.pending.len() < TRUNK_PENDING {
                                            link.pending.push((peer.addr, data));
                                        } else {
                                            warn!(
                                                trunk = i,
                                                "trunk TCP connection not up; message dropped"
                                            );
                                        }
                                        if !link.connecting {
                                            link.connecting = true;
                                            tokio::spawn(transport::connect_trunk(
                                                conn,
                                                peer.addr,
                                                trunk.inbound.clone(),
                                                trunk.stats.clone(),
                                                trunk.frame,
                                                trunk.tls.get(i).cloned().flatten(),
                                            ));
                                        }
                                    }
                                    None => debug!(conn, "tcp connection gone; message dropped"),
                                },
                            }
                        }
                    }
                }
                Output::Event(ev) => {
                    // During shutdown the call layer goes first; the
                    // endpoint keeps answering until it is cancelled.
                    if events.send(ev).await.is_err() {
                        debug!("call layer gone; event dropped");
                    }
                }
            }
        }
    }
}

/// An IPv4 destination on an IPv6 (dual-stack) socket is written as its
/// IPv4-mapped form (RFC 4291 §2.5.5.2); anything else goes as it is.
fn udp_destination(addr: SocketAddr, socket_v6: bool) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if socket_v6 => SocketAddr::new(a.ip().to_ipv6_mapped().into(), a.port()),
        other => other,
    }
}

/// What the endpoint publishes after each turn of its loop, for `/metrics`
/// and the API.
struct Published {
    stats: Arc<std::sync::Mutex<super::core::CoreStats>>,
    registrations: Arc<std::sync::Mutex<Vec<super::core::RegistrationStatus>>>,
    targets: Arc<std::sync::Mutex<Vec<super::keepalive::TrunkTargetStatus>>>,
}

/// Open TCP connections: where to write, how to close, and which are idle.
struct TcpConns {
    conns: HashMap<u64, TcpConn>,
    idle: IdleConnections,
}

struct TcpConn {
    tx: mpsc::Sender<Bytes>,
    close: CancellationToken,
}

fn on_inbound(
    core: &mut SipCore,
    tcp: &mut TcpConns,
    trunk: &mut TrunkLinks,
    trace: &mut SipTracer,
    msg: Inbound,
    now: Instant,
) {
    match msg {
        Inbound::Message { data, peer } => {
            trace.message(Direction::Received, peer.addr, peer.transport, &data);
            if let Some(conn) = peer.transport.conn() {
                tcp.idle.activity(conn, now);
            }
            core.handle_message(&data, peer, now)
        }
        Inbound::KeepAlive { conn } => tcp.idle.keep_alive(conn, now),
        Inbound::TcpOpened {
            conn,
            tx,
            close,
            trusted,
        } => {
            if let Some(link) = trunk.links.get_mut(&conn) {
                link.connecting = false;
                for (_, data) in link.pending.drain(..) {
                    if tx.try_send(data).is_err() {
                        warn!("trunk TCP writer full; message dropped");
                    }
                }
            }
            // Our own connections to the trunks are never swept: one
            // descriptor each, and a close crossing a reconnect under the
            // same id would drop the new connection.
            if transport::trunk_index(conn).is_none() {
                tcp.idle.opened(conn, trusted, now);
            }
            tcp.conns.insert(conn, TcpConn { tx, close });
        }
        Inbound::TcpClosed { conn } => {
            tcp.conns.remove(&conn);
            tcp.idle.closed(conn);
            if let Some(link) = trunk.links.get_mut(&conn) {
                let never_opened = std::mem::take(&mut link.connecting);
                if never_opened {
                    // It never opened: what waited for it fails now (the
                    // trunk's next server, else the next trunk).
                    core.connection_failed(conn, now);
                }
                if !link.pending.is_empty() {
                    warn!(
                        dropped = link.pending.len(),
                        "trunk TCP connection failed; queued messages dropped"
                    );
                    let mut addrs: Vec<SocketAddr> =
                        link.pending.drain(..).map(|(addr, _)| addr).collect();
                    addrs.dedup();
                    // A transport error is the trunk's failure: its legs
                    // move to the next trunk now, not at Timer B.
                    // (Done above by the connection's id when it never
                    // opened.)
                    for addr in addrs.into_iter().filter(|_| !never_opened) {
                        core.trunk_unreachable(addr, now);
                    }
                }
            }
        }
    }
}

// Used by the type signature above; keeps the config type public for the
// wiring in `main`.
pub type Config = CoreConfig;

#[cfg(test)]
mod tests {
    use super::*;

    /// Port 0: UDP and TCP end up on one port, whichever the kernel gave.
    #[tokio::test]
    async fn port_zero_gives_one_port_for_udp_and_tcp() {
        let (udp, tcp, addr) = bind_pair("127.0.0.1:0".parse().unwrap(), true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(addr.port(), 0);
        assert_eq!(udp.local_addr().unwrap(), addr);
        assert_eq!(tcp.map(|t| t.local_addr().unwrap()), Some(addr));
    }

    /// A configured port is the operator's: its TCP twin taken is an error
    /// naming the address, not a quiet move to another port.
    #[tokio::test]
    async fn a_fixed_port_whose_tcp_twin_is_taken_is_an_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        match bind_pair(addr, true).await {
            Err(EndpointError::BindTcp { addr: a, .. }) => assert_eq!(a, addr),
            Err(e) => panic!("another error: {e}"),
            Ok((_, _, got)) => panic!("bound {got} although its TCP port is taken"),
        }
    }
}
