//! Sans-IO reminder scheduler: when to call an online agent to say their
//! window ends soon ("Your online time ends in 15 minutes. Press 1 to stay
//! online…"), issue 14.
//!
//! It sits beside the [`ExpiryScheduler`](super::scheduler::ExpiryScheduler)
//! and is fed the same windows. Rules:
//! - One reminder `lead` before the end, and only for windows longer than
//!   the lead (a window set for ten minutes gets no "ends in 15 minutes").
//! - Never while the agent is on a customer call: a reminder due during a
//!   call is held and comes when the call ends, if at least [`MIN_LEFT`]
//!   of the window is still left (else there is nothing useful to say).
//! - At most once per window end: the shell records each reminder in the
//!   store before placing it (and skips one already recorded, by this
//!   node before a restart or by another node), so a reminder is not
//!   repeated; a window given a new end (extended) may be reminded again
//!   before that end.
//!
//! Times are `DateTime<Utc>` on the presence clock, as the expiry
//! scheduler's, so a sped-up test clock speeds reminders up too.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::Window;

/// A held reminder is dropped when less than this is left of the window.
pub const MIN_LEFT: chrono::Duration = chrono::Duration::minutes(1);

/// A reminder due now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub user: String,
    /// The end of the window it is for (the store's record of it).
    pub end: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct ReminderScheduler {
    /// `None`: reminders are off.
    lead: Option<chrono::Duration>,
    /// The windows known, by user (to re-plan them when the lead changes).
    windows: HashMap<String, Window>,
    /// Planned reminders by (when, user); the first is the next due.
    timers: BTreeSet<(DateTime<Utc>, String)>,
    /// user -> when their reminder is planned.
    planned: HashMap<String, DateTime<Utc>>,
    busy: HashSet<String>,
}

