//! `tpswitch run` on the PostgreSQL store (`store.url`, issue 13): SIPp
//! logs an agent in over real SIP and RTP, and the window, its history and
//! the log-in call are rows in PostgreSQL, read back through
//! `tpswitch agents` and `tpswitch calls`; no SQLite file is made, and the
//! password in the URL is in no log line. A second switch under the same
//! `store.node` is refused, naming the first; a user added through one
//! node's API logs in through another.
//!
//! Needs a PostgreSQL server: `TPSWITCH_TEST_POSTGRES` (set by
//! `scripts/test`, which starts a throwaway cluster). Without it these
//! tests say so and pass, except under CI, where that is a failure.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::block_on;
use common::Step::{Key, Wait};
use common::*;
use sqlx::{Connection, Row};

const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";
/// Put in the URL to show it never reaches a log line (the test cluster
/// trusts local connections, so it is not checked).
const PASSWORD: &str = "pw-that-must-not-be-logged";

/// A new empty database on the test server: its URL (with `PASSWORD`) and
/// its name. `None` when no server is named outside CI.
fn fresh_database(tag: &str) -> Option<(String, String)> {
    let (url, name) = common::pg::fresh_database(&format!("it_{tag}"))?;
    let mut url = url::Url::parse(&url).expect("a URL");
    url.set_password(Some(PASSWORD)).expect("a URL with a host");
    Some((url.to_string(), name))
}

/// The test config with `store.url` set to `url`.
fn on_postgres(url: &str) -> impl FnOnce(String) -> String + '_ {
    move |t: String| {
        t.replace_exact(
            "# url = \"postgres://tpswitch@127.0.0.1:5432/tpswitch\"",
            &format!("url = \"{url}\""),
        )
    }
}

#[test]
fn an_agent_logs_in_on_the_postgres_store() {
    let Some((url, name)) = fresh_database("login") else {
        return;
    };
    let sw = Switch::start(on_postgres(&url));
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(1000), Key('1')], true);
    sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    )
    .assert_ok(&sw);

    // Read back through the commands beside `run`, which read the same
    // database.
    let a = agent(&sw, "jsmith");
    assert_eq!(a["state"], "online", "{a}");
    let secs = a["remaining_seconds"].as_i64().unwrap_or(0);
    assert!((7 * 3600..=8 * 3600).contains(&secs), "{a}");
    let logins = login_calls(&sw, 1);
    assert_eq!(logins[0]["outcome"], "online", "{logins:?}");
    assert_eq!(logins[0]["agent_user_id"], "jsmith", "{logins:?}");

    // And straight from PostgreSQL: the window and its history entry.
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let row = sqlx::query(
            "SELECT user_id, window_end_ms - window_start_ms AS len FROM presence_current",
        )
        .fetch_one(&mut conn)
        .await
        .expect("one open window");
        assert_eq!(row.get::<String, _>("user_id"), "jsmith");
        assert_eq!(row.get::<i64, _>("len"), 8 * 3600 * 1000);
        let kinds: Vec<String> =
            sqlx::query_scalar("SELECT kind FROM presence_history WHERE user_id = 'jsmith'")
                .fetch_all(&mut conn)
                .await
                .expect("history");
        assert_eq!(kinds, ["online"]);
    });

    assert!(
        !sw.dir.path().join("tpswitch.db").exists(),
        "store.url is set: no SQLite file may be made"
    );
    let log = sw.log();
    assert!(
        log.contains(&format!("/{name}")),
        "the log names the database:\n{log}"
    );
    assert!(
        !log.contains(PASSWORD),
        "the password reached the log:\n{log}"
    );
}

