//! UDP and TCP sockets (§18). Receiving tasks hand complete messages to the
//! endpoint over a bounded queue: when it is full, datagrams are dropped and
//! counted rather than queued without limit; TCP readers simply wait, which
//! pushes back on the sender through TCP flow control.
//!
//! TCP slots are split by trust: sources inside `trunk.allow` share
//! `sip.max_tcp_connections`, everyone else a small budget of their own, so
//! strangers holding connections open can never lock the trunk out.
//! Which sources are trusted follows a reload: the endpoint hands the
//! slots each new `trunk.allow` (with the SIP core's policy), and a
//! connection is sorted when it is accepted.
//!
//! TLS (RFC 3261 §26.2.1) shares those slots and that code: a connection
//! takes its slot at accept, before the handshake, which must finish
//! within `sip.tls_handshake_timeout`; after it the stream is framed and
//! served exactly like TCP, tagged `Transport::Tls`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::transaction::{Peer, Transport};

/// What the transport tasks tell the endpoint.
#[derive(Debug)]
pub enum Inbound {
    Message {
        data: Bytes,
        peer: Peer,
    },
    /// `close` ends the connection from the endpoint's side (idle sweep).
    TcpOpened {
        conn: u64,
        tx: mpsc::Sender<Bytes>,
        close: CancellationToken,
        trusted: bool,
    },
    /// A CRLF ping arrived and was answered with a CRLF pong (RFC 5626
    /// §3.5.1).
    KeepAlive {
        conn: u64,
    },
    TcpClosed {
        conn: u64,
    },
}

#[derive(Debug, Default)]
pub struct TransportStats {
    pub udp_dropped_queue_full: AtomicU64,
    pub udp_oversized: AtomicU64,
    pub tcp_framing_errors: AtomicU64,
    pub tcp_refused: AtomicU64,
    /// Refused because the untrusted budget was full.
    pub tcp_refused_untrusted: AtomicU64,
    /// Closed by the idle sweep.
    pub tcp_idle_closed: AtomicU64,
    /// Inbound TLS handshakes that failed or timed out.
    pub tls_handshake_failed: AtomicU64,
}

/// Limits on what a peer can make us buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    pub max_message_bytes: usize,
    pub max_header_bytes: usize,
}

/// Who may hold an inbound TCP connection, and how many at once.
#[derive(Debug, Clone)]
pub struct TcpAdmission {
    pub allow: Vec<IpNet>,
    /// Slots for sources inside `allow`; a peer cannot exhaust our file
    /// descriptors.
    pub trusted: usize,
    /// Slots for everyone else (0: refused at accept).
    pub untrusted: usize,
}

/// The stream slots of [`TcpAdmission`], shared by the TCP and TLS
/// listeners: one budget for every inbound stream connection.
#[derive(Debug, Clone)]
pub struct StreamSlots {
    /// Swapped by [`StreamSlots::set_allow`] on a reload; read once per
    /// accept and never held across an await.
    allow: Arc<std::sync::RwLock<Vec<IpNet>>>,
    trusted: Arc<Semaphore>,
    untrusted: Arc<Semaphore>,
}

impl StreamSlots {
    pub fn new(admission: TcpAdmission) -> Self {
        Self {
            allow: Arc::new(std::sync::RwLock::new(admission.allow)),
            trusted: Arc::new(Semaphore::new(admission.trusted.max(1))),
            untrusted: Arc::new(Semaphore::new(admission.untrusted)),
        }
    }

    /// Trust `allow` from the next accepted connection on (a reload's
    /// `trunk.allow`). A connection already open keeps the budget it was
    /// admitted to: its slot is held until it closes.
    pub fn set_allow(&self, allow: Vec<IpNet>) {
        // A writer that panicked left a whole list behind (one assignment),
        // so a poisoned lock is still a good one.
        *self.allow.write().unwrap_or_else(|e| e.into_inner()) = allow;
    }

    /// Is `ip` trusted by the allow-list in force?
    fn trusts(&self, ip: std::net::IpAddr) -> bool {
        let allow = self.allow.read().unwrap_or_else(|e| e.into_inner());
        allowed(&allow, ip)
    }

