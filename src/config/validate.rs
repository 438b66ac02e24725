//! Second step of loading: `Raw*` -> typed model, collecting every problem.
//!
//! Each check records a problem and carries on with a fallback value, so one
//! run reports everything wrong with a file; the fallbacks never escape,
//! because `validate` returns the model only when no problem was found.
//! This file holds the helpers and the infrastructure sections; people,
//! flows and mappings are in `validate_flows.rs`.

use super::duration::{format_duration, parse_duration, DurationError};
use super::e164::{CountryCode, E164Error, E164};
use super::error::Problem;
use super::model::*;
use super::raw::*;
use crate::media::codec::Codec;
use crate::media::srtp::SrtpPolicy;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub(super) struct V<'a> {
    /// Folder of the config file: relative paths resolve against it.
    pub base: &'a Path,
    pub problems: Vec<Problem>,
    pub cc: CountryCode,
}

pub(super) const E164_FIX: &str = "write it in international form such as \"+12345678910\"";

impl V<'_> {
    pub fn push(
        &mut self,
        path: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem::new(path, problem, fix));
    }

    pub fn missing(&mut self, path: &str, example: &str) {
        let key = path.rsplit('.').next().unwrap_or(path);
        self.push(path, "is missing", format!("add {key} = {example}"));
    }

    /// A duration from `min` to [`DURATION_MAX`]; `default` applies when
    /// the key is absent.
    pub fn duration(
        &mut self,
        path: &str,
        v: &Option<String>,
        default: Duration,
        min: Duration,
    ) -> Duration {
        self.duration_in(path, v, default, min, DURATION_MAX)
    }

    /// A duration in `min..=max`. Every duration has an upper bound: a timer
    /// is `Instant + duration` (which panics on overflow) and some travel as
    /// 32-bit delta-seconds, so "1000000h" must be refused here, by name.
    pub fn duration_in(
        &mut self,
        path: &str,
        v: &Option<String>,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let Some(s) = v else { return default };
        let range = || {
            format!(
                "use a duration from {:?} to {:?}",
                format_duration(min),
                format_duration(max)
            )
        };
        match parse_duration(s) {
            Ok(d) if d >= min && d <= max => d,
            Ok(d) if d < min => {
                self.push(path, format!("{s:?} is too short"), range());
                default
            }
            Ok(_) => {
                self.push(path, format!("{s:?} is too long"), range());
                default
            }
            Err(DurationError::Overflow(_)) => {
                self.push(path, format!("{s:?} is too long"), range());
                default
            }
            Err(e) => {
                self.push(
                    path,
                    format!("{e}"),
                    "write a whole number with a unit: ms, s, m or h, such as \"500ms\", \"5s\", \"20m\", \"8h\" or \"1h30m\"",
                );
                default
            }
        }
    }

    /// A whole number in `min..=max`.
    pub fn int(&mut self, path: &str, v: Option<i64>, default: i64, min: i64, max: i64) -> i64 {
        match v {
            None => default,
            Some(n) if (min..=max).contains(&n) => n,
            Some(n) => {
                self.push(
                    path,
                    format!("{n} is out of range"),
                    format!("use a whole number from {min} to {max}"),
                );
                default
            }
        }
    }

    pub fn uint(&mut self, path: &str, v: Option<i64>, default: u32, min: u32, max: u32) -> u32 {
        let n = self.int(path, v, default.into(), min.into(), max.into());
        u32::try_from(n).unwrap_or(default)
    }

    /// An upper bound on a duration already read with [`Self::duration`].
    pub fn at_most(&mut self, path: &str, d: Duration, max: Duration) {
        if d > max {
            self.push(
                path,
                format!("{:?} is too long", format_duration(d)),
                format!("use at most {:?}", format_duration(max)),
            );
        }
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(
        &mut self,
        path: &str,
        v: &Option<String>,
        default: T,
        options: &[(&str, T)],
    ) -> T {
        let Some(s) = v else { return default };
        if let Some((_, t)) = options.iter().find(|(name, _)| name == s) {
            return *t;
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
        self.push(
            path,
            format!("{s:?} is not a valid value"),
            format!("use {}", names.join(" or ")),
        );
        default
    }

    pub fn e164(&mut self, path: &str, s: &str) -> Option<E164> {
        match E164::parse(s, &self.cc) {
            Ok(n) => Some(n),
            Err(e) => {
                self.push(path, e164_problem(s, &e), E164_FIX);
                None
            }
        }
    }

    /// Resolve a path from the file against the file's folder.
    pub fn path(&mut self, path: &str, v: &str) -> PathBuf {
        if v.trim().is_empty() {
            self.push(
                path,
                "is empty",
                "give a file path, relative to this file's folder or absolute",
            );
        }
        normalize(&self.base.join(v))
    }

    fn socket(&mut self, path: &str, v: &Option<String>, default: &str) -> SocketAddr {
        let fallback = SocketAddr::from(([127, 0, 0, 1], 0));
        let s = v.as_deref().unwrap_or(default);
        s.parse().unwrap_or_else(|_| {
            self.push(
                path,
                format!("{s:?} is not an address:port"),
                format!("write an IP address and port such as {default:?} (IPv6 as \"[::]:5060\")"),
            );
            fallback
        })
    }

    /// An optional IP literal ("" = not set; no names: tpswitch resolves
    /// nothing at start).
    fn ip(&mut self, path: &str, v: &Option<String>) -> Option<IpAddr> {
        let s = v.as_deref().filter(|s| !s.trim().is_empty())?;
        match s.trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.push(
                    path,
                    format!("{s:?} is not an IP address"),
                    "write an IP address such as \"203.0.113.5\" or \"2001:db8::5\" (no port, no host name)",
                );
                None
            }
        }
    }

    /// A list of CIDR networks or single addresses.
    fn networks(&mut self, path: &str, list: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, s) in list.iter().enumerate() {
            match s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(n) => out.push(n),
                Err(_) => self.push(
                    format!("{path}[{i}]"),
                    format!("{s:?} is not an IP network"),
                    "write an address or CIDR network such as \"10.0.0.0/8\" or \"192.168.1.20\"",
                ),
            }
        }
        out
    }

    pub(super) fn env_name(&mut self, path: &str, v: &Option<String>, default: &str) -> String {
        let s = v.as_deref().unwrap_or(default);
        let ok = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !s.bytes().next().is_some_and(|b| b.is_ascii_digit());
        if !ok {
            self.push(
                path,
                format!("{s:?} is not an environment variable name"),
                "use letters, digits and _ (not starting with a digit), such as \"TPSWITCH_API_TOKEN\"",
            );
        }
        s.to_string()
    }
}

