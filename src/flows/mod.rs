//! Product logic as pure, sans-IO state machines (see docs: "Sans-IO").
//!
//! Nothing here touches sockets, clocks or the store: the call shell feeds
//! events with `now` and carries the actions out.

pub mod agent_status;
pub mod directory;
pub mod notify;
pub mod outbound;
pub mod prompt_plan;
pub mod queue;
pub mod reminder;
pub mod timed_presence;
