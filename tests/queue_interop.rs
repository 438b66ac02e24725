//! Customer calls to online agents over real SIP and RTP (issue 5): SIPp
//! calls the Billing contact point as a customer; one SIPp UAS on the trunk
//! port stands in for every agent's phone (all agents are reached through
//! the one trunk), choosing its behaviour by the Request-URI's number.
//! Agents go online first through the log-in menu; outcomes are read back
//! with `tpswitch calls --json`.
//!
//! These are the wire-level proofs: media both ways, CANCEL, BYE either
//! way, the overflow prompt and number, shutdown. The timing rules (ring
//! timeout, busy vs no answer, dead answer, accept key, FIFO order) are
//! unit-tested on a simulated clock in `flows::outbound` and
//! `flows::queue` (its `harness` runs several legs on one clock).

mod common;
#[path = "common/dtmf_pcap.rs"]
mod dtmf_pcap;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const LOGIN: &str = "+15550100000";
const BILLING: &str = "+15550100001";
/// jsmith in config/tpswitch.toml (skills billing, spanish).
const JSMITH: &str = "+12345678910";
const CUSTOMER: &str = "+15551234567";

/// Test configuration: bwayne added, mgarcia out of billing (so only the
/// two agents we drive can be offered calls), short queue timers.
fn queue_config(extra: impl Fn(String) -> String) -> impl FnOnce(String) -> String {
    move |t: String| {
        let t = t
            .replace_exact(
                "skills = [\"billing\"]\npin = \"2468\"",
                "skills = [\"sales\"]\npin = \"2468\"")
            .replace_exact(
                "# The timed presence flow",
                "[[users]]\nid = \"bwayne\"\nname = \"Bruce Wayne\"\nskills = [\"billing\"]\n  \
                 [[users.extensions]]\n  type = \"pstn\"\n  value = \"+12345678911\"\n  ext = \"\"\n  \
                 description = \"mobile\"\n\n# The timed presence flow")
            .replace_exact("ring_timeout = \"20s\"", "ring_timeout = \"3s\"")
            .replace_exact("accept_timeout = \"10s\"", "accept_timeout = \"3s\"")
            .replace_exact("wrap_up = \"10s\"", "wrap_up = \"1s\"")
            .replace_exact("max_wait = \"5m\"", "max_wait = \"40s\"")
            .replace_exact("greeting = \"queue_greeting\"", "greeting = \"\"");
        extra(t)
    }
}

/// Puts `caller` online for 8 h through the log-in menu (key 1).
fn login(sw: &Switch, caller: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = login_scenario(
        dir.path(),
        caller,
        &[Step::Wait(1000), Step::Key('1')],
        true,
    );
    let run = sipp(path.to_str().unwrap(), Some(sw.sip), 1, &["-s", LOGIN]);
    run.assert_ok(sw);
}

/// What an agent's phone does with the INVITE it gets.
#[derive(Clone, Copy)]
enum Agent {
    /// Answer, press 1 after `after_ms`, optionally play audio, then wait
    /// for the switch's BYE.
    Accept {
        after_ms: u64,
        audio: bool,
    },
    /// Answer, press 1, then hang up after `hold_ms`.
    AcceptThenHangUp {
        hold_ms: u64,
    },
    /// Ring until cancelled.
    NoAnswer,
    Busy,
    /// Answer and talk (send RTP), never press anything; the switch hangs up.
    Talk,
}

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

