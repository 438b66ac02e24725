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
    // The line ends are found with memchr, a word at a time, not a byte-by-byte
    // split: every byte of every head passes here (issue 15).
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    let mut lines = memchr::memchr_iter(b'\n', head)
        .chain(std::iter::once(head.len()))
        .scan(0usize, |from, to| {
            let line = head.get(*from..to).unwrap_or_default();
            *from = to.saturating_add(1);
            Some(line.strip_suffix(b"\r"))
        });
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
        if line.first().is_some_and(|b| is_blank(*b)) {
            match headers.last_mut() {
                Some(h) => {
                    let more = trim_blanks(&text);
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

/// SP or HTAB, the grammar's own test, on a byte of the line.
fn is_blank(b: u8) -> bool {
    super::grammar::is_lws(char::from(b))
}

/// `t` without the blanks at either end. Byte by byte: both are ASCII, so every
/// cut falls on a character boundary.
fn trim_blanks(t: &str) -> &str {
    let skip = t.bytes().position(|b| !is_blank(b)).unwrap_or(t.len());
    trim_end_blanks(t.get(skip..).unwrap_or_default())
}

fn trim_end_blanks(t: &str) -> &str {
    let keep = t.bytes().rposition(|b| !is_blank(b)).map_or(0, |i| i + 1);
    t.get(..keep).unwrap_or_default()
}

/// `name: value` with the blanks around both trimmed, each part still borrowed from
/// the line when the line was UTF-8.
fn split_field(text: Cow<'_, str>) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    fn parts(t: &str) -> Option<(&str, &str)> {
        // ':' is ASCII: its byte index is a character boundary.
        let colon = memchr::memchr(b':', t.as_bytes())?;
        let (n, v) = (t.get(..colon)?, t.get(colon + 1..)?);
        Some((trim_end_blanks(n), trim_blanks(v)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(msg: &[u8]) -> (String, Vec<(String, String, bool)>, Vec<u8>) {
        let raw = split(msg, 100).unwrap();
        let headers = raw
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_string(), h.well_formed))
            .collect();
        (
            String::from_utf8_lossy(raw.start_line).into_owned(),
            headers,
            raw.body.to_vec(),
        )
    }

    /// Issue 15 rewrote the line and colon search; the edges it must keep:
    /// leading CRLFs, blanks around the colon (RFC 3261 §7.3.1), folded lines
    /// joined by one space, a bare LF line, a line with no colon, text that is
    /// not UTF-8, compact names and the body after the empty line.
    #[test]
    fn lines_fields_and_folding() {
        let msg = b"\r\n\r\nINVITE sip:a@b SIP/2.0\r\nv \t:  SIP/2.0/UDP h \t\r\n\t;branch=z9hG4bK1\r\n \r\nX-Odd:\r\nno colon here\r\nbare\nX-Bin: \xff\xfe\r\nSubject:caf\xc3\xa9 \r\n\r\nbody\r\n";
        let (start, headers, body) = pairs(msg);
        assert_eq!(start, "INVITE sip:a@b SIP/2.0");
        let want: Vec<(String, String, bool)> = [
            ("Via", "SIP/2.0/UDP h ;branch=z9hG4bK1", true),
            ("X-Odd", "", true),
            ("", "no colon here", false),
            ("", "", false),
            ("X-Bin", "\u{fffd}\u{fffd}", true),
            ("Subject", "caf\u{e9}", true),
        ]
        .iter()
        .map(|(n, v, ok)| (n.to_string(), v.to_string(), *ok))
        .collect();
        assert_eq!(headers, want);
        assert_eq!(body, b"body\r\n");
    }

    #[test]
    fn ends_keep_alives_and_limits() {
        assert_eq!(split(b"\r\n\r\n", 10), Err(SplitError::KeepAlive));
        assert_eq!(
            split(b"OPTIONS sip:a SIP/2.0\r\nTo: b\r\n", 10),
            Err(SplitError::NoEndOfHeaders)
        );
        let (start, headers, body) = pairs(b"OPTIONS sip:a SIP/2.0\r\n\r\n");
        assert_eq!(
            (start.as_str(), headers.len(), body.len()),
            ("OPTIONS sip:a SIP/2.0", 0, 0)
        );
        assert_eq!(
            split(b"A\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n", 2),
            Err(SplitError::TooManyHeaders)
        );
        // A header whose name is not a token is kept, marked malformed.
        let (_, headers, _) = pairs(b"A\r\nBad Name: 1\r\n\r\n");
        assert_eq!(headers, [("Bad Name".to_string(), "1".to_string(), false)]);
    }
}
