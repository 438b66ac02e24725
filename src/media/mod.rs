//! RTP media: codecs, pre-encoded prompts, DTMF, pacing and the bridge. It
//! knows nothing of flows.

pub mod codec;
pub mod dtmf;
pub mod dtmf_tx;
pub mod engine;
pub mod g711;
pub mod inband;
pub mod latch;
pub mod pacer;
pub mod ports;
pub mod prompt;
pub mod reception;
pub mod rtcp;
pub mod rtp_stream;
pub mod speech;
pub mod srtp;
pub mod stream;
