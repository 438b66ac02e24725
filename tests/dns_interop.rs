//! RFC 3263 against a real DNS server (issue 10): dnsmasq, started here on
//! a loopback port of its own, serves NAPTR, SRV and A records for a trunk
//! domain whose two SRV targets are SIPp UAS processes; tpswitch's trunk is
//! that domain. Checks the order (SRV priority), the failover when the
//! first target has stopped, and that `check-config` and `run` judge a
//! name that does not resolve the same way.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;

const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";
const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// dnsmasq on 127.0.0.1:`port`, answering only from its command line;
/// killed (by its PID) on drop.
struct Dnsmasq {
    child: Child,
    port: u16,
}

impl Dnsmasq {
    fn start(records: &[String]) -> Dnsmasq {
        Self::start_on(free_udp_port(), 60, records)
    }

    /// On a given port (to stand in for a zone change: stop, start again
    /// with other records), with the TTL its answers carry.
    fn start_on(port: u16, ttl: u32, records: &[String]) -> Dnsmasq {
        let mut child = Command::new(DNSMASQ)
            .args(["-k", "--port", &port.to_string()])
            .args(["--listen-address", "127.0.0.1", "--bind-interfaces"])
            .args([
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
            ])
            // A TTL, so the switch caches rather than asks per call.
            .arg(format!("--local-ttl={ttl}"))
            .args(["--log-queries", "--log-facility=-"])
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq (Debian package dnsmasq-base)");
        // Ready once it holds its port (bounded; an early exit is reported).
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dnsmasq exited before binding port {port}: {status}");
            }
            assert!(
                std::time::Instant::now() < end,
                "dnsmasq did not bind {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Dnsmasq { child, port }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The trunk is `sip:{domain}` (no port, no transport: the full NAPTR →
/// SRV → A chain), resolved through `dns`; T1 is short so Timer B (64*T1)
/// gives up on a silent target in 6.4 s.
fn named_trunk(
    trunk_port: u16,
    domain: &str,
    dns: &Dnsmasq,
    start_unresolved: bool,
) -> impl FnOnce(String) -> String {
    let domain = domain.to_owned();
    let ns = dns.port;
    move |t: String| {
        t.replace_exact(
            &format!("outbound_proxy = \"sip:127.0.0.1:{trunk_port}\""),
            &format!("outbound_proxy = \"sip:{domain}\""),
        )
        .replace_exact(
            "# nameserver = \"127.0.0.1:5353\"",
            &format!("nameserver = \"127.0.0.1:{ns}\""),
        )
        .replace_exact(
            "start_unresolved = false",
            &format!("start_unresolved = {start_unresolved}"),
        )
        .replace_exact("t1 = \"500ms\"", "t1 = \"100ms\"")
        .replace_exact("digit_timeout = \"5s\"", "digit_timeout = \"2s\"")
    }
}

fn login(sw: &Switch) {
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(1000), Key('1')], true);
    let run = sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    );
    run.assert_ok(sw);
}

fn invites(msgs: &str) -> usize {
    msgs.lines()
        .filter(|l| l.starts_with("INVITE sip:"))
        .count()
}

