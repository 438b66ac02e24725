//! Which trunk an outbound INVITE goes to, sans-IO: priority order,
//! per-trunk limits (`max_calls` legs at once, `max_cps` new INVITEs per
//! second as a token bucket) and Retry-After (RFC 3261 §21.5.4, §20.33:
//! a trunk that answered 503 with Retry-After is skipped until then).
//!
//! The SIP core owns one [`TrunkSet`] and asks it for a trunk before each
//! INVITE of an outbound leg, and again after a trunk failure (408 or no
//! answer at all before any provisional, 5xx) with the trunks the leg has
//! tried left out. When every trunk that is left is busy for now, the leg
//! waits ([`Choice::Wait`]) instead of failing: a burst of customers is
//! queued, not refused.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::nat::Nat;
use crate::media::srtp::SrtpPolicy;

/// Digest credentials for a trunk.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never log the password.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// One trunk as the SIP core uses it.
#[derive(Clone)]
pub struct TrunkRoute {
    /// Named in logs and in the inbound call it carries.
    pub name: String,
    /// Where requests go (the outbound proxy).
    pub addr: SocketAddr,
    /// Over our own TCP connection instead of UDP.
    pub tcp: bool,
    /// Over our own TLS connection (wins over `tcp`; RFC 3261 §26).
    pub tls: bool,
    /// In-dialog requests (ACK, BYE, re-INVITE) of legs placed through
    /// this trunk go back to the server the INVITE went to, with the route
    /// set in Route headers, not to the far end's Contact or first
    /// Record-Route (`in_dialog_via_proxy`); on calls it brings, to the
    /// INVITE's source.
    pub via_proxy: bool,
    /// Sources whose requests are this trunk's.
    pub allow: Vec<IpNet>,
    /// Outbound legs up at once through this trunk.
    pub max_calls: u32,
    /// New INVITEs per second at most; None: unlimited.
    pub max_cps: Option<f64>,
    /// Request-URI host (and port); None: the address of the server the
    /// INVITE goes to. A trunk named by a host name keeps its name here
    /// (RFC 3263 §4).
    pub ruri_host: Option<String>,
    /// From host; None: our own host:port.
    pub from_host: Option<String>,
    /// To host; None: the Request-URI's.
    pub to_host: Option<String>,
    /// Send P-Asserted-Identity (RFC 3325 §9.1) with our From identity.
    pub pai: bool,
    /// RFC 3323 Privacy value.
    pub privacy: Option<String>,
    /// Extra headers, already checked to be one line of a token name and
    /// printable text.
    pub headers: Vec<(String, String)>,
    pub credentials: Option<Credentials>,
    pub follow_redirects: bool,
    pub max_redirects: u32,
    /// SRTP on this trunk's calls, both ways (`srtp`).
    pub srtp: SrtpPolicy,
    /// This trunk's NAT plan, when it has its own; `None`: the switch's
    /// (`Local::nat`).
    pub nat: Option<Nat>,
    /// OPTIONS keepalive interval to each of this trunk's UDP targets;
    /// `None`: off.
    pub keepalive: Option<Duration>,
    /// The header a front proxy writes with the carrier's own "ip:port"
    /// (`source_header`), believed only from a source in `allow`.
    pub source_header: Option<String>,
}

impl std::fmt::Debug for TrunkRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Extra headers often carry a carrier's token: names only.
        let headers: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("TrunkRoute")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("tcp", &self.tcp)
            .field("tls", &self.tls)
            .field("via_proxy", &self.via_proxy)
            .field("max_calls", &self.max_calls)
            .field("max_cps", &self.max_cps)
            .field("ruri_host", &self.ruri_host)
            .field("from_host", &self.from_host)
            .field("to_host", &self.to_host)
            .field("headers", &headers)
            .field("credentials", &self.credentials)
            .field("srtp", &self.srtp)
            .field("nat", &self.nat)
            .field("keepalive", &self.keepalive)
            .field("source_header", &self.source_header)
            .finish_non_exhaustive()
    }
}

