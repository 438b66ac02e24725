//! Loading tests: the shipped files load, and each kind of mistake gives the
//! exact key path and fix.

use super::*;
use crate::media::codec::Codec;
use tests_support::*;

/// What the other test files of this module share.
pub(super) mod tests_support {
    pub use super::super::*;
    use std::path::Path;

    pub const EXAMPLE: &str = include_str!("testdata/config.example.toml");
    pub const FILE: &str = "/etc/tpswitch/tpswitch.toml";

    pub fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new(FILE))
    }

    pub fn problems(text: &str) -> Vec<Problem> {
        match load(text) {
            Ok(_) => panic!("expected problems"),
            Err(e) => e.problems().to_vec(),
        }
    }

    /// The one problem at `path`.
    pub fn at(text: &str, path: &str) -> Problem {
        let all = problems(text);
        let found: Vec<&Problem> = all.iter().filter(|p| p.path == path).collect();
        assert_eq!(found.len(), 1, "problems at {path}: {all:#?}");
        found[0].clone()
    }

    pub fn n(s: &str) -> E164 {
        E164::parse(s, &CountryCode::nanp()).unwrap()
    }

    pub fn edit(text: &str, from: &str, to: &str) -> String {
        assert!(text.contains(from), "{from:?} is not in the config");
        text.replacen(from, to, 1)
    }
}

#[path = "tests_trunks.rs"]
mod trunks;
use std::path::Path;
use std::time::Duration;

#[test]
fn embedded_default_loads() {
    let c = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sip.bind, "0.0.0.0:5060".parse().unwrap());
    assert_eq!(c.sip.advertise, Advertise::Auto);
    assert_eq!(c.sip.t1, Duration::from_millis(500));
    assert_eq!(c.sip.session_expires, Duration::from_secs(1800));
    assert_eq!(c.sip.untrusted, Untrusted::Reject);
    assert_eq!(c.trunk.outbound_proxy.port, 5080);
    assert_eq!(c.trunk.outbound_proxy.transport, Transport::Udp);
    assert_eq!(c.trunk.caller_id, CallerIdMode::ContactPoint);
    assert_eq!(c.media.rtp_ports.start(), 20000);
    assert_eq!(c.media.rtp_ports.pairs(), 5000);
    assert_eq!(c.media.codecs, vec![Codec::Pcmu, Codec::Pcma]);
    assert_eq!(c.store.synchronous, Synchronous::Full);
    assert_eq!(c.users.len(), 3);
    // mgarcia and akim share a desk line, told apart by ext.
    assert_eq!(c.users_with_pstn(&n("+12345678000")).len(), 2);
    assert_eq!(c.users_with_pstn(&n("2345678910"))[0].id, "jsmith");
    assert!(c.user("mgarcia").is_some_and(|u| u.has_skill("billing")));
    let m = c.mapping_for(&n("+15550100001")).unwrap();
    assert_eq!(m.flow, "Billing");
    let Some(Flow::Queue(q)) = c.flow(&m.flow) else {
        panic!("Billing is a queue")
    };
    assert_eq!(q.accept, Accept::Digit('1'));
    assert_eq!(q.prompts.unavailable.name, "queue_unavailable");
    assert_eq!(q.no_agents, NoAgents::Immediate);
    let Some(Flow::TimedPresence(tp)) = c.flow("Timed Presence") else {
        panic!()
    };
    assert_eq!(tp.presets, vec![8, 24, 48, 72]);
    assert_eq!(tp.prompts.wrong_pin.name, "wrong_pin");
}

#[test]
fn default_relative_paths_resolve_against_the_file() {
    let c = Config::embedded_default().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(c.store.path, root.join("data/tpswitch.db"));
    assert_eq!(
        c.prompt_path("welcome"),
        Some(root.join("prompts/welcome.wav").as_path())
    );
    let Some(Flow::TimedPresence(tp)) = c.flow("Timed Presence") else {
        panic!()
    };
    assert_eq!(tp.prompts.welcome.path, root.join("prompts/welcome.wav"));
    assert_eq!(c.source, root.join("config/tpswitch.toml"));
}

#[test]
fn example_contract_loads() {
    let c = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.store.path, Path::new("/etc/tpswitch/data/tpswitch.db"));
    assert_eq!(
        c.prompts["online"],
        Path::new("/etc/tpswitch/prompts/online.wav")
    );
    assert_eq!(c.users[0].pstn_numbers().next(), Some(&n("+12345678910")));
    assert_eq!(c.trunk.allow.len(), 2);
    assert_eq!(c.trunk.number_format, NumberFormat::PlusE164);
    assert_eq!(c.media.dtmf_payload_type, 101);
    assert_eq!(
        c.mapping_for(&n("+15550100000")).map(|m| m.flow.as_str()),
        Some("Timed Presence")
    );
    // Defaults of the extension keys apply.
    assert_eq!(c.sip.retry_after, Duration::from_secs(5));
    assert_eq!(c.media.ptime, Duration::from_millis(20));
    assert_eq!(c.media.pacing_threads, 1);
    let Some(Flow::TimedPresence(tp)) = c.flow("Timed Presence") else {
        panic!()
    };
    assert_eq!(tp.ext_timeout, Duration::from_secs(5));
    assert_eq!(tp.pin_attempts, 3);
}

