//! `GET /api/v1/queues/stats`: each queue flow's figures for today (from
//! midnight UTC) or for `since`/`until`, computed by
//! [`report::queue_stats`](crate::report::queue_stats) over the call
//! records the store holds for the range.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::calls::range;
use crate::api::auth::{ApiRole, Caller};
use crate::api::problem::{ApiQuery, FieldError, Problem};
use crate::api::ApiState;
use crate::presence::{rfc3339_millis, CallFilter};
use crate::report::queue_stats::{queue_stats, thresholds, QueueStats};

/// The most calls one answer adds up: a range holding more is refused
/// (ask for a shorter one) rather than read into memory.
pub const MAX_CALLS: u32 = 200_000;

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new().routes(routes!(get_queue_stats))
}

/// The range; each bound left out is open (`since` defaults to today's
/// midnight in `presence.time_zone`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Count calls that started at or after this time (RFC 3339);
    /// default: today, 00:00 in `presence.time_zone` (UTC unless set).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Count calls that started before this time (RFC 3339), exclusive;
    /// default: no bound.
    #[param(format = DateTime)]
    pub until: Option<String>,
}

/// The figures and the range they cover.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsReport {
    #[serde(with = "rfc3339_millis")]
    pub since: DateTime<Utc>,
    #[serde(with = "rfc3339_millis::option")]
    pub until: Option<DateTime<Utc>>,
    /// When the figures were computed: the end of waits still going on.
    #[serde(with = "rfc3339_millis")]
    pub at: DateTime<Utc>,
    /// One row per queue flow of the configuration in force, and one per
    /// flow no longer configured that has calls in the range, by name.
    pub queues: Vec<QueueStats>,
}

/// Offered, answered, abandoned, average speed of answer, longest wait and
/// service level of each queue.
#[utoipa::path(
    get,
    path = "/api/v1/queues/stats",
    tag = "calls",
    params(StatsQuery),
    responses(
        (status = 200, description = "Each queue's figures", body = StatsReport),
        (status = 400, description = "A parameter of the wrong type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "since or until is not valid; the problem names it", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The store could not be read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn get_queue_stats(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<StatsReport>, Problem> {
    caller.require(ApiRole::Viewer)?;
    let now = Utc::now();
    let (since, until) = range(q.since.as_deref(), q.until.as_deref()).map_err(Problem::invalid)?;
    // The configuration in force: its time zone and thresholds (a reload
    // applies to the next request).
    let cfg = s.current.borrow().clone();
    let since =
        since.unwrap_or_else(|| crate::report::today::day_start(now, cfg.presence.time_zone));
    let filter = CallFilter {
        since: Some(since),
        until,
        ..CallFilter::oldest_first(MAX_CALLS.saturating_add(1))
    };
    let calls = s.store.calls(&filter).await.map_err(|e| {
        tracing::warn!(error = %e, "GET /api/v1/queues/stats: the store could not be read");
        Problem::internal(e.to_string())
    })?;
    if calls.len() > MAX_CALLS as usize {
        return Err(Problem::invalid(vec![FieldError {
            field: "since".into(),
            problem: format!("the range holds more than {MAX_CALLS} calls"),
            fix: "ask for a shorter range (a later since, or an until)".into(),
        }]));
    }
    Ok(Json(StatsReport {
        since,
        until,
        at: now,
        queues: queue_stats(&calls, &thresholds(&cfg), now),
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};
    use chrono::{Duration, Utc};

    use crate::api::testing::{self, call, VIEWER};
    use crate::presence::{CallUpdate, NewCall, PresenceStore};

    /// 401 without a token; a viewer reads; every configured queue has a
    /// row; a call of today is counted and one of yesterday is not unless
    /// the range asks for it.
    #[tokio::test]
    async fn a_viewer_reads_todays_figures_per_queue() {
        let s = testing::state().await;
        // "Today" is read at the request: a call stored just before a UTC
        // midnight and asked for just after it is yesterday's. Then the
        // round is done again with a call of the new day (at most twice:
        // two midnights cannot pass in one round).
        for round in 0..2 {
            let now = Utc::now();
            let a = store_and_ask(&s, now).await;
            if round == 0 && Utc::now().date_naive() != now.date_naive() {
                continue;
            }
            let billing = &a.json["queues"][0];
            assert_eq!(billing["flow"], "Billing", "{}", a.json);
            assert_eq!(billing["offered"], 1, "{}", a.json);
            assert_eq!(billing["answered"], 1);
            assert_eq!(billing["average_speed_of_answer_ms"], 3000);
            assert_eq!(billing["service_level_threshold_ms"], 20_000);
            assert_eq!(billing["service_level"], 1.0);
            break;
        }
    }

    /// Stores a bridged call at `now` and an abandoned one two days
    /// before, checks the auth of the route, and asks for today's figures.
    async fn store_and_ask(
        s: &std::sync::Arc<crate::api::ApiState>,
        now: chrono::DateTime<Utc>,
    ) -> testing::Answer {
        for (at, bridged) in [(now, true), (now - Duration::days(2), false)] {
            let id = s
                .store
                .insert_call(&NewCall {
                    call_id: format!("c{}", at.timestamp_millis()),
                    flow: "Billing".into(),
                    customer_number: "+15550001111".into(),
                    contact_point: "+15550002222".into(),
                    started_at: at,
                    answered_at: Some(at),
                })
                .await
                .unwrap();
            let update = CallUpdate {
                bridged_at: bridged.then(|| at + Duration::seconds(3)),
                ended_at: Some(at + Duration::seconds(60)),
                outcome: Some(if bridged { "bridged" } else { "abandoned" }.into()),
                ..CallUpdate::default()
            };
            s.store.update_call(id, &update).await.unwrap();
        }
        let get = |uri: &'static str, t| call(s, Method::GET, uri, t, None);
        let a = get("/api/v1/queues/stats", None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.content_type, "application/problem+json");

        let a = get("/api/v1/queues/stats", Some(VIEWER)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        a
    }

    #[tokio::test]
    async fn a_range_covers_earlier_days_and_bad_bounds_are_named() {
        let s = testing::state().await;
        let a = call(
            &s,
            Method::GET,
            "/api/v1/queues/stats?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00%2B01:00",
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        assert_eq!(a.json["since"], "2020-01-01T00:00:00.000Z");
        assert_eq!(a.json["until"], "2020-01-01T23:00:00.000Z");
        assert_eq!(a.json["queues"][0]["offered"], 0);

        let a = call(
            &s,
            Method::GET,
            "/api/v1/queues/stats?since=yesterday&until=2020-01-01T00:00:00Z",
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.json);
        assert_eq!(a.content_type, "application/problem+json");
        assert_eq!(a.json["errors"][0]["field"], "since", "{}", a.json);

        let a = call(
            &s,
            Method::GET,
            "/api/v1/queues/stats?since=2020-01-02T00:00:00Z&until=2020-01-01T00:00:00Z",
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.json);
        assert_eq!(a.json["errors"][0]["field"], "until", "{}", a.json);
    }
}
