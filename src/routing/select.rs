//! Which agent gets the next offer.
//!
//! An agent is *eligible* for a call when their window is open, they are
//! available (not offered, busy or wrapping up), they have not already been
//! offered this call, and they hold every skill the queue requires (an empty
//! list accepts anyone). Among the eligible, the queue's strategy picks:
//!
//! - longest-idle (default): the longest since their last call ended, or
//!   since going online when that is later;
//! - round-robin: the next after the agent this queue offered last, in
//!   configuration order, wrapping around;
//! - fewest-calls: fewest calls taken since going online, ties by
//!   longest-idle.
//!
//! Remaining ties go to the agent listed first in the configuration, so the
//! choice is deterministic.

use std::collections::HashSet;

use super::agents::AgentBoard;
use crate::config::Strategy;

/// The users eligible for a call, in configuration order.
pub fn eligible<'a>(
    board: &'a AgentBoard,
    skills_required: &'a [String],
    tried: &'a HashSet<String>,
) -> impl Iterator<Item = &'a str> + 'a {
    eligible_indexed(board, skills_required, tried).map(|(_, user)| user)
}

fn eligible_indexed<'a>(
    board: &'a AgentBoard,
    skills_required: &'a [String],
    tried: &'a HashSet<String>,
) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    board
        .agents()
        .filter(move |(_, a)| {
            AgentBoard::available(a)
                && a.profile().has_all(skills_required)
                && !tried.contains(&a.profile().id)
        })
        .map(|(i, a)| (i, a.profile().id.as_str()))
}

/// A queue's round-robin position: the agent it offered a call to last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundRobin {
    last: Option<String>,
}

impl RoundRobin {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }
}

/// Picks the agent to offer a call to, or `None` when nobody is eligible.
/// Round-robin advances `rr` to the agent picked.
pub fn pick(
    board: &AgentBoard,
    strategy: Strategy,
    skills_required: &[String],
    tried: &HashSet<String>,
    rr: &mut RoundRobin,
) -> Option<String> {
    let candidates = eligible_indexed(board, skills_required, tried);
    let chosen = match strategy {
        Strategy::LongestIdle => candidates
            .min_by_key(|&(i, user)| (board.idle_since(user), i))
            .map(|(_, user)| user),
        Strategy::FewestCalls => candidates
            .min_by_key(|&(i, user)| (board.calls_taken(user), board.idle_since(user), i))
            .map(|(_, user)| user),
        Strategy::RoundRobin => {
            // The agent we offered last may since have left the board's
            // order only by config reload; then start from the top.
            let after = rr.last.as_deref().and_then(|u| board.index_of(u));
            let all: Vec<(usize, &str)> = candidates.collect();
            let next = after
                .and_then(|p| all.iter().find(|(i, _)| *i > p))
                .or_else(|| all.first());
            next.map(|&(_, user)| user)
        }
    }?;
    let chosen = chosen.to_string();
    if strategy == Strategy::RoundRobin {
        rr.last = Some(chosen.clone());
    }
    Some(chosen)
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
