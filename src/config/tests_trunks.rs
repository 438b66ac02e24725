//! `[[trunks]]`: several trunks, their per-trunk settings, and the exact
//! `trunks[i].key` of every mistake.

use super::tests_support::*;
use crate::media::srtp::SrtpPolicy;

const ONE: &str = "[trunk]\nname = \"carrier\"\noutbound_proxy = \"sip:127.0.0.1:5080\"   # where outbound INVITEs (to agents) are sent\nallow = [\"127.0.0.1/32\", \"::1/128\"]     # sources allowed to send requests to us\nusername = \"\"                           # digest credentials, used only when challenged\npassword_env = \"TPSWITCH_TRUNK_PASSWORD\"\nmax_outbound_calls = 100\ntrust_pai = true                        # take the caller's number from P-Asserted-Identity\nnumber_format = \"+E164\"                 # how agents' numbers are dialled: \"+E164\", \"E164\" or \"national\"\nallow_dial = []                         # extra patterns tpswitch may dial besides users' PSTN numbers\n";

const TWO: &str = r#"[[trunks]]
name = "backup"
priority = 20
outbound_proxy = "sip:127.0.0.1:5090"
allow = ["127.0.0.2/32"]
number_format = "E164"
prefix = "1010"
trust_pai = false

[[trunks]]
name = "twilio"
priority = 10
outbound_proxy = "sip:127.0.0.1:5080"
allow = ["127.0.0.1/32"]
max_calls = 30
max_cps = 1
request_uri_host = "example.pstn.twilio.com"
from_host = "tpswitch.example.com"
to_host = "example.pstn.twilio.com"
pai = true
privacy = "id"
headers = { "X-Carrier-Token" = "abc123" }
allow_dial = ["+15550109999"]
"#;

fn with_trunks(trunks: &str) -> String {
    edit(EXAMPLE, ONE, trunks)
}

#[test]
fn several_trunks_load_in_priority_order_with_their_settings() {
    let c = load(&with_trunks(TWO)).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = c.trunks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["twilio", "backup"]);
    assert_eq!(c.trunk.name, "twilio");
    let t = &c.trunks[0];
    assert_eq!(t.key, "trunks[1]");
    assert_eq!(t.max_outbound_calls, 30);
    assert_eq!(t.max_cps, Some(1.0));
    assert_eq!(
        t.request_uri_host.as_deref(),
        Some("example.pstn.twilio.com")
    );
    assert_eq!(t.from_host.as_deref(), Some("tpswitch.example.com"));
    assert!(t.pai);
    assert_eq!(t.privacy.as_deref(), Some("id"));
    assert_eq!(t.headers, vec![("X-Carrier-Token".into(), "abc123".into())]);
    // Each trunk writes numbers its own way.
    let cc = &c.numbering.default_country_code;
    assert_eq!(
        c.trunks[1].dial_string(&n("+12345678910"), cc),
        "101012345678910"
    );
    assert_eq!(
        c.trunks[0].dial_string(&n("+12345678910"), cc),
        "+12345678910"
    );
    // allow_dial of any trunk makes a number diallable.
    assert!(c.may_dial(&n("+15550109999")));
}

#[test]
fn the_one_trunk_spelling_still_loads_as_one_trunk() {
    let c = load(EXAMPLE).unwrap();
    assert_eq!(c.trunks.len(), 1);
    assert_eq!(c.trunks[0].name, "carrier");
    assert_eq!(c.trunks[0].key, "trunk");
}

#[test]
fn trunk_names_are_unique_and_required() {
    let text = with_trunks(&TWO.replace("name = \"backup\"", "name = \"twilio\""));
    let p = at(&text, "trunks[1].name");
    assert!(
        p.problem.contains("also the name of trunks[0]"),
        "{}",
        p.problem
    );
    let text = with_trunks(&TWO.replace("name = \"backup\"\n", ""));
    at(&text, "trunks[0].name");
}

