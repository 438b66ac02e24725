//! Sans-IO RTP pacing schedule for many streams in one loop.
//!
//! Every stream has an ideal schedule `start + tick * period`. The loop sleeps until
//! [`Pacer::deadline`], then drains [`Pacer::poll_due`] and sends one packet per [`Due`].
//! RTP timestamps must be derived from `Due::tick` (e.g. `ts0 + tick * 160`), never from the
//! wake-up time: ticks are computed from the start instant with exact integer arithmetic, so
//! there is no drift however long a call lasts or however late the loop wakes.
//!
//! A min-heap keyed by each stream's next ideal instant gives O(log n) per packet. Removal
//! is lazy (a generation check when an entry surfaces); the heap top is kept live after every
//! mutation so `deadline()` is exact.
//!
//! **Late wake-ups.** If the loop wakes up to [`DEFAULT_MAX_CATCH_UP`] periods late, the
//! missed ticks are served back to back (a small burst a receiver's jitter buffer absorbs). If
//! it wakes later than that (a stall: VM steal, swapped page, overloaded core), the missed
//! ticks are skipped: one `Due` for the current tick, with `skipped` saying how many were
//! dropped. Bursting a long backlog would flood the peer's jitter buffer, which then either
//! drops it anyway or grows and adds that latency to the rest of the call; skipping looks like
//! ordinary packet loss to the peer, keeps the timestamp timeline (timestamps still advance by
//! the skipped ticks) and keeps audio in step with wall-clock time. The caller decides whether
//! a prompt's read position also jumps by `skipped` frames.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

/// How many periods late the loop may wake before missed ticks are skipped instead of sent.
pub const DEFAULT_MAX_CATCH_UP: u64 = 3;

/// Identifies a stream to the pacer (the shell's handle for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// A stream whose packet is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub stream: StreamId,
    /// Periods since the stream's start; derive the RTP timestamp from this.
    pub tick: u64,
    /// When this tick should ideally have been sent (for lateness metrics).
    pub ideal: Instant,
    /// Ticks dropped just before this one because the loop woke too late (usually 0).
    pub skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    // Field order is the heap order: earliest ideal first, ties broken deterministically.
    ideal: Instant,
    stream: StreamId,
    tick: u64,
    generation: u64,
}

#[derive(Debug, Clone, Copy)]
struct StreamState {
    start: Instant,
    generation: u64,
}

/// The pacing schedule.
#[derive(Debug)]
pub struct Pacer {
    period: Duration,
    max_catch_up: u64,
    heap: BinaryHeap<Reverse<Entry>>,
    streams: HashMap<StreamId, StreamState>,
    next_generation: u64,
}

impl Pacer {
    /// `period` is the packet time (20 ms for G.711 at 8 kHz). A zero period is raised to
    /// 1 ms so a bad configuration cannot spin the loop.
    pub fn new(period: Duration) -> Self {
        Pacer {
            period: period.max(Duration::from_millis(1)),
            max_catch_up: DEFAULT_MAX_CATCH_UP,
            heap: BinaryHeap::new(),
            streams: HashMap::new(),
            next_generation: 0,
        }
    }

    /// Override [`DEFAULT_MAX_CATCH_UP`] (0 = never burst, always jump to the current tick).
    pub fn with_max_catch_up(mut self, periods: u64) -> Self {
        self.max_catch_up = periods;
        self
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Schedule `stream` with tick 0 due at `start`. Adding an existing stream restarts it.
    pub fn add(&mut self, stream: StreamId, start: Instant) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.streams
            .insert(stream, StreamState { start, generation });
        self.heap.push(Reverse(Entry {
            ideal: start,
            stream,
            tick: 0,
            generation,
        }));
        self.purge_stale_top();
    }

    /// Stop pacing `stream`. Returns whether it was scheduled.
    pub fn remove(&mut self, stream: StreamId) -> bool {
        let had = self.streams.remove(&stream).is_some();
        self.purge_stale_top();
        had
    }

    pub fn contains(&self, stream: StreamId) -> bool {
        self.streams.contains_key(&stream)
    }

