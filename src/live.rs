//! What is happening on the floor right now: the calls in progress (in
//! the log-in menu, waiting in a queue, ringing an agent, bridged), the
//! outbound legs placed for them or on their own (notification calls), and
//! so the customers waiting per queue.
//!
//! The call shells publish every change here ([`Live`]); the HTTP API
//! reads a [`Snapshot`]. It is a leaf (it imports nothing of the switch),
//! so `call/` and `api/` both use it without either importing the other.
//! Nothing here is durable: the store keeps the records, this keeps only
//! what is true now, and it empties with the process.
//!
//! Cheap by design: one short `std` mutex section per change (a map
//! insert or update, no allocation beyond the entry, no await, no I/O),
//! never taken on a media path (the pacing thread and the RTP tasks never
//! see it). A reader clones what it shows under the same short lock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

/// The registry every call task, the queue task and the API share (clone
/// it: it is a handle).
#[derive(Clone)]
pub struct Live {
    inner: Arc<Mutex<Inner>>,
    /// Bumped on every change: a push channel (SSE, the floor view) waits
    /// on it instead of polling.
    changes: Arc<watch::Sender<u64>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            inner: Arc::default(),
            changes: Arc::new(watch::Sender::new(0)),
        }
    }
}

#[derive(Default)]
struct Inner {
    calls: BTreeMap<u64, CallEntry>,
    legs: BTreeMap<u64, LiveLeg>,
}

/// What a call is known by when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// SIP Call-ID of the inbound leg.
    pub call_id: String,
    /// The flow its dispatch mapping names ("-" for none).
    pub flow: String,
    /// The caller's number as the directory reads it, "anonymous" when
    /// withheld.
    pub caller: String,
    /// The number the caller dialled.
    pub contact_point: String,
}

struct CallEntry {
    info: CallInfo,
    started: DateTime<Utc>,
    phase: Phase,
}

enum Phase {
    /// Answered, in the flow's menu (the log-in menu; a queue call until
    /// the queue takes it).
    Menu,
    /// In `queue` since `since`.
    Queued { queue: String, since: DateTime<Utc> },
    /// Talking to `agent` (a user id, or the overflow number) since `since`.
    Bridged {
        queue: String,
        waited_since: DateTime<Utc>,
        agent: String,
        since: DateTime<Utc>,
    },
    /// The queue is done with the call (overflow prompt playing, or the
    /// hang-up under way); it goes when its leg does.
    Ending { since: DateTime<Utc> },
}

/// A call's state as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CallState {
    /// In the flow's menu (log-in calls; a queue call for the moment
    /// before it is queued).
    InMenu,
    /// Waiting in a queue, no agent being rung.
    Waiting,
    /// Waiting in a queue while an agent (or the overflow number) is rung.
    Ringing,
    /// Bridged to an agent.
    Bridged,
    /// The flow is done with it: the last prompt or the hang-up.
    Ending,
}

/// Why an outbound leg was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LegKind {
    /// To an agent, for a waiting customer.
    Agent,
    /// To a queue's overflow number, for a waiting customer.
    Overflow,
    /// To an agent, to say their window ended.
    Notification,
    /// To an agent, before their window ends, to offer more time.
    Reminder,
}

/// Where an outbound leg is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LegState {
    /// Accepted by the switch; no INVITE out yet.
    Placing,
    /// Every trunk is full (max_calls, max_cps, Retry-After): waiting for one.
    WaitingForTrunk,
    /// INVITE sent to `trunk`.
    Trying,
    /// A provisional response (180/183) came back (RFC 3261 §13.2.2.1).
    Ringing,
    /// Answered (2xx).
    Answered,
}

/// What an outbound leg is known by when it is placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegInfo {
    /// The inbound call it serves (its [`ActiveCall::id`]); `None` for a
    /// notification call.
    pub call: Option<u64>,
    pub kind: LegKind,
    /// The agent's user id; `None` for the overflow number.
    pub agent: Option<String>,
    /// The number dialled (E.164).
    pub target: String,
}