pub(super) fn e164_problem(s: &str, e: &E164Error) -> String {
    format!("{s:?} is not an E.164 number ({})", short_reason(e))
}

fn short_reason(e: &E164Error) -> String {
    match e {
        E164Error::TooShort(_) => "too few digits".into(),
        E164Error::TooLong(_) => "too many digits".into(),
        other => format!("it {other}"),
    }
}

/// Lexically remove `.` and `..` so messages and logs show a clean path.
/// Done without touching the disk: the database or prompts may not exist yet.
pub(super) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
/// The longest any configured duration may be: a week, far beyond every
/// timer's sensible value, far below what `Instant` arithmetic can hold.
pub(super) const DURATION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// Session-Expires and Min-SE travel as delta-seconds (RFC 4028 §4) and are
/// held as `u32`; a day is far above any carrier's refresh interval.
const SESSION_MAX: Duration = Duration::from_secs(24 * 3600);

pub(super) fn sip(v: &mut V, r: &RawSip) -> SipConfig {
    let bind = v.socket("sip.bind", &r.bind, "0.0.0.0:5060");
    let advertise = match r.advertise.as_deref() {
        None | Some("auto") => Advertise::Auto,
        Some(s) => s.parse().map(Advertise::Ip).unwrap_or_else(|_| {
            v.push(
                "sip.advertise",
                format!("{s:?} is not an IP address"),
                "use \"auto\" or an IP address such as \"203.0.113.5\"",
            );
            Advertise::Auto
        }),
    };
    let (external_signaling_address, external_signaling_port, external_media_address) =
        external_addresses(
            v,
            "sip",
            &r.external_signaling_address,
            r.external_signaling_port,
            &r.external_media_address,
        );
    let local_networks = v.networks(
        "sip.local_networks",
        r.local_networks.as_deref().unwrap_or(&[]),
    );
    let t1 = v.duration("sip.t1", &r.t1, Duration::from_millis(500), MS);
    let t2 = v.duration("sip.t2", &r.t2, Duration::from_secs(4), MS);
    if t2 < t1 {
        // RFC 3261 §17.1.2.2: retransmissions double from T1 up to T2.
        v.push(
            "sip.t2",
            "is shorter than sip.t1",
            "make t2 at least t1 (RFC 3261 defaults: t1 = \"500ms\", t2 = \"4s\")",
        );
    }
    let max_message_bytes = v.uint(
        "sip.max_message_bytes",
        r.max_message_bytes,
        65535,
        1024,
        65535,
    );
    let max_header_bytes = v.uint(
        "sip.max_header_bytes",
        r.max_header_bytes,
        16384,
        512,
        65535,
    );
    if max_header_bytes > max_message_bytes {
        v.push(
            "sip.max_header_bytes",
            "is larger than sip.max_message_bytes",
            "make it at most max_message_bytes",
        );
    }
    // 32s = 64*T1 at the default T1: the longest a transaction lingers
    // (§17.1.2.2 Timer F), so a peer gets at least that long to speak.
    let tcp_idle_timeout = v.duration(
        "sip.tcp_idle_timeout",
        &r.tcp_idle_timeout,
        Duration::from_secs(32),
        SEC,
    );
    v.at_most(
        "sip.tcp_idle_timeout",
        tcp_idle_timeout,
        Duration::from_secs(3600),
    );
    let user_agent = r.user_agent.clone().unwrap_or_else(|| "tpswitch".into());
    if user_agent.chars().any(char::is_control) {
        v.push(
            "sip.user_agent",
            "contains control characters",
            "use printable text such as \"tpswitch\"",
        );
    }
    let min_se = v.duration_in(
        "sip.min_se",
        &r.min_se,
        Duration::from_secs(90),
        Duration::from_secs(90),
        SESSION_MAX,
    );
    let session_expires = v.duration_in(
        "sip.session_expires",
        &r.session_expires,
        Duration::from_secs(1800),
        Duration::from_secs(90),
        SESSION_MAX,
    );
    if session_expires < min_se {
        // RFC 4028 §4: Session-Expires must not be below Min-SE.
        v.push(
            "sip.session_expires",
            "is shorter than sip.min_se",
            "make session_expires at least min_se",
        );
    }
    let (tls, tls_identity, tls_handshake_timeout) = sip_tls(v, r);
    let retry_after = v.duration(
        "sip.retry_after",
        &r.retry_after,
        Duration::from_secs(5),
        SEC,
    );
    for (key, d) in [
        ("sip.min_se", min_se),
        ("sip.session_expires", session_expires),
        ("sip.retry_after", retry_after),
    ] {
        if d.subsec_millis() != 0 {
            // These travel as delta-seconds (RFC 4028 §4, RFC 3261 §20.33).
            v.push(
                key,
                "is not a whole number of seconds",
                "write it in seconds, minutes or hours such as \"5s\"",
            );
        }
    }
    SipConfig {
        bind,
        advertise,
        external_signaling_address,
        external_signaling_port,
        external_media_address,
        local_networks,
        max_calls: v.uint("sip.max_calls", r.max_calls, 2000, 1, 1_000_000),
        t1,
        t2,
        t4: v.duration("sip.t4", &r.t4, Duration::from_secs(5), MS),
        untrusted: v.choice(
            "sip.untrusted",
            &r.untrusted,
            Untrusted::Reject,
            &[("reject", Untrusted::Reject), ("drop", Untrusted::Drop)],
        ),
        max_message_bytes,
        max_header_bytes,
        max_transactions: v.uint(
            "sip.max_transactions",
            r.max_transactions,
            200_000,
            100,
            10_000_000,
        ),
        max_tcp_connections: v.uint(
            "sip.max_tcp_connections",
            r.max_tcp_connections,
            1024,
            1,
            100_000,
        ),
        max_untrusted_tcp_connections: v.uint(
            "sip.max_untrusted_tcp_connections",
            r.max_untrusted_tcp_connections,
            8,
            0,
            100_000,
        ),
        tcp_idle_timeout,
        tcp: r.tcp.unwrap_or(true),
        user_agent,
        session_expires,
        min_se,
        retry_after,
        answer_delay: v.duration(
            "sip.answer_delay",
            &r.answer_delay,
            Duration::ZERO,
            Duration::ZERO,
        ),
        tls,
        tls_identity,
        tls_handshake_timeout,
        trace: SipTrace {
            all: v.choice(
                "sip.trace",
                &r.trace,
                false,
                &[("off", false), ("all", true)],
            ),
            numbers: r
                .trace_numbers
                .iter()
                .flatten()
                .enumerate()
                .filter_map(|(i, s)| v.e164(&format!("sip.trace_numbers[{i}]"), s))
                .collect(),
        },
        // Bounded: an init system (systemd's TimeoutStopSec) kills a
        // service that takes longer to stop, and an unbounded wait would
        // let one forgotten call hold a restart for ever.
        drain_timeout: v.duration_in(
            "sip.drain_timeout",
            &r.drain_timeout,
            Duration::from_secs(60),
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
        flood: super::validate_flood::flood(v, r.flood.as_ref()),
    }
}

/// `sip.tls_bind` and its certificate and key. The files themselves are
/// read by `app::tls_settings` (for `run` and `check-config` alike).
fn sip_tls(v: &mut V, r: &RawSip) -> (Option<TlsListen>, Option<TlsIdentity>, Duration) {
    let tls = r.tls_bind.as_ref().map(|_| TlsListen {
        bind: v.socket("sip.tls_bind", &r.tls_bind, "0.0.0.0:5061"),
    });
    let identity = match (&r.tls_certificate, &r.tls_private_key) {
        (Some(c), Some(k)) => Some(TlsIdentity {
            certificate: v.path("sip.tls_certificate", c),
            private_key: v.path("sip.tls_private_key", k),
        }),
        (Some(_), None) => {
            v.missing("sip.tls_private_key", "\"tls/key.pem\"");
            None
        }
        (None, Some(_)) => {
            v.missing("sip.tls_certificate", "\"tls/cert.pem\"");
            None
        }
        (None, None) => None,
    };
    if tls.is_some()
        && identity.is_none()
        && r.tls_certificate.is_none()
        && r.tls_private_key.is_none()
    {
        v.push(
            "sip.tls_bind",
            "is set but sip.tls_certificate and sip.tls_private_key are not",
            "give the listener's PEM certificate chain and key, such as tls_certificate = \"tls/cert.pem\" and tls_private_key = \"tls/key.pem\"",
        );
    }
    // A handshake is a few round trips; 10 s is generous for a carrier and
    // short for a stranger holding a slot (sip.max_untrusted_tcp_connections).
    let timeout = v.duration(
        "sip.tls_handshake_timeout",
        &r.tls_handshake_timeout,
        Duration::from_secs(10),
        MS,
    );
    v.at_most(
        "sip.tls_handshake_timeout",
        timeout,
        Duration::from_secs(120),
    );
    (tls, identity, timeout)
}

/// `[trunk]` (one trunk) or `[[trunks]]` (several), never both; sorted
/// by priority, lower first, ties in file order.
pub(super) fn trunks(
    v: &mut V,
    one: Option<&RawTrunk>,
    many: &[(usize, RawTrunk)],
) -> Vec<TrunkConfig> {
    let mut out = Vec::new();
    match (one, many.is_empty()) {
        (Some(_), false) => {
            v.push(
                "trunks",
                "is given beside [trunk]",
                "write every trunk as a [[trunks]] table and remove [trunk] (or keep only [trunk] for one trunk)",
            );
        }
        (Some(r), true) => out.push(trunk(v, "trunk", Some(r))),
        (None, true) => out.push(trunk(v, "trunk", None)),
        (None, false) => {
            let mut names: std::collections::HashMap<String, usize> = Default::default();
            for (i, r) in many {
                let at = format!("trunks[{i}]");
                if r.name.is_none() {
                    v.missing(&format!("{at}.name"), "\"carrier-a\"");
                }
                let t = trunk(v, &at, Some(r));
                if let Some(first) = names.insert(t.name.clone(), *i) {
                    v.push(
                        format!("{at}.name"),
                        format!("{:?} is also the name of trunks[{first}]", t.name),
                        "give every trunk its own name: logs and call records name the trunk",
                    );
                }
                out.push(t);
            }
        }
    }
    // An INVITE to a registered contact is attributed to the trunk by
    // its Request-URI user, so two registrations must not share one.
    let mut contacts: std::collections::HashMap<&str, &str> = Default::default();
    for t in &out {
        if let Some(r) = &t.register {
            if let Some(first) = contacts.insert(&r.contact_user, &t.key) {
                v.push(
                    format!("{}.register_contact_user", t.key),
                    format!("{:?} is also the contact user of {first}", r.contact_user),
                    "give each registering trunk its own register_contact_user: calls to it are told apart by it",
                );
            }
        }
    }
    // Stable: equal priorities keep the file's order.
    out.sort_by_key(|t| t.priority);
    out
}

/// The external (NAT) addresses of `[sip]` or of a trunk (`at`): the
/// signalling address, its port and the media address, checked alike.
fn external_addresses(
    v: &mut V,
    at: &str,
    signaling: &Option<String>,
    port: Option<i64>,
    media: &Option<String>,
) -> (Option<IpAddr>, Option<u16>, Option<IpAddr>) {
    let key = |k: &str| format!("{at}.{k}");
    let external_signaling_address = v.ip(&key("external_signaling_address"), signaling);
    let external_media_address = v.ip(&key("external_media_address"), media);
    for (name, ip) in [
        ("external_signaling_address", external_signaling_address),
        ("external_media_address", external_media_address),
    ] {
        if ip.is_some_and(|ip| ip.is_unspecified() || ip.is_multicast()) {
            // Peers would be told to send to no one (or to everyone).
            v.push(
                key(name),
                "is not a unicast address",
                "write the NAT's public address, such as \"203.0.113.5\"",
            );
        }
    }
    // 0 (the default config's value) means the port SIP listens on.
    let external_signaling_port = port.filter(|p| *p != 0).map(|p| {
        u16::try_from(v.int(&key("external_signaling_port"), Some(p), 5060, 1, 65535))
            .unwrap_or(5060)
    });
    if external_signaling_address.is_none()
        && (external_media_address.is_some() || external_signaling_port.is_some())
    {
        v.push(
            key("external_signaling_address"),
            format!("is not set, but {at}.external_media_address or {at}.external_signaling_port is"),
            format!("set the public address peers outside {at}.local_networks reach us at, such as \"203.0.113.5\""),
        );
    }
    (
        external_signaling_address,
        external_signaling_port,
        external_media_address,
    )
}

fn trunk(v: &mut V, at: &str, r: Option<&RawTrunk>) -> TrunkConfig {
    let key = |k: &str| format!("{at}.{k}");
    let default = RawTrunk::default();
    let r = match r {
        Some(r) => r,
        None => {
            v.push(
                "trunk",
                "is missing",
                "add a [trunk] section (or [[trunks]] tables) with at least outbound_proxy and allow",
            );
            &default
        }
    };
    let fallback_proxy = SipTarget {
        host: Host::Name(String::new()),
        port: 5060,
        transport: Transport::Udp,
        port_given: false,
        transport_given: false,
    };
    let outbound_proxy = match &r.outbound_proxy {
        None => {
            if !v.problems.iter().any(|p| p.path == "trunk") {
                v.missing(&key("outbound_proxy"), "\"sip:127.0.0.1:5080\"");
            }
            fallback_proxy
        }
        // A host name is resolved per RFC 3263 when the switch starts (and
        // by `check-config`), not here: validation reads no network.
        Some(s) => match parse_sip_target(s) {
            Ok(t) => t,
            Err(why) => {
                v.push(key("outbound_proxy"), format!("{s:?} is not a SIP URI ({why})"), "write it as \"sip:HOST[:PORT][;transport=udp|tcp|tls]\" or \"sips:HOST[:PORT]\", such as \"sip:127.0.0.1:5080\"");
                fallback_proxy
            }
        },
    };
    let mut allow = Vec::new();
    match &r.allow {
        None if r.outbound_proxy.is_some() => v.missing(&key("allow"), "[\"127.0.0.1/32\"]"),
        None => {}
        Some(list) if list.is_empty() => v.push(
            key("allow"),
            "is empty, so every request would be refused",
            "list the carrier's addresses, such as [\"203.0.113.0/24\"]",
        ),
        Some(list) => {
            for (i, s) in list.iter().enumerate() {
                match s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)) {
                    Ok(n) => allow.push(n),
                    Err(_) => v.push(format!("{at}.allow[{i}]"), format!("{s:?} is not an IP network"), "write an address or CIDR network such as \"192.0.2.10\" or \"192.0.2.0/24\""),
                }
            }
        }
    }
    let username = r.username.clone().unwrap_or_default();
    let password_env = v.env_name(
        &key("password_env"),
        &r.password_env,
        "TPSWITCH_TRUNK_PASSWORD",
    );
    if !username.is_empty() && password_env.is_empty() {
        v.push(
            key("password_env"),
            format!("is empty but {at}.username is set"),
            "name the environment variable that holds the password",
        );
    }
    let mut allow_dial = Vec::new();
    for (i, s) in r.allow_dial.iter().flatten().enumerate() {
        let path = format!("{at}.allow_dial[{i}]");
        if let Some(prefix) = s.strip_suffix('*') {
            let digits = prefix.trim_start_matches('+');
            if prefix.starts_with('+')
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                allow_dial.push(DialPattern::Prefix(digits.to_string()));
            } else {
                v.push(
                    path,
                    format!("{s:?} is not a number prefix"),
                    "write '+', the leading digits and '*', such as \"+4420*\"",
                );
            }
        } else if let Some(n) = v.e164(&path, s) {
            allow_dial.push(DialPattern::Exact(n));
        }
    }
    let max_outbound_calls = match (r.max_calls, r.max_outbound_calls) {
        (Some(_), Some(_)) => {
            v.push(
                key("max_outbound_calls"),
                "is given beside max_calls",
                "keep only max_calls (max_outbound_calls is its older name)",
            );
            100
        }
        (Some(n), None) => v.uint(&key("max_calls"), Some(n), 100, 1, 1_000_000),
        (None, n) => v.uint(&key("max_outbound_calls"), n, 100, 1, 1_000_000),
    };
    let max_cps = match r.max_cps {
        None => None,
        // A token bucket refills at this rate; 1000 is far above any
        // carrier's contract and keeps the refill arithmetic finite.
        Some(c) if c.is_finite() && (0.01..=1000.0).contains(&c) => Some(c),
        Some(c) => {
            v.push(
                key("max_cps"),
                format!("{c} is out of range"),
                "use calls per second from 0.01 to 1000, such as 1 (leave it out for no limit)",
            );
            None
        }
    };
    let mut host = |k: &str, s: &Option<String>| -> Option<String> {
        let s = s.as_deref()?;
        if valid_hostport(s) {
            Some(s.to_ascii_lowercase())
        } else {
            v.push(
                key(k),
                format!("{s:?} is not a host"),
                "write a host name or IP address, optionally with :PORT, such as \"example.pstn.twilio.com\"",
            );
            None
        }
    };
    let request_uri_host = host("request_uri_host", &r.request_uri_host);
    let from_host = host("from_host", &r.from_host);
    let to_host = host("to_host", &r.to_host);
    let privacy = match r.privacy.as_deref() {
        None | Some("") => None,
        // RFC 3323 §4.2 priv-values (and RFC 3325 §9.3 "id").
        Some(p)
            if p.split(';').all(|t| {
                matches!(
                    t.trim(),
                    "header" | "session" | "user" | "none" | "critical" | "id"
                )
            }) =>
        {
            Some(p.to_string())
        }
        Some(p) => {
            v.push(
                key("privacy"),
                format!("{p:?} is not an RFC 3323 privacy value"),
                "use \"id\", \"none\", \"header\", \"user\", \"session\" or several joined by ';' (\"id;critical\")",
            );
            None
        }
    };
    let mut headers = Vec::new();
    for (name, value) in r.headers.iter().flatten() {
        let path = format!("{at}.headers.{name}");
        if let Some(problem) = extra_header_problem(name, value) {
            v.push(path, problem, "use a header name of letters, digits and - (such as \"X-Carrier-Token\") that tpswitch does not write itself, and a value on one line");
        } else {
            headers.push((name.clone(), value.clone()));
        }
    }
    let prefix = r.prefix.clone().unwrap_or_default();
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'))
    {
        v.push(
            key("prefix"),
            format!("{prefix:?} is not a dial prefix"),
            "use digits (and + * #) only, such as \"1010\"",
        );
    }
    // A header only our own proxy may write: a plain token name, not one
    // of the headers tpswitch reads or writes itself.
    let source_header = match r.source_header.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => match extra_header_problem(name, "-") {
            None => Some(name.to_owned()),
            Some(problem) => {
                v.push(
                    key("source_header"),
                    problem,
                    "name the header your proxy adds with the carrier's ip:port, such as \"X-Tpswitch-Source\"",
                );
                None
            }
        },
    };
    let register =
        super::validate_register::registration(v, at, r, &username, &outbound_proxy, &allow);
    let (external_signaling_address, external_signaling_port, external_media_address) =
        external_addresses(
            v,
            at,
            &r.external_signaling_address,
            r.external_signaling_port,
            &r.external_media_address,
        );
    let nat = TrunkNat {
        external_signaling_address,
        external_signaling_port,
        external_media_address,
        local_networks: r
            .local_networks
            .as_deref()
            .map(|l| v.networks(&key("local_networks"), l)),
    };
    TrunkConfig {
        register,
        nat,
        name: r.name.clone().unwrap_or_else(|| "carrier".into()),
        key: at.to_string(),
        outbound_proxy,
        allow,
        username,
        password_env,
        max_outbound_calls,
        trust_pai: r.trust_pai.unwrap_or(true),
        number_format: v.choice(
            &key("number_format"),
            &r.number_format,
            NumberFormat::PlusE164,
            &[
                ("+E164", NumberFormat::PlusE164),
                ("E164", NumberFormat::E164),
                ("national", NumberFormat::National),
            ],
        ),
        allow_dial,
        follow_redirects: r.follow_redirects.unwrap_or(true),
        max_redirects: v.uint(&key("max_redirects"), r.max_redirects, 2, 0, 10),
        caller_id: v.choice(
            &key("caller_id"),
            &r.caller_id,
            CallerIdMode::ContactPoint,
            &[
                ("contact-point", CallerIdMode::ContactPoint),
                ("customer", CallerIdMode::Customer),
            ],
        ),
        caller_id_trust: v.choice(
            &key("caller_id_trust"),
            &r.caller_id_trust,
            CallerIdTrust::Any,
            &[
                ("any", CallerIdTrust::Any),
                ("attested", CallerIdTrust::Attested),
                ("pin-always", CallerIdTrust::PinAlways),
            ],
        ),
        inband_dtmf: r.inband_dtmf.unwrap_or(false),
        in_dialog_via_proxy: r.in_dialog_via_proxy.unwrap_or(true),
        tls_ca_file: r
            .tls_ca_file
            .as_ref()
            .map(|p| v.path(&key("tls_ca_file"), p)),
        tls_server_name: r
            .tls_server_name
            .as_ref()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
        // "0s" (the default) is off; an interval under a second would be
        // a flood, not a keepalive.
        keepalive_interval: match v.duration_in(
            &key("keepalive_interval"),
            &r.keepalive_interval,
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_secs(3600),
        ) {
            d if d.is_zero() => None,
            d if d < SEC => {
                v.push(
                    key("keepalive_interval"),
                    "is under a second",
                    "use \"0s\" (off) or an interval of a second or more, such as \"30s\"",
                );
                None
            }
            d => Some(d),
        },
        srtp: v.choice(
            &key("srtp"),
            &r.srtp,
            SrtpPolicy::Off,
            &[
                ("off", SrtpPolicy::Off),
                ("optional", SrtpPolicy::Optional),
                ("required", SrtpPolicy::Required),
            ],
        ),
        priority: v.uint(&key("priority"), r.priority, 0, 0, 65535),
        max_cps,
        request_uri_host,
        from_host,
        to_host,
        pai: r.pai.unwrap_or(false),
        privacy,
        headers,
        prefix,
        source_header,
    }
}

