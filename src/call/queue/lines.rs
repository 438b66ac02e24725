//! The queue task's side of nailed-up lines (issue 14): each is an agent's
//! log-in call kept connected, handed over by `call::line`. The engine
//! decides what happens on a line (`OfferOnLine`, `LineIdle`,
//! `HangUpLine`, and `PlayAgent`/`Bridge` for an offer on it); this
//! module keeps the media and SIP side of it and reports what the agent
//! does (keys, the end of a playback, hanging up).

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, info_span, warn, Span};

use super::legs::{self, Input, LegEvent};
use super::writer::Write;
use super::Shell;
use crate::call::leg::Answered;
use crate::flows::agent_status::AgentStatus;
use crate::flows::prompt_plan::CLIP_EXTENDED;
use crate::flows::queue::{AttemptId, Event, LegEvent as OutboundEvent, LineEnd, PromptName};
use crate::flows::reminder;
use crate::media::engine::{MediaEvent, MediaSession};
use crate::routing::CallId;
use crate::sip::{LegId, SipCommand, SipEvent};

/// The prompts of a line, from the timed-presence flow the agent logged
/// in through.
#[derive(Debug, Clone)]
pub struct LinePrompts {
    /// Announces a customer, before the queue's whisper.
    pub tone: PromptName,
    /// Looped between customers; None = silence frames.
    pub hold: Option<PromptName>,
    /// Said before the switch hangs the line up: the window ended.
    pub offline: PromptName,
    /// Said before the switch hangs the line up: not responding.
    pub not_responding: PromptName,
}

/// What the reminder before the window ends offers on a line: the
/// timed-presence flow's first preset, within its longest choice.
#[derive(Debug, Clone, Copy)]
pub struct LineReminder {
    pub hours: u32,
    pub longest_hours: u32,
}

/// A nailed-up line for the queue task.
pub struct LineHandoff {
    pub leg: LegId,
    pub call_id: String,
    pub user: String,
    /// The end of the window the menu confirmed.
    pub until: DateTime<Utc>,
    pub prompts: LinePrompts,
    pub reminder: LineReminder,
    pub answered: Answered,
    pub sip: mpsc::Receiver<SipEvent>,
    /// Dropped when the queue is done with the line.
    pub done: oneshot::Sender<()>,
}

/// Which playback on the line matters, and what its end means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Playing {
    /// The tone and whisper of an offer: its end starts the accept timer.
    Announcement(u64),
    /// The waiting sound: replayed when it ends.
    Hold(u64),
    /// The goodbye before the switch hangs up.
    Goodbye(u64),
    /// The reminder's question, or its confirmation: the waiting sound
    /// follows.
    Reminder(u64),
}

/// How long after the reminder's question the extend key is taken.
const REMINDER_KEY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) struct Line {
    leg: LegId,
    call_id: String,
    session: MediaSession,
    span: Span,
    prompts: LinePrompts,
    reminder: LineReminder,
    /// A reminder was said: its key is taken until then.
    reminding: Option<std::time::Instant>,
    /// The customer offered or bridged on it, with the attempt.
    offer: Option<(CallId, AttemptId)>,
    playing: Option<Playing>,
    /// The switch is hanging it up: its end is not the agent's doing.
    ending: bool,
    _done: oneshot::Sender<()>,
}

impl Line {
    /// Ends the line's media for a hang-up and gives the leg to send the
    /// BYE on (RFC 3261 §15.1.1; as `Customer::end_media`).
    fn end_media(&mut self) -> LegId {
        self.session.close();
        self.leg
    }
}

impl Shell {
    /// A line arrives from the log-in menu. A second line for the same
    /// agent (they called in again from another phone) replaces the first.
    pub(super) async fn line_arrived(&mut self, h: LineHandoff) {
        let span = info_span!(
            "nailed_line",
            call_id = %h.call_id,
            agent = %h.user,
        );
        if let Some(old) = self.lines.remove(&h.user) {
            info!(parent: &span, "a new line replaces the agent's earlier one");
            self.feed(Event::LineDown {
                user: h.user.clone(),
            });
            self.end_line_leg(old).await;
        }
        info!(parent: &span, until = %h.until, "nailed-up line: waiting for customers");
        let Answered { session, media } = h.answered;
        let (user, leg) = (h.user.clone(), h.leg);
        legs::forward(h.sip, media, self.inbox.clone(), move |ev| Input::Line {
            user: user.clone(),
            leg,
            ev,
        });
        self.lines.insert(
            h.user.clone(),
            Line {
                leg: h.leg,
                call_id: h.call_id,
                session,
                span,
                prompts: h.prompts.clone(),
                reminder: h.reminder,
                reminding: None,
                offer: None,
                playing: None,
                ending: false,
                _done: h.done,
            },
        );
        self.feed(Event::LineUp {
            user: h.user,
            until: h.until,
            tone: h.prompts.tone,
        });
    }

