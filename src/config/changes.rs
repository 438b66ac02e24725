//! What a reload changes: which settings differ between the running
//! configuration and the file just read, split into those the next call
//! picks up and those only a restart applies.
//!
//! The split follows who reads each setting. Calls read the per-call
//! settings when they start (directory, flows, prompts, dialling rules,
//! media timers), so those are live. What was built once at start-up stays
//! as built: sockets and their limits (binds, TCP budgets, HTTP), the store,
//! the RTP port pool and pacing threads, the SIP core's timers, codecs and
//! session timers, the trunk's address and credentials. The SIP core's
//! policy (allow-list, call and transaction limits, Retry-After) is sent to
//! it as a `Policy`, and the queue engine takes new queue rules and agent
//! profiles as an event: both are live.
//! A changed restart-only setting is reported, never applied halfway: the
//! running value stays until the next start.
//!
//! One table (`SETTINGS`, `TRUNK_SETTINGS`) holds each key with how to
//! compare it and how to copy it: `changes` reports from it and
//! `keep_running` keeps from it, and a test fails when a field of the model
//! has no row.

use super::model::{Config, TrunkConfig};

/// When a changed setting takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Read by each new call, or sent to the SIP core as its `Policy`.
    Live,
    /// Built into a socket, a thread or the SIP core at start: the running
    /// value stays until the next start.
    Restart,
}

/// One setting of the switch as a reload sees it. The same entry reports a
/// change (`changes`) and, for a restart-only one, keeps the running value
/// (`keep_running`), so the two can never disagree about a key.
pub struct Setting {
    /// As written in the TOML file (`sip.t1`); a group of keys read
    /// together is named by its table or its first key (`sip.tls_bind`).
    pub key: &'static str,
    pub applies: Applies,
    /// Whether the setting differs between two configurations.
    pub differs: fn(&Config, &Config) -> bool,
    /// Copies the setting from the first configuration into the second.
    pub copy: fn(&Config, &mut Config),
}

/// One setting of each trunk. A change to the first trunk (in priority
/// order; `[trunk]` when there is one) is named `trunk.<key>`, to any other
/// `trunks.<key>`.
pub struct TrunkSetting {
    /// `trunk.<key>`.
    pub first: &'static str,
    /// `trunks.<key>`.
    pub others: &'static str,
    pub applies: Applies,
    pub differs: fn(&TrunkConfig, &TrunkConfig) -> bool,
    pub copy: fn(&TrunkConfig, &mut TrunkConfig),
}

/// A table entry from the key and the field path it reads: the comparison
/// and the copy are written from the same path, never by hand twice.
macro_rules! setting {
    ($applies:ident, $key:literal, $($field:ident).+) => {
        Setting {
            key: $key,
            applies: Applies::$applies,
            differs: |a, b| a.$($field).+ != b.$($field).+,
            copy: |from, to| to.$($field).+ = from.$($field).+.clone(),
        }
    };
}

macro_rules! trunk_setting {
    ($applies:ident, $field:ident) => {
        TrunkSetting {
            first: concat!("trunk.", stringify!($field)),
            others: concat!("trunks.", stringify!($field)),
            applies: Applies::$applies,
            differs: |a, b| a.$field != b.$field,
            copy: |from, to| to.$field = from.$field.clone(),
        }
    };
}

