//! Drives the timed-presence log-in menu (`flows::timed_presence`) for one
//! answered call: media events and SIP events in, the menu's actions out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::leg::Answered;
use super::CallContext;
use crate::config::TimedPresenceFlow;
use crate::flows::directory;
use crate::flows::timed_presence::{Action, Event, LoginMenu, PlayId, PresenceChange, PromptName};
use crate::media::engine::MediaEvent;
use crate::sip::{IncomingCall, SipCommand, SipEvent};

pub async fn run(
    ctx: &Arc<CallContext>,
    call: &IncomingCall,
    flow: &TimedPresenceFlow,
    answered: Answered,
    mut sip: mpsc::Receiver<SipEvent>,
) {
    let Answered { session, mut media } = answered;
    let caller = directory::identify(&ctx.cfg, &call.caller);
    info!(caller = ?caller, "log-in call");
    let settings = directory::menu_settings(flow);
    let mut menu = LoginMenu::new(&settings, caller, Instant::now());
    menu.handle(Event::Started, Instant::now());
    let far = Duration::from_secs(3600);
    loop {
        while let Some(action) = menu.poll_action() {
            match action {
                Action::Play { id, clips, .. } => {
                    let prompts = ctx.prompts.clips(clips.iter().map(PromptName::as_str));
                    if let Err(e) = session.play(id.get(), prompts) {
                        warn!(error = %e, "cannot play");
                    }
                }
                Action::StopPlayback => {
                    let _ = session.stop_playback();
                }
                Action::WritePresence(change) => {
                    // Durable before the menu confirms anything (the Online
                    // prompt plays only after this returns Ok).
                    let result = match &change {
                        PresenceChange::Online { user_id, hours } => {
                            tracing::Span::current().record("agent", user_id.as_str());
                            ctx.presence
                                .go_online(user_id, *hours, Some(&call.call_id))
                                .await
                                .map(|w| info!(agent = %user_id, hours, end = %w.end, "online"))
                        }
                        PresenceChange::Offline { user_id } => {
                            tracing::Span::current().record("agent", user_id.as_str());
                            ctx.presence
                                .go_offline(user_id, Some(&call.call_id))
                                .await
                                .map(|_| info!(agent = %user_id, "offline"))
                        }
                    };
                    let result = result.map_err(|e| {
                        warn!(error = %e, "presence write failed");
                        e.to_string()
                    });
                    menu.handle(Event::PresenceWritten(result), Instant::now());
                }
                Action::HangUp => {
                    info!(outcome = ?menu.outcome(), "log-in finished: hanging up");
                    let _ = ctx.commands.send(SipCommand::HangUp(call.leg)).await;
                    super::leg::wait_for_end(&mut sip).await;
                    session.close();
                    return;
                }
            }
        }
        let deadline = menu
            .deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + far);
        tokio::select! {
            ev = sip.recv() => match ev {
                Some(SipEvent::Ended { cause, .. }) => {
                    info!(?cause, outcome = ?menu.outcome(), "caller hung up");
                    menu.handle(Event::HungUp, Instant::now());
                    session.close();
                    return;
                }
                Some(SipEvent::Cancelled(_)) | None => {
                    menu.handle(Event::HungUp, Instant::now());
                    session.close();
                    return;
                }
                Some(SipEvent::InfoDigit { digit, .. }) => {
                    menu.handle(Event::Digit(digit), Instant::now());
                }
                Some(SipEvent::MediaChanged { media: neg, .. }) => {
                    let _ = session.update_remote(&neg.stream);
                }
                Some(_) => {}
            },
            ev = media.recv() => match ev {
                Some(MediaEvent::PlaybackFinished(id)) => {
                    menu.handle(Event::PromptFinished(PlayId::from_raw(id)), Instant::now());
                }
                // Key-down: barge-in must be instant (a prompt stops within
                // one packet time).
                Some(MediaEvent::DigitStarted(d)) => {
                    info!(digit = %d, "dtmf");
                    menu.handle(Event::Digit(d), Instant::now());
                }
                Some(MediaEvent::RtpTimeout) => {
                    warn!("no RTP from the caller: hanging up");
                    menu.handle(Event::HungUp, Instant::now());
                    let _ = ctx.commands.send(SipCommand::HangUp(call.leg)).await;
                    session.close();
                    return;
                }
                Some(_) => {}
                None => {
                    menu.handle(Event::HungUp, Instant::now());
                    let _ = ctx.commands.send(SipCommand::HangUp(call.leg)).await;
                    return;
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                menu.handle(Event::Timer, Instant::now());
            }
        }
    }
}