    /// Number of streams scheduled.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The earliest ideal send time of any stream.
    pub fn deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.ideal)
    }

    /// The next stream due at or before `now`; call until `None` after every wake-up.
    pub fn poll_due(&mut self, now: Instant) -> Option<Due> {
        loop {
            let Reverse(top) = *self.heap.peek()?;
            if top.ideal > now {
                return None;
            }
            self.heap.pop();
            let Some(state) = self.live(&top) else {
                continue;
            };
            let mut tick = top.tick;
            let mut ideal = top.ideal;
            let mut skipped = 0;
            let late = now.saturating_duration_since(top.ideal);
            if late > self.period.saturating_mul(clamp_u32(self.max_catch_up)) {
                // Stalled: jump to the latest tick whose ideal time has passed.
                let current = ticks_in(now.saturating_duration_since(state.start), self.period);
                if current > tick {
                    if let Some(t) = ideal_at(state.start, self.period, current) {
                        skipped = current - tick;
                        tick = current;
                        ideal = t;
                    }
                }
            }
            match ideal_at(state.start, self.period, tick + 1) {
                Some(next) => self.heap.push(Reverse(Entry {
                    ideal: next,
                    tick: tick + 1,
                    ..top
                })),
                // Past the end of Instant's range (centuries away): the stream just stops.
                None => {
                    self.streams.remove(&top.stream);
                }
            }
            self.purge_stale_top();
            return Some(Due {
                stream: top.stream,
                tick,
                ideal,
                skipped,
            });
        }
    }

    fn live(&self, e: &Entry) -> Option<StreamState> {
        self.streams
            .get(&e.stream)
            .filter(|s| s.generation == e.generation)
            .copied()
    }

    /// Keep the heap top a live entry so `deadline()` never reports a removed stream.
    fn purge_stale_top(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.live(top).is_some() {
                break;
            }
            self.heap.pop();
        }
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// `start + period * tick`, exactly (nanosecond integer arithmetic, no accumulation).
fn ideal_at(start: Instant, period: Duration, tick: u64) -> Option<Instant> {
    let nanos = period.as_nanos().checked_mul(u128::from(tick))?;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    let sub = (nanos % 1_000_000_000) as u32;
    start.checked_add(Duration::new(secs, sub))
}

