//! The outbound-leg rules on a simulated clock.

use std::time::{Duration, Instant};

use super::*;

fn rules(accept: Accept) -> LegRules {
    LegRules {
        ring_timeout: Duration::from_secs(20),
        media_grace: Duration::from_secs(5),
        ext: String::new(),
        ext_pause: Duration::from_secs(2),
        ext_send_guard: Duration::from_secs(10),
        accept,
        whisper: Some(PromptName::new("agent_whisper")),
        accept_timeout: Duration::from_secs(10),
        whisper_replays: 1,
        announce: None,
    }
}

/// A leg and its clock: `at(ms)` moves time and delivers the timer.
struct L {
    leg: OutboundLeg,
    t0: Instant,
}

impl L {
    fn new(rules: LegRules) -> L {
        let t0 = Instant::now();
        L {
            leg: OutboundLeg::new(rules, t0),
            t0,
        }
    }

    fn ev_at(&mut self, ms: u64, ev: Event) -> Vec<Action> {
        self.leg.handle(ev, self.t0 + Duration::from_millis(ms));
        std::iter::from_fn(|| self.leg.poll_action()).collect()
    }

    /// The timer as the shell delivers it: at the deadline, if it is not
    /// later than `ms`.
    fn at(&mut self, ms: u64) -> Vec<Action> {
        let now = self.t0 + Duration::from_millis(ms);
        let mut out = Vec::new();
        while let Some(d) = self.leg.deadline().filter(|d| *d <= now) {
            self.leg.handle(Event::Timer, d);
            out.extend(std::iter::from_fn(|| self.leg.poll_action()));
        }
        out
    }

    fn answer_with_media(&mut self, ms: u64) -> Vec<Action> {
        let mut a = self.ev_at(ms, Event::Answered { media: true });
        a.extend(self.ev_at(ms + 20, Event::RtpStarted));
        a
    }
}

#[test]
fn ring_timeout_cancels_once_and_reports_the_miss() {
    let mut l = L::new(rules(Accept::Digit('1')));
    assert_eq!(l.leg.deadline(), Some(l.t0 + Duration::from_secs(20)));
    assert!(l.at(19_999).is_empty());
    assert_eq!(
        l.at(20_000),
        vec![Action::Cancel, Action::Finished(Outcome::RingTimeout)]
    );
    // The 487 to our CANCEL closes the leg without a second report.
    assert!(l
        .ev_at(20_050, Event::Failed(DialOutcome::Cancelled))
        .is_empty());
    assert!(l.leg.is_done());
}

#[test]
fn a_200_crossing_the_cancel_is_hung_up() {
    let mut l = L::new(rules(Accept::Digit('1')));
    l.at(20_000);
    // RFC 3261 §9.1: the callee answered as our CANCEL travelled. The core
    // ACKed the 2xx; the leg must send BYE (§15), not bridge.
    assert_eq!(
        l.ev_at(20_030, Event::Answered { media: true }),
        vec![Action::HangUp]
    );
    assert_eq!(l.leg.answered_at(), None, "a crossing 200 is no answer");
    assert!(l.ev_at(20_040, Event::RtpStarted).is_empty());
    assert!(l.ev_at(20_060, Event::Ended).is_empty());
    assert!(l.leg.is_done());
}

#[test]
fn a_cancel_nobody_answers_is_given_up_after_the_transaction_lifetime() {
    let mut l = L::new(rules(Accept::Digit('1')));
    l.at(20_000);
    assert!(!l.leg.is_done());
    l.at(20_000 + SIP_CLOSE_GUARD.as_millis() as u64);
    assert!(l.leg.is_done());
    assert_eq!(l.leg.deadline(), None);
}

#[test]
fn early_media_on_183_is_neither_an_answer_nor_a_bridge() {
    let mut l = L::new(rules(Accept::OnAnswer));
    let a = l.ev_at(
        300,
        Event::Progress {
            status: 183,
            early_media: true,
        },
    );
    assert!(a.is_empty());
    assert!(l.leg.had_early_media());
    // The carrier's announcement flows, but the leg still rings.
    assert!(l.ev_at(400, Event::RtpStarted).is_empty());
    assert_eq!(l.leg.answered_at(), None);
    assert_eq!(
        l.at(20_000),
        vec![Action::Cancel, Action::Finished(Outcome::RingTimeout)]
    );
}

