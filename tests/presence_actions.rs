//! Supervisors act on presence through `/api/v1` on the real binary
//! (issue 11, "Supervisors can act"): an agent logs in from their phone
//! (SIPp keying RFC 2833 digits), a supervisor extends then ends the
//! window through the API, the agent is called to be told, and the history
//! (API and `tpswitch history`) names who did what and why.

mod common;

use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;

const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";
const ADMIN: &str = "admin-s3cret";
const FLOOR: &str = "floor-s3cret";

/// One HTTP/1.1 request with an optional JSON body; (status, JSON body).
fn api(
    sw: &Switch,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(sw.http).expect("connect to the HTTP API");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// (kind, actor, reason) of each entry, newest first.
fn story(items: &serde_json::Value) -> Vec<(String, String, String)> {
    items
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                    (s("kind"), s("actor"), s("reason"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn line(kind: &str, actor: &str, reason: &str) -> (String, String, String) {
    (kind.to_owned(), actor.to_owned(), reason.to_owned())
}

#[test]
fn a_supervisor_extends_then_ends_an_agents_window_and_the_history_says_who_and_why() {
    // The trunk: a SIPp UAS standing in for the agent's phone, to take the
    // "you are now offline" call the end of the window places.
    let trunk = free_udp_port();
    let mut phone = BackgroundSipp::start("uas_answer_talk.xml", trunk, 1, &[]);
    let sw = Switch::start_env(
        trunk,
        &[
            ("TPSWITCH_API_TOKEN", ADMIN),
            ("TPSWITCH_SUPERVISOR_TOKEN", FLOOR),
        ],
        |t| {
            t.replace_exact(
                "# tokens = [",
                "tokens = [{ name = \"floor\", role = \"supervisor\", token_env = \"TPSWITCH_SUPERVISOR_TOKEN\" }]\n# tokens = [",
            )
        },
    );

    // The agent logs in from their phone: key 1, eight hours.
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(1000), Key('1')], true);
    sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    )
    .assert_ok(&sw);
    assert_eq!(agent(&sw, "jsmith")["state"], "online", "{}", sw.log());

    // The supervisor extends it to ten hours from now.
    let (status, change) = api(
        &sw,
        "PUT",
        "/api/v1/agents/jsmith/presence",
        FLOOR,
        Some(serde_json::json!({"minutes": 600, "reason": "covering the late shift"})),
    );
    assert_eq!(status, 200, "{change}\n{}", sw.log());
    assert_eq!(change["change"], "extended");
    let a = agent(&sw, "jsmith");
    assert_eq!(a["window"]["end"], change["window"]["end"], "{a}");

    // ... and ends it.
    let (status, ended) = api(
        &sw,
        "DELETE",
        "/api/v1/agents/jsmith/presence?reason=went%20home%20ill",
        FLOOR,
        None,
    );
    assert_eq!(status, 200, "{ended}\n{}", sw.log());
    assert_eq!(agent(&sw, "jsmith")["state"], "offline");

    // The agent's phone is called to be told, as at the end of a window.
    let status = phone.wait(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "no notification call completed: {status:?}\n{}\n--- switch\n{}",
        phone.errors(),
        sw.log()
    );
    assert!(
        phone
            .messages()
            .contains(&format!("INVITE sip:{JSMITH}@127.0.0.1:{trunk}")),
        "{}",
        phone.messages()
    );

    let expected = vec![
        line("forced-offline", "floor", "went home ill"),
        line("extended", "floor", "covering the late shift"),
        line("online", "agent", "log-in menu"),
    ];
    let (status, page) = api(&sw, "GET", "/api/v1/agents/jsmith/history", ADMIN, None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(story(&page["items"]), expected, "{page}");
    assert!(page["items"][2]["call_id"].is_string(), "{page}");

    // `tpswitch history` reads the same rows beside the running switch.
    let out = sw.cli(&["history", "jsmith", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    assert_eq!(story(&rows), expected, "{rows}");
    assert_eq!(rows, page["items"]);
}

/// The customer's side: call `number`, hear what is played, and answer the
/// switch's BYE (within 40 s).
fn customer_scenario(dir: &std::path::Path, caller: &str) -> std::path::PathBuf {
    const AWAIT_BYE: &str = r#"  <recv request="BYE" timeout="40000"/>
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
"#;
    let text = std::fs::read_to_string(sipp_dir().join("login.xml"))
        .unwrap()
        .replace("@STEPS@", "")
        .replace("@END@", AWAIT_BYE)
        .replace("@CALLER@", caller);
    let path = dir.join("customer.xml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A supervisor's end behaves like the agent's own log-out for the queue:
/// the next customer is not offered to the agent. jsmith is the only
/// billing agent online; once the window is ended through the API, a
/// customer calling Billing finds nobody (`no_agents = "immediate"`):
/// overflow, no attempt. (Without the end, jsmith would be rung.)
#[test]
fn after_a_supervisor_ends_the_window_the_queue_offers_the_agent_no_call() {
    let sw = Switch::start_env(free_udp_port(), &[("TPSWITCH_API_TOKEN", ADMIN)], |t| t);
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(1000), Key('1')], true);
    sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    )
    .assert_ok(&sw);
    assert_eq!(agent(&sw, "jsmith")["state"], "online", "{}", sw.log());

    let (status, ended) = api(
        &sw,
        "DELETE",
        "/api/v1/agents/jsmith/presence",
        ADMIN,
        Some(serde_json::json!({"reason": "end of shift"})),
    );
    assert_eq!(status, 200, "{ended}\n{}", sw.log());

    let sc = customer_scenario(dir.path(), "+15551234567");
    sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", "+15550100001"],
    )
    .assert_ok(&sw);
    let calls = await_some(
        "the customer call recorded",
        Duration::from_secs(10),
        || {
            let out = sw.cli(&["calls", "--json", "--since", "1h"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let done = v.as_array()?.iter().all(|c| !c["ended_at"].is_null());
            (done && !v.as_array()?.is_empty()).then_some(v)
        },
    );
    assert_eq!(calls[0]["outcome"], "overflow", "{calls}\n{}", sw.log());
    assert_eq!(calls[0]["attempts"], serde_json::json!([]), "{calls}");
    // The history says it was the admin token, not the agent.
    let (_, page) = api(
        &sw,
        "GET",
        "/api/v1/agents/jsmith/history?limit=1",
        ADMIN,
        None,
    );
    assert_eq!(
        story(&page["items"]),
        vec![line("forced-offline", "admin", "end of shift")],
        "{page}"
    );
}
