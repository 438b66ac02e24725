//! The floor dashboard in a real browser: Debian's headless Chromium
//! driven by chromedriver through the W3C WebDriver protocol (a handful of
//! raw HTTP calls: see docs/decisions.md). An agent logs in through SIPp
//! and the page, never reloaded, shows the row turn online with its
//! countdown ticking. Screenshots go to `target/screenshots/` (each path
//! is printed; run with `--nocapture` to see them).
//!
//! Every page reads the switch's real routes: no answer is stood in. The
//! tests that look at "today" (figures since 00:00 UTC) note the day when
//! they start and leave those checks out when a UTC midnight passed
//! meanwhile, so a run at 00:00 UTC cannot fail for the calendar.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::Step::{Key, Wait};
use common::*;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TOKEN: &str = "browser-test-admin-token";
const CONTACT_POINT: &str = "+15550100000";
const BILLING: &str = "+15550100001";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";
const CUSTOMER: &str = "+15551234567";
/// How long the page may take to show a change (it reloads on each event
/// of the stream, and polls every second without it).
const SEEN_WITHIN: Duration = Duration::from_secs(10);

// ------------------------------------------------------------ WebDriver

/// One HTTP/1.1 exchange with chromedriver: (status, JSON body).
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send to chromedriver");
    // chromedriver may keep the connection open whatever we ask: read the
    // head, then exactly Content-Length bytes (or to the end, chunked).
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut want: Option<usize> = None;
    loop {
        if want.is_some_and(|total| raw.len() >= total) {
            break;
        }
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        raw.extend_from_slice(&buf[..n]);
        if want.is_none() {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                want = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .map(|len| end + 4 + len);
            }
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, mut payload) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_ascii_lowercase(), b.to_owned()))
        .unwrap_or_default();
    if head.contains("transfer-encoding: chunked") {
        payload = dechunk(&payload);
    }
    (
        status,
        serde_json::from_str(&payload).unwrap_or(Value::Null),
    )
}

/// RFC 9112 §7.1 chunked body, enough for chromedriver's answers.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    addr: SocketAddr,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: install Debian's chromium and chromium-driver \
                 (scripts/test installs them)"
            );
        }
        let port = free_udp_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut d = Driver {
            child,
            addr,
            profile: tempfile::tempdir().expect("tempdir"),
        };
        await_some("chromedriver ready", Duration::from_secs(20), || {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            TcpStream::connect(addr).ok()?;
            let (_, v) = http(addr, "GET", "/status", None);
            (v["value"]["ready"] == true).then_some(())
        });
        d
    }

    /// A headless Chromium session with a window of `width`×`height`.
    fn session(&self, width: u32, height: u32) -> Session<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            },
        }}});
        let (status, v) = http(self.addr, "POST", "/session", Some(&caps));
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session ({status}): {v}"))
            .to_owned();
        Session { driver: self, id }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session; closed (the browser quits) on drop.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = http(
            self.driver.addr,
            method,
            &format!("/session/{}{path}", self.id),
            body.as_ref(),
        );
        assert!(
            status == 200,
            "WebDriver {method} {path} answered {status}: {v}"
        );
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn element(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        // W3C element reference (WebDriver §12.1).
        v["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Runs `body` (a function body; `arguments` are `args`) in the page.
    fn script(&self, body: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": body, "args": args })),
        )
    }

    /// The text of the first element matching `css`; "" when none.
    fn text(&self, css: &str) -> String {
        self.script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
            json!([css]),
        )
        .as_str()
        .unwrap_or("")
        .to_owned()
    }

    /// Waits until the text of `css` satisfies `ok`; returns it.
    #[track_caller]
    fn await_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            await_some(what, SEEN_WITHIN, || {
                last = self.text(css);
                ok(&last).then(|| last.clone())
            })
        }));
        found.unwrap_or_else(|_| {
            let shot = self.screenshot(&format!("failed-{}", what.replace(' ', "-")));
            panic!(
                "the page never showed {what} in {css} (last: {last:?}; status: {:?}; screenshot {})",
                self.text("#status"),
                shot.display()
            )
        })
    }

    fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Saves a PNG of the viewport under target/screenshots/ and prints
    /// where.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.cmd("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or(""))
            .expect("screenshot is base64");
        let dir = repo().join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write screenshot");
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = http(
            self.driver.addr,
            "DELETE",
            &format!("/session/{}", self.id),
            None,
        );
    }
}

// ------------------------------------------------------------ the switch

fn switch(edit: impl FnOnce(String) -> String) -> Switch {
    Switch::start_env(free_udp_port(), &[("TPSWITCH_API_TOKEN", TOKEN)], edit)
}

