//! The agent board: every agent's routing state and the counters the
//! selection strategies read.
//!
//! Two things are tracked separately because they change for different
//! reasons: whether the agent is *online* (their timed-presence window, set
//! by the log-in line, the admin API or the expiry scheduler) and what they
//! are *doing* (idle, being offered a call, on a call, wrapping up). The
//! state shown to everyone else, [`AgentState`], is derived from the two.
//!
//! Missed offers follow the FreeSWITCH mod_callcenter rules: a busy line is
//! not the agent's fault and does not count; no answer, a decline (603) and
//! an answered-but-not-accepted offer do. `max_no_answer` consecutive misses
//! take the agent out of routing as *not responding* (issue 14: a named
//! state, as Webex's RONA, kept in the store until they call in); one call
//! actually taken resets the count.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::CallId;
use crate::config::{Extension, User};

/// What routing needs to know about a user from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProfile {
    pub id: String,
    pub skills: Vec<String>,
    /// DTMF digits sent after the agent's line answers (reaching them behind
    /// a PBX); "" = none.
    pub ext: String,
    /// Reached on their nailed-up line (the log-in call kept connected),
    /// never by a call per customer (issue 14).
    pub nailed_up: bool,
}

impl AgentProfile {
    /// The profile of a configured user. Calls go to the user's first PSTN
    /// extension, so its `ext` digits are the ones to send.
    pub fn from_user(user: &User) -> Self {
        let ext = user
            .extensions
            .first()
            .map(|e| match e {
                Extension::Pstn { ext, .. } => ext.clone(),
            })
            .unwrap_or_default();
        AgentProfile {
            id: user.id.clone(),
            skills: user.skills.clone(),
            ext,
            nailed_up: user.connection == crate::config::Connection::NailedUp,
        }
    }

    pub fn has_all(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.skills.contains(r))
    }
}

/// An agent's routing state as shown to the rest of the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Offline,
    /// Online and free to be offered a call.
    Available,
    /// A call rings (or whispers) on the agent's line; one at a time.
    Offered(CallId),
    /// Bridged to a customer.
    Busy(CallId),
    /// Online, after a call, not yet offered new ones.
    WrapUp {
        until: Instant,
    },
    /// Online, but another node of a shared store holds a claim on the
    /// agent (offering them a call, on a call, or in wrap-up there), at
    /// least until `until` or until that node says it let them go. Never
    /// offered here meanwhile: a claim is what keeps one agent from being
    /// rung by two nodes (docs/scaling.md).
    Elsewhere {
        until: Instant,
    },
    /// Online and nailed-up, but their line is not connected to this node
    /// (not yet handed over after the log-in menu, dropped by a restart,
    /// or held by another node): not offered here until it is.
    NoLine,
}

/// Why an offer did not become a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissKind {
    /// Ring timeout, 480, 404, 408, or a 200 that never carried media.
    NoAnswer,
    /// 486 / 600: the line was busy. Not the agent's fault; not counted.
    Busy,
    /// 603 Decline, or the agent answered and hung up without accepting.
    Rejected,
    /// The agent answered but never pressed the accept key.
    NotAccepted,
}

impl MissKind {
    /// Whether this kind counts towards `max_no_answer`.
    pub fn counts(self) -> bool {
        !matches!(self, MissKind::Busy)
    }
}

/// What the caller of [`AgentBoard::missed`] must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissVerdict {
    /// Nothing to persist: the agent stays online (or was already going
    /// offline because their window ended).
    KeepOnline,
    /// The agent reached `max_no_answer` (`misses` in a row) and the board
    /// took them offline; the caller must persist them as not responding
    /// and notify them.
    NotResponding { misses: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BoardError {
    #[error(
        "user \"{0}\" is not in the agent board; add them under [[users]] in the \
         configuration and reload"
    )]
    UnknownUser(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OfferError {
    #[error(
        "user \"{0}\" is not in the agent board; add them under [[users]] in the \
         configuration and reload"
    )]
    UnknownUser(String),
    #[error("agent \"{user}\" cannot be offered a call: they are {state:?}")]
    NotAvailable { user: String, state: AgentState },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Idle,
    Offered(CallId),
    Busy(CallId),
    WrapUp(Instant),
    Elsewhere(Instant),
}

