//! The audio codecs tpswitch speaks on RTP: G.711 μ-law and A-law only. Media owns
//! this type; `config/` and `sdp/` use it rather than keep names of their own.
//!
//! Both have static payload types (RFC 3551 §6, table 4) and an 8 kHz clock, so a
//! 20 ms packet is always 160 samples = 160 bytes.

use std::fmt;

/// An audio codec: the one type the whole switch uses for it. The configuration lists
/// these (`media.codecs`), SDP maps payload types to them, and the G.711 tables in
/// [`super::g711`] are chosen by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// Every supported codec, in tpswitch's default preference order.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// RTP clock rate in Hz (RFC 3551 §4.5.14: G.711 is sampled at 8 kHz).
    pub const CLOCK_RATE: u32 = 8000;

    /// Samples (and bytes) in one 20 ms packet.
    pub const SAMPLES_PER_FRAME: usize = 160;

    /// Static RTP payload type (RFC 3551 §6, table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encoding name as written in SDP `a=rtpmap` (RFC 3551 §6).
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The byte that decodes to (near) zero amplitude. These are what encoding a linear
    /// 0 gives: μ-law 0xFF (bits inverted, G.711 table 2), A-law 0xD5 (even bits
    /// inverted, G.711 table 1). Used to pad frames and to send silence.
    pub const fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }

    /// The codec for a static payload type, if it is one of ours.
    pub const fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec for an SDP encoding name; RFC 4566 §6 says encoding names are
    /// case-insensitive.
    pub fn from_name(name: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{linear_to_alaw, linear_to_ulaw};

    #[test]
    fn payload_types_and_names() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(101), None);
        assert_eq!(Codec::from_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name("PCMA"), Some(Codec::Pcma));
        assert_eq!(Codec::from_name("opus"), None);
        assert_eq!(Codec::Pcma.to_string(), "PCMA");
    }

    #[test]
    fn silence_byte_is_encoded_zero() {
        assert_eq!(linear_to_ulaw(0), Codec::Pcmu.silence_byte());
        assert_eq!(linear_to_alaw(0), Codec::Pcma.silence_byte());
    }
}