/// NAPTR → SRV (a: priority 10, b: priority 20) → A. The window-ended
/// notification (presence time runs 3600x, so an 8-hour window ends 8 s
/// after log-in) goes to `a` with the domain in the Request-URI; once `a`
/// has stopped, the next one times out there (Timer B) and reaches `b`.
#[test]
fn named_trunk_uses_srv_priority_and_fails_over_when_the_first_stops() {
    let (a_port, b_port) = (free_udp_port(), free_udp_port());
    let dns = Dnsmasq::start(&[
        "--naptr-record=trunk.test,10,10,S,SIP+D2U,,_sip._udp.trunk.test".into(),
        format!("--srv-host=_sip._udp.trunk.test,a.trunk.test,{a_port},10,10"),
        format!("--srv-host=_sip._udp.trunk.test,b.trunk.test,{b_port},20,10"),
        "--host-record=a.trunk.test,127.0.0.1".into(),
        "--host-record=b.trunk.test,127.0.0.1".into(),
    ]);
    // Each phone takes one call and exits: `a` is stopped after the first.
    let mut a = BackgroundSipp::start("uas_answer_talk.xml", a_port, 1, &[]);
    let mut b = BackgroundSipp::start("uas_answer_talk.xml", b_port, 1, &[]);
    let trunk_port = free_udp_port();
    let sw = Switch::start_env(
        trunk_port,
        &[("TPSWITCH_CLOCK_SPEED", "3600")],
        named_trunk(trunk_port, "trunk.test", &dns, false),
    );
    assert!(
        sw.log().contains(&format!(
            "udp 127.0.0.1:{a_port} (priority 10, weight 10), udp 127.0.0.1:{b_port} (priority 20, weight 10)"
        )),
        "{}",
        sw.log()
    );

    login(&sw);
    let status = a.wait(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "the first notification did not complete at a: {status:?}\n{}\n--- switch\n{}",
        a.errors(),
        sw.log()
    );
    assert!(
        a.messages()
            .contains(&format!("INVITE sip:{JSMITH}@trunk.test SIP/2.0")),
        "the Request-URI keeps the trunk's name:\n{}",
        a.messages()
    );
    assert_eq!(
        invites(&b.messages()),
        0,
        "b (priority 20) is not tried while a answers"
    );

    // `a` has exited: its port is closed. The next notification fails over.
    login(&sw);
    let status = b.wait(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "the second notification did not reach b: {status:?}\n{}\n--- switch\n{}",
        b.errors(),
        sw.log()
    );
    assert!(
        b.messages()
            .contains(&format!("INVITE sip:{JSMITH}@trunk.test SIP/2.0")),
        "{}",
        b.messages()
    );
    let log = sw.log();
    assert!(
        log.contains("trunk target failed; trying the next one")
            && log.contains(&format!("failed=127.0.0.1:{a_port}"))
            && log.contains(&format!("next=127.0.0.1:{b_port}")),
        "{log}"
    );
    assert_eq!(log.matches("notification delivered").count(), 2, "{log}");
}

/// Writes a test config whose trunk is `sip:{domain}` into `dir`.
fn config_file(dir: &Path, dns: &Dnsmasq, domain: &str, start_unresolved: bool) -> PathBuf {
    let trunk_port = free_udp_port();
    let path = dir.join("tpswitch.toml");
    let text = test_config(
        dir,
        trunk_port,
        named_trunk(trunk_port, domain, dns, start_unresolved),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `check-config` and `run` refuse a name that gives no address with the
/// same message: the name, every record type asked, and the fix; with
/// `dns.start_unresolved` both go on with a warning.
#[test]
fn an_unresolvable_trunk_is_refused_the_same_way_by_check_config_and_run() {
    let dns = Dnsmasq::start(&["--host-record=other.test,127.0.0.1".into()]);
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &dns, "nowhere.test", false);
    let asked =
        "nowhere.test does not resolve (asked NAPTR nowhere.test, SRV _sip._udp.nowhere.test, \
                 SRV _sip._tcp.nowhere.test, A/AAAA nowhere.test)";
    let check = Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{err}");
    assert!(
        err.contains(asked) && err.contains("dns.start_unresolved = true"),
        "{err}"
    );

    // `run` stops before opening anything, with the same words.
    let mut run = Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(s)) = run.try_wait() {
            break s;
        }
        if std::time::Instant::now() > end {
            let _ = run.kill();
            panic!("run did not stop on an unresolvable trunk");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    use std::io::Read;
    run.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains(asked), "{err}");

    // Told to start anyway: a warning, and the switch runs.
    let dir2 = tempfile::tempdir().unwrap();
    let config2 = config_file(dir2.path(), &dns, "nowhere.test", true);
    let check = Command::new(env!("CARGO_BIN_EXE_tpswitch"))
        .args(["check-config", "--config"])
        .arg(&config2)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{err}");
    assert!(err.contains("does not resolve; it starts down"), "{err}");
    let sw = Switch::start_config(dir2, config2);
    assert!(sw.log().contains("starting with it down"), "{}", sw.log());
}