/// "host" or "host:port" with a DNS name or an IP address (IPv6 in
/// brackets), as it may stand after the '@' of a SIP URI (RFC 3261 §25.1).
fn valid_hostport(s: &str) -> bool {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        match v6.split_once(']') {
            Some((ip, rest)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => {
                (None, rest.strip_prefix(':'))
            }
            _ => return false,
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    host_ok && port_ok
}

/// Headers tpswitch writes itself (or that change the transaction):
/// a configured copy would duplicate or contradict them.
const OWN_HEADERS: &[&str] = &[
    "via",
    "v",
    "from",
    "f",
    "to",
    "t",
    "call-id",
    "i",
    "cseq",
    "contact",
    "m",
    "max-forwards",
    "content-length",
    "l",
    "content-type",
    "c",
    "allow",
    "supported",
    "k",
    "user-agent",
    "route",
    "record-route",
    "authorization",
    "proxy-authorization",
    "diversion",
    "p-asserted-identity",
    "privacy",
    "require",
    "proxy-require",
    "expires",
];

/// Why `name: value` cannot go on the wire, if it cannot: the name must
/// be an RFC 3261 §25.1 token and not one of ours; the value one line of
/// printable text (a CR or LF would let the file inject headers).
pub(super) fn extra_header_problem(name: &str, value: &str) -> Option<String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Some(format!("{name:?} is not a header name"));
    }
    if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Some(format!("{name} is written by tpswitch itself"));
    }
    if value.trim().is_empty() {
        return Some("the value is empty".to_string());
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Some("the value contains a control character (CR, LF, ...)".to_string());
    }
    None
}

