//! Sans-IO expiry scheduler: which online window is due to be closed, and when.
//!
//! It holds no clock, task or store. The shell sleeps until [`deadline`],
//! then drains [`poll_expired`] and closes each window in the store with
//! `expire(user, end, ..)`, which records the window's *real* end even when
//! we notice late.
//!
//! Times are `DateTime<Utc>` rather than `Instant`, unlike the call state
//! machines: windows are wall-clock facts that are stored and must be
//! re-armed after a restart, and an `Instant` means nothing across processes.
//! The shell converts the deadline to a sleep with `Utc::now()` and should cap
//! each sleep (say at a minute) so a wall-clock step is noticed.
//!
//! An agent who is on a call (busy) when their window ends is not cut off:
//! the expiry is held back and reported, with `deferred: true`, once
//! [`set_busy`]`(user, false)` says the call is over.
//!
//! [`deadline`]: ExpiryScheduler::deadline
//! [`poll_expired`]: ExpiryScheduler::poll_expired
//! [`set_busy`]: ExpiryScheduler::set_busy

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::Window;

/// A window that is due to be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub user: String,
    /// The window's real end (what the history should say), not the time
    /// it was polled.
    pub end: DateTime<Utc>,
    /// True when the window ended during a call and is reported only now
    /// that the call is over.
    pub deferred: bool,
}

/// Timers for online windows, one per user.
#[derive(Debug, Default)]
pub struct ExpiryScheduler {
    /// Armed windows by (end, user): the first is the next due.
    timers: BTreeSet<(DateTime<Utc>, String)>,
    /// user -> end of their armed window, to find a timer when it is replaced.
    armed: HashMap<String, DateTime<Utc>>,
    /// Agents on a call right now.
    busy: HashSet<String>,
    /// Windows that ended while their agent was busy: user -> real end.
    deferred: BTreeMap<String, DateTime<Utc>>,
}