#[derive(Debug, Clone, Copy)]
struct Online {
    /// The window's wall-clock end, for display; the expiry scheduler, not
    /// the board, decides when it has passed (it reports `window_ended`).
    until: DateTime<Utc>,
    since: Instant,
}

#[derive(Debug, Clone)]
pub(super) struct Agent {
    profile: AgentProfile,
    online: Option<Online>,
    activity: Activity,
    /// The window ended during a call: go offline when the call is over.
    offline_after_call: bool,
    last_call_end: Option<Instant>,
    /// Calls taken since the agent last went online.
    calls_taken: u32,
    /// Consecutive counted misses.
    misses: u32,
    /// A nailed-up agent's line is connected here.
    line: bool,
}

impl Agent {
    fn state(&self) -> AgentState {
        match (self.activity, self.online.is_some()) {
            (Activity::Offered(c), _) => AgentState::Offered(c),
            (Activity::Busy(c), _) => AgentState::Busy(c),
            (_, false) => AgentState::Offline,
            (Activity::WrapUp(until), true) => AgentState::WrapUp { until },
            (Activity::Elsewhere(until), true) => AgentState::Elsewhere { until },
            (Activity::Idle, true) if !self.reachable() => AgentState::NoLine,
            (Activity::Idle, true) => AgentState::Available,
        }
    }

    /// Whether an offer can reach the agent: by a new call, or on their
    /// connected nailed-up line.
    fn reachable(&self) -> bool {
        !self.profile.nailed_up || self.line
    }

    /// The call, offered or bridged, is over: apply a window that ended
    /// meanwhile.
    fn release(&mut self, activity: Activity) {
        self.activity = activity;
        if self.offline_after_call {
            self.offline_after_call = false;
            self.online = None;
        }
    }
}

/// Every agent's routing state, in configuration order (round-robin and
/// tie-breaks follow that order, so they are stable across restarts).
#[derive(Debug, Clone, Default)]
pub struct AgentBoard {
    agents: Vec<Agent>,
}

impl AgentBoard {
    pub fn new(profiles: impl IntoIterator<Item = AgentProfile>) -> Self {
        let mut board = AgentBoard::default();
        for p in profiles {
            board.add_agent(p);
        }
        board
    }

    pub fn from_users(users: &[User]) -> Self {
        Self::new(users.iter().map(AgentProfile::from_user))
    }

