//! Inbound RTP source latching ("symmetric RTP" / "comedia"), sans-IO.
//!
//! A peer behind a NAT may send its RTP from another port than its SDP says; we must send
//! back to where it really comes from. Asterisk learned
//! that address from any packet at any time, so an attacker who could guess the port could
//! take over or listen in on the media ("RTP bleed", AST-2017-005). The policy here:
//!
//! * until the peer's RTP arrives, media goes to the SDP address;
//! * the first packet from the SDP address's own IP latches the stream to that exact
//!   address (the port may differ: a NAT in front of the phone rewrites it), once. Any
//!   other IP never latches, even one inside `trunk.allow`: an off-path sender that can
//!   forge a trunk address must not steer our media or inject DTMF into a call whose SDP
//!   it never saw (issue 9, "blind log-in by a forged source"). A phone that announces a
//!   private address but sends from a NAT's public one therefore never latches: the trunk
//!   (or its SBC) must put the address its media really comes from in the SDP;
//! * latching is only possible within `latch_window` of the first packet seen, so a stream
//!   cannot be re-pointed later;
//! * afterwards (or if the window passes without an eligible source) every packet from any
//!   other address is dropped and counted;
//! * except the SDP address itself: a packet from exactly the address the peer announced
//!   (RFC 3264 §5: where it said it would send from, with symmetric RTP, RFC 4961) takes
//!   the latch from any other port, at any time. A port is reused once its call ends, and
//!   the far end of that call may still be sending to it: the same carrier gateway, one
//!   IP, another port. Its first stray packet would otherwise latch the new call and every
//!   packet of the real stream, a caller's key press included, would be dropped (issue 12:
//!   0.7 % of log-ins beside queue calls lost their key so, `foreign=10` in the leg's media
//!   line). Moving to the announced address steers media nowhere the signalling did not
//!   already name, so it gives a sender no more than a forged SDP-address packet already has.
//!
//! A re-INVITE with a new SDP address starts over with [`Latch::on_new_remote`].

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What to do with an inbound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No packet seen yet.
    Waiting,
    /// Packets seen, none eligible yet; latching allowed until this instant.
    Open { until: Instant },
    /// Locked to this source.
    Latched(SocketAddr),
    /// Window passed without an eligible source: only the SDP address itself is accepted.
    Closed,
}

/// Latch policy for one inbound RTP stream.
#[derive(Debug, Clone)]
pub struct Latch {
    sdp_addr: SocketAddr,
    window: Duration,
    state: State,
    dropped: u64,
}

impl Latch {
    /// A latch for a stream whose SDP announced `sdp_addr`.
    pub fn new(sdp_addr: SocketAddr, latch_window: Duration) -> Self {
        Latch {
            sdp_addr,
            window: latch_window,
            state: State::Waiting,
            dropped: 0,
        }
    }

    /// Decide about a packet from `src`.
    pub fn on_packet(&mut self, src: SocketAddr, now: Instant) -> Verdict {
        let src = canonical(src);
        let verdict = match self.state {
            State::Latched(addr) if addr == src => Verdict::Accept,
            // The announced address wins over a port the latch guessed (see the module doc).
            State::Latched(_) if src == canonical(self.sdp_addr) => {
                self.state = State::Latched(src);
                Verdict::Accept
            }
            State::Latched(_) => Verdict::Drop,
            State::Closed if src == canonical(self.sdp_addr) => Verdict::Accept,
            State::Closed => Verdict::Drop,
            State::Waiting | State::Open { .. } => {
                let until = match self.state {
                    State::Open { until } => until,
                    _ => now + self.window,
                };
                if now > until {
                    self.state = State::Closed;
                    return self.on_packet(src, now);
                }
                if self.eligible(src.ip()) {
                    self.state = State::Latched(src);
                    Verdict::Accept
                } else {
                    self.state = State::Open { until };
                    Verdict::Drop
                }
            }
        };
        if verdict == Verdict::Drop {
            self.dropped += 1;
        }
        verdict
    }

    /// Where to send media now.
    pub fn send_addr(&self) -> SocketAddr {
        match self.state {
            State::Latched(addr) => addr,
            _ => self.sdp_addr,
        }
    }

    /// The latched source, once there is one.
    pub fn latched(&self) -> Option<SocketAddr> {
        match self.state {
            State::Latched(addr) => Some(addr),
            _ => None,
        }
    }

    /// Packets dropped for coming from the wrong source (a metric worth alerting on).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The peer re-negotiated (re-INVITE / UPDATE with a new address): latch afresh, once.
    pub fn on_new_remote(&mut self, sdp_addr: SocketAddr) {
        self.sdp_addr = sdp_addr;
        self.state = State::Waiting;
    }

    fn eligible(&self, ip: IpAddr) -> bool {
        ip == canonical(self.sdp_addr).ip()
    }
}