/// The value of the `tpswitch_trunk_target_up` series for `target`.
fn target_up(sw: &Switch, target: &str) -> Option<i64> {
    trunk_target_up(sw, "carrier", target)
}

/// The value of the `tpswitch_trunk_target_up` series for `target` of
/// `trunk`.
fn trunk_target_up(sw: &Switch, trunk: &str, target: &str) -> Option<i64> {
    let (_, body) = http_get(sw.http, "/metrics", None);
    let prefix = format!(
        "tpswitch_trunk_target_up{{trunk=\"{trunk}\",target=\"{target}\",transport=\"udp\"}} "
    );
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// OPTIONS keepalive against real peers: the SRV target that answers is
/// up (with a round trip in /metrics), the one with nobody behind it is
/// down; when the answering one is stopped it goes down too, in the log
/// and in /metrics.
#[test]
fn keepalive_shows_each_target_up_or_down_in_metrics_and_the_log() {
    let (a_port, b_port) = (free_udp_port(), free_udp_port());
    let dns = Dnsmasq::start(&[
        format!("--srv-host=_sip._udp.trunk.test,a.trunk.test,{a_port},10,10"),
        format!("--srv-host=_sip._udp.trunk.test,b.trunk.test,{b_port},20,10"),
        "--host-record=a.trunk.test,127.0.0.1".into(),
        "--host-record=b.trunk.test,127.0.0.1".into(),
    ]);
    let a = BackgroundSipp::start("uas_options.xml", a_port, 10_000, &[]);
    let trunk_port = free_udp_port();
    let edit = named_trunk(trunk_port, "trunk.test", &dns, false);
    let sw = Switch::start_with_trunk(trunk_port, |t| {
        edit(t).replace_exact("keepalive_interval = \"0s\"", "keepalive_interval = \"1s\"")
    });
    let (a_addr, b_addr) = (format!("127.0.0.1:{a_port}"), format!("127.0.0.1:{b_port}"));
    await_some(
        "a up and b down in /metrics",
        Duration::from_secs(20),
        || (target_up(&sw, &a_addr) == Some(1) && target_up(&sw, &b_addr) == Some(0)).then_some(()),
    );
    let (_, body) = http_get(sw.http, "/metrics", None);
    assert!(
        body.contains(&format!(
            "tpswitch_trunk_target_rtt_seconds{{trunk=\"carrier\",target=\"{a_addr}\",transport=\"udp\"}} "
        )),
        "{body}"
    );
    let log = sw.log();
    assert!(
        log.contains(&format!(
            "trunk target answers OPTIONS trunk=carrier target=udp {a_addr} health=up"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "trunk target stopped answering OPTIONS; calls skip it trunk=carrier target=udp {b_addr}"
        )),
        "{log}"
    );

    drop(a); // stops the SIPp process (by its PID)
    await_some("a down in /metrics", Duration::from_secs(20), || {
        (target_up(&sw, &a_addr) == Some(0)).then_some(())
    });
    assert!(
        sw.log().contains(&format!(
            "trunk target stopped answering OPTIONS; calls skip it trunk=carrier target=udp {a_addr}"
        )),
        "{}",
        sw.log()
    );
}

/// Answers are re-resolved in the background once their TTL runs out: the
/// zone changes from target `a` to target `b` (dnsmasq restarted with other
/// records, TTL 1 s); the switch logs the new answer and its keepalive then
/// probes `b`, which answers.
#[test]
fn a_changed_dns_answer_reaches_the_switch_after_its_ttl() {
    let (a_port, b_port) = (free_udp_port(), free_udp_port());
    let zone = |port: u16| {
        vec![
            format!("--srv-host=_sip._udp.trunk.test,t.trunk.test,{port},10,10"),
            "--host-record=t.trunk.test,127.0.0.1".to_string(),
        ]
    };
    let dns = Dnsmasq::start_on(free_udp_port(), 1, &zone(a_port));
    let dns_port = dns.port;
    let b = BackgroundSipp::start("uas_options.xml", b_port, 10_000, &[]);
    let trunk_port = free_udp_port();
    let edit = named_trunk(trunk_port, "trunk.test", &dns, false);
    let sw = Switch::start_with_trunk(trunk_port, |t| {
        edit(t)
            .replace_exact("keepalive_interval = \"0s\"", "keepalive_interval = \"1s\"")
            .replace_exact("min_refresh = \"5s\"", "min_refresh = \"1s\"")
    });
    let (a_addr, b_addr) = (format!("127.0.0.1:{a_port}"), format!("127.0.0.1:{b_port}"));
    assert!(
        sw.log().contains(&format!("udp {a_addr} (priority 10")),
        "{}",
        sw.log()
    );
    assert_eq!(target_up(&sw, &b_addr), None, "b is not a target yet");

    drop(dns);
    let _dns = Dnsmasq::start_on(dns_port, 1, &zone(b_port));
    await_some("b up in /metrics", Duration::from_secs(30), || {
        (target_up(&sw, &b_addr) == Some(1)).then_some(())
    });
    let log = sw.log();
    assert!(
        log.contains("trunk DNS answer changed")
            && log.contains(&format!("udp {b_addr} (priority 10")),
        "{log}"
    );
    assert_eq!(target_up(&sw, &a_addr), None, "a is no longer a target");
    drop(b);
}

/// Two trunks, each a name of its own, both resolved through `dns`: trunk
/// `carrier-a` (priority 10) is `sip:{a}`, trunk `carrier-b` (priority 20)
/// is `sip:{b}` with `b_keys` added to its table.
fn two_named_trunks(
    trunk_port: u16,
    a: &str,
    b: &str,
    b_keys: &str,
    dns: &Dnsmasq,
) -> impl FnOnce(String) -> String {
    let first = named_trunk(trunk_port, a, dns, false);
    let b = b.to_owned();
    let b_keys = b_keys.to_owned();
    move |t: String| {
        first(t)
            .replace_exact(
                "[trunk]\nname = \"carrier\"",
                "[[trunks]]\nname = \"carrier-a\"",
            )
            .replace_exact("\npriority = 0 ", "\npriority = 10 ")
            .replace_exact(
                "\n[media]\n",
                &format!(
                    "\n[[trunks]]\nname = \"carrier-b\"\npriority = 20\n\
                     outbound_proxy = \"sip:{b}\"\nallow = [\"127.0.0.1/32\"]\n{b_keys}\n[media]\n"
                ),
            )
    }
}

/// Every trunk is resolved, each from its own domain: `a.test` gives two
/// SRV targets (a1, then a2 with nobody behind it), `b.test` a NAPTR → SRV
/// → A chain to b1. The first notification goes to a1 with a's name in the
/// Request-URI; once a1 has stopped, the next walks a's targets (Timer B on
/// each) and then reaches b1 through trunk b, with b's name.
#[test]
fn two_named_trunks_each_resolved_and_the_second_takes_over() {
    let (a1, a2, b1) = (free_udp_port(), free_udp_port(), free_udp_port());
    let dns = Dnsmasq::start(&[
        format!("--srv-host=_sip._udp.a.test,a1.a.test,{a1},10,10"),
        format!("--srv-host=_sip._udp.a.test,a2.a.test,{a2},20,10"),
        "--host-record=a1.a.test,127.0.0.1".into(),
        "--host-record=a2.a.test,127.0.0.1".into(),
        "--naptr-record=b.test,10,10,S,SIP+D2U,,_sip._udp.b.test".into(),
        format!("--srv-host=_sip._udp.b.test,b1.b.test,{b1},10,10"),
        "--host-record=b1.b.test,127.0.0.1".into(),
    ]);
    let mut a = BackgroundSipp::start("uas_answer_talk.xml", a1, 1, &[]);
    let mut b = BackgroundSipp::start("uas_answer_talk.xml", b1, 1, &[]);
    let trunk_port = free_udp_port();
    let sw = Switch::start_env(
        trunk_port,
        &[("TPSWITCH_CLOCK_SPEED", "3600")],
        two_named_trunks(trunk_port, "a.test", "b.test", "", &dns),
    );
    let log = sw.log();
    assert!(
        log.contains(&format!(
            "trunk=carrier-a name=a.test targets=udp 127.0.0.1:{a1} (priority 10, weight 10), udp 127.0.0.1:{a2} (priority 20, weight 10)"
        )) && log.contains(&format!(
            "trunk=carrier-b name=b.test targets=udp 127.0.0.1:{b1} (priority 10, weight 10)"
        )),
        "{log}"
    );

    login(&sw);
    let status = a.wait(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "the first notification did not complete at a1: {status:?}\n{}\n--- switch\n{}",
        a.errors(),
        sw.log()
    );
    assert!(
        a.messages()
            .contains(&format!("INVITE sip:{JSMITH}@a.test SIP/2.0")),
        "{}",
        a.messages()
    );
    assert_eq!(
        invites(&b.messages()),
        0,
        "trunk b is not tried while a answers"
    );

    // a1 has exited and a2 never ran: trunk a's targets are stopped.
    login(&sw);
    let status = b.wait(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "the second notification did not reach b1: {status:?}\n{}\n--- switch\n{}",
        b.errors(),
        sw.log()
    );
    assert!(
        b.messages()
            .contains(&format!("INVITE sip:{JSMITH}@b.test SIP/2.0")),
        "the Request-URI carries trunk b's name:\n{}",
        b.messages()
    );
    let log = sw.log();
    assert!(
        log.contains(&format!("failed=127.0.0.1:{a1}"))
            && log.contains(&format!("next=127.0.0.1:{a2}")),
        "a's second target is tried before trunk b:\n{log}"
    );
    assert_eq!(log.matches("notification delivered").count(), 2, "{log}");
    // The call trunk b carried counts as b's news in /metrics.
    let (_, body) = http_get(sw.http, "/metrics", None);
    assert!(
        body.contains("tpswitch_trunk_up{trunk=\"carrier-b\"} 1"),
        "{body}"
    );
}

/// A test CA and a server certificate for `name`, in DER.
fn tls_server(name: &str) -> (Vec<u8>, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca_cert.pem().into_bytes(), config)
}

