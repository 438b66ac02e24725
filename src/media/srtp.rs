//! SRTP and SRTCP (RFC 3711) for one media session, keyed by SDES (RFC 4568).
//!
//! The cipher is `webrtc-srtp` (pure Rust, webrtc-rs; docs/decisions.md says why
//! not libsrtp2): this module only holds the keys, picks the crypto suite and
//! wraps one context per direction. A session has one [`SrtpSender`] (our key:
//! the pacing thread and the bridge relay protect with it under the session's
//! `Tx` lock) and one [`SrtpReceiver`] (the peer's key: only the receive task
//! unprotects). Keys are secrets: [`SrtpKey`]'s `Debug` never shows them, and
//! nothing here logs one.

use std::fmt;

use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Master key length of the AES_CM_128 suites (RFC 4568 §6.2.1).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length of the AES_CM_128 suites (RFC 4568 §6.2.1).
pub const MASTER_SALT_LEN: usize = 14;
/// Key and salt as carried in one `inline:` key (RFC 4568 §6.1: key || salt).
pub const KEY_SALT_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;

/// RFC 3711 §3.3.2 replay list: 64 packets is the RFC's minimum window; a
/// telephone stream that is reordered by more than 1.28 s is lost anyway.
const REPLAY_WINDOW: usize = 64;

/// The receive context keeps state per SSRC. A peer may change SSRC (a new
/// call leg behind an SBC), but a stream of packets with ever new SSRCs would
/// grow that state without bound before authentication rejects them, so the
/// context is rebuilt once this many distinct SSRCs were seen.
const MAX_RECEIVE_SSRCS: usize = 8;

/// RTP fixed header (RFC 3550 §5.1).
const RTP_HEADER: usize = 12;
/// SRTCP's smallest packet: RTCP header and sender SSRC, the E flag with the 31-bit
/// SRTCP index, and the 80-bit tag every suite we do uses for SRTCP (RFC 3711 §3.4).
const SRTCP_MIN: usize = 8 + SRTCP_INDEX + SRTCP_TAG;
const SRTCP_INDEX: usize = 4;
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

    fn profile(self) -> ProtectionProfile {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
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

    fn key(&self) -> &[u8] {
        &self.0[..MASTER_KEY_LEN]
    }

    fn salt(&self) -> &[u8] {
        &self.0[MASTER_KEY_LEN..]
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

/// Why a packet was not protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The context could not be built (never for keys of the right length).
    #[error("cannot set up the SRTP context: {0}")]
    Setup(String),
    /// Not authentic, replayed, too short or not RTP/RTCP (RFC 3711 §3.3).
    #[error("SRTP packet refused: {0}")]
    Refused(String),
}

fn context(suite: CryptoSuite, key: &SrtpKey, receive: bool) -> Result<Context, SrtpError> {
    let (rtp_opt, rtcp_opt) = if receive {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(key.key(), key.salt(), suite.profile(), rtp_opt, rtcp_opt)
        .map_err(|e| SrtpError::Setup(e.to_string()))
}

/// Our outbound direction: protects RTP and RTCP with our key.
pub struct SrtpSender {
    suite: CryptoSuite,
    key: SrtpKey,
    ctx: Context,
}

impl SrtpSender {
    pub fn new(params: &SrtpParams) -> Result<SrtpSender, SrtpError> {
        Ok(SrtpSender {
            suite: params.suite,
            key: params.local.clone(),
            ctx: context(params.suite, &params.local, false)?,
        })
    }

    /// Whether this context already protects with `params`' suite and our key.
    pub fn is_for(&self, params: &SrtpParams) -> bool {
        self.suite == params.suite && self.key == params.local
    }

    /// Encrypt and authenticate the RTP packet in `buf`, in place (RFC 3711 §3.3).
    pub fn protect_rtp(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        check_header_extension(buf)?;
        let out = self
            .ctx
            .encrypt_rtp(buf)
            .map_err(|e| SrtpError::Refused(e.to_string()))?;
        buf.clear();
        buf.extend_from_slice(&out);
        Ok(())
    }

    /// Encrypt and authenticate a compound RTCP packet in place (RFC 3711 §3.4:
    /// E flag, SRTCP index, 80-bit tag).
    pub fn protect_rtcp(&mut self, buf: &mut Vec<u8>) -> Result<(), SrtpError> {
        let out = self
            .ctx
            .encrypt_rtcp(buf)
            .map_err(|e| SrtpError::Refused(e.to_string()))?;
        buf.clear();
        buf.extend_from_slice(&out);
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
    ctx: Context,
    /// The SSRCs the context holds state for, at most [`MAX_RECEIVE_SSRCS`]:
    /// a scan of a few words, where a hashed set cost a SipHash and a probe
    /// per packet (issue 15, SRTP against plain RTP).
    ssrcs: Vec<u32>,
}

impl SrtpReceiver {
    pub fn new(params: &SrtpParams) -> Result<SrtpReceiver, SrtpError> {
        Ok(SrtpReceiver {
            suite: params.suite,
            key: params.remote.clone(),
            ctx: context(params.suite, &params.remote, true)?,
            ssrcs: Vec::new(),
        })
    }

    /// Authenticate and decrypt the SRTP packet in `buf[..len]`; the RTP packet
    /// is written back to the front of `buf` and its length returned.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        if buf.len() < RTP_HEADER + self.suite.rtp_tag_len() {
            return Err(SrtpError::Refused(
                "shorter than an SRTP header and tag".into(),
            ));
        }
        check_header_extension(buf)?;
        self.note_ssrc(buf)?;
        let out = self
            .ctx
            .decrypt_rtp(buf)
            .map_err(|e| SrtpError::Refused(e.to_string()))?;
        copy_back(buf, &out)
    }

    /// Authenticate and decrypt an SRTCP packet in place, as [`Self::unprotect_rtp`].
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        // Checked here, not left to the crate: webrtc-srtp 0.17 underflows on an SRTCP
        // packet shorter than index + tag, and returns one whose E flag is clear as it
        // came, unauthenticated. We never agree to UNENCRYPTED_SRTCP (RFC 4568 §6.3.2),
        // so a clear E flag is a forgery or a broken peer either way.
        if buf.len() < SRTCP_MIN {
            return Err(SrtpError::Refused(
                "shorter than an SRTCP header, index and tag".into(),
            ));
        }
        let e_flag = buf
            .get(buf.len() - SRTCP_TAG - SRTCP_INDEX)
            .is_some_and(|b| b & 0x80 != 0);
        if !e_flag {
            return Err(SrtpError::Refused("SRTCP without the E flag".into()));
        }
        self.note_ssrc(buf)?;
        let out = self
            .ctx
            .decrypt_rtcp(buf)
            .map_err(|e| SrtpError::Refused(e.to_string()))?;
        copy_back(buf, &out)
    }

    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Whether this context already checks `params`' suite and the peer's key.
    pub fn is_for(&self, params: &SrtpParams) -> bool {
        self.suite == params.suite && self.key == params.remote
    }

    /// Bound the per-SSRC state (see [`MAX_RECEIVE_SSRCS`]). RTP and RTCP
    /// both carry the sender's SSRC at bytes 4..8 (RFC 3550 §5.1, §6.4.1).
    fn note_ssrc(&mut self, buf: &[u8]) -> Result<(), SrtpError> {
        let Some(b) = buf.get(4..8) else {
            return Err(SrtpError::Refused("shorter than an RTP header".into()));
        };
        let ssrc = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if self.ssrcs.contains(&ssrc) {
            return Ok(());
        }
        if self.ssrcs.len() >= MAX_RECEIVE_SSRCS {
            self.ctx = context(self.suite, &self.key, true)?;
            self.ssrcs.clear();
        }
        self.ssrcs.push(ssrc);
        Ok(())
    }
}

