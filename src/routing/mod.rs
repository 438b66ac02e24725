//! Routing: which agents can take a customer call right now, and which one
//! to offer it to.
//!
//! - [`agents`]: the [`AgentBoard`], every agent's routing state (offline,
//!   available, offered, busy, wrap-up) and the counters strategies use.
//! - [`select`]: eligibility and the selection strategies (longest-idle,
//!   round-robin, fewest-calls).
//!
//! Both are sans-IO: times come in as `now: Instant`, nothing here reads a
//! clock, a socket or the store. The queue flow (`flows::queue`) owns one
//! board per switch and drives it.

pub mod agents;
pub mod select;

pub use agents::{
    AgentBoard, AgentProfile, AgentState, BoardError, MissKind, MissVerdict, OfferError,
};
pub use select::{eligible, pick, RoundRobin};

/// One customer call, as the queue flow names it. The shell chooses the
/// value (typically the customer leg's `LegId`); routing only compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call-{}", self.0)
    }
}
