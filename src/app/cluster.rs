//! This switch as one node of several on a shared PostgreSQL store
//! (docs/scaling.md): it registers under `store.node`, beats its heart
//! (renewing its claims on agents), and hears what other nodes change.
//!
//! LISTEN/NOTIFY is only a wake-up: PostgreSQL delivers a notification at
//! commit and never replays one, so a node that was disconnected or slow
//! misses some. The rows are the truth: every `resync` period the node
//! re-reads every window and the directory, and a claim it was refused is
//! asked again when the holder's hold ends, notification or not.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::call::queue::{ClusterNews, NewsSender};
use crate::config::model::ClusterConfig;
use crate::presence::claims::{NodeInUse, AGENTS_CHANNEL};
use crate::presence::postgres::{DIRECTORY_CHANNEL, PRESENCE_CHANNEL};
use crate::presence::service::PresenceHandle;
use crate::presence::PgStore;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("store.node {node:?} is in use on {db} by another running tpswitch (process {instance}, last heartbeat {ago_ms} ms ago); give this switch its own store.node, or stop the other one")]
    NodeInUse {
        node: String,
        instance: String,
        db: String,
        ago_ms: u64,
    },
    #[error(transparent)]
    Store(#[from] crate::presence::StoreError),
}

/// Registers this process as `cfg.node`. A name whose last holder beat
/// recently is waited for, up to one lease and a heartbeat: a switch that
/// restarts after `kill -9` finds its old self's heartbeat still fresh
/// and must not be refused for it. A holder still beating after that is
/// another live process: refused, naming the node.
pub async fn register(store: &PgStore, cfg: &ClusterConfig) -> Result<(), ClusterError> {
    let give_up = tokio::time::Instant::now() + cfg.claim_lease + cfg.heartbeat;
    let mut told = false;
    loop {
        match store.register_node(cfg.claim_lease).await? {
            Ok(()) => {
                info!(node = %cfg.node, heartbeat_ms = cfg.heartbeat.as_millis() as u64, lease_ms = cfg.claim_lease.as_millis() as u64, "node registered in the shared store");
                return Ok(());
            }
            Err(NodeInUse {
                node,
                instance: holder,
                heartbeat_ago,
            }) => {
                if tokio::time::Instant::now() >= give_up {
                    return Err(ClusterError::NodeInUse {
                        node,
                        instance: holder,
                        db: store.db().display().to_string(),
                        ago_ms: heartbeat_ago.as_millis() as u64,
                    });
                }
                if !std::mem::replace(&mut told, true) {
                    info!(node = %node, heartbeat_ago_ms = heartbeat_ago.as_millis() as u64, "node name held by a recent heartbeat (this node before a crash?); waiting for its lease to end");
                }
                tokio::time::sleep(cfg.heartbeat.min(Duration::from_millis(500))).await;
            }
        }
    }
}

