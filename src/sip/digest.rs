//! Client side of SIP digest authentication (RFC 3261 §22.4, with the algorithms and
//! `-sess` variants of RFC 7616 that RFC 8760 brings to SIP).
//!
//! `parse_challenge` reads one WWW-Authenticate / Proxy-Authenticate value, `pick` chooses
//! among several, `authorize` builds the Authorization / Proxy-Authorization value.
//! Pure functions; `new_cnonce` is the only one that touches randomness.

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// Why a challenge cannot be answered. The caller should try the next challenge, or fail
/// the request with the status it got.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("authentication scheme `{0}` is not Digest; only Digest is supported")]
    NotDigest(String),
    #[error("malformed Digest challenge: {0}")]
    Malformed(String),
    #[error("Digest challenge lacks the required `{0}` parameter (RFC 3261 §25.1 digest-cln)")]
    MissingParam(&'static str),
    #[error("Digest algorithm `{0}` is not supported (use MD5, SHA-256 or SHA-512-256, optionally -sess)")]
    UnsupportedAlgorithm(String),
    #[error("Digest qop `{0}` offers no `auth`; auth-int (body hashing) is not supported")]
    UnsupportedQop(String),
}

/// Hash algorithm of a challenge (RFC 7616 §3.3 and §6.1 registry; RFC 8760 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// The token as written in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Tokens are case-insensitive (RFC 7616 §3.3 "algorithm").
    fn parse(token: &str) -> Option<Self> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Rank for `pick`: MD5 is broken, the SHA-2 family is what RFC 8760 adds.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 0,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 1,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 2,
        }
    }

    /// Lower-case hex of H(parts joined by ':') (RFC 7616 §3.4.1 "KD"/"H" notation).
    fn hex(self, parts: &[&str]) -> String {
        fn run<D: Digest>(parts: &[&str]) -> String {
            let mut h = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(p.as_bytes());
            }
            h.finalize().iter().map(|b| format!("{b:02x}")).collect()
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => run::<Sha512_256>(parts),
        }
    }
}

/// One Digest challenge, as needed to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server named the algorithm; we echo it only then, since RFC 2069-era servers
    /// that sent none may not expect one back.
    pub algorithm_given: bool,
    /// The server offered qop including `auth`: answer with qop=auth, nc and cnonce.
    /// `false` is the legacy RFC 2069 form (RFC 3261 §22.4 keeps it for compatibility).
    pub qop_auth: bool,
    /// The previous credentials were fine, only the nonce expired: retry without asking
    /// the user (RFC 7616 §3.3 "stale").
    pub stale: bool,
    /// Send H(username:realm) instead of the username (RFC 7616 §3.4.4).
    pub userhash: bool,
}

/// Parse one WWW-Authenticate or Proxy-Authenticate header value.
///
/// Tolerates any case in the scheme and parameter names, whitespace (including line
/// folds) around `=` and `,`, unquoted values and empty list elements. Never panics.
pub fn parse_challenge(header_value: &str) -> Result<Challenge, DigestError> {
    let value = header_value.trim_start();
    let (scheme, rest) = match value.find(|c: char| c.is_ascii_whitespace()) {
        Some(at) => (&value[..at], &value[at..]),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest(scheme.chars().take(40).collect()));
    }
    let params = parse_params(rest)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };

    let realm = get("realm").ok_or(DigestError::MissingParam("realm"))?;
    let nonce = get("nonce").ok_or(DigestError::MissingParam("nonce"))?;
    let (algorithm, algorithm_given) = match get("algorithm") {
        // RFC 7616 §3.3: absent means MD5.
        None => (Algorithm::Md5, false),
        Some(a) => (
            Algorithm::parse(a.trim())
                .ok_or_else(|| DigestError::UnsupportedAlgorithm(a.chars().take(40).collect()))?,
            true,
        ),
    };
    let qop_auth = match get("qop") {
        None => false,
        Some(list) => {
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                true
            } else {
                return Err(DigestError::UnsupportedQop(list.chars().take(40).collect()));
            }
        }
    };
    let is_true = |name: &str| get(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));

    Ok(Challenge {
        realm: realm.to_string(),
        nonce: nonce.to_string(),
        opaque: get("opaque").map(str::to_string),
        algorithm,
        algorithm_given,
        qop_auth,
        stale: is_true("stale"),
        userhash: is_true("userhash"),
    })
}

/// Parse every header value, keeping the challenges we can answer, in order.
pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    values
        .into_iter()
        .filter_map(|v| parse_challenge(v).ok())
        .collect()
}