#[test]
fn load_from_disk_resolves_relative_to_the_file() {
    let dir = std::env::temp_dir().join(format!("tpswitch-config-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    let file = dir.join("etc/tp.toml");
    std::fs::write(&file, EXAMPLE.replace("data/tpswitch.db", "../var/tp.db")).unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(c.store.path, dir.join("var/tp.db"));
    assert_eq!(c.prompts["welcome"], dir.join("etc/prompts/welcome.wav"));
    std::fs::remove_dir_all(&dir).unwrap();
    let err = Config::load(&file).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn bad_e164_in_extension() {
    let text = EXAMPLE.replace("\"+1-234-567-8910\"", "\"+1-234\"");
    let p = at(&text, "users[0].extensions[0].value");
    assert_eq!(
        p.problem,
        "\"+1-234\" is not an E.164 number (too few digits)"
    );
    assert_eq!(
        p.fix,
        "write it in international form such as \"+12345678910\""
    );
    let line = text
        .lines()
        .position(|l| l.contains("value = \"+1-234\""))
        .unwrap()
        + 1;
    assert_eq!(p.line, Some(line));
    let err = load(&text).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{FILE}: users[0].extensions[0].value: \"+1-234\" is not an E.164 number (too few digits) (line {line}); write it in international form such as \"+12345678910\"")
    );
}

#[test]
fn unknown_flow_in_mapping() {
    let text = EXAMPLE.replace("flow = \"Billing\"", "flow = \"Biling\"");
    let p = at(&text, "dispatch_mappings[1].flow");
    assert_eq!(p.problem, "\"Biling\" is not the name of any flow");
    assert_eq!(
        p.fix,
        "use the name of one of the [[flows]]: \"Timed Presence\", \"Billing\""
    );
}

#[test]
fn duplicate_mapping_number() {
    let text = EXAMPLE.replace("\"+1-555-010-0001\"", "\"+1 555 010 0000\"");
    let p = at(&text, "dispatch_mappings[1].phone_number");
    assert_eq!(
        p.problem,
        "+15550100000 is already the number of dispatch_mappings[0]"
    );
    assert_eq!(
        p.fix,
        "map each phone number to one flow only; remove or change one of them"
    );
}

#[test]
fn odd_rtp_port_range() {
    let text = EXAMPLE.replace("\"20000-29999\"", "\"20001-29999\"");
    let p = at(&text, "media.rtp_ports");
    assert_eq!(p.problem, "\"20001-29999\" starts on an odd port");
    assert_eq!(
        p.fix,
        "start on an even port, such as \"20000-29999\": RTP uses the even port and RTCP the odd one above it (RFC 3550 §11)"
    );
    let p = at(
        &EXAMPLE.replace("\"20000-29999\"", "\"30000-20000\""),
        "media.rtp_ports",
    );
    assert_eq!(p.problem, "\"30000-20000\" does not go upwards");
}

#[test]
fn unknown_key_names_path_line_and_valid_keys() {
    let text = EXAMPLE.replace("  ext = \"\"", "  ext = \"\"\n  extension = \"12\"");
    let line = text
        .lines()
        .position(|l| l.contains("extension = \"12\""))
        .unwrap()
        + 1;
    let p = at(&text, "users[0].extensions[0].extension");
    assert_eq!(p.problem, "unknown key");
    assert_eq!(p.line, Some(line));
    assert_eq!(
        p.fix,
        "remove it or correct the spelling; valid keys here: type, value, ext, description"
    );
    assert!(load(&text)
        .unwrap_err()
        .to_string()
        .contains(&format!("unknown key (line {line}); remove it")));

    // A queue key on a timed-presence flow is unknown there.
    let text = EXAMPLE.replace(
        "max_attempts = 3",
        "max_attempts = 3\nstrategy = \"round-robin\"",
    );
    assert_eq!(at(&text, "flows[0].strategy").problem, "unknown key");

    let p = at(&format!("{EXAMPLE}\n[sipp]\nbind = \"x\"\n"), "sipp");
    assert_eq!(p.problem, "unknown section");
}

#[test]
fn bad_duration() {
    let text = EXAMPLE.replace("digit_timeout = \"5s\"", "digit_timeout = \"5 seconds\"");
    let p = at(&text, "flows[0].digit_timeout");
    assert_eq!(p.problem, "\"5 seconds\" is not a whole number with a unit");
    assert_eq!(
        p.fix,
        "write a whole number with a unit: ms, s, m or h, such as \"500ms\", \"5s\", \"20m\", \"8h\" or \"1h30m\""
    );
    let p = at(
        &EXAMPLE.replace("rtp_timeout = \"30s\"", "rtp_timeout = \"30\""),
        "media.rtp_timeout",
    );
    assert_eq!(p.problem, "\"30\" has no unit");
}

#[test]
fn pacing_threads_range() {
    let with = |n: &str| EXAMPLE.replace("[media]\n", &format!("[media]\npacing_threads = {n}\n"));
    assert_eq!(load(&with("4")).unwrap().media.pacing_threads, 4);
    for bad in ["0", "65", "-1"] {
        let p = at(&with(bad), "media.pacing_threads");
        assert_eq!(p.problem, format!("{bad} is out of range"));
        assert_eq!(p.fix, "use a whole number from 1 to 64");
    }
}

#[test]
fn codec_names_map_to_the_one_codec_type() {
    let with = |list: &str| {
        let old = "codecs = [\"PCMU\", \"PCMA\"]";
        assert!(EXAMPLE.contains(old), "the example no longer says {old}");
        EXAMPLE.replace(old, &format!("codecs = {list}"))
    };
    // Case-insensitive like SDP encoding names (RFC 4566 §6), order kept.
    let c = load(&with("[\"pcma\", \"Pcmu\"]")).unwrap();
    assert_eq!(c.media.codecs, vec![Codec::Pcma, Codec::Pcmu]);
    let p = at(&with("[\"PCMU\", \"opus\"]"), "media.codecs[1]");
    assert_eq!(p.problem, "\"opus\" is not a supported codec");
    assert_eq!(p.fix, "use \"PCMU\" or \"PCMA\" (G.711)");
    let p = at(&with("[\"PCMA\", \"pcma\"]"), "media.codecs[1]");
    assert_eq!(p.problem, "\"pcma\" is listed twice");
    let p = at(&with("[]"), "media.codecs");
    assert_eq!(p.problem, "is empty");
}

#[test]
fn toml_syntax_error_names_line() {
    let text = EXAMPLE.replace("max_calls = 2000", "max_calls = = 2000");
    let line = text
        .lines()
        .position(|l| l.contains("max_calls = ="))
        .unwrap()
        + 1;
    let all = problems(&text);
    assert!(!all.is_empty());
    assert!(
        all[0].path.starts_with(&format!("line {line}, column ")),
        "{all:?}"
    );
    assert_eq!(all[0].line, Some(line));
    assert!(all[0].problem.starts_with("TOML syntax error: "), "{all:?}");
    assert_eq!(
        all[0].fix,
        "fix the TOML at that spot (strings need double quotes, tables [name], lists [a, b])"
    );
}

#[test]
fn missing_prompt_reference() {
    let text = EXAMPLE.replace("hold = \"hold_music\"", "hold = \"hold_musak\"");
    let p = at(&text, "flows[1].prompts.hold");
    assert_eq!(p.problem, "prompt \"hold_musak\" is not in [prompts]");
    assert!(p.fix.starts_with("add hold_musak = \"prompts/hold_musak.wav\" under [prompts], or name one of: agent_whisper, caller_id_refused, custom_hours,"), "{}", p.fix);
}

#[test]
fn missing_default_prompt_is_reported_as_default() {
    let bare = EXAMPLE
        .replace("  welcome = \"welcome\"\n", "")
        .replace("welcome = \"prompts/welcome.wav\"\n", "");
    let p = at(&bare, "flows[0].prompts.welcome");
    assert_eq!(
        p.problem,
        "the default prompt \"welcome\" is not in [prompts]"
    );
}

#[test]
fn later_prompts_default_next_to_the_file() {
    // The contract's [prompts] lacks enter_pin etc.; they default to
    // prompts/<name>.wav beside the file.
    let c = load(EXAMPLE).unwrap();
    let Some(Flow::TimedPresence(tp)) = c.flow("Timed Presence") else {
        panic!()
    };
    assert_eq!(
        tp.prompts.enter_pin.path,
        Path::new("/etc/tpswitch/prompts/enter_pin.wav")
    );
    let Some(Flow::Queue(q)) = c.flow("Billing") else {
        panic!()
    };
    assert_eq!(
        q.prompts.unavailable.path,
        Path::new("/etc/tpswitch/prompts/queue_unavailable.wav")
    );
}

const TWO_USERS: &str = r#"
[[users]]
id = "a1"
  [[users.extensions]]
  type = "pstn"
  value = "+1-234-567-8000"
  ext = "EXT_A"

[[users]]
id = "b2"
  [[users.extensions]]
  type = "pstn"
  value = "2345678000"
  ext = "EXT_B"
"#;

fn with_users(a: &str, b: &str) -> String {
    let users = TWO_USERS.replace("EXT_A", a).replace("EXT_B", b);
    format!("{EXAMPLE}\n{users}")
}

#[test]
fn shared_number_needs_distinct_ext() {
    // The example user is users[0]; the two added ones are users[1], users[2].
    let c = load(&with_users("101", "102")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.users_with_pstn(&n("+12345678000")).len(), 2);

    let p = at(&with_users("101", "101"), "users[2].extensions[0]");
    assert_eq!(
        p.problem,
        "+12345678000 with ext \"101\" is the same line as users[1].extensions[0]"
    );
    assert_eq!(
        p.fix,
        "give each user on a shared number a distinct ext, or remove the duplicate"
    );

    let p = at(&with_users("", "102"), "users[1].extensions[0].ext");
    assert_eq!(
        p.problem,
        "is empty but +12345678000 is shared with users[2].extensions[0]"
    );
    assert_eq!(
        p.fix,
        "give each user on a shared number their own ext, such as ext = \"101\""
    );

    // Both empty: the second is the same line as the first.
    let all = problems(&with_users("", ""));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].path, "users[1].extensions[0].ext");
    assert_eq!(all[1].path, "users[2].extensions[0]");
}

