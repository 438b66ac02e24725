//! Floods (issue 12): SIPp sends 1 000 requests a second while a real
//! agent logs in from the trunk's address, and the log-in completes.
//!
//! The flood lasts `TPSWITCH_FLOOD_SECONDS` (5 by default, so `cargo test`
//! stays short; the issue's run is `TPSWITCH_FLOOD_SECONDS=20 cargo test
//! --test flood`). Loopback answers all of 127/8, so SIPp bound to
//! 127.0.0.2 with `-i` is a source outside `trunk.allow` (127.0.0.1).

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;

const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";
const RATE: u32 = 1000;

/// One flood at a time: two at once on a 2-core machine would test the
/// machine, not the switch.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn flood_seconds() -> u32 {
    std::env::var("TPSWITCH_FLOOD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// SIPp sending `scenario` at 1 000 calls a second from `from`. Killed on
/// drop.
struct Flood {
    child: Option<Child>,
    work: tempfile::TempDir,
    calls: u32,
}

impl Flood {
    fn start(scenario: &str, sw: &Switch, from: &str) -> Flood {
        let work = tempfile::tempdir().expect("tempdir");
        let calls = RATE * flood_seconds();
        let child = Command::new(SIPP)
            .arg("-sf")
            .arg(sipp_dir().join(scenario))
            .arg(sw.sip.to_string())
            .args(["-i", from, "-p", &free_udp_port().to_string()])
            .args(["-mp", &free_media_port().to_string()])
            .args(["-s", CONTACT_POINT])
            .args(["-r", &RATE.to_string(), "-m", &calls.to_string()])
            .args(["-timeout", &format!("{}s", flood_seconds() + 30)])
            .args(["-nostdin", "-trace_msg", "-message_file"])
            .arg(work.path().join("messages.log"))
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp (apt-get install sip-tester)");
        Flood {
            child: Some(child),
            work,
            calls,
        }
    }

    /// Waits (bounded) for SIPp to have sent all its calls.
    fn wait(&mut self) {
        let Some(c) = self.child.as_mut() else {
            return;
        };
        let limit = Duration::from_secs(u64::from(flood_seconds()) + 40);
        await_some("the flood to end", limit, || c.try_wait().ok().flatten());
    }

    /// Responses SIPp received with this status.
    fn received(&self, status: u16) -> usize {
        let log =
            std::fs::read_to_string(self.work.path().join("messages.log")).unwrap_or_default();
        // SIPp's message log may show a response to a call it has
        // finished twice: count Call-IDs.
        let mut calls = std::collections::HashSet::new();
        for part in log.split(&format!("SIP/2.0 {status} ")).skip(1) {
            if let Some(id) = part.lines().find_map(|l| l.strip_prefix("Call-ID:")) {
                calls.insert(id.trim().to_owned());
            }
        }
        calls.len()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn login(sw: &Switch, key: char) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(1000), Key(key)], true);
    let run = sipp(
        sc.to_str().expect("path"),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    );
    run.assert_ok(sw);
}

fn refused(sw: &Switch, reason: &str) -> u64 {
    metric(
        sw,
        &format!("tpswitch_sip_flood_refused_total{{reason=\"{reason}\"}}"),
        None,
    )
}

