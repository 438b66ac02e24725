//! What the presence service has been asked to write and has not written
//! yet: its group commit.
//!
//! Under load, each write's `fsync` is the time the next requests queue in.
//! The service gathers the windows agents asked for and the finished log-in
//! records while commands keep coming, and writes them in one transaction as
//! soon as none is waiting (or [`MAX_GROUP`] are gathered), so a quiet
//! switch writes each at once and a busy one shares the `fsync`. Nobody
//! hears back before that commit: a window is on disk before its agent
//! hears "online", it only shares the disk write with others.
//!
//! A log-in record has nobody listening for it (it is written after the
//! call's last prompt), so it waits up to [`LOGIN_LINGER`] for company: at
//! 1 000 calls a second some twenty records share one commit instead of
//! each paying its own `fsync` and its own round trips to the database
//! thread, and a window asked for meanwhile takes them with it at once.
//! The record's caller still hears back only after the commit; what a
//! `kill -9` can lose is records of calls that ended in the last
//! [`LOGIN_LINGER`], never a window anyone was told of.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::logins::NewLoginCall;
use super::service_error::Result;
use super::store::OnlineRequest;
use super::Window;

/// The history's reason for a window the agent opened from the menu.
pub(super) const REASON_MENU: &str = "log-in menu";

/// Most requests written in one transaction.
pub const MAX_GROUP: usize = 256;

/// Longest a log-in record waits for others to share its commit.
pub const LOGIN_LINGER: Duration = Duration::from_millis(20);

/// Where a request's caller hears its fate.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// A window asked for, with its times fixed when it was asked.
pub(super) struct PendingOnline {
    pub user: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub call_id: Option<String>,
    pub reply: Reply<Window>,
}

impl PendingOnline {
    pub fn request(&self) -> OnlineRequest<'_> {
        OnlineRequest {
            user: &self.user,
            start: self.start,
            end: self.end,
            call_id: self.call_id.as_deref(),
            reason: REASON_MENU,
        }
    }
}

/// The requests gathered, each kind in the order asked.
#[derive(Default)]
pub(super) struct Group {
    pub onlines: Vec<PendingOnline>,
    pub logins: Vec<(NewLoginCall, Reply<()>)>,
    /// Commands the service has run since the first of these was gathered.
    /// Other agents' commands go ahead of the group; bounded by this, a
    /// steady stream of them cannot keep a window waiting.
    pub passed: usize,
    /// When the log-in records gathered are written at the latest.
    logins_due: Option<Instant>,
}

impl Group {
    pub fn len(&self) -> usize {
        self.onlines.len() + self.logins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.onlines.is_empty() && self.logins.is_empty()
    }

    /// Time to write: as many requests as one transaction takes, or as
    /// many other commands have gone ahead as that.
    pub fn is_full(&self) -> bool {
        self.len() >= MAX_GROUP || self.passed >= MAX_GROUP
    }

    /// Gathers a finished call's record, to be written by `now + linger`
    /// at the latest (the first record sets the time for all).
    pub fn push_login(
        &mut self,
        call: NewLoginCall,
        reply: Reply<()>,
        now: Instant,
        linger: Duration,
    ) {
        if self.logins.is_empty() {
            self.logins_due = Some(now + linger);
        }
        self.logins.push((call, reply));
    }

    /// When the gathered log-in records must be written (`None`: none are).
    pub fn deadline(&self) -> Option<Instant> {
        self.logins_due.filter(|_| !self.logins.is_empty())
    }

    /// Whether to write the group now. `idle`: no command is waiting. A
    /// window goes as soon as the queue is idle (its agent is waiting to
    /// hear "online"); log-in records alone wait for their deadline.
    pub fn is_due(&self, now: Instant, idle: bool) -> bool {
        self.is_full()
            || (idle && !self.onlines.is_empty())
            || self.deadline().is_some_and(|due| due <= now)
    }

    /// Whether a window for `user` is gathered (log-in records change no
    /// agent's state).
    pub fn has_window_for(&self, user: &str) -> bool {
        self.onlines.iter().any(|p| p.user == user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CallerIdTrust;
    use crate::presence::{CallerIdRecord, LoginOutcome};

    fn record() -> (NewLoginCall, Reply<()>) {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let call = NewLoginCall {
            call_id: "c@x".into(),
            caller: "+12345678910".into(),
            agent_user_id: None,
            outcome: LoginOutcome::UnknownCaller,
            hours: None,
            started_at: at,
            ended_at: at,
            trust: CallerIdRecord {
                caller_id_trust: CallerIdTrust::Attested,
                attested: false,
                caller_id: None,
            },
        };
        (call, oneshot::channel().0)
    }

    #[test]
    fn log_in_records_alone_are_due_at_the_first_ones_deadline() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut g = Group::default();
        assert_eq!(g.deadline(), None);
        assert!(!g.is_due(t0, true), "nothing to write");
        let (c, r) = record();
        g.push_login(c, r, t0, ms(20));
        let (c, r) = record();
        g.push_login(c, r, t0 + ms(15), ms(20));
        // The first record sets the time for all.
        assert_eq!(g.deadline(), Some(t0 + ms(20)));
        assert!(!g.is_due(t0 + ms(19), true), "idle is not enough");
        assert!(g.is_due(t0 + ms(20), false));
    }

    #[test]
    fn a_full_group_is_due_at_once() {
        let t0 = Instant::now();
        let mut g = Group::default();
        for _ in 0..MAX_GROUP {
            let (c, r) = record();
            g.push_login(c, r, t0, Duration::from_secs(60));
        }
        assert!(g.is_due(t0, false));
    }

    #[test]
    fn a_taken_group_starts_over() {
        let t0 = Instant::now();
        let mut g = Group::default();
        let (c, r) = record();
        g.push_login(c, r, t0, Duration::from_millis(20));
        let _ = std::mem::take(&mut g);
        assert_eq!(g.deadline(), None);
        let (c, r) = record();
        g.push_login(c, r, t0 + Duration::from_secs(1), Duration::from_millis(20));
        assert_eq!(
            g.deadline(),
            Some(t0 + Duration::from_secs(1) + Duration::from_millis(20))
        );
    }
}
