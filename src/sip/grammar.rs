//! Small, strict recognisers for the parts of RFC 3261 §25 grammar that the inbound gate
//! must judge itself, because rsipstack's parser accepts almost anything (see
//! `inspect.rs` for the list of its defects). Everything works on unfolded header
//! values (`wire.rs` joins continuation lines) and never panics on any input.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a piece of a message does not match the grammar. The text is for logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrammarError(pub &'static str);

type R<T> = Result<T, GrammarError>;

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '!' | '%' | '*' | '_' | '+' | '`' | '\'' | '~'
        )
}

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

pub(super) fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `unreserved` of RFC 3261 §25.1 (alphanum / mark).
fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '!' | '~' | '*' | '\'' | '(' | ')')
}

/// Checks that every `%` in `s` starts a `%HEXHEX` escape and every other character is
/// allowed by `ok`.
fn escaped_chars(s: &str, ok: impl Fn(char) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(|x| x.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            let c = b[i] as char;
            if !b[i].is_ascii() || !ok(c) {
                return false;
            }
            i += 1;
        }
    }
    true
}

/// Decodes `%HH` escapes (RFC 3261 §19.1.2). Returns `None` if the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|x| (*x as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (x, _, _) => {
                out.push(x);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A host as RFC 3261 §25.1 allows: hostname, IPv4address or `[IPv6address]`.
/// RFC 5118 §4.1/§4.3: an IPv6 address must be bracketed and well formed.
/// Underscores are tolerated in hostnames because private networks use them.
pub fn check_host(h: &str) -> R<()> {
    if let Some(inner) = h.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(GrammarError("unclosed IPv6 reference"))?;
        return inner
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| GrammarError("invalid IPv6 address"));
    }
    if h.is_empty() {
        return Err(GrammarError("empty host"));
    }
    if h.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return h
            .parse::<Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| GrammarError("invalid IPv4 address"));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    let labels: Vec<&str> = name.split('.').collect();
    for l in &labels {
        let ok = !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(GrammarError("invalid hostname"));
        }
    }
    // toplabel = ALPHA ... : the last label must start with a letter.
    match labels.last().and_then(|l| l.chars().next()) {
        Some(c) if c.is_ascii_alphabetic() => Ok(()),
        _ => Err(GrammarError("invalid hostname")),
    }
}

/// Splits `host[:port]` where host may be an `[IPv6]` reference.
pub fn split_hostport(s: &str) -> R<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']').ok_or(GrammarError("unclosed IPv6 reference"))?;
        let (h, rest) = s.split_at(close + 1);
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return Err(GrammarError("junk after IPv6 reference")),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    check_host(host)?;
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()) => Some(
            p.parse::<u16>()
                .map_err(|_| GrammarError("port out of range"))?,
        ),
        Some(_) => return Err(GrammarError("invalid port")),
    };
    Ok((host, port))
}

/// What a syntactically valid URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriScheme {
    Sip,
    Sips,
    Tel,
    Other(String),
}

