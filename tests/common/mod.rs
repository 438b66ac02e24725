//! Shared harness for the integration tests: the real `tpswitch` binary on
//! 127.0.0.1 with a per-test configuration, and SIPp runs bounded in count
//! and time.
#![allow(dead_code)]

pub mod kamailio;
pub mod nodes;
pub mod pg;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::time::Duration;

pub const SIPP: &str = "/usr/bin/sipp";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sipp_dir() -> PathBuf {
    repo().join("tests/sipp")
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A port in `base..base+span` that is free for UDP and TCP on 127.0.0.1
/// right now, stepping through the range from a per-process offset.
/// Deliberately below the kernel's ephemeral range (32768+): ports other
/// programs get from the kernel can then never take it between this check
/// and the moment SIPp or the switch binds it.
fn free_port_in(base: u16, span: u16, even: bool) -> u16 {
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let k = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let mut p = base + (offset.wrapping_add(k.wrapping_mul(7))) % span;
        if even {
            p &= !1;
        }
        let ok = |port: u16| {
            UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        };
        // SIPp's -mp takes four ports: audio RTP/RTCP and video RTP/RTCP.
        if ok(p) && (!even || (ok(p + 1) && ok(p + 2) && ok(p + 3))) {
            return p;
        }
    }
    panic!("no free port in {base}..{}", base + span);
}

/// A free signalling port (UDP and TCP) on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    free_port_in(10_000, 5_000, false)
}

/// A free even port for SIPp's media (-mp), with the three above it free.
pub fn free_media_port() -> u16 {
    free_port_in(15_000, 4_998, true)
}

static NEXT_RTP_BLOCK: AtomicU16 = AtomicU16::new(0);

/// Text edits of the default config that fail loudly: a test whose edit no
/// longer matches (the default config changed) would otherwise run on the
/// default values and prove nothing.
pub trait ReplaceExact {
    /// Replaces the first occurrence of `from`; panics naming `from` when
    /// there is none.
    fn replace_exact(self, from: &str, to: &str) -> String;
    /// Replaces every occurrence of `from`; panics when there is none.
    fn replace_all_exact(self, from: &str, to: &str) -> String;
}

impl ReplaceExact for String {
    #[track_caller]
    fn replace_exact(self, from: &str, to: &str) -> String {
        assert!(
            self.contains(from),
            "config edit: the text {from:?} is not in the config; update the test to the current config/tpswitch.toml"
        );
        self.replacen(from, to, 1)
    }

    #[track_caller]
    fn replace_all_exact(self, from: &str, to: &str) -> String {
        assert!(
            self.contains(from),
            "config edit: the text {from:?} is not in the config; update the test to the current config/tpswitch.toml"
        );
        self.replace(from, to)
    }
}

/// A running switch; killed on drop.
pub struct Switch {
    child: Option<Child>,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    stdout: mpsc::Receiver<String>,
    log_thread: Option<std::thread::JoinHandle<()>>,
}

/// The default config with test-friendly values: loopback, ephemeral SIP
/// port, its own RTP range, store and absolute prompt paths. `edit` changes
/// the text further (e.g. the trunk's port or a flow's settings).
pub fn test_config(dir: &Path, trunk_port: u16, edit: impl FnOnce(String) -> String) -> String {
    let text =
        std::fs::read_to_string(repo().join("config/tpswitch.toml")).expect("config/tpswitch.toml");
    let block = NEXT_RTP_BLOCK.fetch_add(1, Ordering::Relaxed);
    // Below the kernel's ephemeral range (32768+), spread by process and
    // test so concurrent runs rarely meet; the pool skips ports in use.
    let slot = (u32::from(block) * 7 + std::process::id() * 13) % 60;
    let rtp_start = 20000 + (slot as u16) * 200;
    let prompts = repo().join("prompts");
    let text = text
        .replace_exact("bind = \"0.0.0.0:5060\"", "bind = \"127.0.0.1:0\"")
        .replace_exact("bind = \"127.0.0.1:8080\"", "bind = \"127.0.0.1:0\"")
        .replace_exact(
            "outbound_proxy = \"sip:127.0.0.1:5080\"",
            &format!("outbound_proxy = \"sip:127.0.0.1:{trunk_port}\""),
        )
        .replace_exact(
            "rtp_ports = \"20000-29999\"",
            &format!("rtp_ports = \"{}-{}\"", rtp_start, rtp_start + 190),
        )
        .replace_exact(
            "path = \"../data/tpswitch.db\"",
            &format!("path = \"{}\"", dir.join("tpswitch.db").display()),
        )
        .replace_all_exact("\"../prompts/", &format!("\"{}/", prompts.display()));
    edit(text)
}

