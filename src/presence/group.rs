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

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::logins::NewLoginCall;
use super::service_error::Result;
use super::store::OnlineRequest;
use super::Window;

/// The history's reason for a window the agent opened from the menu.
pub(super) const REASON_MENU: &str = "log-in menu";

/// Most requests written in one transaction.
pub const MAX_GROUP: usize = 256;

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

    /// Whether a window for `user` is gathered (log-in records change no
    /// agent's state).
    pub fn has_window_for(&self, user: &str) -> bool {
        self.onlines.iter().any(|p| p.user == user)
    }
}
