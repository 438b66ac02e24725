//! The presence service: one tokio task that owns the [`ExpiryScheduler`]
//! and every presence write, so a window's timer and its row never disagree.
//!
//! Call tasks, the admin API and routing talk to it through a cloneable
//! [`PresenceHandle`]; every change is durable in the store before the
//! handle's call returns, so the log-in menu confirms "you are online" only
//! for a window that survives a crash. Windows that end are closed in the
//! store with their *real* end and announced as [`PresenceEvent::Expired`]
//! (the switch uses it to place the "you are now offline" call when the
//! flow has `notify_on_expiry`).
//!
//! The loop: on every wake-up (a command, the scheduler deadline, a clock
//! jump, or at the latest [`MAX_SLEEP`]) it first closes whatever is due,
//! then runs the command. A command therefore always sees expiries up to
//! "now" applied, and tests can use any command as a barrier.
//!
//! Windows opened from the menu and log-in records are written in groups
//! while commands keep coming, and log-in records wait a little for
//! company (`group`): each caller still hears back only after the commit
//! that holds its request, and a command for an agent with a gathered
//! window writes the group first.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::agent_state::{self, Activity};
use super::backend::Store;
use super::clock::Clock;
use super::group::{Group, PendingOnline, Reply, LOGIN_LINGER, REASON_MENU};
use super::logins::NewLoginCall;
use super::reminders::ReminderScheduler;
use super::scheduler::{Expiry, ExpiryScheduler};
pub use super::service_error::{Result, ServiceError};
use super::store::{OnlineRequest, PresenceStore, StoreError};
use super::{Window, WindowChange};

/// Longest sleep between two looks at the clock: a wall-clock step (NTP,
/// an operator) is noticed within this.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Wait before retrying an expiry the store refused (disk full, locked).
const RETRY_AFTER: chrono::Duration = chrono::Duration::seconds(5);
/// Commands queued before callers wait (back-pressure, not loss).
const COMMAND_QUEUE: usize = 1024;
/// Events kept for a slow subscriber before it starts missing some.
const EVENT_QUEUE: usize = 1024;
// History reasons written by the service (the log-in menu's is in `group`).

/// The history's reason when a nailed-up agent hangs up their line.
const REASON_LINE_HUNG_UP: &str = "hung up the nailed-up line";
const REASON_ENDED: &str = "window ended";
const REASON_ENDED_IN_CALL: &str = "window ended during a call";
const REASON_ENDED_DOWN: &str = "ended while down";

/// Something that happened to an agent's presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceEvent {
    /// A new window, or (set by a supervisor) the open window with a new
    /// end: either way the agent is online until `window.end`. `actor` is
    /// who set it, as the history records it (`ACTOR_AGENT` or the API
    /// token's name).
    Online {
        user: String,
        window: Window,
        actor: String,
    },
    /// The agent went offline from the log-in menu; `window` is the one
    /// closed, `None` if they were not online.
    Offline {
        user: String,
        window: Option<Window>,
    },
    /// The switch (`ACTOR_SWITCH`: missed calls) or a supervisor (the API
    /// token's name) set the agent offline.
    ForcedOffline {
        user: String,
        window: Option<Window>,
        reason: String,
        actor: String,
    },
    /// The switch closed the window after `max_no_answer` missed offers
    /// and marked the agent not responding (`window`: the one closed, if
    /// any). The notifier calls them with the `not_responding` prompt.
    NotResponding {
        user: String,
        window: Option<Window>,
        reason: String,
    },
    /// The not-responding mark was cleared by `actor` (`ACTOR_AGENT`: they
    /// called the log-in line; else the API token's name).
    Responding { user: String, actor: String },
    /// Another node changed the agent's window in the shared store: this
    /// is it as the store has it now (`None`: closed). Only routing and
    /// expiry act on it; the node that made the change tells webhooks and
    /// the agent.
    Synced {
        user: String,
        window: Option<Window>,
    },
    /// The agent's window ends in the reminder lead: call them to offer
    /// more time. Recorded in the store first, so once per window end
    /// across restarts and nodes.
    Remind { user: String, end: DateTime<Utc> },
    /// The window reached its end and is closed; `end` is the real end.
    Expired {
        user: String,
        end: DateTime<Utc>,
        /// It ended while the switch was down and was closed at start-up
        /// (possibly long after `end`).
        while_down: bool,
        /// It ended during a call and was closed when the call ended.
        deferred: bool,
    },
}

