//! Kamailio in front of two tpswitch nodes on one PostgreSQL store (issue
//! 13, deploy/kamailio/front.cfg): the front spreads new calls from the
//! carrier's side (SIPp) over the nodes with its dispatcher, names the
//! carrier's address in X-Tpswitch-Source (which the nodes show as the
//! call's source), and relays the nodes' own calls to agents to the carrier
//! (a SIPp UAS as the agent's phone). An agent logged in through one node
//! is rung by the other for a customer, and the call is bridged.
//!
//! Needs a PostgreSQL server: `TPSWITCH_TEST_POSTGRES` (set by
//! `scripts/test`, which starts a throwaway cluster). Without it these
//! tests say so and pass, except under CI, where that is a failure.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::kamailio::{Front, FrontSite};
use common::pg::{block_on, fresh_database};
use common::*;

const LOGIN: &str = "+15550100000";
const BILLING: &str = "+15550100001";
/// jsmith in config/tpswitch.toml (skills billing, spanish).
const JSMITH: &str = "+12345678910";
const CUSTOMER: &str = "+15551234567";
const TOKEN: &str = "front-test-token";
/// Six agents of their own (one number each, no pin) for the log-in spread.
const AGENTS: [(&str, &str); 6] = [
    ("agent1", "+15550200001"),
    ("agent2", "+15550200002"),
    ("agent3", "+15550200003"),
    ("agent4", "+15550200004"),
    ("agent5", "+15550200005"),
    ("agent6", "+15550200006"),
];

/// Two nodes on `url` behind a front whose nodes' socket is `nodes_port`,
/// each trusting the front's X-Tpswitch-Source.
struct Cluster {
    front: Front,
    nodes: [Switch; 2],
}

impl Cluster {
    /// `carrier`: where the nodes' calls to agents go (the agents' phones).
    fn start(url: &str, carrier: &str) -> Cluster {
        Self::start_over(url, carrier, false)
    }

    /// With `tcp`, the front and the nodes talk over TCP both ways (the
    /// nodes' outbound proxy and the dispatcher's node URIs say so).
    fn start_over(url: &str, carrier: &str, tcp: bool) -> Cluster {
        let nodes_port = free_udp_port();
        let mut carrier_port = free_udp_port();
        while carrier_port == nodes_port {
            carrier_port = free_udp_port();
        }
        let node = |name: &str| {
            let url = url.to_owned();
            let name = name.to_owned();
            Switch::start_env(nodes_port, &[("TPSWITCH_API_TOKEN", TOKEN)], move |t| {
                let users: String = AGENTS
                        .iter()
                        .map(|(id, number)| {
                            format!(
                                "[[users]]\nid = \"{id}\"\nname = \"{id}\"\nskills = [\"support\"]\n  \
                                 [[users.extensions]]\n  type = \"pstn\"\n  value = \"{number}\"\n\n"
                            )
                        })
                        .collect();
                t.replace_exact(
                        "# url = \"postgres://tpswitch@127.0.0.1:5432/tpswitch\"",
                        &format!(
                            "url = \"{url}\"\nnode = \"{name}\"\nheartbeat = \"200ms\"\nclaim_lease = \"1s\""
                        ),
                    )
                    .replace_exact(
                        "prefix = \"\"",
                        "prefix = \"\"\nsource_header = \"X-Tpswitch-Source\"",
                    )
                    .replace_exact("greeting = \"queue_greeting\"", "greeting = \"\"")
                    .replace_exact(
                        "# The timed presence flow",
                        &format!("{users}# The timed presence flow"),
                    )
                    .replace_exact(
                        &format!("outbound_proxy = \"sip:127.0.0.1:{nodes_port}\""),
                        &format!(
                            "outbound_proxy = \"sip:127.0.0.1:{nodes_port}{}\"",
                            if tcp { ";transport=tcp" } else { "" }
                        ),
                    )
            })
        };
        let a = node("a");
        let b = node("b");
        let front = Front::start(&FrontSite {
            carrier_port,
            nodes_port,
            carrier: carrier.to_owned(),
            nodes: vec![("a".into(), a.sip), ("b".into(), b.sip)],
            ping_interval: 1,
            no_answer_ms: 2000,
            tcp,
        });
        let c = Cluster {
            front,
            nodes: [a, b],
        };
        // Both nodes answer the front's probes before any call is sent.
        for n in &c.nodes {
            await_some(
                &format!("node {} active in the front's dispatcher", n.sip),
                Duration::from_secs(15),
                || {
                    c.front
                        .ds_flags(n.sip)
                        .filter(|f| f.starts_with('A'))
                        .map(|_| ())
                },
            );
        }
        c
    }

