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

/// Documents, on every operation, the problems the base itself answers
/// before a handler runs, so no handler can forget one: 400 for a query
/// string that does not parse (`ApiQuery`), 400 and 415 for a body that is
/// not JSON or not sent as JSON (`ApiJson`), 401 without a valid token
/// (`Caller`). A handler's own description of a status is kept.
pub fn document_base_problems(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, ParameterIn};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    let add = |op: &mut Operation, status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description).into());
    };
    for item in spec.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
            let json_body = op.request_body.as_ref().is_some_and(
                |b| matches!(b, RefOr::T(b) if b.content.contains_key("application/json")),
            );
            if query || json_body {
                add(op, "400", "The query string or the body cannot be read");
            }
            if json_body {
                add(op, "415", "The body is not sent as application/json");
            }
            if op.security.as_ref().is_none_or(|s| !s.is_empty()) {
                add(op, "401", "No valid bearer token");
            }
        }
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

    /// What the base answers before a handler runs is documented on every
    /// operation it can happen to (schemathesis found it missing on lists
    /// and on JSON bodies: a 400 for `limit=x`, a 415 without a
    /// Content-Type).
    #[tokio::test]
    async fn every_operation_documents_the_base_problems() {
        let s = testing::state().await;
        let a = call(&s, Method::GET, "/api/v1/openapi.json", None, None).await;
        let mut checked = 0;
        for (path, item) in a.json["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let statuses = &op["responses"];
                let query = op["parameters"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
                let json = op["requestBody"]["content"]["application/json"].is_object();
                if query || json {
                    assert!(statuses["400"].is_object(), "{method} {path}: no 400");
                }
                if json {
                    assert!(statuses["415"].is_object(), "{method} {path}: no 415");
                    checked += 1;
                }
                assert!(statuses["401"].is_object(), "{method} {path}: no 401");
            }
        }
        assert!(checked > 0, "no operation with a JSON body was checked");
    }

    #[tokio::test]
    async fn an_unknown_route_is_a_problem() {
        let s = testing::state().await;
        let a = call(&s, Method::GET, "/api/v1/nothing-here", None, None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.content_type, "application/problem+json");
    }
}