#[test]
fn all_problems_are_reported_together() {
    let text = EXAMPLE
        .replace("\"+1-234-567-8910\"", "\"+1-234\"")
        .replace("\"20000-29999\"", "\"20001-29999\"")
        .replace("flow = \"Billing\"", "flow = \"Nope\"")
        .replace("ring_timeout = \"20s\"", "ring_timeout = \"20\"")
        .replace(
            "dtmf_payload_type = 101",
            "dtmf_payload_type = 101\ndtmf = 1",
        );
    let paths: Vec<String> = problems(&text).into_iter().map(|p| p.path).collect();
    for want in [
        "users[0].extensions[0].value",
        "media.rtp_ports",
        "dispatch_mappings[1].flow",
        "flows[1].ring_timeout",
        "media.dtmf",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
    }
    let shown = load(&text).unwrap_err().to_string();
    assert_eq!(shown.lines().count(), paths.len());
    assert!(shown.lines().all(|l| l.starts_with(&format!("{FILE}: "))));
}

#[test]
fn wrong_types_and_ranges() {
    let p = at(
        &EXAMPLE.replace("max_calls = 2000", "max_calls = \"2000\""),
        "sip.max_calls",
    );
    assert_eq!(p.fix, "write a whole number without quotes");
    let p = at(
        &EXAMPLE.replace("dtmf_payload_type = 101", "dtmf_payload_type = 90"),
        "media.dtmf_payload_type",
    );
    assert_eq!(p.problem, "90 is out of range");
    assert_eq!(p.fix, "use a whole number from 96 to 127");
    let p = at(
        &EXAMPLE.replace("presets = [8, 24, 48, 72]", "presets = [8, 24, 48, 72, 96]"),
        "flows[0].presets",
    );
    assert_eq!(p.problem, "has 5 entries");
    let p = at(
        &EXAMPLE.replace("strategy = \"longest-idle\"", "strategy = \"random\""),
        "flows[1].strategy",
    );
    assert_eq!(
        p.fix,
        "use \"longest-idle\" or \"round-robin\" or \"fewest-calls\""
    );
    let p = at(
        &EXAMPLE.replace("accept_digit = \"1\"", "accept_digit = \"12\""),
        "flows[1].accept_digit",
    );
    assert_eq!(p.problem, "\"12\" is not one DTMF key");
    let p = at(
        &EXAMPLE.replace(
            "max_wait = \"5m\"",
            "max_wait = \"5m\"\nservice_level_threshold = \"0s\"",
        ),
        "flows[1].service_level_threshold",
    );
    assert_eq!(p.problem, "\"0s\" is too short");
    let p = at(
        &EXAMPLE.replace("# pin = \"4321\"", "pin = \"12\""),
        "users[0].pin",
    );
    assert_eq!(p.problem, "is not 4 to 8 digits");
    let p = at(
        &EXAMPLE.replace("# pin = \"4321\"", "time_zone = \"Europe/Pariss\""),
        "users[0].time_zone",
    );
    assert_eq!(p.problem, "\"Europe/Pariss\" is not a time zone");
    assert!(p.fix.contains("IANA"), "{}", p.fix);
    let p = at(
        &EXAMPLE.replace("# pin = \"4321\"", "connection = \"nailed\""),
        "users[0].connection",
    );
    assert_eq!(p.problem, "\"nailed\" is not a valid value");
    assert_eq!(p.fix, "use \"per-call\" or \"nailed-up\"");
    let p = at(
        &format!("{EXAMPLE}\n[presence]\ntime_zone = \"CEST+2\"\n"),
        "presence.time_zone",
    );
    assert_eq!(p.problem, "\"CEST+2\" is not a time zone");
    let p = at(
        &EXAMPLE.replace("activity = \"queue\"", "activity = \"queueing\""),
        "flows[1].activity",
    );
    assert_eq!(p.fix, "use \"timed-presence\" or \"queue\"");
    let p = at(
        &EXAMPLE.replace("\"127.0.0.1/32\"", "\"127.0.0.300/32\""),
        "trunk.allow[0]",
    );
    assert_eq!(p.problem, "\"127.0.0.300/32\" is not an IP network");
}

