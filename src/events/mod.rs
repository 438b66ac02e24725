//! The event bus: what happened to agents' presence, customer calls and
//! the attempts to reach agents, numbered so a client can resume.
//!
//! A leaf module (it imports nothing of the switch): `presence/`, `call/`
//! and `api/` all reach it without importing one another. Publishers hand
//! it a [`Body`]; it stamps an id and keeps the last
//! [`EventBus::capacity`] events, so `GET /api/v1/events` can replay what a
//! reconnecting client missed (the SSE `Last-Event-ID`, WHATWG HTML
//! §9.2) and webhooks ([`webhook`]) can be fed from the same numbering.
//!
//! Ids grow by one per event and start, in each run, at the start time in
//! epoch milliseconds shifted left by [`ID_SHIFT`] bits: an id a client
//! kept from an earlier run is below every id of this run, so it resumes
//! as "events were missed" rather than silently skipping this run's first
//! events (which a count from 1 would do once this run passes the old id).

pub mod webhook;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use tokio::sync::broadcast;

/// Events kept for resume when the configuration does not say otherwise.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Bits left for events of one run per millisecond between two runs'
/// starts: ids stay below 2^53 (exact in JavaScript) until the year 2248.
pub const ID_SHIFT: u32 = 10;

/// One event as clients see it: `{"id": …, "type": "presence.online",
/// "at": "…Z", …fields of the kind}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: u64,
    #[serde(serialize_with = "millis")]
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub body: Body,
}

impl Event {
    /// The SSE `event:` name and webhook filter key, e.g. `presence.online`.
    pub fn kind(&self) -> &'static str {
        self.body.kind()
    }
}

/// An online window as events carry it (RFC 3339 UTC, whole seconds, as the
/// rest of the API shows windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    #[serde(serialize_with = "secs")]
    pub start: DateTime<Utc>,
    #[serde(serialize_with = "secs")]
    pub end: DateTime<Utc>,
}

/// What happened. Agents are named by user id, calls by the customer leg's
/// SIP Call-ID (what call records carry).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Body {
    /// A new online window.
    #[serde(rename = "presence.online")]
    Online {
        agent: String,
        window: Span,
        /// Who set it, as the presence history records it: `agent` (the
        /// log-in line) or the API token's name.
        actor: Option<String>,
    },
    /// The window was replaced by a new one before its end (the
    /// `presence.online` with the new one follows).
    #[serde(rename = "presence.replaced")]
    Replaced { agent: String, window: Span },
    /// The agent went offline from the log-in menu.
    #[serde(rename = "presence.offline")]
    Offline { agent: String, window: Option<Span> },
    /// The window reached its end; `end` is the real end.
    #[serde(rename = "presence.expired")]
    Expired {
        agent: String,
        #[serde(serialize_with = "secs")]
        end: DateTime<Utc>,
        /// It ended while the switch was down and was closed at start-up.
        while_down: bool,
        /// It ended during a call and was closed when the call ended.
        deferred: bool,
    },
    /// The switch or a supervisor set the agent offline.
    #[serde(rename = "presence.forced-offline")]
    ForcedOffline {
        agent: String,
        window: Option<Span>,
        reason: String,
        /// Who did, as the presence history records it: `switch` (missed
        /// calls) or the API token's name.
        actor: Option<String>,
    },
    /// The switch closed the agent's window after `max_no_answer` missed
    /// offers in a row: they are `not-responding` until they call in or a
    /// supervisor sets them online or offline.
    #[serde(rename = "presence.not-responding")]
    NotResponding {
        agent: String,
        window: Option<Span>,
        /// As the history has it: "missed 3 offers in a row (max_no_answer)".
        reason: String,
    },
    /// The not-responding mark was cleared: `actor` is `agent` (they
    /// called in) or the API token's name.
    #[serde(rename = "presence.responding")]
    Responding { agent: String, actor: String },
    /// A customer call was answered and entered a queue.
    #[serde(rename = "call.queued")]
    CallQueued {
        call_id: String,
        flow: String,
        customer: String,
        contact_point: String,
    },
    /// The customer was bridged to an agent: their wait ends.
    #[serde(rename = "call.bridged")]
    CallBridged { call_id: String, agent: String },
    /// The customer call is over.
    #[serde(rename = "call.ended")]
    CallEnded {
        call_id: String,
        flow: String,
        /// `bridged`, `abandoned`, `overflow`, `transferred`.
        outcome: String,
        agent: Option<String>,
        /// `customer`, `agent`, `switch`.
        hung_up_by: String,
    },
    /// An agent's phone is being dialled for a call.
    #[serde(rename = "attempt.started")]
    AttemptStarted { call_id: String, agent: String },
    /// The agent answered and accepted: the customer is bridged to them
    /// (`call.bridged` follows).
    #[serde(rename = "attempt.accepted")]
    AttemptAccepted { call_id: String, agent: String },
    /// The attempt ended without the agent taking the call.
    #[serde(rename = "attempt.missed")]
    AttemptMissed {
        call_id: String,
        agent: String,
        ring_ms: u64,
        /// `ring-timeout`, `busy`, `declined`, `not-accepted`, ….
        cause: String,
        /// `answered`, `busy`, `no-answer`, `rejected`, `failed`.
        sip_outcome: String,
        sip_status: Option<u16>,
    },
    /// A resumed stream asked for events this bus no longer holds (too old,
    /// or from an earlier run): the client should re-read its snapshot
    /// (agents, calls) and carry on from the events that follow.
    #[serde(rename = "events.missed")]
    Missed {
        /// The id the client asked to resume after.
        after: u64,
        /// The oldest id still held, if any.
        oldest: Option<u64>,
    },
}