/// What the test's TLS listener saw of the switch: the name it asked for
/// (SNI) and the first request's start line.
struct TlsSeen {
    sni: Option<String>,
    request: String,
}

/// Accepts one TLS connection on `listener` (bounded by `limit`), completes
/// the handshake and reads one SIP request head; answers nothing.
fn accept_one_tls(
    listener: std::net::TcpListener,
    config: rustls::ServerConfig,
    limit: Duration,
) -> std::thread::JoinHandle<Option<TlsSeen>> {
    std::thread::spawn(move || {
        use std::io::Read;
        listener.set_nonblocking(true).ok()?;
        let end = std::time::Instant::now() + limit;
        let tcp = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if std::time::Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return None,
            }
        };
        tcp.set_nonblocking(false).ok()?;
        tcp.set_read_timeout(Some(limit)).ok()?;
        let conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).ok()?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
            let n = tls.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        Some(TlsSeen {
            sni: tls.conn.server_name().map(str::to_owned),
            request: text.lines().next().unwrap_or_default().to_owned(),
        })
    })
}

/// A `sips:` trunk name takes only TLS records (RFC 3263 §4.1): of its
/// NAPTR records the SIP+D2U one (better order) is passed over for
/// SIPS+D2T, whose `_sips._tcp` SRV leads to the test's TLS listener. The
/// switch connects there, checks the certificate for the trunk's name
/// (given as SNI) against the trunk's own CA, and sends its INVITE with
/// that name in the Request-URI.
#[test]
fn a_sips_trunk_takes_the_sips_srv_and_completes_tls_for_its_name() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tls_port = listener.local_addr().unwrap().port();
    let decoy = free_udp_port();
    let dns = Dnsmasq::start(&[
        "--naptr-record=sips.test,5,10,S,SIP+D2U,,_sip._udp.sips.test".into(),
        "--naptr-record=sips.test,10,10,S,SIPS+D2T,,_sips._tcp.sips.test".into(),
        format!("--srv-host=_sip._udp.sips.test,plain.sips.test,{decoy},10,10"),
        format!("--srv-host=_sips._tcp.sips.test,edge.sips.test,{tls_port},10,10"),
        "--host-record=plain.sips.test,127.0.0.1".into(),
        "--host-record=edge.sips.test,127.0.0.1".into(),
    ]);
    let (ca_pem, server_config) = tls_server("sips.test");
    let seen = accept_one_tls(listener, server_config, Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("trunk-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let trunk_port = free_udp_port();
    let edit = named_trunk(trunk_port, "sips.test", &dns, false);
    let sw = Switch::start_env(trunk_port, &[("TPSWITCH_CLOCK_SPEED", "3600")], |t| {
        edit(t)
            .replace_exact(
                "outbound_proxy = \"sip:sips.test\"",
                "outbound_proxy = \"sips:sips.test\"",
            )
            .replace_exact(
                "# tls_ca_file = \"tls/carrier-ca.pem\"",
                &format!("tls_ca_file = \"{}\"", ca.display()),
            )
    });
    assert!(
        sw.log().contains(&format!(
            "name=sips:sips.test targets=tls 127.0.0.1:{tls_port} (priority 10, weight 10)"
        )),
        "{}",
        sw.log()
    );
    login(&sw);
    let seen = seen
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("no TLS request reached the listener\n{}", sw.log()));
    assert_eq!(seen.sni.as_deref(), Some("sips.test"));
    assert_eq!(
        seen.request,
        format!("INVITE sip:{JSMITH}@sips.test SIP/2.0"),
        "{}",
        sw.log()
    );
}

