//! "Caller ID you can trust" (issue 14) over real SIP and RTP: SIPp calls
//! the log-in contact point as an agent's phone with a STIR/SHAKEN
//! `verstat` on From or P-Asserted-Identity (ATIS-1000074), on a trunk
//! whose `caller_id_trust` is `attested` or `pin-always`; the outcome is
//! read back with `tpswitch agents --json` and the log-in record with
//! `tpswitch calls --logins --json`.

mod common;

use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;

const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml, given the PIN 4321 here.
const JSMITH: &str = "+12345678910";
/// A user added here, without a PIN.
const NOPIN: &str = "+12345678919";

const PASSED: &str = "verstat=TN-Validation-Passed";
const NOT_VALIDATED: &str = "verstat=No-TN-Validation";

/// jsmith's PIN (no key repeats within a call: a replayed capture is
/// rightly one key press).
const PIN: [Step; 4] = [Key('4'), Key('3'), Key('2'), Key('1')];

fn trunk_policy(policy: &str) -> impl FnOnce(String) -> String + '_ {
    move |t| {
        t.replace_exact("digit_timeout = \"5s\"", "digit_timeout = \"2s\"")
            .replace_exact("# pin = \"4321\"", "pin = \"4321\"")
            .replace_exact(
                "caller_id_trust = \"any\"",
                &format!("caller_id_trust = \"{policy}\""),
            )
            + &format!(
                "\n[[users]]\nid = \"nopin\"\nname = \"No PIN\"\nskills = []\n  \
                 [[users.extensions]]\n  type = \"pstn\"\n  value = \"{NOPIN}\"\n  ext = \"\"\n  \
                 description = \"No PIN - mobile\"\n"
            )
    }
}

/// Hours left on the agent's window (rounded), or None when offline.
fn online_hours(sw: &Switch, id: &str) -> Option<i64> {
    let a = agent(sw, id);
    if a["state"] != "online" {
        return None;
    }
    let secs = a["remaining_seconds"].as_i64()?;
    Some((secs + 1800) / 3600)
}

/// One log-in call from `from` (the From user part, parameters and all),
/// with a P-Asserted-Identity user part when `pai` is given; the switch
/// hangs up at the end.
fn login(sw: &Switch, from: &str, pai: Option<&str>, steps: &[Step]) {
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), from, steps, true);
    if let Some(pai) = pai {
        // On the INVITE only (the first From line), as a carrier sends it.
        let text = std::fs::read_to_string(&sc).unwrap();
        let from_line = text
            .lines()
            .find(|l| l.trim_start().starts_with("From:"))
            .unwrap()
            .to_owned();
        let with_pai = format!(
            "{from_line}\n      P-Asserted-Identity: <sip:{pai}@carrier.example;user=phone>"
        );
        std::fs::write(&sc, text.replacen(&from_line, &with_pai, 1)).unwrap();
    }
    let run = sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    );
    run.assert_ok(sw);
}

/// From a log-in record: what let the caller in, whether the number was
/// attested, and the trunk's policy.
fn trust_of(call: &serde_json::Value) -> (String, bool, String) {
    (
        call["caller_id"].as_str().unwrap_or("-").to_owned(),
        call["attested"].as_bool().unwrap(),
        call["caller_id_trust"].as_str().unwrap().to_owned(),
    )
}

fn edit_config(sw: &Switch, edit: impl FnOnce(String) -> String) {
    let t = std::fs::read_to_string(&sw.config).expect("read config");
    std::fs::write(&sw.config, edit(t)).expect("write config");
}