    /// A slot for a connection from `from`, or `None` (counted and, for the
    /// trunk, logged) when its budget is full.
    fn admit(
        &self,
        from: SocketAddr,
        stats: &TransportStats,
    ) -> Option<(tokio::sync::OwnedSemaphorePermit, bool)> {
        let trusted = self.trusts(from.ip());
        let slots = if trusted {
            &self.trusted
        } else {
            &self.untrusted
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => Some((slot, trusted)),
            Err(_) => {
                // Full: close at once rather than queue a stranger's socket.
                if trusted {
                    stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
                    warn!(src = %from, "sip.max_tcp_connections reached; connection refused");
                } else {
                    // Strangers can make this happen at will: no log line each.
                    stats.tcp_refused_untrusted.fetch_add(1, Ordering::Relaxed);
                    debug!(src = %from, "untrusted TCP budget full; connection refused");
                }
                None
            }
        }
    }
}

/// Is `ip` inside the allow-list? An IPv4-mapped IPv6 source (a dual-stack
/// `[::]` socket) is compared as the IPv4 address it is.
pub fn allowed(allow: &[IpNet], ip: std::net::IpAddr) -> bool {
    let ip = ip.to_canonical();
    allow.iter().any(|n| n.contains(&ip))
}

pub async fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        // "[::]" serves IPv4 and IPv6 alike.
        sock.set_only_v6(false)?;
    }
    // Bursts of INVITEs at load: give the kernel room (best effort).
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Reads datagrams until the socket fails or the endpoint is gone.
pub async fn udp_reader(
    sock: Arc<UdpSocket>,
    tx: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    max: usize,
) {
    let mut buf = vec![0u8; max.max(1500) + 1];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port-unreachable surfaces here on some systems; it is
                // not fatal for a listening socket.
                debug!(error = %e, "udp recv error");
                continue;
            }
        };
        if n > max {
            // Larger than any message we accept: §18.1.1 says such requests
            // belong on TCP; the truncated rest cannot be parsed.
            stats.udp_oversized.fetch_add(1, Ordering::Relaxed);
            debug!(src = %from, bytes = n, "oversized datagram dropped");
            continue;
        }
        let msg = Inbound::Message {
            data: Bytes::copy_from_slice(&buf[..n]),
            peer: Peer {
                transport: Transport::Udp,
                addr: from,
            },
        };
        match tx.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                stats.udp_dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Low bits of our own connections' ids that number a trunk's servers.
pub const SERVER_BITS: u32 = 20;
/// Far more than any configuration has trunks; ids stay in the top 2^36,
/// far above what inbound connections (counting up from 1) ever reach.
const MAX_TRUNKS: u64 = 1 << 16;

/// Our own TCP/TLS connection to server `server` (numbered by the core)
/// of trunk `trunk` (by priority order). Counted down from the top, so it
/// never meets an inbound connection's id. One connection per server of
/// each trunk: each trunk has its own TLS client, a failover to the
/// trunk's next server must not go down the connection to the one that
/// failed, and a failed connection fails only what was sent on it.
pub const fn trunk_conn(trunk: usize, server: u32) -> u64 {
    let server = (server as u64) & ((1 << SERVER_BITS) - 1);
    u64::MAX - (((trunk as u64) << SERVER_BITS) | server)
}

/// Which trunk's connection `conn` is, if it is one of ours.
pub fn trunk_index(conn: u64) -> Option<usize> {
    let i = (u64::MAX - conn) >> SERVER_BITS;
    (i < MAX_TRUNKS).then_some(i as usize)
}

/// The first trunk's connection to its configured server.
pub const TRUNK_CONN: u64 = trunk_conn(0, 0);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// TLS toward the trunk: the client configuration, the name its
/// certificate must carry, and how long the handshake may take.
#[derive(Clone)]
pub struct TrunkTls {
    /// `trunk` or `trunks[N]`, for the words of a failed handshake.
    pub key: String,
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: rustls::pki_types::ServerName<'static>,
    pub handshake_timeout: std::time::Duration,
}

/// The TLS listener's server side and handshake limit.
#[derive(Clone)]
pub struct ListenTls {
    pub config: Arc<rustls::ServerConfig>,
    pub handshake_timeout: std::time::Duration,
}

