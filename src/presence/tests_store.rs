//! The store tests every backend must pass, run on SQLite and on
//! PostgreSQL (`test_backends`): windows, history, expiry, call records,
//! log-in calls, the directory and agent activities. Tests of one
//! backend's own machinery (SQLite files, locks, full disks, migrations of
//! old rows) stay in `tests_sqlite` and `tests_postgres`.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};

use super::agent_state::{self, Activity};
use super::backend::Store;
use super::calls::{CallUpdate, HungUpBy, NewAttempt, NewCall, SipOutcome};
use super::sqlite_directory::DirectoryWrite;
use super::store::{OnlineRequest, PresenceStore, StoreError};
use super::test_backends::on_both_backends;
use super::{HistoryKind, HistoryQuery, Window};
use crate::config::directory::{Declared, Kind};

on_both_backends!(
    online_then_current,
    bad_input_is_refused_without_writing,
    online_while_online_replaces_the_window,
    offline_and_forced_offline,
    not_responding_is_set_kept_and_cleared,
    close_expired_uses_the_real_end_time,
    expire_closes_only_the_window_it_was_armed_for,
    history_is_newest_first_and_limited_per_user,
    history_pages_newest_first_within_since_and_until,
    supervisors_set_and_end_windows,
    store_handle_works_from_spawned_tasks,
    a_call_inserted_answered_reads_back_answered,
    calls_and_attempts_round_trip,
    an_attempt_is_listed_while_it_rings_and_completed_when_it_ends,
    login_calls_round_trip,
    a_group_opens_windows_in_order_and_is_written_whole_or_not_at_all,
    unknown_call_ids_are_reported,
    sub_millisecond_times_still_expire,
    directory_objects_round_trip,
    activities_set_replace_and_clear,
    the_write_probe_keeps_nothing,
    a_reminder_is_recorded_once_per_window_end,
);

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn w(a: i64, b: i64) -> Window {
    Window::new(t(a), t(b)).unwrap()
}

fn new_call(call_id: &str, at: i64) -> NewCall {
    NewCall {
        call_id: call_id.into(),
        flow: "Billing".into(),
        customer_number: "+15550109999".into(),
        contact_point: "+15550100001".into(),
        started_at: t(at),
        answered_at: None,
    }
}

async fn online_then_current(s: &Store) {
    assert_eq!(s.current("ann").await.unwrap(), None);
    let win = s
        .set_online("ann", t(0), t(8 * 3600), Some("c1@x"), "menu key 1")
        .await
        .unwrap();
    assert_eq!(win, w(0, 8 * 3600));
    assert_eq!(s.current("ann").await.unwrap(), Some(win));
    assert_eq!(s.current("bob").await.unwrap(), None);
    assert_eq!(
        s.all_current().await.unwrap(),
        vec![("ann".to_string(), win)]
    );
    let h = s.history("ann", 10).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].kind, HistoryKind::Online);
    assert_eq!(h[0].at, t(0));
    assert_eq!(h[0].window, Some(win));
    assert_eq!(h[0].call_id.as_deref(), Some("c1@x"));
    assert_eq!(h[0].reason, "menu key 1");
}

async fn bad_input_is_refused_without_writing(s: &Store) {
    let err = s
        .set_online("ann", t(10), t(10), None, "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidWindow { .. }), "{err:?}");
    let err = s.set_online("", t(0), t(10), None, "x").await.unwrap_err();
    assert!(matches!(err, StoreError::EmptyUser));
    assert!(s.history("ann", 10).await.unwrap().is_empty());
    assert!(s.all_current().await.unwrap().is_empty());
}

async fn online_while_online_replaces_the_window(s: &Store) {
    s.set_online("ann", t(0), t(100), Some("c1"), "first")
        .await
        .unwrap();
    s.set_online("ann", t(50), t(500), Some("c2"), "second")
        .await
        .unwrap();
    assert_eq!(s.current("ann").await.unwrap(), Some(w(50, 500)));
    let h = s.history("ann", 10).await.unwrap();
    let kinds: Vec<_> = h.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            HistoryKind::Online,
            HistoryKind::Replaced,
            HistoryKind::Online
        ]
    );
    assert_eq!(
        h[1].window,
        Some(w(0, 100)),
        "replaced names the old window"
    );
    assert_eq!(h[1].at, t(50));
    assert_eq!(h[0].window, Some(w(50, 500)));
    // Both rows name the call and reason that replaced, and the agent acted.
    for e in &h[..2] {
        assert_eq!(
            (e.call_id.as_deref(), e.reason.as_str(), e.actor.as_str()),
            (Some("c2"), "second", super::ACTOR_AGENT)
        );
    }
    assert!(
        h[0].id > h[1].id && h[1].id > h[2].id,
        "replaced, then online"
    );
    assert_eq!(h[2].window, Some(w(0, 100)));
}

