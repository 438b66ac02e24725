//! SRTP with SDES keys (RFC 4568) against a real phone: Debian's `baresip`
//! (package `baresip-core`), whose `srtp` module is libre's own SRTP, an
//! implementation independent of ours. `mediaenc=srtp-mand` makes it offer
//! and accept only RTP/SAVP with `a=crypto`.
//!
//! baresip runs headless: its config lives in a temporary folder, it sends a
//! sine tone (`ausine`), plays into an unconnected bridge (`aubridge`) and
//! records what it decodes with `sndfile` (dump-*-dec.wav), so audio is
//! checked where it is heard: after baresip decrypted it. Digits are typed
//! into its `cons` console over UDP, which sends them as RFC 4733 events.

mod common;

use std::f64::consts::TAU;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BARESIP: &str = "/usr/bin/baresip";
const CONTACT_POINT: &str = "+15550100000";
const BILLING: &str = "+15550100001";
/// jsmith in config/tpswitch.toml (skills billing, spanish).
const JSMITH: &str = "+12345678910";
const CUSTOMER: &str = "+15550109999";

/// One headless baresip; killed (by its own PID) on drop.
struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    sip_port: u16,
    cons: u16,
}

impl Baresip {
    /// `user` calls from (and is called at) 127.0.0.1:`sip_port`, sending a
    /// sine of `tone_hz`; `mediaenc` is its account's media encryption ("" = none).
    fn start(user: &str, sip_port: u16, tone_hz: u32, mediaenc: &str, commands: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let rtp = free_media_port();
        let cons = free_udp_port();
        // ausine makes 48 kHz stereo only; baresip resamples to the codec.
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
             audio_player aubridge,nowhere\naudio_source ausine,{tone_hz}\n\
             ausrc_srate 48000\nausrc_channels 2\nauplay_srate 48000\n\
             rtp_ports {rtp}-{}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule ausine.so\nmodule aubridge.so\nmodule sndfile.so\n\
             module srtp.so\nmodule menu.so\nmodule account.so\nmodule cons.so\n\
             cons_listen 127.0.0.1:{cons}\nsnd_path {}\n",
            rtp + 1,
            dir.path().display()
        );
        std::fs::write(dir.path().join("config"), config).expect("baresip config");
        let enc = if mediaenc.is_empty() {
            String::new()
        } else {
            format!(";mediaenc={mediaenc}")
        };
        std::fs::write(
            dir.path().join("accounts"),
            format!(
                "<sip:{user}@127.0.0.1>;regint=0;answermode=auto{enc};audio_codecs=PCMU,PCMA\n"
            ),
        )
        .expect("baresip accounts");
        let out = std::fs::File::create(dir.path().join("out.log")).expect("out.log");
        let mut cmd = Command::new(BARESIP);
        // -s: SIP trace, so a test can read the keys both sides put on the wire.
        cmd.arg("-s").arg("-f").arg(dir.path());
        for c in commands {
            cmd.args(["-e", c]);
        }
        // A bound on its life whatever the test does; drop ends it sooner.
        cmd.args(["-t", "60"]);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("start baresip (apt-get install baresip-core)");
        Baresip {
            child,
            dir,
            sip_port,
            cons,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default()
    }

