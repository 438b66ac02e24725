//! Which of our addresses a peer is told: the private one or the public
//! one of a NAT.
//!
//! Behind a NAT a peer on the Internet must find the router's public
//! address in our Via sent-by and Contact (RFC 3261 §18.1.1, §8.1.1.8) and
//! in the SDP c= line (RFC 4566 §5.7), or its responses, in-dialog requests
//! and RTP go to an address it cannot reach; a peer on our own network must
//! be told the private one (the router may not hairpin). As Asterisk's PJSIP
//! transports do (`external_signaling_address`, `external_media_address`,
//! `local_net`), the choice is made per destination: a peer inside
//! `local_networks` gets the private address, every other peer the external
//! one, when one is configured.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The public side of a NAT, and the networks that do not go through it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nat {
    /// Our SIP address and port as seen from outside `local_networks`.
    pub external_signaling: Option<SocketAddr>,
    /// Our RTP address as seen from outside `local_networks`; when `None`
    /// the external signalling address is used (one public address is the
    /// common case).
    pub external_media: Option<IpAddr>,
    pub local_networks: Vec<IpNet>,
}

impl Nat {
    /// True when `dest` is inside `local_networks` (and so is told our
    /// private addresses even when external ones are configured).
    pub fn is_local(&self, dest: IpAddr) -> bool {
        // A socket bound to `[::]` reports IPv4 peers as `::ffff:a.b.c.d`.
        let dest = dest.to_canonical();
        self.local_networks.iter().any(|n| n.contains(&dest))
    }

    /// The SIP host:port for Via sent-by and Contact toward `dest`;
    /// `private` is what a local peer is told.
    pub fn signaling_for<'a>(&self, dest: IpAddr, private: &'a str) -> Cow<'a, str> {
        match self.external_signaling {
            Some(ext) if !self.is_local(dest) => Cow::Owned(super::uri::hostport(ext)),
            _ => Cow::Borrowed(private),
        }
    }

    /// The RTP address peers outside `local_networks` are told, if any.
    pub fn external_media_ip(&self) -> Option<IpAddr> {
        self.external_media
            .or(self.external_signaling.map(|a| a.ip()))
    }

    /// This plan with a trunk's own keys over it: a trunk that names an
    /// external signalling address has its own external addresses (its
    /// media one defaulting to that), as a PJSIP transport of its own
    /// would; `local_networks`, when given, replaces the list.
    pub fn overridden(
        &self,
        external_signaling: Option<SocketAddr>,
        external_media: Option<IpAddr>,
        local_networks: Option<&[IpNet]>,
    ) -> Nat {
        let (external_signaling, external_media) = match external_signaling {
            Some(sig) => (Some(sig), external_media),
            None => (self.external_signaling, self.external_media),
        };
        Nat {
            external_signaling,
            external_media,
            local_networks: local_networks
                .map_or_else(|| self.local_networks.clone(), <[IpNet]>::to_vec),
        }
    }

    /// The RTP address for SDP c= toward `dest`; `private` is what a local
    /// peer is told.
    pub fn media_for(&self, dest: IpAddr, private: IpAddr) -> IpAddr {
        match self.external_media_ip() {
            Some(ext) if !self.is_local(dest) => ext,
            _ => private,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nat() -> Nat {
        Nat {
            external_signaling: Some("203.0.113.10:5060".parse().unwrap()),
            external_media: Some("203.0.113.20".parse().unwrap()),
            local_networks: vec![
                "10.0.0.0/8".parse().unwrap(),
                "127.0.0.1/32".parse().unwrap(),
            ],
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn local_peers_get_the_private_addresses() {
        let n = nat();
        assert_eq!(
            n.signaling_for(ip("10.1.2.3"), "10.0.0.5:5060"),
            "10.0.0.5:5060"
        );
        assert_eq!(n.media_for(ip("10.1.2.3"), ip("10.0.0.5")), ip("10.0.0.5"));
        assert_eq!(
            n.signaling_for(ip("127.0.0.1"), "10.0.0.5:5060"),
            "10.0.0.5:5060"
        );
    }

    #[test]
    fn other_peers_get_the_external_addresses() {
        let n = nat();
        assert_eq!(
            n.signaling_for(ip("198.51.100.7"), "10.0.0.5:5060"),
            "203.0.113.10:5060"
        );
        assert_eq!(
            n.media_for(ip("198.51.100.7"), ip("10.0.0.5")),
            ip("203.0.113.20")
        );
        // 127.0.0.2 is loopback but not listed: only local_networks count.
        assert_eq!(
            n.media_for(ip("127.0.0.2"), ip("10.0.0.5")),
            ip("203.0.113.20")
        );
    }

    #[test]
    fn ipv4_mapped_peers_are_matched_as_ipv4() {
        let n = nat();
        assert_eq!(
            n.signaling_for(ip("::ffff:10.1.2.3"), "10.0.0.5:5060"),
            "10.0.0.5:5060"
        );
    }

    #[test]
    fn media_falls_back_to_the_signalling_address() {
        let n = Nat {
            external_media: None,
            ..nat()
        };
        assert_eq!(
            n.media_for(ip("198.51.100.7"), ip("10.0.0.5")),
            ip("203.0.113.10")
        );
    }

    #[test]
    fn without_an_external_address_everyone_gets_the_private_one() {
        let n = Nat::default();
        assert_eq!(
            n.signaling_for(ip("198.51.100.7"), "10.0.0.5:5060"),
            "10.0.0.5:5060"
        );
        assert_eq!(
            n.media_for(ip("198.51.100.7"), ip("10.0.0.5")),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn a_trunk_plan_overrides_the_switch_plan_key_by_key() {
        let sw = nat();
        // Its own external address: its own media address too (or none,
        // then its signalling one), never the switch's media address.
        let own = sw.overridden(Some("198.51.100.5:5062".parse().unwrap()), None, None);
        assert_eq!(
            own.signaling_for(ip("192.0.2.1"), "10.0.0.5:5060"),
            "198.51.100.5:5062"
        );
        assert_eq!(
            own.media_for(ip("192.0.2.1"), ip("10.0.0.5")),
            ip("198.51.100.5")
        );
        assert_eq!(own.local_networks, sw.local_networks);
        // Only local_networks: the switch's external addresses, its list.
        let lan: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap()];
        let only_lan = sw.overridden(None, None, Some(&lan));
        assert_eq!(
            only_lan.media_for(ip("192.0.2.1"), ip("10.0.0.5")),
            ip("10.0.0.5")
        );
        assert_eq!(
            only_lan.media_for(ip("10.1.2.3"), ip("10.0.0.5")),
            ip("203.0.113.20")
        );
    }

    #[test]
    fn ipv6_external_address_is_bracketed() {
        let n = Nat {
            external_signaling: Some("[2001:db8::10]:5060".parse().unwrap()),
            ..Nat::default()
        };
        assert_eq!(
            n.signaling_for(ip("2001:db8:1::1"), "[fd00::5]:5060"),
            "[2001:db8::10]:5060"
        );
    }
}
