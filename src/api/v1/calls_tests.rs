//! `GET /api/v1/calls` and `/api/v1/calls/{id}` through the whole router.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};

use crate::api::testing::{self, call, Answer, ADMIN, SUPERVISOR, VIEWER};
use crate::api::ApiState;
use crate::presence::{CallUpdate, NewAttempt, NewCall, PresenceStore, SipOutcome};

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_689_600 + s, 0).unwrap() // 2025-01-01T00:00:00Z
}

/// A call of `flow` at `at` s, rung to `agents` in turn; the last one
/// answers and completes it.
async fn add(s: &ApiState, flow: &str, at: i64, agents: &[&str]) -> i64 {
    let id = s
        .store
        .insert_call(&NewCall {
            call_id: format!("cust-{at}"),
            flow: flow.into(),
            customer_number: "+15550001111".into(),
            contact_point: "+15550002222".into(),
            started_at: t(at),
            answered_at: Some(t(at)),
        })
        .await
        .unwrap();
    for (i, agent) in agents.iter().enumerate() {
        let last = i + 1 == agents.len();
        s.store
            .insert_attempt(
                id,
                &NewAttempt {
                    agent_user_id: (*agent).into(),
                    started_at: t(at + 1),
                    ring_ms: Some(2000),
                    sip_outcome: if last {
                        SipOutcome::Answered
                    } else {
                        SipOutcome::NoAnswer
                    },
                    sip_status: Some(if last { 200 } else { 408 }),
                    accept_latency_ms: last.then_some(500),
                    hangup_cause: Some(if last { "completed" } else { "no-answer" }.into()),
                    hung_up_by: None,
                    sip_call_id: None,
                },
            )
            .await
            .unwrap();
    }
    if !agents.is_empty() {
        let update = CallUpdate {
            bridged_at: Some(t(at + 4)),
            ended_at: Some(t(at + 60)),
            outcome: Some("bridged".into()),
            ..CallUpdate::default()
        };
        s.store.update_call(id, &update).await.unwrap();
    }
    id
}

async fn get(s: &Arc<ApiState>, uri: &str, token: Option<&str>) -> Answer {
    call(s, Method::GET, uri, token, None).await
}

fn ids(a: &Answer) -> Vec<i64> {
    a.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", a.json))
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect()
}