/// Puts jsmith online for 24 h through the phone menu (key 2).
fn log_in_jsmith(sw: &Switch) {
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(1000), Key('2')], true);
    let run = sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    );
    run.assert_ok(sw);
}

/// Opens /floor and gives it the token, as an operator does once per tab.
fn open_floor(s: &Session, sw: &Switch) {
    s.goto(&format!("http://{}/floor", sw.http));
    // Without the token the page says it wants one.
    s.await_text("#token-state", "the request for a token", |t| {
        t.contains("401")
    });
    s.type_into("#token", TOKEN);
    s.click("#token-use");
}

const STATE: &str = "tr[data-agent=\"jsmith\"] .badge";
const COUNTDOWN: &str = "tr[data-agent=\"jsmith\"] .countdown";

/// "1d 00:00:00", "23:59:58", "4:05" as seconds.
fn seconds(text: &str) -> Option<i64> {
    let (days, clock) = match text.split_once("d ") {
        Some((d, c)) => (d.trim().parse::<i64>().ok()?, c),
        None => (0, text),
    };
    let mut s = 0;
    for part in clock.trim().split(':') {
        s = s * 60 + part.parse::<i64>().ok()?;
    }
    Some(days * 86_400 + s)
}

#[test]
fn the_floor_shows_an_agent_going_online_without_a_reload() {
    let sw = switch(|t| t);
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    open_floor(&s, &sw);
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    assert_eq!(s.text(COUNTDOWN), "—");
    // A mark in this document: still there later means no reload.
    s.script("window.tpMark = 'not reloaded'; return null;", json!([]));
    s.screenshot("floor-1-offline");

    log_in_jsmith(&sw);
    s.await_text(STATE, "jsmith online", |t| t == "online");
    // The countdown starts near 24 h ...
    let first = s.await_text(COUNTDOWN, "a countdown near 24 h", |t| {
        seconds(t).is_some_and(|v| (24 * 3600 - 120..=24 * 3600).contains(&v))
    });
    // ... and ticks down in the page.
    let later = s.await_text(COUNTDOWN, "the countdown ticking", |t| {
        seconds(t).is_some_and(|v| Some(v) < seconds(&first))
    });
    assert_eq!(
        s.script("return window.tpMark || null;", json!([])),
        json!("not reloaded"),
        "the page was reloaded"
    );
    assert_eq!(
        s.script(
            "return sessionStorage.getItem('tpswitch.token');",
            json!([])
        ),
        json!(TOKEN),
        "the token is kept for the tab"
    );
    assert!(
        s.text("#status").contains("Live: /api/v1/floor"),
        "{}",
        s.text("#status")
    );
    println!("countdown: {first} then {later}");
    s.screenshot("floor-2-online");

    // A phone-sized screen: each row becomes a labelled card.
    s.resize(390, 844);
    let thead = s.script(
        "return getComputedStyle(document.querySelector('#agents thead')).display;",
        json!([]),
    );
    assert_eq!(
        thead,
        json!("none"),
        "the table header is hidden on a phone"
    );
    s.screenshot("floor-3-phone");
}

/// `GET path` on the switch's API with the admin token: (status, JSON).
fn api_get(sw: &Switch, path: &str) -> (u16, Value) {
    let (status, body) = http_get(sw.http, path, Some(TOKEN));
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Today's date in UTC: a test reading "today" compares it at its end.
fn utc_day() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

impl Session<'_> {
    /// Empties an input (WebDriver §12.5.2 Element Clear).
    fn clear(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
    }

    /// Runs `body` as an asynchronous script: it calls its last argument
    /// with the result (WebDriver §13.2.2 Execute Async Script).
    fn script_async(&self, body: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({ "script": body, "args": args })),
        )
    }

    /// Clicks `css` once the page has drawn it.
    fn click_when(&self, css: &str) {
        await_some(&format!("{css} drawn"), SEEN_WITHIN, || {
            let there = self.script(
                "return document.querySelector(arguments[0]) !== null;",
                json!([css]),
            );
            (there == json!(true)).then_some(())
        });
        self.click(css);
    }

    /// Sets a `<select>` to `value` as a choice would, telling the page.
    fn choose(&self, css: &str, value: &str) {
        self.script(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1];
             e.dispatchEvent(new Event('change')); return e.value;",
            json!([css, value]),
        );
    }
}

