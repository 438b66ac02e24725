//! State of one session shared by its handle, its receive task, the pacing thread and (when
//! bridged) the other leg's receive task.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use tokio::sync::{mpsc, Notify};

use super::relay::RelayOut;
use super::{MediaEvent, MediaStats};
use crate::media::codec::Codec;
use crate::media::ports::{RtpPorts, RtpSocket};
use crate::media::prompt::FRAME_DURATION;
use crate::media::reception::ReceptionStats;
use crate::media::rtp_stream::RtpStream;
use crate::media::srtp::SrtpSender;
use crate::media::stream::StreamParams;

/// The outbound side of a session: everything needed to put a packet on the wire.
#[derive(Debug)]
pub(crate) struct Tx {
    /// Prompt-mode packet builder. Replaced (same SSRC, sequence continued) after a bridge.
    pub stream: RtpStream,
    /// RTP timestamp of pacer tick 0: the one timeline prompts and relayed packets share.
    pub ts_base: u32,
    pub codec: Codec,
    pub pt: u8,
    pub te_pt: Option<u8>,
    /// Where RTP goes: the SDP address until the latch locks onto the real source.
    pub dest: SocketAddr,
    pub rtcp_dest: SocketAddr,
    /// False while on hold or when the SDP forbids sending (RFC 3264 §5.1, §8.4).
    pub may_send: bool,
    /// Sender statistics for RTCP SR (§6.4.1), counted across prompts and bridges.
    pub packets: u32,
    pub octets: u32,
    /// Set while bridged: the relay owns sequence numbers and timestamps.
    pub relay: Option<RelayOut>,
    /// The pacing thread serves this bridged stream only at its RTCP times
    /// (`Pacer::defer`): whoever ends the bridge must tell it (`Cmd::Resume`),
    /// or prompts resume, and a closed session's ports go back to the pool,
    /// only at the next report. Set and read under this lock, so the end of
    /// a bridge is never missed: the thread defers only while `relay` is set.
    pub deferred: bool,
    /// Our SRTP context when the stream is encrypted: every packet built above is
    /// protected with it just before it leaves, whoever built it (pacing or relay).
    /// Boxed: most calls are plain RTP, and inline it was more than half
    /// of `Tx`, 176 of 328 bytes (issue 15).
    pub srtp: Option<Box<SrtpSender>>,
}

impl Tx {
    pub fn new(
        stream: RtpStream,
        params: &StreamParams,
        dest: SocketAddr,
        rtcp: SocketAddr,
    ) -> Self {
        let ts_base = stream.timestamp_for_tick(0);
        let srtp = params.srtp.as_ref().map(|p| Box::new(SrtpSender::new(p)));
        Tx {
            stream,
            ts_base,
            codec: params.codec,
            pt: params.pt,
            te_pt: params.telephone_event_pt,
            dest,
            rtcp_dest: rtcp,
            may_send: params.may_send(),
            packets: 0,
            octets: 0,
            relay: None,
            deferred: false,
            srtp,
        }
    }

    /// The stream's keys changed (a re-offer with a new suite): protect with the new ones.
    pub fn set_srtp(&mut self, params: &StreamParams) {
        let same = match (&self.srtp, &params.srtp) {
            (None, None) => true,
            (Some(s), Some(p)) => s.is_for(p),
            _ => false,
        };
        if !same {
            self.srtp = params.srtp.as_ref().map(|p| Box::new(SrtpSender::new(p)));
        }
    }

    pub fn count_sent(&mut self, payload_len: usize) {
        self.packets = self.packets.wrapping_add(1);
        let octets = u32::try_from(payload_len).unwrap_or(u32::MAX);
        self.octets = self.octets.wrapping_add(octets);
    }

    /// RTP timestamp for pacer tick `tick` on this session's timeline.
    pub fn ts_for_tick(&self, tick: u64) -> u32 {
        let samples = tick.wrapping_mul(u64::from(super::samples_per_tick())) as u32;
        self.ts_base.wrapping_add(samples)
    }
}

pub(crate) struct Shared {
    pub id: u64,
    /// Ideal send time of pacer tick 0.
    pub start: Instant,
    pub tx: Mutex<Tx>,
    /// What arrives: the receive task feeds it, the pacing thread reports it in RTCP.
    pub rx: Mutex<ReceptionStats>,
    pub closed: AtomicBool,
    pub events: mpsc::Sender<MediaEvent>,
    pub stats: Arc<MediaStats>,
    /// The receive sockets and the pool guard: the port is free again when the last `Arc`
    /// (pacing thread, receive task, bridge peer) lets go.
    pub ports: RtpPorts,
    /// What the session's handle and its bridges ask of the receive task.
    pub control: Control,
}

/// What a session's handle and its bridges ask of its receive task: a
/// state, not a queue. Each request replaces the one of its kind the task
/// has not taken yet (a second re-INVITE's parameters supersede the first;
/// the latest bridge is the one to relay to), so it never fills and never
/// refuses, and it lives in the session's [`Shared`]: a channel here cost
/// every call 1.3 KB, a third of it a block of 32 slots for the two or three
/// requests a call ever makes (issue 15).
#[derive(Default)]
pub(crate) struct Control {
    pending: Mutex<Pending>,
    /// Set by every request (and by `Shared::close`) before it wakes the
    /// task, cleared by `take`: the task looks at this after every packet,
    /// which costs a load, where polling `wake`'s future takes its lock.
    requested: AtomicBool,
    /// Wakes the receive task; a request made while it is busy leaves a
    /// permit, so none is missed.
    wake: Notify,
}