/// Validates a URI as it appears in a Request-URI or inside `<>`. No whitespace is ever
/// allowed (RFC 4475 §3.1.2.7, §3.1.2.8, §3.1.2.14). SIP URIs are checked against
/// RFC 3261 §19.1 / §25.1, `tel:` against RFC 3966 loosely, other schemes only for
/// being an opaque `absoluteURI`.
pub fn check_uri(s: &str) -> R<UriScheme> {
    // Byte by byte for the ASCII URIs nearly all are (for ASCII, Unicode
    // whitespace is the space and controls), by character otherwise.
    let blank = if s.is_ascii() {
        s.bytes().any(|b| b == b' ' || b.is_ascii_control())
    } else {
        s.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if s.is_empty() || blank {
        return Err(GrammarError("whitespace or control character in URI"));
    }
    if s.bytes().any(|b| matches!(b, b'<' | b'>' | b'"')) {
        return Err(GrammarError("'<', '>' or '\"' in URI"));
    }
    let (scheme, rest) = s
        .split_once(':')
        .ok_or(GrammarError("URI without a scheme"))?;
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() {
        return Err(GrammarError("invalid URI scheme"));
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        check_sip_uri_body(rest)?;
        Ok(if scheme.eq_ignore_ascii_case("sip") {
            UriScheme::Sip
        } else {
            UriScheme::Sips
        })
    } else if scheme.eq_ignore_ascii_case("tel") {
        check_tel_body(rest)?;
        Ok(UriScheme::Tel)
    } else {
        Ok(UriScheme::Other(scheme.to_ascii_lowercase()))
    }
}

fn is_param_char(c: char) -> bool {
    is_unreserved(c) || matches!(c, '[' | ']' | '/' | ':' | '&' | '+' | '$')
}

fn check_uri_params(params: &str) -> R<()> {
    // uri-parameters = *( ";" uri-parameter ); pname = 1*paramchar.
    for p in params.split(';') {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        if n.is_empty() || !escaped_chars(n, is_param_char) || !escaped_chars(v, is_param_char) {
            return Err(GrammarError("malformed URI parameter"));
        }
    }
    Ok(())
}

/// Splits a SIP URI (after `sip:`) into (userinfo, hostport, params, headers).
pub fn split_sip_uri(rest: &str) -> (Option<&str>, &str, Option<&str>, Option<&str>) {
    // '@' can appear neither in host, parameters nor headers (all must escape it), so the
    // first '@' ends the userinfo; the user part itself may contain ';' and '?'
    // (RFC 4475 §3.1.1.9).
    let (userinfo, after) = match rest.split_once('@') {
        Some((u, a)) => (Some(u), a),
        None => (None, rest),
    };
    let (main, headers) = match after.split_once('?') {
        Some((m, h)) => (m, Some(h)),
        None => (after, None),
    };
    let (hostport, params) = match main.split_once(';') {
        Some((h, p)) => (h, Some(p)),
        None => (main, None),
    };
    (userinfo, hostport, params, headers)
}

fn check_sip_uri_body(rest: &str) -> R<()> {
    let (userinfo, hostport, params, headers) = split_sip_uri(rest);
    if let Some(ui) = userinfo {
        let (user, password) = ui.split_once(':').unwrap_or((ui, ""));
        let user_ok = |c: char| {
            is_unreserved(c) || matches!(c, '&' | '=' | '+' | '$' | ',' | ';' | '?' | '/')
        };
        let pass_ok = |c: char| is_unreserved(c) || matches!(c, '&' | '=' | '+' | '$' | ',');
        if user.is_empty() || !escaped_chars(user, user_ok) || !escaped_chars(password, pass_ok) {
            return Err(GrammarError("malformed URI user part"));
        }
    }
    split_hostport(hostport)?;
    if let Some(p) = params {
        check_uri_params(p)?;
    }
    if let Some(h) = headers {
        let ok = |c: char| is_unreserved(c) || matches!(c, '[' | ']' | '/' | '?' | ':' | '+' | '$');
        for kv in h.split('&') {
            let (n, v) = kv
                .split_once('=')
                .ok_or(GrammarError("malformed URI header"))?;
            if n.is_empty() || !escaped_chars(n, ok) || !escaped_chars(v, ok) {
                return Err(GrammarError("malformed URI header"));
            }
        }
    }
    Ok(())
}

fn check_tel_body(rest: &str) -> R<()> {
    let (number, params) = match rest.split_once(';') {
        Some((n, p)) => (n, Some(p)),
        None => (rest, None),
    };
    let digits = number.strip_prefix('+').unwrap_or(number);
    let ok = digits.chars().any(|c| c.is_ascii_hexdigit())
        && digits
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '*' | '#' | '-' | '.' | '(' | ')'));
    if !ok {
        return Err(GrammarError("malformed telephone number"));
    }
    if let Some(p) = params {
        check_uri_params(p)?;
    }
    Ok(())
}

/// One `generic-param`: `token [ "=" ( token / host / quoted-string ) ]`.
pub type Param = (String, Option<String>);

/// A parsed `name-addr` or `addr-spec` with its header parameters (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name with quotes removed and `\x` escapes resolved.
    pub display: Option<String>,
    /// The display name exactly as written (quoted form keeps its quotes and escapes).
    pub display_raw: Option<String>,
    pub uri: String,
    pub scheme: UriScheme,
    pub params: Vec<Param>,
}

