//! Supervisors act on an agent's presence, and anyone may read its history:
//!
//! - `PUT /api/v1/agents/{id}/presence` (supervisor+): set the window to
//!   end `minutes` from now or at `until`. An offline agent comes online
//!   from now; an online one keeps the window's start and takes the new end
//!   (`extended` or `shortened`). `reason` is required.
//! - `DELETE /api/v1/agents/{id}/presence` (supervisor+): end the window
//!   now, `reason` in the query or the body.
//!
//! Either clears a not-responding mark first (recorded as `responding`
//! with the token's name and the reason): a supervisor who sets the agent
//! online or offline has dealt with it (issue 14). A `DELETE` for a
//! not-responding agent with no window only clears it (`change`:
//! `responding`, `window`: `null`).
//! - `GET /api/v1/agents/{id}/history` (viewer+): the presence history,
//!   newest first, paged by cursor, with `since`/`until`.
//!
//! Changes go through the presence service (never the store directly): it
//! makes them durable before we answer, re-arms the expiry, and tells the
//! queue and the notifier, so a supervisor's end behaves like the agent's
//! own (no offer after it) and the agent is called to be told. The history
//! names the token holder as the actor.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{ApiRole, Caller};
use crate::api::page::{self, Page, PageQuery};
use crate::api::problem::{ApiJson, ApiQuery, FieldError, Problem};
use crate::api::ApiState;
use crate::config::{Config, Flow};
use crate::presence::service::{Actor, ServiceError, WindowEnd};
use crate::presence::{HistoryEntry, HistoryKind, HistoryQuery, PresenceStore, StoreError, Window};

/// The longest a reason may be, in characters: a sentence for the
/// history, not a document.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest window when no timed-presence flow is configured (there is
/// then no phone menu to take the bound from).
const FALLBACK_LONGEST_HOURS: u32 = 24;

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(put_presence, delete_presence))
        .routes(routes!(get_history))
}

/// The longest window an agent can choose on the phone: the largest preset
/// or custom entry (`custom_max_digits` nines) of any timed-presence flow.
/// A supervisor may not set more than the agent could.
pub fn longest_window_hours(cfg: &Config) -> u32 {
    cfg.flows
        .iter()
        .filter_map(|f| match f {
            Flow::TimedPresence(tp) => {
                let custom = 10u32
                    .checked_pow(u32::from(tp.custom_max_digits))
                    .map_or(u32::MAX, |p| p - 1);
                tp.presets.iter().copied().max().map(|p| p.max(custom))
            }
            _ => None,
        })
        .max()
        .unwrap_or(FALLBACK_LONGEST_HOURS)
}

/// `PUT` body: exactly one of `minutes` and `until`, and a reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPresence {
    /// Minutes from now, 1 to the longest window the log-in menu offers
    /// (in hours: the largest preset or custom entry; 99 h by default).
    #[schema(minimum = 1)]
    pub minutes: Option<i64>,
    /// The end as an RFC 3339 time, after now and within the same bound.
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// Why, for the history (1 to 500 characters).
    pub reason: Option<String>,
}

/// `DELETE` body (optional; `?reason=` does the same).
#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EndPresence {
    /// Why, for the history (1 to 500 characters).
    pub reason: Option<String>,
}

/// What a presence change did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceChange {
    pub agent: String,
    /// `online` (was offline), `extended`, `shortened` or `forced-offline`
    /// (ended); `responding` when a `DELETE` only cleared not-responding.
    pub change: HistoryKind,
    /// The window in force after a `PUT`; the one ended after a `DELETE`;
    /// `null` when a `DELETE` only cleared not-responding.
    pub window: Option<Window>,
    /// The agent was not responding and no longer is.
    pub cleared_not_responding: bool,
    /// Seconds left in the window (0 once ended).
    pub remaining_seconds: i64,
    pub actor: String,
    pub reason: String,
}

/// `GET .../history` filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    /// Entries at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Entries before this RFC 3339 time.
    pub until: Option<String>,
}

fn field(field: &str, problem: impl Into<String>, fix: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// The reason, trimmed; a problem naming `reason` when it is missing, too
/// long or holds control characters (it is shown in tables and logs).
fn reason(given: Option<&str>) -> Result<String, FieldError> {
    let r = given.map(str::trim).unwrap_or_default();
    let fix = format!("say why in 1 to {MAX_REASON_CHARS} characters on one line");
    if r.is_empty() {
        return Err(field("reason", "is required", fix));
    }
    let n = r.chars().count();
    if n > MAX_REASON_CHARS {
        return Err(field("reason", format!("is {n} characters long"), fix));
    }
    if r.chars().any(char::is_control) {
        return Err(field("reason", "holds a control character", fix));
    }
    Ok(r.to_owned())
}

fn rfc3339(name: &str, s: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            field(
                name,
                format!("{s:?} is not an RFC 3339 time ({e})"),
                "write a time such as 2025-01-02T15:04:05Z",
            )
        })
}

