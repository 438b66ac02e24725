//! Per-source request limits and a temporary ban list, sans-IO (the idea of
//! Kamailio's `pike` module, per method class).
//!
//! A scanner on the public Internet sends INVITEs, OPTIONS and REGISTERs as
//! fast as it can. Sources outside every trunk's `allow` are already refused
//! (403 or silence), but each of their packets would still be parsed and
//! answered; a source past its limit is banned for a while instead, and
//! then dropped before anything is parsed. The counting is per (source IP,
//! method class), so an OPTIONS flood from a trunk (when trunks are limited
//! at all, `apply_to_trunks`) bans its OPTIONS and never its INVITEs.
//!
//! The cheap readers here ([`peek_method`], [`scanner_agent`]) look at the
//! raw bytes only, so a refused packet costs a few comparisons and no
//! allocation.
//!
//! Memory is bounded: at most `max_sources` sources are tracked; when the
//! table is full, sources with neither a running window nor a ban are
//! forgotten first, then the least recently seen eighth. [`FloodGuard::deadline`]
//! says when entries can next be forgotten, so the table empties after a
//! flood without waiting for new traffic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The method classes limited separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Invite,
    Options,
    Register,
    /// ACK, BYE, CANCEL and every other method.
    Other,
}

impl Class {
    const ALL: usize = 4;

    fn index(self) -> usize {
        match self {
            Class::Invite => 0,
            Class::Options => 1,
            Class::Register => 2,
            Class::Other => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Invite => "INVITE",
            Class::Options => "OPTIONS",
            Class::Register => "REGISTER",
            Class::Other => "other",
        }
    }
}

/// What to send a request refused here (rate, ban, REGISTER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refuse {
    /// Nothing (a scanner learns nothing and gets no amplification).
    Drop,
    /// A stateless 403 (RFC 3261 §21.4.4).
    Forbidden,
}

/// What to do with REGISTER (we are not a registrar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterPolicy {
    /// 405 Method Not Allowed with Allow (§8.2.1), as any method we do not
    /// offer; from outside `allow` the `untrusted` policy answers first.
    Reject,
    /// Nothing, from anyone.
    Drop,
}

/// Limits for one method class: `limit` requests per `window`, then a ban.
/// `limit == 0` leaves the class unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLimit {
    pub limit: u32,
}

/// The flood policy (`[sip.flood]`); reloadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodPolicy {
    /// Off: no rate limit and no ban (scanners and REGISTER still apply).
    pub enabled: bool,
    pub window: Duration,
    pub ban: Duration,
    /// Requests per window, by class: INVITE, OPTIONS, REGISTER, other.
    pub limits: [u32; 4],
    /// Also count requests from the trunks' own addresses.
    pub apply_to_trunks: bool,
    pub max_sources: usize,
    pub refuse: Refuse,
    pub register: RegisterPolicy,
    /// Lower-case substrings of User-Agent values dropped silently.
    pub scanner_agents: Vec<String>,
}

impl Default for FloodPolicy {
    fn default() -> Self {
        FloodPolicy {
            enabled: true,
            window: Duration::from_secs(2),
            ban: Duration::from_secs(300),
            limits: [16; 4],
            apply_to_trunks: false,
            max_sources: 4096,
            refuse: Refuse::Drop,
            register: RegisterPolicy::Reject,
            scanner_agents: DEFAULT_SCANNERS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// User agents of the common SIP scanners (SIPVicious' `friendly-scanner`
/// and `sipvicious`, `sipcli`, `VaxSIPUserAgent`, `pplsip`).
pub const DEFAULT_SCANNERS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "vaxsipuseragent",
    "pplsip",
];

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// This request went over the limit: the source (for this class) is
    /// banned from now on.
    Limited,
    /// The source is banned for this class.
    Banned,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    window_start: Instant,
    count: u32,
    banned_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    last_seen: Instant,
    classes: [Option<Counter>; Class::ALL],
}

impl Entry {
    /// When nothing of this entry matters any more: every window over and
    /// every ban lifted.
    fn expires(&self, window: Duration) -> Instant {
        self.classes
            .iter()
            .flatten()
            .map(|c| {
                let w = c.window_start + window;
                c.banned_until.map_or(w, |b| b.max(w))
            })
            .max()
            .unwrap_or(self.last_seen)
    }
}

pub struct FloodGuard {
    policy: FloodPolicy,
    sources: HashMap<IpAddr, Entry>,
    /// The earliest time an entry may be forgotten (checked no more often
    /// than once per window).
    next_sweep: Option<Instant>,
}

impl FloodGuard {
    pub fn new(policy: FloodPolicy) -> Self {
        FloodGuard {
            policy,
            sources: HashMap::new(),
            next_sweep: None,
        }
    }