    /// Everything to read when a test fails.
    fn logs(&self) -> String {
        format!(
            "--- front\n{}\n--- dispatcher\n{}\n--- node a\n{}\n--- node b\n{}",
            self.front.log(),
            self.front.ds_list(),
            self.nodes[0].log(),
            self.nodes[1].log()
        )
    }

    /// The index of the node whose log has the incoming call from the
    /// carrier's address `from` (as X-Tpswitch-Source named it).
    fn node_of(&self, from: SocketAddr) -> Option<usize> {
        // The front's own port over UDP; over TCP, its connection's.
        let want = format!("source={from} proxy=127.0.0.1:");
        let on: Vec<usize> = (0..2)
            .filter(|&i| {
                self.nodes[i]
                    .log()
                    .lines()
                    .any(|l| l.contains("incoming call") && l.contains(&want))
            })
            .collect();
        match on[..] {
            [i] => Some(i),
            _ => None,
        }
    }
}

/// The caller scenario of tests/kamailio (its ACK and BYE follow the
/// front's Record-Route) with `caller`, `steps` and its end.
fn scenario(dir: &std::path::Path, caller: &str, steps: &str, end: &str) -> std::path::PathBuf {
    let kdir = repo().join("tests/kamailio");
    let end = std::fs::read_to_string(kdir.join(end)).expect("end include");
    let text = std::fs::read_to_string(kdir.join("caller_via_edge.xml"))
        .expect("caller_via_edge.xml")
        .replace("@STEPS@", steps)
        .replace("@END@", &end)
        .replace("@CALLER@", caller);
    let path = dir.join(format!("caller{caller}.xml"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// `number` calls the log-in line at `front` from SIPp on `port`, keys 1
/// (the first preset) and waits for the switch's BYE.
fn log_in_run(front: SocketAddr, number: &str, port: u16) -> SippRun {
    let dir = tempfile::tempdir().unwrap();
    let steps = format!(
        "  <pause milliseconds=\"1000\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"300\"/>\n",
        pcap('1')
    );
    let path = scenario(dir.path(), number, &steps, "wait_bye.inc");
    let port = port.to_string();
    sipp(
        path.to_str().unwrap(),
        Some(front),
        1,
        &["-s", LOGIN, "-p", &port],
    )
}

/// The same through the cluster's front, failing the test with every log
/// when SIPp does.
fn log_in(c: &Cluster, number: &str, port: u16) {
    let run = log_in_run(c.front.carrier_addr(), number, port);
    assert!(run.ok(), "{}\n{}", run.explain(), c.logs());
}

/// The agents as node `sw`'s `/api/v1/agents` lists them: id -> state.
fn api_states(sw: &Switch) -> std::collections::BTreeMap<String, String> {
    let (status, body) = http_get(sw.http, "/api/v1/agents?limit=100", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("agents JSON");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or("").to_owned(),
                a["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Six agents log in through the front, one after another: the
/// dispatcher gives each node some of the calls, each node names the
/// caller's own SIPp (not the front) as the call's source, and every
/// agent is online as both nodes' API and CLI see them.
#[test]
fn log_ins_through_the_front_land_on_both_nodes() {
    let Some((url, _)) = fresh_database(&format!("front_{}", "logins")) else {
        return;
    };
    let c = Cluster::start(&url, "sip:127.0.0.1:9");
    let mut landed = [0usize; 2];
    for (id, number) in AGENTS {
        let port = free_udp_port();
        log_in(&c, number, port);
        let from = SocketAddr::from(([127, 0, 0, 1], port));
        let i = c.node_of(from).unwrap_or_else(|| {
            panic!(
                "{id}'s call from {from} on no node, or on both\n{}",
                c.logs()
            )
        });
        landed[i] += 1;
    }
    assert!(
        landed.iter().all(|&n| n >= 1),
        "each node took some log-ins: {landed:?}\n{}",
        c.logs()
    );
    eprintln!("log-ins per node (a, b): {landed:?}");
    for sw in &c.nodes {
        let states = api_states(sw);
        for (id, _) in AGENTS {
            assert_eq!(
                states.get(id).map(String::as_str),
                Some("online"),
                "{id} through {}'s API: {states:?}",
                sw.sip
            );
            assert_eq!(agent(sw, id)["state"], "online", "{id} through the CLI");
        }
    }
    let fl = c.front.log();
    assert!(
        fl.matches("dispatched to node").count() >= AGENTS.len(),
        "{fl}"
    );
    // The switches' BYEs went back through the front to the callers.
    assert!(
        fl.lines()
            .any(|l| l.contains("in-dialog BYE loose-routed") && l.contains("(nodes)")),
        "{fl}"
    );
}

/// jsmith logs in through the front and lands on one node; a customer's
/// call to Billing, the next call the front dispatches, lands on the
/// other. That node claims jsmith in the store and rings him through the
/// front (the agent's phone is SIPp behind it), he keys 1, the customer
/// is bridged to him, and hangs up; the record says so.
#[test]
fn a_customer_on_one_node_is_bridged_to_an_agent_who_logged_in_on_the_other() {
    bridge_across_nodes(false);
}

/// The same with TCP between the front and the nodes, both ways.
#[test]
fn the_bridge_across_nodes_works_over_tcp_between_the_front_and_the_nodes() {
    bridge_across_nodes(true);
}

fn bridge_across_nodes(tcp: bool) {
    let Some((url, _)) = fresh_database(&format!(
        "front_{}",
        if tcp { "bridge_tcp" } else { "bridge" }
    )) else {
        return;
    };
    let agent_port = free_udp_port();
    let c = Cluster::start_over(&url, &format!("sip:127.0.0.1:{agent_port}"), tcp);
    // The socket name the front logs for the nodes' side.
    let nodes_socket = if tcp { "(nodes_tcp)" } else { "(nodes)" };
    let login_port = free_udp_port();
    log_in(&c, JSMITH, login_port);
    let login_node = c
        .node_of(SocketAddr::from(([127, 0, 0, 1], login_port)))
        .unwrap_or_else(|| panic!("the log-in on no node\n{}", c.logs()));
    for sw in &c.nodes {
        assert_eq!(agent(sw, "jsmith")["state"], "online");
    }

    let mut phone = BackgroundSipp::start(
        repo()
            .join("tests/kamailio/agent_via_edge.xml")
            .to_str()
            .unwrap(),
        agent_port,
        1,
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let customer = scenario(
        dir.path(),
        CUSTOMER,
        "  <pause milliseconds=\"4000\"/>\n",
        "hangup.inc",
    );
    let customer_port = free_udp_port();
    let port = customer_port.to_string();
    let run = sipp(
        customer.to_str().unwrap(),
        Some(c.front.carrier_addr()),
        1,
        &["-s", BILLING, "-p", &port],
    );
    assert!(run.ok(), "{}\n{}", run.explain(), c.logs());
    let status = phone.wait(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "agent phone: {status:?}\n{}\n{}\n{}",
        phone.errors(),
        phone.messages(),
        c.logs()
    );
    let customer_node = c
        .node_of(SocketAddr::from(([127, 0, 0, 1], customer_port)))
        .unwrap_or_else(|| panic!("the customer on no node\n{}", c.logs()));
    assert_ne!(
        customer_node,
        login_node,
        "round-robin: the customer's call went to the other node\n{}",
        c.logs()
    );
    let calls = await_some(
        "the customer's call record, ended",
        Duration::from_secs(10),
        || {
            let out = c.nodes[login_node].cli(&["calls", "--json", "--since", "1h"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let rows = v.as_array()?.clone();
            (rows.len() == 1 && !rows[0]["ended_at"].is_null()).then_some(rows)
        },
    );
    assert_eq!(calls[0]["outcome"], "bridged", "{calls:?}\n{}", c.logs());
    assert_eq!(calls[0]["agent"], "jsmith", "{calls:?}");
    assert_eq!(calls[0]["customer_number"], CUSTOMER, "{calls:?}");
    let attempts = calls[0]["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 1, "{calls:?}");
    assert_eq!(attempts[0]["agent_user_id"], "jsmith", "{calls:?}");
    assert_eq!(attempts[0]["hangup_cause"], "completed", "{calls:?}");
    assert_eq!(attempts[0]["sip_outcome"], "answered", "{calls:?}");
    // The node that took the customer placed the agent leg; the front
    // relayed it to the carrier's side and its ACK and BYE with it.
    let fl = c.front.log();
    // Over TCP the node's connection has a port of its own.
    let from_node = if tcp {
        "from node 127.0.0.1:".to_owned()
    } else {
        format!("from node {}", c.nodes[customer_node].sip)
    };
    assert!(
        fl.lines()
            .any(|l| l.contains(&format!("INVITE to {JSMITH} {from_node}"))),
        "{fl}"
    );
    if tcp {
        assert!(
            fl.lines().any(|l| l.contains(&format!(
                "INVITE for {BILLING} from 127.0.0.1:{customer_port} dispatched to node sip:{};transport=tcp",
                c.nodes[customer_node].sip
            ))),
            "{fl}"
        );
    }
    let agent_uri = format!("to sip:agent@127.0.0.1:{agent_port}");
    for m in ["ACK", "BYE"] {
        assert!(
            fl.lines()
                .any(|l| l.contains(&format!("in-dialog {m} loose-routed"))
                    && l.contains(nodes_socket)
                    && l.contains(&agent_uri)),
            "{m} from the node to the agent not routed through the front:\n{fl}"
        );
    }
    // The customer's node claimed jsmith in the store before ringing him
    // (the claim is still its own, released or in wrap-up); the node he
    // logged in through never claimed nor rang him.
    let granted = "tpswitch_cluster_claims_total{result=\"granted\"}";
    assert!(
        metric(&c.nodes[customer_node], granted, Some(TOKEN)) >= 1,
        "{}",
        c.logs()
    );
    assert_eq!(metric(&c.nodes[login_node], granted, Some(TOKEN)), 0);
    let holder: String = block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query_scalar("SELECT node FROM agent_claims WHERE user_id = 'jsmith'")
            .fetch_one(&mut conn)
            .await
            .expect("jsmith's claim")
    });
    assert_eq!(holder, ["a", "b"][customer_node]);
    let rang = |sw: &Switch| {
        sw.log()
            .lines()
            .filter(|l| l.contains("INVITE sent") && l.contains("who=jsmith"))
            .count()
    };
    assert_eq!(rang(&c.nodes[customer_node]), 1, "{}", c.logs());
    assert_eq!(rang(&c.nodes[login_node]), 0, "{}", c.logs());
}

/// Node a is frozen (SIGSTOP): the call the dispatcher gives it gets no
/// answer, so after the front's no-answer time it goes to node b (tm's
/// local 408 in the failure route, which marks a inactive) and the caller
/// is logged in all the same. The front's OPTIONS probes keep a out while
/// it is frozen (their local 408 is not an answer), and once a runs again
/// (SIGCONT) they bring it back.
#[test]
fn a_frozen_node_is_passed_over_and_taken_back_when_it_answers_again() {
    let Some((url, _)) = fresh_database(&format!("front_{}", "frozen")) else {
        return;
    };
    let c = Cluster::start(&url, "sip:127.0.0.1:9");
    let a = c.nodes[0].sip;
    c.nodes[0].signal("STOP");
    let stopped = std::time::Instant::now();
    // Two calls at once, before any probe can have timed out: round-robin
    // gives one to each node, and a's goes on to b after the no-answer
    // time. Both land on b.
    let ports = [free_udp_port(), free_udp_port()];
    let front = c.front.carrier_addr();
    let watched = &c.front;
    let (runs, out_after): (Vec<SippRun>, Option<Duration>) = std::thread::scope(|s| {
        // When the probes take a out, seen from kamcmd every 20 ms.
        let watch = s.spawn(move || {
            while stopped.elapsed() < Duration::from_secs(20) {
                if watched.ds_flags(a).is_some_and(|f| f.starts_with('I')) {
                    return Some(stopped.elapsed());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        });
        let calls: Vec<_> = AGENTS[..2]
            .iter()
            .zip(ports)
            .map(|((_, number), port)| s.spawn(move || log_in_run(front, number, port)))
            .collect();
        let runs = calls.into_iter().map(|t| t.join().unwrap()).collect();
        (runs, watch.join().unwrap())
    });
    for run in &runs {
        if !run.ok() {
            c.nodes[0].signal("CONT");
            panic!("{}\n{}", run.explain(), c.logs());
        }
    }
    for port in ports {
        let from = SocketAddr::from(([127, 0, 0, 1], port));
        let on = c.node_of(from);
        if on != Some(1) {
            c.nodes[0].signal("CONT");
            panic!("the call from {from} not on node b ({on:?})\n{}", c.logs());
        }
    }
    let inactive = await_some(
        "the frozen node marked inactive",
        Duration::from_secs(20),
        || c.front.ds_flags(a).filter(|f| f.starts_with('I')),
    );
    // The probes it cannot answer end in tm's local 408, which must not
    // bring it back: it stays out until 8 s after SIGSTOP, past three
    // probes' no-answer time (1 s apart, 2 s each).
    while stopped.elapsed() < Duration::from_secs(8) {
        let flags = c.front.ds_flags(a).unwrap_or_default();
        if !flags.starts_with('I') {
            c.nodes[0].signal("CONT");
            panic!(
                "the frozen node came back ({flags}) at {:?}\n{}",
                stopped.elapsed(),
                c.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let fl = c.front.log();
    c.nodes[0].signal("CONT");
    let resumed = std::time::Instant::now();
    assert_eq!(inactive, "IP", "inactive and still probed");
    let a_failed = format!("front: node sip:{a} failed (408)");
    assert_eq!(fl.matches(&a_failed).count(), 1, "{fl}");
    let to_b = format!("re-dispatched to node sip:{}", c.nodes[1].sip);
    assert_eq!(fl.matches(&to_b).count(), 1, "{fl}");
    await_some(
        "the node taken back once it answers",
        Duration::from_secs(20),
        || c.front.ds_flags(a).filter(|f| f.starts_with('A')),
    );
    // Figures for the record, not assertions: how much later node b got
    // the re-dispatched call than the other (the no-answer time, 2 s
    // here), and how long the probes took to take a out and back.
    let arrivals: Vec<String> = ports
        .iter()
        .filter_map(|p| {
            let want = format!("source=127.0.0.1:{p} ");
            c.nodes[1]
                .log()
                .lines()
                .find(|l| l.contains("incoming call") && l.contains(&want))
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        })
        .collect();
    eprintln!(
        "front figures: INVITEs reached node b at {arrivals:?}; frozen node out after {out_after:?}, back {:?} after SIGCONT",
        resumed.elapsed()
    );
    // And it takes calls again: of two more log-ins, one is its.
    let mut on_a = 0;
    for (_, number) in &AGENTS[2..4] {
        let port = free_udp_port();
        log_in(&c, number, port);
        if c.node_of(SocketAddr::from(([127, 0, 0, 1], port))) == Some(0) {
            on_a += 1;
        }
    }
    assert_eq!(on_a, 1, "{}", c.logs());
    for (id, _) in &AGENTS[..4] {
        assert_eq!(agent(&c.nodes[0], id)["state"], "online", "{id}");
    }
}

/// A node told to stop (SIGTERM) drains: its log-in call in progress goes
/// on through the front (in-dialog requests follow the Record-Route, not
/// the dispatcher), while it answers the front's probes 503, so the front
/// takes it out and new calls go to the other node. It exits once its call
/// is over.
#[test]
fn a_draining_node_finishes_its_call_while_new_calls_go_to_the_other() {
    let Some((url, _)) = fresh_database(&format!("front_{}", "drain")) else {
        return;
    };
    let mut c = Cluster::start(&url, "sip:127.0.0.1:9");
    let front = c.front.carrier_addr();
    let (_, slow_number) = AGENTS[0];
    let slow_port = free_udp_port();
    // Keys 1 only after 4 s: time to drain the node meanwhile.
    let slow = std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let steps = format!(
            "  <pause milliseconds=\"4000\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"300\"/>\n",
            pcap('1')
        );
        let path = scenario(dir.path(), slow_number, &steps, "wait_bye.inc");
        let port = slow_port.to_string();
        sipp(
            path.to_str().unwrap(),
            Some(front),
            1,
            &["-s", LOGIN, "-p", &port],
        )
    });
    let from = SocketAddr::from(([127, 0, 0, 1], slow_port));
    let x = await_some("the slow log-in on a node", Duration::from_secs(10), || {
        c.node_of(from)
    });
    let y = 1 - x;
    c.nodes[x].signal("TERM");
    let drained = c.nodes[x].sip;
    await_some(
        "the draining node marked inactive by the probes",
        Duration::from_secs(10),
        || c.front.ds_flags(drained).filter(|f| f.starts_with('I')),
    );
    let (_, number) = AGENTS[1];
    let port = free_udp_port();
    log_in(&c, number, port);
    assert_eq!(
        c.node_of(SocketAddr::from(([127, 0, 0, 1], port))),
        Some(y),
        "{}",
        c.logs()
    );
    let run = slow.join().unwrap();
    assert!(run.ok(), "{}\n{}", run.explain(), c.logs());
    let status = c.nodes[x].wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "the drained node exits once its call is over: {status:?}\n{}",
        c.logs()
    );
    for (id, _) in &AGENTS[..2] {
        assert_eq!(agent(&c.nodes[y], id)["state"], "online", "{id}");
    }
    // The drained node's BYE to its caller went through the front.
    assert!(
        c.front
            .log()
            .lines()
            .any(|l| l.contains("in-dialog BYE loose-routed")
                && l.contains(&format!("from {drained} (nodes)"))),
        "{}",
        c.logs()
    );
}
