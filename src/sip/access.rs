//! Typed accessors over an inspected request, so nothing outside `sip/` needs to know
//! rsipstack. They re-read header text with our own grammar (rsipstack's typed
//! From/To neither unescape display names nor decode `%` escapes in user parts).

use super::api::Verstat;
use super::grammar::{self, NameAddr, Param, UriScheme};
use rsipstack::sip::{Header, Request, Scheme};

/// The top Via entry (RFC 3261 §18.2.1 needs sent-by, `received`, `rport` and branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaInfo {
    /// Upper-case transport token (`UDP`, `TCP`, `TLS`, ...).
    pub transport: String,
    /// sent-by host; an IPv6 address without its brackets.
    pub host: String,
    pub port: Option<u16>,
    pub branch: Option<String>,
    /// `None`: no rport; `Some(None)`: `;rport` without value (RFC 3581).
    pub rport: Option<Option<u16>>,
    /// The `received` address without brackets (RFC 5118 §4.5 allows both forms).
    pub received: Option<String>,
}

/// Who is calling, as the request presents it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerCandidates {
    /// Number or user from P-Asserted-Identity (RFC 3325), a `tel:` entry preferred.
    pub pai: Option<String>,
    /// User part (or `tel:` number) of the From URI, `%` escapes decoded.
    pub from_user: Option<String>,
    /// From display name, unquoted and unescaped.
    pub from_display: Option<String>,
    /// The caller withheld their identity: From `anonymous@anonymous.invalid` or user
    /// `anonymous` (RFC 3323 §4.1.1.3), or `Privacy: id`/`user`/`header` (RFC 3323/3325).
    pub anonymous: bool,
    /// `verstat` of the PAI entry `pai` was read from, and of From.
    pub pai_verstat: Verstat,
    pub from_verstat: Verstat,
}

fn header_values<'a>(req: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.headers
        .iter()
        .filter(move |h| h.name().eq_ignore_ascii_case(name))
        .map(Header::value)
}

fn strip_visual(n: &str) -> String {
    // RFC 3966 §5.1.1: visual separators carry no meaning.
    n.chars().filter(|c| !"-.()".contains(*c)).collect()
}

/// The user of a URI string: for `tel:` the number, for `sip:`/`sips:` the decoded user
/// part without telephone-subscriber parameters (`+1234;phone-context=x` → `+1234`).
pub fn uri_user(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.eq_ignore_ascii_case("tel") {
        let n = rest.split(';').next().unwrap_or("");
        return (!n.is_empty()).then(|| strip_visual(n));
    }
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return None;
    }
    let (userinfo, _, params, _) = grammar::split_sip_uri(rest);
    let user = userinfo?.split(':').next().unwrap_or("");
    let user = grammar::percent_decode(user)?;
    let phone =
        params.is_some_and(|p| p.split(';').any(|kv| kv.eq_ignore_ascii_case("user=phone")));
    let user = if phone || user.starts_with('+') {
        strip_visual(user.split(';').next().unwrap_or(""))
    } else {
        user
    };
    (!user.is_empty()).then_some(user)
}

/// The `verstat` of a From or PAI URI (ATIS-1000074 §5.3.1): a parameter
/// of the telephone-subscriber, that is after the number of a `tel:` URI or
/// in the user part of `sip:+1555...;verstat=...@host;user=phone`, or one
/// of the SIP URI's own parameters after the host, where some carriers put
/// it. Names match without regard to case (RFC 3261 §19.1.4); two that
/// disagree count as the weaker.
pub fn uri_verstat(uri: &str) -> Verstat {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Verstat::Absent;
    };
    let (user_params, uri_params) = if scheme.eq_ignore_ascii_case("tel") {
        (rest.split_once(';').map(|(_, p)| p), None)
    } else if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let (userinfo, _, params, _) = grammar::split_sip_uri(rest);
        let user = userinfo.map(|u| u.split(':').next().unwrap_or(""));
        (user.and_then(|u| u.split_once(';')).map(|(_, p)| p), params)
    } else {
        return Verstat::Absent;
    };
    user_params
        .into_iter()
        .chain(uri_params)
        .flat_map(|p| p.split(';'))
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("verstat"))
        .map(|(_, v)| Verstat::parse(&grammar::percent_decode(v).unwrap_or_default()))
        .fold(Verstat::Absent, Verstat::weaker)
}

fn uri_host(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once(':')?;
    let (_, hostport, _, _) = grammar::split_sip_uri(rest);
    grammar::split_hostport(hostport)
        .ok()
        .map(|(h, _)| h.to_ascii_lowercase())
}

