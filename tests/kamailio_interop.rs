//! Kamailio as the carrier's edge (deploy/kamailio/carrier-edge.cfg, issue
//! 10): tpswitch registers with it (digest, SHA-256), refreshes and
//! unregisters, as its location table shows (`kamcmd ul.dump`); calls from
//! the PSTN side (SIPp) reach tpswitch through the registered contact, and
//! tpswitch's calls to agents go out through it (407 answered); ACK and BYE
//! follow the Record-Route both ways, over UDP and over TCP.

mod common;

use std::time::Duration;

use common::kamailio::{EdgeSite, Kamailio};
use common::*;

const LOGIN: &str = "+15550100000";
const BILLING: &str = "+15550100001";
/// jsmith in config/tpswitch.toml (skills billing, spanish).
const JSMITH: &str = "+12345678910";
const CUSTOMER: &str = "+15551234567";
const PASSWORD: &str = "edge-Pa55";
const CONTACT_USER: &str = "tp-edge";

fn edge(pstn_gw: String) -> Kamailio {
    Kamailio::start(&EdgeSite {
        pstn_gw,
        user: "tpswitch".into(),
        password: PASSWORD.into(),
        min_expires: 5,
    })
}

/// tpswitch with the edge as its trunk, registering as tpswitch@carrier.test
/// and asking for `expires` (below the edge's minimum gets 423 first).
fn switch(k: &Kamailio, tcp: bool, expires: &str) -> Switch {
    let transport = if tcp { ";transport=tcp" } else { "" };
    let proxy = format!(
        "outbound_proxy = \"sip:127.0.0.1:{}{transport}\"",
        k.core_port
    );
    let expires = expires.to_owned();
    Switch::start_env(
        k.core_port,
        &[
            ("TPSWITCH_TRUNK_PASSWORD", PASSWORD),
            ("TPSWITCH_LOG", "info,tpswitch=debug"),
        ],
        move |t| {
            t.replace_exact(
                &format!("outbound_proxy = \"sip:127.0.0.1:{}\"", k.core_port),
                &proxy,
            )
            .replace_exact("username = \"\"", "username = \"tpswitch\"")
            .replace_exact(
                "register = false",
                &format!(
                    "register = true\nregister_domain = \"carrier.test\"\nregister_contact_user = \"{CONTACT_USER}\"\nregister_expires = \"{expires}\"\nregister_retry = \"1s\""
                ),
            )
            .replace_exact("greeting = \"queue_greeting\"", "greeting = \"\"")
        },
    )
}

fn contact(sw: &Switch, tcp: bool) -> String {
    let t = if tcp { ";transport=tcp" } else { "" };
    format!("sip:{CONTACT_USER}@{}{t}", sw.sip)
}