/// How many whole periods fit in `elapsed`.
fn ticks_in(elapsed: Duration, period: Duration) -> u64 {
    let n = elapsed.as_nanos() / period.as_nanos().max(1);
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(20);
    const MS: Duration = Duration::from_millis(1);

    fn drain(p: &mut Pacer, now: Instant) -> Vec<Due> {
        std::iter::from_fn(|| p.poll_due(now)).collect()
    }

    #[test]
    fn empty_pacer_has_no_deadline() {
        let mut p = Pacer::new(P);
        assert_eq!(p.deadline(), None);
        assert_eq!(p.poll_due(Instant::now()), None);
        assert!(p.is_empty());
    }

    #[test]
    fn three_staggered_streams_and_removal() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        let (a, b, c) = (StreamId(1), StreamId(2), StreamId(3));
        p.add(a, t0);
        p.add(b, t0 + 7 * MS);
        p.add(c, t0 + 13 * MS);
        assert_eq!(p.len(), 3);
        assert_eq!(p.deadline(), Some(t0));
        // Nothing is due a hair before the deadline.
        assert_eq!(p.poll_due(t0 - MS), None);

        let mut order = Vec::new();
        let mut now = t0;
        while now < t0 + 60 * MS {
            for d in drain(&mut p, now) {
                assert_eq!(
                    d.ideal, now,
                    "woken exactly at the deadline, never early or late"
                );
                assert_eq!(d.skipped, 0);
                order.push((d.stream.0, d.tick));
            }
            now = p.deadline().unwrap();
        }
        assert_eq!(
            order,
            [
                (1, 0),
                (2, 0),
                (3, 0),
                (1, 1),
                (2, 1),
                (3, 1),
                (1, 2),
                (2, 2),
                (3, 2)
            ]
        );

        // Remove b: its pending entry must not surface, and the deadline skips it.
        assert!(p.remove(b));
        assert!(!p.remove(b));
        assert_eq!(p.deadline(), Some(t0 + 60 * MS));
        let got: Vec<_> = drain(&mut p, t0 + 79 * MS)
            .iter()
            .map(|d| (d.stream.0, d.tick))
            .collect();
        assert_eq!(got, [(1, 3), (3, 3)]);
        assert_eq!(p.deadline(), Some(t0 + 80 * MS));

        // Re-adding b restarts it at tick 0, and no stale entry of the old b is served.
        p.add(b, t0 + 85 * MS);
        let got: Vec<_> = drain(&mut p, t0 + 99 * MS)
            .iter()
            .map(|d| (d.stream.0, d.tick))
            .collect();
        assert_eq!(got, [(1, 4), (2, 0), (3, 4)]);
    }

    #[test]
    fn removing_every_stream_clears_the_deadline() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        p.add(StreamId(1), t0);
        p.add(StreamId(2), t0 + MS);
        p.remove(StreamId(1));
        assert_eq!(p.deadline(), Some(t0 + MS));
        p.remove(StreamId(2));
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn no_drift_after_ten_hours_with_jittery_wakeups() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        p.add(StreamId(7), t0 + 3 * MS);
        p.add(StreamId(8), t0 + 11 * MS);
        let ten_hours = Duration::from_secs(10 * 3600);
        let mut last = [None, None];
        // A wake-up lateness pattern of 0-2.9 ms, like a busy tokio timer.
        let mut jitter = 0u32;
        while let Some(deadline) = p.deadline() {
            if deadline > t0 + ten_hours {
                break;
            }
            jitter = (jitter + 7) % 30;
            let now = deadline + Duration::from_micros(u64::from(jitter) * 100);
            for d in drain(&mut p, now) {
                assert_eq!(d.skipped, 0);
                let i = (d.stream.0 - 7) as usize;
                if let Some(prev) = last[i] {
                    assert_eq!(d.tick, prev + 1, "contiguous ticks");
                }
                last[i] = Some(d.tick);
                let start = if i == 0 { t0 + 3 * MS } else { t0 + 11 * MS };
                assert_eq!(d.ideal, start + P * d.tick as u32);
            }
        }
        // 10 h / 20 ms = 1.8 M packets each; the ideal of the last one is exact to the ns.
        assert_eq!(last, [Some(1_799_999), Some(1_799_999)]);
        assert_eq!(p.deadline(), Some(t0 + 3 * MS + ten_hours));
    }

    #[test]
    fn slightly_late_wakeup_catches_up_in_order() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        p.add(StreamId(1), t0);
        assert_eq!(drain(&mut p, t0).len(), 1);
        // Woken 2.5 periods late (within the catch-up limit): ticks 1, 2, 3 back to back.
        let got = drain(&mut p, t0 + 70 * MS);
        let ticks: Vec<_> = got.iter().map(|d| (d.tick, d.skipped)).collect();
        assert_eq!(ticks, [(1, 0), (2, 0), (3, 0)]);
        assert_eq!(p.deadline(), Some(t0 + 80 * MS));
    }

    #[test]
    fn very_late_wakeup_skips_instead_of_bursting() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        p.add(StreamId(1), t0);
        p.add(StreamId(2), t0 + 5 * MS);
        drain(&mut p, t0 + 5 * MS);
        // A 1-second stall: tick 1 was due at 20 ms; now is 1005 ms, the current tick is 50.
        let got = drain(&mut p, t0 + 1005 * MS);
        assert_eq!(
            got,
            [
                Due {
                    stream: StreamId(1),
                    tick: 50,
                    ideal: t0 + 1000 * MS,
                    skipped: 49
                },
                Due {
                    stream: StreamId(2),
                    tick: 50,
                    ideal: t0 + 1005 * MS,
                    skipped: 49
                },
            ]
        );
        // Back on the ideal grid afterwards.
        assert_eq!(p.deadline(), Some(t0 + 1020 * MS));
    }

    #[test]
    fn zero_catch_up_always_jumps() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P).with_max_catch_up(0);
        p.add(StreamId(1), t0);
        drain(&mut p, t0);
        // 1 ms late on tick 1: within the same period, nothing to skip.
        assert_eq!(drain(&mut p, t0 + 21 * MS)[0].skipped, 0);
        // 45 ms late on tick 2 (due 40): the current tick is 4.
        let d = drain(&mut p, t0 + 85 * MS);
        assert_eq!((d.len(), d[0].tick, d[0].skipped), (1, 4, 2));
    }

    #[test]
    fn zero_period_is_raised() {
        assert_eq!(Pacer::new(Duration::ZERO).period(), MS);
    }

    #[test]
    fn ideal_at_is_exact_for_huge_ticks() {
        let t0 = Instant::now();
        // 2^33 ticks of 20 ms ≈ 5.4 years: beyond u32 multipliers, still exact.
        let t = ideal_at(t0, P, 1 << 33).unwrap();
        assert_eq!(t - t0, Duration::from_millis(20 * (1u64 << 33)));
        assert_eq!(ticks_in(Duration::from_millis(1005), P), 50);
    }
}