    /// Waits until baresip's output has had `text` `count` times.
    #[track_caller]
    fn expect(&self, text: &str, count: usize, limit: Duration, sw: &Switch) {
        let end = Instant::now() + limit;
        while self.output().matches(text).count() < count {
            assert!(
                Instant::now() < end,
                "baresip never printed {text:?} {count} time(s)\n--- its output\n{}\n--- switch log\n{}",
                self.printable(),
                sw.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its output without the status line it redraws many times a second.
    fn printable(&self) -> String {
        self.output()
            .split(['\n', '\r'])
            .filter(|l| !l.contains("audio=") && !l.starts_with("/dial") && !l.starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every SDES key in the SDP it sent or received (RFC 4568 `inline:`).
    fn wire_keys(&self) -> Vec<String> {
        let out = self.output();
        let mut keys: Vec<String> = out
            .split("inline:")
            .skip(1)
            .filter_map(|rest| rest.get(..40))
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Types `keys` into its console: in a call, each is sent as an RFC 4733 digit.
    fn keys(&self, keys: &str) {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.send_to(keys.as_bytes(), ("127.0.0.1", self.cons))
            .expect("send to baresip's console");
    }

    /// The decoded audio of its newest call (what its user heard), 8 kHz mono.
    fn heard(&self) -> Vec<i16> {
        let mut dumps: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        dumps.sort();
        let newest = dumps.last().expect("baresip recorded no call");
        read_wav(newest)
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_wav(path: &Path) -> Vec<i16> {
    // sndfile writes the header when it closes the file; a dump still open has
    // sizes of 0, so read the samples after the 44-byte header ourselves.
    let bytes = std::fs::read(path).expect("read dump");
    bytes
        .get(44..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// The share of a window's energy at `hz` (Goertzel), 0..1.
fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let n = samples.len() as f64;
    let w = TAU * hz / 8000.0;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0;
    for &x in samples {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    if energy == 0.0 {
        0.0
    } else {
        // A pure tone over the window gives power = energy * n / 2.
        (2.0 * power / (n * energy)).min(1.0)
    }
}

/// Whether some 100 ms window of `samples` is mostly a tone at `hz`.
fn hears_tone(samples: &[i16], hz: f64) -> bool {
    samples
        .chunks_exact(800)
        .any(|w| tone_share(w, hz) > 0.8 && rms(w) > 500.0)
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&x| f64::from(x).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// The switch's `media quality` lines: (srtp suite, packets received).
fn quality_lines(sw: &Switch) -> Vec<(String, u64)> {
    sw.log()
        .lines()
        .filter(|l| l.contains("media quality"))
        .map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix(k))
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_owned()
            };
            (field("srtp="), field("received=").parse().unwrap_or(0))
        })
        .collect()
}

/// The switch with `trunk.srtp = policy`, logging at trace level so that a
/// key written to the log at any level would be seen.
fn srtp_switch(policy: &str, trunk_port: u16, edit: impl FnOnce(String) -> String) -> Switch {
    Switch::start_env(trunk_port, &[("TPSWITCH_LOG", "trace")], |t| {
        edit(t.replace_exact("srtp = \"off\"", &format!("srtp = \"{policy}\"")))
    })
}

/// No SDES key of any phone's call is in the switch's log.
#[track_caller]
fn assert_no_key_logged(sw: &Switch, phones: &[&Baresip]) {
    let keys: Vec<String> = phones.iter().flat_map(|p| p.wire_keys()).collect();
    // Ours and the phone's, for every call it made.
    assert!(keys.len() >= 2, "no keys in baresip's SIP trace: {keys:?}");
    let log = sw.log();
    for k in &keys {
        assert!(
            !log.contains(k.as_str()),
            "an SRTP key is in the switch log"
        );
    }
}

#[test]
fn baresip_with_mandatory_srtp_hears_the_prompt_and_logs_in_by_digit() {
    let sw = srtp_switch("required", free_udp_port(), |t| t);
    let phone = Baresip::start(
        JSMITH,
        free_udp_port(),
        440,
        "srtp-mand",
        &[&format!(
            "/dial sip:{CONTACT_POINT}@127.0.0.1:{}",
            sw.sip.port()
        )],
    );
    phone.expect(
        "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_",
        1,
        Duration::from_secs(15),
        &sw,
    );
    phone.expect("Call established", 1, Duration::from_secs(15), &sw);
    // The welcome prompt's SRTP reaches baresip (it decrypted a packet),
    // so the menu runs: key 1 (8 hours). baresip's once-a-second status
    // line ("audio=64000/...") is not waited for: in one CI run baresip
    // printed none for 10 s; the decoded audio is checked below instead.
    phone.expect(
        "incoming rtp for 'audio' established",
        1,
        Duration::from_secs(10),
        &sw,
    );
    phone.keys("1");
    phone.expect("terminated", 1, Duration::from_secs(30), &sw);
    let a = agent(&sw, "jsmith");
    assert_eq!(a["state"], "online", "{a}\n--- switch log\n{}", sw.log());

    // What baresip decrypted and decoded is speech, not silence or noise.
    let heard = phone.heard();
    assert!(heard.len() > 8000, "only {} samples", heard.len());
    assert!(
        rms(&heard) > 300.0,
        "baresip heard silence (rms {:.0})",
        rms(&heard)
    );
    // What we authenticated and decrypted from baresip: its packets were counted.
    let q = quality_lines(&sw);
    assert!(
        q.iter()
            .any(|(s, n)| s.starts_with("AES_CM_128_HMAC_SHA1_") && *n > 25),
        "{q:?}\n{}",
        sw.log()
    );
    assert_no_key_logged(&sw, &[&phone]);
}

#[test]
fn a_plain_rtp_offer_on_a_required_trunk_gets_488() {
    let sw = srtp_switch("required", free_udp_port(), |t| t);
    let phone = Baresip::start(
        JSMITH,
        free_udp_port(),
        440,
        "",
        &[&format!(
            "/dial sip:{CONTACT_POINT}@127.0.0.1:{}",
            sw.sip.port()
        )],
    );
    phone.expect("488", 1, Duration::from_secs(15), &sw);
    assert!(quality_lines(&sw).is_empty(), "{}", sw.log());
}

#[test]
fn a_bridged_call_between_two_srtp_phones_carries_audio_both_ways() {
    bridged_call(
        "required",
        "srtp-mand",
        &["AES_CM_128_HMAC_SHA1_", "AES_CM_128_HMAC_SHA1_"],
    );
}

/// `optional`: the customer's RTP/SAVP offer is answered with SRTP; our offer to the
/// agent carries a=crypto on RTP/AVP, which a phone without SRTP ignores. The bridge then
/// decrypts one leg and sends the other in the clear, and back.
#[test]
fn an_optional_trunk_bridges_an_srtp_customer_to_a_plain_rtp_agent() {
    bridged_call("optional", "", &["srtp", "off"]);
}

/// The agent (`agent_enc`) logs in through its own phone, then a customer with mandatory
/// SRTP calls Billing: each hears the other's tone; `legs` say which of the customer's and
/// the agent's legs run SRTP ("off" for plain RTP).
fn bridged_call(policy: &str, agent_enc: &str, legs: &[&str; 2]) {
    // The agent's phone is also the trunk's far end: the switch calls it there.
    let agent_port = free_udp_port();
    let sw = srtp_switch(policy, agent_port, |t| {
        t.replace_exact("accept_digit = \"1\"", "accept_digit = \"\"")
            .replace_exact("greeting = \"queue_greeting\"", "greeting = \"\"")
            .replace_exact("whisper = \"agent_whisper\"", "whisper = \"\"")
    });
    let agent_phone = Baresip::start(
        JSMITH,
        agent_port,
        1200,
        agent_enc,
        &[&format!(
            "/dial sip:{CONTACT_POINT}@127.0.0.1:{}",
            sw.sip.port()
        )],
    );
    assert_eq!(agent_phone.sip_port, agent_port);
    agent_phone.expect("Call established", 1, Duration::from_secs(15), &sw);
    agent_phone.expect("audio=64000/", 1, Duration::from_secs(10), &sw);
    agent_phone.keys("1");
    agent_phone.expect("terminated", 1, Duration::from_secs(30), &sw);
    assert_eq!(agent(&sw, "jsmith")["state"], "online", "{}", sw.log());

    let customer = Baresip::start(
        CUSTOMER,
        free_udp_port(),
        440,
        "srtp-mand",
        &[&format!("/dial sip:{BILLING}@127.0.0.1:{}", sw.sip.port())],
    );
    customer.expect("Call established", 1, Duration::from_secs(15), &sw);
    // The switch rings the agent's phone, which answers: bridged on answer.
    agent_phone.expect("Call established", 2, Duration::from_secs(20), &sw);
    // Talk until each phone has heard the other's tone, after both SRTP hops.
    await_some(
        "the agent hearing the customer's 440 Hz",
        Duration::from_secs(15),
        || hears_tone(&agent_phone.heard(), 440.0).then_some(()),
    );
    await_some(
        "the customer hearing the agent's 1200 Hz",
        Duration::from_secs(15),
        || hears_tone(&customer.heard(), 1200.0).then_some(()),
    );
    customer.keys("b"); // baresip's menu: hang up
                        // Both legs end: one media-quality line each after the log-in call's.
    await_some(
        "both legs' media quality lines",
        Duration::from_secs(10),
        || (quality_lines(&sw).len() >= 3).then_some(()),
    );

    let q = quality_lines(&sw);
    // The two legs end together, in either order.
    let mut got: Vec<(bool, bool)> = q
        .iter()
        .skip(1)
        .map(|(s, n)| (s != "off", *n >= 10))
        .collect();
    let mut want: Vec<(bool, bool)> = legs.iter().map(|l| (*l != "off", true)).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "{q:?}\n{}", sw.log());
    assert_no_key_logged(&sw, &[&agent_phone, &customer]);
}

/// Trunk "carrier-a" (first by priority, plain RTP, on 127.0.0.2) that
/// answers 503 to every INVITE: a thread of the test, stopped on drop.
struct RefusingTrunk {
    addr: std::net::SocketAddr,
    invites: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RefusingTrunk {
    fn start() -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let sock = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let invites = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (invites.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Bounded: the test is over well within a minute.
            let end = Instant::now() + Duration::from_secs(90);
            while !halt.load(Ordering::Relaxed) && Instant::now() < end {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let msg = String::from_utf8_lossy(&buf[..n]);
                if !msg.starts_with("INVITE ") {
                    continue; // the ACK of our 503
                }
                count.fetch_add(1, Ordering::Relaxed);
                let mut reply = String::from("SIP/2.0 503 Service Unavailable\r\n");
                for l in msg.lines() {
                    if ["Via:", "From:", "Call-ID:", "CSeq:"]
                        .iter()
                        .any(|h| l.starts_with(h))
                    {
                        reply.push_str(l);
                        reply.push_str("\r\n");
                    } else if l.starts_with("To:") {
                        reply.push_str(l);
                        reply.push_str(";tag=refused\r\n");
                    }
                }
                reply.push_str("Content-Length: 0\r\n\r\n");
                let _ = sock.send_to(reply.as_bytes(), from);
            }
        });
        RefusingTrunk {
            addr,
            invites,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RefusingTrunk {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Two trunks with their own SRTP policies: "carrier-a" (first, `off`)
/// answers 503, so the agent leg fails over to "carrier-b" (`required`,
/// where the phones are): the INVITE it then sends offers RTP/SAVP with
/// keys, as b needs, and the agent's baresip (mandatory SRTP, which
/// refuses a plain offer) answers it. The calls from the phones come from
/// b's addresses and follow b's policy. Each phone hears the other's tone.
#[test]
fn a_leg_failing_over_to_an_srtp_required_trunk_offers_srtp() {
    let a = RefusingTrunk::start();
    let agent_port = free_udp_port();
    let a_port = a.addr.port();
    let sw = Switch::start_env(a_port, &[("TPSWITCH_LOG", "trace")], |t| {
        t.replace_exact(
            "[trunk]\nname = \"carrier\"",
            "[[trunks]]\nname = \"carrier-a\"",
        )
        .replace_exact(
            &format!("outbound_proxy = \"sip:127.0.0.1:{a_port}\""),
            &format!("outbound_proxy = \"sip:127.0.0.2:{a_port}\""),
        )
        .replace_exact(
            "allow = [\"127.0.0.1/32\", \"::1/128\"]",
            "allow = [\"127.0.0.2/32\"]",
        )
        .replace_exact("\npriority = 0 ", "\npriority = 10 ")
        .replace_exact(
            "\n[media]\n",
            &format!(
                "\n[[trunks]]\nname = \"carrier-b\"\npriority = 20\n\
                     outbound_proxy = \"sip:127.0.0.1:{agent_port}\"\nallow = [\"127.0.0.1/32\"]\n\
                     srtp = \"required\"\n\n[media]\n"
            ),
        )
        .replace_exact("accept_digit = \"1\"", "accept_digit = \"\"")
        .replace_exact("greeting = \"queue_greeting\"", "greeting = \"\"")
        .replace_exact("whisper = \"agent_whisper\"", "whisper = \"\"")
    });
    let agent_phone = Baresip::start(
        JSMITH,
        agent_port,
        1200,
        "srtp-mand",
        &[&format!(
            "/dial sip:{CONTACT_POINT}@127.0.0.1:{}",
            sw.sip.port()
        )],
    );
    agent_phone.expect("Call established", 1, Duration::from_secs(15), &sw);
    agent_phone.expect("audio=64000/", 1, Duration::from_secs(10), &sw);
    agent_phone.keys("1");
    agent_phone.expect("terminated", 1, Duration::from_secs(30), &sw);
    assert_eq!(agent(&sw, "jsmith")["state"], "online", "{}", sw.log());

    let customer = Baresip::start(
        CUSTOMER,
        free_udp_port(),
        440,
        "srtp-mand",
        &[&format!("/dial sip:{BILLING}@127.0.0.1:{}", sw.sip.port())],
    );
    customer.expect("Call established", 1, Duration::from_secs(15), &sw);
    agent_phone.expect("Call established", 2, Duration::from_secs(20), &sw);
    await_some(
        "the agent hearing the customer's 440 Hz",
        Duration::from_secs(15),
        || hears_tone(&agent_phone.heard(), 440.0).then_some(()),
    );
    await_some(
        "the customer hearing the agent's 1200 Hz",
        Duration::from_secs(15),
        || hears_tone(&customer.heard(), 1200.0).then_some(()),
    );
    customer.keys("b");
    await_some(
        "both legs' media quality lines",
        Duration::from_secs(10),
        || (quality_lines(&sw).len() >= 3).then_some(()),
    );
    assert!(
        a.invites.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "carrier-a was tried first"
    );
    let log = sw.log();
    assert!(
        log.lines().any(|l| l.contains("dialling on the trunk")
            && l.contains("trunk=carrier-b")
            && l.contains("srtp=\"required\"")
            || l.contains("dialling on the trunk")
                && l.contains("trunk=carrier-b")
                && l.contains("srtp=required")),
        "{log}"
    );
    let q = quality_lines(&sw);
    assert!(
        q.iter().skip(1).all(|(s, n)| s != "off" && *n >= 10),
        "both bridged legs ran SRTP: {q:?}\n{log}"
    );
    assert_no_key_logged(&sw, &[&agent_phone, &customer]);
}
