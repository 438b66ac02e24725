//! The media engine shell: carries RTP for every call.
//!
//! * **Sending** is paced by dedicated OS threads (`EngineConfig::pacing_threads`, default 1),
//!   not tokio timers: tokio ticks in whole milliseconds, which measured 2.9 ms late at p99
//!   with 1 000 streams (design.md, "Pacing facts"). Each thread sleeps to the next absolute
//!   deadline of its [`Pacer`](super::pacer::Pacer) with `std::thread::park_timeout` (timer
//!   slack 1 ns; optionally a spin for the last `EngineConfig::spin`), and sends one packet
//!   per due stream with a non-blocking `send_to` on the session's own socket. Parking
//!   (rather than `sleep`) lets a command wake the thread at once: `stop_playback` takes
//!   effect before the next packet.
//!   Commands reach the thread through a bounded `std::sync::mpsc::sync_channel`, drained on
//!   every wake-up.
//! * **Receiving** is one tokio task per session, on sockets registered for readability
//!   only ([`RtpSocket`](super::ports::RtpSocket)). tokio's reactor already is one epoll loop
//!   for all sockets; a task is just a small state machine on it (it reads into a buffer on
//!   the stack, so it holds none between packets), so a hand-written readiness loop would
//!   buy nothing but code.
//! * **Bridging** relays each inbound packet straight from the receive task out of the other
//!   leg's socket (no pacing: the far end already paced it, and a relay hop through the
//!   pacing thread would add up to 20 ms of delay). The outbound stream state of a session
//!   (SSRC, sequence, timestamp base, destination) sits in one small mutex shared by the
//!   pacing thread and the relay, so a bridge continues exactly where a prompt stopped.
//!   While bridged, the pacing thread serves the leg only for its RTCP reports; the end of
//!   the bridge has it served again from the next tick.

#[doc(hidden)]
pub mod fuzzing;
mod pacing;
mod recv;
mod relay;
mod shared;
pub mod stats;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_srtp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::codec::Codec;
use super::dtmf::Digit;
use super::latch::Latch;
use super::ports::RtpPorts;
use super::prompt::{Prompt, FRAME_DURATION};
use super::reception::ReceptionStats;
use super::rtp_stream::RtpStream;
use super::stream::StreamParams;

use pacing::Cmd;
use recv::RecvTask;
use shared::{Shared, Tx};
pub use stats::{MediaStats, StatsSnapshot};

/// Engine-wide settings (from `[media]` in the configuration, with these defaults).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Pacing threads; sessions are spread over them. One handles thousands of streams.
    pub pacing_threads: usize,
    /// Bound of each pacing thread's command queue; a full queue fails the call with
    /// [`MediaError::Overloaded`] instead of blocking async code.
    pub command_capacity: usize,
    /// Bound of each session's event channel (events beyond it are counted and dropped).
    pub event_capacity: usize,
    /// The pacing thread parks until this long before a deadline, then spins. The thread
    /// sets its timer slack to 1 ns, so a park is already accurate to the scheduler's
    /// latency; a spin trades CPU for the last tens of µs.
    pub spin: Duration,
    /// A paced send later than this counts in `MediaStats::late_sends`.
    pub late_threshold: Duration,
    /// RTCP report interval (RFC 3550 §6.2 suggests 5 s for a two-party session).
    pub rtcp_interval: Duration,
    /// RTCP SDES CNAME (RFC 3550 §6.5.1).
    pub cname: String,
    /// Stream start times are rounded up to this grid so that one wake-up serves many
    /// streams instead of one wake-up per stream.
    pub start_granularity: Duration,
    /// Length of each sent DTMF tone, and the pause between tones.
    pub dtmf_tone: Duration,
    pub dtmf_gap: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            pacing_threads: 1,
            command_capacity: 4096,
            event_capacity: 64,
            // With the thread's timer slack at 1 ns (pacing.rs) a park wakes within
            // tens of µs; 80 µs of spin per wake-up cost 3 % of a core at 3 000
            // streams and bought no p99 (docs/performance.md, "Cost per call").
            spin: Duration::ZERO,
            late_threshold: Duration::from_millis(1),
            rtcp_interval: Duration::from_secs(5),
            cname: "tpswitch".into(),
            start_granularity: Duration::from_millis(1),
            dtmf_tone: Duration::from_millis(100),
            dtmf_gap: Duration::from_millis(100),
        }
    }
}

