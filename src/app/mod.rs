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
use crate::presence::{SqliteStore, StoreError};
use crate::sip::core::{CoreConfig, Credentials, Local, SipCore, Untrusted};
use crate::sip::endpoint::{self, EndpointConfig};
use crate::sip::inspect::Limits;
use crate::sip::transaction::Timers;
use crate::sip::transport::{FrameLimits, TcpAdmission};
use crate::sip::SipCommand;

mod fds;
mod reload;
use crate::sip::uri::hostport;
pub use reload::Overrides;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    #[error("prompts: {0}")]
    Prompts(#[from] PromptError),
    #[error("trunk.outbound_proxy: {0} is a host name; tpswitch does no DNS, write the trunk's IP address")]
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

/// Runs the switch until Ctrl-C / SIGTERM (and the drain after it).
/// `overrides` were applied to `cfg` by the caller and are applied again to
/// every reloaded file.
pub async fn run(cfg: Config, overrides: Overrides) -> Result<(), AppError> {
    // Take over SIGTERM/SIGINT/SIGHUP before anything says "listening": a
    // signal that arrives during start-up must shut down cleanly, not kill
    // us with the default action.
    let mut signals = Signals::install();
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
    let trunk_ip = match &cfg.trunk.outbound_proxy.host {
        config::Host::Ip(ip) => *ip,
        config::Host::Name(n) => return Err(AppError::TrunkName(n.clone())),
    };
    let trunk = SocketAddr::new(trunk_ip, cfg.trunk.outbound_proxy.port);
    let ip = advertised_ip(&cfg, trunk);
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
        allow: cfg.trunk.allow.clone(),
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
        trunk,
        trunk_tcp: cfg.trunk.outbound_proxy.transport == config::Transport::Tcp,
        credentials: std::env::var(&cfg.trunk.password_env)
            .ok()
            .filter(|_| !cfg.trunk.username.is_empty())
            .map(|password| Credentials {
                username: cfg.trunk.username.clone(),
                password,
            }),
        follow_redirects: cfg.trunk.follow_redirects,
        max_redirects: cfg.trunk.max_redirects,
        limits: Limits {
            max_message_bytes: cfg.sip.max_message_bytes as usize,
            ..Limits::default()
        },
    };
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
            allow: cfg.trunk.allow.clone(),
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
    let (reload_tx, mut reload_rx) = mpsc::channel(8);
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
        reload: reload_tx,
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
    let (calls_tx, current) = watch::channel(ctx.clone());
    let router = ctx.router.clone();
    let sip_commands = ctx.commands.clone();
    let reloader = reload::Reloader {
        path: cfg.source.clone(),
        overrides,
        dialplan: dialplan_tx,
        calls: calls_tx,
        sip: sip_commands.clone(),
    };
    let notifier = tokio::spawn(notify::run(
        current.clone(),
        presence_events,
        cancel.clone(),
    ));
    let queues = tokio::spawn(crate::call::queue::run(
        current.clone(),
        store.clone(),
        queue_rx,
        queue_presence,
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
        }
    };
    // Draining (issue 11): the SIP core answers new INVITEs 503 with
    // Retry-After while the calls in progress (log-in menus, customers in a
    // queue or bridged to an agent) go on until they end by themselves, the
    // drain timeout passes, or a second signal says not to wait.
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
    let _ = tokio::time::timeout(Duration::from_millis(500), sip_task).await;
    notifier.abort();
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