impl TrunkRoute {
    /// A trunk at `addr` with no limits and no rewriting (tests, defaults).
    pub fn plain(name: &str, addr: SocketAddr) -> Self {
        TrunkRoute {
            name: name.to_string(),
            addr,
            tcp: false,
            tls: false,
            via_proxy: true,
            allow: vec![IpNet::from(addr.ip())],
            max_calls: u32::MAX,
            max_cps: None,
            ruri_host: None,
            from_host: None,
            to_host: None,
            pai: false,
            privacy: None,
            headers: Vec::new(),
            credentials: None,
            follow_redirects: true,
            max_redirects: 2,
            srtp: SrtpPolicy::Off,
            nat: None,
            keepalive: None,
            source_header: None,
        }
    }

    /// The transport `addr` is reached over.
    pub fn transport(&self) -> super::dns::Transport {
        use super::dns::Transport;
        match (self.tls, self.tcp) {
            (true, _) => Transport::Tls,
            (false, true) => Transport::Tcp,
            (false, false) => Transport::Udp,
        }
    }
}

/// The longest Retry-After honoured: a carrier asking for more is
/// skipped for an hour, then tried again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The answer to "which trunk now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Send to this trunk (its index); a call slot and a token are taken.
    Use(usize),
    /// Every trunk left is busy: ask again at this instant (a token or a
    /// Retry-After falls due), or when a call ends (`None`: only a slot
    /// can free one).
    Wait(Option<Instant>),
    /// Every trunk has been tried.
    Exhausted,
}

#[derive(Debug)]
struct TrunkState {
    route: TrunkRoute,
    /// Outbound legs holding a slot.
    active: u32,
    /// Token bucket (only with `max_cps`): up to `max(1, max_cps)` tokens.
    tokens: f64,
    refilled: Option<Instant>,
    /// Skipped until then (Retry-After).
    skip_until: Option<Instant>,
}

impl TrunkState {
    fn capacity(&self) -> f64 {
        self.route.max_cps.map_or(0.0, |c| c.max(1.0))
    }

    fn refill(&mut self, now: Instant) {
        let Some(cps) = self.route.max_cps else {
            return;
        };
        let since = self
            .refilled
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.tokens = (self.tokens + since.as_secs_f64() * cps).min(self.capacity());
        self.refilled = Some(now);
    }

    /// When the next whole token is there (after a refill at `now`).
    fn next_token(&self, now: Instant) -> Option<Instant> {
        let cps = self.route.max_cps?;
        let missing = (1.0 - self.tokens).max(0.0);
        // cps is validated to 0.01..=1000, so this is at most 100 s.
        let wait = Duration::try_from_secs_f64(missing / cps).unwrap_or(MAX_RETRY_AFTER);
        // Rounded up by a millisecond so the token is whole when we wake.
        Some(now + wait + Duration::from_millis(1))
    }
}

/// Every trunk, in the order outbound legs try them.
#[derive(Debug, Default)]
pub struct TrunkSet {
    trunks: Vec<TrunkState>,
}

impl TrunkSet {
    /// `routes` in priority order (first tried first).
    pub fn new(routes: Vec<TrunkRoute>) -> Self {
        let trunks = routes
            .into_iter()
            .map(|route| {
                let mut t = TrunkState {
                    route,
                    active: 0,
                    tokens: 0.0,
                    refilled: None,
                    skip_until: None,
                };
                // A full bucket at start: the first second's calls go at once.
                t.tokens = t.capacity();
                t
            })
            .collect();
        TrunkSet { trunks }
    }

    pub fn len(&self) -> usize {
        self.trunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trunks.is_empty()
    }

    pub fn route(&self, i: usize) -> Option<&TrunkRoute> {
        self.trunks.get(i).map(|t| &t.route)
    }

    /// Outbound legs holding a slot on trunk `i`.
    pub fn active(&self, i: usize) -> u32 {
        self.trunks.get(i).map_or(0, |t| t.active)
    }

