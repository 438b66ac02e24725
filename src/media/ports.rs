//! RTP port allocation from `media.rtp_ports` (RFC 3550 §11: RTP on an even
//! port, RTCP on the next odd one).
//!
//! Ports go back to the pool when the [`RtpPorts`] guard drops, so a call
//! that ends any way at all cannot leak them.

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

    /// Binds the next free pair. Ports some other process holds are skipped
    /// (and put back at the end, to be tried again later).
    pub fn allocate(&self) -> Result<RtpPorts, PortError> {
        let attempts = self.available();
        for _ in 0..attempts {
            let port = {
                let Ok(mut p) = self.inner.lock() else {
                    return Err(PortError::Exhausted);
                };
                match p.free.pop_front() {
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
}