/// Every kind a publisher can emit (not `events.missed`, which only a
/// stream makes), for webhook filters and their validation.
pub const KINDS: &[&str] = &[
    "presence.online",
    "presence.replaced",
    "presence.offline",
    "presence.expired",
    "presence.forced-offline",
    "presence.not-responding",
    "presence.responding",
    "call.queued",
    "call.bridged",
    "call.ended",
    "attempt.started",
    "attempt.accepted",
    "attempt.missed",
];

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Online { .. } => "presence.online",
            Body::Replaced { .. } => "presence.replaced",
            Body::Offline { .. } => "presence.offline",
            Body::Expired { .. } => "presence.expired",
            Body::ForcedOffline { .. } => "presence.forced-offline",
            Body::NotResponding { .. } => "presence.not-responding",
            Body::Responding { .. } => "presence.responding",
            Body::CallQueued { .. } => "call.queued",
            Body::CallBridged { .. } => "call.bridged",
            Body::CallEnded { .. } => "call.ended",
            Body::AttemptStarted { .. } => "attempt.started",
            Body::AttemptAccepted { .. } => "attempt.accepted",
            Body::AttemptMissed { .. } => "attempt.missed",
            Body::Missed { .. } => "events.missed",
        }
    }
}

/// Where a resumed reader starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Set when events after the requested id are no longer held: send it
    /// first so the client knows to refetch.
    pub missed: Option<Body>,
    /// Held events after the requested id, oldest first.
    pub events: Vec<Arc<Event>>,
    /// The newest id published so far (this run's first id minus one when
    /// none was): a reader that falls behind resumes after it.
    pub upto: u64,
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    /// The id the next event gets.
    next: u64,
    /// The first id of this run.
    first: u64,
    capacity: usize,
}

/// The bus: cheap to clone, shared by every publisher and reader.
#[derive(Clone)]
pub struct EventBus {
    ring: Arc<Mutex<Ring>>,
    live: broadcast::Sender<Arc<Event>>,
}

impl EventBus {
    /// A bus keeping the last `capacity` events (at least 1), whose ids
    /// start from `started` (the process's start time).
    pub fn new(capacity: usize, started: DateTime<Utc>) -> EventBus {
        let capacity = capacity.max(1);
        let ms = u64::try_from(started.timestamp_millis()).unwrap_or(0);
        let first = ms.checked_shl(ID_SHIFT).unwrap_or(1).max(1);
        EventBus {
            ring: Arc::new(Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity),
                next: first,
                first,
                capacity,
            })),
            // A live reader as far behind as the ring is long can still
            // catch up from the ring; further behind it gets `Lagged`.
            live: broadcast::channel(capacity).0,
        }
    }

    /// The id this run's first event gets (or got): resuming after one
    /// less replays every event of this run still held.
    pub fn first_id(&self) -> u64 {
        self.lock().first
    }

    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic elsewhere while holding the lock leaves a consistent ring
        // (every change is a push or a pop): keep serving.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stamp `body` with the next id and `at`, keep it, and hand it to live
    /// readers. Returns the event.
    pub fn publish(&self, body: Body, at: DateTime<Utc>) -> Arc<Event> {
        let mut ring = self.lock();
        let event = Arc::new(Event {
            id: ring.next,
            at,
            body,
        });
        ring.next = ring.next.saturating_add(1);
        if ring.events.len() >= ring.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        // Sent under the lock, so live readers see ids in order and a
        // reader subscribing under the same lock misses none.
        let _ = self.live.send(event.clone());
        event
    }

    /// Live events from now on, after [`EventBus::replay`]'s: both taken
    /// under one lock, so nothing falls between them.
    pub fn subscribe(&self, after: Option<u64>) -> (Replay, broadcast::Receiver<Arc<Event>>) {
        let ring = self.lock();
        let replay = replay(&ring, after);
        (replay, self.live.subscribe())
    }

    /// What a reader resuming after `after` gets from the ring (`None`:
    /// a new reader, nothing to replay).
    pub fn replay(&self, after: Option<u64>) -> Replay {
        replay(&self.lock(), after)
    }

    /// The id of the newest event, if any.
    pub fn last_id(&self) -> Option<u64> {
        self.lock().events.back().map(|e| e.id)
    }
}

fn replay(ring: &Ring, after: Option<u64>) -> Replay {
    let last = ring.next.saturating_sub(1);
    let Some(after) = after else {
        return Replay {
            missed: None,
            events: Vec::new(),
            upto: last,
        };
    };
    let oldest = ring.events.front().map(|e| e.id);
    // Held without a gap: every id after `after` is still in the ring (or
    // none was published since). An id beyond the last one is from another
    // run (or made up); one from before this run's first is from an earlier
    // run: either way the client cannot know what it missed.
    let intact = after >= ring.first.saturating_sub(1)
        && after <= last
        && oldest.is_none_or(|o| after.saturating_add(1) >= o);
    if intact {
        Replay {
            missed: None,
            events: ring
                .events
                .iter()
                .filter(|e| e.id > after)
                .cloned()
                .collect(),
            upto: last,
        }
    } else {
        Replay {
            missed: Some(Body::Missed { after, oldest }),
            events: ring.events.iter().cloned().collect(),
            upto: last,
        }
    }
}

fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn secs<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests;
