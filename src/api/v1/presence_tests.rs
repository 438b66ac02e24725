//! Route tests: supervisors' presence actions and the history, through the
//! whole router (auth, extractors, problems) and a running presence
//! service on an in-memory store.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::api::testing::{self, call, Answer, ADMIN, SUPERVISOR, VIEWER};
use crate::presence::PresenceStore;

const PRESENCE: &str = "/api/v1/agents/jsmith/presence";
const HISTORY: &str = "/api/v1/agents/jsmith/history";

fn set(minutes: i64, reason: &str) -> Option<serde_json::Value> {
    Some(json!({"minutes": minutes, "reason": reason}))
}

/// The one field a 422 names, checking it is a problem.
fn field_of(a: &Answer) -> String {
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.json);
    assert_eq!(a.content_type, "application/problem+json");
    let errors = a.json["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{}", a.json);
    assert!(
        !errors[0]["fix"].as_str().unwrap_or_default().is_empty(),
        "{}",
        a.json
    );
    errors[0]["field"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn presence_actions_need_a_supervisor_and_history_a_viewer() {
    let s = testing::state().await;
    for method in [Method::PUT, Method::DELETE] {
        let a = call(&s, method.clone(), PRESENCE, None, set(60, "x")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method}");
        assert_eq!(a.content_type, "application/problem+json");
        let a = call(&s, method.clone(), PRESENCE, Some(VIEWER), set(60, "x")).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method}");
        assert_eq!(a.json["type"], "/api/v1/problems/forbidden");
    }
    assert_eq!(
        call(&s, Method::GET, HISTORY, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Nothing was changed by the refused requests.
    assert!(s.store.history("jsmith", 10).await.unwrap().is_empty());
    for t in [VIEWER, SUPERVISOR, ADMIN] {
        let a = call(&s, Method::GET, HISTORY, Some(t), None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        assert_eq!(a.json["items"], json!([]));
    }
    let a = call(&s, Method::PUT, PRESENCE, Some(ADMIN), set(60, "admin may")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
}

#[tokio::test]
async fn a_supervisor_sets_extends_and_ends_a_window_with_actor_and_reason() {
    let s = testing::state().await;
    let a = call(
        &s,
        Method::PUT,
        PRESENCE,
        Some(SUPERVISOR),
        set(60, "cover"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["change"], "online");
    assert_eq!(a.json["actor"], "floor");
    assert!(a.json["remaining_seconds"].as_i64().unwrap() > 3500);
    let first_end = a.json["window"]["end"].clone();

    let until = (chrono::Utc::now() + chrono::Duration::hours(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let a = call(
        &s,
        Method::PUT,
        PRESENCE,
        Some(SUPERVISOR),
        Some(json!({"until": until, "reason": "  busy day  "})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["change"], "extended");
    assert_eq!(a.json["window"]["end"], until.as_str());
    assert_eq!(a.json["reason"], "busy day");
    assert_ne!(a.json["window"]["end"], first_end);
    // Durable and in force before the answer.
    let now = s.store.current("jsmith").await.unwrap().unwrap();
    assert_eq!(crate::presence::fmt_secs(now.end), until);

    let a = call(
        &s,
        Method::DELETE,
        &format!("{PRESENCE}?reason=went%20home"),
        Some(SUPERVISOR),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["change"], "forced-offline");
    assert_eq!(s.store.current("jsmith").await.unwrap(), None);

    // Ending it again: nothing to end, and nothing recorded.
    let a = call(
        &s,
        Method::DELETE,
        PRESENCE,
        Some(SUPERVISOR),
        Some(json!({"reason": "again"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.json);
    assert_eq!(a.content_type, "application/problem+json");

    let a = call(&s, Method::GET, HISTORY, Some(VIEWER), None).await;
    let story: Vec<(String, String, String)> = a.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let line = |k: &str, a: &str, r: &str| (k.to_owned(), a.to_owned(), r.to_owned());
    assert_eq!(
        story,
        [
            line("forced-offline", "floor", "went home"),
            line("extended", "floor", "busy day"),
            line("online", "floor", "cover"),
        ]
    );
}

#[tokio::test]
async fn bad_minutes_until_and_reason_are_problems_naming_the_field() {
    let s = testing::state().await;
    let put =
        |body: serde_json::Value| call(&s, Method::PUT, PRESENCE, Some(SUPERVISOR), Some(body));
    // The embedded flow's longest window: 99 hours (two custom digits).
    for (body, name) in [
        (json!({"minutes": 0, "reason": "r"}), "minutes"),
        (json!({"minutes": -5, "reason": "r"}), "minutes"),
        (json!({"minutes": 99 * 60 + 1, "reason": "r"}), "minutes"),
        (json!({"reason": "r"}), "minutes"),
        (
            json!({"minutes": 5, "until": "2030-01-01T00:00:00Z", "reason": "r"}),
            "until",
        ),
        (json!({"until": "tomorrow", "reason": "r"}), "until"),
        (
            json!({"until": "2001-01-01T00:00:00Z", "reason": "r"}),
            "until",
        ),
        (
            json!({"until": "2999-01-01T00:00:00Z", "reason": "r"}),
            "until",
        ),
        (json!({"minutes": 5}), "reason"),
        (json!({"minutes": 5, "reason": "   "}), "reason"),
        (json!({"minutes": 5, "reason": "x".repeat(501)}), "reason"),
        (json!({"minutes": 5, "reason": "two\nlines"}), "reason"),
    ] {
        let a = put(body.clone()).await;
        assert_eq!(field_of(&a), name, "{body}: {}", a.json);
    }
    // Two problems at once are both named.
    let a = put(json!({"minutes": 0})).await;
    assert_eq!(
        a.json["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        a.json
    );
    // Not JSON of this shape: 400, as a problem.
    let a = put(json!({"minutes": "ten", "reason": "r"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.json);
    assert_eq!(a.content_type, "application/problem+json");
    let a = put(json!({"hours": 1, "reason": "r"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.json);
    // DELETE without a reason.
    let a = call(&s, Method::DELETE, PRESENCE, Some(SUPERVISOR), None).await;
    assert_eq!(field_of(&a), "reason");
    // Nothing was recorded by any of them.
    assert!(s.store.history("jsmith", 10).await.unwrap().is_empty());
    assert_eq!(s.store.current("jsmith").await.unwrap(), None);
}

#[tokio::test]
async fn an_unknown_agent_is_a_404_problem() {
    let s = testing::state().await;
    for (method, uri, body) in [
        (Method::PUT, "/api/v1/agents/nobody/presence", set(5, "r")),
        (
            Method::DELETE,
            "/api/v1/agents/nobody/presence?reason=r",
            None,
        ),
        (Method::GET, "/api/v1/agents/nobody/history", None),
    ] {
        let a = call(&s, method.clone(), uri, Some(ADMIN), body).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            a.json
        );
        assert_eq!(a.content_type, "application/problem+json");
    }
    assert!(s.store.history("nobody", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn history_pages_by_cursor_newest_first_within_since_and_until() {
    let s = testing::state().await;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(10);
    let at = |h: i64| t0 + chrono::Duration::hours(h);
    // Five entries, one per hour: online, offline, online, offline, online.
    for h in [0, 2, 4] {
        s.store
            .set_online(
                "jsmith",
                at(h),
                at(h + 1) + chrono::Duration::minutes(30),
                None,
                "menu",
            )
            .await
            .unwrap();
        if h < 4 {
            s.store
                .set_offline("jsmith", at(h + 1), None, "menu")
                .await
                .unwrap();
        }
    }
    let mut seen = Vec::new();
    let mut uri = format!("{HISTORY}?limit=2");
    for _ in 0..5 {
        let a = call(&s, Method::GET, &uri, Some(VIEWER), None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        for e in a.json["items"].as_array().unwrap() {
            seen.push(e["id"].as_i64().unwrap());
        }
        match a.json["next_cursor"].as_str() {
            Some(c) => uri = format!("{HISTORY}?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);

    let fmt = |h: i64| crate::presence::fmt_secs(at(h)).replace(':', "%3A");
    let a = call(
        &s,
        Method::GET,
        &format!("{HISTORY}?since={}&until={}", fmt(1), fmt(4)),
        Some(VIEWER),
        None,
    )
    .await;
    let kinds: Vec<_> = a.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["offline", "online", "offline"], "{}", a.json);

    for (q, name) in [
        ("since=yesterday", "since"),
        ("until=2025-13-01T00:00:00Z", "until"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=forged", "cursor"),
    ] {
        let a = call(
            &s,
            Method::GET,
            &format!("{HISTORY}?{q}"),
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(field_of(&a), name, "{q}");
    }
}

#[tokio::test]
async fn the_routes_are_in_the_openapi_document() {
    let s = testing::state().await;
    let a = call(&s, Method::GET, "/api/v1/openapi.json", None, None).await;
    let paths = &a.json["paths"];
    assert!(
        paths["/api/v1/agents/{id}/presence"]["put"].is_object(),
        "{}",
        a.json
    );
    assert!(paths["/api/v1/agents/{id}/presence"]["delete"].is_object());
    assert!(paths["/api/v1/agents/{id}/history"]["get"].is_object());
    let put = &paths["/api/v1/agents/{id}/presence"]["put"]["responses"];
    for code in ["200", "401", "403", "404", "422"] {
        assert!(put[code].is_object(), "PUT {code}");
    }
    // Every schema the routes name is in the document.
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_owned());
                }
                m.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&a.json, &mut all);
    // (A page's items are inlined: `Page_HistoryEntry` holds them.)
    for r in [
        "SetPresence",
        "PresenceChange",
        "Page_HistoryEntry",
        "Window",
        "HistoryKind",
    ] {
        assert!(
            all.iter().any(|x| x.ends_with(&format!("/{r}"))),
            "{r} is never referenced"
        );
    }
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            a.json["components"]["schemas"][name].is_object(),
            "{r} is not in the document"
        );
    }
}

/// Issue 14: a supervisor's action clears not-responding. A `DELETE` for
/// a not-responding agent without a window only clears it (not a 409);
/// a `PUT` opens the window and clears it; each clear is in the history
/// with the token's name and the reason, and the agent row follows.
#[tokio::test]
async fn a_supervisor_clears_not_responding_by_setting_online_or_offline() {
    let s = testing::state().await;
    let why = "missed 3 offers in a row (max_no_answer)";
    s.presence.set_not_responding("jsmith", why).await.unwrap();
    let row = call(&s, Method::GET, "/api/v1/agents/jsmith", Some(VIEWER), None).await;
    assert_eq!(row.json["state"], "not-responding", "{}", row.json);
    assert_eq!(row.json["not_responding"]["reason"], why, "{}", row.json);

    let a = call(
        &s,
        Method::DELETE,
        &format!("{PRESENCE}?reason=spoke%20to%20her"),
        Some(SUPERVISOR),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["change"], "responding");
    assert!(a.json["window"].is_null(), "{}", a.json);
    assert_eq!(a.json["cleared_not_responding"], true);
    let row = call(&s, Method::GET, "/api/v1/agents/jsmith", Some(VIEWER), None).await;
    assert_eq!(row.json["state"], "offline", "{}", row.json);
    // Nothing left to clear or end: the usual 409.
    let a = call(
        &s,
        Method::DELETE,
        &format!("{PRESENCE}?reason=again"),
        Some(SUPERVISOR),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.json);

    s.presence.set_not_responding("jsmith", why).await.unwrap();
    let a = call(&s, Method::PUT, PRESENCE, Some(SUPERVISOR), set(60, "back")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["change"], "online");
    assert_eq!(a.json["cleared_not_responding"], true);
    let row = call(&s, Method::GET, "/api/v1/agents/jsmith", Some(VIEWER), None).await;
    assert_eq!(row.json["state"], "online", "{}", row.json);
    assert!(s.store.all_not_responding().await.unwrap().is_empty());

    let kinds: Vec<(String, String)> = s
        .store
        .history("jsmith", 10)
        .await
        .unwrap()
        .iter()
        .map(|h| (h.kind.as_str().to_owned(), h.actor.clone()))
        .collect();
    let k = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        kinds,
        [
            k("responding", "floor"),
            k("online", "floor"),
            k("not-responding", "switch"),
            k("responding", "floor"),
            k("not-responding", "switch"),
        ]
    );
}