#[test]
fn dead_answer_with_bridge_on_answer_is_hung_up_and_reported() {
    let mut l = L::new(rules(Accept::OnAnswer));
    assert_eq!(
        l.ev_at(3_000, Event::Answered { media: true }),
        vec![Action::Answered]
    );
    // No RTP: not connected, however long we wait short of the grace.
    assert!(l.at(7_999).is_empty());
    assert_eq!(
        l.at(8_000),
        vec![Action::HangUp, Action::Finished(Outcome::DeadAnswer)]
    );
    assert_eq!(l.leg.connected_at(), None);
}

#[test]
fn dead_answer_with_an_accept_key_is_hung_up_and_reported() {
    let mut l = L::new(rules(Accept::Digit('1')));
    l.ev_at(1_000, Event::Answered { media: true });
    assert!(
        l.ev_at(2_000, Event::Digit('1')).is_empty(),
        "no whisper yet"
    );
    assert_eq!(
        l.at(6_000),
        vec![Action::HangUp, Action::Finished(Outcome::DeadAnswer)]
    );
}

#[test]
fn a_2xx_without_sdp_waits_for_the_reinvite_then_the_rtp() {
    let mut l = L::new(rules(Accept::OnAnswer));
    l.ev_at(1_000, Event::Answered { media: false });
    assert!(l.ev_at(2_000, Event::MediaReady).is_empty());
    assert_eq!(l.ev_at(2_100, Event::RtpStarted), vec![Action::Connected]);
    assert_eq!(
        l.leg.connected_at(),
        Some(l.t0 + Duration::from_millis(2_100))
    );
}

#[test]
fn media_that_cannot_open_is_a_dead_answer_at_once() {
    let mut l = L::new(rules(Accept::OnAnswer));
    l.ev_at(1_000, Event::Answered { media: false });
    assert_eq!(
        l.ev_at(1_001, Event::MediaFailed),
        vec![Action::HangUp, Action::Finished(Outcome::DeadAnswer)]
    );
}

#[test]
fn final_responses_are_typed_by_cause() {
    let cases = [
        (DialOutcome::from_status(503), Outcome::TrunkFailed(503)),
        (DialOutcome::from_status(486), Outcome::Busy(486)),
        (DialOutcome::from_status(600), Outcome::Busy(600)),
        (DialOutcome::from_status(480), Outcome::NoAnswer(480)),
        (DialOutcome::from_status(408), Outcome::NoAnswer(408)),
        (DialOutcome::from_status(603), Outcome::Declined(603)),
        (DialOutcome::from_status(403), Outcome::TrunkFailed(403)),
    ];
    for (dial, want) in cases {
        let mut l = L::new(rules(Accept::Digit('1')));
        assert_eq!(
            l.ev_at(500, Event::Failed(dial)),
            vec![Action::Finished(want)],
            "{dial:?}"
        );
        assert!(l.leg.is_done());
        assert_eq!(want.status(), Some(want.status().unwrap_or(0)));
    }
}

#[test]
fn ext_digits_go_out_after_the_media_then_whisper_then_accept() {
    let mut r = rules(Accept::Digit('1'));
    r.ext = "2001".into();
    let mut l = L::new(r);
    let a = l.answer_with_media(1_000);
    assert_eq!(
        a,
        vec![
            Action::Answered,
            Action::SendExt {
                digits: "2001".into(),
                pause: Duration::from_secs(2)
            }
        ]
    );
    // The key during our own digits is not an accept.
    assert!(l.ev_at(1_500, Event::Digit('1')).is_empty());
    assert_eq!(
        l.ev_at(3_100, Event::ExtSent),
        vec![Action::Play(vec![PromptName::new("agent_whisper")])]
    );
    l.ev_at(5_000, Event::PlaybackFinished);
    assert!(l.ev_at(5_500, Event::Digit('9')).is_empty());
    assert_eq!(l.ev_at(6_000, Event::Digit('1')), vec![Action::Connected]);
    assert!(l.leg.is_connected());
    assert_eq!(
        l.ev_at(60_000, Event::Ended),
        vec![Action::Finished(Outcome::CalleeHungUp)]
    );
}

