//! Cursor pagination for `/api/v1` lists: `?limit=N&cursor=C`, answered
//! with `{"items": [...], "next_cursor": C | null}`.
//!
//! The cursor is the last item's sort key, JSON in unpadded base64url,
//! opaque to clients: a page after an insertion or removal neither repeats
//! nor skips an item, which an offset would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::Problem;

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most a client may ask for in one page.
pub const MAX_LIMIT: u32 = 500;

/// The two query parameters of every list.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; absent (or empty) for the first
    /// page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT as usize),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n as usize),
            Some(n) => Err(Problem::invalid(vec![super::problem::FieldError {
                field: "limit".into(),
                problem: format!("{n} is out of range"),
                fix: format!("ask for 1 to {MAX_LIMIT} items"),
            }])),
        }
    }

    /// The key the page starts after; `None` for the first page.
    pub fn after<K: DeserializeOwned>(&self) -> Result<Option<K>, Problem> {
        // Absent or empty: the first page (`cursor=` is a string too).
        let Some(c) = self.cursor.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let bad = || {
            Problem::invalid(vec![super::problem::FieldError {
                field: "cursor".into(),
                problem: "is not a cursor this API gave out".into(),
                fix: "pass next_cursor of the previous page unchanged, or leave cursor out for the first page".into(),
            }])
        };
        let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// The opaque cursor for a sort key.
pub fn cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// One page of `items` already sorted by `key` and filtered to those after
/// the request's cursor: the first `limit`, and a cursor when more are left.
pub fn page<T, K: Serialize>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> K) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items.last().map(|t| cursor(&key(t)))
    } else {
        None
    };
    Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_a_list_once_whatever_is_inserted_between_them() {
        let mut all: Vec<String> = (0..7).map(|i| format!("u{i}")).collect();
        let q = PageQuery {
            limit: Some(3),
            cursor: None,
        };
        let mut seen = Vec::new();
        let mut q = q;
        for round in 0..10 {
            let after: Option<String> = q.after().unwrap();
            let rest: Vec<String> = all
                .iter()
                .filter(|u| after.as_ref().is_none_or(|a| *u > a))
                .cloned()
                .collect();
            let p = page(rest, q.limit().unwrap(), |u| u.clone());
            seen.extend(p.items);
            if round == 0 {
                // Before the cursor: must not be seen; after it: must be.
                all.insert(0, "u00".into());
                all.push("u9".into());
            }
            match p.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u9"]);
    }

    /// `cursor=` (a client that always sends the member) is the first
    /// page, as the document's `string` type allows; schemathesis sent it.
    #[test]
    fn an_empty_cursor_is_the_first_page() {
        let q = PageQuery {
            limit: None,
            cursor: Some(String::new()),
        };
        assert_eq!(q.after::<String>().ok(), Some(None));
    }

    #[test]
    fn a_forged_cursor_or_limit_is_a_problem_naming_the_parameter() {
        let q = PageQuery {
            limit: Some(0),
            cursor: Some("not base64 !".into()),
        };
        assert_eq!(q.limit().unwrap_err().errors[0].field, "limit");
        assert_eq!(q.after::<String>().unwrap_err().errors[0].field, "cursor");
    }
}
