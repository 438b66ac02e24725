//! Whether the store takes writes, and when to say so in the log.
//!
//! A full disk or a file the switch may not write fails every write of
//! every call while it lasts: one log line per failed write would flood the
//! log (often on that same full disk) and bury the one fact an operator
//! needs. This machine turns failures into one report per interval, with
//! the number of failed writes since the last one, and one report when
//! writes succeed again. Sans-IO: the shell passes `now` and logs the
//! reports ([`super::sqlite::SqliteStore`] does).
//!
//! A disk that is only just full flaps: in WAL mode a write may still fit
//! in log pages already allocated while the next one needs a new page
//! (seen with `bench/store_fault.sh`: fail, succeed 5 ms later, fail 60 ms
//! later). A success counts as recovery only once `SETTLE` has passed since
//! the last failure; before that it is part of the same fault.

use std::time::{Duration, Instant};

/// How often a lasting write failure is reported again.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How long after the last failure a success means the fault has gone.
pub const SETTLE: Duration = Duration::from_secs(1);

/// What the shell should log, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteReport {
    /// The first failed write of a fault.
    Failing,
    /// Writes still fail: `failures` failed writes since the last report.
    StillFailing { failures: u64, for_: Duration },
    /// A write succeeded after `failures` failed ones over `for_`.
    Recovered { failures: u64, for_: Duration },
}

#[derive(Debug)]
pub struct WriteHealth {
    every: Duration,
    settle: Duration,
    /// Set while writes fail.
    failing: Option<Failing>,
}

#[derive(Debug, Clone, Copy)]
struct Failing {
    since: Instant,
    last_failure: Instant,
    reported: Instant,
    /// Failed writes since `reported`.
    unreported: u64,
    total: u64,
}

impl Default for WriteHealth {
    fn default() -> Self {
        WriteHealth::new(REPORT_EVERY, SETTLE)
    }
}

impl WriteHealth {
    pub fn new(every: Duration, settle: Duration) -> Self {
        WriteHealth {
            every,
            settle,
            failing: None,
        }
    }

    /// True from a failed write until a write succeeds `settle` after the
    /// last failure.
    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// A write failed because the store cannot write (full, read-only, I/O).
    pub fn failed(&mut self, now: Instant) -> Option<WriteReport> {
        let Some(f) = self.failing.as_mut() else {
            self.failing = Some(Failing {
                since: now,
                last_failure: now,
                reported: now,
                unreported: 0,
                total: 1,
            });
            return Some(WriteReport::Failing);
        };
        f.last_failure = now;
        f.unreported = f.unreported.saturating_add(1);
        f.total = f.total.saturating_add(1);
        if now.saturating_duration_since(f.reported) < self.every {
            return None;
        }
        let report = WriteReport::StillFailing {
            failures: f.unreported,
            for_: now.saturating_duration_since(f.since),
        };
        f.reported = now;
        f.unreported = 0;
        Some(report)
    }

    /// A write succeeded.
    pub fn succeeded(&mut self, now: Instant) -> Option<WriteReport> {
        let f = self.failing?;
        if now.saturating_duration_since(f.last_failure) < self.settle {
            return None;
        }
        self.failing = None;
        Some(WriteReport::Recovered {
            failures: f.total,
            for_: now.saturating_duration_since(f.since),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_failure_is_reported_once_per_interval_with_its_count() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut h = WriteHealth::new(s(10), s(1));
        assert!(!h.is_failing());
        assert_eq!(h.failed(t0), Some(WriteReport::Failing));
        assert!(h.is_failing());
        // Hundreds of failed writes inside the interval: silent.
        for i in 0..500u64 {
            assert_eq!(h.failed(t0 + Duration::from_millis(i * 19)), None);
        }
        assert_eq!(
            h.failed(t0 + s(10)),
            Some(WriteReport::StillFailing {
                failures: 501,
                for_: s(10)
            })
        );
        assert_eq!(h.failed(t0 + s(15)), None);
        assert_eq!(
            h.failed(t0 + s(21)),
            Some(WriteReport::StillFailing {
                failures: 2,
                for_: s(21)
            })
        );
        assert_eq!(
            h.succeeded(t0 + s(30)),
            Some(WriteReport::Recovered {
                failures: 504,
                for_: s(30)
            })
        );
        assert!(!h.is_failing());
    }

    #[test]
    fn success_says_nothing_unless_writes_were_failing() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut h = WriteHealth::new(s(10), s(1));
        assert_eq!(h.succeeded(t0), None);
        assert_eq!(h.failed(t0), Some(WriteReport::Failing));
        assert!(h.succeeded(t0 + s(2)).is_some());
        assert_eq!(h.succeeded(t0 + s(2)), None);
        // A new fault is a new first report, whatever the interval.
        assert_eq!(h.failed(t0 + s(3)), Some(WriteReport::Failing));
    }

    #[test]
    fn a_disk_that_flaps_is_one_fault_until_writes_succeed_for_a_while() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut h = WriteHealth::new(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(h.failed(t0), Some(WriteReport::Failing));
        // Fail, succeed 5 ms later, fail again: silent, still failing.
        for i in 1..100u64 {
            assert_eq!(h.succeeded(t0 + ms(i * 60 + 5)), None);
            assert_eq!(h.failed(t0 + ms(i * 60 + 30)), None);
            assert!(h.is_failing());
        }
        // A success a second after the last failure ends it, once.
        let last = t0 + ms(99 * 60 + 30);
        assert_eq!(
            h.succeeded(last + ms(1000)),
            Some(WriteReport::Recovered {
                failures: 100,
                for_: last + ms(1000) - t0
            })
        );
        assert!(!h.is_failing());
    }
}