/// keepalive per trunk: trunk a probes its target every second (SIPp
/// answers), trunk b its own every two seconds (nobody there); /metrics
/// and the log name each target's trunk.
#[test]
fn keepalive_runs_per_trunk_and_metrics_name_the_trunk() {
    let (a_port, b_port) = (free_udp_port(), free_udp_port());
    let dns = Dnsmasq::start(&[
        format!("--srv-host=_sip._udp.a.test,t.a.test,{a_port},10,10"),
        "--host-record=t.a.test,127.0.0.1".into(),
        format!("--srv-host=_sip._udp.b.test,t.b.test,{b_port},10,10"),
        "--host-record=t.b.test,127.0.0.1".into(),
    ]);
    let a = BackgroundSipp::start("uas_options.xml", a_port, 10_000, &[]);
    let trunk_port = free_udp_port();
    let edit = two_named_trunks(
        trunk_port,
        "a.test",
        "b.test",
        "keepalive_interval = \"2s\"\n",
        &dns,
    );
    let sw = Switch::start_with_trunk(trunk_port, |t| {
        edit(t).replace_exact("keepalive_interval = \"0s\"", "keepalive_interval = \"1s\"")
    });
    let (a_addr, b_addr) = (format!("127.0.0.1:{a_port}"), format!("127.0.0.1:{b_port}"));
    await_some(
        "a's target up and b's down in /metrics",
        Duration::from_secs(20),
        || {
            (trunk_target_up(&sw, "carrier-a", &a_addr) == Some(1)
                && trunk_target_up(&sw, "carrier-b", &b_addr) == Some(0))
            .then_some(())
        },
    );
    let (_, body) = http_get(sw.http, "/metrics", None);
    assert!(
        body.contains(&format!(
            "tpswitch_trunk_target_rtt_seconds{{trunk=\"carrier-a\",target=\"{a_addr}\",transport=\"udp\"}} "
        )),
        "{body}"
    );
    assert_eq!(trunk_target_up(&sw, "carrier-a", &b_addr), None, "{body}");
    let log = sw.log();
    assert!(
        log.contains(&format!(
            "trunk target answers OPTIONS trunk=carrier-a target=udp {a_addr} health=up"
        )) && log.contains(&format!(
            "trunk target stopped answering OPTIONS; calls skip it trunk=carrier-b target=udp {b_addr}"
        )),
        "{log}"
    );
    drop(a);
}

