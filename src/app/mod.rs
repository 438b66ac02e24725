//! Start-up, reload and shutdown: builds every part from the configuration,
//! reloads the settings on SIGHUP or when the API asks, and on SIGTERM (or
//! Ctrl-C) drains: new calls are refused while the calls in progress finish,
//! up to `sip.drain_timeout`; a second signal ends them at once.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::call::{notify, CallContext, CallManager, LegRouter};
use crate::config::{self, Config};
use crate::media::engine::{EngineConfig, MediaEngine, MediaError};
use crate::media::ports::PortPool;
use crate::media::prompt::{PromptError, PromptLibrary};
use crate::media::speech;
use crate::presence::clock::{Clock, ScaledClock, SystemClock};
use crate::presence::service::PresenceService;
use crate::presence::sqlite_lock::{LockError, StoreLock};
use crate::presence::{Store, StoreError};
use crate::sip::core::{CoreConfig, Credentials, Local, SipCore, TrunkRoute};
use crate::sip::endpoint::{self, EndpointConfig};
use crate::sip::inspect::Limits;
use crate::sip::nat::Nat;
use crate::sip::register::RegisterConfig;
use crate::sip::resolver::{DnsSettings, TrunkResolver};
use crate::sip::tls::{self, TlsError};
use crate::sip::trace::{NumberMatcher, SipTracer};
use crate::sip::transaction::Timers;
use crate::sip::transport::{FrameLimits, ListenTls, TcpAdmission, TrunkTls};
use crate::sip::SipCommand;

