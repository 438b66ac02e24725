//! Queue figures over customer call records: offered, answered, abandoned,
//! average speed of answer, longest wait and service level, per queue flow.
//! A pure function of the records, the thresholds and `now`; the API and
//! the floor view read the records and show the rows.
//!
//! A customer's wait runs from the switch answering their call (the queue
//! answers before the greeting) to the bridge with an agent, to the hang-up
//! of a customer who gave up, to the overflow, or to `now` while they are
//! still waiting.
//!
//! Service level is the share of customers bridged within the queue's
//! `service_level_threshold` among those whose wait is over (bridged,
//! abandoned or sent to the overflow); customers still waiting are not
//! counted yet, whichever way their wait ends. `null` when no wait is over.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::{Config, Flow};
use crate::presence::CallRecord;

/// The service level threshold of a queue the configuration no longer
/// names (its calls are still counted): the key's own default.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_secs(20);

/// One queue's figures over a time range.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueueStats {
    /// The queue flow's name.
    pub flow: String,
    /// Customer calls that reached the queue.
    pub offered: u64,
    /// Customers bridged to an agent.
    pub answered: u64,
    /// Customers who hung up before being bridged.
    pub abandoned: u64,
    /// Customers sent to the overflow (number or prompt) after `max_wait`
    /// or with no agent online.
    pub overflowed: u64,
    /// Customers still waiting now.
    pub waiting: u64,
    /// Mean wait of the answered customers, in milliseconds; `null` when
    /// none was answered.
    pub average_speed_of_answer_ms: Option<i64>,
    /// The longest wait of any customer (answered, abandoned, overflowed
    /// or still waiting), in milliseconds; `null` with no calls.
    pub longest_wait_ms: Option<i64>,
    /// The queue's `service_level_threshold`, in milliseconds.
    pub service_level_threshold_ms: i64,
    /// Customers bridged within the threshold.
    pub answered_within_threshold: u64,
    /// `answered_within_threshold` over the customers whose wait is over,
    /// from 0 to 1; `null` when no wait is over.
    pub service_level: Option<f64>,
}