/// The admin's pages against the directory routes: a user with an
/// extension is created from the console and edited (the edit sends the
/// ETag it read as If-Match), a mapping refused by the switch's own
/// validation shows the 422 problem beside its field and is then
/// created, and both are deleted; the switch's API sees each step.
#[test]
fn the_console_creates_a_user_and_a_mapping_and_shows_a_problem_beside_its_field() {
    let sw = switch(|t| t);
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    // The token given to the floor is the tab's: the console uses it.
    open_floor(&s, &sw);
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    s.goto(&format!("http://{}/#users", sw.http));
    s.await_text("#page h2", "the Users page", |t| t.starts_with("Users"));
    s.await_text(
        "#users-list tr[data-key=\"jsmith\"] .badge",
        "jsmith from the file",
        |t| t == "file",
    );
    s.screenshot("console-1-users");

    // A new user with one extension.
    s.click("#page .section-head button");
    s.await_text("#page h2", "the new user form", |t| t == "New user");
    s.type_into("form.edit [name=\"id\"]", "tpage");
    s.type_into("form.edit [name=\"name\"]", "Tess Page");
    s.type_into("form.edit [name=\"skills\"]", "billing, support");
    s.type_into("form.edit [name=\"extensions[0].value\"]", "+15550107777");
    s.type_into("form.edit [name=\"extensions[0].ext\"]", "12");
    s.click("form.edit button[type=\"submit\"]");
    s.await_text(
        "#users-list tr[data-key=\"tpage\"] .badge",
        "the new user listed",
        |t| t == "api",
    );
    let (status, user) = api_get(&sw, "/api/v1/users/tpage");
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["name"], "Tess Page", "{user}");
    assert_eq!(user["skills"], json!(["billing", "support"]), "{user}");
    assert_eq!(user["extensions"][0]["value"], "+15550107777", "{user}");
    assert_eq!(user["extensions"][0]["ext"], "12", "{user}");
    assert_eq!(user["origin"], "api", "{user}");

    // Edit it: the form is filled from the switch, and Save replaces it.
    s.click("#users-list tr[data-key=\"tpage\"] button:not(.danger)");
    s.await_text("#page h2", "the edit form", |t| t == "Edit user");
    s.script(
        "window.tpSent = [];
         const real = window.fetch;
         window.fetch = (url, init) => {
           if (init && init.method === 'PUT') window.tpSent.push(init.headers['If-Match'] || '');
           return real(url, init);
         };
         return null;",
        json!([]),
    );
    assert_eq!(
        s.script(
            "return document.querySelector('form.edit [name=\"extensions[0].value\"]').value;",
            json!([])
        ),
        json!("+15550107777")
    );
    s.clear("form.edit [name=\"name\"]");
    s.type_into("form.edit [name=\"name\"]", "Tess Page-Smith");
    s.click("form.edit button[type=\"submit\"]");
    s.await_text(
        "#users-list tr[data-key=\"tpage\"] td",
        "the edited name",
        |t| t == "tpage",
    );
    await_some("the edit stored", SEEN_WITHIN, || {
        (api_get(&sw, "/api/v1/users/tpage").1["name"] == "Tess Page-Smith").then_some(())
    });
    let if_match = s.script("return window.tpSent;", json!([]));
    assert!(
        if_match[0].as_str().is_some_and(|t| !t.is_empty()),
        "the edit sent no If-Match: {if_match}"
    );

    // A mapping the switch refuses: its problem beside the phone number.
    s.click("#tabs a[data-tab=\"mappings\"]");
    s.await_text("#page h2", "the Dispatch mappings page", |t| {
        t.starts_with("Dispatch mappings")
    });
    s.click("#page .section-head button");
    s.await_text("#page h2", "the new mapping form", |t| {
        t == "New dispatch mapping"
    });
    s.type_into("form.edit [name=\"name\"]", "Sales line");
    s.type_into("form.edit [name=\"phone_number\"]", "555");
    s.choose("form.edit [name=\"flow\"]", "Billing");
    s.click("form.edit button[type=\"submit\"]");
    let problem = s.await_text(
        ".field[data-field=\"phone_number\"] .field-error",
        "the problem beside the phone number",
        |t| !t.is_empty(),
    );
    // The words of the file's validation, as `tpswitch check` prints them.
    assert_eq!(
        problem,
        "\"555\" is not an E.164 number (too few digits) — \
         write it in international form such as \"+12345678910\""
    );
    assert_eq!(s.text(".field[data-field=\"name\"] .field-error"), "");
    assert_eq!(s.text(".field[data-field=\"flow\"] .field-error"), "");
    s.screenshot("console-2-mapping-refused");
    let (status, _) = api_get(&sw, "/api/v1/dispatch-mappings/Sales%20line");
    assert_eq!(status, 404, "a refused mapping was stored");

    // Corrected, it is created.
    s.clear("form.edit [name=\"phone_number\"]");
    s.type_into("form.edit [name=\"phone_number\"]", "+15550109999");
    s.click("form.edit button[type=\"submit\"]");
    s.await_text(
        "#mappings-list tr[data-key=\"Sales line\"] .badge",
        "the new mapping listed",
        |t| t == "api",
    );
    let (status, mapping) = api_get(&sw, "/api/v1/dispatch-mappings/Sales%20line");
    assert_eq!(status, 200, "{mapping}");
    assert_eq!(mapping["phone_number"], "+15550109999", "{mapping}");
    assert_eq!(mapping["flow"], "Billing", "{mapping}");
    s.screenshot("console-3-mapping-created");

    // Both deleted from their lists.
    s.click("#mappings-list tr[data-key=\"Sales line\"] button.danger");
    await_some("the mapping deleted", SEEN_WITHIN, || {
        (api_get(&sw, "/api/v1/dispatch-mappings/Sales%20line").0 == 404).then_some(())
    });
    s.click("#tabs a[data-tab=\"users\"]");
    s.await_text(
        "#users-list tr[data-key=\"tpage\"] .badge",
        "the user listed",
        |t| t == "api",
    );
    s.click("#users-list tr[data-key=\"tpage\"] button.danger");
    await_some("the user deleted", SEEN_WITHIN, || {
        (api_get(&sw, "/api/v1/users/tpage").0 == 404).then_some(())
    });
}