impl NameAddr {
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Canonical text: `display <uri>;p=v` with all optional whitespace removed.
    pub fn to_canonical(&self) -> String {
        // Sized once (it grew a few bytes at a time, ~27 reallocations a
        // call): display, "<uri>", and each ";name=value".
        let params: usize = self
            .params
            .iter()
            .map(|(n, v)| n.len() + v.as_ref().map_or(0, |v| v.len() + 1) + 1)
            .sum();
        let display = self.display_raw.as_ref().map_or(0, |d| d.len() + 1);
        let mut s = String::with_capacity(display + self.uri.len() + 2 + params);
        if let Some(d) = &self.display_raw {
            s.push_str(d);
            s.push(' ');
        }
        s.push('<');
        s.push_str(&self.uri);
        s.push('>');
        push_params(&mut s, &self.params);
        s
    }
}

pub fn push_params(s: &mut String, params: &[Param]) {
    for (n, v) in params {
        s.push(';');
        s.push_str(n);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
    }
}

/// A cursor over a header value.
struct Cur<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<char> {
        // SIP text is nearly all ASCII: one byte read, and the UTF-8
        // decoder only for a byte that starts a longer character.
        match *self.s.as_bytes().get(self.i)? {
            b if b.is_ascii() => Some(char::from(b)),
            _ => self.s.get(self.i..).and_then(|r| r.chars().next()),
        }
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }
    fn skip_lws(&mut self) {
        while self.peek().is_some_and(is_lws) {
            self.i += 1;
        }
    }
    fn rest(&self) -> &'a str {
        self.s.get(self.i..).unwrap_or("")
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.i;
        while let Some(c) = self.peek().filter(|c| f(*c)) {
            self.i += c.len_utf8();
        }
        self.s.get(start..self.i).unwrap_or("")
    }
    /// Reads a quoted-string starting at `"`; returns (raw, unescaped).
    fn quoted(&mut self) -> R<(&'a str, String)> {
        let start = self.i;
        if self.bump() != Some('"') {
            return Err(GrammarError("expected '\"'"));
        }
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(GrammarError("unterminated quoted string")),
                Some('"') => break,
                Some('\\') => match self.bump() {
                    Some(c) if c != '\r' && c != '\n' => out.push(c),
                    _ => return Err(GrammarError("bad escape in quoted string")),
                },
                Some(c) => out.push(c),
            }
        }
        Ok((self.s.get(start..self.i).unwrap_or(""), out))
    }

    /// `*( SEMI generic-param )` up to the end or to `stop` (not consumed).
    fn params(&mut self, stop: Option<char>) -> R<Vec<Param>> {
        let mut out = Vec::new();
        loop {
            self.skip_lws();
            match self.peek() {
                None => return Ok(out),
                Some(c) if Some(c) == stop => return Ok(out),
                Some(';') => {
                    self.bump();
                }
                Some(_) => return Err(GrammarError("junk where ';' was expected")),
            }
            self.skip_lws();
            let name = self.take_while(is_token_char);
            if name.is_empty() {
                return Err(GrammarError("empty parameter"));
            }
            self.skip_lws();
            let value = if self.peek() == Some('=') {
                self.bump();
                self.skip_lws();
                let v = if self.peek() == Some('"') {
                    self.quoted()?.0.to_string()
                } else {
                    self.take_while(|c| is_token_char(c) || matches!(c, '[' | ']' | ':'))
                        .to_string()
                };
                if v.is_empty() {
                    return Err(GrammarError("empty parameter value"));
                }
                Some(v)
            } else {
                None
            };
            out.push((name.to_string(), value));
        }
    }
}