/// Every setting outside the trunks, in the order a reload reports them.
pub static SETTINGS: &[Setting] = &[
    // The SIP core takes these for its next request (sip::core::Policy).
    setting!(Live, "sip.max_calls", sip.max_calls),
    setting!(Live, "sip.max_transactions", sip.max_transactions),
    setting!(Live, "sip.retry_after", sip.retry_after),
    setting!(Live, "sip.untrusted", sip.untrusted),
    // The per-source limits and bans (sip::flood), handed to the core with
    // the rest of its policy.
    setting!(Live, "sip.flood", sip.flood),
    // Read by each inbound call's task.
    setting!(Live, "sip.answer_delay", sip.answer_delay),
    // Read when the drain starts, from the settings then in force.
    setting!(Live, "sip.drain_timeout", sip.drain_timeout),
    // Read by each call: media timers, numbering, the directory, flows.
    setting!(Live, "media.rtp_timeout", media.rtp_timeout),
    setting!(
        Live,
        "media.silence_between_prompts",
        media.silence_between_prompts
    ),
    setting!(Live, "media.latch_window", media.latch_window),
    setting!(
        Live,
        "numbering.default_country_code",
        numbering.default_country_code
    ),
    setting!(
        Live,
        "presence.expiry_notification_ring",
        presence.expiry_notification_ring
    ),
    setting!(Live, "presence.time_zone", presence.time_zone),
    setting!(Live, "prompts", prompts),
    setting!(Live, "users", users),
    // The queue task hands new queue rules and agent profiles to its
    // engine (flows::queue::Event::Reconfigure).
    setting!(Live, "flows", flows),
    setting!(Live, "dispatch_mappings", dispatch_mappings),
    // The SIP endpoint, its sockets and the core's timers, session timers
    // (RFC 4028) and NAT plan, built once at start.
    setting!(Restart, "sip.bind", sip.bind),
    setting!(Restart, "sip.advertise", sip.advertise),
    setting!(Restart, "sip.tcp", sip.tcp),
    setting!(Restart, "sip.t1", sip.t1),
    setting!(Restart, "sip.t2", sip.t2),
    setting!(Restart, "sip.t4", sip.t4),
    setting!(Restart, "sip.max_message_bytes", sip.max_message_bytes),
    setting!(Restart, "sip.max_header_bytes", sip.max_header_bytes),
    setting!(Restart, "sip.max_tcp_connections", sip.max_tcp_connections),
    setting!(
        Restart,
        "sip.max_untrusted_tcp_connections",
        sip.max_untrusted_tcp_connections
    ),
    setting!(Restart, "sip.tcp_idle_timeout", sip.tcp_idle_timeout),
    setting!(Restart, "sip.user_agent", sip.user_agent),
    setting!(Restart, "sip.session_expires", sip.session_expires),
    setting!(Restart, "sip.min_se", sip.min_se),
    setting!(
        Restart,
        "sip.external_signaling_address",
        sip.external_signaling_address
    ),
    setting!(
        Restart,
        "sip.external_signaling_port",
        sip.external_signaling_port
    ),
    setting!(
        Restart,
        "sip.external_media_address",
        sip.external_media_address
    ),
    setting!(Restart, "sip.local_networks", sip.local_networks),
    setting!(Restart, "sip.tls_bind", sip.tls),
    setting!(Restart, "sip.tls_certificate", sip.tls_identity),
    setting!(
        Restart,
        "sip.tls_handshake_timeout",
        sip.tls_handshake_timeout
    ),
    // The endpoint's tracer is built at start (app::sip_tracer).
    setting!(Restart, "sip.trace", sip.trace),
    // The RTP port pool, its sockets' address and the pacing threads;
    // offers read the codecs and the DTMF payload type (RFC 4733) from
    // the call context, so those are kept too.
    setting!(Restart, "media.bind_address", media.bind_address),
    setting!(Restart, "media.rtp_ports", media.rtp_ports),
    setting!(Restart, "media.codecs", media.codecs),
    setting!(Restart, "media.dtmf_payload_type", media.dtmf_payload_type),
    setting!(Restart, "media.rtcp_interval", media.rtcp_interval),
    setting!(Restart, "media.ptime", media.ptime),
    setting!(Restart, "media.pacing_threads", media.pacing_threads),
    setting!(Restart, "store.path", store.path),
    setting!(Restart, "store.synchronous", store.synchronous),
    // `store.url` and `store.password_env`: the store is opened at start.
    setting!(Restart, "store.url", store.postgres),
    // The node's name, heartbeat and lease: the cluster task starts with
    // them (one node cannot change its name under its own claims).
    setting!(Restart, "store.node", store.cluster),
    setting!(Restart, "http.bind", http.bind),
    setting!(Restart, "http.token_env", http.token_env),
    setting!(Restart, "http.tokens", http.tokens),
    setting!(
        Restart,
        "http.header_read_timeout",
        http.header_read_timeout
    ),
    setting!(Restart, "http.max_connections", http.max_connections),
    // One delivery task per webhook, started with its secret at start-up.
    setting!(Restart, "webhooks", webhooks),
    // Each trunk's resolver and refresh (RFC 3263) are built at start.
    setting!(Restart, "dns.nameserver", dns.nameserver),
    setting!(Restart, "dns.timeout", dns.timeout),
    setting!(Restart, "dns.start_unresolved", dns.start_unresolved),
    setting!(Restart, "dns.min_refresh", dns.min_refresh),
    setting!(Restart, "dns.max_refresh", dns.max_refresh),
];