/// Opens our TCP (or, with `tls`, TLS) connection `conn` to a trunk's
/// target (`outbound_proxy` with `transport=tcp`/`tls`, or a resolved
/// stream target) and serves it like an inbound one, under `conn`
/// ([`trunk_conn`]). A failed connect or handshake is reported as that
/// connection closing.
pub async fn connect_trunk(
    conn: u64,
    addr: SocketAddr,
    tx: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    limits: FrameLimits,
    tls: Option<TrunkTls>,
) {
    let stream =
        match tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect(addr))
            .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                warn!(trunk = %addr, error = %e, "cannot connect to the trunk");
                let _ = tx.send(Inbound::TcpClosed { conn }).await;
                return;
            }
            Err(_) => {
                warn!(trunk = %addr, "TCP connect to the trunk timed out");
                let _ = tx.send(Inbound::TcpClosed { conn }).await;
                return;
            }
        };
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        stream_connection(stream, addr, tx, stats, limits, Some(conn), true, false).await;
        return;
    };
    let connector = tokio_rustls::TlsConnector::from(tls.config);
    let handshake = connector.connect(tls.server_name.clone(), stream);
    match tokio::time::timeout(tls.handshake_timeout, handshake).await {
        Ok(Ok(stream)) => {
            debug!(trunk = %addr, "TLS to the trunk established");
            stream_connection(stream, addr, tx, stats, limits, Some(conn), true, true).await;
        }
        Ok(Err(e)) => {
            // The certificate check fails here: say so in words, once.
            warn!(trunk = %addr, name = %server_name_text(&tls.server_name), error = %e, "TLS handshake with the trunk failed; check {0}.tls_server_name and {0}.tls_ca_file", tls.key);
            let _ = tx.send(Inbound::TcpClosed { conn }).await;
        }
        Err(_) => {
            warn!(trunk = %addr, "TLS handshake with the trunk timed out (sip.tls_handshake_timeout)");
            let _ = tx.send(Inbound::TcpClosed { conn }).await;
        }
    }
}

fn server_name_text(n: &rustls::pki_types::ServerName<'_>) -> String {
    match n {
        rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_owned(),
        rustls::pki_types::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => "?".into(),
    }
}

/// The next connection `slots` admits (TCP and TLS listeners share the
/// budgets): refused ones are closed at once, and a failed accept
/// (EMFILE/ENFILE land here) backs off instead of spinning.
async fn accept_admitted(
    listener: &TcpListener,
    slots: &StreamSlots,
    stats: &TransportStats,
    what: &str,
) -> (
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
    bool,
) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(listener = what, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((slot, trusted)) = slots.admit(from, stats) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        return (stream, from, slot, trusted);
    }
}

pub async fn tcp_acceptor(
    listener: TcpListener,
    tx: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    limits: FrameLimits,
    slots: StreamSlots,
) {
    loop {
        let (stream, from, slot, trusted) = accept_admitted(&listener, &slots, &stats, "tcp").await;
        let (tx, stats) = (tx.clone(), stats.clone());
        tokio::spawn(async move {
            stream_connection(stream, from, tx, stats, limits, None, trusted, false).await;
            drop(slot);
        });
    }
}

/// Accepts TLS connections on `sip.tls_bind`. The slot is taken before the
/// handshake, so handshakes in progress count against the same budgets,
/// and each must finish within the handshake timeout: a stranger who opens
/// connections and never speaks holds a slot for at most that long.
pub async fn tls_acceptor(
    listener: TcpListener,
    tls: ListenTls,
    tx: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    limits: FrameLimits,
    slots: StreamSlots,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
    loop {
        let (stream, from, slot, trusted) = accept_admitted(&listener, &slots, &stats, "tls").await;
        let (tx, stats, acceptor) = (tx.clone(), stats.clone(), acceptor.clone());
        let timeout = tls.handshake_timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    stream_connection(stream, from, tx, stats, limits, None, trusted, true).await;
                }
                Ok(Err(e)) => {
                    stats.tls_handshake_failed.fetch_add(1, Ordering::Relaxed);
                    debug!(src = %from, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    stats.tls_handshake_failed.fetch_add(1, Ordering::Relaxed);
                    debug!(src = %from, "TLS handshake timed out");
                }
            }
            drop(slot);
        });
    }
}

