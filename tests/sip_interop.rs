//! Signalling against a real peer: SIPp and the real binary over 127.0.0.1
//! (issue 2's "done when").

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;

const CONTACT_POINT: &str = "+15550100000";

fn reject_scenario(dir: &std::path::Path, status: u16, formats: &str) -> String {
    let text = std::fs::read_to_string(sipp_dir().join("uac_reject.xml"))
        .expect("uac_reject.xml")
        .replace("@STATUS@", &status.to_string())
        .replace("@FORMATS@", formats);
    let path = dir.join(format!("reject_{status}.xml"));
    std::fs::write(&path, text).expect("write scenario");
    path.display().to_string()
}

#[test]
fn sipp_basic_call_over_udp() {
    let sw = Switch::start(|t| t);
    let run = sipp(
        "sn:uac",
        Some(sw.sip),
        3,
        &["-s", CONTACT_POINT, "-d", "300", "-r", "5"],
    );
    assert!(run.ok(), "{}\n{}", run.explain(), sw.log());
    assert!(run.messages.contains("m=audio"), "the 200 carries SDP");
    assert!(sw.log().contains("caller hung up"), "{}", sw.log());
}

#[test]
fn sipp_basic_call_over_tcp() {
    let sw = Switch::start(|t| t);
    let run = sipp(
        "sn:uac",
        Some(sw.sip),
        2,
        &["-s", CONTACT_POINT, "-d", "300", "-t", "t1"],
    );
    assert!(run.ok(), "{}\n{}", run.explain(), sw.log());
}

#[test]
fn sipp_basic_call_over_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    let sw = Switch::start(|t| t.replace_exact("bind = \"127.0.0.1:0\"", "bind = \"[::1]:0\""));
    assert!(sw.sip.is_ipv6());
    let port = free_udp_port().to_string();
    let run = sipp(
        "sn:uac",
        Some(sw.sip),
        1,
        &[
            "-s",
            CONTACT_POINT,
            "-d",
            "300",
            "-i",
            "::1",
            "-mi",
            "::1",
            "-p",
            &port,
        ],
    );
    assert!(run.ok(), "{}\n{}", run.explain(), sw.log());
    // Our SDP speaks IPv6 too.
    assert!(run.messages.contains("c=IN IP6 ::1"), "{}", run.messages);
}

#[test]
fn sipp_cancel_before_answer() {
    let sw = Switch::start(|t| t.replace_exact("answer_delay = \"0s\"", "answer_delay = \"5s\""));
    let run = sipp("uac_cancel.xml", Some(sw.sip), 1, &["-s", CONTACT_POINT]);
    assert!(run.ok(), "{}\n{}", run.explain(), sw.log());
    assert!(
        sw.log().contains("caller gave up before answer"),
        "{}",
        sw.log()
    );
}

#[test]
fn sipp_options_is_answered() {
    let sw = Switch::start(|t| t);
    let run = sipp("options.xml", Some(sw.sip), 1, &["-s", CONTACT_POINT]);
    assert!(run.ok(), "{}", run.explain());
}

#[test]
fn sipp_no_common_codec_is_488() {
    let sw = Switch::start(|t| t);
    let dir = tempfile::tempdir().unwrap();
    // G.729 only.
    let sc = reject_scenario(dir.path(), 488, "18");
    let run = sipp(&sc, Some(sw.sip), 1, &["-s", CONTACT_POINT]);
    assert!(run.ok(), "{}", run.explain());
}

#[test]
fn sipp_unmapped_number_is_404() {
    let sw = Switch::start(|t| t);
    let dir = tempfile::tempdir().unwrap();
    let sc = reject_scenario(dir.path(), 404, "0");
    let run = sipp(&sc, Some(sw.sip), 1, &["-s", "+15559990000"]);
    assert!(run.ok(), "{}", run.explain());
}

