//! `GET /api/v1/agents` and `GET /api/v1/agents/{id}`: every agent with
//! their state, window, time left, skills and today's figures. Viewer and up.
//!
//! The rows are the ones `/agents` and `tpswitch agents --json` show
//! ([`report::agents`], today's figures from [`crate::report::today`]), read
//! from the switch's store and the configuration in force.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::{ApiRole, Caller};
use crate::api::page::{page, Page, PageQuery};
use crate::api::problem::{ApiQuery, Problem};
use crate::api::ApiState;
use crate::report;
use crate::report::agents::AgentRow;

pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list_agents))
        .routes(routes!(get_agent))
}

/// Every agent (configured, in configuration order, then any the store has
/// a window for), read at `now`.
pub(super) async fn all(s: &ApiState, now: DateTime<Utc>) -> Result<Vec<AgentRow>, Problem> {
    // Take the `Arc` and let go of the watch before the store's awaits.
    let cfg = s.current.borrow().clone();
    report::agents::from_store(&cfg, &s.store, now)
        .await
        .map_err(|e| Problem::internal(e.to_string()))
}

/// Agents, by id, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "floor",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of agents, by id", body = Page<AgentRow>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_agents(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<AgentRow>>, Problem> {
    caller.require(ApiRole::Viewer)?;
    let limit = q.limit()?;
    let after: Option<String> = q.after()?;
    let mut all = all(&s, Utc::now()).await?;
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all.retain(|a| after.as_ref().is_none_or(|k| a.id > *k));
    Ok(Json(page(all, limit, |a| a.id.clone())))
}

/// One agent.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}",
    tag = "floor",
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The agent", body = AgentRow),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn get_agent(
    State(s): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentRow>, Problem> {
    caller.require(ApiRole::Viewer)?;
    all(&s, Utc::now())
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .map(Json)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "no agent {id:?}: neither a configured user nor online"
            ))
        })
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};
    use chrono::Duration;

    use crate::api::testing::{self, call, VIEWER};
    use crate::presence::{NewCall, PresenceStore};

    #[tokio::test]
    async fn agents_need_a_token_and_any_role_reads_them() {
        let s = testing::state().await;
        for uri in ["/api/v1/agents", "/api/v1/agents/jsmith"] {
            let a = call(&s, Method::GET, uri, None, None).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{uri}");
            assert_eq!(a.content_type, "application/problem+json");
            for t in [testing::ADMIN, testing::SUPERVISOR, VIEWER] {
                let a = call(&s, Method::GET, uri, Some(t), None).await;
                assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.json);
            }
        }
    }

    /// An online agent with an offer today: state, window, time left,
    /// skills and figures in one row.
    #[tokio::test]
    async fn an_agent_shows_state_window_skills_and_today() {
        let s = testing::state().await;
        let now = chrono::Utc::now();
        s.store
            .set_online(
                "jsmith",
                now - Duration::seconds(20),
                now + Duration::hours(1),
                None,
                "t",
            )
            .await
            .unwrap();
        let row = s
            .store
            .insert_call(&NewCall {
                call_id: "c1".into(),
                flow: "Billing".into(),
                customer_number: "+15551234567".into(),
                contact_point: "+15550100001".into(),
                started_at: now,
                answered_at: Some(now),
            })
            .await
            .unwrap();
        s.store.start_attempt(row, "jsmith", now).await.unwrap();
        let a = call(&s, Method::GET, "/api/v1/agents/jsmith", Some(VIEWER), None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        let j = &a.json;
        assert_eq!(j["state"], "online", "{j}");
        assert_eq!(j["name"], "John Smith", "{j}");
        assert_eq!(j["skills"][0], "billing", "{j}");
        assert!(j["remaining_seconds"].as_i64().unwrap() > 3500, "{j}");
        assert!(j["window"]["end"].is_string(), "{j}");
        // "Today" is the UTC day: asked within a second after a midnight
        // (or across one), the figures rightly start from zero.
        let settled = chrono::Utc::now().date_naive() == now.date_naive()
            && now - crate::report::today::day_start(now, chrono_tz::UTC) > Duration::seconds(2);
        if settled {
            assert_eq!(j["today"]["offered"], 1, "{j}");
            assert_eq!(j["today"]["missed"], 0, "{j}");
            assert!(j["today"]["online_seconds"].as_i64().unwrap() >= 1, "{j}");
        }

        let off = call(
            &s,
            Method::GET,
            "/api/v1/agents/mgarcia",
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(off.json["state"], "offline");
        assert!(off.json["window"].is_null());
    }

    #[tokio::test]
    async fn an_unknown_agent_is_a_404_problem() {
        let s = testing::state().await;
        let a = call(&s, Method::GET, "/api/v1/agents/nobody", Some(VIEWER), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.content_type, "application/problem+json");
    }

    /// Pages of one walk every agent once, by id; a bad limit or cursor is
    /// a problem naming the parameter.
    #[tokio::test]
    async fn agents_page_by_cursor() {
        let s = testing::state().await;
        let mut uri = "/api/v1/agents?limit=2".to_owned();
        let mut ids = Vec::new();
        for _ in 0..10 {
            let a = call(&s, Method::GET, &uri, Some(VIEWER), None).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.json);
            let items = a.json["items"].as_array().cloned().unwrap_or_default();
            assert!(items.len() <= 2);
            ids.extend(
                items
                    .iter()
                    .map(|i| i["id"].as_str().unwrap_or("").to_owned()),
            );
            match a.json["next_cursor"].as_str() {
                Some(c) => uri = format!("/api/v1/agents?limit=2&cursor={c}"),
                None => break,
            }
        }
        let mut want: Vec<String> = testing::state()
            .await
            .cfg
            .users
            .iter()
            .map(|u| u.id.clone())
            .collect();
        want.sort();
        assert_eq!(ids, want);
        for (q, field) in [
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("cursor=zz!", "cursor"),
        ] {
            let a = call(
                &s,
                Method::GET,
                &format!("/api/v1/agents?{q}"),
                Some(VIEWER),
                None,
            )
            .await;
            assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
            assert_eq!(a.json["errors"][0]["field"], field, "{q}: {}", a.json);
        }
    }
}
