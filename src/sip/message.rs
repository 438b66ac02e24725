//! What the SIP core reads from a parsed request or response, and how it
//! writes messages back.
//!
//! The parser (rsipstack's) keeps header values as raw strings; this module
//! pulls out the few fields transactions and dialogs need, once, into plain
//! types, and serialises our own messages by hand: we echo header values
//! byte-for-byte as §8.2.6.2 wants, and the output stays cheap.

use rsipstack::sip::{Header, Headers, Method};

use super::name_addr::NameAddr;
use super::transaction::{TxKey, TxMethod};

/// RFC 3261 §8.1.1.7: branches of RFC 3261 clients start with this cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The methods we implement, advertised in Allow (§20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";
/// The bodies we accept (§20.1).
pub const ACCEPT: &str = "application/sdp";
/// The extensions we support (§20.37): RFC 4028 session timers.
pub const SUPPORTED: &str = "timer";

/// The top Via, as far as transactions and response routing need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaInfo {
    /// "UDP", "TCP", ... as written.
    pub transport: String,
    /// sent-by: `host[:port]` as written.
    pub sent_by: String,
    pub branch: Option<String>,
    /// RFC 3581 §4: the client asked us to reply to its source port.
    pub rport: bool,
}

/// The fields of a request the core needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestHead {
    pub method: Method,
    /// Every Via value in order, top first, with `received`/`rport` added to
    /// the top one by the transport (§18.2.1, RFC 3581 §4).
    pub vias: Vec<String>,
    pub top_via: ViaInfo,
    pub from: String,
    pub from_tag: Option<String>,
    pub to: String,
    pub to_tag: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: String,
    pub contact: Option<String>,
    pub record_route: Vec<String>,
}

/// The fields of a response the core needs.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: u16,
    pub top_via: ViaInfo,
    pub to: String,
    pub to_tag: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: String,
    pub contact: Option<String>,
    pub record_route: Vec<String>,
}

/// Why a message could not be read for processing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("Missing {0} Header")]
    Missing(&'static str),
    #[error("Malformed {0} Header")]
    Malformed(&'static str),
}

/// Splits a header value on commas that separate list elements, keeping
/// commas inside quotes and angle brackets (§7.3.1).
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0i32, false, false, 0usize);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                let part = value[start..i].trim();
                if !part.is_empty() {
                    out.push(part);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let part = value[start..].trim();
    if !part.is_empty() {
        out.push(part);
    }
    out
}

/// The value of header parameter `name` in a name-addr / addr-spec header
/// value (parameters after the URI's closing `>`, or after the first `;`
/// when there are no brackets, §20.10); quoted strings respected.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    NameAddr::read(value).param(name)
}

/// The URI inside a name-addr (`"Bob" <sip:bob@x>;tag=1` → `sip:bob@x`) or
/// an addr-spec without brackets.
pub fn header_uri(value: &str) -> &str {
    NameAddr::read(value).uri
}

fn parse_via(value: &str) -> Result<ViaInfo, HeadError> {
    // sent-protocol LWS sent-by *( SEMI via-params ), §20.42 / §25.1. SLASH,
    // COLON, SEMI and EQUAL may all carry whitespace (RFC 4475 §3.1.1.1), so
    // split on the slashes first and strip whitespace from what follows the
    // transport token.
    let mut proto = value.trim().splitn(3, '/');
    let name = proto.next().map(str::trim);
    let version = proto.next().map(str::trim);
    if name.is_none_or(|n| n.is_empty()) || version.is_none_or(|v| v.is_empty()) {
        return Err(HeadError::Malformed("Via"));
    }
    let after = proto
        .next()
        .ok_or(HeadError::Malformed("Via"))?
        .trim_start();
    let (transport, rest) = after
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or(HeadError::Malformed("Via"))?;
    let transport = transport.to_ascii_uppercase();
    let rest: String = rest.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut parts = rest.split(';');
    let sent_by: String = parts
        .next()
        .map(|s| s.chars().filter(|c| !c.is_ascii_whitespace()).collect())
        .filter(|s: &String| !s.is_empty())
        .ok_or(HeadError::Malformed("Via"))?;
    let mut branch = None;
    let mut rport = false;
    for p in parts {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if k.eq_ignore_ascii_case("branch") {
            branch = v.filter(|v| !v.is_empty()).map(str::to_owned);
        } else if k.eq_ignore_ascii_case("rport") {
            rport = true;
        }
    }
    Ok(ViaInfo {
        transport,
        sent_by,
        branch,
        rport,
    })
}

fn first(headers: &Headers, pick: impl Fn(&Header) -> bool) -> Option<&str> {
    headers.iter().find(|h| pick(h)).map(|h| h.value())
}

fn all_values(headers: &Headers, pick: impl Fn(&Header) -> bool) -> Vec<String> {
    headers
        .iter()
        .filter(|h| pick(h))
        .flat_map(|h| split_list(h.value()).into_iter().map(str::to_owned))
        .collect()
}