enum Command {
    Online {
        user: String,
        hours: u32,
        call_id: Option<String>,
        reply: Reply<Window>,
    },
    Offline {
        user: String,
        call_id: Option<String>,
        /// For the history: the menu, or the line hung up.
        reason: &'static str,
        reply: Reply<Option<Window>>,
    },
    Force {
        user: String,
        reason: String,
        reply: Reply<Option<Window>>,
    },
    Extend {
        user: String,
        hours: u32,
        longest: chrono::Duration,
        reply: Reply<Window>,
    },
    NotResponding {
        user: String,
        reason: String,
        reply: Reply<Option<Window>>,
    },
    ClearNotResponding {
        user: String,
        actor: String,
        reason: String,
        reply: Reply<bool>,
    },
    SetWindow {
        user: String,
        end: WindowEnd,
        longest: chrono::Duration,
        by: Actor,
        reply: Reply<WindowChange>,
    },
    EndWindow {
        user: String,
        by: Actor,
        reply: Reply<Option<Window>>,
    },
    Activity {
        user: String,
        activity: Activity,
        reply: Reply<()>,
    },
    Current {
        user: String,
        reply: Reply<Option<Window>>,
    },
    RecordLogin {
        call: NewLoginCall,
        reply: Reply<()>,
    },
    /// Call agents this long before their window ends (`None`: never).
    RemindBefore(Option<chrono::Duration>),
    /// Re-read one agent's window (`Some`), or every window, from a shared
    /// store another node writes too.
    Resync {
        user: Option<String>,
    },
    Shutdown,
}

impl Command {
    /// Requests the group commit gathers (see `group`).
    fn joins_group(&self) -> bool {
        matches!(self, Command::Online { .. } | Command::RecordLogin { .. })
    }

    /// The one agent this command reads or changes; `None` for a command
    /// about every agent (or none).
    fn user(&self) -> Option<&str> {
        match self {
            Command::Online { user, .. }
            | Command::Offline { user, .. }
            | Command::Force { user, .. }
            | Command::Extend { user, .. }
            | Command::NotResponding { user, .. }
            | Command::ClearNotResponding { user, .. }
            | Command::SetWindow { user, .. }
            | Command::EndWindow { user, .. }
            | Command::Activity { user, .. }
            | Command::Current { user, .. } => Some(user),
            Command::Resync { user } => user.as_deref(),
            Command::RecordLogin { .. } | Command::RemindBefore(_) | Command::Shutdown => None,
        }
    }
}

/// Where a window set on an agent's behalf ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowEnd {
    /// This many minutes from now (the service's now).
    Minutes(u32),
    /// At this time.
    Until(DateTime<Utc>),
}

/// Who asks for a change on an agent's behalf, and why: both go into the
/// history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The API token's name.
    pub name: String,
    pub reason: String,
}

/// The way in: cheap to clone, one per call task.
#[derive(Clone)]
pub struct PresenceHandle {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<PresenceEvent>,
    clock: Arc<dyn Clock>,
}

impl PresenceHandle {
    /// Put `user` online for `hours` from now; returns once the window is
    /// durable (play "online" only after `Ok`). Replaces any open window.
    pub async fn go_online(&self, user: &str, hours: u32, call_id: Option<&str>) -> Result<Window> {
        self.ask(|reply| Command::Online {
            user: user.to_owned(),
            hours,
            call_id: call_id.map(str::to_owned),
            reply,
        })
        .await
    }

    /// Now on the clock windows are kept by (the system's, or a test's
    /// sped-up one): what a window's end is compared with.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The agent, already online, adds `hours` to their window on the
    /// phone: it then ends `hours` after its current end (after now, if
    /// they have no window), but never more than `longest` from now.
    /// Durable before it returns; recorded in the history as `extended`
    /// by the agent.
    pub async fn extend(
        &self,
        user: &str,
        hours: u32,
        longest: chrono::Duration,
    ) -> Result<Window> {
        self.ask(|reply| Command::Extend {
            user: user.to_owned(),
            hours,
            longest,
            reply,
        })
        .await
    }