/// "sip:host[:port][;transport=udp|tcp|tls]" or "sips:host[:port]"
/// (RFC 3261 §19.1.1, the subset a next hop needs). A `sips:` URI is TLS
/// (§26.2.2); TLS defaults to port 5061 (§19.1.2).
pub(super) fn parse_sip_target(s: &str) -> Result<SipTarget, &'static str> {
    let s = s.trim();
    let (rest, sips) = match (s.strip_prefix("sips:"), s.strip_prefix("sip:")) {
        (Some(r), _) => (r, true),
        (None, Some(r)) => (r, false),
        (None, None) => return Err("it must start with \"sip:\" or \"sips:\""),
    };
    let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
    let mut transport = if sips { Transport::Tls } else { Transport::Udp };
    // A sips: URI is TLS but names no transport: RFC 3263 §4.1 still asks
    // NAPTR for a host name (keeping only SIPS+D2T), as `;transport=tls`
    // would not.
    let mut transport_given = false;
    for p in params.split(';').filter(|p| !p.is_empty()) {
        match p.to_ascii_lowercase().as_str() {
            "transport=udp" if !sips => (transport, transport_given) = (Transport::Udp, true),
            "transport=tcp" if !sips => (transport, transport_given) = (Transport::Tcp, true),
            "transport=tls" => (transport, transport_given) = (Transport::Tls, true),
            "transport=udp" | "transport=tcp" => {
                return Err("a sips: URI is always TLS (RFC 3261 §26.2.2)")
            }
            "lr" => {}
            _ => {
                return Err(
                    "only ;transport=udp, ;transport=tcp, ;transport=tls and ;lr are supported",
                )
            }
        }
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (ip, after) = v6
            .split_once(']')
            .ok_or("unclosed '[' in the IPv6 address")?;
        let ip = ip.parse::<IpAddr>().map_err(|_| "bad IPv6 address")?;
        (Host::Ip(ip), after.strip_prefix(':'))
    } else {
        let (h, p) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        let host = match h.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_)
                if !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
            {
                Host::Name(h.to_ascii_lowercase())
            }
            Err(_) => return Err("bad host"),
        };
        (host, p)
    };
    let port_given = port.is_some();
    let port = match port {
        None if transport == Transport::Tls => 5061,
        None => 5060,
        Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or("bad port")?,
    };
    Ok(SipTarget {
        host,
        port,
        transport,
        port_given,
        transport_given,
    })
}

