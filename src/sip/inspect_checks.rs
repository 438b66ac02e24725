//! The individual checks behind `inspect`, and the rebuilding of rsipstack's typed
//! message from canonical header text.

use super::grammar::{self, UriScheme};
use super::message::{RequestHead, ViaInfo};
use super::wire::RawMessage;
use rsipstack::sip::headers::make_header;
use rsipstack::sip::uri::{
    parse_params, Auth, Host, HostWithPort, OtherParam, OtherParamValue, Param,
};
use rsipstack::sip::{Headers, Method, Scheme, Uri};

/// A reason for refusing a request: status, reason phrase, extra response headers.
pub struct Refusal(pub u16, pub String, pub Vec<(&'static str, String)>);

pub fn bad(what: &str) -> Refusal {
    Refusal(400, format!("Bad Request - {what}"), vec![])
}

/// What the header checks learned.
pub struct Checked {
    pub content_length: Option<usize>,
    pub max_forwards: Option<u32>,
    /// The canonical text of the headers the checks parsed.
    pub canonical: Canonical,
    /// The fields the core keys transactions and dialogs on, from the same
    /// parse, so the core does not read the headers again (issue 15), and
    /// what it keys on is what the grammar judged (one reader, nothing to
    /// smuggle between two).
    pub head: RequestHead,
}

/// The canonical text of each structured header (Via, From, To, Contact, Route,
/// Record-Route), by its index in the raw message, written by the check that parsed
/// it: the header list rsipstack gets is printed from that one parse instead of a
/// second (issue 15).
pub struct Canonical(Vec<Option<String>>);

impl Canonical {
    fn new(raw: &RawMessage<'_>) -> Self {
        Canonical(vec![None; raw.headers.len()])
    }

    fn set(&mut self, i: usize, text: String) {
        if let Some(slot) = self.0.get_mut(i) {
            *slot = Some(text);
        }
    }

    fn take(&mut self, i: usize) -> Option<String> {
        self.0.get_mut(i).and_then(Option::take)
    }
}

fn joined<T>(items: &[T], canonical: impl Fn(&T) -> String) -> String {
    items.iter().map(canonical).collect::<Vec<_>>().join(", ")
}

/// The transports a top Via may name: those RFC 3261 §18 and its extensions define
/// (SCTP: RFC 4168; WS, WSS: RFC 7118). A response goes back by the top Via's
/// transport (§18.2.2), so an unknown one leaves nothing to answer by.
const TRANSPORTS: &[&str] = &["UDP", "TCP", "TLS", "SCTP", "TLS-SCTP", "WS", "WSS"];

/// Every Via parsed (any malformed one is an error), each written to `canonical`.
/// Returns every via-parm's canonical text, top first, and the top one as the core
/// reads it (§17.2.3: its branch and sent-by key the transaction).
fn check_vias(
    raw: &RawMessage<'_>,
    canonical: &mut Canonical,
) -> Result<(Vec<String>, ViaInfo), ()> {
    let mut all = Vec::new();
    let mut top = None;
    for (i, h) in raw.indexed("Via") {
        let vias = grammar::parse_via(&h.value).map_err(|_| ())?;
        let first = all.len();
        for v in &vias {
            if top.is_none() {
                top = Some(via_info(v));
            }
            all.push(v.to_canonical());
        }
        canonical.set(i, all.get(first..).unwrap_or_default().join(", "));
    }
    let top = top.ok_or(())?;
    Ok((all, top))
}

/// The top via-parm as the core keys on it: transport in upper case, sent-by as
/// `host[:port]` (an IPv6 host in brackets), the branch and whether `rport` is asked
/// for (RFC 3581 §4).
fn via_info(v: &grammar::ViaValue) -> ViaInfo {
    let sent_by = match v.port {
        Some(p) => [v.host.as_str(), ":", itoa::Buffer::new().format(p)].concat(),
        None => v.host.clone(),
    };
    ViaInfo {
        transport: v.transport.to_ascii_uppercase(),
        sent_by,
        branch: v.param("branch").flatten().map(str::to_owned),
        rport: v.param("rport").is_some(),
    }
}

/// The top Via's transport is one we could answer by (checked last, where rsipstack's
/// typed Via used to refuse it, so a message with several faults keeps its answer).
pub fn check_transport(top: &ViaInfo) -> Result<(), Refusal> {
    if TRANSPORTS.contains(&top.transport.as_str()) {
        Ok(())
    } else {
        Err(bad("Unsupported Via Transport"))
    }
}

/// The one From or To header (the caller checked there is exactly one): its canonical
/// text and its tag (§19.3).
fn check_from_to(
    raw: &RawMessage<'_>,
    name: &str,
    canonical: &mut Canonical,
) -> Result<(String, Option<String>), ()> {
    let Some((i, h)) = raw.indexed(name).next() else {
        return Err(());
    };
    let na = grammar::parse_from_to(&h.value).map_err(|_| ())?;
    let text = na.to_canonical();
    canonical.set(i, text.clone());
    Ok((text, na.param("tag").flatten().map(str::to_owned)))
}

/// Headers that may appear once only (RFC 3261 §7.3.1; RFC 4475 §3.3.8, §3.3.9).
const SINGLE: &[&str] = &[
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
];

fn content_length(raw: &RawMessage<'_>) -> Result<Option<usize>, ()> {
    match raw.first("Content-Length") {
        None => Ok(None),
        // 1*DIGIT: a sign or anything else is malformed (RFC 4475 §3.1.2.3).
        Some(v) if !v.is_empty() && v.len() <= 9 && v.chars().all(|c| c.is_ascii_digit()) => {
            v.parse().map(Some).map_err(|_| ())
        }
        Some(_) => Err(()),
    }
}

/// Parses `CSeq: 1*DIGIT LWS Method` and returns (number, method token).
fn cseq(v: &str) -> Option<(u64, String)> {
    let v = grammar::collapse_lws(v);
    let (n, m) = v.split_once(' ')?;
    let ok = !n.is_empty() && n.len() <= 12 && n.chars().all(|c| c.is_ascii_digit());
    (ok && grammar::is_token(m)).then_some(())?;
    Some((n.parse().ok()?, m.to_string()))
}

/// `method` is the Request-Line's token, `typed` the same method as rsipstack names it.
pub fn check_headers(
    raw: &RawMessage<'_>,
    method: &str,
    typed: Method,
) -> Result<Checked, Refusal> {
    // RFC 3261 §8.1.1: To, From, CSeq, Call-ID and Via are mandatory. Max-Forwards is
    // too, but RFC 2543 peers (RFC 4475 §3.4.1) omit it, so it is tolerated.
    for name in ["From", "To", "Call-ID", "CSeq", "Via"] {
        if raw.count(name) == 0 {
            return Err(bad(&format!("Missing {name} Header")));
        }
    }
    for name in SINGLE {
        if raw.count(name) > 1 {
            return Err(bad(&format!("Multiple {name} Headers")));
        }
    }
    let mut canonical = Canonical::new(raw);
    let (vias, top_via) =
        check_vias(raw, &mut canonical).map_err(|_| bad("Malformed Via Header"))?;
    // RFC 4475 §3.2.1: the magic cookie without an identifier is no transaction id.
    if top_via.branch.as_deref() == Some("z9hG4bK") {
        return Err(bad("Missing Transaction Identifier"));
    }
    let (from, from_tag) =
        check_from_to(raw, "From", &mut canonical).map_err(|_| bad("Malformed From Header"))?;
    let (to, to_tag) =
        check_from_to(raw, "To", &mut canonical).map_err(|_| bad("Malformed To Header"))?;
    let mut contact = None;
    let mut record_route = Vec::new();
    for name in ["Contact", "Route", "Record-Route"] {
        for (n, (i, h)) in raw.indexed(name).enumerate() {
            let v = &*h.value;
            // §10.2.2 / §20.10: `*` is only for a REGISTER that removes
            // every binding. Anywhere else it names no target, and an
            // INVITE's `*` would later become our BYE's Request-URI.
            if name == "Contact" && v == "*" && method == "REGISTER" {
                if n == 0 {
                    contact = Some("*".to_owned());
                }
                continue;
            }
            let list = grammar::parse_name_addr_list(v)
                .map_err(|_| bad(&format!("Malformed {name} Header")))?;
            let texts: Vec<String> = list.iter().map(grammar::NameAddr::to_canonical).collect();
            canonical.set(i, texts.join(", "));
            match name {
                // The first Contact header's first element is the remote target
                // (§12.1.1).
                "Contact" if n == 0 => contact = texts.into_iter().next(),
                "Record-Route" => record_route.extend(texts),
                _ => {}
            }
        }
    }
    let call_id = raw.first("Call-ID").unwrap_or("");
    // Call-ID is `word ["@" word]`; we only insist on one non-empty run of visible
    // characters, since real devices use characters outside `word`. A control
    // character (a stray CR) is no part of any Call-ID, and readers that trim and
    // readers that do not would disagree on which dialog it names.
    if call_id.is_empty() || call_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("Malformed Call-ID Header"));
    }
    // RFC 3261 §8.1.1.5: the sequence number must be below 2**31.
    let (seq, cseq_method) =
        cseq(raw.first("CSeq").unwrap_or("")).ok_or_else(|| bad("Malformed CSeq Header"))?;
    if seq >= 1 << 31 {
        return Err(bad("Malformed CSeq Header"));
    }
    if cseq_method != method {
        return Err(bad("CSeq method does not match"));
    }
    let max_forwards = match raw.first("Max-Forwards") {
        None => None,
        Some(v) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => {
            // RFC 4475 §3.1.2.4: a value above 255 may be treated as absent.
            v.trim_start_matches('0')
                .parse::<u32>()
                .ok()
                .or(Some(0).filter(|_| v.chars().all(|c| c == '0')))
                .filter(|n| *n <= 255)
        }
        Some(_) => return Err(bad("Malformed Max-Forwards Header")),
    };
    let content_length = content_length(raw).map_err(|_| bad("Malformed Content-Length"))?;
    Ok(Checked {
        content_length,
        max_forwards,
        canonical,
        head: RequestHead {
            method: typed,
            vias,
            top_via,
            from,
            from_tag,
            to,
            to_tag,
            call_id: call_id.to_owned(),
            // Below 2**31 (checked above), so it fits.
            cseq: u32::try_from(seq).map_err(|_| bad("Malformed CSeq Header"))?,
            cseq_method,
            contact,
            record_route,
        },
    })
}

