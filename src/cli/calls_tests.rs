//! `tpswitch calls` against temporary databases.

use super::*;
use crate::presence::Store;
use crate::presence::{CallUpdate, HungUpBy, NewAttempt, NewCall, SipOutcome};
use chrono::TimeZone;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn cfg_with_db(dir: &tempfile::TempDir) -> Config {
    let mut c = Config::embedded_default().unwrap();
    c.store.path = dir.path().join("data/tpswitch.db");
    c
}

#[test]
fn since_takes_rfc3339_or_a_duration_ago() {
    let now = t(10_000);
    assert_eq!(
        parse_since(None, now).unwrap(),
        now - chrono::Duration::hours(24)
    );
    assert_eq!(parse_since(Some("1h"), now).unwrap(), t(10_000 - 3600));
    assert_eq!(parse_since(Some("1h30m"), now).unwrap(), t(10_000 - 5400));
    assert_eq!(
        parse_since(Some("2023-11-14T22:13:20Z"), now).unwrap(),
        t(0)
    );
    assert_eq!(
        parse_since(Some("2023-11-14T23:13:20+01:00"), now).unwrap(),
        t(0)
    );
    let e = parse_since(Some("yesterday"), now).unwrap_err().to_string();
    assert!(e.contains("--since") && e.contains("RFC 3339"), "{e}");
    assert!(parse_since(Some(""), now).is_err());
    assert_eq!(
        parse_since(Some("2d"), now).unwrap(),
        t(10_000 - 2 * 86_400)
    );
    assert_eq!(
        parse_since(Some("1w"), now).unwrap(),
        t(10_000 - 7 * 86_400)
    );
    assert!(parse_since(Some("d"), now).is_err());
    assert!(parse_since(Some("-2d"), now).is_err());
    assert!(parse_since(Some("99999999999999999d"), now).is_err());
}

#[tokio::test]
async fn no_database_yet_means_no_calls() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    let out = calls_report(&cfg, true, t(0)).await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!([])
    );
    assert!(calls_report(&cfg, false, t(0))
        .await
        .unwrap()
        .contains("(no calls)"));
    assert!(
        !cfg.store.path.exists(),
        "a report must not create the store"
    );
}

#[tokio::test]
async fn calls_come_with_their_attempts_and_since_filters() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    let store = Store::open(&cfg.store.path).await.unwrap();
    let old = store
        .insert_call(&NewCall {
            call_id: "old@x".into(),
            flow: "Billing".into(),
            customer_number: "+15551230000".into(),
            contact_point: "+15550100001".into(),
            started_at: t(0),
            answered_at: None,
        })
        .await
        .unwrap();
    store
        .update_call(
            old,
            &CallUpdate {
                ended_at: Some(t(5)),
                outcome: Some("overflow".into()),
                hung_up_by: Some(HungUpBy::Switch),
                ..CallUpdate::default()
            },
        )
        .await
        .unwrap();
    let id = store
        .insert_call(&NewCall {
            call_id: "new@x".into(),
            flow: "Billing".into(),
            customer_number: "+15551239999".into(),
            contact_point: "+15550100001".into(),
            started_at: t(100),
            answered_at: None,
        })
        .await
        .unwrap();
    for (user, outcome, cause) in [
        ("mgarcia", SipOutcome::NoAnswer, "ring-timeout"),
        ("jsmith", SipOutcome::Answered, "completed"),
    ] {
        store
            .insert_attempt(
                id,
                &NewAttempt {
                    agent_user_id: user.into(),
                    started_at: t(101),
                    ring_ms: Some(1500),
                    sip_outcome: outcome,
                    sip_status: None,
                    accept_latency_ms: None,
                    hangup_cause: Some(cause.into()),
                    hung_up_by: None,
                    sip_call_id: Some(format!("{user}@tpswitch")),
                },
            )
            .await
            .unwrap();
    }
    store
        .update_call(
            id,
            &CallUpdate {
                ended_at: Some(t(190)),
                outcome: Some("bridged".into()),
                hung_up_by: Some(HungUpBy::Customer),
                ..CallUpdate::default()
            },
        )
        .await
        .unwrap();
    store.close().await;

    let all: serde_json::Value =
        serde_json::from_str(&calls_report(&cfg, true, t(0)).await.unwrap()).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["outcome"], "overflow");
    assert!(all[0]["agent"].is_null());
    assert_eq!(all[1]["agent"], "jsmith");
    assert_eq!(all[1]["call_id"], "new@x");
    assert_eq!(all[1]["attempts"][0]["agent_user_id"], "mgarcia");
    assert_eq!(all[1]["attempts"][1]["agent_user_id"], "jsmith");
    assert_eq!(all[1]["attempts"][1]["hangup_cause"], "completed");
    // `calls --json` shows each leg's SIP Call-ID, for a carrier's trace.
    assert_eq!(all[1]["attempts"][1]["sip_call_id"], "jsmith@tpswitch");
    assert_eq!(all[1]["hung_up_by"], "customer");

    let recent: serde_json::Value =
        serde_json::from_str(&calls_report(&cfg, true, t(50)).await.unwrap()).unwrap();
    assert_eq!(recent.as_array().unwrap().len(), 1);

    let table = calls_report(&cfg, false, t(0)).await.unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("STARTED"));
    assert!(
        lines[2].contains("bridged") && lines[2].contains("jsmith"),
        "{table}"
    );
    assert!(lines[2].contains("1m30s"), "{table}");
    assert!(
        lines[1].contains("overflow") && lines[1].contains(" - "),
        "{table}"
    );
}

