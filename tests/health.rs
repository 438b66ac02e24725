//! `/healthz` and `/readyz` on the real binary (issue 11): health says the
//! process is up; readiness says whether a load balancer may send calls.

mod common;

use std::time::Duration;

use common::*;

fn readyz(sw: &Switch) -> (u16, serde_json::Value) {
    let (status, body) = http_get(sw.http, "/readyz", None);
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("/readyz body is not JSON ({e}): {body:?}"));
    (status, json)
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
}

/// A healthy switch is ready without a token, and says why check by check.
#[test]
fn a_healthy_switch_is_ready_without_a_token() {
    let sw = Switch::start_env(free_udp_port(), &[("TPSWITCH_API_TOKEN", "s3cret")], |t| t);
    let (status, report) = readyz(&sw);
    assert_eq!(status, 200, "{report}\n{}", sw.log());
    assert_eq!(report["ready"], true);
    for name in ["draining", "sip", "store", "prompts"] {
        assert_eq!(check(&report, name)["ok"], true, "{report}");
    }
    assert_eq!(http_get(sw.http, "/healthz", None), (200, "ok\n".into()));
    // The token is really in force: the rest of the API still wants it.
    assert_eq!(http_get(sw.http, "/metrics", None).0, 401);
}

/// `register = true` with no registrar answering: the process is up
/// (`/healthz` 200) but not ready, and `/readyz` names the registration.
#[test]
fn an_unanswered_registration_makes_it_unready() {
    // Nothing listens on the trunk's port.
    let sw = Switch::start_env(free_udp_port(), &[("TPSWITCH_TRUNK_PASSWORD", "pw")], |t| {
        t.replace_exact("username = \"\"", "username = \"tpswitch\"")
            .replace_exact(
            "register = false",
            "register = true\nregister_domain = \"carrier.test\"\nregister_retry = \"1s\"\nregister_retry_max = \"2s\"",
        )
    });
    let report = await_some(
        "/readyz naming the registration",
        Duration::from_secs(10),
        || {
            let (status, report) = readyz(&sw);
            assert_eq!(status, 503, "{report}");
            (check(&report, "registration")["ok"] == false).then_some(report)
        },
    );
    assert_eq!(report["ready"], false);
    let detail = check(&report, "registration")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.starts_with("trunk carrier "), "{report}");
    assert_eq!(check(&report, "store")["ok"], true, "{report}");
    assert_eq!(http_get(sw.http, "/healthz", None).0, 200);
}

/// From the first SIGTERM on, `/readyz` says 503 "draining" while a call
/// in progress finishes, so a load balancer stops sending before the 503s.
#[test]
fn readyz_says_draining_after_sigterm_while_a_call_finishes() {
    let mut sw = Switch::start(|t| t);
    assert_eq!(readyz(&sw).0, 200, "{}", sw.log());
    let dir = tempfile::tempdir().unwrap();
    // A log-in call that stays in the menu for 3 s, then hangs up itself.
    let sc = login_scenario(dir.path(), "+12345678910", &[Step::Wait(3000)], false);
    let sip = sw.sip;
    let caller = std::thread::spawn(move || {
        sipp(sc.to_str().unwrap(), Some(sip), 1, &["-s", "+15550100000"])
    });
    await_some(
        "the log-in call in progress",
        Duration::from_secs(10),
        || (metric(&sw, "tpswitch_legs_active{direction=\"inbound\"}", None) >= 1).then_some(()),
    );
    sw.signal("TERM");
    let report = await_some("/readyz draining", Duration::from_secs(3), || {
        let (status, report) = readyz(&sw);
        (status == 503).then_some(report)
    });
    assert_eq!(check(&report, "draining")["ok"], false, "{report}");
    assert_eq!(report["ready"], false);
    caller.join().unwrap().assert_ok(&sw);
    let status = sw
        .wait_exit(Duration::from_secs(10))
        .expect("exit after the drain");
    assert!(status.success(), "{status:?}");
}
