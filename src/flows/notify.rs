//! "Your presence window has ended" (or "you were set offline"): one call
//! to the agent's phone that plays a prompt once and hangs up, as a
//! sans-IO machine around the [`OutboundLeg`] every outbound call uses.
//!
//! One attempt, no retry: a notice that is not answered is only logged.
//! The prompt is cut short after `play_guard` so a stuck playback cannot
//! hold the agent's line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::flows::outbound::{Action as LegAction, Event, LegRules, OutboundLeg, Outcome};
use crate::flows::prompt_plan::PromptName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// CANCEL the ringing leg.
    Cancel,
    /// BYE on the answered leg.
    HangUp,
    /// Play to the agent; report [`Event::PlaybackFinished`].
    Play(Vec<PromptName>),
    /// The notice was heard to its end (or to `play_guard`).
    Delivered,
    /// The notice did not reach the agent.
    NotDelivered(Outcome),
}

pub struct NotifyCall {
    leg: OutboundLeg,
    prompt: PromptName,
    play_guard: Duration,
    playing_until: Option<Instant>,
    delivered: bool,
    actions: VecDeque<Action>,
}

impl NotifyCall {
    /// The call is placed at `now` with `rules` (bridge-on-answer rules:
    /// the leg counts as up once its media runs).
    pub fn new(rules: LegRules, prompt: PromptName, play_guard: Duration, now: Instant) -> Self {
        NotifyCall {
            leg: OutboundLeg::new(rules, now),
            prompt,
            play_guard,
            playing_until: None,
            delivered: false,
            actions: VecDeque::new(),
        }
    }

    pub fn handle(&mut self, event: Event, now: Instant) {
        let played = match event {
            Event::PlaybackFinished => self.playing_until.is_some(),
            Event::Timer => self.playing_until.is_some_and(|t| t <= now),
            _ => false,
        };
        if played {
            self.playing_until = None;
            self.delivered = true;
            self.leg.handle(Event::Withdraw, now);
        } else {
            self.leg.handle(event, now);
        }
        while let Some(a) = self.leg.poll_action() {
            match a {
                LegAction::Cancel => self.actions.push_back(Action::Cancel),
                LegAction::HangUp => self.actions.push_back(Action::HangUp),
                LegAction::Connected => {
                    self.playing_until = Some(now + self.play_guard);
                    self.actions
                        .push_back(Action::Play(vec![self.prompt.clone()]));
                }
                LegAction::Finished(Outcome::Withdrawn) if self.delivered => {
                    self.actions.push_back(Action::Delivered)
                }
                LegAction::Finished(o) => {
                    self.playing_until = None;
                    self.actions.push_back(Action::NotDelivered(o));
                }
                // No extension digits and no whisper on a notice.
                LegAction::Answered | LegAction::SendExt { .. } | LegAction::Play(_) => {}
            }
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn deadline(&self) -> Option<Instant> {
        [self.leg.deadline(), self.playing_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Over on the SIP side too: the shell may stop.
    pub fn is_done(&self) -> bool {
        self.leg.is_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::api::DialOutcome;

    fn call(t0: Instant) -> NotifyCall {
        let rules = LegRules::on_answer(Duration::from_secs(30), Duration::from_secs(5));
        NotifyCall::new(
            rules,
            PromptName::new("offline"),
            Duration::from_secs(60),
            t0,
        )
    }

    fn drain(n: &mut NotifyCall) -> Vec<Action> {
        std::iter::from_fn(|| n.poll_action()).collect()
    }

    #[test]
    fn answered_notice_plays_once_then_hangs_up() {
        let t0 = Instant::now();
        let mut n = call(t0);
        n.handle(Event::Answered { media: true }, t0 + Duration::from_secs(4));
        assert!(drain(&mut n).is_empty());
        n.handle(Event::RtpStarted, t0 + Duration::from_secs(4));
        assert_eq!(
            drain(&mut n),
            [Action::Play(vec![PromptName::new("offline")])]
        );
        n.handle(Event::PlaybackFinished, t0 + Duration::from_secs(7));
        assert_eq!(drain(&mut n), [Action::HangUp, Action::Delivered]);
        n.handle(Event::Ended, t0 + Duration::from_secs(7));
        assert!(n.is_done());
    }

    #[test]
    fn unanswered_notice_is_cancelled_at_the_ring_time() {
        let t0 = Instant::now();
        let mut n = call(t0);
        assert_eq!(n.deadline(), Some(t0 + Duration::from_secs(30)));
        n.handle(Event::Timer, t0 + Duration::from_secs(30));
        assert_eq!(
            drain(&mut n),
            [Action::Cancel, Action::NotDelivered(Outcome::RingTimeout)]
        );
    }

    #[test]
    fn a_busy_line_is_not_delivered() {
        let t0 = Instant::now();
        let mut n = call(t0);
        n.handle(Event::Failed(DialOutcome::from_status(486)), t0);
        assert_eq!(drain(&mut n), [Action::NotDelivered(Outcome::Busy(486))]);
        assert!(n.is_done());
    }

    #[test]
    fn a_stuck_playback_is_cut_at_the_guard() {
        let t0 = Instant::now();
        let mut n = call(t0);
        n.handle(Event::Answered { media: true }, t0);
        n.handle(Event::RtpStarted, t0);
        drain(&mut n);
        assert_eq!(n.deadline(), Some(t0 + Duration::from_secs(60)));
        n.handle(Event::Timer, t0 + Duration::from_secs(60));
        assert_eq!(drain(&mut n), [Action::HangUp, Action::Delivered]);
    }
}
