//! The receive task of one session: RTP and RTCP in, latch, DTMF detection, RTP timeout, and
//! (when bridged) the relay to the other leg.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtp_rs::RtpReader;

use super::relay::{self, Kind};
use super::shared::{Pending, Shared};
use super::{MediaEvent, MediaStats, SessionOptions};
use crate::media::codec::Codec;
use crate::media::dtmf::{DtmfEvent, Rfc4733Decoder, TelephoneEventPacket, TelephoneEventPayload};
use crate::media::g711;
use crate::media::inband::InbandDetector;
use crate::media::latch::{Latch, Verdict};
use crate::media::ports::RtpSocket;
use crate::media::rtcp;
use crate::media::srtp::SrtpReceiver;
use crate::media::stream::StreamParams;

/// Larger than any RTP packet we accept (G.711 at 60 ms is 492 bytes); longer datagrams are
/// truncated by the kernel and then fail to parse or carry a cut payload, harmlessly.
const RECV_BUF: usize = 1500;

/// Datagrams read per wake-up before the task yields to its other branches
/// (control, timers): a bridge's burst is read in one go, and a flood cannot
/// starve the rest.
const READ_BATCH: usize = 8;

/// No timer pending: park the timer branch this far out.
const FAR: Duration = Duration::from_secs(3600);
/// Longest RTP timeout honoured (a day: effectively "never" for a call).
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

pub(crate) struct RecvTask {
    shared: Arc<Shared>,
    params: StreamParams,
    latch: Latch,
    rtcp_latch: Latch,
    decoder: Rfc4733Decoder,
    /// Boxed, as `srtp`: most legs have neither, and inline the two were
    /// 384 of the task's 960 bytes (issue 15, memory per call).
    inband: Option<Box<InbandDetector>>,
    pcm: Vec<i16>,
    timeout: Duration,
    last_rx: Instant,
    timed_out: bool,
    /// An `RtpStarted` event was sent.
    rtp_seen: bool,
    peer: Option<(Arc<Shared>, u64)>,
    /// The peer's SRTP context when the stream is encrypted (RFC 3711): every packet is
    /// authenticated and decrypted before anything else reads it.
    srtp: Option<Box<SrtpReceiver>>,
    /// Packets SRTP refused (forged, replayed, wrong key), for the media-quality line.
    srtp_refused: u64,
    /// Scratch for protecting relayed packets (kept to avoid an allocation per packet).
    relay_buf: Vec<u8>,
    /// The call's span, for the media-quality line at the end.
    span: tracing::Span,
}

impl RecvTask {
    pub fn new(
        shared: Arc<Shared>,
        params: &StreamParams,
        opts: &SessionOptions,
        latch: Latch,
        rtcp_latch: Latch,
        now: Instant,
    ) -> Self {
        let srtp = params.srtp.as_ref().map(|p| Box::new(SrtpReceiver::new(p)));
        RecvTask {
            shared,
            params: params.clone(),
            latch,
            rtcp_latch,
            decoder: Rfc4733Decoder::new(8000),
            inband: opts.inband_dtmf.then(|| Box::new(InbandDetector::new())),
            pcm: Vec::new(),
            // Bounded so `last_rx + timeout` cannot overflow an Instant.
            timeout: opts.rtp_timeout.min(MAX_TIMEOUT),
            last_rx: now,
            timed_out: false,
            rtp_seen: false,
            peer: None,
            srtp,
            srtp_refused: 0,
            // Grows on the first relayed SRTP packet: most calls never bridge.
            relay_buf: Vec::new(),
            span: opts.span.clone(),
        }
    }