/// A dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`; compare them as IPv4 so the
/// SDP address (written as IPv4) matches.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(2000);

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sends_to_sdp_until_rtp_arrives_then_latches_once() {
        let t0 = Instant::now();
        let mut l = Latch::new(sa("203.0.113.9:4000"), W);
        assert_eq!(l.send_addr(), sa("203.0.113.9:4000"));
        // Same IP, port rewritten by a NAT: latches.
        assert_eq!(l.on_packet(sa("203.0.113.9:31000"), t0), Verdict::Accept);
        assert_eq!(l.send_addr(), sa("203.0.113.9:31000"));
        // Another source later, even within the window, cannot move the latch.
        assert_eq!(
            l.on_packet(sa("203.0.113.9:31002"), t0 + Duration::from_millis(10)),
            Verdict::Drop,
            "port matters"
        );
        assert_eq!(
            l.on_packet(sa("203.0.113.9:31000"), t0 + W * 10),
            Verdict::Accept
        );
        assert_eq!(l.dropped(), 1);
        assert_eq!(l.latched(), Some(sa("203.0.113.9:31000")));
    }

    /// Issue 12: a port freed by one call and handed to the next still gets
    /// the old call's stream for a moment, from the same gateway IP. That
    /// stray latched the new call and its caller's key was dropped. The
    /// announced address takes the latch back, even after the window.
    #[test]
    fn the_announced_address_takes_the_latch_from_a_stray_port() {
        let t0 = Instant::now();
        let mut l = Latch::new(sa("203.0.113.9:4000"), W);
        assert_eq!(l.on_packet(sa("203.0.113.9:42608"), t0), Verdict::Accept);
        assert_eq!(l.send_addr(), sa("203.0.113.9:42608"));
        let late = t0 + W * 3;
        assert_eq!(l.on_packet(sa("203.0.113.9:4000"), late), Verdict::Accept);
        assert_eq!(l.latched(), Some(sa("203.0.113.9:4000")));
        assert_eq!(l.send_addr(), sa("203.0.113.9:4000"));
        // Final: the stray is foreign from now on, and cannot take it back.
        assert_eq!(l.on_packet(sa("203.0.113.9:42608"), late), Verdict::Drop);
        assert_eq!(l.send_addr(), sa("203.0.113.9:4000"));
        assert_eq!(l.dropped(), 1);
    }

    /// Issue 9: a source inside `trunk.allow` but not at the SDP's address
    /// (another carrier host, or a sender forging one) once latched the
    /// stream. Only the SDP address's IP may latch now.
    #[test]
    fn only_the_sdp_address_ip_latches() {
        let t0 = Instant::now();
        let mut l = Latch::new(sa("198.51.100.7:5000"), W);
        // An attacker sprays first (from a trunk address, say): dropped, and
        // does not use up the latch.
        assert_eq!(l.on_packet(sa("203.0.113.9:1234"), t0), Verdict::Drop);
        assert_eq!(l.on_packet(sa("192.0.2.66:1234"), t0), Verdict::Drop);
        assert_eq!(l.send_addr(), sa("198.51.100.7:5000"));
        // The real peer (same IP as its SDP, NAT changed the port) latches.
        assert_eq!(
            l.on_packet(sa("198.51.100.7:6000"), t0 + Duration::from_millis(50)),
            Verdict::Accept
        );
        assert_eq!(l.send_addr(), sa("198.51.100.7:6000"));
        assert_eq!(l.dropped(), 2);
    }

    #[test]
    fn window_closes_without_eligible_source() {
        let t0 = Instant::now();
        let mut l = Latch::new(sa("198.51.100.7:5000"), W);
        assert_eq!(l.on_packet(sa("192.0.2.66:1234"), t0), Verdict::Drop);
        // Past the window an eligible-looking source no longer latches...
        assert_eq!(
            l.on_packet(sa("198.51.100.7:6000"), t0 + W + Duration::from_millis(1)),
            Verdict::Drop
        );
        // ...but the exact SDP address is still accepted and media keeps going there.
        assert_eq!(
            l.on_packet(sa("198.51.100.7:5000"), t0 + W * 2),
            Verdict::Accept
        );
        assert_eq!(l.latched(), None);
        assert_eq!(l.send_addr(), sa("198.51.100.7:5000"));
        assert_eq!(l.dropped(), 2);
    }

    #[test]
    fn ipv4_mapped_sources_match_an_ipv4_sdp_address() {
        let t0 = Instant::now();
        let mut l = Latch::new(sa("203.0.113.4:4000"), W);
        assert_eq!(
            l.on_packet(sa("[::ffff:203.0.113.4]:7000"), t0),
            Verdict::Accept
        );
        assert_eq!(l.send_addr(), sa("203.0.113.4:7000"));
        assert_eq!(l.on_packet(sa("203.0.113.4:7000"), t0), Verdict::Accept);
    }

    #[test]
    fn ipv6_peer_and_renegotiation() {
        let t0 = Instant::now();
        let mut l = Latch::new(sa("[2001:db8::1]:4000"), W);
        assert_eq!(l.on_packet(sa("[2001:db8:1::9]:4002"), t0), Verdict::Drop);
        assert_eq!(l.on_packet(sa("[2001:db8::1]:4002"), t0), Verdict::Accept);
        l.on_new_remote(sa("[2001:db8::2]:5000"));
        assert_eq!(l.send_addr(), sa("[2001:db8::2]:5000"));
        assert_eq!(l.latched(), None);
        let later = t0 + W * 5;
        assert_eq!(
            l.on_packet(sa("[2001:db8::2]:5000"), later),
            Verdict::Accept
        );
        assert_eq!(l.on_packet(sa("[2001:db8::1]:4002"), later), Verdict::Drop);
    }
}