pub(super) fn media(v: &mut V, r: &RawMedia) -> MediaConfig {
    let ports = r.rtp_ports.as_deref().unwrap_or("20000-29999");
    let rtp_ports = match ports
        .split_once('-')
        .map(|(a, b)| (a.trim().parse::<u16>(), b.trim().parse::<u16>()))
    {
        Some((Ok(start), Ok(end))) => match PortRange::new(start, end) {
            Some(range) if start >= 1024 => range,
            _ if start % 2 == 1 => {
                v.push("media.rtp_ports", format!("{ports:?} starts on an odd port"), "start on an even port, such as \"20000-29999\": RTP uses the even port and RTCP the odd one above it (RFC 3550 §11)");
                PortRange::default()
            }
            _ if start >= end => {
                v.push(
                    "media.rtp_ports",
                    format!("{ports:?} does not go upwards"),
                    "write \"START-END\" with START < END, such as \"20000-29999\"",
                );
                PortRange::default()
            }
            _ => {
                v.push(
                    "media.rtp_ports",
                    format!("{ports:?} starts below 1024"),
                    "use unprivileged ports, such as \"20000-29999\"",
                );
                PortRange::default()
            }
        },
        _ => {
            v.push(
                "media.rtp_ports",
                format!("{ports:?} is not a port range"),
                "write \"START-END\" such as \"20000-29999\"",
            );
            PortRange::default()
        }
    };
    let mut codecs = Vec::new();
    let names = r
        .codecs
        .clone()
        .unwrap_or_else(|| vec!["PCMU".into(), "PCMA".into()]);
    if names.is_empty() {
        v.push(
            "media.codecs",
            "is empty",
            "list at least one of \"PCMU\", \"PCMA\"",
        );
    }
    for (i, s) in names.iter().enumerate() {
        // Encoding names are case-insensitive (RFC 4566 §6), in SDP and here alike.
        let c = match Codec::from_name(s) {
            Some(c) => c,
            None => {
                v.push(
                    format!("media.codecs[{i}]"),
                    format!("{s:?} is not a supported codec"),
                    "use \"PCMU\" or \"PCMA\" (G.711)",
                );
                continue;
            }
        };
        if codecs.contains(&c) {
            v.push(
                format!("media.codecs[{i}]"),
                format!("{s:?} is listed twice"),
                "list each codec once",
            );
        } else {
            codecs.push(c);
        }
    }
    let ptime = v.duration(
        "media.ptime",
        &r.ptime,
        Duration::from_millis(20),
        Duration::from_millis(10),
    );
    if ptime > Duration::from_millis(60) || !ptime.as_millis().is_multiple_of(10) {
        v.push(
            "media.ptime",
            format!(
                "{:?} is not a supported packet time",
                format_duration(ptime)
            ),
            "use 10ms, 20ms, 30ms, 40ms, 50ms or 60ms (\"20ms\" is what every trunk accepts)",
        );
    }
    MediaConfig {
        bind_address: v.ip("media.bind_address", &r.bind_address),
        rtp_ports,
        codecs,
        // RFC 3551 §3: 96-127 is the dynamic range telephone-event lives in.
        dtmf_payload_type: u8::try_from(v.int(
            "media.dtmf_payload_type",
            r.dtmf_payload_type,
            101,
            96,
            127,
        ))
        .unwrap_or(101),
        rtp_timeout: v.duration(
            "media.rtp_timeout",
            &r.rtp_timeout,
            Duration::from_secs(30),
            SEC,
        ),
        silence_between_prompts: r.silence_between_prompts.unwrap_or(true),
        latch_window: v.duration(
            "media.latch_window",
            &r.latch_window,
            Duration::from_secs(2),
            Duration::ZERO,
        ),
        rtcp_interval: v.duration(
            "media.rtcp_interval",
            &r.rtcp_interval,
            Duration::from_secs(5),
            SEC,
        ),
        ptime,
        pacing_threads: v.uint("media.pacing_threads", r.pacing_threads, 1, 1, 64) as usize,
    }
}