#[test]
fn trunk_and_trunks_together_are_refused() {
    let text = format!("{EXAMPLE}\n{TWO}");
    let p = at(&text, "trunks");
    assert!(p.fix.contains("[[trunks]]"), "{}", p.fix);
}

#[test]
fn per_trunk_mistakes_name_the_trunk_and_key() {
    for (from, to, path) in [
        ("max_cps = 1", "max_cps = 0", "trunks[1].max_cps"),
        ("max_calls = 30", "max_calls = 0", "trunks[1].max_calls"),
        (
            "request_uri_host = \"example.pstn.twilio.com\"",
            "request_uri_host = \"bad host\"",
            "trunks[1].request_uri_host",
        ),
        ("privacy = \"id\"", "privacy = \"secret\"", "trunks[1].privacy"),
        ("prefix = \"1010\"", "prefix = \"10a\"", "trunks[0].prefix"),
        (
            "headers = { \"X-Carrier-Token\" = \"abc123\" }",
            "headers = { \"X-Carrier-Token\" = \"abc\\r\\nVia: evil\" }",
            "trunks[1].headers.X-Carrier-Token",
        ),
        (
            "headers = { \"X-Carrier-Token\" = \"abc123\" }",
            "headers = { \"Bad Name\" = \"abc\" }",
            "trunks[1].headers.Bad Name",
        ),
        (
            "headers = { \"X-Carrier-Token\" = \"abc123\" }",
            "headers = { \"Via\" = \"SIP/2.0/UDP evil\" }",
            "trunks[1].headers.Via",
        ),
        (
            "outbound_proxy = \"sip:127.0.0.1:5090\"",
            "outbound_proxy = \"sip:127.0.0.1:5090;transport=tcp\"\nmax_outbound_calls = 3\nmax_calls = 3",
            "trunks[0].max_outbound_calls",
        ),
    ] {
        let text = with_trunks(&edit(TWO, from, to));
        let p = at(&text, path);
        assert!(!p.fix.is_empty(), "{path}");
    }
}

/// Each trunk has its own outbound connection, so two TCP trunks are fine.
#[test]
fn two_trunks_may_use_tcp() {
    let text = with_trunks(
        &TWO.replace("sip:127.0.0.1:5090\"", "sip:127.0.0.1:5090;transport=tcp\"")
            .replace("sip:127.0.0.1:5080\"", "sip:127.0.0.1:5080;transport=tcp\""),
    );
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(c
        .trunks
        .iter()
        .all(|t| t.outbound_proxy.transport == Transport::Tcp));
}

#[test]
fn a_trunk_without_its_password_is_named_by_its_key() {
    let text = with_trunks(&TWO.replace(
        "name = \"backup\"",
        "name = \"backup\"\nusername = \"acct\"\npassword_env = \"TPSWITCH_BACKUP_PASSWORD\"",
    ));
    let c = load(&text).unwrap();
    let e = c.check_environment(|_| None).unwrap_err();
    assert_eq!(e.problems()[0].path, "trunks[0].password_env");
}

#[test]
fn the_first_trunk_may_be_a_name_with_keepalive() {
    let text = with_trunks(&edit(
        TWO,
        "outbound_proxy = \"sip:127.0.0.1:5080\"",
        "outbound_proxy = \"sip:sbc.example.com\"\nkeepalive_interval = \"30s\"",
    ));
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.trunks[0].name, "twilio");
    assert!(c.trunks[0].keepalive_interval.is_some());
}