#[tokio::test]
async fn calls_need_a_token_and_every_role_reads_them() {
    let s = testing::state().await;
    add(&s, "Billing", 0, &["jsmith"]).await;
    let a = get(&s, "/api/v1/calls", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(
        get(&s, "/api/v1/calls/1", Some("wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    for token in [VIEWER, SUPERVISOR, ADMIN] {
        let a = get(&s, "/api/v1/calls", Some(token)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        assert_eq!(a.content_type, "application/json");
        assert_eq!(a.json["items"].as_array().map(Vec::len), Some(1));
    }
}

/// A record carries its attempts and the agent who took it; one record
/// by id; an id no call has is a 404 problem.
#[tokio::test]
async fn a_call_comes_with_its_attempts_and_its_agent() {
    let s = testing::state().await;
    let id = add(&s, "Billing", 0, &["amy", "jsmith"]).await;
    let a = get(&s, &format!("/api/v1/calls/{id}"), Some(VIEWER)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["id"], id);
    assert_eq!(a.json["agent"], "jsmith");
    assert_eq!(a.json["started_at"], "2025-01-01T00:00:00.000Z");
    assert_eq!(a.json["wait_ms"], 4000);
    let attempts = a.json["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["agent_user_id"], "amy");
    assert_eq!(attempts[0]["sip_outcome"], "no-answer");
    assert_eq!(attempts[1]["sip_status"], 200);

    for missing in ["999", "abc", "99999999999999999999999"] {
        let a = get(&s, &format!("/api/v1/calls/{missing}"), Some(VIEWER)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{missing}: {}", a.json);
        assert_eq!(a.content_type, "application/problem+json");
    }
}

/// Newest first, page by page, each call once, whatever is added between
/// two pages.
#[tokio::test]
async fn pages_walk_the_calls_newest_first() {
    let s = testing::state().await;
    let mut all = Vec::new();
    for at in [0, 10, 10, 20, 30] {
        all.push(add(&s, "Billing", at, &[]).await);
    }
    let first = get(&s, "/api/v1/calls?limit=2", Some(VIEWER)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json);
    // Two calls at 10 s: the later id first.
    assert_eq!(ids(&first), [all[4], all[3]]);
    // A newer call after the first page is not on the next ones.
    add(&s, "Billing", 40, &[]).await;
    let mut seen = ids(&first);
    let mut cursor = first.json["next_cursor"].as_str().map(str::to_owned);
    for _ in 0..5 {
        let Some(c) = cursor else { break };
        let a = get(
            &s,
            &format!("/api/v1/calls?limit=2&cursor={c}"),
            Some(VIEWER),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        seen.extend(ids(&a));
        cursor = a.json["next_cursor"].as_str().map(str::to_owned);
    }
    let mut newest_first = all.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
}

#[tokio::test]
async fn filters_select_by_time_agent_and_flow() {
    let s = testing::state().await;
    let a0 = add(&s, "Billing", 0, &["amy"]).await;
    let a1 = add(&s, "Billing", 100, &["amy", "jsmith"]).await;
    let a2 = add(&s, "Sales", 200, &["jsmith"]).await;
    let q = |query: &str| format!("/api/v1/calls?{query}");
    for (query, want) in [
        ("since=2025-01-01T00:01:40Z", vec![a2, a1]),
        ("until=2025-01-01T00:01:40Z", vec![a0]),
        // An offset is a time like any other: 01:01:40+01:00 is 00:01:40Z.
        (
            "since=2025-01-01T01:01:40%2B01:00&until=2025-01-01T00:03:20Z",
            vec![a1],
        ),
        // An agent who missed the call still finds it.
        ("agent=amy", vec![a1, a0]),
        ("agent=jsmith&flow=Billing", vec![a1]),
        ("flow=Sales", vec![a2]),
        ("flow=Nothing", vec![]),
    ] {
        let a = get(&s, &q(query), Some(VIEWER)).await;
        assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.json);
        assert_eq!(ids(&a), want, "{query}");
        assert!(a.json["next_cursor"].is_null(), "{query}: {}", a.json);
    }
}

/// Each bad filter is a 422 problem naming it; several at once are all
/// named.
#[tokio::test]
async fn bad_filters_are_problems_naming_the_parameter() {
    let s = testing::state().await;
    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2025-13-01T00:00:00Z", "until"),
        (
            "since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z",
            "until",
        ),
        ("agent=", "agent"),
        ("flow=%20", "flow"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=not-ours", "cursor"),
    ] {
        let a = get(&s, &format!("/api/v1/calls?{query}"), Some(VIEWER)).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            a.json
        );
        assert_eq!(a.content_type, "application/problem+json", "{query}");
        assert_eq!(a.json["errors"][0]["field"], field, "{query}: {}", a.json);
    }
    let a = get(&s, "/api/v1/calls?since=x&agent=&limit=0", Some(VIEWER)).await;
    let fields: Vec<&str> = a.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["since", "agent", "limit"], "{}", a.json);
}

/// `tpswitch calls` reads the same rows through the same query: oldest
/// first there, newest first here.
#[tokio::test]
async fn the_report_and_the_api_read_the_same_rows() {
    let s = testing::state().await;
    let a = add(&s, "Billing", 0, &["amy"]).await;
    let b = add(&s, "Billing", 5, &["amy"]).await;
    let report = s.store.calls_since(t(0), 10).await.unwrap();
    assert_eq!(report.iter().map(|c| c.id).collect::<Vec<_>>(), [a, b]);
    let api = get(&s, "/api/v1/calls", Some(VIEWER)).await;
    assert_eq!(ids(&api), [b, a]);
}
