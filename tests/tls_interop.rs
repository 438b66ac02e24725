//! SIP over TLS with a real peer (issue 10): Kamailio, with Debian's
//! `kamailio-tls-modules`, stands in for the carrier's edge. It takes
//! plain UDP from SIPp (the phones) and relays to tpswitch over TLS, and
//! relays tpswitch's TLS requests to SIPp over UDP, record-routing both.
//! Certificates are made at test time in the test's temp folder.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const KAMAILIO: &str = "/usr/sbin/kamailio";
const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";
const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";

/// A test CA and leaves it signed, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("ca cert");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, cert.pem()).expect("write ca");
        Pki {
            ca,
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate, key) files for `names`.
    fn leaf(&self, dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("leaf key");
        let cert = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("leaf params")
            .signed_by(&key, &self.issuer)
            .expect("leaf cert");
        let (c, k) = (
            dir.join(format!("{stem}-cert.pem")),
            dir.join(format!("{stem}-key.pem")),
        );
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c, k)
    }
}

/// Kamailio as the carrier's edge; stopped (by its PID) on drop.
struct Kamailio {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Where the phones (SIPp) send: plain UDP.
    udp: SocketAddr,
    /// Where tpswitch connects: TLS.
    tls: SocketAddr,
}

impl Kamailio {
    /// `switch_tls`: tpswitch's TLS listener; `phones`: where requests from
    /// tpswitch go (SIPp, UDP).
    fn start(pki: &Pki, switch_tls: SocketAddr, phones: SocketAddr) -> Kamailio {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = pki.leaf(dir.path(), "carrier", &["carrier.test"]);
        let udp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let tls: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        // The carrier does not ask for or check our certificate; tpswitch
        // checks the carrier's (name carrier.test, signed by the test CA).
        let tls_cfg = format!(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
             private_key = {}\ncertificate = {}\n\n\
             [client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n",
            key.display(),
            cert.display()
        );
        std::fs::write(dir.path().join("tls.cfg"), tls_cfg).expect("tls.cfg");
        let cfg = format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
tcp_children=2
auto_aliases=no
enable_tls=yes
tcp_accept_aliases=yes
listen=udp:{udp}
listen=tls:{tls}
mpath="{MODULES}"
loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("tls", "config", "{tls_cfg}")

request_route {{
    # In-dialog requests follow the route set; an ACK or BYE that carries
    # none (SIPp's login scenario sends them to us as its next hop) goes on
    # by direction, like a new request.
    if (has_totag() && loose_route()) {{
        t_relay();
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) t_relay();
        exit;
    }}
    if (!has_totag()) record_route();
    if ($pr == "tls") {{
        $du = "sip:{phones}";
    }} else {{
        $du = "sip:{switch_tls};transport=tls";
    }}
    if (!t_relay()) sl_reply_error();
}}
"#,
            tls_cfg = dir.path().join("tls.cfg").display(),
        );
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).expect("kamailio.cfg");
        let log = std::fs::File::create(dir.path().join("kamailio.log")).expect("log");
        let child = Command::new(KAMAILIO)
            .arg("-f")
            .arg(&cfg_path)
            // Foreground, no daemon, logs to stderr; its own run dir.
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kamailio (apt-get install kamailio kamailio-tls-modules)");
        let mut k = Kamailio {
            child: Some(child),
            dir,
            udp,
            tls,
        };
        // Ready once it holds its TLS port.
        await_some("kamailio listening", Duration::from_secs(15), || {
            if let Some(Ok(Some(status))) = k.child.as_mut().map(|c| c.try_wait()) {
                panic!("kamailio exited: {status}\n{}", k.log());
            }
            std::net::TcpStream::connect(k.tls).ok()
        });
        k
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM to the main process: it stops its children.
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// tpswitch with its TLS listener on `switch_tls` and Kamailio's TLS port
/// as its trunk, expecting the trunk's certificate to name `server_name`.
/// Presence time runs 3600x: an 8-hour window ends 8 s after log-in.
fn switch_behind(kam: &Kamailio, pki: &Pki, switch_tls: SocketAddr, server_name: &str) -> Switch {
    let (cert, key) = pki.leaf(kam.dir.path(), "tpswitch", &["tpswitch.test", "127.0.0.1"]);
    let port = kam.tls.port();
    Switch::start_env(port, &[("TPSWITCH_CLOCK_SPEED", "3600")], |t| {
        t.replace_exact(
            &format!("outbound_proxy = \"sip:127.0.0.1:{port}\""),
            &format!(
                "outbound_proxy = \"sip:127.0.0.1:{port};transport=tls\"\ntls_ca_file = \"{}\"\ntls_server_name = \"{server_name}\"",
                pki.ca.display()
            ),
        )
        .replace_exact(
            "answer_delay = \"0s\"",
            &format!(
                "answer_delay = \"0s\"\ntls_bind = \"{switch_tls}\"\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"",
                cert.display(),
                key.display()
            ),
        )
        .replace_exact("digit_timeout = \"5s\"", "digit_timeout = \"2s\"")
    })
}

