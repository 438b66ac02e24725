//! SRTP and SRTCP (RFC 3711) for one media session, keyed by SDES (RFC 4568).
//!
//! The transforms are RFC 3711's defaults, AES-CM and HMAC-SHA1, over the
//! RustCrypto `aes`, `ctr`, `hmac` and `sha1` crates (docs/decisions.md says
//! why not `webrtc-srtp` or libsrtp2): `session` derives the keys and applies
//! the transforms, `index` estimates packet indices and keeps replay lists,
//! and this module frames packets. A session has one [`SrtpSender`] (our key:
//! the pacing thread and the bridge relay protect with it under the session's
//! `Tx` lock) and one [`SrtpReceiver`] (the peer's key: only the receive task
//! unprotects). Keys are secrets: [`SrtpKey`]'s `Debug` never shows them, and
//! nothing here logs one.

use std::fmt;

mod index;
mod session;

use index::{Replay, ReplayWindow};
use session::{Keys, SessionKeys};

/// Master key length of the AES_CM_128 suites (RFC 4568 §6.2.1).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length of the AES_CM_128 suites (RFC 4568 §6.2.1).
pub const MASTER_SALT_LEN: usize = 14;
/// Key and salt as carried in one `inline:` key (RFC 4568 §6.1: key || salt).
pub const KEY_SALT_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;

/// The SSRCs a context keeps state for (see [`Streams`]): one in a call that
/// keeps its SSRC, a few when a peer switches legs.
const MAX_SSRCS: usize = 8;

/// RTP fixed header (RFC 3550 §5.1).
const RTP_HEADER: usize = 12;
/// SRTCP's smallest packet: RTCP header and sender SSRC, the E flag with the 31-bit
/// SRTCP index, and the 80-bit tag every suite we do uses for SRTCP (RFC 3711 §3.4).
const SRTCP_MIN: usize = RTCP_SENDER + SRTCP_INDEX + SRTCP_TAG;
const SRTCP_INDEX: usize = 4;
/// RTCP's header and sender SSRC, which SRTCP leaves unencrypted (RFC 3711 §3.4).
const RTCP_SENDER: usize = 8;
const SRTCP_TAG: usize = 10;

/// Per-trunk SRTP policy (`trunk.srtp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// Plain RTP only: an RTP/SAVP offer is refused unless it also has an
    /// RTP/AVP stream; `a=crypto` on an RTP/AVP offer is ignored.
    #[default]
    Off,
    /// SRTP when the peer offers or accepts it, else RTP.
    Optional,
    /// Only encrypted media: a plain RTP offer is refused with 488.
    Required,
}

impl SrtpPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Required => "required",
        }
    }
}

/// The SDES crypto suites we do (RFC 4568 §6.2). Both use AES-128 in counter
/// mode and HMAC-SHA1; `_32` shortens the SRTP tag to 32 bits (SRTCP keeps 80,
/// RFC 4568 §6.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// Our preference order when we offer: the longer tag first.
    pub const ALL: [CryptoSuite; 2] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
    ];

    /// The suite's name as written in `a=crypto` and logged.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Suite names are case-sensitive tokens (RFC 4568 §9.1 `srtp-crypto-suite`).
    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        CryptoSuite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Length of the SRTP authentication tag (RFC 4568 §6.2.1, §6.2.2).
    pub fn rtp_tag_len(self) -> usize {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => 10,
            CryptoSuite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// An SRTP master key and master salt (RFC 3711 §8.2), concatenated as in
/// SDES. A secret: its `Debug` is redacted and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey([u8; KEY_SALT_LEN]);

impl SrtpKey {
    /// A fresh key from `rand`'s thread generator, a CSPRNG seeded and reseeded
    /// from the operating system (RFC 4568 §8.1 and RFC 4086: keys must be
    /// unpredictable; a new one for every stream we offer or answer).
    pub fn random() -> SrtpKey {
        let mut b = [0u8; KEY_SALT_LEN];
        rand::fill(&mut b);
        SrtpKey(b)
    }

    pub fn from_bytes(b: [u8; KEY_SALT_LEN]) -> SrtpKey {
        SrtpKey(b)
    }

    /// The 30 bytes, for the `inline:` key of `a=crypto` only.
    pub fn as_bytes(&self) -> &[u8; KEY_SALT_LEN] {
        &self.0
    }

    fn key(&self) -> [u8; MASTER_KEY_LEN] {
        let mut k = [0; MASTER_KEY_LEN];
        k.copy_from_slice(&self.0[..MASTER_KEY_LEN]);
        k
    }

    fn salt(&self) -> [u8; MASTER_SALT_LEN] {
        let mut s = [0; MASTER_SALT_LEN];
        s.copy_from_slice(&self.0[MASTER_KEY_LEN..]);
        s
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpKey(<redacted>)")
    }
}

/// What offer/answer settled for one stream's SRTP: the suite, the `a=crypto`
/// tag it was agreed under, our key (we protect with it) and the peer's (we
/// unprotect with it). Two keys, one per direction (RFC 4568 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpParams {
    pub suite: CryptoSuite,
    pub tag: u32,
    pub local: SrtpKey,
    pub remote: SrtpKey,
}