/// How often every window and the directory are re-read, notification or
/// not: a few heartbeats, within 1-30 s.
fn resync_period(cfg: &ClusterConfig) -> Duration {
    (cfg.heartbeat * 3).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Where the node's news goes.
pub struct Listeners {
    pub presence: PresenceHandle,
    /// Other nodes' releases of agents, for the queue task.
    pub agents: NewsSender,
    /// "The directory may have changed elsewhere": the app re-reads it.
    pub directory: mpsc::Sender<()>,
}

/// Beats, listens and resyncs until `cancel`.
pub async fn run(store: PgStore, cfg: ClusterConfig, to: Listeners, cancel: CancellationToken) {
    let mut listener = connect_listener(&store).await;
    let mut relisten = tokio::time::Instant::now() + RELISTEN;
    let mut beat = tokio::time::interval(cfg.heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut resync = tokio::time::interval(resync_period(&cfg));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut replaced = false;
    // When this node's claims were last renewed (a heartbeat written).
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            n = recv(&mut listener), if listener.is_some() => match n {
                Some(n) => on_notification(store.instance(), n.channel(), n.payload(), &to),
                // Lost the connection (notifications meanwhile are gone):
                // listen again in a moment, then catch up from the rows.
                None => relisten = tokio::time::Instant::now() + Duration::from_secs(1),
            },
            // A deadline kept across turns of the loop: a wait begun anew
            // on each turn would never end while the heartbeat ticks more
            // often than it (the node would not listen again, ever).
            _ = tokio::time::sleep_until(relisten), if listener.is_none() => {
                listener = connect_listener(&store).await;
                relisten = tokio::time::Instant::now() + RELISTEN;
                catch_up(&to);
            },
            _ = beat.tick() => match timed_beat(&store, cfg.claim_lease).await {
                Ok(true) => {
                    crate::telemetry::heartbeat("ok");
                    let gap = std::mem::replace(&mut renewed, tokio::time::Instant::now()).elapsed();
                    if gap > cfg.claim_lease / 2 {
                        // Past the lease, a node that stayed alive may take
                        // this node's busy agents while they are still on
                        // calls here: the one way an agent is rung twice.
                        warn!(node = %cfg.node, since_last_ms = gap.as_millis() as u64, lease_ms = cfg.claim_lease.as_millis() as u64, "heartbeat late: this node's claims were not renewed for over half their lease (is the node or the store overloaded?); past the lease other nodes may ring its busy agents");
                    }
                    if std::mem::take(&mut replaced) {
                        info!(node = %cfg.node, "heartbeat accepted again");
                    }
                }
                Ok(false) => {
                    crate::telemetry::heartbeat("replaced");
                    if !std::mem::replace(&mut replaced, true) {
                        error!(node = %cfg.node, "another process took this node's name after its heartbeat stopped (was it frozen?): its claims are no longer renewed; restart it with its own store.node");
                    }
                }
                Err(e) => {
                    crate::telemetry::heartbeat("error");
                    warn!(node = %cfg.node, error = %e, "heartbeat not written; claims expire one lease after the last one");
                }
            },
            _ = resync.tick() => catch_up(&to),
        }
    }
}

/// One heartbeat, its time recorded as a store write (`op="heartbeat"`):
/// a heartbeat that takes a good part of the lease is the warning sign.
async fn timed_beat(store: &PgStore, lease: Duration) -> crate::presence::Result<bool> {
    let started = std::time::Instant::now();
    let beat = store.heartbeat(lease).await;
    crate::telemetry::store_write("heartbeat", started.elapsed());
    beat
}

async fn connect_listener(store: &PgStore) -> Option<PgListener> {
    let mut l = match PgListener::connect_with(store.pool()).await {
        Ok(l) => l,
        Err(e) => {
            warn!(db = %store.db().display(), error = %e, "cannot listen for other nodes' changes; reading them every resync instead");
            return None;
        }
    };
    match l
        .listen_all([PRESENCE_CHANNEL, AGENTS_CHANNEL, DIRECTORY_CHANNEL])
        .await
    {
        Ok(()) => Some(l),
        Err(e) => {
            warn!(error = %e, "cannot listen for other nodes' changes; reading them every resync instead");
            None
        }
    }
}

/// How long a node that cannot listen waits before it tries again (the
/// resync meanwhile keeps it right, only slower).
const RELISTEN: Duration = Duration::from_secs(5);

/// The next notification; `None` when the connection is gone (or never
/// was: then this waits forever; `run` listens again at its deadline).
async fn recv(listener: &mut Option<PgListener>) -> Option<sqlx::postgres::PgNotification> {
    match listener {
        Some(l) => match l.recv().await {
            Ok(n) => Some(n),
            Err(e) => {
                warn!(error = %e, "lost the connection that hears other nodes' changes");
                *listener = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// Re-read everything another node may have changed.
fn catch_up(to: &Listeners) {
    to.presence.resync(None);
    let _ = to.directory.try_send(());
}

/// What one notification means here. Payloads start with the writing
/// process's instance: a process's own changes are already in force in it
/// (and a process replaced under its node name still hears its
/// successor's, which name another instance).
fn on_notification(me: &str, channel: &str, payload: &str, to: &Listeners) {
    let (from, rest) = payload.split_once(' ').unwrap_or((payload, ""));
    if from == me {
        return;
    }
    debug!(channel, from, subject = rest, "change from another node");
    match channel {
        PRESENCE_CHANNEL if !rest.is_empty() => to.presence.resync(Some(rest)),
        AGENTS_CHANNEL if !rest.is_empty() => {
            let _ = to.agents.send(ClusterNews::Freed {
                user: rest.to_owned(),
            });
        }
        DIRECTORY_CHANNEL => {
            let _ = to.directory.try_send(());
        }
        _ => {}
    }
}