/// RFC 3263 names, the OPTIONS keepalive and TLS are per trunk: the
/// second trunk may have each, and TCP and TLS trunks each get their own
/// connection.
#[test]
fn every_trunk_may_be_a_name_with_keepalive_and_tls() {
    let text = with_trunks(
        &TWO.replace(
            "outbound_proxy = \"sip:127.0.0.1:5090\"",
            "outbound_proxy = \"sips:backup.example.net\"\nkeepalive_interval = \"20s\"\ntls_server_name = \"edge.example.net\"",
        )
        .replace("sip:127.0.0.1:5080\"", "sip:sbc.example.com;transport=tcp\""),
    );
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let b = &c.trunks[1];
    assert_eq!(b.outbound_proxy.transport, Transport::Tls);
    assert_eq!(
        b.keepalive_interval,
        Some(std::time::Duration::from_secs(20))
    );
    assert_eq!(b.tls_server_name.as_deref(), Some("edge.example.net"));
    // sips: names no transport: RFC 3263 §4.1 asks NAPTR (SIPS+D2T only).
    assert!(!b.outbound_proxy.transport_given && !b.outbound_proxy.port_given);
}

/// REGISTER and SRTP are per trunk: the backup trunk may register and
/// require SRTP while the first does neither.
#[test]
fn every_trunk_may_register_and_have_its_own_srtp() {
    let backup = "outbound_proxy = \"sip:127.0.0.1:5090\"";
    let text = with_trunks(&edit(
        &edit(
            TWO,
            backup,
            "outbound_proxy = \"sip:127.0.0.2:5090\"\nusername = \"acct2\"\nregister = true\nsrtp = \"required\"",
        ),
        "max_calls = 30",
        "max_calls = 30\nusername = \"acct1\"\nregister = true",
    ));
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let regs: Vec<(&str, &str)> = c
        .trunks
        .iter()
        .filter_map(|t| {
            t.register
                .as_ref()
                .map(|r| (t.name.as_str(), r.contact_user.as_str()))
        })
        .collect();
    assert_eq!(regs, [("twilio", "acct1"), ("backup", "acct2")]);
    let srtp: Vec<SrtpPolicy> = c.trunks.iter().map(|t| t.srtp).collect();
    assert_eq!(srtp, [SrtpPolicy::Off, SrtpPolicy::Required]);
}

#[test]
fn two_registrations_with_one_contact_user_are_refused() {
    let text = with_trunks(&edit(
        &edit(
            TWO,
            "outbound_proxy = \"sip:127.0.0.1:5090\"",
            "outbound_proxy = \"sip:127.0.0.2:5090\"\nusername = \"acct\"\nregister = true",
        ),
        "max_calls = 30",
        "max_calls = 30\nusername = \"acct\"\nregister = true",
    ));
    let p = at(&text, "trunks[1].register_contact_user");
    assert!(p.problem.contains("trunks[0]"), "{}", p.problem);
    assert!(p.fix.contains("its own register_contact_user"), "{}", p.fix);
}

#[test]
fn a_trunk_has_its_own_nat_keys() {
    let text = with_trunks(&edit(
        TWO,
        "prefix = \"1010\"",
        "prefix = \"1010\"\nexternal_signaling_address = \"203.0.113.7\"\nexternal_signaling_port = 5070\nexternal_media_address = \"203.0.113.8\"\nlocal_networks = [\"10.0.0.0/8\"]",
    ));
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let backup = &c.trunks[1].nat;
    assert_eq!(
        backup.external_signaling_address,
        Some("203.0.113.7".parse().unwrap())
    );
    assert_eq!(backup.external_signaling_port, Some(5070));
    assert_eq!(
        backup.external_media_address,
        Some("203.0.113.8".parse().unwrap())
    );
    assert_eq!(
        backup.local_networks,
        Some(vec!["10.0.0.0/8".parse().unwrap()])
    );
    assert_eq!(
        c.trunks[0].nat,
        TrunkNat::default(),
        "twilio has none of its own"
    );
}

