//! A way into one session's receive path for the fuzz targets (`fuzz/`):
//! the real `RecvTask` over real (idle) sockets, fed packets by hand with
//! a simulated clock instead of from the socket, so every byte an attacker
//! can put in an RTP or RTCP datagram reaches the same code the switch runs
//! (latch, SRTP unprotect, RTCP summary, RFC 4733 decoder, in-band detector,
//! reception statistics, the bridge's rewrite). Not part of the switch.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::recv::RecvTask;
use super::shared::{Shared, Tx};
use super::{MediaEvent, MediaStats, SessionOptions};
use crate::media::codec::Codec;
use crate::media::latch::Latch;
use crate::media::ports::PortPool;
use crate::media::reception::ReceptionStats;
use crate::media::rtp_stream::RtpStream;
use crate::media::srtp::{CryptoSuite, SrtpKey, SrtpParams, SrtpSender};
use crate::media::stream::{Direction, StreamParams};

/// The peer's RTP address in every harness (nothing listens there).
const REMOTE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);

/// How the harness is set up, chosen by the fuzz input.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Receive SRTP; packets given to [`Harness::rtp`] with `protect` are
    /// protected with the peer's key first, so they pass authentication and
    /// reach what reads the decrypted packet.
    pub srtp: Option<CryptoSuite>,
    pub inband_dtmf: bool,
    /// Bridged to a second session: accepted packets go through the relay's
    /// rewrite and out of the other leg's socket.
    pub bridged: bool,
    /// The negotiated telephone-event payload type, if any.
    pub telephone_event_pt: Option<u8>,
    pub codec: Codec,
}

/// A session's shared state on ports from `pool`, with no task or pacer.
pub(super) fn shared(
    pool: &PortPool,
    params: &StreamParams,
    now: Instant,
) -> Option<(Arc<Shared>, mpsc::Receiver<MediaEvent>)> {
    let ports = pool.allocate().ok()?;
    let stream = RtpStream::with_initial(0x1234_5678, 1000, 160_000, super::samples_per_tick());
    let tx = Tx::new(
        stream,
        params,
        params.remote,
        super::rtcp_addr(params.remote),
    );
    let (events, rx) = mpsc::channel(64);
    Some((
        Arc::new(Shared {
            id: 1,
            start: now,
            tx: Mutex::new(tx),
            rx: Mutex::new(ReceptionStats::new(Codec::CLOCK_RATE, now)),
            closed: Default::default(),
            events,
            stats: Arc::new(MediaStats::default()),
            ports,
            control: Default::default(),
        }),
        rx,
    ))
}

/// One session's receive task and what it reports.
pub struct Harness {
    task: RecvTask,
    events: mpsc::Receiver<MediaEvent>,
    /// Protects packets as the peer would (its key is our `remote`).
    peer_sender: Option<SrtpSender>,
    /// Kept so the bridge's other leg lives as long as the harness.
    _peer: Option<Arc<Shared>>,
    now: Instant,
}

impl Harness {
    /// A session on ports from `pool`. Must run inside a tokio runtime
    /// (the sockets register with its reactor); `None` if no port is free.
    pub fn new(pool: &PortPool, setup: Setup) -> Option<Harness> {
        let now = Instant::now();
        let keys = setup.srtp.map(|suite| {
            let ours = SrtpKey::from_bytes([0x11; 30]);
            let theirs = SrtpKey::from_bytes([0x22; 30]);
            (
                SrtpParams {
                    suite,
                    tag: 1,
                    local: ours.clone(),
                    remote: theirs.clone(),
                },
                SrtpParams {
                    suite,
                    tag: 1,
                    local: theirs,
                    remote: ours,
                },
            )
        });
        let params = StreamParams {
            codec: setup.codec,
            pt: setup.codec.payload_type(),
            telephone_event_pt: setup.telephone_event_pt,
            remote: REMOTE,
            remote_ptime: None,
            direction: Direction::SendRecv,
            hold: false,
            srtp: keys.as_ref().map(|(ours, _)| ours.clone()),
        };
        let peer_sender = keys.as_ref().map(|(_, theirs)| SrtpSender::new(theirs));
        let (me, events) = shared(pool, &params, now)?;
        let opts = SessionOptions {
            inband_dtmf: setup.inband_dtmf,
            ..SessionOptions::default()
        };
        let control = me.clone();
        let mut task = RecvTask::new(
            me,
            &params,
            &opts,
            Latch::new(REMOTE, opts.latch_window),
            Latch::new(super::rtcp_addr(REMOTE), opts.latch_window),
            now,
        );
        let mut peer = None;
        if setup.bridged {
            let plain = StreamParams {
                srtp: None,
                ..params.clone()
            };
            let (other, _) = shared(pool, &plain, now)?;
            other.begin_relay(7);
            control.control.bridge(&other, 7);
            task.on_control(control.control.take(), now);
            peer = Some(other);
        }
        Some(Harness {
            task,
            events,
            peer_sender,
            _peer: peer,
            now,
        })
    }

    /// One datagram on the RTP port from the peer, `after` the previous
    /// input. With SRTP and `protect`, the peer's context protects it first
    /// (as RTCP when it looks like RTCP, RFC 5761 §4); bytes it cannot
    /// protect arrive as they are.
    pub fn rtp(&mut self, pkt: &[u8], after: Duration, protect: bool) {
        self.advance(after);
        let mut buf = pkt.to_vec();
        if let (true, Some(s)) = (protect, self.peer_sender.as_mut()) {
            let mut out = buf.clone();
            let r = if crate::media::rtcp::is_rtcp(&out) {
                s.protect_rtcp(&mut out)
            } else {
                s.protect_rtp(&mut out)
            };
            if r.is_ok() {
                buf = out;
            }
        }
        self.task.on_rtp(&mut buf, REMOTE, self.now);
    }

    /// One datagram on the RTCP port from the peer.
    pub fn rtcp(&mut self, pkt: &[u8], after: Duration) {
        self.advance(after);
        let mut buf = pkt.to_vec();
        self.task
            .on_rtcp(&mut buf, super::rtcp_addr(REMOTE), self.now);
    }

    /// The receive task's timer fires `after` the previous input.
    pub fn timer(&mut self, after: Duration) {
        self.advance(after);
        self.task.on_timer(self.now);
    }

    /// Events the session reported so far (digits, RTP started, timeout).
    pub fn events(&mut self) -> Vec<MediaEvent> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }

    fn advance(&mut self, after: Duration) {
        // Bounded: a fuzz input cannot push an Instant past what it holds.
        self.now = self
            .now
            .checked_add(after.min(Duration::from_secs(3600)))
            .unwrap_or(self.now);
    }
}
