//! `POST /api/v1/reload`: re-read the switch's own configuration file and
//! apply what can change live, or change nothing and say why.
//!
//! The route only asks; the composition root owns the reload (one at a
//! time, in the order asked, the same code SIGHUP runs) and answers with a
//! [`ReloadReport`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use super::{authorized, unauthorized, ApiState};
pub use crate::report::reload::ReloadReport;

/// Where a reload is asked for; the answer comes back on the oneshot.
pub type ReloadRequests = mpsc::Sender<oneshot::Sender<ReloadReport>>;

pub(super) async fn reload(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if !authorized(&s, &headers) {
        return unauthorized();
    }
    let (tx, rx) = oneshot::channel();
    let report = match s.reload.send(tx).await {
        Ok(()) => rx.await.ok(),
        Err(_) => None,
    };
    let Some(report) = report else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the switch is stopping; nothing was reloaded\n",
        )
            .into_response();
    };
    // 422: the file was read but is not acceptable; the body lists why.
    let status = if report.applied {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    match serde_json::to_string_pretty(&report) {
        Ok(mut json) => {
            json.push('\n');
            (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
