//! The reminder call before a window ends (issue 14): the presence service
//! says when ([`PresenceEvent::Remind`], recorded in the store first, never
//! during a customer call); this shell dials the agent through the trunk and
//! carries out `flows::reminder`'s rules. It also hands the presence
//! service the lead (`remind_before` of the timed-presence flow agents log
//! in through) at start and after every reload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use super::leg::{self, LegNews, Placement};
use super::CallContext;
use crate::config::{Flow, TimedPresenceFlow};
use crate::flows::agent_status::AgentStatus;
use crate::flows::outbound::{Event as LegEvent, LegRules, DEFAULT_MEDIA_GRACE};
use crate::flows::prompt_plan::PromptName;
use crate::flows::reminder::{self, Action, Event, Outcome, ReminderCall};
use crate::media::engine::MediaSession;
use crate::presence::service::PresenceEvent;
use crate::sip::SipCommand;

/// How long the question (or the confirmation) may play.
const PLAY_GUARD: Duration = Duration::from_secs(60);
/// How long the key may come after the question ends.
const KEY_TIMEOUT: Duration = Duration::from_secs(8);

/// The timed-presence flow that reminds, with the contact point agents
/// call it on (our caller ID toward the agent).
fn reminding_flow(ctx: &CallContext) -> Option<(TimedPresenceFlow, String)> {
    ctx.cfg.flows.iter().find_map(|f| match f {
        Flow::TimedPresence(tp) if tp.remind_before.is_some() => {
            let number = ctx
                .cfg
                .dispatch_mappings
                .iter()
                .find(|m| m.flow == tp.name)
                .map(|m| m.phone_number.as_str().to_owned())?;
            Some((tp.clone(), number))
        }
        _ => None,
    })
}

fn lead_of(ctx: &CallContext) -> Option<chrono::Duration> {
    reminding_flow(ctx)
        .and_then(|(f, _)| f.remind_before)
        .and_then(|d| chrono::Duration::from_std(d).ok())
}

pub async fn run(
    mut current: super::Current,
    mut events: broadcast::Receiver<PresenceEvent>,
    cancel: CancellationToken,
) {
    let mut lead = lead_of(&current.borrow());
    current.borrow().presence.remind_before(lead);
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            changed = current.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = lead_of(&current.borrow_and_update());
                if now != lead {
                    lead = now;
                    info!(minutes = lead.map(|l| l.num_minutes()), "reminder lead changed");
                    current.borrow().presence.remind_before(lead);
                }
                continue;
            }
            ev = events.recv() => ev,
        };
        let (user, end) = match ev {
            Ok(PresenceEvent::Remind { user, end }) => (user, end),
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "presence events lagged: reminders may have been missed"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let ctx = current.borrow().clone();
        // The agent's phone is their nailed-up line: the queue task says
        // the reminder on it; a call would only find the phone busy.
        if ctx.router.has_line(&user) {
            info!(agent = %user, "no reminder call: the agent is on their nailed-up line");
            continue;
        }
        let Some((flow, from)) = reminding_flow(&ctx) else {
            continue;
        };
        let span = info_span!(
            "reminder",
            agent = %user,
            end = %crate::presence::fmt_secs(end),
            sip_call_id = tracing::field::Empty
        );
        tokio::spawn(async move { remind(&ctx, &flow, &user, end, from).await }.instrument(span));
    }
}

async fn remind(
    ctx: &Arc<CallContext>,
    flow: &TimedPresenceFlow,
    user: &str,
    end: chrono::DateTime<chrono::Utc>,
    from: String,
) {
    let Some(placement) = Placement::to_agent(ctx, user, from, crate::live::LegKind::Reminder)
    else {
        return;
    };
    // What is left, said as the presence clock sees it (a sped-up test
    // clock included): the lead, unless the reminder was held by a call.
    let left = (end - ctx.presence.now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let hours = flow.presets.first().copied().unwrap_or(8);
    info!(hours, "calling the agent: their window ends soon");
    let rules = LegRules::on_answer(
        ctx.cfg.presence.expiry_notification_ring,
        DEFAULT_MEDIA_GRACE,
    );
    let mut call = ReminderCall::new(
        rules,
        reminder::question(left, hours),
        PLAY_GUARD,
        KEY_TIMEOUT,
        Instant::now(),
    );
    let (inbox, mut news) = mpsc::channel(16);
    let leg = match leg::place(ctx, placement, inbox, |n| n) {
        Ok(leg) => leg,
        Err(e) => {
            info!(error = %e, "reminder call not placed");
            return;
        }
    };
    let mut session: Option<MediaSession> = None;
    loop {
        while let Some(action) = call.poll_action() {
            match action {
                Action::Cancel | Action::HangUp => {
                    if let Some(s) = session.take() {
                        s.close();
                    }
                    let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                }
                Action::Play(clips) => {
                    let prompts = ctx.prompts.clips(clips.iter().map(PromptName::as_str));
                    if let Some(s) = &session {
                        let _ = s.play(1, prompts);
                    }
                }
                Action::StopPlayback => {
                    if let Some(s) = &session {
                        let _ = s.stop_playback();
                    }
                }
                Action::Extend => {
                    let result = extend(ctx, flow, user, hours).await;
                    call.handle(Event::Extended(result), Instant::now());
                }
                Action::Finished(o) => {
                    let status = match o {
                        Outcome::NotAnswered(leg) => leg.status(),
                        _ => None,
                    };
                    info!(
                        outcome = o.as_str(),
                        sip_status = status,
                        "reminder call ended"
                    );
                }
            }
        }
        if call.is_done() {
            break;
        }
        let deadline = call
            .deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            n = news.recv() => match n {
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
                    call.handle(Event::Leg(LegEvent::PlaybackFinished), Instant::now())
                }
                Some(LegNews::DtmfFailed(_)) | Some(LegNews::CallId(_)) => {}
                Some(LegNews::Event(ev)) => call.handle(Event::Leg(ev), Instant::now()),
            },
            _ = tokio::time::sleep_until(deadline) => {
                call.handle(Event::Leg(LegEvent::Timer), Instant::now())
            }
        }
    }
    if let Some(s) = session {
        s.close();
    }
}

/// Adds `hours` to the window, durably; said back in the agent's zone.
async fn extend(
    ctx: &Arc<CallContext>,
    flow: &TimedPresenceFlow,
    user: &str,
    hours: u32,
) -> Result<AgentStatus, String> {
    let longest = chrono::Duration::hours(i64::from(super::login::flow_longest_hours(flow)));
    match ctx.presence.extend(user, hours, longest).await {
        Ok(w) => {
            info!(hours, end = %crate::presence::fmt_secs(w.end), "window extended from the reminder");
            Ok(AgentStatus::at(
                w.end,
                ctx.presence.now(),
                super::login::time_zone_of(ctx, user),
            ))
        }
        Err(e) => {
            warn!(error = %e, "cannot extend the window from the reminder");
            Err(e.to_string())
        }
    }
}