/// 404 unless `id` is a configured user.
fn known_agent(s: &ApiState, id: &str) -> Result<(), Problem> {
    if s.current.borrow().user(id).is_some() {
        Ok(())
    } else {
        Err(Problem::not_found(format!(
            "no agent {id:?}; `tpswitch agents` lists them"
        )))
    }
}

fn service_problem(e: ServiceError, end_field: &str, longest_hours: u32) -> Problem {
    match e {
        ServiceError::EndNotAfterNow { .. } => Problem::invalid(vec![field(
            end_field,
            e.to_string(),
            "give an end after now",
        )]),
        ServiceError::TooLong { .. } | ServiceError::OutOfRange { .. } => {
            Problem::invalid(vec![field(
                end_field,
                e.to_string(),
                format!("give an end at most {longest_hours} hours from now (the longest window the log-in menu offers)"),
            )])
        }
        // Only when the clock stepped back past the window's start.
        ServiceError::Store(err @ StoreError::InvalidWindow { .. }) => Problem::invalid(vec![
            field(end_field, err.to_string(), "give an end after the window's start"),
        ]),
        ServiceError::Stopped => Problem::unavailable(e.to_string()),
        ServiceError::Store(err) => {
            tracing::error!(error = %err, "presence change not saved");
            Problem::internal("the presence change could not be saved; see the switch's log")
        }
    }
}

