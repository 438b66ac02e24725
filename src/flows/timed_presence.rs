//! The agent log-in IVR ("timed presence") as a sans-IO state machine.
//!
//! An agent calls in, is recognised by caller ID (optionally an extension on
//! a shared number and a PIN), and picks how many hours to be online:
//! keys 1..=N for presets, 9 for a custom number of hours, 0 for offline.
//! An agent who is already online first hears where they stand ("online
//! until five PM, for three more hours", `flows::agent_status`), and keys
//! 1..=N then add that preset to the window's end instead (issue 14).
//! How far the caller ID alone is believed is the trunk's
//! `caller_id_trust` ([`CallerIdTrust`], given with
//! [`LoginMenu::with_caller_id`]): a caller ID the carrier did not attest,
//! or any caller ID, may have to be backed by the PIN.
//!
//! The shell feeds [`Event`]s with `now`, drains [`Action`]s with
//! [`LoginMenu::poll_action`] after every `handle`, and calls
//! `handle(Event::Timer, ..)` once [`LoginMenu::deadline`] passes.
//!
//! Rules that shape the code:
//! - A prompt and the digit collection it asks for form one step: a key
//!   pressed while a barge-in prompt plays stops it and is the first key of
//!   that step (so an agent who knows the menu can key through Welcome).
//! - The agent's window is read (`LookUpStatus`) only once they are
//!   identified, after the PIN if they have one: nothing about an agent is
//!   said to a caller who has not proven to be them.
//! - There is at most one deadline, and none while a prompt plays or the
//!   store is being read or written: silence is only counted once the caller has
//!   heard the whole question.
//! - Presence is confirmed to the caller only after the shell reports the
//!   write as durable; a failed write is never confirmed.
//! - Keys count only once the dialog is confirmed (the ACK for our 2xx,
//!   RFC 3261 §13.3.1.4). A sender that forges the trunk's address over UDP
//!   never sees our 2xx, so it cannot ACK it (it lacks our To tag); without
//!   this rule it could log an agent in blind, aiming RFC 4733 events at the
//!   RTP port in our answer. Prompts may play before the ACK; keys before it
//!   wait for it (a few, in order) and count once it arrives, so no presence
//!   is ever written for an unconfirmed dialog, and a lost ACK or 2xx (the
//!   ACK then comes a T1 or more later) does not lose the first keys and
//!   change what the later ones mean.

mod settings;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{CallerIdTrust, Pin};
use crate::flows::agent_status::AgentStatus;

pub use self::settings::{
    AgentRef, CallerMatch, MenuPrompts, MenuSettings, SettingsError, MAX_PRESETS,
};
use crate::flows::prompt_plan::{
    extend_menu_clips, online_confirmation, preset_menu_clips, CLIP_EXTENDED, MAX_SPOKEN,
};
pub use crate::flows::prompt_plan::{say_number, PromptName};

/// Key for a custom number of hours.
const CUSTOM_KEY: char = '9';
/// Key for going offline.
const OFFLINE_KEY: char = '0';
/// Ends a variable-length entry early.
const TERMINATOR: char = '#';
/// In the menu of an online nailed-up agent: keep the window, take calls.
const KEEP_KEY: char = '#';
/// "Press the pound key to keep your time and take calls."
pub const CLIP_KEEP_TIME_OPTION: &str = "keep_time_option";
/// Keys held while the dialog is unconfirmed. A lost ACK is re-sent on our
/// 2xx retransmissions, T1 (500 ms) to a few seconds later; an agent keys
/// a whole choice (9, two digits, #) in that time, not more. A sender that
/// never confirms cannot make the menu hold more.
const MAX_EARLY_KEYS: usize = 16;

/// Identifies one `Play` so that a finished event from a playback that was
/// stopped (barge-in) cannot be mistaken for the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlayId(u64);

