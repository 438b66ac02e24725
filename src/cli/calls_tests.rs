//! `tpswitch calls` against temporary databases.

use super::*;
use crate::presence::SqliteStore;
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
    let store = SqliteStore::open(&cfg.store.path).await.unwrap();
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
