//! The wire: transport, parsing, transactions, dialogs, digest auth and
//! the trunk policy. Nothing outside this module imports the SIP library
//! (rsipstack); the rest of the switch sees [`api`] only.

pub mod access;
pub mod api;
pub mod core;
#[doc(hidden)]
pub mod differential;
pub mod digest;
pub mod dns;
pub mod endpoint;
pub mod flood;
mod grammar;
pub mod inspect;
mod inspect_checks;
pub mod keepalive;
pub mod log_limit;
pub mod message;
pub mod name_addr;
pub mod nat;
pub mod register;
pub mod resolver;
mod tcp_idle;
mod timer;
pub mod tls;
pub mod trace;
pub mod transaction;
pub mod transport;
pub mod trunk;
pub mod uri;
mod wire;

pub use api::{
    CallerInfo, DialOutcome, DialRequest, EndCause, IncomingCall, LegId, Presentation, SipCommand,
    SipEvent,
};