    /// Boxed: rustc keeps an `async fn`'s by-value arguments in its future
    /// beside the locals they move into (rust-lang/rust#62958), so a
    /// `RecvTask` (968 bytes) taken by value was in each call's receive
    /// task twice (issue 15, memory per held call).
    ///
    /// The timer lives across the loop's turns and is lazy: every packet
    /// moves the RTP timeout later, so it stays armed at the earlier
    /// instant, and when it fires early `on_timer` finds nothing due and it
    /// is armed again. Made afresh every turn, it went into tokio's timer
    /// wheel and out again, under the wheel's lock, for every packet
    /// (issue 15).
    pub async fn run(mut self: Box<Self>) {
        let shared = self.shared.clone();
        let timer = tokio::time::sleep_until(self.deadline(Instant::now()).into());
        // Every branch's future lives across packets, and only the one that
        // fired is made again. Made afresh on each turn of the loop, the
        // others registered their wakers and took them back once a packet,
        // each under its lock: a tenth of the relay thread's user time at
        // 1 000 bridged calls (issue 15).
        let changed = shared.control.changed();
        let rtp = shared.ports.rtp.readable();
        let rtcp = shared.ports.rtcp.readable();
        tokio::pin!(timer, changed, rtp, rtcp);
        loop {
            tokio::select! {
                // In this order, so a packet's wake-up polls its own branch
                // only: polling a pending `Notify` or socket readiness takes
                // its lock. Requests, the end of the session and timers are
                // looked at below after every turn, whichever branch fired,
                // so a flood of packets cannot keep them waiting.
                biased;
                r = &mut rtp => {
                    rtp.set(shared.ports.rtp.readable());
                    if r.is_ok() {
                        self.read(&shared.ports.rtp, Self::on_rtp);
                    }
                },
                r = &mut rtcp => {
                    rtcp.set(shared.ports.rtcp.readable());
                    if r.is_ok() {
                        self.read(&shared.ports.rtcp, Self::on_rtcp);
                    }
                },
                // Armed again before the take below: a request made after
                // the take leaves a permit (`notify_one`), so none is missed.
                _ = &mut changed => changed.set(shared.control.changed()),
                _ = &mut timer => {},
            }
            let now = Instant::now();
            if shared.control.requested() {
                self.on_control(shared.control.take(), now);
            }
            if shared.is_closed() {
                break;
            }
            if now >= timer.deadline().into_std() {
                self.on_timer(now);
            }
            let due = self.deadline(now).into();
            if due < timer.deadline() || timer.deadline() <= now.into() {
                timer.as_mut().reset(due);
            }
        }
        // Tell the pacing thread (it drops the stream at its next tick).
        shared.close();
        let q = shared.rx().summary();
        MediaStats::add(&shared.stats.packets_lost, q.lost);
        // One line per leg: what the phone's audio looked like on arrival (RFC 3550 A.3, A.8).
        // With SRTP, `received` counts only packets that authenticated.
        tracing::info!(
            parent: &self.span,
            rtp = %shared.ports.announced,
            srtp = self.srtp.as_ref().map_or("off", |s| s.suite().name()),
            srtp_refused = self.srtp_refused,
            // Where the stream latched and what other sources sent: a stray
            // stream that took the latch shows here (issue 12, lost keys).
            from = %self.latch.latched().map_or_else(|| "none".to_string(), |a| a.to_string()),
            foreign = self.latch.dropped(),
            received = q.received,
            lost = q.lost,
            loss_pct = format_args!("{:.2}", q.loss_percent()),
            jitter_ms = format_args!("{:.2}", q.jitter_ms),
            "media quality"
        );
    }

    /// Reads what is waiting on `sock`, up to [`READ_BATCH`] datagrams, into a
    /// buffer on the stack: a buffer in the task would stay allocated between
    /// packets, 3 KB for each call up (issue 15).
    fn read(&mut self, sock: &RtpSocket, on: fn(&mut Self, &mut [u8], SocketAddr, Instant)) {
        let mut buf = [0u8; RECV_BUF];
        for _ in 0..READ_BATCH {
            let Ok((n, src)) = sock.try_recv_from(&mut buf) else {
                return;
            };
            if let Some(pkt) = buf.get_mut(..n) {
                on(self, pkt, src, Instant::now());
            }
        }
    }

    /// Hold: the peer is not expected to send (RFC 3264 §8.4), so silence is no failure.
    fn suspended(&self) -> bool {
        self.params.hold || !self.params.may_send() || !self.params.may_receive()
    }

    fn deadline(&self, now: Instant) -> Instant {
        let mut d = self.decoder.deadline().unwrap_or(now + FAR);
        if !self.suspended() && !self.timed_out {
            d = d.min(self.last_rx + self.timeout);
        }
        d
    }

    pub(super) fn on_timer(&mut self, now: Instant) {
        self.decoder.on_timeout(now);
        self.drain_digits();
        if !self.suspended() && !self.timed_out && now >= self.last_rx + self.timeout {
            self.timed_out = true;
            self.shared.emit(MediaEvent::RtpTimeout);
        }
    }

    /// What the handle and the bridges asked (`Control`), remote first: a
    /// bridge made after a re-INVITE relays with its parameters.
    pub(super) fn on_control(&mut self, p: Pending, now: Instant) {
        if let Some(params) = p.remote {
            self.on_remote(*params, now);
        }
        if let Some((peer, id)) = p.bridge {
            // Gone already: the other leg ended before this task looked.
            self.peer = peer.upgrade().map(|peer| (peer, id));
        }
        if p.unbridged && !self.peer_relays() {
            self.peer = None;
        }
    }

