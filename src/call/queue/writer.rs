//! Side effects of the queue that may be slow (the store, the presence
//! service), done in order by one task so the queue task never waits on a
//! disk: the call row exists before its attempts, and an agent's activity
//! changes land in the order the engine made them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::events::{Body, EventBus};
use crate::flows::queue::{AttemptEnd, AttemptId, AttemptReport, CallReport};
use crate::presence::agent_state::Activity;
use crate::presence::claims::{ClaimHold, ClaimOutcome};
use crate::presence::service::PresenceHandle;
use crate::presence::{CallUpdate, NewAttempt, NewCall, PgStore, PresenceStore, Store};
use crate::routing::CallId;

/// Writes queued before the queue task waits for the writer (back-pressure).
pub const WRITE_QUEUE: usize = 1024;

#[derive(Debug)]
pub enum Write {
    /// The customer call was answered and entered the queue.
    CallStarted {
        call: CallId,
        row: NewCall,
    },
    /// An agent is being dialled: the attempt is listed as in progress
    /// until its `Attempt` report completes the row.
    AttemptStarted {
        call: CallId,
        attempt: AttemptId,
        user: String,
        started: Instant,
    },
    Attempt {
        report: AttemptReport,
        /// The agent leg's SIP Call-ID, when the INVITE went out.
        sip_call_id: Option<String>,
    },
    /// The customer was bridged to an agent: their wait ends here.
    Bridged {
        call: CallId,
        /// The agent's attempt that was accepted.
        attempt: AttemptId,
        at: Instant,
    },
    CallEnded(CallReport),
    /// The agent's activity changed. With claims, also the holder's news
    /// for the claim: `wrap_up` is how long a wrap-up holds the agent,
    /// `misses` their consecutive misses as the engine counts them.
    Activity {
        user: String,
        activity: Activity,
        wrap_up: Duration,
        misses: u32,
    },
    /// Claim the agent in the shared store before ringing them; the
    /// answer goes back as [`ClusterNews::Claim`].
    Claim {
        attempt: AttemptId,
        user: String,
    },
    /// Close the agent's window and mark them not responding (issue 14).
    NotResponding {
        user: String,
        reason: String,
    },
    /// The agent hung up their nailed-up line: their window ends, as if
    /// they had chosen offline on that call.
    LineHungUp {
        user: String,
        call_id: String,
    },
}

/// Turns the engine's monotonic `Instant`s into wall-clock times: the
/// distance from now is the same on both clocks (to within the scheduling
/// delay of this task, which is far below the milliseconds stored).
pub fn wall(t: Instant, now: Instant, now_utc: DateTime<Utc>) -> DateTime<Utc> {
    let ago = now.saturating_duration_since(t);
    let ahead = t.saturating_duration_since(now);
    let ago = chrono::Duration::from_std(ago).unwrap_or_default();
    let ahead = chrono::Duration::from_std(ahead).unwrap_or_default();
    now_utc - ago + ahead
}

