//! A second real phone beside SIPp: Debian's `linphonec` (package
//! `linphone-cli`, liblinphone 5) logs an agent in by calling the contact
//! point and keying an RFC 4733 digit; the switch then hangs up and the
//! phone must accept our BYE (issue 9: a BYE built from a Contact read
//! wrongly was ignored by linphone, whose own BYE later got 481).
//!
//! linphonec runs headless: its config lives in a temporary HOME, audio goes
//! through its file backend (`soundcard use files`, no sound card needed),
//! and it is driven over stdin, every step bounded and awaited on its output.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const LINPHONEC: &str = "/usr/bin/linphonec";
const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";

/// One headless linphonec; killed (by its own PID) on drop.
struct Linphone {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    log: std::path::PathBuf,
}

impl Linphone {
    fn start(home: &Path, sip_port: u16, rtp_port: u16) -> Linphone {
        let rc = home.join("linphonerc");
        // `auto_net_state_mon=0`: liblinphone's network monitor never reports
        // a sandbox without a desktop network manager as reachable, so it
        // would never open its SIP port; `ports sip` (below) opens it.
        // `[rtp] bind_address`: the SDP's c= is then 127.0.0.1, where its RTP
        // really comes from (the switch latches only to the SDP's address).
        std::fs::write(
            &rc,
            format!(
                "[sip]\nauto_net_state_mon=0\ncontact=\"Agent\" <sip:{JSMITH}@127.0.0.1>\n\
                 use_info=0\nuse_rfc2833=1\nuse_ipv6=0\nguess_hostname=0\n\
                 [rtp]\nbind_address=127.0.0.1\naudio_rtp_port={rtp_port}\n\
                 [net]\nfirewall_policy=0\n[video]\ndisplay=0\ncapture=0\n"
            ),
        )
        .expect("write linphonerc");
        let log = home.join("linphone.log");
        let mut child = Command::new(LINPHONEC)
            .arg("-c")
            .arg(&rc)
            .args(["-d", "6", "-l"])
            .arg(&log)
            .env("HOME", home)
            .current_dir(home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start linphonec (apt-get install linphone-cli)");
        let stdin = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut phone = Linphone {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            log,
        };
        phone.send("soundcard use files");
        phone.expect("Using wav files", Duration::from_secs(20));
        phone.send(&format!("ports sip {sip_port}"));
        phone.expect("Setting sip port", Duration::from_secs(10));
        phone
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to linphonec");
        self.stdin.flush().expect("flush linphonec");
    }

    /// Waits (at most `limit`) for an output line containing `text`.
    #[track_caller]
    fn expect(&mut self, text: &str, limit: Duration) {
        let end = Instant::now() + limit;
        if self.seen.iter().any(|l| l.contains(text)) {
            return;
        }
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(text);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "linphonec never printed {text:?}\n--- its output\n{}\n--- its log (SIP)\n{}",
            self.seen.join("\n"),
            self.sip_log()
        );
    }

    /// The SIP messages in linphone's own log.
    fn sip_log(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("20"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn linphone_logs_in_and_accepts_the_switch_bye() {
    let sw = Switch::start(|t| t);
    let home = tempfile::tempdir().expect("tempdir");
    let sip_port = free_udp_port();
    let mut phone = Linphone::start(home.path(), sip_port, free_media_port());
    phone.send(&format!(
        "call sip:{CONTACT_POINT}@127.0.0.1:{}",
        sw.sip.port()
    ));
    // "connected": the 200 arrived and linphone sent its ACK, so the menu
    // acts on keys from here on.
    phone.expect("connected", Duration::from_secs(15));
    phone.expect("Media streams established", Duration::from_secs(10));
    // Key 1 (barging into the welcome): the first preset, 8 hours.
    phone.send("1");
    // The switch confirms and hangs up; linphone ends the call only if it
    // took our BYE (a malformed Request-URI is ignored and the call stays up).
    phone.expect("ended", Duration::from_secs(30));
    let a = agent(&sw, "jsmith");
    assert_eq!(a["state"], "online", "{a}\n--- switch log\n{}", sw.log());
    let sip = phone.sip_log();
    let bye = format!("BYE sip:127.0.0.1:{sip_port};transport=udp SIP/2.0");
    assert!(sip.contains(&bye), "no {bye:?} in\n{sip}");
    assert!(!sip.contains("SIP/2.0 481"), "{sip}");
    assert!(
        !sip.lines()
            .any(|l| l.starts_with("BYE ") && !l.contains(&bye)),
        "linphone sent its own BYE:\n{sip}"
    );
}
