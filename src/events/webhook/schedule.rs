//! One webhook's deliveries as a sans-IO state machine: a bounded queue of
//! events sent one at a time, in id order (a receiver applying them in
//! order never sees a window end before it began), and after a failure
//! the same event again after an exponentially growing delay, up to a
//! number of attempts, then the next one. The shell feeds it the clock
//! and each outcome; nothing here sleeps or sends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::Event;

/// How long to wait before each retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Before the second attempt; each later wait doubles.
    pub initial: Duration,
    /// No wait is longer than this.
    pub max: Duration,
    /// Attempts per event (the first included) before it is given up.
    pub max_attempts: u32,
}

impl Backoff {
    /// The wait after the `failures`-th failed attempt (1: the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// Send this event now; report how it went with [`Schedule::done`].
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    pub event: Arc<Event>,
    /// 1 for the first try.
    pub attempt: u32,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Anything else: another status, no connection, no answer in time.
    Failed,
}

/// When the schedule next has something to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing until the next push or outcome (an attempt is in flight, or
    /// nothing waits).
    Idle,
    Now,
    At(Instant),
}

/// What [`Schedule::done`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Delivered; the next event (if any) may go at once.
    Delivered,
    /// Tried again at this time.
    RetryAt(Instant),
    /// Failed `attempts` times: dropped, the next event goes at once.
    GaveUp { event: Arc<Event>, attempts: u32 },
}

pub struct Schedule {
    backoff: Backoff,
    capacity: usize,
    queue: VecDeque<Arc<Event>>,
    /// Attempts made for the event at the head of the queue.
    attempts: u32,
    in_flight: bool,
    retry_at: Option<Instant>,
}

impl Schedule {
    /// At most `capacity` events (at least 1) wait, the one in flight
    /// included.
    pub fn new(backoff: Backoff, capacity: usize) -> Schedule {
        Schedule {
            backoff,
            capacity: capacity.max(1),
            queue: VecDeque::new(),
            attempts: 0,
            in_flight: false,
            retry_at: None,
        }
    }

    /// Queue `event`; `false` when the queue is full and it is dropped
    /// (the receiver then has a gap; the events' ids show it where).
    pub fn push(&mut self, event: Arc<Event>) -> bool {
        if self.queue.len() >= self.capacity {
            return false;
        }
        self.queue.push_back(event);
        true
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The event to send at `now`, if one is due and none is in flight.
    pub fn poll_send(&mut self, now: Instant) -> Option<Send> {
        if self.in_flight || self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        let event = self.queue.front()?.clone();
        self.retry_at = None;
        self.in_flight = true;
        self.attempts = self.attempts.saturating_add(1);
        Some(Send {
            event,
            attempt: self.attempts,
        })
    }

    /// How the attempt [`Schedule::poll_send`] gave went, at `now`.
    pub fn done(&mut self, outcome: Outcome, now: Instant) -> Next {
        self.in_flight = false;
        match outcome {
            Outcome::Delivered => {
                self.queue.pop_front();
                self.attempts = 0;
                Next::Delivered
            }
            Outcome::Failed if self.attempts >= self.backoff.max_attempts => {
                let attempts = std::mem::take(&mut self.attempts);
                match self.queue.pop_front() {
                    Some(event) => Next::GaveUp { event, attempts },
                    None => Next::Delivered,
                }
            }
            Outcome::Failed => {
                let at = now + self.backoff.delay(self.attempts);
                self.retry_at = Some(at);
                Next::RetryAt(at)
            }
        }
    }

    /// When to call [`Schedule::poll_send`] next.
    pub fn due(&self) -> Due {
        if self.in_flight || self.queue.is_empty() {
            return Due::Idle;
        }
        match self.retry_at {
            Some(t) => Due::At(t),
            None => Due::Now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Body, EventBus};
    use chrono::Utc;

    fn backoff() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: 4,
        }
    }

    fn events(n: usize) -> Vec<Arc<Event>> {
        let bus = EventBus::new(16, Utc::now());
        (0..n)
            .map(|i| {
                bus.publish(
                    Body::CallBridged {
                        call_id: format!("c{i}"),
                        agent: "a".into(),
                    },
                    Utc::now(),
                )
            })
            .collect()
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = Backoff {
            max_attempts: 100,
            ..backoff()
        };
        let secs: Vec<u64> = (1..=8).map(|f| b.delay(f).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
        // No overflow however many failures.
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }

    /// 500, 500, then 200: three attempts, at 0, +1 s and +1+2 s on a
    /// simulated clock, then the next event at once.
    #[test]
    fn a_failing_event_is_retried_with_back_off_then_the_next_goes() {
        let t0 = Instant::now();
        let mut s = Schedule::new(backoff(), 8);
        let ev = events(2);
        assert!(s.push(ev[0].clone()) && s.push(ev[1].clone()));
        let first = s.poll_send(t0).unwrap();
        assert_eq!((first.event.id, first.attempt), (ev[0].id, 1));
        // One at a time: nothing else while it is in flight.
        assert_eq!(s.poll_send(t0), None);
        assert_eq!(s.due(), Due::Idle);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(s.done(Outcome::Failed, t0), Next::RetryAt(t1));
        assert_eq!(s.due(), Due::At(t1));
        assert_eq!(s.poll_send(t1 - Duration::from_millis(1)), None);
        let second = s.poll_send(t1).unwrap();
        assert_eq!((second.event.id, second.attempt), (ev[0].id, 2));
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(s.done(Outcome::Failed, t1), Next::RetryAt(t2));
        assert_eq!(s.poll_send(t2 - Duration::from_millis(1)), None);
        let third = s.poll_send(t2).unwrap();
        assert_eq!((third.event.id, third.attempt), (ev[0].id, 3));
        assert_eq!(s.done(Outcome::Delivered, t2), Next::Delivered);
        let next = s.poll_send(t2).unwrap();
        assert_eq!((next.event.id, next.attempt), (ev[1].id, 1));
    }

    #[test]
    fn an_event_is_given_up_after_max_attempts() {
        let mut now = Instant::now();
        let mut s = Schedule::new(backoff(), 8);
        let ev = events(2);
        s.push(ev[0].clone());
        s.push(ev[1].clone());
        for attempt in 1..=3 {
            assert_eq!(s.poll_send(now).unwrap().attempt, attempt);
            let Next::RetryAt(at) = s.done(Outcome::Failed, now) else {
                panic!("attempt {attempt} should be retried");
            };
            now = at;
        }
        assert_eq!(s.poll_send(now).unwrap().attempt, 4);
        assert_eq!(
            s.done(Outcome::Failed, now),
            Next::GaveUp {
                event: ev[0].clone(),
                attempts: 4
            }
        );
        let next = s.poll_send(now).unwrap();
        assert_eq!((next.event.id, next.attempt), (ev[1].id, 1));
    }

    #[test]
    fn a_full_queue_drops_what_comes_and_keeps_what_waits() {
        let mut s = Schedule::new(backoff(), 2);
        let ev = events(3);
        assert!(s.push(ev[0].clone()));
        assert!(s.push(ev[1].clone()));
        assert!(!s.push(ev[2].clone()));
        assert_eq!(s.len(), 2);
        let now = Instant::now();
        assert_eq!(s.poll_send(now).unwrap().event.id, ev[0].id);
        s.done(Outcome::Delivered, now);
        assert!(s.push(ev[2].clone()));
        assert_eq!(s.poll_send(now).unwrap().event.id, ev[1].id);
    }
}