/// Runs one store write and records how long it took (`tpswitch_store_write_seconds`).
async fn timed<T>(op: &'static str, write: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let result = write.await;
    crate::telemetry::store_write(op, started.elapsed());
    result
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Each call's SIP Call-ID and flow, and each attempt's agent, as events
/// name them: kept from the writes that start them.
#[derive(Default)]
struct Names {
    calls: HashMap<CallId, (String, String)>,
    agents: HashMap<AttemptId, String>,
}

impl Names {
    fn call_id(&self, call: CallId) -> String {
        self.calls
            .get(&call)
            .map(|(id, _)| id.clone())
            .unwrap_or_default()
    }

    /// The event bus's view of `w`, recorded in the store or not (a store
    /// that refuses a row does not hide the call from the floor).
    fn events(&mut self, w: &Write) -> Vec<Body> {
        let mut out: Vec<Body> = self.event(w).into_iter().collect();
        // Accepted, then bridged: the attempt's news first, then the call's.
        if let Write::Bridged { call, attempt, .. } = w {
            out.push(Body::CallBridged {
                call_id: self.call_id(*call),
                agent: self.agents.get(attempt).cloned().unwrap_or_default(),
            });
        }
        out
    }

    fn event(&mut self, w: &Write) -> Option<Body> {
        match w {
            Write::CallStarted { call, row } => {
                self.calls
                    .insert(*call, (row.call_id.clone(), row.flow.clone()));
                Some(Body::CallQueued {
                    call_id: row.call_id.clone(),
                    flow: row.flow.clone(),
                    customer: row.customer_number.clone(),
                    contact_point: row.contact_point.clone(),
                })
            }
            Write::AttemptStarted {
                call,
                attempt,
                user,
                ..
            } => {
                self.agents.insert(*attempt, user.clone());
                Some(Body::AttemptStarted {
                    call_id: self.call_id(*call),
                    agent: user.clone(),
                })
            }
            Write::Bridged { call, attempt, .. } => Some(Body::AttemptAccepted {
                call_id: self.call_id(*call),
                agent: self.agents.get(attempt).cloned().unwrap_or_default(),
            }),
            Write::Attempt { report: r, .. } => {
                self.agents.remove(&r.attempt);
                // A completed attempt was told as accepted at its bridge.
                (r.end != AttemptEnd::Completed).then(|| Body::AttemptMissed {
                    call_id: self.call_id(r.call),
                    agent: r.user.clone(),
                    ring_ms: u64::try_from(r.ring.as_millis()).unwrap_or(u64::MAX),
                    cause: r.end.as_str().to_owned(),
                    sip_outcome: r.sip_outcome.as_str().to_owned(),
                    sip_status: r.sip_status,
                })
            }
            Write::CallEnded(r) => {
                let (call_id, flow) = self.calls.remove(&r.call).unwrap_or_default();
                Some(Body::CallEnded {
                    call_id,
                    flow,
                    outcome: r.outcome.as_str().to_owned(),
                    agent: r.agent.clone(),
                    hung_up_by: r.hung_up_by.as_str().to_owned(),
                })
            }
            Write::Activity { .. }
            | Write::NotResponding { .. }
            | Write::LineHungUp { .. }
            | Write::Claim { .. } => None,
        }
    }
}

/// News for the queue task from the shared store: its claims' answers
/// (from the writer) and other nodes' releases (from the cluster task).
/// Unbounded because the queue task also waits on the writer: at most one
/// claim per waiting customer and one release per agent are in flight.
#[derive(Debug)]
pub enum ClusterNews {
    Claim {
        attempt: AttemptId,
        granted: Result<u32, Duration>,
    },
    /// Another node let the agent go.
    Freed { user: String },
}

pub type NewsSender = mpsc::UnboundedSender<ClusterNews>;

/// The writer's side of claims: the shared store, how long a claim holds
/// without a heartbeat, and where the answers go.
pub struct Claims {
    pub store: PgStore,
    pub lease: Duration,
    pub news: NewsSender,
}

/// How long a node waits before claiming an agent again after the store
/// could not answer (a refused claim waits for the holder's hold instead).
const CLAIM_RETRY: Duration = Duration::from_secs(1);

/// A claim this node holds: the token its writes name, and the hold it
/// last wrote (a wrap-up hold ends in the store by itself, unrenewed).
#[derive(Debug, Clone, Copy)]
struct Claim {
    token: i64,
    hold: ClaimHold,
}

/// The claims this node holds, by agent.
#[derive(Default)]
struct Held {
    claims: HashMap<String, Claim>,
}

/// What became of the holder's write for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Update {
    /// Written under this node's token.
    Written,
    /// This node holds no claim on the agent: nothing written.
    NotHeld,
    /// The wrap-up hold this node wrote ran out before its next write
    /// reached the store, and another node has claimed the agent since, as
    /// it may once a hold is over: nothing written, and nothing was lost.
    HoldEnded,
    /// Refused: another node took the agent after this node's lease ran
    /// out (it stalled past it). Nothing written.
    Lost,
    /// The store could not answer: the claim is kept; the next write (or
    /// the lease's end) settles it.
    Failed,
}

impl Update {
    /// Whether this node's display copy of the agent's activity is still
    /// its to write. After a hold that ended, this node has nothing going
    /// on with the agent: its own row is cleared (another node's is not
    /// touched, `PgStore::set_activity`).
    fn publish(self) -> bool {
        matches!(self, Update::Written | Update::HoldEnded | Update::Failed)
    }
}