pub(super) fn numbering(v: &mut V, r: Option<&RawNumbering>) -> NumberingConfig {
    match r.and_then(|r| r.default_country_code.as_deref()) {
        None => v.missing(
            "numbering.default_country_code",
            "\"1\" (under [numbering])",
        ),
        Some(s) => match CountryCode::parse(s) {
            Ok(cc) => v.cc = cc,
            Err(_) => v.push(
                "numbering.default_country_code",
                format!("{s:?} is not a country code"),
                "write 1 to 3 digits without '+', such as \"1\" or \"44\"",
            ),
        },
    }
    NumberingConfig {
        default_country_code: v.cc.clone(),
    }
}

pub(super) fn store(v: &mut V, r: &RawStore) -> StoreConfig {
    StoreConfig {
        path: v.path(
            "store.path",
            r.path.as_deref().unwrap_or("data/tpswitch.db"),
        ),
        synchronous: v.choice(
            "store.synchronous",
            &r.synchronous,
            Synchronous::Full,
            &[
                ("off", Synchronous::Off),
                ("normal", Synchronous::Normal),
                ("full", Synchronous::Full),
                ("extra", Synchronous::Extra),
            ],
        ),
        postgres: postgres_store(v, r),
        cluster: cluster(v, r),
    }
}

/// The shared-store settings. A node name goes into logs, metrics labels
/// and the store, so it is kept to a plain word.
fn cluster(v: &mut V, r: &RawStore) -> ClusterConfig {
    let d = ClusterConfig::default();
    let node = match r.node.as_deref() {
        None => d.node.clone(),
        Some(n)
            if !n.is_empty()
                && n.len() <= 63
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            n.to_owned()
        }
        Some(_) => {
            v.push(
                "store.node",
                "is not a plain name",
                "use 1-63 letters, digits, '-', '_' or '.', such as \"node-a\"",
            );
            d.node.clone()
        }
    };
    let heartbeat = v.duration_in(
        "store.heartbeat",
        &r.heartbeat,
        d.heartbeat,
        Duration::from_millis(100),
        Duration::from_secs(60),
    );
    let claim_lease = v.duration_in(
        "store.claim_lease",
        &r.claim_lease,
        d.claim_lease,
        Duration::from_millis(500),
        Duration::from_secs(600),
    );
    // A lease shorter than two heartbeats expires between two renewals of
    // a healthy node: its agents would be offered twice.
    if claim_lease < heartbeat * 2 {
        v.push(
            "store.claim_lease",
            format!(
                "{:?} is less than two heartbeats ({:?} each)",
                format_duration(claim_lease),
                format_duration(heartbeat)
            ),
            "make store.claim_lease at least twice store.heartbeat (the default is 10s for a 2s heartbeat)",
        );
    }
    let set = r.node.is_some() || r.heartbeat.is_some() || r.claim_lease.is_some();
    if set && r.url.is_none() {
        v.push(
            "store",
            "sets node, heartbeat or claim_lease but no store.url",
            "these apply to a PostgreSQL store shared by several switches: add store.url = \"postgres://…\", or remove them",
        );
    }
    ClusterConfig {
        node,
        heartbeat,
        claim_lease,
    }
}

