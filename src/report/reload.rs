//! The outcome of a reload, as `POST /api/v1/reload` answers it and
//! `tpswitch reload` shows it.

use serde::{Deserialize, Serialize};

/// The outcome of one reload, as the route, `tpswitch reload` and the log
/// give it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// The new settings are in force for the next call.
    pub applied: bool,
    /// The file that was read.
    pub file: String,
    /// Settings that changed and apply from the next call on.
    pub changed: Vec<String>,
    /// Settings that differ in the file but keep their running value until
    /// the switch is restarted.
    pub restart_needed: Vec<String>,
    /// Every problem found (file, key, what to do). Not empty means nothing
    /// was changed.
    pub errors: Vec<String>,
}
