//! The HTTP side for operators: Prometheus metrics, health, and the agent
//! list, on `http.bind`. Reads only: `/metrics` renders the process's
//! recorder ([`crate::telemetry`]: what the shells emit) plus the counters
//! the other parts keep in their own atomics; `/agents` reads the running
//! switch's store (through [`crate::report`], the same rows `tpswitch
//! agents` prints).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;
use crate::media::engine::stats::LATENESS_BUCKET;
use crate::media::engine::MediaStats;
use crate::media::prompt::PromptLibrary;
use crate::presence::Store;
use crate::report;
use crate::sip::core::{CoreStats, RegistrationStatus};
use crate::sip::keepalive::{Health, TrunkTargetStatus};
use crate::sip::transport::TransportStats;
use crate::telemetry;

pub mod auth;
pub mod console;
pub mod page;
pub mod problem;
pub mod ready;
pub mod reload;
mod server;
pub mod v1;

/// What the API reads.
pub struct ApiState {
    /// The configuration the switch started with: what is built once
    /// (`http.*`, the trunk's label) reads this.
    pub cfg: Arc<Config>,
    /// The configuration in force, swapped by each reload
    /// (`app/reload.rs`): `/agents` lists its users, so a user a reload
    /// added is listed and a removed one is not.
    pub current: tokio::sync::watch::Receiver<Arc<Config>>,
    pub media: Arc<MediaStats>,
    pub transport: Arc<TransportStats>,
    pub sip: Arc<std::sync::Mutex<CoreStats>>,
    /// Trunk registrations (RFC 3261 §10), as the SIP endpoint publishes
    /// them.
    pub registrations: Arc<std::sync::Mutex<Vec<RegistrationStatus>>>,
    /// Trunk targets and their OPTIONS keepalive state.
    pub trunk_targets: Arc<std::sync::Mutex<Vec<TrunkTargetStatus>>>,
    /// The running switch's store: every request reads through this one
    /// pool rather than opening the database again.
    pub store: Store,
    /// The bearer tokens and their roles, for everything but /healthz and
    /// /readyz; none at all: local use only (the API then binds loopback).
    pub tokens: auth::Tokens,
    /// The process's metrics recorder ([`telemetry::install`]).
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// `POST /api/v1/reload` asks the running switch through this.
    pub reload: reload::ReloadRequests,
    /// The prompt library in force, for `/readyz`: swapped by each reload
    /// and each prompt uploaded through the directory (`app/reload.rs`).
    pub prompts: tokio::sync::watch::Receiver<Arc<PromptLibrary>>,
    /// SIP endpoint running, draining: what the shell tells `/readyz`.
    pub liveness: Arc<ready::Liveness>,
    /// Calls, legs and waiting customers now, as the call shells publish
    /// them (the floor's live half; the store has the rest).
    pub live: crate::live::Live,
    /// The presence service: supervisors' changes to an agent's window go
    /// through it (durable, expiry re-armed, queue and notifier told), never
    /// straight to the store.
    pub presence: crate::presence::service::PresenceHandle,
    /// Presence, call and attempt events: `GET /api/v1/events` reads it,
    /// and `/metrics` counts the webhooks' deliveries.
    pub events: crate::events::EventBus,
    /// One per `[[webhooks]]` entry that runs.
    pub webhooks: Vec<Arc<crate::events::webhook::WebhookStats>>,
    /// The live directory (users, flows, dispatch mappings): what is in
    /// force with each object's origin, and where changes are asked for.
    pub directory: crate::directory::Handle,
}

pub async fn serve(
    state: Arc<ApiState>,
    bind: SocketAddr,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let limits = server::HttpLimits {
        header_read_timeout: state.cfg.http.header_read_timeout,
        max_connections: state.cfg.http.max_connections as usize,
    };
    let app = router(state);
    tokio::spawn(server::run(listener, app, limits, cancel));
    info!(http = %addr, "HTTP API listening");
    Ok(addr)
}