/// Every per-trunk setting but `name` (a trunk added, removed, renamed or
/// moved is reported as `trunks`).
pub static TRUNK_SETTINGS: &[TrunkSetting] = &[
    // Sent to the SIP core as its `Policy` (whom it trusts). Which trunk
    // an inbound request is taken to come from is still judged by the
    // `allow` each trunk had at start (sip::trunk).
    trunk_setting!(Live, allow),
    // Read by each call: the caller's identity (RFC 3325) and how far the
    // log-in menu trusts it, the dial string, the dialling rules, who we
    // present as, in-band DTMF.
    trunk_setting!(Live, trust_pai),
    trunk_setting!(Live, number_format),
    trunk_setting!(Live, prefix),
    trunk_setting!(Live, allow_dial),
    trunk_setting!(Live, caller_id),
    trunk_setting!(Live, caller_id_trust),
    trunk_setting!(Live, inband_dtmf),
    // Built into the SIP core's route for the trunk at start
    // (app::trunk_routes): where and how legs are sent, their limits, the
    // headers written on them, the credentials.
    trunk_setting!(Restart, outbound_proxy),
    trunk_setting!(Restart, username),
    trunk_setting!(Restart, password_env),
    trunk_setting!(Restart, follow_redirects),
    trunk_setting!(Restart, max_redirects),
    trunk_setting!(Restart, in_dialog_via_proxy),
    // The core counts legs per trunk against the limit it was built with;
    // a reload that changed only the call shell's sum would let the two
    // disagree.
    trunk_setting!(Restart, max_outbound_calls),
    trunk_setting!(Restart, max_cps),
    trunk_setting!(Restart, request_uri_host),
    trunk_setting!(Restart, from_host),
    trunk_setting!(Restart, to_host),
    trunk_setting!(Restart, pai),
    trunk_setting!(Restart, privacy),
    trunk_setting!(Restart, headers),
    // Which header names the carrier's source behind a front proxy is read
    // by the SIP core's route for the trunk, built at start.
    trunk_setting!(Restart, source_header),
    // The core orders its routes once; a priority that reorders the
    // trunks is reported as `trunks` too.
    trunk_setting!(Restart, priority),
    // Each trunk's prober, TLS client, registration, SRTP policy and NAT
    // plan are built at start.
    trunk_setting!(Restart, keepalive_interval),
    trunk_setting!(Restart, tls_ca_file),
    trunk_setting!(Restart, tls_server_name),
    trunk_setting!(Restart, register),
    trunk_setting!(Restart, srtp),
    trunk_setting!(Restart, nat),
];

/// Setting names (TOML key paths) that differ, by when they apply.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// In force for the next call.
    pub live: Vec<&'static str>,
    /// Differ in the file, but the running value stays until a restart.
    pub restart: Vec<&'static str>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.restart.is_empty()
    }

    fn note(&mut self, applies: Applies, key: &'static str) {
        match applies {
            Applies::Live => self.live.push(key),
            Applies::Restart => self.restart.push(key),
        }
    }
}

/// Compares `old` (running) with `new` (just validated).
pub fn changes(old: &Config, new: &Config) -> Changes {
    let mut c = Changes::default();
    for s in SETTINGS {
        if (s.differs)(old, new) {
            c.note(s.applies, s.key);
        }
    }
    // The core knows its trunks by name and by their order (priority):
    // one added, removed, renamed or moved is a different set of routes.
    if old
        .trunks
        .iter()
        .map(|t| &t.name)
        .ne(new.trunks.iter().map(|t| &t.name))
    {
        c.restart.push("trunks");
    }
    for s in TRUNK_SETTINGS {
        let mut pairs = old.trunks.iter().zip(&new.trunks);
        if pairs.next().is_some_and(|(a, b)| (s.differs)(a, b)) {
            c.note(s.applies, s.first);
        }
        if pairs.any(|(a, b)| (s.differs)(a, b)) {
            c.note(s.applies, s.others);
        }
    }
    c
}