#[test]
fn ext_digits_never_reported_sent_give_up() {
    let mut r = rules(Accept::OnAnswer);
    r.ext = "7".into();
    let mut l = L::new(r);
    l.answer_with_media(1_000);
    // 1 020 ms + 2 s pause + 10 s guard.
    assert!(l.at(13_019).is_empty());
    assert_eq!(
        l.at(13_020),
        vec![Action::HangUp, Action::Finished(Outcome::ExtNotSent)]
    );
}

#[test]
fn no_key_replays_the_whisper_once_then_gives_up() {
    let mut l = L::new(rules(Accept::Digit('1')));
    l.answer_with_media(1_000);
    l.ev_at(4_000, Event::PlaybackFinished);
    let whisper = Action::Play(vec![PromptName::new("agent_whisper")]);
    assert_eq!(l.at(14_000), vec![whisper]);
    // The accept timer restarts only once the replay was heard.
    assert_eq!(l.leg.deadline(), None);
    l.ev_at(17_000, Event::PlaybackFinished);
    assert_eq!(
        l.at(27_000),
        vec![Action::HangUp, Action::Finished(Outcome::NotAccepted)]
    );
}

#[test]
fn withdrawing_cancels_a_ringing_leg_and_hangs_up_an_answered_one() {
    let mut l = L::new(rules(Accept::Digit('1')));
    assert_eq!(
        l.ev_at(1_000, Event::Withdraw),
        vec![Action::Cancel, Action::Finished(Outcome::Withdrawn)]
    );
    let mut l = L::new(rules(Accept::Digit('1')));
    l.answer_with_media(1_000);
    assert_eq!(
        l.ev_at(2_000, Event::Withdraw),
        vec![Action::HangUp, Action::Finished(Outcome::Withdrawn)]
    );
    assert!(l.ev_at(2_100, Event::Ended).is_empty());
    assert!(l.leg.is_done());
}

#[test]
fn hanging_up_before_the_key_is_reported_as_such() {
    let mut l = L::new(rules(Accept::Digit('1')));
    l.answer_with_media(1_000);
    assert_eq!(
        l.ev_at(2_000, Event::Ended),
        vec![Action::Finished(Outcome::HungUpBeforeAccept)]
    );
}

// ------------------------------------------------------------ trunks

#[test]
fn a_leg_that_waits_for_a_trunk_too_long_is_a_trunk_failure_not_a_miss() {
    let mut l = L::new(rules(Accept::OnAnswer));
    assert!(l.ev_at(0, Event::Queued).is_empty());
    // Still no trunk when the ring time is over: cancelled, the trunks'.
    assert_eq!(
        l.at(20_000),
        vec![Action::Cancel, Action::Finished(Outcome::TrunkFailed(503))]
    );
}

#[test]
fn the_ring_time_starts_when_the_invite_leaves() {
    let mut l = L::new(rules(Accept::OnAnswer));
    l.ev_at(0, Event::Queued);
    // A trunk takes the INVITE after 15 s: the callee gets 20 s of ringing.
    assert!(l.ev_at(15_000, Event::Dialled).is_empty());
    assert!(l.at(34_999).is_empty());
    assert_eq!(
        l.at(35_000),
        vec![Action::Cancel, Action::Finished(Outcome::RingTimeout)]
    );
}

#[test]
fn a_failover_to_the_next_trunk_rings_afresh() {
    let mut l = L::new(rules(Accept::OnAnswer));
    l.ev_at(0, Event::Dialled);
    // Trunk a failed after 8 s; the core sent the INVITE to trunk b.
    l.ev_at(8_000, Event::Dialled);
    assert!(l.at(27_999).is_empty());
    assert_eq!(
        l.at(28_000),
        vec![Action::Cancel, Action::Finished(Outcome::RingTimeout)]
    );
}

#[test]
fn the_last_trunk_failing_is_not_the_callees_miss() {
    let mut l = L::new(rules(Accept::OnAnswer));
    l.ev_at(0, Event::Dialled);
    assert_eq!(
        l.ev_at(100, Event::Failed(DialOutcome::Unavailable(408))),
        vec![Action::Finished(Outcome::TrunkFailed(408))]
    );
}

#[test]
fn a_leg_withdrawn_while_it_waits_for_a_trunk_is_cancelled() {
    let mut l = L::new(rules(Accept::OnAnswer));
    l.ev_at(0, Event::Queued);
    assert_eq!(
        l.ev_at(1_000, Event::Withdraw),
        vec![Action::Cancel, Action::Finished(Outcome::Withdrawn)]
    );
}