impl ExpiryScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arm `user`'s window to end at `end`, replacing any timer they had
    /// (including an expiry held back by a call: the new window supersedes it).
    pub fn arm(&mut self, user: impl Into<String>, end: DateTime<Utc>) {
        let user = user.into();
        self.remove_timer(&user);
        self.deferred.remove(&user);
        self.timers.insert((end, user.clone()));
        self.armed.insert(user, end);
    }

    /// Forget `user`'s window (they went offline another way).
    pub fn disarm(&mut self, user: &str) {
        self.remove_timer(user);
        self.deferred.remove(user);
    }

    /// Mark `user` as on a call (or no longer). Clearing it releases an
    /// expiry held back during the call: the next `poll_expired` returns it.
    pub fn set_busy(&mut self, user: &str, busy: bool) {
        if busy {
            self.busy.insert(user.to_owned());
        } else {
            self.busy.remove(user);
        }
    }

    /// When `poll_expired` next has something: the earliest armed end, or an
    /// already-passed end for a held-back expiry whose call is over. `None`
    /// when nothing is armed or every pending expiry waits for a call.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        let next_timer = self.timers.first().map(|(end, _)| *end);
        let released = self.released().map(|(_, end)| end);
        match (next_timer, released) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next window due at `now`, oldest first; `None` when nothing is
    /// due. Call repeatedly until `None`. A window ends at `end` exactly: it is
    /// due when `now >= end`.
    pub fn poll_expired(&mut self, now: DateTime<Utc>) -> Option<Expiry> {
        if let Some((user, end)) = self.released().map(|(u, e)| (u.to_owned(), e)) {
            self.deferred.remove(&user);
            return Some(Expiry {
                user,
                end,
                deferred: true,
            });
        }
        loop {
            let (end, _) = self.timers.first()?;
            if *end > now {
                return None;
            }
            let (end, user) = self.timers.pop_first()?;
            self.armed.remove(&user);
            if self.busy.contains(&user) {
                // On a call: hold it until the call ends.
                self.deferred.insert(user, end);
                continue;
            }
            return Some(Expiry {
                user,
                end,
                deferred: false,
            });
        }
    }

    /// At start-up: arm every stored window that is still open at `now`, and
    /// return those that ended while the switch was down (oldest end first),
    /// for the caller to close with their real end.
    pub fn rearm_from(
        &mut self,
        windows: Vec<(String, Window)>,
        now: DateTime<Utc>,
    ) -> Vec<(String, Window)> {
        let mut ended = Vec::new();
        for (user, window) in windows {
            if window.end <= now {
                ended.push((user, window));
            } else {
                self.arm(user, window.end);
            }
        }
        ended.sort_by(|a, b| (a.1.end, &a.0).cmp(&(b.1.end, &b.0)));
        ended
    }

    /// The end `user`'s window is armed for, if any.
    pub fn armed_end(&self, user: &str) -> Option<DateTime<Utc>> {
        self.armed.get(user).copied()
    }

    /// Brings `user`'s timer in line with the store (`stored`: the end of
    /// their open window there, if any), after another node changed it.
    /// True when that changed anything here.
    pub fn sync(&mut self, user: &str, stored: Option<DateTime<Utc>>) -> bool {
        let here = self
            .armed
            .get(user)
            .or_else(|| self.deferred.get(user))
            .copied();
        if here == stored {
            return false;
        }
        match stored {
            Some(end) => self.arm(user, end),
            None => self.disarm(user),
        }
        true
    }

    /// Every user with a window here, armed or held back by a call.
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self.armed.keys().cloned().collect();
        users.extend(self.deferred.keys().cloned());
        users.sort_unstable();
        users.dedup();
        users
    }

    /// True when `user`'s window has ended and waits for their call to end.
    pub fn is_deferred(&self, user: &str) -> bool {
        self.deferred.contains_key(user)
    }

    /// Number of armed timers (for metrics).
    pub fn len(&self) -> usize {
        self.timers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timers.is_empty() && self.deferred.is_empty()
    }

    fn remove_timer(&mut self, user: &str) {
        if let Some(end) = self.armed.remove(user) {
            self.timers.remove(&(end, user.to_owned()));
        }
    }

    /// The held-back expiry with the oldest end whose agent is free again.
    fn released(&self) -> Option<(&str, DateTime<Utc>)> {
        self.deferred
            .iter()
            .filter(|(user, _)| !self.busy.contains(user.as_str()))
            .min_by_key(|(user, end)| (**end, user.as_str()))
            .map(|(user, end)| (user.as_str(), *end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    /// Simulated wall clock: seconds after a fixed epoch.
    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn exp(user: &str, end: i64, deferred: bool) -> Option<Expiry> {
        Some(Expiry {
            user: user.into(),
            end: t(end),
            deferred,
        })
    }

    #[test]
    fn empty_scheduler_has_no_deadline() {
        let mut s = ExpiryScheduler::new();
        assert_eq!(s.deadline(), None);
        assert_eq!(s.poll_expired(t(1_000_000)), None);
        assert!(s.is_empty());
    }

    #[test]
    fn expires_exactly_at_the_end_second() {
        let mut s = ExpiryScheduler::new();
        s.arm("ann", t(8 * 3600));
        assert_eq!(s.deadline(), Some(t(8 * 3600)));
        assert_eq!(s.poll_expired(t(8 * 3600 - 1)), None);
        let just_before = t(8 * 3600) - Duration::milliseconds(1);
        assert_eq!(s.poll_expired(just_before), None);
        assert_eq!(s.poll_expired(t(8 * 3600)), exp("ann", 8 * 3600, false));
        assert_eq!(s.poll_expired(t(8 * 3600)), None);
        assert_eq!(s.deadline(), None);
        assert_eq!(s.armed_end("ann"), None);
    }

    #[test]
    fn late_poll_reports_the_real_end_oldest_first() {
        let mut s = ExpiryScheduler::new();
        s.arm("bob", t(200));
        s.arm("ann", t(100));
        s.arm("cy", t(300));
        assert_eq!(s.deadline(), Some(t(100)));
        // The shell wakes late: both due windows come out with their own ends.
        assert_eq!(s.poll_expired(t(250)), exp("ann", 100, false));
        assert_eq!(s.poll_expired(t(250)), exp("bob", 200, false));
        assert_eq!(s.poll_expired(t(250)), None);
        assert_eq!(s.deadline(), Some(t(300)));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn same_end_for_two_users_both_expire() {
        let mut s = ExpiryScheduler::new();
        s.arm("bob", t(100));
        s.arm("ann", t(100));
        assert_eq!(s.poll_expired(t(100)), exp("ann", 100, false));
        assert_eq!(s.poll_expired(t(100)), exp("bob", 100, false));
    }

    #[test]
    fn rearming_replaces_the_previous_timer() {
        let mut s = ExpiryScheduler::new();
        s.arm("ann", t(100));
        s.arm("ann", t(500));
        assert_eq!(s.len(), 1);
        assert_eq!(s.deadline(), Some(t(500)));
        assert_eq!(s.poll_expired(t(100)), None);
        assert_eq!(s.poll_expired(t(500)), exp("ann", 500, false));
        // Shortening works too.
        s.arm("ann", t(900));
        s.arm("ann", t(600));
        assert_eq!(s.deadline(), Some(t(600)));
        assert_eq!(s.poll_expired(t(700)), exp("ann", 600, false));
        assert_eq!(s.poll_expired(t(1000)), None);
    }

    #[test]
    fn sync_follows_the_store_and_says_when_it_changed_something() {
        let mut s = ExpiryScheduler::new();
        assert!(!s.sync("ann", None), "nothing here, nothing there");
        assert!(s.sync("ann", Some(t(100))), "opened on another node");
        assert!(!s.sync("ann", Some(t(100))), "already armed");
        assert!(s.sync("ann", Some(t(300))), "extended elsewhere");
        assert_eq!(s.deadline(), Some(t(300)));
        // Held back by a call here: the same window is no change.
        s.set_busy("ann", true);
        assert_eq!(s.poll_expired(t(400)), None);
        assert!(!s.sync("ann", Some(t(300))));
        assert_eq!(s.users(), ["ann"]);
        assert!(s.sync("ann", None), "closed elsewhere");
        s.set_busy("ann", false);
        assert_eq!(s.poll_expired(t(1000)), None);
        assert!(s.users().is_empty());
    }

    #[test]
    fn disarm_cancels_the_timer() {
        let mut s = ExpiryScheduler::new();
        s.arm("ann", t(100));
        s.arm("bob", t(200));
        s.disarm("ann");
        s.disarm("nobody");
        assert_eq!(s.deadline(), Some(t(200)));
        assert_eq!(s.poll_expired(t(1000)), exp("bob", 200, false));
        assert_eq!(s.poll_expired(t(1000)), None);
    }

    #[test]
    fn busy_agent_expires_only_when_the_call_ends() {
        let mut s = ExpiryScheduler::new();
        s.arm("ann", t(100));
        s.arm("bob", t(150));
        s.set_busy("ann", true);
        // Ann's window ends mid-call: held back; Bob's still expires.
        assert_eq!(s.poll_expired(t(160)), exp("bob", 150, false));
        assert_eq!(s.poll_expired(t(160)), None);
        assert!(s.is_deferred("ann"));
        assert_eq!(
            s.deadline(),
            None,
            "nothing to wake for while the call lasts"
        );
        assert_eq!(s.poll_expired(t(5000)), None);
        // The call ends: due at once, with the real end.
        s.set_busy("ann", false);
        assert_eq!(s.deadline(), Some(t(100)));
        assert_eq!(s.poll_expired(t(5001)), exp("ann", 100, true));
        assert_eq!(s.poll_expired(t(5001)), None);
        assert!(!s.is_deferred("ann"));
        assert!(s.is_empty());
    }

    #[test]
    fn busy_before_the_end_then_free_before_the_end_is_not_deferred() {
        let mut s = ExpiryScheduler::new();
        s.arm("ann", t(100));
        s.set_busy("ann", true);
        assert_eq!(s.poll_expired(t(50)), None);
        s.set_busy("ann", false);
        assert_eq!(s.poll_expired(t(99)), None);
        assert_eq!(s.poll_expired(t(100)), exp("ann", 100, false));
    }

    #[test]
    fn released_expiry_comes_before_later_timers() {
        let mut s = ExpiryScheduler::new();
        s.arm("ann", t(100));
        s.set_busy("ann", true);
        assert_eq!(s.poll_expired(t(100)), None);
        s.arm("bob", t(300));
        s.set_busy("ann", false);
        assert_eq!(s.deadline(), Some(t(100)));
        assert_eq!(s.poll_expired(t(400)), exp("ann", 100, true));
        assert_eq!(s.poll_expired(t(400)), exp("bob", 300, false));
    }

    #[test]
    fn rearm_or_disarm_drops_a_held_back_expiry() {
        let mut s = ExpiryScheduler::new();
        s.arm("ann", t(100));
        s.set_busy("ann", true);
        assert_eq!(s.poll_expired(t(100)), None);
        // An administrator gives Ann a new window during the call.
        s.arm("ann", t(900));
        s.set_busy("ann", false);
        assert_eq!(s.poll_expired(t(200)), None);
        assert_eq!(s.deadline(), Some(t(900)));

        s.set_busy("ann", true);
        assert_eq!(s.poll_expired(t(900)), None);
        assert!(s.is_deferred("ann"));
        s.disarm("ann");
        s.set_busy("ann", false);
        assert_eq!(s.poll_expired(t(1000)), None);
        assert!(s.is_empty());
    }

    #[test]
    fn restart_rearms_open_windows_and_returns_ended_ones() {
        let w = |a: i64, b: i64| Window::new(t(a), t(b)).unwrap();
        let stored = vec![
            ("ann".to_string(), w(0, 500)),
            ("bob".to_string(), w(0, 300)),
            ("cy".to_string(), w(0, 1000)),
            ("dee".to_string(), w(0, 400)),
        ];
        let mut s = ExpiryScheduler::new();
        // The switch was down from 250 to 450.
        let ended = s.rearm_from(stored, t(450));
        assert_eq!(
            ended,
            vec![
                ("bob".to_string(), w(0, 300)),
                ("dee".to_string(), w(0, 400))
            ]
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.armed_end("bob"), None);
        assert_eq!(s.deadline(), Some(t(500)));
        assert_eq!(s.poll_expired(t(500)), exp("ann", 500, false));
        assert_eq!(s.poll_expired(t(999)), None);
        assert_eq!(s.poll_expired(t(1000)), exp("cy", 1000, false));
    }

    #[test]
    fn restart_exactly_at_an_end_counts_it_as_ended() {
        let mut s = ExpiryScheduler::new();
        let w = Window::new(t(0), t(450)).unwrap();
        let ended = s.rearm_from(vec![("ann".into(), w)], t(450));
        assert_eq!(ended.len(), 1);
        assert!(s.is_empty());
    }
}