/// Why a packet was not protected or unprotected. The reasons are fixed
/// words: a flood of forged packets costs no allocation to refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Not authentic, replayed, too short or not RTP/RTCP (RFC 3711 §3.3).
    #[error("SRTP packet refused: {0}")]
    Refused(&'static str),
    /// The key has protected all the packets it may (RFC 3711 §9.2: 2^48
    /// SRTP or 2^31 SRTCP packets); a new key must be agreed.
    #[error("SRTP key used up: {0}")]
    KeyUsedUp(&'static str),
}

/// Our outbound direction: protects RTP and RTCP with our key.
pub struct SrtpSender {
    suite: CryptoSuite,
    key: SrtpKey,
    rtp: SessionKeys,
    /// Boxed: used once every few seconds, kept out of the packets' cache lines.
    rtcp: Box<SessionKeys>,
    streams: Streams<SendState>,
}

/// What a sender keeps per SSRC: the highest SRTP index it used and the
/// SRTCP index of its last report.
#[derive(Debug, Clone, Copy, Default)]
struct SendState {
    rtp_highest: Option<u64>,
    rtcp_sent: Option<u64>,
}

impl SrtpSender {
    pub fn new(params: &SrtpParams) -> SrtpSender {
        SrtpSender {
            suite: params.suite,
            key: params.local.clone(),
            rtp: SessionKeys::derive(&params.local, Keys::Rtp),
            rtcp: Box::new(SessionKeys::derive(&params.local, Keys::Rtcp)),
            streams: Streams::default(),
        }
    }

    /// Whether this context already protects with `params`' suite and our key.
    pub fn is_for(&self, params: &SrtpParams) -> bool {
        self.suite == params.suite && self.key == params.local
    }

    /// Encrypt and authenticate the RTP packet in `buf`, in place (RFC 3711 §3.3):
    /// the payload is encrypted, the tag appended.
    pub fn protect_rtp(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header = rtp_header_len(buf, buf.len())?;
        let (ssrc, seq) = ssrc_and_seq(buf)?;
        let state = self.streams.get_or_insert(ssrc);
        // No index: either a late packet from before the stream's first (ROC
        // would be -1), or the key's 2^48 indices are spent.
        let index = index::estimate(state.rtp_highest, seq).ok_or(match state.rtp_highest {
            Some(h) if h >> 16 > 0 => SrtpError::KeyUsedUp("SRTP index past 2^48"),
            _ => SrtpError::Refused("sequence number before the stream's first"),
        })?;
        self.rtp.apply_keystream(ssrc, index, &mut buf[header..]);
        let tag = self.rtp.tag(&[buf, &roc(index)]);
        buf.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        state.rtp_highest = Some(state.rtp_highest.map_or(index, |h| h.max(index)));
        Ok(())
    }

    /// Encrypt and authenticate a compound RTCP packet in place (RFC 3711 §3.4:
    /// everything after the sender's SSRC is encrypted, then the E flag with
    /// the 31-bit SRTCP index and the 80-bit tag are appended).
    pub fn protect_rtcp(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        let ssrc = rtcp_ssrc(buf)?;
        let state = self.streams.get_or_insert(ssrc);
        // §3.4: the index starts at zero and counts every SRTCP packet sent.
        let index = state.rtcp_sent.map_or(0, |i| i + 1);
        if index > index::MAX_RTCP_INDEX {
            return Err(SrtpError::KeyUsedUp("SRTCP index past 2^31"));
        }
        self.rtcp
            .apply_keystream(ssrc, index, &mut buf[RTCP_SENDER..]);
        let e_and_index = 0x8000_0000u32 | index as u32;
        buf.extend_from_slice(&e_and_index.to_be_bytes());
        let tag = self.rtcp.tag(&[buf]);
        buf.extend_from_slice(&tag[..SRTCP_TAG]);
        state.rtcp_sent = Some(index);
        Ok(())
    }

    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }
}