    /// The agent chose offline; returns the window closed, if any.
    pub async fn go_offline(&self, user: &str, call_id: Option<&str>) -> Result<Option<Window>> {
        self.ask(|reply| Command::Offline {
            user: user.to_owned(),
            call_id: call_id.map(str::to_owned),
            reason: REASON_MENU,
            reply,
        })
        .await
    }

    /// A nailed-up agent hung up their line (issue 14): their window ends,
    /// as the agent's own doing on that call, announced as
    /// [`PresenceEvent::Offline`].
    pub async fn line_hung_up(&self, user: &str, call_id: &str) -> Result<Option<Window>> {
        self.ask(|reply| Command::Offline {
            user: user.to_owned(),
            call_id: Some(call_id.to_owned()),
            reason: REASON_LINE_HUNG_UP,
            reply,
        })
        .await
    }

    /// The switch or an administrator sets the agent offline.
    pub async fn force_offline(&self, user: &str, reason: &str) -> Result<Option<Window>> {
        self.ask(|reply| Command::Force {
            user: user.to_owned(),
            reason: reason.to_owned(),
            reply,
        })
        .await
    }

    /// After `max_no_answer` missed offers: close the window and mark the
    /// agent not responding, durably (issue 14). Announced as
    /// [`PresenceEvent::NotResponding`].
    pub async fn set_not_responding(&self, user: &str, reason: &str) -> Result<Option<Window>> {
        self.ask(|reply| Command::NotResponding {
            user: user.to_owned(),
            reason: reason.to_owned(),
            reply,
        })
        .await
    }

    /// Clear `user`'s not-responding mark (they called in, or a supervisor
    /// set them online or offline); `false` when they had none. Durable
    /// before it returns; announced as [`PresenceEvent::Responding`].
    pub async fn clear_not_responding(
        &self,
        user: &str,
        actor: &str,
        reason: &str,
    ) -> Result<bool> {
        self.ask(|reply| Command::ClearNotResponding {
            user: user.to_owned(),
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            reply,
        })
        .await
    }

    /// A supervisor sets `user`'s window to end at `end`: a new window if
    /// they are offline, else the open one takes the new end (its expiry
    /// re-armed). Refused when the end is not after now or more than
    /// `longest` from now. Durable before it returns; announced as
    /// [`PresenceEvent::Online`].
    pub async fn set_window(
        &self,
        user: &str,
        end: WindowEnd,
        longest: chrono::Duration,
        by: Actor,
    ) -> Result<WindowChange> {
        self.ask(|reply| Command::SetWindow {
            user: user.to_owned(),
            end,
            longest,
            by,
            reply,
        })
        .await
    }

    /// A supervisor ends `user`'s window now; `None` (and nothing
    /// recorded) when they had none. Announced as
    /// [`PresenceEvent::ForcedOffline`], as when the switch sets an agent
    /// offline: the queue stops offering them calls and the agent is
    /// called to be told.
    pub async fn end_window(&self, user: &str, by: Actor) -> Result<Option<Window>> {
        self.ask(|reply| Command::EndWindow {
            user: user.to_owned(),
            by,
            reply,
        })
        .await
    }

    /// The agent is on a call (`true`) or no longer (`false`). A window
    /// that ends during the call is closed when the call ends.
    pub async fn set_busy(&self, user: &str, busy: bool) -> Result<()> {
        let activity = if busy { Activity::Busy } else { Activity::Idle };
        self.set_activity(user, activity).await
    }

    /// Idle, busy or wrap-up (wrap-up does not hold back an expiry: the
    /// agent is no longer talking to anyone).
    pub async fn set_activity(&self, user: &str, activity: Activity) -> Result<()> {
        self.ask(|reply| Command::Activity {
            user: user.to_owned(),
            activity,
            reply,
        })
        .await
    }

    /// `user`'s open window, after every expiry due by now has been applied.
    pub async fn current(&self, user: &str) -> Result<Option<Window>> {
        self.ask(|reply| Command::Current {
            user: user.to_owned(),
            reply,
        })
        .await
    }

    /// Record a finished log-in call (written in order with the presence
    /// change it made).
    pub async fn record_login(&self, call: NewLoginCall) -> Result<()> {
        self.ask(|reply| Command::RecordLogin { call, reply }).await
    }