#[test]
fn sip_targets() {
    use validate::parse_sip_target;
    let t = parse_sip_target("sip:127.0.0.1:5080").unwrap();
    assert_eq!(
        (t.host.to_string(), t.port, t.transport),
        ("127.0.0.1".into(), 5080, Transport::Udp)
    );
    let t = parse_sip_target("sip:[::1];transport=tcp").unwrap();
    assert_eq!(
        (t.host.to_string(), t.port, t.transport),
        ("[::1]".into(), 5060, Transport::Tcp)
    );
    let t = parse_sip_target("sip:Proxy.Example.com:5070;lr").unwrap();
    assert_eq!(t.host, Host::Name("proxy.example.com".into()));
    assert!(parse_sip_target("sip:127.0.0.1:0").is_err());
    assert!(parse_sip_target("sip:127.0.0.1:99999").is_err());
    assert!(parse_sip_target("sip:bad host").is_err());
    assert!(parse_sip_target("sip:127.0.0.1;transport=sctp").is_err());
}

/// RFC 3261 §26.2.2 and §19.1.2: `sips:` and `;transport=tls` are TLS, on
/// port 5061 unless the URI gives one; a `sips:` URI cannot ask for UDP.
#[test]
fn tls_sip_targets() {
    use validate::parse_sip_target;
    let t = parse_sip_target("sips:sip.carrier.example").unwrap();
    assert_eq!((t.port, t.transport), (5061, Transport::Tls));
    let t = parse_sip_target("sip:127.0.0.1;transport=TLS").unwrap();
    assert_eq!((t.port, t.transport), (5061, Transport::Tls));
    let t = parse_sip_target("sip:127.0.0.1:5071;transport=tls").unwrap();
    assert_eq!((t.port, t.transport), (5071, Transport::Tls));
    assert!(parse_sip_target("sips:127.0.0.1;transport=udp").is_err());
}

#[test]
fn tls_keys_resolve_and_must_come_in_pairs() {
    let with = |sip: &str, trunk: &str| {
        EXAMPLE
            .replacen("[sip]\n", &format!("[sip]\n{sip}\n"), 1)
            .replacen("[trunk]\n", &format!("[trunk]\n{trunk}\n"), 1)
    };
    let c = load(&with(
        "tls_bind = \"127.0.0.1:5061\"\ntls_certificate = \"tls/cert.pem\"\ntls_private_key = \"/srv/key.pem\"",
        "tls_ca_file = \"ca.pem\"\ntls_server_name = \"sip.carrier.example\"",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let id = c.sip.tls_identity.expect("identity");
    assert_eq!(id.certificate, Path::new("/etc/tpswitch/tls/cert.pem"));
    assert_eq!(id.private_key, Path::new("/srv/key.pem"));
    assert_eq!(c.sip.tls.map(|t| t.bind.port()), Some(5061));
    assert_eq!(c.sip.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(
        c.trunk.tls_ca_file.as_deref(),
        Some(Path::new("/etc/tpswitch/ca.pem"))
    );
    assert_eq!(
        c.trunk.tls_server_name.as_deref(),
        Some("sip.carrier.example")
    );

    let p = at(&with("tls_bind = \"127.0.0.1:5061\"", ""), "sip.tls_bind");
    assert!(p.fix.contains("tls_certificate"), "{p:?}");
    let p = at(
        &with("tls_certificate = \"c.pem\"", ""),
        "sip.tls_private_key",
    );
    assert_eq!(p.problem, "is missing");
    let p = at(
        &with(
            "tls_bind = \"nowhere\"\ntls_certificate = \"c.pem\"\ntls_private_key = \"k.pem\"",
            "",
        ),
        "sip.tls_bind",
    );
    assert!(p.problem.contains("nowhere"), "{p:?}");
}

#[test]
fn dial_string_follows_number_format() {
    let national = EXAMPLE.replace("number_format = \"+E164\"", "number_format = \"national\"");
    let c = load(&national).unwrap();
    assert_eq!(c.dial_string(&n("+12345678910")), "2345678910");
    let c =
        load(&EXAMPLE.replace("number_format = \"+E164\"", "number_format = \"E164\"")).unwrap();
    assert_eq!(c.dial_string(&n("+12345678910")), "12345678910");
    let c = load(&EXAMPLE.replace(
        "allow_dial = []",
        "allow_dial = [\"+4420*\", \"+15550100099\"]",
    ))
    .unwrap();
    assert!(c.trunk.allow_dial[0].matches(&n("+442079460000")));
    assert!(c.trunk.allow_dial[1].matches(&n("+15550100099")));
    assert!(!c.trunk.allow_dial[1].matches(&n("+15550100098")));
}

#[test]
fn every_bad_key_in_a_section_is_reported_in_file_order() {
    let text = EXAMPLE.replace(
        "max_calls = 2000",
        "max_calls = \"many\"\nzeta = 1\nalpha = 2\nt1 = \"fast\"",
    );
    let all = problems(&text);
    let paths: Vec<&str> = all.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["sip.max_calls", "sip.zeta", "sip.alpha", "sip.t1"]);
    assert_eq!(
        all[0].problem,
        "invalid type: string \"many\", expected a whole number"
    );
}

#[test]
fn wrong_type_is_not_also_reported_missing() {
    let text = EXAMPLE.replace("id = \"jsmith\"", "id = 7");
    let all = problems(&text);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].path, "users[0].id");
    assert_eq!(all[0].fix, "put the value in double quotes, e.g. \"...\"");
}