/// An edit does not overwrite a change made meanwhile: the form sent the
/// ETag it read as If-Match, the switch answers 412, the page says so and
/// the other change stays.
#[test]
fn the_console_refuses_to_overwrite_a_change_made_meanwhile() {
    let sw = switch(|t| t);
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    open_floor(&s, &sw);
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    // Another admin's changes, made with the tab's token outside the form.
    let put = |name: &str| {
        s.script_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/v1/users/tpage', { method: 'PUT', headers: {
                 'Content-Type': 'application/json',
                 Authorization: 'Bearer ' + sessionStorage.getItem('tpswitch.token') },
               body: JSON.stringify({ name: arguments[0],
                 extensions: [{ type: 'pstn', value: '+15550107777' }] }) })
               .then((r) => done(r.status));",
            json!([name]),
        )
    };
    assert_eq!(put("Tess Page"), json!(201));
    s.goto(&format!("http://{}/#users", sw.http));
    s.click_when("#users-list tr[data-key=\"tpage\"] button:not(.danger)");
    s.await_text("#page h2", "the edit form", |t| t == "Edit user");
    assert_eq!(put("Changed Elsewhere"), json!(200));
    s.clear("form.edit [name=\"name\"]");
    s.type_into("form.edit [name=\"name\"]", "Mine");
    s.click("form.edit button[type=\"submit\"]");
    s.await_text("form.edit .form-errors", "the refusal on the form", |t| {
        t.contains("has changed since the version in If-Match")
    });
    assert_eq!(s.text("#page h2"), "Edit user", "the form stays open");
    assert_eq!(
        api_get(&sw, "/api/v1/users/tpage").1["name"],
        "Changed Elsewhere",
        "the other change was overwritten"
    );
    s.screenshot("console-6-changed-meanwhile");
}

/// A queue flow made, changed and removed from the Flows page: only the
/// inputs of the chosen activity are sent, and the switch stores them.
#[test]
fn the_console_creates_edits_and_deletes_a_flow() {
    let sw = switch(|t| t);
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    open_floor(&s, &sw);
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    s.goto(&format!("http://{}/#flows", sw.http));
    s.await_text(
        "#flows-list tr[data-key=\"Billing\"] .badge",
        "Billing from the file",
        |t| t == "file",
    );
    s.click("#page .section-head button");
    s.await_text("#page h2", "the new flow form", |t| t == "New flow");
    s.type_into("form.edit [name=\"name\"]", "Sales");
    s.choose("form.edit [name=\"activity\"]", "queue");
    s.type_into("form.edit [name=\"skills\"]", "billing");
    s.type_into("form.edit [name=\"max_wait\"]", "3m");
    s.click("form.edit button[type=\"submit\"]");
    s.await_text(
        "#flows-list tr[data-key=\"Sales\"] .badge",
        "the new flow listed",
        |t| t == "api",
    );
    let (status, flow) = api_get(&sw, "/api/v1/flows/Sales");
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["activity"], "queue", "{flow}");
    assert_eq!(flow["skills"], json!(["billing"]), "{flow}");
    assert_eq!(flow["max_wait"], "3m", "{flow}");
    assert!(
        flow.get("presets").is_none(),
        "a timed-presence input was sent: {flow}"
    );

    s.click("#flows-list tr[data-key=\"Sales\"] button:not(.danger)");
    s.await_text("#page h2", "the edit form", |t| t == "Edit flow");
    s.clear("form.edit [name=\"max_wait\"]");
    s.type_into("form.edit [name=\"max_wait\"]", "2m");
    s.click("form.edit button[type=\"submit\"]");
    await_some("the edit stored", SEEN_WITHIN, || {
        (api_get(&sw, "/api/v1/flows/Sales").1["max_wait"] == "2m").then_some(())
    });
    s.await_text(
        "#flows-list tr[data-key=\"Sales\"] .badge",
        "the flow listed again",
        |t| t == "api",
    );
    s.screenshot("console-5-flows");
    s.click("#flows-list tr[data-key=\"Sales\"] button.danger");
    await_some("the flow deleted", SEEN_WITHIN, || {
        (api_get(&sw, "/api/v1/flows/Sales").0 == 404).then_some(())
    });
}