impl Switch {
    pub fn start(edit: impl FnOnce(String) -> String) -> Switch {
        Self::start_with_trunk(free_udp_port(), edit)
    }

    pub fn start_with_trunk(trunk_port: u16, edit: impl FnOnce(String) -> String) -> Switch {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("tpswitch.toml");
        std::fs::write(&config, test_config(dir.path(), trunk_port, edit)).expect("write config");
        Self::start_config(dir, config)
    }

    /// Like `start_with_trunk`, with extra environment for the process.
    pub fn start_env(
        trunk_port: u16,
        envs: &[(&str, &str)],
        edit: impl FnOnce(String) -> String,
    ) -> Switch {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("tpswitch.toml");
        std::fs::write(&config, test_config(dir.path(), trunk_port, edit)).expect("write config");
        Self::spawn(dir, config, envs)
    }

    /// Starts the binary on an existing config file in `dir`.
    pub fn start_config(dir: tempfile::TempDir, config: PathBuf) -> Switch {
        Self::spawn(dir, config, &[])
    }

    /// Like `start_config`, with extra environment (a restart on the same
    /// folder and store).
    pub fn start_config_env(
        dir: tempfile::TempDir,
        config: PathBuf,
        envs: &[(&str, &str)],
    ) -> Switch {
        Self::spawn(dir, config, envs)
    }

    fn spawn(dir: tempfile::TempDir, config: PathBuf, envs: &[(&str, &str)]) -> Switch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tpswitch"))
            .args(["run", "--config"])
            .arg(&config)
            // A test may ask for another level (e.g. debug) through `envs`.
            .env("TPSWITCH_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tpswitch");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().expect("stderr");
        let log = dir.path().join("switch.log");
        let log_thread = std::thread::spawn(move || {
            let mut f = std::fs::File::create(log).ok();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(f) = f.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        let (mut sip, mut http) = (None, None);
        let (sip, http) = loop {
            if let (Some(s), Some(h)) = (sip, http) {
                break (s, h);
            }
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("tpswitch listening sip=") {
                        sip = Some(a.trim().parse::<SocketAddr>().expect("sip address"));
                    } else if let Some(a) = line.strip_prefix("tpswitch listening http=") {
                        http = Some(a.trim().parse::<SocketAddr>().expect("http address"));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log =
                        std::fs::read_to_string(dir.path().join("switch.log")).unwrap_or_default();
                    panic!("tpswitch did not start:\n{log}");
                }
            }
        };
        Switch {
            child: Some(child),
            sip,
            http,
            dir,
            config,
            stdout: rx,
            log_thread: Some(log_thread),
        }
    }