/// Parses one `(name-addr / addr-spec) *(SEMI param)` (To, From, Contact, Route, P-Asserted-
/// Identity entries). Per RFC 3261 §20, an addr-spec not in `<>` must not contain `,`, `;`
/// or `?` of its own: its `;` starts header parameters (RFC 4475 §3.1.2.13).
pub fn parse_name_addr(s: &str) -> R<NameAddr> {
    let mut c = Cur { s, i: 0 };
    c.skip_lws();
    let start = c.i;
    let mut display = None;
    let mut display_raw = None;
    if c.peek() == Some('"') {
        let (raw, text) = c.quoted()?;
        display_raw = Some(raw.to_string());
        display = Some(text);
        c.skip_lws();
        if c.peek() != Some('<') {
            return Err(GrammarError("quoted display name not followed by '<'"));
        }
    } else {
        // Try `*(token LWS) "<"`; if that does not end at '<' it is an addr-spec.
        let mut words = Vec::new();
        loop {
            let w = c.take_while(is_token_char);
            if w.is_empty() {
                break;
            }
            words.push(w);
            c.skip_lws();
        }
        if c.peek() == Some('<') {
            if !words.is_empty() {
                let d = words.join(" ");
                display_raw = Some(d.clone());
                display = Some(d);
            }
        } else {
            c.i = start;
        }
    }
    let uri = if c.peek() == Some('<') {
        c.bump();
        let u = c.take_while(|ch| ch != '>');
        if c.bump() != Some('>') {
            return Err(GrammarError("missing '>'"));
        }
        u
    } else {
        let u = c.take_while(|ch| !is_lws(ch) && ch != ';' && ch != ',');
        if u.contains('?') {
            return Err(GrammarError("URI with headers must be enclosed in '<>'"));
        }
        u
    };
    let scheme = check_uri(uri)?;
    let params = c.params(None)?;
    Ok(NameAddr {
        display,
        display_raw,
        uri: uri.to_string(),
        scheme,
        params,
    })
}

/// Splits a header value at top-level commas (outside quotes and `<>`).
pub fn split_commas(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut q, mut esc, mut angle, mut start) = (false, false, false, 0);
    for (i, ch) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match ch {
            '\\' if q => esc = true,
            '"' => q = !q,
            '<' if !q => angle = true,
            '>' if !q => angle = false,
            ',' if !q && !angle => {
                out.push(s.get(start..i).unwrap_or("").trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s.get(start..).unwrap_or("").trim());
    out
}

/// Parses a comma-separated list of name-addr values (Contact, Route, P-Asserted-Identity).
/// A From or To value: a name-addr whose `tag`, if present, is one token (RFC 3261
/// §25.1 `tag-param = "tag" EQUAL token`). A bare `;tag` or a second tag would leave
/// the dialog (§12) to whichever reader looks.
pub fn parse_from_to(s: &str) -> R<NameAddr> {
    let na = parse_name_addr(s)?;
    let mut tags = na
        .params
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("tag"));
    if let Some((_, value)) = tags.next() {
        if !value.as_deref().is_some_and(is_token) {
            return Err(GrammarError("tag is not a token"));
        }
        if tags.next().is_some() {
            return Err(GrammarError("tag given twice"));
        }
    }
    Ok(na)
}

pub fn parse_name_addr_list(s: &str) -> R<Vec<NameAddr>> {
    split_commas(s).into_iter().map(parse_name_addr).collect()
}

/// One `via-parm` (RFC 3261 §20.42, §25.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaValue {
    pub protocol: String,
    pub version: String,
    pub transport: String,
    /// As written; an IPv6 host keeps its brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<Param>,
}

impl ViaValue {
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn to_canonical(&self) -> String {
        let mut s = String::with_capacity(64);
        for (part, sep) in [
            (&self.protocol, '/'),
            (&self.version, '/'),
            (&self.transport, ' '),
        ] {
            s.push_str(part);
            s.push(sep);
        }
        s.push_str(&self.host);
        if let Some(p) = self.port {
            use std::fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = write!(s, ":{p}");
        }
        push_params(&mut s, &self.params);
        s
    }
}

/// Parses one Via header value, which may hold several comma-separated via-parms and
/// optional whitespace around `/`, `:`, `;` and `=` (RFC 4475 §3.1.1.1).
pub fn parse_via(s: &str) -> R<Vec<ViaValue>> {
    split_commas(s).into_iter().map(parse_via_parm).collect()
}