/// A prompt uploaded from the Media page (a WAV file chosen in the file
/// input) is in the library and plays back in the page from
/// `GET /api/v1/prompts/{name}/audio`.
#[test]
fn the_console_uploads_a_prompt_and_plays_it_back() {
    let sw = switch(|t| t);
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    open_floor(&s, &sw);
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    s.goto(&format!("http://{}/#media", sw.http));
    s.await_text("#page h2", "the Media page", |t| t.starts_with("Media"));
    s.click("#page .section-head button");
    s.await_text("#page h2", "the new prompt form", |t| t == "New media");
    s.type_into("form.edit [name=\"name\"]", "sales_greeting");
    let wav = repo().join("prompts/welcome.wav");
    // A file input takes the path typed into it (WebDriver §12.5.3).
    s.type_into("form.edit [name=\"audio\"]", &wav.display().to_string());
    s.click("form.edit button[type=\"submit\"]");
    s.await_text(
        "#media-list tr[data-key=\"sales_greeting\"] .badge",
        "the uploaded prompt listed",
        |t| t == "api",
    );
    let (status, prompt) = api_get(&sw, "/api/v1/prompts/sales_greeting");
    assert_eq!(status, 200, "{prompt}");
    assert_eq!(prompt["origin"], "api", "{prompt}");
    // Play: the page fetches the audio with the token and plays it.
    s.click("#media-list tr[data-key=\"sales_greeting\"] button:not(.danger):nth-of-type(2)");
    let seconds = await_some("the audio loaded in the page", SEEN_WITHIN, || {
        let v = s.script(
            "const a = document.querySelector('#media-list tr[data-key=\"sales_greeting\"] audio');
             return a && a.src.startsWith('blob:') && a.readyState >= 1 ? a.duration : null;",
            json!([]),
        );
        v.as_f64()
    });
    assert!(seconds > 0.1, "the prompt plays {seconds} s");
    println!("sales_greeting plays {seconds:.2} s");
    s.screenshot("console-4-prompt");
}

