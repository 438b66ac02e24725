//! The pacing thread: sleeps to absolute deadlines, serves every stream due, sends one packet
//! per stream per tick. Owns the per-stream playback and DTMF-sending state, so none of it
//! needs a lock; only the small outbound state (`Tx`) is shared with the relay.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::shared::Shared;
use super::{DtmfFailure, EngineConfig, MediaEvent, MediaStats};
use crate::media::codec::Codec;
use crate::media::dtmf::{Digit, DtmfToneSpec, Rfc4733Encoder};
use crate::media::pacer::{prefetch, Due, Pacer, StreamKey};
use crate::media::prompt::{Prompt, FRAME_DURATION};
use crate::media::reception::ReportBlock;
use crate::media::rtcp::{self, NtpTime};

/// The longest the thread parks with nothing due, so it notices the engine went away.
const IDLE_WAKE: Duration = Duration::from_millis(100);

/// When the pacing thread will next read its commands, so that a sender wakes it
/// only for a command that cannot wait until then.
///
/// Every command used to unpark the thread: a futex wake and, on a busy core, a
/// context switch and a preempted tokio worker, three or four times a call (issue
/// 15). Most commands need none of it. A stream's `Play`, `Stop` or `SendDtmf`
/// acts at the stream's next tick, and the thread reads its commands before it
/// serves any tick; a closed stream is let go at its next tick. Only a new stream
/// (`Add`) may start before the thread's next wake-up.
///
/// Nanoseconds from `epoch` (never 0), or `AWAKE` while the thread runs: it reads
/// its commands again before it next sleeps. The thread publishes its wake-up and
/// then looks for commands; a sender queues its command and then reads the
/// wake-up. A `SeqCst` fence on each side makes at least one of them see the
/// other (the store-buffering pattern): no command is left asleep.
pub(crate) struct WakeAt {
    epoch: Instant,
    at: AtomicU64,
}

impl WakeAt {
    const AWAKE: u64 = 0;