/// Per-session settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Send silence frames when no prompt plays (else send nothing).
    pub silence_between_prompts: bool,
    /// Report [`MediaEvent::RtpTimeout`] after this long without RTP or RTCP.
    pub rtp_timeout: Duration,
    pub latch_window: Duration,
    /// Also detect DTMF tones in the received audio.
    pub inband_dtmf: bool,
    /// The call's span: the session's own log lines (media quality at the end) go in it.
    pub span: tracing::Span,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            silence_between_prompts: true,
            rtp_timeout: Duration::from_secs(30),
            latch_window: Duration::from_secs(2),
            inband_dtmf: false,
            span: tracing::Span::none(),
        }
    }
}

/// What a session reports to its call task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// Every clip of `play(id, ..)` was sent (not sent after `stop_playback`, a newer `play`
    /// or a bridge).
    PlaybackFinished(u64),
    DigitStarted(char),
    /// `duration` is zero for in-band digits (the detector does not time presses).
    DigitEnded {
        digit: char,
        duration: Duration,
    },
    /// No RTP or RTCP for `rtp_timeout` (reported once until traffic resumes).
    RtpTimeout,
    /// The first RTP packet from the peer was accepted (once per session): an
    /// answer with media, as opposed to a dead answer.
    RtpStarted,
    /// Every digit of `send_dtmf` was sent.
    DtmfSent,
    DtmfFailed(DtmfFailure),
}

/// Why `send_dtmf` could not be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfFailure {
    #[error("the peer's SDP has no telephone-event payload type (RFC 4733); use SIP INFO")]
    NoTelephoneEvent,
    #[error("the session was bridged while digits were being sent")]
    Bridged,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the media engine must be used from inside a tokio runtime")]
    NoRuntime,
    #[error("media engine command queue is full; raise EngineConfig::command_capacity or add pacing threads")]
    Overloaded,
    #[error("the media session is closed")]
    Closed,
    #[error("`{0}` is not a DTMF digit (use 0-9, *, #, A-D)")]
    InvalidDigit(char),
    #[error("the session is bridged; unbridge it before playing prompts")]
    Bridged,
    #[error("a session cannot be bridged to itself")]
    SameSession,
    #[error("could not start the pacing thread: {0}")]
    Thread(#[source] std::io::Error),
}

struct PacingHandle {
    tx: SyncSender<Cmd>,
    thread: Thread,
    wake: Arc<pacing::WakeAt>,
}

struct EngineInner {
    cfg: EngineConfig,
    pacers: Vec<PacingHandle>,
    stats: Arc<MediaStats>,
    epoch: Instant,
    next_id: AtomicU64,
}

