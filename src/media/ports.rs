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

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("no free RTP port in media.rtp_ports")]
    Exhausted,
}

#[derive(Debug)]
struct Pool {
    free: VecDeque<u16>,
}

/// Shared pool of even ports.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<Pool>>,
    ip: IpAddr,
}

/// A bound RTP/RTCP socket pair; returns its port to the pool on drop.
#[derive(Debug)]
pub struct RtpPorts {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
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
            p.free.push_back(self.local.port());
        }
    }
}

impl PortPool {
    /// `first..=last`, even starts only; `ip` is where the sockets bind.
    pub fn new(ip: IpAddr, first: u16, last: u16) -> Self {
        let start = first + (first % 2);
        let free = (start..last).step_by(2).collect();
        Self {
            inner: Arc::new(Mutex::new(Pool { free })),
            ip,
        }
    }

    pub fn available(&self) -> usize {
        self.inner.lock().map(|p| p.free.len()).unwrap_or(0)
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
                if p.free.is_empty() {
                    return Err(PortError::Exhausted);
                }
                let i = rng.random_range(0..p.free.len());
                match p.free.swap_remove_back(i) {
                    Some(port) => port,
                    None => return Err(PortError::Exhausted),
                }
            };
            let rtp = std::net::UdpSocket::bind(SocketAddr::new(self.ip, port));
            let rtcp = std::net::UdpSocket::bind(SocketAddr::new(self.ip, port + 1));
            if let (Ok(rtp), Ok(rtcp)) = (rtp, rtcp) {
                let ok = rtp.set_nonblocking(true).is_ok() && rtcp.set_nonblocking(true).is_ok();
                if let (true, Ok(rtp), Ok(rtcp)) =
                    (ok, UdpSocket::from_std(rtp), UdpSocket::from_std(rtcp))
                {
                    return Ok(RtpPorts {
                        rtp,
                        rtcp,
                        local: SocketAddr::new(self.ip, port),
                        announced: SocketAddr::new(self.ip, port),
                        pool: self.inner.clone(),
                    });
                }
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