/// `store.url` and `store.password_env`: a PostgreSQL URL with a host and
/// a database name. The label kept for logs drops the password.
fn postgres_store(v: &mut V, r: &RawStore) -> Option<PostgresConfig> {
    let password_env = r
        .password_env
        .as_ref()
        .map(|_| v.env_name("store.password_env", &r.password_env, ""));
    let Some(text) = r.url.as_deref() else {
        if password_env.is_some() {
            v.push(
                "store.password_env",
                "is set but store.url is not",
                "add store.url = \"postgres://user@host/db\", or remove store.password_env",
            );
        }
        return None;
    };
    let example = "write it as \"postgres://user@host:5432/db\"";
    let url = match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => u,
        // Never echo the text: it may hold a password.
        Ok(u) => {
            v.push(
                "store.url",
                format!("has the scheme {:?}; only PostgreSQL URLs are supported (SQLite is store.path)", u.scheme()),
                example,
            );
            return None;
        }
        Err(e) => {
            v.push("store.url", format!("is not a URL ({e})"), example);
            return None;
        }
    };
    let host = url.host_str().unwrap_or_default();
    let db = url.path().trim_start_matches('/');
    if host.is_empty() || db.is_empty() {
        v.push("store.url", "needs a host and a database name", example);
        return None;
    }
    if url.password().is_some() && password_env.is_some() {
        v.push(
            "store.url",
            "carries a password and store.password_env names another",
            "keep the password in one place: remove it from the URL (preferred) or remove store.password_env",
        );
    }
    let user = match url.username() {
        "" => String::new(),
        u => format!("{u}@"),
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(PostgresConfig {
        url: text.to_string(),
        password_env,
        label: format!("postgres://{user}{host}{port}/{db}"),
    })
}

