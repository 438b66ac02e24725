//! Faults (issue 12), short forms of the bench/ runs against this build's
//! binary: `kill -9` during log-ins under load, and a store that cannot
//! write during load. The long forms are `bench/kill9_rounds.sh 200` and
//! `bench/store_fault.sh`; what each round checks is in the Python script
//! beside them, which these tests run unchanged.

mod common;

use std::process::{Command, Output};

use common::*;

/// Runs `bench/NAME.py ARG` with this build's binary and free ports.
fn bench(name: &str, arg: &str, envs: &[(&str, &str)]) -> (Output, String) {
    let port = free_udp_port().to_string();
    let sipp_port = free_udp_port().to_string();
    let media_port = free_media_port().to_string();
    let out = Command::new("python3")
        .arg(repo().join(format!("bench/{name}.py")))
        .arg(arg)
        .env("TPSWITCH_BIN", env!("CARGO_BIN_EXE_tpswitch"))
        .env("PORT", &port)
        .env("SIPP_PORT", &sipp_port)
        .env("MEDIA_PORT", &media_port)
        .envs(envs.iter().copied())
        .output()
        .expect("run python3 (Debian: python3)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// Five rounds of SIGKILL at a random point of a log-in load: after each
/// restart every window the killed switch confirmed is in the store, the
/// store passes `PRAGMA integrity_check`, "recovered armed=N" matches the
/// open windows, and /readyz is 200.
#[test]
fn kill9_during_log_ins_loses_no_confirmed_window() {
    let (out, text) = bench("kill9_rounds", "5", &[]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("kill9: 5 rounds ok"), "{text}");
}

/// The check above can fail: a confirmed window moved a minute back in the
/// store between the kill and the restart is reported, naming the agent.
#[test]
fn the_kill9_check_sees_a_window_the_store_lost() {
    // Long enough before the kill that some window is confirmed.
    let (out, text) = bench(
        "kill9_rounds",
        "1",
        &[("SABOTAGE", "1"), ("MIN_DELAY", "2"), ("MAX_DELAY", "3")],
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("the store has an older one ending"), "{text}");
}

/// The store's tmpfs filled and freed three times during log-in load: the
/// calls that could not be saved end with the error prompt, never Online;
/// the log says so once per fault (and per 10 s), not once per call;
/// /readyz is 503 during each fault and 200 after, with no restart; every
/// confirmed window is there at the end. Needs root (a tmpfs in a private
/// mount namespace), as CI runs; the script says so and exits 2 otherwise.
#[test]
fn a_store_that_cannot_write_refuses_log_ins_then_takes_them_again() {
    let (out, text) = bench("store_fault", "3", &[]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("store_fault: ok"), "{text}");
}