    /// After the process is gone, wait until its last log lines are on disk.
    fn flush_log(&mut self) {
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("switch.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.flush_log();
    }

    /// SIGTERM and wait: a clean shutdown. Returns the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let mut status = None;
        for _ in 0..100 {
            if let Ok(Some(s)) = c.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if status.is_none() {
            let _ = c.kill();
            status = c.wait().ok();
        }
        self.flush_log();
        status
    }

    /// Sends a signal by name ("TERM", "INT", "HUP") and returns at once.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(&pid)
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -{name} {pid} failed");
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits up to `limit` for the process to exit by itself (polled every
    /// 20 ms); `None` when it is still running then.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        loop {
            let status = self.child.as_mut()?.try_wait().ok().flatten();
            if let Some(s) = status {
                self.child = None;
                self.flush_log();
                return Some(s);
            }
            if std::time::Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `text` (panics with the log after
    /// `limit`).
    #[track_caller]
    pub fn await_log(&self, text: &str, limit: Duration) {
        let what = format!("{text:?} in the switch log");
        await_some(&what, limit, || self.log().contains(text).then_some(()));
    }

    /// Runs a `tpswitch` subcommand against this switch's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tpswitch"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run tpswitch")
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The outcome of one SIPp run.
pub struct SippRun {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub errors: String,
    pub messages: String,
}

impl SippRun {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    /// Fails the test unless SIPp succeeded, showing SIPp's side and the switch's log.
    #[track_caller]
    pub fn assert_ok(&self, sw: &Switch) {
        assert!(
            self.ok(),
            "{}\n--- switch log\n{}",
            self.explain(),
            sw.log()
        );
    }

    pub fn explain(&self) -> String {
        format!(
            "sipp exit {:?}\n--- stderr\n{}\n--- errors\n{}\n--- messages\n{}",
            self.status.code(),
            self.stderr,
            self.errors,
            self.messages
        )
    }
}

/// Runs SIPp in the foreground. `scenario` is a file under tests/sipp or a
/// built-in name prefixed with `sn:`. Always bounded: `-m calls` and a
/// global `-timeout`.
pub fn sipp(scenario: &str, target: Option<SocketAddr>, calls: u32, extra: &[&str]) -> SippRun {
    let work = tempfile::tempdir().expect("tempdir");
    let err = work.path().join("errors.log");
    let msg = work.path().join("messages.log");
    let mut cmd = Command::new(SIPP);
    match scenario.strip_prefix("sn:") {
        Some(name) => cmd.args(["-sn", name]),
        None => cmd.arg("-sf").arg(sipp_dir().join(scenario)),
    };
    if let Some(t) = target {
        cmd.arg(t.to_string());
    }
    if !extra.contains(&"-i") {
        cmd.args(["-i", "127.0.0.1"]);
    }
    cmd.args(["-m", &calls.to_string()])
        .args([
            "-timeout",
            "30s",
            "-timeout_error",
            "-max_recv_loops",
            "1000",
        ])
        .args(["-nostdin", "-trace_err", "-trace_msg"])
        .arg("-error_file")
        .arg(&err)
        .arg("-message_file")
        .arg(&msg)
        .args(extra)
        .current_dir(work.path())
        .stdin(Stdio::null());
    if !extra.contains(&"-p") {
        cmd.args(["-p", &free_udp_port().to_string()]);
    }
    if !extra.contains(&"-mp") {
        cmd.args(["-mp", &free_media_port().to_string()]);
    }
    let out = cmd.output().expect("run sipp (apt-get install sip-tester)");
    SippRun {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        errors: std::fs::read_to_string(&err).unwrap_or_default(),
        messages: std::fs::read_to_string(&msg).unwrap_or_default(),
    }
}

/// Starts SIPp in the background (e.g. as a UAS standing in for a trunk or
/// an agent's phone). Killed on drop.
pub struct BackgroundSipp {
    child: Option<Child>,
    work: tempfile::TempDir,
    pub port: u16,
}

impl BackgroundSipp {
    pub fn start(scenario: &str, port: u16, calls: u32, extra: &[&str]) -> Self {
        let work = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(SIPP);
        match scenario.strip_prefix("sn:") {
            Some(name) => cmd.args(["-sn", name]),
            None => cmd.arg("-sf").arg(sipp_dir().join(scenario)),
        };
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-m",
                &calls.to_string(),
                "-timeout",
                "60s",
                "-timeout_error",
            ])
            .args(["-nostdin", "-trace_err", "-trace_msg"])
            .arg("-error_file")
            .arg(work.path().join("errors.log"))
            .arg("-message_file")
            .arg(work.path().join("messages.log"))
            .args(["-mp", &free_media_port().to_string()])
            .args(extra)
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start sipp");
        // Ready once it holds its port (UDP, or TCP with `-t t1`): a bind
        // of the same port then fails.
        // (Polled with a bound; a SIPp that exits early, e.g. on a bad
        // scenario, is reported at once.)
        let tcp = extra
            .windows(2)
            .any(|w| w[0] == "-t" && w[1].starts_with('t'));
        let free = |port: u16| {
            if tcp {
                std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            } else {
                UdpSocket::bind(("127.0.0.1", port)).is_ok()
            }
        };
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while free(port) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("sipp exited before binding port {port}: {status}");
            }
            assert!(
                std::time::Instant::now() < end,
                "sipp did not bind port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        BackgroundSipp {
            child: Some(child),
            work,
            port,
        }
    }

    /// Waits for SIPp to finish its calls (it exits after `-m`).
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.work.path().join("messages.log")).unwrap_or_default()
    }

    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.work.path().join("errors.log")).unwrap_or_default()
    }
}

impl Drop for BackgroundSipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `limit`;
/// panics with `what` when it never does. For conditions a test cannot be
/// told about (a row written after the call ended), instead of a fixed sleep.
#[track_caller]
pub fn await_some<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of a counter in `/metrics` (0 when absent).
pub fn metric(sw: &Switch, name: &str, token: Option<&str>) -> u64 {
    let (_, body) = http_get(sw.http, "/metrics", token);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Log-in calls as `tpswitch calls --logins --json` lists them, once there
/// are at least `n` (each is written when its call has ended).
pub fn login_calls(sw: &Switch, n: usize) -> Vec<serde_json::Value> {
    await_some(
        &format!("{n} log-in call records"),
        Duration::from_secs(10),
        || {
            let out = sw.cli(&["calls", "--logins", "--json", "--since", "1h"]);
            let rows: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let rows = rows.as_array()?.clone();
            (rows.len() >= n).then_some(rows)
        },
    )
}

/// A plain HTTP/1.1 GET; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    http_request(addr, "GET", path, token)
}

