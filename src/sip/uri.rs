//! Where a URI points (the next hop for in-dialog requests and the trunk).
//!
//! In-dialog next hops are never resolved: a next hop written as a domain
//! falls back to the address the dialog's messages come from. (A trunk
//! named by a host name is resolved once per TTL by `sip/resolver.rs`,
//! RFC 3263; see docs/decisions.md.)

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

/// `host:port` as written in SIP (IPv6 in brackets, RFC 3261 §19.1.1).
pub fn hostport(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
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
}
