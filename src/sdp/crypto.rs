//! SDES: the `a=crypto` attribute that carries SRTP keys in SDP (RFC 4568).
//!
//! `a=crypto:<tag> <crypto-suite> inline:<key||salt base64>[|<lifetime>][|<MKI>:<len>] [<session-params>]`
//! (RFC 4568 §9.1). We take one key per line, no MKI (we do not put an MKI
//! in packets) and no session parameters: RFC 4568 §6.3 says a line whose
//! session parameters we do not understand is not acceptable, so such a line
//! is skipped and the next one tried.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::media::srtp::{CryptoSuite, SrtpKey, SrtpPolicy, KEY_SALT_LEN};

/// One usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoLine {
    /// RFC 4568 §9.1: 1*9DIGIT; the answer repeats the tag it accepts.
    pub tag: u32,
    pub suite: CryptoSuite,
    pub key: SrtpKey,
}

/// Parse the value of one `a=crypto` attribute; the error says why the line
/// cannot be used (never the key itself).
pub fn parse(value: &str) -> Result<CryptoLine, String> {
    let mut fields = value.split_ascii_whitespace();
    let tag_s = fields.next().ok_or("empty a=crypto")?;
    if tag_s.is_empty() || tag_s.len() > 9 || !tag_s.bytes().all(|b| b.is_ascii_digit()) {
        // Not echoed: a line in the wrong order could put the key here, and the
        // reason goes into the log and a Warning header.
        return Err("the a=crypto tag is not 1 to 9 digits (RFC 4568 §9.1)".into());
    }
    let tag: u32 = tag_s
        .parse()
        .map_err(|_| format!("a=crypto tag `{tag_s}` is out of range"))?;
    let suite_s = fields.next().ok_or("a=crypto has no crypto-suite")?;
    let suite = CryptoSuite::from_name(suite_s).ok_or_else(|| {
        // Named only when it looks like a suite name (RFC 4568 §6.2), never a key.
        let shown = if suite_s.len() <= 32
            && suite_s
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            format!("`{suite_s}`")
        } else {
            "given".to_string()
        };
        format!(
            "the crypto-suite {shown} is not one we do ({} or {})",
            CryptoSuite::AesCm128HmacSha1_80.name(),
            CryptoSuite::AesCm128HmacSha1_32.name()
        )
    })?;
    let key_params = fields.next().ok_or("a=crypto has no key-params")?;
    if let Some(param) = fields.next() {
        let name = param.split('=').next().unwrap_or(param);
        let shown = if name.len() <= 24 && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        {
            format!("`{name}`")
        } else {
            "given".to_string()
        };
        return Err(format!(
            "the session parameter {shown} is not supported (RFC 4568 §6.3)"
        ));
    }
    if key_params.contains(';') {
        return Err("several keys in one a=crypto need an MKI, which we do not support".into());
    }
    let info = key_params
        .strip_prefix("inline:")
        .ok_or("key-params must be `inline:` (RFC 4568 §6.1)")?;
    let mut parts = info.split('|');
    let key_b64 = parts.next().unwrap_or("");
    for extra in parts {
        if extra.contains(':') {
            return Err("an MKI is not supported; offer the key without one".into());
        }
        if !is_lifetime(extra) {
            return Err("key lifetime is not `2^n` or a number (RFC 4568 §6.1)".into());
        }
    }
    let bytes = STANDARD
        .decode(key_b64)
        .map_err(|_| "the inline key is not base64 (RFC 4568 §6.1)".to_string())?;
    let key: [u8; KEY_SALT_LEN] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "the inline key is {} bytes; {} needs {KEY_SALT_LEN} (16 key + 14 salt)",
            bytes.len(),
            suite.name()
        )
    })?;
    Ok(CryptoLine {
        tag,
        suite,
        key: SrtpKey::from_bytes(key),
    })
}

fn is_lifetime(s: &str) -> bool {
    let digits = s.strip_prefix("2^").unwrap_or(s);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The value of an `a=crypto` attribute for `key` under `tag` and `suite`.
pub fn build(tag: u32, suite: CryptoSuite, key: &SrtpKey) -> String {
    format!(
        "{tag} {} inline:{}",
        suite.name(),
        STANDARD.encode(key.as_bytes())
    )
}

/// What our offer says about SRTP, from the trunk's policy (RFC 4568 §5.1):
/// nothing; `a=crypto` on an RTP/AVP stream, which an answerer may take or
/// ignore (the "best effort" offer baresip's `mediaenc srtp` and most PBXes
/// make); or RTP/SAVP, which a peer without SRTP must refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferCrypto {
    None,
    BestEffort(SrtpKey),
    Mandatory(SrtpKey),
}

impl OfferCrypto {
    /// A fresh key for an offer under `policy`.
    pub fn for_policy(policy: SrtpPolicy) -> OfferCrypto {
        Self::with_key(policy, SrtpKey::random())
    }

    /// An offer under `policy` reusing `key` (a re-offer keeps the stream's key).
    pub fn with_key(policy: SrtpPolicy, key: SrtpKey) -> OfferCrypto {
        match policy {
            SrtpPolicy::Off => OfferCrypto::None,
            SrtpPolicy::Optional => OfferCrypto::BestEffort(key),
            SrtpPolicy::Required => OfferCrypto::Mandatory(key),
        }
    }

    pub(super) fn proto(&self) -> &'static str {
        match self {
            OfferCrypto::Mandatory(_) => "RTP/SAVP",
            _ => "RTP/AVP",
        }
    }

    /// One line per suite we do, ours first; one key, since only one line
    /// can be accepted (RFC 4568 §7.1.1).
    pub(super) fn lines(&self) -> Vec<String> {
        match self {
            OfferCrypto::None => Vec::new(),
            OfferCrypto::BestEffort(key) | OfferCrypto::Mandatory(key) => CryptoSuite::ALL
                .iter()
                .zip(1u32..)
                .map(|(&suite, tag)| build(tag, suite, key))
                .collect(),
        }
    }
}