impl ReminderScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reminders `lead` before each end (`None`: none). Windows already
    /// known are planned again with it.
    pub fn set_lead(&mut self, lead: Option<chrono::Duration>) {
        if self.lead == lead {
            return;
        }
        self.lead = lead.filter(|l| *l > chrono::Duration::zero());
        let windows: Vec<(String, Window)> = self.windows.drain().collect();
        self.timers.clear();
        self.planned.clear();
        for (user, window) in windows {
            self.arm(user, window);
        }
    }

    pub fn lead(&self) -> Option<chrono::Duration> {
        self.lead
    }

    /// `user`'s window is `window` now (new, extended or re-read),
    /// replacing any reminder planned for their earlier one.
    pub fn arm(&mut self, user: impl Into<String>, window: Window) {
        let user = user.into();
        self.unplan(&user);
        if let Some(lead) = self.lead {
            if window.end - window.start > lead {
                let at = window.end - lead;
                self.timers.insert((at, user.clone()));
                self.planned.insert(user.clone(), at);
            }
        }
        self.windows.insert(user, window);
    }

    /// `user` has no window any more.
    pub fn disarm(&mut self, user: &str) {
        self.unplan(user);
        self.windows.remove(user);
    }

    pub fn set_busy(&mut self, user: &str, busy: bool) {
        if busy {
            self.busy.insert(user.to_owned());
        } else {
            self.busy.remove(user);
        }
    }

    /// The next time `poll` has something: the earliest planned reminder of
    /// an agent not on a call (a held one is due at once when the call
    /// ends, so its passed time is returned then).
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.timers
            .iter()
            .find(|(_, user)| !self.busy.contains(user))
            .map(|(at, _)| *at)
    }

    /// The next reminder due at `now`; call until `None`. A reminder whose
    /// agent is on a call stays planned; one with less than [`MIN_LEFT`]
    /// left is dropped.
    pub fn poll(&mut self, now: DateTime<Utc>) -> Option<Reminder> {
        loop {
            let (at, user) = self
                .timers
                .iter()
                .find(|(_, user)| !self.busy.contains(user))
                .cloned()?;
            if at > now {
                return None;
            }
            self.timers.remove(&(at, user.clone()));
            self.planned.remove(&user);
            let Some(window) = self.windows.get(&user) else {
                continue;
            };
            if window.end - now < MIN_LEFT {
                continue;
            }
            return Some(Reminder {
                user,
                end: window.end,
            });
        }
    }

    /// When `user`'s reminder is planned, if it is.
    pub fn planned(&self, user: &str) -> Option<DateTime<Utc>> {
        self.planned.get(user).copied()
    }

    fn unplan(&mut self, user: &str) {
        if let Some(at) = self.planned.remove(user) {
            self.timers.remove(&(at, user.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + min * 60, 0).unwrap()
    }

    fn w(start: i64, end: i64) -> Window {
        Window::new(t(start), t(end)).unwrap()
    }

    fn fifteen() -> ReminderScheduler {
        let mut s = ReminderScheduler::new();
        s.set_lead(Some(chrono::Duration::minutes(15)));
        s
    }

    fn reminder(user: &str, end: i64) -> Option<Reminder> {
        Some(Reminder {
            user: user.into(),
            end: t(end),
        })
    }

    #[test]
    fn a_reminder_comes_the_lead_before_the_end_once() {
        let mut s = fifteen();
        s.arm("ann", w(0, 480));
        assert_eq!(s.deadline(), Some(t(465)));
        assert_eq!(s.poll(t(464)), None);
        assert_eq!(s.poll(t(465)), reminder("ann", 480));
        assert_eq!(s.poll(t(470)), None, "not twice");
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn windows_not_longer_than_the_lead_get_none() {
        let mut s = fifteen();
        s.arm("ann", w(0, 15));
        s.arm("bob", w(0, 10));
        assert_eq!(s.deadline(), None);
        s.arm("cat", w(0, 16));
        assert_eq!(s.poll(t(1)), reminder("cat", 16));
    }

    #[test]
    fn off_without_a_lead_and_replanned_when_it_changes() {
        let mut s = ReminderScheduler::new();
        s.arm("ann", w(0, 480));
        assert_eq!(s.deadline(), None, "no lead, no reminder");
        s.set_lead(Some(chrono::Duration::minutes(30)));
        assert_eq!(s.deadline(), Some(t(450)));
        s.set_lead(None);
        assert_eq!(s.deadline(), None);
        s.set_lead(Some(chrono::Duration::zero()));
        assert_eq!(s.lead(), None, "a zero lead is off");
    }

    #[test]
    fn an_extended_window_is_planned_for_its_new_end() {
        let mut s = fifteen();
        s.arm("ann", w(0, 480));
        assert_eq!(s.poll(t(465)), reminder("ann", 480));
        // The agent pressed 1: eight more hours, and a reminder before them.
        s.arm("ann", w(0, 960));
        assert_eq!(s.planned("ann"), Some(t(945)));
        assert_eq!(s.poll(t(945)), reminder("ann", 960));
    }

    #[test]
    fn a_closed_window_is_not_reminded() {
        let mut s = fifteen();
        s.arm("ann", w(0, 480));
        s.disarm("ann");
        assert_eq!(s.poll(t(470)), None);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn held_during_a_call_and_given_after_it_if_time_is_left() {
        let mut s = fifteen();
        s.arm("ann", w(0, 480));
        s.arm("bob", w(0, 480));
        s.set_busy("ann", true);
        s.set_busy("bob", true);
        assert_eq!(s.deadline(), None, "nothing while both are on calls");
        assert_eq!(s.poll(t(466)), None);
        // Ann's call ends with 10 minutes left: reminded at once.
        s.set_busy("ann", false);
        assert_eq!(s.deadline(), Some(t(465)));
        assert_eq!(s.poll(t(470)), reminder("ann", 480));
        // Bob's ends with 30 s left: nothing useful to say.
        s.set_busy("bob", false);
        assert_eq!(s.poll(t(480) - chrono::Duration::seconds(30)), None);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn a_busy_agent_does_not_hold_back_others() {
        let mut s = fifteen();
        s.arm("ann", w(0, 480));
        s.arm("bob", w(0, 490));
        s.set_busy("ann", true);
        assert_eq!(s.deadline(), Some(t(475)));
        assert_eq!(s.poll(t(475)), reminder("bob", 490));
    }
}
