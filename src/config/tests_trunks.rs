//! `[[trunks]]`: several trunks, their per-trunk settings, and the exact
//! `trunks[i].key` of every mistake.

use super::tests_support::*;

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

/// REGISTER runs for the first trunk (the lowest priority) only: on
/// another trunk it would be silently ignored, so it is refused, naming
/// that trunk's key.
#[test]
fn register_is_refused_beyond_the_first_trunk() {
    let backup = "outbound_proxy = \"sip:127.0.0.1:5090\"";
    let to = "outbound_proxy = \"sip:127.0.0.2:5090\"\nusername = \"acct\"\nregister = true";
    let path = "trunks[0].register";
    let text = with_trunks(&edit(TWO, backup, to));
    let p = at(&text, path);
    assert!(
        p.problem.contains("only the first trunk registers"),
        "{path}: {}",
        p.problem
    );
    assert!(p.fix.contains("lowest priority"), "{path}: {}", p.fix);
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
