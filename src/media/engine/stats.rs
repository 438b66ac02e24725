//! Engine-wide counters: plain relaxed atomics, cheap enough to bump per packet from the
//! pacing thread and the receive tasks alike. A metrics exporter reads [`MediaStats::snapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Width of one lateness histogram bucket.
pub const LATENESS_BUCKET: Duration = Duration::from_micros(10);
/// Buckets cover 0-10 ms in 10 µs steps; the last bucket collects everything later.
pub const LATENESS_BUCKETS: usize = 1001;

/// Counters shared by every session of one engine.
#[derive(Debug)]
pub struct MediaStats {
    pub packets_sent: AtomicU64,
    pub packets_received: AtomicU64,
    /// Paced packets sent more than [`super::EngineConfig::late_threshold`] after their ideal time.
    pub late_sends: AtomicU64,
    /// Inbound packets from a source the latch did not accept (see `latch.rs`).
    pub dropped_foreign: AtomicU64,
    /// `send_to` failures, including a full socket buffer (the packet is lost).
    pub send_errors: AtomicU64,
    /// Packets relayed between bridged legs (also counted in `packets_sent`).
    pub relayed: AtomicU64,
    /// Inbound packets that were not RTP we can use (bad header, unknown payload type).
    pub malformed: AtomicU64,
    /// Events lost because the session's event receiver was full or gone.
    pub events_dropped: AtomicU64,
    pub rtcp_sent: AtomicU64,
    pub rtcp_received: AtomicU64,
    /// Pacer ticks skipped after a stall (see `pacer.rs`).
    pub ticks_skipped: AtomicU64,
    /// RTP packets that never arrived (RFC 3550 A.3), added as each session ends.
    pub packets_lost: AtomicU64,
    lateness: Box<[AtomicU64]>,
}

impl Default for MediaStats {
    fn default() -> Self {
        MediaStats {
            packets_sent: AtomicU64::new(0),
            packets_received: AtomicU64::new(0),
            late_sends: AtomicU64::new(0),
            dropped_foreign: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            relayed: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            rtcp_sent: AtomicU64::new(0),
            rtcp_received: AtomicU64::new(0),
            ticks_skipped: AtomicU64::new(0),
            packets_lost: AtomicU64::new(0),
            lateness: (0..LATENESS_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub late_sends: u64,
    pub dropped_foreign: u64,
    pub send_errors: u64,
    pub relayed: u64,
    pub malformed: u64,
    pub events_dropped: u64,
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    pub ticks_skipped: u64,
    pub packets_lost: u64,
}

impl MediaStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Record the lateness of one paced send. Public so that the pacing
    /// bench's bare pacer (no engine, the syscalls alone) reports through
    /// the same histogram as the engine it is the floor for.
    pub fn record_lateness(&self, late: Duration) {
        let i = (late.as_nanos() / LATENESS_BUCKET.as_nanos()) as usize;
        if let Some(b) = self.lateness.get(i.min(LATENESS_BUCKETS - 1)) {
            b.fetch_add(1, Relaxed);
        }
    }

    /// Lateness quantile `q` (0.0-1.0) over all paced sends so far, to bucket precision
    /// (the upper edge of the bucket); `None` before the first send. Values at or past the
    /// last bucket report 10 ms.
    pub fn lateness_quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.lateness.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(LATENESS_BUCKET * (i as u32 + 1));
            }
        }
        Some(LATENESS_BUCKET * LATENESS_BUCKETS as u32)
    }

    /// The lateness histogram as it stands: entry `i` counts sends
    /// `[i, i+1) * LATENESS_BUCKET` late; the last entry collects the rest.
    /// Read by the metrics exporter at each scrape, never per packet.
    pub fn lateness_counts(&self) -> Vec<u64> {
        self.lateness.iter().map(|c| c.load(Relaxed)).collect()
    }

    /// Forget the lateness distribution (e.g. to measure steady state after a warm-up).
    pub fn reset_lateness(&self) {
        for b in self.lateness.iter() {
            b.store(0, Relaxed);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            packets_sent: self.packets_sent.load(Relaxed),
            packets_received: self.packets_received.load(Relaxed),
            late_sends: self.late_sends.load(Relaxed),
            dropped_foreign: self.dropped_foreign.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            relayed: self.relayed.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            events_dropped: self.events_dropped.load(Relaxed),
            rtcp_sent: self.rtcp_sent.load(Relaxed),
            rtcp_received: self.rtcp_received.load(Relaxed),
            ticks_skipped: self.ticks_skipped.load(Relaxed),
            packets_lost: self.packets_lost.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_quantiles_use_bucket_upper_edges() {
        let s = MediaStats::default();
        assert_eq!(s.lateness_quantile(0.5), None);
        for _ in 0..98 {
            s.record_lateness(Duration::from_micros(5));
        }
        s.record_lateness(Duration::from_micros(1234));
        s.record_lateness(Duration::from_secs(3));
        assert_eq!(s.lateness_quantile(0.5), Some(Duration::from_micros(10)));
        assert_eq!(s.lateness_quantile(0.99), Some(Duration::from_micros(1240)));
        assert_eq!(s.lateness_quantile(1.0), Some(Duration::from_micros(10010)));
    }
}