async fn offline_and_forced_offline(s: &Store) {
    s.set_online("ann", t(0), t(100), None, "menu")
        .await
        .unwrap();
    let closed = s
        .set_offline("ann", t(40), Some("c9"), "menu key 0")
        .await
        .unwrap();
    assert_eq!(closed, Some(w(0, 100)));
    assert_eq!(s.current("ann").await.unwrap(), None);
    // Not online: nothing closed, but the request is on record.
    assert_eq!(
        s.set_offline("ann", t(41), None, "again").await.unwrap(),
        None
    );
    let h = s.history("ann", 10).await.unwrap();
    assert_eq!(h[0].kind, HistoryKind::Offline);
    assert_eq!(h[0].window, None);
    assert_eq!(h[1].kind, HistoryKind::Offline);
    assert_eq!(h[1].at, t(40));
    assert_eq!(h[1].window, Some(w(0, 100)));
    assert_eq!(h[1].call_id.as_deref(), Some("c9"));

    s.set_online("bob", t(0), t(100), None, "menu")
        .await
        .unwrap();
    let closed = s
        .force_offline("bob", t(60), "3 missed calls")
        .await
        .unwrap();
    assert_eq!(closed, Some(w(0, 100)));
    let h = s.history("bob", 1).await.unwrap();
    assert_eq!(h[0].kind, HistoryKind::ForcedOffline);
    assert_eq!(h[0].reason, "3 missed calls");
}

/// Issue 14: missed offers close the window and mark the agent not
/// responding in one write; the mark stays (read by anyone, e.g. another
/// node) until cleared once, each step in the history with its reason and
/// actor.
async fn not_responding_is_set_kept_and_cleared(s: &Store) {
    const WHY: &str = "missed 3 offers in a row (max_no_answer)";
    s.set_online("cy", t(0), t(100), None, "menu")
        .await
        .unwrap();
    let closed = s.set_not_responding("cy", t(30), WHY).await.unwrap();
    assert_eq!(closed, Some(w(0, 100)));
    assert_eq!(s.current("cy").await.unwrap(), None);
    let marks = s.all_not_responding().await.unwrap();
    assert_eq!(marks.len(), 1);
    assert_eq!(
        (
            marks[0].user.as_str(),
            marks[0].since,
            marks[0].reason.as_str()
        ),
        ("cy", t(30), WHY)
    );
    let h = s.history("cy", 1).await.unwrap();
    assert_eq!(h[0].kind, HistoryKind::NotResponding);
    assert_eq!(
        (
            h[0].at,
            h[0].window,
            h[0].reason.as_str(),
            h[0].actor.as_str()
        ),
        (t(30), Some(w(0, 100)), WHY, super::ACTOR_SWITCH)
    );
    // Set again without a window (it ended meanwhile): still marked, the
    // later time and reason kept.
    assert_eq!(
        s.set_not_responding("cy", t(40), "missed 2 offers in a row (max_no_answer)")
            .await
            .unwrap(),
        None
    );
    let marks = s.all_not_responding().await.unwrap();
    assert_eq!((marks.len(), marks[0].since), (1, t(40)));

    // Cleared once: recorded as `responding`; a second clear is a no-op.
    assert!(s
        .clear_not_responding("cy", t(50), super::ACTOR_AGENT, "called the log-in line")
        .await
        .unwrap());
    assert!(!s
        .clear_not_responding("cy", t(51), "floor", "again")
        .await
        .unwrap());
    assert!(s.all_not_responding().await.unwrap().is_empty());
    let h = s.history("cy", 10).await.unwrap();
    assert_eq!(h.len(), 4, "{h:?}");
    assert_eq!(h[0].kind, HistoryKind::Responding);
    assert_eq!(
        (h[0].at, h[0].window, h[0].actor.as_str()),
        (t(50), None, super::ACTOR_AGENT)
    );
    // An agent never marked: nothing to clear, nothing recorded.
    assert!(!s
        .clear_not_responding("dee", t(5), "floor", "x")
        .await
        .unwrap());
    assert!(s.history("dee", 1).await.unwrap().is_empty());
}

