//! Start-up of the real binary: which config it reads and says it read,
//! what it refuses before touching the store or a port, the store lock,
//! and SIGHUP.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn tpswitch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tpswitch"));
    // The tests' own environment must not choose a config or a token.
    c.env_remove("TPSWITCH_CONFIG")
        .env_remove("TPSWITCH_API_TOKEN")
        .env_remove("TPSWITCH_TRUNK_PASSWORD");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `text` with `from` replaced once; fails when `from` is not there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in the config");
    text.replacen(from, to, 1)
}

/// A test config in `dir`, edited by `f`; returns its path.
fn write_config(dir: &Path, f: impl FnOnce(String) -> String) -> std::path::PathBuf {
    let path = dir.join("tpswitch.toml");
    std::fs::write(&path, test_config(dir, free_udp_port(), f)).unwrap();
    path
}

/// Waits (bounded) for a process started with piped output to exit.
fn finish(mut child: std::process::Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "did not exit in 20 s\n--- stdout\n{}\n--- stderr\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn check_config_help_describes_config() {
    for sub in ["check-config", "agents", "calls", "run"] {
        let out = tpswitch().args([sub, "--help"]).output().unwrap();
        let help = text(&out.stdout);
        let line = help
            .lines()
            .find(|l| l.contains("--config"))
            .unwrap_or_else(|| panic!("{sub}: {help}"));
        assert!(line.contains("Configuration file"), "{sub}: {help}");
        assert!(help.contains("TPSWITCH_CONFIG"), "{sub}: {help}");
    }
}

