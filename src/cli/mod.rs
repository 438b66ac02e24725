//! Command-line subcommands other than running the switch. Each returns its
//! output as a `String` (main prints it), so tests need no process.

pub mod agents;
pub mod calls;