/// The Via parameters RFC 3261 gives one meaning each (§20.42, §25.1; rport: RFC 3581)
/// may appear once: two branches would leave the transaction a request belongs to to
/// whichever reader looks (§17.2.3). `branch` is a token, not the generic gen-value
/// (which also admits hosts).
fn check_via_params(params: &[Param]) -> R<()> {
    for (i, (name, value)) in params.iter().enumerate() {
        let defined = ["branch", "received", "maddr", "ttl", "rport"]
            .iter()
            .any(|d| name.eq_ignore_ascii_case(d));
        if defined
            && params[..i]
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return Err(GrammarError("Via parameter given twice"));
        }
        if name.eq_ignore_ascii_case("branch") && !value.as_deref().is_some_and(is_token) {
            return Err(GrammarError("Via branch is not a token"));
        }
    }
    Ok(())
}

fn parse_via_parm(s: &str) -> R<ViaValue> {
    let mut c = Cur { s, i: 0 };
    let part = |c: &mut Cur, last: bool| -> R<String> {
        c.skip_lws();
        let t = c.take_while(is_token_char).to_string();
        if !last {
            c.skip_lws();
        }
        if t.is_empty() || (!last && c.bump() != Some('/')) {
            return Err(GrammarError("malformed Via sent-protocol"));
        }
        Ok(t)
    };
    let protocol = part(&mut c, false)?;
    let version = part(&mut c, false)?;
    let transport = part(&mut c, true)?;
    let host_start = c.i;
    c.skip_lws();
    if c.i == host_start {
        return Err(GrammarError("no whitespace before Via sent-by"));
    }
    let host = if c.peek() == Some('[') {
        let h = c.take_while(|ch| ch != ']');
        if c.bump() != Some(']') {
            return Err(GrammarError("unclosed IPv6 reference in Via"));
        }
        format!("{h}]")
    } else {
        c.take_while(|ch| ch.is_ascii_alphanumeric() || "-._".contains(ch))
            .to_string()
    };
    check_host(&host)?;
    c.skip_lws();
    let port = if c.peek() == Some(':') {
        c.bump();
        c.skip_lws();
        let p = c.take_while(|ch| ch.is_ascii_digit());
        if p.is_empty() || p.len() > 5 {
            return Err(GrammarError("malformed Via port"));
        }
        Some(
            p.parse::<u16>()
                .map_err(|_| GrammarError("Via port out of range"))?,
        )
    } else {
        None
    };
    let params = c.params(None)?;
    if !c.rest().is_empty() {
        return Err(GrammarError("junk after Via"));
    }
    check_via_params(&params)?;
    Ok(ViaValue {
        protocol,
        version,
        transport,
        host,
        port,
        params,
    })
}

/// Parses `Content-Type` (`type "/" subtype *(SEMI m-parameter)`); returns the lower-cased
/// media type and its parameters.
pub fn parse_media_type(s: &str) -> R<(String, Vec<Param>)> {
    let mut c = Cur { s, i: 0 };
    c.skip_lws();
    let t = c.take_while(is_token_char);
    c.skip_lws();
    if t.is_empty() || c.bump() != Some('/') {
        return Err(GrammarError("malformed media type"));
    }
    c.skip_lws();
    let st = c.take_while(is_token_char);
    if st.is_empty() {
        return Err(GrammarError("malformed media subtype"));
    }
    let params = c.params(None)?;
    let mut media_type = [t, "/", st].concat();
    media_type.make_ascii_lowercase();
    Ok((media_type, params))
}

/// Collapses every run of SP/HTAB outside quoted strings into one SP and trims the ends.
pub fn collapse_lws(s: &str) -> String {
    let s = s.trim_matches(is_lws);
    // Most values have no run to collapse: no HTAB and no two SPs in a row. Copied
    // as they are, they skip the walk below (every header of every message, issue 15).
    if !s.contains('\t') && memchr::memmem::find(s.as_bytes(), b"  ").is_none() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let (mut q, mut esc, mut pending) = (false, false, false);
    for ch in s.chars() {
        if !q && is_lws(ch) {
            pending = true;
            continue;
        }
        if pending {
            out.push(' ');
            pending = false;
        }
        if esc {
            esc = false;
        } else if ch == '\\' && q {
            esc = true;
        } else if ch == '"' {
            q = !q;
        }
        out.push(ch);
    }
    out
}