/// Every call the switch took on, whatever its flow and outcome.
fn calls_total(sw: &Switch) -> u64 {
    let (_, body) = http_get(sw.http, "/metrics", None);
    body.lines()
        .filter(|l| l.starts_with("tpswitch_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// CPU seconds (user + system) the process has used, from /proc/PID/stat
/// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count from after its ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // After ')': field 3 is index 0, so utime (14) is 11 and stime (15) 12.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

#[test]
fn an_invite_flood_from_a_stranger_is_banned_and_an_agent_logs_in() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sw = Switch::start(|t| t);
    let cpu_before = cpu_seconds(sw.pid());
    let mut flood = Flood::start("flood_invite.xml", &sw, "127.0.0.2");
    // The flood is under way (and its source banned) before the log-in.
    await_some(
        "the flood's source to be banned",
        Duration::from_secs(20),
        || (refused(&sw, "banned") > 0).then_some(()),
    );
    login(&sw, '1');
    let a = agent(&sw, "jsmith");
    assert_eq!(a["state"], "online", "{a}");
    flood.wait();
    let cpu = cpu_seconds(sw.pid()) - cpu_before;
    eprintln!(
        "flood: {} INVITEs at {RATE}/s; switch CPU {cpu:.2} s over {} s ({:.1} % of a core)",
        flood.calls,
        flood_seconds(),
        cpu * 100.0 / f64::from(flood_seconds())
    );
    // The first window's worth met the untrusted policy (403); after that,
    // nothing: the source went over the limit once and was banned.
    let forbidden = flood.received(403);
    assert!(forbidden <= 16, "{forbidden} answers to the flood");
    assert_eq!(refused(&sw, "rate"), 1);
    let banned = refused(&sw, "banned");
    assert!(
        banned >= u64::from(flood.calls) / 2,
        "{banned} of {} refused as banned",
        flood.calls
    );
    // Banned INVITEs were never parsed, so no transaction, call or RTP
    // port: only the log-in became a call.
    assert_eq!(calls_total(&sw), 1, "{}", sw.log());
    let parsed = metric(&sw, "tpswitch_sip_requests_total", None);
    assert!(parsed < 16 + 20, "{parsed} requests parsed");
    // One log line for the flood's source, not one per packet.
    let lines = sw.log().matches("refused by sip.flood").count();
    assert!((1..=2).contains(&lines), "{lines} lines");
}

#[test]
fn an_options_flood_from_the_trunk_does_not_stop_a_log_in() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sw = Switch::start(|t| t);
    let mut flood = Flood::start("flood_options.xml", &sw, "127.0.0.1");
    await_some("the flood to be answered", Duration::from_secs(20), || {
        (metric(&sw, "tpswitch_sip_requests_total", None) > 100).then_some(())
    });
    login(&sw, '2');
    assert_eq!(agent(&sw, "jsmith")["state"], "online");
    flood.wait();
    // The trunk is not limited by default: its OPTIONS were all taken.
    assert_eq!(refused(&sw, "rate"), 0);
    assert_eq!(refused(&sw, "banned"), 0);
}

#[test]
fn limited_trunk_options_are_banned_and_its_invites_still_log_in() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sw =
        Switch::start(|t| t.replace_exact("apply_to_trunks = false", "apply_to_trunks = true"));
    let mut flood = Flood::start("flood_options.xml", &sw, "127.0.0.1");
    await_some(
        "the trunk's OPTIONS to be banned",
        Duration::from_secs(20),
        || (refused(&sw, "banned") > 0).then_some(()),
    );
    login(&sw, '3');
    assert_eq!(agent(&sw, "jsmith")["state"], "online");
    flood.wait();
    assert!(flood.received(200) <= 16, "{}", flood.received(200));
    assert_eq!(refused(&sw, "rate"), 1);
}

#[test]
fn scanners_and_register_get_no_answer() {
    let sw = Switch::start(|t| t.replace_exact("register = \"405\"", "register = \"drop\""));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let local = sock.local_addr().expect("local");
    let req = |method: &str, n: u32, ua: &str| {
        format!(
            "{method} sip:100@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-sc{n}\r\nMax-Forwards: 70\r\nFrom: <sip:100@{local}>;tag=s{n}\r\nTo: <sip:100@{sip}>\r\nCall-ID: scan{n}@test\r\nCSeq: 1 {method}\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n",
            sip = sw.sip
        )
    };
    for (n, ua) in ["friendly-scanner", "sipvicious", "VaxSIPUserAgent"]
        .iter()
        .enumerate()
    {
        sock.send_to(req("OPTIONS", n as u32, ua).as_bytes(), sw.sip)
            .expect("send");
    }
    sock.send_to(req("REGISTER", 10, "softphone").as_bytes(), sw.sip)
        .expect("send");
    // A plain OPTIONS is answered, and it is the only answer that comes.
    sock.send_to(req("OPTIONS", 11, "softphone").as_bytes(), sw.sip)
        .expect("send");
    // The switch reads them in order: any answer to the first four would
    // come before the plain OPTIONS' 200.
    let mut buf = [0u8; 4096];
    let mut answers = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if answers.last().is_some_and(|a| a.contains("scan11@test")) {
            break;
        }
    }
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(answers[0].contains("scan11@test"), "{}", answers[0]);
    assert_eq!(refused(&sw, "scanner"), 3);
    assert_eq!(refused(&sw, "register"), 1);
}
