//! `tpswitch reload`: asks the running switch to re-read its configuration
//! through `POST /api/v1/reload` and shows what it answered.
//!
//! Through the HTTP route rather than SIGHUP to the PID in the store's lock
//! file: the route answers, so the operator sees every error of a refused
//! file, which settings are in force and which need a restart, and the exit
//! status says whether it was applied. A signal carries no answer back (the
//! outcome would only be in the switch's log). The same bearer token as
//! the other routes (`http.token_env`) is sent.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::HttpConfig;
use crate::report::reload::ReloadReport;

/// How long the switch may take to answer: reading the file and decoding
/// every prompt takes a moment on a busy machine.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the switch's API listens: `--http` if given, else `http.bind`, with
/// an unspecified address (`0.0.0.0`, `[::]`) reached on loopback.
pub fn api_address(api: &HttpConfig, http: Option<SocketAddr>) -> SocketAddr {
    let addr = http.unwrap_or(api.bind);
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Sends the request; `Ok((applied, text))` with the text to print, or an
/// error saying what to check.
pub fn reload(
    api: &HttpConfig,
    http: Option<SocketAddr>,
    token: Option<&str>,
    json: bool,
) -> Result<(bool, String), String> {
    let addr = api_address(api, http);
    let unreachable = |e: std::io::Error| {
        format!(
            "cannot reach the switch's HTTP API at {addr}: {e}; is it running with this \
             configuration? (pass --http ADDR if it was started with --http-bind)"
        )
    };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(unreachable)?;
    s.set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(unreachable)?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /api/v1/reload HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(unreachable)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(unreachable)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr} did not answer as HTTP: {:?}", head.lines().next()))?;
    match status {
        200 | 422 => {}
        401 => {
            return Err(format!(
                "the switch refused the token (401): set {} to the switch's API token",
                api.token_env
            ))
        }
        _ => return Err(format!("the switch answered {status}: {}", body.trim())),
    }
    let report: ReloadReport = serde_json::from_str(body)
        .map_err(|e| format!("unreadable answer from the switch ({e}): {}", body.trim()))?;
    let out = if json {
        body.to_owned()
    } else {
        render(&report)
    };
    Ok((report.applied, out))
}

/// The report for a person: what applies now, what waits for a restart,
/// or every error.
pub fn render(r: &ReloadReport) -> String {
    let mut out = String::new();
    if !r.applied {
        out.push_str(&format!(
            "{}: not reloaded, nothing changed; {} error(s):\n",
            r.file,
            r.errors.len()
        ));
        for e in &r.errors {
            out.push_str(&format!("  {e}\n"));
        }
        return out;
    }
    out.push_str(&format!("{}: reloaded\n", r.file));
    let list = |keys: &[String]| {
        if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        }
    };
    out.push_str(&format!(
        "  in force for the next call: {}\n",
        list(&r.changed)
    ));
    out.push_str(&format!(
        "  changed but needs a restart: {}\n",
        list(&r.restart_needed)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_reload_lists_every_error() {
        let r = ReloadReport {
            applied: false,
            file: "/etc/tpswitch/tpswitch.toml".into(),
            errors: vec!["a: x; fix".into(), "b: y; fix".into()],
            ..ReloadReport::default()
        };
        assert_eq!(
            render(&r),
            "/etc/tpswitch/tpswitch.toml: not reloaded, nothing changed; 2 error(s):\n  a: x; fix\n  b: y; fix\n"
        );
    }

    #[test]
    fn an_applied_reload_says_what_needs_a_restart() {
        let r = ReloadReport {
            applied: true,
            file: "f.toml".into(),
            changed: vec!["dispatch_mappings".into()],
            restart_needed: vec![],
            errors: vec![],
        };
        assert_eq!(
            render(&r),
            "f.toml: reloaded\n  in force for the next call: dispatch_mappings\n  changed but needs a restart: none\n"
        );
    }

    #[test]
    fn an_unspecified_bind_is_reached_on_loopback() {
        let mut api = crate::config::Config::embedded_default().unwrap().http;
        api.bind = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(
            api_address(&api, None),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            api_address(&api, Some("[::]:9000".parse().unwrap())),
            "[::1]:9000".parse::<SocketAddr>().unwrap()
        );
    }
}