impl Held {
    async fn claim(&mut self, c: &Claims, attempt: AttemptId, user: String) {
        let granted = match timed("claim_agent", c.store.claim_agent(&user, c.lease)).await {
            Ok(ClaimOutcome::Granted { token, misses }) => {
                debug!(agent = %user, token, "claim granted");
                self.claims.insert(
                    user,
                    Claim {
                        token,
                        hold: ClaimHold::Busy,
                    },
                );
                crate::telemetry::claim("granted");
                Ok(misses)
            }
            Ok(ClaimOutcome::Replaced) => {
                warn!(agent = %user, "not claiming: another process has taken this node's name (this one stalled past its lease); restart it with its own store.node");
                crate::telemetry::claim("replaced");
                self.claims.remove(&user);
                Err(CLAIM_RETRY)
            }
            Ok(ClaimOutcome::Held { node, remaining }) => {
                info!(agent = %user, node = %node, for_ms = remaining.as_millis() as u64, "agent held by another node: offering someone else");
                crate::telemetry::claim("refused");
                // Whatever this node held before (a wrap-up it went on
                // from without a release: the engine re-offered the agent
                // at the hold's end) is another node's now. Its token must
                // not be named again: that write would be refused and
                // taken for a claim lost to a stall.
                self.claims.remove(&user);
                Err(remaining)
            }
            Err(e) => {
                warn!(agent = %user, error = %e, "cannot claim the agent; offering someone else");
                crate::telemetry::claim("error");
                Err(CLAIM_RETRY)
            }
        };
        let _ = c.news.send(ClusterNews::Claim { attempt, granted });
    }

    /// The holder's news for its claim on `user`.
    async fn update(
        &mut self,
        c: &Claims,
        user: &str,
        activity: Activity,
        wrap_up: Duration,
        misses: u32,
    ) -> Update {
        let Some(&Claim { token, hold: last }) = self.claims.get(user) else {
            return Update::NotHeld;
        };
        let hold = match activity {
            Activity::Busy => ClaimHold::Busy,
            Activity::WrapUp => ClaimHold::WrapUp(wrap_up),
            Activity::Idle => ClaimHold::Free,
        };
        match timed(
            "update_claim",
            c.store.update_claim(user, token, hold, c.lease, misses),
        )
        .await
        {
            Ok(true) => {
                if hold == ClaimHold::Free {
                    self.claims.remove(user);
                } else {
                    self.claims.insert(user.to_owned(), Claim { token, hold });
                }
                Update::Written
            }
            Ok(false) => {
                self.claims.remove(user);
                if let ClaimHold::WrapUp(_) = last {
                    // The store ends a wrap-up hold on time; this node's
                    // own end of it (and the write saying so) may come a
                    // little later, after another node claimed the agent.
                    debug!(agent = %user, token, "wrap-up hold over: another node has claimed the agent since");
                    return Update::HoldEnded;
                }
                // This node stalled past its lease and another node took
                // the agent: its write is refused (the fencing token).
                warn!(agent = %user, token, refused = ?hold, "claim lost: another node took the agent after this node's lease ran out; write refused");
                crate::telemetry::claim("lost");
                Update::Lost
            }
            Err(e) => {
                warn!(agent = %user, error = %e, "cannot update the claim on the agent");
                Update::Failed
            }
        }
    }
}