#[test]
fn sipp_source_outside_allow_list_is_403() {
    let sw = Switch::start(|t| {
        t.replace_exact(
            "allow = [\"127.0.0.1/32\", \"::1/128\"]",
            "allow = [\"192.0.2.1/32\"]",
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let sc = reject_scenario(dir.path(), 403, "0");
    let run = sipp(&sc, Some(sw.sip), 1, &["-s", CONTACT_POINT]);
    assert!(run.ok(), "{}", run.explain());
    assert!(sw.log().contains("outside trunk.allow"), "{}", sw.log());
}

#[test]
fn sipp_source_outside_allow_list_can_be_ignored() {
    let sw = Switch::start(|t| {
        t.replace_exact(
            "allow = [\"127.0.0.1/32\", \"::1/128\"]",
            "allow = [\"192.0.2.1/32\"]",
        )
        .replace_exact("untrusted = \"reject\"", "untrusted = \"drop\"")
    });
    let mut sw = sw;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // One request and two retransmissions, as a client would send them.
    for _ in 0..3 {
        sock.send_to(&options(&sock, "drop-1", false), sw.sip)
            .unwrap();
    }
    // Handled (and counted) means any answer would already have been sent.
    await_some(
        "three unanswered requests counted",
        Duration::from_secs(10),
        || (metric(&sw, "tpswitch_sip_untrusted_dropped_total", None) >= 3).then_some(()),
    );
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "a dropped request gets no answer"
    );
    assert_eq!(
        metric(&sw, "tpswitch_sip_rejected_untrusted_total", None),
        3
    );
    // One WARN for the three packets (the log is complete once it exits).
    sw.terminate();
    let log = sw.log();
    assert_eq!(
        log.matches("outside trunk.allow").count(),
        1,
        "one line per source per minute:\n{log}"
    );
}

// ---------------------------------------------------------------- raw UDP

fn options(sock: &UdpSocket, id: &str, tcp: bool) -> Vec<u8> {
    let local = sock.local_addr().unwrap();
    let transport = if tcp { "TCP" } else { "UDP" };
    format!(
        "OPTIONS sip:{CONTACT_POINT}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag={id}\r\nTo: <sip:{CONTACT_POINT}@127.0.0.1>\r\nCall-ID: {id}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Sends an OPTIONS and returns the status of the answer.
fn probe(sock: &UdpSocket, to: SocketAddr, id: &str) -> Option<u16> {
    sock.send_to(&options(sock, id, false), to).ok()?;
    let mut buf = [0u8; 8192];
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.contains(&format!("Call-ID: {id}@probe")) {
            return text.get(8..11)?.parse().ok();
        }
    }
    None
}

fn corpora() -> std::path::PathBuf {
    let dir = std::env::var("TPSWITCH_CORPORA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo().join("tests/corpora"));
    assert!(
        dir.join("rfc4475").is_dir(),
        "RFC 4475 corpus not found at {}: it ships in tests/corpora/ (or set TPSWITCH_CORPORA to a folder holding rfc4475/ and rfc5118/). \
         To make rfc4475/: take RFC 4475's text, keep the lines between -- BEGIN MESSAGE ARCHIVE -- and \
         -- END MESSAGE ARCHIVE -- that are a single token, join them, base64 -d | tar xz",
        dir.display()
    );
    dir
}

#[test]
fn torture_messages_then_options_still_answered() {
    let sw = Switch::start(|t| t);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Only a lost answer waits this long; every step ends on an answer.
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let dir = corpora();
    let mut files: Vec<_> = ["rfc4475", "rfc5118"]
        .iter()
        .flat_map(|d| std::fs::read_dir(dir.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 62, "expected the 50 + 12 corpus files");
    let mut buf = [0u8; 65536];
    for (i, f) in files.iter().enumerate() {
        let msg = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        sock.send_to(&msg, sw.sip).unwrap();
        // Then an OPTIONS. The switch handles datagrams from one source in
        // order and answers a message before it reads the next, so whatever
        // the gate answers the torture message (rejects go to the source)
        // arrives before the OPTIONS' 200: read up to that 200 and no
        // further, instead of waiting out a receive time-out per file.
        let id = format!("after-{i}");
        sock.send_to(&options(&sock, &id, false), sw.sip).unwrap();
        let mut answers = Vec::new();
        let probe_status = loop {
            let Ok((n, _)) = sock.recv_from(&mut buf) else {
                break None;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.contains(&format!("Call-ID: {id}@probe")) {
                break text.get(8..11).and_then(|s| s.parse::<u16>().ok());
            }
            answers.push(text);
        };
        // Spot checks of the statuses RFC 4475 names (the full table is the
        // inspector's unit test).
        let expect = match name.as_str() {
            "badinv01.dat" | "clerr.dat" | "ncl.dat" | "scalar02.dat" | "quotbal.dat"
            | "ltgtruri.dat" | "lwsruri.dat" | "lwsstart.dat" | "trws.dat" | "escruri.dat"
            | "insuf.dat" | "multi01.dat" | "mcl01.dat" | "badaspec.dat" | "regbadct.dat"
            | "badbranch.dat" | "mismatch01.dat" => Some("SIP/2.0 400"),
            "badvers.dat" => Some("SIP/2.0 505"),
            "unkscm.dat" | "novelsc.dat" => Some("SIP/2.0 416"),
            "bext01.dat" => Some("SIP/2.0 420"),
            "invut.dat" => Some("SIP/2.0 415"),
            "intmeth.dat" | "mismatch02.dat" | "esc02.dat" => Some("SIP/2.0 501"),
            _ => None,
        };
        if let Some(e) = expect {
            assert!(
                answers.iter().any(|a| a.starts_with(e)),
                "{name}: expected {e}, got {answers:?}"
            );
        }
        assert_eq!(
            probe_status,
            Some(200),
            "no 200 to OPTIONS after {name}\n{}",
            sw.log()
        );
    }
}

#[test]
fn hostile_datagrams_and_streams_then_valid_requests() {
    use std::io::{Read, Write};
    let sw = Switch::start(|t| t);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let valid = options(&sock, "v", false);
    let mut junk: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        valid[..valid.len() / 2].to_vec(),
        valid[..20].to_vec(),
        vec![0xff; 1400],
        vec![b'A'; 65_000],
        b"INVITE sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
    ];
    let mut seed = 7u64;
    for _ in 0..200 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut m = valid.clone();
        let at = (seed >> 33) as usize % m.len();
        m[at] = (seed >> 13) as u8;
        m.truncate(((seed >> 40) as usize % m.len()).max(1));
        junk.push(m);
    }
    for j in &junk {
        let _ = sock.send_to(j, sw.sip);
    }
    // Drain whatever came back, then a valid request must be answered.
    let mut buf = [0u8; 65536];
    while sock.recv_from(&mut buf).is_ok() {}
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert_eq!(
        probe(&sock, sw.sip, "after-junk"),
        Some(200),
        "{}",
        sw.log()
    );

    // TCP: garbage, an oversized header block, a bad Content-Length; each
    // kills only its own connection.
    for bad in [
        vec![0u8; 100],
        vec![b'X'; 40_000],
        b"OPTIONS sip:a SIP/2.0\r\nContent-Length: abc\r\n\r\n".to_vec(),
        b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKx\r\n".to_vec(),
    ] {
        let mut s = std::net::TcpStream::connect(sw.sip).unwrap();
        let _ = s.write_all(&bad);
        let _ = s.shutdown(std::net::Shutdown::Write);
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    // A valid request over TCP, in two pieces, is answered on the same
    // connection.
    let mut s = std::net::TcpStream::connect(sw.sip).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let msg = options(&sock, "tcp-ok", true);
    s.write_all(&msg[..30]).unwrap();
    // Not a wait for a condition: a pause so the two writes leave as two
    // segments (nothing tells us the first one was read).
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&msg[30..]).unwrap();
    let mut got = vec![0u8; 4096];
    let n = s.read(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got[..n]);
    assert!(text.starts_with("SIP/2.0 200"), "{text}");
    assert_eq!(probe(&sock, sw.sip, "after-tcp"), Some(200));
}

#[test]
fn clean_shutdown_on_sigterm() {
    let mut sw = Switch::start(|t| t);
    let status = sw.terminate().expect("exit status");
    assert!(status.success(), "{status:?}\n{}", sw.log());
    assert!(sw.log().contains("shutting down"));
}

#[test]
fn check_config_reports_file_key_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = test_config(dir.path(), 5080, |t| {
        t.replace_exact("value = \"+1-234-567-8910\"", "value = \"+1-234\"")
    });
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("users[0].extensions[0].value"), "{err}");
    assert!(err.contains("+1-234"), "{err}");
    // And the default config is fine.
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn tcp_connections_are_capped() {
    use std::io::{Read, Write};
    let sw =
        Switch::start(|t| t.replace_exact("max_tcp_connections = 1024", "max_tcp_connections = 2"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Answers an OPTIONS over a new connection, or None if it is refused.
    let served = |id: &str| {
        let mut d = std::net::TcpStream::connect(sw.sip).ok()?;
        d.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        d.write_all(&options(&sock, id, true)).ok()?;
        let mut got = vec![0u8; 4096];
        let n = d.read(&mut got).ok()?;
        String::from_utf8_lossy(&got[..n])
            .starts_with("SIP/2.0 200")
            .then_some(d)
    };
    let a = std::net::TcpStream::connect(sw.sip).unwrap();
    // Answered on `b` means the switch holds both `a` and `b` (accepted in
    // order), instead of sleeping for it.
    let b = served("tcp-b").expect("the second connection is served");
    // The third is closed at once: reading gives end-of-stream.
    let mut c = std::net::TcpStream::connect(sw.sip).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(c.read(&mut buf), Ok(0) | Err(_)),
        "third connection stays open"
    );
    drop(a);
    // A slot is free again once the switch has seen the close: a request
    // over a new connection is answered (retried until it is, bounded).
    let mut k = 0;
    await_some(
        "a TCP slot freed by the close",
        Duration::from_secs(10),
        || {
            k += 1;
            served(&format!("tcp-cap-{k}"))
        },
    );
    drop(b);
}

#[test]
fn http_metrics_and_agents_with_a_token() {
    let sw = Switch::start_env(free_udp_port(), &[("TPSWITCH_API_TOKEN", "s3cret")], |t| t);
    let run = sipp("options.xml", Some(sw.sip), 1, &["-s", CONTACT_POINT]);
    assert!(run.ok(), "{}", run.explain());
    assert_eq!(http_get(sw.http, "/healthz", None).0, 200);
    assert_eq!(http_get(sw.http, "/metrics", None).0, 401);
    let (status, body) = http_get(sw.http, "/metrics", Some("s3cret"));
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE tpswitch_sip_requests_total counter"),
        "{body}"
    );
    let requests: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("tpswitch_sip_requests_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(requests >= 1, "{body}");
    let (status, body) = http_get(sw.http, "/agents", Some("s3cret"));
    assert_eq!(status, 200);
    let agents: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(agents
        .as_array()
        .is_some_and(|a| a.iter().any(|u| u["id"] == "jsmith")));
}

/// Issue 9: bound dual-stack to `[::]`, the switch sees an IPv4 trunk as
/// `::ffff:127.0.0.1` and answered it 403 (no IPv4 allow-list entry
/// matched). SIPp on 127.0.0.1 must get its 200, sent back over IPv4.
#[test]
fn dual_stack_bind_answers_the_ipv4_trunk() {
    let sw = Switch::start(|t| {
        let from = "bind = \"127.0.0.1:0\"";
        assert!(t.contains(from), "the test config no longer has {from}");
        t.replacen(from, "bind = \"[::]:0\"", 1)
    });
    assert!(sw.sip.is_ipv6(), "bound to {}", sw.sip);
    let target = SocketAddr::from(([127, 0, 0, 1], sw.sip.port()));
    let run = sipp("options.xml", Some(target), 1, &["-s", CONTACT_POINT]);
    run.assert_ok(&sw);
    assert!(!sw.log().contains("::ffff:"), "{}", sw.log());
}

/// Behind a NAT (sip.external_* set): a caller inside sip.local_networks
/// (127.0.0.1) is told the private Contact and SDP address, a caller
/// outside them (127.0.0.2) the external ones; with RTP bound to 0.0.0.0
/// the logs name the address each peer was told, never the wildcard.
#[test]
fn nat_addresses_are_chosen_per_peer() {
    let sw = Switch::start(|t| {
        t.replace_exact(
            "external_signaling_address = \"\"",
            "external_signaling_address = \"203.0.113.10\"",
        )
        .replace_exact(
            "external_signaling_port = 0",
            "external_signaling_port = 5099",
        )
        .replace_exact(
            "external_media_address = \"\"",
            "external_media_address = \"203.0.113.20\"",
        )
        .replace_exact("local_networks = []", "local_networks = [\"127.0.0.1/32\"]")
        .replace_exact(
            "allow = [\"127.0.0.1/32\", \"::1/128\"]",
            "allow = [\"127.0.0.0/8\"]",
        )
        .replace_exact("bind_address = \"\"", "bind_address = \"0.0.0.0\"")
    });
    let local = sipp(
        "sn:uac",
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT, "-d", "300", "-i", "127.0.0.1"],
    );
    assert!(local.ok(), "{}\n{}", local.explain(), sw.log());
    let private_contact = format!("Contact: <sip:tpswitch@127.0.0.1:{}>", sw.sip.port());
    assert!(
        local.messages.contains(&private_contact),
        "{}",
        local.messages
    );
    assert!(
        local.messages.contains("c=IN IP4 127.0.0.1"),
        "{}",
        local.messages
    );
    assert!(!local.messages.contains("203.0.113."), "{}", local.messages);

    let port = free_udp_port().to_string();
    let outside = sipp(
        "sn:uac",
        Some(sw.sip),
        1,
        &[
            "-s",
            CONTACT_POINT,
            "-d",
            "300",
            "-i",
            "127.0.0.2",
            "-mi",
            "127.0.0.2",
            "-p",
            &port,
        ],
    );
    assert!(outside.ok(), "{}\n{}", outside.explain(), sw.log());
    let m = &outside.messages;
    assert!(
        m.contains("Contact: <sip:tpswitch@203.0.113.10:5099>"),
        "{m}"
    );
    assert!(m.contains("c=IN IP4 203.0.113.20"), "{m}");
    assert!(!m.contains(&private_contact), "{m}");

    // Each leg's quality line names the RTP address its peer was told.
    let log = await_some("both media quality lines", Duration::from_secs(10), || {
        let log = sw.log();
        (log.matches("media quality").count() >= 2).then_some(log)
    });
    let quality: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("media quality"))
        .collect();
    assert!(
        quality.iter().any(|l| l.contains("rtp=127.0.0.1:")),
        "{log}"
    );
    assert!(
        quality.iter().any(|l| l.contains("rtp=203.0.113.20:")),
        "{log}"
    );
    assert!(!log.contains("0.0.0.0:"), "{log}");
}

/// A trunk's own NAT plan: trunk "carrier-b" (calls from 127.0.0.2) is
/// behind a NAT of its own, trunk "carrier-a" (127.0.0.1) and the switch
/// have none. A call from each is told the addresses of its trunk's plan
/// in the 200's Contact and SDP c=, and the log names them.
#[test]
fn a_trunk_with_its_own_nat_plan_is_told_its_external_addresses() {
    let sw = Switch::start(|t| {
        t.replace_exact(
            "[trunk]\nname = \"carrier\"",
            "[[trunks]]\nname = \"carrier-a\"",
        )
        .replace_exact(
            "\n[media]\n",
            "\n[[trunks]]\nname = \"carrier-b\"\npriority = 20\n\
                 outbound_proxy = \"sip:127.0.0.2:5060\"\nallow = [\"127.0.0.2/32\"]\n\
                 external_signaling_address = \"203.0.113.30\"\n\
                 external_media_address = \"203.0.113.40\"\n\n[media]\n",
        )
    });
    let private_contact = format!("Contact: <sip:tpswitch@127.0.0.1:{}>", sw.sip.port());
    let on_a = sipp(
        "sn:uac",
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT, "-d", "300", "-i", "127.0.0.1"],
    );
    assert!(on_a.ok(), "{}\n{}", on_a.explain(), sw.log());
    assert!(
        on_a.messages.contains(&private_contact),
        "{}",
        on_a.messages
    );
    assert!(
        on_a.messages.contains("c=IN IP4 127.0.0.1"),
        "{}",
        on_a.messages
    );
    assert!(!on_a.messages.contains("203.0.113."), "{}", on_a.messages);

    let port = free_udp_port().to_string();
    let on_b = sipp(
        "sn:uac",
        Some(sw.sip),
        1,
        &[
            "-s",
            CONTACT_POINT,
            "-d",
            "300",
            "-i",
            "127.0.0.2",
            "-mi",
            "127.0.0.2",
            "-p",
            &port,
        ],
    );
    assert!(on_b.ok(), "{}\n{}", on_b.explain(), sw.log());
    let m = &on_b.messages;
    // The external port defaults to the one SIP listens on.
    assert!(
        m.contains(&format!(
            "Contact: <sip:tpswitch@203.0.113.30:{}>",
            sw.sip.port()
        )),
        "{m}"
    );
    assert!(m.contains("c=IN IP4 203.0.113.40"), "{m}");
    assert!(!m.contains(&private_contact), "{m}");

    let log = await_some("both media quality lines", Duration::from_secs(10), || {
        let log = sw.log();
        (log.matches("media quality").count() >= 2).then_some(log)
    });
    assert!(
        log.lines().any(|l| l.contains("trunk's own NAT plan")
            && l.contains("trunk=carrier-b")
            && l.contains("external_rtp=203.0.113.40")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("media quality")
            && l.contains("trunk=carrier-b")
            && l.contains("rtp=203.0.113.40:")),
        "{log}"
    );
}
