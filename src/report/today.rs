//! Each agent's figures for today, from the store: offers, accepts,
//! misses, talk time (`calls`, `call_attempts`) and time online
//! (`presence_history`, `presence_current`).
//!
//! "Today" is the contact centre's day: from midnight in
//! `presence.time_zone` (UTC unless set) to now. Every stored time is UTC
//! (docs/decisions.md); only the day's start is local. [`figures`] takes
//! the day's start.
//!
//! What counts (the queue engine's own reading of an attempt,
//! `flows::queue::attempt`):
//! - offered: every attempt to ring the agent that started today, except
//!   those the switch or the carrier failed before the agent's phone could
//!   ring (`trunk-failed`, `ext-not-sent`, `shutdown`): a carrier's failure
//!   is never the agent's offer nor their miss;
//! - accepted: the agent pressed the accept key (the attempt has an accept
//!   latency, or ended `completed`), or is bridged right now;
//! - missed: offered and ended without the agent taking it because of the
//!   agent (busy, declined, no answer, ring timeout, a dead answer, not
//!   accepted, hung up before accepting); a customer who hangs up first is
//!   nobody's miss;
//! - talk: from the bridge to the call's end (to now while bridged), the
//!   part of it inside today;
//! - online: the parts of the agent's windows inside today up to now, each
//!   closed window up to when it closed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::presence::{
    CallRecord, HistoryEntry, HistoryKind, PresenceStore, Store, StoreError, Window,
};

/// The most rows one figure reads (a day of a big floor is well below).
const ROW_LIMIT: u32 = 200_000;

/// One agent's day so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Today {
    pub offered: u32,
    pub accepted: u32,
    pub missed: u32,
    pub talk_seconds: i64,
    pub online_seconds: i64,
}