/// An outbound leg in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LiveLeg {
    /// The switch's id for the leg while it lasts.
    pub id: u64,
    /// The call it serves; `null` for a notification call.
    pub call: Option<u64>,
    pub kind: LegKind,
    pub agent: Option<String>,
    /// The number dialled (E.164).
    pub target: String,
    /// The trunk the (latest) INVITE went to; `null` before it went out.
    pub trunk: Option<String>,
    /// SIP Call-ID of the (latest) INVITE, to match a carrier's trace.
    pub sip_call_id: Option<String>,
    pub state: LegState,
    /// When it entered `state`.
    pub since: DateTime<Utc>,
    pub started: DateTime<Utc>,
}

/// A call in progress, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActiveCall {
    /// The switch's id for the call while it lasts (not the SIP Call-ID).
    pub id: u64,
    /// SIP Call-ID of the inbound leg.
    pub call_id: String,
    pub flow: String,
    pub caller: String,
    pub contact_point: String,
    pub started: DateTime<Utc>,
    /// Whole seconds since `started`.
    pub duration_seconds: i64,
    pub state: CallState,
    /// When it entered `state`.
    pub since: DateTime<Utc>,
    /// The queue it waits or waited in.
    pub queue: Option<String>,
    /// When it entered the queue.
    pub waiting_since: Option<DateTime<Utc>>,
    /// Whole seconds waited: to now while waiting or ringing, to the bridge
    /// once bridged.
    pub wait_seconds: Option<i64>,
    /// The agent being rung (`ringing`) or talked to (`bridged`): a user
    /// id, or the overflow number.
    pub agent: Option<String>,
    /// Its outbound legs, oldest first.
    pub legs: Vec<LiveLeg>,
}

/// Everything in progress at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Snapshot {
    /// Changes since the process started: equal numbers, equal content.
    pub version: u64,
    pub at: DateTime<Utc>,
    /// Oldest first.
    pub calls: Vec<ActiveCall>,
    /// Legs that serve no inbound call (notification calls).
    pub lone_legs: Vec<LiveLeg>,
}

/// One customer waiting in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WaitingCustomer {
    /// The [`ActiveCall::id`].
    pub call: u64,
    pub caller: String,
    pub since: DateTime<Utc>,
    pub wait_seconds: i64,
    /// Who is being rung for them, if anyone.
    pub ringing: Option<String>,
}

/// A queue's waiting customers, longest wait first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueueWaiting {
    pub queue: String,
    pub customers: Vec<WaitingCustomer>,
    /// The longest wait now, 0 when nobody waits.
    pub longest_wait_seconds: i64,
}

/// Removes its call from the registry when dropped, however the call's
/// task ends.
#[must_use = "the call leaves the registry when this is dropped"]
pub struct CallGuard {
    live: Live,
    id: u64,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.live.change(|i| i.calls.remove(&self.id).is_some());
    }
}

/// Removes its leg from the registry when dropped.
#[must_use = "the leg leaves the registry when this is dropped"]
pub struct LegGuard {
    live: Live,
    id: u64,
}

