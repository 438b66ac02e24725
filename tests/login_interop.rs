//! The timed-presence log-in over real SIP and RTP: SIPp calls the contact
//! point as an agent's phone and keys RFC 2833 digits from Debian's
//! `dtmf_2833_*.pcap` captures; the outcome is read back with
//! `tpswitch agents --json` (issue 4's "done when").

mod common;

use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;

const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";

/// Hours left on the agent's window (rounded), or None when offline.
fn online_hours(sw: &Switch, id: &str) -> Option<i64> {
    let a = agent(sw, id);
    if a["state"] != "online" {
        return None;
    }
    let secs = a["remaining_seconds"].as_i64()?;
    Some((secs + 1800) / 3600)
}

fn login(sw: &Switch, caller: &str, steps: &[Step], switch_hangs_up: bool) -> SippRun {
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), caller, steps, switch_hangs_up);
    let run = sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    );
    run.assert_ok(sw);
    run
}

/// Short time-outs so the time-out paths run quickly.
fn fast(t: String) -> String {
    t.replace_exact("digit_timeout = \"5s\"", "digit_timeout = \"2s\"")
}

#[test]
fn keys_1_to_4_set_the_preset_windows() {
    let sw = Switch::start(fast);
    for (key, hours) in [('1', 8), ('2', 24), ('3', 48), ('4', 72)] {
        login(&sw, JSMITH, &[Wait(1000), Key(key)], true);
        assert_eq!(online_hours(&sw, "jsmith"), Some(hours), "key {key}");
        // Online now, the same keys would add to the window (status by
        // phone): 0 goes offline before the next preset.
        login(&sw, JSMITH, &[Wait(1000), Key('0')], true);
        assert_eq!(online_hours(&sw, "jsmith"), None);
    }
}

#[test]
fn key_9_then_two_digits() {
    let sw = Switch::start(fast);
    login(
        &sw,
        JSMITH,
        &[Wait(1000), Key('9'), Wait(500), Key('1'), Key('2')],
        true,
    );
    assert_eq!(online_hours(&sw, "jsmith"), Some(12));
}

#[test]
fn key_9_one_digit_then_pound() {
    let sw = Switch::start(fast);
    login(
        &sw,
        JSMITH,
        &[Wait(1000), Key('9'), Wait(500), Key('5'), Key('#')],
        true,
    );
    assert_eq!(online_hours(&sw, "jsmith"), Some(5));
}

#[test]
fn key_9_one_digit_then_time_out() {
    let sw = Switch::start(fast);
    login(
        &sw,
        JSMITH,
        &[Wait(1000), Key('9'), Wait(500), Key('7')],
        true,
    );
    assert_eq!(online_hours(&sw, "jsmith"), Some(7));
}

#[test]
fn key_9_then_0_goes_offline_and_key_0_too() {
    let sw = Switch::start(fast);
    login(&sw, JSMITH, &[Wait(1000), Key('3')], true);
    assert_eq!(online_hours(&sw, "jsmith"), Some(48));
    login(
        &sw,
        JSMITH,
        &[Wait(1000), Key('9'), Wait(500), Key('0')],
        true,
    );
    assert_eq!(online_hours(&sw, "jsmith"), None);
    login(&sw, JSMITH, &[Wait(1000), Key('2')], true);
    assert_eq!(online_hours(&sw, "jsmith"), Some(24));
    login(&sw, JSMITH, &[Wait(1000), Key('0')], true);
    assert_eq!(online_hours(&sw, "jsmith"), None);
}

#[test]
fn invalid_then_valid() {
    let sw = Switch::start(fast);
    login(
        &sw,
        JSMITH,
        &[Wait(1000), Key('5'), Wait(1500), Key('2')],
        true,
    );
    assert_eq!(online_hours(&sw, "jsmith"), Some(24));
}

