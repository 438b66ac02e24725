//! RTP port allocation from `media.rtp_ports` (RFC 3550 §11: RTP on an even
//! port, RTCP on the next odd one).
//!
//! Ports go back to the pool when the [`RtpPorts`] guard drops, so a call
//! that ends any way at all cannot leak them.
//!
//! Each pair is drawn at random from the free ones (RFC 3550 §11 leaves the
//! choice open; RFC 6056 §1 explains why predictable ports help an off-path
//! attacker): handed out lowest first, the port of the next call could be
//! guessed, and a sender forging the trunk's address could aim DTMF at a
//! log-in it never saw the SDP of.
//!
//! A port a call gave back rests for [`REST`] before it is drawn again: the
//! far end of that call may still be sending to it (it has not seen our BYE
//! yet, or plays its audio out). Drawn at once, the next call heard that
//! stray stream first (issue 12; the latch now lets the announced address
//! win, see `latch.rs`, and the rest keeps the stray away in the first
//! place). A pool with no rested port left takes the one that rested
//! longest rather than refuse a call.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("no free RTP port in media.rtp_ports")]
    Exhausted,
}

/// How long a released port rests before it is drawn again (see the module doc).
/// Long enough for a far end to see the BYE and stop (a retransmitted BYE
/// takes T1 + 2·T1 = 1.5 s, RFC 3261 §17.1.2.2), short enough that a busy
/// pool keeps few ports out: 720 calls/s rest 2 880 pairs.
pub const REST: Duration = Duration::from_secs(4);

#[derive(Debug)]
struct Pool {
    free: VecDeque<u16>,
    /// Released ports, oldest first, with when each may be drawn again.
    resting: VecDeque<(u16, Instant)>,
}

impl Pool {
    fn release(&mut self, port: u16, now: Instant) {
        self.resting.push_back((port, now + REST));
    }

    /// A port to try: a random rested one, or, when none is left, the one
    /// that has rested longest.
    fn take(&mut self, rng: &mut impl rand::RngExt, now: Instant) -> Option<u16> {
        while let Some(&(port, until)) = self.resting.front() {
            if until > now {
                break;
            }
            self.resting.pop_front();
            self.free.push_back(port);
        }
        if self.free.is_empty() {
            return self.resting.pop_front().map(|(port, _)| port);
        }
        let i = rng.random_range(0..self.free.len());
        self.free.swap_remove_back(i)
    }

    fn len(&self) -> usize {
        self.free.len() + self.resting.len()
    }
}

/// Shared pool of even ports.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<Pool>>,
    ip: IpAddr,
}

/// A non-blocking UDP socket on tokio's reactor for **receiving only**.
///
/// Registered for readability alone. A socket registered for writability too
/// (what `tokio::net::UdpSocket` does) gets an edge-triggered EPOLLOUT each time
/// the kernel frees the buffer space of a packet it sent (`sock_wfree` ->
/// `sk_write_space`): one reactor wake-up, a context switch on a busy core, per
/// paced RTP packet, though nothing ever waits to send. `perf` showed it as a
/// sixth of a pacing core's time (docs/performance.md, "Cost per call"). Sends
/// are plain non-blocking `sendto`s from any thread: a full buffer loses the
/// packet, which RTP tolerates (RFC 3550 §2.2 runs over an unreliable
/// transport), and is counted.
#[derive(Debug)]
pub struct RtpSocket(AsyncFd<UdpSocket>);

impl RtpSocket {
    /// Binds `addr`. The socket is made non-blocking (and close-on-exec) by the
    /// `socket` call itself, not by an `ioctl` after it: one system call fewer
    /// per socket, two per call (issue 15).
    fn bind(addr: SocketAddr) -> io::Result<Self> {
        use socket2::{Domain, Protocol, Socket, Type};
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::DGRAM.nonblocking().cloexec(),
            Some(Protocol::UDP),
        )?;
        sock.bind(&addr.into())?;
        let sock: UdpSocket = sock.into();
        // SAFETY: the UdpSocket owns its descriptor, keeps it open until the AsyncFd
        // drops it, and `as_raw_fd` always returns that one descriptor.
        unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
            .map(Self)
            .map_err(|e| e.into_parts().1)
    }

    /// Waits until a datagram may be waiting. Cancel-safe (a `select!` branch),
    /// and it holds no buffer: the receive task reads with
    /// [`try_recv_from`](Self::try_recv_from) into one on the stack, so a call
    /// does not keep receive buffers in its task between packets.
    pub async fn readable(&self) -> io::Result<()> {
        self.0.readable().await.map(drop)
    }

    /// One datagram if one is waiting, else `WouldBlock` (and the readiness is
    /// cleared, so [`readable`](Self::readable) waits for the next).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.try_io(Interest::READABLE, |s| s.recv_from(buf))
    }

    /// Waits for a datagram.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            self.readable().await?;
            match self.try_recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    /// One non-blocking `sendto`; `WouldBlock` when the buffer is full.
    pub fn send_to(&self, buf: &[u8], dest: SocketAddr) -> io::Result<usize> {
        self.0.get_ref().send_to(buf, dest)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}

