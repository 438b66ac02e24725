//! The directory lives (issue 11) with the real binary and SIPp: a user
//! with a PSTN extension and a dispatch mapping made through `/api/v1`
//! take calls without a restart; removing the mapping makes the next call
//! 404 while a call in progress on it finishes; what the API made survives
//! a restart, and `tpswitch export` prints it as a file `check-config`
//! accepts; a file that declares what the store holds is refused, naming
//! both.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;

const TOKEN: &str = "directory-test-token";
/// A contact point the shipped file does not have.
const NEW: &str = "+15550100077";
/// The new agent's mobile, in no user of the shipped file.
const NEWBIE: &str = "+12345670042";

fn start() -> Switch {
    Switch::start_env(free_udp_port(), &[("TPSWITCH_API_TOKEN", TOKEN)], |t| t)
}

/// One HTTP/1.1 request with a JSON body (or none); returns (status, body).
fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the HTTP API");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn put(sw: &Switch, path: &str, body: serde_json::Value) -> (u16, String) {
    http_json(sw.http, "PUT", path, Some(TOKEN), Some(&body))
}

fn new_user() -> serde_json::Value {
    serde_json::json!({
        "name": "New Agent",
        "skills": ["billing"],
        "extensions": [{"type": "pstn", "value": "+1 (234) 567-0042", "description": "New Agent - mobile"}]
    })
}

fn new_mapping() -> serde_json::Value {
    serde_json::json!({
        "description": "A second log-in line, made through the API",
        "interaction_type": "voice",
        "mapping": "contact-point",
        "phone_number": NEW,
        "flow": "Timed Presence"
    })
}

/// An INVITE to `number` that must get `status` (and nothing else).
fn expect_status(sw: &Switch, dir: &Path, number: &str, status: u16) {
    let text = std::fs::read_to_string(sipp_dir().join("uac_reject.xml"))
        .expect("uac_reject.xml")
        .replace("@STATUS@", &status.to_string())
        .replace("@FORMATS@", "0");
    let path = dir.join(format!("expect_{status}.xml"));
    std::fs::write(&path, text).expect("write scenario");
    sipp(path.to_str().unwrap(), Some(sw.sip), 1, &["-s", number]).assert_ok(sw);
}

/// `tpswitch run` that must stop by itself; killed after 30 s if not.
fn run_bounded(config: &Path) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tpswitch");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.expect("wait for tpswitch"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("tpswitch started on a file that conflicts with its store");
        }
    }
}

#[test]
fn a_user_and_a_mapping_made_through_the_api_take_calls_without_a_restart() {
    let sw = start();
    let dir = tempfile::tempdir().unwrap();
    expect_status(&sw, dir.path(), NEW, 404);

    let (status, body) = put(&sw, "/api/v1/users/newbie", new_user());
    assert_eq!(status, 201, "{body}");
    let (status, body) = put(&sw, "/api/v1/dispatch-mappings/API%20login", new_mapping());
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("\"origin\":\"api\""), "{body}");

    // The new agent logs in on the new contact point: 8 hours.
    let sc = login_scenario(dir.path(), NEWBIE, &[Wait(800), Key('1')], true);
    sipp(sc.to_str().unwrap(), Some(sw.sip), 1, &["-s", NEW]).assert_ok(&sw);
    let calls = login_calls(&sw, 1);
    assert_eq!(calls[0]["agent_user_id"], "newbie", "{calls:?}");
    assert_eq!(calls[0]["outcome"], "online", "{calls:?}");

    // A call in progress on the mapping about to go: the agent waits 4 s
    // in the menu before pressing 1.
    let before = sw.log().matches("incoming call").count();
    let sc = login_scenario(dir.path(), NEWBIE, &[Wait(4000), Key('2')], true);
    let sip = sw.sip;
    let in_progress =
        std::thread::spawn(move || sipp(sc.to_str().unwrap(), Some(sip), 1, &["-s", NEW]));
    await_some("the second log-in call", Duration::from_secs(10), || {
        (sw.log().matches("incoming call").count() > before).then_some(())
    });
    let (status, body) = http_json(
        sw.http,
        "DELETE",
        "/api/v1/dispatch-mappings/API%20login",
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 204, "{body}");
    // The next call to the number: 404.
    expect_status(&sw, dir.path(), NEW, 404);
    // The call that started before finishes its menu.
    in_progress.join().unwrap().assert_ok(&sw);
    let calls = login_calls(&sw, 2);
    assert_eq!(calls[1]["outcome"], "online", "{calls:?}");
    assert_eq!(calls[1]["hours"], 24, "{calls:?}");
    let log = sw.log();
    assert!(log.contains("directory changed"), "{log}");
    assert!(!log.contains("97531"), "a PIN reached the log");
}