#[test]
fn max_attempts_invalid_keys_hang_up_unchanged() {
    let sw = Switch::start(fast);
    login(
        &sw,
        JSMITH,
        &[
            Wait(1000),
            Key('5'),
            Wait(1500),
            Key('6'),
            Wait(1500),
            Key('7'),
        ],
        true,
    );
    assert_eq!(online_hours(&sw, "jsmith"), None);
    assert!(sw.log().contains("outcome=invalid"), "{}", sw.log());
    let calls = login_calls(&sw, 1);
    assert_eq!(calls[0]["outcome"], "invalid", "{calls:?}");
    assert_eq!(calls[0]["agent_user_id"], "jsmith", "{calls:?}");
}

#[test]
fn unknown_caller_hears_lookup_error_and_is_hung_up() {
    let sw = Switch::start(fast);
    login(&sw, "+19998887777", &[], true);
    assert!(sw.log().contains("outcome=unknown caller"), "{}", sw.log());
    let calls = login_calls(&sw, 1);
    assert_eq!(calls[0]["outcome"], "unknown-caller", "{calls:?}");
    assert_eq!(calls[0]["caller"], "+19998887777", "{calls:?}");
    assert!(calls[0]["agent_user_id"].is_null(), "{calls:?}");
    assert!(agents(&sw)
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["state"] == "offline"));
}

#[test]
fn withheld_caller_is_hung_up() {
    let sw = Switch::start(fast);
    login(&sw, "anonymous", &[], true);
    assert!(sw.log().contains("outcome=withheld caller"), "{}", sw.log());
    assert_eq!(login_calls(&sw, 1)[0]["outcome"], "withheld");
}

#[test]
fn hang_up_mid_menu_changes_nothing() {
    let sw = Switch::start(fast);
    login(&sw, JSMITH, &[Wait(1000), Key('2')], true);
    assert_eq!(online_hours(&sw, "jsmith"), Some(24));
    // Key 9 then hang up before the custom hours are complete.
    login(&sw, JSMITH, &[Wait(1000), Key('9'), Wait(300)], false);
    assert_eq!(online_hours(&sw, "jsmith"), Some(24));
    let calls = login_calls(&sw, 2);
    assert_eq!(
        (&calls[0]["outcome"], &calls[0]["hours"]),
        (&serde_json::json!("online"), &serde_json::json!(24)),
        "{calls:?}"
    );
    assert_eq!(calls[1]["outcome"], "hung-up", "{calls:?}");
}

#[test]
fn pin_right_and_wrong() {
    // Give jsmith a PIN (digits chosen so no capture repeats in a call).
    // Debug logging: no level may show a PIN.
    let mut sw = Switch::start_env(free_udp_port(), &[("TPSWITCH_LOG", "debug")], |t| {
        fast(t).replace_exact("# pin = \"4321\"", "pin = \"4321\"")
    });
    // 4321, then 9 and 56 custom hours (no key repeats within the call:
    // a replayed capture is rightly one key press).
    login(
        &sw,
        JSMITH,
        &[
            Wait(1000),
            Key('4'),
            Key('3'),
            Key('2'),
            Key('1'),
            Wait(1000),
            Key('9'),
            Wait(500),
            Key('5'),
            Key('6'),
        ],
        true,
    );
    assert_eq!(online_hours(&sw, "jsmith"), Some(56), "{}", sw.log());
    login(
        &sw,
        JSMITH,
        &[
            Wait(1000),
            Key('4'),
            Key('3'),
            Key('2'),
            Key('1'),
            Wait(500),
            Key('0'),
        ],
        true,
    );
    assert_eq!(online_hours(&sw, "jsmith"), None);
    let wrong = [
        Wait(1000),
        Key('1'),
        Key('2'),
        Key('3'),
        Key('4'),
        Wait(2500),
        Key('5'),
        Key('6'),
        Key('7'),
        Key('8'),
        Wait(2500),
        Key('9'),
        Key('0'),
        Key('*'),
        Key('#'),
    ];
    login(&sw, JSMITH, &wrong, true);
    assert!(sw.log().contains("outcome=PIN failed"), "{}", sw.log());
    assert_eq!(online_hours(&sw, "jsmith"), None);
    let calls = login_calls(&sw, 3);
    let outcomes: Vec<&str> = calls.iter().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["online", "offline", "pin-failed"], "{calls:?}");

    // The whole log, once the switch has exited, at debug level.
    sw.terminate();
    let log = sw.log();
    assert!(log.contains("DEBUG"), "the switch logged at debug level");
    // (Quoted or as a field: bare digits could be part of a port or Call-ID.)
    for secret in ["\"4321\"", "=4321", "pin: Some"] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    // Keys of the PIN and of the wrong entries are logged as `*`: digits
    // 1, 2, 3, 4, 7, 8 were only ever keyed as a PIN; 9, 5, 6, 0 were
    // keyed at the menu too and may be logged as themselves.
    for d in ['1', '2', '3', '4', '7', '8'] {
        assert!(
            !log.contains(&format!("digit={d}")),
            "PIN digit {d} logged:\n{log}"
        );
    }
    assert!(log.matches("digit=*").count() >= 12, "{log}");
}