impl fmt::Debug for SrtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrtpSender({})", self.suite.name())
    }
}

/// The peer's direction: authenticates and decrypts with the peer's key.
pub struct SrtpReceiver {
    suite: CryptoSuite,
    key: SrtpKey,
    rtp: SessionKeys,
    /// Boxed, as the sender's.
    rtcp: Box<SessionKeys>,
    streams: Streams<ReceiveState>,
}

/// What a receiver keeps per SSRC: each packet type's replay list, made by
/// its first authentic packet.
#[derive(Debug, Clone, Copy, Default)]
struct ReceiveState {
    rtp: Option<ReplayWindow>,
    rtcp: Option<ReplayWindow>,
}

impl SrtpReceiver {
    pub fn new(params: &SrtpParams) -> SrtpReceiver {
        SrtpReceiver {
            suite: params.suite,
            key: params.remote.clone(),
            rtp: SessionKeys::derive(&params.remote, Keys::Rtp),
            rtcp: Box::new(SessionKeys::derive(&params.remote, Keys::Rtcp)),
            streams: Streams::default(),
        }
    }

    /// Authenticate and decrypt the SRTP packet in `buf`; the RTP packet is
    /// left at the front of `buf` and its length returned (RFC 3711 §3.3).
    /// Nothing is recorded for a packet that does not authenticate, so forged
    /// packets under new SSRCs cost no state.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let Some(body) = buf.len().checked_sub(tag_len) else {
            return Err(SrtpError::Refused("shorter than an SRTP tag"));
        };
        let header = rtp_header_len(buf, body)?;
        let (ssrc, seq) = ssrc_and_seq(buf)?;
        let window = self.streams.get(ssrc).and_then(|s| s.rtp);
        let index = index::estimate(window.map(|w| w.highest()), seq)
            .ok_or(SrtpError::Refused("SRTP index out of range"))?;
        if let Some(w) = &window {
            w.check(index).map_err(replay_refusal)?;
        }
        let (packet, tag) = buf.split_at_mut(body);
        if !self.rtp.verify(&[packet, &roc(index)], tag) {
            return Err(SrtpError::Refused("SRTP tag does not authenticate"));
        }
        self.rtp.apply_keystream(ssrc, index, &mut packet[header..]);
        ReplayWindow::record(&mut self.streams.get_or_insert(ssrc).rtp, index);
        Ok(body)
    }

    /// Authenticate and decrypt an SRTCP packet in place, as [`Self::unprotect_rtp`]
    /// (RFC 3711 §3.4).
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        if buf.len() < SRTCP_MIN {
            return Err(SrtpError::Refused(
                "shorter than an SRTCP header, index and tag",
            ));
        }
        let body = buf.len() - SRTCP_TAG;
        let plain = body - SRTCP_INDEX;
        let e_and_index =
            u32::from_be_bytes([buf[plain], buf[plain + 1], buf[plain + 2], buf[plain + 3]]);
        // We never agree to UNENCRYPTED_SRTCP (RFC 4568 §6.3.2), so a clear E
        // flag is a forgery or a broken peer either way.
        if e_and_index & 0x8000_0000 == 0 {
            return Err(SrtpError::Refused("SRTCP without the E flag"));
        }
        let index = u64::from(e_and_index & 0x7fff_ffff);
        let ssrc = rtcp_ssrc(buf)?;
        let window = self.streams.get(ssrc).and_then(|s| s.rtcp);
        if let Some(w) = &window {
            w.check(index).map_err(replay_refusal)?;
        }
        let (packet, tag) = buf.split_at_mut(body);
        if !self.rtcp.verify(&[packet], tag) {
            return Err(SrtpError::Refused("SRTCP tag does not authenticate"));
        }
        self.rtcp
            .apply_keystream(ssrc, index, &mut packet[RTCP_SENDER..plain]);
        ReplayWindow::record(&mut self.streams.get_or_insert(ssrc).rtcp, index);
        Ok(plain)
    }

    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Whether this context already checks `params`' suite and the peer's key.
    pub fn is_for(&self, params: &SrtpParams) -> bool {
        self.suite == params.suite && self.key == params.remote
    }
}

