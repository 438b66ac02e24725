//! UDP and TCP sockets (§18). Receiving tasks hand complete messages to the
//! endpoint over a bounded queue: when it is full, datagrams are dropped and
//! counted rather than queued without limit; TCP readers simply wait, which
//! pushes back on the sender through TCP flow control.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::transaction::{Peer, Transport};

/// What the transport tasks tell the endpoint.
#[derive(Debug)]
pub enum Inbound {
    Message { data: Bytes, peer: Peer },
    TcpOpened { conn: u64, tx: mpsc::Sender<Bytes> },
    TcpClosed { conn: u64 },
}

#[derive(Debug, Default)]
pub struct TransportStats {
    pub udp_dropped_queue_full: AtomicU64,
    pub udp_oversized: AtomicU64,
    pub tcp_framing_errors: AtomicU64,
    pub tcp_refused: AtomicU64,
}

/// Limits on what a peer can make us buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    pub max_message_bytes: usize,
    pub max_header_bytes: usize,
    /// Connections held at once; a peer cannot exhaust our file descriptors.
    pub max_connections: usize,
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

/// The connection id of our own TCP connection to the trunk (inbound
/// connections count up from 1).
pub const TRUNK_CONN: u64 = 0;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Opens our TCP connection to the trunk (`outbound_proxy` with
/// `transport=tcp`) and serves it like an inbound one, under [`TRUNK_CONN`].
/// A failed connect is reported as that connection closing.
pub async fn connect_trunk(
    addr: SocketAddr,
    tx: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    limits: FrameLimits,
) {
    match tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            tcp_connection(stream, addr, tx, stats, limits, Some(TRUNK_CONN)).await;
        }
        Ok(Err(e)) => {
            warn!(trunk = %addr, error = %e, "cannot connect to the trunk over TCP");
            let _ = tx.send(Inbound::TcpClosed { conn: TRUNK_CONN }).await;
        }
        Err(_) => {
            warn!(trunk = %addr, "TCP connect to the trunk timed out");
            let _ = tx.send(Inbound::TcpClosed { conn: TRUNK_CONN }).await;
        }
    }
}

pub async fn tcp_acceptor(
    listener: TcpListener,
    tx: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    limits: FrameLimits,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: close at once rather than queue a stranger's socket.
            stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
            warn!(src = %from, "sip.max_tcp_connections reached; connection refused");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (tx, stats) = (tx.clone(), stats.clone());
        tokio::spawn(async move {
            tcp_connection(stream, from, tx, stats, limits, None).await;
            drop(slot);
        });
    }
}

async fn tcp_connection(
    stream: TcpStream,
    from: SocketAddr,
    tx: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    limits: FrameLimits,
    conn: Option<u64>,
) {
    let conn = conn.unwrap_or_else(|| NEXT_CONN.fetch_add(1, Ordering::Relaxed));
    let (mut rd, mut wr) = stream.into_split();
    let (wtx, mut wrx) = mpsc::channel::<Bytes>(256);
    if tx.send(Inbound::TcpOpened { conn, tx: wtx }).await.is_err() {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(data) = wrx.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let peer = Peer {
        transport: Transport::Tcp { conn },
        addr: from,
    };
    let mut framer = Framer::new(limits);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&chunk[..n]);
        loop {
            match framer.next_message() {
                Ok(Some(data)) => {
                    if tx.send(Inbound::Message { data, peer }).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // §18.3: on a stream a framing error cannot be recovered
                    // from; close the connection.
                    stats.tcp_framing_errors.fetch_add(1, Ordering::Relaxed);
                    debug!(src = %from, error = %e, "closing tcp connection");
                    break 'read;
                }
            }
        }
    }
    writer.abort();
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

/// Splits a TCP byte stream into messages by Content-Length (§18.3),
/// skipping CRLF keep-alives (RFC 5626 §3.5.1) between messages.
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

    pub fn next_message(&mut self) -> Result<Option<Bytes>, FrameError> {
        // Keep-alive CRLFs between messages.
        let lead = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        let _ = self.buf.split_to(lead);
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
        Ok(Some(self.buf.split_to(total).freeze()))
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

    fn limits() -> FrameLimits {
        FrameLimits {
            max_message_bytes: 2000,
            max_header_bytes: 1000,
            max_connections: 4,
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
        assert_eq!(f.next_message().unwrap().unwrap(), Bytes::from_static(m1));
        assert_eq!(f.next_message().unwrap().unwrap(), Bytes::from_static(m2));
        assert_eq!(f.next_message().unwrap(), None);
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
}