    /// Call agents `lead` before their window ends (`None`: never); the
    /// open windows are planned again with it. Does not wait.
    pub fn remind_before(&self, lead: Option<chrono::Duration>) {
        let _ = self.tx.try_send(Command::RemindBefore(lead));
    }

    /// Another node changed `user`'s window (`None`: someone's, or a
    /// notification may have been missed): re-read it from the store, arm
    /// or disarm its expiry here, and tell subscribers with
    /// [`PresenceEvent::Synced`]. Does not wait.
    pub fn resync(&self, user: Option<&str>) {
        let _ = self.tx.try_send(Command::Resync {
            user: user.map(str::to_owned),
        });
    }

    /// Presence events from now on. A subscriber more than
    /// `EVENT_QUEUE` events behind gets `RecvError::Lagged` and misses them.
    pub fn subscribe(&self) -> broadcast::Receiver<PresenceEvent> {
        self.events.subscribe()
    }

    /// Stop the service after the command being run; later requests fail
    /// with [`ServiceError::Stopped`].
    pub async fn shutdown(&self) {
        // Already stopped is fine.
        let _ = self.tx.send(Command::Shutdown).await;
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ServiceError::Stopped)?;
        rx.await.map_err(|_| ServiceError::Stopped)?
    }
}

/// The service before it runs: subscribe through its handle first if the
/// start-up expiries matter, then [`PresenceService::spawn`].
pub struct PresenceService {
    store: Store,
    clock: Arc<dyn Clock>,
    sched: ExpiryScheduler,
    reminders: ReminderScheduler,
    rx: mpsc::Receiver<Command>,
    events: broadcast::Sender<PresenceEvent>,
    /// Expiries the store refused, retried at `retry_at`.
    failed: Vec<Expiry>,
    retry_at: Option<DateTime<Utc>>,
    /// Windows and log-in records taken but not yet written: written
    /// together, in one transaction, once no command is waiting (group
    /// commit, see `group`). Each caller hears back only after that commit.
    group: Group,
    login_linger: Duration,
}

impl PresenceService {
    pub fn new(
        store: impl Into<Store>,
        clock: Arc<dyn Clock>,
    ) -> (PresenceService, PresenceHandle) {
        let store = store.into();
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let handle = PresenceHandle {
            tx,
            events: events.clone(),
            clock: clock.clone(),
        };
        let service = PresenceService {
            store,
            clock,
            sched: ExpiryScheduler::new(),
            reminders: ReminderScheduler::new(),
            rx,
            events,
            failed: Vec::new(),
            retry_at: None,
            group: Group::default(),
            login_linger: LOGIN_LINGER,
        };
        (service, handle)
    }

    /// How long a log-in record waits for others to share its commit
    /// (the group commit's `LOGIN_LINGER` unless set).
    pub fn with_login_linger(mut self, linger: Duration) -> Self {
        self.login_linger = linger;
        self
    }