    /// What the agent's line reports.
    pub(super) async fn line_event(&mut self, user: String, leg: LegId, ev: LegEvent) {
        let Some(line) = self.lines.get_mut(&user).filter(|l| l.leg == leg) else {
            return; // a line already replaced or gone
        };
        let digit = match ev {
            LegEvent::Sip(SipEvent::Ended { cause, .. }) => {
                info!(parent: &line.span, cause = %cause, "nailed-up line ended");
                self.line_gone(&user).await;
                return;
            }
            LegEvent::Sip(SipEvent::Cancelled(_)) => {
                self.line_gone(&user).await;
                return;
            }
            LegEvent::Media(MediaEvent::RtpTimeout) => {
                warn!(parent: &line.span, "no RTP on the nailed-up line: hanging it up");
                let leg = line.leg;
                let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                self.line_gone(&user).await;
                return;
            }
            LegEvent::Sip(SipEvent::MediaChanged { media, .. }) => {
                let _ = line.session.update_remote(&media.stream);
                return;
            }
            LegEvent::Sip(SipEvent::InfoDigit { digit, .. }) => digit,
            LegEvent::Media(MediaEvent::DigitStarted(digit)) => digit,
            LegEvent::Media(MediaEvent::PlaybackFinished(id)) => {
                self.line_playback_finished(&user, id).await;
                return;
            }
            LegEvent::Sip(_) | LegEvent::Media(_) => return,
        };
        // Keys between customers change nothing but the reminder's; during
        // an offer they are the offer's (the accept key).
        if line.offer.is_none() && digit == reminder::EXTEND_KEY {
            if let Some(until) = line.reminding.take() {
                if std::time::Instant::now() <= until {
                    info!(parent: &line.span, "extending from the reminder on the line");
                    self.extend_from_line(&user);
                }
            }
            return;
        }
        if let Some((call, attempt)) = line.offer {
            info!(parent: &line.span, %digit, "agent key");
            self.feed(Event::Leg {
                call,
                attempt,
                event: OutboundEvent::Digit(digit),
            });
        }
    }

    async fn line_playback_finished(&mut self, user: &str, id: u64) {
        let Some(line) = self.lines.get_mut(user) else {
            return;
        };
        match line.playing {
            Some(Playing::Announcement(p)) if p == id => {
                line.playing = None;
                if let Some((call, attempt)) = line.offer {
                    self.feed(Event::Leg {
                        call,
                        attempt,
                        event: OutboundEvent::PlaybackFinished,
                    });
                }
            }
            Some(Playing::Hold(p)) if p == id => self.play_hold(user),
            Some(Playing::Reminder(p)) if p == id => {
                if let Some(until) = line.reminding.as_mut() {
                    // The key is awaited from the question's end.
                    *until = std::time::Instant::now() + REMINDER_KEY_TIMEOUT;
                }
                self.play_hold(user);
            }
            Some(Playing::Goodbye(p)) if p == id => {
                line.playing = None;
                let leg = line.end_media();
                let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
            }
            _ => {}
        }
    }

    /// The agent hung up the line (or it died): the engine lets go of it
    /// and the agent's window ends, unless the switch was ending it.
    async fn line_gone(&mut self, user: &str) {
        let Some(line) = self.lines.remove(user) else {
            return;
        };
        line.session.close();
        if line.ending {
            return;
        }
        self.feed(Event::LineDown {
            user: user.to_owned(),
        });
        self.write(Write::LineHungUp {
            user: user.to_owned(),
            call_id: line.call_id.clone(),
        })
        .await;
    }

