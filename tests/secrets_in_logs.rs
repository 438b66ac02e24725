//! No API token reaches the switch's log, at the most verbose level, for
//! any outcome of a request: served, refused for its role, or presented
//! wrong (docs/security.md, "Secrets"). The other secrets have their own
//! checks beside the features that use them (PINs in `login_interop` and
//! `directory_interop`, trunk passwords in `kamailio_interop`, SRTP keys
//! in `srtp_interop`, webhook secrets in `events`).

mod common;

use std::time::Duration;

use common::*;

const ADMIN: &str = "admin-tok-4f1c9e27";
const VIEWER: &str = "viewer-tok-8b2d7a51";
const WRONG: &str = "wrong-tok-c03e5196";

#[test]
fn api_tokens_never_reach_the_log_even_at_trace_level() {
    let sw = Switch::start_env(
        free_udp_port(),
        &[
            ("TPSWITCH_API_TOKEN", ADMIN),
            ("TPSWITCH_VIEWER_TOKEN", VIEWER),
            ("TPSWITCH_LOG", "trace"),
        ],
        |t| {
            t.replace_exact(
                "# tokens = [",
                "tokens = [{ name = \"wall\", role = \"viewer\", token_env = \"TPSWITCH_VIEWER_TOKEN\" }]\n# tokens = [",
            )
        },
    );
    for (method, path, token, want) in [
        ("GET", "/api/v1/agents", Some(ADMIN), 200),
        ("GET", "/api/v1/agents", Some(VIEWER), 200),
        ("GET", "/api/v1/agents", Some(WRONG), 401),
        ("GET", "/metrics", Some(VIEWER), 200),
        ("GET", "/metrics", Some(WRONG), 401),
        ("POST", "/api/v1/reload", Some(VIEWER), 403),
        ("POST", "/api/v1/reload", Some(WRONG), 401),
        ("POST", "/api/v1/reload", Some(ADMIN), 200),
    ] {
        let (status, body) = match method {
            "POST" => http_post(sw.http, path, token),
            _ => http_get(sw.http, path, token),
        };
        assert_eq!(status, want, "{method} {path}: {body}");
    }
    // The admin's reload is logged: the requests reached the code that
    // logs them, at a level where every crate's trace lines are written.
    sw.await_log("configuration reloaded", Duration::from_secs(10));
    let log = sw.log();
    for (who, token) in [("admin", ADMIN), ("viewer", VIEWER), ("wrong", WRONG)] {
        assert!(!log.contains(token), "the {who} token is in the log");
    }
}