/// Every route: the unversioned operator endpoints, `/api/v1` (each route
/// annotated, so its OpenAPI document is built from the same list) and the
/// document itself at `/api/v1/openapi.json`.
pub fn router(state: Arc<ApiState>) -> Router {
    let (v1, mut spec) = v1::routes().split_for_parts();
    v1::document_base_problems(&mut spec);
    let spec = Arc::new(spec);
    Router::new()
        // Process up, whatever else is wrong: for a restart-on-hang probe.
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/agents", get(agents))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { axum::Json(spec.as_ref().clone()) }
            }),
        )
        .merge(v1)
        // The console and the floor dashboard: pages without data, served
        // without a token (the data they show needs one).
        .merge(console::routes())
        .fallback(|| async { problem::Problem::not_found("no such route") })
        .with_state(state)
}

/// How long `/readyz` waits for the store's write lock: a probe that
/// waits the whole `busy_timeout` would outlast the balancer's own timeout.
const STORE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `/readyz`, without auth like `/healthz`: 200 when every check passes,
/// 503 otherwise, the same JSON either way ([`ready::report`]).
async fn readyz(State(s): State<Arc<ApiState>>) -> Response {
    let store = match tokio::time::timeout(STORE_PROBE_TIMEOUT, s.store.write_probe()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no write lock within {} s",
            STORE_PROBE_TIMEOUT.as_secs()
        )),
    };
    // The settings and library in force now, not those of the start: a
    // reload may name new prompts and an upload adds one. One `Arc` each,
    // no guard held.
    let library = s.prompts.borrow().clone();
    let current = s.current.borrow().clone();
    let mut prompts_missing: Vec<String> = current
        .prompts
        .keys()
        .filter(|name| !library.contains(name))
        .cloned()
        .collect();
    prompts_missing.sort();
    let inputs = ready::Inputs {
        sip_running: s.liveness.sip_running(),
        draining: s.liveness.draining(),
        store,
        prompts_missing,
        prompts_loaded: library.len(),
        register_trunks: s
            .cfg
            .trunks
            .iter()
            .filter(|t| t.register.is_some())
            .map(|t| t.name.clone())
            .collect(),
        registrations: s
            .registrations
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default(),
    };
    let report = ready::report(&inputs);
    let status = if report.ready {
        StatusCode::OK
    } else {
        tracing::debug!(failed = %report.failed().join(","), "readyz: not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

/// Any valid token (a viewer's at least): what the unversioned read
/// routes (`/metrics`, `/agents`) need.
fn authorized(state: &ApiState, headers: &HeaderMap) -> bool {
    (!state.tokens.is_empty() || auth::local_only(headers).is_ok())
        && state.tokens.caller(headers).is_some()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong bearer token (http.token_env)\n",
    )
        .into_response()
}

async fn metrics(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if !authorized(&s, &headers) {
        return unauthorized();
    }
    mirror_counters(&s);
    // Histograms are drained into their buckets here too (no background
    // upkeep task: the scrape is the only reader).
    s.metrics.run_upkeep();
    let mut out = s.metrics.render();
    out.push_str(&telemetry::render_pacing_lateness(
        &s.media.lateness_counts(),
        LATENESS_BUCKET,
    ));
    // Per-trunk state the SIP endpoint publishes, written in the text
    // format directly (the label sets change with the configuration).
    let regs = s
        .registrations
        .lock()
        .map(|g| g.clone())
        .unwrap_or_default();
    registration_metrics(&mut out, &regs);
    trunk_target_gauges(&mut out, &s);
    webhook_metrics(&mut out, &s.webhooks);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// The SIP core's, transport's and media engine's counters live in their
/// own atomics (cheap on their hot paths); each scrape copies them into the
/// recorder under the names `/metrics` has always used.
fn mirror_counters(s: &ApiState) {
    let sip = s.sip.lock().map(|g| *g).unwrap_or_default();
    let counter = telemetry::mirror_counter;
    counter(
        "tpswitch_sip_requests_total",
        "SIP requests received",
        sip.requests,
    );
    counter(
        "tpswitch_sip_responses_total",
        "SIP responses received",
        sip.responses,
    );
    counter(
        "tpswitch_sip_bad_requests_total",
        "Requests answered 4xx/5xx by the inbound gate",
        sip.bad_requests,
    );
    counter(
        "tpswitch_sip_rejected_untrusted_total",
        "Requests from outside trunk.allow (answered 403 or dropped)",
        sip.rejected_untrusted,
    );
    counter(
        "tpswitch_sip_untrusted_dropped_total",
        "Requests from outside trunk.allow left unanswered (untrusted = drop, or ACK)",
        sip.untrusted_dropped,
    );
    counter(
        "tpswitch_sip_dropped_total",
        "SIP messages dropped unanswered",
        sip.dropped,
    );
    counter(
        "tpswitch_sip_unmatched_responses_total",
        "Responses matching no transaction",
        sip.unmatched_responses,
    );
    counter(
        "tpswitch_sip_overloaded_total",
        "Requests answered 503 at sip.max_transactions",
        sip.overloaded,
    );
    counter(
        "tpswitch_trunk_failures_total",
        "Outbound attempts a trunk failed (5xx, 408 before ringing, no answer): moved to the next trunk",
        sip.trunk_failures,
    );
    counter(
        "tpswitch_outbound_queued_total",
        "Outbound legs that waited for a trunk (max_calls, max_cps, Retry-After)",
        sip.outbound_queued,
    );
    telemetry::mirror_counter_by_reason(
        "tpswitch_sip_flood_refused_total",
        "Requests refused by sip.flood before parsing: over a limit (rate), from a banned source (banned), a scanner user agent (scanner), REGISTER (register)",
        &[
            ("rate", sip.flood_rate),
            ("banned", sip.flood_banned),
            ("scanner", sip.flood_scanner),
            ("register", sip.flood_register),
        ],
    );
    let t = &s.transport;
    for (name, help, v) in [
        (
            "tpswitch_udp_queue_full_drops_total",
            "Datagrams dropped: inbound queue full",
            &t.udp_dropped_queue_full,
        ),
        (
            "tpswitch_udp_oversized_total",
            "Datagrams larger than sip.max_message_bytes",
            &t.udp_oversized,
        ),
        (
            "tpswitch_tcp_framing_errors_total",
            "TCP connections closed for bad framing",
            &t.tcp_framing_errors,
        ),
        (
            "tpswitch_tcp_refused_total",
            "TCP connections refused at sip.max_tcp_connections",
            &t.tcp_refused,
        ),
        (
            "tpswitch_tcp_refused_untrusted_total",
            "TCP connections from outside trunk.allow refused at sip.max_untrusted_tcp_connections",
            &t.tcp_refused_untrusted,
        ),
        (
            "tpswitch_tcp_idle_closed_total",
            "TCP connections closed after sip.tcp_idle_timeout with no transaction or dialog",
            &t.tcp_idle_closed,
        ),
        (
            "tpswitch_tls_handshake_failed_total",
            "inbound TLS handshakes that failed or outlasted sip.tls_handshake_timeout",
            &t.tls_handshake_failed,
        ),
    ] {
        counter(name, help, v.load(Ordering::Relaxed));
    }
    let m = &s.media;
    for (name, help, v) in [
        (
            "tpswitch_rtp_sent_total",
            "RTP packets sent",
            &m.packets_sent,
        ),
        (
            "tpswitch_rtp_received_total",
            "RTP packets received",
            &m.packets_received,
        ),
        (
            "tpswitch_rtp_late_sends_total",
            "Paced RTP packets sent over 1 ms late",
            &m.late_sends,
        ),
        (
            "tpswitch_rtp_foreign_dropped_total",
            "RTP from a source the latch refused",
            &m.dropped_foreign,
        ),
        (
            "tpswitch_rtp_send_errors_total",
            "RTP sends that failed",
            &m.send_errors,
        ),
        (
            "tpswitch_rtp_lost_total",
            "RTP packets that never arrived (RFC 3550 A.3), counted when each leg ends",
            &m.packets_lost,
        ),
        (
            "tpswitch_rtp_relayed_total",
            "RTP packets relayed between bridged legs",
            &m.relayed,
        ),
        (
            "tpswitch_rtp_malformed_total",
            "Inbound packets that were not usable RTP",
            &m.malformed,
        ),
        (
            "tpswitch_rtcp_sent_total",
            "RTCP packets sent",
            &m.rtcp_sent,
        ),
        (
            "tpswitch_rtcp_received_total",
            "RTCP packets received",
            &m.rtcp_received,
        ),
        (
            "tpswitch_rtp_ticks_skipped_total",
            "Pacing slots skipped after a stall",
            &m.ticks_skipped,
        ),
    ] {
        counter(name, help, v.load(Ordering::Relaxed));
    }
}

/// One series per registering trunk, labelled with its name (RFC 3261 §10
/// registration as the carrier sees it).
fn registration_metrics(out: &mut String, regs: &[RegistrationStatus]) {
    if regs.is_empty() {
        return;
    }
    type Get = fn(&RegistrationStatus) -> u64;
    let series: [(&str, &str, &str, Get); 4] = [
        (
            "trunk_registered",
            "gauge",
            "1 while the trunk's registrar holds our binding",
            |r| u64::from(r.state == crate::sip::register::State::Registered),
        ),
        (
            "trunk_registration_expires_seconds",
            "gauge",
            "Seconds left of the binding the registrar granted",
            |r| r.expires_in,
        ),
        (
            "trunk_registrations_total",
            "counter",
            "REGISTERs (first and refreshes) the registrar accepted",
            |r| r.registered_total,
        ),
        (
            "trunk_registration_failures_total",
            "counter",
            "REGISTER attempts that failed or got no answer",
            |r| r.failures_total,
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(
            out,
            "# HELP tpswitch_{name} {help}\n# TYPE tpswitch_{name} {kind}"
        );
        for r in regs {
            let trunk = r.trunk.replace(['\\', '"', '\n'], "_");
            let _ = writeln!(out, "tpswitch_{name}{{trunk=\"{trunk}\"}} {}", get(r));
        }
    }
    // The state as an enum gauge: one series per state, 1 for the current.
    let _ = writeln!(
        out,
        "# HELP tpswitch_trunk_registration_state Registration state of each trunk (1 = current)\n# TYPE tpswitch_trunk_registration_state gauge"
    );
    for r in regs {
        let trunk = r.trunk.replace(['\\', '"', '\n'], "_");
        for st in crate::sip::register::State::ALL {
            let _ = writeln!(
                out,
                "tpswitch_trunk_registration_state{{trunk=\"{trunk}\",state=\"{}\"}} {}",
                st.as_str(),
                u8::from(r.state == st)
            );
        }
    }
}

/// Each webhook's deliveries, labelled with its name (never its URL, whose
/// query may carry a receiver's key).
fn webhook_metrics(out: &mut String, hooks: &[Arc<crate::events::webhook::WebhookStats>]) {
    use crate::events::webhook::WebhookStats;
    use std::sync::atomic::AtomicU64;
    if hooks.is_empty() {
        return;
    }
    type Get = fn(&WebhookStats) -> &AtomicU64;
    let series: [(&str, &str, Get); 4] = [
        (
            "webhook_delivered_total",
            "Events a webhook receiver accepted (2xx)",
            |w| &w.delivered,
        ),
        (
            "webhook_failed_attempts_total",
            "Webhook POSTs that failed (status, connection, timeout); retried with back-off",
            |w| &w.failed_attempts,
        ),
        (
            "webhook_given_up_total",
            "Webhook events dropped after max_attempts",
            |w| &w.given_up,
        ),
        (
            "webhook_dropped_total",
            "Webhook events dropped unsent: max_queued were waiting",
            |w| &w.dropped,
        ),
    ];
    for (name, help, get) in series {
        let _ = writeln!(
            out,
            "# HELP tpswitch_{name} {help}\n# TYPE tpswitch_{name} counter"
        );
        for w in hooks {
            let label = w.name.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "tpswitch_{name}{{webhook=\"{label}\"}} {}",
                get(w).load(Ordering::Relaxed)
            );
        }
    }
}

/// One series per trunk target: up (1), down (0) or not probed yet (-1),
/// and the last OPTIONS round trip.
fn trunk_target_gauges(out: &mut String, s: &ApiState) {
    let targets = s
        .trunk_targets
        .lock()
        .map(|g| g.clone())
        .unwrap_or_default();
    if targets.is_empty() {
        return;
    }
    // Prometheus label values escape `\` and `"` (text format 0.0.4).
    let label = |name: &str| name.replace('\\', "\\\\").replace('"', "\\\"");
    out.push_str("# HELP tpswitch_trunk_target_up OPTIONS keepalive: 1 answering, 0 not, -1 not probed yet\n# TYPE tpswitch_trunk_target_up gauge\n");
    for TrunkTargetStatus { trunk, status: t } in &targets {
        let trunk = label(trunk);
        let v = match t.health {
            Health::Up => 1,
            Health::Down => 0,
            Health::Unknown => -1,
        };
        let _ = writeln!(
            out,
            "tpswitch_trunk_target_up{{trunk=\"{trunk}\",target=\"{}\",transport=\"{}\"}} {v}",
            t.target.addr, t.target.transport
        );
    }
    out.push_str("# HELP tpswitch_trunk_target_rtt_seconds Round trip of the last answered OPTIONS\n# TYPE tpswitch_trunk_target_rtt_seconds gauge\n");
    for TrunkTargetStatus { trunk, status: t } in &targets {
        let trunk = label(trunk);
        if let Some(rtt) = t.rtt {
            let _ = writeln!(
                out,
                "tpswitch_trunk_target_rtt_seconds{{trunk=\"{trunk}\",target=\"{}\",transport=\"{}\"}} {:.6}",
                t.target.addr,
                t.target.transport,
                rtt.as_secs_f64()
            );
        }
    }
}

async fn agents(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if !authorized(&s, &headers) {
        return unauthorized();
    }
    // Take the `Arc` and let go of the watch before the store's await.
    let cfg = s.current.borrow().clone();
    let rows = match report::agents::from_store(&cfg, &s.store, chrono::Utc::now()).await {
        Ok(rows) => rows,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    match serde_json::to_string_pretty(&rows) {
        Ok(mut json) => {
            json.push('\n');
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl ApiState {
    /// A state over `cfg` and `store` with nothing running behind it (no
    /// SIP endpoint, no media), for route tests: `tokens` are the tokens
    /// in force.
    pub fn for_tests(cfg: Config, store: Store, tokens: auth::Tokens) -> Arc<ApiState> {
        let cfg = Arc::new(cfg);
        let directory = testing::directory(&cfg, &store);
        Arc::new(ApiState {
            current: tokio::sync::watch::channel(cfg.clone()).1,
            cfg,
            media: Arc::new(MediaStats::default()),
            transport: Arc::new(TransportStats::default()),
            sip: Arc::new(std::sync::Mutex::new(CoreStats::default())),
            registrations: Arc::default(),
            trunk_targets: Arc::default(),
            prompts: tokio::sync::watch::channel(Arc::default()).1,
            liveness: Arc::default(),
            live: crate::live::Live::default(),
            events: crate::events::EventBus::new(
                crate::events::DEFAULT_CAPACITY,
                chrono::Utc::now(),
            ),
            webhooks: Vec::new(),
            tokens,
            metrics: telemetry::install(),
            reload: tokio::sync::mpsc::channel(1).0,
            presence: {
                // Recovery runs in the spawned task: the state is built
                // synchronously, and a test's first request waits in the
                // command queue until the service runs.
                let (service, handle) = crate::presence::service::PresenceService::new(
                    store.clone(),
                    Arc::new(crate::presence::clock::SystemClock),
                );
                tokio::spawn(async move {
                    if let Ok(task) = service.spawn().await {
                        let _ = task.await;
                    }
                });
                handle
            },
            store,
            directory,
        })
    }
}

// Route tests' helpers; also the fuzz targets' (`fuzz/`) way to a state.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::PresenceStore;

    /// `/agents` reads the store the switch runs on. `cfg.store.path` names
    /// a file that does not exist, so a handler that opened its own
    /// connection from the path would see nobody online.
    #[tokio::test]
    async fn agents_reads_the_running_switch_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::embedded_default().unwrap();
        cfg.store.path = dir.path().join("never-created.db");
        let store = Store::open_in_memory().await.unwrap();
        let now = chrono::Utc::now();
        store
            .set_online("jsmith", now, now + chrono::Duration::hours(1), None, "t")
            .await
            .unwrap();
        let state = ApiState::for_tests(cfg, store, auth::Tokens::default());
        let resp = agents(State(state), HeaderMap::new()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let rows: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let jsmith = rows
            .as_array()
            .and_then(|a| a.iter().find(|r| r["id"] == "jsmith"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(jsmith["state"], "online", "{rows}");
        assert!(
            !cfg_path_exists(&dir),
            "the handler must not create a database"
        );
    }

    /// `/readyz` checks the prompt library in force, not the one loaded
    /// at start: a prompt a reload or an upload brings is seen at once.
    #[tokio::test]
    async fn readyz_checks_the_prompt_library_in_force() {
        let Ok(mut state) = Arc::try_unwrap(testing::state().await) else {
            panic!("the state has one owner");
        };
        let (library, in_force) = tokio::sync::watch::channel(Arc::new(PromptLibrary::default()));
        state.prompts = in_force;
        let state = Arc::new(state);
        let prompts = |json: &serde_json::Value| {
            json["checks"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["name"] == "prompts").cloned())
                .unwrap_or_default()
        };
        let before = testing::call(&state, axum::http::Method::GET, "/readyz", None, None).await;
        assert_eq!(prompts(&before.json)["ok"], false, "{}", before.json);
        // What a reload installs: every prompt the settings name.
        let mut full = PromptLibrary::default();
        let names: Vec<String> = state.current.borrow().prompts.keys().cloned().collect();
        assert!(!names.is_empty());
        for name in names {
            full.insert(crate::media::prompt::Prompt::from_pcm(name, &[0; 160]));
        }
        library.send_replace(Arc::new(full));
        let after = testing::call(&state, axum::http::Method::GET, "/readyz", None, None).await;
        assert_eq!(prompts(&after.json)["ok"], true, "{}", after.json);
    }

    /// `/metrics` keeps every counter's established name, renders the
    /// pacing thread's lateness as a histogram, and still wants the token.
    #[tokio::test]
    async fn metrics_keep_their_names_and_need_the_token() {
        let media = Arc::new(MediaStats::default());
        media.packets_sent.store(7, Ordering::Relaxed);
        let sip = CoreStats {
            requests: 3,
            ..CoreStats::default()
        };
        let cfg = Arc::new(Config::embedded_default().unwrap());
        let store = Store::open_in_memory().await.unwrap();
        let state = Arc::new(ApiState {
            current: tokio::sync::watch::channel(cfg.clone()).1,
            directory: testing::directory(&cfg, &store),
            cfg,
            media,
            transport: Arc::new(TransportStats::default()),
            sip: Arc::new(std::sync::Mutex::new(sip)),
            store,
            tokens: testing::tokens(),
            metrics: telemetry::install(),
            reload: tokio::sync::mpsc::channel(1).0,
            registrations: Arc::default(),
            trunk_targets: Arc::default(),
            prompts: tokio::sync::watch::channel(Arc::default()).1,
            liveness: Arc::default(),
            live: crate::live::Live::default(),
            // Never asked here: a handle with no service behind it.
            presence: crate::presence::service::PresenceService::new(
                Store::open_in_memory().await.unwrap(),
                Arc::new(crate::presence::clock::SystemClock),
            )
            .1,
            events: crate::events::EventBus::new(8, chrono::Utc::now()),
            webhooks: Vec::new(),
        });
        let refused = metrics(State(state.clone()), HeaderMap::new()).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {}", testing::VIEWER).parse().unwrap(),
        );
        let resp = metrics(State(state), headers).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        for line in [
            "tpswitch_sip_requests_total 3",
            "tpswitch_rtp_sent_total 7",
            "tpswitch_tcp_idle_closed_total 0",
            "# TYPE tpswitch_rtp_ticks_skipped_total counter",
            "tpswitch_pacing_lateness_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    fn cfg_path_exists(dir: &tempfile::TempDir) -> bool {
        dir.path().join("never-created.db").exists()
    }
}
