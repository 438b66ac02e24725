//! `POST /api/v1/reload`: re-read the switch's own configuration file and
//! apply what can change live, or change nothing and say why. Admin only.
//!
//! The route only asks; the composition root owns the reload (one at a
//! time, in the order asked, the same code SIGHUP runs) and answers with a
//! [`ReloadReport`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use super::auth::{ApiRole, Caller};
use super::problem::Problem;
use super::ApiState;
pub use crate::report::reload::ReloadReport;

/// Where a reload is asked for; the answer comes back on the oneshot.
pub type ReloadRequests = mpsc::Sender<oneshot::Sender<ReloadReport>>;

/// Re-read, validate and apply the configuration file.
///
/// 200: applied (the report lists what changed and what needs a restart).
/// 422: the file was read but is not acceptable; nothing changed, and the
/// report lists every error (the same lines `check-config` prints).
#[utoipa::path(
    post,
    path = "/api/v1/reload",
    tag = "settings",
    responses(
        (status = 200, description = "Applied", body = ReloadReport),
        (status = 422, description = "Refused: nothing changed", body = ReloadReport),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The switch is stopping", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn reload(State(s): State<Arc<ApiState>>, caller: Caller) -> Response {
    if let Err(p) = caller.require(ApiRole::Admin) {
        return p.into_response();
    }
    let (tx, rx) = oneshot::channel();
    let report = match s.reload.send(tx).await {
        Ok(()) => rx.await.ok(),
        Err(_) => None,
    };
    let Some(report) = report else {
        return Problem::unavailable("the switch is stopping; nothing was reloaded")
            .into_response();
    };
    let status = if report.applied {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, axum::Json(report)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use crate::api::testing::{self, call, ADMIN, SUPERVISOR, VIEWER};

    /// Only an admin may reload; the others get a problem, not a reload.
    /// (The state's reload channel has no receiver: an admin's request
    /// reaches it and is answered 503.)
    #[tokio::test]
    async fn reload_is_for_admins_only() {
        let s = testing::state().await;
        let post = |t| call(&s, Method::POST, "/api/v1/reload", t, None);
        assert_eq!(post(None).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(post(Some("wrong")).await.status, StatusCode::UNAUTHORIZED);
        for t in [VIEWER, SUPERVISOR] {
            let a = post(Some(t)).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            assert_eq!(a.json["type"], "/api/v1/problems/forbidden");
        }
        let a = post(Some(ADMIN)).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.json);
        assert_eq!(a.content_type, "application/problem+json");
    }
}
