//! tpswitch: a SIP/RTP softswitch component that gives a contact centre
//! timed presence. See `docs/` and the README for the picture.

pub mod api;
pub mod app;
pub mod call;
pub mod capacity;
pub mod cli;
pub mod config;
pub mod directory;
pub mod events;
pub mod flows;
pub mod live;
pub mod media;
pub mod presence;
pub mod report;
pub mod routing;
pub mod sdp;
pub mod sip;
pub mod telemetry;