/// Serves one stream connection, TCP or (with `tls`) TLS after its
/// handshake: frames what arrives, writes what the endpoint queues.
#[allow(clippy::too_many_arguments)]
async fn stream_connection<S>(
    stream: S,
    from: SocketAddr,
    tx: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    limits: FrameLimits,
    conn: Option<u64>,
    trusted: bool,
    tls: bool,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let conn = conn.unwrap_or_else(|| NEXT_CONN.fetch_add(1, Ordering::Relaxed));
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (wtx, mut wrx) = mpsc::channel::<Bytes>(256);
    let close = CancellationToken::new();
    let opened = Inbound::TcpOpened {
        conn,
        tx: wtx.clone(),
        close: close.clone(),
        trusted,
    };
    if tx.send(opened).await.is_err() {
        return;
    }
    // Once `done`, the writer sends what is queued (such as the answer to a
    // framing error) and closes its side.
    let done = CancellationToken::new();
    let writer_done = done.clone();
    let mut writer = tokio::spawn(async move {
        loop {
            let data = tokio::select! {
                biased;
                d = wrx.recv() => match d {
                    Some(d) => d,
                    None => break,
                },
                _ = writer_done.cancelled() => match wrx.try_recv() {
                    Ok(d) => d,
                    Err(_) => break,
                },
            };
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let peer = Peer {
        transport: if tls {
            Transport::Tls { conn }
        } else {
            Transport::Tcp { conn }
        },
        addr: from,
    };
    let mut framer = Framer::new(limits);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = tokio::select! {
            _ = close.cancelled() => break,
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        framer.push(&chunk[..n]);
        loop {
            let inbound = match framer.next_message() {
                Ok(Some(Frame::Message(data))) => Inbound::Message { data, peer },
                Ok(Some(Frame::Ping)) => {
                    // RFC 5626 §3.5.1: answer a CRLFCRLF ping with one CRLF.
                    if wtx.try_send(Bytes::from_static(b"\r\n")).is_err() {
                        debug!(src = %from, "tcp writer full; pong dropped");
                    }
                    Inbound::KeepAlive { conn }
                }
                Ok(None) => break,
                Err(e) => {
                    // §18.3: on a stream a framing error cannot be recovered
                    // from; close the connection.
                    stats.tcp_framing_errors.fetch_add(1, Ordering::Relaxed);
                    debug!(src = %from, error = %e, "closing tcp connection");
                    if let Some(answer) = framer.error_answer(&e) {
                        let _ = wtx.try_send(Bytes::from(answer));
                    }
                    break 'read;
                }
            };
            if tx.send(inbound).await.is_err() {
                break 'read;
            }
        }
    }
    if close.is_cancelled() {
        stats.tcp_idle_closed.fetch_add(1, Ordering::Relaxed);
        debug!(src = %from, conn, "idle tcp connection closed");
    }
    done.cancel();
    // A peer that does not read cannot hold the task: one second to flush.
    if tokio::time::timeout(std::time::Duration::from_secs(1), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    let _ = tx.send(Inbound::TcpClosed { conn }).await;
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("header section longer than {0} bytes")]
    HeaderTooLong(usize),
    #[error("message longer than {0} bytes")]
    TooLarge(usize),
    #[error("missing or malformed Content-Length on a stream")]
    BadContentLength,
}

/// What the framer found next on the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Bytes),
    /// A CRLFCRLF keep-alive ping (RFC 5626 §3.5.1), to be answered with one
    /// CRLF.
    Ping,
}

/// Splits a TCP byte stream into messages by Content-Length (§18.3),
/// reporting CRLFCRLF keep-alive pings and skipping lone CRLFs (a pong, or
/// the CRLFs §7.5 allows before a message) between messages.
pub struct Framer {
    buf: BytesMut,
    limits: FrameLimits,
}

impl Framer {
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            buf: BytesMut::new(),
            limits,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_message(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                return Ok(Some(Frame::Ping));
            }
            match self.buf.first() {
                Some(b'\r' | b'\n') => {
                    // Fewer than four line-end bytes may still grow into a
                    // ping: wait for more.
                    if self.buf.len() < 4 && self.buf.iter().all(|b| *b == b'\r' || *b == b'\n') {
                        return Ok(None);
                    }
                    self.buf.advance(1);
                }
                _ => break,
            }
        }
        let Some(end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > self.limits.max_header_bytes {
                return Err(FrameError::HeaderTooLong(self.limits.max_header_bytes));
            }
            return Ok(None);
        };
        if end > self.limits.max_header_bytes {
            return Err(FrameError::HeaderTooLong(self.limits.max_header_bytes));
        }
        let head = &self.buf[..end];
        let too_large = FrameError::TooLarge(self.limits.max_message_bytes);
        let len = content_length(head)?.ok_or(too_large.clone())?;
        // The length is the peer's number: checked, so a value near
        // usize::MAX cannot wrap below the limit and cut the stream inside
        // the next message's headers.
        let total = end
            .checked_add(4)
            .and_then(|t| t.checked_add(len))
            .filter(|t| *t <= self.limits.max_message_bytes)
            .ok_or(too_large)?;
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::Message(self.buf.split_to(total).freeze())))
    }
}

