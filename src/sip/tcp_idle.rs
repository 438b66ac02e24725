//! Which TCP connections have gone idle, sans-IO.
//!
//! RFC 3261 §18.3 leaves connection lifetime to the implementation; a peer
//! that opens connections and never speaks would otherwise hold a descriptor
//! each for ever. A connection is closed once it has received nothing for
//! `idle` *and* no transaction or dialog uses it (closing under a dialog
//! would lose our BYE: §18 sends in-dialog requests and responses back over
//! the same connection). An RFC 5626 §3.5.1 CRLF keep-alive counts as
//! traffic for a connection from `trunk.allow` only, so a stranger cannot
//! keep a slot by pinging.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::timer::TimerQueue;

#[derive(Debug)]
struct Conn {
    trusted: bool,
    last_active: Instant,
}

#[derive(Debug)]
pub struct IdleConnections {
    idle: Duration,
    conns: HashMap<u64, Conn>,
    /// One entry per connection, re-armed lazily: activity only moves
    /// `last_active`, and a popped entry that is early is armed again.
    timers: TimerQueue<u64>,
}

impl IdleConnections {
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            conns: HashMap::new(),
            timers: TimerQueue::default(),
        }
    }

    pub fn opened(&mut self, conn: u64, trusted: bool, now: Instant) {
        self.conns.insert(
            conn,
            Conn {
                trusted,
                last_active: now,
            },
        );
        self.timers.arm(now + self.idle, conn);
    }

    pub fn closed(&mut self, conn: u64) {
        // Its timer entry becomes stale and is ignored when popped.
        self.conns.remove(&conn);
    }

    /// A SIP message went over the connection, either way.
    pub fn activity(&mut self, conn: u64, now: Instant) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_active = now;
        }
    }

    /// A CRLF keep-alive ping arrived (RFC 5626 §3.5.1).
    pub fn keep_alive(&mut self, conn: u64, now: Instant) {
        if let Some(c) = self.conns.get_mut(&conn).filter(|c| c.trusted) {
            c.last_active = now;
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.timers.deadline()
    }

    /// The connections to close now. `in_use` lists the connections a
    /// transaction or dialog still needs; it is asked at most once, and only
    /// when some connection is due.
    pub fn expire(&mut self, now: Instant, in_use: impl FnOnce() -> HashSet<u64>) -> Vec<u64> {
        let mut in_use = Some(in_use);
        let mut busy: Option<HashSet<u64>> = None;
        let mut out = Vec::new();
        let mut rearm = Vec::new();
        while let Some((_, conn)) = self.timers.pop_due(now) {
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            let due = c.last_active + self.idle;
            if due > now {
                rearm.push((due, conn));
                continue;
            }
            let busy = busy.get_or_insert_with(|| in_use.take().map(|f| f()).unwrap_or_default());
            if busy.contains(&conn) {
                // Needed by a transaction or dialog: look again one idle
                // period later.
                rearm.push((now + self.idle, conn));
            } else {
                self.conns.remove(&conn);
                out.push(conn);
            }
        }
        for (at, conn) in rearm {
            self.timers.arm(at, conn);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(32);

    fn none() -> HashSet<u64> {
        HashSet::new()
    }

    #[test]
    fn a_silent_connection_closes_after_the_idle_time() {
        let t0 = Instant::now();
        let mut idle = IdleConnections::new(IDLE);
        idle.opened(7, false, t0);
        assert_eq!(idle.deadline(), Some(t0 + IDLE));
        assert!(idle
            .expire(t0 + IDLE - Duration::from_millis(1), none)
            .is_empty());
        assert_eq!(idle.expire(t0 + IDLE, none), vec![7]);
        assert_eq!(idle.deadline(), None);
    }

    #[test]
    fn traffic_pushes_the_deadline_back() {
        let t0 = Instant::now();
        let mut idle = IdleConnections::new(IDLE);
        idle.opened(1, false, t0);
        idle.activity(1, t0 + Duration::from_secs(20));
        assert!(idle.expire(t0 + IDLE, none).is_empty());
        assert_eq!(idle.deadline(), Some(t0 + Duration::from_secs(52)));
        assert_eq!(idle.expire(t0 + Duration::from_secs(52), none), vec![1]);
    }

    #[test]
    fn keep_alives_count_only_for_trusted_connections() {
        let t0 = Instant::now();
        let mut idle = IdleConnections::new(IDLE);
        idle.opened(1, true, t0);
        idle.opened(2, false, t0);
        for s in [10, 20, 30] {
            idle.keep_alive(1, t0 + Duration::from_secs(s));
            idle.keep_alive(2, t0 + Duration::from_secs(s));
        }
        assert_eq!(idle.expire(t0 + IDLE, none), vec![2]);
        assert_eq!(idle.expire(t0 + Duration::from_secs(62), none), vec![1]);
    }

    #[test]
    fn a_connection_in_use_stays_until_it_is_not() {
        let t0 = Instant::now();
        let mut idle = IdleConnections::new(IDLE);
        idle.opened(3, true, t0);
        let mut asked = 0;
        let closed = idle.expire(t0 + IDLE, || {
            asked += 1;
            HashSet::from([3])
        });
        assert!(closed.is_empty());
        assert_eq!(asked, 1);
        // Checked again one idle period later; the dialog has ended by then.
        assert_eq!(idle.deadline(), Some(t0 + IDLE * 2));
        assert_eq!(idle.expire(t0 + IDLE * 2, none), vec![3]);
    }

    #[test]
    fn nothing_due_means_no_question_and_closed_ones_are_forgotten() {
        let t0 = Instant::now();
        let mut idle = IdleConnections::new(IDLE);
        idle.opened(4, false, t0);
        idle.opened(5, false, t0);
        idle.closed(4);
        let closed = idle.expire(t0 + Duration::from_secs(1), || panic!("asked early"));
        assert!(closed.is_empty());
        assert_eq!(idle.expire(t0 + IDLE, none), vec![5]);
    }
}
