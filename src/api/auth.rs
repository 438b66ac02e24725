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
        state
            .tokens
            .caller(&parts.headers)
            .ok_or_else(Problem::unauthorized)
    }
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
}
