//! The SIP message trace (`sip.trace`, `sip.trace_numbers`): every message
//! of a traced call, in and out, logged whole at the `tpswitch::sip_trace`
//! target inside a `call` span carrying its Call-ID, so one Call-ID greps
//! to the whole call in text and JSON logs alike.
//!
//! What a trace must never print (the house rule: no secret in any log
//! line) is cut by [`redact`] before the message is logged: the digest
//! response of Authorization/Proxy-Authorization (RFC 3261 §22.4, RFC 8760
//! §2.4; with the nonce it is enough to guess a weak password offline), the
//! SDES keys of `a=crypto` (RFC 4568 §6.1 `inline:`), `k=` lines (RFC 4566
//! §5.12) and `a=key-mgmt` (RFC 4567), and DTMF carried in INFO bodies
//! (a key pressed in the log-in menu may be part of a PIN).

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;

use super::transaction::Transport;

/// The log target of every trace line.
pub const TARGET: &str = "tpswitch::sip_trace";

/// Call-IDs remembered as traced (the oldest is forgotten first): enough
/// for every call a busy switch holds, bounded whatever a peer sends.
const TRACED_CALLS: usize = 8192;

/// What is written in place of a secret.
const REDACTED: &str = "<redacted>";

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Received,
    Sent,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Received => "received",
            Direction::Sent => "sent",
        }
    }
}

/// Whether a number (the user part of a Request-URI, From, To or
/// P-Asserted-Identity) is one whose calls are traced. Built by the
/// composition root, which knows how numbers are normalised.
pub type NumberMatcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Decides which messages are traced and logs them.
pub struct SipTracer {
    all: bool,
    numbers: Option<NumberMatcher>,
    traced: HashSet<String>,
    order: VecDeque<String>,
}

impl SipTracer {
    /// Traces nothing (the default).
    pub fn off() -> Self {
        Self::new(false, None)
    }

    /// `all`: every message. Otherwise, with `numbers`, every message of a
    /// call whose INVITE names a matching number, from that INVITE on.
    pub fn new(all: bool, numbers: Option<NumberMatcher>) -> Self {
        SipTracer {
            all,
            numbers,
            traced: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn enabled(&self) -> bool {
        self.all || self.numbers.is_some()
    }

    /// Logs `data` if its call is traced.
    pub fn message(&mut self, dir: Direction, peer: SocketAddr, transport: Transport, data: &[u8]) {
        if !self.enabled() {
            return;
        }
        let text = String::from_utf8_lossy(data);
        let Some(call_id) = header(&text, &["call-id", "i"]) else {
            return;
        };
        if !self.all && !self.is_traced(&text, call_id) {
            return;
        }
        let transport = match transport {
            Transport::Udp => "udp",
            Transport::Tcp { .. } => "tcp",
            Transport::Tls { .. } => "tls",
        };
        let span = tracing::info_span!(target: TARGET, "call", call_id = %call_id);
        tracing::info!(
            target: TARGET,
            parent: &span,
            direction = dir.as_str(),
            %peer,
            transport,
            bytes = data.len(),
            sip = %redact(&text),
            "sip trace"
        );
    }

    /// True when the Call-ID is already traced, or when this is an INVITE
    /// naming a traced number (then its Call-ID is from now on).
    fn is_traced(&mut self, text: &str, call_id: &str) -> bool {
        if self.traced.contains(call_id) {
            return true;
        }
        let Some(matches) = &self.numbers else {
            return false;
        };
        if !text.starts_with("INVITE ") {
            return false;
        }
        let request_uri = text
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("");
        let mut uris = vec![request_uri];
        for names in [
            &["to", "t"][..],
            &["from", "f"][..],
            &["p-asserted-identity"][..],
        ] {
            uris.extend(header(text, names));
        }
        if !uris.iter().filter_map(|u| user_part(u)).any(matches) {
            return false;
        }
        if self.order.len() >= TRACED_CALLS {
            if let Some(old) = self.order.pop_front() {
                self.traced.remove(&old);
            }
        }
        self.traced.insert(call_id.to_owned());
        self.order.push_back(call_id.to_owned());
        true
    }
}

/// The value of the first header named one of `names` (lower case; compact
/// forms included, RFC 3261 §7.3.3), trimmed.
fn header<'a>(text: &'a str, names: &[&str]) -> Option<&'a str> {
    for line in text.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            return None;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if names.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            return Some(value.trim());
        }
    }
    None
}

