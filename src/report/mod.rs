//! Read-only reports built from the configuration and the store, shared by
//! the command line (`tpswitch agents`) and the HTTP API (`/agents`) so
//! neither imports the other. Each report returns rows; how they are shown
//! (a table, JSON) is the caller's business.

pub mod agents;
pub mod queue_stats;
pub mod reload;
pub mod today;