/// `check-config` resolves every trunk, not only the first: a second trunk
/// whose name does not resolve is refused, named by its key; with
/// `dns.start_unresolved` it is a warning naming that trunk, and only that
/// trunk starts down.
#[test]
fn check_config_resolves_every_trunk_and_names_the_one_that_fails() {
    let dns = Dnsmasq::start(&[
        format!(
            "--srv-host=_sip._udp.a.test,t.a.test,{},10,10",
            free_udp_port()
        ),
        "--host-record=t.a.test,127.0.0.1".into(),
    ]);
    let check = |start_unresolved: bool| {
        let dir = tempfile::tempdir().unwrap();
        let trunk_port = free_udp_port();
        let path = dir.path().join("tpswitch.toml");
        let edit = two_named_trunks(trunk_port, "a.test", "nowhere.test", "", &dns);
        let text = test_config(dir.path(), trunk_port, |t| {
            edit(t).replace_exact(
                "start_unresolved = false",
                &format!("start_unresolved = {start_unresolved}"),
            )
        });
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tpswitch"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(false);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(
            "trunks[1].outbound_proxy: nowhere.test does not resolve (asked NAPTR nowhere.test"
        ),
        "{err}"
    );
    let (code, err) = check(true);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: trunks[1].outbound_proxy does not resolve; it starts down")
            && !err.contains("trunks[0]"),
        "{err}"
    );
}

