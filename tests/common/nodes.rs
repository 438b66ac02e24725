//! Two switches ("nodes") on one PostgreSQL store (issue 13), for the
//! cluster tests: a fresh database, node A and node B each with their own
//! SIP port, trunk port and `[store] url/node/heartbeat/claim_lease`, the
//! same roster of agents on both, and SIPp standing in for customers and
//! for the agents' phones behind each node's trunk.
//!
//! Needs a PostgreSQL server in `TPSWITCH_TEST_POSTGRES` (set by
//! `scripts/test`); without it the tests say so and pass, except under
//! CI, where that is a failure (as in tests/postgres_store.rs).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Connection;

use super::pg::block_on;
use super::*;

/// The log-in menu's and the Billing queue's contact points in
/// config/tpswitch.toml.
pub const LOGIN: &str = "+15550100000";
pub const BILLING: &str = "+15550100001";

/// Short cluster timings so that a lease runs out within a test.
pub const HEARTBEAT: Duration = Duration::from_millis(200);
pub const CLAIM_LEASE: Duration = Duration::from_secs(1);

/// Agent `i`'s user id and PSTN number (the number their phone calls from
/// and is called on).
pub fn agent_id(i: usize) -> String {
    format!("agent{i:02}")
}

pub fn agent_number(i: usize) -> String {
    format!("+1234561{i:04}")
}

/// `n` agents with the billing skill, as `[[users]]` tables.
fn agent_users(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[users]]\nid = \"{}\"\nname = \"Agent {i}\"\nskills = [\"billing\"]\n  \
                 [[users.extensions]]\n  type = \"pstn\"\n  value = \"{}\"\n  ext = \"\"\n  \
                 description = \"mobile\"\n\n",
                agent_id(i),
                agent_number(i)
            )
        })
        .collect()
}

/// One node: the switch and the trunk port its agent legs go to.
pub struct Node {
    pub sw: Switch,
    pub name: String,
    pub trunk: u16,
}

impl Node {
    /// `tpswitch_cluster_claims_total{result="…"}` on this node.
    pub fn claims(&self, result: &str) -> u64 {
        metric(
            &self.sw,
            &format!("tpswitch_cluster_claims_total{{result=\"{result}\"}}"),
            None,
        )
    }

    /// `tpswitch_agents{state="…"}` on this node (its own view).
    pub fn agents_in(&self, state: &str) -> u64 {
        metric(
            &self.sw,
            &format!("tpswitch_agents{{state=\"{state}\"}}"),
            None,
        )
    }
}

/// Two nodes on one fresh database, with `agents` agents in the roster.
pub struct Pair {
    pub a: Node,
    pub b: Node,
    pub url: String,
    /// Scenarios and injection files.
    pub dir: tempfile::TempDir,
}

/// Starts node "a" then node "b" (A first: it migrates the new database)
/// on `url`, each with `agents` agents and the queue settings of `edit`.
pub fn start_pair(url: &str, agents: usize, edit: impl Fn(String) -> String) -> Pair {
    let node = |name: &str| {
        let trunk = free_udp_port();
        let users = agent_users(agents);
        let sw = Switch::start_with_trunk(trunk, |t| {
            let t = t
                .replace_exact(
                    "# url = \"postgres://tpswitch@127.0.0.1:5432/tpswitch\"",
                    &format!(
                        "url = \"{url}\"\nnode = \"{name}\"\nheartbeat = \"{}ms\"\nclaim_lease = \"{}ms\"",
                        HEARTBEAT.as_millis(),
                        CLAIM_LEASE.as_millis()
                    ),
                )
                .replace_exact(
                    "# The timed presence flow",
                    &format!("{users}# The timed presence flow"),
                );
            edit(wider_rtp_range(t))
        });
        sw.await_log(
            "node registered in the shared store",
            Duration::from_secs(10),
        );
        Node {
            sw,
            name: name.to_owned(),
            trunk,
        }
    };
    let a = node("a");
    let b = node("b");
    Pair {
        a,
        b,
        url: url.to_owned(),
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

impl Pair {
    /// Logs agents `on_a` in through A's log-in menu and `on_b` through
    /// B's at the same time, each for 8 hours (SIPp, caller ID from an
    /// injection file, key 1, ten a second).
    pub fn login(&self, on_a: std::ops::Range<usize>, on_b: std::ops::Range<usize>) {
        let (dir, a, b) = (self.dir.path(), self.a.sw.sip, self.b.sw.sip);
        let (run_a, run_b) = std::thread::scope(|s| {
            let on_a = s.spawn(move || login_run(dir, "a", a, on_a));
            let run_b = login_run(dir, "b", b, on_b);
            (on_a.join().expect("log-in thread"), run_b)
        });
        if let Some(run) = run_a {
            run.assert_ok(&self.a.sw);
        }
        if let Some(run) = run_b {
            run.assert_ok(&self.b.sw);
        }
    }

    /// Waits until both nodes see `n` agents available: each node's queue
    /// learns of the other's log-ins through the store (NOTIFY, resync).
    pub fn await_available(&self, n: u64) {
        for node in [&self.a, &self.b] {
            await_some(
                &format!("{n} agents available on node {}", node.name),
                Duration::from_secs(15),
                || (node.agents_in("available") == n).then_some(()),
            );
        }
    }

    pub fn db<T>(&self, f: impl AsyncFnOnce(&mut sqlx::PgConnection) -> T) -> T {
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect to the test database");
            f(&mut conn).await
        })
    }
}

