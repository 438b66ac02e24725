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
//! **Deferred streams.** A stream with nothing to send for a while (a bridged leg: its relay
//! sends, and only its RTCP reports are the shell's) is [deferred](Pacer::defer) to a later
//! tick and [resumed](Pacer::resume) early when something changes. Each stream expects one
//! tick next; a heap entry for any other tick is stale and dropped when it surfaces, as a
//! removed stream's are.
//!
//! **Storage.** The streams live in a slab, each beside the shell's own state for it (`T`:
//! the playback, the socket), and a heap entry names its slot. Serving a packet is then two
//! indexed loads into one slot, not hash probes: at 150 000 packets a second the pacing
//! thread's user time was mostly the cache misses of a `HashMap` lookup per packet in the
//! pacer and another in the shell (docs/performance.md, issue 15).
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
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// How many periods late the loop may wake before missed ticks are skipped instead of sent.
pub const DEFAULT_MAX_CATCH_UP: u64 = 3;

/// Slots kept when the last stream goes: more room than this is given back.
const RELEASE_ABOVE: usize = 64;

/// A stream's handle, returned by [`Pacer::add`]. It names one slot and one life of it: once
/// the stream is removed the key is dead for good, even after the slot is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    slot: usize,
    generation: u64,
}

/// A stream whose packet is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub stream: StreamKey,
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
    key: StreamKey,
    tick: u64,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u64,
    live: Option<Live<T>>,
}

/// A scheduled stream.
#[derive(Debug)]
struct Live<T> {
    start: Instant,
    /// The tick the stream is served next: its one heap entry that counts.
    next_tick: u64,
    state: T,
}

/// The pacing schedule, holding each stream's state `T` for the shell.
#[derive(Debug)]
pub struct Pacer<T> {
    period: Duration,
    max_catch_up: u64,
    heap: BinaryHeap<Reverse<Entry>>,
    slots: Vec<Slot<T>>,
    /// Slots not in use; every other slot holds a live stream.
    free: Vec<usize>,
    next_generation: u64,
}