/// The called number: the Request-URI user part (the number for `tel:`), else the To
/// user.
pub fn called_number_user(req: &Request) -> Option<String> {
    let ruri = &req.uri;
    let from_ruri = match &ruri.scheme {
        Some(Scheme::Other(s)) if s.eq_ignore_ascii_case("tel") => {
            Some(strip_visual(&ruri.host_with_port.host.to_string()))
        }
        Some(Scheme::Sip) | Some(Scheme::Sips) => ruri.auth.as_ref().map(|a| {
            let phone = ruri
                .params
                .iter()
                .any(|p| p.to_string().eq_ignore_ascii_case(";user=phone"));
            if phone || a.user.starts_with('+') {
                strip_visual(a.user.split(';').next().unwrap_or(""))
            } else {
                a.user.clone()
            }
        }),
        _ => None,
    };
    from_ruri.filter(|u| !u.is_empty()).or_else(|| {
        let to = header_values(req, "To").next()?;
        uri_user(&grammar::parse_name_addr(to).ok()?.uri)
    })
}

pub fn caller_candidates(req: &Request) -> CallerCandidates {
    let from: Option<NameAddr> = header_values(req, "From")
        .next()
        .and_then(|v| grammar::parse_name_addr(v).ok());
    let pai_entries: Vec<NameAddr> = header_values(req, "P-Asserted-Identity")
        .filter_map(|v| grammar::parse_name_addr_list(v).ok())
        .flatten()
        .collect();
    let pai_entry = pai_entries
        .iter()
        .find(|e| e.scheme == UriScheme::Tel)
        .or_else(|| pai_entries.first());
    let pai = pai_entry.and_then(|e| uri_user(&e.uri));
    let pai_verstat = pai_entry.map_or(Verstat::Absent, |e| uri_verstat(&e.uri));
    let from_verstat = from
        .as_ref()
        .map_or(Verstat::Absent, |f| uri_verstat(&f.uri));
    let from_user = from.as_ref().and_then(|f| uri_user(&f.uri));
    let from_display = from.as_ref().and_then(|f| f.display.clone());
    let privacy = header_values(req, "Privacy").any(|v| {
        v.split(';').map(str::trim).any(|t| {
            ["id", "user", "header"]
                .iter()
                .any(|p| t.eq_ignore_ascii_case(p))
        })
    });
    let anon_from = from.as_ref().is_some_and(|f| {
        uri_host(&f.uri).as_deref() == Some("anonymous.invalid")
            || from_user
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case("anonymous"))
    });
    CallerCandidates {
        pai,
        from_user,
        from_display,
        anonymous: privacy || anon_from,
        pai_verstat,
        from_verstat,
    }
}

fn strip_brackets(s: &str) -> String {
    s.trim_start_matches('[').trim_end_matches(']').to_string()
}

pub fn top_via(req: &Request) -> Option<ViaInfo> {
    let first = header_values(req, "Via").next()?;
    let v = grammar::parse_via(first).ok()?.into_iter().next()?;
    let rport = v.param("rport").map(|p| p.and_then(|x| x.parse().ok()));
    Some(ViaInfo {
        transport: v.transport.to_ascii_uppercase(),
        host: strip_brackets(&v.host),
        port: v.port,
        branch: v.param("branch").flatten().map(str::to_string),
        rport,
        received: v.param("received").flatten().map(strip_brackets),
    })
}

/// The SDP part of a multipart body (RFC 2046 §5.1), e.g. SIP-I/SIP-T SDP + ISUP.
pub fn multipart_sdp<'a>(body: &'a [u8], params: &[Param]) -> Option<&'a [u8]> {
    let boundary = params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("boundary"))?
        .1
        .as_deref()?
        .trim_matches('"');
    if boundary.is_empty() {
        return None;
    }
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + d.len() <= body.len() {
        if body.get(i..i + d.len()) == Some(d)
            && (i == 0 || body.get(i.saturating_sub(2)..i) == Some(b"\r\n"))
        {
            starts.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    for w in starts.windows(2) {
        let (a, b) = (w[0] + d.len(), w[1].saturating_sub(2));
        let Some(part) = body.get(a..b).and_then(|p| p.strip_prefix(b"\r\n")) else {
            continue;
        };
        let sep = part.windows(4).position(|x| x == b"\r\n\r\n");
        let (head, content) = match sep {
            Some(p) => (part.get(..p)?, part.get(p + 4..)?),
            None => continue,
        };
        let head = String::from_utf8_lossy(head);
        let is_sdp = head.split("\r\n").any(|l| {
            l.split_once(':').is_some_and(|(n, v)| {
                (n.trim().eq_ignore_ascii_case("content-type")
                    || n.trim().eq_ignore_ascii_case("c"))
                    && grammar::parse_media_type(v).is_ok_and(|(t, _)| t == "application/sdp")
            })
        });
        if is_sdp {
            return Some(content);
        }
    }
    None
}

/// The SDP carried by a request: the whole body for `application/sdp`, the SDP part for
/// `multipart/*`, else `None`.
pub fn sdp_body(req: &Request) -> Option<&[u8]> {
    let ct = header_values(req, "Content-Type").next()?;
    let (t, params) = grammar::parse_media_type(ct).ok()?;
    if req.body.is_empty() {
        return None;
    }
    match t.as_str() {
        "application/sdp" => Some(&req.body),
        t if t.starts_with("multipart/") => multipart_sdp(&req.body, &params),
        _ => None,
    }
}