/// The body: Content-Length octets of what follows the empty line. More octets than
/// that are ignored (RFC 4475 §3.1.1.8); fewer mean a 400 (RFC 3261 §18.3). Without
/// Content-Length (UDP only, RFC 3261 §18.3) the body runs to the end.
pub fn body_of<'a>(raw: &RawMessage<'a>, cl: Option<usize>) -> Result<&'a [u8], Refusal> {
    match cl {
        None => Ok(raw.body),
        Some(n) => raw
            .body
            .get(..n)
            .ok_or_else(|| bad("Content-Length Exceeds Body")),
    }
}

fn tokens<'a>(raw: &'a RawMessage<'_>, name: &'a str) -> impl Iterator<Item = String> + 'a {
    raw.all(name).flat_map(|h| {
        h.value
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
    })
}

/// RFC 3261 §8.2.2.3: unknown option tags in Require get 420 with Unsupported.
pub fn check_require(raw: &RawMessage<'_>, limits: &super::inspect::Limits) -> Result<(), Refusal> {
    let unsupported: Vec<String> = tokens(raw, "Require")
        .filter(|t| !limits.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    Err(Refusal(
        420,
        "Bad Extension".into(),
        vec![("Unsupported", unsupported.join(", "))],
    ))
}

/// Body checks: a body needs a Content-Type (RFC 3261 §7.4.1); an INVITE body must be
/// SDP, alone or inside multipart (RFC 3261 §8.2.3, RFC 4475 §3.3.6), without a
/// content coding we do not apply; an INVITE whose Accept excludes SDP cannot be
/// answered (RFC 4475 §3.3.15, RFC 3261 §21.4.7).
pub fn check_body(raw: &RawMessage<'_>, method: Method, body: &[u8]) -> Result<(), Refusal> {
    let ctype = match raw.first("Content-Type") {
        Some(v) => Some(grammar::parse_media_type(v).map_err(|_| bad("Malformed Content-Type"))?),
        None if !body.is_empty() => return Err(bad("Missing Content-Type Header")),
        None => None,
    };
    if method != Method::Invite {
        return Ok(());
    }
    if !body.is_empty() {
        let codings: Vec<String> = tokens(raw, "Content-Encoding").collect();
        if codings.iter().any(|c| !c.eq_ignore_ascii_case("identity")) {
            return Err(Refusal(
                415,
                "Unsupported Media Type".into(),
                vec![("Accept-Encoding", "identity".into())],
            ));
        }
        let ok = match &ctype {
            Some((t, _)) if t == "application/sdp" => true,
            Some((t, params)) if t.starts_with("multipart/") => {
                super::access::multipart_sdp(body, params).is_some()
            }
            _ => false,
        };
        if !ok {
            return Err(Refusal(
                415,
                "Unsupported Media Type".into(),
                vec![("Accept", "application/sdp".into())],
            ));
        }
    }
    let ranges: Vec<String> = tokens(raw, "Accept").collect();
    let sdp_ok = ranges.iter().any(|r| {
        let m = r
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        m == "application/sdp" || m == "application/*" || m == "*/*"
    });
    // An empty Accept is treated as absent: devices send it meaning "no preference".
    if !ranges.is_empty() && !sdp_ok {
        return Err(Refusal(406, "Not Acceptable".into(), vec![]));
    }
    Ok(())
}

fn build_params(p: Option<&str>) -> Vec<Param> {
    let Some(p) = p else { return vec![] };
    // rsipstack rejects unknown `transport=`/`method=` values; keep them as other params.
    parse_params(p).unwrap_or_else(|_| {
        p.split(';')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (n, v) = match kv.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (kv, None),
                };
                Param::Other(OtherParam::new(n), v.map(OtherParamValue::new))
            })
            .collect()
    })
}

