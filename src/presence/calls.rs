//! Customer call records and the attempts to reach agents for them: what the
//! queue flow writes as a call progresses, and what reports read back.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::rfc3339_millis;

/// A customer call as it starts (the row is created before any agent rings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    /// SIP Call-ID of the customer leg.
    pub call_id: String,
    pub flow: String,
    pub customer_number: String,
    /// The dialled number (dispatch mapping) the customer reached.
    pub contact_point: String,
    pub started_at: DateTime<Utc>,
    /// Set when the call is answered before its row is written (queue calls
    /// are): one write instead of an insert and an update.
    pub answered_at: Option<DateTime<Utc>>,
}

/// Fields set later in a call's life. `None` leaves the stored value as it
/// is, so the shell can record the answer and, later, the end separately.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallUpdate {
    pub answered_at: Option<DateTime<Utc>>,
    /// When the customer was bridged to an agent (their wait ends).
    pub bridged_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Free text chosen by the flow, e.g. "bridged", "abandoned", "overflow".
    pub outcome: Option<String>,
    pub hung_up_by: Option<HungUpBy>,
}

/// Who ended a call or a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HungUpBy {
    Customer,
    Agent,
    /// The switch itself (timeout, max wait, shutdown).
    Switch,
}

impl HungUpBy {
    pub fn as_str(self) -> &'static str {
        match self {
            HungUpBy::Customer => "customer",
            HungUpBy::Agent => "agent",
            HungUpBy::Switch => "switch",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "customer" => HungUpBy::Customer,
            "agent" => HungUpBy::Agent,
            "switch" => HungUpBy::Switch,
            _ => return None,
        })
    }
}

/// How an attempt to reach an agent ended, at the SIP level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SipOutcome {
    /// 2xx.
    Answered,
    /// 486 Busy Here / 600 Busy Everywhere.
    Busy,
    /// Ring timeout: we sent CANCEL, or 408/480.
    NoAnswer,
    /// The agent declined (603, or answered and did not accept).
    Rejected,
    /// Anything else: transport error, 4xx/5xx from the trunk.
    Failed,
}

impl SipOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SipOutcome::Answered => "answered",
            SipOutcome::Busy => "busy",
            SipOutcome::NoAnswer => "no-answer",
            SipOutcome::Rejected => "rejected",
            SipOutcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "answered" => SipOutcome::Answered,
            "busy" => SipOutcome::Busy,
            "no-answer" => SipOutcome::NoAnswer,
            "rejected" => SipOutcome::Rejected,
            "failed" => SipOutcome::Failed,
            _ => return None,
        })
    }
}

/// One attempt to reach an agent for a call, as it is when it is over:
/// written with `insert_attempt`, or over the row `start_attempt` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    pub agent_user_id: String,
    pub started_at: DateTime<Utc>,
    /// From INVITE sent to final response or CANCEL.
    pub ring_ms: Option<i64>,
    pub sip_outcome: SipOutcome,
    /// The final SIP status code, when one was received.
    pub sip_status: Option<u16>,
    /// From the agent's answer to their accept digit.
    pub accept_latency_ms: Option<i64>,
    pub hangup_cause: Option<String>,
    pub hung_up_by: Option<HungUpBy>,
    /// The SIP Call-ID of the agent's leg, to match a carrier's trace.
    pub sip_call_id: Option<String>,
}

/// A stored attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AttemptRecord {
    pub id: i64,
    pub agent_user_id: String,
    #[serde(with = "rfc3339_millis")]
    pub started_at: DateTime<Utc>,
    pub ring_ms: Option<i64>,
    /// `None` while the attempt is in progress.
    pub sip_outcome: Option<SipOutcome>,
    pub sip_status: Option<u16>,
    pub accept_latency_ms: Option<i64>,
    pub hangup_cause: Option<String>,
    pub hung_up_by: Option<HungUpBy>,
    pub sip_call_id: Option<String>,
}

/// A stored call with its attempts, oldest attempt first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CallRecord {
    /// Row id: what `update_call` and `insert_attempt` take.
    pub id: i64,
    pub call_id: String,
    pub flow: String,
    pub customer_number: String,
    pub contact_point: String,
    #[serde(with = "rfc3339_millis")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "rfc3339_millis::option")]
    pub answered_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_millis::option")]
    pub bridged_at: Option<DateTime<Utc>>,
    /// The customer's wait: answered to bridged, in milliseconds.
    pub wait_ms: Option<i64>,
    #[serde(with = "rfc3339_millis::option")]
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub hung_up_by: Option<HungUpBy>,
    pub attempts: Vec<AttemptRecord>,
}

impl CallRecord {
    /// The agent who took the call: the attempt that completed or, while a
    /// bridged call is still going on, the last attempt (the one bridged).
    pub fn taken_by(&self) -> Option<&str> {
        let completed = self
            .attempts
            .iter()
            .rev()
            .find(|a| a.hangup_cause.as_deref() == Some("completed"));
        let live = || {
            self.bridged_at?;
            self.attempts.last().filter(|a| a.hangup_cause.is_none())
        };
        completed.or_else(live).map(|a| a.agent_user_id.as_str())
    }
}

/// Which calls a report or the API asks the store for. `None` fields do
/// not filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFilter {
    /// One call by its row id.
    pub id: Option<i64>,
    /// Calls that started at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Calls that started before this (exclusive, so consecutive ranges
    /// neither overlap nor leave a gap).
    pub until: Option<DateTime<Utc>>,
    /// Calls of this flow.
    pub flow: Option<String>,
    /// Calls with at least one attempt to reach this agent (taken or not).
    pub agent: Option<String>,
    /// Keyset cursor: only calls past this `(started_at_ms, id)` in the
    /// order asked for.
    pub after: Option<(i64, i64)>,
    /// Newest first (the API's lists) rather than oldest first (reports).
    pub newest_first: bool,
    pub limit: u32,
}

impl CallFilter {
    /// Every call, oldest first, at most `limit`.
    pub fn oldest_first(limit: u32) -> Self {
        CallFilter {
            id: None,
            since: None,
            until: None,
            flow: None,
            agent: None,
            after: None,
            newest_first: false,
            limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_reject_unknown() {
        for o in [
            SipOutcome::Answered,
            SipOutcome::Busy,
            SipOutcome::NoAnswer,
            SipOutcome::Rejected,
            SipOutcome::Failed,
        ] {
            assert_eq!(SipOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for h in [HungUpBy::Customer, HungUpBy::Agent, HungUpBy::Switch] {
            assert_eq!(HungUpBy::parse(h.as_str()), Some(h));
        }
        assert_eq!(SipOutcome::parse("no_answer"), None);
        assert_eq!(HungUpBy::parse(""), None);
    }
}
