//! OpenAPI conformance of `/api/v1` (issue 11): schemathesis generates
//! requests from the document the running binary serves at
//! `/api/v1/openapi.json` and checks each answer against it: no 5xx, a
//! documented status, the documented content type, and a body the
//! documented schema accepts; also that a request without the token is
//! refused, an invalid one is refused (4xx) and an undocumented method
//! gets 405.
//!
//! schemathesis comes from PyPI; `scripts/test` installs it into the venv
//! `target/schemathesis` (or set `TPSWITCH_SCHEMATHESIS` to the
//! executable). When it is not there the test fails and says how to get
//! it: a conformance test that passes without running proves nothing.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use tpswitch::presence::{
    CallUpdate, HungUpBy, NewAttempt, NewCall, PresenceStore, SipOutcome, Store,
};

/// The version `scripts/test` installs.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
const TOKEN: &str = "conformance-admin-token";
/// Examples per operation: enough to walk every parameter's kinds, few
/// enough to finish in well under two minutes on a busy machine.
const MAX_EXAMPLES: &str = "25";
/// The whole run's bound.
const RUN_LIMIT: Duration = Duration::from_secs(300);

fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("TPSWITCH_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    repo().join("target/schemathesis/bin/schemathesis")
}

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_689_600 + s, 0).expect("a time") // 2025-01-01
}

/// Calls of every kind in `db` before the switch opens it, so the list and
/// record schemas are checked against real rows (attempts, nulls, enums),
/// not only against empty lists.
fn seed(db: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let store = Store::open(db).await.expect("open the store");
        for (i, (outcome, bridged)) in [
            (Some("bridged"), true),
            (Some("abandoned"), false),
            (Some("overflow"), false),
            (None, false), // still waiting
        ]
        .into_iter()
        .enumerate()
        {
            let at = i64::try_from(i).unwrap_or(0) * 100;
            let id = store
                .insert_call(&NewCall {
                    call_id: format!("seed-{i}@127.0.0.1"),
                    flow: "Billing".into(),
                    customer_number: "+15550001111".into(),
                    contact_point: "+15550002222".into(),
                    started_at: t(at),
                    answered_at: Some(t(at)),
                })
                .await
                .expect("insert a call");
            store
                .insert_attempt(
                    id,
                    &NewAttempt {
                        agent_user_id: "jsmith".into(),
                        started_at: t(at + 1),
                        ring_ms: Some(1500),
                        sip_outcome: if bridged {
                            SipOutcome::Answered
                        } else {
                            SipOutcome::NoAnswer
                        },
                        sip_status: Some(if bridged { 200 } else { 408 }),
                        accept_latency_ms: bridged.then_some(700),
                        hangup_cause: Some(if bridged { "completed" } else { "no-answer" }.into()),
                        hung_up_by: bridged.then_some(HungUpBy::Customer),
                        sip_call_id: Some(format!("agent-{i}@127.0.0.1")),
                    },
                )
                .await
                .expect("insert an attempt");
            if outcome.is_some() {
                let update = CallUpdate {
                    bridged_at: bridged.then(|| t(at + 4)),
                    ended_at: Some(t(at + 60)),
                    outcome: outcome.map(str::to_owned),
                    hung_up_by: Some(HungUpBy::Customer),
                    ..CallUpdate::default()
                };
                store.update_call(id, &update).await.expect("end a call");
            }
        }
        store.close().await;
    });
}

#[test]
fn every_route_conforms_to_the_openapi_document() {
    let exe = schemathesis();
    assert!(
        exe.is_file(),
        "schemathesis is not installed at {}: run scripts/test, which installs it, or\n  \
         python3 -m venv target/schemathesis && target/schemathesis/bin/pip install '{SCHEMATHESIS}'\n\
         (Debian needs python3-venv; pip needs to reach PyPI). This test does not pass without it.",
        exe.display()
    );
    let seeded = tempfile::tempdir().expect("tempdir");
    let db = seeded.path().join("tpswitch.db");
    seed(&db);
    let sw = Switch::start_env(free_udp_port(), &[("TPSWITCH_API_TOKEN", TOKEN)], |text| {
        // The store the seed wrote, in place of the per-test one.
        text.lines()
            .map(|l| {
                if l.starts_with("path = \"") && l.contains("tpswitch.db") {
                    format!("path = \"{}\"", db.display())
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let base = format!("http://{}", sw.http);
    let work = tempfile::tempdir().expect("tempdir");
    let junit = work.path().join("junit.xml");
    let mut child = Command::new(&exe)
        .current_dir(work.path())
        // No telemetry; derandomized (the same examples each run, and no
        // Hypothesis database left behind).
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .arg("--no-color")
        .args(["run", &format!("{base}/api/v1/openapi.json")])
        .args(["--url", &base])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,ignored_auth,negative_data_rejection,unsupported_method",
        ])
        // Valid and invalid requests: a bad one must get a documented
        // problem, not a 500 or an undocumented status.
        .args(["--mode", "all"])
        // Audio uploads have no serializer in schemathesis (it stops with
        // "Serialization not possible" on audio/wav); the route is proven
        // by api::v1::prompts::tests and tests/directory_interop.rs.
        .args(["--exclude-name", "PUT /api/v1/prompts/{name}"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", "1"])
        .args(["--request-timeout", "10"])
        .args(["--report", "junit"])
        .arg("--report-junit-path")
        .arg(&junit)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = child.wait_with_output().expect("schemathesis output");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(status) = status else {
        panic!("schemathesis ran over {} s:\n{report}", RUN_LIMIT.as_secs());
    };
    assert!(
        status.success(),
        "schemathesis found non-conforming answers ({status}):\n{report}\n--- switch log\n{}",
        sw.log()
    );
    // It really tested every route (not an empty document or zero
    // examples): each operation is a test case of the JUnit report.
    let junit = std::fs::read_to_string(&junit).unwrap_or_default();
    for op in [
        "GET /api/v1/calls\"",
        "GET /api/v1/calls/{id}\"",
        "GET /api/v1/queues/stats\"",
        "POST /api/v1/reload\"",
        "GET /api/v1/agents\"",
        "GET /api/v1/floor\"",
        "PUT /api/v1/agents/{id}/presence\"",
        "GET /api/v1/agents/{id}/history\"",
        "GET /api/v1/users\"",
        "PUT /api/v1/users/{id}\"",
        "GET /api/v1/dispatch-mappings\"",
        "GET /api/v1/flows\"",
    ] {
        assert!(
            junit.contains(op),
            "{op:?} was not tested:\n{junit}\n{report}"
        );
    }
}