/// The walk through the floor, with real peers only: an agent logs
/// in through SIPp and the row turns online with its countdown; a customer
/// (SIPp) waits in the Billing queue and the page counts them, shows their
/// call and then today's figures; the window is ended from the page and
/// the row goes offline — all in one page that is never reloaded.
///
/// Billing asks for a skill jsmith lacks, so the customer waits for
/// nobody (`no_agents = "wait"`) while jsmith is online.
#[test]
fn the_floor_follows_a_login_a_waiting_customer_and_an_ended_window() {
    let day = utc_day();
    let sw = switch(|t| {
        t.replace_exact("no_agents = \"immediate\"", "no_agents = \"wait\"")
            .replace_exact(
                "skills = [\"billing\"]               # an agent needs",
                "skills = [\"support\"]               # an agent needs",
            )
    });
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    open_floor(&s, &sw);
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    let queue = "#queues tr[data-queue=\"Billing\"]";
    s.await_text(&format!("{queue} .waiting-count"), "Billing empty", |t| {
        t == "0"
    });
    s.await_text("#status", "the page following the event stream", |t| {
        t.contains("Live: /api/v1/floor, updated on each event from /api/v1/events")
    });
    s.script("window.tpMark = 'not reloaded'; return null;", json!([]));

    // 1. The agent logs in from their phone.
    log_in_jsmith(&sw);
    s.await_text(STATE, "jsmith online", |t| t == "online");
    s.await_text(COUNTDOWN, "a countdown near 24 h", |t| {
        seconds(t).is_some_and(|v| (24 * 3600 - 120..=24 * 3600).contains(&v))
    });
    let cell = |n: u32| s.text(&format!("tr[data-agent=\"jsmith\"] td:nth-child({n})"));
    assert!(
        seconds(&cell(8)).is_some(),
        "time online is shown: {:?}",
        cell(8)
    );
    s.screenshot("floor-walk-1-online");

    // 2. A customer waits in the queue.
    let waiting = customer_waits(&sw, 8_000);
    s.await_text(
        &format!("{queue} .waiting-count"),
        "one customer waiting",
        |t| t == "1",
    );
    assert!(s
        .text(&format!("{queue} td:nth-child(4)"))
        .contains(CUSTOMER));
    s.await_text(&format!("{queue} .since"), "a wait that grows", |t| {
        seconds(t).is_some_and(|v| v >= 2)
    });
    assert_eq!(s.text("#calls tbody td:nth-child(1)"), CUSTOMER);
    assert_eq!(s.text("#calls tbody td:nth-child(2)"), "Billing");
    assert_eq!(s.text("#calls tbody td:nth-child(3)"), "waiting");
    s.screenshot("floor-walk-2-waiting");
    waiting.join().expect("the customer's SIPp").assert_ok(&sw);
    s.await_text(
        &format!("{queue} .waiting-count"),
        "nobody waiting after the hang-up",
        |t| t == "0",
    );

    // 3. The window is ended from the page (an admin's token).
    s.click("tr[data-agent=\"jsmith\"] button.danger");
    s.await_text("tr[data-agent=\"jsmith\"] .msg", "the end confirmed", |t| {
        t == "window ended"
    });
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    assert_eq!(s.text(COUNTDOWN), "—");
    let (_, history) = api_get(&sw, "/api/v1/agents/jsmith/history?limit=1");
    assert_eq!(history["items"][0]["kind"], "forced-offline", "{history}");
    assert_eq!(
        history["items"][0]["reason"], "from the floor view",
        "{history}"
    );
    s.screenshot("floor-walk-3-ended");

    // 4. Today's figures of the queue: one customer offered, who gave up.
    let today = "#today tbody tr[data-queue=\"Billing\"]";
    let figures = |n: u32| s.text(&format!("{today} td:nth-child({n})"));
    let seen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.await_text(&format!("{today} td:nth-child(4)"), "one abandoned", |t| {
            t == "1"
        })
    }));
    if utc_day() != day {
        println!("a UTC midnight passed during the test: today's figures not checked");
    } else {
        seen.unwrap_or_else(|e| std::panic::resume_unwind(e));
        assert_eq!(
            [figures(2), figures(3), figures(4)],
            ["1", "0", "1"].map(String::from),
            "offered, answered, abandoned"
        );
        assert!(
            seconds(&figures(6)).is_some_and(|v| v >= 2),
            "longest wait {:?}",
            figures(6)
        );
        assert_eq!(figures(5), "—", "no speed of answer without an answer");
        assert_eq!(
            figures(7),
            "0 % within 20 s",
            "the one wait over was not answered"
        );
        assert_eq!(cell(4), "0", "jsmith was offered nothing");
    }
    assert_eq!(
        s.script("return window.tpMark || null;", json!([])),
        json!("not reloaded"),
        "the page was reloaded"
    );
    s.screenshot("floor-walk-4-today");
}