impl PlayId {
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id back from the media layer, which reports it as a number.
    pub fn from_raw(v: u64) -> Self {
        PlayId(v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The call was answered and media flows.
    Started,
    /// The ACK for our 2xx arrived: the dialog is confirmed (may come before
    /// or after `Started`).
    Confirmed,
    /// A key, reported when it goes down (start of the RFC 4733 event,
    /// RFC 4733 §2.5.1.2) so that barge-in is immediate.
    Digit(char),
    PromptFinished(PlayId),
    /// The deadline passed.
    Timer,
    /// The caller hung up.
    HungUp,
    /// The shell's durable write of the last `WritePresence` completed.
    PresenceWritten(Result<(), String>),
    /// The answer to `LookUpStatus`: the agent's open window as they
    /// should hear it, `None` when they are offline (or it cannot be read:
    /// the menu then offers what it offers an offline agent).
    Status(Option<AgentStatus>),
    /// The durable write of a `PresenceChange::Extend` completed, with the
    /// window it made.
    Extended(Result<AgentStatus, String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceChange {
    Online {
        user_id: String,
        hours: u32,
    },
    Offline {
        user_id: String,
    },
    /// Add `hours` to the open window (the shell answers `Extended`).
    Extend {
        user_id: String,
        hours: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play the clips back to back; `barge_in` means a key stops it.
    Play {
        id: PlayId,
        clips: Vec<PromptName>,
        barge_in: bool,
    },
    /// Stop the current playback (no `PromptFinished` is needed for it).
    StopPlayback,
    /// Write presence durably and report `PresenceWritten` (`Extended`
    /// for an extension).
    WritePresence(PresenceChange),
    /// Read the agent's open window and report `Status`: an agent already
    /// online hears where they stand before their options.
    LookUpStatus {
        user_id: String,
    },
    /// The caller is identified (caller ID, extension, PIN) and the menu is
    /// about to play, once per call: the shell clears the agent's
    /// not-responding mark, durably, before carrying out the next action
    /// (issue 14: calling in clears it). Needs no answer; a failed clear
    /// is the shell's to log, and the menu goes on.
    Identified {
        user_id: String,
    },
    HangUp,
    /// The agent is online and nailed-up: the call is no longer the
    /// menu's. The shell hands it to the queue as the agent's line (it
    /// stays connected until the agent hangs up or goes offline).
    HoldLine {
        user_id: String,
    },
}

/// How the call ended, for metrics and the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Online(u32),
    /// An online agent added this many hours to their window.
    Extended(u32),
    Offline,
    UnknownCaller,
    Withheld,
    TooManyAttempts,
    WrongPin,
    AbandonedByCaller,
    StoreFailed,
    /// The trunk's `caller_id_trust` wants the PIN and the user has none.
    CallerIdRefused,
    /// An online nailed-up agent kept their window and took the call as
    /// their line again (key #, after a restart or from another phone).
    Rejoined,
}

impl Outcome {
    /// A stable keyword for the store and `--json` (kebab-case).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Online(_) => "online",
            Outcome::Extended(_) => "extended",
            Outcome::Offline => "offline",
            Outcome::UnknownCaller => "unknown-caller",
            Outcome::Withheld => "withheld",
            Outcome::TooManyAttempts => "invalid",
            Outcome::WrongPin => "pin-failed",
            Outcome::AbandonedByCaller => "hung-up",
            Outcome::StoreFailed => "store-failed",
            Outcome::CallerIdRefused => "caller-id-refused",
            Outcome::Rejoined => "rejoined",
        }
    }

    /// Hours online, for `Online`; hours added, for `Extended`.
    pub fn hours(self) -> Option<u32> {
        match self {
            Outcome::Online(h) | Outcome::Extended(h) => Some(h),
            _ => None,
        }
    }
}

/// Words for log lines and listings: "online 8 h", "PIN failed".
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Online(h) => write!(f, "online {h} h"),
            Outcome::Extended(h) => write!(f, "extended by {h} h"),
            Outcome::Offline => f.write_str("offline"),
            Outcome::UnknownCaller => f.write_str("unknown caller"),
            Outcome::Withheld => f.write_str("withheld caller"),
            Outcome::TooManyAttempts => f.write_str("invalid"),
            Outcome::WrongPin => f.write_str("PIN failed"),
            Outcome::AbandonedByCaller => f.write_str("hung up"),
            Outcome::StoreFailed => f.write_str("store failed"),
            Outcome::CallerIdRefused => f.write_str("caller ID refused"),
            Outcome::Rejoined => f.write_str("rejoined the line"),
        }
    }
}