    /// Adds an agent (offline), or replaces the profile of a known one
    /// keeping their state.
    pub fn add_agent(&mut self, profile: AgentProfile) {
        if let Some(a) = self.agents.iter_mut().find(|a| a.profile.id == profile.id) {
            a.profile = profile;
            return;
        }
        self.agents.push(Agent {
            profile,
            online: None,
            activity: Activity::Idle,
            offline_after_call: false,
            last_call_end: None,
            calls_taken: 0,
            misses: 0,
            line: false,
        });
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    pub fn state(&self, user: &str) -> Option<AgentState> {
        self.get(user).map(Agent::state)
    }

    pub fn profile(&self, user: &str) -> Option<&AgentProfile> {
        self.get(user).map(|a| &a.profile)
    }

    /// Every agent's state, in configuration order.
    pub fn states(&self) -> impl Iterator<Item = (&str, AgentState)> {
        self.agents
            .iter()
            .map(|a| (a.profile.id.as_str(), a.state()))
    }

    /// The end of the agent's online window, while online.
    pub fn window_end(&self, user: &str) -> Option<DateTime<Utc>> {
        self.get(user).and_then(|a| a.online.map(|o| o.until))
    }

    pub fn misses(&self, user: &str) -> Option<u32> {
        self.get(user).map(|a| a.misses)
    }

    pub fn calls_taken(&self, user: &str) -> Option<u32> {
        self.get(user).map(|a| a.calls_taken)
    }

    /// Opens (or extends) the agent's window. Coming online from offline
    /// starts a fresh idle period and call count; a busy agent stays busy.
    pub fn set_online(
        &mut self,
        user: &str,
        until: DateTime<Utc>,
        now: Instant,
    ) -> Result<(), BoardError> {
        let a = self.get_mut(user)?;
        if a.online.is_none() {
            a.online = Some(Online { until, since: now });
            a.calls_taken = 0;
            a.misses = 0;
        } else if let Some(o) = a.online.as_mut() {
            o.until = until;
        }
        a.offline_after_call = false;
        Ok(())
    }

    /// Takes the agent offline at once. A call in progress is not cut: it
    /// finishes, and the agent is simply not offered another.
    pub fn set_offline(&mut self, user: &str) -> Result<(), BoardError> {
        let a = self.get_mut(user)?;
        a.online = None;
        a.offline_after_call = false;
        Ok(())
    }

    /// The agent's window reached its end. An agent on a call (or being
    /// offered one) is not cut off: they go offline when it is over.
    pub fn window_ended(&mut self, user: &str) -> Result<(), BoardError> {
        let a = self.get_mut(user)?;
        match a.activity {
            Activity::Offered(_) | Activity::Busy(_) if a.online.is_some() => {
                a.offline_after_call = true;
            }
            _ => {
                a.online = None;
                a.offline_after_call = false;
            }
        }
        Ok(())
    }

    /// The agent's nailed-up line is connected here (`true`) or gone.
    pub fn set_line(&mut self, user: &str, up: bool) -> Result<(), BoardError> {
        self.get_mut(user)?.line = up;
        Ok(())
    }

    /// Whether the agent's nailed-up line is connected here.
    pub fn has_line(&self, user: &str) -> bool {
        self.get(user).is_some_and(|a| a.line)
    }

    /// True while the agent is online, free, and not about to go offline.
    pub fn is_available(&self, user: &str) -> bool {
        self.get(user).is_some_and(Self::available)
    }

    /// Marks `call` as offered to the agent; only an available agent can be
    /// offered a call.
    pub fn offer(&mut self, user: &str, call: CallId) -> Result<(), OfferError> {
        let a = self
            .agents
            .iter_mut()
            .find(|a| a.profile.id == user)
            .ok_or_else(|| OfferError::UnknownUser(user.to_string()))?;
        if !Self::available(a) {
            return Err(OfferError::NotAvailable {
                user: user.to_string(),
                state: a.state(),
            });
        }
        a.activity = Activity::Offered(call);
        Ok(())
    }

    /// The agent took the offered call (accept key, or answer when no key is
    /// needed): busy, one more call taken, and the miss count starts over.
    pub fn accepted(&mut self, user: &str) -> Result<(), BoardError> {
        let a = self.get_mut(user)?;
        if let Activity::Offered(call) = a.activity {
            a.activity = Activity::Busy(call);
            a.calls_taken = a.calls_taken.saturating_add(1);
            a.misses = 0;
        }
        Ok(())
    }

    /// Another node holds the agent (our claim was refused): the offer of
    /// `call` here is withdrawn, nothing counted, and the agent is not
    /// offered again here before `until` or [`Self::freed_elsewhere`].
    pub fn held_elsewhere(
        &mut self,
        user: &str,
        call: CallId,
        until: Instant,
    ) -> Result<(), BoardError> {
        let a = self.get_mut(user)?;
        if a.activity == Activity::Offered(call) {
            a.release(Activity::Elsewhere(until));
        }
        Ok(())
    }

    /// The node that held the agent let them go: they may be offered here
    /// again (a claim, not this board, still decides who gets them).
    pub fn freed_elsewhere(&mut self, user: &str) -> Result<(), BoardError> {
        let a = self.get_mut(user)?;
        if matches!(a.activity, Activity::Elsewhere(_)) {
            a.activity = Activity::Idle;
        }
        Ok(())
    }

    /// The shared count of consecutive misses, as the store holds it when
    /// this node claims the agent (another node may have counted some).
    pub fn set_misses(&mut self, user: &str, misses: u32) -> Result<(), BoardError> {
        self.get_mut(user)?.misses = misses;
        Ok(())
    }

    /// The offer ended through no fault of the agent (the customer hung up,
    /// the trunk failed): free again, nothing counted.
    pub fn withdraw(&mut self, user: &str) -> Result<(), BoardError> {
        let a = self.get_mut(user)?;
        if matches!(a.activity, Activity::Offered(_)) {
            a.release(Activity::Idle);
        }
        Ok(())
    }

    /// The bridged call ended: wrap-up for `wrap_up` (none when zero), and
    /// the idle period for longest-idle starts now.
    pub fn call_ended(
        &mut self,
        user: &str,
        now: Instant,
        wrap_up: Duration,
    ) -> Result<(), BoardError> {
        let a = self.get_mut(user)?;
        if !matches!(a.activity, Activity::Busy(_)) {
            return Ok(());
        }
        a.last_call_end = Some(now);
        let next = if wrap_up.is_zero() {
            Activity::Idle
        } else {
            Activity::WrapUp(now + wrap_up)
        };
        a.release(next);
        Ok(())
    }

    /// The offered call was missed. Frees the agent, counts the miss unless
    /// the line was busy, and takes the agent offline once
    /// `max_no_answer` (> 0) consecutive misses are reached.
    pub fn missed(
        &mut self,
        user: &str,
        kind: MissKind,
        max_no_answer: u32,
    ) -> Result<MissVerdict, BoardError> {
        let a = self.get_mut(user)?;
        if matches!(a.activity, Activity::Offered(_)) {
            a.release(Activity::Idle);
        }
        if !kind.counts() {
            return Ok(MissVerdict::KeepOnline);
        }
        a.misses = a.misses.saturating_add(1);
        if max_no_answer > 0 && a.misses >= max_no_answer && a.online.is_some() {
            let misses = a.misses;
            a.online = None;
            a.misses = 0;
            return Ok(MissVerdict::NotResponding { misses });
        }
        Ok(MissVerdict::KeepOnline)
    }

    /// Ends every wrap-up due at `now`; returns the agents that became
    /// available (they may be offered calls again).
    pub fn poll(&mut self, now: Instant) -> Vec<String> {
        let mut freed = Vec::new();
        for a in &mut self.agents {
            if let Activity::WrapUp(until) | Activity::Elsewhere(until) = a.activity {
                if until <= now {
                    a.activity = Activity::Idle;
                    if a.online.is_some() {
                        freed.push(a.profile.id.clone());
                    }
                }
            }
        }
        freed
    }

    /// The earliest wrap-up end, when `poll` has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        self.agents
            .iter()
            .filter_map(|a| match a.activity {
                Activity::WrapUp(until) | Activity::Elsewhere(until) => Some(until),
                _ => None,
            })
            .min()
    }