/// Waits until the edge holds `contact`; returns its CSeq.
fn await_binding(k: &Kamailio, sw: &Switch, contact: &str) -> u32 {
    let end = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((cseq, _)) = k.binding(contact) {
            return cseq;
        }
        assert!(
            std::time::Instant::now() < end,
            "no binding for {contact}\n--- ul.dump\n{}\n--- kamailio\n{}\n--- switch\n{}",
            k.ul_dump(),
            k.log(),
            sw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scenario(dir: &std::path::Path, caller: &str, steps: &str, end: &str) -> std::path::PathBuf {
    let kdir = repo().join("tests/kamailio");
    let end = std::fs::read_to_string(kdir.join(end)).expect("end include");
    let text = std::fs::read_to_string(kdir.join("caller_via_edge.xml"))
        .expect("caller_via_edge.xml")
        .replace("@STEPS@", steps)
        .replace("@END@", &end)
        .replace("@CALLER@", caller);
    let path = dir.join("caller.xml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn pstn_addr(k: &Kamailio) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], k.pstn_port))
}

#[test]
fn registration_refresh_and_unregister_in_the_location_table() {
    let k = edge("sip:127.0.0.1:9".into());
    // 2 s is below the edge's minimum of 5 s: 423, then 5 s granted and
    // refreshed every 2.5 s.
    let mut sw = switch(&k, false, "2s");
    let c = contact(&sw, false);
    let first = await_binding(&k, &sw, &c);
    let refreshed = await_some(
        "a refresh in the location table",
        Duration::from_secs(15),
        || k.binding(&c).filter(|(cseq, _)| *cseq > first),
    );
    assert!(refreshed.1 <= 5, "granted 5 s: {refreshed:?}");
    let label = "{trunk=\"carrier\"}";
    assert_eq!(
        metric(&sw, &format!("tpswitch_trunk_registered{label}"), None),
        1
    );
    assert!(
        metric(
            &sw,
            &format!("tpswitch_trunk_registrations_total{label}"),
            None
        ) >= 2
    );
    let log = sw.log();
    assert!(
        log.contains("registered with the trunk's registrar"),
        "{log}"
    );
    // Asked for 2 s, got 423 with Min-Expires 5, asked again with 5.
    assert!(
        log.contains("REGISTER sent trunk=carrier expires=2")
            && log.contains("REGISTER sent trunk=carrier expires=5"),
        "{log}"
    );
    let kl = k.log();
    assert!(
        kl.contains("refused, Expires 2") && kl.contains("saved, Expires 5"),
        "{kl}"
    );
    sw.terminate();
    assert!(
        k.binding(&c).is_none(),
        "unregistered at shutdown:\n{}\n{}",
        k.ul_dump(),
        sw.log()
    );
    let log = sw.log();
    assert!(
        log.contains("unregistered from the trunk's registrar"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "the password is never logged");
}

/// A log-in call from the PSTN side (UDP), through the edge to the
/// registered contact: the switch reads the number dialled from To, puts
/// jsmith online, and its BYE goes back through the edge.
#[test]
fn login_call_through_the_edge_over_udp() {
    let k = edge("sip:127.0.0.1:9".into());
    let sw = switch(&k, false, "60s");
    await_binding(&k, &sw, &contact(&sw, false));
    let dir = tempfile::tempdir().unwrap();
    let steps = format!(
        "  <pause milliseconds=\"1000\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"300\"/>\n",
        pcap('1')
    );
    let path = scenario(dir.path(), JSMITH, &steps, "wait_bye.inc");
    let run = sipp(
        path.to_str().unwrap(),
        Some(pstn_addr(&k)),
        1,
        &["-s", LOGIN],
    );
    assert!(
        run.ok(),
        "{}\n--- kamailio\n{}\n--- switch\n{}",
        run.explain(),
        k.log(),
        sw.log()
    );
    assert_eq!(agent(&sw, "jsmith")["state"], "online");
    let kl = k.log();
    // The caller's ACK and the switch's BYE were loose-routed by the edge,
    // each arriving on the socket that faces its sender.
    assert!(
        kl.contains("in-dialog ACK loose-routed") && kl.contains("(pstn)"),
        "{kl}"
    );
    assert!(
        kl.lines()
            .any(|l| l.contains("in-dialog BYE loose-routed") && l.contains("(core)")),
        "{kl}"
    );
    assert!(
        sw.log().contains("call on the registered contact"),
        "{}",
        sw.log()
    );
}

/// An agent logs in, then a customer calls Billing from the PSTN side; the
/// switch dials jsmith through the edge over TCP (answering its 407), the
/// agent accepts, the customer hangs up, and the switch's ACK and BYE on the
/// agent leg go through the edge.
#[test]
fn customer_to_agent_call_through_the_edge_over_tcp() {
    customer_to_agent(true);
}

/// The same over UDP between the switch and the edge.
#[test]
fn customer_to_agent_call_through_the_edge_over_udp() {
    customer_to_agent(false);
}

fn customer_to_agent(tcp: bool) {
    let agent_port = free_udp_port();
    let k = edge(format!("sip:127.0.0.1:{agent_port}"));
    let sw = switch(&k, tcp, "60s");
    await_binding(&k, &sw, &contact(&sw, tcp));
    let dir = tempfile::tempdir().unwrap();
    // Log in over the edge (TCP between the edge and the switch).
    let steps = format!(
        "  <pause milliseconds=\"1000\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"300\"/>\n",
        pcap('1')
    );
    let login = scenario(dir.path(), JSMITH, &steps, "wait_bye.inc");
    let run = sipp(
        login.to_str().unwrap(),
        Some(pstn_addr(&k)),
        1,
        &["-s", LOGIN],
    );
    assert!(
        run.ok(),
        "{}\n--- kamailio\n{}\n--- switch\n{}",
        run.explain(),
        k.log(),
        sw.log()
    );
    assert_eq!(agent(&sw, "jsmith")["state"], "online");

    let mut phone = BackgroundSipp::start(
        repo()
            .join("tests/kamailio/agent_via_edge.xml")
            .to_str()
            .unwrap(),
        agent_port,
        1,
        &[],
    );
    let cdir = tempfile::tempdir().unwrap();
    let customer = scenario(
        cdir.path(),
        CUSTOMER,
        "  <pause milliseconds=\"4000\"/>\n",
        "hangup.inc",
    );
    let run = sipp(
        customer.to_str().unwrap(),
        Some(pstn_addr(&k)),
        1,
        &["-s", BILLING],
    );
    assert!(
        run.ok(),
        "{}\n--- kamailio\n{}\n--- switch\n{}",
        run.explain(),
        k.log(),
        sw.log()
    );
    let status = phone.wait(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "agent phone: {status:?}\n{}\n{}\n--- kamailio\n{}\n--- switch\n{}",
        phone.errors(),
        phone.messages(),
        k.log(),
        sw.log()
    );
    let kl = k.log();
    // The switch's INVITE was challenged and answered, then relayed; its
    // ACK and BYE to the agent came in on the TCP socket facing it and
    // were loose-routed.
    assert!(
        kl.contains(&format!("INVITE to {JSMITH} from the switch")),
        "{kl}"
    );
    // Only the agent leg's requests carry the agent's Contact as their
    // Request-URI (the log-in call's BYE also crosses the core socket).
    let agent_uri = format!("to sip:agent@127.0.0.1:{agent_port}");
    let socket = if tcp { "(core_tcp)" } else { "(core)" };
    for m in ["ACK", "BYE"] {
        assert!(
            kl.lines()
                .any(|l| l.contains(&format!("in-dialog {m} loose-routed"))
                    && l.contains(socket)
                    && l.contains(&agent_uri)),
            "{m} from the switch to the agent not routed through the edge:\n{kl}"
        );
    }
    // Relayed only once the 407 was answered with the right credentials.
    assert!(
        kl.contains("edge: INVITE from 127.0.0.1"),
        "no 407 challenge:\n{kl}"
    );
}

/// A wrong password: the edge challenges the answer again, which is a
/// failure retried after a back-off, never a loop of REGISTERs.
#[test]
fn a_wrong_password_fails_and_backs_off() {
    let k = edge("sip:127.0.0.1:9".into());
    let sw = Switch::start_env(k.core_port, &[("TPSWITCH_TRUNK_PASSWORD", "wrong")], |t| {
        t.replace_exact("username = \"\"", "username = \"tpswitch\"")
                .replace_exact(
                    "register = false",
                    "register = true\nregister_domain = \"carrier.test\"\nregister_retry = \"1s\"\nregister_retry_max = \"2s\"",
                )
    });
    let label = "{trunk=\"carrier\"}";
    await_some("two failed registrations", Duration::from_secs(15), || {
        (metric(
            &sw,
            &format!("tpswitch_trunk_registration_failures_total{label}"),
            None,
        ) >= 2)
            .then_some(())
    });
    assert_eq!(
        metric(&sw, &format!("tpswitch_trunk_registered{label}"), None),
        0
    );
    assert_eq!(
        metric(
            &sw,
            &format!("tpswitch_trunk_registrations_total{label}"),
            None
        ),
        0
    );
    let log = sw.log();
    assert!(
        log.contains("registration failed; retrying") && log.contains("status=401"),
        "{log}"
    );
    assert!(k.ul_dump().contains("Records: 0"), "{}", k.ul_dump());
}

const PASSWORD_B: &str = "edge-B-Pa55";
const CONTACT_USER_B: &str = "tp-edge-b";
/// Not a user of config/tpswitch.toml: a caller identified by it is a
/// stranger to the log-in menu.
const STRANGER: &str = "+15559990000";

/// Two carriers, each an edge of its own (own account, own location
/// table), both reaching the switch from 127.0.0.1: trunk "carrier-a"
/// trusts P-Asserted-Identity, "carrier-b" does not.
fn two_carriers(a: &Kamailio, b: &Kamailio) -> Switch {
    let b_port = b.core_port;
    Switch::start_env(
        a.core_port,
        &[
            ("TPSWITCH_TRUNK_PASSWORD", PASSWORD),
            ("TPSWITCH_TRUNK_B_PASSWORD", PASSWORD_B),
            ("TPSWITCH_LOG", "info,tpswitch=debug"),
        ],
        move |t| {
            t.replace_exact("[trunk]\nname = \"carrier\"", "[[trunks]]\nname = \"carrier-a\"")
                .replace_exact("username = \"\"", "username = \"tpswitch\"")
                .replace_exact(
                    "register = false",
                    &format!(
                        "register = true\nregister_domain = \"carrier.test\"\nregister_contact_user = \"{CONTACT_USER}\"\nregister_expires = \"60s\"\nregister_retry = \"1s\""
                    ),
                )
                .replace_exact(
                    "\n[media]\n",
                    &format!(
                        "\n[[trunks]]\nname = \"carrier-b\"\npriority = 20\n\
                         outbound_proxy = \"sip:127.0.0.1:{b_port}\"\nallow = [\"127.0.0.1/32\"]\n\
                         username = \"tpswitch-b\"\npassword_env = \"TPSWITCH_TRUNK_B_PASSWORD\"\n\
                         trust_pai = false\nregister = true\nregister_domain = \"carrier.test\"\n\
                         register_contact_user = \"{CONTACT_USER_B}\"\nregister_expires = \"60s\"\n\
                         register_retry = \"1s\"\n\n[media]\n"
                    ),
                )
        },
    )
}

/// Both trunks register, each with its own carrier (both bindings in the
/// edges' location tables, both in /metrics and /readyz); a log-in call
/// from carrier B's PSTN side arrives from the same address as carrier
/// A's calls, on B's registered contact, and B's rules apply to it: B
/// does not trust P-Asserted-Identity, so the caller is the From number
/// (jsmith), not the asserted stranger A would have believed. At
/// shutdown both bindings are removed.
#[test]
fn two_trunks_register_and_a_call_to_the_second_contact_is_the_second_trunks() {
    let ka = edge("sip:127.0.0.1:9".into());
    let kb = Kamailio::start(&EdgeSite {
        pstn_gw: "sip:127.0.0.1:9".into(),
        user: "tpswitch-b".into(),
        password: PASSWORD_B.into(),
        min_expires: 5,
    });
    let mut sw = two_carriers(&ka, &kb);
    let contact_a = contact(&sw, false);
    let contact_b = format!("sip:{CONTACT_USER_B}@{}", sw.sip);
    await_binding(&ka, &sw, &contact_a);
    await_binding(&kb, &sw, &contact_b);
    assert!(
        ka.binding(&contact_b).is_none() && kb.binding(&contact_a).is_none(),
        "each registration went to its own carrier:\n{}\n{}",
        ka.ul_dump(),
        kb.ul_dump()
    );
    for trunk in ["carrier-a", "carrier-b"] {
        let label = format!("{{trunk=\"{trunk}\"}}");
        assert_eq!(
            metric(&sw, &format!("tpswitch_trunk_registered{label}"), None),
            1,
            "{trunk}"
        );
    }
    let (status, body) = http_get(sw.http, "/readyz", None);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("trunk carrier-a registered") && body.contains("trunk carrier-b registered"),
        "{body}"
    );

    let dir = tempfile::tempdir().unwrap();
    let steps = format!(
        "  <pause milliseconds=\"1000\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"300\"/>\n",
        pcap('1')
    );
    let path = scenario(dir.path(), JSMITH, &steps, "wait_bye.inc");
    // The caller asserts a number of its own (RFC 3325), which only a
    // trunk that trusts PAI would take.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen(
            "      Max-Forwards: 70\n      Content-Type: application/sdp",
            &format!("      Max-Forwards: 70\n      P-Asserted-Identity: <sip:{STRANGER}@127.0.0.1>\n      Content-Type: application/sdp"),
            1,
        );
    assert!(text.contains("P-Asserted-Identity"), "scenario edit");
    std::fs::write(&path, text).unwrap();
    let pstn_b = std::net::SocketAddr::from(([127, 0, 0, 1], kb.pstn_port));
    let run = sipp(path.to_str().unwrap(), Some(pstn_b), 1, &["-s", LOGIN]);
    assert!(
        run.ok(),
        "{}\n--- kamailio b\n{}\n--- switch\n{}",
        run.explain(),
        kb.log(),
        sw.log()
    );
    assert_eq!(
        agent(&sw, "jsmith")["state"],
        "online",
        "carrier-b's rules (trust_pai = false) applied:\n{}",
        sw.log()
    );
    let log = sw.log();
    assert!(
        log.lines()
            .any(|l| l.contains("call on the registered contact")
                && l.contains("trunk=carrier-b")
                && l.contains(&format!("contact_user={CONTACT_USER_B}"))),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("call{") && l.contains("trunk=carrier-b")),
        "the call's span names carrier-b:\n{log}"
    );

    sw.terminate();
    assert!(
        ka.binding(&contact_a).is_none() && kb.binding(&contact_b).is_none(),
        "both unregistered at shutdown:\n{}\n{}\n{}",
        ka.ul_dump(),
        kb.ul_dump(),
        sw.log()
    );
    let log = sw.log();
    assert!(
        !log.contains(PASSWORD) && !log.contains(PASSWORD_B),
        "no password is logged"
    );
}
