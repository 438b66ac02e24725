//! Route tests' helpers: the three roles' tokens, and one request through
//! the whole router (auth, extractors, problems) without a socket.

use std::sync::Arc;

#[cfg(test)]
use axum::body::Body;
#[cfg(test)]
use axum::http::{header, Method, Request, StatusCode};
#[cfg(test)]
use tower::ServiceExt as _;

use super::auth::Tokens;
use super::ApiState;
use crate::config::{ApiRole, ApiToken, Config};
use crate::presence::Store;

pub const ADMIN: &str = "test-admin-token";
pub const SUPERVISOR: &str = "test-supervisor-token";
pub const VIEWER: &str = "test-viewer-token";

/// One token per role, as `[[http.tokens]]` and `http.token_env` give them.
pub fn tokens() -> Tokens {
    let mut http = Config::embedded_default()
        .unwrap_or_else(|e| panic!("{e}"))
        .http;
    http.token_env = "A".into();
    http.tokens = vec![
        ApiToken {
            name: "floor".into(),
            role: ApiRole::Supervisor,
            token_env: "S".into(),
        },
        ApiToken {
            name: "wall".into(),
            role: ApiRole::Viewer,
            token_env: "V".into(),
        },
    ];
    Tokens::from_env(&http, |k| {
        Some(
            match k {
                "A" => ADMIN,
                "S" => SUPERVISOR,
                _ => VIEWER,
            }
            .to_owned(),
        )
    })
}

/// A state on the embedded default configuration and an in-memory store,
/// with [`tokens`] in force.
pub async fn state() -> Arc<ApiState> {
    let cfg = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open_in_memory()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ApiState::for_tests(cfg, store, tokens())
}

/// What a route answered: the status, the Content-Type and the body as
/// JSON (`Null` when it is not JSON).
#[cfg(test)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub json: serde_json::Value,
}

/// `method uri` with `token` (none: no Authorization) and a JSON `body`.
#[cfg(test)]
pub async fn call(
    state: &Arc<ApiState>,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let res = super::router(state.clone())
        .oneshot(req.body(body).unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| match e {});
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

/// A directory owner like the switch's, over `cfg`'s file and `store`,
/// without a call context to install into: route tests see the checks,
/// the store writes and the published view.
pub fn directory(cfg: &Config, store: &Store) -> crate::directory::Handle {
    let text = std::fs::read_to_string(&cfg.source).unwrap_or_else(|e| panic!("{e}"));
    let mut dir = crate::directory::LiveDirectory {
        file: crate::config::directory::declared_in(&text),
        file_text: text,
        path: cfg.source.clone(),
        api: Vec::new(),
        store_name: "memory".into(),
    };
    let (view_tx, view) = tokio::sync::watch::channel(Arc::new(dir.view()));
    let (requests, mut rx) = tokio::sync::mpsc::channel::<crate::directory::Request>(8);
    let store = store.clone();
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let r = dir
                .apply(&store, &req.change, req.if_match.as_deref())
                .await
                .map(|(a, _, _)| a);
            if r.is_ok() {
                view_tx.send_replace(Arc::new(dir.view()));
            }
            let _ = req.reply.send(r);
        }
    });
    crate::directory::Handle { requests, view }
}