impl AsFd for RtpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.get_ref().as_fd()
    }
}

/// A bound RTP/RTCP socket pair; returns its port to the pool on drop.
#[derive(Debug)]
pub struct RtpPorts {
    pub rtp: RtpSocket,
    pub rtcp: RtpSocket,
    pub local: SocketAddr,
    /// Where the peer was told to send RTP (our SDP's c= and port): the
    /// address logs show. It differs from `local` behind a NAT or when the
    /// sockets bind a wildcard such as 0.0.0.0; the call layer sets it.
    pub announced: SocketAddr,
    pool: Arc<Mutex<Pool>>,
}

impl Drop for RtpPorts {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pool.lock() {
            p.release(self.local.port(), Instant::now());
        }
    }
}

impl PortPool {
    /// `first..=last`, even starts only; `ip` is where the sockets bind.
    pub fn new(ip: IpAddr, first: u16, last: u16) -> Self {
        let start = first + (first % 2);
        let free = (start..last).step_by(2).collect();
        Self {
            inner: Arc::new(Mutex::new(Pool {
                free,
                resting: VecDeque::new(),
            })),
            ip,
        }
    }

    pub fn available(&self) -> usize {
        self.inner.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Binds a free pair chosen at random. Ports some other process holds
    /// are skipped (and put back at the end, to be tried again later).
    pub fn allocate(&self) -> Result<RtpPorts, PortError> {
        self.allocate_with(&mut rand::rng())
    }

    fn allocate_with(&self, rng: &mut impl rand::RngExt) -> Result<RtpPorts, PortError> {
        let attempts = self.available();
        for _ in 0..attempts {
            let port = {
                let Ok(mut p) = self.inner.lock() else {
                    return Err(PortError::Exhausted);
                };
                match p.take(rng, Instant::now()) {
                    Some(port) => port,
                    None => return Err(PortError::Exhausted),
                }
            };
            let rtp = RtpSocket::bind(SocketAddr::new(self.ip, port));
            let rtcp = RtpSocket::bind(SocketAddr::new(self.ip, port + 1));
            if let (Ok(rtp), Ok(rtcp)) = (rtp, rtcp) {
                return Ok(RtpPorts {
                    rtp,
                    rtcp,
                    local: SocketAddr::new(self.ip, port),
                    announced: SocketAddr::new(self.ip, port),
                    pool: self.inner.clone(),
                });
            }
            if let Ok(mut p) = self.inner.lock() {
                p.free.push_back(port);
            }
        }
        Err(PortError::Exhausted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The events an epoll set of this process watches on `fd`, from
    /// /proc/self/fdinfo (a `tfd:` line per watched descriptor, events in hex).
    fn epoll_events(fd: i32) -> Option<u32> {
        for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            if target.to_string_lossy() != "anon_inode:[eventpoll]" {
                continue;
            }
            let info = std::fs::read_to_string(
                std::path::Path::new("/proc/self/fdinfo").join(entry.file_name()),
            )
            .unwrap_or_default();
            for line in info.lines() {
                let mut words = line.split_whitespace();
                if words.next() == Some("tfd:")
                    && words.next().and_then(|n| n.parse().ok()) == Some(fd)
                    && words.next() == Some("events:")
                {
                    return words.next().and_then(|e| u32::from_str_radix(e, 16).ok());
                }
            }
        }
        None
    }

    /// Issue 15: registered for writing too, every packet the pacing thread
    /// sent woke the reactor once its buffer space was freed.
    #[tokio::test]
    async fn session_sockets_wait_for_reading_only() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41101, 41110);
        let ports = pool.allocate().unwrap();
        for sock in [&ports.rtp, &ports.rtcp] {
            let events = epoll_events(sock.as_fd().as_raw_fd()).expect("on tokio's epoll set");
            assert_ne!(events & libc::EPOLLIN as u32, 0, "events {events:#x}");
            assert_eq!(events & libc::EPOLLOUT as u32, 0, "events {events:#x}");
            // Non-blocking and close-on-exec from the socket call itself.
            let fd = sock.as_fd().as_raw_fd();
            // SAFETY: F_GETFL and F_GETFD read flags of a descriptor the test holds open.
            let (fl, fdfl) = unsafe {
                (
                    libc::fcntl(fd, libc::F_GETFL),
                    libc::fcntl(fd, libc::F_GETFD),
                )
            };
            assert_ne!(fl & libc::O_NONBLOCK, 0, "flags {fl:#x}");
            assert_ne!(fdfl & libc::FD_CLOEXEC, 0, "fd flags {fdfl:#x}");
        }
        // And they still send and receive.
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        ports
            .rtp
            .send_to(b"ping", peer.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], ports.local));
        peer.send_to(b"pong", ports.local).unwrap();
        let (n, _) = ports.rtp.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"pong");
    }

    #[tokio::test]
    async fn allocates_even_ports_and_returns_them() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41001, 41006);
        // 41002, 41004 (41006 would need 41007 for RTCP: out of range).
        assert_eq!(pool.available(), 2);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!(a.local.port() % 2, 0);
        assert_ne!(a.local.port(), b.local.port());
        assert!(matches!(pool.allocate(), Err(PortError::Exhausted)));
        drop(a);
        assert!(pool.allocate().is_ok());
        drop(b);
    }

    /// Issue 12: a port given back is not drawn again while it rests, unless
    /// nothing else is left; then the one that rested longest goes first.
    #[test]
    fn a_released_port_rests_before_it_is_drawn_again() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let t0 = Instant::now();
        let mut p = Pool {
            free: (41000..41020).step_by(2).collect(),
            resting: VecDeque::new(),
        };
        let first = p.take(&mut rng, t0).unwrap();
        p.release(first, t0);
        let second = p.take(&mut rng, t0).unwrap();
        p.release(second, t0 + Duration::from_millis(1));
        for _ in 0..200 {
            let port = p.take(&mut rng, t0 + REST / 2).unwrap();
            assert!(
                port != first && port != second,
                "{port} drawn while resting"
            );
            p.free.push_back(port);
        }
        assert_eq!(p.len(), 10);
        // Every other port taken: the longest-rested one comes next.
        let held: Vec<u16> = (0..8).map(|_| p.take(&mut rng, t0).unwrap()).collect();
        assert!(!held.contains(&first) && !held.contains(&second));
        assert_eq!(p.take(&mut rng, t0), Some(first));
        assert_eq!(p.take(&mut rng, t0), Some(second));
        assert_eq!(p.take(&mut rng, t0), None);
        // Once rested, a port is back among the random draws.
        p.release(first, t0);
        assert_eq!(p.take(&mut rng, t0 + REST), Some(first));
    }

    /// Issue 9 ("blind log-in by a forged source"): lowest-first allocation
    /// let an attacker predict the next call's port. Two pools drawing with
    /// different seeds must not hand out the same sequence, and the first
    /// pick must not always be the lowest port.
    #[tokio::test]
    async fn ports_are_drawn_at_random() {
        use rand::SeedableRng;
        let draw = |seed: u64| {
            let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41100, 41199);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let held: Vec<RtpPorts> = (0..8)
                .map(|_| pool.allocate_with(&mut rng).unwrap())
                .collect();
            held.iter().map(|p| p.local.port()).collect::<Vec<u16>>()
        };
        let (a, b) = (draw(1), draw(2));
        assert_ne!(a, b);
        assert!(a.iter().all(|p| p % 2 == 0 && (41100..41199).contains(p)));
        let lowest_first: Vec<u16> = (0..8).map(|i| 41100 + 2 * i).collect();
        assert_ne!(a, lowest_first);
        assert_ne!(b, lowest_first);
    }
}