impl<T> Pacer<T> {
    /// `period` is the packet time (20 ms for G.711 at 8 kHz). A zero period is raised to
    /// 1 ms so a bad configuration cannot spin the loop.
    pub fn new(period: Duration) -> Self {
        Pacer {
            period: period.max(Duration::from_millis(1)),
            max_catch_up: DEFAULT_MAX_CATCH_UP,
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
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

    /// Schedule a stream with tick 0 due at `start`, keeping `state` for it.
    pub fn add(&mut self, start: Instant, state: T) -> StreamKey {
        let generation = self.next_generation;
        self.next_generation += 1;
        let live = Some(Live {
            start,
            next_tick: 0,
            state,
        });
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    *s = Slot { generation, live };
                }
                slot
            }
            None => {
                self.slots.push(Slot { generation, live });
                self.slots.len() - 1
            }
        };
        let key = StreamKey { slot, generation };
        self.heap.push(Reverse(Entry {
            ideal: start,
            key,
            tick: 0,
        }));
        self.purge_stale_top();
        key
    }

    /// Stop pacing the stream, handing its state back. `None` if it was not scheduled.
    pub fn remove(&mut self, key: StreamKey) -> Option<T> {
        let slot = self.slot_mut(key)?;
        let Live { state, .. } = slot.live.take()?;
        self.free.push(key.slot);
        if self.is_empty() && self.slots.capacity() > RELEASE_ABOVE {
            // The last stream of a peak went: give its room back (RSS after
            // a run, issue 15). Generations keep counting, so every key
            // handed out before stays dead in the new slots.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.heap = BinaryHeap::new();
        }
        self.purge_stale_top();
        Some(state)
    }

    pub fn contains(&self, key: StreamKey) -> bool {
        self.get(key).is_some()
    }

    /// The state of a scheduled stream.
    pub fn get(&self, key: StreamKey) -> Option<&T> {
        self.live(key).map(|l| &l.state)
    }

    pub fn get_mut(&mut self, key: StreamKey) -> Option<&mut T> {
        self.live_mut(key).map(|l| &mut l.state)
    }

    /// Serve the stream next at its first tick at or after `until` instead of at its next
    /// one. Ticks in between are not served and not counted as skipped: the shell has
    /// nothing to send in them. A no-op when the stream is due by `until` anyway.
    pub fn defer(&mut self, key: StreamKey, until: Instant) {
        let period = self.period;
        let Some(live) = self.live_mut(key) else {
            return;
        };
        let Some(tick) = ticks_from(live.start, until, period) else {
            return;
        };
        if tick > live.next_tick {
            self.reschedule(key, tick);
        }
    }

    /// Serve a deferred stream again from its first tick after `now`. A no-op for a
    /// stream that is not deferred past that tick.
    pub fn resume(&mut self, key: StreamKey, now: Instant) {
        let Some(live) = self.live(key) else {
            return;
        };
        // The tick after the current one: every tick whose ideal time has passed
        // was either served or deferred, so none is served twice or late.
        let tick =
            ticks_in(now.saturating_duration_since(live.start), self.period).saturating_add(1);
        if tick < live.next_tick {
            self.reschedule(key, tick);
        }
    }

    /// The stream's next tick is `tick`; the entry queued for its old one turns stale.
    fn reschedule(&mut self, key: StreamKey, tick: u64) {
        let period = self.period;
        let Some(live) = self.live_mut(key) else {
            return;
        };
        let Some(ideal) = ideal_at(live.start, period, tick) else {
            return;
        };
        live.next_tick = tick;
        self.heap.push(Reverse(Entry { ideal, key, tick }));
        self.purge_stale_top();
    }

    /// Number of streams scheduled.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            let (period, max_catch_up) = (self.period, self.max_catch_up);
            // A removed stream's entry, or one for a tick the stream was deferred past.
            let Some(live) = self.live_mut(top.key).filter(|l| l.next_tick == top.tick) else {
                continue;
            };
            let start = live.start;
            let mut tick = top.tick;
            let mut ideal = top.ideal;
            let mut skipped = 0;
            let late = now.saturating_duration_since(top.ideal);
            if late > period.saturating_mul(clamp_u32(max_catch_up)) {
                // Stalled: jump to the latest tick whose ideal time has passed.
                let current = ticks_in(now.saturating_duration_since(start), period);
                if current > tick {
                    if let Some(t) = ideal_at(start, period, current) {
                        skipped = current - tick;
                        tick = current;
                        ideal = t;
                    }
                }
            }
            match ideal_at(start, period, tick + 1) {
                Some(next) => {
                    live.next_tick = tick + 1;
                    self.heap.push(Reverse(Entry {
                        ideal: next,
                        tick: tick + 1,
                        ..top
                    }));
                }
                // Past the end of Instant's range (centuries away): the stream is served this
                // last time and then dropped, state and all.
                None => {
                    self.remove(top.key);
                }
            }
            self.warm_after_next();
            self.purge_stale_top();
            return Some(Due {
                stream: top.key,
                tick,
                ideal,
                skipped,
            });
        }
    }

    /// The state of the stream due next (the heap top), for the shell to warm
    /// what serving it will touch while it serves the one due now.
    pub fn next_state(&self) -> Option<&T> {
        let Reverse(top) = self.heap.peek()?;
        self.get(top.key)
    }

    /// Starts loading the slots of the stream after next: it is one of the
    /// top's two children. By the time it reaches the top, a packet later, its
    /// slot is in the cache. With thousands of streams each slot is visited
    /// once a period, long after it left the cache, and these misses were a
    /// large part of the pacing thread's user time (issue 15).
    fn warm_after_next(&self) {
        for Reverse(e) in self.heap.as_slice().iter().skip(1).take(2) {
            if let Some(slot) = self.slots.get(e.key.slot) {
                prefetch(slot);
            }
        }
    }

    /// The key's slot, if the key is of the slot's current life.
    fn slot(&self, key: StreamKey) -> Option<&Slot<T>> {
        self.slots
            .get(key.slot)
            .filter(|s| s.generation == key.generation)
    }

    fn slot_mut(&mut self, key: StreamKey) -> Option<&mut Slot<T>> {
        self.slots
            .get_mut(key.slot)
            .filter(|s| s.generation == key.generation)
    }

    fn live(&self, key: StreamKey) -> Option<&Live<T>> {
        self.slot(key)?.live.as_ref()
    }

    fn live_mut(&mut self, key: StreamKey) -> Option<&mut Live<T>> {
        self.slot_mut(key)?.live.as_mut()
    }

    /// The entry is its stream's next tick: the stream is live and neither deferred nor
    /// resumed since the entry was queued.
    fn is_current(&self, e: &Entry) -> bool {
        self.live(e.key).is_some_and(|l| l.next_tick == e.tick)
    }

    /// Keep the heap top a current entry so `deadline()` never reports a removed or
    /// rescheduled stream.
    fn purge_stale_top(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.is_current(top) {
                break;
            }
            self.heap.pop();
        }
    }
}