/// TLS per trunk: two `sips:` trunks, each with its own CA and name. Trunk
/// a's server shows a certificate its CA file does not vouch for: the
/// handshake fails, which is a's failure, and the call moves to trunk b,
/// whose own client (its CA, SNI `b.tls.test`) completes the handshake on
/// b's own connection and sends the INVITE with b's name.
#[test]
fn each_tls_trunk_verifies_with_its_own_ca_and_name_on_its_own_connection() {
    let (la, lb) = (
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let (pa, pb) = (
        la.local_addr().unwrap().port(),
        lb.local_addr().unwrap().port(),
    );
    let dns = Dnsmasq::start(&[
        format!("--srv-host=_sips._tcp.a.tls.test,edge.a.tls.test,{pa},10,10"),
        format!("--srv-host=_sips._tcp.b.tls.test,edge.b.tls.test,{pb},10,10"),
        "--host-record=edge.a.tls.test,127.0.0.1".into(),
        "--host-record=edge.b.tls.test,127.0.0.1".into(),
    ]);
    // Each server's certificate comes from a CA of its own.
    let (_ca_a, server_a) = tls_server("a.tls.test");
    let (ca_b, server_b) = tls_server("b.tls.test");
    let seen_a = accept_one_tls(la, server_a, Duration::from_secs(60));
    let seen_b = accept_one_tls(lb, server_b, Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let ca_b_file = dir.path().join("b-ca.pem");
    std::fs::write(&ca_b_file, ca_b).unwrap();
    let trunk_port = free_udp_port();
    let edit = two_named_trunks(
        trunk_port,
        "a.tls.test",
        "b.tls.test",
        &format!("tls_ca_file = \"{}\"\n", ca_b_file.display()),
        &dns,
    );
    let sw = Switch::start_env(trunk_port, &[("TPSWITCH_CLOCK_SPEED", "3600")], |t| {
        edit(t)
            .replace_exact(
                "outbound_proxy = \"sip:a.tls.test\"",
                "outbound_proxy = \"sips:a.tls.test\"",
            )
            .replace_exact(
                "outbound_proxy = \"sip:b.tls.test\"",
                "outbound_proxy = \"sips:b.tls.test\"",
            )
            // Trunk a trusts b's CA only: a's server is not vouched for.
            .replace_exact(
                "# tls_ca_file = \"tls/carrier-ca.pem\"",
                &format!("tls_ca_file = \"{}\"", ca_b_file.display()),
            )
    });
    login(&sw);
    let b = seen_b
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("no TLS request reached trunk b\n{}", sw.log()));
    assert_eq!(b.sni.as_deref(), Some("b.tls.test"));
    assert_eq!(
        b.request,
        format!("INVITE sip:{JSMITH}@b.tls.test SIP/2.0"),
        "{}",
        sw.log()
    );
    assert!(
        seen_a.join().unwrap().is_none(),
        "trunk a's server must not get a request over a handshake its CA refused"
    );
    let log = sw.log();
    assert!(
        log.contains("TLS handshake with the trunk failed")
            && log.contains("name=a.tls.test")
            && log.contains("check trunks[0].tls_server_name and trunks[0].tls_ca_file"),
        "{log}"
    );
}

/// Accepts one TLS connection on `listener` and answers every OPTIONS on
/// it with a 200 (no body), until the switch closes it or `stop` is set;
/// counts the OPTIONS answered.
fn answer_options_over_tls(
    listener: std::net::TcpListener,
    config: rustls::ServerConfig,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let _ = listener.set_nonblocking(true);
        let tcp = loop {
            if stop.load(Ordering::Relaxed) {
                return 0;
            }
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let _ = tcp.set_nonblocking(false);
        // Short reads, so `stop` is seen.
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
        let Ok(conn) = rustls::ServerConnection::new(std::sync::Arc::new(config)) else {
            return 0;
        };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let (mut buf, mut answered) = (Vec::new(), 0);
        let mut chunk = [0u8; 4096];
        while !stop.load(Ordering::Relaxed) {
            match tls.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => break,
            }
            // Our OPTIONS carry no body: each ends at its blank line.
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                if !head.starts_with("OPTIONS ") {
                    continue;
                }
                let mut resp = String::from("SIP/2.0 200 OK\r\n");
                for l in head.lines().filter(|l| {
                    ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                        .iter()
                        .any(|h| l.starts_with(h))
                }) {
                    resp.push_str(l);
                    resp.push_str("\r\n");
                }
                resp.push_str("Content-Length: 0\r\n\r\n");
                if tls.write_all(resp.as_bytes()).is_err() {
                    return answered;
                }
                answered += 1;
            }
        }
        answered
    })
}

