//! Serialising our side of offer/answer: the answer to a remote offer and our own offer.
//!
//! The text is written directly, line by line in RFC 8866 §5's order, rather than
//! through the `sdp` crate's `SessionDescription`: that builds some forty strings per
//! answer and prints each line through `fmt`, 21 000 instructions a call against
//! about 2 000 here (issue 15; docs/decisions.md). The crate still parses every offer
//! and answer we receive, and the tests hold this writer to it: whatever we write, the
//! crate reads and prints back byte for byte.

use std::net::{IpAddr, SocketAddr};

use super::crypto::{self, OfferCrypto};
use super::{MediaLine, Negotiated, PTIME_MS};
use crate::media::codec::Codec;
use crate::media::stream::Direction;

/// Room for a typical answer (some 200 bytes) without growing.
const TYPICAL_LEN: usize = 256;

/// Build our answer to `neg`'s offer: the audio line carries our address and the single
/// chosen codec (plus telephone-event if offered); every other m= line of the offer is
/// answered with port 0 in the same position (RFC 3264 §6). An SRTP stream's answer
/// repeats the accepted `a=crypto` tag and suite with our key (RFC 4568 §7.1.2).
pub fn build_answer(neg: &Negotiated, local: SocketAddr, session_id: u64, version: u64) -> Vec<u8> {
    let mut out = Sdp::session(local.ip(), session_id, version);
    let audio = |out: &mut Sdp| {
        let proto = neg
            .media_lines
            .get(neg.audio_index)
            .map_or("RTP/AVP", |l| l.proto.as_str());
        out.audio(
            local.port(),
            proto,
            &[(neg.stream.codec, neg.stream.pt)],
            neg.stream.telephone_event_pt,
            neg.stream.direction,
        );
        if let Some(s) = &neg.stream.srtp {
            out.attr("crypto", Some(&crypto::build(s.tag, s.suite, &s.local)));
        }
    };
    if neg.media_lines.is_empty() {
        audio(&mut out);
    }
    for (i, line) in neg.media_lines.iter().enumerate() {
        if i == neg.audio_index {
            audio(&mut out);
        } else {
            out.rejected(line);
        }
    }
    out.into_bytes()
}

/// Build an offer for one audio stream: `codecs` in our preference order (duplicates
/// dropped), telephone-event on `dtmf_pt`, SRTP as `srtp` says.
pub fn build_offer(
    local: SocketAddr,
    codecs: &[Codec],
    dtmf_pt: u8,
    session_id: u64,
    version: u64,
    direction: Direction,
    srtp: &OfferCrypto,
) -> Vec<u8> {
    let mut list: Vec<(Codec, u8)> = Vec::with_capacity(codecs.len());
    for &c in codecs {
        if !list.iter().any(|(seen, _)| *seen == c) {
            list.push((c, c.payload_type()));
        }
    }
    let mut out = Sdp::session(local.ip(), session_id, version);
    out.audio(local.port(), srtp.proto(), &list, Some(dtmf_pt), direction);
    for line in srtp.lines() {
        out.attr("crypto", Some(&line));
    }
    out.into_bytes()
}

/// An SDP body being written; every line ends in CRLF (RFC 8866 §5).
struct Sdp(String);

impl Sdp {
    /// The session part: v=, o=, s=, c= (for every stream: none of ours has its
    /// own) and t=0 0, an unbounded session (RFC 8866 §5.9).
    fn session(ip: IpAddr, session_id: u64, version: u64) -> Self {
        use std::fmt::Write;
        let mut addr = String::with_capacity(48);
        addr.push_str(if ip.is_ipv4() { "IN IP4 " } else { "IN IP6 " });
        // Writing into a String cannot fail.
        let _ = write!(addr, "{ip}");
        let addr = addr.as_str();
        let mut s = String::with_capacity(TYPICAL_LEN);
        s.push_str("v=0\r\no=tpswitch ");
        push_num(&mut s, session_id);
        s.push(' ');
        push_num(&mut s, version);
        s.push(' ');
        s.push_str(addr);
        s.push_str("\r\ns=tpswitch\r\nc=");
        s.push_str(addr);
        s.push_str("\r\nt=0 0\r\n");
        Self(s)
    }

    /// An audio m= line with one rtpmap per codec, telephone-event if asked, our
    /// packet time and the direction; the caller adds `a=crypto` after them.
    fn audio(
        &mut self,
        port: u16,
        proto: &str,
        codecs: &[(Codec, u8)],
        dtmf_pt: Option<u8>,
        direction: Direction,
    ) {
        let s = &mut self.0;
        s.push_str("m=audio ");
        push_num(s, u64::from(port));
        s.push(' ');
        s.push_str(proto);
        for pt in codecs.iter().map(|&(_, pt)| pt).chain(dtmf_pt) {
            s.push(' ');
            push_num(s, u64::from(pt));
        }
        s.push_str("\r\n");
        for &(c, pt) in codecs {
            s.push_str("a=rtpmap:");
            push_num(s, u64::from(pt));
            s.push(' ');
            s.push_str(c.name());
            s.push_str("/8000\r\n");
        }
        if let Some(te) = dtmf_pt {
            s.push_str("a=rtpmap:");
            push_num(s, u64::from(te));
            s.push_str(" telephone-event/8000\r\na=fmtp:");
            push_num(s, u64::from(te));
            // Events 0-15 are the DTMF keys, 16 is flash (RFC 4733 §3.2).
            s.push_str(" 0-16\r\n");
        }
        s.push_str("a=ptime:");
        push_num(s, u64::from(PTIME_MS));
        s.push_str("\r\n");
        self.attr(direction.as_str(), None);
    }

    /// A refused stream: same media and proto, port 0, and at least one format as
    /// the m= grammar requires (RFC 3264 §6).
    fn rejected(&mut self, line: &MediaLine) {
        let s = &mut self.0;
        s.push_str("m=");
        s.push_str(&line.media);
        s.push_str(" 0 ");
        s.push_str(&line.proto);
        if line.formats.is_empty() {
            s.push_str(" 0");
        }
        for f in &line.formats {
            s.push(' ');
            s.push_str(f);
        }
        s.push_str("\r\n");
    }

    /// `a=key:value`, or the property attribute `a=key` (RFC 8866 §5.13).
    fn attr(&mut self, key: &str, value: Option<&str>) {
        let s = &mut self.0;
        s.push_str("a=");
        s.push_str(key);
        if let Some(v) = value {
            s.push(':');
            s.push_str(v);
        }
        s.push_str("\r\n");
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }
}

fn push_num(s: &mut String, n: u64) {
    s.push_str(itoa::Buffer::new().format(n));
}
