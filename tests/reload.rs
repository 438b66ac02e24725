//! Reload of the switch's own settings (issue 11) with the real binary and
//! SIPp: `tpswitch reload` (through `POST /api/v1/reload`) and SIGHUP re-read
//! the file; a good file applies to the next call while a call in progress
//! finishes under the settings it started with; a bad one is refused with
//! every error and changes nothing.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;

/// The log-in contact point of config/tpswitch.toml, as written there.
const LOGIN_WRITTEN: &str = "phone_number = \"+1-555-010-0000\"";
const LOGIN: &str = "+15550100000";
/// A contact point the shipped file does not have.
const NEW: &str = "+15550100077";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";
const TOKEN: &str = "reload-test-token";

/// An INVITE to `number` that must get `status` (and nothing else).
fn expect_status(sw: &Switch, dir: &Path, number: &str, status: u16) -> SippRun {
    let text = std::fs::read_to_string(sipp_dir().join("uac_reject.xml"))
        .expect("uac_reject.xml")
        .replace("@STATUS@", &status.to_string())
        .replace("@FORMATS@", "0");
    let path = dir.join(format!("expect_{status}.xml"));
    std::fs::write(&path, text).expect("write scenario");
    let run = sipp(path.to_str().unwrap(), Some(sw.sip), 1, &["-s", number]);
    run.assert_ok(sw);
    run
}

/// jsmith logs in on `number` with key 1 (8 hours); the switch hangs up.
fn login_on(sw: &Switch, number: &str) -> SippRun {
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(800), Key('1')], true);
    sipp(sc.to_str().unwrap(), Some(sw.sip), 1, &["-s", number])
}

/// `tpswitch reload` against the running switch, with its token.
fn cli_reload(sw: &Switch) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .args(["reload", "--config"])
        .arg(&sw.config)
        .args(["--http", &sw.http.to_string()])
        .env("TPSWITCH_API_TOKEN", TOKEN)
        .output()
        .expect("run tpswitch reload")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn start() -> Switch {
    Switch::start_env(free_udp_port(), &[("TPSWITCH_API_TOKEN", TOKEN)], |t| t)
}

fn edit_config(sw: &Switch, edit: impl FnOnce(String) -> String) {
    let t = std::fs::read_to_string(&sw.config).expect("read config");
    std::fs::write(&sw.config, edit(t)).expect("write config");
}

#[test]
fn reload_moves_a_contact_point_while_a_call_on_the_old_one_finishes() {
    let sw = start();
    let dir = tempfile::tempdir().unwrap();
    expect_status(&sw, dir.path(), NEW, 404);

    // A log-in call in progress on the contact point about to be removed:
    // jsmith waits 4 s in the menu before pressing 1.
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(4000), Key('1')], true);
    let sip = sw.sip;
    let in_progress =
        std::thread::spawn(move || sipp(sc.to_str().unwrap(), Some(sip), 1, &["-s", LOGIN]));
    sw.await_log("incoming call", Duration::from_secs(10));

    edit_config(&sw, |t| {
        t.replace_exact(LOGIN_WRITTEN, &format!("phone_number = \"{NEW}\""))
    });
    let out = cli_reload(&sw);
    let shown = text(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}\n{}\n{}",
        text(&out.stderr),
        sw.log()
    );
    assert!(
        shown.contains("in force for the next call: dispatch_mappings"),
        "{shown}"
    );
    assert!(
        shown.contains("changed but needs a restart: none"),
        "{shown}"
    );

    // The next calls: the removed number 404s, the new one takes the flow.
    expect_status(&sw, dir.path(), LOGIN, 404);
    login_on(&sw, NEW).assert_ok(&sw);

    // The call that started before the reload finishes its menu.
    let run = in_progress.join().unwrap();
    run.assert_ok(&sw);
    let calls = login_calls(&sw, 2);
    let outcomes: Vec<&str> = calls.iter().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["online", "online"], "{calls:?}");
    let log = sw.log();
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(
        log.contains("setting=dispatch_mappings") && log.contains("asked_by=HTTP API"),
        "{log}"
    );
}