/// Set an agent's window: a new one if they are offline, a new end for the
/// open one otherwise.
#[utoipa::path(
    put,
    path = "/api/v1/agents/{id}/presence",
    tag = "presence",
    params(("id" = String, Path, description = "The agent's user id")),
    request_body = SetPresence,
    responses(
        (status = 200, description = "Saved (durable) and in force", body = PresenceChange),
        (status = 400, description = "The body is not JSON of this shape", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "minutes, until or reason not valid; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The switch is stopping", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn put_presence(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetPresence>,
) -> Result<Response, Problem> {
    caller.require(ApiRole::Supervisor)?;
    known_agent(&s, &id)?;
    let longest_hours = longest_window_hours(&s.current.borrow());
    let longest_minutes = i64::from(longest_hours) * 60;
    let mut errors = Vec::new();
    let end = match (body.minutes, body.until.as_deref()) {
        (Some(_), Some(_)) => {
            errors.push(field(
                "until",
                "is given with minutes",
                "give minutes or until, not both",
            ));
            None
        }
        (None, None) => {
            errors.push(field(
                "minutes",
                "is missing (and so is until)",
                "give minutes from now, or until as an RFC 3339 time",
            ));
            None
        }
        (Some(m), None) => match u32::try_from(m) {
            Ok(m) if m >= 1 && i64::from(m) <= longest_minutes => Some(WindowEnd::Minutes(m)),
            _ => {
                errors.push(field(
                    "minutes",
                    format!("{m} is out of range"),
                    format!("give 1 to {longest_minutes} minutes (the longest window the log-in menu offers: {longest_hours} hours)"),
                ));
                None
            }
        },
        (None, Some(u)) => match rfc3339("until", u) {
            Ok(t) => Some(WindowEnd::Until(t)),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let reason = reason(body.reason.as_deref()).map_err(|e| errors.push(e));
    let (Some(end), Ok(reason), true) = (end, reason, errors.is_empty()) else {
        return Err(Problem::invalid(errors));
    };
    let end_field = match end {
        WindowEnd::Minutes(_) => "minutes",
        WindowEnd::Until(_) => "until",
    };
    let by = Actor {
        name: caller.name.clone(),
        reason: reason.clone(),
    };
    let change = s
        .presence
        .set_window(&id, end, chrono::Duration::hours(longest_hours.into()), by)
        .await
        .map_err(|e| service_problem(e, end_field, longest_hours))?;
    // After the window, so a refused end leaves the mark as it was.
    let cleared = s
        .presence
        .clear_not_responding(&id, &caller.name, &reason)
        .await
        .map_err(|e| service_problem(e, end_field, longest_hours))?;
    Ok(axum::Json(PresenceChange {
        agent: id,
        change: change.kind,
        window: Some(change.window),
        cleared_not_responding: cleared,
        remaining_seconds: change.window.remaining_seconds(Utc::now()),
        actor: caller.name,
        reason,
    })
    .into_response())
}

/// End an agent's window now. As when the switch sets an agent offline:
/// no call is offered to them after this, a call in progress finishes,
/// and (with `notify_on_expiry`) the agent is called to be told.
#[utoipa::path(
    delete,
    path = "/api/v1/agents/{id}/presence",
    tag = "presence",
    params(("id" = String, Path, description = "The agent's user id"), EndPresence),
    request_body(content = Option<EndPresence>, description = "Optional: the reason, instead of the query"),
    responses(
        (status = 200, description = "Ended (durable)", body = PresenceChange),
        (status = 400, description = "The body is not JSON of this shape", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent is neither online nor not responding; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The switch is stopping", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_presence(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<EndPresence>,
    body: Bytes,
) -> Result<Response, Problem> {
    caller.require(ApiRole::Supervisor)?;
    known_agent(&s, &id)?;
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        EndPresence::default()
    } else {
        serde_json::from_slice::<EndPresence>(&body)
            .map_err(|e| Problem::bad_request(format!("the JSON body is not acceptable: {e}")))?
    };
    let reason = reason(query.reason.or(from_body.reason).as_deref())
        .map_err(|e| Problem::invalid(vec![e]))?;
    let by = Actor {
        name: caller.name.clone(),
        reason: reason.clone(),
    };
    let cleared = s
        .presence
        .clear_not_responding(&id, &caller.name, &reason)
        .await
        .map_err(|e| service_problem(e, "reason", 0))?;
    let ended = s
        .presence
        .end_window(&id, by)
        .await
        .map_err(|e| service_problem(e, "reason", 0))?;
    let change = match (ended, cleared) {
        (Some(_), _) => HistoryKind::ForcedOffline,
        (None, true) => HistoryKind::Responding,
        (None, false) => {
            return Err(Problem::conflict(format!(
                "{id} is not online; there is no window to end"
            )))
        }
    };
    Ok(axum::Json(PresenceChange {
        agent: id,
        change,
        window: ended,
        cleared_not_responding: cleared,
        remaining_seconds: 0,
        actor: caller.name,
        reason,
    })
    .into_response())
}

/// An agent's presence history, newest first: every window opened,
/// extended, shortened, ended or expired, with who did it and why.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/history",
    tag = "presence",
    params(("id" = String, Path, description = "The agent's user id"), HistoryFilter, PageQuery),
    responses(
        (status = 200, description = "One page, newest first", body = Page<HistoryEntry>),
        (status = 400, description = "The query string is not acceptable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent, and no history under that id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "since, until, limit or cursor not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_history(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(filter): ApiQuery<HistoryFilter>,
    ApiQuery(pq): ApiQuery<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(ApiRole::Viewer)?;
    let mut errors = Vec::new();
    let mut time = |name: &str, v: Option<&str>| {
        v.and_then(|v| rfc3339(name, v).map_err(|e| errors.push(e)).ok())
    };
    let since = time("since", filter.since.as_deref());
    let until = time("until", filter.until.as_deref());
    let limit = pq.limit().map_err(|p| errors.extend(p.errors)).ok();
    let before = pq.after::<i64>().map_err(|p| errors.extend(p.errors)).ok();
    let (Some(limit), Some(before), true) = (limit, before, errors.is_empty()) else {
        return Err(Problem::invalid(errors));
    };
    let query = HistoryQuery {
        since,
        until,
        before,
        // One more than asked: whether it comes tells if there is a next page.
        limit: u32::try_from(limit).unwrap_or(page::MAX_LIMIT) + 1,
    };
    let rows = s.store.history_page(&id, query).await.map_err(|e| {
        tracing::error!(error = %e, "presence history not readable");
        Problem::internal("the presence history could not be read; see the switch's log")
    })?;
    // An agent no longer configured still has a story to read; an id that
    // was never anyone's does not.
    if rows.is_empty() && s.current.borrow().user(&id).is_none() {
        let any = s
            .store
            .history(&id, 1)
            .await
            .map_err(|_| Problem::internal("the presence history could not be read"))?;
        if any.is_empty() {
            known_agent(&s, &id)?;
        }
    }
    Ok(axum::Json(page::page(rows, limit, |e| e.id)).into_response())
}

#[cfg(test)]
#[path = "presence_tests.rs"]
mod tests;