    pub fn policy(&self) -> &FloodPolicy {
        &self.policy
    }

    /// A reload: the new limits apply to the next request; bans in force
    /// stay until they end (or the guard is switched off).
    pub fn set_policy(&mut self, policy: FloodPolicy) {
        if !policy.enabled {
            self.sources.clear();
            self.next_sweep = None;
        }
        self.policy = policy;
    }

    /// Sources tracked now (bounded by `max_sources`).
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Counts one request of `class` from `ip` at `now`.
    pub fn check(&mut self, ip: IpAddr, class: Class, now: Instant) -> Verdict {
        let limit = self.policy.limits[class.index()];
        if !self.policy.enabled || limit == 0 {
            return Verdict::Pass;
        }
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.policy.max_sources {
            self.make_room(now);
        }
        let (window, ban) = (self.policy.window, self.policy.ban);
        let e = self.sources.entry(ip).or_insert(Entry {
            last_seen: now,
            classes: [None; Class::ALL],
        });
        e.last_seen = now;
        let slot = &mut e.classes[class.index()];
        let c = slot.get_or_insert(Counter {
            window_start: now,
            count: 0,
            banned_until: None,
        });
        let verdict = match c.banned_until {
            Some(until) if now < until => Verdict::Banned,
            _ => {
                c.banned_until = None;
                if now.saturating_duration_since(c.window_start) >= window {
                    c.window_start = now;
                    c.count = 0;
                }
                c.count = c.count.saturating_add(1);
                if c.count > limit {
                    c.banned_until = Some(now + ban);
                    Verdict::Limited
                } else {
                    Verdict::Pass
                }
            }
        };
        let expires = e.expires(window);
        if self.next_sweep.is_none_or(|s| expires < s) {
            self.next_sweep = Some(expires.max(now + window));
        }
        verdict
    }

    /// When [`Self::handle_timeout`] can forget something.
    pub fn deadline(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Forgets sources whose windows and bans are all over.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|s| now >= s) {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: Instant) {
        let window = self.policy.window;
        let mut next: Option<Instant> = None;
        self.sources.retain(|_, e| {
            let exp = e.expires(window);
            let keep = exp > now;
            if keep {
                next = Some(next.map_or(exp, |n| n.min(exp)));
            }
            keep
        });
        // At most one sweep per window: a table of many sources with
        // staggered expiries is walked every `window`, not on each.
        self.next_sweep = next.map(|n| n.max(now + window));
    }