/// The test config's RTP range (190 ports) made 590 wide: a node under
/// load holds two ports per waiting customer and per agent leg. Ranges of
/// other switches may then overlap; the port pool skips ports in use.
fn wider_rtp_range(t: String) -> String {
    let Some(at) = t.find("rtp_ports = \"") else {
        return t;
    };
    let rest = &t[at + "rtp_ports = \"".len()..];
    let Some((range, _)) = rest.split_once('"') else {
        return t;
    };
    let Some(start) = range
        .split_once('-')
        .and_then(|(s, _)| s.parse::<u32>().ok())
    else {
        return t;
    };
    let end = (start + 590).min(32_766);
    t.replacen(range, &format!("{start}-{end}"), 1)
}

/// One SIPp run logging agents `range` in through the switch at `sip`.
fn login_run(
    dir: &Path,
    node: &str,
    sip: SocketAddr,
    range: std::ops::Range<usize>,
) -> Option<SippRun> {
    let n = range.len();
    if n == 0 {
        return None;
    }
    let tag = format!("{node}_{}", range.start);
    let csv = dir.join(format!("agents_{tag}.csv"));
    let mut text = String::from("SEQUENTIAL\n");
    for i in range {
        text.push_str(&format!("{};\n", agent_number(i)));
    }
    std::fs::write(&csv, text).expect("write injection file");
    let sub = dir.join(format!("login_{tag}"));
    std::fs::create_dir_all(&sub).expect("scenario folder");
    let sc = login_scenario(&sub, "[field0]", &[Step::Wait(1000), Step::Key('1')], true);
    Some(sipp(
        sc.to_str().expect("path"),
        Some(sip),
        u32::try_from(n).expect("a few agents"),
        &["-s", LOGIN, "-inf", csv.to_str().expect("path"), "-r", "10"],
    ))
}

// ------------------------------------------------------------ SIPp parts

const OK_TO_BYE: &str = r#"  <send>
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

/// What every agent's phone behind a node's trunk does with an INVITE.
#[derive(Clone, Copy, Debug)]
pub struct Phone {
    /// Answer at once, then press the accept key (1) after this long;
    /// `None` for a queue with `accept_digit = ""` (bridge on answer):
    /// then the phone sends audio instead, so the answer is not dead.
    pub accept_after_ms: Option<u64>,
    /// Hang up this long after accepting, unless the switch's BYE comes
    /// first (the customer hung up).
    pub hold_ms: u64,
}

/// The scenario of `phone` for the agent legs of the node at `switch`.
fn phone_scenario(dir: &Path, phone: Phone, switch: SocketAddr) -> PathBuf {
    let media = match phone.accept_after_ms {
        Some(ms) => format!(
            "  <pause milliseconds=\"{ms}\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"400\"/>\n",
            pcap('1')
        ),
        None => "  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>\n".to_owned(),
    };
    let text = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agents' phones behind the trunk">
  <recv request="INVITE" crlf="true"/>
{answer}{media}  <recv request="BYE" timeout="{hold}" ontimeout="hangup"/>
{OK_TO_BYE}  <nop next="end"/>
  <label id="hangup"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:tpswitch@{switch} SIP/2.0
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
  <label id="end"/>
  <timewait milliseconds="300"/>
</scenario>
"#,
        answer = agent_answer(true),
        hold = phone.hold_ms,
    );
    let path = dir.join(format!("phones_{}.xml", switch.port()));
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// Every agent's phone behind `node`'s trunk (one SIPp UAS answers for all
/// numbers), for up to `calls` calls. Killed on drop.
pub fn phones(dir: &Path, node: &Node, phone: Phone, calls: u32) -> BackgroundSipp {
    let sc = phone_scenario(dir, phone, node.sw.sip);
    BackgroundSipp::start(sc.to_str().expect("path"), node.trunk, calls, &[])
}