#[test]
fn config_is_looked_up_like_a_daemon_and_named_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let local = dir.path().join("config/tpswitch.toml");
    std::fs::write(&local, test_config(dir.path(), 5080, |t| t)).unwrap();
    let other = tempfile::tempdir().unwrap();
    let env_file = write_config(other.path(), |t| t);

    // ./config/tpswitch.toml from the working directory.
    let out = tpswitch()
        .arg("check-config")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let so = text(&out.stdout);
    assert!(out.status.success(), "{so}{}", text(&out.stderr));
    let first = so.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("tpswitch: config ")
            && first.ends_with("config/tpswitch.toml (from ./config/tpswitch.toml)"),
        "{so}"
    );
    // TPSWITCH_CONFIG before ./config.
    let out = tpswitch()
        .arg("check-config")
        .current_dir(dir.path())
        .env("TPSWITCH_CONFIG", &env_file)
        .output()
        .unwrap();
    let so = text(&out.stdout);
    assert_eq!(
        so.lines().next().unwrap_or_default(),
        format!(
            "tpswitch: config {} (from TPSWITCH_CONFIG)",
            env_file.display()
        ),
        "{so}"
    );
    // --config before both.
    let out = tpswitch()
        .args(["check-config", "--config"])
        .arg(&local)
        .current_dir(dir.path())
        .env("TPSWITCH_CONFIG", &env_file)
        .output()
        .unwrap();
    let so = text(&out.stdout);
    assert_eq!(
        so.lines().next().unwrap_or_default(),
        format!("tpswitch: config {} (from --config)", local.display()),
        "{so}"
    );
    // JSON output stays JSON: the config line goes to stderr.
    let out = tpswitch()
        .args(["agents", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("agents JSON");
    assert!(v.is_array(), "{v}");
    assert!(
        text(&out.stderr).starts_with("tpswitch: config "),
        "{}",
        text(&out.stderr)
    );
    let out = tpswitch()
        .arg("agents")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(text(&out.stdout).starts_with("tpswitch: config "));

    // Nothing anywhere: say where we looked. (Only where this machine has
    // no /etc/tpswitch/tpswitch.toml of its own.)
    if !Path::new("/etc/tpswitch/tpswitch.toml").exists() {
        let empty = tempfile::tempdir().unwrap();
        let out = tpswitch()
            .arg("check-config")
            .current_dir(empty.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let e = text(&out.stderr);
        assert!(
            e.contains("no configuration file") && e.contains("/etc/tpswitch/tpswitch.toml"),
            "{e}"
        );
    }
}

type Edit = dyn Fn(String) -> String;
type Env = &'static [(&'static str, &'static str)];

#[test]
fn check_config_refuses_what_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Box<Edit>, Env, &str)> = vec![
        (
            // RFC 6761 §6.4: `.invalid` never resolves. The port skips
            // NAPTR and SRV (RFC 3263 §4.2), so only A/AAAA are asked.
            "trunk name that does not resolve",
            Box::new(|t| {
                edit(
                    &t,
                    "outbound_proxy = \"sip:127.0.0.1:",
                    "outbound_proxy = \"sip:nowhere.invalid:",
                )
            }),
            &[],
            "does not resolve (asked A/AAAA nowhere.invalid); check the name and the DNS server",
        ),
        (
            "password variable unset",
            Box::new(|t| edit(&t, "username = \"\"", "username = \"carrier\"")),
            &[],
            "trunk.password_env: names TPSWITCH_TRUNK_PASSWORD, which is not set",
        ),
        (
            "empty API token",
            Box::new(|t| t),
            &[("TPSWITCH_API_TOKEN", "")],
            "http.token_env: names TPSWITCH_API_TOKEN, which is set but empty",
        ),
        (
            "overflow outside allow_dial",
            Box::new(|t| {
                edit(
                    &t,
                    "overflow_number = \"\"",
                    "overflow_number = \"+15550109999\"",
                )
            }),
            &[],
            ".overflow_number: +15550109999 is neither a user's PSTN number nor in trunk.allow_dial",
        ),
        (
            "TLS certificate file missing",
            Box::new(|t| {
                edit(
                    &t,
                    "answer_delay = \"0s\"",
                    "answer_delay = \"0s\"\ntls_bind = \"127.0.0.1:0\"\ntls_certificate = \"tls/none.pem\"\ntls_private_key = \"tls/none-key.pem\"",
                )
            }),
            &[],
            "sip.tls_certificate: cannot read ",
        ),
    ];
    for (what, f, envs, want) in cases {
        let config = write_config(dir.path(), f);
        for sub in ["check-config", "run"] {
            let out = tpswitch()
                .args([sub, "--config"])
                .arg(&config)
                .envs(envs.iter().copied())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let e = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}, {sub}: {e}");
            assert!(e.contains(want), "{what}, {sub}: {e}");
            assert!(!text(&out.stdout).contains("listening"), "{what}, {sub}");
        }
        // Refused before the store was created or locked.
        assert!(!dir.path().join("tpswitch.db").exists(), "{what}");
        assert!(!dir.path().join("tpswitch.db.lock").exists(), "{what}");
    }
}

#[test]
fn config_without_subcommand_runs_and_sip_bind_takes_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), |t| t);
    let mut child = tpswitch()
        .arg("--config")
        .arg(&config)
        .args(["--sip-bind", "localhost:0", "--http-bind", "localhost:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let done = line.starts_with("tpswitch listening http=");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        lines.first().map(String::as_str),
        Some(format!("tpswitch: config {} (from --config)", config.display()).as_str()),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tpswitch listening sip=127.0.0.1:")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tpswitch listening http=127.0.0.1:")),
        "{lines:?}"
    );
}

#[test]
fn second_run_on_one_store_is_refused_naming_the_first() {
    let first = Switch::start(|t| t);
    let out = finish(
        tpswitch()
            .args(["run", "--config"])
            .arg(&first.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let e = text(&out.stderr);
    assert!(!out.status.success(), "{e}");
    assert!(e.contains(&format!("pid {}", first.pid())), "{e}");
    assert!(e.contains("in use by another tpswitch"), "{e}");
    // Refused before any timer or port: it never got as far as listening
    // or re-arming expiries.
    assert!(
        !text(&out.stdout).contains("listening"),
        "{}",
        text(&out.stdout)
    );
    assert!(!e.contains("presence store open"), "{e}");
}
