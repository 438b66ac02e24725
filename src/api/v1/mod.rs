//! `/api/v1`: every route is a handler annotated with `#[utoipa::path]`
//! and registered here through `routes!`, so the OpenAPI 3.1 document at
//! `/api/v1/openapi.json` is built from the very list the router serves —
//! a route cannot be served undocumented, or documented and not served.
//!
//! Each resource is its own module returning an `OpenApiRouter`; this one
//! only merges them. Handlers take a [`Caller`](super::auth::Caller) (401
//! without a valid token), check its role with `require`, and answer
//! errors as [`Problem`](super::problem::Problem)s.

use std::sync::Arc;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;

mod agents;
mod calls;
mod directory;
mod events;
mod floor;
mod presence;
mod prompts;
mod queue_stats;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tpswitch API",
        description = "Timed presence: the directory, agents' presence, calls and the switch's settings. \
                       Errors are RFC 9457 problem details; lists are paged by cursor.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(super::problem::Problem, super::problem::FieldError)),
)]
struct ApiDoc;

/// Every route takes `Authorization: Bearer <token>` (RFC 6750).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token of http.token_env (admin) or http.tokens (its role)",
                    ))
                    .build(),
            ),
        );
    }
}

/// `/api/v1`, documented.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(super::reload::reload))
        .merge(calls::routes())
        .merge(queue_stats::routes())
        .merge(agents::routes())
        .merge(floor::routes())
        .merge(presence::routes())
        .merge(events::routes())
        .merge(directory::routes())
        .merge(prompts::routes())
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use crate::api::testing::{self, call};

    /// The document is OpenAPI 3.1, served without a token (it is the map,
    /// not the territory), and lists what the router serves.
    #[tokio::test]
    async fn the_openapi_document_lists_the_served_routes() {
        let s = testing::state().await;
        let a = call(&s, Method::GET, "/api/v1/openapi.json", None, None).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(
            a.json["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            a.json
        );
        assert!(a.json["paths"]["/api/v1/reload"]["post"].is_object());
        assert_eq!(
            a.json["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[tokio::test]
    async fn an_unknown_route_is_a_problem() {
        let s = testing::state().await;
        let a = call(&s, Method::GET, "/api/v1/nothing-here", None, None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.content_type, "application/problem+json");
    }
}