pub(super) fn http(v: &mut V, r: &RawHttp) -> HttpConfig {
    let token_env = v.env_name("http.token_env", &r.token_env, "TPSWITCH_API_TOKEN");
    if token_env.is_empty() {
        // An empty name would leave the admin API without a token.
        v.push(
            "http.token_env",
            "is empty",
            "name the environment variable holding the API token, such as \"TPSWITCH_API_TOKEN\"",
        );
    }
    let header_read_timeout = v.duration(
        "http.header_read_timeout",
        &r.header_read_timeout,
        Duration::from_secs(10),
        SEC,
    );
    v.at_most(
        "http.header_read_timeout",
        header_read_timeout,
        Duration::from_secs(300),
    );
    let tokens = api_tokens(v, r.tokens.as_deref().unwrap_or_default(), &token_env);
    HttpConfig {
        bind: v.socket("http.bind", &r.bind, "127.0.0.1:8080"),
        token_env,
        tokens,
        header_read_timeout,
        max_connections: v.uint("http.max_connections", r.max_connections, 64, 1, 10_000),
    }
}

/// The actors the presence history records for the agent's own phone and
/// for the switch (`presence::ACTOR_AGENT`, `presence::ACTOR_SWITCH`): a
/// token holder named so would read, in the history and the logs, as one
/// of them.
pub(crate) const RESERVED_TOKEN_NAMES: [&str; 2] = ["agent", "switch"];

/// `[[http.tokens]]`: each names its holder, a role and the environment
/// variable with the token; names and variables are unique (the admin
/// token of `http.token_env` included), so a log line's holder is one.
fn api_tokens(v: &mut V, list: &[RawApiToken], admin_env: &str) -> Vec<ApiToken> {
    let mut out: Vec<ApiToken> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let at = format!("http.tokens[{i}]");
        let name = match t.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() && n.len() <= 64 && !n.chars().any(char::is_control) => {
                n.to_owned()
            }
            Some(n) => {
                v.push(
                    format!("{at}.name"),
                    format!("{n:?} is empty, too long or has control characters"),
                    "name the token's holder in 1 to 64 printable characters, such as \"floor-supervisors\"",
                );
                continue;
            }
            None => {
                v.missing(&format!("{at}.name"), "\"floor-supervisors\"");
                continue;
            }
        };
        if RESERVED_TOKEN_NAMES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&name))
        {
            v.push(
                format!("{at}.name"),
                format!("{name:?} is the presence history's name for the agent's own phone or for the switch"),
                "name the token's holder otherwise, such as \"floor-supervisors\"",
            );
            continue;
        }
        let Some(role_text) = &t.role else {
            v.missing(&format!("{at}.role"), "\"viewer\"");
            continue;
        };
        let role = v.choice(
            &format!("{at}.role"),
            &Some(role_text.clone()),
            ApiRole::Viewer,
            &[
                ("admin", ApiRole::Admin),
                ("supervisor", ApiRole::Supervisor),
                ("viewer", ApiRole::Viewer),
            ],
        );
        let Some(env) = &t.token_env else {
            v.missing(&format!("{at}.token_env"), "\"TPSWITCH_VIEWER_TOKEN\"");
            continue;
        };
        let token_env = v.env_name(&format!("{at}.token_env"), &Some(env.clone()), "");
        if token_env == admin_env || out.iter().any(|o| o.token_env == token_env) {
            v.push(
                format!("{at}.token_env"),
                format!("{token_env} is already the variable of another token"),
                "give each token its own environment variable",
            );
        }
        if out.iter().any(|o| o.name == name) {
            v.push(
                format!("{at}.name"),
                format!("{name:?} is already the name of another token"),
                "give each token its own name",
            );
        }
        out.push(ApiToken {
            name,
            role,
            token_env,
        });
    }
    out
}

pub(super) fn dns(v: &mut V, r: &RawDns) -> DnsConfig {
    let nameserver = r.nameserver.as_ref().map(|s| {
        // A bare address means port 53.
        s.parse::<SocketAddr>()
            .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .unwrap_or_else(|_| {
                v.push(
                    "dns.nameserver",
                    format!("{s:?} is not an address or address:port"),
                    "write the DNS server's IP address, with a port if not 53, such as \"127.0.0.1:5353\"",
                );
                SocketAddr::from(([127, 0, 0, 1], 53))
            })
    });
    let timeout = v.duration_in(
        "dns.timeout",
        &r.timeout,
        Duration::from_secs(3),
        MS * 100,
        Duration::from_secs(60),
    );
    let min_refresh = v.duration_in(
        "dns.min_refresh",
        &r.min_refresh,
        Duration::from_secs(5),
        SEC,
        Duration::from_secs(24 * 3600),
    );
    let max_refresh = v.duration_in(
        "dns.max_refresh",
        &r.max_refresh,
        Duration::from_secs(3600),
        SEC,
        Duration::from_secs(7 * 24 * 3600),
    );
    if max_refresh < min_refresh {
        v.push(
            "dns.max_refresh",
            "is shorter than dns.min_refresh",
            "make max_refresh at least min_refresh (defaults: \"5s\" and \"1h\")",
        );
    }
    DnsConfig {
        nameserver,
        timeout,
        start_unresolved: r.start_unresolved.unwrap_or(false),
        min_refresh,
        max_refresh: max_refresh.max(min_refresh),
    }
}

pub(super) fn presence(v: &mut V, r: &RawPresence) -> PresenceConfig {
    PresenceConfig {
        expiry_notification_ring: v.duration(
            "presence.expiry_notification_ring",
            &r.expiry_notification_ring,
            Duration::from_secs(30),
            SEC,
        ),
        time_zone: time_zone(v, "presence.time_zone", r.time_zone.as_deref())
            .unwrap_or(chrono_tz::Tz::UTC),
    }
}

/// An IANA time zone name ("Europe/Paris", "UTC"); `None` when absent or
/// wrong (then reported under `key`).
pub(super) fn time_zone(v: &mut V, key: &str, name: Option<&str>) -> Option<chrono_tz::Tz> {
    let name = name?;
    match name.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            v.push(
                key.to_owned(),
                format!("{name:?} is not a time zone"),
                "write an IANA time zone name such as \"America/New_York\", \"Europe/Paris\" or \"UTC\"",
            );
            None
        }
    }
}