/// The customer's scenario: call Billing from `caller`, then either hang
/// up `hang_up_ms` after the answer or (None) wait for the switch's BYE
/// (the agent hung up, or the queue overflowed).
pub fn customer_scenario(
    dir: &Path,
    caller: &str,
    hang_up_ms: Option<u64>,
    wait_ms: u64,
) -> PathBuf {
    let end = match hang_up_ms {
        Some(ms) => format!(
            "  <pause milliseconds=\"{ms}\"/>\n{}",
            std::fs::read_to_string(sipp_dir().join("login_end_hangup.inc")).expect("include")
        ),
        None => format!("  <recv request=\"BYE\" timeout=\"{wait_ms}\"/>\n{OK_TO_BYE}"),
    };
    let text = std::fs::read_to_string(sipp_dir().join("login.xml"))
        .expect("login.xml")
        .replace("@STEPS@", "")
        .replace("@END@", &end)
        .replace("@CALLER@", caller);
    let path = dir.join(format!("customer_{}.xml", caller.trim_start_matches('+')));
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// Customers calling Billing on `node`: `calls` of them at `rate` a second.
pub fn customers(scenario: &Path, node: &Node, calls: u32, rate: &str) -> BackgroundSipp {
    BackgroundSipp::start(
        scenario.to_str().expect("path"),
        free_udp_port(),
        calls,
        &[
            &node.sw.sip.to_string(),
            "-s",
            BILLING,
            "-r",
            rate,
            "-l",
            "500",
        ],
    )
}

/// Stops a process (SIGSTOP) and continues it (SIGCONT) when dropped, so
/// a failing test never leaves a frozen switch behind.
pub struct Frozen {
    pid: u32,
    thawed: bool,
}

impl Frozen {
    pub fn stop(pid: u32) -> Frozen {
        assert!(pid != 0, "no process to stop");
        let ok = std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -STOP {pid} failed");
        Frozen { pid, thawed: false }
    }

    pub fn thaw(mut self) {
        self.cont();
    }

    fn cont(&mut self) {
        if !std::mem::replace(&mut self.thawed, true) {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &self.pid.to_string()])
                .status();
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.cont();
    }
}

// ------------------------------------------------------------ the store's records

/// One attempt as the store has it, with its call's end and outcome.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub call: i64,
    pub customer: String,
    pub agent: String,
    pub started_ms: i64,
    pub ring_ms: Option<i64>,
    pub sip_outcome: Option<String>,
    pub accept_latency_ms: Option<i64>,
    pub cause: Option<String>,
    pub call_ended_ms: Option<i64>,
}

/// One customer call as the store has it.
#[derive(Debug, Clone)]
pub struct CallRow {
    pub id: i64,
    pub customer: String,
    pub started_ms: i64,
    pub bridged_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub outcome: Option<String>,
}

pub async fn read_calls(conn: &mut sqlx::PgConnection) -> Vec<CallRow> {
    use sqlx::Row;
    sqlx::query(
        "SELECT id, customer_number, started_at_ms, bridged_at_ms, ended_at_ms, outcome FROM calls \
         WHERE flow = 'Billing' ORDER BY id",
    )
    .fetch_all(conn)
    .await
    .expect("read calls")
    .iter()
    .map(|r| CallRow {
        id: r.get("id"),
        customer: r.get("customer_number"),
        started_ms: r.get("started_at_ms"),
        bridged_ms: r.get("bridged_at_ms"),
        ended_ms: r.get("ended_at_ms"),
        outcome: r.get("outcome"),
    })
    .collect()
}