/// A plain HTTP/1.1 POST without a body; returns (status, body).
pub fn http_post(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    http_request(addr, "POST", path, token)
}

fn http_request(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the HTTP API");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let length = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}{length}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

// ------------------------------------------------------------ scenarios

/// One step of the agent's behaviour.
pub enum Step {
    Wait(u64),
    Key(char),
}

pub fn pcap(key: char) -> String {
    let name = match key {
        '*' => "star".to_owned(),
        '#' => "pound".to_owned(),
        d => d.to_string(),
    };
    format!("/usr/share/sip-tester/dtmf_2833_{name}.pcap")
}

/// Writes a log-in scenario: call from `caller`, run `steps`, then either
/// wait for the switch's BYE or hang up.
pub fn login_scenario(dir: &Path, caller: &str, steps: &[Step], switch_hangs_up: bool) -> PathBuf {
    let mut body = String::new();
    for s in steps {
        match s {
            Step::Wait(ms) => body.push_str(&format!("  <pause milliseconds=\"{ms}\"/>\n")),
            Step::Key(k) => body.push_str(&format!(
                "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"300\"/>\n",
                pcap(*k)
            )),
        }
    }
    let end = std::fs::read_to_string(sipp_dir().join(if switch_hangs_up {
        "login_end_bye.inc"
    } else {
        "login_end_hangup.inc"
    }))
    .expect("end include");
    let text = std::fs::read_to_string(sipp_dir().join("login.xml"))
        .expect("login.xml")
        .replace("@STEPS@", &body)
        .replace("@END@", &end)
        .replace("@CALLER@", caller);
    let path = dir.join("login.xml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

pub fn agents(sw: &Switch) -> serde_json::Value {
    let out = sw.cli(&["agents", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("agents JSON")
}

pub fn agent(sw: &Switch, id: &str) -> serde_json::Value {
    agents(sw)
        .as_array()
        .and_then(|a| a.iter().find(|u| u["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no agent {id}"))
}

// ------------------------------------------------------------ event stream

/// `GET /api/v1/events` on a raw TCP connection, as a browser's
/// EventSource reads it: the response's lines as they come, over a
/// channel (the stream never ends by itself; the reader thread ends with
/// the switch).
pub fn sse_lines(
    http: SocketAddr,
    token: Option<&str>,
    last_event_id: Option<u64>,
) -> mpsc::Receiver<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(http).expect("connect to the HTTP API");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let resume = last_event_id
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /api/v1/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{auth}{resume}\r\n"
    )
    .expect("send");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next event on the stream: (id, kind, data). Chunk-size lines of the
/// chunked response fall between events and are skipped.
pub fn sse_event(lines: &mpsc::Receiver<String>) -> (Option<u64>, String, serde_json::Value) {
    let mut id = None;
    let mut event = String::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("an event on the stream within 20 s");
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data: ") {
            let data = serde_json::from_str(v).expect("event data is JSON");
            return (id, event, data);
        }
    }
}

/// The next event of `kind`, skipping others: (id, data).
pub fn sse_event_of(
    lines: &mpsc::Receiver<String>,
    kind: &str,
) -> (Option<u64>, serde_json::Value) {
    for _ in 0..1000 {
        let (id, k, data) = sse_event(lines);
        if k == kind {
            return (id, data);
        }
    }
    panic!("no {kind} event in 1000");
}

/// An agent's phone in a SIPp UAS scenario: 180, then 200 with PCMA and
/// telephone-event, then the ACK (`agent_answer`).
const ANSWER: &str = r#"  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
@ACK@
"#;

/// The ACK; `capture` keeps its From and To for a BYE of our own (SIPp
/// refuses variables that are set but never used).
pub fn agent_answer(capture: bool) -> String {
    let ack = if capture {
        r#"  <recv request="ACK" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="swfrom"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="swto"/>
    </action>
  </recv>"#
    } else {
        r#"  <recv request="ACK" crlf="true"/>"#
    };
    ANSWER.replace("@ACK@", ack)
}
