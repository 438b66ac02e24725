//! The little URI reading the core needs: where a URI points, and its user.
//!
//! We never resolve names: a trunk is configured by address, and a next hop
//! written as a domain falls back to the address the dialog's messages come
//! from (the documented behaviour for a switch that does no DNS).

use std::net::{IpAddr, SocketAddr};

/// `sip:user@host:port;params` → `host:port` as a socket address when the
/// host is an IP literal. Default port 5060 (§19.1.2).
pub fn socket_addr(uri: &str) -> Option<SocketAddr> {
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("SIP:"))?;
    let hostport = match rest.rfind('@') {
        Some(i) => &rest[i + 1..],
        None => rest,
    };
    let hostport = hostport
        .split([';', '?', '>'])
        .next()
        .unwrap_or(hostport)
        .trim();
    host_port(hostport)
}

/// `1.2.3.4`, `1.2.3.4:5070`, `[::1]`, `[::1]:5070`.
pub fn host_port(s: &str) -> Option<SocketAddr> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        let ip: IpAddr = host.parse().ok()?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if rest.is_empty() => 5060,
            None => return None,
        };
        return Some(SocketAddr::new(ip, port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some(SocketAddr::new(h.parse().ok()?, p.parse().ok()?)),
        None => Some(SocketAddr::new(s.parse().ok()?, 5060)),
    }
}

/// The user part of a sip:/sips: URI, or the number of a tel: URI (RFC
/// 3966), without parameters.
pub fn user(uri: &str) -> Option<String> {
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.eq_ignore_ascii_case("tel") {
        let number = rest.split(';').next()?.trim();
        return (!number.is_empty()).then(|| number.to_owned());
    }
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return None;
    }
    let (userinfo, _) = rest.rsplit_once('@')?;
    // user ; user-params (e.g. ";isub=" or ";phone-context") [: password]
    let user = userinfo.split([':', ';']).next()?;
    (!user.is_empty()).then(|| percent_decode(user))
}

/// §19.1.2: user parts may be escaped; compare them unescaped.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses() {
        assert_eq!(
            socket_addr("sip:+15550100000@127.0.0.1:5080;transport=udp"),
            Some("127.0.0.1:5080".parse().unwrap())
        );
        assert_eq!(
            socket_addr("<sip:[2001:db8::1]>"),
            Some("[2001:db8::1]:5060".parse().unwrap())
        );
        assert_eq!(socket_addr("sip:carrier.example.com"), None);
        assert_eq!(socket_addr("tel:+1234"), None);
    }

    #[test]
    fn reads_users() {
        assert_eq!(
            user("sip:+1-555-010-0000@h;user=phone").as_deref(),
            Some("+1-555-010-0000")
        );
        assert_eq!(
            user("tel:+12345678910;phone-context=x").as_deref(),
            Some("+12345678910")
        );
        assert_eq!(user("sip:%2B1555@h").as_deref(), Some("+1555"));
        assert_eq!(user("sip:h.example.com"), None);
        assert_eq!(user("mailto:x@y"), None);
        assert_eq!(user("sip:a%@h").as_deref(), Some("a%"));
    }
}