#[test]
fn what_the_api_made_survives_a_restart_exports_and_conflicts_with_the_file() {
    let mut sw = start();
    let mut user = new_user();
    user["pin"] = serde_json::json!("97531");
    let (status, body) = put(&sw, "/api/v1/users/newbie", user);
    assert_eq!(status, 201, "{body}");
    assert!(!body.contains("97531"), "{body}");
    let (status, body) = put(&sw, "/api/v1/dispatch-mappings/API%20login", new_mapping());
    assert_eq!(status, 201, "{body}");

    // Export: the file and the store, which check-config accepts, and which
    // declares the same users and mappings the switch runs.
    let out = sw.cli(&["export"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(exported.contains("id = \"newbie\""), "{exported}");
    assert!(exported.contains("name = \"API login\""), "{exported}");
    let copy = sw.dir.path().join("exported.toml");
    std::fs::write(&copy, &exported).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .args(["check-config", "--config"])
        .arg(&copy)
        .output()
        .expect("run check-config");
    let said = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        said.contains("OK (4 users, 2 flows, 3 dispatch mappings"),
        "{said}"
    );

    // A restart on the same store keeps them.
    sw.terminate();
    let dir = std::mem::replace(&mut sw.dir, tempfile::tempdir().unwrap());
    let config = sw.config.clone();
    drop(sw);
    let sw = Switch::start_config_env(dir, config, &[("TPSWITCH_API_TOKEN", TOKEN)]);
    let (status, body) = http_json(sw.http, "GET", "/api/v1/users/newbie", Some(TOKEN), None);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"origin\":\"api\"") && body.contains("\"has_pin\":true"),
        "{body}"
    );
    // The file now declares the API's user: a reload is refused naming both.
    let text = std::fs::read_to_string(&sw.config).unwrap();
    let declared = format!(
        "{text}\n[[users]]\nid = \"newbie\"\nname = \"From the file\"\n  [[users.extensions]]\n  type = \"pstn\"\n  value = \"+12345670043\"\n"
    );
    std::fs::write(&sw.config, &declared).unwrap();
    let (status, body) = http_json(sw.http, "POST", "/api/v1/reload", Some(TOKEN), None);
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("\\\"newbie\\\"")
            && body.contains("tpswitch.db")
            && body.contains("tpswitch.toml"),
        "{body}"
    );
    // Still the API's user in force.
    let (_, body) = http_json(sw.http, "GET", "/api/v1/users/newbie", Some(TOKEN), None);
    assert!(body.contains("New Agent"), "{body}");

    // And a start on that file and store stops, naming both.
    let mut sw = sw;
    sw.terminate();
    let out = run_bounded(&sw.config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("\"newbie\"")
            && err.contains("tpswitch.db")
            && err.contains("made through the API"),
        "{err}"
    );
}

/// An uploaded prompt plays in a flow made through the API, on a mapping
/// made through the API: the library calls start with has it.
#[test]
fn an_uploaded_prompt_plays_in_a_flow_made_through_the_api() {
    let sw = start();
    let dir = tempfile::tempdir().unwrap();
    let wav = std::fs::read(repo().join("prompts/welcome.wav")).unwrap();
    let (status, body) = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(sw.http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "PUT /api/v1/prompts/api_welcome HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            wav.len()
        )
        .unwrap();
        s.write_all(&wav).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status: u16 = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, out)
    };
    assert_eq!(status, 201, "{body}");
    let (_, flow) = http_json(
        sw.http,
        "GET",
        "/api/v1/flows/Timed%20Presence",
        Some(TOKEN),
        None,
    );
    let mut flow: serde_json::Value = serde_json::from_str(&flow).expect("flow JSON");
    flow["name"] = serde_json::json!("API Presence");
    flow["prompts"]["welcome"] = serde_json::json!("api_welcome");
    let (status, body) = put(&sw, "/api/v1/flows/API%20Presence", flow);
    assert_eq!(status, 201, "{body}");
    let mut mapping = new_mapping();
    mapping["flow"] = serde_json::json!("API Presence");
    let (status, body) = put(&sw, "/api/v1/dispatch-mappings/API%20login", mapping);
    assert_eq!(status, 201, "{body}");
    // jsmith (the file's user) logs in through the API's flow.
    let sc = login_scenario(dir.path(), "+12345678910", &[Wait(800), Key('1')], true);
    sipp(sc.to_str().unwrap(), Some(sw.sip), 1, &["-s", NEW]).assert_ok(&sw);
    let calls = login_calls(&sw, 1);
    assert_eq!(calls[0]["outcome"], "online", "{calls:?}");
    // Had the library not taken the upload, the welcome would have been
    // skipped with this warning.
    let log = sw.log();
    assert!(!log.contains("prompt missing from the library"), "{log}");
}