/// The keepalive over TLS against a real TLS server: the `sips:` trunk's
/// `_sips._tcp` target gets its OPTIONS over the trunk's TLS connection to
/// it, answers them, and shows as up with a round trip in /metrics
/// (transport "tls").
#[test]
fn keepalive_probes_a_tls_target_over_its_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dns = Dnsmasq::start(&[
        format!("--srv-host=_sips._tcp.sips.test,edge.sips.test,{port},10,10"),
        "--host-record=edge.sips.test,127.0.0.1".into(),
    ]);
    let (ca_pem, server_config) = tls_server("sips.test");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = answer_options_over_tls(listener, server_config, stop.clone());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("trunk-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let trunk_port = free_udp_port();
    let edit = named_trunk(trunk_port, "sips.test", &dns, false);
    let sw = Switch::start_with_trunk(trunk_port, |t| {
        edit(t)
            .replace_exact(
                "outbound_proxy = \"sip:sips.test\"",
                "outbound_proxy = \"sips:sips.test\"",
            )
            .replace_exact(
                "# tls_ca_file = \"tls/carrier-ca.pem\"",
                &format!("tls_ca_file = \"{}\"", ca.display()),
            )
            .replace_exact("keepalive_interval = \"0s\"", "keepalive_interval = \"1s\"")
    });
    let target = format!("127.0.0.1:{port}");
    let up = |body: &str| {
        body.contains(&format!(
            "tpswitch_trunk_target_up{{trunk=\"carrier\",target=\"{target}\",transport=\"tls\"}} 1"
        ))
    };
    await_some(
        "the TLS target up in /metrics",
        Duration::from_secs(20),
        || {
            let (_, body) = http_get(sw.http, "/metrics", None);
            up(&body).then_some(())
        },
    );
    let (_, body) = http_get(sw.http, "/metrics", None);
    assert!(
        body.contains(&format!(
            "tpswitch_trunk_target_rtt_seconds{{trunk=\"carrier\",target=\"{target}\",transport=\"tls\"}} "
        )),
        "{body}"
    );
    drop(sw);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(server.join().unwrap() >= 1);
}
