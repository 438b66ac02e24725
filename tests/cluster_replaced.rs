//! Two processes under one `store.node` name (issue 13): the first is
//! frozen past its lease (SIGSTOP), a second starts under the same name and
//! takes it over, then the first runs again. Its heartbeat is refused
//! ("another process took this node's name"), but it keeps taking calls:
//! it must not be granted claims on agents the new process holds.
//! `claim_agent` grants a claim only while `cluster_nodes` names the
//! claiming process's instance, so the old one is told it was replaced.
//!
//! Needs a PostgreSQL server: `TPSWITCH_TEST_POSTGRES` (set by
//! `scripts/test`).

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::pg::fresh_database;
use common::*;

const BILLING: &str = "+15550100001";
const LOGIN: &str = "+15550100000";
const JSMITH: &str = "+12345678910";
const TOKEN: &str = "replaced-test-token";

/// A caller of `number` straight to `sw` that stays `ms` on the line.
fn caller(sw: std::net::SocketAddr, from: &str, number: &str, steps: &str, end: &str) -> SippRun {
    let kdir = repo().join("tests/kamailio");
    let end = std::fs::read_to_string(kdir.join(end)).expect("end include");
    let text = std::fs::read_to_string(kdir.join("caller_via_edge.xml"))
        .expect("caller_via_edge.xml")
        .replace("@STEPS@", steps)
        .replace("@END@", &end)
        .replace("@CALLER@", from);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caller.xml");
    std::fs::write(&path, text).unwrap();
    sipp(path.to_str().unwrap(), Some(sw), 1, &["-s", number])
}

/// Distinct Call-IDs of the INVITEs the "phone" got so far.
fn invites(phone: &UdpSocket, seen: &mut Vec<String>) {
    let mut buf = [0u8; 65536];
    while let Ok(n) = phone.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]);
        if !text.starts_with("INVITE ") {
            continue;
        }
        if let Some(id) = text.lines().find_map(|l| {
            l.strip_prefix("Call-ID: ")
                .or_else(|| l.strip_prefix("i: "))
        }) {
            if !seen.iter().any(|s| s == id.trim()) {
                seen.push(id.trim().to_owned());
            }
        }
    }
}

#[test]
fn a_process_replaced_under_its_node_name_is_not_granted_the_new_ones_agents() {
    let Some((url, _)) = fresh_database("replaced") else {
        return;
    };
    // The agents' "phone": a socket that never answers, so a leg rings on.
    let phone_port = free_udp_port();
    let phone = UdpSocket::bind(("127.0.0.1", phone_port)).unwrap();
    phone
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let node = |url: String| {
        move |t: String| {
            t.replace_exact(
                "# url = \"postgres://tpswitch@127.0.0.1:5432/tpswitch\"",
                &format!(
                    "url = \"{url}\"\nnode = \"a\"\nheartbeat = \"200ms\"\nclaim_lease = \"1s\""
                ),
            )
            .replace_exact("greeting = \"queue_greeting\"", "greeting = \"\"")
            .replace_exact("ring_timeout = \"20s\"", "ring_timeout = \"60s\"")
        }
    };
    // Debug: the old process logs the windows it re-reads.
    let old = Switch::start_env(
        phone_port,
        &[
            ("TPSWITCH_API_TOKEN", TOKEN),
            ("TPSWITCH_LOG", "info,tpswitch=debug"),
        ],
        node(url.clone()),
    );
    old.signal("STOP");
    let new = Switch::start_env(phone_port, &[("TPSWITCH_API_TOKEN", TOKEN)], node(url));
    old.signal("CONT");
    old.await_log(
        "another process took this node's name",
        Duration::from_secs(10),
    );

    // jsmith logs in through the new process.
    let steps = format!(
        "  <pause milliseconds=\"1000\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"300\"/>\n",
        pcap('1')
    );
    let run = caller(new.sip, JSMITH, LOGIN, &steps, "wait_bye.inc");
    assert!(run.ok(), "{}\n{}", run.explain(), new.log());
    // Both processes hear of the window (NOTIFY, or the resync).
    old.await_log("window changed on another node", Duration::from_secs(10));

    let wait = "  <pause milliseconds=\"8000\"/>\n";
    let mut seen = Vec::new();
    std::thread::scope(|s| {
        let (new_sip, old_sip) = (new.sip, old.sip);
        s.spawn(move || caller(new_sip, "+15551230001", BILLING, wait, "hangup.inc"));
        // The new process claims jsmith and rings him.
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while seen.is_empty() && std::time::Instant::now() < end {
            invites(&phone, &mut seen);
        }
        assert_eq!(seen.len(), 1, "the new process rings jsmith\n{}", new.log());
        s.spawn(move || caller(old_sip, "+15551230002", BILLING, wait, "hangup.inc"));
        // The old one offers him too; its claim must be refused.
        await_some("the old process's claim", Duration::from_secs(10), || {
            let total = metric(
                &old,
                "tpswitch_cluster_claims_total{result=\"granted\"}",
                Some(TOKEN),
            ) + metric(
                &old,
                "tpswitch_cluster_claims_total{result=\"refused\"}",
                Some(TOKEN),
            ) + metric(
                &old,
                "tpswitch_cluster_claims_total{result=\"replaced\"}",
                Some(TOKEN),
            );
            (total >= 1).then_some(())
        });
        invites(&phone, &mut seen);
        let granted = metric(
            &old,
            "tpswitch_cluster_claims_total{result=\"granted\"}",
            Some(TOKEN),
        );
        assert_eq!(
            granted, 0,
            "the replaced process was granted jsmith while the new one rings him; INVITEs to the phone: {seen:?}\n--- old\n{}\n--- new\n{}",
            old.log(),
            new.log()
        );
    });
}