/// `new` as new calls get it: every setting `changes` reports as needing a
/// restart keeps its running value, so the call shell and the SIP core,
/// built at start, agree until the restart. Without it a changed `srtp`
/// made the call shell offer SDES (RFC 4568) on a trunk the core still
/// judged as plain RTP, and a new trunk got offers and per-trunk numbers
/// the core had no route for.
///
/// The trunks are the running ones (the core knows them by name and
/// index), each with the live settings of the new trunk of its name.
pub fn keep_running(running: &Config, mut new: Config) -> Config {
    for s in SETTINGS.iter().filter(|s| s.applies == Applies::Restart) {
        (s.copy)(running, &mut new);
    }
    let mut trunks = running.trunks.clone();
    for t in &mut trunks {
        if let Some(n) = new.trunk_named(&t.name) {
            for s in TRUNK_SETTINGS.iter().filter(|s| s.applies == Applies::Live) {
                (s.copy)(n, t);
            }
            // Where the file writes it, for messages.
            t.key.clone_from(&n.key);
        }
    }
    if let Some(first) = trunks.first() {
        new.trunk = first.clone();
    }
    new.trunks = trunks;
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::config::{DEFAULT_PATH, DEFAULT_TOML as EXAMPLE};

    fn load(text: &str) -> Config {
        match Config::from_toml(text, Path::new(DEFAULT_PATH)) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_same_file_changes_nothing() {
        assert!(changes(&load(EXAMPLE), &load(EXAMPLE)).is_empty());
    }

    #[test]
    fn mappings_and_prompts_are_live_ports_and_binds_need_a_restart() {
        let old = load(EXAMPLE);
        let text = EXAMPLE
            .replacen(
                "phone_number = \"+1-555-010-0000\"",
                "phone_number = \"+15550100009\"",
                1,
            )
            .replacen(
                "rtp_ports = \"20000-29999\"",
                "rtp_ports = \"30000-30999\"",
                1,
            )
            .replacen("bind = \"127.0.0.1:8080\"", "bind = \"127.0.0.1:8081\"", 1)
            .replacen("allow_dial = []", "allow_dial = [\"+15550109999\"]", 1);
        assert_ne!(text, EXAMPLE);
        let c = changes(&old, &load(&text));
        assert_eq!(c.live, ["dispatch_mappings", "trunk.allow_dial"]);
        assert_eq!(c.restart, ["media.rtp_ports", "http.bind"]);
    }

    /// Each trunk's resolver, prober and TLS client are built at start: a
    /// changed name, interval or CA on any trunk, or a DNS setting, is
    /// reported as needing a restart, not taken as applied.
    #[test]
    fn per_trunk_dns_keepalive_and_tls_settings_need_a_restart() {
        let two = |backup: &str| {
            EXAMPLE
                .replacen("[trunk]\nname = \"carrier\"", "[[trunks]]\nname = \"carrier\"", 1)
                .replacen(
                    "\n[media]\n",
                    &format!(
                        "\n[[trunks]]\nname = \"backup\"\npriority = 20\nallow = [\"127.0.0.2/32\"]\n{backup}\n\n[media]\n"
                    ),
                    1,
                )
        };
        let old = load(&two("outbound_proxy = \"sip:backup.example.net\""));
        let new = load(&two(
            "outbound_proxy = \"sip:other.example.net\"\nkeepalive_interval = \"30s\"",
        ));
        let c = changes(&old, &new);
        assert_eq!(
            c.restart,
            ["trunks.outbound_proxy", "trunks.keepalive_interval"],
            "{c:?}"
        );
        let first = EXAMPLE
            .replacen(
                "keepalive_interval = \"0s\"",
                "keepalive_interval = \"10s\"",
                1,
            )
            .replacen("timeout = \"3s\"", "timeout = \"2s\"", 1);
        let c = changes(&load(EXAMPLE), &load(&first));
        assert_eq!(
            c.restart,
            ["dns.timeout", "trunk.keepalive_interval"],
            "{c:?}"
        );
    }

    #[test]
    fn a_trunks_registration_srtp_and_nat_need_a_restart() {
        let old = load(EXAMPLE);
        let text = EXAMPLE
            .replacen("srtp = \"off\"", "srtp = \"optional\"", 1)
            .replacen(
                "pai = false",
                "pai = false\nexternal_signaling_address = \"203.0.113.9\"",
                1,
            );
        assert_eq!(
            changes(&old, &load(&text)).restart,
            ["trunk.srtp", "trunk.nat"]
        );
    }

    #[test]
    fn users_and_queue_flows_are_live() {
        let old = load(EXAMPLE);
        let skill = load(&EXAMPLE.replacen(
            "skills = [\"billing\"]\npin = \"2468\"",
            "skills = [\"sales\"]\npin = \"2468\"",
            1,
        ));
        let c = changes(&old, &skill);
        assert_eq!(c.live, ["users"]);
        assert!(c.restart.is_empty(), "{c:?}");
        let ring = load(&EXAMPLE.replacen("ring_timeout = \"20s\"", "ring_timeout = \"30s\"", 1));
        assert_eq!(changes(&old, &ring).live, ["flows"]);
    }

    /// A reload reports a changed webhook as needing a restart rather than
    /// saying nothing while the old one keeps being called.
    #[test]
    fn webhooks_need_a_restart() {
        let old = load(EXAMPLE);
        let hook = load(&format!(
            "{EXAMPLE}\n[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.com/\"\nsecret_env = \"CRM_SECRET\"\n"
        ));
        let c = changes(&old, &hook);
        assert_eq!(c.restart, ["webhooks"]);
        assert!(c.live.is_empty(), "{c:?}");
    }

    /// Names every field of a struct (a pattern without `..`: a field added
    /// to the model and not named here fails to compile) with the key the
    /// table reports it by; "" for what is no setting of its own.
    macro_rules! fields {
        ($value:expr, $ty:ident { $($field:ident => $key:expr),* $(,)? }) => {{
            let $ty { $($field: _),* } = $value;
            vec![$($key),*]
        }};
    }

    /// Every field of the configuration model has its row in the table,
    /// and every row names a field: a setting added to the model is
    /// classified live or restart-only before the build passes, and it can
    /// never be reported without being kept (or the reverse).
    #[test]
    fn every_field_of_the_model_has_one_row_in_the_table() {
        use crate::config::model::{
            DnsConfig, HttpConfig, MediaConfig, NumberingConfig, PresenceConfig, SipConfig,
            StoreConfig,
        };
        let c = load(EXAMPLE);
        let mut keys: Vec<&str> = Vec::new();
        keys.extend(fields!(&c, Config {
            source => "", sip => "", trunk => "", trunks => "", media => "",
            numbering => "", store => "", http => "", dns => "", presence => "",
            prompts => "prompts", users => "users", flows => "flows",
            dispatch_mappings => "dispatch_mappings", webhooks => "webhooks",
        }));
        keys.extend(fields!(&c.sip, SipConfig {
            bind => "sip.bind", advertise => "sip.advertise",
            external_signaling_address => "sip.external_signaling_address",
            external_signaling_port => "sip.external_signaling_port",
            external_media_address => "sip.external_media_address",
            local_networks => "sip.local_networks", max_calls => "sip.max_calls",
            t1 => "sip.t1", t2 => "sip.t2", t4 => "sip.t4", untrusted => "sip.untrusted",
            max_message_bytes => "sip.max_message_bytes",
            max_header_bytes => "sip.max_header_bytes",
            max_tcp_connections => "sip.max_tcp_connections",
            max_untrusted_tcp_connections => "sip.max_untrusted_tcp_connections",
            tcp_idle_timeout => "sip.tcp_idle_timeout",
            max_transactions => "sip.max_transactions", tcp => "sip.tcp",
            user_agent => "sip.user_agent", session_expires => "sip.session_expires",
            min_se => "sip.min_se", retry_after => "sip.retry_after",
            answer_delay => "sip.answer_delay", tls => "sip.tls_bind",
            tls_identity => "sip.tls_certificate",
            tls_handshake_timeout => "sip.tls_handshake_timeout", trace => "sip.trace",
            drain_timeout => "sip.drain_timeout", flood => "sip.flood",
        }));
        keys.extend(fields!(&c.media, MediaConfig {
            bind_address => "media.bind_address", rtp_ports => "media.rtp_ports",
            codecs => "media.codecs", dtmf_payload_type => "media.dtmf_payload_type",
            rtp_timeout => "media.rtp_timeout",
            silence_between_prompts => "media.silence_between_prompts",
            latch_window => "media.latch_window", rtcp_interval => "media.rtcp_interval",
            ptime => "media.ptime", pacing_threads => "media.pacing_threads",
        }));
        keys.extend(fields!(&c.numbering, NumberingConfig {
            default_country_code => "numbering.default_country_code",
        }));
        keys.extend(fields!(&c.store, StoreConfig {
            path => "store.path", synchronous => "store.synchronous",
            postgres => "store.url", cluster => "store.node",
        }));
        keys.extend(fields!(&c.http, HttpConfig {
            bind => "http.bind", token_env => "http.token_env", tokens => "http.tokens",
            header_read_timeout => "http.header_read_timeout",
            max_connections => "http.max_connections",
        }));
        keys.extend(fields!(&c.dns, DnsConfig {
            nameserver => "dns.nameserver", timeout => "dns.timeout",
            start_unresolved => "dns.start_unresolved", min_refresh => "dns.min_refresh",
            max_refresh => "dns.max_refresh",
        }));
        keys.extend(fields!(&c.presence, PresenceConfig {
            expiry_notification_ring => "presence.expiry_notification_ring",
            time_zone => "presence.time_zone",
        }));
        // Each trunk's: `name` is the list itself (`trunks`), `key` only
        // says where the file writes it.
        keys.extend(fields!(&c.trunks[0], TrunkConfig {
            name => "trunks", key => "", outbound_proxy => "trunk.outbound_proxy",
            allow => "trunk.allow", username => "trunk.username",
            password_env => "trunk.password_env",
            max_outbound_calls => "trunk.max_outbound_calls",
            trust_pai => "trunk.trust_pai", number_format => "trunk.number_format",
            allow_dial => "trunk.allow_dial", follow_redirects => "trunk.follow_redirects",
            max_redirects => "trunk.max_redirects", caller_id => "trunk.caller_id",
            caller_id_trust => "trunk.caller_id_trust",
            inband_dtmf => "trunk.inband_dtmf",
            in_dialog_via_proxy => "trunk.in_dialog_via_proxy",
            tls_ca_file => "trunk.tls_ca_file", tls_server_name => "trunk.tls_server_name",
            keepalive_interval => "trunk.keepalive_interval", register => "trunk.register",
            srtp => "trunk.srtp", nat => "trunk.nat", priority => "trunk.priority",
            max_cps => "trunk.max_cps", request_uri_host => "trunk.request_uri_host",
            from_host => "trunk.from_host", to_host => "trunk.to_host", pai => "trunk.pai",
            privacy => "trunk.privacy", headers => "trunk.headers", prefix => "trunk.prefix",
            source_header => "trunk.source_header",
        }));
        keys.retain(|k| !k.is_empty());
        let mut table: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        table.extend(TRUNK_SETTINGS.iter().map(|s| s.first));
        table.push("trunks");
        keys.sort_unstable();
        table.sort_unstable();
        assert_eq!(keys, table, "the model's fields and the table's rows");
        for s in TRUNK_SETTINGS {
            assert_eq!(
                s.first.strip_prefix("trunk."),
                s.others.strip_prefix("trunks.")
            );
        }
    }

    /// The example with every setting changed (not a valid file, only a different
    /// one): what each row is tested against.
    fn everything_else() -> Config {
        use crate::config::model::{
            Advertise, ApiRole, ApiToken, CallerIdMode, CallerIdTrust, Host, NumberFormat,
            PortRange, SipTarget, Synchronous, TlsIdentity, TlsListen, TrunkRegistration,
            Untrusted,
        };
        use crate::config::CountryCode;
        use crate::media::{codec::Codec, srtp::SrtpPolicy};
        use std::time::Duration;
        let later = |d: Duration| d + Duration::from_millis(7);
        fn ip<T: std::str::FromStr>(s: &str) -> T
        where
            T::Err: std::fmt::Display,
        {
            s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
        }
        let mut b = load(&format!(
            "{}\n[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.com/\"\nsecret_env = \"CRM_SECRET\"\n",
            EXAMPLE.replacen("allow_dial = []", "allow_dial = [\"+15550109999\"]", 1)
        ));
        let s = &mut b.sip;
        s.bind = ip("127.0.0.9:5999");
        s.advertise = Advertise::Ip(ip("192.0.2.9"));
        s.external_signaling_address = Some(ip("203.0.113.1"));
        s.external_signaling_port = Some(5999);
        s.external_media_address = Some(ip("203.0.113.2"));
        s.local_networks.push(ip("10.9.0.0/16"));
        s.max_calls += 1;
        s.t1 = later(s.t1);
        s.t2 = later(s.t2);
        s.t4 = later(s.t4);
        s.untrusted = match s.untrusted {
            Untrusted::Drop => Untrusted::Reject,
            Untrusted::Reject => Untrusted::Drop,
        };
        s.max_message_bytes += 1;
        s.max_header_bytes += 1;
        s.max_tcp_connections += 1;
        s.max_untrusted_tcp_connections += 1;
        s.tcp_idle_timeout = later(s.tcp_idle_timeout);
        s.max_transactions += 1;
        s.tcp = !s.tcp;
        s.user_agent.push_str("-other");
        s.session_expires = later(s.session_expires);
        s.min_se = later(s.min_se);
        s.retry_after = later(s.retry_after);
        s.answer_delay = later(s.answer_delay);
        s.tls = Some(TlsListen {
            bind: ip("127.0.0.9:5998"),
        });
        s.tls_identity = Some(TlsIdentity {
            certificate: "/nowhere/cert.pem".into(),
            private_key: "/nowhere/key.pem".into(),
        });
        s.tls_handshake_timeout = later(s.tls_handshake_timeout);
        s.trace.all = !s.trace.all;
        s.drain_timeout = later(s.drain_timeout);
        s.flood.ban = later(s.flood.ban);
        let m = &mut b.media;
        m.bind_address = Some(ip("127.0.0.9"));
        m.rtp_ports = PortRange::new(40000, 40999).unwrap_or_default();
        m.codecs.push(Codec::Pcmu);
        m.dtmf_payload_type = m.dtmf_payload_type.wrapping_add(1);
        m.rtp_timeout = later(m.rtp_timeout);
        m.silence_between_prompts = !m.silence_between_prompts;
        m.latch_window = later(m.latch_window);
        m.rtcp_interval = later(m.rtcp_interval);
        m.ptime = later(m.ptime);
        m.pacing_threads += 1;
        b.numbering.default_country_code =
            CountryCode::parse("44").unwrap_or_else(|e| panic!("{e}"));
        b.presence.expiry_notification_ring = later(b.presence.expiry_notification_ring);
        b.presence.time_zone = chrono_tz::Europe::Paris;
        b.prompts
            .insert("other".into(), "/nowhere/other.wav".into());
        b.users.pop();
        b.flows.pop();
        b.dispatch_mappings.pop();
        b.store.path = "/nowhere/other.db".into();
        b.store.postgres = Some(crate::config::PostgresConfig {
            url: "postgres://tpswitch@db.example.net/tpswitch".into(),
            password_env: None,
            label: "postgres://tpswitch@db.example.net:5432/tpswitch".into(),
        });
        b.store.cluster.node.push_str("-other");
        b.store.synchronous = match b.store.synchronous {
            Synchronous::Full => Synchronous::Normal,
            _ => Synchronous::Full,
        };
        let h = &mut b.http;
        h.bind = ip("127.0.0.9:8999");
        h.token_env.push_str("_OTHER");
        h.tokens.push(ApiToken {
            name: "wallboard".into(),
            role: ApiRole::Viewer,
            token_env: "WALLBOARD_TOKEN".into(),
        });
        h.header_read_timeout = later(h.header_read_timeout);
        h.max_connections += 1;
        let d = &mut b.dns;
        d.nameserver = Some(ip("127.0.0.9:53"));
        d.timeout = later(d.timeout);
        d.start_unresolved = !d.start_unresolved;
        d.min_refresh = later(d.min_refresh);
        d.max_refresh = later(d.max_refresh);
        let t = &mut b.trunks[0];
        t.outbound_proxy = SipTarget {
            host: Host::Name("other.example.net".into()),
            ..t.outbound_proxy.clone()
        };
        t.allow.push(ip("192.0.2.0/24"));
        t.username.push_str("other");
        t.password_env.push_str("_OTHER");
        t.max_outbound_calls += 1;
        t.trust_pai = !t.trust_pai;
        t.number_format = match t.number_format {
            NumberFormat::National => NumberFormat::E164,
            _ => NumberFormat::National,
        };
        t.follow_redirects = !t.follow_redirects;
        t.max_redirects += 1;
        t.caller_id = match t.caller_id {
            CallerIdMode::Customer => CallerIdMode::ContactPoint,
            CallerIdMode::ContactPoint => CallerIdMode::Customer,
        };
        t.caller_id_trust = match t.caller_id_trust {
            CallerIdTrust::PinAlways => CallerIdTrust::Attested,
            _ => CallerIdTrust::PinAlways,
        };
        t.inband_dtmf = !t.inband_dtmf;
        t.in_dialog_via_proxy = !t.in_dialog_via_proxy;
        t.tls_ca_file = Some("/nowhere/ca.pem".into());
        t.tls_server_name = Some("other.example.net".into());
        t.keepalive_interval = Some(Duration::from_secs(17));
        t.register = Some(TrunkRegistration {
            domain: "other.example.net".into(),
            user: "other".into(),
            contact_user: "other".into(),
            expires: Duration::from_secs(600),
            retry: Duration::from_secs(5),
            retry_max: Duration::from_secs(60),
        });
        t.srtp = match t.srtp {
            SrtpPolicy::Required => SrtpPolicy::Off,
            _ => SrtpPolicy::Required,
        };
        t.nat.external_media_address = Some(ip("203.0.113.3"));
        t.priority += 1;
        t.max_cps = Some(2.5);
        t.request_uri_host = Some("ruri.example.net".into());
        t.from_host = Some("from.example.net".into());
        t.to_host = Some("to.example.net".into());
        t.pai = !t.pai;
        t.privacy = Some("id".into());
        t.headers.push(("X-Account".into(), "42".into()));
        t.prefix.push('9');
        t.source_header = Some("X-Other-Source".into());
        b.trunk = b.trunks[0].clone();
        b
    }

    fn listed(c: &Changes, applies: Applies) -> &[&'static str] {
        match applies {
            Applies::Live => &c.live,
            Applies::Restart => &c.restart,
        }
    }

    /// Each row, changed alone, is reported under its own key and when it
    /// says; after `keep_running` a restart-only one is back at its running
    /// value and a live one is taken.
    #[test]
    fn every_row_is_reported_and_each_restart_only_one_kept() {
        let a = load(EXAMPLE);
        let b = everything_else();
        for s in SETTINGS {
            assert!((s.differs)(&a, &b), "{}: the test's change took", s.key);
            let mut one = a.clone();
            (s.copy)(&b, &mut one);
            assert_eq!(listed(&changes(&a, &one), s.applies), [s.key]);
            let kept = keep_running(&a, one);
            let after = changes(&a, &kept);
            match s.applies {
                Applies::Restart => assert!(after.is_empty(), "{}: {after:?}", s.key),
                Applies::Live => assert_eq!(after.live, [s.key]),
            }
        }
    }

    /// The same for each trunk row, on the first trunk and on a second.
    #[test]
    fn every_trunk_row_is_reported_and_each_restart_only_one_kept() {
        let one = load(EXAMPLE);
        let b = everything_else();
        let mut two = one.clone();
        let mut backup = two.trunks[0].clone();
        backup.name = "backup".into();
        two.trunks.push(backup);
        for s in TRUNK_SETTINGS {
            assert!(
                (s.differs)(&one.trunks[0], &b.trunks[0]),
                "{}: the test's change took",
                s.first
            );
            for (a, i, key) in [(&one, 0, s.first), (&two, 1, s.others)] {
                let mut edited = a.clone();
                (s.copy)(&b.trunks[0], &mut edited.trunks[i]);
                edited.trunk = edited.trunks[0].clone();
                assert_eq!(listed(&changes(a, &edited), s.applies), [key]);
                let kept = keep_running(a, edited);
                let after = changes(a, &kept);
                match s.applies {
                    Applies::Restart => {
                        assert!(after.is_empty(), "{key}: {after:?}");
                        assert!(!(s.differs)(&a.trunk, &kept.trunk), "{key}: [trunk]");
                    }
                    Applies::Live => {
                        assert_eq!(after.live, [key]);
                        assert_eq!(
                            (s.differs)(&a.trunk, &kept.trunk),
                            i == 0,
                            "{key}: [trunk] mirrors trunks[0]"
                        );
                    }
                }
            }
        }
    }

    /// A second trunk's live key is reported (it was taken silently while
    /// only the first trunk's was compared).
    #[test]
    fn a_second_trunks_live_key_is_reported_under_trunks() {
        let a = load(EXAMPLE);
        let mut with_backup = a.clone();
        let mut backup = a.trunks[0].clone();
        backup.name = "backup".into();
        with_backup.trunks.push(backup);
        let mut edited = with_backup.clone();
        edited.trunks[1]
            .allow
            .push("192.0.2.0/24".parse().unwrap_or_else(|e| panic!("{e}")));
        let c = changes(&with_backup, &edited);
        assert_eq!(c.live, ["trunks.allow"], "{c:?}");
        assert!(c.restart.is_empty(), "{c:?}");
    }
}
