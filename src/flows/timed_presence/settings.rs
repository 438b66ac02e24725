//! What the log-in menu needs from the configuration, and who is calling.
//!
//! The config layer adapts `[[flows]]` (activity = "timed-presence") and the
//! user directory into these types; `validate` names the TOML fields so a
//! bad deployment is refused at load time instead of misbehaving mid-call.

use std::fmt;
use std::time::Duration;

use crate::config::Pin;
use crate::flows::prompt_plan::{PromptName, MAX_SPOKEN};

/// Preset keys are 1..=4: 5-8 are reserved, 9 is custom and 0 is offline.
pub const MAX_PRESETS: usize = 4;

/// Library prompts played at each step of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuPrompts {
    pub welcome: PromptName,
    pub resource_lookup_error: PromptName,
    pub preset_hours: PromptName,
    pub custom_hours: PromptName,
    pub invalid_input: PromptName,
    pub online: PromptName,
    pub offline: PromptName,
    pub enter_extension: PromptName,
    pub enter_pin: PromptName,
    pub wrong_pin: PromptName,
    /// Said to a nailed-up agent after the confirmation: stay on the line;
    /// hanging up ends the online time.
    pub stay_on_line: PromptName,
    /// The trunk's `caller_id_trust` wants a PIN the user does not have.
    pub caller_id_refused: PromptName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuSettings {
    /// Hours offered on keys 1..=N (N <= 4).
    pub presets: Vec<u32>,
    /// Key 9: how many digits of hours may be entered (1 or 2).
    pub custom_max_digits: u8,
    /// Invalid inputs (menu and custom entry together; extension entry
    /// separately) before the call is ended.
    pub max_attempts: u32,
    /// Silence allowed after a prompt finishes, and between custom/PIN digits.
    pub digit_timeout: Duration,
    /// Silence between extension digits that ends the extension.
    pub ext_timeout: Duration,
    /// Wrong PIN entries before the call is ended.
    pub pin_attempts: u32,
    pub prompts: MenuPrompts,
}

/// A problem with the timed-presence settings, naming the field to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    TooManyPresets { count: usize },
    PresetOutOfRange { index: usize, hours: u32 },
    CustomDigits { value: u8 },
    ZeroAttempts { field: &'static str },
    ZeroTimeout { field: &'static str },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::TooManyPresets { count } => write!(
                f,
                "flows.presets has {count} entries but only keys 1 to {MAX_PRESETS} offer presets; \
                 remove the extra entries"
            ),
            SettingsError::PresetOutOfRange { index, hours } => write!(
                f,
                "flows.presets[{index}] = {hours}: presets must be 1 to {MAX_SPOKEN} hours \
                 (the prompt library can only say numbers up to {MAX_SPOKEN})"
            ),
            SettingsError::CustomDigits { value } => write!(
                f,
                "flows.custom_max_digits = {value}: use 1 (up to 9 hours) or 2 (up to 99 hours)"
            ),
            SettingsError::ZeroAttempts { field } => write!(
                f,
                "flows.{field} = 0: the caller needs at least one attempt; use 1 or more"
            ),
            SettingsError::ZeroTimeout { field } => write!(
                f,
                "flows.{field} is zero: callers need time to press a key; use e.g. \"5s\""
            ),
        }
    }
}

impl std::error::Error for SettingsError {}

impl MenuSettings {
    /// Checks the limits the menu relies on. The menu itself never panics on
    /// bad settings (extra presets are ignored, attempts of 0 act as 1), but
    /// it would not do what the operator meant.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.presets.len() > MAX_PRESETS {
            return Err(SettingsError::TooManyPresets {
                count: self.presets.len(),
            });
        }
        if let Some((index, &hours)) = self
            .presets
            .iter()
            .enumerate()
            .find(|(_, &h)| h == 0 || h > MAX_SPOKEN)
        {
            return Err(SettingsError::PresetOutOfRange { index, hours });
        }
        if !(1..=2).contains(&self.custom_max_digits) {
            return Err(SettingsError::CustomDigits {
                value: self.custom_max_digits,
            });
        }
        if self.max_attempts == 0 {
            return Err(SettingsError::ZeroAttempts {
                field: "max_attempts",
            });
        }
        if self.pin_attempts == 0 {
            return Err(SettingsError::ZeroAttempts {
                field: "pin_attempts",
            });
        }
        if self.digit_timeout.is_zero() {
            return Err(SettingsError::ZeroTimeout {
                field: "digit_timeout",
            });
        }
        if self.ext_timeout.is_zero() {
            return Err(SettingsError::ZeroTimeout {
                field: "ext_timeout",
            });
        }
        Ok(())
    }
}

/// A user the caller ID points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRef {
    pub user_id: String,
    /// Asked after Welcome when set; an empty PIN counts as no PIN. Its
    /// `Debug` is masked, so logging an `AgentRef` never shows it.
    pub pin: Option<Pin>,
    /// The user's `connection` is `nailed-up`: once online, the call stays
    /// up as their line (issue 14).
    pub nailed_up: bool,
}

/// The result of looking the caller ID up in the user directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerMatch {
    /// A number no user calls from.
    Unknown,
    /// No caller ID (anonymous / privacy).
    Withheld,
    One(AgentRef),
    /// Several users share this PSTN number; the caller picks one by keying
    /// the extension (first element) configured for them.
    Shared(Vec<(String, AgentRef)>),
}

/// For log lines: who the caller is, in words, never a PIN.
impl fmt::Display for CallerMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallerMatch::Unknown => f.write_str("unknown"),
            CallerMatch::Withheld => f.write_str("withheld"),
            CallerMatch::One(a) if a.pin.is_some() => write!(f, "{} (with PIN)", a.user_id),
            CallerMatch::One(a) => f.write_str(&a.user_id),
            CallerMatch::Shared(entries) => {
                f.write_str("shared line:")?;
                for (ext, a) in entries {
                    write!(f, " {}={}", ext, a.user_id)?;
                }
                Ok(())
            }
        }
    }
}