/// The user part of the first `sip:`, `sips:` or `tel:` URI in a header
/// value or Request-URI, without parameters.
fn user_part(value: &str) -> Option<&str> {
    let lower = value.to_ascii_lowercase();
    let (start, scheme_len) = ["sips:", "sip:", "tel:"]
        .iter()
        .find_map(|s| lower.find(s).map(|i| (i, s.len())))?;
    let rest = value.get(start + scheme_len..)?;
    let end = rest
        .find(['@', ';', '>', '?', ' ', ','])
        .unwrap_or(rest.len());
    let user = rest.get(..end)?;
    (!user.is_empty()).then_some(user)
}

/// The message with every secret replaced by `<redacted>` (see the module
/// comment for what counts as one). Lines are kept, so the trace still
/// shows which header or attribute was there.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(text.len());
    let mut in_body = false;
    let mut dtmf_body = false;
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        let ending = line.get(content.len()..).unwrap_or("");
        let redacted = if !in_body {
            if content.is_empty() {
                in_body = true;
                None
            } else {
                if let Some(ct) = header_line_value(content, &["content-type", "c"]) {
                    let ct = ct.trim().to_ascii_lowercase();
                    dtmf_body = ct.starts_with("application/dtmf");
                }
                redact_header(content)
            }
        } else if dtmf_body {
            (!content.is_empty()).then(|| REDACTED.to_owned())
        } else {
            redact_sdp_line(content)
        };
        match redacted {
            Some(r) => {
                changed = true;
                out.push_str(&r);
                out.push_str(ending);
            }
            None => out.push_str(line),
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// The value of a header line if its name is one of `names`.
fn header_line_value<'a>(line: &'a str, names: &[&str]) -> Option<&'a str> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    names
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
        .then_some(value)
}

/// Authorization and Proxy-Authorization: the Digest `response` is cut;
/// any other scheme (Basic, Bearer) loses its whole credentials.
fn redact_header(line: &str) -> Option<String> {
    let value = header_line_value(line, &["authorization", "proxy-authorization"])?;
    let name_len = line.len() - value.len();
    let name = line.get(..name_len).unwrap_or("");
    let trimmed = value.trim_start();
    let scheme_end = trimmed
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(trimmed.len());
    let scheme = trimmed.get(..scheme_end).unwrap_or("");
    if !scheme.eq_ignore_ascii_case("digest") {
        return Some(format!("{name} {scheme} {REDACTED}"));
    }
    Some(format!("{name}{}", redact_param(value, "response")))
}

/// `param=value` or `param="value"` (case-insensitive name, RFC 3261 §25.1)
/// with the value replaced, wherever it appears in a comma-separated list.
fn redact_param(value: &str, param: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    loop {
        let Some(i) = find_param(rest, param) else {
            out.push_str(rest);
            return out;
        };
        let (before, at) = rest.split_at(i);
        out.push_str(before);
        let eq = at.find('=').map_or(at.len(), |e| e + 1);
        out.push_str(at.get(..eq).unwrap_or(at));
        let after = at.get(eq..).unwrap_or("");
        let after_ws = after.trim_start();
        let skipped = after.len() - after_ws.len();
        let value_len = if let Some(q) = after_ws.strip_prefix('"') {
            // A quoted string ends at the first unescaped quote.
            let mut escaped = false;
            let mut end = q.len();
            for (j, c) in q.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = j + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            1 + end
        } else {
            after_ws.find([',', ' ', '\t']).unwrap_or(after_ws.len())
        };
        out.push_str(&format!("\"{REDACTED}\""));
        rest = after.get(skipped + value_len..).unwrap_or("");
    }
}

/// Where `param` starts as a parameter name (after the scheme, a comma or
/// whitespace, and followed by `=`), ignoring case.
fn find_param(s: &str, param: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower.get(from..)?.find(param) {
        let at = from + i;
        let before_ok = at == 0
            || lower[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c == ',' || c.is_ascii_whitespace());
        let after = lower[at + param.len()..].trim_start();
        if before_ok && after.starts_with('=') {
            return Some(at);
        }
        from = at + param.len();
    }
    None
}

/// SDP key material: `a=crypto` inline keys, `k=` and `a=key-mgmt`.
fn redact_sdp_line(line: &str) -> Option<String> {
    if line.starts_with("k=") {
        return Some(format!("k={REDACTED}"));
    }
    if let Some(_rest) = line.strip_prefix("a=key-mgmt:") {
        return Some(format!("a=key-mgmt:{REDACTED}"));
    }
    if !line.starts_with("a=crypto:") {
        return None;
    }
    // RFC 4568 §9.1: key-param = "inline:" key-info, several separated by ";";
    // key-info is the base64 key||salt, then optional "|lifetime|MKI:len".
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("inline:") {
        let (before, at) = rest.split_at(i + "inline:".len());
        out.push_str(before);
        out.push_str(REDACTED);
        let end = at.find(['|', ';', ' ']).unwrap_or(at.len());
        rest = at.get(end..).unwrap_or("");
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests;