#[test]
fn missing_required_keys() {
    let text = EXAMPLE.replace("[numbering]\ndefault_country_code = \"1\"", "[numbering]");
    let p = at(&text, "numbering.default_country_code");
    assert_eq!(p.problem, "is missing");
    assert_eq!(
        p.fix,
        "add default_country_code = \"1\" (under [numbering])"
    );
    let text = EXAMPLE.replace("skills = [\"billing\"]\n", "");
    assert_eq!(at(&text, "flows[1].skills").problem, "is missing");
}

/// `text` with `from` replaced once; fails when `from` is not there, so a
/// test cannot silently check the unedited file.

#[test]
fn durations_have_an_upper_bound() {
    // A week of timer is allowed everywhere, a day of session timer.
    let ok = edit(EXAMPLE, "rtp_timeout = \"30s\"", "rtp_timeout = \"168h\"");
    assert_eq!(
        load(&ok).unwrap().media.rtp_timeout,
        Duration::from_secs(168 * 3600)
    );
    for long in ["169h", "100000000h", "18446744073709551615ms"] {
        let text = edit(
            EXAMPLE,
            "rtp_timeout = \"30s\"",
            &format!("rtp_timeout = \"{long}\""),
        );
        let p = at(&text, "media.rtp_timeout");
        assert_eq!(p.problem, format!("{long:?} is too long"));
        assert_eq!(p.fix, "use a duration from \"1s\" to \"168h\"");
    }
    // Sent as 32-bit delta-seconds (RFC 4028): 2^32 s must not wrap to 0.
    let text = edit(
        EXAMPLE,
        "[sip]\n",
        "[sip]\nsession_expires = \"1193047h\"\n",
    );
    let p = at(&text, "sip.session_expires");
    assert_eq!(p.problem, "\"1193047h\" is too long");
    assert_eq!(p.fix, "use a duration from \"1m30s\" to \"24h\"");
    let text = edit(EXAMPLE, "[sip]\n", "[sip]\nmin_se = \"25h\"\n");
    assert_eq!(at(&text, "sip.min_se").problem, "\"25h\" is too long");
    // Too short still names the same range.
    let text = edit(EXAMPLE, "rtp_timeout = \"30s\"", "rtp_timeout = \"10ms\"");
    let p = at(&text, "media.rtp_timeout");
    assert_eq!(p.problem, "\"10ms\" is too short");
    assert_eq!(p.fix, "use a duration from \"1s\" to \"168h\"");
}

/// A host name passes validation (it is resolved per RFC 3263 at start);
/// whether the port and transport were written decides which lookups run.
#[test]
fn trunk_host_name_is_accepted_with_what_was_written() {
    let text = edit(
        EXAMPLE,
        "outbound_proxy = \"sip:127.0.0.1:5080\"",
        "outbound_proxy = \"sip:Proxy.Example.com;transport=tcp\"",
    );
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let t = &c.trunk.outbound_proxy;
    assert_eq!(t.host, Host::Name("proxy.example.com".into()));
    assert_eq!((t.port, t.port_given), (5060, false));
    assert_eq!((t.transport, t.transport_given), (Transport::Tcp, true));
    assert_eq!(c.trunk.keepalive_interval, None);
    assert!(c.dns.nameserver.is_none() && !c.dns.start_unresolved);
}

#[test]
fn dns_and_keepalive_settings_are_checked() {
    let text = format!(
        "{}\n[dns]\nnameserver = \"127.0.0.1:5353\"\nstart_unresolved = true\n",
        edit(
            EXAMPLE,
            "outbound_proxy = \"sip:127.0.0.1:5080\"",
            "outbound_proxy = \"sip:127.0.0.1:5080\"\nkeepalive_interval = \"15s\""
        )
    );
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dns.nameserver, Some("127.0.0.1:5353".parse().unwrap()));
    assert!(c.dns.start_unresolved);
    assert_eq!(c.trunk.keepalive_interval, Some(Duration::from_secs(15)));
    let bad = format!("{}\n[dns]\nnameserver = \"dns.example.com\"\n", EXAMPLE);
    let p = at(&bad, "dns.nameserver");
    assert!(p.fix.contains("127.0.0.1:5353"), "{}", p.fix);
}

#[test]
fn overflow_number_must_be_diallable() {
    let text = edit(
        EXAMPLE,
        "overflow_number = \"\"",
        "overflow_number = \"+15550109999\"",
    );
    let p = at(&text, "flows[1].overflow_number");
    assert_eq!(
        p.problem,
        "+15550109999 is neither a user's PSTN number nor in trunk.allow_dial, so it would never be dialled"
    );
    assert!(p.fix.contains("trunk.allow_dial"), "{}", p.fix);
    // Allowed by a pattern, or a user's own number: fine.
    let allowed = edit(&text, "allow_dial = []", "allow_dial = [\"+1555*\"]");
    assert!(load(&allowed).is_ok());
    let user = edit(
        EXAMPLE,
        "overflow_number = \"\"",
        "overflow_number = \"+1 234 567 8910\"",
    );
    let c = load(&user).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.may_dial(&n("+12345678910")));
    assert!(!c.may_dial(&n("+15550109999")));
}

