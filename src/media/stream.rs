//! What media needs to know about one RTP stream: the parameters an offer/answer
//! exchange settled (RFC 3264), in media's own words.
//!
//! `sdp/` produces these and media consumes them, so media never depends on how
//! they were negotiated (SDP today; anything else later) and the arrow between
//! the two modules points one way only.

use std::net::SocketAddr;

use super::codec::Codec;
use super::srtp::SrtpParams;

/// Which way RTP flows on a stream (RFC 3264 §5.1; the words are RFC 4566 §6's
/// attribute names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name as written in SDP, and as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction the other side of the stream takes (RFC 3264 §6.1): an offer of
    /// sendonly is answered recvonly and vice versa; sendrecv and inactive stay.
    pub fn mirrored(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// One negotiated audio stream, as the media engine runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParams {
    pub codec: Codec,
    /// Payload type for `codec`, as the remote numbered it (we send with this one).
    pub pt: u8,
    /// Remote's telephone-event payload type (RFC 4733); `None` means only SIP INFO /
    /// in-band DTMF. Never assumed to be 101.
    pub telephone_event_pt: Option<u8>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Remote's requested packet time in ms (`a=ptime`), if it said.
    pub remote_ptime: Option<u32>,
    /// Our direction for the stream.
    pub direction: Direction,
    /// The remote has put the call on hold.
    pub hold: bool,
    /// SRTP keys and suite when the stream is encrypted (RFC 4568), else plain RTP.
    pub srtp: Option<SrtpParams>,
}

impl StreamParams {
    /// Whether we should send RTP: our direction allows it and the remote gave a real
    /// address (`c=0.0.0.0` or port 0 means "send nothing", RFC 3264 §8.4).
    pub fn may_send(&self) -> bool {
        self.direction.sends() && !self.remote.ip().is_unspecified() && self.remote.port() != 0
    }

    /// Whether we should expect RTP from the remote.
    pub fn may_receive(&self) -> bool {
        self.direction.receives()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(remote: &str, direction: Direction) -> StreamParams {
        StreamParams {
            codec: Codec::Pcmu,
            pt: 0,
            telephone_event_pt: Some(101),
            remote: remote.parse().unwrap(),
            remote_ptime: None,
            direction,
            hold: false,
            srtp: None,
        }
    }

    #[test]
    fn mirrored_swaps_only_one_way_directions() {
        assert_eq!(Direction::SendOnly.mirrored(), Direction::RecvOnly);
        assert_eq!(Direction::RecvOnly.mirrored(), Direction::SendOnly);
        assert_eq!(Direction::SendRecv.mirrored(), Direction::SendRecv);
        assert_eq!(Direction::Inactive.mirrored(), Direction::Inactive);
    }

    #[test]
    fn sends_only_to_a_real_address_in_a_sending_direction() {
        assert!(params("192.0.2.1:4000", Direction::SendRecv).may_send());
        assert!(params("192.0.2.1:4000", Direction::SendOnly).may_send());
        assert!(!params("192.0.2.1:4000", Direction::RecvOnly).may_send());
        assert!(!params("192.0.2.1:4000", Direction::Inactive).may_send());
        // RFC 3264 §8.4: c=0.0.0.0 (RFC 2543 hold) and port 0 mean "send nothing".
        assert!(!params("0.0.0.0:4000", Direction::SendRecv).may_send());
        assert!(!params("192.0.2.1:0", Direction::SendRecv).may_send());
        assert!(params("0.0.0.0:4000", Direction::SendRecv).may_receive());
        assert!(!params("192.0.2.1:4000", Direction::SendOnly).may_receive());
    }
}
