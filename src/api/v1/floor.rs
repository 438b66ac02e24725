//! The floor, live: `GET /api/v1/calls/active` (calls in progress with
//! their legs) and `GET /api/v1/floor` (the dashboard's one read: agents,
//! customers waiting per queue and active calls, in one document taken at
//! one instant). Viewer and up.
//!
//! Calls, legs and waits come from the registry the call shells publish to
//! ([`crate::live`]), never from the store, so a customer shows as waiting
//! the moment the queue takes them.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{ApiRole, Caller};
use crate::api::page::{page, Page, PageQuery};
use crate::api::problem::{ApiQuery, Problem};
use crate::api::ApiState;
use crate::config::Flow;
use crate::live::{ActiveCall, LiveLeg, QueueWaiting};
use crate::report::agents::AgentRow;

/// Everything the floor view shows, as of `at`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Floor {
    pub at: DateTime<Utc>,
    /// The live registry's change count at `at`: equal numbers, equal
    /// calls, legs and waits.
    pub version: u64,
    /// Every agent, in configuration order.
    pub agents: Vec<AgentRow>,
    /// Every queue flow in configuration order (then any queue a reload
    /// removed while someone still waits in it), longest wait first.
    pub queues: Vec<QueueWaiting>,
    /// Calls in progress, oldest first, each with its outbound legs.
    pub calls: Vec<ActiveCall>,
    /// Outbound legs that serve no call (notification calls).
    pub lone_legs: Vec<LiveLeg>,
}

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(active_calls))
        .routes(routes!(floor))
}

/// Calls in progress with their legs, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/calls/active",
    tag = "floor",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of calls in progress, by id", body = Page<ActiveCall>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn active_calls(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ActiveCall>>, Problem> {
    caller.require(ApiRole::Viewer)?;
    let limit = q.limit()?;
    let after: Option<u64> = q.after()?;
    // The snapshot lists calls by id (ascending), the page's key.
    let mut calls = s.live.snapshot(Utc::now()).calls;
    calls.retain(|c| after.is_none_or(|k| c.id > k));
    Ok(Json(page(calls, limit, |c| c.id)))
}