#[test]
fn trunk_username_needs_its_password_variable() {
    let text = edit(EXAMPLE, "username = \"\"", "username = \"carrier-user\"");
    let c = load(&text).unwrap();
    let unset = |_: &str| None;
    let e = c.check_environment(unset).unwrap_err();
    let p = &e.problems()[0];
    assert_eq!(p.path, "trunk.password_env");
    assert!(
        p.problem.contains("TPSWITCH_TRUNK_PASSWORD"),
        "{}",
        p.problem
    );
    assert!(e.to_string().starts_with(FILE), "{e}");
    let empty = |k: &str| (k == "TPSWITCH_TRUNK_PASSWORD").then(String::new);
    assert!(c.check_environment(empty).is_err());
    let set = |k: &str| (k == "TPSWITCH_TRUNK_PASSWORD").then(|| "pw".to_string());
    assert!(c.check_environment(set).is_ok());
    // No username: no password needed.
    assert!(load(EXAMPLE).unwrap().check_environment(unset).is_ok());
}

#[test]
fn an_empty_api_token_is_refused() {
    let c = load(EXAMPLE).unwrap();
    let token = |v: &'static str| move |k: &str| (k == "TPSWITCH_API_TOKEN").then(|| v.to_string());
    let e = c.check_environment(token("")).unwrap_err();
    assert_eq!(e.problems()[0].path, "http.token_env");
    assert!(e.to_string().contains("no authentication"), "{e}");
    assert!(c.check_environment(token("  ")).is_err());
    assert!(c.check_environment(token("t0ken")).is_ok());
    // A secret's value never appears in a message, only its variable.
    let text = edit(EXAMPLE, "username = \"\"", "username = \"u\"");
    let c = load(&text).unwrap();
    let e = c
        .check_environment(|k: &str| match k {
            "TPSWITCH_TRUNK_PASSWORD" => Some(String::new()),
            "TPSWITCH_API_TOKEN" => Some("hunter2".to_string()),
            _ => None,
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("TPSWITCH_TRUNK_PASSWORD"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn tcp_and_http_exhaustion_limits() {
    let c = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sip.max_untrusted_tcp_connections, 8);
    assert_eq!(c.sip.tcp_idle_timeout, Duration::from_secs(32));
    assert_eq!(c.http.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.http.max_connections, 64);
    let sip = |kv: &str| edit(EXAMPLE, "[sip]\n", &format!("[sip]\n{kv}\n"));
    let http = |kv: &str| edit(EXAMPLE, "[http]\n", &format!("[http]\n{kv}\n"));
    let c = load(&sip(
        "max_untrusted_tcp_connections = 0\ntcp_idle_timeout = \"2s\"",
    ))
    .unwrap();
    assert_eq!(c.sip.max_untrusted_tcp_connections, 0);
    assert_eq!(c.sip.tcp_idle_timeout, Duration::from_secs(2));
    let p = at(&sip("tcp_idle_timeout = \"2h\""), "sip.tcp_idle_timeout");
    assert_eq!(
        (p.problem.as_str(), p.fix.as_str()),
        ("\"2h\" is too long", "use at most \"1h\"")
    );
    let p = at(&sip("tcp_idle_timeout = \"500ms\""), "sip.tcp_idle_timeout");
    assert_eq!(p.problem, "\"500ms\" is too short");
    let p = at(
        &sip("max_untrusted_tcp_connections = -1"),
        "sip.max_untrusted_tcp_connections",
    );
    assert_eq!(p.problem, "-1 is out of range");
    let p = at(
        &http("header_read_timeout = \"10m\""),
        "http.header_read_timeout",
    );
    assert_eq!(p.fix, "use at most \"5m\"");
    let p = at(&http("max_connections = 0"), "http.max_connections");
    assert_eq!(p.fix, "use a whole number from 1 to 10000");
}

#[test]
fn nat_addresses_and_media_bind_load_and_default_to_none() {
    let c = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sip.external_signaling_address, None);
    assert_eq!(c.sip.external_signaling_port, None);
    assert_eq!(c.sip.external_media_address, None);
    assert!(c.sip.local_networks.is_empty());
    assert_eq!(c.media.bind_address, None);
    assert!(c.trunk.in_dialog_via_proxy);
    let text = EXAMPLE
        .replace(
            "[sip]\n",
            "[sip]\nexternal_signaling_address = \"203.0.113.5\"\nexternal_signaling_port = 5099\n\
             external_media_address = \"203.0.113.6\"\nlocal_networks = [\"10.0.0.0/8\", \"192.168.1.20\"]\n",
        )
        .replace("[media]\n", "[media]\nbind_address = \"0.0.0.0\"\n");
    let c = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.sip.external_signaling_address,
        Some("203.0.113.5".parse().unwrap())
    );
    assert_eq!(c.sip.external_signaling_port, Some(5099));
    assert_eq!(
        c.sip.external_media_address,
        Some("203.0.113.6".parse().unwrap())
    );
    assert_eq!(c.sip.local_networks.len(), 2);
    assert_eq!(c.media.bind_address, Some("0.0.0.0".parse().unwrap()));
}

#[test]
fn nat_mistakes_name_the_key() {
    let p = at(
        &EXAMPLE.replace(
            "[sip]\n",
            "[sip]\nexternal_signaling_address = \"nat.example.com\"\n",
        ),
        "sip.external_signaling_address",
    );
    assert!(p.problem.contains("is not an IP address"), "{p:?}");
    let p = at(
        &EXAMPLE.replace("[sip]\n", "[sip]\nlocal_networks = [\"10.0.0.0/33\"]\n"),
        "sip.local_networks[0]",
    );
    assert!(p.problem.contains("is not an IP network"), "{p:?}");
    // A media address alone would tell outside peers a public RTP address
    // with a private Contact: almost certainly a half-done NAT setup.
    let p = at(
        &EXAMPLE.replace(
            "[sip]\n",
            "[sip]\nexternal_media_address = \"203.0.113.6\"\n",
        ),
        "sip.external_signaling_address",
    );
    assert!(p.problem.contains("is not set"), "{p:?}");
    let p = at(
        &EXAMPLE.replace(
            "[sip]\n",
            "[sip]\nexternal_signaling_address = \"0.0.0.0\"\n",
        ),
        "sip.external_signaling_address",
    );
    assert_eq!(p.problem, "is not a unicast address");
    let p = at(
        &EXAMPLE.replace("[media]\n", "[media]\nbind_address = \"any\"\n"),
        "media.bind_address",
    );
    assert!(p.fix.contains("IP address"), "{p:?}");
}
#[path = "tests_register.rs"]
mod register;

#[test]
fn sip_trace_is_off_by_default_and_its_numbers_are_normalised() {
    let cfg = load(EXAMPLE).unwrap();
    assert_eq!(cfg.sip.trace, SipTrace::default());
    let text = edit(
        EXAMPLE,
        "[sip]\n",
        "[sip]\ntrace = \"all\"\ntrace_numbers = [\"(555) 123-0001\"]\n",
    );
    let cfg = load(&text).unwrap();
    assert!(cfg.sip.trace.all);
    assert_eq!(cfg.sip.trace.numbers, vec![n("+15551230001")]);
    let bad = edit(
        EXAMPLE,
        "[sip]\n",
        "[sip]\ntrace = \"some\"\ntrace_numbers = [\"12\"]\n",
    );
    let p = at(&bad, "sip.trace");
    assert_eq!(p.problem, "\"some\" is not a valid value");
    assert_eq!(p.fix, "use \"off\" or \"all\"");
    at(&bad, "sip.trace_numbers[0]");
}

#[test]
fn drain_timeout_defaults_to_a_minute_and_is_bounded() {
    assert_eq!(
        load(EXAMPLE).unwrap().sip.drain_timeout,
        Duration::from_secs(60)
    );
    let text = edit(EXAMPLE, "[sip]\n", "[sip]\ndrain_timeout = \"0s\"\n");
    assert_eq!(load(&text).unwrap().sip.drain_timeout, Duration::ZERO);
    let text = edit(EXAMPLE, "[sip]\n", "[sip]\ndrain_timeout = \"2h\"\n");
    let p = at(&text, "sip.drain_timeout");
    assert_eq!(p.problem, "\"2h\" is too long");
    assert_eq!(p.fix, "use a duration from \"0s\" to \"1h\"");
}

/// `tpswitch reload` must find the API of a switch whose file is now
/// broken elsewhere: the [http] section alone is read, with its defaults.
#[test]
fn the_http_section_is_read_from_a_file_broken_elsewhere() {
    let text = edit(EXAMPLE, "[sip]\n", "[sip]\nt1 = \"fast\"\nbogus = 1\n");
    assert!(load(&text).is_err());
    let text = edit(
        &text,
        "[http]\nbind = \"127.0.0.1:8080\"",
        "[http]\nbind = \"127.0.0.1:9099\"",
    );
    let http = Config::http_section(&text, Path::new(FILE));
    assert_eq!(http.bind, "127.0.0.1:9099".parse().unwrap());
    assert_eq!(http.token_env, "TPSWITCH_API_TOKEN");
    // A TOML syntax error: the defaults.
    let http = Config::http_section("[http\nbind = 1", Path::new(FILE));
    assert_eq!(http.bind, "127.0.0.1:8080".parse().unwrap());
}

/// A refused reload logs every problem: a PIN written as a number must not
/// put its digits in the message.
#[test]
fn a_pin_of_the_wrong_type_is_reported_without_its_value() {
    let text = edit(super::DEFAULT_TOML, "pin = \"2468\"", "pin = 97531");
    let all = match Config::from_toml(&text, Path::new(super::DEFAULT_PATH)) {
        Ok(_) => panic!("a numeric PIN must be refused"),
        Err(e) => e.problems().to_vec(),
    };
    let p = all
        .iter()
        .find(|p| p.path.ends_with(".pin"))
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(!p.to_string().contains("97531"), "{p}");
    assert!(p.problem.contains("expected a string"), "{p}");
}

#[test]
fn trunk_srtp_policy_is_read_and_a_bad_one_is_named() {
    use crate::media::srtp::SrtpPolicy;
    assert_eq!(
        Config::embedded_default().unwrap().trunk.srtp,
        SrtpPolicy::Off
    );
    assert_eq!(load(EXAMPLE).unwrap().trunk.srtp, SrtpPolicy::Off);
    for (word, policy) in [
        ("off", SrtpPolicy::Off),
        ("optional", SrtpPolicy::Optional),
        ("required", SrtpPolicy::Required),
    ] {
        let t = EXAMPLE.replace("[trunk]\n", &format!("[trunk]\nsrtp = \"{word}\"\n"));
        assert_eq!(load(&t).unwrap().trunk.srtp, policy);
    }
    let p = at(
        &EXAMPLE.replace("[trunk]\n", "[trunk]\nsrtp = \"mandatory\"\n"),
        "trunk.srtp",
    );
    assert!(p.problem.contains("mandatory"), "{p:?}");
    assert!(p.fix.contains("\"required\""), "{p:?}");
}

/// The toll-fraud guard every outbound leg passes (`call::leg::place`).
#[test]
fn only_users_numbers_and_allow_dial_are_diallable() {
    let mut cfg = Config::embedded_default().unwrap();
    let cc = cfg.numbering.default_country_code.clone();
    let n = |s: &str| E164::parse(s, &cc).unwrap();
    // jsmith, and the desk line mgarcia and akim share.
    assert!(cfg.may_dial(&n("+12345678910")));
    assert!(cfg.may_dial(&n("+12345678000")));
    // The contact points and anything else are never dialled.
    assert!(!cfg.may_dial(&n("+15550100001")));
    assert!(!cfg.may_dial(&n("+442071234567")));
    cfg.trunks[0].allow_dial = vec![
        DialPattern::Exact(n("+15550109999")),
        DialPattern::Prefix("4420".into()),
    ];
    assert!(cfg.may_dial(&n("+15550109999")));
    assert!(cfg.may_dial(&n("+442071234567")));
    assert!(!cfg.may_dial(&n("+15550109998")));
    assert!(!cfg.may_dial(&n("+443001234567")));
}

#[test]
fn api_tokens_have_a_holder_a_role_and_their_own_variable() {
    let ok = edit(
        EXAMPLE,
        "token_env = \"TPSWITCH_API_TOKEN\"",
        "token_env = \"TPSWITCH_API_TOKEN\"\n\
         tokens = [\n  { name = \"floor\", role = \"supervisor\", token_env = \"TPSWITCH_SUPERVISOR_TOKEN\" },\n  \
         { name = \"wall\", role = \"viewer\", token_env = \"TPSWITCH_VIEWER_TOKEN\" },\n]",
    );
    let c = load(&ok).unwrap();
    assert_eq!(c.http.tokens.len(), 2);
    assert_eq!(c.http.tokens[0].role, ApiRole::Supervisor);
    assert_eq!(c.http.tokens[1].name, "wall");
    let bad = edit(
        EXAMPLE,
        "token_env = \"TPSWITCH_API_TOKEN\"",
        "token_env = \"TPSWITCH_API_TOKEN\"\n\
         tokens = [\n  { name = \"floor\", role = \"boss\", token_env = \"TPSWITCH_API_TOKEN\" },\n  \
         { name = \"floor\", role = \"viewer\" },\n]",
    );
    let p = problems(&bad);
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"http.tokens[0].role"), "{paths:?}");
    assert!(paths.contains(&"http.tokens[0].token_env"), "{paths:?}");
    assert!(paths.contains(&"http.tokens[1].token_env"), "{paths:?}");
    let role = at(&bad, "http.tokens[0].role");
    assert!(role.fix.contains("\"supervisor\""), "{}", role.fix);
    // Set but empty: refused like http.token_env, naming the variable only.
    let c = load(&ok).unwrap();
    let env = |k: &str| (k == "TPSWITCH_VIEWER_TOKEN").then(String::new);
    let e = c.check_environment(env).unwrap_err();
    assert_eq!(e.problems()[0].path, "http.tokens[1].token_env");
}