/// What let the caller in as the agent, for the log-in record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerIdCheck {
    /// The agent's PIN was entered.
    Pin,
    /// No PIN: the carrier attested the caller ID (STIR/SHAKEN).
    Attested,
    /// No PIN and no attestation: the caller ID alone (policy `any`).
    Unverified,
}

impl CallerIdCheck {
    /// A stable keyword for the store and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallerIdCheck::Pin => "pin",
            CallerIdCheck::Attested => "attested",
            CallerIdCheck::Unverified => "unverified",
        }
    }
}

/// What a collection of keys is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Extension,
    Pin,
    Menu,
    CustomHours,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Collect(Step),
    HangUp,
    /// Hand the call over as the agent's nailed-up line.
    HoldLine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    NotRequested,
    /// `WritePresence` is queued but the shell has not taken it yet.
    Queued,
    /// The shell took `WritePresence`; its result is still to come.
    InFlight,
    Settled,
}

/// What the menu knows of the identified agent's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Not read yet (`LookUpStatus` is sent on the way to the menu).
    Unknown,
    Offline,
    Online(AgentStatus),
}

#[derive(Debug)]
enum Phase {
    NotStarted,
    /// Waiting for `Status`; `lead` plays before the menu once it comes.
    LookingUp {
        lead: Vec<PromptName>,
    },
    Playing {
        id: PlayId,
        barge_in: bool,
        then: Then,
    },
    Collecting {
        step: Step,
        digits: String,
        deadline: Instant,
    },
    /// Waiting for `PresenceWritten`; `confirm` plays once it is `Ok`.
    Storing {
        outcome: Outcome,
        confirm: Vec<PromptName>,
    },
    Done,
}

pub struct LoginMenu {
    prompts: MenuPrompts,
    presets: Vec<u32>,
    custom_max_digits: usize,
    max_attempts: u32,
    pin_attempts: u32,
    digit_timeout: Duration,
    ext_timeout: Duration,
    menu_clips: Vec<PromptName>,
    /// The options of an agent already online.
    extend_clips: Vec<PromptName>,

    caller: Option<CallerMatch>,
    /// The dialog is confirmed; until then keys wait in `early_keys`.
    confirmed: bool,
    early_keys: Vec<char>,
    shared: Vec<(String, AgentRef)>,
    agent: Option<AgentRef>,
    standing: Standing,
    /// The trunk's `caller_id_trust`, and whether the carrier attested
    /// the caller ID.
    trust: CallerIdTrust,
    attested: bool,
    /// The agent's PIN was entered correctly.
    pin_checked: bool,
    /// `Action::Identified` was given.
    identified: bool,

    phase: Phase,
    next_play: u64,
    ext_failures: u32,
    pin_failures: u32,
    menu_failures: u32,
    write: Write,
    outcome: Option<Outcome>,
    actions: VecDeque<Action>,
}

