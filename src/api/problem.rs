//! Errors of `/api/v1` as RFC 9457 problem details
//! (`application/problem+json`): a `type` URI, a `title` that is the same
//! for every problem of the type, the `status`, a `detail` for this
//! occurrence, and (for validation) an `errors` extension member naming
//! each field, its problem and the fix — the same three parts a config
//! error has, so the console can show each beside its field.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// One RFC 9457 problem.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (RFC 9457 §3.1.1); relative, it
    /// resolves against the API (`/api/v1/problems/not-found`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short and the same for every occurrence of the type.
    pub title: String,
    /// The HTTP status, repeated for clients that lose it (§3.1.2).
    pub status: u16,
    /// This occurrence, in words.
    pub detail: String,
    /// Validation problems, one per field (an extension member, §3.2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as its configuration key is written
    /// (`users[3].extensions[0].value`) or the JSON member (`reason`).
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl Problem {
    fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/api/v1/problems/{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 422 with every field's problem: nothing was changed.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => "1 field is not valid; nothing was changed".to_owned(),
            n => format!("{n} fields are not valid; nothing was changed"),
        };
        Problem {
            errors,
            ..Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "The request is not valid",
                detail,
            )
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or wrong bearer token",
            "send Authorization: Bearer <token> with a token of http.token_env or http.tokens",
        )
    }

    /// A tokenless request that may come from a web page (`auth::local_only`).
    pub fn not_local(detail: String) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "not-local",
            "Not a local request",
            detail,
        )
    }

    pub fn forbidden(needed: &str, held: &str) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The token's role may not do this",
            format!("this needs the {needed} role; the token has {held}"),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Unavailable",
            detail,
        )
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme it wants.
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// A JSON body whose rejection is a problem naming what is wrong (serde's
/// message carries the member and the line/column), not axum's plain text.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> Problem {
    match e {
        JsonRejection::MissingJsonContentType(_) => Problem {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE.as_u16(),
            ..Problem::bad_request("send the body as JSON with Content-Type: application/json")
        },
        other => Problem::bad_request(format!(
            "the JSON body is not acceptable: {}",
            other.body_text()
        )),
    }
}

/// Query parameters whose rejection is a problem naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> Problem {
    Problem::bad_request(format!(
        "the query string is not acceptable: {}",
        e.body_text()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_rfc9457_json_with_its_media_type() {
        let p = Problem::invalid(vec![FieldError {
            field: "users[0].extensions[0].value".into(),
            problem: "\"+1555\" is not an E.164 number (too few digits)".into(),
            fix: "write the number with its country code".into(),
        }]);
        let res = p.clone().into_response();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            res.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..])
        );
        let v: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(v["type"], "/api/v1/problems/invalid");
        assert_eq!(v["status"], 422);
        assert_eq!(v["errors"][0]["field"], "users[0].extensions[0].value");
        assert!(v["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"));
    }

    #[test]
    fn a_401_names_the_bearer_scheme() {
        let res = Problem::unauthorized().into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
    }
}