#[test]
fn a_second_switch_under_the_same_node_name_is_refused() {
    let Some((url, _)) = fresh_database("lock") else {
        return;
    };
    let sw = Switch::start(on_postgres(&url));
    let mut second = Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .args(["run", "--config"])
        .arg(&sw.config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second tpswitch");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second switch did not stop on the locked store");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = second.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(!status.success(), "{err}");
    // Several switches share a PostgreSQL store as nodes, each under its
    // own store.node; this one took the first's name (the host's).
    assert!(err.contains("is in use"), "{err}");
    assert!(err.contains("store.node"), "names the setting: {err}");
    assert!(
        err.contains(&format!("process {}-", sw.pid())),
        "names the holder: {err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
}

const TOKEN: &str = "pg-directory-test-token";

/// A user made through the API of a switch on the PostgreSQL store is a
/// row there: after a restart on the same database it is still in the
/// directory, logs in, and `tpswitch export` lists it.
#[test]
fn a_user_made_through_the_api_is_kept_in_postgres_and_logs_in_after_a_restart() {
    let Some((url, _)) = fresh_database("directory") else {
        return;
    };
    let envs = [("TPSWITCH_API_TOKEN", TOKEN)];
    let mut sw = Switch::start_env(free_udp_port(), &envs, on_postgres(&url));
    let user = serde_json::json!({
        "name": "New Agent",
        "extensions": [{"type": "pstn", "value": "+1 (234) 567-0042", "description": "mobile"}]
    });
    let (status, body) = put_json(&sw, "/api/v1/users/newbie", &user);
    assert_eq!(status, 201, "{body}");

    sw.terminate();
    let dir = std::mem::replace(&mut sw.dir, tempfile::tempdir().unwrap());
    let config = sw.config.clone();
    drop(sw);
    let sw = Switch::start_config_env(dir, config, &envs);
    let scenario = tempfile::tempdir().unwrap();
    let sc = login_scenario(
        scenario.path(),
        "+12345670042",
        &[Wait(800), Key('1')],
        true,
    );
    sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    )
    .assert_ok(&sw);
    let logins = login_calls(&sw, 1);
    assert_eq!(logins[0]["agent_user_id"], "newbie", "{logins:?}");
    assert_eq!(logins[0]["outcome"], "online", "{logins:?}");
    let out = sw.cli(&["export"]);
    let exported = String::from_utf8_lossy(&out.stdout);
    assert!(exported.contains("id = \"newbie\""), "{exported}");
}

/// `on_postgres`, as node `node` of several (short heartbeat and lease, so
/// the test does not wait on defaults meant for production).
fn as_node<'a>(url: &'a str, node: &'a str) -> impl FnOnce(String) -> String + 'a {
    move |t: String| {
        t.replace_exact(
            "# url = \"postgres://tpswitch@127.0.0.1:5432/tpswitch\"",
            &format!(
                "url = \"{url}\"\nnode = \"{node}\"\nheartbeat = \"200ms\"\nclaim_lease = \"1s\""
            ),
        )
    }
}

/// Two nodes on one database: a user added through node b's API is in
/// node a's directory within a few heartbeats, logs in through node a, and
/// node b's API shows the window node a opened.
#[test]
fn a_user_added_through_one_nodes_api_logs_in_on_the_other() {
    let Some((url, _)) = fresh_database("nodes") else {
        return;
    };
    let envs = [("TPSWITCH_API_TOKEN", TOKEN)];
    let a = Switch::start_env(free_udp_port(), &envs, as_node(&url, "a"));
    let b = Switch::start_env(free_udp_port(), &envs, as_node(&url, "b"));
    let (status, _) = http_get(a.http, "/api/v1/users/newbie", Some(TOKEN));
    assert_eq!(status, 404, "not there before");
    let user = serde_json::json!({
        "name": "New Agent",
        "extensions": [{"type": "pstn", "value": "+1 (234) 567-0042"}]
    });
    let (status, body) = put_json(&b, "/api/v1/users/newbie", &user);
    assert_eq!(status, 201, "{body}");
    // A notification wakes node a; a missed one is caught by its re-read
    // every three heartbeats (600 ms here).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http_get(a.http, "/api/v1/users/newbie", Some(TOKEN));
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node a never had the user: {status} {body}\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        a.log().contains("directory changed on another node"),
        "{}",
        a.log()
    );
    let scenario = tempfile::tempdir().unwrap();
    let sc = login_scenario(
        scenario.path(),
        "+12345670042",
        &[Wait(800), Key('1')],
        true,
    );
    sipp(sc.to_str().unwrap(), Some(a.sip), 1, &["-s", CONTACT_POINT]).assert_ok(&a);
    let (status, body) = http_get(b.http, "/api/v1/agents/newbie", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(
        seen["state"], "online",
        "node b sees node a's window: {seen}"
    );
}

/// PUT with a JSON body and the admin token; (status, body).
fn put_json(sw: &Switch, path: &str, body: &serde_json::Value) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(sw.http).expect("connect to the HTTP API");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.to_string();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
