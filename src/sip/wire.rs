//! Tolerant raw view of one SIP message: start line, unfolded header fields and body,
//! plus a builder for error responses made from raw header lines. It works even when
//! the typed parser cannot, so a malformed request can still get its 400 (RFC 3261
//! §8.2.6 asks for the Via, From, To, Call-ID and CSeq of the request to be copied).

/// One header field with continuation lines joined (RFC 3261 §7.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    /// Long canonical name for compact forms and the headers we check (`v` → `Via`);
    /// otherwise the name as written.
    pub name: String,
    /// Value with folding replaced by one SP and the ends trimmed; invalid UTF-8 is
    /// replaced (header values are TEXT-UTF8, but old PBXes send Latin-1 names).
    pub value: String,
    /// False when the line had no colon or its name was not a token.
    pub well_formed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage<'a> {
    pub start_line: &'a [u8],
    pub headers: Vec<RawHeader>,
    /// Everything after the empty line (before any Content-Length truncation).
    pub body: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// Only CRLFs: RFC 5626 §3.5.1 keep-alive (ping `CRLFCRLF` or pong `CRLF`).
    #[error("keep-alive")]
    KeepAlive,
    #[error("no CRLFCRLF: truncated or not SIP")]
    NoEndOfHeaders,
    #[error("more than the allowed number of header lines")]
    TooManyHeaders,
}

/// Compact forms (RFC 3261 §7.3.3 and the IANA registry) and the canonical spelling of
/// the headers this layer examines.
const NAMES: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
    ("x", "Session-Expires"),
    ("u", "Allow-Events"),
    ("a", "Accept-Contact"),
    ("j", "Reject-Contact"),
    ("d", "Request-Disposition"),
    ("y", "Identity"),
    ("n", "Identity-Info"),
    ("call-id", "Call-ID"),
    ("contact", "Contact"),
    ("content-encoding", "Content-Encoding"),
    ("content-length", "Content-Length"),
    ("content-type", "Content-Type"),
    ("from", "From"),
    ("to", "To"),
    ("via", "Via"),
    ("cseq", "CSeq"),
    ("max-forwards", "Max-Forwards"),
    ("require", "Require"),
    ("accept", "Accept"),
    ("route", "Route"),
    ("record-route", "Record-Route"),
    ("supported", "Supported"),
    ("p-asserted-identity", "P-Asserted-Identity"),
    ("privacy", "Privacy"),
];

pub fn canonical_name(name: &str) -> String {
    NAMES
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| (*v).to_string())
        .unwrap_or_else(|| name.to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits one datagram / framed message. Leading CRLFs are skipped (RFC 3261 §7.5).
pub fn split(msg: &[u8], max_headers: usize) -> Result<RawMessage<'_>, SplitError> {
    let mut start = 0;
    while msg.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    let msg = msg.get(start..).unwrap_or(&[]);
    if msg.is_empty() {
        return Err(SplitError::KeepAlive);
    }
    let end = find(msg, b"\r\n\r\n").ok_or(SplitError::NoEndOfHeaders)?;
    // Keep the last header line's CRLF so that every line ends in "\r\n".
    let head = msg.get(..end + 2).unwrap_or(&[]);
    let body = msg.get(end + 4..).unwrap_or(&[]);
    let mut pieces: Vec<&[u8]> = head.split(|b| *b == b'\n').collect();
    pieces.pop(); // the empty piece after the final LF
    let mut lines = pieces.into_iter().map(|l| l.strip_suffix(b"\r"));
    let start_line = match lines.next() {
        Some(Some(l)) => l,
        _ => head,
    };
    let mut headers: Vec<RawHeader> = Vec::new();
    for line in lines {
        // A bare LF (no CR) shows up as a line without the CR suffix: malformed.
        let Some(line) = line else {
            headers.push(RawHeader {
                name: String::new(),
                value: String::new(),
                well_formed: false,
            });
            continue;
        };
        let text = String::from_utf8_lossy(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            match headers.last_mut() {
                Some(h) => {
                    let more = text.trim_matches([' ', '\t']);
                    if !more.is_empty() {
                        if !h.value.is_empty() {
                            h.value.push(' ');
                        }
                        h.value.push_str(more);
                    }
                }
                None => headers.push(RawHeader {
                    name: String::new(),
                    value: text.into_owned(),
                    well_formed: false,
                }),
            }
            continue;
        }
        if headers.len() >= max_headers {
            return Err(SplitError::TooManyHeaders);
        }
        // HCOLON = *( SP / HTAB ) ":" SWS: whitespace before the colon is legal.
        let h = match text.split_once(':') {
            Some((n, v)) => {
                let n = n.trim_end_matches([' ', '\t']);
                RawHeader {
                    name: canonical_name(n),
                    value: v.trim_matches([' ', '\t']).to_string(),
                    well_formed: super::grammar::is_token(n),
                }
            }
            None => RawHeader {
                name: String::new(),
                value: text.into_owned(),
                well_formed: false,
            },
        };
        headers.push(h);
    }
    Ok(RawMessage {
        start_line,
        headers,
        body,
    })
}

impl<'a> RawMessage<'a> {
    pub fn all<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s RawHeader> + use<'s, 'n, 'a> {
        self.headers
            .iter()
            .filter(move |h| h.well_formed && h.name.eq_ignore_ascii_case(name))
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.all(name).next().map(|h| h.value.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.all(name).count()
    }
}

/// FNV-1a: a stateless UAS must give a retransmitted request the same To tag
/// (RFC 3261 §8.2.7), so the tag is a hash of the request's identifiers.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn has_tag(to: &str) -> bool {
    match super::grammar::parse_name_addr(to) {
        Ok(na) => na.param("tag").is_some(),
        // Malformed To: look for the parameter by hand rather than add a second tag.
        Err(_) => to
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase()
            .contains(";tag="),
    }
}

/// Serialises a stateless error response to a request from its raw header lines
/// (RFC 3261 §8.2.6): every Via in order, the first From, To (with a To tag added when
/// absent), Call-ID and CSeq, `extra` headers, and `Content-Length: 0`.
pub fn error_response(
    raw: &RawMessage<'_>,
    status: u16,
    reason: &str,
    extra: &[(&str, String)],
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for v in raw.all("Via") {
        out.push_str(&format!("Via: {}\r\n", v.value));
    }
    let from = raw.first("From");
    if let Some(f) = from {
        out.push_str(&format!("From: {f}\r\n"));
    }
    let call_id = raw.first("Call-ID");
    let cseq = raw.first("CSeq");
    if let Some(t) = raw.first("To") {
        if has_tag(t) {
            out.push_str(&format!("To: {t}\r\n"));
        } else {
            let top_via = raw.first("Via").unwrap_or("");
            let tag = fnv1a(&[
                call_id.unwrap_or(""),
                from.unwrap_or(""),
                cseq.unwrap_or(""),
                top_via,
            ]);
            out.push_str(&format!("To: {t};tag={tag:016x}\r\n"));
        }
    }
    if let Some(c) = call_id {
        out.push_str(&format!("Call-ID: {c}\r\n"));
    }
    if let Some(c) = cseq {
        out.push_str(&format!("CSeq: {c}\r\n"));
    }
    for (n, v) in extra {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}
