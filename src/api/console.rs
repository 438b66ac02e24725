//! The web console (`/`) and the floor dashboard (`/floor`): plain HTML,
//! CSS and JavaScript embedded in the binary, so there is no build step
//! and nothing to install beside the switch (issue 11). The pages are
//! served without a token — they hold no data; every read and change they
//! make goes through `/api/v1` (or `/agents`) with the bearer token the
//! operator types once into the page.
//!
//! Every answer carries a Content-Security-Policy that allows scripts,
//! styles and fetches from this origin only (no inline script, no CDN), so
//! a name or description an admin typed cannot run as script even if a
//! page forgot to escape it. Assets are revalidated on each load
//! (`no-cache` + a strong `ETag`, RFC 9111 §5.2.2.4, RFC 9110 §8.8.3): an
//! upgraded binary is picked up at once and an unchanged one costs a 304.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::problem::Problem;
use super::ApiState;

/// One embedded file.
struct Asset {
    /// The name after `/assets/` (pages: their route instead).
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

const CONSOLE_PAGE: Asset = Asset {
    name: "index.html",
    content_type: HTML,
    body: include_str!("console/index.html"),
};

const FLOOR_PAGE: Asset = Asset {
    name: "floor.html",
    content_type: HTML,
    body: include_str!("console/floor.html"),
};

/// What the pages load from `/assets/`.
const ASSETS: [Asset; 5] = [
    Asset {
        name: "common.js",
        content_type: JS,
        body: include_str!("console/common.js"),
    },
    Asset {
        name: "console.js",
        content_type: JS,
        body: include_str!("console/console.js"),
    },
    Asset {
        name: "floor.js",
        content_type: JS,
        body: include_str!("console/floor.js"),
    },
    Asset {
        name: "style.css",
        content_type: CSS,
        body: include_str!("console/style.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: SVG,
        body: include_str!("console/icon.svg"),
    },
];

/// Same origin only; `blob:` media for playing a prompt fetched with the
/// token (an `<audio src>` cannot send an Authorization header);
/// `frame-ancestors 'none'` so no other site can frame the buttons
/// (clickjacking). `form-action 'self'`: the forms are handled by script
/// and never navigate, but a stray submit must not leave the origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; media-src 'self' blob:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `/`, `/floor` and `/assets/{name}`.
pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve(&CONSOLE_PAGE, &h) }),
        )
        .route(
            "/floor",
            get(|h: HeaderMap| async move { serve(&FLOOR_PAGE, &h) }),
        )
        .route("/assets/{name}", get(asset))
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => serve(a, &headers),
        None => Problem::not_found(format!("no asset named {name:?}")).into_response(),
    }
}

