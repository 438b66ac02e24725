//! Metrics: every name, help text and histogram bucket list in one place,
//! the process-wide recorder (the `metrics` crate's facade with
//! `metrics-exporter-prometheus` behind it), and the small helpers the
//! shells call. It imports no other part of the switch, so any shell may
//! use it; sans-IO machines never do (their shells emit what they decide).
//!
//! Names keep Prometheus' conventions (<https://prometheus.io/docs/practices/naming/>):
//! counters end in `_total`, durations are `_seconds` with buckets chosen
//! for each quantity's range in milliseconds to minutes.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

mod pacing;

pub use pacing::render_pacing_lateness;

/// Customer calls (and log-in calls) in progress, by flow.
pub const CALLS_ACTIVE: &str = "tpswitch_calls_active";
/// SIP legs in progress, by direction (`inbound`, `outbound`).
pub const LEGS_ACTIVE: &str = "tpswitch_legs_active";
/// Agents by queue state (`offline`, `available`, `ringing`, `busy`, `wrap_up`).
pub const AGENTS: &str = "tpswitch_agents";
/// Customers waiting for an agent, by queue.
pub const QUEUE_WAITING: &str = "tpswitch_queue_waiting";
/// 1 when the trunk is usable, 0 when it is not, by trunk.
pub const TRUNK_UP: &str = "tpswitch_trunk_up";
/// Registration state by trunk: one series per state, the current one at 1.
pub const TRUNK_REGISTRATION: &str = "tpswitch_trunk_registration";
/// From the customer entering the queue to the bridge, by queue.
pub const QUEUE_WAIT: &str = "tpswitch_queue_wait_seconds";
/// From an agent's INVITE to the answer, final response or CANCEL.
pub const RING_TIME: &str = "tpswitch_ring_time_seconds";
/// From an agent's answer to the accept key.
pub const ACCEPT_LATENCY: &str = "tpswitch_accept_latency_seconds";
/// How late the pacing thread sent each paced RTP packet (rendered from the
/// thread's own buckets, see `pacing.rs`).
pub const PACING_LATENESS: &str = "tpswitch_pacing_lateness_seconds";
/// How long one store write took, by operation.
pub const STORE_WRITE: &str = "tpswitch_store_write_seconds";
/// Claims on agents in a shared store, by result (granted, refused,
/// lost, error).
pub const CLAIMS: &str = "tpswitch_cluster_claims_total";
/// Heartbeats of this node in a shared store, by result (ok, replaced,
/// error).
pub const HEARTBEATS: &str = "tpswitch_cluster_heartbeats_total";
/// Attempts to reach an agent, by how they ended.
pub const ATTEMPTS: &str = "tpswitch_attempts_total";
/// Calls that ended, by flow and outcome.
pub const CALLS: &str = "tpswitch_calls_total";
/// Presence changes, by reason.
pub const PRESENCE_CHANGES: &str = "tpswitch_presence_changes_total";
/// The allocator's heap, by kind: `in_use` (live allocations) and `free`
/// (held by the allocator, not yet given back). RSS that grows with `in_use`
/// is data the switch keeps; with `free`, fragmentation (issue 12's soak).
pub const HEAP: &str = "tpswitch_heap_bytes";

/// Seconds. A customer waits from a moment to several minutes.
const QUEUE_WAIT_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Seconds. A phone rings up to the ring timeout (tens of seconds).
const RING_TIME_BUCKETS: &[f64] = &[
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0,
];
/// Seconds. An agent presses the accept key within the accept timeout.
const ACCEPT_LATENCY_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0];
/// Seconds. A SQLite write with `synchronous=FULL` costs an fsync: from a
/// fraction of a millisecond to seconds on a struggling disk.
const STORE_WRITE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The one recorder of the process. The first call installs it as the
/// `metrics` global recorder and describes every metric; later calls (a
/// second switch in one test process) get the same handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics shows only the switch's own counters");
            }
            describe();
            handle
        })
        .clone()
}

