//! Logs an operator can ship and search (issue 11): `--log-format json`
//! (here through its variable, `TPSWITCH_LOG_FORMAT`) writes one JSON
//! object per line carrying the call's span, and the SIP trace
//! (`sip.trace`, `sip.trace_numbers`) puts every message of a call in its
//! Call-ID's span, so one Call-ID finds the whole call.

mod common;

use common::Step::{Key, Wait};
use common::*;

const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";
/// A caller no user has.
const STRANGER: &str = "+15559990000";

fn login(sw: &Switch, caller: &str, steps: &[Step]) {
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), caller, steps, true);
    let run = sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    );
    run.assert_ok(sw);
}

/// The field `name` of a JSON log line: among the event's fields, else in
/// the span it was logged in.
fn field<'a>(line: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    line["fields"][name]
        .as_str()
        .or_else(|| line["span"][name].as_str())
}

#[test]
fn json_lines_parse_and_carry_the_call_span_and_the_sip_trace() {
    let mut sw = Switch::start_env(free_udp_port(), &[("TPSWITCH_LOG_FORMAT", "json")], |t| {
        t.replace_exact("trace = \"off\"", "trace = \"all\"")
    });
    login(&sw, JSMITH, &[Wait(1000), Key('1')]);
    sw.terminate();
    let log = sw.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{log}")))
        .collect();
    let incoming = lines
        .iter()
        .find(|l| field(l, "message") == Some("incoming call"))
        .unwrap_or_else(|| panic!("no incoming call line\n{log}"));
    let call_id = incoming["span"]["call_id"]
        .as_str()
        .unwrap_or_else(|| panic!("incoming call without span.call_id: {incoming}"));
    assert_eq!(incoming["span"]["name"], "call", "{incoming}");
    assert_eq!(incoming["span"]["flow"], "Timed Presence", "{incoming}");
    // Every line of this call, whoever logged it, carries its Call-ID.
    let of_call: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["call_id"] == call_id)
        .collect();
    let messages: Vec<&str> = of_call.iter().filter_map(|l| field(l, "message")).collect();
    for want in [
        "incoming call",
        "log-in call",
        "log-in finished: hanging up",
        "sip trace",
    ] {
        assert!(
            messages.contains(&want),
            "no {want:?} for {call_id}: {messages:?}\n{log}"
        );
    }
    let trace: Vec<(&str, &str)> = of_call
        .iter()
        .filter(|l| l["target"] == "tpswitch::sip_trace")
        .filter_map(|l| Some((field(l, "direction")?, field(l, "sip")?)))
        .collect();
    let first_lines: Vec<(&str, &str)> = trace
        .iter()
        .map(|(d, sip)| (*d, sip.lines().next().unwrap_or("")))
        .collect();
    for (dir, start) in [
        ("received", "INVITE "),
        ("sent", "SIP/2.0 200 OK"),
        ("received", "ACK "),
        ("sent", "BYE "),
        ("received", "SIP/2.0 200 OK"),
    ] {
        assert!(
            first_lines
                .iter()
                .any(|(d, l)| *d == dir && l.starts_with(start)),
            "no {dir} {start:?} in the trace of {call_id}: {first_lines:?}"
        );
    }
    // And in plain text: one grep of the Call-ID finds them all.
    assert!(
        log.lines().filter(|l| l.contains(call_id)).count() >= of_call.len(),
        "{log}"
    );
}

#[test]
fn trace_numbers_trace_only_the_calls_that_name_them() {
    let mut sw = Switch::start(|t| {
        t.replace_exact("trace_numbers = []", "trace_numbers = [\"(234) 567-8910\"]")
    });
    login(&sw, STRANGER, &[]);
    login(&sw, JSMITH, &[Wait(500), Key('0')]);
    sw.terminate();
    let log = sw.log();
    // The Call-ID of the call from `caller`, from its span in the text log.
    let call_id_of = |caller: &str| -> String {
        log.lines()
            .find(|l| l.contains("incoming call") && l.contains(&format!("caller={caller}")))
            .and_then(|l| l.split("call_id=").nth(1))
            .and_then(|rest| rest.split([' ', '}']).next())
            .unwrap_or_else(|| panic!("no incoming call from {caller}\n{log}"))
            .to_owned()
    };
    let (stranger, jsmith) = (call_id_of(STRANGER), call_id_of(JSMITH));
    let traced = |call_id: &str| {
        log.lines()
            .filter(|l| l.contains("sip trace") && l.contains(&format!("call_id={call_id}")))
            .count()
    };
    // INVITE, 100, 200, ACK, BYE, 200 at least.
    assert!(traced(&jsmith) >= 6, "jsmith's call not traced:\n{log}");
    assert_eq!(
        traced(&stranger),
        0,
        "the stranger's call was traced:\n{log}"
    );
}

/// The call span names the agent once. Identifying the caller and writing
/// the window each recorded `agent`, and tracing's text format prints a
/// field recorded twice twice: `call{... agent="jsmith" agent="jsmith"}` on
/// every later line of the call (seen in the soak's log).
#[test]
fn the_call_span_names_the_agent_once() {
    let mut sw = Switch::start(|t| t);
    login(&sw, JSMITH, &[Wait(1000), Key('1')]);
    sw.terminate();
    let log = sw.log();
    let quality = log
        .lines()
        .find(|l| l.contains("media quality"))
        .unwrap_or_else(|| panic!("no media quality line\n{log}"));
    let span = quality.split("}:").next().unwrap_or_default();
    assert_eq!(span.matches("agent=").count(), 1, "{quality}");
}