    /// `OfferOnLine`: the attempt's playback, keys and bridge are the
    /// line's from now on.
    pub(super) async fn offer_on_line(&mut self, call: CallId, attempt: AttemptId, user: String) {
        let Some(line) = self.lines.get_mut(&user) else {
            warn!(agent = %user, "queue: an offer on a line that is gone");
            self.pending.push_back(Event::Leg {
                call,
                attempt,
                event: OutboundEvent::Ended,
            });
            return;
        };
        line.offer = Some((call, attempt));
        line.playing = None;
        // A customer outranks a reminder in progress.
        line.reminding = None;
        let _ = line.session.stop_playback();
        info!(parent: &line.span, attempt = attempt.0, "customer offered on the line");
        self.line_attempts.insert(attempt, user.clone());
        self.sip_call_ids
            .insert(attempt, (call, line.call_id.clone()));
        self.write(Write::AttemptStarted {
            call,
            attempt,
            user,
            started: std::time::Instant::now(),
        })
        .await;
    }

    /// `PlayAgent` for an offer on a line; false when `attempt` is not one.
    pub(super) fn play_on_line(&mut self, attempt: AttemptId, clips: &[PromptName]) -> bool {
        let Some(user) = self.line_attempts.get(&attempt).cloned() else {
            return false;
        };
        let id = self.play_id();
        let prompts = self.prompts(clips);
        if let Some(line) = self.lines.get_mut(&user) {
            line.playing = Some(Playing::Announcement(id));
            if let Err(e) = line.session.play(id, prompts) {
                warn!(parent: &line.span, error = %e, "cannot announce the customer");
            }
        }
        true
    }

    /// The line's session, for `Bridge` of an offer on a line.
    pub(super) fn line_session(&self, attempt: AttemptId) -> Option<(&MediaSession, LegId)> {
        let user = self.line_attempts.get(&attempt)?;
        self.lines.get(user).map(|l| (&l.session, l.leg))
    }

    /// `LineIdle`: any customer it carried is unbridged, the waiting sound
    /// plays.
    pub(super) fn line_idle(&mut self, user: &str) {
        let Some(line) = self.lines.get_mut(user) else {
            return;
        };
        if let Some((call, attempt)) = line.offer.take() {
            self.line_attempts.remove(&attempt);
            if let Some(c) = self.customers.get_mut(&call) {
                // Dropping the handle ends the bridge: the line returns to
                // prompt mode (silence frames) on the same SSRC.
                c.bridge = None;
            }
        }
        self.play_hold(user);
    }

    fn play_hold(&mut self, user: &str) {
        let clips: Vec<PromptName> = match self.lines.get(user) {
            Some(l) => l.prompts.hold.iter().cloned().collect(),
            None => return,
        };
        let id = self.play_id();
        let prompts = self.prompts(&clips);
        let Some(line) = self.lines.get_mut(user) else {
            return;
        };
        if prompts.is_empty() {
            line.playing = None;
            let _ = line.session.stop_playback();
            return;
        }
        line.playing = Some(Playing::Hold(id));
        if let Err(e) = line.session.play(id, prompts) {
            warn!(parent: &line.span, error = %e, "cannot play the line's waiting sound");
        }
    }

    /// `HangUpLine`: say why, then BYE.
    pub(super) async fn hang_up_line(&mut self, user: &str, why: LineEnd) {
        let Some(line) = self.lines.get_mut(user) else {
            return;
        };
        line.ending = true;
        if let Some((call, attempt)) = line.offer.take() {
            self.line_attempts.remove(&attempt);
            if let Some(c) = self.customers.get_mut(&call) {
                c.bridge = None;
            }
        }
        let Some(line) = self.lines.get_mut(user) else {
            return;
        };
        let clip = match why {
            LineEnd::Offline => line.prompts.offline.clone(),
            LineEnd::NotResponding => line.prompts.not_responding.clone(),
        };
        info!(parent: &line.span, prompt = clip.as_str(), "the agent is offline: hanging up the line");
        let id = self.play_id();
        let prompts = self.prompts(std::slice::from_ref(&clip));
        let Some(line) = self.lines.get_mut(user) else {
            return;
        };
        line.playing = Some(Playing::Goodbye(id));
        if prompts.is_empty() || line.session.play(id, prompts).is_err() {
            let leg = line.end_media();
            let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
        }
    }