/// "End window" with a viewer's token: the switch refuses (403) and the
/// problem's words appear beside the buttons. Then with an admin's token
/// what the buttons send, and what the switch did with it: "Extend" moves
/// the end by the minutes asked, "End window" ends it, both with the
/// reason in the presence history.
#[test]
fn the_floor_actions_send_the_reason_and_show_a_refusal_beside_the_buttons() {
    const VIEWER: &str = "browser-test-viewer-token";
    let sw = Switch::start_env(
        free_udp_port(),
        &[
            ("TPSWITCH_API_TOKEN", TOKEN),
            ("TPSWITCH_VIEWER_TOKEN", VIEWER),
        ],
        |t| {
            t.replace_exact(
                "max_connections = 64",
                "tokens = [{ name = \"wall\", role = \"viewer\", token_env = \"TPSWITCH_VIEWER_TOKEN\" }]\n\
                 max_connections = 64",
            )
        },
    );
    log_in_jsmith(&sw);
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    s.goto(&format!("http://{}/floor", sw.http));
    s.type_into("#token", VIEWER);
    s.click("#token-use");
    s.await_text(STATE, "jsmith online", |t| t == "online");
    let msg = "tr[data-agent=\"jsmith\"] .msg";
    s.click("tr[data-agent=\"jsmith\"] button.danger");
    let refused = s.await_text(msg, "the refusal beside the button", |t| {
        t.contains("this needs the supervisor role; the token has viewer")
    });
    assert_eq!(
        s.script(
            "return document.querySelector(arguments[0]).className;",
            json!([msg])
        ),
        json!("msg error"),
        "{refused}"
    );
    assert_eq!(
        agent(&sw, "jsmith")["state"],
        "online",
        "a refusal changed nothing"
    );
    s.screenshot("floor-7-refused");

    // An admin's token; the requests are watched, not answered, by the page.
    s.type_into("#token", TOKEN);
    s.click("#token-use");
    s.script(
        "window.tpSent = [];
         const real = window.fetch;
         window.fetch = (url, init) => {
           if (init && (init.method === 'PUT' || init.method === 'DELETE')) {
             window.tpSent.push({ method: init.method, url: String(url),
               body: init.body === undefined ? null : JSON.parse(init.body) });
           }
           return real(url, init);
         };
         return null;",
        json!([]),
    );
    let end = agent(&sw, "jsmith")["window"]["end"]
        .as_str()
        .expect("jsmith's window end")
        .to_owned();
    let was = chrono::DateTime::parse_from_rfc3339(&end).expect("end is RFC 3339");
    s.script(
        "document.getElementById('reason').value = 'covering lunch';
         document.getElementById('extend-minutes').value = '30';
         return null;",
        json!([]),
    );
    s.click("tr[data-agent=\"jsmith\"] button:not(.danger)");
    s.await_text(msg, "the extension confirmed", |t| t == "window extended");
    let now = agent(&sw, "jsmith")["window"]["end"]
        .as_str()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .expect("jsmith's new end");
    assert_eq!(now - was, chrono::Duration::minutes(30), "the end moved");
    s.click("tr[data-agent=\"jsmith\"] button.danger");
    s.await_text(msg, "the end confirmed", |t| t == "window ended");
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    let sent = s.script("return window.tpSent;", json!([]));
    assert_eq!(sent[0]["method"], "PUT", "{sent}");
    assert_eq!(sent[0]["url"], "/api/v1/agents/jsmith/presence", "{sent}");
    assert_eq!(sent[0]["body"]["reason"], "covering lunch", "{sent}");
    assert_eq!(sent[1]["method"], "DELETE", "{sent}");
    assert_eq!(
        sent[1]["url"], "/api/v1/agents/jsmith/presence?reason=covering%20lunch",
        "{sent}"
    );
    let (_, history) = api_get(&sw, "/api/v1/agents/jsmith/history?limit=2");
    let items = &history["items"];
    assert_eq!(items[0]["kind"], "forced-offline", "{history}");
    assert_eq!(items[1]["kind"], "extended", "{history}");
    for i in 0..2 {
        assert_eq!(items[i]["reason"], "covering lunch", "{history}");
        assert_eq!(items[i]["actor"], "admin", "{history}");
    }
}

// ------------------------------------------------------------ queues, windows

/// A customer calls Billing with nobody online (`no_agents = "wait"`) and
/// hangs up after `hold_ms`.
fn customer_waits(sw: &Switch, hold_ms: u64) -> std::thread::JoinHandle<SippRun> {
    let dir = tempfile::tempdir().unwrap();
    let end = format!(
        "  <pause milliseconds=\"{hold_ms}\"/>\n{}",
        std::fs::read_to_string(sipp_dir().join("login_end_hangup.inc")).unwrap()
    );
    let text = std::fs::read_to_string(sipp_dir().join("login.xml"))
        .unwrap()
        .replace("@STEPS@", "")
        .replace("@END@", &end)
        .replace("@CALLER@", CUSTOMER);
    let sc = dir.path().join("customer.xml");
    std::fs::write(&sc, text).unwrap();
    let sip = sw.sip;
    std::thread::spawn(move || {
        let run = sipp(sc.to_str().unwrap(), Some(sip), 1, &["-s", BILLING]);
        drop(dir);
        run
    })
}

#[test]
fn the_floor_shows_a_customer_waiting_in_the_queue() {
    let sw = switch(|t| t.replace_exact("no_agents = \"immediate\"", "no_agents = \"wait\""));
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    open_floor(&s, &sw);
    s.await_text("#status", "the floor document in use", |t| {
        t.contains("Live: /api/v1/floor")
    });
    let waiting = customer_waits(&sw, 8_000);
    let row = "tr[data-queue=\"Billing\"] .waiting-count";
    s.await_text(row, "one customer waiting", |t| t == "1");
    s.await_text(
        "tr[data-queue=\"Billing\"] .since",
        "a wait that grows",
        |t| seconds(t).is_some_and(|v| v >= 2),
    );
    s.screenshot("floor-4-waiting");
    waiting.join().unwrap().assert_ok(&sw);
    s.await_text(row, "nobody waiting after the hang-up", |t| t == "0");
}