    /// `new` + `spawn`. Windows that ended while the switch was down are
    /// closed before this returns, but nobody has subscribed yet to hear
    /// about them; use `new`, `subscribe`, `spawn` to be told.
    pub async fn start(
        store: impl Into<Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<(PresenceHandle, JoinHandle<()>), StoreError> {
        let (service, handle) = PresenceService::new(store, clock);
        let task = service.spawn().await?;
        Ok((handle, task))
    }

    /// Recover from the store, then run the loop in a task. Start-up errors
    /// (the store cannot be read) are returned here, before anything runs.
    pub async fn spawn(mut self) -> Result<JoinHandle<()>, StoreError> {
        self.recover().await?;
        Ok(tokio::spawn(self.run()))
    }

    /// Re-arm open windows and close those that ended while we were down,
    /// each with its real end. No call survives a restart, so every stored
    /// activity (busy, wrap-up) is stale and is cleared.
    async fn recover(&mut self) -> Result<(), StoreError> {
        agent_state::clear_activities(&self.store).await?;
        let now = self.clock.now();
        let open = self.store.all_current().await?;
        for (user, window) in &open {
            if window.end > now {
                self.reminders.arm(user.clone(), *window);
            }
        }
        let ended = self.sched.rearm_from(open, now);
        for (user, window) in ended {
            if let Some(w) = self
                .store
                .expire(&user, window.end, REASON_ENDED_DOWN)
                .await?
            {
                tracing::info!(agent = %user, end = %super::fmt_secs(w.end), "window ended while down");
                self.emit(PresenceEvent::Expired {
                    user,
                    end: w.end,
                    while_down: true,
                    deferred: false,
                });
            }
        }
        tracing::info!(armed = self.sched.len(), "presence service recovered");
        Ok(())
    }

    async fn run(mut self) {
        let changes = self.clock.changes();
        loop {
            let wait = self.wait();
            let command = tokio::select! {
                biased;
                command = self.rx.recv() => match command {
                    Some(c) => Some(c),
                    // Every handle is gone: nobody can ask anything again.
                    None => break,
                },
                _ = clock_changed(changes.as_deref()) => None,
                _ = tokio::time::sleep(wait) => None,
            };
            // What is gathered is written before anything else reads or
            // changes the same agent's presence (or every agent's, or an
            // expiry or a reminder comes due), so each agent's requests
            // take effect in the order asked. Another agent's command goes
            // ahead: nobody has been told of the gathered windows yet, so
            // no one can tell. (Each log-in call asks to clear its agent's
            // not-responding mark first; writing the group before each
            // of those left groups of one or two at 200 calls a second.)
            let write_first = match &command {
                None => true,
                Some(c) if c.joins_group() => false,
                Some(c) => c.user().is_none_or(|u| self.group.has_window_for(u)),
            };
            if write_first || self.wait().is_zero() {
                self.write_group().await;
            }
            self.expire_due().await;
            self.remind_due().await;
            if let Some(c) = command {
                if !self.group.is_empty() {
                    self.group.passed += 1;
                }
                if self.handle(c).await.is_break() {
                    break;
                }
            }
            // Group commit: requests gather while commands keep coming (each
            // write's fsync is the time others queue in) and go in one
            // transaction as soon as none is waiting, so a quiet switch
            // writes each window at once and a busy one shares the fsync.
            // Log-in records alone wait for their deadline (`group`).
            if self.group.is_due(Instant::now(), self.rx.is_empty()) {
                self.write_group().await;
            }
        }
        self.write_group().await;
        tracing::info!("presence service stopped");
    }

    /// How long to sleep: until the next deadline or retry, or the
    /// gathered log-in records' write, at most MAX_SLEEP.
    fn wait(&self) -> Duration {
        let next = [
            self.sched.deadline(),
            self.retry_at,
            self.reminders.deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let wall = match next {
            // A past deadline gives a negative delta: to_std fails, wake now.
            Some(t) => (t - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        // The group's deadline is on the monotonic clock: it is about
        // sharing a disk write, not about anyone's window.
        match self.group.deadline() {
            Some(due) => wall.min(due.saturating_duration_since(Instant::now())),
            None => wall,
        }
    }

    async fn expire_due(&mut self) {
        let now = self.clock.now();
        let mut due = Vec::new();
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            due.append(&mut self.failed);
        }
        while let Some(e) = self.sched.poll_expired(now) {
            self.reminders.disarm(&e.user);
            due.push(e);
        }
        for e in due {
            let reason = if e.deferred {
                REASON_ENDED_IN_CALL
            } else {
                REASON_ENDED
            };
            let started = std::time::Instant::now();
            let expired = self.store.expire(&e.user, e.end, reason).await;
            crate::telemetry::store_write("expire", started.elapsed());
            match expired {
                Ok(Some(_)) => {
                    tracing::info!(agent = %e.user, end = %super::fmt_secs(e.end), deferred = e.deferred, "window expired");
                    self.emit(PresenceEvent::Expired {
                        user: e.user,
                        end: e.end,
                        while_down: false,
                        deferred: e.deferred,
                    });
                }
                // Replaced or closed meanwhile (e.g. by another process).
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(agent = %e.user, error = %err, "cannot close an ended window; retrying");
                    self.failed.push(e);
                    self.retry_at = Some(now + RETRY_AFTER);
                }
            }
        }
    }

    /// Records and announces each reminder due; one the store already has
    /// (a restart, another node) is not repeated.
    async fn remind_due(&mut self) {
        let now = self.clock.now();
        while let Some(r) = self.reminders.poll(now) {
            match self.store.mark_reminded(&r.user, r.end, now).await {
                Ok(true) => {
                    tracing::info!(agent = %r.user, end = %super::fmt_secs(r.end), "window ends soon: reminding the agent");
                    self.emit(PresenceEvent::Remind {
                        user: r.user,
                        end: r.end,
                    });
                }
                Ok(false) => {
                    tracing::debug!(agent = %r.user, "reminder already given for this window end");
                }
                // A reminder is a courtesy: not retried, the window still
                // ends and the agent is still told.
                Err(err) => {
                    tracing::warn!(agent = %r.user, error = %err, "cannot record a reminder: not placing it");
                }
            }
        }
    }

    async fn handle(&mut self, command: Command) -> ControlFlow<()> {
        match command {
            Command::RemindBefore(lead) => self.reminders.set_lead(lead),
            Command::Online {
                user,
                hours,
                call_id,
                reply,
            } => {
                let start = self.clock.now();
                match start.checked_add_signed(chrono::Duration::hours(i64::from(hours))) {
                    Some(end) => self.group.onlines.push(PendingOnline {
                        user,
                        start,
                        end,
                        call_id,
                        reply,
                    }),
                    None => {
                        let _ = reply.send(Err(ServiceError::OutOfRange { hours, start }));
                    }
                }
            }
            Command::Offline {
                user,
                call_id,
                reason,
                reply,
            } => {
                let now = self.clock.now();
                let started = std::time::Instant::now();
                let result = self
                    .store
                    .set_offline(&user, now, call_id.as_deref(), reason)
                    .await;
                crate::telemetry::store_write("set_offline", started.elapsed());
                let result = result.map_err(ServiceError::from).inspect(|window| {
                    self.sched.disarm(&user);
                    self.reminders.disarm(&user);
                    self.emit(PresenceEvent::Offline {
                        user: user.clone(),
                        window: *window,
                    });
                });
                let _ = reply.send(result);
            }
            Command::Force {
                user,
                reason,
                reply,
            } => {
                let now = self.clock.now();
                let started = std::time::Instant::now();
                let result = self.store.force_offline(&user, now, &reason).await;
                crate::telemetry::store_write("force_offline", started.elapsed());
                let result = result.map_err(ServiceError::from).inspect(|window| {
                    self.sched.disarm(&user);
                    self.reminders.disarm(&user);
                    self.emit(PresenceEvent::ForcedOffline {
                        user: user.clone(),
                        window: *window,
                        reason: reason.clone(),
                        actor: super::ACTOR_SWITCH.to_owned(),
                    });
                });
                let _ = reply.send(result);
            }
            Command::Extend {
                user,
                hours,
                longest,
                reply,
            } => {
                let result = self.extend(&user, hours, longest).await;
                let _ = reply.send(result);
            }
            Command::NotResponding {
                user,
                reason,
                reply,
            } => {
                let now = self.clock.now();
                let started = std::time::Instant::now();
                let result = self.store.set_not_responding(&user, now, &reason).await;
                crate::telemetry::store_write("set_not_responding", started.elapsed());
                let result = result.map_err(ServiceError::from).inspect(|window| {
                    tracing::info!(agent = %user, reason = %reason, "agent set to not responding");
                    self.sched.disarm(&user);
                    self.reminders.disarm(&user);
                    self.emit(PresenceEvent::NotResponding {
                        user: user.clone(),
                        window: *window,
                        reason: reason.clone(),
                    });
                });
                let _ = reply.send(result);
            }
            Command::ClearNotResponding {
                user,
                actor,
                reason,
                reply,
            } => {
                let now = self.clock.now();
                let started = std::time::Instant::now();
                let result = self
                    .store
                    .clear_not_responding(&user, now, &actor, &reason)
                    .await;
                crate::telemetry::store_write("clear_not_responding", started.elapsed());
                let result = result.map_err(ServiceError::from).inspect(|cleared| {
                    if *cleared {
                        tracing::info!(agent = %user, actor = %actor, reason = %reason, "not-responding cleared");
                        self.emit(PresenceEvent::Responding {
                            user: user.clone(),
                            actor: actor.clone(),
                        });
                    }
                });
                let _ = reply.send(result);
            }
            Command::SetWindow {
                user,
                end,
                longest,
                by,
                reply,
            } => {
                let result = self.set_window(&user, end, longest, &by).await;
                let _ = reply.send(result);
            }
            Command::EndWindow { user, by, reply } => {
                let now = self.clock.now();
                let started = std::time::Instant::now();
                let result = self
                    .store
                    .end_window(&user, now, &by.name, &by.reason)
                    .await;
                crate::telemetry::store_write("end_window", started.elapsed());
                let result = result.map_err(ServiceError::from).inspect(|window| {
                    if let Some(w) = window {
                        tracing::info!(agent = %user, actor = %by.name, reason = %by.reason, end = %super::fmt_secs(w.end), "window ended on the agent's behalf");
                        self.sched.disarm(&user);
                    self.reminders.disarm(&user);
                        self.emit(PresenceEvent::ForcedOffline {
                            user: user.clone(),
                            window: Some(*w),
                            reason: by.reason.clone(),
                            actor: by.name.clone(),
                        });
                    }
                });
                let _ = reply.send(result);
            }
            Command::Activity {
                user,
                activity,
                reply,
            } => {
                // The in-memory state decides; the table is for display, so
                // a failed write is logged, not fatal to the call.
                self.sched.set_busy(&user, activity == Activity::Busy);
                self.reminders.set_busy(&user, activity == Activity::Busy);
                let now = self.clock.now();
                if let Err(err) = agent_state::set_activity(&self.store, &user, activity, now).await
                {
                    tracing::warn!(agent = %user, error = %err, "cannot publish agent activity");
                }
                let _ = reply.send(Ok(()));
            }
            Command::Current { user, reply } => {
                let result = self.store.current(&user).await.map_err(ServiceError::from);
                let _ = reply.send(result);
            }
            Command::RecordLogin { call, reply } => {
                self.group
                    .push_login(call, reply, Instant::now(), self.login_linger);
            }
            Command::Resync { user } => self.resync(user).await,
            Command::Shutdown => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }

    /// Writes the gathered windows and log-in records in one transaction,
    /// then arms each window's timers, announces it and answers its caller.
    /// If the store refuses the group, each request is tried alone, so one
    /// it refuses cannot take the others with it and each caller hears its
    /// own request's fate. One request alone takes its own write, as it
    /// always did (and keeps its own name in the write metrics).
    async fn write_group(&mut self) {
        let Group {
            onlines, logins, ..
        } = std::mem::take(&mut self.group);
        let (calls, replies): (Vec<NewLoginCall>, Vec<Reply<()>>) = logins.into_iter().unzip();
        if onlines.len() + calls.len() > 1 {
            let requests: Vec<_> = onlines.iter().map(PendingOnline::request).collect();
            let started = std::time::Instant::now();
            let result = self.store.write_group(&requests, &calls).await;
            crate::telemetry::store_write("write_group", started.elapsed());
            // Committed: the store hands back one window per request, in
            // order. (Retrying one by one after a commit would write them
            // all twice.)
            if let Ok(windows) = result {
                for (p, window) in onlines.into_iter().zip(windows) {
                    self.opened(&p.user, window);
                    let _ = p.reply.send(Ok(window));
                }
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
                return;
            }
        }
        for p in onlines {
            let result = self.online(&p.request()).await;
            let _ = p.reply.send(result);
        }
        for (call, reply) in calls.iter().zip(replies) {
            let started = std::time::Instant::now();
            let result = self.store.insert_login_call(call).await;
            crate::telemetry::store_write("insert_login_call", started.elapsed());
            let _ = reply.send(result.map(|_| ()).map_err(ServiceError::from));
        }
    }

    /// Windows as the shared store has them: arm what another node opened
    /// or moved, disarm what it closed. A window already past its end is
    /// armed too and closed by the next `expire_due` (once: the store's
    /// per-agent lock lets one node close it).
    async fn resync(&mut self, user: Option<String>) {
        let stored: Vec<(String, Option<Window>)> = match user {
            Some(u) => match self.store.current(&u).await {
                Ok(w) => vec![(u, w)],
                Err(e) => {
                    tracing::warn!(agent = %u, error = %e, "cannot re-read the agent's window");
                    return;
                }
            },
            None => match self.store.all_current().await {
                Ok(all) => {
                    let mut out: Vec<(String, Option<Window>)> =
                        all.into_iter().map(|(u, w)| (u, Some(w))).collect();
                    for u in self.sched.users() {
                        if !out.iter().any(|(s, _)| *s == u) {
                            out.push((u, None));
                        }
                    }
                    out
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-read the windows");
                    return;
                }
            },
        };
        for (user, window) in stored {
            match window {
                Some(w) if self.sched.armed_end(&user) != Some(w.end) => {
                    self.reminders.arm(user.clone(), w)
                }
                Some(_) => {}
                None => self.reminders.disarm(&user),
            }
            if self.sched.sync(&user, window.map(|w| w.end)) {
                tracing::debug!(agent = %user, open = window.is_some(), "window changed on another node");
                self.emit(PresenceEvent::Synced { user, window });
            }
        }
    }

    async fn online(&mut self, r: &OnlineRequest<'_>) -> Result<Window> {
        let started = std::time::Instant::now();
        let window = self
            .store
            .set_online(r.user, r.start, r.end, r.call_id, r.reason)
            .await;
        crate::telemetry::store_write("set_online", started.elapsed());
        let window = window?;
        self.opened(r.user, window);
        Ok(window)
    }

    /// A window the agent opened is durable: its timers, then the news.
    fn opened(&mut self, user: &str, window: Window) {
        self.sched.arm(user, window.end);
        self.reminders.arm(user, window);
        self.emit(PresenceEvent::Online {
            user: user.to_owned(),
            window,
            actor: super::ACTOR_AGENT.to_owned(),
        });
    }

    async fn extend(
        &mut self,
        user: &str,
        hours: u32,
        longest: chrono::Duration,
    ) -> Result<Window> {
        let now = self.clock.now();
        let current = self.store.current(user).await?;
        let from = current.map_or(now, |w| w.end.max(now));
        let wanted = from
            .checked_add_signed(chrono::Duration::hours(i64::from(hours)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // Clamped, not refused: the agent hears the end they got. A window
        // already past the bound (set by a supervisor) is kept, never cut.
        let cap = now
            .checked_add_signed(longest)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .max(from);
        let by = Actor {
            name: super::ACTOR_AGENT.to_owned(),
            reason: format!("added {hours} h by phone"),
        };
        let end = wanted.min(cap);
        let change = self
            .set_window(user, WindowEnd::Until(end), longest.max(end - now), &by)
            .await?;
        Ok(change.window)
    }

    async fn set_window(
        &mut self,
        user: &str,
        end: WindowEnd,
        longest: chrono::Duration,
        by: &Actor,
    ) -> Result<WindowChange> {
        let now = self.clock.now();
        let end = match end {
            WindowEnd::Minutes(m) => now
                .checked_add_signed(chrono::Duration::minutes(i64::from(m)))
                .ok_or(ServiceError::TooLong {
                    end: DateTime::<Utc>::MAX_UTC,
                    longest,
                })?,
            WindowEnd::Until(t) => t,
        };
        if end <= now {
            return Err(ServiceError::EndNotAfterNow { end, now });
        }
        if end - now > longest {
            return Err(ServiceError::TooLong { end, longest });
        }
        let started = std::time::Instant::now();
        let change = self
            .store
            .set_window(user, now, end, &by.name, &by.reason)
            .await;
        crate::telemetry::store_write("set_window", started.elapsed());
        let change = change?;
        // Re-armed for the new end: the old timer would otherwise close
        // the window early (`expire` would refuse it, the end having
        // moved) or never (a shortened window).
        self.sched.arm(user, change.window.end);
        self.reminders.arm(user, change.window);
        tracing::info!(agent = %user, actor = %by.name, reason = %by.reason, change = change.kind.as_str(), end = %super::fmt_secs(change.window.end), "window set on the agent's behalf");
        self.emit(PresenceEvent::Online {
            user: user.to_owned(),
            window: change.window,
            actor: by.name.clone(),
        });
        Ok(change)
    }

    fn emit(&self, event: PresenceEvent) {
        // No subscriber is not an error: nobody needs to be told.
        let _ = self.events.send(event);
    }
}

/// Resolves when the clock signals a jump; never for clocks without one.
async fn clock_changed(changes: Option<&Notify>) {
    match changes {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "service_actor_tests.rs"]
mod actor_tests;