#[tokio::test]
async fn a_live_bridged_call_shows_its_agent_attempts_and_wait() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    let store = Store::open(&cfg.store.path).await.unwrap();
    let id = store
        .insert_call(&NewCall {
            call_id: "live@x".into(),
            flow: "Billing".into(),
            customer_number: "+15551230000".into(),
            contact_point: "+15550100001".into(),
            started_at: t(0),
            answered_at: Some(t(0)),
        })
        .await
        .unwrap();
    // The first agent did not answer; the second is bridged, call going on.
    let missed = store.start_attempt(id, "mgarcia", t(1)).await.unwrap();
    store
        .finish_attempt(
            missed,
            &NewAttempt {
                agent_user_id: "mgarcia".into(),
                started_at: t(1),
                ring_ms: Some(20_000),
                sip_outcome: SipOutcome::NoAnswer,
                sip_status: Some(487),
                accept_latency_ms: None,
                hangup_cause: Some("ring-timeout".into()),
                hung_up_by: None,
                sip_call_id: None,
            },
        )
        .await
        .unwrap();
    store.start_attempt(id, "jsmith", t(21)).await.unwrap();
    store
        .update_call(
            id,
            &CallUpdate {
                bridged_at: Some(t(35)),
                ..CallUpdate::default()
            },
        )
        .await
        .unwrap();
    store.close().await;

    let json: serde_json::Value =
        serde_json::from_str(&calls_report(&cfg, true, t(0)).await.unwrap()).unwrap();
    assert_eq!(json[0]["agent"], "jsmith");
    assert_eq!(json[0]["attempts"].as_array().unwrap().len(), 2);
    assert!(json[0]["attempts"][1]["sip_outcome"].is_null());
    assert_eq!(json[0]["wait_ms"], 35_000);
    let table = calls_report(&cfg, false, t(0)).await.unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("WAIT"), "{table}");
    for want in ["bridged (live)", "jsmith", "35s", "in progress"] {
        assert!(lines[1].contains(want), "{want}: {table}");
    }
}

#[tokio::test]
async fn logins_list_caller_agent_and_outcome() {
    use crate::config::CallerIdTrust;
    use crate::presence::{CallerIdCheck, CallerIdRecord, LoginOutcome, NewLoginCall};
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    assert!(logins_report(&cfg, false, t(0))
        .await
        .unwrap()
        .contains("(no log-in calls)"));
    let store = Store::open(&cfg.store.path).await.unwrap();
    for (i, (caller, agent, outcome, hours)) in [
        (
            "+12345678910",
            Some("jsmith"),
            LoginOutcome::Online,
            Some(8),
        ),
        ("+19998887777", None, LoginOutcome::UnknownCaller, None),
        ("", None, LoginOutcome::Withheld, None),
        (
            "+12345678910",
            Some("jsmith"),
            LoginOutcome::PinFailed,
            None,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let at = i64::try_from(i).unwrap() * 60;
        store
            .insert_login_call(&NewLoginCall {
                call_id: format!("l{i}@x"),
                caller: caller.into(),
                agent_user_id: agent.map(str::to_owned),
                outcome,
                hours,
                started_at: t(at),
                ended_at: t(at + 12),
                trust: CallerIdRecord {
                    caller_id_trust: CallerIdTrust::Attested,
                    attested: i == 0,
                    caller_id: agent.map(|_| {
                        if i == 0 {
                            CallerIdCheck::Attested
                        } else {
                            CallerIdCheck::Pin
                        }
                    }),
                },
            })
            .await
            .unwrap();
    }
    store.close().await;
    let table = logins_report(&cfg, false, t(0)).await.unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("STARTED") && lines[0].contains("OUTCOME"));
    assert!(
        lines[1].contains("jsmith") && lines[1].contains("online 8 h"),
        "{table}"
    );
    assert!(lines[1].contains("12s"), "{table}");
    assert!(lines[2].contains("unknown caller"), "{table}");
    assert!(lines[3].contains("withheld"), "{table}");
    assert!(lines[4].contains("PIN failed"), "{table}");
    assert!(lines[0].contains("CALLER ID"), "{table}");
    assert!(lines[1].contains("attested (attested)"), "{table}");
    assert!(lines[4].contains("pin (attested)"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&logins_report(&cfg, true, t(0)).await.unwrap()).unwrap();
    assert_eq!(json[0]["outcome"], "online");
    assert_eq!(json[0]["hours"], 8);
    assert_eq!(json[3]["outcome"], "pin-failed");
    assert!(json[1]["agent_user_id"].is_null());
    assert_eq!(json[0]["caller_id"], "attested");
    assert_eq!(json[0]["caller_id_trust"], "attested");
    assert_eq!(json[0]["attested"], true);
    assert_eq!(json[3]["caller_id"], "pin");
    assert_eq!(json[3]["attested"], false);
    assert!(json[1]["caller_id"].is_null());
}
