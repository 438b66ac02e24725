//! Rate limit for a log line a peer can trigger at will, sans-IO.
//!
//! A scanner or a misconfigured carrier outside `trunk.allow` sends a request
//! per packet, retransmissions included (RFC 3261 §17.1.1.2: an INVITE alone
//! is sent up to 7 times); one WARN per packet would bury everything else.
//! The limiter lets the first packet of a source log at once, then at most
//! one line per source per interval, which carries how many packets were
//! left unlogged since the last line. The caller counts every packet in
//! `/metrics` regardless.
//!
//! Memory is bounded: at most `max_sources` sources are remembered. When the
//! table is full, sources whose interval is over are forgotten first; a new
//! source that still finds no room shares one overflow entry, so a flood
//! from spoofed addresses still logs one line per interval.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Sources remembered at once by default.
pub const DEFAULT_MAX_SOURCES: usize = 1024;

/// Who a line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Addr(IpAddr),
    /// Every source the full table had no room for.
    Others,
}

/// What to do with one packet's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `suppressed` packets from the same source went unlogged
    /// since the previous line.
    Log { source: Source, suppressed: u64 },
    /// Do not log it (it is counted for the next line).
    Suppress,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the last line for this source was logged.
    logged_at: Instant,
    suppressed: u64,
}

pub struct LogLimiter {
    interval: Duration,
    max_sources: usize,
    sources: HashMap<Source, Entry>,
}

impl LogLimiter {
    pub fn new(interval: Duration, max_sources: usize) -> Self {
        LogLimiter {
            interval,
            max_sources: max_sources.max(1),
            sources: HashMap::new(),
        }
    }

    /// One packet from `addr` at `now`.
    pub fn check(&mut self, addr: IpAddr, now: Instant) -> Verdict {
        let mut key = Source::Addr(addr);
        if !self.sources.contains_key(&key) && self.sources.len() >= self.max_sources {
            self.forget_quiet(now);
            if self.sources.len() >= self.max_sources {
                key = Source::Others;
            }
        }
        match self.sources.get_mut(&key) {
            Some(e) if now.saturating_duration_since(e.logged_at) < self.interval => {
                e.suppressed = e.suppressed.saturating_add(1);
                Verdict::Suppress
            }
            Some(e) => {
                let suppressed = std::mem::take(&mut e.suppressed);
                e.logged_at = now;
                Verdict::Log {
                    source: key,
                    suppressed,
                }
            }
            None => {
                self.sources.insert(
                    key,
                    Entry {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Verdict::Log {
                    source: key,
                    suppressed: 0,
                }
            }
        }
    }

    /// Sources remembered now (for tests and bounds).
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Drops sources whose interval is over. Their unlogged count is lost
    /// from the log only (the metric has it); a source that keeps sending
    /// is never quiet long enough to be dropped.
    fn forget_quiet(&mut self, now: Instant) {
        let interval = self.interval;
        self.sources.retain(|k, e| {
            *k == Source::Others || now.saturating_duration_since(e.logged_at) < interval
        });
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Addr(a) => write!(f, "{a}"),
            Source::Others => f.write_str("other sources"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn first_packet_logs_then_one_line_per_interval_with_the_count() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(MIN, 8);
        assert_eq!(
            l.check(ip(1), t0),
            Verdict::Log {
                source: Source::Addr(ip(1)),
                suppressed: 0
            }
        );
        // Retransmissions within the minute: silent.
        for ms in [500, 1000, 2000, 4000, 59_999] {
            assert_eq!(
                l.check(ip(1), t0 + Duration::from_millis(ms)),
                Verdict::Suppress
            );
        }
        assert_eq!(
            l.check(ip(1), t0 + MIN),
            Verdict::Log {
                source: Source::Addr(ip(1)),
                suppressed: 5
            }
        );
        // The count starts again after each line.
        assert_eq!(
            l.check(ip(1), t0 + MIN + MIN),
            Verdict::Log {
                source: Source::Addr(ip(1)),
                suppressed: 0
            }
        );
    }

    #[test]
    fn each_source_has_its_own_interval() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(MIN, 8);
        assert!(matches!(l.check(ip(1), t0), Verdict::Log { .. }));
        assert!(matches!(
            l.check(ip(2), t0 + Duration::from_secs(1)),
            Verdict::Log { .. }
        ));
        assert_eq!(
            l.check(ip(1), t0 + Duration::from_secs(2)),
            Verdict::Suppress
        );
        assert_eq!(
            l.check(ip(2), t0 + Duration::from_secs(2)),
            Verdict::Suppress
        );
    }

    #[test]
    fn a_full_table_forgets_quiet_sources_then_shares_one_entry() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(MIN, 2);
        assert!(matches!(l.check(ip(1), t0), Verdict::Log { .. }));
        assert!(matches!(l.check(ip(2), t0), Verdict::Log { .. }));
        // Full, nobody quiet yet: new sources share the overflow entry.
        assert_eq!(
            l.check(ip(3), t0 + Duration::from_secs(1)),
            Verdict::Log {
                source: Source::Others,
                suppressed: 0
            }
        );
        assert_eq!(
            l.check(ip(4), t0 + Duration::from_secs(2)),
            Verdict::Suppress
        );
        assert!(l.len() <= 3, "bounded: {}", l.len());
        // A minute on, the first two are quiet and make room again.
        assert_eq!(
            l.check(ip(5), t0 + MIN + Duration::from_secs(1)),
            Verdict::Log {
                source: Source::Addr(ip(5)),
                suppressed: 0
            }
        );
        assert!(l.len() <= 3, "bounded: {}", l.len());
    }

    #[test]
    fn a_flood_from_many_sources_stays_bounded() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(MIN, 16);
        let mut lines = 0;
        for i in 0..10_000u32 {
            let addr = IpAddr::from(i.to_be_bytes());
            if matches!(
                l.check(addr, t0 + Duration::from_millis(u64::from(i))),
                Verdict::Log { .. }
            ) {
                lines += 1;
            }
        }
        assert!(l.len() <= 17, "{}", l.len());
        // 16 sources and the overflow entry, each once in the first 10 s.
        assert_eq!(lines, 17);
    }
}