impl Drop for LegGuard {
    fn drop(&mut self) {
        self.live.change(|i| i.legs.remove(&self.id).is_some());
    }
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every section is a plain map edit: a panic cannot leave one
        // half-done, so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `edit`; when it says it changed something, bumps the version
    /// under the same lock, so a snapshot's version always names its
    /// content (waking the watchers takes no lock of ours).
    fn change(&self, edit: impl FnOnce(&mut Inner) -> bool) {
        let mut inner = self.lock();
        if edit(&mut inner) {
            self.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// A receiver woken on every change (its value is the version).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// An inbound call was accepted; it is listed until the guard drops.
    pub fn call_started(&self, id: u64, info: CallInfo, now: DateTime<Utc>) -> CallGuard {
        self.change(|i| {
            i.calls.insert(
                id,
                CallEntry {
                    info,
                    started: now,
                    phase: Phase::Menu,
                },
            );
            true
        });
        CallGuard {
            live: self.clone(),
            id,
        }
    }

    /// The call entered `queue`.
    pub fn queued(&self, id: u64, queue: &str, now: DateTime<Utc>) {
        self.set_phase(id, |_| {
            Some(Phase::Queued {
                queue: queue.to_owned(),
                since: now,
            })
        });
    }

    /// The call was bridged to outbound leg `leg` (its agent, or for the
    /// overflow leg its number, is who the call is with).
    pub fn bridged(&self, id: u64, leg: u64, now: DateTime<Utc>) {
        self.change(|i| {
            let agent = match i.legs.get(&leg) {
                Some(l) => l.agent.clone().unwrap_or_else(|| l.target.clone()),
                None => return false,
            };
            let Some(c) = i.calls.get_mut(&id) else {
                return false;
            };
            let (queue, waited_since) = match &c.phase {
                Phase::Queued { queue, since } => (queue.clone(), *since),
                _ => return false,
            };
            c.phase = Phase::Bridged {
                queue,
                waited_since,
                agent,
                since: now,
            };
            true
        });
    }

    /// The flow is done with the call; it stays listed until its leg goes.
    pub fn ending(&self, id: u64, now: DateTime<Utc>) {
        self.set_phase(id, |p| match p {
            Phase::Ending { .. } => None,
            _ => Some(Phase::Ending { since: now }),
        });
    }

    fn set_phase(&self, id: u64, next: impl FnOnce(&Phase) -> Option<Phase>) {
        self.change(|i| {
            let Some(c) = i.calls.get_mut(&id) else {
                return false;
            };
            match next(&c.phase) {
                Some(p) => {
                    c.phase = p;
                    true
                }
                None => false,
            }
        });
    }

    /// An outbound leg is being placed; it is listed until the guard drops.
    pub fn leg_started(&self, id: u64, info: LegInfo, now: DateTime<Utc>) -> LegGuard {
        self.change(|i| {
            i.legs.insert(
                id,
                LiveLeg {
                    id,
                    call: info.call,
                    kind: info.kind,
                    agent: info.agent,
                    target: info.target,
                    trunk: None,
                    sip_call_id: None,
                    state: LegState::Placing,
                    since: now,
                    started: now,
                },
            );
            true
        });
        LegGuard {
            live: self.clone(),
            id,
        }
    }

    /// The leg's INVITE went to `trunk` with `sip_call_id` (again for each
    /// trunk it fails over to).
    pub fn leg_dialled(&self, id: u64, trunk: &str, sip_call_id: &str, now: DateTime<Utc>) {
        self.change(|i| {
            let Some(l) = i.legs.get_mut(&id) else {
                return false;
            };
            l.trunk = Some(trunk.to_owned());
            l.sip_call_id = Some(sip_call_id.to_owned());
            l.state = LegState::Trying;
            l.since = now;
            true
        });
    }

    /// The leg moved on to `state` (unchanged states keep their `since`).
    pub fn leg_state(&self, id: u64, state: LegState, now: DateTime<Utc>) {
        self.change(|i| match i.legs.get_mut(&id) {
            Some(l) if l.state != state => {
                l.state = state;
                l.since = now;
                true
            }
            _ => false,
        });
    }

    /// Whether `user` has an agent leg up (rung for, or talking to, a
    /// customer): their phone would answer a call of ours busy.
    pub fn agent_on_call(&self, user: &str) -> bool {
        self.lock()
            .legs
            .values()
            .any(|l| l.kind == LegKind::Agent && l.agent.as_deref() == Some(user))
    }

    /// Returns once `user` has no agent leg up, or at `until`; false when
    /// it gave up at `until`.
    pub async fn off_calls(&self, user: &str, until: tokio::time::Instant) -> bool {
        let mut changes = self.subscribe();
        while self.agent_on_call(user) {
            match tokio::time::timeout_at(until, changes.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the switch is going away.
                Ok(Err(_)) | Err(_) => return !self.agent_on_call(user),
            }
        }
        true
    }

    /// Everything in progress, as of `now`.
    pub fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        let inner = self.lock();
        let version = *self.changes.borrow();
        let mut legs_of: BTreeMap<u64, Vec<LiveLeg>> = BTreeMap::new();
        let mut lone_legs = Vec::new();
        for l in inner.legs.values() {
            match l.call {
                Some(c) => legs_of.entry(c).or_default().push(l.clone()),
                None => lone_legs.push(l.clone()),
            }
        }
        let calls = inner
            .calls
            .iter()
            .map(|(&id, c)| view(id, c, legs_of.remove(&id).unwrap_or_default(), now))
            .collect();
        Snapshot {
            version,
            at: now,
            calls,
            lone_legs,
        }
    }
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds().max(0)
}

fn view(id: u64, c: &CallEntry, mut legs: Vec<LiveLeg>, now: DateTime<Utc>) -> ActiveCall {
    legs.sort_by_key(|l| (l.started, l.id));
    let (state, since, queue, waiting_since, wait_seconds, agent) = match &c.phase {
        Phase::Menu => (CallState::InMenu, c.started, None, None, None, None),
        Phase::Queued { queue, since } => {
            // The newest leg still placing or ringing is who is rung now
            // (an earlier one may be finishing its CANCEL).
            let rung = legs
                .iter()
                .rev()
                .find(|l| l.kind != LegKind::Notification && l.state != LegState::Answered)
                .or_else(|| legs.last());
            let (state, state_since, agent) = match rung {
                Some(l) => (
                    CallState::Ringing,
                    l.started,
                    Some(l.agent.clone().unwrap_or_else(|| l.target.clone())),
                ),
                None => (CallState::Waiting, *since, None),
            };
            (
                state,
                state_since,
                Some(queue.clone()),
                Some(*since),
                Some(seconds(*since, now)),
                agent,
            )
        }
        Phase::Bridged {
            queue,
            waited_since,
            agent,
            since,
        } => (
            CallState::Bridged,
            *since,
            Some(queue.clone()),
            Some(*waited_since),
            Some(seconds(*waited_since, *since)),
            Some(agent.clone()),
        ),
        Phase::Ending { since } => (CallState::Ending, *since, None, None, None, None),
    };
    ActiveCall {
        id,
        call_id: c.info.call_id.clone(),
        flow: c.info.flow.clone(),
        caller: c.info.caller.clone(),
        contact_point: c.info.contact_point.clone(),
        started: c.started,
        duration_seconds: seconds(c.started, now),
        state,
        since,
        queue,
        waiting_since,
        wait_seconds,
        agent,
        legs,
    }
}

impl Snapshot {
    /// The customers waiting (or being rung for) per queue, longest wait
    /// first: one entry for each of `queues` (so an empty queue shows as
    /// empty), then any other queue a call is in (a reload removed it).
    pub fn waiting(&self, queues: &[String]) -> Vec<QueueWaiting> {
        let mut by_queue: BTreeMap<&str, Vec<WaitingCustomer>> = BTreeMap::new();
        for c in &self.calls {
            let (Some(q), Some(since), Some(wait)) = (&c.queue, c.waiting_since, c.wait_seconds)
            else {
                continue;
            };
            if !matches!(c.state, CallState::Waiting | CallState::Ringing) {
                continue;
            }
            by_queue.entry(q).or_default().push(WaitingCustomer {
                call: c.id,
                caller: c.caller.clone(),
                since,
                wait_seconds: wait,
                ringing: c.agent.clone(),
            });
        }
        let configured: Vec<(String, Vec<WaitingCustomer>)> = queues
            .iter()
            .map(|q| (q.clone(), by_queue.remove(q.as_str()).unwrap_or_default()))
            .collect();
        let others = by_queue.into_iter().map(|(q, c)| (q.to_owned(), c));
        configured
            .into_iter()
            .chain(others)
            .map(|(queue, mut customers)| {
                customers.sort_by_key(|c| (c.since, c.call));
                QueueWaiting {
                    queue,
                    longest_wait_seconds: customers.first().map_or(0, |c| c.wait_seconds),
                    customers,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn info(call_id: &str, flow: &str) -> CallInfo {
        CallInfo {
            call_id: call_id.into(),
            flow: flow.into(),
            caller: "+15551234567".into(),
            contact_point: "+15550100001".into(),
        }
    }

    fn agent_leg(call: u64, agent: &str) -> LegInfo {
        LegInfo {
            call: Some(call),
            kind: LegKind::Agent,
            agent: Some(agent.into()),
            target: "+12345678910".into(),
        }
    }

    /// A notice to an agent waits while they are on a customer call.
    #[tokio::test]
    async fn off_calls_waits_for_the_agents_leg_to_go() {
        let live = Live::default();
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        assert!(live.off_calls("jsmith", far).await, "no call: at once");
        let leg = live.leg_started(70, agent_leg(7, "jsmith"), t(0));
        // Someone else's leg does not count.
        let _other = live.leg_started(71, agent_leg(8, "bwayne"), t(0));
        assert!(live.agent_on_call("jsmith"));
        let waiter = tokio::spawn({
            let live = live.clone();
            async move { live.off_calls("jsmith", far).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "still on the call");
        drop(leg);
        assert!(waiter.await.unwrap(), "the call ended");
        // Bounded: gives up at `until`, saying so.
        let _leg = live.leg_started(72, agent_leg(9, "jsmith"), t(1));
        let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(20);
        assert!(!live.off_calls("jsmith", soon).await);
    }

    /// A queue call's whole life: menu, waiting (the wait grows with
    /// `now`), ringing an agent through a trunk, bridged (the wait stops
    /// at the bridge), gone with its guard.
    #[test]
    fn a_queue_call_from_arrival_to_hang_up() {
        let live = Live::default();
        let guard = live.call_started(7, info("abc@x", "Billing"), t(0));
        assert_eq!(live.snapshot(t(1)).calls[0].state, CallState::InMenu);

        live.queued(7, "Billing", t(1));
        let s = live.snapshot(t(5));
        let c = &s.calls[0];
        assert_eq!((c.state, c.wait_seconds), (CallState::Waiting, Some(4)));
        assert_eq!(c.queue.as_deref(), Some("Billing"));
        assert_eq!(live.snapshot(t(9)).calls[0].wait_seconds, Some(8));

        let leg = live.leg_started(70, agent_leg(7, "jsmith"), t(10));
        live.leg_dialled(70, "carrier", "leg1@tpswitch", t(10));
        live.leg_state(70, LegState::Ringing, t(11));
        let s = live.snapshot(t(12));
        let c = &s.calls[0];
        assert_eq!(c.state, CallState::Ringing);
        assert_eq!(c.agent.as_deref(), Some("jsmith"));
        assert_eq!(c.wait_seconds, Some(11));
        assert_eq!(c.legs.len(), 1);
        let l = &c.legs[0];
        assert_eq!(l.trunk.as_deref(), Some("carrier"));
        assert_eq!(l.sip_call_id.as_deref(), Some("leg1@tpswitch"));
        assert_eq!((l.state, l.since), (LegState::Ringing, t(11)));

        live.leg_state(70, LegState::Answered, t(13));
        live.bridged(7, 70, t(14));
        let s = live.snapshot(t(100));
        let c = &s.calls[0];
        assert_eq!((c.state, c.since), (CallState::Bridged, t(14)));
        assert_eq!(c.agent.as_deref(), Some("jsmith"));
        assert_eq!(c.wait_seconds, Some(13), "the wait ends at the bridge");
        assert_eq!(c.duration_seconds, 100);
        assert_eq!(c.legs[0].state, LegState::Answered);
        assert!(s.waiting(&["Billing".into()])[0].customers.is_empty());

        drop(leg);
        drop(guard);
        let s = live.snapshot(t(101));
        assert!(s.calls.is_empty() && s.lone_legs.is_empty());
    }

    /// An agent who does not answer: their leg goes and the customer is
    /// waiting again, still counted from their arrival.
    #[test]
    fn a_missed_agent_puts_the_customer_back_to_waiting() {
        let live = Live::default();
        let _g = live.call_started(1, info("a", "Billing"), t(0));
        live.queued(1, "Billing", t(0));
        drop(live.leg_started(10, agent_leg(1, "jsmith"), t(1)));
        let c = &live.snapshot(t(30)).calls[0];
        assert_eq!((c.state, c.since), (CallState::Waiting, t(0)));
        assert_eq!(c.wait_seconds, Some(30));
        assert!(c.legs.is_empty());
    }

    #[test]
    fn waiting_lists_every_queue_longest_wait_first() {
        let live = Live::default();
        let _a = live.call_started(1, info("a", "Billing"), t(0));
        let _b = live.call_started(2, info("b", "Billing"), t(0));
        let _c = live.call_started(3, info("c", "Gone"), t(0));
        let _d = live.call_started(4, info("d", "Billing"), t(0));
        live.queued(2, "Billing", t(5));
        live.queued(1, "Billing", t(8));
        live.queued(3, "Gone", t(9));
        let _leg = live.leg_started(20, agent_leg(2, "bwayne"), t(10));
        let w = live
            .snapshot(t(20))
            .waiting(&["Billing".into(), "Sales".into()]);
        type Row<'a> = (&'a str, Vec<(u64, i64, Option<&'a str>)>, i64);
        let got: Vec<Row> = w
            .iter()
            .map(|q| {
                (
                    q.queue.as_str(),
                    q.customers
                        .iter()
                        .map(|c| (c.call, c.wait_seconds, c.ringing.as_deref()))
                        .collect(),
                    q.longest_wait_seconds,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Billing", vec![(2, 15, Some("bwayne")), (1, 12, None)], 15),
                ("Sales", vec![], 0),
                // A queue a reload removed still shows who waits in it.
                ("Gone", vec![(3, 11, None)], 11),
            ]
        );
    }

    #[test]
    fn notification_legs_stand_alone_and_every_change_bumps_the_version() {
        let live = Live::default();
        let mut rx = live.subscribe();
        let leg = live.leg_started(
            5,
            LegInfo {
                call: None,
                kind: LegKind::Notification,
                agent: Some("jsmith".into()),
                target: "+12345678910".into(),
            },
            t(0),
        );
        assert!(rx.has_changed().unwrap());
        let v = *rx.borrow_and_update();
        let s = live.snapshot(t(1));
        assert_eq!(s.version, v);
        assert_eq!(s.lone_legs.len(), 1);
        // Nothing changes: no bump.
        live.leg_state(5, LegState::Placing, t(2));
        live.queued(99, "Billing", t(2));
        assert!(!rx.has_changed().unwrap());
        drop(leg);
        assert!(rx.has_changed().unwrap());
        assert!(live.snapshot(t(3)).lone_legs.is_empty());
    }

    #[test]
    fn ending_and_bridging_a_call_not_queued_change_nothing_wrong() {
        let live = Live::default();
        let _g = live.call_started(1, info("a", "Login"), t(0));
        // A bridge for a call in the menu (cannot happen) is ignored.
        let _l = live.leg_started(2, agent_leg(1, "x"), t(0));
        live.bridged(1, 2, t(1));
        assert_eq!(live.snapshot(t(2)).calls[0].state, CallState::InMenu);
        live.ending(1, t(3));
        let c = &live.snapshot(t(4)).calls[0];
        assert_eq!((c.state, c.since), (CallState::Ending, t(3)));
    }
}