impl QueueStats {
    fn empty(flow: &str, threshold: Duration) -> Self {
        QueueStats {
            flow: flow.to_owned(),
            offered: 0,
            answered: 0,
            abandoned: 0,
            overflowed: 0,
            waiting: 0,
            average_speed_of_answer_ms: None,
            longest_wait_ms: None,
            service_level_threshold_ms: millis(threshold),
            answered_within_threshold: 0,
            service_level: None,
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Each queue flow of `cfg` with its threshold, by name.
pub fn thresholds(cfg: &Config) -> BTreeMap<String, Duration> {
    cfg.flows
        .iter()
        .filter_map(|f| match f {
            Flow::Queue(q) => Some((q.name.clone(), q.service_level_threshold)),
            _ => None,
        })
        .collect()
}

/// The figures of every queue in `thresholds` (zeros when it had no call)
/// and of every other flow the records name, sorted by flow name. `calls`
/// are the customer calls of the range; `now` ends the waits still going.
pub fn queue_stats(
    calls: &[CallRecord],
    thresholds: &BTreeMap<String, Duration>,
    now: DateTime<Utc>,
) -> Vec<QueueStats> {
    let threshold = |flow: &str| thresholds.get(flow).copied().unwrap_or(DEFAULT_THRESHOLD);
    let mut out: BTreeMap<&str, (QueueStats, i64)> = thresholds
        .iter()
        .map(|(name, t)| (name.as_str(), (QueueStats::empty(name, *t), 0)))
        .collect();
    for c in calls {
        let (s, answered_wait_sum) = out
            .entry(c.flow.as_str())
            .or_insert_with(|| (QueueStats::empty(&c.flow, threshold(&c.flow)), 0));
        s.offered += 1;
        let from = c.answered_at.unwrap_or(c.started_at);
        let (wait_end, over) = match (c.bridged_at, c.ended_at) {
            (Some(b), _) => (b, true),
            (None, Some(e)) => (e, true),
            (None, None) => (now, false),
        };
        let wait = (wait_end - from).num_milliseconds().max(0);
        s.longest_wait_ms = Some(s.longest_wait_ms.map_or(wait, |w| w.max(wait)));
        if !over {
            s.waiting += 1;
            continue;
        }
        if c.bridged_at.is_some() && c.outcome.as_deref() != Some("transferred") {
            s.answered += 1;
            *answered_wait_sum = answered_wait_sum.saturating_add(wait);
            if wait <= s.service_level_threshold_ms {
                s.answered_within_threshold += 1;
            }
        } else if c.outcome.as_deref() == Some("abandoned") {
            s.abandoned += 1;
        } else {
            // "overflow", "transferred" (bridged to the overflow number,
            // not to an agent), or a call whose end has no outcome.
            s.overflowed += 1;
        }
    }
    out.into_values()
        .map(|(mut s, sum)| {
            if s.answered > 0 {
                let n = i64::try_from(s.answered).unwrap_or(i64::MAX);
                s.average_speed_of_answer_ms = Some(sum / n);
            }
            let over = s.answered + s.abandoned + s.overflowed;
            if over > 0 {
                s.service_level = Some(s.answered_within_threshold as f64 / over as f64);
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::HungUpBy;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    /// A call of `flow` answered by the switch at `at` s, bridged at
    /// `bridged`, ended at `ended`, with `outcome`.
    fn call(
        flow: &str,
        at: i64,
        bridged: Option<i64>,
        ended: Option<i64>,
        outcome: Option<&str>,
    ) -> CallRecord {
        CallRecord {
            id: at,
            call_id: format!("c{at}"),
            flow: flow.into(),
            customer_number: "+15550001111".into(),
            contact_point: "+15550002222".into(),
            started_at: t(at),
            answered_at: Some(t(at)),
            bridged_at: bridged.map(t),
            wait_ms: None,
            ended_at: ended.map(t),
            outcome: outcome.map(str::to_owned),
            hung_up_by: ended.map(|_| HungUpBy::Customer),
            attempts: Vec::new(),
        }
    }

    /// Figures computed by hand for a fixed day of Billing calls.
    #[test]
    fn figures_match_a_hand_computed_day() {
        let calls = vec![
            // Waits 5 s, 20 s (on the threshold: within), 45 s.
            call("Billing", 0, Some(5), Some(100), Some("bridged")),
            call("Billing", 10, Some(30), Some(200), Some("bridged")),
            call("Billing", 20, Some(65), None, None), // bridged, still talking
            // Gave up after 12 s.
            call("Billing", 30, None, Some(42), Some("abandoned")),
            // max_wait: overflow after 300 s.
            call("Billing", 40, None, Some(340), Some("overflow")),
            // Still waiting at now = 1000: 50 s so far.
            call("Billing", 950, None, None, None),
        ];
        let th = BTreeMap::from([("Billing".to_owned(), Duration::from_secs(20))]);
        let s = queue_stats(&calls, &th, t(1000));
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(s.flow, "Billing");
        assert_eq!(s.offered, 6);
        assert_eq!(s.answered, 3);
        assert_eq!(s.abandoned, 1);
        assert_eq!(s.overflowed, 1);
        assert_eq!(s.waiting, 1);
        // (5 + 20 + 45) / 3 = 23.333 s.
        assert_eq!(s.average_speed_of_answer_ms, Some(23_333));
        // The overflowed customer waited 300 s.
        assert_eq!(s.longest_wait_ms, Some(300_000));
        assert_eq!(s.service_level_threshold_ms, 20_000);
        assert_eq!(s.answered_within_threshold, 2);
        // 2 within 20 s of the 5 whose wait is over.
        assert_eq!(s.service_level, Some(0.4));
    }

    /// Every configured queue has a row, zeros without calls; a flow the
    /// records name but the configuration no longer has gets a row with
    /// the default threshold; a transfer to the overflow number is not an
    /// answer.
    #[test]
    fn every_queue_has_a_row_and_removed_flows_keep_theirs() {
        let calls = vec![
            call("Old", 0, Some(30), Some(60), Some("bridged")),
            call("Old", 100, Some(400), Some(500), Some("transferred")),
        ];
        let th = BTreeMap::from([("Billing".to_owned(), Duration::from_secs(10))]);
        let s = queue_stats(&calls, &th, t(1000));
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].flow, "Billing");
        assert_eq!(s[0].offered, 0);
        assert_eq!(s[0].service_level_threshold_ms, 10_000);
        assert_eq!(s[0].service_level, None);
        assert_eq!(s[0].average_speed_of_answer_ms, None);
        assert_eq!(s[0].longest_wait_ms, None);
        let old = &s[1];
        assert_eq!(old.flow, "Old");
        assert_eq!(old.service_level_threshold_ms, 20_000);
        assert_eq!((old.answered, old.overflowed), (1, 1));
        assert_eq!(old.average_speed_of_answer_ms, Some(30_000));
        assert_eq!(old.longest_wait_ms, Some(300_000));
        // 30 s is over the default 20 s: none within, of 2 waits over.
        assert_eq!(old.service_level, Some(0.0));
    }

    /// A clock step backwards (an end before the answer) is a zero wait,
    /// never a negative one.
    #[test]
    fn a_wait_is_never_negative() {
        let mut c = call("Billing", 100, Some(90), Some(200), Some("bridged"));
        c.answered_at = Some(t(100));
        let s = queue_stats(&[c], &BTreeMap::new(), t(1000));
        assert_eq!(s[0].average_speed_of_answer_ms, Some(0));
        assert_eq!(s[0].service_level, Some(1.0));
    }

    #[test]
    fn the_shipped_config_names_billing_with_its_threshold() {
        let cfg = Config::embedded_default().unwrap();
        assert_eq!(
            thresholds(&cfg).get("Billing"),
            Some(&Duration::from_secs(20))
        );
    }
}
