//! Tolerant raw view of one SIP message: start line, unfolded header fields and body,
//! plus a builder for error responses made from raw header lines. It works even when
//! the typed parser cannot, so a malformed request can still get its 400 (RFC 3261
//! §8.2.6 asks for the Via, From, To, Call-ID and CSeq of the request to be copied).

use std::borrow::Cow;

/// One header field with continuation lines joined (RFC 3261 §7.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader<'a> {
    /// Long canonical name for compact forms and the headers we check (`v` → `Via`);
    /// otherwise the name as written. Borrowed from a table or the message: a
    /// header costs no allocation for its name (issue 15).
    pub name: Cow<'a, str>,
    /// Value with folding replaced by one SP and the ends trimmed; invalid UTF-8 is
    /// replaced (header values are TEXT-UTF8, but old PBXes send Latin-1 names).
    /// Borrowed from the message unless folding or a replacement changed it.
    pub value: Cow<'a, str>,
    /// False when the line had no colon or its name was not a token.
    pub well_formed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage<'a> {
    pub start_line: &'a [u8],
    pub headers: Vec<RawHeader<'a>>,
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
/// the headers this layer examines; any other name is kept as written. A `match` on
/// the lower-cased name, not a scan of a table: every header line of every message
/// passes here.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    // The longest name below is 19 octets; a longer one is none of them.
    let mut buf = [0u8; 20];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"i" | b"call-id" => "Call-ID",
        b"m" | b"contact" => "Contact",
        b"e" | b"content-encoding" => "Content-Encoding",
        b"l" | b"content-length" => "Content-Length",
        b"c" | b"content-type" => "Content-Type",
        b"f" | b"from" => "From",
        b"s" => "Subject",
        b"k" | b"supported" => "Supported",
        b"t" | b"to" => "To",
        b"v" | b"via" => "Via",
        b"o" => "Event",
        b"r" => "Refer-To",
        b"b" => "Referred-By",
        b"x" => "Session-Expires",
        b"u" => "Allow-Events",
        b"a" => "Accept-Contact",
        b"j" => "Reject-Contact",
        b"d" => "Request-Disposition",
        b"y" => "Identity",
        b"n" => "Identity-Info",
        b"cseq" => "CSeq",
        b"max-forwards" => "Max-Forwards",
        b"require" => "Require",
        b"accept" => "Accept",
        b"route" => "Route",
        b"record-route" => "Record-Route",
        b"p-asserted-identity" => "P-Asserted-Identity",
        b"privacy" => "Privacy",
        _ => return None,
    })
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
    let end = memchr::memmem::find(msg, b"\r\n\r\n").ok_or(SplitError::NoEndOfHeaders)?;
    // Keep the last header line's CRLF so that every line ends in "\r\n".
    let head = msg.get(..end + 2).unwrap_or(&[]);
    let body = msg.get(end + 4..).unwrap_or(&[]);
    // Every line ends in "\n": without the last one, no empty piece follows it.
    let mut lines = head
        .strip_suffix(b"\n")
        .unwrap_or(head)
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r"));
    let start_line = match lines.next() {
        Some(Some(l)) => l,
        _ => head,
    };
    let mut headers: Vec<RawHeader<'_>> = Vec::with_capacity(16);
    for line in lines {
        // A bare LF (no CR) shows up as a line without the CR suffix: malformed.
        let Some(line) = line else {
            headers.push(RawHeader {
                name: Cow::Borrowed(""),
                value: Cow::Borrowed(""),
                well_formed: false,
            });
            continue;
        };
        // Nearly every line is ASCII: `from_utf8` checks it a word at a
        // time; the lossy reading only for a line that is not UTF-8.
        let text = match std::str::from_utf8(line) {
            Ok(t) => Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            match headers.last_mut() {
                Some(h) => {
                    let more = text.trim_matches([' ', '\t']);
                    if !more.is_empty() {
                        let value = h.value.to_mut();
                        if !value.is_empty() {
                            value.push(' ');
                        }
                        value.push_str(more);
                    }
                }
                None => headers.push(RawHeader {
                    name: Cow::Borrowed(""),
                    value: text,
                    well_formed: false,
                }),
            }
            continue;
        }
        if headers.len() >= max_headers {
            return Err(SplitError::TooManyHeaders);
        }
        // HCOLON = *( SP / HTAB ) ":" SWS: whitespace before the colon is legal.
        let h = match split_field(text) {
            Some((n, v)) => RawHeader {
                well_formed: super::grammar::is_token(&n),
                name: match canonical_name(&n) {
                    Some(known) => Cow::Borrowed(known),
                    None => n,
                },
                value: v,
            },
            None => RawHeader {
                name: Cow::Borrowed(""),
                value: Cow::Owned(String::from_utf8_lossy(line).into_owned()),
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

/// `name: value` with the blanks around both trimmed, each part still borrowed from
/// the line when the line was UTF-8.
fn split_field(text: Cow<'_, str>) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    fn parts(t: &str) -> Option<(&str, &str)> {
        let (n, v) = t.split_once(':')?;
        Some((n.trim_end_matches([' ', '\t']), v.trim_matches([' ', '\t'])))
    }
    match text {
        Cow::Borrowed(t) => parts(t).map(|(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v))),
        Cow::Owned(t) => {
            parts(&t).map(|(n, v)| (Cow::Owned(n.to_string()), Cow::Owned(v.to_string())))
        }
    }
}

impl<'a> RawMessage<'a> {
    /// The well-formed headers called `name`, with their index in `headers`.
    pub fn indexed<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = (usize, &'s RawHeader<'a>)> + use<'s, 'n, 'a> {
        self.headers
            .iter()
            .enumerate()
            .filter(move |(_, h)| h.well_formed && h.name.eq_ignore_ascii_case(name))
    }

    pub fn all<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s RawHeader<'a>> + use<'s, 'n, 'a> {
        self.indexed(name).map(|(_, h)| h)
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.all(name).next().map(|h| &*h.value)
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
