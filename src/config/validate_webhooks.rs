//! `[[webhooks]]`: where events are POSTed, each entry checked on its own
//! so every mistake is reported at once.

use std::net::IpAddr;
use std::time::Duration;

use super::model::{WebhookConfig, WebhookUrl};
use super::raw::RawWebhook;
use super::validate::V;

/// Event kinds a webhook may ask for; kept in step with
/// `events::KINDS` by a test (config/ does not import events/).
pub(super) const KINDS: &[&str] = &[
    "presence.online",
    "presence.replaced",
    "presence.offline",
    "presence.expired",
    "presence.forced-offline",
    "presence.not-responding",
    "presence.responding",
    "call.queued",
    "call.bridged",
    "call.ended",
    "attempt.started",
    "attempt.accepted",
    "attempt.missed",
];
const FAMILIES: &[&str] = &["presence", "call", "attempt"];

pub(super) fn webhooks(v: &mut V, list: &[(usize, RawWebhook)]) -> Vec<WebhookConfig> {
    let mut out: Vec<WebhookConfig> = Vec::new();
    for (i, r) in list {
        let at = format!("webhooks[{i}]");
        let name = match r.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() && n.len() <= 64 && !n.chars().any(char::is_control) => {
                n.to_owned()
            }
            Some(n) => {
                v.push(
                    format!("{at}.name"),
                    format!("{n:?} is empty, too long or has control characters"),
                    "name the webhook in 1 to 64 printable characters, such as \"crm\"",
                );
                continue;
            }
            None => {
                v.missing(&format!("{at}.name"), "\"crm\"");
                continue;
            }
        };
        if out.iter().any(|o| o.name == name) {
            v.push(
                format!("{at}.name"),
                format!("{name:?} is already the name of another webhook"),
                "give each webhook its own name",
            );
        }
        let url = match &r.url {
            Some(u) => match parse_url(u) {
                Ok(url) => Some(url),
                Err((problem, fix)) => {
                    v.push(format!("{at}.url"), problem, fix);
                    None
                }
            },
            None => {
                v.missing(&format!("{at}.url"), "\"https://crm.example.com/tpswitch\"");
                None
            }
        };
        let secret_env = match &r.secret_env {
            Some(_) => v.env_name(&format!("{at}.secret_env"), &r.secret_env, ""),
            None => {
                v.missing(&format!("{at}.secret_env"), "\"TPSWITCH_WEBHOOK_SECRET\"");
                String::new()
            }
        };
        let mut events = Vec::new();
        for (j, k) in r.events.iter().flatten().enumerate() {
            if KINDS.contains(&k.as_str()) || FAMILIES.contains(&k.as_str()) {
                events.push(k.clone());
            } else {
                v.push(
                    format!("{at}.events[{j}]"),
                    format!("{k:?} is not an event kind"),
                    format!(
                        "use a kind ({}) or a family ({}); leave events out for every kind",
                        KINDS.join(", "),
                        FAMILIES.join(", ")
                    ),
                );
            }
        }
        let timeout = v.duration_in(
            &format!("{at}.timeout"),
            &r.timeout,
            Duration::from_secs(10),
            Duration::from_millis(100),
            Duration::from_secs(120),
        );
        let retry_initial = v.duration_in(
            &format!("{at}.retry_initial"),
            &r.retry_initial,
            Duration::from_secs(1),
            Duration::from_millis(10),
            Duration::from_secs(3600),
        );
        let retry_max = v.duration_in(
            &format!("{at}.retry_max"),
            &r.retry_max,
            Duration::from_secs(300),
            Duration::from_millis(10),
            Duration::from_secs(24 * 3600),
        );
        if retry_max < retry_initial {
            v.push(
                format!("{at}.retry_max"),
                "is shorter than retry_initial",
                "make retry_max at least retry_initial",
            );
        }
        let max_attempts = v.uint(&format!("{at}.max_attempts"), r.max_attempts, 8, 1, 100);
        let max_queued = v.uint(&format!("{at}.max_queued"), r.max_queued, 1000, 1, 100_000);
        let ca_file = r.ca_file.as_ref().map(|f| v.base.join(f));
        if let Some(f) = &ca_file {
            if url.as_ref().is_some_and(|u| !u.tls) {
                v.push(
                    format!("{at}.ca_file"),
                    "is only for https:// URLs",
                    "remove ca_file, or use an https:// URL",
                );
            } else if !f.is_file() {
                v.push(
                    format!("{at}.ca_file"),
                    format!("{} is not a readable file", f.display()),
                    "give the PEM file of the CA that signed the receiver's certificate (relative paths are from this file's folder)",
                );
            }
        }
        if let Some(url) = url {
            out.push(WebhookConfig {
                name,
                url,
                secret_env,
                events,
                timeout,
                retry_initial,
                retry_max,
                max_attempts,
                max_queued,
                ca_file,
            });
        }
    }
    out
}