/// A token named as the presence history's own actors would be mistaken
/// for the agent's phone or the switch in the history.
#[test]
fn api_tokens_may_not_be_named_agent_or_switch() {
    assert_eq!(
        super::validate::RESERVED_TOKEN_NAMES,
        [crate::presence::ACTOR_AGENT, crate::presence::ACTOR_SWITCH]
    );
    for name in ["agent", "Switch"] {
        let text = edit(
            EXAMPLE,
            "token_env = \"TPSWITCH_API_TOKEN\"",
            &format!(
                "token_env = \"TPSWITCH_API_TOKEN\"\n\
                 tokens = [\n  {{ name = \"floor\", role = \"viewer\", token_env = \"TPSWITCH_VIEWER_TOKEN\" }},\n  \
                 {{ name = \"{name}\", role = \"supervisor\", token_env = \"TPSWITCH_SUPERVISOR_TOKEN\" }},\n]"
            ),
        );
        let p = at(&text, "http.tokens[1].name");
        assert!(p.problem.contains("presence history"), "{}", p.problem);
        assert!(p.fix.contains("floor-supervisors"), "{}", p.fix);
    }
}

#[path = "tests_flood.rs"]
mod flood;
/// A world-readable file with a PIN in it is named at start; group read,
/// or a file without PINs, is not.
#[test]
fn pins_in_a_world_readable_file_are_named() {
    let with_pin = load(&edit(EXAMPLE, "# pin = \"4321\"", "pin = \"4321\"")).unwrap();
    assert!(with_pin.users.iter().any(|u| u.pin.is_some()));
    assert!(with_pin.pins_readable_by_others(0o644));
    assert!(!with_pin.pins_readable_by_others(0o640));
    assert!(!with_pin.pins_readable_by_others(0o600));
    let mut without = with_pin.clone();
    for u in &mut without.users {
        u.pin = None;
    }
    assert!(!without.pins_readable_by_others(0o644));
}