pub async fn run(
    store: Store,
    presence: PresenceHandle,
    bus: EventBus,
    mut rx: mpsc::Receiver<Write>,
    claims: Option<Claims>,
) {
    let mut held = Held::default();
    // Store row of each call still in progress.
    let mut rows: HashMap<CallId, i64> = HashMap::new();
    // Store row of each attempt started and not yet reported.
    let mut attempts: HashMap<AttemptId, i64> = HashMap::new();
    let mut names = Names::default();
    while let Some(w) = rx.recv().await {
        let (now, now_utc) = (Instant::now(), Utc::now());
        for body in names.events(&w) {
            bus.publish(body, now_utc);
        }
        match w {
            Write::CallStarted { call, row } => {
                match timed("insert_call", store.insert_call(&row)).await {
                    Ok(id) => {
                        rows.insert(call, id);
                    }
                    Err(e) => warn!(%call, error = %e, "cannot record the customer call"),
                }
            }
            Write::AttemptStarted {
                call,
                attempt,
                user,
                started,
            } => {
                let Some(&id) = rows.get(&call) else {
                    debug!(%call, "attempt for a call without a row; not recorded");
                    continue;
                };
                match timed(
                    "start_attempt",
                    store.start_attempt(id, &user, wall(started, now, now_utc)),
                )
                .await
                {
                    Ok(row) => {
                        attempts.insert(attempt, row);
                    }
                    Err(e) => warn!(%call, error = %e, "cannot record the start of the attempt"),
                }
            }
            Write::Bridged { call, at, .. } => {
                let Some(&id) = rows.get(&call) else {
                    continue;
                };
                let u = CallUpdate {
                    bridged_at: Some(wall(at, now, now_utc)),
                    ..CallUpdate::default()
                };
                if let Err(e) = timed("update_call", store.update_call(id, &u)).await {
                    warn!(%call, error = %e, "cannot record the bridge");
                }
            }
            Write::Attempt {
                report: r,
                sip_call_id,
            } => {
                let Some(&id) = rows.get(&r.call) else {
                    debug!(call = %r.call, "attempt for a call without a row; not recorded");
                    continue;
                };
                let a = NewAttempt {
                    agent_user_id: r.user.clone(),
                    started_at: wall(r.started, now, now_utc),
                    ring_ms: Some(ms(r.ring)),
                    sip_outcome: r.sip_outcome,
                    sip_status: r.sip_status,
                    accept_latency_ms: r.accept_latency.map(ms),
                    hangup_cause: Some(r.end.as_str().to_owned()),
                    hung_up_by: r.hung_up_by,
                    sip_call_id,
                };
                let written = match attempts.remove(&r.attempt) {
                    Some(row) => timed("finish_attempt", store.finish_attempt(row, &a)).await,
                    None => timed("insert_attempt", store.insert_attempt(id, &a))
                        .await
                        .map(|_| ()),
                };
                if let Err(e) = written {
                    warn!(call = %r.call, error = %e, "cannot record the attempt");
                }
            }
            Write::CallEnded(r) => {
                let Some(id) = rows.remove(&r.call) else {
                    debug!(call = %r.call, "end of a call without a row; not recorded");
                    continue;
                };
                let u = CallUpdate {
                    answered_at: None,
                    bridged_at: r.bridged.map(|t| wall(t, now, now_utc)),
                    ended_at: Some(wall(r.ended, now, now_utc)),
                    outcome: Some(r.outcome.as_str().to_owned()),
                    hung_up_by: Some(r.hung_up_by),
                };
                if let Err(e) = timed("update_call", store.update_call(id, &u)).await {
                    warn!(call = %r.call, error = %e, "cannot record the end of the call");
                }
            }
            Write::Claim { attempt, user } => match &claims {
                Some(c) => held.claim(c, attempt, user).await,
                None => warn!(agent = %user, "a claim without a shared store; ignored"),
            },
            Write::Activity {
                user,
                activity,
                wrap_up,
                misses,
            } => {
                if let Some(c) = &claims {
                    if !held
                        .update(c, &user, activity, wrap_up, misses)
                        .await
                        .publish()
                    {
                        continue;
                    }
                }
                if let Err(e) = presence.set_activity(&user, activity).await {
                    warn!(agent = %user, error = %e, "cannot publish the agent's activity");
                }
            }
            Write::NotResponding { user, reason } => {
                if let Err(e) = presence.set_not_responding(&user, &reason).await {
                    warn!(agent = %user, error = %e, "cannot set the agent to not responding");
                }
            }
            Write::LineHungUp { user, call_id } => {
                match presence.line_hung_up(&user, &call_id).await {
                    Ok(_) => info!(agent = %user, "offline: the agent hung up the nailed-up line"),
                    Err(e) => {
                        warn!(agent = %user, error = %e, "cannot end the window of the hung-up line")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A bridged call told as the floor needs it: queued, dialled,
    /// accepted then bridged, ended; the completed attempt's report adds
    /// nothing (it was told at the bridge).
    #[test]
    fn a_bridged_call_is_told_in_order_with_its_call_id_and_agent() {
        use crate::flows::queue::{CallOutcome, CallReport};
        use crate::presence::{HungUpBy, SipOutcome};
        let (call, attempt, now) = (CallId(7), AttemptId(3), Instant::now());
        let mut names = Names::default();
        let writes = [
            Write::CallStarted {
                call,
                row: NewCall {
                    call_id: "cust@x".into(),
                    flow: "billing".into(),
                    customer_number: "+15551234567".into(),
                    contact_point: "+15550100001".into(),
                    started_at: Utc::now(),
                    answered_at: None,
                },
            },
            Write::AttemptStarted {
                call,
                attempt,
                user: "jsmith".into(),
                started: now,
            },
            Write::Bridged {
                call,
                attempt,
                at: now,
            },
            Write::Attempt {
                report: AttemptReport {
                    call,
                    attempt,
                    user: "jsmith".into(),
                    started: now,
                    ring: Duration::from_secs(2),
                    sip_outcome: SipOutcome::Answered,
                    sip_status: Some(200),
                    accept_latency: Some(Duration::from_secs(1)),
                    end: AttemptEnd::Completed,
                    hung_up_by: Some(HungUpBy::Customer),
                },
                sip_call_id: None,
            },
            Write::CallEnded(CallReport {
                call,
                queue: "billing".into(),
                outcome: CallOutcome::Bridged,
                agent: Some("jsmith".into()),
                arrived: now,
                bridged: Some(now),
                ended: now,
                hung_up_by: HungUpBy::Customer,
            }),
        ];
        let told: Vec<Body> = writes.iter().flat_map(|w| names.events(w)).collect();
        let kinds: Vec<&str> = told.iter().map(Body::kind).collect();
        assert_eq!(
            kinds,
            [
                "call.queued",
                "attempt.started",
                "attempt.accepted",
                "call.bridged",
                "call.ended"
            ]
        );
        assert_eq!(
            told[3],
            Body::CallBridged {
                call_id: "cust@x".into(),
                agent: "jsmith".into()
            }
        );
        assert_eq!(
            told[4],
            Body::CallEnded {
                call_id: "cust@x".into(),
                flow: "billing".into(),
                outcome: "bridged".into(),
                agent: Some("jsmith".into()),
                hung_up_by: "customer".into(),
            }
        );
        // Forgotten once ended: nothing grows with every call.
        assert!(names.calls.is_empty() && names.agents.is_empty());
    }

    /// Node `node`'s side of claims on the test database `cfg`, with
    /// `lease` (answers to claims go nowhere: these tests read `Held`).
    async fn claims_of(
        cfg: &crate::config::model::PostgresConfig,
        node: &str,
        lease: Duration,
    ) -> Claims {
        let store = PgStore::connect(cfg).await.unwrap().with_node(node);
        store.register_node(lease).await.unwrap().unwrap();
        Claims {
            store,
            lease,
            news: mpsc::unbounded_channel().0,
        }
    }

    const LEASE: Duration = Duration::from_secs(30);

    /// Nodes a and b: a claims ann and puts her in a 50 ms wrap-up that
    /// runs out; then b claims her (granted: the hold is over).
    async fn wrapped_up_on_a_then_claimed_by_b(
        cfg: &crate::config::model::PostgresConfig,
    ) -> (Claims, Claims, Held, Held) {
        let (a, b) = (
            claims_of(cfg, "a", LEASE).await,
            claims_of(cfg, "b", LEASE).await,
        );
        let (mut held_a, mut held_b) = (Held::default(), Held::default());
        held_a.claim(&a, AttemptId(1), "ann".into()).await;
        let wrap = Duration::from_millis(50);
        let w = held_a.update(&a, "ann", Activity::WrapUp, wrap, 0).await;
        assert_eq!(w, Update::Written);
        tokio::time::sleep(Duration::from_millis(150)).await;
        held_b.claim(&b, AttemptId(2), "ann".into()).await;
        (a, b, held_a, held_b)
    }

    /// Node a's wrap-up hold runs out in the store a little before a's own
    /// release reaches it, and node b claims the agent in between, as it
    /// may: a's refused release is no claim lost to a stall (before, it
    /// was logged as one and counted in `tpswitch_cluster_claims_total
    /// {result="lost"}` under plain load), and b's claim stands.
    #[tokio::test]
    async fn a_release_after_the_wrap_up_ran_out_is_not_a_lost_claim() {
        let Some(cfg) = crate::presence::test_backends::fresh_database().await else {
            return;
        };
        let (a, b, mut held_a, mut held_b) = wrapped_up_on_a_then_claimed_by_b(&cfg).await;
        assert!(
            held_b.claims.contains_key("ann"),
            "b is granted after the wrap-up"
        );
        let release = held_a
            .update(&a, "ann", Activity::Idle, Duration::ZERO, 0)
            .await;
        assert_eq!(release, Update::HoldEnded);
        assert!(release.publish(), "a clears its own display row");
        assert!(held_a.claims.is_empty());
        let w = held_b
            .update(&b, "ann", Activity::Busy, Duration::ZERO, 0)
            .await;
        assert_eq!(w, Update::Written, "b's claim is untouched");
    }

    /// Node a's engine offers the agent again at the end of its wrap-up
    /// (no release in between: the engine publishes only the step's last
    /// state), but node b claimed them as the hold ran out: a's claim is
    /// refused, and its old token is forgotten with it. Before, a's next
    /// write (the offer's "busy") named the old token, was refused, and
    /// was logged and counted as a claim lost.
    #[tokio::test]
    async fn a_refused_claim_forgets_the_token_of_the_wrap_up_before_it() {
        let Some(cfg) = crate::presence::test_backends::fresh_database().await else {
            return;
        };
        let (a, b, mut held_a, mut held_b) = wrapped_up_on_a_then_claimed_by_b(&cfg).await;
        held_a.claim(&a, AttemptId(3), "ann".into()).await;
        assert!(held_a.claims.is_empty(), "refused: a holds nothing");
        let busy = held_a
            .update(&a, "ann", Activity::Busy, Duration::ZERO, 0)
            .await;
        assert_eq!(busy, Update::NotHeld);
        assert!(!busy.publish());
        let w = held_b
            .update(&b, "ann", Activity::Busy, Duration::ZERO, 0)
            .await;
        assert_eq!(w, Update::Written);
    }

    /// The fencing case stays a lost claim: a held the agent busy, stalled
    /// past its lease (no heartbeat renewed it), b took the agent, and a's
    /// next write is refused and not published.
    #[tokio::test]
    async fn a_write_after_the_lease_ran_out_is_a_lost_claim() {
        let Some(cfg) = crate::presence::test_backends::fresh_database().await else {
            return;
        };
        let a = claims_of(&cfg, "a", Duration::from_millis(300)).await;
        let b = claims_of(&cfg, "b", LEASE).await;
        b.store.register_node(LEASE).await.unwrap().unwrap();
        let (mut held_a, mut held_b) = (Held::default(), Held::default());
        held_a.claim(&a, AttemptId(1), "ann".into()).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        // b is seen alive past a's lease: two heartbeats.
        for _ in 0..2 {
            assert!(b.store.heartbeat(LEASE).await.unwrap());
        }
        held_b.claim(&b, AttemptId(2), "ann".into()).await;
        assert!(
            held_b.claims.contains_key("ann"),
            "b is granted after a's lease"
        );
        let w = held_a
            .update(&a, "ann", Activity::WrapUp, Duration::from_secs(1), 0)
            .await;
        assert_eq!(w, Update::Lost);
        assert!(!w.publish());
        assert!(held_a.claims.is_empty());
    }

    #[test]
    fn wall_keeps_the_distance_from_now() {
        let now = Instant::now();
        let utc = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let before = now.checked_sub(Duration::from_millis(1500)).unwrap();
        assert_eq!(
            wall(before, now, utc),
            utc - chrono::Duration::milliseconds(1500)
        );
        assert_eq!(
            wall(now + Duration::from_secs(2), now, utc),
            utc + chrono::Duration::seconds(2)
        );
        assert_eq!(wall(now, now, utc), utc);
    }
}
