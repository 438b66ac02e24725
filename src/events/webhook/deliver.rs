//! The webhook shell: one task per `[[webhooks]]` entry reads the bus,
//! feeds its [`Schedule`] and carries out its sends with hyper's HTTP/1
//! client (already in the tree under axum; `https://` through rustls with
//! the system's roots, as the SIP TLS client does).
//!
//! The secret is held as bytes and only ever given to the MAC: it appears
//! in no log line, no metric, no error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::schedule::{Backoff, Due, Next, Outcome, Schedule};
use super::signature;
use crate::config::WebhookConfig;
use crate::events::{Event, EventBus};

/// Counters of one webhook, for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub name: String,
    /// Events the receiver took (a 2xx).
    pub delivered: AtomicU64,
    /// Attempts that failed (another status, no connection, a timeout).
    pub failed_attempts: AtomicU64,
    /// Events given up after `max_attempts`.
    pub given_up: AtomicU64,
    /// Events dropped because `max_queued` were waiting.
    pub dropped: AtomicU64,
}

/// Starts one task per webhook whose secret `secret` finds (the
/// environment check refuses to start without one, so a missing one here
/// is only skipped). Returns their counters.
pub fn spawn(
    hooks: &[WebhookConfig],
    secret: impl Fn(&str) -> Option<String>,
    bus: &EventBus,
    cancel: CancellationToken,
) -> Vec<Arc<WebhookStats>> {
    let mut all = Vec::new();
    for hook in hooks {
        let Some(key) = secret(&hook.secret_env).filter(|s| !s.trim().is_empty()) else {
            warn!(webhook = %hook.name, env = %hook.secret_env, "webhook secret not set; webhook off");
            continue;
        };
        let tls = if hook.url.tls {
            match tls_connector(&hook.url.host, hook.ca_file.as_deref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    warn!(webhook = %hook.name, error = %e, "webhook TLS set-up failed; webhook off");
                    continue;
                }
            }
        } else {
            None
        };
        let stats = Arc::new(WebhookStats {
            name: hook.name.clone(),
            ..WebhookStats::default()
        });
        // Everything this run published before the webhook started (the
        // expiries closed at start-up) comes first, then live events.
        let (replay, live) = bus.subscribe(Some(bus.first_id().saturating_sub(1)));
        let target = Arc::new(Target {
            hook: hook.clone(),
            secret: key.into_bytes().into(),
            tls,
        });
        // Not the query: a receiver may take a key there.
        let path = hook.url.path.split('?').next().unwrap_or("/");
        info!(webhook = %hook.name, host = %hook.url.host, port = hook.url.port, path, tls = hook.url.tls, "webhook on");
        tokio::spawn(run(
            target,
            replay.events,
            live,
            stats.clone(),
            cancel.clone(),
        ));
        all.push(stats);
    }
    all
}

struct Target {
    hook: WebhookConfig,
    secret: Arc<[u8]>,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
}