    /// The trunk named `name`.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.trunks.iter().position(|t| t.route.name == name)
    }

    /// The trunk whose `allow` holds `ip` (the first by priority).
    pub fn by_source(&self, ip: IpAddr) -> Option<usize> {
        self.trunks
            .iter()
            .position(|t| t.route.allow.iter().any(|n| n.contains(&ip)))
    }

    /// The highest-priority trunk not in `tried` that can take an INVITE
    /// now; its slot and token are taken.
    pub fn choose(&mut self, tried: &[usize], now: Instant) -> Choice {
        let mut wake: Option<Instant> = None;
        let mut left = false;
        for (i, t) in self.trunks.iter_mut().enumerate() {
            if tried.contains(&i) {
                continue;
            }
            left = true;
            if let Some(until) = t.skip_until {
                if until > now {
                    wake = Some(wake.map_or(until, |w| w.min(until)));
                    continue;
                }
                t.skip_until = None;
            }
            if t.active >= t.route.max_calls {
                continue;
            }
            t.refill(now);
            if t.route.max_cps.is_some() && t.tokens < 1.0 {
                if let Some(at) = t.next_token(now) {
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                }
                continue;
            }
            if t.route.max_cps.is_some() {
                t.tokens -= 1.0;
            }
            t.active += 1;
            return Choice::Use(i);
        }
        if left {
            Choice::Wait(wake)
        } else {
            Choice::Exhausted
        }
    }

    /// A leg on trunk `i` ended (or moved on): its slot is free.
    pub fn release(&mut self, i: usize) {
        if let Some(t) = self.trunks.get_mut(i) {
            t.active = t.active.saturating_sub(1);
        }
    }

    /// Trunk `i` said Retry-After: skip it until `now + after` (at most
    /// [`MAX_RETRY_AFTER`]).
    pub fn retry_after(&mut self, i: usize, after: Duration, now: Instant) {
        if let Some(t) = self.trunks.get_mut(i) {
            let until = now + after.min(MAX_RETRY_AFTER);
            t.skip_until = Some(t.skip_until.map_or(until, |u| u.max(until)));
        }
    }
}