    /// The table is full: forget what has expired, then the least recently
    /// seen eighth (a flood of spoofed sources evicts its own entries
    /// first, since they are seen once).
    fn make_room(&mut self, now: Instant) {
        self.sweep(now);
        if self.sources.len() < self.policy.max_sources {
            return;
        }
        let mut seen: Vec<Instant> = self.sources.values().map(|e| e.last_seen).collect();
        let cut = (seen.len() / 8).max(1);
        let idx = cut.saturating_sub(1).min(seen.len().saturating_sub(1));
        let (_, &mut oldest, _) = seen.select_nth_unstable(idx);
        let mut left = cut;
        self.sources.retain(|_, e| {
            if left > 0 && e.last_seen <= oldest {
                left -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// A request's method class from its first line, without parsing it;
/// `None` for a response or something that is not a request line. Leading
/// CRLFs (RFC 5626 keep-alives, §7.5) are skipped.
pub fn peek_method(data: &[u8]) -> Option<Class> {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let rest = data.get(start..)?;
    let end = rest.iter().take(32).position(|&b| b == b' ')?;
    let method = rest.get(..end)?;
    if method.is_empty() || method.starts_with(b"SIP/") {
        return None;
    }
    // Methods are case-sensitive (§7.1): "invite" is an extension method.
    Some(match method {
        b"INVITE" => Class::Invite,
        b"OPTIONS" => Class::Options,
        b"REGISTER" => Class::Register,
        _ => Class::Other,
    })
}

/// Whether the User-Agent header of `data` holds one of `agents`
/// (lower-case), compared without regard to case. Reads the header block
/// only, line by line, with no allocation. It runs on every datagram
/// before anything else, so lines are found with `memchr` and a line is
/// looked into only when it starts as "User-Agent" does (the header has no
/// compact form, RFC 3261 §20.41; a line starting with a blank continues
/// the header above it, §7.3.1).
pub fn scanner_agent(data: &[u8], agents: &[String]) -> bool {
    if agents.is_empty() {
        return false;
    }
    let mut start = 0;
    // The start-line is not a header; the last line may have no LF.
    let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
    for end in ends {
        let line = data.get(start..end).unwrap_or_default();
        let first = start == 0;
        start = end + 1;
        if first {
            continue;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the header block (§7)
        }
        if !matches!(line.first(), Some(b'u' | b'U')) {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        if !name.eq_ignore_ascii_case(b"user-agent") {
            continue;
        }
        let value = line.get(colon + 1..).unwrap_or_default();
        if agents
            .iter()
            .any(|a| contains_ignore_case(value, a.as_bytes()))
        {
            return true;
        }
    }
    false
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn guard() -> FloodGuard {
        FloodGuard::new(FloodPolicy::default())
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn sixteen_in_two_seconds_pass_the_seventeenth_bans_for_five_minutes() {
        let t0 = Instant::now();
        let mut g = guard();
        for i in 0..16 {
            assert_eq!(g.check(ip(1), Class::Invite, t0 + MS * i), Verdict::Pass);
        }
        assert_eq!(
            g.check(ip(1), Class::Invite, t0 + MS * 100),
            Verdict::Limited
        );
        // Banned, whatever the rate, until the ban ends.
        assert_eq!(
            g.check(ip(1), Class::Invite, t0 + Duration::from_secs(10)),
            Verdict::Banned
        );
        assert_eq!(
            g.check(ip(1), Class::Invite, t0 + Duration::from_millis(300_099)),
            Verdict::Banned
        );
        assert_eq!(
            g.check(ip(1), Class::Invite, t0 + Duration::from_millis(300_100)),
            Verdict::Pass
        );
    }

    #[test]
    fn a_steady_source_under_the_limit_is_never_banned() {
        let t0 = Instant::now();
        let mut g = guard();
        // 8 per second is 16 per 2 s window: at the limit, never over.
        for i in 0..1000u32 {
            let at = t0 + Duration::from_millis(125) * i;
            assert_eq!(g.check(ip(1), Class::Options, at), Verdict::Pass, "{i}");
        }
    }

    #[test]
    fn classes_and_sources_are_counted_apart() {
        let t0 = Instant::now();
        let mut g = guard();
        for _ in 0..16 {
            g.check(ip(1), Class::Options, t0);
        }
        assert_eq!(g.check(ip(1), Class::Options, t0), Verdict::Limited);
        // Its OPTIONS are banned; its INVITEs and another source are not.
        assert_eq!(g.check(ip(1), Class::Invite, t0), Verdict::Pass);
        assert_eq!(g.check(ip(2), Class::Options, t0), Verdict::Pass);
    }

    #[test]
    fn a_zero_limit_or_a_disabled_guard_never_bans() {
        let t0 = Instant::now();
        let mut p = FloodPolicy::default();
        p.limits[Class::Other.index()] = 0;
        let mut g = FloodGuard::new(p.clone());
        for _ in 0..100 {
            assert_eq!(g.check(ip(1), Class::Other, t0), Verdict::Pass);
        }
        p.enabled = false;
        g.set_policy(p);
        for _ in 0..100 {
            assert_eq!(g.check(ip(1), Class::Invite, t0), Verdict::Pass);
        }
        assert!(g.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_a_flood_of_sources_evicts_the_oldest() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(FloodPolicy {
            max_sources: 64,
            ..FloodPolicy::default()
        });
        // A source banned early, then seen again and again, survives a
        // spoofed flood of single packets from new addresses.
        for _ in 0..17 {
            g.check(ip(1), Class::Invite, t0);
        }
        for i in 0..10_000u32 {
            let at = t0 + MS * i;
            let spoofed = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            g.check(spoofed, Class::Invite, at);
            if i % 16 == 0 {
                g.check(ip(1), Class::Invite, at);
            }
            assert!(g.len() <= 64, "{}", g.len());
        }
        assert_eq!(
            g.check(ip(1), Class::Invite, t0 + Duration::from_secs(11)),
            Verdict::Banned
        );
    }

    #[test]
    fn the_deadline_forgets_everything_once_bans_and_windows_end() {
        let t0 = Instant::now();
        let mut g = guard();
        for i in 0..20u8 {
            g.check(ip(i), Class::Invite, t0);
        }
        for _ in 0..17 {
            g.check(ip(200), Class::Register, t0);
        }
        assert_eq!(g.len(), 21);
        let first = g.deadline().expect("a deadline");
        assert_eq!(first, t0 + Duration::from_secs(2));
        g.handle_timeout(first);
        // The windows are over; the ban is not.
        assert_eq!(g.len(), 1);
        let next = g.deadline().expect("the ban's end");
        assert_eq!(next, t0 + Duration::from_secs(300));
        g.handle_timeout(next - MS);
        assert_eq!(g.len(), 1);
        g.handle_timeout(next);
        assert!(g.is_empty());
        assert_eq!(g.deadline(), None);
    }

    #[test]
    fn methods_are_read_from_the_first_line_only() {
        assert_eq!(
            peek_method(b"INVITE sip:x@y SIP/2.0\r\n"),
            Some(Class::Invite)
        );
        assert_eq!(
            peek_method(b"\r\n\r\nOPTIONS sip:y SIP/2.0\r\n"),
            Some(Class::Options)
        );
        assert_eq!(
            peek_method(b"REGISTER sip:y SIP/2.0"),
            Some(Class::Register)
        );
        assert_eq!(peek_method(b"BYE sip:y SIP/2.0"), Some(Class::Other));
        assert_eq!(peek_method(b"invite sip:y SIP/2.0"), Some(Class::Other));
        assert_eq!(peek_method(b"SIP/2.0 200 OK\r\n"), None);
        assert_eq!(peek_method(b"\r\n\r\n"), None);
        assert_eq!(peek_method(b""), None);
        assert_eq!(peek_method(&[b'A'; 100]), None);
    }

    #[test]
    fn scanner_agents_are_found_in_user_agent_only() {
        let agents: Vec<String> = DEFAULT_SCANNERS.iter().map(|s| s.to_string()).collect();
        let msg = |ua: &str| {
            format!("OPTIONS sip:100@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n{ua}\r\n\r\nUser-Agent: friendly-scanner")
        };
        assert!(scanner_agent(
            msg("User-Agent: friendly-scanner").as_bytes(),
            &agents
        ));
        assert!(scanner_agent(
            msg("user-agent :  SIPVicious 0.3").as_bytes(),
            &agents
        ));
        assert!(scanner_agent(
            msg("User-Agent: VaxSIPUserAgent/3.1").as_bytes(),
            &agents
        ));
        assert!(!scanner_agent(
            msg("User-Agent: Linphone").as_bytes(),
            &agents
        ));
        // In another header, or in the body, it is not a User-Agent.
        assert!(!scanner_agent(
            msg("Subject: friendly-scanner").as_bytes(),
            &agents
        ));
        assert!(!scanner_agent(
            msg("User-Agent: friendly-scanner").as_bytes(),
            &[]
        ));
        // A datagram cut short after the header still names its agent.
        assert!(scanner_agent(
            b"OPTIONS sip:100@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nUser-Agent: sipvicious",
            &agents
        ));
        // A folded line continues the header above it.
        assert!(!scanner_agent(
            msg("Subject: hello\r\n User-Agent: friendly-scanner").as_bytes(),
            &agents
        ));
    }
}