pub async fn read_attempts(conn: &mut sqlx::PgConnection) -> Vec<AttemptRow> {
    use sqlx::Row;
    sqlx::query(
        "SELECT a.call_id, c.customer_number, a.agent_user_id, a.started_at_ms, a.ring_ms, \
         a.sip_outcome, a.accept_latency_ms, a.hangup_cause, c.ended_at_ms \
         FROM call_attempts a JOIN calls c ON c.id = a.call_id ORDER BY a.started_at_ms",
    )
    .fetch_all(conn)
    .await
    .expect("read attempts")
    .iter()
    .map(|r| AttemptRow {
        call: r.get("call_id"),
        customer: r.get("customer_number"),
        agent: r.get("agent_user_id"),
        started_ms: r.get("started_at_ms"),
        ring_ms: r.get("ring_ms"),
        sip_outcome: r.get("sip_outcome"),
        accept_latency_ms: r.get("accept_latency_ms"),
        cause: r.get("hangup_cause"),
        call_ended_ms: r.get("ended_at_ms"),
    })
    .collect()
}

/// The queue's timers that end an answered attempt without a bridge.
#[derive(Debug, Clone, Copy)]
pub struct EndTimers {
    /// `accept_timeout`: answered, the key never pressed.
    pub accept_timeout_ms: i64,
    /// The engine's media grace: answered, no RTP (a dead answer).
    pub media_grace_ms: i64,
}

/// When the attempt let the agent go, in store milliseconds, as late as
/// the store's rows show it. The store keeps an attempt's start, its ring
/// time (to the answer, final response or CANCEL) and accept latency, not
/// its end: an attempt that ended its call (`completed`, or the customer
/// hung up during it) held the agent until the call's end; a dead answer
/// (`no-media`) or an answer never accepted (`not-accepted`) until the
/// engine's timer after the answer; one that rang out until its ring's
/// end. Any other end after an answer (the agent hung up before the key)
/// is taken at the answer, the earliest it can be, so this never makes an
/// overlap that was not there. `None` while the attempt is in progress.
pub fn attempt_end(a: &AttemptRow, t: EndTimers) -> Option<i64> {
    let answered = a.started_ms + a.ring_ms.unwrap_or(0);
    Some(match a.cause.as_deref()? {
        "completed" | "customer-hung-up" | "shutdown" => a.call_ended_ms?,
        "no-media" => answered + t.media_grace_ms,
        "not-accepted" => answered + t.accept_timeout_ms,
        _ => answered + a.accept_latency_ms.unwrap_or(0),
    })
}

/// Pairs of one agent's attempts that overlap in time: (agent, earlier,
/// later). Attempts are ordered by start; each is compared with the
/// latest end of the agent's earlier attempts.
pub fn overlaps(attempts: &[AttemptRow], t: EndTimers) -> Vec<(AttemptRow, AttemptRow)> {
    let mut by_agent: std::collections::BTreeMap<&str, Vec<&AttemptRow>> = Default::default();
    for a in attempts {
        by_agent.entry(a.agent.as_str()).or_default().push(a);
    }
    let mut bad = Vec::new();
    for list in by_agent.values_mut() {
        list.sort_by_key(|a| a.started_ms);
        let mut latest: Option<(&AttemptRow, i64)> = None;
        for a in list.iter() {
            if let Some((prev, end)) = latest {
                if a.started_ms < end {
                    bad.push((prev.clone(), (*a).clone()));
                }
            }
            let end = attempt_end(a, t).unwrap_or(i64::MAX);
            if latest.is_none_or(|(_, e)| end > e) {
                latest = Some((a, end));
            }
        }
    }
    bad
}

/// The smallest time between the end of one of an agent's attempts and
/// the start of their next, over every agent, in ms; with `across`, only
/// between attempts that different nodes made (`node_of` tells a node
/// by the customer's number). `None` when there is no such pair.
pub fn smallest_gap(
    attempts: &[AttemptRow],
    t: EndTimers,
    node_of: impl Fn(&str) -> &'static str,
    across: bool,
) -> Option<i64> {
    let mut by_agent: std::collections::BTreeMap<&str, Vec<&AttemptRow>> = Default::default();
    for a in attempts {
        by_agent.entry(a.agent.as_str()).or_default().push(a);
    }
    by_agent
        .values_mut()
        .flat_map(|list| {
            list.sort_by_key(|a| a.started_ms);
            list.windows(2)
                .filter(|w| !across || node_of(&w[0].customer) != node_of(&w[1].customer))
                .filter_map(|w| Some(w[1].started_ms - attempt_end(w[0], t)?))
                .collect::<Vec<_>>()
        })
        .min()
}