/// `store.url` (issue 13): a PostgreSQL URL with a host and a database;
/// its label for logs drops the password, and so does `Debug`.
#[test]
fn store_url_chooses_postgres_and_never_shows_its_password() {
    let with = |lines: &str| edit(EXAMPLE, "[store]\n", &format!("[store]\n{lines}\n"));
    let c = load(&with(
        r#"url = "postgres://tp:s3cret@db.example:5433/switch""#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let pg = c
        .store
        .postgres
        .clone()
        .expect("store.url chooses PostgreSQL");
    assert_eq!(pg.label, "postgres://tp@db.example:5433/switch");
    assert_eq!(c.store.name(), pg.label);
    assert!(!format!("{:?}", c.store).contains("s3cret"));
    assert!(
        load(EXAMPLE).unwrap().store.postgres.is_none(),
        "SQLite stays the default"
    );

    let c = load(&with(
        "url = \"postgresql://tp@db/switch\"\npassword_env = \"TP_DB_PASSWORD\"",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let pg = c.store.postgres.expect("postgresql:// is PostgreSQL too");
    assert_eq!(pg.password_env.as_deref(), Some("TP_DB_PASSWORD"));

    for (lines, path, says) in [
        (
            r#"url = "mysql://db/switch""#,
            "store.url",
            "only PostgreSQL",
        ),
        (r#"url = "postgres://db""#, "store.url", "database name"),
        (r#"url = "not a url s3cret""#, "store.url", "is not a URL"),
        (
            "url = \"postgres://tp:s3cret@db/switch\"\npassword_env = \"TP_DB_PASSWORD\"",
            "store.url",
            "one place",
        ),
        (
            r#"password_env = "TP_DB_PASSWORD""#,
            "store.password_env",
            "store.url is not",
        ),
        (
            "url = \"postgres://db/switch\"\npassword_env = \"1 bad\"",
            "store.password_env",
            "not an environment variable name",
        ),
    ] {
        let p = at(&with(lines), path);
        let text = format!("{} {}", p.problem, p.fix);
        assert!(text.contains(says), "{lines}: {text}");
        assert!(!text.contains("s3cret"), "{lines}: {text}");
    }
}