    fn on_remote(&mut self, params: StreamParams, now: Instant) {
        let was_suspended = self.suspended();
        if params.remote != self.params.remote {
            self.latch.on_new_remote(params.remote);
            self.rtcp_latch
                .on_new_remote(super::rtcp_addr(params.remote));
        }
        if params.srtp != self.params.srtp {
            self.rekey(&params);
        }
        self.params = params;
        if was_suspended && !self.suspended() {
            // Off hold: the timeout counts from now, not from before the hold.
            self.last_rx = now;
            self.timed_out = false;
        }
        if let Some(d) = self.inband.as_mut() {
            d.reset();
        }
        let mut tx = self.shared.tx();
        tx.codec = self.params.codec;
        tx.pt = self.params.pt;
        tx.te_pt = self.params.telephone_event_pt;
        tx.may_send = self.params.may_send();
        tx.dest = self.latch.send_addr();
        tx.rtcp_dest = self.rtcp_latch.send_addr();
    }

    /// The peer is open and still relaying for this task's bridge.
    fn peer_relays(&self) -> bool {
        self.peer
            .as_ref()
            .is_some_and(|(peer, id)| peer.relays_for(&peer.tx(), *id))
    }

    /// A re-offer changed the keys or the suite: new contexts for both directions.
    fn rekey(&mut self, params: &StreamParams) {
        match params.srtp.as_ref() {
            Some(p) if self.srtp.as_ref().is_some_and(|s| s.is_for(p)) => {}
            Some(p) => self.srtp = Some(Box::new(SrtpReceiver::new(p))),
            None => self.srtp = None,
        }
        self.shared.tx().set_srtp(params);
    }

    /// Authenticate and decrypt `pkt` when the stream is SRTP (RFC 3711 §3.3, §3.4);
    /// the usable length, or `None` for a packet that must be dropped.
    fn unprotect(&mut self, pkt: &mut [u8], is_rtcp: bool) -> Option<usize> {
        let Some(srtp) = self.srtp.as_mut() else {
            return Some(pkt.len());
        };
        let r = if is_rtcp {
            srtp.unprotect_rtcp(pkt)
        } else {
            srtp.unprotect_rtp(pkt)
        };
        match r {
            Ok(n) => Some(n),
            Err(e) => {
                self.srtp_refused += 1;
                MediaStats::bump(&self.shared.stats.malformed);
                tracing::trace!(parent: &self.span, error = %e, "SRTP packet dropped");
                None
            }
        }
    }

    pub(super) fn on_rtp(&mut self, pkt: &mut [u8], src: SocketAddr, now: Instant) {
        let before = self.latch.latched();
        if self.latch.on_packet(src, now) == Verdict::Drop {
            MediaStats::bump(&self.shared.stats.dropped_foreign);
            return;
        }
        if self.latch.latched() != before {
            self.shared.tx().dest = self.latch.send_addr();
        }
        // RFC 5761 rtcp-mux peers send RTCP to the RTP port. SRTCP keeps the first
        // 8 bytes in the clear (RFC 3711 §3.4), so the test works before decryption.
        let is_rtcp = rtcp::is_rtcp(pkt);
        let Some(n) = self.unprotect(pkt, is_rtcp) else {
            return;
        };
        let Some(pkt) = pkt.get_mut(..n) else {
            return;
        };
        if is_rtcp {
            self.note_rtcp(pkt, now);
            return;
        }
        let (pt, kind) = {
            let Ok(r) = RtpReader::new(pkt) else {
                MediaStats::bump(&self.shared.stats.malformed);
                return;
            };
            let pt = r.payload_type();
            // Every RTP packet of the source, events included: they share its sequence
            // space (RFC 4733 §2.1), so skipping them would count them as lost.
            let event = Some(pt) == self.params.telephone_event_pt;
            self.shared.rx().on_packet(
                r.ssrc(),
                u16::from(r.sequence_number()),
                r.timestamp(),
                now,
                !event,
            );
            let kind = if event {
                let payload = TelephoneEventPayload::parse(r.payload());
                if let Ok(payload) = payload {
                    let ev = TelephoneEventPacket {
                        seq: u16::from(r.sequence_number()),
                        timestamp: r.timestamp(),
                        marker: r.mark(),
                        payload,
                    };
                    self.decoder.on_packet(ev, now);
                }
                Some(Kind::Event)
            } else if pt == self.params.pt {
                Some(Kind::Audio(self.params.codec))
            } else {
                // A peer that offered both G.711 laws may switch between them (RFC 3264 §5.1).
                Codec::from_payload_type(pt).map(Kind::Audio)
            };
            if let (Some(Kind::Audio(codec)), Some(det)) = (kind, self.inband.as_mut()) {
                self.pcm.clear();
                g711::decode(codec, r.payload(), &mut self.pcm);
                det.push_samples(&self.pcm);
            }
            (pt, kind)
        };
        MediaStats::bump(&self.shared.stats.packets_received);
        if !self.rtp_seen {
            self.rtp_seen = true;
            self.shared.emit(MediaEvent::RtpStarted);
        }
        self.last_rx = now;
        self.timed_out = false;
        self.drain_digits();
        let Some(kind) = kind else {
            tracing::trace!(pt, "RTP payload type not negotiated; dropped");
            MediaStats::bump(&self.shared.stats.malformed);
            return;
        };
        self.relay(pkt, kind, now);
    }

