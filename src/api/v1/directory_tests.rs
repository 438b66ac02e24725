//! Route tests of the directory: roles, origins, validation with the
//! file's messages, pagination, PIN never echoed.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::api::testing::{self, call, ADMIN, SUPERVISOR, VIEWER};

fn new_user() -> serde_json::Value {
    json!({
        "name": "New Agent",
        "skills": ["billing"],
        "pin": "97531",
        "extensions": [{"type": "pstn", "value": "+1 234 567 0042", "description": "mobile"}]
    })
}

/// Reads need a token (viewer and up); changes need an admin.
#[tokio::test]
async fn reads_are_for_viewers_and_changes_for_admins() {
    let s = testing::state().await;
    for path in [
        "/api/v1/users",
        "/api/v1/flows",
        "/api/v1/dispatch-mappings",
        "/api/v1/users/jsmith",
    ] {
        assert_eq!(
            call(&s, Method::GET, path, None, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let a = call(&s, Method::GET, path, Some(VIEWER), None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.json);
    }
    for (method, path) in [
        (Method::PUT, "/api/v1/users/newbie"),
        (Method::DELETE, "/api/v1/users/newbie"),
        (Method::PUT, "/api/v1/flows/New"),
        (Method::DELETE, "/api/v1/dispatch-mappings/x"),
    ] {
        let body = (method == Method::PUT).then(new_user);
        assert_eq!(
            call(&s, method.clone(), path, None, body.clone())
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        for t in [VIEWER, SUPERVISOR] {
            let a = call(&s, method.clone(), path, Some(t), body.clone()).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(a.content_type, "application/problem+json");
        }
    }
}

/// An admin creates a user: 201, origin api, the PIN not echoed but
/// `has_pin`; a replace without `pin` keeps it; `null` removes it; the
/// user is deleted with 204 and then 404.
#[tokio::test]
async fn an_admin_creates_replaces_and_deletes_a_user() {
    let s = testing::state().await;
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/users/newbie",
        Some(ADMIN),
        Some(new_user()),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    assert_eq!(a.json["origin"], "api");
    assert_eq!(a.json["has_pin"], true);
    assert!(a.json.get("pin").is_none());
    assert!(!a.json.to_string().contains("97531"));
    let a = call(&s, Method::GET, "/api/v1/users/jsmith", Some(VIEWER), None).await;
    assert_eq!(a.json["origin"], "file");
    let mut body = new_user();
    body.as_object_mut().map(|o| o.remove("pin"));
    body["name"] = json!("Renamed");
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/users/newbie",
        Some(ADMIN),
        Some(body.clone()),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["name"], "Renamed");
    assert_eq!(
        a.json["has_pin"], true,
        "an absent pin keeps the stored one"
    );
    body["pin"] = serde_json::Value::Null;
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/users/newbie",
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(a.json["has_pin"], false, "{}", a.json);
    let stored = s
        .store
        .directory_objects()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored.len(), 1);
    let a = call(
        &s,
        Method::DELETE,
        "/api/v1/users/newbie",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = call(&s, Method::GET, "/api/v1/users/newbie", Some(VIEWER), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.content_type, "application/problem+json");
    let a = call(
        &s,
        Method::DELETE,
        "/api/v1/users/newbie",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

/// The file's objects are read-only here: 409 naming the file.
#[tokio::test]
async fn a_file_object_is_a_conflict_naming_the_file() {
    let s = testing::state().await;
    for (method, path) in [
        (Method::PUT, "/api/v1/users/jsmith"),
        (Method::DELETE, "/api/v1/users/jsmith"),
        (Method::DELETE, "/api/v1/flows/Billing"),
    ] {
        let body = (method == Method::PUT).then(new_user);
        let a = call(&s, method, path, Some(ADMIN), body).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{path}: {}", a.json);
        let detail = a.json["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("tpswitch.toml"), "{detail}");
    }
}

/// Validation is the file's: its messages, named by the member.
#[tokio::test]
async fn validation_problems_name_the_member_with_the_files_messages() {
    let s = testing::state().await;
    let mut body = new_user();
    body["extensions"][0]["value"] = json!("12");
    body["colour"] = json!("blue");
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/users/newbie",
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.json);
    let fields: Vec<&str> = a.json["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(fields.contains(&"extensions[0].value"), "{}", a.json);
    assert!(fields.contains(&"colour"), "{}", a.json);
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/dispatch-mappings/Nowhere",
        Some(ADMIN),
        Some(
            json!({"interaction_type": "voice", "mapping": "contact-point",
                    "phone_number": "+1-555-010-0098", "flow": "No such flow"}),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.json);
    assert_eq!(a.json["errors"][0]["field"], "flow");
    assert_eq!(
        a.json["errors"][0]["problem"],
        "\"No such flow\" is not the name of any flow"
    );
    // A number the file's mapping has: a conflict naming the file.
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/dispatch-mappings/Twin",
        Some(ADMIN),
        Some(
            json!({"interaction_type": "voice", "mapping": "contact-point",
                    "phone_number": "+1 555 010 0001", "flow": "Billing"}),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.json);
    let detail = a.json["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("phone_number") && detail.contains("tpswitch.toml"),
        "{detail}"
    );
    // A path and a body that disagree on the key.
    let mut body = new_user();
    body["id"] = json!("other");
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/users/newbie",
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json["errors"][0]["field"], "id");
    assert!(s
        .store
        .directory_objects()
        .await
        .unwrap_or_default()
        .is_empty());
}

/// A flow a mapping names cannot be removed; the mapping first, then it.
#[tokio::test]
async fn a_flow_in_use_is_not_removed() {
    let s = testing::state().await;
    let flow = call(&s, Method::GET, "/api/v1/flows/Billing", Some(VIEWER), None).await;
    let mut body = flow.json.clone();
    body["name"] = json!("Sales");
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/flows/Sales",
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/dispatch-mappings/Sales%20line",
        Some(ADMIN),
        Some(
            json!({"interaction_type": "voice", "mapping": "contact-point",
                    "phone_number": "+1-555-010-0077", "flow": "Sales"}),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    assert_eq!(a.json["name"], "Sales line");
    let a = call(&s, Method::DELETE, "/api/v1/flows/Sales", Some(ADMIN), None).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.json);
    assert!(a.json["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("flow"));
    let a = call(
        &s,
        Method::DELETE,
        "/api/v1/dispatch-mappings/Sales%20line",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = call(&s, Method::DELETE, "/api/v1/flows/Sales", Some(ADMIN), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.json);
}

/// Lists page by key with a cursor; a bad limit is a problem naming it.
#[tokio::test]
async fn users_are_paged_by_cursor() {
    let s = testing::state().await;
    let a = call(&s, Method::GET, "/api/v1/users?limit=2", Some(VIEWER), None).await;
    let ids: Vec<&str> = a.json["items"]
        .as_array()
        .map(|i| i.iter().filter_map(|u| u["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["akim", "jsmith"]);
    assert!(a.json["items"][0].get("pin").is_none());
    let cursor = a.json["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let a = call(
        &s,
        Method::GET,
        &format!("/api/v1/users?limit=2&cursor={cursor}"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(a.json["items"][0]["id"], "mgarcia");
    assert_eq!(a.json["items"][0]["has_pin"], true);
    assert!(!a.json.to_string().contains("2468"), "a PIN was echoed");
    assert!(a.json["next_cursor"].is_null());
    let a = call(&s, Method::GET, "/api/v1/users?limit=0", Some(VIEWER), None).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json["errors"][0]["field"], "limit");
}

/// Every directory route is in the OpenAPI document.
#[tokio::test]
async fn the_directory_routes_are_documented() {
    let s = testing::state().await;
    let a = call(&s, Method::GET, "/api/v1/openapi.json", None, None).await;
    for (path, methods) in [
        ("/api/v1/users", &["get"][..]),
        ("/api/v1/users/{id}", &["get", "put", "delete"]),
        ("/api/v1/flows", &["get"]),
        ("/api/v1/flows/{name}", &["get", "put", "delete"]),
        ("/api/v1/dispatch-mappings", &["get"]),
        (
            "/api/v1/dispatch-mappings/{name}",
            &["get", "put", "delete"],
        ),
        ("/api/v1/prompts", &["get"]),
        ("/api/v1/prompts/{name}", &["get", "put", "delete"]),
        ("/api/v1/prompts/{name}/audio", &["get"]),
    ] {
        for m in methods {
            assert!(a.json["paths"][path][m].is_object(), "{path} {m}");
        }
    }
}

/// Two admins: a PUT with the ETag it read goes through once; the second,
/// with the same now-stale ETag, is 412 and changes nothing.
#[tokio::test]
async fn a_stale_if_match_is_refused() {
    let s = testing::state().await;
    let a = call(
        &s,
        Method::PUT,
        "/api/v1/users/newbie",
        Some(ADMIN),
        Some(new_user()),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let tag = etag_of(&s, "newbie").await;
    let put = |name: &'static str, tag: String| {
        let s = s.clone();
        async move {
            let mut body = new_user();
            body["name"] = json!(name);
            let req = axum::http::Request::builder()
                .method(Method::PUT)
                .uri("/api/v1/users/newbie")
                .header(axum::http::header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(axum::http::header::CONTENT_TYPE, "application/json")
                .header(axum::http::header::IF_MATCH, tag)
                .body(axum::body::Body::from(body.to_string()))
                .unwrap_or_else(|e| panic!("{e}"));
            use tower::ServiceExt as _;
            crate::api::router(s)
                .oneshot(req)
                .await
                .unwrap_or_else(|e| match e {})
                .status()
        }
    };
    assert_eq!(put("First", tag.clone()).await, StatusCode::OK);
    assert_eq!(put("Second", tag).await, StatusCode::PRECONDITION_FAILED);
    let a = call(&s, Method::GET, "/api/v1/users/newbie", Some(VIEWER), None).await;
    assert_eq!(a.json["name"], "First");
    assert_eq!(put("Any", "*".into()).await, StatusCode::OK);
}

/// The ETag a GET answers.
pub(super) async fn etag_of(s: &std::sync::Arc<crate::api::ApiState>, id: &str) -> String {
    use tower::ServiceExt as _;
    let req = axum::http::Request::builder()
        .uri(format!("/api/v1/users/{id}"))
        .header(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {VIEWER}"),
        )
        .body(axum::body::Body::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    let res = crate::api::router(s.clone())
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {});
    res.headers()
        .get(axum::http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