/// Logs jsmith in for 8 hours (key 1) from a SIPp phone through
/// Kamailio's UDP side; Kamailio relays to tpswitch over TLS.
fn login_through(kam: &Kamailio, sw: &Switch) -> SippRun {
    let dir = tempfile::tempdir().unwrap();
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(1000), Key('1')], true);
    let run = sipp(
        sc.to_str().unwrap(),
        Some(kam.udp),
        1,
        &["-s", CONTACT_POINT],
    );
    assert!(
        run.ok(),
        "{}\n--- switch log\n{}\n--- kamailio log\n{}",
        run.explain(),
        sw.log(),
        kam.log()
    );
    run
}

/// A log-in call over TLS into the switch and the switch's own call over
/// TLS out to the trunk, both through Kamailio: the agent logs in from
/// SIPp (UDP to Kamailio, TLS on to tpswitch), and when the window ends
/// (presence time runs 3600x) the switch calls the agent's phone over its
/// TLS connection to Kamailio, which has verified as `carrier.test`.
#[test]
fn login_in_and_notification_out_over_tls_through_kamailio() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path());
    let switch_tls: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let phone_port = free_udp_port();
    let phones: SocketAddr = format!("127.0.0.1:{phone_port}").parse().unwrap();
    let kam = Kamailio::start(&pki, switch_tls, phones);
    // The agent's phone behind the carrier; it talks, or the answer would
    // be a dead one.
    let mut phone = BackgroundSipp::start("uas_answer_talk.xml", phone_port, 1, &[]);
    let kam_tls_port = kam.tls.port();
    let sw = switch_behind(&kam, &pki, switch_tls, "carrier.test");
    // The switch prints its TLS listener just after the line the harness
    // waits for: await it rather than race it.
    sw.await_log(&format!("tls={switch_tls}"), Duration::from_secs(5));

    // In: the phone calls the carrier's UDP side; Kamailio relays over TLS.
    let run = login_through(&kam, &sw);
    // Kamailio record-routed the TLS hop toward us, and our 200 names our
    // TLS listener as Contact: the dialog ran over TLS.
    assert!(
        run.messages.contains("transport=tls"),
        "no TLS hop in the route set:\n{}",
        run.messages
    );
    assert!(
        run.messages
            .contains(&format!("<sip:tpswitch@{switch_tls};transport=tls>")),
        "the switch's Contact names its TLS listener:\n{}",
        run.messages
    );
    assert!(
        sw.log().contains("online agent=jsmith hours=8"),
        "{}",
        sw.log()
    );

    // Out: the window ends 8 s later; the notification goes over our TLS
    // connection to Kamailio and on to the phone.
    let status = phone.wait(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "no notification call completed: {status:?}\n{}\n{}\n--- switch\n{}\n--- kamailio\n{}",
        phone.errors(),
        phone.messages(),
        sw.log(),
        kam.log()
    );
    let msgs = phone.messages();
    assert!(
        msgs.contains(&format!("INVITE sip:{JSMITH}@127.0.0.1:{kam_tls_port}")),
        "the notification dials the agent through the trunk:\n{msgs}"
    );
    // Our Via on the hop to Kamailio says TLS, with RFC 5923's alias
    // (Kamailio adds `received`: our connection comes from an ephemeral
    // port). Kamailio's port {kam_tls_port} speaks nothing but TLS.
    let via = msgs
        .lines()
        .find(|l| l.starts_with(&format!("Via: SIP/2.0/TLS {switch_tls};")))
        .unwrap_or_default();
    assert!(
        via.ends_with(";alias"),
        "the switch's request reached the carrier over TLS:\n{msgs}"
    );
    assert!(sw.log().contains("notification delivered"), "{}", sw.log());
}

/// A TCP connection to `to` from the loopback address `src` (127.0.0.1 is
/// the trunk, inside `trunk.allow`; 127.0.0.2 a stranger).
fn connect_from(src: [u8; 4], to: SocketAddr) -> std::net::TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.bind(&SocketAddr::from((src, 0)).into())
        .expect("bind the source address");
    sock.connect(&to.into()).expect("connect");
    sock.into()
}

