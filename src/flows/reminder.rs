//! "Your online time ends in 15 minutes. Press 1 to stay online for another
//! 8 hours, or hang up." (issue 14): one call to the agent's phone before
//! their window ends, as a sans-IO machine around the [`OutboundLeg`] every
//! outbound call uses.
//!
//! Rules:
//! - The key extends the window, and the extension is said back only once
//!   the shell reports it durable ([`Event::Extended`]).
//! - No answer, a hang-up, silence or another key change nothing: the
//!   window ends as it would have, and the agent is told then as usual.
//! - One attempt, no retry; the question may play at most `play_guard`
//!   so a stuck playback cannot hold the agent's line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::flows::agent_status::AgentStatus;
pub use crate::flows::outbound::Outcome as LegOutcome;
use crate::flows::outbound::{Action as LegAction, Event as LegEvent, LegRules, OutboundLeg};
use crate::flows::prompt_plan::{say_number, PromptName, CLIP_EXTENDED, CLIP_HOUR, CLIP_HOURS};

/// The key that extends.
pub const EXTEND_KEY: char = '1';

/// Clip names of the reminder's question.
pub const CLIP_ENDS_IN: &str = "ends_in";
pub const CLIP_MINUTE: &str = "minute";
pub const CLIP_MINUTES: &str = "minutes";
pub const CLIP_STAY_ONLINE: &str = "stay_online";
pub const CLIP_OR_HANG_UP: &str = "or_hang_up";