impl EngineInner {
    /// Queue `cmd` for the shard's pacing thread. A new stream (`Add`) wakes the
    /// thread if it would sleep past the stream's start; any other command acts at
    /// its stream's next tick, and wakes the thread only if it would sleep longer
    /// than a packet time: it does when every stream it paces is deferred
    /// (bridged legs, served at their RTCP times) (`pacing::WakeAt`).
    fn command(&self, shard: usize, cmd: Cmd) -> Result<(), MediaError> {
        let p = self.pacers.get(shard).ok_or(MediaError::Closed)?;
        let due = match &cmd {
            Cmd::Add { shared, .. } => shared.start,
            _ => Instant::now() + FRAME_DURATION,
        };
        match p.tx.try_send(cmd) {
            Ok(()) => {
                if p.wake.must_wake_for(due) {
                    p.thread.unpark();
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(MediaError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(MediaError::Closed),
        }
    }

    /// The pacing thread of session `sid`.
    fn shard_of(&self, sid: u64) -> usize {
        (sid % self.pacers.len().max(1) as u64) as usize
    }

    /// Tell the pacing thread of session `sid` to serve it from its next tick:
    /// it had deferred the stream while it was bridged (`Tx::deferred`). A full
    /// queue leaves it deferred until its next RTCP report, when the thread
    /// sees for itself.
    fn resume(&self, sid: u64) {
        let _ = self.command(self.shard_of(sid), Cmd::Resume { sid });
    }

    /// The first grid point (`start_granularity` steps from the engine's epoch) after `now`.
    fn aligned_start(&self, now: Instant) -> Instant {
        let g = self.cfg.start_granularity.as_nanos().max(1);
        let since = now.saturating_duration_since(self.epoch).as_nanos() + 1;
        let steps = since.div_ceil(g);
        let nanos = u64::try_from(steps * g).unwrap_or(u64::MAX);
        self.epoch + Duration::from_nanos(nanos)
    }
}

/// Handle to the running engine; clone it freely. The pacing threads stop once every clone
/// and every session is dropped.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

impl MediaEngine {
    /// Start the pacing threads.
    pub fn start(cfg: EngineConfig) -> Result<MediaEngine, MediaError> {
        let stats = Arc::new(MediaStats::default());
        let mut pacers = Vec::new();
        let epoch = Instant::now();
        for i in 0..cfg.pacing_threads.max(1) {
            let (tx, rx) = sync_channel(cfg.command_capacity.max(1));
            let wake = Arc::new(pacing::WakeAt::new(epoch));
            let worker = pacing::PacingThread::new(rx, wake.clone(), &cfg, stats.clone());
            let handle = std::thread::Builder::new()
                .name(format!("media-pace-{i}"))
                .spawn(move || worker.run())
                .map_err(MediaError::Thread)?;
            pacers.push(PacingHandle {
                tx,
                thread: handle.thread().clone(),
                wake,
            });
        }
        Ok(MediaEngine {
            inner: Arc::new(EngineInner {
                cfg,
                pacers,
                stats,
                epoch,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    pub fn stats(&self) -> &Arc<MediaStats> {
        &self.inner.stats
    }

    /// Start media for an answered call on `ports`. Must run inside a tokio runtime (the
    /// receive task is spawned on it).
    pub fn open(
        &self,
        ports: RtpPorts,
        params: &StreamParams,
        opts: SessionOptions,
    ) -> Result<(MediaSession, mpsc::Receiver<MediaEvent>), MediaError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| MediaError::NoRuntime)?;
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let shard = inner.shard_of(id);
        let now = Instant::now();
        let start = inner.aligned_start(now);
        let (events_tx, events_rx) = mpsc::channel(inner.cfg.event_capacity.max(1));
        // Bounded so the latch's `now + window` cannot overflow an Instant.
        let window = opts.latch_window.min(Duration::from_secs(3600));
        let latch = Latch::new(params.remote, window);
        let rtcp_latch = Latch::new(rtcp_addr(params.remote), window);
        let stream = RtpStream::random(samples_per_tick());
        let tx = Tx::new(stream, params, latch.send_addr(), rtcp_latch.send_addr());
        let shared = Arc::new(Shared {
            id,
            start,
            tx: Mutex::new(tx),
            rx: Mutex::new(ReceptionStats::new(Codec::CLOCK_RATE, now)),
            closed: Default::default(),
            events: events_tx,
            stats: inner.stats.clone(),
            ports,
            control: Default::default(),
        });
        let task = RecvTask::new(shared.clone(), params, &opts, latch, rtcp_latch, now);
        inner.command(
            shard,
            Cmd::Add {
                shared: shared.clone(),
                silence: opts.silence_between_prompts,
            },
        )?;
        runtime.spawn(Box::new(task).run());
        Ok((
            MediaSession {
                shared,
                engine: inner.clone(),
                shard,
            },
            events_rx,
        ))
    }

    /// Relay media between two sessions until the handle is unbridged or dropped. Any
    /// playback on either session stops (without `PlaybackFinished`).
    pub fn bridge(&self, a: &MediaSession, b: &MediaSession) -> Result<BridgeHandle, MediaError> {
        if Arc::ptr_eq(&a.shared, &b.shared) {
            return Err(MediaError::SameSession);
        }
        if a.is_closed() || b.is_closed() {
            return Err(MediaError::Closed);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        if !a.shared.begin_relay(id) {
            return Err(MediaError::Bridged);
        }
        if !b.shared.begin_relay(id) {
            if a.shared.end_relay(id) {
                self.inner.resume(a.shared.id);
            }
            return Err(MediaError::Bridged);
        }
        a.shared.control.bridge(&b.shared, id);
        b.shared.control.bridge(&a.shared, id);
        Ok(BridgeHandle {
            id,
            a: a.shared.clone(),
            b: b.shared.clone(),
            engine: self.inner.clone(),
        })
    }

    /// End a bridge; both sessions return to prompt mode (same SSRC, sequence continues).
    pub fn unbridge(&self, handle: BridgeHandle) {
        drop(handle);
    }
}

/// One call leg's media. Dropping it closes the session.
pub struct MediaSession {
    shared: Arc<Shared>,
    engine: Arc<EngineInner>,
    shard: usize,
}

impl MediaSession {
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.ports.local
    }

    /// Where the peer was told to send RTP (never a wildcard): for logs.
    pub fn announced_addr(&self) -> SocketAddr {
        self.shared.ports.announced
    }

    /// SSRC of what this session sends (stays the same through prompts and bridges).
    pub fn ssrc(&self) -> u32 {
        self.shared.ssrc()
    }

    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Play `clips` back to back, replacing any playback in progress (which then reports no
    /// `PlaybackFinished`). The first packet carries the marker bit (a new talkspurt).
    pub fn play(&self, id: u64, clips: Vec<Arc<Prompt>>) -> Result<(), MediaError> {
        self.check_open()?;
        if self.shared.is_bridged() {
            return Err(MediaError::Bridged);
        }
        self.engine.command(
            self.shard,
            Cmd::Play {
                sid: self.shared.id,
                id,
                clips,
            },
        )
    }

    /// Stop playback before the next packet (no `PlaybackFinished`).
    pub fn stop_playback(&self) -> Result<(), MediaError> {
        self.check_open()?;
        self.engine.command(
            self.shard,
            Cmd::Stop {
                sid: self.shared.id,
            },
        )
    }

    /// The peer re-negotiated (re-INVITE/UPDATE): new address, codec, or hold state.
    pub fn update_remote(&self, params: &StreamParams) -> Result<(), MediaError> {
        self.check_open()?;
        self.shared.control.set_remote(params.clone());
        Ok(())
    }

    /// Send `digits` as RFC 4733 events after `pause_before`, with the payload type the peer
    /// negotiated. Reports `DtmfSent`, or `DtmfFailed` when the peer has no telephone-event.
    pub fn send_dtmf(&self, digits: &str, pause_before: Duration) -> Result<(), MediaError> {
        self.check_open()?;
        let digits = digits
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| Digit::from_char(c).ok_or(MediaError::InvalidDigit(c)))
            .collect::<Result<Vec<_>, _>>()?;
        self.engine.command(
            self.shard,
            Cmd::SendDtmf {
                sid: self.shared.id,
                digits,
                pause_before,
            },
        )
    }

    /// Stop sending and receiving; the ports return to the pool once the pacing thread and
    /// the receive task have let go (within a packet time).
    ///
    /// The pacing thread is not woken: it lets the stream go at the stream's next
    /// tick, as it would after waking (`pacing::WakeAt`).
    pub fn close(&self) {
        self.shared.close();
    }

    fn check_open(&self) -> Result<(), MediaError> {
        if self.is_closed() {
            Err(MediaError::Closed)
        } else {
            Ok(())
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.close();
    }
}

/// A live bridge; dropping it unbridges.
pub struct BridgeHandle {
    id: u64,
    a: Arc<Shared>,
    b: Arc<Shared>,
    engine: Arc<EngineInner>,
}

impl BridgeHandle {
    pub fn unbridge(self) {
        drop(self);
    }
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        for shared in [&self.a, &self.b] {
            if shared.end_relay(self.id) {
                // Prompts (or silence) resume at the next tick, not the next report.
                self.engine.resume(shared.id);
            }
            // The receive task lets go of its peer now rather than at the next
            // packet, so the peer's ports return to the pool (see `recv.rs`).
            shared.control.unbridged(self.id);
        }
    }
}

/// RTCP goes to the RTP port + 1 (RFC 3550 §11) unless an RTCP packet tells us otherwise.
fn rtcp_addr(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port().checked_add(1).unwrap_or(rtp.port()))
}

/// Samples per packet: prompts are cut into 20 ms G.711 frames, so that is our packet time.
fn samples_per_tick() -> u32 {
    (FRAME_DURATION.as_millis() as u32) * 8
}