    pub fn new(epoch: Instant) -> Self {
        WakeAt {
            epoch,
            at: AtomicU64::new(Self::AWAKE),
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        let n = t.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(n).unwrap_or(u64::MAX).max(1)
    }

    /// The thread is about to sleep until `t` (it looks for commands after this).
    fn sleeping_until(&self, t: Instant) {
        self.at.store(self.nanos(t), Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    fn awake(&self) {
        self.at.store(Self::AWAKE, Ordering::SeqCst);
    }

    /// After queueing a command that must be read by `due`: whether the sleeping
    /// thread would read it too late.
    pub fn must_wake_for(&self, due: Instant) -> bool {
        fence(Ordering::SeqCst);
        let at = self.at.load(Ordering::SeqCst);
        at != Self::AWAKE && at > self.nanos(due)
    }
}

pub(crate) enum Cmd {
    Add {
        shared: Arc<Shared>,
        silence: bool,
    },
    Play {
        sid: u64,
        id: u64,
        clips: Vec<Arc<Prompt>>,
    },
    Stop {
        sid: u64,
    },
    SendDtmf {
        sid: u64,
        digits: Vec<Digit>,
        pause_before: Duration,
    },
    /// Serve a deferred stream from its next tick: its bridge ended.
    Resume {
        sid: u64,
    },
}

struct Playback {
    id: u64,
    clips: Vec<Arc<Prompt>>,
    clip: usize,
    frame: usize,
    started: bool,
}

impl Playback {
    /// Move past exhausted clips; true when nothing is left to send.
    fn settle(&mut self) -> bool {
        while let Some(c) = self.clips.get(self.clip) {
            if self.frame < c.frame_count() {
                return false;
            }
            self.clip += 1;
            self.frame = 0;
        }
        true
    }

    /// This tick's frame (with the marker bit for the first) and whether the
    /// playback is over after it.
    fn tick(&mut self, codec: Codec) -> (Option<(bytes::Bytes, bool)>, bool) {
        if self.settle() {
            // Nothing left: a stall's `skip` took the last frames. It is
            // over all the same, or the owner waits for the end forever.
            return (None, true);
        }
        let frame = self
            .clips
            .get(self.clip)
            .and_then(|c| c.frame(codec, self.frame));
        self.frame += 1;
        let marker = !self.started;
        self.started = true;
        (frame.map(|f| (f, marker)), self.settle())
    }

    /// Skip `n` frames (ticks lost to a stall), keeping audio in step with the clock.
    fn skip(&mut self, mut n: u64) {
        while n > 0 && !self.settle() {
            let Some(c) = self.clips.get(self.clip) else {
                return;
            };
            let left = (c.frame_count() - self.frame) as u64;
            let step = left.min(n);
            self.frame += step as usize;
            n -= step;
        }
    }
}

struct DtmfJob {
    digits: VecDeque<Digit>,
    /// Ticks to wait before the next digit starts.
    wait: u64,
    tone: Option<Rfc4733Encoder>,
}

struct Stream {
    shared: Arc<Shared>,
    voice: Voice,
    next_rtcp: Instant,
}

impl Stream {
    /// Prefetch what [`PacingThread::serve`] reads of the session: its closed
    /// flag, its outbound state and lock, its sockets. Thousands of sessions'
    /// state does not stay in the cache between one packet and the next 20 ms
    /// later, and waiting for it was a third of this thread's user time at
    /// 3 000 streams (issue 15).
    fn warm(&self) {
        prefetch(&self.shared.closed);
        prefetch(&self.shared.tx);
        prefetch(&self.shared.ports.rtp);
    }
}

/// What a stream says: the prompt playing, the digits being sent, or silence.
struct Voice {
    silence: bool,
    play: Option<Playback>,
    dtmf: Option<DtmfJob>,
}

/// What one tick sends.
enum Payload {
    None,
    Audio { frame: bytes::Bytes, marker: bool },
    Silence,
    Event(crate::media::dtmf::OutgoingEvent),
}

pub(crate) struct PacingThread {
    rx: Receiver<Cmd>,
    wake: Arc<WakeAt>,
    /// The schedule, holding each stream's state in its slot.
    pacer: Pacer<Stream>,
    /// Commands name a session; ticks name a slot. Only commands look a session up.
    keys: HashMap<u64, StreamKey>,
    stats: Arc<MediaStats>,
    spin: Duration,
    late: Duration,
    rtcp_interval: Duration,
    cname: String,
    tone: Duration,
    gap_ticks: u64,
    buf: Vec<u8>,
    rtcp_buf: Vec<u8>,
    silence: [Vec<u8>; 2],
    events: Vec<(Arc<Shared>, MediaEvent)>,
}

impl PacingThread {
    pub fn new(
        rx: Receiver<Cmd>,
        wake: Arc<WakeAt>,
        cfg: &EngineConfig,
        stats: Arc<MediaStats>,
    ) -> Self {
        let n = Codec::SAMPLES_PER_FRAME;
        PacingThread {
            rx,
            wake,
            pacer: Pacer::new(FRAME_DURATION),
            keys: HashMap::new(),
            stats,
            // Bounded so a bad configuration cannot turn the thread into a busy loop.
            spin: cfg.spin.min(Duration::from_millis(1)),
            late: cfg.late_threshold,
            rtcp_interval: cfg
                .rtcp_interval
                .clamp(Duration::from_millis(100), Duration::from_secs(3600)),
            cname: cfg.cname.clone(),
            tone: cfg.dtmf_tone,
            gap_ticks: ticks(cfg.dtmf_gap),
            buf: Vec::with_capacity(256),
            rtcp_buf: Vec::with_capacity(128),
            silence: [
                vec![Codec::Pcmu.silence_byte(); n],
                vec![Codec::Pcma.silence_byte(); n],
            ],
            events: Vec::new(),
        }
    }

    pub fn run(mut self) {
        // Linux rounds a sleeping thread's timer up by the thread's timer slack,
        // 50 µs by default (prctl(2), PR_SET_TIMERSLACK), so that it can batch
        // wake-ups. A pacing deadline wants the opposite: 1 ns makes `park_timeout`
        // wake within the scheduler's latency, and the spin before each deadline
        // (`EngineConfig::spin`), which burned the slack away at every wake-up,
        // can shrink or go. If the call fails the thread just wakes later.
        // SAFETY: PR_SET_TIMERSLACK reads one integer argument and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
        loop {
            // Awake: whatever is queued from here on is read before the next sleep.
            self.wake.awake();
            if self.drain_commands().is_none() {
                return;
            }
            let now = Instant::now();
            while let Some(due) = self.pacer.poll_due(now) {
                // The next stream's session starts loading while this packet goes out
                // (the pacer warms its slot one packet earlier still).
                if let Some(next) = self.pacer.next_state() {
                    next.warm();
                }
                self.serve(due);
            }
            for (shared, ev) in self.events.drain(..) {
                shared.emit(ev);
            }
            let now = Instant::now();
            let next = self
                .pacer
                .deadline()
                .map_or(now + IDLE_WAKE, |d| d.min(now + IDLE_WAKE));
            if next > now + self.spin {
                // Published before the last look at the commands (see `WakeAt`).
                self.wake.sleeping_until(next);
                match self.drain_commands() {
                    None => return,
                    // A command came in meanwhile: it may move the deadline.
                    Some(true) => continue,
                    Some(false) => {}
                }
                // Woken early by a command (unpark) or the timer: loop to drain and re-check.
                std::thread::park_timeout(next - now - self.spin);
            } else {
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Apply queued commands: whether there were any, or `None` once every sender is
    /// gone (engine and sessions dropped).
    fn drain_commands(&mut self) -> Option<bool> {
        let mut any = false;
        loop {
            match self.rx.try_recv() {
                Ok(cmd) => {
                    self.command(cmd);
                    any = true;
                }
                Err(TryRecvError::Empty) => return Some(any),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Add { shared, silence } => {
                let id = shared.id;
                let start = shared.start;
                let next_rtcp =
                    start + rtcp::report_delay(self.rtcp_interval, true, &mut rand::rng());
                let key = self.pacer.add(
                    start,
                    Stream {
                        shared,
                        voice: Voice {
                            silence,
                            play: None,
                            dtmf: None,
                        },
                        next_rtcp,
                    },
                );
                // A session is added once; were it added again, the old schedule must go.
                if let Some(old) = self.keys.insert(id, key) {
                    self.pacer.remove(old);
                }
            }
            Cmd::Play { sid, id, clips } => {
                let Some(s) = self.stream(sid) else {
                    return;
                };
                let mut p = Playback {
                    id,
                    clips,
                    clip: 0,
                    frame: 0,
                    started: false,
                };
                if p.settle() {
                    s.shared.emit(MediaEvent::PlaybackFinished(id));
                    s.voice.play = None;
                } else {
                    s.voice.play = Some(p);
                }
            }
            Cmd::Stop { sid } => {
                if let Some(s) = self.stream(sid) {
                    s.voice.play = None;
                }
            }
            Cmd::SendDtmf {
                sid,
                digits,
                pause_before,
            } => {
                let Some(s) = self.stream(sid) else {
                    return;
                };
                if s.shared.tx().te_pt.is_none() {
                    s.shared
                        .emit(MediaEvent::DtmfFailed(DtmfFailure::NoTelephoneEvent));
                    return;
                }
                s.voice.dtmf = Some(DtmfJob {
                    digits: digits.into(),
                    wait: ticks(pause_before),
                    tone: None,
                });
            }
            Cmd::Resume { sid } => {
                self.stream(sid);
            }
        }
    }

    /// The stream of session `sid`, served again from its next tick if it was
    /// deferred: whatever a command asks is done then, as for any stream.
    fn stream(&mut self, sid: u64) -> Option<&mut Stream> {
        let key = *self.keys.get(&sid)?;
        self.pacer.resume(key, Instant::now());
        self.pacer.get_mut(key)
    }

    fn serve(&mut self, due: Due) {
        let Some(s) = self.pacer.get_mut(due.stream) else {
            return;
        };
        if s.shared.is_closed() {
            let sid = s.shared.id;
            self.pacer.remove(due.stream);
            if self.keys.get(&sid) == Some(&due.stream) {
                self.keys.remove(&sid);
            }
            // After a peak the table gives its room back, as the SIP
            // core's do (the pacer's slots go when the last stream does).
            crate::capacity::shrink_map(&mut self.keys);
            return;
        }
        // Borrowed in place, not cloned: an `Arc` clone per packet is an atomic add on a
        // line another core (the session's task) also writes.
        let Stream {
            shared,
            voice,
            next_rtcp,
        } = s;
        if due.skipped > 0 {
            self.stats
                .ticks_skipped
                .fetch_add(due.skipped, std::sync::atomic::Ordering::Relaxed);
            if let Some(p) = voice.play.as_mut() {
                p.skip(due.skipped);
            }
        }
        let mut tx = shared.tx();
        let mut send_to = None;
        // Bridged: the relay sends; prompts stop, digits cannot interleave with relayed
        // packets' sequence numbers, and the stream is served again only for its next
        // RTCP report, or when the bridge ends (`Cmd::Resume`). Serving 3 000 bridged
        // legs every 20 ms for nothing was 7 % of a core (issue 15).
        tx.deferred = tx.relay.is_some();
        if tx.relay.is_some() {
            voice.play = None;
            if voice.dtmf.take().is_some() {
                self.events
                    .push((shared.clone(), MediaEvent::DtmfFailed(DtmfFailure::Bridged)));
            }
        } else {
            let payload = next_payload(
                voice,
                shared,
                &mut tx,
                due.tick,
                self.tone,
                self.gap_ticks,
                &mut self.events,
            );
            let built = match payload {
                // Held (RFC 3264 §5.1 sendonly/inactive from the peer): state advanced above,
                // but nothing is built, so the sequence shows no false loss on resume.
                _ if !tx.may_send => None,
                Payload::None => None,
                Payload::Audio { frame, marker } => {
                    let pt = tx.pt;
                    tx.stream
                        .build_packet(pt, &frame, due.tick, marker, &mut self.buf)
                        .ok()
                        .map(|()| frame.len())
                }
                Payload::Silence => {
                    let pt = tx.pt;
                    let frame = match tx.codec {
                        Codec::Pcmu => &self.silence[0],
                        Codec::Pcma => &self.silence[1],
                    };
                    tx.stream
                        .build_packet(pt, frame, due.tick, false, &mut self.buf)
                        .ok()
                        .map(|()| frame.len())
                }
                Payload::Event(ev) => tx.te_pt.and_then(|pt| {
                    tx.stream
                        .build_event_packet(
                            pt,
                            &ev.payload,
                            due.tick,
                            ev.timestamp,
                            ev.marker,
                            &mut self.buf,
                        )
                        .ok()
                        .map(|()| ev.payload.len())
                }),
            };
            // SRTP (RFC 3711 §3.3) last, on the finished packet, under the same lock
            // as the relay's so the two never interleave in one context.
            let built = match (built, tx.srtp.as_mut()) {
                (Some(len), Some(srtp)) => srtp.protect_rtp(&mut self.buf).ok().map(|()| len),
                (built, _) => built,
            };
            if let Some(len) = built {
                tx.count_sent(len);
                send_to = Some(tx.dest);
            }
        }
        let mut rtcp_to = None;
        if due.ideal >= *next_rtcp {
            *next_rtcp += rtcp::report_delay(self.rtcp_interval, false, &mut rand::rng());
            if !tx.rtcp_dest.ip().is_unspecified() && tx.rtcp_dest.port() != 0 {
                self.rtcp_buf.clear();
                let block = shared.rx().report_block(Instant::now());
                write_report(
                    &tx,
                    due.tick,
                    &self.cname,
                    block.as_ref(),
                    &mut self.rtcp_buf,
                );
                // SRTCP (RFC 3711 §3.4): RTCP is protected with the same master key.
                let ok = tx
                    .srtp
                    .as_mut()
                    .is_none_or(|s| s.protect_rtcp(&mut self.rtcp_buf).is_ok());
                if ok {
                    rtcp_to = Some(tx.rtcp_dest);
                }
            }
        }
        let defer_to = tx.deferred.then_some(*next_rtcp);
        drop(tx);
        if let Some(dest) = send_to {
            if shared.send_rtp(&self.buf, dest) {
                MediaStats::bump(&self.stats.packets_sent);
            }
            let late = Instant::now().saturating_duration_since(due.ideal);
            self.stats.record_lateness(late);
            if late > self.late {
                MediaStats::bump(&self.stats.late_sends);
            }
        }
        if let Some(dest) = rtcp_to {
            shared.send_rtcp(&self.rtcp_buf, dest);
        }
        if let Some(until) = defer_to {
            self.pacer.defer(due.stream, until);
        }
    }
}

/// Decide what this tick carries and advance the playback/DTMF state. Held sessions advance
/// too (a prompt keeps time and finishes), they just do not send.
fn next_payload(
    s: &mut Voice,
    shared: &Arc<Shared>,
    tx: &mut super::shared::Tx,
    tick: u64,
    tone: Duration,
    gap_ticks: u64,
    events: &mut Vec<(Arc<Shared>, MediaEvent)>,
) -> Payload {
    if let Some(job) = s.dtmf.as_mut() {
        if job.wait > 0 {
            job.wait -= 1;
        } else {
            if job.tone.is_none() {
                match job.digits.pop_front() {
                    Some(d) => {
                        // RFC 4733 §2.5.1.2: the event timestamp is the start of the tone,
                        // on the same timeline as the audio.
                        let mut spec = DtmfToneSpec::new(d, tx.ts_for_tick(tick));
                        spec.duration = tone;
                        spec.interval = FRAME_DURATION;
                        job.tone = Some(Rfc4733Encoder::new(spec));
                    }
                    None => {
                        s.dtmf = None;
                        events.push((shared.clone(), MediaEvent::DtmfSent));
                        return audio_payload(s, shared, tx, events);
                    }
                }
            }
            if let Some(ev) = job.tone.as_mut().and_then(Iterator::next) {
                // The encoder is a few words; peeking through a copy finds its last packet.
                let last = job.tone.as_ref().is_none_or(|t| t.clone().next().is_none());
                if last {
                    job.tone = None;
                    job.wait = gap_ticks;
                    if job.digits.is_empty() {
                        s.dtmf = None;
                        events.push((shared.clone(), MediaEvent::DtmfSent));
                    }
                }
                return Payload::Event(ev);
            }
            job.tone = None;
        }
    }
    audio_payload(s, shared, tx, events)
}

fn audio_payload(
    s: &mut Voice,
    shared: &Arc<Shared>,
    tx: &super::shared::Tx,
    events: &mut Vec<(Arc<Shared>, MediaEvent)>,
) -> Payload {
    if let Some(p) = s.play.as_mut() {
        let (frame, finished) = p.tick(tx.codec);
        if finished {
            let id = p.id;
            s.play = None;
            events.push((shared.clone(), MediaEvent::PlaybackFinished(id)));
        }
        if let Some((frame, marker)) = frame {
            return Payload::Audio { frame, marker };
        }
    }
    if s.silence {
        Payload::Silence
    } else {
        Payload::None
    }
}

/// SR once we have sent, else an RR (RFC 3550 §6.4), each with the report block about what
/// we receive when there is a source; then the SDES CNAME every compound packet needs (§6.1).
fn write_report(
    tx: &super::shared::Tx,
    tick: u64,
    cname: &str,
    block: Option<&ReportBlock>,
    out: &mut Vec<u8>,
) {
    let ssrc = tx.stream.ssrc();
    if tx.packets > 0 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ntp = NtpTime::from_unix(now);
        let ts = tx.ts_for_tick(tick);
        rtcp::write_sender_report(ssrc, ntp, ts, tx.packets, tx.octets, block, out);
    } else {
        rtcp::write_receiver_report(ssrc, block, out);
    }
    rtcp::write_sdes_cname(ssrc, cname, out);
}

/// Whole packet times in `d`, rounded up.
fn ticks(d: Duration) -> u64 {
    let n = d.as_nanos().div_ceil(FRAME_DURATION.as_nanos());
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod playback_tests {
    use super::*;

    fn playback(frames: usize) -> Playback {
        let pcm = vec![0i16; 160 * frames];
        Playback {
            id: 7,
            clips: vec![Arc::new(Prompt::from_pcm("tone", &pcm))],
            clip: 0,
            frame: 0,
            started: false,
        }
    }

    #[test]
    fn the_last_frame_ends_the_playback() {
        let mut p = playback(2);
        assert!(!p.tick(Codec::Pcmu).1);
        let (frame, finished) = p.tick(Codec::Pcmu);
        assert!(frame.is_some() && finished);
    }

    /// A stall that skips the rest of a prompt (pacing thread late by more
    /// than its last frames) still ends it: the log-in menu waits for
    /// `PlaybackFinished` before hanging up, and without it the call stayed
    /// up in silence until the caller left (issue 12, 1 000 log-ins at 20/s
    /// on a busy box).
    #[test]
    fn a_stall_that_skips_the_rest_still_ends_the_playback() {
        let mut p = playback(3);
        assert!(!p.tick(Codec::Pcmu).1);
        p.skip(5);
        assert_eq!(p.tick(Codec::Pcmu), (None, true));
    }
}

#[cfg(test)]
mod wake_tests {
    use super::*;

    #[test]
    fn only_a_command_due_before_the_wake_up_wakes_the_thread() {
        let epoch = Instant::now();
        let wake = WakeAt::new(epoch);
        let at = epoch + Duration::from_millis(20);
        // Awake: it reads its commands before it sleeps again.
        assert!(!wake.must_wake_for(epoch));
        wake.sleeping_until(at);
        assert!(wake.must_wake_for(at - Duration::from_millis(1)));
        assert!(!wake.must_wake_for(at));
        assert!(!wake.must_wake_for(at + Duration::from_millis(1)));
        // Due before the epoch (a clock read earlier): as soon as possible.
        assert!(wake.must_wake_for(epoch.checked_sub(Duration::from_millis(1)).unwrap_or(epoch)));
        wake.awake();
        assert!(!wake.must_wake_for(epoch));
    }

    /// The handshake as the pacing thread and a sender run it, 200 times: every
    /// command is read without the sleeper's 30 s timeout running out, whichever
    /// side gets there first.
    #[test]
    fn no_command_is_left_waiting_for_a_far_wake_up() {
        let wake = Arc::new(WakeAt::new(Instant::now()));
        let (tx, rx) = std::sync::mpsc::sync_channel::<u32>(1);
        let far = Duration::from_secs(30);
        let w = wake.clone();
        let sleeper = std::thread::spawn(move || {
            let mut timed_out = 0;
            for expected in 0..200u32 {
                loop {
                    w.sleeping_until(Instant::now() + far);
                    if let Ok(n) = rx.try_recv() {
                        w.awake();
                        assert_eq!(n, expected);
                        break;
                    }
                    let before = Instant::now();
                    std::thread::park_timeout(far);
                    w.awake();
                    if before.elapsed() >= far {
                        timed_out += 1;
                    }
                    if let Ok(n) = rx.try_recv() {
                        assert_eq!(n, expected);
                        break;
                    }
                }
            }
            timed_out
        });
        for n in 0..200 {
            tx.send(n).unwrap();
            if wake.must_wake_for(Instant::now()) {
                sleeper.thread().unpark();
            }
        }
        assert_eq!(sleeper.join().unwrap(), 0);
    }
}