async fn close_expired_uses_the_real_end_time(s: &Store) {
    s.set_online("ann", t(0), t(100), None, "m").await.unwrap();
    s.set_online("bob", t(0), t(200), None, "m").await.unwrap();
    s.set_online("cy", t(0), t(300), None, "m").await.unwrap();
    // Noticed late, at 250 (e.g. after a restart).
    let closed = s.close_expired(t(250)).await.unwrap();
    assert_eq!(
        closed,
        vec![
            ("ann".to_string(), w(0, 100)),
            ("bob".to_string(), w(0, 200))
        ]
    );
    assert_eq!(
        s.all_current().await.unwrap(),
        vec![("cy".to_string(), w(0, 300))]
    );
    let h = s.history("bob", 1).await.unwrap();
    assert_eq!(h[0].kind, HistoryKind::Expired);
    assert_eq!(h[0].at, t(200), "history carries the real end, not 250");
    assert!(s.close_expired(t(250)).await.unwrap().is_empty());
    // Exactly at the end counts as ended.
    assert_eq!(s.close_expired(t(300)).await.unwrap().len(), 1);
}

async fn expire_closes_only_the_window_it_was_armed_for(s: &Store) {
    s.set_online("ann", t(0), t(100), None, "m").await.unwrap();
    s.set_online("ann", t(50), t(400), None, "m").await.unwrap();
    // A stale timer for the replaced window must not close the new one.
    assert_eq!(s.expire("ann", t(100), "window ended").await.unwrap(), None);
    assert_eq!(s.current("ann").await.unwrap(), Some(w(50, 400)));
    let closed = s
        .expire("ann", t(400), "ended during a call")
        .await
        .unwrap();
    assert_eq!(closed, Some(w(50, 400)));
    let h = s.history("ann", 1).await.unwrap();
    assert_eq!((h[0].kind, h[0].at), (HistoryKind::Expired, t(400)));
    assert_eq!(h[0].reason, "ended during a call");
    assert_eq!(s.expire("nobody", t(1), "x").await.unwrap(), None);
}

async fn history_is_newest_first_and_limited_per_user(s: &Store) {
    for i in 0..5 {
        s.set_online("ann", t(i * 10), t(i * 10 + 5), None, &format!("n{i}"))
            .await
            .unwrap();
        s.set_offline("ann", t(i * 10 + 1), None, &format!("f{i}"))
            .await
            .unwrap();
    }
    s.set_online("bob", t(0), t(5), None, "b").await.unwrap();
    let h = s.history("ann", 3).await.unwrap();
    let reasons: Vec<_> = h.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, vec!["f4", "n4", "f3"]);
    assert_eq!(s.history("ann", 100).await.unwrap().len(), 10);
    assert!(s.history("ann", 0).await.unwrap().is_empty());
    assert!(s
        .history("bob", 10)
        .await
        .unwrap()
        .iter()
        .all(|e| e.user == "bob"));
}

async fn store_handle_works_from_spawned_tasks(store: &Store) {
    let mut tasks = Vec::new();
    for i in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.set_online(&format!("u{i}"), t(0), t(100 + i), None, "m")
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.all_current().await.unwrap().len(), 4);
    assert_eq!(store.close_expired(t(101)).await.unwrap().len(), 2);
    store.close().await;
}

/// A queue call is answered before its row exists: one insert records both times.
async fn a_call_inserted_answered_reads_back_answered(s: &Store) {
    let call = NewCall {
        answered_at: Some(t(7)),
        ..new_call("q@x", 7)
    };
    s.insert_call(&call).await.unwrap();
    let calls = s.calls_since(t(0), 10).await.unwrap();
    assert_eq!(
        (calls[0].started_at, calls[0].answered_at),
        (t(7), Some(t(7)))
    );
    s.close().await;
}