#[test]
fn window_survives_sigkill_right_after_online_starts() {
    let mut sw = Switch::start(fast);
    let dir = tempfile::tempdir().unwrap();
    // Hang up ourselves at once after the key, while Online plays.
    let sc = login_scenario(
        dir.path(),
        JSMITH,
        &[Wait(1000), Key('2'), Wait(400)],
        false,
    );
    let run = sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    );
    assert!(run.ok(), "{}", run.explain());
    // The window was confirmed before Online played; kill -9 now.
    sw.kill9();
    let before = std::fs::read_to_string(&sw.config).unwrap();
    let dir2 = std::mem::replace(&mut sw.dir, tempfile::tempdir().unwrap());
    let config = dir2.path().join("tpswitch.toml");
    std::fs::write(&config, before).unwrap();
    let restarted = Switch::start_config(dir2, config);
    let a = agent(&restarted, "jsmith");
    assert_eq!(a["state"], "online", "{a}");
    let secs = a["remaining_seconds"].as_i64().unwrap();
    assert!((24 * 3600 - 120..=24 * 3600).contains(&secs), "{a}");
    let start =
        chrono::DateTime::parse_from_rfc3339(a["window"]["start"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(a["window"]["end"].as_str().unwrap()).unwrap();
    assert_eq!((end - start).num_hours(), 24);
    let _ = Duration::ZERO;
}

#[test]
fn window_expiry_calls_the_agent_and_plays_offline() {
    // The trunk: a SIPp UAS standing in for the agent's phone (it talks:
    // an answer without RTP would be a dead one).
    let trunk = free_udp_port();
    let mut phone = BackgroundSipp::start("uas_answer_talk.xml", trunk, 1, &[]);
    // Presence time runs 3600x: the 8-hour window ends 8 s after log-in.
    let sw = Switch::start_env(trunk, &[("TPSWITCH_CLOCK_SPEED", "3600")], fast);
    login(&sw, JSMITH, &[Wait(1000), Key('1')], true);
    // (`tpswitch agents` reads the real clock; this switch's presence clock
    // runs fast, so the log says it.)
    assert!(
        sw.log().contains("online agent=jsmith hours=8"),
        "{}",
        sw.log()
    );
    let status = phone.wait(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "no notification call completed: {status:?}\n{}\n{}\n--- switch\n{}",
        phone.errors(),
        phone.messages(),
        sw.log()
    );
    let msgs = phone.messages();
    assert!(
        msgs.contains(&format!("INVITE sip:{JSMITH}@127.0.0.1:{trunk}")),
        "the notification dials the agent's PSTN number through the trunk:\n{msgs}"
    );
    assert!(sw.log().contains("notification delivered"), "{}", sw.log());
    assert_eq!(agent(&sw, "jsmith")["state"], "offline");
}

/// Issue 9 ("blind log-in by a forged source"), on the wire: a key sent
/// before the ACK (as a sender that never saw our 200 would have to) is not
/// acted on until the ACK confirms the dialog; then it counts, in order
/// (issue 12: an ACK delayed by loss must not lose the agent's first key).
/// Key 1 gives 8 hours, key 2 would give 24. A dialog never confirmed
/// writes nothing: `lossy_path::no_ack_at_all_ends_the_call_with_bye_after_64_t1`.
#[test]
fn a_key_before_the_ack_counts_once_the_ack_arrives() {
    let sw = Switch::start(fast);
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(500), Key('2')], true);
    let text = std::fs::read_to_string(&sc).unwrap();
    // Move the ACK behind a key press: INVITE, 200, key 1, ACK, key 2.
    let ack_at = text
        .find("  <send>\n    <![CDATA[\n      ACK ")
        .expect("the ACK");
    let ack_len = text[ack_at..].find("</send>\n").expect("end of the ACK") + "</send>\n".len();
    let ack = text[ack_at..ack_at + ack_len].to_owned();
    let early = format!(
        "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"600\"/>\n",
        pcap('1')
    );
    let text = text.replacen(&ack, &format!("{early}{ack}"), 1);
    std::fs::write(&sc, text).unwrap();
    let run = sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    );
    run.assert_ok(&sw);
    assert_eq!(online_hours(&sw, "jsmith"), Some(8), "{}", sw.log());
}