fn parse_cseq(value: &str) -> Result<(u32, String), HeadError> {
    let mut it = value.split_ascii_whitespace();
    let num = it
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        // §8.1.1.5: the sequence number MUST be less than 2**31.
        .filter(|n| *n < (1 << 31))
        .ok_or(HeadError::Malformed("CSeq"))?;
    let method = it.next().ok_or(HeadError::Malformed("CSeq"))?.to_owned();
    if it.next().is_some() {
        return Err(HeadError::Malformed("CSeq"));
    }
    Ok((num, method))
}

struct Common {
    vias: Vec<String>,
    top_via: ViaInfo,
    to: String,
    to_tag: Option<String>,
    call_id: String,
    cseq: u32,
    cseq_method: String,
    contact: Option<String>,
    record_route: Vec<String>,
}

fn common(headers: &Headers) -> Result<Common, HeadError> {
    let vias = all_values(headers, |h| matches!(h, Header::Via(_)));
    let top = vias.first().ok_or(HeadError::Missing("Via"))?;
    let top_via = parse_via(top)?;
    let to = first(headers, |h| matches!(h, Header::To(_)))
        .ok_or(HeadError::Missing("To"))?
        .trim()
        .to_owned();
    let call_id = first(headers, |h| matches!(h, Header::CallId(_)))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or(HeadError::Missing("Call-ID"))?
        .to_owned();
    let (cseq, cseq_method) = parse_cseq(
        first(headers, |h| matches!(h, Header::CSeq(_))).ok_or(HeadError::Missing("CSeq"))?,
    )?;
    let to_tag = header_param(&to, "tag").map(str::to_owned);
    let contact = first(headers, |h| matches!(h, Header::Contact(_)))
        .and_then(|c| split_list(c).first().map(|s| (*s).to_owned()));
    let record_route = all_values(headers, |h| matches!(h, Header::RecordRoute(_)));
    Ok(Common {
        vias,
        top_via,
        to,
        to_tag,
        call_id,
        cseq,
        cseq_method,
        contact,
        record_route,
    })
}

impl RequestHead {
    pub fn read(req: &rsipstack::sip::Request) -> Result<Self, HeadError> {
        let c = common(&req.headers)?;
        let from = first(&req.headers, |h| matches!(h, Header::From(_)))
            .ok_or(HeadError::Missing("From"))?
            .trim()
            .to_owned();
        let from_tag = header_param(&from, "tag").map(str::to_owned);
        Ok(Self {
            method: req.method,
            vias: c.vias,
            top_via: c.top_via,
            from,
            from_tag,
            to: c.to,
            to_tag: c.to_tag,
            call_id: c.call_id,
            cseq: c.cseq,
            cseq_method: c.cseq_method,
            contact: c.contact,
            record_route: c.record_route,
        })
    }

    /// §17.2.3. For pre-3261 peers without the magic cookie we derive a key
    /// from the fields §17.2.3 lists for them, so their retransmissions
    /// still match (RFC 4475 §3.1.2.x `inv2543`).
    pub fn tx_key(&self) -> TxKey {
        let method = tx_method(self.method);
        match &self.top_via.branch {
            Some(b) if b.starts_with(MAGIC_COOKIE) => TxKey {
                branch: b.clone(),
                sent_by: self.top_via.sent_by.to_ascii_lowercase(),
                method,
            },
            _ => TxKey {
                branch: format!(
                    "2543:{}:{}:{}",
                    self.call_id,
                    self.from_tag.as_deref().unwrap_or(""),
                    self.cseq
                ),
                sent_by: self.top_via.sent_by.to_ascii_lowercase(),
                method,
            },
        }
    }
}

impl ResponseHead {
    pub fn read(resp: &rsipstack::sip::Response) -> Result<Self, HeadError> {
        let c = common(&resp.headers)?;
        Ok(Self {
            status: resp.status_code.code(),
            top_via: c.top_via,
            to: c.to,
            to_tag: c.to_tag,
            call_id: c.call_id,
            cseq: c.cseq,
            cseq_method: c.cseq_method,
            contact: c.contact,
            record_route: c.record_route,
        })
    }

    pub fn tx_key(&self) -> Option<TxKey> {
        let method: Method = self.cseq_method.parse().ok()?;
        Some(TxKey {
            branch: self.top_via.branch.clone()?,
            sent_by: self.top_via.sent_by.to_ascii_lowercase(),
            method: tx_method(method),
        })
    }
}

/// ACK shares the INVITE's transaction key; CANCEL has its own (§9.2).
pub fn tx_method(m: Method) -> TxMethod {
    match m {
        Method::Invite | Method::Ack => TxMethod::Invite,
        Method::Cancel => TxMethod::Cancel,
        other => TxMethod::Other(other as u8),
    }
}

/// A header line to add to a message we write.
pub type Extra<'a> = (&'a str, &'a str);