/// Asks the CPU to start loading the cache lines of `*p` into its caches. A
/// hint: it reads nothing into the program and cannot fault, so it is free to
/// be wrong; on other architectures it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = (p as *const T).cast::<i8>();
        for offset in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: PREFETCHT0 only hints the cache (Intel SDM vol. 2B,
            // "PREFETCHh"): it dereferences nothing the program sees and does
            // not fault, and every address here is inside `*p`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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

/// The first tick at or after `t` (`None` past the end of the tick count).
fn ticks_from(start: Instant, t: Instant, period: Duration) -> Option<u64> {
    let n = t
        .saturating_duration_since(start)
        .as_nanos()
        .div_ceil(period.as_nanos().max(1));
    u64::try_from(n).ok()
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

    fn drain(p: &mut Pacer<u64>, now: Instant) -> Vec<Due> {
        std::iter::from_fn(|| p.poll_due(now)).collect()
    }

    /// The streams' labels (their state here) and ticks, in the order served.
    fn served(p: &mut Pacer<u64>, now: Instant) -> Vec<(u64, u64)> {
        drain(p, now)
            .iter()
            .map(|d| (p.get(d.stream).copied().unwrap_or(u64::MAX), d.tick))
            .collect()
    }

    /// What the shell warms while it serves a packet is the stream it serves
    /// next, whatever was removed meanwhile.
    #[test]
    fn the_next_state_is_the_stream_served_next() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        p.add(t0, 1);
        let b = p.add(t0 + 5 * MS, 2);
        p.add(t0 + 9 * MS, 3);
        assert_eq!(p.next_state(), Some(&1));
        let now = t0 + 10 * MS;
        assert_eq!(p.poll_due(now).map(|d| d.tick), Some(0));
        assert_eq!(p.next_state(), Some(&2));
        p.remove(b);
        assert_eq!(p.next_state(), Some(&3));
        let d = p.poll_due(now).map(|d| d.stream);
        assert_eq!(d.and_then(|k| p.get(k)), Some(&3));
        // Every stream served this wake-up: next is the first one's next tick.
        assert_eq!(p.poll_due(now), None);
        assert_eq!(p.next_state(), Some(&1));
        assert_eq!(p.deadline(), Some(t0 + P));
        let mut empty: Pacer<u64> = Pacer::new(P);
        assert_eq!(empty.next_state(), None);
        assert_eq!(empty.poll_due(now), None);
    }

    /// A bridged leg is served at its RTCP times only, and again from the next tick
    /// once its bridge ends: never twice for one tick, never a tick it was deferred past.
    #[test]
    fn a_deferred_stream_skips_its_ticks_and_resumes_on_the_next() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        let a = p.add(t0, 1);
        p.add(t0 + 5 * MS, 2);
        assert_eq!(served(&mut p, t0 + 5 * MS), [(1, 0), (2, 0)]);
        // Deferred to 95 ms: its first tick at or after that is 5 (100 ms). The entry
        // queued for its tick 1 (20 ms) is gone from the deadline at once.
        p.defer(a, t0 + 95 * MS);
        assert_eq!(p.deadline(), Some(t0 + 25 * MS));
        // Deferring to before the next tick changes nothing.
        p.defer(a, t0 + 90 * MS);
        let mut got = Vec::new();
        while let Some(d) = p.deadline().filter(|&d| d <= t0 + 105 * MS) {
            for due in drain(&mut p, d) {
                assert_eq!((due.ideal, due.skipped), (d, 0));
                got.push((p.get(due.stream).copied().unwrap_or(0), due.tick));
            }
        }
        assert_eq!(got, [(2, 1), (2, 2), (2, 3), (2, 4), (1, 5), (2, 5)]);

        // Deferred far, then resumed at 130 ms: served from tick 7 (140 ms), the tick
        // after the current one, and its stale entry at tick 50 is not served again.
        p.defer(a, t0 + 1000 * MS);
        p.resume(a, t0 + 130 * MS);
        // Resuming a stream that is not deferred changes nothing.
        p.resume(a, t0 + 130 * MS);
        let mut ticks = Vec::new();
        while let Some(d) = p.deadline().filter(|&d| d <= t0 + 1010 * MS) {
            for due in drain(&mut p, d) {
                if p.get(due.stream) == Some(&1) {
                    ticks.push(due.tick);
                }
            }
        }
        assert_eq!(ticks, (7..=50).collect::<Vec<_>>());

        // Deferred and resumed within one period: the resumed tick is the one already
        // queued, and it is served once.
        let now = t0 + 1010 * MS;
        p.defer(a, now + 200 * MS);
        p.resume(a, now);
        assert_eq!(served(&mut p, t0 + 1040 * MS), [(1, 51), (2, 51), (1, 52)]);
        assert_eq!(p.deadline(), Some(t0 + 1045 * MS));
    }

    #[test]
    fn empty_pacer_has_no_deadline() {
        let mut p: Pacer<u64> = Pacer::new(P);
        assert_eq!(p.deadline(), None);
        assert_eq!(p.poll_due(Instant::now()), None);
        assert!(p.is_empty());
    }

    #[test]
    fn three_staggered_streams_and_removal() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        p.add(t0, 1);
        let b = p.add(t0 + 7 * MS, 2);
        p.add(t0 + 13 * MS, 3);
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
                order.push((p.get(d.stream).copied().unwrap_or(0), d.tick));
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
        assert_eq!(p.remove(b), Some(2));
        assert_eq!(p.remove(b), None);
        assert_eq!(p.len(), 2);
        assert_eq!(p.deadline(), Some(t0 + 60 * MS));
        assert_eq!(served(&mut p, t0 + 79 * MS), [(1, 3), (3, 3)]);
        assert_eq!(p.deadline(), Some(t0 + 80 * MS));

        // A new stream reuses b's slot at tick 0; no stale entry of the old b is served, and
        // b's key stays dead.
        let b2 = p.add(t0 + 85 * MS, 2);
        assert!(!p.contains(b) && p.contains(b2));
        assert_eq!(served(&mut p, t0 + 99 * MS), [(1, 4), (2, 0), (3, 4)]);
    }

    /// Calls come and go all day: a freed slot is taken by the next stream, so the slab stays
    /// as large as the most streams ever paced at once, and a key kept past its stream's end
    /// never reaches the stream now in its slot.
    #[test]
    fn slots_are_reused_and_a_dead_key_stays_dead() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        let mut dead = Vec::new();
        for label in 0..1_000u64 {
            let a = p.add(t0, label);
            let b = p.add(t0 + MS, label + 10_000);
            assert_eq!(p.remove(a), Some(label));
            assert_eq!(p.remove(b), Some(label + 10_000));
            dead.push(a);
        }
        assert!(p.slots.len() <= 2, "{} slots for 2 streams", p.slots.len());
        let live = p.add(t0, 7);
        for key in dead {
            assert_eq!(p.get(key), None);
            assert_eq!(p.remove(key), None);
        }
        assert_eq!(p.get(live), Some(&7));
        // Only the live stream's entries surface; the 2 000 removed ones are skipped lazily.
        assert_eq!(served(&mut p, t0 + 30 * MS), [(7, 0), (7, 1)]);
        assert_eq!(p.deadline(), Some(t0 + 40 * MS));
    }

    #[test]
    fn the_last_stream_of_a_peak_gives_the_room_back_and_old_keys_stay_dead() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        let keys: Vec<_> = (0..1_000u64).map(|i| p.add(t0, i)).collect();
        assert_eq!(served(&mut p, t0).len(), 1_000);
        for &k in &keys[..999] {
            p.remove(k);
        }
        assert!(
            p.slots.capacity() >= 1_000,
            "room kept while a stream is live"
        );
        assert_eq!(p.remove(keys[999]), Some(999));
        assert!(p.slots.capacity() <= RELEASE_ABOVE && p.heap.capacity() <= RELEASE_ABOVE);
        assert_eq!(p.deadline(), None);
        // The new stream takes slot 0 again, with a generation no old key has.
        let live = p.add(t0 + 50 * MS, 7);
        for &k in &keys {
            assert_eq!(p.get(k), None);
            assert_eq!(p.remove(k), None);
        }
        assert_eq!(p.get(live), Some(&7));
        assert_eq!(served(&mut p, t0 + 70 * MS), [(7, 0), (7, 1)]);
    }

    #[test]
    fn removing_every_stream_clears_the_deadline() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        let a = p.add(t0, 1);
        let b = p.add(t0 + MS, 2);
        p.remove(a);
        assert_eq!(p.deadline(), Some(t0 + MS));
        p.remove(b);
        assert_eq!(p.deadline(), None);
        assert!(p.is_empty());
    }

    #[test]
    fn no_drift_after_ten_hours_with_jittery_wakeups() {
        let t0 = Instant::now();
        let mut p = Pacer::new(P);
        p.add(t0 + 3 * MS, 7);
        p.add(t0 + 11 * MS, 8);
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
                let i = usize::from(p.get(d.stream) == Some(&8));
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
        p.add(t0, 1);
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
        let a = p.add(t0, 1);
        let b = p.add(t0 + 5 * MS, 2);
        drain(&mut p, t0 + 5 * MS);
        // A 1-second stall: tick 1 was due at 20 ms; now is 1005 ms, the current tick is 50.
        let got = drain(&mut p, t0 + 1005 * MS);
        assert_eq!(
            got,
            [
                Due {
                    stream: a,
                    tick: 50,
                    ideal: t0 + 1000 * MS,
                    skipped: 49
                },
                Due {
                    stream: b,
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
        p.add(t0, 1);
        drain(&mut p, t0);
        // 1 ms late on tick 1: within the same period, nothing to skip.
        assert_eq!(drain(&mut p, t0 + 21 * MS)[0].skipped, 0);
        // 45 ms late on tick 2 (due 40): the current tick is 4.
        let d = drain(&mut p, t0 + 85 * MS);
        assert_eq!((d.len(), d[0].tick, d[0].skipped), (1, 4, 2));
    }

    #[test]
    fn zero_period_is_raised() {
        assert_eq!(Pacer::<u64>::new(Duration::ZERO).period(), MS);
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