/// A strong validator per file: the first 16 bytes of its SHA-256 in hex,
/// computed once (the files never change while the binary runs).
fn etag(asset: &Asset) -> &'static str {
    static TAGS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .chain([&CONSOLE_PAGE, &FLOOR_PAGE])
            .map(|a| {
                let digest = Sha256::digest(a.body.as_bytes());
                let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                (a.name, format!("\"{hex}\""))
            })
            .collect()
    });
    tags.iter()
        .find(|(n, _)| *n == asset.name)
        .map(|(_, t)| t.as_str())
        .unwrap_or("\"\"")
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let tag = etag(asset);
    // RFC 9110 §13.1.2: a list of tags or `*`; weak comparison is right for
    // If-None-Match.
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == tag || t == "*")
        });
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The token never travels in a URL, but the pages link nowhere else
    // either: nothing to tell another site.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt as _;

    use super::*;
    use crate::api::testing;

    struct Got {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    async fn get(path: &str, if_none_match: Option<&str>) -> Got {
        let state = testing::state().await;
        let mut req = Request::builder().method(Method::GET).uri(path);
        if let Some(t) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        let res = crate::api::router(state)
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        Got {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    fn h(g: &Got, name: header::HeaderName) -> &str {
        g.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Both pages are served without a token (they hold no data), as HTML,
    /// with the policy and revalidation headers.
    #[tokio::test]
    async fn the_pages_are_html_with_a_policy_and_no_token() {
        for path in ["/", "/floor"] {
            let g = get(path, None).await;
            assert_eq!(g.status, StatusCode::OK, "{path}");
            assert_eq!(h(&g, header::CONTENT_TYPE), HTML, "{path}");
            assert_eq!(h(&g, header::CONTENT_SECURITY_POLICY), CSP, "{path}");
            assert_eq!(h(&g, header::CACHE_CONTROL), "no-cache", "{path}");
            assert_eq!(h(&g, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert!(h(&g, header::ETAG).starts_with('"'), "{path}");
            assert!(g.body.contains("name=\"viewport\""), "{path}: phones");
        }
    }

    /// Every `/assets/` reference of both pages is served with its type;
    /// a page that names a file the binary lacks fails here, not in a
    /// browser.
    #[tokio::test]
    async fn every_asset_a_page_names_is_served_with_its_type() {
        let mut seen = 0;
        for page in [&CONSOLE_PAGE, &FLOOR_PAGE] {
            for part in page.body.split("\"/assets/").skip(1) {
                let name = part.split('"').next().unwrap_or("");
                let g = get(&format!("/assets/{name}"), None).await;
                assert_eq!(g.status, StatusCode::OK, "{}: {name}", page.name);
                let want = ASSETS.iter().find(|a| a.name == name).unwrap();
                assert_eq!(h(&g, header::CONTENT_TYPE), want.content_type);
                assert_eq!(h(&g, header::CONTENT_SECURITY_POLICY), CSP);
                seen += 1;
            }
        }
        assert!(seen >= 6, "the pages load their script, style and icon");
    }

    #[tokio::test]
    async fn an_unknown_asset_is_a_problem() {
        let g = get("/assets/nothing.js", None).await;
        assert_eq!(g.status, StatusCode::NOT_FOUND);
        assert_eq!(h(&g, header::CONTENT_TYPE), "application/problem+json");
    }

    /// A browser that has the current file gets a 304 without the body; a
    /// stale tag gets the file.
    #[tokio::test]
    async fn a_matching_etag_is_not_modified() {
        let first = get("/assets/floor.js", None).await;
        let tag = h(&first, header::ETAG).to_owned();
        let again = get("/assets/floor.js", Some(&format!("W/\"x\", {tag}"))).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        assert!(again.body.is_empty());
        assert_eq!(h(&again, header::ETAG), tag);
        let stale = get("/assets/floor.js", Some("\"0000\"")).await;
        assert_eq!(stale.status, StatusCode::OK);
        assert_eq!(stale.body, first.body);
    }

    /// ` onclick=`-style attributes: an HTML attribute starting `on`.
    fn has_inline_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            !word.is_empty() && rest[word.len()..].starts_with('=')
        })
    }

    /// The policy forbids inline script and style, and the pages must not
    /// lean on anything off the origin (no CDN: the console works on a
    /// network without the internet).
    #[test]
    fn no_inline_script_or_style_and_nothing_off_origin() {
        for a in ASSETS.iter().chain([&CONSOLE_PAGE, &FLOOR_PAGE]) {
            let body = a.body;
            if a.content_type == HTML {
                for tag in body.split("<script").skip(1) {
                    let open = tag.split('>').next().unwrap_or("");
                    assert!(open.contains("src=\"/assets/"), "{}: inline script", a.name);
                }
                assert!(!body.contains("<style"), "{}: inline style", a.name);
                assert!(!body.contains(" style=\""), "{}: style attribute", a.name);
                assert!(!has_inline_handler(body), "{}: inline handler", a.name);
            }
            if a.content_type == JS {
                // Text from the API goes in through textContent only.
                assert!(!body.contains("innerHTML"), "{}: innerHTML", a.name);
                assert!(!body.contains("setAttribute('style'"), "{}", a.name);
            }
            // An SVG names its XML namespace with a URI it never fetches.
            let body = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(!body.contains("http://"), "{}: off-origin URL", a.name);
            assert!(!body.contains("https://"), "{}: off-origin URL", a.name);
        }
    }
}