impl fmt::Debug for SrtpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrtpReceiver({})", self.suite.name())
    }
}

/// webrtc's `rtp` 0.17 header parser, which `encrypt_rtp` and `decrypt_rtp`
/// run before anything is authenticated, panics when an RFC 8285 header
/// extension element claims more bytes than its extension block holds (it
/// reads past the end of the packet). RFC 8285 §4.2 and §4.3 put every element
/// inside the block, so such a packet is malformed: refuse it here, before the
/// crate sees it. Whatever else is short is left to the crate, which reports it.
fn check_header_extension(buf: &[u8]) -> Result<(), SrtpError> {
    let refused = || SrtpError::Refused("RTP header extension element runs past its block".into());
    let Some(&first) = buf.first() else {
        return Ok(());
    };
    if first & 0x10 == 0 {
        return Ok(());
    }
    // RFC 3550 §5.3.1: the extension follows the fixed header and the CSRCs.
    let start = RTP_HEADER + 4 * usize::from(first & 0x0f);
    let Some(head) = buf.get(start..start + 4) else {
        return Ok(());
    };
    let profile = u16::from_be_bytes([head[0], head[1]]);
    let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let Some(block) = buf.get(start + 4..start + 4 + 4 * words) else {
        return Ok(());
    };
    let mut i = 0;
    match profile {
        // One-byte form: ID (4 bits), length - 1 (4 bits); ID 0 is padding,
        // ID 15 ends the list (RFC 8285 §4.2).
        0xBEDE => {
            while let Some(&b) = block.get(i) {
                i += 1;
                if b == 0 {
                    continue;
                }
                if b >> 4 == 15 {
                    break;
                }
                i += usize::from(b & 0x0f) + 1;
                if i > block.len() {
                    return Err(refused());
                }
            }
        }
        // Two-byte form: ID byte (0 is padding), length byte (RFC 8285 §4.3).
        0x1000 => {
            while let Some(&b) = block.get(i) {
                i += 1;
                if b == 0 {
                    continue;
                }
                let Some(&len) = block.get(i) else {
                    return Err(refused());
                };
                i += 1 + usize::from(len);
                if i > block.len() {
                    return Err(refused());
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn copy_back(buf: &mut [u8], out: &[u8]) -> Result<usize, SrtpError> {
    let dst = buf
        .get_mut(..out.len())
        .ok_or_else(|| SrtpError::Refused("decrypted packet longer than received".into()))?;
    dst.copy_from_slice(out);
    Ok(out.len())
}

#[cfg(test)]
mod tests;