/// The floor in one read: agents with state, countdown and today's
/// figures; customers waiting per queue; active calls with their agents
/// and legs.
#[utoipa::path(
    get,
    path = "/api/v1/floor",
    tag = "floor",
    responses(
        (status = 200, description = "The floor now", body = Floor),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn floor(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Floor>, Problem> {
    caller.require(ApiRole::Viewer)?;
    let now = Utc::now();
    let agents = super::agents::all(&s, now).await?;
    let queues: Vec<String> = s
        .current
        .borrow()
        .flows
        .iter()
        .filter_map(|f| match f {
            Flow::Queue(q) => Some(q.name.clone()),
            Flow::TimedPresence(_) => None,
        })
        .collect();
    let snap = s.live.snapshot(now);
    Ok(Json(Floor {
        at: now,
        version: snap.version,
        agents,
        queues: snap.waiting(&queues),
        calls: snap.calls,
        lone_legs: snap.lone_legs,
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};
    use chrono::Utc;

    use crate::api::testing::{self, call, ADMIN, SUPERVISOR, VIEWER};
    use crate::live::{CallInfo, LegInfo, LegKind, LegState};

    fn info(n: u32) -> CallInfo {
        CallInfo {
            call_id: format!("c{n}@peer"),
            flow: "Billing".into(),
            caller: "+15551234567".into(),
            contact_point: "+15550100001".into(),
        }
    }

    #[tokio::test]
    async fn the_floor_needs_a_token_and_any_role_reads_it() {
        let s = testing::state().await;
        for uri in ["/api/v1/floor", "/api/v1/calls/active"] {
            let a = call(&s, Method::GET, uri, None, None).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{uri}");
            assert_eq!(a.content_type, "application/problem+json");
            for t in [ADMIN, SUPERVISOR, VIEWER] {
                let a = call(&s, Method::GET, uri, Some(t), None).await;
                assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.json);
            }
        }
    }

    /// One customer waiting, one bridged with its agent leg: the floor
    /// shows both, the queue's waiting list only the first.
    #[tokio::test]
    async fn the_floor_shows_waiting_customers_and_bridged_calls_with_legs() {
        let s = testing::state().await;
        let t0 = Utc::now() - chrono::Duration::seconds(30);
        let _w = s.live.call_started(1, info(1), t0);
        s.live.queued(1, "Billing", t0);
        let _b = s.live.call_started(2, info(2), t0);
        s.live.queued(2, "Billing", t0);
        let _leg = s.live.leg_started(
            20,
            LegInfo {
                call: Some(2),
                kind: LegKind::Agent,
                agent: Some("jsmith".into()),
                target: "+12345678910".into(),
            },
            t0,
        );
        s.live.leg_dialled(20, "carrier", "leg@tpswitch", t0);
        s.live.leg_state(20, LegState::Answered, t0);
        s.live.bridged(2, 20, t0 + chrono::Duration::seconds(5));

        let a = call(&s, Method::GET, "/api/v1/floor", Some(VIEWER), None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        let f = &a.json;
        let billing = f["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["queue"] == "Billing"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            billing["customers"].as_array().map(Vec::len),
            Some(1),
            "{f}"
        );
        assert_eq!(billing["customers"][0]["call"], 1, "{f}");
        assert!(
            billing["longest_wait_seconds"].as_i64().unwrap() >= 30,
            "{f}"
        );
        assert_eq!(f["calls"][1]["state"], "bridged", "{f}");
        assert_eq!(f["calls"][1]["agent"], "jsmith", "{f}");
        assert_eq!(f["calls"][1]["wait_seconds"], 5, "{f}");
        assert_eq!(f["calls"][1]["legs"][0]["trunk"], "carrier", "{f}");
        assert_eq!(f["calls"][1]["legs"][0]["state"], "answered", "{f}");
        assert_eq!(f["agents"].as_array().map(Vec::len), Some(3), "{f}");
        assert!(f["version"].as_u64().unwrap() > 0, "{f}");
    }

    #[tokio::test]
    async fn active_calls_page_by_cursor() {
        let s = testing::state().await;
        let now = Utc::now();
        let _guards: Vec<_> = (1..=5)
            .map(|n| s.live.call_started(n, info(n as u32), now))
            .collect();
        let mut uri = "/api/v1/calls/active?limit=2".to_owned();
        let mut ids = Vec::new();
        for _ in 0..10 {
            let a = call(&s, Method::GET, &uri, Some(VIEWER), None).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.json);
            for c in a.json["items"].as_array().cloned().unwrap_or_default() {
                ids.push(c["id"].as_u64().unwrap_or(0));
                assert_eq!(c["state"], "in-menu");
            }
            match a.json["next_cursor"].as_str() {
                Some(c) => uri = format!("/api/v1/calls/active?limit=2&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        let a = call(
            &s,
            Method::GET,
            "/api/v1/calls/active?limit=0",
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(a.json["errors"][0]["field"], "limit");
    }

    /// The document lists the floor's routes with their schemas.
    #[tokio::test]
    async fn the_openapi_document_describes_the_floor() {
        let s = testing::state().await;
        let a = call(&s, Method::GET, "/api/v1/openapi.json", None, None).await;
        for p in [
            "/api/v1/floor",
            "/api/v1/calls/active",
            "/api/v1/agents",
            "/api/v1/agents/{id}",
        ] {
            assert!(a.json["paths"][p]["get"].is_object(), "{p}");
        }
        for schema in [
            "Floor",
            "ActiveCall",
            "LiveLeg",
            "QueueWaiting",
            "AgentRow",
            "Window",
            "Today",
        ] {
            assert!(
                a.json["components"]["schemas"][schema].is_object(),
                "{schema} missing"
            );
        }
    }
}
