//! `/api/v1/users`, `/api/v1/flows`, `/api/v1/dispatch-mappings`: the
//! directory, read by viewers and changed by admins while the switch runs.
//!
//! A body has the keys of its TOML table (`[[users]]`, `[[flows]]`,
//! `[[dispatch_mappings]]`), so it is checked by the very validation of the
//! file, with its messages; a problem is named by the member it concerns
//! (`extensions[0].value`), or by its TOML path when it lies in another
//! object (`dispatch_mappings[0].flow`). Every object says where it comes
//! from (`"origin": "file" | "api"`); the file's are read-only here (409
//! naming the file). The route only asks: the owner of the directory (the
//! one task that also runs reloads) checks, stores, then installs.
//!
//! A user's PIN is write-only: never in an answer (`has_pin` says whether
//! there is one) nor in a log line. In a PUT, an absent `pin` keeps the
//! stored one and `"pin": null` removes it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{ApiRole, Caller};
use crate::api::page::{page, Page, PageQuery};
use crate::api::problem::{ApiJson, ApiQuery, FieldError, Problem};
use crate::api::ApiState;
use crate::config::directory::{member_of, Declared, Kind, Origin};
use crate::directory::{Applied, Change, Refusal, Request};

/// A user as listed: the `[[users]]` keys but `pin`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub name: Option<String>,
    pub skills: Option<Vec<String>>,
    /// IANA time zone the agent's status by phone is said in; absent =
    /// `presence.time_zone`.
    pub time_zone: Option<String>,
    /// `per-call` (absent) or `nailed-up`: how customers reach the agent.
    pub connection: Option<String>,
    pub extensions: Vec<ExtensionBody>,
    /// Whether the user has a log-in PIN (the PIN itself is never shown).
    pub has_pin: bool,
    /// `file` (read-only here) or `api`.
    pub origin: String,
}

/// A user to create or replace: the `[[users]]` keys. `id` may be left
/// out (the path gives it).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserBody {
    pub id: Option<String>,
    pub name: Option<String>,
    pub skills: Option<Vec<String>>,
    /// 4 to 8 digits, asked after the welcome prompt. Write-only: absent
    /// keeps the stored PIN, `null` removes it.
    #[schema(write_only)]
    pub pin: Option<String>,
    /// IANA time zone such as `Europe/Paris`; absent = `presence.time_zone`.
    pub time_zone: Option<String>,
    /// `per-call` (default: a call per customer) or `nailed-up` (the
    /// log-in call stays connected and customers are bridged onto it).
    pub connection: Option<String>,
    pub extensions: Option<Vec<ExtensionBody>>,
}

/// One `[[users.extensions]]` table.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExtensionBody {
    /// Only `pstn`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The E.164 number the agent calls from and is called on.
    pub value: Option<String>,
    /// Digits sent after the agent's line answers (a shared desk line).
    pub ext: Option<String>,
    pub description: Option<String>,
}

/// A dispatch mapping: a contact point (phone number) to a flow.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MappingBody {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Only `voice`.
    pub interaction_type: Option<String>,
    /// Only `contact-point`.
    pub mapping: Option<String>,
    pub phone_number: Option<String>,
    /// The name of a flow.
    pub flow: Option<String>,
    /// `file` or `api` (in answers only).
    #[schema(read_only)]
    pub origin: Option<String>,
}

/// A flow: the keys of a `[[flows]]` table (`activity` =
/// `timed-presence` or `queue`, and that activity's settings and
/// `prompts`), plus `origin` (`file` or `api`) in answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FlowBody {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub activity: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
}

/// Paged lists of each kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowPage {
    pub items: Vec<FlowBody>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MappingPage {
    pub items: Vec<MappingBody>,
    pub next_cursor: Option<String>,
}

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user, put_user, delete_user))
        .routes(routes!(list_flows))
        .routes(routes!(get_flow, put_flow, delete_flow))
        .routes(routes!(list_mappings))
        .routes(routes!(get_mapping, put_mapping, delete_mapping))
}