const SEND_BYE: &str = r#"  <send retrans="500">
    <![CDATA[
      BYE sip:tpswitch@@SWITCH@ SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$swto]
      To: [$swfrom]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
"#;

const RING_UNTIL_CANCEL: &str = r#"  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="CANCEL" timeout="40000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [last_cseq_number] INVITE
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
"#;

const BUSY: &str = r#"  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
"#;

fn agent_body(a: Agent) -> String {
    let key = |after: u64| {
        format!(
            "  <pause milliseconds=\"{after}\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"400\"/>\n",
            pcap('1')
        )
    };
    match a {
        Agent::Accept { after_ms, audio } => {
            let mut s = format!("{}{}", agent_answer(false), key(after_ms));
            if audio {
                s.push_str("  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>\n");
            }
            s.push_str(AWAIT_BYE);
            s
        }
        Agent::AcceptThenHangUp { hold_ms } => format!(
            "{}{}  <pause milliseconds=\"{hold_ms}\"/>\n{SEND_BYE}",
            agent_answer(true),
            key(500)
        ),
        Agent::NoAnswer => RING_UNTIL_CANCEL.to_owned(),
        Agent::Busy => BUSY.to_owned(),
        Agent::Talk => format!(
            "{}  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>\n{AWAIT_BYE}",
            agent_answer(false)
        ),
    }
}

/// One UAS scenario for the whole trunk: jsmith's number gets `js`,
/// bwayne's gets `bw`.
fn agents_scenario(dir: &Path, js: Agent, bw: Agent, switch: SocketAddr) -> PathBuf {
    let text = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agents behind the trunk">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="INVITE sip:[+]?12345678911@" search_in="msg" check_it="false" assign_to="isbw"/>
    </action>
  </recv>
  <nop next="bw" test="isbw"/>
{js}  <nop next="end"/>
  <label id="bw"/>
{bw}  <label id="end"/>
  <timewait milliseconds="300"/>
</scenario>
"#,
        js = agent_body(js),
        bw = agent_body(bw),
    );
    // A UAS has no remote address of its own: our BYE goes to the switch.
    let text = text.replace("@SWITCH@", &switch.to_string());
    let path = dir.join("agents.xml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The customer: call Billing, then hang up after `hang_up_ms`, or (None)
/// wait for the switch's BYE.
fn customer_scenario(dir: &Path, name: &str, hang_up_ms: Option<u64>) -> PathBuf {
    let end = match hang_up_ms {
        Some(ms) => format!(
            "  <pause milliseconds=\"{ms}\"/>\n{}",
            std::fs::read_to_string(sipp_dir().join("login_end_hangup.inc")).unwrap()
        ),
        None => AWAIT_BYE.to_owned(),
    };
    let text = std::fs::read_to_string(sipp_dir().join("login.xml"))
        .unwrap()
        .replace("@STEPS@", "")
        .replace("@END@", &end)
        .replace("@CALLER@", CUSTOMER)
        .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000");
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn customer(sw: &Switch, scenario: &Path, extra: &[&str]) -> SippRun {
    let mut args = vec!["-s", BILLING];
    args.extend_from_slice(extra);
    sipp(scenario.to_str().unwrap(), Some(sw.sip), 1, &args)
}

fn calls(sw: &Switch) -> Vec<serde_json::Value> {
    let out = sw.cli(&["calls", "--json", "--since", "1h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("calls JSON");
    v.as_array().cloned().unwrap_or_default()
}

/// The records once the switch has written them (the writer runs behind
/// the calls by a few milliseconds).
fn settled_calls(sw: &Switch, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..50 {
        let c = calls(sw);
        if c.len() >= n && c.iter().all(|c| !c["ended_at"].is_null()) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("calls not recorded: {:?}\n{}", calls(sw), sw.log());
}

fn agent_state(sw: &Switch, id: &str) -> String {
    agent(sw, id)["state"].as_str().unwrap_or("?").to_owned()
}

fn attempts(call: &serde_json::Value) -> Vec<(String, String)> {
    call["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["agent_user_id"].as_str().unwrap().to_owned(),
                a["hangup_cause"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

struct Setup {
    sw: Switch,
    trunk: u16,
    dir: tempfile::TempDir,
}

/// A switch with the given agents logged in, in that order (the first is
/// the longest idle, so it is offered the first call).
fn setup(agents: &[&str], extra: impl Fn(String) -> String) -> Setup {
    let trunk = free_udp_port();
    let sw = Switch::start_with_trunk(trunk, queue_config(extra));
    for a in agents {
        login(&sw, a);
    }
    Setup {
        sw,
        trunk,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    fn agents(&self, js: Agent, bw: Agent, calls: u32) -> BackgroundSipp {
        let sc = agents_scenario(self.dir.path(), js, bw, self.sw.sip);
        BackgroundSipp::start(sc.to_str().unwrap(), self.trunk, calls, &[])
    }

    fn finish(&self, mut uas: BackgroundSipp) {
        let status = uas.wait(Duration::from_secs(30));
        assert!(
            status.is_some_and(|s| s.success()),
            "agents' UAS: {status:?}\n--- errors\n{}\n--- messages\n{}\n--- switch log\n{}",
            uas.errors(),
            uas.messages(),
            self.sw.log()
        );
    }
}

#[test]
fn answered_and_accepted_bridges_media_both_ways() {
    let s = setup(&[JSMITH], |t| t);
    let uas = s.agents(
        Agent::Accept {
            after_ms: 800,
            audio: true,
        },
        Agent::Busy,
        1,
    );
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(12_000));
    let mut cust = BackgroundSipp::start(
        sc.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&s.sw.sip.to_string(), "-s", BILLING, "-rtp_echo"],
    );
    // While bridged, `tpswitch agents` shows the agent busy.
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..100 {
        let st = agent_state(&s.sw, "jsmith");
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "busy" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen.last().map(String::as_str), Some("busy"), "{seen:?}");
    // `tpswitch calls` during the bridge: the agent, the attempt (still in
    // progress) and the customer's wait.
    let live = await_some(
        "the bridge in the call listing",
        Duration::from_secs(10),
        || {
            calls(&s.sw)
                .into_iter()
                .next()
                .filter(|c| c["wait_ms"].is_number())
        },
    );
    assert!(live["ended_at"].is_null(), "{live}");
    assert_eq!(live["agent"], "jsmith", "{live}");
    assert_eq!(live["attempts"].as_array().map(Vec::len), Some(1), "{live}");
    assert!(live["attempts"][0]["sip_outcome"].is_null(), "{live}");
    let st = cust.wait(Duration::from_secs(30));
    assert!(
        st.is_some_and(|s| s.success()),
        "{}\n--- switch log\n{}",
        cust.errors(),
        s.sw.log()
    );
    s.finish(uas);
    // After the call: wrap-up (1 s here), then online again.
    let mut online = false;
    for _ in 0..50 {
        if agent_state(&s.sw, "jsmith") == "online" {
            online = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(online, "{}", s.sw.log());
    let c = settled_calls(&s.sw, 1);
    assert_eq!(c[0]["outcome"], "bridged", "{c:?}");
    assert_eq!(c[0]["agent"], "jsmith");
    assert_eq!(c[0]["hung_up_by"], "customer");
    assert_eq!(c[0]["customer_number"], CUSTOMER);
    assert_eq!(c[0]["contact_point"], BILLING);
    assert_eq!(attempts(&c[0]), [("jsmith".into(), "completed".into())]);
    // The agent leg's SIP Call-ID is stored with the attempt, so a carrier's
    // trace can be matched to it, and the leg's span logs it.
    let leg_call_id = c[0]["attempts"][0]["sip_call_id"].as_str().unwrap_or("");
    assert!(leg_call_id.ends_with("@tpswitch"), "{c:?}");
    assert!(
        s.sw.log().contains(&format!("sip_call_id={leg_call_id}")),
        "{}",
        s.sw.log()
    );
    assert_eq!(c[0]["attempts"][0]["sip_outcome"], "answered");
    // g711a.pcap is 236 packets from the agent; the customer echoes them
    // back, so well over 236 relayed means media crossed both ways.
    let log = s.sw.log();
    let relayed = log
        .lines()
        .filter(|l| l.contains("customer call finished"))
        .filter_map(|l| l.split("relayed=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    assert!(relayed > 236 + 100, "relayed {relayed}\n{log}");
}

#[test]
fn customer_hanging_up_cancels_the_ringing_agent() {
    let s = setup(&[JSMITH], |t| {
        t.replace_exact("ring_timeout = \"3s\"", "ring_timeout = \"20s\"")
    });
    let uas = s.agents(Agent::NoAnswer, Agent::Busy, 1);
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(1_500));
    let run = customer(&s.sw, &sc, &[]);
    run.assert_ok(&s.sw);
    // The UAS only finishes once it got the CANCEL.
    s.finish(uas);
    let c = settled_calls(&s.sw, 1);
    assert_eq!(c[0]["outcome"], "abandoned", "{c:?}");
    assert_eq!(
        attempts(&c[0]),
        [("jsmith".into(), "customer-hung-up".into())]
    );
}

/// The event stream tells a queue call as it goes: queued, the agent
/// dialled, missed (the customer hung up while it rang), ended abandoned.
#[test]
fn a_queue_call_and_its_attempt_reach_the_event_stream() {
    let s = setup(&[JSMITH], |t| {
        t.replace_exact("ring_timeout = \"3s\"", "ring_timeout = \"20s\"")
    });
    // No token configured: the API is local and open.
    let stream = sse_lines(s.sw.http, None, None);
    let uas = s.agents(Agent::NoAnswer, Agent::Busy, 1);
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(1_500));
    customer(&s.sw, &sc, &[]).assert_ok(&s.sw);
    s.finish(uas);
    let mut seen = Vec::new();
    let mut ids = Vec::new();
    loop {
        let (id, kind, data) = sse_event(&stream);
        if kind.starts_with("presence.") {
            continue;
        }
        ids.push(id.expect("every event has an id"));
        let done = kind == "call.ended";
        seen.push((kind, data));
        if done {
            break;
        }
    }
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "call.queued",
            "attempt.started",
            "attempt.missed",
            "call.ended"
        ],
        "{seen:?}"
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let call_id = &seen[0].1["call_id"];
    assert!(call_id.as_str().is_some_and(|c| !c.is_empty()), "{seen:?}");
    assert_eq!(seen[0].1["customer"], CUSTOMER);
    assert_eq!(seen[0].1["contact_point"], BILLING);
    assert_eq!(seen[1].1["agent"], "jsmith");
    assert_eq!(seen[2].1["cause"], "customer-hung-up");
    assert_eq!(seen[3].1["outcome"], "abandoned");
    for (_, data) in &seen {
        assert_eq!(&data["call_id"], call_id, "one call: {seen:?}");
    }
}

#[test]
fn agent_hanging_up_sends_the_customer_bye() {
    let s = setup(&[JSMITH], |t| t);
    let uas = s.agents(Agent::AcceptThenHangUp { hold_ms: 1500 }, Agent::Busy, 1);
    let sc = customer_scenario(s.dir.path(), "customer.xml", None);
    let run = customer(&s.sw, &sc, &[]);
    assert!(
        run.ok(),
        "{}\n--- agent\n{}\n{}\n--- switch log\n{}",
        run.explain(),
        uas.errors(),
        uas.messages(),
        s.sw.log()
    );
    s.finish(uas);
    let c = settled_calls(&s.sw, 1);
    assert_eq!(c[0]["outcome"], "bridged", "{c:?}");
    assert_eq!(c[0]["hung_up_by"], "agent");
}

#[test]
fn no_agent_online_plays_the_overflow_prompt_then_bye() {
    let s = setup(&[], |t| t);
    let sc = customer_scenario(s.dir.path(), "customer.xml", None);
    let run = customer(&s.sw, &sc, &[]);
    run.assert_ok(&s.sw);
    let c = settled_calls(&s.sw, 1);
    assert_eq!(c[0]["outcome"], "overflow", "{c:?}");
    assert_eq!(c[0]["hung_up_by"], "switch");
    assert!(attempts(&c[0]).is_empty());
}

#[test]
fn overflow_number_takes_the_customer_when_nobody_is_online() {
    let s = setup(&[], |t| {
        t.replace_exact(
            "overflow_number = \"\"",
            "overflow_number = \"+15550109999\"",
        )
        .replace_exact("allow_dial = []", "allow_dial = [\"+15550109999\"]")
    });
    // The default branch of the trunk's scenario answers any number; the
    // leg is bridged once its RTP flows (a dead answer would not be).
    let uas = s.agents(Agent::Talk, Agent::Busy, 1);
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(3_000));
    let run = customer(&s.sw, &sc, &[]);
    run.assert_ok(&s.sw);
    s.finish(uas);
    let c = settled_calls(&s.sw, 1);
    assert_eq!(c[0]["outcome"], "transferred", "{c:?}");
    assert!(attempts(&c[0]).is_empty());
    let log = s.sw.log();
    assert!(log.contains("target=+15550109999"), "{log}");
    assert!(log.contains("agent=+15550109999"), "{log}");
    assert!(log.contains("bridged"), "{log}");
}

#[test]
fn shutdown_hangs_up_waiting_customers_after_the_drain_timeout_and_records_it() {
    // Nobody online and callers wait: the customer is on hold when the
    // switch is told to stop, and still there when the drain times out.
    let mut s = setup(&[], |t| {
        t.replace_exact("no_agents = \"immediate\"", "no_agents = \"wait\"")
            .replace_exact("drain_timeout = \"60s\"", "drain_timeout = \"1s\"")
    });
    let sc = customer_scenario(s.dir.path(), "customer.xml", None);
    let sip = s.sw.sip;
    let waiting =
        std::thread::spawn(move || sipp(sc.to_str().unwrap(), Some(sip), 1, &["-s", BILLING]));
    // On hold once its row is written (the call is answered and queued).
    await_some("the customer call on hold", Duration::from_secs(10), || {
        calls(&s.sw).first().map(|_| ())
    });
    let status = s.sw.terminate().expect("exit status");
    assert!(status.success(), "{status:?}\n{}", s.sw.log());
    // The customer got our BYE before the switch went away.
    let run = waiting.join().unwrap();
    run.assert_ok(&s.sw);
    assert!(
        s.sw.log()
            .contains("drain timeout: ending the calls that are left"),
        "{}",
        s.sw.log()
    );
    // And the call is recorded as ended by the switch.
    let c = calls(&s.sw);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["hung_up_by"], "switch", "{c:?}");
    assert!(!c[0]["ended_at"].is_null(), "{c:?}");
}

/// The value of one sample in `/metrics` (`series` is the name with its
/// labels, exactly as rendered), or None when the series is absent.
fn metric(sw: &Switch, series: &str) -> Option<f64> {
    let (status, text) = http_get(sw.http, "/metrics", None);
    assert_eq!(status, 200, "{text}");
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits until `series` reads `want` in `/metrics`.
fn await_metric(sw: &Switch, series: &str, want: f64) {
    await_some(
        &format!("{series} = {want}"),
        Duration::from_secs(15),
        || (metric(sw, series) == Some(want)).then_some(()),
    );
}

/// Issue 11: `/metrics` moves with real calls. A log-in call (SIPp, key 1)
/// counts the call, the presence change and the store write; a customer
/// call bridged to the agent shows the gauges up while it lasts and fills
/// the wait, ring and accept histograms when it ends.
#[test]
fn metrics_move_with_a_log_in_call_and_a_queue_call() {
    let s = setup(&[JSMITH], |t| t);
    let sw = &s.sw;
    await_metric(
        sw,
        r#"tpswitch_calls_total{flow="Timed Presence",outcome="online"}"#,
        1.0,
    );
    assert_eq!(
        metric(sw, r#"tpswitch_presence_changes_total{reason="online"}"#),
        Some(1.0)
    );
    assert!(metric(sw, r#"tpswitch_store_write_seconds_count{op="set_online"}"#) >= Some(1.0));
    await_metric(sw, r#"tpswitch_agents{state="available"}"#, 1.0);
    assert!(metric(sw, "tpswitch_pacing_lateness_seconds_count") > Some(0.0));

    let uas = s.agents(
        Agent::Accept {
            after_ms: 800,
            audio: false,
        },
        Agent::Busy,
        1,
    );
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(6_000));
    let mut cust = BackgroundSipp::start(
        sc.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&sw.sip.to_string(), "-s", BILLING],
    );
    // During the bridge.
    await_metric(sw, r#"tpswitch_agents{state="busy"}"#, 1.0);
    assert_eq!(
        metric(sw, r#"tpswitch_calls_active{flow="Billing"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric(sw, r#"tpswitch_legs_active{direction="inbound"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric(sw, r#"tpswitch_legs_active{direction="outbound"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric(sw, r#"tpswitch_queue_waiting{queue="Billing"}"#),
        Some(0.0)
    );
    assert_eq!(
        metric(sw, r#"tpswitch_trunk_up{trunk="carrier"}"#),
        Some(1.0)
    );
    let st = cust.wait(Duration::from_secs(30));
    assert!(
        st.is_some_and(|s| s.success()),
        "{}\n{}",
        cust.errors(),
        sw.log()
    );
    s.finish(uas);
    // After it.
    await_metric(
        sw,
        r#"tpswitch_calls_total{flow="Billing",outcome="bridged"}"#,
        1.0,
    );
    for (series, want) in [
        (r#"tpswitch_calls_active{flow="Billing"}"#, 0.0),
        (r#"tpswitch_legs_active{direction="outbound"}"#, 0.0),
        (r#"tpswitch_queue_wait_seconds_count{queue="Billing"}"#, 1.0),
        (
            r#"tpswitch_queue_wait_seconds_bucket{queue="Billing",le="+Inf"}"#,
            1.0,
        ),
        ("tpswitch_ring_time_seconds_count", 1.0),
        (r#"tpswitch_ring_time_seconds_bucket{le="+Inf"}"#, 1.0),
        ("tpswitch_accept_latency_seconds_count", 1.0),
        (r#"tpswitch_attempts_total{cause="completed"}"#, 1.0),
    ] {
        assert_eq!(metric(sw, series), Some(want), "{series}");
    }
    // The agent answered within a second and pressed 1 after 0.8 s: the
    // histograms' buckets say so, not only their counts.
    assert_eq!(
        metric(sw, r#"tpswitch_accept_latency_seconds_bucket{le="0.1"}"#),
        Some(0.0)
    );
    assert_eq!(
        metric(sw, r#"tpswitch_accept_latency_seconds_bucket{le="5"}"#),
        Some(1.0)
    );
    assert!(
        metric(
            sw,
            r#"tpswitch_store_write_seconds_count{op="insert_call"}"#
        ) >= Some(1.0)
    );
    // Today's counters keep their names.
    assert!(metric(sw, "tpswitch_sip_requests_total") > Some(0.0));
    assert!(metric(sw, "tpswitch_rtp_sent_total") > Some(0.0));
}

/// An INVITE to the Billing line that must be refused 503 with
/// Retry-After (the switch is draining).
fn expect_503(sw: &Switch, dir: &Path) -> SippRun {
    let text = std::fs::read_to_string(sipp_dir().join("uac_reject.xml"))
        .unwrap()
        .replace("@STATUS@", "503")
        .replace("@FORMATS@", "8");
    let path = dir.join("expect_503.xml");
    std::fs::write(&path, text).unwrap();
    let run = customer(sw, &path, &[]);
    run.assert_ok(sw);
    assert!(run.messages.contains("Retry-After: 5"), "{}", run.messages);
    run
}

#[test]
fn sigterm_drains_a_bridged_call_until_it_hangs_up_while_new_calls_get_503() {
    let mut s = setup(&[JSMITH], |t| t);
    let uas = s.agents(
        Agent::Accept {
            after_ms: 500,
            audio: true,
        },
        Agent::Busy,
        1,
    );
    // The customer hangs up by itself 10 s after it is answered.
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(10_000));
    let mut cust = BackgroundSipp::start(
        sc.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&s.sw.sip.to_string(), "-s", BILLING, "-rtp_echo"],
    );
    await_some("the agent bridged (busy)", Duration::from_secs(15), || {
        (agent_state(&s.sw, "jsmith") == "busy").then_some(())
    });
    s.sw.signal("TERM");
    s.sw.await_log("draining", Duration::from_secs(5));
    // A new customer during the drain: 503 + Retry-After.
    expect_503(&s.sw, s.dir.path());
    assert!(s.sw.running(), "the bridged call holds the drain");
    // The bridged customer hangs up when it wants to; the agent gets our BYE.
    let st = cust.wait(Duration::from_secs(30));
    assert!(
        st.is_some_and(|s| s.success()),
        "{}\n--- switch log\n{}",
        cust.errors(),
        s.sw.log()
    );
    s.finish(uas);
    // With no call left the switch stops by itself, well before the 60 s
    // drain timeout.
    let status = s.sw.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|st| st.success()),
        "{status:?}\n{}",
        s.sw.log()
    );
    let log = s.sw.log();
    assert!(log.contains("drained: every call has ended"), "{log}");
    let c = calls(&s.sw);
    assert_eq!(c.len(), 1, "only the bridged call was taken: {c:?}");
    assert_eq!(c[0]["outcome"], "bridged", "{c:?}");
    assert_eq!(c[0]["hung_up_by"], "customer", "{c:?}");
}

#[test]
fn a_second_sigterm_ends_the_drain_at_once() {
    // A customer on hold with nobody online; the drain would wait 60 s.
    let mut s = setup(&[], |t| {
        t.replace_exact("no_agents = \"immediate\"", "no_agents = \"wait\"")
    });
    let sc = customer_scenario(s.dir.path(), "customer.xml", None);
    let sip = s.sw.sip;
    let waiting =
        std::thread::spawn(move || sipp(sc.to_str().unwrap(), Some(sip), 1, &["-s", BILLING]));
    await_some("the customer call on hold", Duration::from_secs(10), || {
        calls(&s.sw).first().map(|_| ())
    });
    s.sw.signal("TERM");
    s.sw.await_log("draining", Duration::from_secs(5));
    assert!(s.sw.running(), "the call on hold holds the drain");
    s.sw.signal("TERM");
    let status = s.sw.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|st| st.success()),
        "{status:?}\n{}",
        s.sw.log()
    );
    assert!(
        s.sw.log().contains("second signal: ending every call now"),
        "{}",
        s.sw.log()
    );
    // The customer got our BYE; the call is recorded as ended by the switch.
    let run = waiting.join().unwrap();
    run.assert_ok(&s.sw);
    let c = calls(&s.sw);
    assert_eq!(c[0]["hung_up_by"], "switch", "{c:?}");
}

/// bwayne as `queue_config` adds him.
const BWAYNE_USER: &str =
    "[[users]]\nid = \"bwayne\"\nname = \"Bruce Wayne\"\nskills = [\"billing\"]\n  \
    [[users.extensions]]\n  type = \"pstn\"\n  value = \"+12345678911\"\n  ext = \"\"\n  \
    description = \"mobile\"\n\n";

const BWAYNE: &str = "+12345678911";

#[test]
fn a_user_added_by_a_reload_is_offered_the_next_customer_call() {
    // The switch starts without bwayne; the roster changes while it runs.
    let s = setup(&[], |t| t.replace_exact(BWAYNE_USER, ""));
    let text = std::fs::read_to_string(&s.sw.config).unwrap();
    std::fs::write(
        &s.sw.config,
        text.replace_exact(
            "# The timed presence flow",
            &format!("{BWAYNE_USER}# The timed presence flow"),
        ),
    )
    .unwrap();
    let (status, body) = http_post(s.sw.http, "/api/v1/reload", None);
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["changed"], serde_json::json!(["users"]), "{report}");
    assert_eq!(report["restart_needed"], serde_json::json!([]), "{report}");
    // He logs in and takes a customer: the queue's board knows him now.
    login(&s.sw, BWAYNE);
    let uas = s.agents(
        Agent::Busy,
        Agent::Accept {
            after_ms: 500,
            audio: false,
        },
        1,
    );
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(3_000));
    customer(&s.sw, &sc, &[]).assert_ok(&s.sw);
    s.finish(uas);
    let c = settled_calls(&s.sw, 1);
    assert_eq!(c[0]["outcome"], "bridged", "{c:?}");
    assert_eq!(c[0]["agent"], "bwayne", "{c:?}");
}

/// Trunk A (the test's trunk port, priority 10) and trunk B on `b_port`
/// (priority 20); one miss would set an agent offline.
fn two_trunks(b_port: u16) -> impl Fn(String) -> String {
    move |t| {
        t.replace_exact("[trunk]\nname = \"carrier\"", "[[trunks]]\nname = \"carrier-a\"")
            .replace_exact("\npriority = 0 ", "\npriority = 10 ")
            .replace_exact("max_no_answer = 3", "max_no_answer = 1")
            .replace_exact(
                "\n[media]\n",
                &format!(
                    "\n[[trunks]]\nname = \"carrier-b\"\npriority = 20\n\
                     outbound_proxy = \"sip:127.0.0.1:{b_port}\"\nallow = [\"127.0.0.1/32\"]\n\n[media]\n"
                ),
            )
    }
}

/// Trunk A as a carrier over its calls-per-second limit: it answers 503 to
/// every second INVITE (the first, third, ...) and lets the others through
/// to the agent's phone. The SIPp scenario keeps the count in a global
/// variable that toggles with each INVITE.
fn every_second_503_scenario(dir: &Path, agent: Agent, retry_after: Option<u32>) -> PathBuf {
    let retry_after = retry_after
        .map(|s| format!("Retry-After: {s}\n      "))
        .unwrap_or_default();
    let text = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier answering 503 to every second INVITE">
  <Global variables="passed"/>
  <recv request="INVITE" crlf="true">
    <action>
      <test assign_to="pass" variable="passed" compare="equal" value="0"/>
    </action>
  </recv>
  <nop next="reject" test="pass"/>
  <nop>
    <action>
      <assign assign_to="passed" value="0"/>
    </action>
  </nop>
{answer}  <nop next="end"/>
  <label id="reject"/>
  <nop>
    <action>
      <assign assign_to="passed" value="1"/>
    </action>
  </nop>
  <send>
    <![CDATA[
      SIP/2.0 503 Service Unavailable
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      {retry_after}Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
  <label id="end"/>
  <timewait milliseconds="300"/>
</scenario>
"#,
        answer = agent_body(agent),
    );
    let path = dir.join("carrier_a.xml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Issue 10: two trunks, A first. A's 503 moves the agent leg to trunk B,
/// which rings the agent: the customer is bridged, and the 503 is the
/// trunk's failure, not the agent's miss (with max_no_answer = 1 one miss
/// would set jsmith offline). The next customer gets through A, whose
/// every second INVITE passes.
#[test]
fn a_carrier_503_fails_over_to_the_second_trunk_and_is_nobodys_miss() {
    let b_port = free_udp_port();
    let s = setup(&[JSMITH], two_trunks(b_port));
    let accept = Agent::Accept {
        after_ms: 800,
        audio: false,
    };
    let a_sc = every_second_503_scenario(s.dir.path(), accept, None);
    let mut carrier_a = BackgroundSipp::start(a_sc.to_str().unwrap(), s.trunk, 2, &[]);
    let b_sc = agents_scenario(s.dir.path(), accept, Agent::Busy, s.sw.sip);
    let mut carrier_b = BackgroundSipp::start(b_sc.to_str().unwrap(), b_port, 1, &[]);

    // First customer: A says 503, B rings jsmith, who accepts.
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(4_000));
    customer(&s.sw, &sc, &[]).assert_ok(&s.sw);
    let st = carrier_b.wait(Duration::from_secs(30));
    assert!(
        st.is_some_and(|s| s.success()),
        "carrier b: {st:?}\n{}\n{}\n--- switch log\n{}",
        carrier_b.errors(),
        carrier_b.messages(),
        s.sw.log()
    );
    let c = settled_calls(&s.sw, 1);
    assert_eq!(c[0]["outcome"], "bridged", "{c:?}");
    assert_eq!(c[0]["agent"], "jsmith", "{c:?}");
    // One attempt: the failover happened inside the agent's leg.
    assert_eq!(attempts(&c[0]), [("jsmith".into(), "completed".into())]);
    let log = s.sw.log();
    assert!(log.contains("trying the next trunk"), "{log}");
    // The attempt keeps the Call-ID of the INVITE that reached the agent:
    // the one sent to trunk B.
    let id = c[0]["attempts"][0]["sip_call_id"].as_str().unwrap_or("?");
    assert!(
        log.contains(&format!("INVITE sent sip_call_id={id} trunk=carrier-b")),
        "{id}\n{log}"
    );
    // The leg's answer speaks for the trunk that gave it.
    assert_eq!(
        metric(&s.sw, "tpswitch_trunk_up{trunk=\"carrier-b\"}"),
        Some(1.0),
        "{log}"
    );

    // Wrap-up (1 s), then online again: nothing counted as a miss.
    await_some("jsmith online again", Duration::from_secs(10), || {
        (agent_state(&s.sw, "jsmith") == "online").then_some(())
    });

    // Second customer: A lets this INVITE through.
    customer(&s.sw, &sc, &[]).assert_ok(&s.sw);
    let st = carrier_a.wait(Duration::from_secs(30));
    assert!(
        st.is_some_and(|s| s.success()),
        "carrier a: {st:?}\n{}\n{}\n--- switch log\n{}",
        carrier_a.errors(),
        carrier_a.messages(),
        s.sw.log()
    );
    let c = settled_calls(&s.sw, 2);
    assert!(c.iter().all(|c| c["outcome"] == "bridged"), "{c:?}");
    await_some(
        "jsmith online after both calls",
        Duration::from_secs(10),
        || (agent_state(&s.sw, "jsmith") == "online").then_some(()),
    );
}

/// Issue 10: a 503 with Retry-After skips trunk A until then. The first
/// customer's agent leg goes A (503, Retry-After: 60) then B; the second
/// customer's goes straight to B although A would now answer.
#[test]
fn a_503_with_retry_after_skips_that_trunk_for_the_next_calls() {
    let b_port = free_udp_port();
    let s = setup(&[JSMITH], two_trunks(b_port));
    let accept = Agent::Accept {
        after_ms: 800,
        audio: false,
    };
    let a_sc = every_second_503_scenario(s.dir.path(), accept, Some(60));
    let mut carrier_a = BackgroundSipp::start(a_sc.to_str().unwrap(), s.trunk, 1, &[]);
    let b_sc = agents_scenario(s.dir.path(), accept, Agent::Busy, s.sw.sip);
    let mut carrier_b = BackgroundSipp::start(b_sc.to_str().unwrap(), b_port, 2, &[]);
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(4_000));
    customer(&s.sw, &sc, &[]).assert_ok(&s.sw);
    let st = carrier_a.wait(Duration::from_secs(30));
    assert!(
        st.is_some_and(|s| s.success()),
        "carrier a: {st:?}\n{}",
        carrier_a.errors()
    );
    await_some("jsmith online again", Duration::from_secs(10), || {
        (agent_state(&s.sw, "jsmith") == "online").then_some(())
    });
    customer(&s.sw, &sc, &[]).assert_ok(&s.sw);
    let st = carrier_b.wait(Duration::from_secs(30));
    assert!(
        st.is_some_and(|s| s.success()),
        "carrier b: {st:?}\n{}\n--- switch log\n{}",
        carrier_b.errors(),
        s.sw.log()
    );
    let c = settled_calls(&s.sw, 2);
    assert!(c.iter().all(|c| c["outcome"] == "bridged"), "{c:?}");
    let log = s.sw.log();
    assert!(log.contains("retry_after_s=60"), "{log}");
    // A once (the 503), B twice: the second leg never tried A.
    let sent_to = |trunk: &str| {
        log.lines()
            .filter(|l| l.contains("INVITE sent") && l.contains(&format!("trunk={trunk}")))
            .count()
    };
    assert_eq!(
        (sent_to("carrier-a"), sent_to("carrier-b")),
        (1, 2),
        "{log}"
    );
}

/// `GET /api/v1/calls` and `/api/v1/queues/stats` on a real call: a
/// customer who gives up while jsmith's phone rings is listed under
/// jsmith (an attempt, not taken) and counted as Billing's abandoned call.
#[test]
fn the_api_lists_an_abandoned_call_under_the_agent_and_counts_it() {
    let s = setup(&[JSMITH], |t| {
        t.replace_exact("ring_timeout = \"3s\"", "ring_timeout = \"20s\"")
    });
    let uas = s.agents(Agent::NoAnswer, Agent::Busy, 1);
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(1_500));
    customer(&s.sw, &sc, &[]).assert_ok(&s.sw);
    s.finish(uas);
    let id = settled_calls(&s.sw, 1)[0]["id"].as_i64().unwrap_or(-1);
    // No token configured: the API is local and open (http.token_env unset).
    let get = |path: &str| {
        let (status, body) = http_get(s.sw.http, path, None);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(status, 200, "{path}: {body}\n{}", s.sw.log());
        json
    };
    let page = get("/api/v1/calls?agent=jsmith&flow=Billing");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["id"], id, "{page}");
    assert_eq!(items[0]["outcome"], "abandoned", "{page}");
    assert!(items[0]["agent"].is_null(), "not taken: {page}");
    assert_eq!(items[0]["attempts"][0]["agent_user_id"], "jsmith", "{page}");
    assert!(page["next_cursor"].is_null(), "{page}");
    assert_eq!(
        get(&format!("/api/v1/calls/{id}"))["customer_number"],
        CUSTOMER
    );
    // Nobody else was dialled for it.
    let none = get("/api/v1/calls?agent=bwayne");
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0), "{none}");

    // From the call's own start, not "today": a run that crosses a UTC
    // midnight must still count it.
    let started = items[0]["started_at"]
        .as_str()
        .unwrap_or_default()
        .replace('+', "%2B");
    let stats = get(&format!("/api/v1/queues/stats?since={started}"));
    let billing = stats["queues"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["flow"] == "Billing"))
        .cloned()
        .unwrap_or_else(|| panic!("no Billing row: {stats}"));
    assert_eq!(billing["offered"], 1, "{billing}");
    assert_eq!(billing["abandoned"], 1, "{billing}");
    assert_eq!(billing["answered"], 0, "{billing}");
    assert_eq!(billing["service_level"], 0.0, "{billing}");
    // The customer waited while the agent rang: at least the 1.5 s pause.
    let waited = billing["longest_wait_ms"].as_i64().unwrap_or(0);
    assert!(waited >= 1_500, "{billing}");
}

/// The floor through the API while real calls go through (issue 11): a
/// customer who waits with nobody online is listed in their queue with a
/// wait that grows; once an agent logs in and accepts, the active call
/// shows the agent and the agent's leg on the trunk, the agent's row is
/// busy with the call counted as accepted today, and the floor is empty
/// again once the call is over.
#[test]
fn the_floor_shows_a_waiting_customer_then_the_bridged_call_and_its_leg() {
    let day = chrono::Utc::now().date_naive();
    let crossed_midnight = || chrono::Utc::now().date_naive() != day;
    let s = setup(&[], |t| {
        t.replace_exact("no_agents = \"immediate\"", "no_agents = \"wait\"")
    });
    let uas = s.agents(
        Agent::Accept {
            after_ms: 800,
            audio: false,
        },
        Agent::Busy,
        1,
    );
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(20_000));
    let mut cust = BackgroundSipp::start(
        sc.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&s.sw.sip.to_string(), "-s", BILLING, "-rtp_echo"],
    );
    // No token is configured: the API is open to local callers.
    let floor = || -> serde_json::Value {
        let (status, body) = http_get(s.sw.http, "/api/v1/floor", None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("floor JSON")
    };
    let waited = |f: &serde_json::Value| -> Option<i64> {
        let q = f["queues"]
            .as_array()?
            .iter()
            .find(|q| q["queue"] == "Billing")?;
        q["customers"].as_array()?.first()?["wait_seconds"].as_i64()
    };
    let billing_call = |f: &serde_json::Value| -> Option<serde_json::Value> {
        f["calls"]
            .as_array()?
            .iter()
            .find(|c| c["flow"] == "Billing")
            .cloned()
    };
    let first = await_some(
        "the customer waiting in Billing",
        Duration::from_secs(10),
        || waited(&floor()),
    );
    let later = await_some("the wait growing", Duration::from_secs(10), || {
        waited(&floor()).filter(|w| *w > first)
    });
    let f = floor();
    let c = billing_call(&f).unwrap_or_default();
    assert_eq!(c["state"], "waiting", "{f}");
    assert_eq!(c["caller"], CUSTOMER, "{f}");
    assert_eq!(c["contact_point"], BILLING, "{f}");
    assert_eq!(c["queue"], "Billing", "{f}");
    assert_eq!(c["legs"].as_array().map(Vec::len), Some(0), "{f}");

    login(&s.sw, JSMITH);
    let c = await_some("the bridged call", Duration::from_secs(15), || {
        billing_call(&floor()).filter(|c| c["state"] == "bridged")
    });
    assert_eq!(c["agent"], "jsmith", "{c}");
    assert!(c["wait_seconds"].as_i64().unwrap_or(0) >= later, "{c}");
    let legs = c["legs"].as_array().cloned().unwrap_or_default();
    assert_eq!(legs.len(), 1, "{c}");
    assert_eq!(legs[0]["kind"], "agent", "{c}");
    assert_eq!(legs[0]["agent"], "jsmith", "{c}");
    assert_eq!(legs[0]["target"], JSMITH, "{c}");
    assert_eq!(legs[0]["trunk"], "carrier", "{c}");
    assert_eq!(legs[0]["state"], "answered", "{c}");
    assert!(
        legs[0]["sip_call_id"]
            .as_str()
            .is_some_and(|id| id.ends_with("@tpswitch")),
        "{c}"
    );
    let f = floor();
    assert_eq!(waited(&f), None, "nobody waits once bridged: {f}");
    // The agent's row: busy (the queue publishes it through the store),
    // with the call in progress counted as accepted today.
    let row = await_some(
        "jsmith busy with one accepted call",
        Duration::from_secs(10),
        || {
            floor()["agents"]
                .as_array()?
                .iter()
                .find(|a| {
                    a["id"] == "jsmith"
                        && a["state"] == "busy"
                        && (a["today"]["accepted"] == 1 || crossed_midnight())
                })
                .cloned()
        },
    );
    // "Today" is the UTC day: a run across midnight starts from zero.
    if !crossed_midnight() {
        assert_eq!(row["today"]["offered"], 1, "{row}");
    }
    assert!(row["remaining_seconds"].as_i64().unwrap_or(0) > 0, "{row}");

    let st = cust.wait(Duration::from_secs(40));
    assert!(
        st.is_some_and(|s| s.success()),
        "{}\n--- switch log\n{}",
        cust.errors(),
        s.sw.log()
    );
    s.finish(uas);
    await_some(
        "the floor empty after the call",
        Duration::from_secs(10),
        || {
            floor()["calls"]
                .as_array()
                .filter(|a| a.is_empty())
                .map(|_| ())
        },
    );
}

/// The trunk's UAS for the not-responding test: offers to jsmith ring
/// until cancelled; the notification call (From the log-in contact point,
/// our caller ID toward agents) is answered, sends audio (the switch plays
/// once media runs) and waits for the switch's BYE after the prompt.
fn not_responding_scenario(dir: &Path, switch: SocketAddr) -> PathBuf {
    let notice = format!(
        "{}  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>\n{AWAIT_BYE}",
        agent_answer(false)
    );
    let text = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="an agent who does not answer">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="15550100000" search_in="hdr" header="From:" check_it="false" assign_to="isnote"/>
    </action>
  </recv>
  <nop next="note" test="isnote"/>
{RING_UNTIL_CANCEL}  <nop next="end"/>
  <label id="note"/>
{notice}  <label id="end"/>
  <timewait milliseconds="300"/>
</scenario>
"#
    );
    let text = text.replace("@SWITCH@", &switch.to_string());
    let path = dir.join("not_responding.xml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Issue 14, "not responding": with `max_no_answer = 3`, three offers the
/// agent's phone lets ring out put them in `not-responding` (not
/// `offline`): the API and `/metrics` say so, the history has the reason,
/// and the notification call plays `not_responding` (not `offline`).
/// Calling the log-in line clears it and offers the menu as usual; key 1
/// is an ordinary window.
#[test]
fn three_missed_offers_make_the_agent_not_responding_until_they_call_in() {
    let s = setup(&[JSMITH], |t| t);
    // Three offers and the notification call.
    let uas = BackgroundSipp::start(
        not_responding_scenario(s.dir.path(), s.sw.sip)
            .to_str()
            .unwrap(),
        s.trunk,
        4,
        &[],
    );
    // A customer is never offered the same agent twice, so three
    // customers, one after the other, each let jsmith ring out (3 s) and
    // hang up at 4.5 s (before the third one's queue_unavailable, played
    // once nobody is online, has ended).
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(4_500));
    for _ in 0..3 {
        customer(&s.sw, &sc, &[]).assert_ok(&s.sw);
    }
    s.finish(uas);
    let c = settled_calls(&s.sw, 3);
    for call in &c {
        assert_eq!(
            attempts(call),
            [("jsmith".to_owned(), "ring-timeout".to_owned())],
            "{c:?}"
        );
    }

    // Seen through the API, with why.
    let why = "missed 3 offers in a row (max_no_answer)";
    let (status, body) = http_get(s.sw.http, "/api/v1/agents/jsmith", None);
    let a: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    assert_eq!(a["state"], "not-responding", "{a}\n{}", s.sw.log());
    assert_eq!(a["not_responding"]["reason"], why, "{a}");
    assert!(a["window"].is_null(), "{a}");
    assert_eq!(agent_state(&s.sw, "jsmith"), "not-responding");
    await_metric(&s.sw, r#"tpswitch_agents{state="not_responding"}"#, 1.0);

    // The notification call played the new prompt, and was heard out.
    let log = s.sw.log();
    assert!(
        log.lines()
            .any(|l| l.contains("calling the agent to tell them")
                && l.contains("not_responding")
                && l.contains("not responding")),
        "{log}"
    );
    assert!(log.contains("notification delivered"), "{log}");

    // Calling in clears it (durably, before the menu) and offers the
    // menu: key 1 puts them online as any log-in does.
    login(&s.sw, JSMITH);
    assert_eq!(agent_state(&s.sw, "jsmith"), "online");
    await_metric(&s.sw, r#"tpswitch_agents{state="not_responding"}"#, 0.0);
    let out = s.sw.cli(&["history", "jsmith", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    let story: Vec<(String, String, String)> = h
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("actor"), s("reason"))
        })
        .collect();
    let line = |k: &str, a: &str, r: &str| (k.to_owned(), a.to_owned(), r.to_owned());
    assert_eq!(
        story,
        [
            line("online", "agent", "log-in menu"),
            line("responding", "agent", "called the log-in line"),
            line("not-responding", "switch", why),
            line("online", "agent", "log-in menu"),
        ],
        "{h}"
    );
}

/// jsmith's phone as a nailed-up agent: calls the log-in line, keys
/// `presses` (one capture with distinct RTP timestamps, so each is a
/// press of its own, RFC 4733 §2.5.1.2) from one second after the answer,
/// stays on the call, and hangs up after `hang_up_ms`.
fn nailed_agent_scenario(dir: &Path, presses: &[dtmf_pcap::Press], hang_up_ms: u64) -> PathBuf {
    nailed_agent_scenario_ending(dir, presses, hang_up_ms, "login_end_hangup.inc")
}

/// As [`nailed_agent_scenario`], ending with `end` (`login_end_bye.inc`:
/// wait for the switch's BYE after `hang_up_ms` instead of hanging up).
fn nailed_agent_scenario_ending(
    dir: &Path,
    presses: &[dtmf_pcap::Press],
    hang_up_ms: u64,
    end: &str,
) -> PathBuf {
    let keys = dir.join("nailed_keys.pcap");
    dtmf_pcap::write(&keys, presses, 101);
    let steps = format!(
        "  <pause milliseconds=\"1000\"/>\n  \
         <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  \
         <pause milliseconds=\"{}\"/>\n",
        keys.display(),
        hang_up_ms - 1000
    );
    let end = std::fs::read_to_string(sipp_dir().join(end)).unwrap();
    let text = std::fs::read_to_string(sipp_dir().join("login.xml"))
        .unwrap()
        .replace("@STEPS@", &steps)
        .replace("@END@", &end)
        .replace("@CALLER@", JSMITH);
    let path = dir.join(format!("nailed_agent_{hang_up_ms}.xml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn press(key: char, at_ms: u32) -> dtmf_pcap::Press {
    dtmf_pcap::Press { key, at_ms }
}

#[test]
fn a_nailed_up_agent_takes_two_customers_in_a_row_on_one_call() {
    // jsmith is nailed-up; nobody answers on the trunk, so a customer can
    // only reach them on the line.
    let s = setup(&[], |t| {
        t.replace_exact("# connection = \"nailed-up\"", "connection = \"nailed-up\"")
            .replace_exact("accept_timeout = \"3s\"", "accept_timeout = \"10s\"")
            .replace_exact("no_agents = \"immediate\"", "no_agents = \"wait\"")
    });
    // Key 1 (8 h), then 1 every 2.5 s: keys between customers change
    // nothing, during an offer one accepts it.
    let mut presses = vec![press('1', 0)];
    presses.extend((0..11).map(|i| press('1', 11_000 + i * 2_500)));
    let agent_sc = nailed_agent_scenario(s.dir.path(), &presses, 40_000);
    let mut phone = BackgroundSipp::start(
        agent_sc.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&s.sw.sip.to_string(), "-s", LOGIN],
    );
    await_some("the nailed-up line", Duration::from_secs(20), || {
        s.sw.log()
            .contains("nailed-up line: waiting for customers")
            .then_some(())
    });
    assert_eq!(agent_state(&s.sw, "jsmith"), "online");
    for n in 1..=2 {
        let sc = customer_scenario(s.dir.path(), &format!("customer{n}.xml"), Some(9_000));
        let run = customer(&s.sw, &sc, &[]);
        run.assert_ok(&s.sw);
        let c = settled_calls(&s.sw, n);
        // Newest first.
        assert_eq!(c[0]["outcome"], "bridged", "{c:?}\n{}", s.sw.log());
        assert_eq!(c[0]["agent"], "jsmith");
        assert_eq!(c[0]["hung_up_by"], "customer");
        assert_eq!(attempts(&c[0]), [("jsmith".into(), "completed".into())]);
        // Back on the waiting line after the wrap-up (1 s here).
        await_some("jsmith free again", Duration::from_secs(10), || {
            (agent_state(&s.sw, "jsmith") == "online").then_some(())
        });
    }
    // Both offers went over the log-in call itself: no INVITE to the agent.
    let c = settled_calls(&s.sw, 2);
    let ids: Vec<&str> = c
        .iter()
        .map(|c| c["attempts"][0]["sip_call_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids[0], ids[1], "{c:?}");
    assert!(
        !ids[0].ends_with("@tpswitch"),
        "the agent's own call: {ids:?}"
    );
    let log = s.sw.log();
    let on_line = log
        .lines()
        .filter(|l| l.contains("bridged agent=jsmith") && l.contains("on=\"nailed-up line\""))
        .count();
    assert_eq!(on_line, 2, "{log}");
    // The agent hangs up: their window ends.
    let st = phone.wait(Duration::from_secs(40));
    assert!(
        st.is_some_and(|s| s.success()),
        "{}\n--- switch log\n{}",
        phone.errors(),
        s.sw.log()
    );
    await_some("jsmith offline", Duration::from_secs(10), || {
        (agent_state(&s.sw, "jsmith") == "offline").then_some(())
    });
    assert!(
        s.sw.log()
            .contains("offline: the agent hung up the nailed-up line"),
        "{}",
        s.sw.log()
    );
}

/// The reminder on a nailed-up line: a one-hour window (keys 9, 1, #) on a
/// presence clock sped up 120x, `remind_before = "30m"` (15 s here): the
/// question is said on the line itself (no call to the busy phone), key 1
/// extends the window by the first preset, durably, and the agent hanging
/// up afterwards ends it.
#[test]
fn a_nailed_up_agent_hears_the_reminder_on_the_line_and_extends() {
    let trunk = free_udp_port();
    let sw = Switch::start_env(trunk, &[("TPSWITCH_CLOCK_SPEED", "120")], |t| {
        t.replace_exact("# connection = \"nailed-up\"", "connection = \"nailed-up\"")
            .replace_exact("# remind_before = \"15m\"", "remind_before = \"30m\"")
    });
    let dir = tempfile::tempdir().unwrap();
    // 1 h, then 1 every 1.5 s from 17 s (the question starts at about
    // 15 s and takes about 5 s).
    let mut presses = vec![press('9', 0), press('1', 800), press('#', 1_100)];
    presses.extend((0..5).map(|i| press('1', 16_000 + i * 1_500)));
    let sc = nailed_agent_scenario(dir.path(), &presses, 27_000);
    let mut phone = BackgroundSipp::start(
        sc.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&sw.sip.to_string(), "-s", LOGIN],
    );
    let st = phone.wait(Duration::from_secs(40));
    assert!(
        st.is_some_and(|s| s.success()),
        "{}\n--- switch log\n{}",
        phone.errors(),
        sw.log()
    );
    let log = sw.log();
    assert!(log.contains("reminding the agent on the line"), "{log}");
    assert!(
        log.contains("no reminder call: the agent is on their nailed-up line"),
        "{log}"
    );
    assert!(
        log.contains("window extended from the reminder on the line"),
        "{log}"
    );
    await_some(
        "the hang-up ends the window",
        Duration::from_secs(10),
        || {
            sw.log()
                .contains("offline: the agent hung up the nailed-up line")
                .then_some(())
        },
    );
    let out = sw.cli(&["history", "jsmith", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"extended"), "{history}");
    let extended = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "extended")
        .unwrap();
    assert_eq!(extended["actor"], "agent", "{extended}");
}

/// A restart hangs the line up (a draining switch does not wait for it)
/// but keeps the window; calling back, the online agent keys # to keep
/// their time, and the call is their line again: a customer is bridged
/// onto it.
#[test]
fn a_restart_ends_the_line_not_the_window_and_key_pound_rejoins_it() {
    let mut s = setup(&[], |t| {
        t.replace_exact("# connection = \"nailed-up\"", "connection = \"nailed-up\"")
            .replace_exact("accept_timeout = \"3s\"", "accept_timeout = \"10s\"")
            .replace_exact("no_agents = \"immediate\"", "no_agents = \"wait\"")
    });
    let first =
        nailed_agent_scenario_ending(s.dir.path(), &[press('1', 0)], 2_000, "login_end_bye.inc");
    let mut phone = BackgroundSipp::start(
        first.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&s.sw.sip.to_string(), "-s", LOGIN],
    );
    s.sw.await_log(
        "nailed-up line: waiting for customers",
        Duration::from_secs(20),
    );
    let status = s.sw.terminate();
    assert!(
        status.is_some_and(|st| st.success()),
        "{status:?}\n{}",
        s.sw.log()
    );
    assert!(
        s.sw.log().contains("drained: every call has ended"),
        "{}",
        s.sw.log()
    );
    assert!(
        s.sw.log()
            .contains("shutting down: hanging up the nailed-up line"),
        "{}",
        s.sw.log()
    );
    let st = phone.wait(Duration::from_secs(10));
    assert!(
        st.is_some_and(|st| st.success()),
        "the line got our BYE: {st:?} {}\n{}\n--- switch\n{}",
        phone.errors(),
        phone.messages(),
        s.sw.log()
    );
    // Same folder and store, a new process.
    let config_text = std::fs::read_to_string(&s.sw.config).unwrap();
    let dir2 = std::mem::replace(&mut s.sw.dir, tempfile::tempdir().unwrap());
    let config = dir2.path().join("tpswitch.toml");
    std::fs::write(&config, config_text).unwrap();
    let sw = Switch::start_config(dir2, config);
    assert_eq!(agent_state(&sw, "jsmith"), "online", "the window stays");
    // '#' through the status, then 1 every 2.5 s for the customer.
    let mut presses = vec![press('#', 0)];
    presses.extend((0..7).map(|i| press('1', 10_000 + i * 2_500)));
    let again = nailed_agent_scenario(s.dir.path(), &presses, 30_000);
    let mut phone = BackgroundSipp::start(
        again.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&sw.sip.to_string(), "-s", LOGIN],
    );
    sw.await_log(
        "nailed-up line: waiting for customers",
        Duration::from_secs(20),
    );
    assert!(sw.log().contains("rejoined the line"), "{}", sw.log());
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(8_000));
    let run = customer(&sw, &sc, &[]);
    run.assert_ok(&sw);
    let c = settled_calls(&sw, 1);
    assert_eq!(c[0]["outcome"], "bridged", "{c:?}\n{}", sw.log());
    assert_eq!(c[0]["agent"], "jsmith");
    let st = phone.wait(Duration::from_secs(40));
    assert!(st.is_some_and(|st| st.success()), "{}", phone.errors());
}

/// A supervisor ends the window of an agent on a customer call: the call
/// goes on, and the "window ended" call to the agent's phone waits for it
/// to end (it would only find the phone busy).
#[test]
fn a_window_ended_by_a_supervisor_mid_call_is_told_after_the_call() {
    let s = setup(&[JSMITH], |t| t);
    // jsmith's phone takes the customer, then the notice (both "accept":
    // the notice needs no key and is hung up by the switch).
    let uas = s.agents(
        Agent::Accept {
            after_ms: 800,
            audio: false,
        },
        Agent::Busy,
        2,
    );
    let sc = customer_scenario(s.dir.path(), "customer.xml", Some(8_000));
    let mut cust = BackgroundSipp::start(
        sc.to_str().unwrap(),
        free_udp_port(),
        1,
        &[&s.sw.sip.to_string(), "-s", BILLING],
    );
    await_some("jsmith on the call", Duration::from_secs(15), || {
        (agent_state(&s.sw, "jsmith") == "busy").then_some(())
    });
    let status = http_delete(
        s.sw.http,
        "/api/v1/agents/jsmith/presence?reason=shift%20over",
    );
    assert_eq!(status, 200, "{}", s.sw.log());
    s.sw.await_log(
        "on a customer call: the notice waits for it to end",
        Duration::from_secs(5),
    );
    let st = cust.wait(Duration::from_secs(30));
    assert!(st.is_some_and(|st| st.success()), "{}", cust.errors());
    s.finish(uas);
    let log = s.sw.log();
    // The call ends when the customer's BYE arrives ("customer leg
    // ended"); the call's record ("customer call finished") is written in
    // the same round of the queue's actions as the agent's release, in
    // either order. Compared by the lines' timestamps, not their places in
    // the log: tasks on different worker threads may write lines a few
    // microseconds apart in the other order.
    let at = |what: &str| {
        log.lines()
            .find(|l| l.contains(what))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {what:?} line\n{log}"))
    };
    let (ended, told) = (
        at("customer leg ended"),
        at("calling the agent to tell them"),
    );
    assert!(ended <= told, "told during the call:\n{log}");
    let c = settled_calls(&s.sw, 1);
    assert_eq!(c[0]["outcome"], "bridged", "{c:?}");
}

/// `DELETE` on the API of a switch without tokens (open to local callers).
fn http_delete(http: SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(http).expect("connect to the HTTP API");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "DELETE {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}
