//! `GET /api/v1/calls` and `GET /api/v1/calls/{id}`: customer call records
//! with their attempts to reach agents, newest first, read through the
//! same store query as `tpswitch calls` ([`Store::calls`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{ApiRole, Caller};
use crate::api::page::{page, Page, PageQuery};
use crate::api::problem::{ApiQuery, FieldError, Problem};
use crate::api::ApiState;
use crate::presence::{CallFilter, CallRecord};

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list_calls))
        .routes(routes!(get_call))
}

/// The filters of `GET /api/v1/calls`; each one left out does not filter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallsQuery {
    /// Calls that started at or after this time (RFC 3339,
    /// `2025-01-02T03:04:05Z`).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Calls that started before this time (RFC 3339), exclusive.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Calls with an attempt to reach this agent (user id), taken or not.
    #[param(min_length = 1)]
    pub agent: Option<String>,
    /// Calls of this flow (its name).
    #[param(min_length = 1)]
    pub flow: Option<String>,
}

/// A time range's bounds, read from the query: `field` names the
/// parameter in the problem.
pub(super) fn rfc3339(field: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, FieldError> {
    let Some(s) = v else { return Ok(None) };
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| FieldError {
            field: field.into(),
            problem: format!("{s:?} is not an RFC 3339 time ({e})"),
            fix: "write a time with its offset, like 2025-01-02T03:04:05Z".into(),
        })
}

/// A time range's `since` and `until`; `None` is an open end.
pub(super) type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `since` and `until` read together: each a time, and in order.
pub(super) fn range(since: Option<&str>, until: Option<&str>) -> Result<Range, Vec<FieldError>> {
    let mut errors = Vec::new();
    let since = rfc3339("since", since).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let until = rfc3339("until", until).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            errors.push(FieldError {
                field: "until".into(),
                problem: "is before since".into(),
                fix: "give an until at or after since, or leave one out".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok((since, until))
    } else {
        Err(errors)
    }
}

impl CallsQuery {
    fn filter(&self, page: &PageQuery) -> Result<CallFilter, Problem> {
        let since_until = range(self.since.as_deref(), self.until.as_deref());
        let mut errors = Vec::new();
        let (since, until) = since_until.unwrap_or_else(|e| {
            errors.extend(e);
            (None, None)
        });
        for (field, v) in [("agent", &self.agent), ("flow", &self.flow)] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                errors.push(FieldError {
                    field: field.into(),
                    problem: "is empty".into(),
                    fix: format!("name one {field}, or leave {field} out for all"),
                });
            }
        }
        let limit = page.limit().map_err(|p| errors.extend(p.errors));
        let after = page
            .after::<(i64, i64)>()
            .map_err(|p| errors.extend(p.errors));
        match (limit, after) {
            (Ok(limit), Ok(after)) if errors.is_empty() => Ok(CallFilter {
                since,
                until,
                agent: self.agent.clone(),
                flow: self.flow.clone(),
                after,
                newest_first: true,
                // One more than the page, to know whether another follows.
                limit: u32::try_from(limit).unwrap_or(u32::MAX).saturating_add(1),
                ..CallFilter::oldest_first(0)
            }),
            _ => Err(Problem::invalid(errors)),
        }
    }
}

/// A call as the API lists it: the stored record and the agent who took
/// it (`null` when none did).
#[derive(Debug, Serialize, ToSchema)]
pub struct CallItem {
    #[serde(flatten)]
    pub call: CallRecord,
    /// The user id of the agent the customer was bridged to.
    pub agent: Option<String>,
}

impl From<CallRecord> for CallItem {
    fn from(call: CallRecord) -> Self {
        let agent = call.taken_by().map(str::to_owned);
        CallItem { call, agent }
    }
}

/// The page's sort key, newest first: when the call started, then its id.
fn key(c: &CallItem) -> (i64, i64) {
    (c.call.started_at.timestamp_millis(), c.call.id)
}

/// Customer calls with their attempts, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/calls",
    tag = "calls",
    params(CallsQuery, PageQuery),
    responses(
        (status = 200, description = "A page of calls, newest first", body = Page<CallItem>),
        (status = 400, description = "A parameter of the wrong type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is not valid; the problem names it", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store could not be read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_calls(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CallsQuery>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> Result<Json<Page<CallItem>>, Problem> {
    caller.require(ApiRole::Viewer)?;
    let filter = q.filter(&p)?;
    let limit = p.limit()?;
    let calls = s.store.calls(&filter).await.map_err(|e| {
        tracing::warn!(error = %e, "GET /api/v1/calls: the store could not be read");
        Problem::internal(e.to_string())
    })?;
    let items = calls.into_iter().map(CallItem::from).collect();
    Ok(Json(page(items, limit, key)))
}

/// One customer call with its attempts.
#[utoipa::path(
    get,
    path = "/api/v1/calls/{id}",
    tag = "calls",
    params(("id" = i64, Path, description = "The call's id, as the list gives it")),
    responses(
        (status = 200, description = "The call", body = CallItem),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No call has this id", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store could not be read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn get_call(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CallItem>, Problem> {
    caller.require(ApiRole::Viewer)?;
    // Read as text: an id that is not a number names no call (a 404 like
    // any other), where axum's own rejection would be plain text.
    let no_such = || Problem::not_found(format!("no call has the id {id:?}"));
    let Ok(n) = id.parse::<i64>() else {
        return Err(no_such());
    };
    let filter = CallFilter {
        id: Some(n),
        ..CallFilter::oldest_first(1)
    };
    let calls = s.store.calls(&filter).await.map_err(|e| {
        tracing::warn!(error = %e, "GET /api/v1/calls/{{id}}: the store could not be read");
        Problem::internal(e.to_string())
    })?;
    calls
        .into_iter()
        .next()
        .map(|c| Json(CallItem::from(c)))
        .ok_or_else(no_such)
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