/// An object as answered: its table as JSON, the PIN replaced by
/// `has_pin`, and its origin.
fn view(origin: Origin, d: &Declared) -> Value {
    let mut obj: Map<String, Value> = match serde_json::to_value(&d.table) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if d.kind == Kind::Users {
        let has_pin = obj.remove("pin").is_some();
        obj.insert("has_pin".into(), Value::Bool(has_pin));
        obj.entry("extensions")
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    obj.insert("origin".into(), Value::String(origin.as_str().into()));
    Value::Object(obj)
}

async fn list(s: &ApiState, caller: &Caller, kind: Kind, q: &PageQuery) -> Response {
    list_of(s, caller, kind, q, view)
}

/// One page of the directory's objects of `kind`, by key, each shown by
/// `show`: the one list the users, flows, mappings and prompts routes share.
pub(super) fn list_of<T: serde::Serialize>(
    s: &ApiState,
    caller: &Caller,
    kind: Kind,
    q: &PageQuery,
    show: impl Fn(Origin, &Declared) -> T,
) -> Response {
    let window = caller.require(ApiRole::Viewer).and_then(|()| {
        let limit = q.limit()?;
        let after: Option<String> = q.after()?;
        Ok((limit, after))
    });
    let (limit, after) = match window {
        Ok(w) => w,
        Err(p) => return p.into_response(),
    };
    let current = s.directory.view.borrow().clone();
    let mut items: Vec<(String, T)> = current
        .of(kind)
        .filter(|(_, d)| after.as_ref().is_none_or(|a| &d.key > a))
        .map(|(o, d)| (d.key.clone(), show(*o, d)))
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let p: Page<(String, T)> = page(items, limit, |(k, _)| k.clone());
    let page = Page {
        items: p.items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        next_cursor: p.next_cursor,
    };
    axum::Json(page).into_response()
}

/// 412 Precondition Failed (RFC 9110 §15.5.13) as a problem.
pub(super) fn precondition_failed(detail: String) -> Problem {
    Problem {
        kind: "/api/v1/problems/precondition-failed".into(),
        title: "Changed since read".into(),
        status: StatusCode::PRECONDITION_FAILED.as_u16(),
        ..Problem::conflict(detail)
    }
}

/// The object as answered, with its entity tag.
fn answer(status: StatusCode, origin: Origin, d: &Declared) -> Response {
    (
        status,
        [(header::ETAG, d.etag())],
        axum::Json(view(origin, d)),
    )
        .into_response()
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn get_one(s: &ApiState, caller: &Caller, kind: Kind, key: &str) -> Response {
    if let Err(p) = caller.require(ApiRole::Viewer) {
        return p.into_response();
    }
    let current = s.directory.view.borrow().clone();
    match current.get(kind, key) {
        Some((o, d)) => answer(StatusCode::OK, *o, d),
        None => Problem::not_found(format!("no {} {key:?}", kind.noun())).into_response(),
    }
}

/// Ask the owner; map its answer to HTTP.
pub(super) async fn ask(
    s: &ApiState,
    caller: &Caller,
    change: Change,
    if_match: Option<String>,
) -> Result<Applied, Problem> {
    let (reply, rx) = oneshot::channel();
    let req = Request {
        change,
        actor: caller.name.clone(),
        if_match,
        reply,
    };
    if s.directory.requests.send(req).await.is_err() {
        return Err(Problem::unavailable(
            "the switch is stopping; nothing was changed",
        ));
    }
    let Ok(answer) = rx.await else {
        return Err(Problem::unavailable(
            "the switch is stopping; nothing was changed",
        ));
    };
    answer.map_err(|r| match r {
        Refusal::NotFound(d) => Problem::not_found(d),
        Refusal::Conflict(d) => Problem::conflict(d),
        Refusal::Precondition(d) => precondition_failed(d),
        Refusal::Store(d) => Problem::unavailable(format!(
            "the store could not write the change, so nothing was changed: {d}"
        )),
        Refusal::Invalid {
            kind,
            index,
            problems,
        } => Problem::invalid(
            problems
                .iter()
                .map(|p| FieldError {
                    field: index
                        .and_then(|i| member_of(p, kind, i))
                        .map(|m| {
                            if m.is_empty() {
                                kind.key_member().into()
                            } else {
                                m
                            }
                        })
                        .unwrap_or_else(|| p.path.clone()),
                    problem: p.problem.clone(),
                    fix: p.fix.clone(),
                })
                .collect(),
        ),
    })
}

async fn put(
    s: &ApiState,
    caller: &Caller,
    kind: Kind,
    key: String,
    headers: &HeaderMap,
    body: Map<String, Value>,
) -> Response {
    if let Err(p) = caller.require(ApiRole::Admin) {
        return p.into_response();
    }
    let mut body = body;
    let member = kind.key_member();
    match body.get(member) {
        None => {
            body.insert(member.into(), Value::String(key.clone()));
        }
        Some(Value::String(v)) if *v == key => {}
        Some(_) => {
            return Problem::invalid(vec![FieldError {
                field: member.into(),
                problem: format!("is not {key:?}, the {member} in the path"),
                fix: format!("leave {member} out or make it the same as the path"),
            }])
            .into_response()
        }
    }
    body.remove("origin");
    if kind == Kind::Users {
        match body.get("pin") {
            // Write-only: an absent PIN keeps the one stored.
            None => {
                let current = s.directory.view.borrow().clone();
                if let Some(pin) = current
                    .get(kind, &key)
                    .filter(|(o, _)| *o == Origin::Api)
                    .and_then(|(_, d)| d.table.get("pin"))
                {
                    if let Ok(v) = serde_json::to_value(pin) {
                        body.insert("pin".into(), v);
                    }
                }
            }
            Some(Value::Null) => {
                body.remove("pin");
            }
            Some(_) => {}
        }
        body.remove("has_pin");
    }
    let table: toml::Table = match serde_json::from_value(Value::Object(body)) {
        Ok(t) => t,
        Err(e) => {
            return Problem::bad_request(format!(
                "the body is not a {} as the configuration writes it (null is only allowed for pin): {e}",
                kind.noun()
            ))
            .into_response()
        }
    };
    let declared = Declared {
        kind,
        key: key.clone(),
        table,
    };
    match ask(s, caller, Change::Put(declared), if_match(headers)).await {
        Ok(applied) => {
            let status = if applied == Applied::Created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let current = s.directory.view.borrow().clone();
            match current.get(kind, &key) {
                Some((o, d)) => answer(status, *o, d),
                None => status.into_response(),
            }
        }
        Err(p) => p.into_response(),
    }
}

async fn delete(
    s: &ApiState,
    caller: &Caller,
    kind: Kind,
    key: String,
    headers: &HeaderMap,
) -> Response {
    if let Err(p) = caller.require(ApiRole::Admin) {
        return p.into_response();
    }
    match ask(s, caller, Change::Delete { kind, key }, if_match(headers)).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(p) => p.into_response(),
    }
}

/// Users, by `id`.
#[utoipa::path(get, path = "/api/v1/users", tag = "directory", params(PageQuery),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_users(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Response {
    list(&s, &caller, Kind::Users, &q).await
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "directory",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_user(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    get_one(&s, &caller, Kind::Users, &id).await
}

/// Create or replace a user made through the API; in force from the next call.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "directory",
    params(("id" = String, Path, description = "The user's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag read: change only that version")),
    request_body = UserBody,
    responses(
        (status = 200, description = "Replaced", body = UserView),
        (status = 201, description = "Created", body = UserView),
        (status = 400, description = "Not a JSON object of the configuration's keys", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is declared in the configuration file", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, with the configuration's messages", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored: nothing changed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_user(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Response {
    put(&s, &caller, Kind::Users, id, &headers, body).await
}

/// Remove a user made through the API.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "directory",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Declared in the file, or still needed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored: nothing changed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_user(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    delete(&s, &caller, Kind::Users, id, &headers).await
}

/// Flows, by `name`.
#[utoipa::path(get, path = "/api/v1/flows", tag = "directory", params(PageQuery),
    responses(
        (status = 200, description = "One page of flows", body = FlowPage),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_flows(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Response {
    list(&s, &caller, Kind::Flows, &q).await
}

/// One flow.
#[utoipa::path(get, path = "/api/v1/flows/{name}", tag = "directory",
    params(("name" = String, Path, description = "The flow's name")),
    responses(
        (status = 200, description = "The flow", body = FlowBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_flow(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    get_one(&s, &caller, Kind::Flows, &name).await
}

/// Create or replace a flow made through the API; in force from the next call.
#[utoipa::path(put, path = "/api/v1/flows/{name}", tag = "directory",
    params(("name" = String, Path, description = "The flow's name"),
        ("If-Match" = Option<String>, Header, description = "The ETag read: change only that version")),
    request_body = FlowBody,
    responses(
        (status = 200, description = "Replaced", body = FlowBody),
        (status = 201, description = "Created", body = FlowBody),
        (status = 400, description = "Not a JSON object of the configuration's keys", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The flow is declared in the configuration file", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, with the configuration's messages", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored: nothing changed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_flow(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Response {
    put(&s, &caller, Kind::Flows, name, &headers, body).await
}

/// Remove a flow made through the API; refused while a mapping names it.
#[utoipa::path(delete, path = "/api/v1/flows/{name}", tag = "directory",
    params(("name" = String, Path, description = "The flow's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such flow", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Declared in the file, or a mapping still names it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored: nothing changed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_flow(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    delete(&s, &caller, Kind::Flows, name, &headers).await
}

/// Dispatch mappings, by `name`.
#[utoipa::path(get, path = "/api/v1/dispatch-mappings", tag = "directory", params(PageQuery),
    responses(
        (status = 200, description = "One page of dispatch mappings", body = MappingPage),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_mappings(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Response {
    list(&s, &caller, Kind::DispatchMappings, &q).await
}

/// One dispatch mapping.
#[utoipa::path(get, path = "/api/v1/dispatch-mappings/{name}", tag = "directory",
    params(("name" = String, Path, description = "The mapping's name")),
    responses(
        (status = 200, description = "The mapping", body = MappingBody),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such mapping", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_mapping(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    get_one(&s, &caller, Kind::DispatchMappings, &name).await
}

/// Create or replace a dispatch mapping made through the API; the next call
/// to its number takes its flow.
#[utoipa::path(put, path = "/api/v1/dispatch-mappings/{name}", tag = "directory",
    params(("name" = String, Path, description = "The mapping's name"),
        ("If-Match" = Option<String>, Header, description = "The ETag read: change only that version")),
    request_body = MappingBody,
    responses(
        (status = 200, description = "Replaced", body = MappingBody),
        (status = 201, description = "Created", body = MappingBody),
        (status = 400, description = "Not a JSON object of the configuration's keys", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The mapping is declared in the configuration file", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed since the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, with the configuration's messages", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored: nothing changed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_mapping(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Response {
    put(&s, &caller, Kind::DispatchMappings, name, &headers, body).await
}

/// Remove a dispatch mapping made through the API: the next call to its
/// number is answered 404; calls in progress on it finish.
#[utoipa::path(delete, path = "/api/v1/dispatch-mappings/{name}", tag = "directory",
    params(("name" = String, Path, description = "The mapping's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such mapping", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Declared in the file", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored: nothing changed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_mapping(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    delete(&s, &caller, Kind::DispatchMappings, name, &headers).await
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