impl Framer {
    /// What a framing error deserves before the connection closes: a request
    /// whose header block is complete gets 400 (no usable Content-Length,
    /// §20.14) or 513 (§21.5.14), built from its own Via, From, To, Call-ID
    /// and CSeq (§8.2.6); anything else gets nothing.
    pub fn error_answer(&self, e: &FrameError) -> Option<Vec<u8>> {
        let (status, reason) = match e {
            FrameError::BadContentLength => (400, "Bad Content-Length"),
            FrameError::TooLarge(_) => (513, "Message Too Large"),
            FrameError::HeaderTooLong(_) => return None,
        };
        let end = find(&self.buf, b"\r\n\r\n")?;
        let head = self.buf.get(..end.checked_add(4)?)?;
        let max_headers = super::inspect::Limits::default().max_headers;
        let raw = super::wire::split(head, max_headers).ok()?;
        // A response is never answered, and without Via there is nowhere
        // to send one.
        if raw.start_line.starts_with(b"SIP/") || raw.first("Via").is_none() {
            return None;
        }
        Some(super::wire::error_response(&raw, status, reason, &[]))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Content-Length (or compact `l`) from a header section. On a stream it is
/// mandatory (§20.14) and is `1*DIGIT`: a sign, a blank inside, a hex prefix
/// or two different values cannot frame the stream. `Ok(None)`: digits too
/// many for any length we could hold.
fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let bad = FrameError::BadContentLength;
    let text = std::str::from_utf8(head).map_err(|_| bad.clone())?;
    let mut found: Option<Option<usize>> = None;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let value = value.trim();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad);
            }
            // All digits: the only parse failure left is overflow.
            let v = value.parse::<usize>().ok();
            if found.is_some_and(|f| f != v) {
                return Err(bad);
            }
            found = Some(v);
        }
    }
    found.ok_or(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a reload adds a trunk source, its connections take the
    /// trunk's budget, and a source the reload removed is a stranger: with
    /// the start-up list they were sorted the other way round.
    #[test]
    fn admission_follows_a_swapped_allow_list() {
        let stats = TransportStats::default();
        let slots = StreamSlots::new(TcpAdmission {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            trusted: 4,
            untrusted: 0,
        });
        let new_trunk: SocketAddr = "192.0.2.7:5060".parse().unwrap();
        let old_trunk: SocketAddr = "10.1.2.3:5060".parse().unwrap();
        assert!(slots.admit(new_trunk, &stats).is_none());
        let (_held, trusted) = slots.admit(old_trunk, &stats).expect("old trunk admitted");
        assert!(trusted);

        // The clone the listeners hold sees the swap too.
        slots
            .clone()
            .set_allow(vec!["192.0.2.0/24".parse().unwrap()]);
        let (_slot, trusted) = slots.admit(new_trunk, &stats).expect("new trunk admitted");
        assert!(trusted);
        assert!(slots.admit(old_trunk, &stats).is_none());
        assert_eq!(stats.tcp_refused_untrusted.load(Ordering::Relaxed), 2);
        assert_eq!(stats.tcp_refused.load(Ordering::Relaxed), 0);
    }

    fn limits() -> FrameLimits {
        FrameLimits {
            max_message_bytes: 2000,
            max_header_bytes: 1000,
        }
    }

    #[test]
    fn frames_by_content_length_across_chunks() {
        let mut f = Framer::new(limits());
        let m1 = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\nhello";
        let m2 = b"OPTIONS sip:b SIP/2.0\r\nl: 0\r\n\r\n";
        let mut all = b"\r\n\r\n".to_vec();
        all.extend_from_slice(m1);
        all.extend_from_slice(m2);
        for chunk in all.chunks(7) {
            f.push(chunk);
        }
        let msg = |m: &'static [u8]| Ok(Some(Frame::Message(Bytes::from_static(m))));
        assert_eq!(f.next_message(), Ok(Some(Frame::Ping)));
        assert_eq!(f.next_message(), msg(m1));
        assert_eq!(f.next_message(), msg(m2));
        assert_eq!(f.next_message(), Ok(None));
    }

    #[test]
    fn waits_for_the_body() {
        let mut f = Framer::new(limits());
        f.push(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nabc");
        assert_eq!(f.next_message().unwrap(), None);
        f.push(b"defghij");
        assert!(f.next_message().unwrap().is_some());
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        let mut f = Framer::new(limits());
        f.push(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::BadContentLength));
        let mut f = Framer::new(limits());
        f.push(&vec![b'a'; 1200]);
        assert_eq!(f.next_message(), Err(FrameError::HeaderTooLong(1000)));
        let mut f = Framer::new(limits());
        f.push(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::TooLarge(2000)));
        let mut f = Framer::new(limits());
        f.push(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::BadContentLength));
    }

    /// A peer's Content-Length is untrusted arithmetic input: near `usize::MAX`
    /// it must not wrap `end + 4 + len` past the size check (a wrapped total
    /// would split the message inside its own headers), and a value that is
    /// not 1*DIGIT (§20.14) cannot frame the stream.
    #[test]
    fn hostile_content_lengths_never_wrap_or_panic() {
        let framed = |cl: &str| {
            let mut f = Framer::new(limits());
            f.push(format!("OPTIONS sip:a SIP/2.0\r\nContent-Length: {cl}\r\n\r\nabc").as_bytes());
            f.next_message()
        };
        assert_eq!(
            framed("18446744073709551615"),
            Err(FrameError::TooLarge(2000))
        );
        assert_eq!(
            framed("18446744073709551612"),
            Err(FrameError::TooLarge(2000))
        );
        assert_eq!(
            framed("99999999999999999999"),
            Err(FrameError::TooLarge(2000))
        );
        assert_eq!(framed("-1"), Err(FrameError::BadContentLength));
        assert_eq!(framed("+3"), Err(FrameError::BadContentLength));
        assert_eq!(framed(""), Err(FrameError::BadContentLength));
        assert_eq!(framed("3 3"), Err(FrameError::BadContentLength));
        assert_eq!(framed("0x3"), Err(FrameError::BadContentLength));
        // Leading zeros are still 1*DIGIT.
        assert!(framed("0003").is_ok_and(|m| m.is_some()));
    }

    #[test]
    fn framing_errors_of_requests_are_answered() {
        let head = |cl: &str| {
            format!(
                "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK-f\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: {cl}\r\n\r\n"
            )
        };
        let answer = |text: &str| {
            let mut f = Framer::new(limits());
            f.push(text.as_bytes());
            let e = f.next_message().expect_err("a framing error");
            f.error_answer(&e)
                .map(|a| String::from_utf8_lossy(&a).into_owned())
        };
        let a = answer(&head("-1")).expect("an answer");
        assert!(a.starts_with("SIP/2.0 400 Bad Content-Length\r\n"), "{a}");
        assert!(
            a.contains("Call-ID: c1\r\n") && a.contains("branch=z9hG4bK-f"),
            "{a}"
        );
        let a = answer(&head("18446744073709551615")).expect("an answer");
        assert!(a.starts_with("SIP/2.0 513 Message Too Large\r\n"), "{a}");
        // Responses and messages without Via get nothing.
        assert_eq!(answer("SIP/2.0 200 OK\r\nVia: x\r\nl: -1\r\n\r\n"), None);
        assert_eq!(answer("OPTIONS sip:a SIP/2.0\r\nl: -1\r\n\r\n"), None);
    }

    /// RFC 5626 §3.5.1: CRLFCRLF is a ping (answered by the connection task),
    /// a lone CRLF (a pong, or §7.5's leading CRLF) is skipped, and a ping
    /// split across reads is still one ping.
    #[test]
    fn crlf_keep_alives() {
        let mut f = Framer::new(limits());
        f.push(b"\r\n");
        assert_eq!(f.next_message(), Ok(None));
        f.push(b"\r\n");
        assert_eq!(f.next_message(), Ok(Some(Frame::Ping)));
        assert_eq!(f.next_message(), Ok(None));
        f.push(b"\r\nOPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n\r\n\r\n");
        assert!(matches!(f.next_message(), Ok(Some(Frame::Message(_)))));
        assert_eq!(f.next_message(), Ok(Some(Frame::Ping)));
        assert_eq!(f.next_message(), Ok(None));
    }
}