/// `http[s]://host[:port][/path]`, with the safety rules of
/// [`WebhookUrl`]. Errors are (problem, fix).
pub(super) fn parse_url(text: &str) -> Result<WebhookUrl, (String, String)> {
    let bad = |problem: &str, fix: &str| (format!("{text:?} {problem}"), fix.to_owned());
    let lower = text.to_ascii_lowercase();
    let (tls, rest) = if lower.starts_with("https://") {
        (true, text.get(8..).unwrap_or_default())
    } else if lower.starts_with("http://") {
        (false, text.get(7..).unwrap_or_default())
    } else {
        return Err(bad(
            "is not an http:// or https:// URL",
            "write it like \"https://crm.example.com/tpswitch\"",
        ));
    };
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) || text.contains('#') {
        return Err(bad(
            "has spaces, control characters or a #fragment",
            "percent-encode the path and leave out any #fragment",
        ));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        // user:password@ would be logged with the URL.
        return Err(bad(
            "carries credentials before @",
            "leave them out: the receiver checks the X-Tpswitch-Signature header instead",
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| {
            bad(
                "has an unclosed [IPv6] host",
                "write it like \"http://[::1]:8081/\"",
            )
        })?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad(
            "has no host",
            "write it like \"https://crm.example.com/tpswitch\"",
        ));
    }
    let port = match port {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
            bad(
                "has a port that is not 1 to 65535",
                "write the port as a number, such as :8443",
            )
        })?,
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !tls && !loopback {
        return Err(bad(
            "is plain http:// to a host that is not loopback",
            "use https:// (events name agents and callers' numbers), or http:// only to 127.0.0.1, [::1] or localhost",
        ));
    }
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok(WebhookUrl {
        text: text.to_owned(),
        tls,
        host: host.to_owned(),
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn load(extra: &str) -> Result<Config, String> {
        let base = include_str!("../../config/tpswitch.toml");
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tpswitch.toml"));
        Config::from_toml(&format!("{base}\n{extra}"), path).map_err(|e| e.to_string())
    }

    #[test]
    fn urls_are_https_anywhere_or_http_to_loopback() {
        let u = parse_url("https://crm.example.com/hooks/tp?x=1").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "crm.example.com", 443, "/hooks/tp?x=1")
        );
        let u = parse_url("http://127.0.0.1:8081").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8081, "/"));
        let u = parse_url("http://[::1]:9/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert!(parse_url("HTTP://localhost/x").is_ok());
        for bad in [
            "http://crm.example.com/x",
            "http://10.0.0.1/x",
            "ftp://127.0.0.1/",
            "https://user:pw@crm.example.com/",
            "https:///x",
            "https://crm.example.com:0/",
            "https://crm.example.com:99999/",
            "https://crm.example.com/a b",
            "http://[::1/x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} should be refused");
        }
        // The fix says what to do.
        let (problem, fix) = parse_url("http://crm.example.com/").unwrap_err();
        assert!(problem.contains("not loopback"), "{problem}");
        assert!(fix.contains("https://"), "{fix}");
    }

    #[test]
    fn a_webhook_section_loads_with_defaults_and_every_mistake_is_named() {
        let cfg = load(
            "[[webhooks]]\nname = \"crm\"\nurl = \"http://127.0.0.1:8081/e\"\nsecret_env = \"CRM_SECRET\"\nevents = [\"presence\", \"call.ended\"]\n",
        )
        .unwrap();
        let w = &cfg.webhooks[0];
        assert_eq!((w.max_attempts, w.max_queued), (8, 1000));
        assert_eq!(w.retry_initial, Duration::from_secs(1));
        assert!(w.wants("presence.online") && w.wants("call.ended"));
        assert!(!w.wants("call.queued") && !w.wants("presences.x"));
        let err = load(
            "[[webhooks]]\nname = \"crm\"\nurl = \"http://crm.example.com/\"\nevents = [\"presence.onlin\"]\nmax_attempts = 0\nretry_initial = \"10m\"\nretry_max = \"1m\"\n",
        )
        .unwrap_err();
        for needle in [
            "webhooks[0].url",
            "webhooks[0].secret_env",
            "webhooks[0].events[0]",
            "webhooks[0].max_attempts",
            "webhooks[0].retry_max",
        ] {
            assert!(err.contains(needle), "no {needle} in {err}");
        }
    }

    /// Unsigned events could be forged: no secret in the environment, no
    /// start (and the message names the variable, never a value).
    #[test]
    fn a_webhook_without_its_secret_is_refused_at_start() {
        let cfg = load(
            "[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.com/\"\nsecret_env = \"CRM_SECRET\"\n",
        )
        .unwrap();
        for value in [None, Some("  ")] {
            let err = cfg
                .check_environment(|k| {
                    (k == "CRM_SECRET")
                        .then(|| value.map(str::to_owned))
                        .flatten()
                })
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("webhooks[0].secret_env") && err.contains("CRM_SECRET"),
                "{err}"
            );
        }
        assert!(cfg
            .check_environment(|k| (k == "CRM_SECRET").then(|| "s3cret".to_owned()))
            .is_ok());
    }

    #[test]
    fn ca_file_is_for_https_and_must_exist() {
        let err = load(
            "[[webhooks]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nsecret_env = \"S\"\nca_file = \"tpswitch.toml\"\n[[webhooks]]\nname = \"b\"\nurl = \"https://crm.example.com/\"\nsecret_env = \"S\"\nca_file = \"no-such-ca.pem\"\n",
        )
        .unwrap_err();
        assert!(
            err.contains("webhooks[0].ca_file") && err.contains("only for https://"),
            "{err}"
        );
        assert!(
            err.contains("webhooks[1].ca_file") && err.contains("no-such-ca.pem"),
            "{err}"
        );
        // Relative to the file's folder: config/tpswitch.toml itself exists.
        let cfg = load(
            "[[webhooks]]\nname = \"b\"\nurl = \"https://crm.example.com/\"\nsecret_env = \"S\"\nca_file = \"tpswitch.toml\"\n",
        )
        .unwrap();
        assert!(cfg.webhooks[0]
            .ca_file
            .as_ref()
            .is_some_and(|f| f.is_absolute()));
    }

    #[test]
    fn the_kinds_are_the_event_bus_kinds() {
        assert_eq!(KINDS, crate::events::KINDS);
    }
}