fn decode(s: &str) -> String {
    grammar::percent_decode(s).unwrap_or_else(|| s.to_string())
}

/// Builds rsipstack's `Uri` from an already validated URI ourselves: rsipstack splits
/// the user part at `;` and `?` (RFC 4475 §3.1.1.9) and keeps escapes undecoded but
/// re-escapes them on output. Here the user is decoded, so it round-trips.
pub fn build_uri(s: &str, scheme: &UriScheme) -> Result<Uri, grammar::GrammarError> {
    let rest = s.split_once(':').map(|(_, r)| r).unwrap_or("");
    match scheme {
        UriScheme::Sip | UriScheme::Sips => {
            let (userinfo, hostport, params, headers) = grammar::split_sip_uri(rest);
            let auth = userinfo.map(|ui| match ui.split_once(':') {
                Some((u, p)) => Auth {
                    user: decode(u),
                    password: Some(decode(p)),
                },
                None => Auth {
                    user: decode(ui),
                    password: None,
                },
            });
            let host_with_port = HostWithPort::try_from(hostport)
                .map_err(|_| grammar::GrammarError("host rejected by rsipstack"))?;
            let headers = headers
                .map(|h| {
                    h.split('&')
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (k.to_string(), v.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(Uri {
                scheme: Some(if *scheme == UriScheme::Sips {
                    Scheme::Sips
                } else {
                    Scheme::Sip
                }),
                auth,
                host_with_port,
                params: build_params(params),
                headers,
            })
        }
        // rsipstack's own shape for tel: the number as a domain host.
        UriScheme::Tel => {
            let (number, params) = match rest.split_once(';') {
                Some((n, p)) => (n, Some(p)),
                None => (rest, None),
            };
            Ok(Uri {
                scheme: Some(Scheme::Other("tel".into())),
                auth: None,
                host_with_port: HostWithPort {
                    host: Host::Domain(number.into()),
                    port: None,
                },
                params: build_params(params),
                headers: vec![],
            })
        }
        UriScheme::Other(_) => Err(grammar::GrammarError("unsupported scheme")),
    }
}

fn canonical_value(name: &str, value: &str, body_len: usize) -> Option<String> {
    let out = match name {
        "Via" => grammar::parse_via(value)
            .ok()
            .map(|v| joined(&v, grammar::ViaValue::to_canonical)),
        "From" | "To" | "Route" | "Record-Route" | "Contact" | "P-Asserted-Identity"
            if value != "*" =>
        {
            grammar::parse_name_addr_list(value)
                .ok()
                .map(|v| joined(&v, grammar::NameAddr::to_canonical))
        }
        "CSeq" => cseq(value).map(|(n, m)| [itoa::Buffer::new().format(n), " ", &m].concat()),
        "Content-Length" => Some(itoa::Buffer::new().format(body_len).to_owned()),
        "Max-Forwards" => match value.trim_start_matches('0') {
            "" => Some("0".into()),
            v => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 255)
                .map(|n| n.to_string()),
        },
        _ => None,
    };
    match (name, out) {
        (_, Some(v)) => Some(v),
        // Over-large Max-Forwards is treated as absent (RFC 4475 §3.1.2.4).
        ("Max-Forwards", None) => None,
        (_, None) => Some(grammar::collapse_lws(value)),
    }
}

/// The header list for rsipstack: canonical names, canonical values, original order.
/// A header the checks already parsed takes its text from `canonical`.
pub fn canonical_headers(
    raw: &RawMessage<'_>,
    body_len: usize,
    mut canonical: Canonical,
) -> Headers {
    // Sized once: grown header by header it was reallocated some nine
    // times a call.
    let mut out = Vec::with_capacity(raw.headers.len());
    for (i, h) in raw
        .headers
        .iter()
        .enumerate()
        .filter(|(_, h)| h.well_formed)
    {
        let value = canonical
            .take(i)
            .or_else(|| canonical_value(&h.name, &h.value, body_len));
        if let Some(v) = value {
            out.push(make_header(&h.name, v));
        }
    }
    Headers::from(out)
}

/// Response header checks: all mandatory headers present once and parseable, and the
/// CSeq a 32-bit number with a known method (RFC 4475 §3.1.2.5), else Drop. Returns
/// the Content-Length and the canonical text of the headers parsed.
pub fn check_response_headers(
    raw: &RawMessage<'_>,
) -> Result<(Option<usize>, Canonical), &'static str> {
    for name in ["From", "To", "Call-ID", "CSeq", "Via"] {
        if raw.count(name) == 0 {
            return Err("missing mandatory header");
        }
    }
    if SINGLE.iter().any(|n| raw.count(n) > 1) {
        return Err("repeated single-valued header");
    }
    let mut canonical = Canonical::new(raw);
    let (_, top_via) = check_vias(raw, &mut canonical).map_err(|_| "malformed Via")?;
    for name in ["From", "To"] {
        check_from_to(raw, name, &mut canonical).map_err(|_| "malformed From/To")?;
    }
    let (seq, m) = cseq(raw.first("CSeq").unwrap_or("")).ok_or("malformed CSeq")?;
    if seq > u64::from(u32::MAX) || !Method::all().iter().any(|x| x.to_string() == m) {
        return Err("CSeq out of range or unknown method");
    }
    let content_length = content_length(raw).map_err(|_| "malformed Content-Length")?;
    check_transport(&top_via).map_err(|_| "unsupported Via transport")?;
    Ok((content_length, canonical))
}