async fn calls_and_attempts_round_trip(s: &Store) {
    let old = s.insert_call(&new_call("old@x", 0)).await.unwrap();
    let id = s.insert_call(&new_call("c1@x", 100)).await.unwrap();
    assert_ne!(old, id);
    let missed = NewAttempt {
        agent_user_id: "ann".into(),
        started_at: t(101),
        ring_ms: Some(20_000),
        sip_outcome: SipOutcome::NoAnswer,
        sip_status: Some(487),
        accept_latency_ms: None,
        hangup_cause: Some("ring timeout".into()),
        hung_up_by: Some(HungUpBy::Switch),
        sip_call_id: Some("00000000000000a1@tpswitch".into()),
    };
    let taken = NewAttempt {
        agent_user_id: "bob".into(),
        started_at: t(121),
        ring_ms: Some(3_200),
        sip_outcome: SipOutcome::Answered,
        sip_status: Some(200),
        accept_latency_ms: Some(850),
        hangup_cause: None,
        hung_up_by: Some(HungUpBy::Customer),
        sip_call_id: None,
    };
    s.insert_attempt(id, &missed).await.unwrap();
    s.insert_attempt(id, &taken).await.unwrap();
    // Answer first, end later: the second update keeps the answer time.
    s.update_call(
        id,
        &CallUpdate {
            answered_at: Some(t(125)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let end = CallUpdate {
        ended_at: Some(t(300)),
        outcome: Some("bridged".into()),
        hung_up_by: Some(HungUpBy::Customer),
        ..Default::default()
    };
    s.update_call(id, &end).await.unwrap();

    let calls = s.calls_since(t(50), 100).await.unwrap();
    assert_eq!(calls.len(), 1, "calls before `since` are left out");
    let c = &calls[0];
    assert_eq!(
        (c.id, c.call_id.as_str(), c.flow.as_str()),
        (id, "c1@x", "Billing")
    );
    assert_eq!(c.customer_number, "+15550109999");
    assert_eq!(c.contact_point, "+15550100001");
    assert_eq!(c.started_at, t(100));
    assert_eq!(c.answered_at, Some(t(125)));
    assert_eq!(c.ended_at, Some(t(300)));
    assert_eq!(c.outcome.as_deref(), Some("bridged"));
    assert_eq!(c.hung_up_by, Some(HungUpBy::Customer));
    assert_eq!(c.attempts.len(), 2);
    let a = &c.attempts[0];
    assert_eq!(a.agent_user_id, "ann");
    assert_eq!(a.started_at, t(101));
    assert_eq!(
        (a.ring_ms, a.sip_outcome, a.sip_status),
        (Some(20_000), Some(SipOutcome::NoAnswer), Some(487))
    );
    assert_eq!(a.hangup_cause.as_deref(), Some("ring timeout"));
    assert_eq!(a.hung_up_by, Some(HungUpBy::Switch));
    assert_eq!(a.sip_call_id.as_deref(), Some("00000000000000a1@tpswitch"));
    let b = &c.attempts[1];
    assert_eq!(b.sip_call_id, None);
    assert_eq!(
        (b.agent_user_id.as_str(), b.accept_latency_ms),
        ("bob", Some(850))
    );
    assert_eq!(b.sip_outcome, Some(SipOutcome::Answered));

    let all = s.calls_since(t(0), 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].attempts.is_empty());
    assert_eq!(all[0].answered_at, None);
    let first = s.calls_since(t(0), 1).await.unwrap();
    assert_eq!((first.len(), first[0].call_id.as_str()), (1, "old@x"));

    let json = serde_json::to_value(c).unwrap();
    assert_eq!(json["attempts"][0]["sip_outcome"], "no-answer");
    assert_eq!(
        json["attempts"][0]["sip_call_id"],
        "00000000000000a1@tpswitch"
    );
    assert_eq!(json["started_at"], "2023-11-14T22:15:00.000Z");
}

async fn an_attempt_is_listed_while_it_rings_and_completed_when_it_ends(s: &Store) {
    let call = NewCall {
        answered_at: Some(t(100)),
        ..new_call("c1@x", 100)
    };
    let id = s.insert_call(&call).await.unwrap();
    let row = s.start_attempt(id, "ann", t(101)).await.unwrap();
    let live = s.calls_since(t(0), 10).await.unwrap();
    let a = &live[0].attempts[0];
    assert_eq!((a.id, a.agent_user_id.as_str()), (row, "ann"));
    assert_eq!(
        (a.sip_outcome, a.ring_ms, a.hangup_cause.as_deref()),
        (None, None, None)
    );
    assert_eq!(
        serde_json::to_value(a).unwrap()["sip_outcome"],
        serde_json::Value::Null
    );

    // Bridged at 110 after answering at 100: a 10 s wait, shown at once.
    s.update_call(
        id,
        &CallUpdate {
            bridged_at: Some(t(110)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let done = NewAttempt {
        agent_user_id: "ann".into(),
        started_at: t(101),
        ring_ms: Some(4_000),
        sip_outcome: SipOutcome::Answered,
        sip_status: Some(200),
        accept_latency_ms: Some(900),
        hangup_cause: Some("completed".into()),
        hung_up_by: Some(HungUpBy::Customer),
        sip_call_id: Some("leg-ann@tpswitch".into()),
    };
    s.finish_attempt(row, &done).await.unwrap();
    let c = &s.calls_since(t(0), 10).await.unwrap()[0];
    assert_eq!(c.attempts.len(), 1, "completed in place, not a second row");
    assert_eq!(c.attempts[0].sip_outcome, Some(SipOutcome::Answered));
    assert_eq!(c.attempts[0].hangup_cause.as_deref(), Some("completed"));
    // The agent leg's Call-ID is written when the attempt completes.
    assert_eq!(
        c.attempts[0].sip_call_id.as_deref(),
        Some("leg-ann@tpswitch")
    );
    assert_eq!((c.bridged_at, c.wait_ms), (Some(t(110)), Some(10_000)));
    let err = s.finish_attempt(row + 100, &done).await.unwrap_err();
    assert!(matches!(err, StoreError::AttemptNotFound { .. }), "{err:?}");
    let err = s.start_attempt(id + 100, "ann", t(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::CallNotFound { .. }), "{err:?}");
}

async fn login_calls_round_trip(s: &Store) {
    use crate::config::CallerIdTrust;
    use crate::presence::{CallerIdCheck, CallerIdRecord, LoginOutcome, NewLoginCall};
    let trust = |caller_id_trust, attested, caller_id| CallerIdRecord {
        caller_id_trust,
        attested,
        caller_id,
    };
    let trusts = [
        trust(CallerIdTrust::Any, false, None),
        trust(CallerIdTrust::Attested, true, Some(CallerIdCheck::Attested)),
        trust(CallerIdTrust::PinAlways, false, Some(CallerIdCheck::Pin)),
        trust(
            CallerIdTrust::Attested,
            false,
            Some(CallerIdCheck::Unverified),
        ),
    ];
    let calls: Vec<NewLoginCall> = [
        (LoginOutcome::UnknownCaller, None, None),
        (LoginOutcome::Online, Some(8), Some("jsmith")),
        (LoginOutcome::PinFailed, None, Some("jsmith")),
        (LoginOutcome::CallerIdRefused, None, Some("mgarcia")),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (outcome, hours, agent))| {
        let at = i64::try_from(i).unwrap() * 100;
        NewLoginCall {
            call_id: format!("l{i}@x"),
            caller: "+12345678910".into(),
            agent_user_id: agent.map(str::to_owned),
            outcome,
            hours,
            started_at: t(at),
            ended_at: t(at + 20),
            trust: trusts[i],
        }
    })
    .collect();
    // Two one by one, two in one transaction (the presence service's group
    // commit): both paths write the same rows.
    for call in &calls[..2] {
        s.insert_login_call(call).await.unwrap();
    }
    s.write_group(&[], &calls[2..]).await.unwrap();
    let all = s.login_calls_since(t(0), 10).await.unwrap();
    assert_eq!(all.len(), 4);
    for (got, want) in all.iter().zip(trusts) {
        assert_eq!(got.trust, Some(want));
    }
    assert_eq!(all[3].outcome, LoginOutcome::CallerIdRefused);
    assert_eq!(all[0].outcome, LoginOutcome::UnknownCaller);
    assert_eq!(all[0].agent_user_id, None);
    assert_eq!(
        (all[1].outcome, all[1].hours),
        (LoginOutcome::Online, Some(8))
    );
    assert_eq!(all[1].agent_user_id.as_deref(), Some("jsmith"));
    assert_eq!(all[2].ended_at, t(220));
    assert_eq!(s.login_calls_since(t(150), 10).await.unwrap().len(), 2);
    assert_eq!(
        s.login_calls_since(t(0), 1).await.unwrap()[0].call_id,
        "l0@x"
    );

    // A group larger than one statement carries (SQLite writes a group's
    // records sixteen to an INSERT): every record, with its own values.
    let many: Vec<NewLoginCall> = (0..37u32)
        .map(|i| NewLoginCall {
            call_id: format!("m{i}@x"),
            caller: format!("+1555010{i:04}"),
            agent_user_id: (i % 2 == 0).then(|| format!("agent{i}")),
            outcome: LoginOutcome::Online,
            hours: Some(i % 9 + 1),
            started_at: t(1000 + i64::from(i)),
            ended_at: t(2000 + i64::from(i)),
            trust: trusts[usize::try_from(i).unwrap() % trusts.len()],
        })
        .collect();
    s.write_group(&[], &many).await.unwrap();
    let got = s.login_calls_since(t(1000), 100).await.unwrap();
    assert_eq!(got.len(), many.len());
    for (i, (got, want)) in got.iter().zip(&many).enumerate() {
        assert_eq!(got.call_id, want.call_id, "record {i}");
        assert_eq!(got.caller, want.caller, "record {i}");
        assert_eq!(got.agent_user_id, want.agent_user_id, "record {i}");
        assert_eq!(got.hours, want.hours, "record {i}");
        assert_eq!(
            (got.started_at, got.ended_at),
            (want.started_at, want.ended_at)
        );
        assert_eq!(got.trust, Some(want.trust), "record {i}");
    }
}

/// The presence service's group commit: several agents' windows (one of
/// them twice) and a log-in record in one transaction. The windows come
/// back as stored, in the order asked, each as `set_online` would write it;
/// a group with one bad request writes nothing at all, so the service can
/// retry each alone.
async fn a_group_opens_windows_in_order_and_is_written_whole_or_not_at_all(s: &Store) {
    use crate::config::CallerIdTrust;
    use crate::presence::{CallerIdRecord, LoginOutcome, NewLoginCall};
    let online = |user, start, end, call_id| OnlineRequest {
        user,
        start: t(start),
        end: t(end),
        call_id: Some(call_id),
        reason: "log-in menu",
    };
    let record = |call_id: &str| NewLoginCall {
        call_id: call_id.into(),
        caller: "+12345678910".into(),
        agent_user_id: Some("ann".into()),
        outcome: LoginOutcome::Online,
        hours: Some(1),
        started_at: t(0),
        ended_at: t(20),
        trust: CallerIdRecord {
            caller_id_trust: CallerIdTrust::Any,
            attested: false,
            caller_id: None,
        },
    };
    s.set_online("bob", t(0), t(100), Some("b0"), "first")
        .await
        .unwrap();
    let windows = s
        .write_group(
            &[
                online("ann", 10, 3_610, "a1"),
                online("bob", 10, 7_210, "b1"),
                online("ann", 20, 3_620, "a2"),
            ],
            &[record("l1@x")],
        )
        .await
        .unwrap();
    assert_eq!(windows, [w(10, 3_610), w(10, 7_210), w(20, 3_620)]);
    assert_eq!(s.current("ann").await.unwrap(), Some(w(20, 3_620)));
    assert_eq!(s.current("bob").await.unwrap(), Some(w(10, 7_210)));
    let kinds = |h: Vec<super::HistoryEntry>| h.iter().map(|e| e.kind).collect::<Vec<_>>();
    use HistoryKind::{Online, Replaced};
    assert_eq!(
        kinds(s.history("ann", 10).await.unwrap()),
        [Online, Replaced, Online]
    );
    assert_eq!(
        kinds(s.history("bob", 10).await.unwrap()),
        [Online, Replaced, Online]
    );
    assert_eq!(s.login_calls_since(t(0), 10).await.unwrap().len(), 1);

    // The last request is refused: nothing of the group is written.
    let err = s
        .write_group(
            &[online("cy", 30, 3_630, "c1"), online("ann", 40, 40, "a3")],
            &[record("l2@x")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidWindow { .. }), "{err:?}");
    assert_eq!(s.current("cy").await.unwrap(), None);
    assert!(s.history("cy", 10).await.unwrap().is_empty());
    assert_eq!(s.current("ann").await.unwrap(), Some(w(20, 3_620)));
    assert_eq!(s.login_calls_since(t(0), 10).await.unwrap().len(), 1);
}

async fn unknown_call_ids_are_reported(s: &Store) {
    let err = s.update_call(42, &CallUpdate::default()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::CallNotFound { id: 42, .. }),
        "{err:?}"
    );
    let attempt = NewAttempt {
        agent_user_id: "ann".into(),
        started_at: t(0),
        ring_ms: None,
        sip_outcome: SipOutcome::Failed,
        sip_status: None,
        accept_latency_ms: None,
        hangup_cause: None,
        hung_up_by: None,
        sip_call_id: None,
    };
    let err = s.insert_attempt(42, &attempt).await.unwrap_err();
    assert!(
        matches!(err, StoreError::CallNotFound { id: 42, .. }),
        "{err:?}"
    );
}

/// Real clocks have nanoseconds; the store keeps milliseconds. A window set
/// at a nanosecond instant must still expire by the end it was armed with.
async fn sub_millisecond_times_still_expire(store: &Store) {
    let start = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap();
    let end = start + chrono::Duration::hours(8);
    let w = store
        .set_online("jsmith", start, end, None, "menu")
        .await
        .unwrap();
    assert_eq!(w.end.timestamp_subsec_nanos() % 1_000_000, 0);
    assert!(store.expire("jsmith", w.end, "t").await.unwrap().is_some());
    let w = store
        .set_online("jsmith", start, end, None, "menu")
        .await
        .unwrap();
    // The unrounded end works too.
    assert!(store.expire("jsmith", end, "t").await.unwrap().is_some());
    let _ = w;
}

async fn history_pages_newest_first_within_since_and_until(store: &Store) {
    // Six entries for ann at t(0), t(10), ... t(50); one for bob between.
    for i in 0..3 {
        store
            .set_online("ann", t(20 * i), t(20 * i + 100), None, "menu")
            .await
            .unwrap();
        store
            .set_offline("ann", t(20 * i + 10), None, "menu")
            .await
            .unwrap();
        store
            .set_online("bob", t(20 * i), t(20 * i + 5), None, "menu")
            .await
            .unwrap();
    }
    let all = store
        .history_page(
            "ann",
            HistoryQuery {
                limit: 100,
                ..HistoryQuery::default()
            },
        )
        .await
        .unwrap();
    let ats: Vec<_> = all.iter().map(|e| e.at).collect();
    assert_eq!(ats, [t(50), t(40), t(30), t(20), t(10), t(0)]);
    assert!(all.iter().all(|e| e.user == "ann"));
    assert!(all.windows(2).all(|p| p[0].id > p[1].id));

    // A page, then the next one from its last id.
    let first = store
        .history_page(
            "ann",
            HistoryQuery {
                limit: 2,
                ..HistoryQuery::default()
            },
        )
        .await
        .unwrap();
    let second = store
        .history_page(
            "ann",
            HistoryQuery {
                limit: 2,
                before: first.last().map(|e| e.id),
                ..HistoryQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|e| e.at).collect::<Vec<_>>(),
        [t(30), t(20)]
    );

    // since is inclusive, until exclusive.
    let window = store
        .history_page(
            "ann",
            HistoryQuery {
                since: Some(t(10)),
                until: Some(t(40)),
                limit: 100,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|e| e.at).collect::<Vec<_>>(),
        [t(30), t(20), t(10)]
    );
}

async fn supervisors_set_and_end_windows(s: &Store) {
    // Offline: a new window from now.
    let c = s
        .set_window("ann", t(0), t(100), "sup", "cover")
        .await
        .unwrap();
    assert_eq!((c.kind, c.window), (HistoryKind::Online, w(0, 100)));
    // Later end: extended, same start; earlier end: shortened.
    let c = s
        .set_window("ann", t(10), t(200), "sup", "more")
        .await
        .unwrap();
    assert_eq!((c.kind, c.window), (HistoryKind::Extended, w(0, 200)));
    let c = s
        .set_window("ann", t(20), t(50), "sup", "less")
        .await
        .unwrap();
    assert_eq!((c.kind, c.window), (HistoryKind::Shortened, w(0, 50)));
    let err = s
        .set_window("ann", t(60), t(60), "sup", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidWindow { .. }), "{err:?}");
    assert_eq!(
        s.end_window("ann", t(30), "sup", "done").await.unwrap(),
        Some(w(0, 50))
    );
    // Nothing open: nothing recorded.
    assert_eq!(
        s.end_window("ann", t(31), "sup", "again").await.unwrap(),
        None
    );
    let h = s.history("ann", 10).await.unwrap();
    let got: Vec<_> = h.iter().map(|e| (e.kind, e.actor.as_str())).collect();
    assert_eq!(
        got,
        [
            (HistoryKind::ForcedOffline, "sup"),
            (HistoryKind::Shortened, "sup"),
            (HistoryKind::Extended, "sup"),
            (HistoryKind::Online, "sup"),
        ]
    );
    // The floor's "since" read sees every agent's entries, oldest first.
    s.set_online("bob", t(5), t(500), None, "menu")
        .await
        .unwrap();
    let since = s.history_since(t(5), 100).await.unwrap();
    let users: Vec<_> = since.iter().map(|e| (e.user.as_str(), e.at)).collect();
    assert_eq!(
        users,
        [
            ("bob", t(5)),
            ("ann", t(10)),
            ("ann", t(20)),
            ("ann", t(30))
        ]
    );
}

/// Put, replace (keeping the order), delete, and read back.
async fn directory_objects_round_trip(store: &Store) {
    let obj = |kind: Kind, key: &str, name: &str| {
        let mut t = toml::Table::new();
        t.insert(kind.key_member().into(), key.into());
        t.insert("description".into(), name.into());
        Declared::new(kind, t)
    };
    for d in [
        obj(Kind::Users, "a", "one"),
        obj(Kind::Flows, "F", "two"),
        obj(Kind::Users, "a", "three"),
    ] {
        store
            .write_directory(&DirectoryWrite::Put(d))
            .await
            .unwrap();
    }
    let all = store.directory_objects().await.unwrap();
    assert_eq!(
        all,
        vec![obj(Kind::Users, "a", "three"), obj(Kind::Flows, "F", "two")]
    );
    store
        .write_directory(&DirectoryWrite::Delete {
            kind: Kind::Users,
            key: "a".into(),
        })
        .await
        .unwrap();
    let all = store.directory_objects().await.unwrap();
    assert_eq!(all, vec![obj(Kind::Flows, "F", "two")]);
    let _: Cow<'_, str> = Cow::Borrowed("");
}

async fn activities_set_replace_and_clear(store: &Store) {
    assert!(agent_state::activities(store).await.unwrap().is_empty());
    agent_state::set_activity(store, "ann", Activity::Busy, t(5))
        .await
        .unwrap();
    agent_state::set_activity(store, "bob", Activity::WrapUp, t(6))
        .await
        .unwrap();
    agent_state::set_activity(store, "cy", Activity::Idle, t(7))
        .await
        .unwrap();
    let got = store.activities().await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got["ann"], (Activity::Busy, t(5)));
    assert_eq!(got["bob"], (Activity::WrapUp, t(6)));
    agent_state::set_activity(store, "ann", Activity::WrapUp, t(9))
        .await
        .unwrap();
    agent_state::set_activity(store, "bob", Activity::Idle, t(9))
        .await
        .unwrap();
    let got = agent_state::activities(store).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got["ann"], (Activity::WrapUp, t(9)));
    agent_state::clear_activities(store).await.unwrap();
    assert!(agent_state::activities(store).await.unwrap().is_empty());
}

async fn the_write_probe_keeps_nothing(store: &Store) {
    store.write_probe().await.unwrap();
    store.write_probe().await.unwrap();
    assert!(store.all_current().await.unwrap().is_empty());
}

/// Issue 14: one reminder per window end, whoever asks first (two nodes
/// on one database, or this process before and after a restart); a later
/// end may be reminded again, and older ends' records are dropped.
async fn a_reminder_is_recorded_once_per_window_end(s: &Store) {
    let at = t(100);
    assert!(s.mark_reminded("ann", t(1000), at).await.unwrap());
    assert!(
        !s.mark_reminded("ann", t(1000), at).await.unwrap(),
        "not twice"
    );
    assert!(
        s.mark_reminded("bob", t(1000), at).await.unwrap(),
        "per agent"
    );
    assert!(
        s.mark_reminded("ann", t(2000), at).await.unwrap(),
        "a new end"
    );
    // The record of the earlier end is gone, not kept for ever.
    assert!(s.mark_reminded("ann", t(1000), at).await.unwrap());
    assert!(matches!(
        s.mark_reminded("", t(1000), at).await,
        Err(StoreError::EmptyUser)
    ));
}
