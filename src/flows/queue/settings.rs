//! What the queue engine needs from the configuration.
//!
//! `[[flows]]` with activity = "queue" is validated by the config layer;
//! these types only carry the values in the shape the engine reads, with
//! prompts already reduced to library names.

use std::time::Duration;

use crate::config::{Accept, Config, Flow, NoAgents, QueueFlow, Strategy, E164};
use crate::flows::prompt_plan::PromptName;

/// Library prompts a queue plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePromptNames {
    /// Played once to the customer before the hold loop; None = straight to hold.
    pub greeting: Option<PromptName>,
    /// Looped to the customer while they wait.
    pub hold: PromptName,
    /// Played to the agent before bridging (and once more if they do not
    /// accept in time); None = no prompt, just wait for the key.
    pub whisper: Option<PromptName>,
    /// Played to the customer before hanging up when no agent took the call.
    pub unavailable: PromptName,
}

/// One queue's routing rules (`[[flows]]` with activity = "queue").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    pub name: String,
    /// An agent needs every one of these; empty = any agent.
    pub skills: Vec<String>,
    pub strategy: Strategy,
    pub ring_timeout: Duration,
    pub accept: Accept,
    /// Silence allowed after the whisper before the offer counts as missed.
    pub accept_timeout: Duration,
    /// Longest a customer waits for an agent before the overflow.
    pub max_wait: Duration,
    pub wrap_up: Duration,
    /// Consecutive misses before an agent is set offline; 0 = never.
    pub max_no_answer: u32,
    /// Higher first among queues that share agents.
    pub priority: i32,
    /// None = play `unavailable` and hang up.
    pub overflow_number: Option<E164>,
    pub no_agents: NoAgents,
    /// Wait after the agent's line answers before sending their extension
    /// digits (PBX auto-attendants need a moment to start listening).
    pub ext_pause: Duration,
    pub prompts: QueuePromptNames,
}

impl From<&QueueFlow> for QueueSettings {
    fn from(f: &QueueFlow) -> Self {
        let name = |p: &crate::config::PromptRef| PromptName::new(p.name.as_str());
        QueueSettings {
            name: f.name.clone(),
            skills: f.skills.clone(),
            strategy: f.strategy,
            ring_timeout: f.ring_timeout,
            accept: f.accept,
            accept_timeout: f.accept_timeout,
            max_wait: f.max_wait,
            wrap_up: f.wrap_up,
            max_no_answer: f.max_no_answer,
            priority: f.priority,
            overflow_number: f.overflow_number.clone(),
            no_agents: f.no_agents,
            ext_pause: f.ext_pause,
            prompts: QueuePromptNames {
                greeting: f.prompts.greeting.as_ref().map(name),
                hold: name(&f.prompts.hold),
                whisper: f.prompts.whisper.as_ref().map(name),
                unavailable: name(&f.prompts.unavailable),
            },
        }
    }
}

/// Switch-wide settings of the queue engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// How long, beyond `ext_pause`, the shell may take to report the
    /// extension digits sent before the attempt is given up (a stuck DTMF
    /// sender must not hold a customer forever).
    pub ext_send_guard: Duration,
    /// From an outbound leg's 2xx to its first RTP packet at most: past
    /// it, the answer is dead (see `flows::outbound`).
    pub media_grace: Duration,
    /// Several nodes share the agents (a PostgreSQL store): every offer
    /// starts with [`super::Action::ClaimAgent`] and rings only once the
    /// claim is granted, so two nodes never ring one agent.
    pub claims: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            ext_send_guard: Duration::from_secs(10),
            media_grace: crate::flows::outbound::DEFAULT_MEDIA_GRACE,
            claims: false,
        }
    }
}

/// The queues of a configuration, in file order.
pub fn queues_from_config(config: &Config) -> Vec<QueueSettings> {
    config
        .flows
        .iter()
        .filter_map(|f| match f {
            Flow::Queue(q) => Some(QueueSettings::from(q)),
            Flow::TimedPresence(_) => None,
        })
        .collect()
}
