//! Bearer tokens with roles (`admin`, `supervisor`, `viewer`): who is
//! calling, and whether the role may do what is asked.
//!
//! Tokens come from the environment (`http.token_env` for `admin`,
//! `[[http.tokens]]` for the others), never from the file, and are
//! compared in constant time. With no token at all the API is for local
//! use: it binds loopback only (`app`) and every caller is `admin`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::problem::Problem;
use super::ApiState;
pub use crate::config::ApiRole;
use crate::config::HttpConfig;

/// One usable token: its holder, role and secret.
#[derive(Clone)]
struct Token {
    name: String,
    role: ApiRole,
    secret: String,
}

/// The tokens in force, read from the environment once at start.
#[derive(Clone, Default)]
pub struct Tokens(Vec<Token>);

impl Tokens {
    /// The tokens whose variables are set (and not empty) in `var`'s
    /// environment.
    pub fn from_env(http: &HttpConfig, var: impl Fn(&str) -> Option<String>) -> Tokens {
        let admin = std::iter::once(("admin", ApiRole::Admin, http.token_env.as_str()));
        let others = http
            .tokens
            .iter()
            .map(|t| (t.name.as_str(), t.role, t.token_env.as_str()));
        Tokens(
            admin
                .chain(others)
                .filter_map(|(name, role, env)| {
                    var(env)
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .map(|secret| Token {
                            name: name.to_owned(),
                            role,
                            secret,
                        })
                })
                .collect(),
        )
    }

    /// No token in force: the API is open (and bound to loopback).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Who presents these headers; `None`: no token, or one that matches
    /// none. Every token is compared, whatever matched, so the time taken
    /// does not tell which token came close.
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        if self.is_empty() {
            return Some(Caller {
                name: "local".into(),
                role: ApiRole::Admin,
            });
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?
            .trim();
        let mut found = None;
        for t in &self.0 {
            if constant_time_eq(presented.as_bytes(), t.secret.as_bytes()) && found.is_none() {
                found = Some(Caller {
                    name: t.name.clone(),
                    role: t.role,
                });
            }
        }
        found
    }
}

/// Equal without an early exit at the first differing byte, so the time a
/// wrong token takes says nothing about how much of it was right. Only the
/// length can show, which a token of fixed length gives away anyway.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold back into a short-circuit.
    std::hint::black_box(diff) == 0
}

/// The authenticated caller of a request: any valid token (a `viewer` at
/// least), or 401. Handlers that change things call [`Caller::require`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's holder (`http.tokens[].name`, or `admin`): the actor in
    /// the presence history and in the log.
    pub name: String,
    pub role: ApiRole,
}

impl Caller {
    /// 403 unless the caller's role is `needed` or above.
    pub fn require(&self, needed: ApiRole) -> Result<(), Problem> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Problem::forbidden(needed.as_str(), self.role.as_str()))
        }
    }
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        if state.tokens.is_empty() {
            local_only(&parts.headers).map_err(Problem::not_local)?;
        }
        state
            .tokens
            .caller(&parts.headers)
            .ok_or_else(Problem::unauthorized)
    }
}

/// Without a token every caller is `admin`, and the API is bound to
/// loopback. Loopback alone does not keep a web page out: a page the
/// operator's browser opens can POST to `127.0.0.1` (CSRF), and a page
/// whose own host name is re-pointed at `127.0.0.1` (DNS rebinding) can
/// read and change everything, as far as adding a user whose number the
/// switch then dials. So a tokenless request must not come from another
/// origin (RFC 6454 §7: browsers send `Origin` on cross-origin and on
/// state-changing requests) and must be addressed to an IP literal or a
/// name without a dot (`localhost`, an `/etc/hosts` alias): a rebinding
/// page can only reach us under a public, dotted name (RFC 9110 §7.2,
/// `Host`). Clients that send neither header (scripts, `tpswitch reload`)
/// are unaffected.
pub(super) fn local_only(headers: &HeaderMap) -> Result<(), String> {
    let text = |name: header::HeaderName| -> Result<Option<&str>, String> {
        headers
            .get(&name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| format!("the {name} header is not text"))
            })
            .transpose()
    };
    let host = text(header::HOST)?;
    if let Some(host) = host {
        if !local_host(host) {
            return Err(format!(
                "without an API token the API answers only requests addressed to an IP \
                 address or a name without a dot, not Host \"{host}\"; set http.token_env \
                 to reach it by a domain name"
            ));
        }
    }
    if let Some(origin) = text(header::ORIGIN)? {
        let same = host.is_some_and(|h| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(h)
        });
        if !same {
            return Err(format!(
                "without an API token the API takes no request from a web page of another \
                 origin (Origin \"{origin}\"); set http.token_env and send the token"
            ));
        }
    }
    Ok(())
}

