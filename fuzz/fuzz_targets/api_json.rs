//! JSON bodies through the whole HTTP API router (authentication,
//! extractors, serde into the request types, the handlers' validation,
//! the directory's checks against the configuration's rules), on an
//! in-memory store with an admin token. The first byte picks the route.
//! Every answer must be a decision about the body: never a 500.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;
use tpswitch::api::testing::{self, ADMIN};
use tpswitch::api::ApiState;

struct World {
    rt: tokio::runtime::Runtime,
    state: Arc<ApiState>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let state = rt.block_on(testing::state());
        World { rt, state }
    })
}

/// (method, path): what the first byte chooses; `fz` objects are the
/// API's own (made and removed here), `jsmith` is declared in the file.
const ROUTES: &[(&str, &str)] = &[
    ("PUT", "/api/v1/users/fz"),
    ("PUT", "/api/v1/flows/fz"),
    ("PUT", "/api/v1/dispatch-mappings/fz"),
    ("PUT", "/api/v1/agents/jsmith/presence"),
    ("DELETE", "/api/v1/agents/jsmith/presence"),
    ("PUT", "/api/v1/users/jsmith"),
    ("POST", "/api/v1/reload"),
];

async fn send(state: &Arc<ApiState>, method: &str, uri: &str, body: &[u8]) -> u16 {
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return 0;
    };
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request from literal parts");
    let res = tpswitch::api::router(state.clone())
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {});
    let status = res.status().as_u16();
    let _ = axum::body::to_bytes(res.into_body(), 1 << 20).await;
    status
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let w = world();
    let (method, uri) = ROUTES[usize::from(pick) % ROUTES.len()];
    w.rt.block_on(async {
        let status = send(&w.state, method, uri, body).await;
        assert!(
            status != 500,
            "{method} {uri} answered 500 to {:?}",
            String::from_utf8_lossy(body)
        );
        // Leave the directory as it was, so each input starts alike.
        if method == "PUT" && uri.ends_with("/fz") && (200..300).contains(&status) {
            send(&w.state, "DELETE", uri, b"").await;
        }
    });
});