impl fmt::Debug for SrtpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrtpReceiver({})", self.suite.name())
    }
}

fn replay_refusal(r: Replay) -> SrtpError {
    match r {
        Replay::Again => SrtpError::Refused("replayed"),
        Replay::TooOld => SrtpError::Refused("older than the replay window"),
    }
}

/// The ROC as the SRTP tag covers it: M = authenticated portion || ROC (RFC 3711 §4.2).
fn roc(index: u64) -> [u8; 4] {
    // The index is at most 48 bits, so its ROC fits 32.
    ((index >> 16) as u32).to_be_bytes()
}

/// The length of the RTP header in `buf[..end]`: the fixed 12 bytes, the CSRCs
/// and the header extension (RFC 3550 §5.1, §5.3.1); what follows is the
/// payload SRTP encrypts. The extension is opaque here: it is authenticated,
/// not encrypted, and its elements are not ours to read.
fn rtp_header_len(buf: &[u8], end: usize) -> Result<usize, SrtpError> {
    let short = SrtpError::Refused("shorter than its RTP header");
    let first = *buf.first().ok_or(short)?;
    if first >> 6 != 2 {
        return Err(SrtpError::Refused("not RTP version 2"));
    }
    let mut len = RTP_HEADER + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = buf.get(len + 2..len + 4).ok_or(short)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if len > end {
        return Err(short);
    }
    Ok(len)
}

fn ssrc_and_seq(buf: &[u8]) -> Result<(u32, u16), SrtpError> {
    let h = buf
        .get(..RTP_HEADER)
        .ok_or(SrtpError::Refused("shorter than an RTP header"))?;
    Ok((
        u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        u16::from_be_bytes([h[2], h[3]]),
    ))
}

/// The sender's SSRC of an RTCP packet (RFC 3550 §6.4.1): bytes 4..8, the
/// last of the 8 that SRTCP leaves unencrypted.
fn rtcp_ssrc(buf: &[u8]) -> Result<u32, SrtpError> {
    let b = buf
        .get(4..RTCP_SENDER)
        .ok_or(SrtpError::Refused("shorter than an RTCP header"))?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Per-SSRC state, at most [`MAX_SSRCS`] entries, most recently used first,
/// held inline: a packet's stream is nearly always the first entry, in the
/// cache lines the context's keys are in, where a hash map cost a SipHash
/// and a probe and a `Vec` a pointer chase per packet (issue 15). A peer may
/// change SSRC (a new call leg behind an SBC); when the list is full, the
/// stream unused longest is forgotten.
#[derive(Debug)]
struct Streams<S> {
    entries: [(u32, S); MAX_SSRCS],
    len: usize,
}

impl<S: Default + Copy> Default for Streams<S> {
    fn default() -> Self {
        Streams {
            entries: [(0, S::default()); MAX_SSRCS],
            len: 0,
        }
    }
}

impl<S: Default + Copy> Streams<S> {
    fn get(&self, ssrc: u32) -> Option<&S> {
        self.entries[..self.len]
            .iter()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, st)| st)
    }

    fn get_or_insert(&mut self, ssrc: u32) -> &mut S {
        match self.entries[..self.len]
            .iter()
            .position(|(s, _)| *s == ssrc)
        {
            Some(0) => {}
            Some(i) => self.entries[..=i].rotate_right(1),
            None => {
                // Full: the last entry, unused longest, is overwritten.
                self.len = (self.len + 1).min(MAX_SSRCS);
                self.entries[..self.len].rotate_right(1);
                self.entries[0] = (ssrc, S::default());
            }
        }
        &mut self.entries[0].1
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests;