/// An IP literal (`127.0.0.1:8080`, `[::1]:8080`) or a single-label name.
fn local_host(host: &str) -> bool {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .is_some_and(|(ip, _)| ip[1..].parse::<std::net::Ipv6Addr>().is_ok());
    }
    let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
    let name = name.strip_suffix('.').unwrap_or(name);
    name.parse::<std::net::Ipv4Addr>().is_ok() || (!name.is_empty() && !name.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiToken, Config};

    fn http() -> HttpConfig {
        let mut h = Config::embedded_default()
            .unwrap_or_else(|e| panic!("{e}"))
            .http;
        h.tokens = vec![
            ApiToken {
                name: "floor".into(),
                role: ApiRole::Supervisor,
                token_env: "SUP".into(),
            },
            ApiToken {
                name: "wall".into(),
                role: ApiRole::Viewer,
                token_env: "VIEW".into(),
            },
        ];
        h
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn each_token_is_its_holder_and_role() {
        let h = http();
        let env = |k: &str| match k {
            "SUP" => Some("s3cret-sup".to_owned()),
            "VIEW" => Some("s3cret-view".to_owned()),
            k if k == h.token_env => Some("s3cret-admin".to_owned()),
            _ => None,
        };
        let t = Tokens::from_env(&h, env);
        let who = |s: &str| t.caller(&bearer(s)).map(|c| (c.name, c.role));
        assert_eq!(who("s3cret-admin"), Some(("admin".into(), ApiRole::Admin)));
        assert_eq!(
            who("s3cret-sup"),
            Some(("floor".into(), ApiRole::Supervisor))
        );
        assert_eq!(who("s3cret-view"), Some(("wall".into(), ApiRole::Viewer)));
        assert_eq!(who("s3cret-vie"), None);
        assert_eq!(t.caller(&HeaderMap::new()), None);
    }

    #[test]
    fn roles_are_ordered_and_a_lower_one_is_refused_with_403() {
        let viewer = Caller {
            name: "wall".into(),
            role: ApiRole::Viewer,
        };
        assert!(viewer.require(ApiRole::Viewer).is_ok());
        let p = viewer.require(ApiRole::Supervisor).unwrap_err();
        assert_eq!(p.status, 403);
        assert!(p.detail.contains("supervisor"), "{}", p.detail);
        let sup = Caller {
            name: "floor".into(),
            role: ApiRole::Supervisor,
        };
        assert!(sup.require(ApiRole::Admin).is_err());
    }

    #[test]
    fn with_no_token_in_force_the_local_caller_is_admin() {
        let t = Tokens::from_env(&http(), |_| None);
        assert!(t.is_empty());
        assert_eq!(
            t.caller(&HeaderMap::new()).map(|c| c.role),
            Some(ApiRole::Admin)
        );
    }

    #[test]
    fn token_comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn without_a_token_only_local_same_origin_requests_are_taken() {
        use header::{HOST, ORIGIN};
        for ok in [
            headers(&[]),
            headers(&[(HOST, "127.0.0.1:8080")]),
            headers(&[(HOST, "[::1]:8080")]),
            headers(&[(HOST, "localhost:8080")]),
            headers(&[(HOST, "test")]),
            headers(&[(HOST, "127.0.0.1:8080"), (ORIGIN, "http://127.0.0.1:8080")]),
        ] {
            assert_eq!(local_only(&ok), Ok(()), "{ok:?}");
        }
        for refused in [
            headers(&[(HOST, "rebind.example.com:8080")]),
            headers(&[(HOST, "rebind.example.com.")]),
            headers(&[(HOST, "[::1")]),
            headers(&[
                (HOST, "127.0.0.1:8080"),
                (ORIGIN, "https://evil.example.com"),
            ]),
            headers(&[(HOST, "127.0.0.1:8080"), (ORIGIN, "http://127.0.0.1:9999")]),
            headers(&[(HOST, "127.0.0.1:8080"), (ORIGIN, "null")]),
            headers(&[(ORIGIN, "http://127.0.0.1:8080")]),
        ] {
            assert!(local_only(&refused).is_err(), "{refused:?}");
        }
    }

    /// Through the router: with no token, a web page of another origin
    /// cannot reload the switch (a form POST needs no preflight), and a
    /// page reaching loopback under a rebound name reads nothing; the
    /// same request from a local client is served. With a token the rule
    /// is the token's.
    #[tokio::test]
    async fn without_a_token_a_cross_origin_post_and_a_rebound_read_are_refused() {
        use axum::body::Body;
        use axum::http::{Method, Request, StatusCode};
        use tower::ServiceExt as _;
        let cfg = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
        let store = crate::presence::Store::open_in_memory()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let state = crate::api::ApiState::for_tests(cfg, store, Tokens::default());
        let send = |method: Method, uri: &str, pairs: &[(&str, &str)]| {
            let mut req = Request::builder().method(method).uri(uri);
            for (k, v) in pairs {
                req = req.header(*k, *v);
            }
            let req = req.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
            let router = crate::api::router(state.clone());
            async move { router.oneshot(req).await.unwrap_or_else(|e| match e {}) }
        };
        let csrf = send(
            Method::POST,
            "/api/v1/reload",
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example.com"),
            ],
        )
        .await;
        assert_eq!(csrf.status(), StatusCode::FORBIDDEN);
        let rebound = send(
            Method::GET,
            "/api/v1/users",
            &[("host", "rebind.example.com:8080")],
        )
        .await;
        assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
        let metrics = send(Method::GET, "/metrics", &[("host", "rebind.example.com")]).await;
        assert_eq!(metrics.status(), StatusCode::UNAUTHORIZED);
        let local = send(Method::GET, "/api/v1/users", &[("host", "127.0.0.1:8080")]).await;
        assert_eq!(local.status(), StatusCode::OK);
    }
}