/// Does the peer close `s` within `limit`? (Reads until end of stream.)
fn closed_within(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    use std::io::{ErrorKind, Read};
    let until = std::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// The TLS listener's limits, like TCP's: strangers share the small
/// untrusted budget (a slot is taken before the handshake), a connection
/// that never completes its handshake is closed after
/// `sip.tls_handshake_timeout` and counted, and the trunk meanwhile
/// completes its handshake (verifying our certificate against the CA) and
/// is answered over TLS on the connection it opened.
#[test]
fn tls_handshakes_are_bounded_and_strangers_share_the_tcp_budget() {
    use std::io::{Read, Write};
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path());
    let (cert, key) = pki.leaf(certs.path(), "tpswitch", &["tpswitch.test"]);
    let tls: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let sw = Switch::start(|t| {
        t.replace_exact(
            "answer_delay = \"0s\"",
            &format!(
                "answer_delay = \"0s\"\ntls_bind = \"{tls}\"\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"",
                cert.display(),
                key.display()
            ),
        )
        .replace_exact(
            "tls_handshake_timeout = \"10s\"",
            "tls_handshake_timeout = \"1s\"",
        )
        .replace_exact(
            "max_untrusted_tcp_connections = 8",
            "max_untrusted_tcp_connections = 2",
        )
    });
    // Two strangers hold the untrusted budget without a word; a third is
    // refused at once.
    let mut silent: Vec<_> = (0..2).map(|_| connect_from([127, 0, 0, 2], tls)).collect();
    // (Accepted in arrival order: the first two have their slots by the
    // time the third is accepted.)
    let mut third = connect_from([127, 0, 0, 2], tls);
    assert!(closed_within(&mut third, Duration::from_secs(15)));
    await_some(
        "the third stranger refused",
        Duration::from_secs(10),
        || (metric(&sw, "tpswitch_tcp_refused_untrusted_total", None) == 1).then_some(()),
    );
    // The silent ones lose their slot once the handshake time is up.
    for s in &mut silent {
        assert!(
            closed_within(s, Duration::from_secs(15)),
            "a connection that never completes its handshake is closed:\n{}",
            sw.log()
        );
    }
    await_some(
        "handshake failures counted",
        Duration::from_secs(10),
        || (metric(&sw, "tpswitch_tls_handshake_failed_total", None) >= 2).then_some(()),
    );

    // The trunk: a full handshake, our certificate checked, then OPTIONS
    // answered on this connection.
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&pki.ca).expect("ca");
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.expect("ca pem")).expect("ca root");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("tpswitch.test").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    let sock = connect_from([127, 0, 0, 1], tls);
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut stream = rustls::StreamOwned::new(conn, sock);
    let options = format!(
        "OPTIONS sip:{CONTACT_POINT}@{tls} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls1\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=t1\r\nTo: <sip:{CONTACT_POINT}@127.0.0.1>\r\nCall-ID: tls1@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    stream
        .write_all(options.as_bytes())
        .expect("send OPTIONS over TLS");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).expect("an answer over TLS");
        assert!(n > 0, "closed before answering:\n{}", sw.log());
        got.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&got);
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert!(answer.contains("branch=z9hG4bK-tls1"), "{answer}");
}

/// The trunk's certificate must carry the name we expect: with
/// `trunk.tls_server_name` set to a name Kamailio's certificate lacks, the
/// handshake is refused, nothing reaches the phone, and the log says why.
#[test]
fn a_trunk_certificate_without_the_expected_name_is_refused() {
    let certs = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(certs.path());
    let switch_tls: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let phone_port = free_udp_port();
    let phones: SocketAddr = format!("127.0.0.1:{phone_port}").parse().unwrap();
    let kam = Kamailio::start(&pki, switch_tls, phones);
    let phone = BackgroundSipp::start("uas_answer_talk.xml", phone_port, 1, &[]);
    let sw = switch_behind(&kam, &pki, switch_tls, "other.test");
    // Inbound TLS does not depend on the trunk's name: the log-in works.
    login_through(&kam, &sw);
    await_some(
        "the handshake with the trunk refused",
        Duration::from_secs(40),
        || {
            let log = sw.log();
            (log.contains("TLS handshake with the trunk failed") && log.contains("name=other.test"))
                .then_some(())
        },
    );
    // The attempt fails at once as the trunk's 503, not after Timer B.
    await_some("the attempt failed as 503", Duration::from_secs(10), || {
        sw.log()
            .contains("trunk connection failed; call attempt fails as 503")
            .then_some(())
    });
    assert!(
        !phone.messages().contains("INVITE sip:"),
        "nothing may pass a connection whose certificate was refused:\n{}",
        phone.messages()
    );
}