#[test]
fn a_trunk_nat_mistake_names_the_trunk_key() {
    for (keys, path) in [
        (
            "external_media_address = \"203.0.113.8\"",
            "trunks[0].external_signaling_address",
        ),
        (
            "external_signaling_address = \"0.0.0.0\"",
            "trunks[0].external_signaling_address",
        ),
        ("local_networks = [\"ten\"]", "trunks[0].local_networks[0]"),
    ] {
        let text = with_trunks(&edit(
            TWO,
            "prefix = \"1010\"",
            &format!("prefix = \"1010\"\n{keys}"),
        ));
        let p = at(&text, path);
        assert!(!p.fix.is_empty(), "{path}");
    }
}

/// SDES keys (RFC 4568) ride in the SDP: a trunk with SRTP but without TLS
/// to its proxy is named at start, one with TLS or without SRTP is not.
#[test]
fn srtp_without_tls_is_named_as_keys_in_clear() {
    let mut t = load(EXAMPLE).unwrap().trunks[0].clone();
    assert_eq!(t.srtp, SrtpPolicy::Off);
    assert!(!t.srtp_keys_in_clear());
    for policy in [SrtpPolicy::Optional, SrtpPolicy::Required] {
        t.srtp = policy;
        t.outbound_proxy.transport = Transport::Udp;
        assert!(t.srtp_keys_in_clear(), "{policy:?} over UDP");
        t.outbound_proxy.transport = Transport::Tcp;
        assert!(t.srtp_keys_in_clear(), "{policy:?} over TCP");
        t.outbound_proxy.transport = Transport::Tls;
        assert!(!t.srtp_keys_in_clear(), "{policy:?} over TLS");
    }
}

/// `source_header`: the header a front proxy writes with the carrier's
/// address, per trunk; unset by default, and refused when it is not a
/// header name or is one tpswitch reads or writes itself.
#[test]
fn a_trunk_names_the_header_its_front_proxy_writes_the_carriers_source_in() {
    let c = load(&with_trunks(&edit(
        TWO,
        "prefix = \"1010\"",
        "prefix = \"1010\"\nsource_header = \"X-Tpswitch-Source\"",
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.trunks[1].name, "backup");
    assert_eq!(
        c.trunks[1].source_header.as_deref(),
        Some("X-Tpswitch-Source")
    );
    assert_eq!(c.trunks[0].source_header, None);
    assert_eq!(load(EXAMPLE).unwrap().trunk.source_header, None);
    for bad in ["X Source", "Via", "contact", "X-Source:"] {
        let text = with_trunks(&edit(
            TWO,
            "prefix = \"1010\"",
            &format!("prefix = \"1010\"\nsource_header = \"{bad}\""),
        ));
        let p = at(&text, "trunks[0].source_header");
        assert!(p.fix.contains("X-Tpswitch-Source"), "{bad}: {}", p.fix);
    }
}

#[test]
fn caller_id_trust_is_per_trunk_and_a_wrong_value_names_the_choices() {
    use crate::config::CallerIdTrust;
    // The legacy `[trunk]` in the example says "any", the default.
    let c = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.trunk.caller_id_trust, CallerIdTrust::Any);
    let text = with_trunks(&edit(
        TWO,
        "trust_pai = false",
        "trust_pai = false\ncaller_id_trust = \"pin-always\"",
    ));
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let trust = |name: &str| c.trunk_named(name).unwrap().caller_id_trust;
    assert_eq!(trust("backup"), CallerIdTrust::PinAlways);
    // Unset on a trunk of its own: "any" (the example's line went to the
    // last `[[trunks]]`, twilio, with the rest of `[trunk]`'s keys).
    assert_eq!(trust("twilio"), CallerIdTrust::Any);
    let text = with_trunks(&edit(
        TWO,
        "trust_pai = false",
        "trust_pai = false\ncaller_id_trust = \"verified\"",
    ));
    let p = at(&text, "trunks[0].caller_id_trust");
    assert!(p.problem.contains("\"verified\""), "{p:?}");
    assert_eq!(p.fix, "use \"any\" or \"attested\" or \"pin-always\"");
}