    /// Whether any agent with every one of `skills` is online (free or
    /// not), not counting those whose window already ended mid-call.
    pub fn any_online_with(&self, skills: &[String]) -> bool {
        self.agents
            .iter()
            .any(|a| a.online.is_some() && !a.offline_after_call && a.profile.has_all(skills))
    }

    /// The instant the agent's idle period began: the later of their last
    /// call's end and going online. `None` when offline.
    pub fn idle_since(&self, user: &str) -> Option<Instant> {
        self.get(user).and_then(Self::idle_start)
    }

    pub(super) fn idle_start(a: &Agent) -> Option<Instant> {
        let since = a.online?.since;
        Some(a.last_call_end.map_or(since, |end| end.max(since)))
    }

    pub(super) fn agents(&self) -> impl Iterator<Item = (usize, &Agent)> {
        self.agents.iter().enumerate()
    }

    pub(super) fn index_of(&self, user: &str) -> Option<usize> {
        self.agents.iter().position(|a| a.profile.id == user)
    }

    pub(super) fn available(a: &Agent) -> bool {
        a.online.is_some() && !a.offline_after_call && a.activity == Activity::Idle && a.reachable()
    }

    fn get(&self, user: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.profile.id == user)
    }

    fn get_mut(&mut self, user: &str) -> Result<&mut Agent, BoardError> {
        self.agents
            .iter_mut()
            .find(|a| a.profile.id == user)
            .ok_or_else(|| BoardError::UnknownUser(user.to_string()))
    }
}

impl Agent {
    pub(super) fn profile(&self) -> &AgentProfile {
        &self.profile
    }
}

#[cfg(test)]
#[path = "agents_tests.rs"]
mod tests;
