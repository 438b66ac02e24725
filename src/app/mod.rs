//! Start-up and shutdown: builds every part from the configuration and runs
//! them until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
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
use crate::presence::{SqliteStore, StoreError};
use crate::sip::core::{CoreConfig, Credentials, Local, SipCore, TrunkRoute, Untrusted};
use crate::sip::endpoint::{self, EndpointConfig};
use crate::sip::inspect::Limits;
use crate::sip::transaction::Timers;
use crate::sip::transport::{FrameLimits, TcpAdmission};

mod fds;
use crate::sip::uri::hostport;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    #[error("prompts: {0}")]
    Prompts(#[from] PromptError),
    #[error(
        "outbound_proxy: {0} is a host name; tpswitch does no DNS, write the trunk's IP address"
    )]
    TrunkName(String),
    #[error("store.path: {0}")]
    Store(#[from] StoreError),
    #[error("store.path: {0}")]
    StoreLock(#[from] LockError),
    #[error("media engine: {0}")]
    Media(#[from] MediaError),
    #[error("http.bind: cannot listen on {bind}: {source}; change http.bind or free the port")]
    Http {
        bind: SocketAddr,
        source: std::io::Error,
    },
}

/// `TPSWITCH_LOG` (or `RUST_LOG`) sets the filter; `info` by default.
pub fn init_logging() {
    let filter = std::env::var("TPSWITCH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    use std::io::IsTerminal;
    // Logs go to stderr; stdout carries only the "listening" line scripts
    // and tests read.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
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

/// The trunks as the SIP core uses them, in priority order, with their
/// passwords read from the environment.
fn trunk_routes(cfg: &Config) -> Result<Vec<TrunkRoute>, AppError> {
    cfg.trunks
        .iter()
        .map(|t| {
            let ip = match &t.outbound_proxy.host {
                config::Host::Ip(ip) => *ip,
                config::Host::Name(n) => return Err(AppError::TrunkName(n.clone())),
            };
            Ok(TrunkRoute {
                name: t.name.clone(),
                addr: SocketAddr::new(ip, t.outbound_proxy.port),
                tcp: t.outbound_proxy.transport == config::Transport::Tcp,
                allow: t.allow.clone(),
                max_calls: t.max_outbound_calls,
                max_cps: t.max_cps,
                ruri_host: t.request_uri_host.clone(),
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
            })
        })
        .collect()
}

/// Runs the switch until Ctrl-C / SIGTERM.
pub async fn run(cfg: Config) -> Result<(), AppError> {
    // Take over SIGTERM/SIGINT before anything says "listening": a signal
    // that arrives during start-up must shut down cleanly, not kill us with
    // the default action.
    let shutdown = Shutdown::install();
    // Before anything that acts on the store (re-armed expiry timers,
    // notification calls) or opens a port: a second switch on this store
    // must stop here, naming the first.
    let store_lock = StoreLock::acquire(&cfg.store.path)?;
    info!(lock = %store_lock.path().display(), "store locked");
    // Before any socket or file is opened.
    let fds = fds::plan(&cfg);
    let cfg = Arc::new(cfg);
    let prompts = Arc::new(load_prompts(&cfg)?);
    let store = SqliteStore::open(&cfg.store.path).await?;
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
    // Subscribed before the service starts: the queue misses no change.
    let queue_presence = presence.subscribe();
    let presence_task = presence_service.spawn().await?;
    let engine = MediaEngine::start(EngineConfig {
        rtcp_interval: cfg.media.rtcp_interval,
        pacing_threads: cfg.media.pacing_threads,
        ..EngineConfig::default()
    })?;
    let trunks = trunk_routes(&cfg)?;
    let allow: Vec<ipnet::IpNet> = cfg.trunks.iter().flat_map(|t| t.allow.clone()).collect();
    let ip = advertised_ip(&cfg, trunks.first().map_or(cfg.sip.bind, |t| t.addr));
    let cancel = CancellationToken::new();
    // SIP stops last, after the calls have sent their BYEs.
    let sip_cancel = CancellationToken::new();

    // The SIP port may be 0 (tests): then it is learnt by binding below,
    // before Contact and Via are written with it.
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
        },
        allow: allow.clone(),
        untrusted: match cfg.sip.untrusted {
            config::Untrusted::Reject => Untrusted::Reject,
            config::Untrusted::Drop => Untrusted::Drop,
        },
        max_calls: cfg.sip.max_calls as usize,
        max_transactions: cfg.sip.max_transactions as usize,
        retry_after: cfg.sip.retry_after,
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
    };
    let bind = cfg.sip.bind;
    let dialplan = crate::flows::directory::dialplan(cfg.clone());
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
    };
    let (handle, sip_task) = if bind.port() == 0 {
        // Bind to learn the port, then build the core with it.
        let probe = std::net::UdpSocket::bind(bind)
            .map_err(|source| endpoint::EndpointError::BindUdp { addr: bind, source })?;
        let port = probe.local_addr().map(|a| a.port()).unwrap_or(0);
        drop(probe);
        core_cfg.local.hostport = hostport(SocketAddr::new(ip, port));
        let core = SipCore::new(core_cfg, dialplan);
        endpoint::start(
            EndpointConfig {
                bind: SocketAddr::new(bind.ip(), port),
                ..endpoint_cfg
            },
            core,
            ev_tx,
            sip_cancel.clone(),
        )
        .await?
    } else {
        let core = SipCore::new(core_cfg, dialplan);
        endpoint::start(endpoint_cfg, core, ev_tx, sip_cancel.clone()).await?
    };
    info!(sip = %handle.local_addr, advertise = %ip, prompts = prompts.len(), "tpswitch running");
    // Tests read this line to learn the ports.
    println!("tpswitch listening sip={}", handle.local_addr);

    let ports = PortPool::new(
        cfg.sip.bind.ip(),
        cfg.media.rtp_ports.start(),
        cfg.media.rtp_ports.end(),
    );
    let (queue_tx, queue_rx) = crate::call::queue::channel();
    let ctx = Arc::new(CallContext {
        cfg: cfg.clone(),
        prompts,
        ports,
        commands: handle.commands.clone(),
        advertise: ip,
        engine,
        presence: presence.clone(),
        router: LegRouter::default(),
        queue: queue_tx,
    });
    let api = Arc::new(crate::api::ApiState {
        cfg: cfg.clone(),
        media: ctx.engine.stats().clone(),
        transport: handle.stats.clone(),
        sip: handle.sip_stats.clone(),
        store: store.clone(),
        token: std::env::var(&cfg.http.token_env)
            .ok()
            .filter(|t| !t.is_empty()),
    });
    if api.token.is_none() && !cfg.http.bind.ip().is_loopback() {
        tracing::warn!(bind = %cfg.http.bind, env = %cfg.http.token_env, "HTTP API on a non-loopback address without a token");
    }
    let http = crate::api::serve(api, cfg.http.bind, cancel.clone())
        .await
        .map_err(|source| AppError::Http {
            bind: cfg.http.bind,
            source,
        })?;
    println!("tpswitch listening http={http}");
    let notifier = tokio::spawn(notify::run(ctx.clone(), presence_events, cancel.clone()));
    let queues = tokio::spawn(crate::call::queue::run(
        ctx.clone(),
        store.clone(),
        queue_rx,
        queue_presence,
        cancel.clone(),
    ));
    let manager = CallManager::new(ctx);
    let calls = tokio::spawn(manager.run(ev_rx, cancel.clone()));

    shutdown.wait().await;
    info!("shutting down");
    cancel.cancel();
    // Calls hang up on cancel (BYE, CANCEL or 480) and the queue records how
    // its calls ended; SIP keeps running meanwhile so those requests leave.
    let _ = tokio::time::timeout(Duration::from_secs(2), calls).await;
    let _ = tokio::time::timeout(Duration::from_secs(3), queues).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sip_cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_millis(500), sip_task).await;
    notifier.abort();
    presence.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), presence_task).await;
    store.close().await;
    drop(store_lock);
    Ok(())
}

/// The signals that stop the switch, registered once at start, and SIGHUP,
/// which does not.
struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Shutdown {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::terminate())
                .and_then(|t| signal(SignalKind::interrupt()).map(|i| (t, i)))
                .ok();
            // SIGHUP's default action kills the process (exit 129) and
            // leaves every caller without a BYE; daemons are sent it to
            // reload, which does not exist yet. Taking it over is enough
            // to stop the default action; `wait` logs each one.
            let hangup = signal(SignalKind::hangup()).ok();
            Shutdown { signals, hangup }
        }
        #[cfg(not(unix))]
        {
            Shutdown {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.signals {
            let mut hangup = self.hangup;
            loop {
                tokio::select! {
                    _ = term.recv() => return,
                    _ = int.recv() => return,
                    Some(()) = async {
                        match hangup.as_mut() {
                            Some(h) => h.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        tracing::warn!("reload is not implemented yet; SIGHUP ignored");
                    }
                }
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