    fn relay(&mut self, pkt: &mut [u8], kind: Kind, now: Instant) {
        let Some((peer, id)) = self.peer.as_ref() else {
            return;
        };
        let mut tx = peer.tx();
        if !peer.relays_for(&tx, *id) {
            // The other leg hung up, or the bridge ended (its control message may have been
            // lost): let go of the peer so its ports can return to the pool.
            drop(tx);
            self.peer = None;
            return;
        }
        if !tx.may_send {
            return;
        }
        let tick = peer.tick_at(now);
        if relay::rewrite(pkt, kind, &mut tx, tick).is_none() {
            return;
        }
        let dest = tx.dest;
        // Each leg has its own keys (or none): the packet was decrypted with this
        // leg's and is protected with the other's, so one leg may be SRTP and the other RTP.
        let mut protected = None;
        if let Some(srtp) = tx.srtp.as_mut() {
            let mut out = std::mem::take(&mut self.relay_buf);
            out.clear();
            out.extend_from_slice(pkt);
            if srtp.protect_rtp(&mut out).is_err() {
                MediaStats::bump(&peer.stats.send_errors);
                self.relay_buf = out;
                return;
            }
            protected = Some(out);
        }
        drop(tx);
        let wire: &[u8] = protected.as_deref().unwrap_or(pkt);
        let sent = peer.send_rtp(wire, dest);
        if let Some(out) = protected {
            self.relay_buf = out;
        }
        if sent {
            MediaStats::bump(&peer.stats.packets_sent);
            MediaStats::bump(&peer.stats.relayed);
        }
    }

    pub(super) fn on_rtcp(&mut self, pkt: &mut [u8], src: SocketAddr, now: Instant) {
        let before = self.rtcp_latch.latched();
        if self.rtcp_latch.on_packet(src, now) == Verdict::Drop {
            MediaStats::bump(&self.shared.stats.dropped_foreign);
            return;
        }
        if self.rtcp_latch.latched() != before {
            self.shared.tx().rtcp_dest = self.rtcp_latch.send_addr();
        }
        let Some(n) = self.unprotect(pkt, true) else {
            return;
        };
        if let Some(pkt) = pkt.get(..n) {
            self.note_rtcp(pkt, now);
        }
    }

    /// Inbound RTCP proves the peer is alive (it may be silent with VAD, RFC 3551 §4.1).
    fn note_rtcp(&mut self, pkt: &[u8], now: Instant) {
        if let Some(summary) = rtcp::inspect_rtcp(pkt) {
            if let Some((ssrc, ntp)) = summary.sender_report {
                self.shared.rx().on_sender_report(ssrc, ntp, now);
            }
            MediaStats::bump(&self.shared.stats.rtcp_received);
            self.last_rx = now;
            self.timed_out = false;
        } else {
            MediaStats::bump(&self.shared.stats.malformed);
        }
    }

    fn drain_digits(&mut self) {
        while let Some(ev) = self.decoder.poll_event() {
            let ev = match ev {
                DtmfEvent::Started { digit, .. } => MediaEvent::DigitStarted(digit.to_char()),
                DtmfEvent::Ended { digit, duration } => MediaEvent::DigitEnded {
                    digit: digit.to_char(),
                    duration,
                },
            };
            self.shared.emit(ev);
        }
        if let Some(det) = self.inband.as_mut() {
            while let Some(d) = det.poll_digit() {
                let c = d.digit.to_char();
                self.shared.emit(MediaEvent::DigitStarted(c));
                self.shared.emit(MediaEvent::DigitEnded {
                    digit: c,
                    duration: Duration::ZERO,
                });
            }
        }
    }
}
