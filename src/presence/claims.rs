//! Claims on agents and node heartbeats, for several switches (nodes) on
//! one PostgreSQL store (`migrations/postgres/0010_cluster.sql`,
//! docs/scaling.md). A SQLite store is held by one switch and has none.
//!
//! - A node rings an agent only after [`PgStore::claim_agent`] moved the
//!   agent's row to it: a conditional upsert that succeeds when the row is
//!   free, its wrap-up is over, or its holder's lease is over as this node
//!   saw it alive: the lease ended before this node's last-but-one
//!   heartbeat. (After a stall of the store or of the machine, every lease
//!   has lapsed by the clock; a node must beat twice after it before it
//!   takes a busy agent, by when a holder that is alive has renewed.) Two
//!   nodes racing for one agent meet on that row's lock; the second sees
//!   the first's claim.
//! - Each claim bumps the row's `token`. Every later write of the holder
//!   ([`PgStore::update_claim`]) names its token, so a node that stalled
//!   past its lease (and lost the agent to another node) has its write
//!   refused instead of overwriting the new holder's claim.
//! - A node renews its claims with its heartbeat ([`PgStore::heartbeat`]);
//!   a node that dies stops renewing and its agents are free one lease
//!   later at most.
//! - Lease times come from the database server's clock, never a node's.

use std::time::Duration;

use sqlx::Row;

use super::postgres::PgStore;
use super::Result;

/// The database server's clock, in Unix milliseconds (a macro so that
/// statements stay `&'static str`, built with `concat!`).
macro_rules! db_now {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

/// The notification channel a release is announced on (payload: the
/// releasing process's instance, a space, the user id). Only a wake-up: a node that
/// misses it still finds the agent free when the holder's lease ends.
pub const AGENTS_CHANNEL: &str = "tpswitch_agents";

/// What [`PgStore::claim_agent`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The agent is this node's to ring, under `token`; `misses` is their
    /// shared count of consecutive misses.
    Granted { token: i64, misses: u32 },
    /// `node` holds the agent for `remaining` more at most (its lease, or
    /// the wrap-up it set), unless it renews or lets them go first.
    Held { node: String, remaining: Duration },
    /// Another process has registered under this node's name since this
    /// one did (this one stalled past its lease): it may claim no one.
    Replaced,
}

/// What the holder says about its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimHold {
    /// Ringing or on a call: held for a lease, renewed by the heartbeat.
    Busy,
    /// After a call: held for this long, not renewed; then free.
    WrapUp(Duration),
    /// Let go: any node may claim the agent now.
    Free,
}

/// Why a node may not start under its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInUse {
    pub node: String,
    /// That process's instance (`<pid>-<start>`).
    pub instance: String,
    /// How long ago the other process under that name last beat.
    pub heartbeat_ago: Duration,
}