/// The exporter with our buckets. Without a bucket list a histogram would
/// render as a summary, which cannot be aggregated across switches.
fn builder() -> PrometheusBuilder {
    let mut b = PrometheusBuilder::new();
    for (name, buckets) in [
        (QUEUE_WAIT, QUEUE_WAIT_BUCKETS),
        (RING_TIME, RING_TIME_BUCKETS),
        (ACCEPT_LATENCY, ACCEPT_LATENCY_BUCKETS),
        (STORE_WRITE, STORE_WRITE_BUCKETS),
    ] {
        // Only an empty bucket list is refused; ours are constants.
        b = match b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
    }
    b
}

fn describe() {
    describe_gauge!(CALLS_ACTIVE, "Calls in progress, by flow");
    describe_gauge!(LEGS_ACTIVE, "SIP call legs in progress, by direction");
    describe_gauge!(AGENTS, "Agents by queue state");
    describe_gauge!(QUEUE_WAITING, "Customers waiting for an agent, by queue");
    describe_gauge!(TRUNK_UP, "1 when the trunk answers, 0 when it does not");
    describe_gauge!(
        HEAP,
        metrics::Unit::Bytes,
        "The allocator's heap: in_use (live allocations) and free (held, not given back)"
    );
    describe_gauge!(
        TRUNK_REGISTRATION,
        "Registration state by trunk (the current state is 1)"
    );
    describe_histogram!(
        QUEUE_WAIT,
        metrics::Unit::Seconds,
        "From entering the queue to being bridged to an agent"
    );
    describe_histogram!(
        RING_TIME,
        metrics::Unit::Seconds,
        "From an agent's INVITE to the answer, final response or CANCEL"
    );
    describe_histogram!(
        ACCEPT_LATENCY,
        metrics::Unit::Seconds,
        "From an agent's answer to the accept key"
    );
    describe_histogram!(
        STORE_WRITE,
        metrics::Unit::Seconds,
        "Duration of one store write, by operation"
    );
    describe_counter!(ATTEMPTS, "Attempts to reach an agent, by how they ended");
    describe_counter!(
        CLAIMS,
        "Claims on agents in the shared store, by result: granted, refused (another node holds the agent), lost (a write refused: another node took the agent after this node's lease ran out), error"
    );
    describe_counter!(
        HEARTBEATS,
        "This node's heartbeats in the shared store, by result: ok, replaced (another process took the node's name), error"
    );
    describe_counter!(CALLS, "Calls that ended, by flow and outcome");
    describe_counter!(PRESENCE_CHANGES, "Presence changes, by reason");
}

/// A gauge that counts something while it lives: +1 now, -1 when dropped,
/// so a task that ends by any path (return, panic, abort) gives it back.
pub struct InProgress {
    gauge: metrics::Gauge,
}

impl InProgress {
    /// A call of `flow` (the flow's name; `-` for a number with no flow).
    pub fn call(flow: &str) -> Self {
        Self::start(gauge!(CALLS_ACTIVE, "flow" => flow.to_owned()))
    }

    /// A SIP leg we answered.
    pub fn inbound_leg() -> Self {
        Self::start(gauge!(LEGS_ACTIVE, "direction" => "inbound"))
    }

    /// A SIP leg we placed (agent, overflow or notification call).
    pub fn outbound_leg() -> Self {
        Self::start(gauge!(LEGS_ACTIVE, "direction" => "outbound"))
    }