impl LoginMenu {
    /// Nothing happens until `Event::Started`; `_now` is accepted so every
    /// sans-IO constructor has the same shape.
    pub fn new(settings: &MenuSettings, caller: CallerMatch, _now: Instant) -> Self {
        // Out-of-range settings are refused by `MenuSettings::validate`; here
        // they are only clamped so a bad value can never panic a call.
        let presets: Vec<u32> = settings.presets.iter().take(MAX_PRESETS).copied().collect();
        let custom_max_digits = settings.custom_max_digits.clamp(1, 2);
        let menu_clips = preset_menu_clips(
            &presets,
            custom_max_digits,
            MAX_PRESETS,
            &settings.prompts.preset_hours,
        );
        let extend_clips = extend_menu_clips(&presets, MAX_PRESETS);
        LoginMenu {
            prompts: settings.prompts.clone(),
            presets,
            custom_max_digits: usize::from(custom_max_digits),
            max_attempts: settings.max_attempts.max(1),
            pin_attempts: settings.pin_attempts.max(1),
            digit_timeout: settings.digit_timeout,
            ext_timeout: settings.ext_timeout,
            menu_clips,
            extend_clips,
            caller: Some(caller),
            confirmed: false,
            early_keys: Vec::new(),
            shared: Vec::new(),
            agent: None,
            standing: Standing::Unknown,
            trust: CallerIdTrust::Any,
            attested: false,
            pin_checked: false,
            identified: false,
            phase: Phase::NotStarted,
            next_play: 0,
            ext_failures: 0,
            pin_failures: 0,
            menu_failures: 0,
            write: Write::NotRequested,
            outcome: None,
            actions: VecDeque::new(),
        }
    }