/// "Your online time ends in" `<lead>` "." "Press 1 to stay online for
/// another" `<hours>` "hours," "or hang up." The lead is said in minutes up to
/// 99, else in whole hours.
pub fn question(lead: Duration, hours: u32) -> Vec<PromptName> {
    let mut clips = vec![PromptName::from(CLIP_ENDS_IN)];
    let minutes = u32::try_from(lead.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
    if minutes <= 99 {
        clips.extend(say_number(minutes.max(1)));
        clips.push(PromptName::from(if minutes <= 1 {
            CLIP_MINUTE
        } else {
            CLIP_MINUTES
        }));
    } else {
        let h = minutes.div_ceil(60);
        clips.extend(say_number(h));
        clips.push(PromptName::from(if h == 1 {
            CLIP_HOUR
        } else {
            CLIP_HOURS
        }));
    }
    clips.push(PromptName::from(CLIP_STAY_ONLINE));
    clips.extend(say_number(hours));
    clips.push(PromptName::from(if hours == 1 {
        CLIP_HOUR
    } else {
        CLIP_HOURS
    }));
    clips.push(PromptName::from(CLIP_OR_HANG_UP));
    clips
}

/// Every word clip [`question`] may use (the numbers and "hour(s)" are
/// the shared ones).
pub fn clip_words() -> impl Iterator<Item = &'static str> {
    [
        CLIP_ENDS_IN,
        CLIP_MINUTE,
        CLIP_MINUTES,
        CLIP_STAY_ONLINE,
        CLIP_OR_HANG_UP,
    ]
    .into_iter()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// What the leg reports (answer, media, keys, end, timers).
    Leg(LegEvent),
    /// The shell's durable write of [`Action::Extend`], with the window it
    /// made.
    Extended(Result<AgentStatus, String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Cancel,
    HangUp,
    Play(Vec<PromptName>),
    StopPlayback,
    /// Add the offered hours to the agent's window, durably; report
    /// [`Event::Extended`].
    Extend,
    /// How it ended. Exactly once.
    Finished(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The agent pressed the key and the longer window is stored.
    Extended,
    /// Answered, but no key (silence, another key, or a hang-up).
    NoKey,
    /// The key was pressed but the store could not write.
    StoreFailed,
    /// Not answered (busy, no answer, trunk failure, ...).
    NotAnswered(LegOutcome),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Extended => "extended",
            Outcome::NoKey => "no-key",
            Outcome::StoreFailed => "store-failed",
            Outcome::NotAnswered(_) => "not-answered",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    /// The question plays; a key may cut it.
    Asking {
        until: Instant,
    },
    /// The question ended; the key may still come until then.
    Waiting {
        until: Instant,
    },
    Extending,
    Confirming {
        until: Instant,
    },
    /// We asked the leg to end; `Finished` goes out with its end.
    Ending,
    Over,
}

pub struct ReminderCall {
    leg: OutboundLeg,
    question: Vec<PromptName>,
    play_guard: Duration,
    key_timeout: Duration,
    phase: Phase,
    result: Option<Outcome>,
    /// The leg ended while the extension was being written: `Finished`
    /// waits for the write's answer.
    finish_when_written: bool,
    actions: VecDeque<Action>,
}

impl ReminderCall {
    /// Placed at `now` with `rules` (the leg counts as up once its media
    /// runs); `key_timeout` is how long the key may come after the question.
    pub fn new(
        rules: LegRules,
        question: Vec<PromptName>,
        play_guard: Duration,
        key_timeout: Duration,
        now: Instant,
    ) -> Self {
        ReminderCall {
            leg: OutboundLeg::new(rules, now),
            question,
            play_guard,
            key_timeout,
            phase: Phase::Ringing,
            result: None,
            finish_when_written: false,
            actions: VecDeque::new(),
        }
    }

    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Extended(result) => self.on_extended(result, now),
            Event::Leg(LegEvent::Digit(key)) => self.on_key(key),
            Event::Leg(LegEvent::PlaybackFinished) => self.on_played(now),
            Event::Leg(LegEvent::Timer) => self.on_timer(now),
            Event::Leg(ev) => self.leg.handle(ev, now),
        }
        self.drain_leg(now);
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn deadline(&self) -> Option<Instant> {
        let own = match self.phase {
            Phase::Asking { until } | Phase::Waiting { until } | Phase::Confirming { until } => {
                Some(until)
            }
            _ => None,
        };
        [self.leg.deadline(), own].into_iter().flatten().min()
    }

    /// Over on the SIP side too: the shell may stop.
    pub fn is_done(&self) -> bool {
        self.leg.is_done()
    }

    fn on_key(&mut self, key: char) {
        if key != EXTEND_KEY {
            return;
        }
        if let Phase::Asking { .. } | Phase::Waiting { .. } = self.phase {
            if matches!(self.phase, Phase::Asking { .. }) {
                self.actions.push_back(Action::StopPlayback);
            }
            self.actions.push_back(Action::Extend);
            self.phase = Phase::Extending;
        }
    }

    fn on_played(&mut self, now: Instant) {
        match self.phase {
            Phase::Asking { .. } => {
                self.phase = Phase::Waiting {
                    until: now + self.key_timeout,
                }
            }
            Phase::Confirming { .. } => self.end(Outcome::Extended, now),
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant) {
        match self.phase {
            // A stuck question is cut; no key after it is no key.
            Phase::Asking { until } | Phase::Waiting { until } if until <= now => {
                self.end(Outcome::NoKey, now)
            }
            Phase::Confirming { until } if until <= now => self.end(Outcome::Extended, now),
            _ => self.leg.handle(LegEvent::Timer, now),
        }
    }

    fn on_extended(&mut self, result: Result<AgentStatus, String>, now: Instant) {
        if self.phase == Phase::Over && self.finish_when_written {
            // The agent hung up meanwhile: the window is extended all the
            // same (durable); nothing to say to anyone.
            self.finish_when_written = false;
            let outcome = if result.is_ok() {
                Outcome::Extended
            } else {
                Outcome::StoreFailed
            };
            self.actions.push_back(Action::Finished(outcome));
            return;
        }
        if self.phase != Phase::Extending {
            return;
        }
        match result {
            Ok(status) => {
                let mut clips = vec![PromptName::from(CLIP_EXTENDED)];
                clips.extend(status.sentence());
                self.actions.push_back(Action::Play(clips));
                self.phase = Phase::Confirming {
                    until: now + self.play_guard,
                };
            }
            Err(_) => self.end(Outcome::StoreFailed, now),
        }
    }

    /// Ends the call from our side with `outcome`.
    fn end(&mut self, outcome: Outcome, now: Instant) {
        self.result = Some(outcome);
        self.phase = Phase::Ending;
        self.leg.handle(LegEvent::Withdraw, now);
    }

    fn drain_leg(&mut self, now: Instant) {
        while let Some(a) = self.leg.poll_action() {
            match a {
                LegAction::Cancel => self.actions.push_back(Action::Cancel),
                LegAction::HangUp => self.actions.push_back(Action::HangUp),
                LegAction::Connected if self.phase == Phase::Ringing => {
                    self.phase = Phase::Asking {
                        until: now + self.play_guard,
                    };
                    self.actions.push_back(Action::Play(self.question.clone()));
                }
                LegAction::Finished(o) => {
                    let phase = std::mem::replace(&mut self.phase, Phase::Over);
                    let outcome = match (self.result.take(), phase) {
                        (Some(r), _) => r,
                        // Hung up while the write was in flight: its
                        // answer decides (`on_extended`).
                        (None, Phase::Extending) => {
                            self.finish_when_written = true;
                            continue;
                        }
                        (None, Phase::Ringing) => Outcome::NotAnswered(o),
                        (None, _) => Outcome::NoKey,
                    };
                    self.actions.push_back(Action::Finished(outcome));
                }
                LegAction::Connected
                | LegAction::Answered
                | LegAction::SendExt { .. }
                | LegAction::Play(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::agent_status::EndDay;
    use crate::sip::api::DialOutcome;

    const GUARD: Duration = Duration::from_secs(60);
    const KEY_TIMEOUT: Duration = Duration::from_secs(8);

    fn call(t0: Instant) -> ReminderCall {
        let rules = LegRules::on_answer(Duration::from_secs(30), Duration::from_secs(5));
        ReminderCall::new(
            rules,
            question(Duration::from_secs(15 * 60), 8),
            GUARD,
            KEY_TIMEOUT,
            t0,
        )
    }

    fn drain(r: &mut ReminderCall) -> Vec<Action> {
        std::iter::from_fn(|| r.poll_action()).collect()
    }

    fn leg(r: &mut ReminderCall, ev: LegEvent, at: Instant) -> Vec<Action> {
        r.handle(Event::Leg(ev), at);
        drain(r)
    }

    fn words(clips: &[PromptName]) -> Vec<&str> {
        clips.iter().map(PromptName::as_str).collect()
    }

    /// Answered with media: the question plays.
    fn answered(t0: Instant) -> ReminderCall {
        let mut r = call(t0);
        assert!(leg(&mut r, LegEvent::Answered { media: true }, t0).is_empty());
        let acts = leg(&mut r, LegEvent::RtpStarted, t0);
        let [Action::Play(clips)] = acts.as_slice() else {
            panic!("{acts:?}")
        };
        assert_eq!(
            words(clips),
            [
                "ends_in",
                "num_15",
                "minutes",
                "stay_online",
                "num_8",
                "hours",
                "or_hang_up"
            ]
        );
        r
    }

    fn later() -> AgentStatus {
        AgentStatus {
            hour: 1,
            minute: 0,
            day: EndDay::Tomorrow,
            left: Duration::from_secs(8 * 3600 + 15 * 60),
        }
    }

    #[test]
    fn the_question_says_the_lead_and_the_hours() {
        let w = |lead: u64, h: u32| words(&question(Duration::from_secs(lead), h)).join(" ");
        assert_eq!(
            w(60, 1),
            "ends_in num_1 minute stay_online num_1 hour or_hang_up"
        );
        assert_eq!(
            w(30 * 60, 24),
            "ends_in num_30 minutes stay_online num_20 num_4 hours or_hang_up"
        );
        assert_eq!(
            w(2 * 3600, 8),
            "ends_in num_2 hours stay_online num_8 hours or_hang_up"
        );
    }

    #[test]
    fn key_1_extends_and_the_new_end_is_said_once_durable() {
        let t0 = Instant::now();
        let mut r = answered(t0);
        // The key cuts the question; the write comes first.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(
            leg(&mut r, LegEvent::Digit('1'), t1),
            [Action::StopPlayback, Action::Extend]
        );
        r.handle(Event::Extended(Ok(later())), t1);
        let acts = drain(&mut r);
        let [Action::Play(clips)] = acts.as_slice() else {
            panic!("{acts:?}")
        };
        assert_eq!(words(clips)[..3], ["extended", "online_until", "num_1"]);
        // Said to the end: we hang up (the leg reports its end at once).
        assert_eq!(
            leg(&mut r, LegEvent::PlaybackFinished, t1),
            [Action::HangUp, Action::Finished(Outcome::Extended)]
        );
        assert!(leg(&mut r, LegEvent::Ended, t1).is_empty());
        assert!(r.is_done());
    }

    #[test]
    fn other_keys_and_silence_change_nothing() {
        let t0 = Instant::now();
        let mut r = answered(t0);
        assert!(leg(&mut r, LegEvent::Digit('2'), t0).is_empty());
        assert!(leg(&mut r, LegEvent::PlaybackFinished, t0).is_empty());
        assert_eq!(r.deadline(), Some(t0 + KEY_TIMEOUT));
        // The key may still come after the question...
        let mut r2 = answered(t0);
        leg(&mut r2, LegEvent::PlaybackFinished, t0);
        assert_eq!(
            leg(&mut r2, LegEvent::Digit('1'), t0 + Duration::from_secs(2)),
            [Action::Extend]
        );
        // ...but not after the time-out.
        let acts = leg(&mut r, LegEvent::Timer, t0 + KEY_TIMEOUT);
        assert_eq!(acts, [Action::HangUp, Action::Finished(Outcome::NoKey)]);
        assert!(leg(&mut r, LegEvent::Digit('1'), t0 + KEY_TIMEOUT).is_empty());
    }

    #[test]
    fn hanging_up_changes_nothing_but_a_write_under_way_completes() {
        let t0 = Instant::now();
        let mut r = answered(t0);
        assert_eq!(
            leg(&mut r, LegEvent::Ended, t0),
            [Action::Finished(Outcome::NoKey)]
        );
        // Hung up right after the key: the write decides the outcome.
        let mut r = answered(t0);
        leg(&mut r, LegEvent::Digit('1'), t0);
        assert!(leg(&mut r, LegEvent::Ended, t0).is_empty());
        r.handle(Event::Extended(Ok(later())), t0);
        assert_eq!(drain(&mut r), [Action::Finished(Outcome::Extended)]);
    }

    #[test]
    fn a_failed_write_is_never_confirmed() {
        let t0 = Instant::now();
        let mut r = answered(t0);
        leg(&mut r, LegEvent::Digit('1'), t0);
        r.handle(Event::Extended(Err("disk full".into())), t0);
        assert_eq!(
            drain(&mut r),
            [Action::HangUp, Action::Finished(Outcome::StoreFailed)]
        );
    }

    #[test]
    fn unanswered_or_busy_is_reported_as_such() {
        let t0 = Instant::now();
        let mut r = call(t0);
        assert_eq!(
            leg(&mut r, LegEvent::Failed(DialOutcome::from_status(486)), t0),
            [Action::Finished(Outcome::NotAnswered(LegOutcome::Busy(
                486
            )))]
        );
        let mut r = call(t0);
        let acts = leg(&mut r, LegEvent::Timer, t0 + Duration::from_secs(30));
        assert_eq!(
            acts,
            [
                Action::Cancel,
                Action::Finished(Outcome::NotAnswered(LegOutcome::RingTimeout))
            ]
        );
    }

    #[test]
    fn a_stuck_question_is_cut_at_the_guard() {
        let t0 = Instant::now();
        let mut r = answered(t0);
        assert_eq!(r.deadline(), Some(t0 + GUARD));
        assert_eq!(
            leg(&mut r, LegEvent::Timer, t0 + GUARD),
            [Action::HangUp, Action::Finished(Outcome::NoKey)]
        );
    }
}