#[test]
fn a_bad_file_is_refused_with_every_error_and_changes_nothing() {
    let sw = start();
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(&sw.config).unwrap();
    // A new mapping (which must not apply) and two mistakes elsewhere.
    edit_config(&sw, |t| {
        t.replace_exact(LOGIN_WRITTEN, &format!("phone_number = \"{NEW}\""))
            .replace_exact("flow = \"Billing\"", "flow = \"Bililng\"")
            .replace_exact("t1 = \"500ms\"", "t1 = \"fast\"")
    });
    // Without the token: 401, nothing read.
    let (status, _) = http_post(sw.http, "/api/v1/reload", None);
    assert_eq!(status, 401);
    let (status, body) = http_post(sw.http, "/api/v1/reload", Some(TOKEN));
    assert_eq!(status, 422, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON report");
    assert_eq!(report["applied"], false, "{report}");
    let errors: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("sip.t1")), "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("dispatch_mappings[1].flow") && e.contains("Bililng")),
        "{errors:#?}"
    );
    // The CLI shows the same and fails.
    let out = cli_reload(&sw);
    let shown = text(&out.stdout);
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains("not reloaded, nothing changed; 2 error(s)"),
        "{shown}"
    );
    assert!(shown.contains("sip.t1"), "{shown}");

    // Nothing changed: the old contact point answers, the new one 404s.
    expect_status(&sw, dir.path(), NEW, 404);
    login_on(&sw, LOGIN).assert_ok(&sw);
    // The file fixed, the same reload goes through.
    std::fs::write(&sw.config, good).unwrap();
    let (status, body) = http_post(sw.http, "/api/v1/reload", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert!(sw.log().contains("reload refused"), "{}", sw.log());
}

#[test]
fn sighup_reloads_and_names_what_needs_a_restart() {
    let mut sw = start();
    let dir = tempfile::tempdir().unwrap();
    edit_config(&sw, |t| {
        let ports = t
            .lines()
            .find(|l| l.starts_with("rtp_ports = "))
            .expect("rtp_ports line")
            .to_owned();
        t.replace_exact(LOGIN_WRITTEN, &format!("phone_number = \"{NEW}\""))
            .replace_exact(&ports, "rtp_ports = \"40000-40100\"")
            .replace_exact("max_calls = 2000", "max_calls = 1999")
    });
    sw.signal("HUP");
    sw.await_log("configuration reloaded", Duration::from_secs(20));
    let log = sw.log();
    assert!(log.contains("asked_by=SIGHUP"), "{log}");
    assert!(
        log.contains("setting=media.rtp_ports") && log.contains("applies only after a restart"),
        "{log}"
    );
    // The SIP core takes its new limit.
    assert!(log.contains("setting=sip.max_calls"), "{log}");
    sw.await_log("SIP policy reloaded", Duration::from_secs(10));
    expect_status(&sw, dir.path(), LOGIN, 404);
    login_on(&sw, NEW).assert_ok(&sw);
    // Still running: SIGHUP no longer kills (exit 129) nor is ignored; a
    // clean SIGTERM shutdown follows.
    let status = sw.terminate().expect("exit status");
    assert!(status.success(), "{status:?}\n{}", sw.log());
}

/// A user the file did not have when the switch started.
const ADDED_USER: &str =
    "[[users]]\nid = \"bwayne\"\nname = \"Bruce Wayne\"\nskills = [\"billing\"]\n  \
    [[users.extensions]]\n  type = \"pstn\"\n  value = \"+12345678911\"\n  ext = \"\"\n  \
    description = \"mobile\"\n\n";
/// akim in config/tpswitch.toml, as written there.
const AKIM_USER: &str = "[[users]]\nid = \"akim\"\nname = \"Alex Kim\"\nskills = [\"support\"]\n  \
    [[users.extensions]]\n  type = \"pstn\"\n  value = \"+12345678000\"\n  ext = \"202\"\n  \
    description = \"Alex Kim - desk\"\n\n";

/// The user ids `GET /agents` lists.
fn listed(sw: &Switch) -> Vec<String> {
    let (status, body) = http_get(sw.http, "/agents", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let rows: serde_json::Value = serde_json::from_str(&body).expect("agents JSON");
    rows.as_array()
        .expect("a JSON array")
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

/// `/agents` lists the users of the configuration in force: before the fix
/// it kept the start-up roster, so an added agent was missing and a removed
/// one still listed.
#[test]
fn agents_lists_the_users_a_reload_installed() {
    let sw = start();
    let before = listed(&sw);
    assert!(before.iter().any(|u| u == "akim"), "{before:?}");
    assert!(!before.iter().any(|u| u == "bwayne"), "{before:?}");
    edit_config(&sw, |t| {
        t.replace_exact(AKIM_USER, "").replace_exact(
            "# The timed presence flow",
            &format!("{ADDED_USER}# The timed presence flow"),
        )
    });
    let (status, body) = http_post(sw.http, "/api/v1/reload", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let after = listed(&sw);
    assert!(after.iter().any(|u| u == "bwayne"), "{after:?}");
    assert!(!after.iter().any(|u| u == "akim"), "{after:?}");
    assert!(after.iter().any(|u| u == "jsmith"), "{after:?}");
}
