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

use super::model::{Config, TrunkConfig};

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
}

/// Compares `old` (running) with `new` (just validated).
pub fn changes(old: &Config, new: &Config) -> Changes {
    let mut c = Changes::default();
    let mut live = |key: &'static str, differs: bool| {
        if differs {
            c.live.push(key);
        }
    };
    let (o, n) = (&old.sip, &new.sip);
    let (ot, nt) = (&old.trunk, &new.trunk);
    // The SIP core takes these for its next request (sip::core::Policy).
    live("sip.max_calls", o.max_calls != n.max_calls);
    live(
        "sip.max_transactions",
        o.max_transactions != n.max_transactions,
    );
    live("sip.retry_after", o.retry_after != n.retry_after);
    live("sip.untrusted", o.untrusted != n.untrusted);
    live("trunk.allow", ot.allow != nt.allow);
    live("sip.answer_delay", o.answer_delay != n.answer_delay);
    // Read when the drain starts, from the settings then in force.
    live("sip.drain_timeout", o.drain_timeout != n.drain_timeout);
    live(
        "trunk.max_outbound_calls",
        ot.max_outbound_calls != nt.max_outbound_calls,
    );
    live("trunk.trust_pai", ot.trust_pai != nt.trust_pai);
    live("trunk.number_format", ot.number_format != nt.number_format);
    live("trunk.allow_dial", ot.allow_dial != nt.allow_dial);
    live("trunk.caller_id", ot.caller_id != nt.caller_id);
    live("trunk.inband_dtmf", ot.inband_dtmf != nt.inband_dtmf);
    let (om, nm) = (&old.media, &new.media);
    live("media.rtp_timeout", om.rtp_timeout != nm.rtp_timeout);
    live(
        "media.silence_between_prompts",
        om.silence_between_prompts != nm.silence_between_prompts,
    );
    live("media.latch_window", om.latch_window != nm.latch_window);
    live(
        "numbering.default_country_code",
        old.numbering.default_country_code != new.numbering.default_country_code,
    );
    live(
        "presence.expiry_notification_ring",
        old.presence.expiry_notification_ring != new.presence.expiry_notification_ring,
    );
    live("prompts", old.prompts != new.prompts);
    live("users", old.users != new.users);
    // The queue task hands new queue rules and agent profiles to its
    // engine (flows::queue::Event::Reconfigure).
    live("flows", old.flows != new.flows);
    live(
        "dispatch_mappings",
        old.dispatch_mappings != new.dispatch_mappings,
    );

    let mut restart = |key: &'static str, differs: bool| {
        if differs {
            c.restart.push(key);
        }
    };
    restart("sip.bind", o.bind != n.bind);
    restart("sip.advertise", o.advertise != n.advertise);
    restart("sip.tcp", o.tcp != n.tcp);
    restart("sip.t1", o.t1 != n.t1);
    restart("sip.t2", o.t2 != n.t2);
    restart("sip.t4", o.t4 != n.t4);
    restart(
        "sip.max_message_bytes",
        o.max_message_bytes != n.max_message_bytes,
    );
    restart(
        "sip.max_header_bytes",
        o.max_header_bytes != n.max_header_bytes,
    );
    restart(
        "sip.max_tcp_connections",
        o.max_tcp_connections != n.max_tcp_connections,
    );
    restart(
        "sip.max_untrusted_tcp_connections",
        o.max_untrusted_tcp_connections != n.max_untrusted_tcp_connections,
    );
    restart(
        "sip.tcp_idle_timeout",
        o.tcp_idle_timeout != n.tcp_idle_timeout,
    );
    restart("sip.user_agent", o.user_agent != n.user_agent);
    restart(
        "sip.session_expires",
        o.session_expires != n.session_expires,
    );
    restart("sip.min_se", o.min_se != n.min_se);
    restart(
        "trunk.outbound_proxy",
        ot.outbound_proxy != nt.outbound_proxy,
    );
    restart("trunk.username", ot.username != nt.username);
    restart("trunk.password_env", ot.password_env != nt.password_env);
    restart(
        "trunk.follow_redirects",
        ot.follow_redirects != nt.follow_redirects,
    );
    restart("trunk.max_redirects", ot.max_redirects != nt.max_redirects);
    // Built into the SIP core per trunk at start: each trunk's
    // registration, the SRTP policy its offers and answers are judged by,
    // and its NAT plan. Any trunk's change is named.
    // The core knows its trunks by name and by their order (priority):
    // one added, removed, renamed or moved is a different set of routes.
    restart("trunks", any_trunk(old, new, |t| &t.name));
    restart("trunks.register", any_trunk(old, new, |t| &t.register));
    restart("trunks.srtp", any_trunk(old, new, |t| &t.srtp));
    restart("trunks.nat", any_trunk(old, new, |t| &t.nat));
    restart("media.rtp_ports", om.rtp_ports != nm.rtp_ports);
    restart("media.codecs", om.codecs != nm.codecs);
    restart(
        "media.dtmf_payload_type",
        om.dtmf_payload_type != nm.dtmf_payload_type,
    );
    restart("media.rtcp_interval", om.rtcp_interval != nm.rtcp_interval);
    restart("media.ptime", om.ptime != nm.ptime);
    restart(
        "media.pacing_threads",
        om.pacing_threads != nm.pacing_threads,
    );
    restart("store.path", old.store.path != new.store.path);
    restart(
        "store.synchronous",
        old.store.synchronous != new.store.synchronous,
    );
    restart("store.url", old.store.postgres != new.store.postgres);
    restart("http.bind", old.http.bind != new.http.bind);
    restart("http.token_env", old.http.token_env != new.http.token_env);
    restart("http.tokens", old.http.tokens != new.http.tokens);
    restart(
        "http.header_read_timeout",
        old.http.header_read_timeout != new.http.header_read_timeout,
    );
    restart(
        "http.max_connections",
        old.http.max_connections != new.http.max_connections,
    );
    // One delivery task per webhook, started with its secret at start-up.
    restart("webhooks", old.webhooks != new.webhooks);
    // Built once per trunk at start: its resolver and refresh (RFC 3263),
    // its prober, its TLS client. `trunk.` is the first trunk, `trunks.`
    // any other.
    let others = |differs: fn(&TrunkConfig, &TrunkConfig) -> bool| {
        old.trunks
            .iter()
            .zip(&new.trunks)
            .skip(1)
            .any(|(a, b)| differs(a, b))
    };
    restart(
        "trunk.keepalive_interval",
        ot.keepalive_interval != nt.keepalive_interval,
    );
    restart("trunk.tls_ca_file", ot.tls_ca_file != nt.tls_ca_file);
    restart(
        "trunk.tls_server_name",
        ot.tls_server_name != nt.tls_server_name,
    );
    restart(
        "trunks.outbound_proxy",
        others(|a, b| a.outbound_proxy != b.outbound_proxy),
    );
    restart(
        "trunks.keepalive_interval",
        others(|a, b| a.keepalive_interval != b.keepalive_interval),
    );
    restart(
        "trunks.tls_ca_file",
        others(|a, b| a.tls_ca_file != b.tls_ca_file),
    );
    restart(
        "trunks.tls_server_name",
        others(|a, b| a.tls_server_name != b.tls_server_name),
    );
    let (od, nd) = (&old.dns, &new.dns);
    restart("dns.nameserver", od.nameserver != nd.nameserver);
    restart("dns.timeout", od.timeout != nd.timeout);
    restart(
        "dns.start_unresolved",
        od.start_unresolved != nd.start_unresolved,
    );
    restart("dns.min_refresh", od.min_refresh != nd.min_refresh);
    restart("dns.max_refresh", od.max_refresh != nd.max_refresh);
    c
}

/// Whether `key` of any trunk differs (or the trunks themselves do).
fn any_trunk<T: PartialEq>(old: &Config, new: &Config, key: fn(&TrunkConfig) -> &T) -> bool {
    old.trunks.iter().map(key).ne(new.trunks.iter().map(key))
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
        assert_eq!(c.live, ["trunk.allow_dial", "dispatch_mappings"]);
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
            ["trunk.keepalive_interval", "dns.timeout"],
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
            ["trunks.srtp", "trunks.nat"]
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
}