/// Requests not yet taken by the receive task.
#[derive(Default)]
pub(crate) struct Pending {
    /// The peer's latest SDP (a re-INVITE or UPDATE).
    pub remote: Option<Box<StreamParams>>,
    /// Relay to this session for bridge `id`. Weak: a request the task never
    /// takes (it ended first) must not keep both sessions alive in a cycle.
    pub bridge: Option<(Weak<Shared>, u64)>,
    /// A bridge ended: let go of a peer whose relay is over.
    pub unbridged: bool,
}

impl Control {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_remote(&self, params: StreamParams) {
        self.pending().remote = Some(Box::new(params));
        self.poke();
    }

    pub fn bridge(&self, peer: &Arc<Shared>, id: u64) {
        self.pending().bridge = Some((Arc::downgrade(peer), id));
        self.poke();
    }

    /// Tells the task to look: after the request is in `pending`, so the
    /// task that sees the flag finds it.
    fn poke(&self) {
        self.requested.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Whether a request may be pending (the task then calls `take`).
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Bridge `id` ended (its relay already handed back, [`Shared::end_relay`]).
    pub fn unbridged(&self, id: u64) {
        let mut p = self.pending();
        if p.bridge.as_ref().is_some_and(|(_, b)| *b == id) {
            // Ended before the task took it.
            p.bridge = None;
        }
        p.unbridged = true;
        drop(p);
        self.poke();
    }

    /// Waits until a request may be pending.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }

    /// The requests made since the last take. The flag is cleared first: a
    /// request made meanwhile sets it again and is taken on the next look.
    pub fn take(&self) -> Pending {
        self.requested.store(false, Ordering::Release);
        std::mem::take(&mut *self.pending())
    }
}

impl Shared {
    /// Lock the outbound state. A poisoned lock (a panic elsewhere while holding it) still
    /// holds consistent plain data, so keep going rather than take the call down.
    pub fn tx(&self) -> MutexGuard<'_, Tx> {
        self.tx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lock the reception statistics (poison tolerated as for `tx`). Never held while
    /// taking another lock.
    pub fn rx(&self) -> MutexGuard<'_, ReceptionStats> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ssrc(&self) -> u32 {
        self.tx().stream.ssrc()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The session ends: the receive task stops at its next look, the pacing
    /// thread lets the stream go at its next tick.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.control.poke();
    }

    /// Whether this session, open, still relays for bridge `id` (`tx` is
    /// its locked outbound state): the bridge's other leg asks it before
    /// each relayed packet and when told the bridge ended.
    pub fn relays_for(&self, tx: &Tx, id: u64) -> bool {
        !self.is_closed() && tx.relay.as_ref().is_some_and(|r| r.bridge_id == id)
    }

    pub fn is_bridged(&self) -> bool {
        self.tx().relay.is_some()
    }

    /// Pacer tick that is current at `now`.
    pub fn tick_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed / FRAME_DURATION.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Hand sequence numbers and timestamps to bridge `id`; false if already bridged.
    pub fn begin_relay(&self, id: u64) -> bool {
        let mut tx = self.tx();
        if tx.relay.is_some() {
            return false;
        }
        let next_seq = tx.stream.next_seq();
        tx.relay = Some(RelayOut::new(id, next_seq));
        true
    }

    /// Back to prompt mode after bridge `id`: same SSRC and timeline, sequence continued. The
    /// fresh builder marks the next prompt packet as a talkspurt start (RFC 3551 §4.1).
    /// True when the pacing thread has deferred the stream and must be told to resume it.
    pub fn end_relay(&self, id: u64) -> bool {
        let mut tx = self.tx();
        let Some(relay) = tx.relay.as_ref().filter(|r| r.bridge_id == id) else {
            return false;
        };
        let next_seq = relay.next_seq;
        let ssrc = tx.stream.ssrc();
        tx.stream = RtpStream::with_initial(ssrc, next_seq, tx.ts_base, super::samples_per_tick());
        tx.relay = None;
        tx.deferred
    }

    /// Report to the call task without ever blocking the caller (the pacing thread must not
    /// wait on a slow consumer); a full channel loses the event and counts it.
    pub fn emit(&self, ev: MediaEvent) {
        if self.events.try_send(ev).is_err() {
            MediaStats::bump(&self.stats.events_dropped);
        }
    }

    /// Non-blocking send; failures (including a full socket buffer) lose the packet.
    pub fn send_rtp(&self, buf: &[u8], dest: SocketAddr) -> bool {
        Self::send(&self.ports.rtp, &self.stats, buf, dest)
    }

    pub fn send_rtcp(&self, buf: &[u8], dest: SocketAddr) -> bool {
        let ok = Self::send(&self.ports.rtcp, &self.stats, buf, dest);
        if ok {
            MediaStats::bump(&self.stats.rtcp_sent);
        }
        ok
    }

    /// A plain non-blocking `sendto` on the session's own descriptor, from any thread:
    /// borrowing the socket (no `dup`) keeps a session at two descriptors, and sending
    /// bypasses tokio's readiness (only the receive task waits on the reactor).
    fn send(sock: &RtpSocket, stats: &MediaStats, buf: &[u8], dest: SocketAddr) -> bool {
        match sock.send_to(buf, dest) {
            Ok(_) => true,
            Err(e) => {
                MediaStats::bump(&stats.send_errors);
                tracing::trace!(%dest, error = %e, "RTP send failed");
                false
            }
        }
    }
}