/// A new process's identity under its node name (the pid, the start
/// time and a count, so two stores opened by one test differ too).
pub fn new_instance() -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos:x}-{seq}", std::process::id())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl PgStore {
    /// Registers this process as node `self.node()`, unless another process
    /// under that name beat within its lease. A node that starts again
    /// (after a crash: no call survives it) lets its old claims go and
    /// clears its old activities.
    pub async fn register_node(&self, lease: Duration) -> Result<Result<(), NodeInUse>> {
        let node = self.node().to_owned();
        let instance = self.instance();
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(self.err("starting the node registration"))?;
        let taken = sqlx::query(concat!(
            "INSERT INTO cluster_nodes AS n \
             (node, instance, started_ms, heartbeat_ms, prev_heartbeat_ms, lease_ms) \
             VALUES ($1, $2, ",
            db_now!(),
            ", ",
            db_now!(),
            ", ",
            db_now!(),
            ", $3) \
             ON CONFLICT (node) DO UPDATE SET instance = EXCLUDED.instance, \
             started_ms = EXCLUDED.started_ms, heartbeat_ms = EXCLUDED.heartbeat_ms, \
             prev_heartbeat_ms = EXCLUDED.prev_heartbeat_ms, lease_ms = EXCLUDED.lease_ms \
             WHERE n.instance = EXCLUDED.instance \
             OR n.heartbeat_ms + n.lease_ms <= EXCLUDED.heartbeat_ms \
             RETURNING node"
        ))
        .bind(&node)
        .bind(instance)
        .bind(ms(lease))
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.err("registering the node"))?;
        if taken.is_none() {
            let row = sqlx::query(concat!(
                "SELECT instance, ",
                db_now!(),
                " - heartbeat_ms AS ago FROM cluster_nodes WHERE node = $1"
            ))
            .bind(&node)
            .fetch_one(&mut *tx)
            .await
            .map_err(self.err("reading the node's heartbeat"))?;
            return Ok(Err(NodeInUse {
                node,
                instance: row
                    .try_get("instance")
                    .map_err(self.err("reading a node"))?,
                heartbeat_ago: duration(row.try_get("ago").map_err(self.err("reading a node"))?),
            }));
        }
        sqlx::query(concat!(
            "UPDATE agent_claims SET state = 'free', until_ms = ",
            db_now!(),
            " WHERE node = $1"
        ))
        .bind(&node)
        .execute(&mut *tx)
        .await
        .map_err(self.err("letting the node's old claims go"))?;
        sqlx::query("DELETE FROM agent_state WHERE node = $1")
            .bind(&node)
            .execute(&mut *tx)
            .await
            .map_err(self.err("clearing the node's old activities"))?;
        tx.commit()
            .await
            .map_err(self.err("committing the node registration"))?;
        Ok(Ok(()))
    }

    /// Proves this node alive and renews its busy claims for `lease`.
    /// False when another process has taken the node's name since (this
    /// one stalled past its lease): its claims are not renewed then.
    pub async fn heartbeat(&self, lease: Duration) -> Result<bool> {
        let instance = self.instance();
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(self.err("starting a heartbeat"))?;
        let beat = sqlx::query(concat!(
            "UPDATE cluster_nodes SET prev_heartbeat_ms = heartbeat_ms, \
             heartbeat_ms = ",
            db_now!(),
            ", lease_ms = $3 \
             WHERE node = $1 AND instance = $2"
        ))
        .bind(self.node())
        .bind(instance)
        .bind(ms(lease))
        .execute(&mut *tx)
        .await
        .map_err(self.err("writing the heartbeat"))?
        .rows_affected()
            == 1;
        if beat {
            sqlx::query(concat!(
                "UPDATE agent_claims SET until_ms = ",
                db_now!(),
                " + $2 \
                 WHERE node = $1 AND state = 'busy'"
            ))
            .bind(self.node())
            .bind(ms(lease))
            .execute(&mut *tx)
            .await
            .map_err(self.err("renewing the node's claims"))?;
        }
        tx.commit()
            .await
            .map_err(self.err("committing a heartbeat"))?;
        Ok(beat)
    }

    /// Claims `user` for this node for `lease`, unless another node holds
    /// them, and only while this process is the one registered under the
    /// node's name (a process frozen past its lease and replaced by a new
    /// one under its name claims nothing: it would ring agents the new one
    /// rings). Atomic: of two nodes claiming at once, one is granted. This
    /// node's own claim is taken again (its engine offers an agent one
    /// call at a time, so a row still naming it is a release that did not
    /// reach the store). A wrap-up hold is over at its end by the store's
    /// clock; a busy claim only once its lease ended before this node's
    /// last-but-one heartbeat (see the module's notes): a node that has not
    /// beaten twice since, or has not registered, takes no busy agent.
    pub async fn claim_agent(&self, user: &str, lease: Duration) -> Result<ClaimOutcome> {
        let granted = sqlx::query(concat!(
            "INSERT INTO agent_claims AS c \
             (user_id, node, token, state, until_ms, misses, claimed_ms) \
             SELECT $1, $2, 1, 'busy', ",
            db_now!(),
            " + $3, 0, ",
            db_now!(),
            " \
             WHERE EXISTS (SELECT 1 FROM cluster_nodes WHERE node = $2 AND instance = $4) \
             ON CONFLICT (user_id) DO UPDATE SET node = EXCLUDED.node, token = c.token + 1, \
             state = 'busy', until_ms = EXCLUDED.until_ms, claimed_ms = EXCLUDED.claimed_ms \
             WHERE c.state = 'free' OR c.node = EXCLUDED.node \
             OR (c.state = 'wrap-up' AND c.until_ms <= EXCLUDED.claimed_ms) \
             OR c.until_ms <= (SELECT n.prev_heartbeat_ms FROM cluster_nodes n \
                               WHERE n.node = EXCLUDED.node) \
             RETURNING token, misses"
        ))
        .bind(user)
        .bind(self.node())
        .bind(ms(lease))
        .bind(self.instance())
        .fetch_optional(self.pool())
        .await
        .map_err(self.err("claiming an agent"))?;
        if let Some(row) = granted {
            let token: i64 = row.try_get("token").map_err(self.err("reading a claim"))?;
            let misses: i32 = row.try_get("misses").map_err(self.err("reading a claim"))?;
            return Ok(ClaimOutcome::Granted {
                token,
                misses: u32::try_from(misses).unwrap_or(0),
            });
        }
        let registered: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM cluster_nodes WHERE node = $1 AND instance = $2)",
        )
        .bind(self.node())
        .bind(self.instance())
        .fetch_one(self.pool())
        .await
        .map_err(self.err("reading the node's registration"))?;
        if !registered {
            return Ok(ClaimOutcome::Replaced);
        }
        let row = sqlx::query(concat!(
            "SELECT node, GREATEST(until_ms - ",
            db_now!(),
            ", 0) AS remaining \
             FROM agent_claims WHERE user_id = $1"
        ))
        .bind(user)
        .fetch_optional(self.pool())
        .await
        .map_err(self.err("reading an agent's claim"))?;
        Ok(match row {
            Some(r) => ClaimOutcome::Held {
                node: r.try_get("node").map_err(self.err("reading a claim"))?,
                remaining: duration(
                    r.try_get::<i64, _>("remaining")
                        .map_err(self.err("reading a claim"))?,
                ),
            },
            // Let go between the two statements: try again soon.
            None => ClaimOutcome::Held {
                node: String::new(),
                remaining: Duration::ZERO,
            },
        })
    }

    /// The holder's news about its claim on `user`, with the agent's
    /// consecutive misses as this node counted them. False when the claim
    /// is no longer `token` (another node took the agent after this node's
    /// lease ran out): nothing is written then. A release is announced on
    /// [`AGENTS_CHANNEL`].
    pub async fn update_claim(
        &self,
        user: &str,
        token: i64,
        hold: ClaimHold,
        lease: Duration,
        misses: u32,
    ) -> Result<bool> {
        let (state, hold_ms) = match hold {
            ClaimHold::Busy => ("busy", ms(lease)),
            ClaimHold::WrapUp(d) => ("wrap-up", ms(d)),
            ClaimHold::Free => ("free", 0),
        };
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(self.err("starting a claim update"))?;
        let done = sqlx::query(concat!(
            "UPDATE agent_claims SET state = $4, until_ms = ",
            db_now!(),
            " + $5, misses = $6 \
             WHERE user_id = $1 AND node = $2 AND token = $3"
        ))
        .bind(user)
        .bind(self.node())
        .bind(token)
        .bind(state)
        .bind(hold_ms)
        .bind(i32::try_from(misses).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await
        .map_err(self.err("updating a claim"))?
        .rows_affected()
            == 1;
        if done && hold != ClaimHold::Busy {
            // Fires at commit; a node that misses it retries at the end of
            // the hold it was told (the rows are the truth).
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(AGENTS_CHANNEL)
                .bind(format!("{} {user}", self.instance()))
                .execute(&mut *tx)
                .await
                .map_err(self.err("announcing a release"))?;
        }
        tx.commit()
            .await
            .map_err(self.err("committing a claim update"))?;
        Ok(done)
    }
}