async fn run(
    target: Arc<Target>,
    earlier: Vec<Arc<Event>>,
    mut live: tokio::sync::broadcast::Receiver<Arc<Event>>,
    stats: Arc<WebhookStats>,
    cancel: CancellationToken,
) {
    let hook = &target.hook;
    let mut schedule = Schedule::new(
        Backoff {
            initial: hook.retry_initial,
            max: hook.retry_max,
            max_attempts: hook.max_attempts,
        },
        hook.max_queued as usize,
    );
    for event in earlier.into_iter().filter(|e| hook.wants(e.kind())) {
        if !schedule.push(event) {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut in_flight: Option<tokio::task::JoinHandle<Outcome>> = None;
    loop {
        let due = schedule.due();
        tokio::select! {
            _ = cancel.cancelled() => break,
            received = live.recv() => match received {
                Ok(event) => {
                    if hook.wants(event.kind()) && !schedule.push(event) {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        warn!(webhook = %hook.name, queued = schedule.len(), "webhook queue full; event dropped");
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    stats.dropped.fetch_add(n, Ordering::Relaxed);
                    warn!(webhook = %hook.name, missed = n, "webhook fell behind the event bus; events dropped");
                }
                Err(RecvError::Closed) => break,
            },
            outcome = finished(&mut in_flight) => {
                in_flight = None;
                match outcome {
                    Outcome::Delivered => stats.delivered.fetch_add(1, Ordering::Relaxed),
                    Outcome::Failed => stats.failed_attempts.fetch_add(1, Ordering::Relaxed),
                };
                if let Next::GaveUp { event, attempts } = schedule.done(outcome, Instant::now()) {
                    stats.given_up.fetch_add(1, Ordering::Relaxed);
                    warn!(webhook = %hook.name, id = event.id, kind = event.kind(), attempts, "webhook event given up");
                }
            },
            _ = sleep_until(due) => {},
        }
        if in_flight.is_none() {
            if let Some(send) = schedule.poll_send(Instant::now()) {
                let target = target.clone();
                in_flight = Some(tokio::spawn(async move {
                    attempt(&target, &send.event, send.attempt).await
                }));
            }
        }
    }
    if let Some(h) = in_flight {
        h.abort();
    }
}

async fn finished(h: &mut Option<tokio::task::JoinHandle<Outcome>>) -> Outcome {
    match h {
        Some(h) => h.await.unwrap_or(Outcome::Failed),
        None => std::future::pending().await,
    }
}

async fn sleep_until(due: Due) {
    match due {
        Due::Idle => std::future::pending().await,
        Due::Now => {}
        Due::At(t) => tokio::time::sleep_until(t.into()).await,
    }
}

/// One POST; a 2xx is delivered, anything else failed.
async fn attempt(target: &Target, event: &Event, attempt: u32) -> Outcome {
    let hook = &target.hook;
    let result = tokio::time::timeout(hook.timeout, post(target, event, attempt)).await;
    let (outcome, detail) = match result {
        Ok(Ok(status)) if (200..300).contains(&status) => (Outcome::Delivered, status.to_string()),
        Ok(Ok(status)) => (Outcome::Failed, status.to_string()),
        Ok(Err(e)) => (Outcome::Failed, e),
        Err(_) => (
            Outcome::Failed,
            format!("no answer within {} ms", hook.timeout.as_millis()),
        ),
    };
    match outcome {
        Outcome::Delivered => {
            debug!(webhook = %hook.name, id = event.id, kind = event.kind(), attempt, status = %detail, "webhook delivered")
        }
        Outcome::Failed => {
            warn!(webhook = %hook.name, id = event.id, kind = event.kind(), attempt, result = %detail, "webhook attempt failed")
        }
    }
    outcome
}

async fn post(target: &Target, event: &Event, attempt: u32) -> Result<u16, String> {
    let hook = &target.hook;
    let body = serde_json::to_vec(event).map_err(|e| format!("cannot encode the event: {e}"))?;
    let t = chrono::Utc::now().timestamp();
    let signature = signature::sign(&target.secret, t, &body);
    let authority = if hook.url.host.contains(':') {
        format!("[{}]:{}", hook.url.host, hook.url.port)
    } else {
        format!("{}:{}", hook.url.host, hook.url.port)
    };
    let request = Request::post(hook.url.path.as_str())
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "tpswitch")
        .header("x-tpswitch-event", event.kind())
        .header("x-tpswitch-event-id", event.id.to_string())
        .header("x-tpswitch-delivery-attempt", attempt.to_string())
        .header(signature::HEADER, signature)
        .body(Body::from(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let tcp = TcpStream::connect((hook.url.host.as_str(), hook.url.port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    match &target.tls {
        Some((connector, name)) => {
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            send(tls, request).await
        }
        None => send(tcp, request).await,
    }
}

async fn send<S>(io: S, request: Request<Body>) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    // The connection runs beside the request and ends with it (one request
    // per connection: deliveries are seconds apart at most rates).
    let conn = tokio::spawn(conn);
    let result = sender
        .send_request(request)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("request failed: {e}"));
    drop(sender);
    conn.abort();
    result
}

/// A TLS connector trusting `ca_file` (PEM) or, without one, the system's
/// roots, and the name the receiver's certificate must carry.
type Connector = (
    tokio_rustls::TlsConnector,
    rustls_pki_types::ServerName<'static>,
);

fn tls_connector(host: &str, ca_file: Option<&std::path::Path>) -> Result<Connector, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            roots.add_parsable_certificates(certs);
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    if roots.is_empty() {
        return Err("no usable trust anchor (ca_file or the system's)".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls_pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| format!("{host:?} is not a valid TLS server name"))?,
    };
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookUrl;
    use crate::events::Body;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A CA and a leaf for 127.0.0.1 it signed: (ca, leaf, leaf key) PEM.
    fn chain() -> (String, String, String) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
    }

    /// Reads one HTTP/1.1 request (head and Content-Length body), answers
    /// 204 and returns it.
    async fn one_request<S>(mut io: S) -> String
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = io.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed mid-request");
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .and_then(|v| v.trim().parse().ok())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        io.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&req).to_string()
    }

    /// An https:// receiver (rustls, as the SIP TLS listener builds it)
    /// gets the event signed, through the same shell the switch runs; its
    /// certificate is checked against `ca_file`.
    #[tokio::test]
    async fn an_https_receiver_gets_the_signed_event() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, leaf, key) = chain();
        let put = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ca_file = put("ca.pem", &ca);
        let server = crate::sip::tls::server_config(&crate::sip::tls::Identity {
            certificate: put("leaf.pem", &leaf),
            private_key: put("key.pem", &key),
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = tokio_rustls::TlsAcceptor::from(server)
                .accept(tcp)
                .await
                .unwrap();
            one_request(tls).await
        });
        let hook = WebhookConfig {
            name: "tls".into(),
            url: WebhookUrl {
                text: format!("https://127.0.0.1:{port}/in"),
                tls: true,
                host: "127.0.0.1".into(),
                port,
                path: "/in".into(),
            },
            secret_env: "S".into(),
            events: Vec::new(),
            timeout: std::time::Duration::from_secs(10),
            retry_initial: std::time::Duration::from_millis(10),
            retry_max: std::time::Duration::from_millis(10),
            max_attempts: 1,
            max_queued: 8,
            ca_file: Some(ca_file),
        };
        let bus = EventBus::new(8, chrono::Utc::now());
        let cancel = CancellationToken::new();
        let stats = spawn(&[hook], |_| Some("k3y".into()), &bus, cancel.clone());
        assert_eq!(stats.len(), 1, "the webhook must start");
        let e = bus.publish(
            Body::CallBridged {
                call_id: "c".into(),
                agent: "jsmith".into(),
            },
            chrono::Utc::now(),
        );
        // A bound on a broken delivery, not a timing assertion.
        let req = tokio::time::timeout(std::time::Duration::from_secs(10), receiver)
            .await
            .expect("the POST within the bound")
            .unwrap();
        cancel.cancel();
        let (head, body) = req.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /in HTTP/1.1"), "{head}");
        let sig = head
            .lines()
            .find_map(|l| l.strip_prefix("x-tpswitch-signature: "))
            .unwrap_or_else(|| panic!("no signature in {head}"));
        let now = chrono::Utc::now().timestamp();
        assert_eq!(
            signature::verify(b"k3y", sig, body.as_bytes(), now, 300),
            Ok(())
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["id"], e.id);
    }

    /// Events published before the webhook started (the expiries closed at
    /// start-up) are sent too, before live ones, and only the kinds asked
    /// for.
    #[tokio::test]
    async fn events_from_before_the_start_are_sent_first() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                got.push(one_request(tcp).await);
            }
            got
        });
        let bus = EventBus::new(8, chrono::Utc::now());
        let expired = bus.publish(
            Body::Expired {
                agent: "jsmith".into(),
                end: chrono::Utc::now(),
                while_down: true,
                deferred: false,
            },
            chrono::Utc::now(),
        );
        bus.publish(
            Body::CallBridged {
                call_id: "not wanted".into(),
                agent: "a".into(),
            },
            chrono::Utc::now(),
        );
        let hook = WebhookConfig {
            name: "early".into(),
            url: WebhookUrl {
                text: String::new(),
                tls: false,
                host: "127.0.0.1".into(),
                port,
                path: "/".into(),
            },
            secret_env: "S".into(),
            events: vec!["presence".into()],
            timeout: std::time::Duration::from_secs(10),
            retry_initial: std::time::Duration::from_millis(10),
            retry_max: std::time::Duration::from_millis(10),
            max_attempts: 1,
            max_queued: 8,
            ca_file: None,
        };
        let cancel = CancellationToken::new();
        spawn(&[hook], |_| Some("k".into()), &bus, cancel.clone());
        let live = bus.publish(
            Body::Offline {
                agent: "bwayne".into(),
                window: None,
            },
            chrono::Utc::now(),
        );
        // A bound on a broken delivery, not a timing assertion.
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), receiver)
            .await
            .expect("two POSTs within the bound")
            .unwrap();
        cancel.cancel();
        let ids: Vec<String> = got
            .iter()
            .filter_map(|r| {
                r.lines()
                    .find_map(|l| l.strip_prefix("x-tpswitch-event-id: "))
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(ids, [expired.id.to_string(), live.id.to_string()]);
    }

    /// A receiver whose certificate no trusted CA signed gets nothing: the
    /// attempt fails at the handshake and is counted as failed.
    #[tokio::test]
    async fn a_receiver_outside_the_ca_gets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _, _) = chain();
        let (_, leaf, key) = chain();
        let put = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ca_file = put("ca.pem", &ca);
        let server = crate::sip::tls::server_config(&crate::sip::tls::Identity {
            certificate: put("leaf.pem", &leaf),
            private_key: put("key.pem", &key),
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio_rustls::TlsAcceptor::from(server)
                .accept(tcp)
                .await
                .is_ok()
        });
        let target = Target {
            hook: WebhookConfig {
                name: "tls".into(),
                url: WebhookUrl {
                    text: String::new(),
                    tls: true,
                    host: "127.0.0.1".into(),
                    port,
                    path: "/".into(),
                },
                secret_env: "S".into(),
                events: Vec::new(),
                timeout: std::time::Duration::from_secs(10),
                retry_initial: std::time::Duration::from_millis(10),
                retry_max: std::time::Duration::from_millis(10),
                max_attempts: 1,
                max_queued: 8,
                ca_file: None,
            },
            secret: Arc::from(&b"k"[..]),
            tls: Some(tls_connector("127.0.0.1", Some(&ca_file)).unwrap()),
        };
        let bus = EventBus::new(8, chrono::Utc::now());
        let e = bus.publish(
            Body::CallBridged {
                call_id: "c".into(),
                agent: "a".into(),
            },
            chrono::Utc::now(),
        );
        assert_eq!(attempt(&target, &e, 1).await, Outcome::Failed);
        assert!(!receiver.await.unwrap(), "the handshake must not complete");
        let empty = put("empty.pem", "");
        let Err(err) = tls_connector("127.0.0.1", Some(&empty)) else {
            panic!("a ca_file without certificates must be refused");
        };
        assert!(err.contains("no usable trust anchor"), "{err}");
    }
}