    fn start(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        InProgress { gauge }
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

/// A call ended: `outcome` in the words the store and `tpswitch calls` use.
pub fn call_ended(flow: &str, outcome: &'static str) {
    counter!(CALLS, "flow" => flow.to_owned(), "outcome" => outcome).increment(1);
}

/// One more customer waiting in `queue` (`+1`), or one fewer (`-1`).
pub fn queue_waiting(queue: &str, delta: f64) {
    gauge!(QUEUE_WAITING, "queue" => queue.to_owned()).increment(delta);
}

/// A customer of `queue` was bridged after waiting `wait`.
pub fn queue_wait(queue: &str, wait: Duration) {
    histogram!(QUEUE_WAIT, "queue" => queue.to_owned()).record(wait.as_secs_f64());
}

/// An attempt to reach an agent ended (`cause` as stored, e.g. `accepted`).
pub fn attempt_ended(cause: &'static str, ring: Duration, accept_latency: Option<Duration>) {
    counter!(ATTEMPTS, "cause" => cause).increment(1);
    histogram!(RING_TIME).record(ring.as_secs_f64());
    if let Some(a) = accept_latency {
        histogram!(ACCEPT_LATENCY).record(a.as_secs_f64());
    }
}

/// An agent moved between queue states (`from` is `None` the first time).
pub fn agent_state(from: Option<&'static str>, to: &'static str) {
    if let Some(from) = from {
        gauge!(AGENTS, "state" => from).decrement(1.0);
    }
    gauge!(AGENTS, "state" => to).increment(1.0);
}

/// A presence change (`online`, `offline`, `forced_offline`,
/// `not_responding`, `responding`, `expired`).
pub fn presence_changed(reason: &'static str) {
    counter!(PRESENCE_CHANGES, "reason" => reason).increment(1);
}

/// A claim on an agent in the shared store, by result.
pub fn claim(result: &'static str) {
    counter!(CLAIMS, "result" => result).increment(1);
}

/// A heartbeat of this node in the shared store, by result.
pub fn heartbeat(result: &'static str) {
    counter!(HEARTBEATS, "result" => result).increment(1);
}

/// The allocator's heap figures (see [`HEAP`]).
pub fn heap(in_use: usize, free: usize) {
    gauge!(HEAP, "kind" => "in_use").set(in_use as f64);
    gauge!(HEAP, "kind" => "free").set(free as f64);
}

/// One store write (`op` names it: `insert_call`, `finish_attempt`, ...).
pub fn store_write(op: &'static str, took: Duration) {
    histogram!(STORE_WRITE, "op" => op).record(took.as_secs_f64());
}

/// The trunk answers (`true`) or does not (`false`). Called where the
/// switch learns it: an outbound INVITE's answer today; OPTIONS keep-alives
/// and registrations when they exist.
pub fn trunk_up(trunk: &str, up: bool) {
    gauge!(TRUNK_UP, "trunk" => trunk.to_owned()).set(if up { 1.0 } else { 0.0 });
}

/// The registration states [`trunk_registration`] knows, in order.
pub const REGISTRATION_STATES: [&str; 4] = ["unregistered", "registering", "registered", "failed"];

/// The trunk's registration moved to `state` (one of
/// [`REGISTRATION_STATES`]): that series becomes 1 and the others 0, so a
/// query can alert on `tpswitch_trunk_registration{state="failed"} == 1`.
pub fn trunk_registration(trunk: &str, state: &'static str) {
    for s in REGISTRATION_STATES {
        gauge!(TRUNK_REGISTRATION, "trunk" => trunk.to_owned(), "state" => s).set(if s == state {
            1.0
        } else {
            0.0
        });
    }
}

/// Sets a counter whose value another part keeps (the SIP core's,
/// transport's and media engine's atomics) to that value, so `/metrics`
/// shows it under its established name.
pub fn mirror_counter(name: &'static str, help: &'static str, value: u64) {
    describe_counter!(name, help);
    counter!(name).absolute(value);
}

/// As [`mirror_counter`], one series per value of a `reason` label.
pub fn mirror_counter_by_reason(
    name: &'static str,
    help: &'static str,
    values: &[(&'static str, u64)],
) {
    describe_counter!(name, help);
    for &(reason, value) in values {
        counter!(name, "reason" => reason).absolute(value);
    }
}

#[cfg(test)]
mod tests;