/// The seconds of a Retry-After value ("120", "120 (busy);duration=60",
/// RFC 3261 §20.33); None when it does not start with digits.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let digits: String = value
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    // Longer than 10 digits is beyond u32 delta-seconds anyway.
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    digits.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn set(routes: Vec<TrunkRoute>) -> TrunkSet {
        TrunkSet::new(routes)
    }

    #[test]
    fn the_first_trunk_by_priority_is_used_and_the_next_after_it_was_tried() {
        let mut s = set(vec![
            TrunkRoute::plain("a", addr(5080)),
            TrunkRoute::plain("b", addr(5090)),
        ]);
        let now = Instant::now();
        assert_eq!(s.choose(&[], now), Choice::Use(0));
        assert_eq!(s.choose(&[0], now), Choice::Use(1));
        assert_eq!(s.choose(&[0, 1], now), Choice::Exhausted);
        assert_eq!(s.active(0), 1);
        assert_eq!(s.active(1), 1);
    }

    #[test]
    fn a_full_trunk_spills_to_the_next_and_a_slot_frees_on_release() {
        let mut a = TrunkRoute::plain("a", addr(5080));
        a.max_calls = 1;
        let mut b = TrunkRoute::plain("b", addr(5090));
        b.max_calls = 1;
        let mut s = set(vec![a, b]);
        let now = Instant::now();
        assert_eq!(s.choose(&[], now), Choice::Use(0));
        assert_eq!(s.choose(&[], now), Choice::Use(1));
        // Both full: wait for a call to end (no instant to wake at).
        assert_eq!(s.choose(&[], now), Choice::Wait(None));
        s.release(1);
        assert_eq!(s.choose(&[], now), Choice::Use(1));
    }

    #[test]
    fn max_cps_queues_a_burst_and_lets_one_through_per_token() {
        let mut a = TrunkRoute::plain("a", addr(5080));
        a.max_cps = Some(1.0);
        let mut s = set(vec![a]);
        let t0 = Instant::now();
        assert_eq!(s.choose(&[], t0), Choice::Use(0));
        // The second call of the same instant waits about a second.
        let Choice::Wait(Some(at)) = s.choose(&[], t0) else {
            panic!("expected a wait with a time");
        };
        assert!(at > t0 + Duration::from_millis(999) && at <= t0 + Duration::from_millis(1001));
        // Half a second on: still no token.
        assert!(matches!(
            s.choose(&[], t0 + Duration::from_millis(500)),
            Choice::Wait(Some(_))
        ));
        assert_eq!(s.choose(&[], at), Choice::Use(0));
        // Ten idle seconds give one token, not ten: the bucket holds one.
        let later = at + Duration::from_secs(10);
        assert_eq!(s.choose(&[], later), Choice::Use(0));
        assert!(matches!(s.choose(&[], later), Choice::Wait(Some(_))));
    }

    #[test]
    fn a_cps_limited_trunk_spills_a_burst_to_the_next_trunk() {
        let mut a = TrunkRoute::plain("a", addr(5080));
        a.max_cps = Some(1.0);
        let mut s = set(vec![a, TrunkRoute::plain("b", addr(5090))]);
        let now = Instant::now();
        assert_eq!(s.choose(&[], now), Choice::Use(0));
        assert_eq!(s.choose(&[], now), Choice::Use(1));
    }

    #[test]
    fn retry_after_skips_the_trunk_until_then() {
        let mut s = set(vec![
            TrunkRoute::plain("a", addr(5080)),
            TrunkRoute::plain("b", addr(5090)),
        ]);
        let t0 = Instant::now();
        s.retry_after(0, Duration::from_secs(30), t0);
        assert_eq!(s.choose(&[], t0), Choice::Use(1));
        // Only "a" left for this leg: wait until its Retry-After ends.
        assert_eq!(
            s.choose(&[1], t0 + Duration::from_secs(1)),
            Choice::Wait(Some(t0 + Duration::from_secs(30)))
        );
        assert_eq!(s.choose(&[1], t0 + Duration::from_secs(30)), Choice::Use(0));
    }

    #[test]
    fn retry_after_is_capped_at_an_hour() {
        let mut s = set(vec![TrunkRoute::plain("a", addr(5080))]);
        let t0 = Instant::now();
        s.retry_after(0, Duration::from_secs(10 * 24 * 3600), t0);
        assert_eq!(s.choose(&[], t0 + MAX_RETRY_AFTER), Choice::Use(0));
    }

    #[test]
    fn inbound_sources_are_attributed_by_allow() {
        let mut b = TrunkRoute::plain("b", addr(5090));
        b.allow = vec!["192.0.2.0/24".parse().unwrap()];
        let s = set(vec![TrunkRoute::plain("a", addr(5080)), b]);
        assert_eq!(s.by_source("127.0.0.1".parse().unwrap()), Some(0));
        assert_eq!(s.by_source("192.0.2.7".parse().unwrap()), Some(1));
        assert_eq!(s.by_source("198.51.100.1".parse().unwrap()), None);
    }

    #[test]
    fn debug_output_never_shows_header_values_or_passwords() {
        let mut r = TrunkRoute::plain("a", addr(5080));
        r.headers = vec![("X-Carrier-Token".into(), "s3cr3t-token".into())];
        r.credentials = Some(Credentials {
            username: "acct".into(),
            password: "pa55word".into(),
        });
        let shown = format!("{r:?}");
        assert!(shown.contains("X-Carrier-Token"), "{shown}");
        assert!(!shown.contains("s3cr3t-token"), "{shown}");
        assert!(!shown.contains("pa55word"), "{shown}");
    }

    #[test]
    fn retry_after_values_are_read_as_seconds() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after(" 18000;duration=3600"),
            Some(Duration::from_secs(18000))
        );
        assert_eq!(
            parse_retry_after("5 (over CPS)"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("99999999999999999999"), None);
    }
}