/// Writes a response to `req` (§8.2.6.2): Via, From, Call-ID and CSeq copied,
/// To copied with our tag added when it had none and `to_tag` is given.
pub fn response(
    req: &RequestHead,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[Extra<'_>],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    // Written with `push_str`, not `write!`: a response is some twelve lines
    // and `fmt` cost three times the copying (issue 15).
    let mut s = String::with_capacity(512);
    s.push_str("SIP/2.0 ");
    s.push_str(itoa::Buffer::new().format(status));
    s.push(' ');
    s.push_str(reason);
    s.push_str("\r\n");
    for v in &req.vias {
        header(&mut s, "Via", v);
    }
    // §12.1.1: a response that establishes a dialog (a 101-299 to a
    // request outside one) copies every Record-Route, in order, so the
    // peer's ACK, BYE and re-INVITEs go through the proxies that asked to
    // stay in the path (§16.6 step 4).
    if (101..300).contains(&status) && req.to_tag.is_none() {
        for rr in &req.record_route {
            header(&mut s, "Record-Route", rr);
        }
    }
    header(&mut s, "From", &req.from);
    s.push_str("To: ");
    s.push_str(&req.to);
    if let (None, Some(tag)) = (&req.to_tag, to_tag) {
        if status > 100 {
            s.push_str(";tag=");
            s.push_str(tag);
        }
    }
    s.push_str("\r\n");
    header(&mut s, "Call-ID", &req.call_id);
    s.push_str("CSeq: ");
    s.push_str(itoa::Buffer::new().format(req.cseq));
    s.push(' ');
    s.push_str(&req.cseq_method);
    s.push_str("\r\n");
    finish(s, extra, body)
}

/// One header line, `Name: value` and CRLF.
fn header(s: &mut String, name: &str, value: &str) {
    s.push_str(name);
    s.push_str(": ");
    s.push_str(value);
    s.push_str("\r\n");
}

/// Appends extra headers, Content-Type/-Length and the body.
pub fn finish(mut s: String, extra: &[Extra<'_>], body: Option<(&str, &[u8])>) -> Vec<u8> {
    for (k, v) in extra {
        header(&mut s, k, v);
    }
    match body {
        Some((ctype, b)) => {
            header(&mut s, "Content-Type", ctype);
            s.push_str("Content-Length: ");
            s.push_str(itoa::Buffer::new().format(b.len()));
            s.push_str("\r\n\r\n");
            let mut out = s.into_bytes();
            out.extend_from_slice(b);
            out
        }
        None => {
            s.push_str("Content-Length: 0\r\n\r\n");
            s.into_bytes()
        }
    }
}

/// The standard reason phrase for the codes we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// The body and its Content-Type, when present.
pub fn content_type(headers: &Headers) -> Option<String> {
    first(headers, |h| matches!(h, Header::ContentType(_))).map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// Values of a header by name, for headers rsipstack leaves untyped.
pub fn header_values<'a>(headers: &'a Headers, name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value())
        .collect()
}

/// True when any value of header `name` lists `token` (comma lists, §7.3.1).
pub fn has_token(headers: &Headers, name: &str, token: &str) -> bool {
    header_values(headers, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lists_respecting_quotes_and_brackets() {
        assert_eq!(
            split_list(r#""a, b" <sip:x@y;p=1,2>;tag=3, <sip:z@w>"#),
            vec![r#""a, b" <sip:x@y;p=1,2>;tag=3"#, "<sip:z@w>"]
        );
        assert_eq!(
            split_list("SIP/2.0/UDP a;branch=1 , SIP/2.0/TCP b"),
            vec!["SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b"]
        );
    }

    #[test]
    fn reads_params_after_the_uri_only() {
        let v = r#""Bob" <sip:bob@x;tag=inside>;tag=outside"#;
        assert_eq!(header_param(v, "tag"), Some("outside"));
        assert_eq!(header_param("sip:bob@x;tag=9", "tag"), Some("9"));
        assert_eq!(header_param("<sip:bob@x>", "tag"), None);
        assert_eq!(header_uri(v), "sip:bob@x;tag=inside");
    }

    #[test]
    fn parses_via_forms() {
        let v = parse_via("SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKa;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.sent_by, "[2001:db8::9:1]:5060");
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKa"));
        assert!(v.rport);
        // RFC 4475 wsinv: whitespace around every separator.
        let v = parse_via("SIP  /   2.0 /UDP\t 192.0.2.2 ; rport ; branch = z9hG4bKb").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.sent_by, "192.0.2.2");
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKb"));
        assert!(parse_via("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn cseq_must_be_below_2_pow_31() {
        assert!(parse_cseq("2147483648 INVITE").is_err());
        assert_eq!(
            parse_cseq("2147483647 INVITE").unwrap(),
            (2147483647, "INVITE".into())
        );
        assert!(parse_cseq("1 INVITE extra").is_err());
    }
}
