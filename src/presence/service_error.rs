//! Why a request to the presence service failed.

use chrono::{DateTime, Utc};

use super::store::StoreError;

/// Why a presence request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{hours} hours from {start} is beyond the calendar; choose fewer hours")]
    OutOfRange { hours: u32, start: DateTime<Utc> },
    #[error("the window end {} is not after now ({}); choose a later end", super::fmt_secs(*end), super::fmt_secs(*now))]
    EndNotAfterNow {
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("the window end {} is more than {} hours from now; choose an earlier end", super::fmt_secs(*end), longest.num_hours())]
    TooLong {
        end: DateTime<Utc>,
        longest: chrono::Duration,
    },
    #[error(
        "the presence service has stopped (the switch is shutting down, or it failed: see the log)"
    )]
    Stopped,
}

impl ServiceError {
    /// See [`StoreError::cannot_write`].
    pub fn cannot_write(&self) -> bool {
        matches!(self, ServiceError::Store(e) if e.cannot_write())
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