    /// `PresenceEvent::Remind` for an agent on a line here: the question is
    /// said on the line (the reminder task places no call to a phone that
    /// holds a line). Without "or hang up": on a line, hanging up ends the
    /// window. On a customer offer (the presence service holds reminders
    /// while the agent is busy, not while rung) it is skipped.
    pub(super) fn remind_on_line(&mut self, user: &str, end: DateTime<Utc>) {
        let left = (end - self.ctx.presence.now()).to_std().unwrap_or_default();
        let Some(line) = self.lines.get_mut(user) else {
            return;
        };
        if line.offer.is_some() || line.ending {
            info!(parent: &line.span, "reminder skipped: a customer is on the line");
            return;
        }
        let mut clips = reminder::question(left, line.reminder.hours);
        if clips.last().map(PromptName::as_str) == Some(reminder::CLIP_OR_HANG_UP) {
            clips.pop();
        }
        info!(parent: &line.span, hours = line.reminder.hours, "window ends soon: reminding the agent on the line");
        line.reminding = Some(std::time::Instant::now() + REMINDER_KEY_TIMEOUT * 6);
        self.play_on(user, &clips, Playing::Reminder);
    }

    /// The reminder's key: extend durably (in a task of its own, so the
    /// queue is not held up by the store), then say the new end.
    fn extend_from_line(&mut self, user: &str) {
        let Some(line) = self.lines.get(user) else {
            return;
        };
        let (presence, hours, longest) = (
            self.ctx.presence.clone(),
            line.reminder.hours,
            line.reminder.longest_hours,
        );
        let (inbox, user, leg) = (self.inbox.clone(), user.to_owned(), line.leg);
        tokio::spawn(async move {
            let result = presence
                .extend(&user, hours, chrono::Duration::hours(i64::from(longest)))
                .await
                .map(|w| w.end)
                .map_err(|e| e.to_string());
            let _ = inbox.send(Input::LineExtended { user, leg, result }).await;
        });
    }

    /// The extension is durable (or failed): said back on the line.
    pub(super) fn line_extended(
        &mut self,
        user: String,
        leg: LegId,
        result: Result<DateTime<Utc>, String>,
    ) {
        let Some(line) = self.lines.get(&user).filter(|l| l.leg == leg) else {
            return;
        };
        match result {
            Ok(end) => {
                info!(parent: &line.span, end = %crate::presence::fmt_secs(end), "window extended from the reminder on the line");
                if line.offer.is_some() || line.ending {
                    return; // a customer came, or the line is ending: not over them
                }
                let tz = crate::call::login::time_zone_of(&self.ctx, &user);
                let status = AgentStatus::at(end, self.ctx.presence.now(), tz);
                let mut clips = vec![PromptName::from(CLIP_EXTENDED)];
                clips.extend(status.sentence());
                self.play_on(&user, &clips, Playing::Reminder);
            }
            Err(e) => {
                warn!(parent: &line.span, error = %e, "cannot extend the window from the reminder")
            }
        }
    }

    /// Plays `clips` on the line as `kind`.
    fn play_on(&mut self, user: &str, clips: &[PromptName], kind: fn(u64) -> Playing) {
        let id = self.play_id();
        let prompts = self.prompts(clips);
        let Some(line) = self.lines.get_mut(user) else {
            return;
        };
        line.playing = Some(kind(id));
        if let Err(e) = line.session.play(id, prompts) {
            warn!(parent: &line.span, error = %e, "cannot play on the line");
        }
    }

    /// Shutdown: every line gets its BYE; windows stay (the agents call
    /// back and key # to take a line again).
    pub(super) async fn shut_lines(&mut self) {
        for (_, line) in std::mem::take(&mut self.lines) {
            info!(parent: &line.span, "shutting down: hanging up the nailed-up line");
            self.end_line_leg(line).await;
        }
    }

    /// Ends a replaced line's leg (BYE) without ending the window.
    async fn end_line_leg(&mut self, mut line: Line) {
        line.ending = true;
        if let Some((_, attempt)) = line.offer.take() {
            self.line_attempts.remove(&attempt);
        }
        let leg = line.end_media();
        let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
    }
}