    /// How far the caller ID is believed: the trunk's `caller_id_trust`,
    /// and whether the carrier attested this one. Without it the menu acts
    /// as `any` always did (the PIN only when the user has one).
    pub fn with_caller_id(mut self, trust: CallerIdTrust, attested: bool) -> Self {
        self.trust = trust;
        self.attested = attested;
        self
    }

    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Started => self.on_started(),
            Event::Confirmed => {
                self.confirmed = true;
                for key in std::mem::take(&mut self.early_keys) {
                    self.on_digit(key, now);
                }
            }
            Event::Digit(key) if self.confirmed && !self.looking_up() => self.on_digit(key, now),
            Event::Digit(key) => {
                if self.early_keys.len() < MAX_EARLY_KEYS {
                    self.early_keys.push(key);
                }
            }
            Event::PromptFinished(id) => self.on_prompt_finished(id, now),
            Event::Timer => self.on_timer(now),
            Event::HungUp => self.on_hung_up(),
            Event::PresenceWritten(result) => self.on_written(result.map(|()| None)),
            Event::Extended(result) => self.on_written(result.map(Some)),
            Event::Status(status) => self.on_status(status, now),
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front()?;
        if matches!(action, Action::WritePresence(_)) {
            self.write = Write::InFlight;
        }
        Some(action)
    }

    /// When to deliver `Event::Timer`; only while keys are being collected.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Collecting { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// How the call ended (or is ending); `None` while undecided.
    ///
    /// If the caller hangs up while a presence write is in flight, the
    /// outcome is the requested change, turned into `StoreFailed` if the
    /// shell later reports the write as failed.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// The user the caller was identified as, once known (after the
    /// extension on a shared line).
    pub fn agent_id(&self) -> Option<&str> {
        self.agent.as_ref().map(|a| a.user_id.as_str())
    }

    /// What let the caller in (or, before that, what has been proven so
    /// far): the PIN, else the carrier's attestation where the policy
    /// counts it (`pin-always` does not), else nothing.
    pub fn caller_id_check(&self) -> CallerIdCheck {
        if self.pin_checked {
            CallerIdCheck::Pin
        } else if self.attested && self.trust != CallerIdTrust::PinAlways {
            CallerIdCheck::Attested
        } else {
            CallerIdCheck::Unverified
        }
    }

    /// True while a key pressed now would be part of a PIN: the shell logs
    /// such keys as `*` (no secret in any log line).
    pub fn collecting_secret(&self) -> bool {
        matches!(
            self.phase,
            Phase::Collecting {
                step: Step::Pin,
                ..
            } | Phase::Playing {
                barge_in: true,
                then: Then::Collect(Step::Pin),
                ..
            }
        )
    }

    /// True once the call needs nothing more from this flow (the `HangUp`
    /// action may still be waiting in the queue).
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    fn on_started(&mut self) {
        if !matches!(self.phase, Phase::NotStarted) {
            return;
        }
        match self.caller.take() {
            None | Some(CallerMatch::Unknown) => self.fail(Outcome::UnknownCaller),
            Some(CallerMatch::Withheld) => self.fail(Outcome::Withheld),
            Some(CallerMatch::Shared(entries)) if entries.is_empty() => {
                self.fail(Outcome::UnknownCaller)
            }
            Some(CallerMatch::Shared(entries)) => {
                self.shared = entries;
                self.ask(vec![self.prompts.welcome.clone()], Step::Extension);
            }
            Some(CallerMatch::One(agent)) => {
                self.agent = Some(agent);
                self.after_identification(vec![self.prompts.welcome.clone()]);
            }
        }
    }

    fn on_digit(&mut self, key: char, now: Instant) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Playing {
                barge_in: true,
                then: Then::Collect(step),
                ..
            } => {
                self.actions.push_back(Action::StopPlayback);
                self.on_key(step, String::new(), key, now);
            }
            Phase::Collecting { step, digits, .. } => self.on_key(step, digits, key, now),
            other => self.phase = other,
        }
    }

    fn on_prompt_finished(&mut self, finished: PlayId, now: Instant) {
        let Phase::Playing { id, then, .. } = self.phase else {
            return;
        };
        if id != finished {
            return; // a stopped playback reporting late
        }
        match then {
            Then::Collect(step) => {
                self.phase = Phase::Collecting {
                    step,
                    digits: String::new(),
                    deadline: now + self.digit_timeout,
                }
            }
            Then::HangUp => {
                self.actions.push_back(Action::HangUp);
                self.phase = Phase::Done;
            }
            Then::HoldLine => {
                if let Some(user_id) = self.agent.as_ref().map(|a| a.user_id.clone()) {
                    self.actions.push_back(Action::HoldLine { user_id });
                } else {
                    self.actions.push_back(Action::HangUp);
                }
                self.phase = Phase::Done;
            }
        }
    }

    fn on_timer(&mut self, now: Instant) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Collecting {
                step,
                digits,
                deadline,
            } if now >= deadline => match step {
                Step::Menu => self.menu_failure(),
                Step::CustomHours => self.finish_custom(&digits),
                Step::Pin => self.check_pin(&digits),
                Step::Extension => self.check_extension(&digits),
            },
            // Early or spurious timers change nothing.
            other => self.phase = other,
        }
    }

    fn on_hung_up(&mut self) {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        // Anything not yet taken by the shell is void: in particular a queued
        // WritePresence must not be carried out for a caller who left.
        self.actions.clear();
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some(match phase {
            Phase::Storing { outcome, .. } if self.write == Write::InFlight => outcome,
            _ => Outcome::AbandonedByCaller,
        });
    }

    /// `status` is the window an extension made, said after `confirm`.
    fn on_written(&mut self, result: Result<Option<AgentStatus>, String>) {
        if self.write != Write::InFlight {
            return;
        }
        self.write = Write::Settled;
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Storing {
                outcome,
                mut confirm,
            } => match result {
                Ok(status) => {
                    self.outcome = Some(outcome);
                    if let Some(status) = status {
                        confirm.extend(status.sentence());
                    }
                    // A nailed-up agent who is online now keeps the call
                    // as their line, and is told what hanging up does.
                    let nailed = self.agent.as_ref().is_some_and(|a| a.nailed_up);
                    let then = match outcome {
                        Outcome::Online(_) | Outcome::Extended(_) if nailed => {
                            confirm.push(self.prompts.stay_on_line.clone());
                            Then::HoldLine
                        }
                        _ => Then::HangUp,
                    };
                    self.play(confirm, false, then);
                }
                Err(_) => self.fail(Outcome::StoreFailed),
            },
            Phase::Done => {
                // The caller already left; only the record needs correcting.
                if result.is_err() {
                    self.outcome = Some(Outcome::StoreFailed);
                }
            }
            other => self.phase = other,
        }
    }

    /// One key for `step`, with the keys collected so far.
    fn on_key(&mut self, step: Step, mut digits: String, key: char, now: Instant) {
        match step {
            Step::Menu => self.on_menu_key(key),
            Step::CustomHours => {
                if key == TERMINATOR {
                    self.finish_custom(&digits);
                } else if !key.is_ascii_digit() {
                    self.menu_failure();
                } else {
                    digits.push(key);
                    if digits.len() >= self.custom_max_digits {
                        self.finish_custom(&digits);
                    } else {
                        self.keep_collecting(step, digits, now + self.digit_timeout);
                    }
                }
            }
            Step::Pin => {
                let pin_len = self.agent_pin().map_or(0, Pin::len);
                if key == TERMINATOR {
                    self.check_pin(&digits);
                } else {
                    digits.push(key);
                    if digits.len() >= pin_len {
                        self.check_pin(&digits);
                    } else {
                        self.keep_collecting(step, digits, now + self.digit_timeout);
                    }
                }
            }
            Step::Extension => {
                let longest = self.shared.iter().map(|(ext, _)| ext.len()).max();
                if key == TERMINATOR {
                    self.check_extension(&digits);
                } else {
                    digits.push(key);
                    // Longer than any extension can never match; saying so
                    // now also bounds what a caller can make us store.
                    if digits.len() > longest.unwrap_or(0) {
                        self.check_extension(&digits);
                    } else {
                        self.keep_collecting(step, digits, now + self.ext_timeout);
                    }
                }
            }
        }
    }

    fn on_menu_key(&mut self, key: char) {
        match key {
            OFFLINE_KEY => self.decide(None),
            // Nothing to write: the window stays as it is, the call
            // becomes the agent's line again.
            KEEP_KEY if self.offers_keep() => {
                self.outcome = Some(Outcome::Rejoined);
                let clips = vec![self.prompts.stay_on_line.clone()];
                self.play(clips, false, Then::HoldLine);
            }
            CUSTOM_KEY => self.ask(Vec::new(), Step::CustomHours),
            _ => {
                let preset = key
                    .to_digit(10)
                    .and_then(|k| usize::try_from(k).ok())
                    .and_then(|k| k.checked_sub(1))
                    .and_then(|index| self.presets.get(index).copied());
                match preset {
                    Some(hours) if matches!(self.standing, Standing::Online(_)) => {
                        self.extend(hours)
                    }
                    Some(hours) => self.decide(Some(hours)),
                    None => self.menu_failure(),
                }
            }
        }
    }

    fn finish_custom(&mut self, digits: &str) {
        match digits.parse::<u32>() {
            Ok(0) => self.decide(None),
            Ok(hours) if hours <= MAX_SPOKEN => self.decide(Some(hours)),
            // Empty ('#' alone or silence) or out of range.
            _ => self.menu_failure(),
        }
    }

    fn menu_failure(&mut self) {
        self.menu_failures += 1;
        let invalid = self.prompts.invalid_input.clone();
        if self.menu_failures >= self.max_attempts {
            self.end(Outcome::TooManyAttempts, invalid);
        } else {
            self.ask(vec![invalid], Step::Menu);
        }
    }

    fn check_pin(&mut self, digits: &str) {
        if self.agent_pin().is_some_and(|pin| pin.matches(digits)) {
            self.pin_checked = true;
            self.enter_menu(Vec::new());
            return;
        }
        self.pin_failures += 1;
        let wrong = self.prompts.wrong_pin.clone();
        if self.pin_failures >= self.pin_attempts {
            self.end(Outcome::WrongPin, wrong);
        } else {
            self.ask(vec![wrong], Step::Pin);
        }
    }

    fn check_extension(&mut self, digits: &str) {
        let found = if digits.is_empty() {
            None
        } else {
            self.shared.iter().position(|(ext, _)| ext == digits)
        };
        if let Some(index) = found {
            let (_, agent) = std::mem::take(&mut self.shared).swap_remove(index);
            self.agent = Some(agent);
            self.after_identification(Vec::new());
            return;
        }
        self.ext_failures += 1;
        let invalid = self.prompts.invalid_input.clone();
        if self.ext_failures >= self.max_attempts {
            self.end(Outcome::TooManyAttempts, invalid);
        } else {
            self.ask(vec![invalid], Step::Extension);
        }
    }

    /// Requests the write; `None` hours means offline. The confirmation is
    /// prepared now and played only once the write is reported durable.
    fn decide(&mut self, hours: Option<u32>) {
        let Some(user_id) = self.agent.as_ref().map(|a| a.user_id.clone()) else {
            // Unreachable by construction (the menu follows identification),
            // but a call must never write presence for nobody.
            self.fail(Outcome::UnknownCaller);
            return;
        };
        let (change, outcome, confirm) = match hours {
            Some(hours) => (
                PresenceChange::Online { user_id, hours },
                Outcome::Online(hours),
                online_confirmation(&self.prompts.online, hours),
            ),
            None => (
                PresenceChange::Offline { user_id },
                Outcome::Offline,
                vec![self.prompts.offline.clone()],
            ),
        };
        self.actions.push_back(Action::WritePresence(change));
        self.write = Write::Queued;
        self.phase = Phase::Storing { outcome, confirm };
    }

    /// The PIN or the menu, as the trunk's `caller_id_trust` wants it, or
    /// a refusal; `lead` plays first.
    fn after_identification(&mut self, lead: Vec<PromptName>) {
        match self.step_after_identification() {
            Some(Step::Pin) => self.ask(lead, Step::Pin),
            Some(_) => self.enter_menu(lead),
            // Said as it is: the number is known, but this trunk does not
            // take it on its own word and the user has no PIN to back it.
            None => {
                let clip = self.prompts.caller_id_refused.clone();
                self.end(Outcome::CallerIdRefused, clip);
            }
        }
    }

    /// What identification leads to under the trunk's `caller_id_trust`;
    /// `None`: refused (the policy wants a PIN the user does not have).
    /// - `any`: the PIN when the user has one, else the menu (as before
    ///   the policy existed).
    /// - `attested`: an attested caller ID is the proof, so the menu;
    ///   otherwise the PIN stands in for it.
    /// - `pin-always`: the PIN.
    fn step_after_identification(&self) -> Option<Step> {
        let has_pin = self.agent_pin().is_some();
        match self.trust {
            CallerIdTrust::Any if has_pin => Some(Step::Pin),
            CallerIdTrust::Any => Some(Step::Menu),
            CallerIdTrust::Attested if self.attested => Some(Step::Menu),
            CallerIdTrust::Attested | CallerIdTrust::PinAlways => has_pin.then_some(Step::Pin),
        }
    }

    /// The menu for the agent's standing, read first if not known: an
    /// agent already online hears where they stand, then their options.
    fn enter_menu(&mut self, mut lead: Vec<PromptName>) {
        match self.standing {
            Standing::Unknown => {
                let Some(user_id) = self.agent.as_ref().map(|a| a.user_id.clone()) else {
                    self.fail(Outcome::UnknownCaller);
                    return;
                };
                self.actions.push_back(Action::LookUpStatus { user_id });
                self.phase = Phase::LookingUp { lead };
            }
            Standing::Offline => self.ask(lead, Step::Menu),
            Standing::Online(status) => {
                lead.extend(status.sentence());
                self.ask(lead, Step::Menu);
            }
        }
    }

    fn looking_up(&self) -> bool {
        matches!(self.phase, Phase::LookingUp { .. })
    }

    fn on_status(&mut self, status: Option<AgentStatus>, now: Instant) {
        let Phase::LookingUp { lead } = std::mem::replace(&mut self.phase, Phase::Done) else {
            return; // not asked, or the caller left meanwhile
        };
        self.standing = status.map_or(Standing::Offline, Standing::Online);
        self.enter_menu(lead);
        // Keys pressed while the window was read (a quick caller keying
        // through Welcome) count now, in order.
        if self.confirmed {
            for key in std::mem::take(&mut self.early_keys) {
                self.on_digit(key, now);
            }
        }
    }

    /// Adds `hours` to the open window; the confirmation says the new end,
    /// which only the shell's answer (`Extended`) knows.
    fn extend(&mut self, hours: u32) {
        let Some(user_id) = self.agent.as_ref().map(|a| a.user_id.clone()) else {
            self.fail(Outcome::UnknownCaller);
            return;
        };
        self.actions
            .push_back(Action::WritePresence(PresenceChange::Extend {
                user_id,
                hours,
            }));
        self.write = Write::Queued;
        self.phase = Phase::Storing {
            outcome: Outcome::Extended(hours),
            confirm: vec![PromptName::from(CLIP_EXTENDED)],
        };
    }

    fn agent_pin(&self) -> Option<&Pin> {
        self.agent
            .as_ref()
            .and_then(|a| a.pin.as_ref())
            .filter(|pin| !pin.is_empty())
    }

    /// An online nailed-up agent may keep their window and take the call
    /// as their line (key #): how they get a line back after a restart.
    fn offers_keep(&self) -> bool {
        matches!(self.standing, Standing::Online(_))
            && self.agent.as_ref().is_some_and(|a| a.nailed_up)
    }

    /// Plays `lead` followed by `step`'s own prompt, then collects for `step`.
    fn ask(&mut self, mut clips: Vec<PromptName>, step: Step) {
        if step == Step::Menu && !self.identified {
            if let Some(a) = &self.agent {
                self.identified = true;
                self.actions.push_back(Action::Identified {
                    user_id: a.user_id.clone(),
                });
            }
        }
        match step {
            Step::Extension => clips.push(self.prompts.enter_extension.clone()),
            Step::Pin => clips.push(self.prompts.enter_pin.clone()),
            Step::Menu => match self.standing {
                Standing::Online(_) => {
                    clips.extend(self.extend_clips.iter().cloned());
                    if self.offers_keep() {
                        clips.push(PromptName::from(CLIP_KEEP_TIME_OPTION));
                    }
                }
                Standing::Unknown | Standing::Offline => {
                    clips.extend(self.menu_clips.iter().cloned())
                }
            },
            Step::CustomHours => clips.push(self.prompts.custom_hours.clone()),
        }
        self.play(clips, true, Then::Collect(step));
    }

    /// Ends the call with the resource-lookup error prompt.
    fn fail(&mut self, outcome: Outcome) {
        let clip = self.prompts.resource_lookup_error.clone();
        self.end(outcome, clip);
    }

    fn end(&mut self, outcome: Outcome, clip: PromptName) {
        self.outcome = Some(outcome);
        self.play(vec![clip], false, Then::HangUp);
    }

    fn keep_collecting(&mut self, step: Step, digits: String, deadline: Instant) {
        self.phase = Phase::Collecting {
            step,
            digits,
            deadline,
        };
    }

    fn play(&mut self, clips: Vec<PromptName>, barge_in: bool, then: Then) {
        let id = PlayId(self.next_play);
        self.next_play += 1;
        self.actions.push_back(Action::Play {
            id,
            clips,
            barge_in,
        });
        self.phase = Phase::Playing { id, barge_in, then };
    }
}