/// The start of `now`'s day in `tz`: local midnight, or the first instant
/// of the day where a clock change skips midnight (as some zones' DST
/// changes do); the earlier one where midnight comes twice.
pub fn day_start(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let day = now.with_timezone(&tz).date_naive();
    (0..=3)
        .filter_map(|h| day.and_hms_opt(h, 0, 0))
        .find_map(|t| tz.from_local_datetime(&t).earliest())
        .map_or_else(
            || day.and_time(NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// Today's figures of every agent the store mentions, read at `now`.
pub async fn from_store(
    store: &Store,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<BTreeMap<String, Today>, StoreError> {
    let start = day_start(now, tz);
    // Calls from the day before too: a call that began before midnight can
    // ring or talk after it.
    let calls = store
        .calls_since(start - Duration::days(1), ROW_LIMIT)
        .await?;
    let history = store.history_since(start, ROW_LIMIT).await?;
    let current = store.all_current().await?;
    Ok(figures(start, now, &calls, &history, &current))
}

/// Ends that never reached the agent's phone: not an offer.
const NOT_OFFERED: [&str; 3] = ["trunk-failed", "ext-not-sent", "shutdown"];
/// Ends that are the agent's miss (`flows::queue::attempt::classify`).
const MISSED: [&str; 7] = [
    "busy",
    "declined",
    "no-answer",
    "ring-timeout",
    "no-media",
    "not-accepted",
    "agent-hung-up",
];

/// A stretch of time online, `from..to`.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// The figures, from rows already read: the day runs `start..now`.
pub fn figures(
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    calls: &[CallRecord],
    history: &[HistoryEntry],
    current: &[(String, Window)],
) -> BTreeMap<String, Today> {
    let mut out: BTreeMap<String, Today> = BTreeMap::new();
    let clip = |from: DateTime<Utc>, to: DateTime<Utc>| -> i64 {
        let (from, to) = (from.max(start), to.min(now));
        if to > from {
            (to - from).num_seconds()
        } else {
            0
        }
    };
    for call in calls {
        let bridged_now = call.bridged_at.is_some() && call.ended_at.is_none();
        for a in &call.attempts {
            let cause = a.hangup_cause.as_deref().unwrap_or("");
            let finished = a.sip_outcome.is_some();
            if finished && NOT_OFFERED.contains(&cause) {
                continue;
            }
            let accepted = if finished {
                a.accept_latency_ms.is_some() || cause == "completed"
            } else {
                // In progress: only the bridged attempt outlives the bridge.
                bridged_now
            };
            // Talk is today's part of the bridge, whenever it was offered;
            // the offer itself counts on the day it was made.
            let talk = match (accepted, call.bridged_at) {
                (true, Some(b)) => clip(b, call.ended_at.unwrap_or(now)),
                _ => 0,
            };
            let offered_today = start <= a.started_at && a.started_at <= now;
            if !offered_today && talk == 0 {
                continue;
            }
            let t = out.entry(a.agent_user_id.clone()).or_default();
            t.talk_seconds += talk;
            if !offered_today {
                continue;
            }
            t.offered += 1;
            if accepted {
                t.accepted += 1;
            } else if finished && MISSED.contains(&cause) {
                t.missed += 1;
            }
        }
    }
    // Online: each window closed today up to its close, each open one up to
    // now. Merged per agent, so nothing is counted twice.
    let mut spans: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for h in history {
        let closes = matches!(
            h.kind,
            HistoryKind::Offline
                | HistoryKind::Expired
                | HistoryKind::Replaced
                | HistoryKind::ForcedOffline
                | HistoryKind::NotResponding
        );
        if let (true, Some(w)) = (closes, h.window) {
            spans
                .entry(h.user.as_str())
                .or_default()
                .push((w.start, h.at.min(w.end)));
        }
    }
    for (user, w) in current {
        spans
            .entry(user.as_str())
            .or_default()
            .push((w.start, w.end.min(now)));
    }
    for (user, mut s) in spans {
        s.sort();
        let mut total = 0;
        let mut open: Option<Span> = None;
        for (from, to) in s {
            open = match open {
                Some((f, t)) if from <= t => Some((f, t.max(to))),
                Some((f, t)) => {
                    total += clip(f, t);
                    Some((from, to))
                }
                None => Some((from, to)),
            };
        }
        if let Some((f, t)) = open {
            total += clip(f, t);
        }
        if total > 0 {
            out.entry(user.to_owned()).or_default().online_seconds = total;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::{AttemptRecord, SipOutcome};
    use chrono::TimeZone;

    /// 2026-03-10 at `h`:`m` UTC.
    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, h, m, 0).unwrap()
    }

    fn attempt(agent: &str, started: DateTime<Utc>, end: Option<(&str, bool)>) -> AttemptRecord {
        AttemptRecord {
            id: 0,
            agent_user_id: agent.into(),
            started_at: started,
            ring_ms: None,
            sip_outcome: end.map(|(cause, _)| match cause {
                "completed" => SipOutcome::Answered,
                "trunk-failed" => SipOutcome::Failed,
                _ => SipOutcome::NoAnswer,
            }),
            sip_status: None,
            accept_latency_ms: end.and_then(|(_, accepted)| accepted.then_some(900)),
            hangup_cause: end.map(|(c, _)| c.to_owned()),
            hung_up_by: None,
            sip_call_id: None,
        }
    }

    fn call(
        started: DateTime<Utc>,
        bridged: Option<DateTime<Utc>>,
        ended: Option<DateTime<Utc>>,
        attempts: Vec<AttemptRecord>,
    ) -> CallRecord {
        CallRecord {
            id: 0,
            call_id: "c".into(),
            flow: "Billing".into(),
            customer_number: "+15551234567".into(),
            contact_point: "+15550100001".into(),
            started_at: started,
            answered_at: Some(started),
            bridged_at: bridged,
            wait_ms: None,
            ended_at: ended,
            outcome: None,
            hung_up_by: None,
            attempts,
        }
    }

    fn closed(
        user: &str,
        kind: HistoryKind,
        w: (DateTime<Utc>, DateTime<Utc>),
        at: DateTime<Utc>,
    ) -> HistoryEntry {
        HistoryEntry {
            id: 0,
            user: user.into(),
            kind,
            at,
            window: Window::new(w.0, w.1),
            call_id: None,
            reason: "t".into(),
            actor: "agent".into(),
        }
    }

    #[test]
    fn offers_accepts_misses_and_talk_of_one_day() {
        let now = at(15, 0);
        let calls = vec![
            // Yesterday's call, bridged over midnight: only today's talk
            // counts, and its attempt (yesterday) is not today's offer.
            call(
                at(0, 0) - Duration::minutes(10),
                Some(at(0, 0) - Duration::minutes(5)),
                Some(at(0, 5)),
                vec![attempt(
                    "jsmith",
                    at(0, 0) - Duration::minutes(9),
                    Some(("completed", true)),
                )],
            ),
            // jsmith misses (ring timeout), bwayne takes it: 10 min talk.
            call(
                at(9, 0),
                Some(at(9, 1)),
                Some(at(9, 11)),
                vec![
                    attempt("jsmith", at(9, 0), Some(("ring-timeout", false))),
                    attempt("bwayne", at(9, 0), Some(("completed", true))),
                ],
            ),
            // The carrier failed jsmith's leg: nobody's offer; the customer
            // then left while bwayne rang: offered, not missed.
            call(
                at(10, 0),
                None,
                Some(at(10, 2)),
                vec![
                    attempt("jsmith", at(10, 0), Some(("trunk-failed", false))),
                    attempt("bwayne", at(10, 1), Some(("customer-hung-up", false))),
                ],
            ),
            // bwayne is on a call now (attempt still open): accepted, talk
            // up to now.
            call(
                at(14, 50),
                Some(at(14, 52)),
                None,
                vec![attempt("bwayne", at(14, 50), None)],
            ),
            // Ringing mgarcia now: offered, neither accepted nor missed.
            call(
                at(14, 59),
                None,
                None,
                vec![attempt("mgarcia", at(14, 59), None)],
            ),
        ];
        let f = figures(day_start(now, chrono_tz::UTC), now, &calls, &[], &[]);
        let get = |u: &str| f.get(u).copied().unwrap_or_default();
        assert_eq!(
            get("jsmith"),
            Today {
                offered: 1,
                missed: 1,
                talk_seconds: 5 * 60,
                ..Today::default()
            }
        );
        assert_eq!(
            get("bwayne"),
            Today {
                offered: 3,
                accepted: 2,
                talk_seconds: 10 * 60 + 8 * 60,
                ..Today::default()
            }
        );
        assert_eq!(
            get("mgarcia"),
            Today {
                offered: 1,
                ..Today::default()
            }
        );
    }

    #[test]
    fn online_time_is_the_windows_inside_today_up_to_now() {
        let now = at(12, 0);
        let history = vec![
            // Opened yesterday 22:00, expired at 02:00: 2 h today.
            closed(
                "jsmith",
                HistoryKind::Expired,
                (at(0, 0) - Duration::hours(2), at(2, 0)),
                at(2, 0),
            ),
            // 08:00-16:00 replaced at 09:00 by the current 09:00-13:00
            // window: 1 h, then 3 h up to now.
            closed(
                "jsmith",
                HistoryKind::Replaced,
                (at(8, 0), at(16, 0)),
                at(9, 0),
            ),
            // Logged off early: 10:00-10:30 of a 10:00-18:00 window.
            closed(
                "bwayne",
                HistoryKind::Offline,
                (at(10, 0), at(18, 0)),
                at(10, 30),
            ),
            // An offline request while offline has no window: nothing.
            HistoryEntry {
                window: None,
                ..closed(
                    "bwayne",
                    HistoryKind::Offline,
                    (at(1, 0), at(2, 0)),
                    at(11, 0),
                )
            },
            // Going online closes nothing.
            closed(
                "bwayne",
                HistoryKind::Online,
                (at(11, 0), at(19, 0)),
                at(11, 0),
            ),
        ];
        let current = vec![
            (
                "jsmith".to_owned(),
                Window::new(at(9, 0), at(13, 0)).unwrap(),
            ),
            (
                "bwayne".to_owned(),
                Window::new(at(11, 0), at(19, 0)).unwrap(),
            ),
        ];
        let f = figures(day_start(now, chrono_tz::UTC), now, &[], &history, &current);
        assert_eq!(f["jsmith"].online_seconds, (2 + 1 + 3) * 3600);
        assert_eq!(f["bwayne"].online_seconds, 30 * 60 + 3600);
        assert_eq!(f["jsmith"].offered, 0);
    }

    /// The day is the centre's: local midnight in `presence.time_zone`,
    /// whatever the UTC date, through DST changes and where a zone's
    /// clocks skip midnight itself.
    #[test]
    fn the_day_starts_at_midnight_in_the_centres_zone() {
        let utc = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let ny = chrono_tz::America::New_York;
        // 02:00Z on 6 Dec is still 5 Dec, 21:00, in New York (EST, -5).
        assert_eq!(
            day_start(utc("2026-12-06T02:00:00Z"), ny),
            utc("2026-12-05T05:00:00Z")
        );
        // Summer (EDT, -4).
        assert_eq!(
            day_start(utc("2026-07-01T12:00:00Z"), ny),
            utc("2026-07-01T04:00:00Z")
        );
        // Ahead of UTC: 23:30Z on 5 Dec is already 6 Dec in Tokyo.
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(
            day_start(utc("2026-12-05T23:30:00Z"), tokyo),
            utc("2026-12-05T15:00:00Z")
        );
        // Santiago skips 00:00-01:00 when DST starts (6 Sep 2026): the day
        // starts at 01:00 local (-03), 04:00Z.
        let scl = chrono_tz::America::Santiago;
        assert_eq!(
            day_start(utc("2026-09-06T15:00:00Z"), scl),
            utc("2026-09-06T04:00:00Z")
        );
    }

    #[test]
    fn overlapping_windows_count_once_and_the_day_starts_at_utc_midnight() {
        let now = at(6, 0);
        assert_eq!(day_start(now, chrono_tz::UTC), at(0, 0));
        assert_eq!(day_start(at(0, 0), chrono_tz::UTC), at(0, 0));
        let history = vec![closed(
            "a",
            HistoryKind::ForcedOffline,
            (at(1, 0), at(5, 0)),
            at(4, 0),
        )];
        // A current window overlapping the closed one (clock skew between
        // writers): the union, 01:00-06:00.
        let current = vec![("a".to_owned(), Window::new(at(3, 0), at(9, 0)).unwrap())];
        let f = figures(day_start(now, chrono_tz::UTC), now, &[], &history, &current);
        assert_eq!(f["a"].online_seconds, 5 * 3600);
    }

    /// The store's rows feed the same figures: a window opened and closed
    /// through the store counts, a window of yesterday does not.
    #[tokio::test]
    async fn from_the_store() {
        let store = Store::open_in_memory().await.unwrap();
        let now = Utc::now();
        let start = day_start(now, chrono_tz::UTC);
        store
            .set_online(
                "jsmith",
                start - Duration::hours(3),
                start - Duration::hours(2),
                None,
                "m",
            )
            .await
            .unwrap();
        store
            .set_offline("jsmith", start - Duration::hours(2), None, "m")
            .await
            .unwrap();
        store
            .set_online(
                "bwayne",
                now - Duration::seconds(30),
                now + Duration::hours(1),
                None,
                "m",
            )
            .await
            .unwrap();
        let f = from_store(&store, now, chrono_tz::UTC).await.unwrap();
        assert!(!f.contains_key("jsmith"), "{f:?}");
        // Opened 30 s ago (or at midnight, if that is nearer).
        let want = (now - (now - Duration::seconds(30)).max(start)).num_seconds();
        assert_eq!(f["bwayne"].online_seconds, want);
    }
}