/// An agent on a call, as the floor shows it: jsmith's phone behind the
/// trunk (SIPp) answers the offer (`accept_digit = ""`: bridged on
/// answer), the row turns busy and the call shows "bridged" with his name
/// and a growing duration; after the customer hangs up the row counts
/// the call as accepted with its talk time.
#[test]
fn the_floor_shows_an_agent_on_a_call_then_the_talk_time() {
    let day = utc_day();
    let trunk = free_udp_port();
    let sw = Switch::start_env(trunk, &[("TPSWITCH_API_TOKEN", TOKEN)], |t| {
        t.replace_exact("accept_digit = \"1\"", "accept_digit = \"\"")
            .replace_exact("whisper = \"agent_whisper\"", "whisper = \"\"")
    });
    // jsmith's phone behind the trunk: answers (PCMA) and sends audio, as
    // a phone does within moments of answering (the switch hangs up a leg
    // that sends no RTP).
    let dir = tempfile::tempdir().expect("tempdir");
    let answer = std::fs::read_to_string(sipp_dir().join("uas_answer.xml"))
        .expect("uas_answer.xml")
        .replace_exact("RTP/AVP 0 101", "RTP/AVP 8 101")
        .replace_exact("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000")
        .replace_exact(
            "<recv request=\"ACK\" crlf=\"true\"/>",
            "<recv request=\"ACK\" crlf=\"true\"/>\n  <nop><action><exec \
             play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>",
        );
    let scenario = dir.path().join("phone.xml");
    std::fs::write(&scenario, answer).expect("write phone.xml");
    let mut phone = BackgroundSipp::start(&scenario.display().to_string(), trunk, 1, &[]);
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    open_floor(&s, &sw);
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    log_in_jsmith(&sw);
    s.await_text(STATE, "jsmith online", |t| t == "online");

    let customer = customer_waits(&sw, 6_000);
    s.await_text(STATE, "jsmith busy", |t| t == "busy");
    s.await_text("#calls tbody td:nth-child(3)", "the call bridged", |t| {
        t == "bridged"
    });
    assert_eq!(s.text("#calls tbody td:nth-child(1)"), CUSTOMER);
    assert_eq!(s.text("#calls tbody td:nth-child(4)"), "John Smith");
    s.await_text("#calls tbody td:nth-child(5)", "a call that lasts", |t| {
        seconds(t).is_some_and(|v| v >= 2)
    });
    s.screenshot("floor-8-on-a-call");
    customer.join().expect("the customer's SIPp").assert_ok(&sw);
    let status = phone.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "jsmith's phone: {status:?}\n{}",
        phone.errors()
    );
    s.await_text("#calls tbody", "no call in progress", str::is_empty);
    let cell = |n: u32| s.text(&format!("tr[data-agent=\"jsmith\"] td:nth-child({n})"));
    let accepted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.await_text(
            "tr[data-agent=\"jsmith\"] td:nth-child(5)",
            "one call accepted today",
            |t| t == "1",
        )
    }));
    if utc_day() != day {
        println!("a UTC midnight passed during the test: today's figures not checked");
    } else {
        accepted.unwrap_or_else(|e| std::panic::resume_unwind(e));
        assert_eq!(cell(4), "1", "offered");
        assert_eq!(cell(6), "0", "missed");
        assert_eq!(
            s.text("#today tbody tr[data-queue=\"Billing\"] td:nth-child(3)"),
            "1",
            "Billing answered"
        );
        assert!(
            seconds(&cell(7)).is_some_and(|v| v >= 2),
            "talk time {:?}",
            cell(7)
        );
    }
    s.screenshot("floor-9-after-the-call");
}

#[test]
fn a_supervisor_extends_then_ends_a_window_from_the_floor() {
    let sw = switch(|t| t);
    let driver = Driver::start();
    let s = driver.session(1280, 900);
    open_floor(&s, &sw);
    log_in_jsmith(&sw);
    s.await_text(STATE, "jsmith online", |t| t == "online");
    // Extend by 60 minutes: the countdown passes 24 h.
    s.click("tr[data-agent=\"jsmith\"] button:not(.danger)");
    s.await_text(COUNTDOWN, "a countdown over 24 h", |t| {
        seconds(t).is_some_and(|v| v > 24 * 3600 + 3000)
    });
    // End it.
    s.click("tr[data-agent=\"jsmith\"] button.danger");
    s.await_text("tr[data-agent=\"jsmith\"] .msg", "the end confirmed", |t| {
        t == "window ended"
    });
    s.await_text(STATE, "jsmith offline", |t| t == "offline");
    s.screenshot("floor-5-ended");
    await_some("jsmith offline in the store", SEEN_WITHIN, || {
        (agent(&sw, "jsmith")["state"] == "offline").then_some(())
    });
}