/// Issue 14, status by phone: an agent already online calls in and hears
/// where they stand, in their own time zone, before their options; key 2
/// then adds the second preset (24 h) to the window's end. What is said is
/// read from the switch's debug log of the clips played; the expected
/// local hour is worked out here with the time-zone database, not with the
/// switch's code.
#[test]
fn an_online_agent_hears_the_status_in_their_zone_and_adds_24_hours() {
    let dir = tempfile::tempdir().unwrap();
    let trunk = free_udp_port();
    let config = dir.path().join("tpswitch.toml");
    std::fs::write(
        &config,
        test_config(dir.path(), trunk, |t| {
            // India (UTC+5:30): the half hour shows a zone is applied.
            fast(t).replace_exact(
                "# time_zone = \"America/New_York\"",
                "time_zone = \"Asia/Kolkata\"",
            )
        }),
    )
    .unwrap();
    let sw = Switch::start_config_env(dir, config, &[("TPSWITCH_LOG", "debug")]);
    login(&sw, JSMITH, &[Wait(1000), Key('1')], true);
    let first = agent(&sw, "jsmith");
    let end = |a: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(a["window"]["end"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let end1 = end(&first);

    let called = chrono::Utc::now();
    login(&sw, JSMITH, &[Wait(1000), Key('2')], true);
    let second = agent(&sw, "jsmith");
    assert_eq!(second["state"], "online");
    assert_eq!(
        end(&second) - end1,
        chrono::Duration::hours(24),
        "key 2 adds 24 h to the end, not from now"
    );

    // The second call's first prompt: Welcome, the status, the options.
    let log = sw.log();
    let played: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("playing") && l.contains("clips="))
        .collect();
    let heard = played
        .iter()
        .find(|l| l.contains("online_until"))
        .unwrap_or_else(|| panic!("no status played:\n{log}"));
    let local = (end1 + chrono::Duration::seconds(30)).with_timezone(&chrono_tz::Asia::Kolkata);
    use chrono::Timelike;
    let h12 = match local.hour() % 12 {
        0 => 12,
        h => h,
    };
    let meridiem = if local.hour() < 12 { "am" } else { "pm" };
    // After 10:30 UTC the 8-hour window ends past midnight in Kolkata: the
    // switch says "tomorrow" (the test failed every afternoon before).
    let called_local = called.with_timezone(&chrono_tz::Asia::Kolkata);
    let day = if local.date_naive() > called_local.date_naive() {
        " tomorrow"
    } else {
        ""
    };
    let want_start = format!("welcome online_until num_{h12} ");
    assert!(
        heard.contains(&want_start),
        "{heard}\n(expected {want_start:?})"
    );
    let rest = &heard[heard.find(&want_start).unwrap()..];
    assert!(
        rest.contains(&format!(" {meridiem}{day} for num_8 more_hours press num_1 to_add num_8 hours press num_2 to_add num_20 num_4 hours")),
        "{heard}"
    );
    assert!(rest.contains("new_hours_option offline_option"), "{heard}");
    // The confirmation says the new end: 32 hours left, tomorrow or later.
    let confirm = played
        .iter()
        .find(|l| l.contains("clips=\"extended") || l.contains("clips=extended"))
        .unwrap_or_else(|| panic!("no confirmation played:\n{log}"));
    assert!(confirm.contains("for num_30 num_2 more_hours"), "{confirm}");
    assert!(sw.log().contains("window extended"), "{}", sw.log());
}

/// Issue 14, the reminder: with `remind_before = "30m"` the switch calls
/// the agent's phone 30 minutes (of presence time, sped up 120x here: 15 s)
/// before their one-hour window ends; the phone presses 1, the window gets
/// the first preset (8 h) more, and that survives a `kill -9` straight
/// after.
#[test]
fn a_reminder_call_comes_before_the_end_and_key_1_extends_durably() {
    let work = tempfile::tempdir().unwrap();
    // The agent's phone behind the trunk: answers, lets the question
    // start, presses 1, then waits for our BYE after the confirmation.
    let phone_xml = work.path().join("phone.xml");
    std::fs::write(
        &phone_xml,
        format!(
            r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agent phone pressing 1 on the reminder">
  <recv request="INVITE" crlf="true"/>
{answer}  <pause milliseconds="1500"/>
  <nop><action><exec play_pcap_audio="{key}"/></action></nop>
  <recv request="BYE" timeout="40000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <timewait milliseconds="300"/>
</scenario>
"#,
            answer = agent_answer(false),
            key = pcap('1'),
        ),
    )
    .unwrap();
    let trunk = free_udp_port();
    let mut phone = BackgroundSipp::start(phone_xml.to_str().unwrap(), trunk, 1, &[]);
    let mut sw = Switch::start_env(trunk, &[("TPSWITCH_CLOCK_SPEED", "120")], |t| {
        fast(t).replace_exact("# remind_before = \"15m\"", "remind_before = \"30m\"")
    });
    // One hour: key 9, then 1 and #.
    login(
        &sw,
        JSMITH,
        &[Wait(1000), Key('9'), Wait(500), Key('1'), Key('#')],
        true,
    );
    let status = phone.wait(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "no reminder call completed: {status:?}\n{}\n{}\n--- switch\n{}",
        phone.errors(),
        phone.messages(),
        sw.log()
    );
    let msgs = phone.messages();
    assert!(
        msgs.contains(&format!("INVITE sip:{JSMITH}@127.0.0.1:{trunk}")),
        "the reminder dials the agent's PSTN number through the trunk:\n{msgs}"
    );
    sw.await_log("window extended from the reminder", Duration::from_secs(10));
    // Durable before it was said: kill -9 now, then read the store.
    sw.kill9();
    let log = sw.log();
    assert!(
        log.contains("window ends soon: reminding the agent"),
        "{log}"
    );
    assert!(
        log.contains("reminder call ended outcome=extended")
            || log.contains("outcome=\"extended\"")
            || log.contains("outcome=extended"),
        "{log}"
    );
    // (`tpswitch agents` reads the real clock, and this window lies in
    // the sped-up clock's future: the history has it as the store does.)
    let out = sw.cli(&["history", "jsmith", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let latest = history
        .as_array()
        .and_then(|h| h.iter().find(|e| e["kind"] == "extended"))
        .unwrap_or_else(|| panic!("no extended entry: {history}"));
    assert_eq!(latest["actor"], "agent", "{latest}");
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(latest["window"][k].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        (at("end") - at("start")).num_hours(),
        9,
        "1 h from log-in + 8 h from the reminder: {latest}"
    );
    // Once per window end: the store has the reminder.
    assert_eq!(
        log.matches("window ends soon: reminding the agent").count(),
        1,
        "{log}"
    );
}