/// Choose the challenge to answer: the strongest algorithm, and among equals the first
/// (topmost) one. RFC 8760 §2.4 tells the UAC to use the topmost challenge it supports
/// "unless a local policy dictates otherwise"; our policy is to never fall back to MD5
/// when the server also offers SHA-2, since servers often list MD5 first for old phones.
pub fn pick(challenges: &[Challenge]) -> Option<&Challenge> {
    let mut best: Option<&Challenge> = None;
    for ch in challenges {
        if best.is_none_or(|b| ch.algorithm.strength() > b.algorithm.strength()) {
            best = Some(ch);
        }
    }
    best
}

/// A fresh client nonce: 128 random bits in hex (RFC 7616 §3.4 "cnonce").
pub fn new_cnonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Build the Authorization / Proxy-Authorization header value answering `ch`.
///
/// `uri` must be the Request-URI of the request being authorised (RFC 3261 §22.4).
/// `nc` counts requests sent with this nonce, starting at 1 (RFC 7616 §3.4).
pub fn authorize(
    ch: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let alg = ch.algorithm;
    let nc = format!("{nc:08x}");
    // RFC 7616 §3.4.2: A1 = user:realm:pass, or for -sess H(user:realm:pass):nonce:cnonce.
    let mut ha1 = alg.hex(&[username, &ch.realm, password]);
    if alg.is_sess() {
        ha1 = alg.hex(&[&ha1, &ch.nonce, cnonce]);
    }
    // RFC 7616 §3.4.3: A2 = method:uri for qop=auth and for no qop.
    let ha2 = alg.hex(&[method, uri]);
    // RFC 7616 §3.4.1 with qop; RFC 2069 form (RFC 3261 §22.4) without.
    let response = if ch.qop_auth {
        alg.hex(&[&ha1, &ch.nonce, &nc, cnonce, "auth", &ha2])
    } else {
        alg.hex(&[&ha1, &ch.nonce, &ha2])
    };
    let user_field = if ch.userhash {
        alg.hex(&[username, &ch.realm])
    } else {
        username.to_string()
    };

    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\"",
        quote(&user_field),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(uri)
    );
    if ch.algorithm_given {
        out.push_str(", algorithm=");
        out.push_str(alg.as_str());
    }
    // cnonce goes with qop; a -sess hash without qop still used one, so send it then too.
    if ch.qop_auth || alg.is_sess() {
        out.push_str(", cnonce=");
        out.push_str(&quote(cnonce));
    }
    if let Some(opaque) = &ch.opaque {
        out.push_str(", opaque=");
        out.push_str(&quote(opaque));
    }
    if ch.qop_auth {
        // qop and nc are unquoted tokens in credentials (RFC 3261 §25.1 message-qop, nonce-count).
        out.push_str(", qop=auth, nc=");
        out.push_str(&nc);
    }
    if ch.userhash {
        out.push_str(", userhash=true");
    }
    out
}

/// quoted-string per RFC 3261 §25.1: escape `"` and `\`; drop control characters so a
/// value can never end the header line.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parse `name=value` pairs separated by commas (RFC 3261 §25.1 auth-param). The first
/// occurrence of a name wins. Values lose their quotes and escapes.
fn parse_params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut chars = s.chars().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while it.next_if(|c| c.is_ascii_whitespace()).is_some() {}
    };
    loop {
        while chars
            .next_if(|c| c.is_ascii_whitespace() || *c == ',')
            .is_some()
        {}
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(c) =
            chars.next_if(|c| !c.is_ascii_whitespace() && !matches!(c, '=' | ',' | '"'))
        {
            name.push(c);
        }
        if name.is_empty() {
            return Err(DigestError::Malformed(
                "expected a parameter name, found `\"`".into(),
            ));
        }
        skip_ws(&mut chars);
        if chars.next_if_eq(&'=').is_none() {
            return Err(DigestError::Malformed(format!(
                "parameter `{}` has no `=value`",
                name.chars().take(40).collect::<String>()
            )));
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some(e) => value.push(e),
                        None => break,
                    },
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(DigestError::Malformed(format!(
                    "value of `{name}` has no closing quote"
                )));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace() && *c != ',') {
                value.push(c);
            }
        }
        // A server-sent value is echoed in our header: refuse anything that could break it.
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(DigestError::Malformed(format!(
                "value of `{name}` contains control characters"
            )));
        }
        if !out.iter().any(|(k, _)| k.eq_ignore_ascii_case(&name)) {
            out.push((name, value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
