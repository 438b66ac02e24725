//! "Your presence window has ended": when a window ends, a supervisor ends
//! it, or missed offers set the agent not responding, call the agent's PSTN
//! number through the trunk, play `offline` (or `not_responding`), hang up. The rules are `flows::notify`'s; this shell only
//! carries them out. Never while the agent is on a call (the presence
//! service defers the expiry until the call ends).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use super::leg::{self, LegNews, Placement};
use super::CallContext;
use crate::config::Flow;
use crate::flows::notify::{Action as NotifyAction, NotifyCall};
use crate::flows::outbound::{Event, LegRules, Outcome, DEFAULT_MEDIA_GRACE};
use crate::flows::prompt_plan::PromptName;
use crate::media::engine::MediaSession;
use crate::presence::service::PresenceEvent;
use crate::sip::SipCommand;

/// Why the notification call is placed, which decides its prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// The window ended, or a supervisor ended it: `offline`.
    Ended,
    /// `max_no_answer` missed offers set the agent not responding:
    /// `not_responding` (issue 14), so they know why and how to come back.
    NotResponding,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::Ended => "window ended",
            Why::NotResponding => "not responding",
        }
    }
}

/// The timed-presence flow whose settings govern notifications: the
/// prompt for `why`, and the contact point agents call it on (our caller
/// ID toward the agent).
fn notifying_flow(ctx: &CallContext, why: Why) -> Option<(String, String)> {
    ctx.cfg.flows.iter().find_map(|f| match f {
        Flow::TimedPresence(tp) if tp.notify_on_expiry => {
            let number = ctx
                .cfg
                .dispatch_mappings
                .iter()
                .find(|m| m.flow == tp.name)
                .map(|m| m.phone_number.as_str().to_owned())?;
            let prompt = match why {
                Why::Ended => &tp.prompts.offline,
                Why::NotResponding => &tp.prompts.not_responding,
            };
            Some((prompt.name.clone(), number))
        }
        _ => None,
    })
}

pub async fn run(
    current: super::Current,
    mut events: broadcast::Receiver<PresenceEvent>,
    cancel: CancellationToken,
) {
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = events.recv() => ev,
        };
        let (user, why) = match ev {
            Ok(PresenceEvent::Expired {
                user,
                while_down: false,
                ..
            }) => (user, Why::Ended),
            Ok(PresenceEvent::ForcedOffline { user, .. }) => (user, Why::Ended),
            Ok(PresenceEvent::NotResponding { user, .. }) => (user, Why::NotResponding),
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "presence notifications lagged");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        // The settings in force now (a reload may have changed the user's
        // number or the flow since the window began).
        let ctx = current.borrow().clone();
        // A nailed-up agent is told on their line, which the queue hangs
        // up after saying it: a call to their phone would find it busy.
        if ctx.router.has_line(&user) {
            info!(agent = %user, reason = why.as_str(), "told on the nailed-up line, not by a call");
            continue;
        }
        let Some((prompt, from)) = notifying_flow(&ctx, why) else {
            continue;
        };
        let span = info_span!(
            "notify",
            agent = %user,
            reason = why.as_str(),
            prompt = %prompt,
            sip_call_id = tracing::field::Empty
        );
        tokio::spawn(
            async move {
                // A supervisor's end comes at once, even during a customer
                // call; the phone would only answer busy, so the notice
                // waits for the call to end, as an expiry's does (the
                // presence service defers those itself).
                if ctx.live.agent_on_call(&user) {
                    info!("on a customer call: the notice waits for it to end");
                    let until = tokio::time::Instant::now() + NOTICE_AFTER_CALL_WAIT;
                    if !ctx.live.off_calls(&user, until).await {
                        info!("still on the call: notice dropped");
                        return;
                    }
                }
                notify(&ctx, &user, &prompt, from).await
            }
            .instrument(span),
        );
    }
}

/// The longest a notice waits for the agent's customer call to end.
const NOTICE_AFTER_CALL_WAIT: Duration = Duration::from_secs(4 * 3600);

async fn notify(ctx: &Arc<CallContext>, user: &str, prompt: &str, from: String) {
    let Some(placement) = Placement::to_agent(ctx, user, from, crate::live::LegKind::Notification)
    else {
        return;
    };
    info!(prompt, "calling the agent to tell them");
    let rules = LegRules::on_answer(
        ctx.cfg.presence.expiry_notification_ring,
        DEFAULT_MEDIA_GRACE,
    );
    let mut flow = NotifyCall::new(rules, PromptName::new(prompt), PLAY_GUARD, Instant::now());
    let (inbox, mut news) = mpsc::channel(16);
    let leg = match leg::place(ctx, placement, inbox, |n| n) {
        Ok(leg) => leg,
        Err(e) => {
            info!(error = %e, "notification call not placed");
            return;
        }
    };
    let mut session: Option<MediaSession> = None;
    loop {
        while let Some(action) = flow.poll_action() {
            match action {
                NotifyAction::Cancel | NotifyAction::HangUp => {
                    if let Some(s) = session.take() {
                        s.close();
                    }
                    let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                }
                NotifyAction::Play(clips) => {
                    let prompts = ctx.prompts.clips(clips.iter().map(PromptName::as_str));
                    if let Some(s) = &session {
                        let _ = s.play(1, prompts);
                    }
                }
                NotifyAction::Delivered => info!("notification delivered"),
                NotifyAction::NotDelivered(o) => {
                    info!(outcome = outcome_word(o), "notification call not answered")
                }
            }
        }
        if flow.is_done() {
            break;
        }
        let deadline = flow
            .deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            n = news.recv() => match n {
                // The translator stopped: the leg is over on the SIP side.
                None => break,
                Some(LegNews::Session(s)) => {
                    if let Some(old) = session.replace(s) {
                        old.close();
                    }
                }
                Some(LegNews::Remote(n)) => {
                    if let Some(s) = &session {
                        let _ = s.update_remote(&n.stream);
                    }
                }
                Some(LegNews::PlaybackFinished(_)) => {
                    flow.handle(Event::PlaybackFinished, Instant::now())
                }
                Some(LegNews::DtmfFailed(_)) | Some(LegNews::CallId(_)) => {}
                Some(LegNews::Event(ev)) => flow.handle(ev, Instant::now()),
            },
            _ = tokio::time::sleep_until(deadline) => flow.handle(Event::Timer, Instant::now()),
        }
    }
    if let Some(s) = session {
        s.close();
    }
}

/// How long the notice may play before the switch hangs up anyway.
const PLAY_GUARD: Duration = Duration::from_secs(60);

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Busy(_) => "busy",
        Outcome::Declined(_) => "declined",
        Outcome::NoAnswer(_) => "no-answer",
        Outcome::RingTimeout => "ring-timeout",
        Outcome::TrunkFailed(_) => "trunk-failed",
        Outcome::DeadAnswer => "no-media",
        Outcome::ExtNotSent => "ext-not-sent",
        Outcome::NotAccepted => "not-accepted",
        Outcome::HungUpBeforeAccept | Outcome::CalleeHungUp => "hung-up",
        Outcome::Withdrawn => "withdrawn",
    }
}
