//! Wall clocks for the presence service: the system clock, and a manual one
//! for tests that must cross an eight-hour window without sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// Where the presence service reads the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Signalled when the clock jumps (a test moved it), so the service
    /// re-reads it at once. `None` for real clocks: the service caps each
    /// sleep, which notices a wall-clock step soon enough.
    fn changes(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// `Utc::now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, and wakes the service when it does.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    changed: Arc<Notify>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(ManualClock {
            now: Mutex::new(start),
            changed: Arc::new(Notify::new()),
        })
    }

    /// Move the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.lock();
        *now += by;
        drop(now);
        // notify_one stores a permit when the service is not waiting yet,
        // so an advance between two waits is not lost.
        self.changed.notify_one();
    }

    /// Jump to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.lock() = t;
        self.changed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic while holding this lock cannot leave the time half-written.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }

    fn changes(&self) -> Option<Arc<Notify>> {
        Some(self.changed.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn manual_clock_moves_and_signals() {
        let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let c = ManualClock::new(t0);
        assert_eq!(c.now(), t0);
        let changes = c.changes().unwrap();
        c.advance(chrono::Duration::hours(8));
        assert_eq!(c.now(), t0 + chrono::Duration::hours(8));
        // The permit was stored although nobody was waiting.
        changes.notified().await;
        c.set(t0);
        assert_eq!(c.now(), t0);
        changes.notified().await;
    }

    #[test]
    fn system_clock_has_no_change_signal() {
        let c = SystemClock;
        assert!(c.changes().is_none());
        let a = c.now();
        assert!(c.now() >= a);
    }
}

/// Wall time that runs `factor` times faster than real time from the moment
/// it is made: for end-to-end tests of the expiry path without waiting hours
/// (`TPSWITCH_CLOCK_SPEED`, never set in production). It nudges the service
/// every 50 ms of real time so a sped-up deadline is noticed promptly.
#[derive(Debug)]
pub struct ScaledClock {
    real_start: std::time::Instant,
    wall_start: DateTime<Utc>,
    factor: f64,
    changed: Arc<Notify>,
}

impl ScaledClock {
    /// Must be called inside a tokio runtime (it spawns the nudging task).
    pub fn new(factor: f64) -> Arc<Self> {
        let clock = Arc::new(ScaledClock {
            real_start: std::time::Instant::now(),
            wall_start: Utc::now(),
            factor: factor.max(1.0),
            changed: Arc::new(Notify::new()),
        });
        let weak = Arc::downgrade(&clock);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(c) => c.changed.notify_one(),
                    None => return,
                }
            }
        });
        clock
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.real_start.elapsed().as_secs_f64() * self.factor;
        self.wall_start + chrono::Duration::milliseconds((real * 1000.0) as i64)
    }

    fn changes(&self) -> Option<Arc<Notify>> {
        Some(self.changed.clone())
    }
}