mod cluster;
mod fds;
mod memory;
mod reload;
use crate::sip::uri::hostport;
pub use reload::Overrides;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    #[error("prompts: {0}")]
    Prompts(#[from] PromptError),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{key}.outbound_proxy: {unresolved}; check the name and the DNS server ({nameserver}), or set dns.start_unresolved = true to start with the trunk down until it resolves")]
    TrunkUnresolved {
        /// `trunk` or `trunks[N]`: where the trunk is written.
        key: String,
        unresolved: crate::sip::dns::Unresolved,
        nameserver: String,
    },
    #[error("dns: {0}")]
    Dns(#[from] crate::sip::resolver::DnsError),
    #[error("dns: a trunk's resolution stopped ({0})")]
    Join(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("store.path: {0}")]
    StoreLock(#[from] LockError),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    #[error("media engine: {0}")]
    Media(#[from] MediaError),
    /// The file and the store's directory disagree, or joined they are not
    /// valid: one line per problem, each naming where.
    #[error("{}", .0.join("\n"))]
    Directory(Vec<String>),
    #[error("http.bind: cannot listen on {bind}: {source}; change http.bind or free the port")]
    Http {
        bind: SocketAddr,
        source: std::io::Error,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, with the event's target, its fields, and
    /// the span it was logged in and that span's parents (`span`, `spans`:
    /// a call's `call_id`, `flow`, `caller`, `agent`), for log shippers.
    Json,
}

/// `TPSWITCH_LOG` (or `RUST_LOG`) sets the filter; `info` by default.
pub fn init_logging(format: LogFormat) {
    let filter = std::env::var("TPSWITCH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    use std::io::IsTerminal;
    // Logs go to stderr; stdout carries only the "listening" line scripts
    // and tests read.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_target(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// Every prompt of the library plus the number clips, decoded and encoded
/// once. The clips live in `clips/` in the folder of the `online` prompt.
pub fn load_prompts(cfg: &Config) -> Result<PromptLibrary, PromptError> {
    let mut entries: Vec<_> = cfg
        .prompts
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(dir) = cfg
        .prompt_path("online")
        .and_then(|p| p.parent())
        .map(|p| p.to_path_buf())
    {
        entries.extend(
            speech::default_clip_entries(&dir)
                .into_iter()
                .filter(|(name, _)| !cfg.prompts.contains_key(name)),
        );
    }
    PromptLibrary::load(entries)
}

/// The SIP trace `sip.trace` and `sip.trace_numbers` ask for. A number in
/// a message is normalised as the configuration's numbers were (the
/// numbering plan's country code), so any common form matches.
fn sip_tracer(cfg: &Config) -> SipTracer {
    let trace = &cfg.sip.trace;
    let numbers: Option<NumberMatcher> = (!trace.numbers.is_empty()).then(|| {
        let wanted = trace.numbers.clone();
        let cc = cfg.numbering.default_country_code.clone();
        Box::new(move |user: &str| {
            config::E164::parse(user, &cc).is_ok_and(|n| wanted.contains(&n))
        }) as NumberMatcher
    });
    SipTracer::new(trace.all, numbers)
}

/// The address we put in Via, Contact and SDP.
fn advertised_ip(cfg: &Config, trunk: SocketAddr) -> IpAddr {
    match cfg.sip.advertise {
        config::Advertise::Ip(ip) => ip,
        config::Advertise::Auto if !cfg.sip.bind.ip().is_unspecified() => cfg.sip.bind.ip(),
        config::Advertise::Auto => {
            // The interface the kernel would use toward the trunk; connect()
            // on UDP sends nothing.
            let probe = if trunk.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            UdpSocket::bind(probe)
                .and_then(|s| s.connect(trunk).and_then(|_| s.local_addr()))
                .map(|a| a.ip())
                .unwrap_or(IpAddr::from([127, 0, 0, 1]))
        }
    }
}

/// The NAT plan of `[sip]`: the external signalling port defaults to the
/// port SIP listens on (`port`).
fn nat(cfg: &Config, port: u16) -> Nat {
    Nat {
        external_signaling: cfg
            .sip
            .external_signaling_address
            .map(|ip| SocketAddr::new(ip, cfg.sip.external_signaling_port.unwrap_or(port))),
        external_media: cfg.sip.external_media_address,
        local_networks: cfg.sip.local_networks.clone(),
    }
}

/// Trunk `t`'s own NAT plan over `[sip]`'s (`None` when it gives no NAT
/// key): its external signalling port defaults to the port SIP listens on.
pub(crate) fn trunk_nat(cfg: &Config, t: &config::TrunkConfig, port: u16) -> Option<Nat> {
    let n = &t.nat;
    if n == &config::TrunkNat::default() {
        return None;
    }
    Some(
        nat(cfg, port).overridden(
            n.external_signaling_address
                .map(|ip| SocketAddr::new(ip, n.external_signaling_port.unwrap_or(port))),
            n.external_media_address,
            n.local_networks.as_deref(),
        ),
    )
}

/// The TLS listener's and each trunk's TLS configurations (by trunk
/// index; `None` for a trunk not reached over TLS), read from the files
/// the config names; `run` and `check-config` both call it, so both refuse
/// a missing file, bad PEM or a key that is not the certificate's.
pub fn tls_settings(cfg: &Config) -> Result<(Option<ListenTls>, Vec<Option<TrunkTls>>), TlsError> {
    let identity = cfg.sip.tls_identity.as_ref().map(|id| tls::Identity {
        certificate: id.certificate.clone(),
        private_key: id.private_key.clone(),
    });
    let listen = match (&cfg.sip.tls, &identity) {
        (Some(_), Some(id)) => Some(ListenTls {
            config: tls::server_config(id)?,
            handshake_timeout: cfg.sip.tls_handshake_timeout,
        }),
        _ => None,
    };
    let mut trunks = Vec::new();
    for t in &cfg.trunks {
        if t.outbound_proxy.transport != config::Transport::Tls {
            trunks.push(None);
            continue;
        }
        // Each trunk's own client: its CA, and its host name as SNI and
        // as the name its certificate must carry (RFC 5922 §7), whichever
        // server DNS leads to.
        let server_name = match &t.tls_server_name {
            Some(n) => n.clone(),
            None => match &t.outbound_proxy.host {
                config::Host::Ip(ip) => ip.to_string(),
                config::Host::Name(n) => n.clone(),
            },
        };
        let verify = tls::TrunkVerification {
            ca_file: t.tls_ca_file.clone(),
            server_name,
        };
        let (config, server_name) = tls::client_config(&verify, identity.as_ref())?;
        trunks.push(Some(TrunkTls {
            key: t.key.clone(),
            config,
            server_name,
            handshake_timeout: cfg.sip.tls_handshake_timeout,
        }));
    }
    Ok((listen, trunks))
}

/// A trunk as the switch starts with it: its servers (RFC 3263) and, for
/// a host name, the resolver that keeps them fresh (its own cache).
pub struct TrunkStart {
    /// `trunk` or `trunks[N]`, for messages.
    pub key: String,
    /// `None`: a host name that did not resolve, started anyway
    /// (`dns.start_unresolved`); calls fail as the trunk's until it does.
    pub resolved: Option<crate::sip::dns::Resolved>,
    pub dns: Option<(TrunkResolver, crate::sip::dns::Destination)>,
}

/// Resolves every trunk's `outbound_proxy` (in priority order) the same
/// way for `run` and `check-config`: a host name that gives no address is
/// an error naming that trunk's key and what was asked, unless
/// `dns.start_unresolved` (then a warning, and only that trunk is down).
pub async fn resolve_trunks(cfg: &Config) -> Result<Vec<TrunkStart>, AppError> {
    // All at once: a name that does not answer costs `dns.timeout` per
    // query, and trunks one after the other would add those up.
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in cfg.trunks.iter().enumerate() {
        let (dns, t) = (cfg.dns.clone(), t.clone());
        set.spawn(async move { (i, resolve_trunk(&dns, &t).await) });
    }
    let mut done: Vec<(usize, Result<TrunkStart, AppError>)> = Vec::new();
    while let Some(r) = set.join_next().await {
        // A resolution cannot panic on what DNS sends (no unwrap on it); a
        // task that did anyway is a bug, and start-up stops saying so.
        done.push(r.map_err(|e| AppError::Join(e.to_string()))?);
    }
    // The first trunk (by priority) that fails is the one named.
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

async fn resolve_trunk(
    dns_cfg: &config::DnsConfig,
    trunk: &config::TrunkConfig,
) -> Result<TrunkStart, AppError> {
    use crate::sip::dns;
    let proxy = &trunk.outbound_proxy;
    let transport = match proxy.transport {
        config::Transport::Udp => dns::Transport::Udp,
        config::Transport::Tcp => dns::Transport::Tcp,
        config::Transport::Tls => dns::Transport::Tls,
    };
    let name = match &proxy.host {
        config::Host::Ip(ip) => {
            return Ok(TrunkStart {
                key: trunk.key.clone(),
                resolved: Some(dns::Resolved {
                    records: vec![dns::Weighted {
                        priority: 0,
                        weight: 0,
                        targets: vec![dns::Target {
                            addr: SocketAddr::new(*ip, proxy.port),
                            transport,
                        }],
                    }],
                    ttl: None,
                }),
                dns: None,
            })
        }
        config::Host::Name(n) => n.clone(),
    };
    let dest = dns::Destination {
        host: name,
        port: proxy.port_given.then_some(proxy.port),
        transport: proxy.transport_given.then_some(transport),
        // RFC 3263 §4.1: a TLS trunk takes only TLS records (`sips:`
        // asks NAPTR for SIPS+D2T, `;transport=tls` goes to `_sips._tcp`).
        secure: transport == dns::Transport::Tls,
    };
    let resolver = TrunkResolver::new(DnsSettings {
        nameserver: dns_cfg.nameserver,
        timeout: dns_cfg.timeout,
        min_refresh: dns_cfg.min_refresh,
        max_refresh: dns_cfg.max_refresh,
    })?;
    let resolved = match resolver.resolve(&dest).await {
        Ok(r) => {
            info!(trunk = %trunk.name, name = %dest, targets = %crate::sip::resolver::describe(&r), "trunk resolved (RFC 3263)");
            for t in r.records.iter().flat_map(|w| &w.targets) {
                if !trunk.allow.iter().any(|n| n.contains(&t.addr.ip())) {
                    tracing::warn!(
                        trunk = %trunk.name, target = %t, allow = %format!("{}.allow", trunk.key),
                        "trunk target outside the trunk's allow: its responses will be dropped; add its address there"
                    );
                }
            }
            Some(r)
        }
        Err(unresolved) if dns_cfg.start_unresolved => {
            tracing::warn!(
                trunk = %trunk.name,
                key = %format!("{}.outbound_proxy", trunk.key),
                error = %unresolved,
                "trunk does not resolve; starting with it down (dns.start_unresolved)"
            );
            None
        }
        Err(unresolved) => {
            return Err(AppError::TrunkUnresolved {
                key: trunk.key.clone(),
                unresolved,
                nameserver: dns_cfg
                    .nameserver
                    .map(|a| format!("dns.nameserver {a}"))
                    .unwrap_or_else(|| {
                        "the system's, from /etc/resolv.conf; dns.nameserver sets one".into()
                    }),
            })
        }
    };
    Ok(TrunkStart {
        key: trunk.key.clone(),
        resolved,
        dns: Some((resolver, dest)),
    })
}

/// The trunks as the SIP core uses them, in priority order, with their
/// passwords read from the environment. Each starts at its first resolved
/// server (the core gets the whole list before any call); an unresolved
/// trunk at a placeholder no call is sent to.
fn trunk_routes(cfg: &Config, starts: &[TrunkStart]) -> Vec<TrunkRoute> {
    cfg.trunks
        .iter()
        .zip(starts)
        .map(|(t, start)| {
            let first = start
                .resolved
                .as_ref()
                .and_then(|r| r.records.iter().flat_map(|w| &w.targets).next().copied());
            let transport = match t.outbound_proxy.transport {
                config::Transport::Udp => crate::sip::dns::Transport::Udp,
                config::Transport::Tcp => crate::sip::dns::Transport::Tcp,
                config::Transport::Tls => crate::sip::dns::Transport::Tls,
            };
            let addr = first.map_or_else(
                || SocketAddr::from(([127, 0, 0, 1], t.outbound_proxy.port)),
                |f| f.addr,
            );
            // A TLS trunk stays TLS whatever the records; a plain one goes
            // over the transport its first record names.
            let transport = match first {
                Some(f) if transport != crate::sip::dns::Transport::Tls => f.transport,
                _ => transport,
            };
            // RFC 3263 §4: a named trunk keeps its name in the Request-URI.
            let request_host = start.dns.as_ref().map(|(_, d)| match d.port {
                Some(p) => format!("{}:{p}", d.host),
                None => d.host.clone(),
            });
            TrunkRoute {
                name: t.name.clone(),
                addr,
                tcp: transport == crate::sip::dns::Transport::Tcp,
                tls: transport == crate::sip::dns::Transport::Tls,
                via_proxy: t.in_dialog_via_proxy,
                allow: t.allow.clone(),
                max_calls: t.max_outbound_calls,
                max_cps: t.max_cps,
                ruri_host: t.request_uri_host.clone().or(request_host),
                from_host: t.from_host.clone(),
                to_host: t.to_host.clone(),
                pai: t.pai,
                privacy: t.privacy.clone(),
                headers: t.headers.clone(),
                credentials: std::env::var(&t.password_env)
                    .ok()
                    .filter(|_| !t.username.is_empty())
                    .map(|password| Credentials {
                        username: t.username.clone(),
                        password,
                    }),
                follow_redirects: t.follow_redirects,
                max_redirects: t.max_redirects,
                srtp: t.srtp,
                // Set once the SIP port is known (run_with).
                nat: None,
                keepalive: t.keepalive_interval,
                source_header: t.source_header.clone(),
            }
        })
        .collect()
}

/// Runs the switch until Ctrl-C / SIGTERM (and the drain after it).
/// `overrides` were applied to `cfg` by the caller and are applied again to
/// every reloaded file.
/// Where the API listens: `bind`, unless no token is in force and `bind`
/// is not loopback — an API without authentication is for this host only,
/// so it keeps the port and moves to loopback of the same family.
fn api_bind(bind: SocketAddr, no_token: bool) -> SocketAddr {
    if !no_token || bind.ip().is_loopback() {
        return bind;
    }
    let ip = match bind {
        SocketAddr::V4(_) => std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
        SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, bind.port())
}

pub async fn run(cfg: Config, overrides: Overrides) -> Result<(), AppError> {
    // Take over SIGTERM/SIGINT/SIGHUP before anything else (the trunk's DNS
    // lookup included): a signal that arrives during start-up must shut
    // down cleanly, not kill us with the default action.
    let signals = Signals::install();
    let trunk_starts = resolve_trunks(&cfg).await?;
    run_with(cfg, overrides, trunk_starts, signals).await
}

/// One switch per SQLite store: a file lock beside the file, held until
/// `run` returns. A PostgreSQL store is shared by nodes instead, each
/// registered under its own `store.node` (`cluster::register`).
#[derive(Debug)]
enum RunLock {
    File { _lock: StoreLock },
    Shared,
}

impl RunLock {
    async fn acquire(cfg: &crate::config::model::StoreConfig) -> Result<RunLock, AppError> {
        match &cfg.postgres {
            Some(_) => Ok(RunLock::Shared),
            None => {
                let lock = StoreLock::acquire(&cfg.path)?;
                info!(lock = %lock.path().display(), "store locked");
                Ok(RunLock::File { _lock: lock })
            }
        }
    }
}

/// The file's configuration joined with the store's directory objects:
/// the configuration the switch runs, and the directory's owner state.
async fn join_directory(
    cfg: Config,
    overrides: Overrides,
    store: &Store,
) -> Result<(Config, crate::directory::LiveDirectory), AppError> {
    let text = std::fs::read_to_string(&cfg.source).map_err(|e| {
        AppError::Directory(vec![format!(
            "{}: cannot read the configuration file again: {e}",
            cfg.source.display()
        )])
    })?;
    let dir = crate::directory::LiveDirectory::load(cfg.source.clone(), text, store)
        .await
        .map_err(AppError::Directory)?;
    if dir.api.is_empty() {
        return Ok((cfg, dir));
    }
    let mut joined = dir.build().map_err(|e| {
        AppError::Directory(crate::config::directory::explain(&e, &dir.file, &dir.api))
    })?;
    overrides.apply(&mut joined);
    info!(
        objects = dir.api.len(),
        store = %dir.store_name,
        "directory: objects made through the API joined with the file's"
    );
    Ok((joined, dir))
}

/// Agents' PINs in a world-readable configuration file are a warning, not a
/// refusal: the operator may have reasons, but should know.
fn warn_if_pins_readable(cfg: &Config) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(&cfg.source) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if cfg.pins_readable_by_others(mode) {
        tracing::warn!(
            file = %cfg.source.display(),
            mode = %format!("{mode:o}"),
            "the configuration file holds agents' PINs and every local user may read it: chmod o-r it"
        );
    }
}

/// Runs the switch with the trunks already resolved.
async fn run_with(
    cfg: Config,
    overrides: Overrides,
    trunk_starts: Vec<TrunkStart>,
    mut signals: Signals,
) -> Result<(), AppError> {
    // Before any shell emits a metric: what is emitted with no recorder
    // installed is lost.
    let metrics = crate::telemetry::install();
    // Certificates are read before the store is touched, as check-config
    // reads them.
    let (listen_tls, trunk_tls) = tls_settings(&cfg)?;
    // Before anything that acts on the store (re-armed expiry timers,
    // notification calls) or opens a port: a second switch on this store
    // must stop here, naming the first.
    let store_lock = RunLock::acquire(&cfg.store).await?;
    warn_if_pins_readable(&cfg);
    // Before any socket or file is opened.
    let fds = fds::plan(&cfg);
    let store = Store::connect(&cfg.store).await?;
    // Before anything acts on the store (recovery clears this node's old
    // activities; its old claims are let go here).
    let node = match &store {
        Store::Postgres(pg) => {
            cluster::register(pg, &cfg.store.cluster).await?;
            Some(pg.clone())
        }
        Store::Sqlite(_) => None,
    };
    // The users, flows and mappings made through the API join the file's
    // before anything runs; a key both declare stops the start, naming both.
    let (cfg, live_directory) = join_directory(cfg, overrides, &store).await?;
    let cfg = Arc::new(cfg);
    let prompts = Arc::new(load_prompts(&cfg)?);
    let clock: Arc<dyn Clock> = match std::env::var("TPSWITCH_CLOCK_SPEED")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        Some(f) if f > 1.0 => {
            tracing::warn!(
                factor = f,
                "TPSWITCH_CLOCK_SPEED: presence time runs fast (tests only)"
            );
            ScaledClock::new(f)
        }
        _ => Arc::new(SystemClock),
    };
    let (presence_service, presence) = PresenceService::new(store.clone(), clock);
    let presence_events = presence.subscribe();
    // Presence, call and attempt events, numbered for SSE resume and fed
    // to webhooks; subscribed before the service starts, so the start-up
    // expiries are on it.
    let events = crate::events::EventBus::new(crate::events::DEFAULT_CAPACITY, chrono::Utc::now());
    tokio::spawn(crate::presence::events::forward(
        presence.subscribe(),
        events.clone(),
    ));
    // Subscribed before the service starts: the queue misses no change.
    let queue_presence = presence.subscribe();
    let presence_task = presence_service.spawn().await?;
    let engine = MediaEngine::start(EngineConfig {
        rtcp_interval: cfg.media.rtcp_interval,
        pacing_threads: cfg.media.pacing_threads,
        ..EngineConfig::default()
    })?;
    let trunks = trunk_routes(&cfg, &trunk_starts);
    // The first trunk's first server tells which interface to advertise.
    let ip = advertised_ip(
        &cfg,
        trunks.first().map_or_else(
            || SocketAddr::from(([127, 0, 0, 1], cfg.trunk.outbound_proxy.port)),
            |t| t.addr,
        ),
    );
    // The same policy a reload sends (`reload::policy`), so the two can
    // never disagree on who is trusted.
    let policy = reload::policy(&cfg);
    let allow = policy.allow.clone();
    let flood = policy.flood.clone();
    let cancel = CancellationToken::new();
    // SIP stops last, after the calls have sent their BYEs.
    let sip_cancel = CancellationToken::new();

    // The TLS listener is bound here, before Contact is written with its
    // port (which may be 0 in tests: the kernel's choice), and handed to
    // the endpoint as it is: never released and bound again, which would
    // race other programs for the port.
    let tls_listener = match &cfg.sip.tls {
        Some(t) => {
            let bind_err = |source| endpoint::EndpointError::BindTls {
                addr: t.bind,
                source,
            };
            let l = std::net::TcpListener::bind(t.bind).map_err(bind_err)?;
            l.set_nonblocking(true).map_err(bind_err)?;
            let addr = l.local_addr().map_err(bind_err)?;
            Some((l, addr))
        }
        None => None,
    };
    let tls_bind = tls_listener.as_ref().map(|(_, a)| *a);
    // The SIP port may be 0 (tests): then the endpoint learns it by
    // binding, and `build_core` below writes it into Contact and Via.
    let mut core_cfg = CoreConfig {
        timers: Timers {
            t1: cfg.sip.t1,
            t2: cfg.sip.t2,
            t4: cfg.sip.t4,
        },
        local: Local {
            hostport: hostport(SocketAddr::new(ip, cfg.sip.bind.port())),
            user_agent: if cfg.sip.user_agent.is_empty() {
                "tpswitch".into()
            } else {
                cfg.sip.user_agent.clone()
            },
            nat: nat(&cfg, cfg.sip.bind.port()),
            tls_hostport: tls_bind.map(|b| hostport(SocketAddr::new(ip, b.port()))),
        },
        allow: policy.allow,
        untrusted: policy.untrusted,
        max_calls: policy.max_calls,
        max_transactions: policy.max_transactions,
        retry_after: policy.retry_after,
        codecs: cfg.media.codecs.clone(),
        dtmf_payload_type: cfg.media.dtmf_payload_type,
        // Validation bounds both to a day (config::validate::SESSION_MAX).
        session_expires: u32::try_from(cfg.sip.session_expires.as_secs()).unwrap_or(u32::MAX),
        min_se: u32::try_from(cfg.sip.min_se.as_secs()).unwrap_or(u32::MAX),
        trunks,
        limits: Limits {
            max_message_bytes: cfg.sip.max_message_bytes as usize,
            ..Limits::default()
        },
        registrations: Vec::new(),
    };
    // Every trunk with `register = true` gets its own registration, with
    // that trunk's credentials (`cfg.trunks` and the routes share order).
    for (t, route) in cfg.trunks.iter().zip(&core_cfg.trunks) {
        let Some(r) = &t.register else {
            continue;
        };
        core_cfg.registrations.push(RegisterConfig {
            trunk: t.name.clone(),
            registrar: format!("sip:{}", r.domain),
            aor: format!("sip:{}@{}", r.user, r.domain),
            contact_user: r.contact_user.clone(),
            // Filled in by the core once the SIP port is bound.
            hostport: String::new(),
            tcp: false,
            user_agent: String::new(),
            // Validation bounds it to a day.
            expires: u32::try_from(r.expires.as_secs()).unwrap_or(86_400),
            retry_base: r.retry,
            retry_max: r.retry_max,
            credentials: route.credentials.clone(),
        });
    }
    for (route, t) in core_cfg.trunks.iter_mut().zip(&cfg.trunks) {
        route.nat = trunk_nat(&cfg, t, cfg.sip.bind.port());
    }
    let bind = cfg.sip.bind;
    let (dialplan_tx, dialplan_rx) = watch::channel(cfg.clone());
    let dialplan = crate::flows::directory::dialplan(dialplan_rx);
    let (ev_tx, ev_rx) = mpsc::channel(8192);
    let frame = FrameLimits {
        max_message_bytes: cfg.sip.max_message_bytes as usize,
        max_header_bytes: cfg.sip.max_header_bytes as usize,
    };
    let endpoint_cfg = EndpointConfig {
        bind,
        tcp: cfg.sip.tcp,
        frame,
        admission: TcpAdmission {
            allow,
            trusted: fds.tcp_trusted,
            untrusted: fds.tcp_untrusted,
        },
        tcp_idle_timeout: cfg.sip.tcp_idle_timeout,
        tls: tls_listener.map(|(l, _)| l).zip(listen_tls),
        trunk_tls,
        trace: sip_tracer(&cfg),
    };
    let port_zero = bind.port() == 0;
    let build_core = |bound: SocketAddr| {
        if port_zero {
            // The kernel chose the port: Via, Contact and NAT follow it.
            let port = bound.port();
            core_cfg.local.hostport = hostport(SocketAddr::new(ip, port));
            core_cfg.local.nat = nat(&cfg, port);
            for (route, t) in core_cfg.trunks.iter_mut().zip(&cfg.trunks) {
                route.nat = trunk_nat(&cfg, t, port);
            }
        }
        let mut core = SipCore::new(core_cfg, dialplan);
        core.set_flood(flood);
        core
    };
    let (handle, sip_task) =
        endpoint::start(endpoint_cfg, build_core, ev_tx, sip_cancel.clone()).await?;
    // `/readyz` says "not ready" once the endpoint's task has ended, for
    // whatever reason; the wrapper keeps the task's result for shutdown.
    let liveness = Arc::new(crate::api::ready::Liveness::default());
    let sip_task = {
        let liveness = liveness.clone();
        tokio::spawn(async move {
            let ended = sip_task.await;
            liveness
                .sip_running
                .store(false, std::sync::atomic::Ordering::Relaxed);
            ended
        })
    };
    let mut dns_tasks = Vec::new();
    for (i, start) in trunk_starts.into_iter().enumerate() {
        let records = start
            .resolved
            .as_ref()
            .map(|r| r.records.clone())
            .unwrap_or_default();
        // Queued before anything can dial: the core sees every trunk's
        // targets (or none, when unresolved) before the first call, and
        // starts their keepalive.
        let _ = handle
            .commands
            .send(crate::sip::SipCommand::TrunkTargets { trunk: i, records })
            .await;
        if let Some((resolver, dest)) = start.dns {
            dns_tasks.push(tokio::spawn(crate::sip::resolver::keep_fresh(
                crate::sip::resolver::Fresh {
                    trunk: i,
                    name: cfg
                        .trunks
                        .get(i)
                        .map(|t| t.name.clone())
                        .unwrap_or_default(),
                    resolver,
                    dest,
                },
                start.resolved,
                handle.commands.clone(),
                cancel.clone(),
            )));
        }
    }
    // The addresses peers are told, never a wildcard: what a NAT or
    // one-way-audio problem is chased with.
    let media_bind = cfg.media.bind_address.unwrap_or(cfg.sip.bind.ip());
    let media_ip = match cfg.media.bind_address {
        Some(b) if !b.is_unspecified() => b,
        _ => ip,
    };
    let sip_nat = nat(&cfg, handle.local_addr.port());
    let trunk_nats: std::collections::HashMap<String, Nat> = cfg
        .trunks
        .iter()
        .filter_map(|t| {
            let n = trunk_nat(&cfg, t, handle.local_addr.port())?;
            info!(
                trunk = %t.name,
                external_sip = %n.external_signaling.map_or("none".into(), |a| a.to_string()),
                external_rtp = %n.external_media_ip().map_or("none".into(), |a| a.to_string()),
                local_networks = %n.local_networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                "trunk's own NAT plan"
            );
            Some((t.name.clone(), n))
        })
        .collect();
    for t in cfg.trunks.iter().filter(|t| t.srtp_keys_in_clear()) {
        tracing::warn!(
            trunk = %t.name,
            srtp = %t.srtp.as_str(),
            "SRTP keys are sent in the SDP over signalling without TLS: whoever sees the signalling can decrypt the media; make outbound_proxy sips: or ;transport=tls"
        );
    }
    info!(
        sip = %handle.local_addr,
        advertise = %ip,
        external_sip = %sip_nat.external_signaling.map_or("none".into(), |a| a.to_string()),
        rtp_bind = %media_bind,
        rtp_advertise = %media_ip,
        external_rtp = %sip_nat.external_media_ip().map_or("none".into(), |a| a.to_string()),
        local_networks = %cfg.sip.local_networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        prompts = prompts.len(),
        "tpswitch running"
    );
    // Tests read this line to learn the ports.
    println!("tpswitch listening sip={}", handle.local_addr);
    if let Some(tls) = handle.tls_addr {
        println!("tpswitch listening tls={tls}");
    }

    let ports = PortPool::new(
        media_bind,
        cfg.media.rtp_ports.start(),
        cfg.media.rtp_ports.end(),
    );
    let (queue_tx, queue_rx) = crate::call::queue::channel();
    let (reload_tx, mut reload_rx) = mpsc::channel(8);
    let (directory_tx, mut directory_rx) = mpsc::channel(8);
    let (directory_view, directory_view_rx) = watch::channel(Arc::new(live_directory.view()));
    let ctx = Arc::new(CallContext {
        cfg: cfg.clone(),
        prompts,
        ports,
        commands: handle.commands.clone(),
        advertise: media_ip,
        nat: sip_nat,
        trunk_nats,
        engine,
        presence: presence.clone(),
        router: LegRouter::default(),
        queue: queue_tx,
        live: crate::live::Live::default(),
        events: events.clone(),
    });
    let webhooks = crate::events::webhook::spawn(
        &cfg.webhooks,
        |k| std::env::var(k).ok(),
        &events,
        cancel.clone(),
    );
    // The library in force for `/readyz`; the reloader swaps it with the
    // call context.
    let (prompts_tx, prompts_rx) = watch::channel(ctx.prompts.clone());
    let api = Arc::new(crate::api::ApiState {
        cfg: cfg.clone(),
        current: dialplan_tx.subscribe(),
        media: ctx.engine.stats().clone(),
        transport: handle.stats.clone(),
        sip: handle.sip_stats.clone(),
        registrations: handle.registrations.clone(),
        trunk_targets: handle.trunk_targets.clone(),
        store: store.clone(),
        tokens: crate::api::auth::Tokens::from_env(&cfg.http, |k| std::env::var(k).ok()),
        metrics,
        reload: reload_tx,
        prompts: prompts_rx,
        liveness: liveness.clone(),
        live: ctx.live.clone(),
        presence: presence.clone(),
        events,
        webhooks,
        directory: crate::directory::Handle {
            requests: directory_tx,
            view: directory_view_rx,
        },
    });
    let http_bind = api_bind(cfg.http.bind, api.tokens.is_empty());
    if http_bind != cfg.http.bind {
        tracing::warn!(
            configured = %cfg.http.bind,
            bind = %http_bind,
            env = %cfg.http.token_env,
            "no API token is set: the HTTP API binds loopback only (set the token to serve other hosts)"
        );
    } else if api.tokens.is_empty() {
        info!(env = %cfg.http.token_env, "no API token is set: the HTTP API is open to local callers");
    }
    let http = crate::api::serve(api, http_bind, cancel.clone())
        .await
        .map_err(|source| AppError::Http {
            bind: http_bind,
            source,
        })?;
    println!("tpswitch listening http={http}");
    let (calls_tx, current) = watch::channel(ctx.clone());
    let router = ctx.router.clone();
    let sip_commands = ctx.commands.clone();
    let mut reloader = reload::Reloader {
        prompts: prompts_tx,
        path: cfg.source.clone(),
        overrides,
        dialplan: dialplan_tx,
        calls: calls_tx,
        sip: sip_commands.clone(),
        directory: live_directory,
        store: store.clone(),
        view: directory_view,
    };
    let notifier = tokio::spawn(notify::run(
        current.clone(),
        presence_events,
        cancel.clone(),
    ));
    tokio::spawn(crate::call::reminder::run(
        current.clone(),
        ctx.presence.subscribe(),
        cancel.clone(),
    ));
    tokio::spawn(memory::run(cancel.clone()));
    // Other nodes' directory changes: re-read from the store by the
    // reloader, as one of its requests.
    let (dir_refresh_tx, mut dir_refresh_rx) = mpsc::channel::<()>(1);
    let shared = match node {
        Some(pg) => {
            let (news_tx, news) = crate::call::queue::news_channel();
            tokio::spawn(cluster::run(
                pg.clone(),
                cfg.store.cluster.clone(),
                cluster::Listeners {
                    presence: presence.clone(),
                    agents: news_tx.clone(),
                    directory: dir_refresh_tx,
                },
                cancel.clone(),
            ));
            Some(crate::call::queue::Shared {
                store: pg,
                lease: cfg.store.cluster.claim_lease,
                news_tx,
                news,
            })
        }
        None => None,
    };
    let queues = tokio::spawn(crate::call::queue::run(
        current.clone(),
        store.clone(),
        queue_rx,
        queue_presence,
        shared,
        cancel.clone(),
    ));
    let manager = CallManager::new(current);
    let calls = tokio::spawn(manager.run(ev_rx, cancel.clone()));

    // Running: reload when asked, until the first stop signal.
    let first = loop {
        tokio::select! {
            sig = signals.next() => match sig {
                Signal::Reload => {
                    reloader.reload("SIGHUP").await;
                }
                Signal::Stop(name) => break name,
            },
            Some(reply) = reload_rx.recv() => {
                let _ = reply.send(reloader.reload("HTTP API").await);
            }
            Some(req) = directory_rx.recv() => reloader.change(req).await,
            Some(()) = dir_refresh_rx.recv() => reloader.refresh_from_store().await,
        }
    };
    // Draining (issue 11): the SIP core answers new INVITEs 503 with
    // Retry-After while the calls in progress (log-in menus, customers in a
    // queue or bridged to an agent) go on until they end by themselves, the
    // drain timeout passes, or a second signal says not to wait.
    // Load balancers polling /readyz stop sending before the 503s start.
    liveness
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let drain_timeout = reloader.config().sip.drain_timeout;
    info!(
        signal = %first,
        legs = router.legs().len(),
        timeout_s = drain_timeout.as_secs(),
        "draining: new calls get 503; calls in progress may finish (signal again to end them now)"
    );
    let _ = sip_commands.send(SipCommand::Drain).await;
    let until = tokio::time::Instant::now() + drain_timeout;
    loop {
        tokio::select! {
            _ = router.idle() => {
                info!("drained: every call has ended");
                break;
            }
            _ = tokio::time::sleep_until(until) => {
                info!(left = router.legs().len(), "drain timeout: ending the calls that are left");
                break;
            }
            sig = signals.next() => match sig {
                Signal::Stop(name) => {
                    info!(signal = %name, left = router.legs().len(), "second signal: ending every call now");
                    break;
                }
                Signal::Reload => {
                    reloader.reload("SIGHUP").await;
                }
            },
            Some(reply) = reload_rx.recv() => {
                let _ = reply.send(reloader.reload("HTTP API").await);
            }
            Some(req) = directory_rx.recv() => reloader.change(req).await,
            Some(()) = dir_refresh_rx.recv() => reloader.refresh_from_store().await,
        }
    }
    info!("shutting down");
    // Presence is left alone: windows stay in the store and their expiry
    // is re-armed at the next start.
    cancel.cancel();
    // Calls hang up on cancel (BYE, CANCEL or 480) and the queue records how
    // its calls ended; SIP keeps running meanwhile so those requests leave.
    let _ = tokio::time::timeout(Duration::from_secs(2), calls).await;
    let _ = tokio::time::timeout(Duration::from_secs(3), queues).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sip_cancel.cancel();
    // Up to 2 s more when the registrar must still answer our unregister
    // (the endpoint's own bound, UNREGISTER_WAIT).
    let _ = tokio::time::timeout(Duration::from_millis(2500), sip_task).await;
    notifier.abort();
    for t in dns_tasks {
        t.abort();
    }
    presence.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), presence_task).await;
    store.close().await;
    drop(store_lock);
    Ok(())
}

/// What a signal asks for.
enum Signal {
    /// SIGTERM or SIGINT (named for the log).
    Stop(&'static str),
    /// SIGHUP: re-read the configuration.
    Reload,
}

/// The signals the switch acts on, registered once at start (before then
/// their default actions would kill the process without a BYE).
struct Signals {
    #[cfg(unix)]
    unix: Option<UnixSignals>,
}

#[cfg(unix)]
struct UnixSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let unix = (|| {
                Ok::<_, std::io::Error>(UnixSignals {
                    term: signal(SignalKind::terminate())?,
                    int: signal(SignalKind::interrupt())?,
                    hup: signal(SignalKind::hangup())?,
                })
            })();
            if let Err(e) = &unix {
                tracing::warn!(error = %e, "cannot take over SIGTERM/SIGINT/SIGHUP; Ctrl-C only");
            }
            Signals { unix: unix.ok() }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        if let Some(s) = self.unix.as_mut() {
            return tokio::select! {
                _ = s.term.recv() => Signal::Stop("SIGTERM"),
                _ = s.int.recv() => Signal::Stop("SIGINT"),
                _ = s.hup.recv() => Signal::Reload,
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop("Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use super::api_bind;

    #[test]
    fn without_a_token_the_api_moves_to_loopback_and_keeps_its_port() {
        let any4 = "0.0.0.0:8080".parse().unwrap();
        let any6 = "[::]:8080".parse().unwrap();
        assert_eq!(api_bind(any4, true), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(api_bind(any6, true), "[::1]:8080".parse().unwrap());
        assert_eq!(api_bind(any4, false), any4);
        let lo = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(api_bind(lo, true), lo);
    }
}