#[test]
fn attested_policy_asks_an_unattested_caller_for_the_pin_and_lets_an_attested_one_in() {
    let mut sw = Switch::start(trunk_policy("attested"));
    let jsmith = |v: &str| format!("{JSMITH};{v}");

    // Not validated: the PIN is asked, and with it jsmith logs in (9, 56).
    let mut steps = vec![Wait(1000)];
    steps.extend(PIN);
    steps.extend([Wait(1000), Key('9'), Wait(500), Key('5'), Key('6')]);
    login(&sw, &jsmith(NOT_VALIDATED), None, &steps);
    assert_eq!(online_hours(&sw, "jsmith"), Some(56), "{}", sw.log());

    // Attested on From: no PIN; key 2 is the menu's, not a PIN digit (jsmith
    // is online, so it adds 24 h to the 56: status by phone).
    login(&sw, &jsmith(PASSED), None, &[Wait(1000), Key('2')]);
    assert_eq!(online_hours(&sw, "jsmith"), Some(80), "{}", sw.log());

    // The trunk trusts PAI, so PAI's verstat is the one that counts.
    login(
        &sw,
        &jsmith(NOT_VALIDATED),
        Some(&jsmith(PASSED)),
        &[Wait(1000), Key('3')],
    );
    // 80 + 48 h is more than the flow offers: clamped to its longest, 99 h.
    assert_eq!(online_hours(&sw, "jsmith"), Some(99), "{}", sw.log());
    let mut steps = vec![Wait(1000)];
    steps.extend(PIN);
    steps.extend([Wait(500), Key('0')]);
    login(&sw, &jsmith(PASSED), Some(&jsmith(NOT_VALIDATED)), &steps);
    assert_eq!(online_hours(&sw, "jsmith"), None, "{}", sw.log());

    // No PIN and not attested (no verstat at all): refused.
    login(&sw, NOPIN, None, &[Wait(500)]);
    assert_eq!(online_hours(&sw, "nopin"), None);

    let calls = login_calls(&sw, 5);
    let outcomes: Vec<&str> = calls.iter().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(
        outcomes,
        ["online", "online", "online", "offline", "caller-id-refused"],
        "{calls:?}"
    );
    let trusts: Vec<_> = calls.iter().map(trust_of).collect();
    let want = |c: &str, a: bool| (c.to_owned(), a, "attested".to_owned());
    assert_eq!(
        trusts,
        [
            want("pin", false),
            want("attested", true),
            want("attested", true),
            want("pin", false),
            want("unverified", false),
        ]
    );
    assert_eq!(calls[4]["agent_user_id"], "nopin");

    sw.terminate();
    let log = sw.log();
    assert!(
        log.contains("caller ID refused") && log.contains("caller_id_trust=\"attested\""),
        "{log}"
    );
    assert!(log.contains("outcome=caller ID refused"), "{log}");
    for secret in ["\"4321\"", "=4321", "pin: Some"] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

#[test]
fn pin_always_asks_even_an_attested_caller_and_takes_effect_on_reload() {
    let sw = Switch::start(trunk_policy("attested"));
    let attested = format!("{JSMITH};{PASSED}");
    login(&sw, &attested, None, &[Wait(1000), Key('1')]);
    assert_eq!(online_hours(&sw, "jsmith"), Some(8), "{}", sw.log());

    // A live setting: the next call is judged by the new policy.
    edit_config(&sw, |t| {
        t.replace_exact(
            "caller_id_trust = \"attested\"",
            "caller_id_trust = \"pin-always\"",
        )
    });
    sw.signal("HUP");
    sw.await_log("configuration reloaded", Duration::from_secs(20));
    let mut steps = vec![Wait(1000)];
    steps.extend(PIN);
    steps.extend([Wait(500), Key('0')]);
    login(&sw, &attested, None, &steps);
    assert_eq!(online_hours(&sw, "jsmith"), None, "{}", sw.log());
    // A caller without a PIN is refused even when attested.
    login(&sw, &format!("{NOPIN};{PASSED}"), None, &[Wait(500)]);

    let calls = login_calls(&sw, 3);
    let outcomes: Vec<&str> = calls.iter().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(
        outcomes,
        ["online", "offline", "caller-id-refused"],
        "{calls:?}"
    );
    let trusts: Vec<_> = calls.iter().map(trust_of).collect();
    assert_eq!(
        trusts,
        [
            ("attested".to_owned(), true, "attested".to_owned()),
            ("pin".to_owned(), true, "pin-always".to_owned()),
            ("unverified".to_owned(), true, "pin-always".to_owned()),
        ]
    );
}
