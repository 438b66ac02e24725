//! Drives the timed-presence log-in menu (`flows::timed_presence`) for one
//! answered call: media events and SIP events in, the menu's actions out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::leg::Answered;
use super::CallContext;
use crate::config::TimedPresenceFlow;
use crate::flows::directory::{self, CallerNumber};
use crate::flows::timed_presence::{
    Action, Event, LoginMenu, Outcome, PlayId, PresenceChange, PromptName,
};
use crate::media::engine::MediaEvent;
use crate::presence::{LoginOutcome, NewLoginCall};
use crate::sip::{IncomingCall, SipCommand, SipEvent};
use crate::telemetry;

/// The history's reason when calling in clears not-responding.
const REASON_CALLED_IN: &str = "called the log-in line";

pub async fn run(
    ctx: &Arc<CallContext>,
    call: &IncomingCall,
    flow: &TimedPresenceFlow,
    answered: Answered,
    sip: mpsc::Receiver<SipEvent>,
) {
    let started_at = Utc::now();
    let caller = directory::identify(&ctx.cfg, &call.caller);
    info!(caller = %caller, "log-in call");
    let settings = directory::menu_settings(flow);
    let mut menu = LoginMenu::new(&settings, caller, Instant::now());
    drive(ctx, call, &mut menu, answered, sip).await;
    record(ctx, call, &menu, started_at).await;
    let outcome = stored_outcome(menu.outcome().unwrap_or(Outcome::AbandonedByCaller));
    telemetry::call_ended(&flow.name, outcome.as_str());
}

/// The call itself: menu in, actions out, until the call ends.
async fn drive(
    ctx: &Arc<CallContext>,
    call: &IncomingCall,
    menu: &mut LoginMenu,
    answered: Answered,
    mut sip: mpsc::Receiver<SipEvent>,
) {
    let Answered { session, mut media } = answered;
    menu.handle(Event::Started, Instant::now());
    // An offerless INVITE is answered only once its ACK (which carries the
    // SDP answer) has arrived, so that dialog is confirmed already; for an
    // INVITE with an offer, `SipEvent::Confirmed` is still to come.
    if call.media.is_none() {
        menu.handle(Event::Confirmed, Instant::now());
    }
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
                Action::Identified { user_id } => {
                    tracing::Span::current().record("agent", user_id.as_str());
                    // Awaited before the menu's Play: cleared durably
                    // before the agent hears the menu. A store that fails
                    // leaves the mark; the menu still lets them go online.
                    match ctx
                        .presence
                        .clear_not_responding(
                            &user_id,
                            crate::presence::ACTOR_AGENT,
                            REASON_CALLED_IN,
                        )
                        .await
                    {
                        Ok(true) => {
                            info!(agent = %user_id, "not-responding cleared: the agent called in")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            warn!(agent = %user_id, error = %e, "cannot clear not-responding")
                        }
                    }
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
                        // A store that cannot write says so itself, once
                        // per interval; a line per call would flood the log.
                        if e.cannot_write() {
                            debug!(error = %e, "presence write failed");
                        } else {
                            warn!(error = %e, "presence write failed");
                        }
                        e.to_string()
                    });
                    menu.handle(Event::PresenceWritten(result), Instant::now());
                }
                Action::HangUp => {
                    info!(outcome = %outcome_words(menu.outcome()), "log-in finished: hanging up");
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
                    info!(cause = %cause, outcome = %outcome_words(menu.outcome()), "caller hung up");
                    menu.handle(Event::HungUp, Instant::now());
                    session.close();
                    return;
                }
                Some(SipEvent::Cancelled(_)) | None => {
                    menu.handle(Event::HungUp, Instant::now());
                    session.close();
                    return;
                }
                Some(SipEvent::Confirmed { .. }) => {
                    menu.handle(Event::Confirmed, Instant::now());
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
                    // A PIN's keys are a secret: logged as `*`.
                    let shown = if menu.collecting_secret() { '*' } else { d };
                    info!(digit = %shown, "dtmf");
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

/// The outcome in words for a log line ("undecided" while there is none).
fn outcome_words(outcome: Option<Outcome>) -> String {
    outcome.map_or_else(|| "undecided".to_owned(), |o| o.to_string())
}

/// Writes the log-in call's record (`tpswitch calls --logins`). A failed
/// write is logged: the presence change itself was already confirmed or not.
async fn record(
    ctx: &Arc<CallContext>,
    call: &IncomingCall,
    menu: &LoginMenu,
    started_at: DateTime<Utc>,
) {
    let outcome = menu.outcome().unwrap_or(Outcome::AbandonedByCaller);
    let caller = match directory::caller_number(&ctx.cfg, &call.caller) {
        CallerNumber::Number(n) => n.as_str().to_owned(),
        CallerNumber::Withheld => String::new(),
        CallerNumber::NotANumber(s) => s,
    };
    let row = NewLoginCall {
        call_id: call.call_id.clone(),
        caller,
        agent_user_id: menu.agent_id().map(str::to_owned),
        outcome: stored_outcome(outcome),
        hours: outcome.hours(),
        started_at,
        ended_at: Utc::now(),
    };
    match ctx.presence.record_login(row).await {
        Ok(()) => {}
        // Said by the store once per interval.
        Err(e) if e.cannot_write() => debug!(error = %e, "cannot record the log-in call"),
        Err(e) => warn!(error = %e, "cannot record the log-in call"),
    }
}

/// The menu's outcome in the store's terms.
fn stored_outcome(outcome: Outcome) -> LoginOutcome {
    match outcome {
        Outcome::Online(_) => LoginOutcome::Online,
        Outcome::Offline => LoginOutcome::Offline,
        Outcome::UnknownCaller => LoginOutcome::UnknownCaller,
        Outcome::Withheld => LoginOutcome::Withheld,
        Outcome::TooManyAttempts => LoginOutcome::Invalid,
        Outcome::WrongPin => LoginOutcome::PinFailed,
        Outcome::AbandonedByCaller => LoginOutcome::HungUp,
        Outcome::StoreFailed => LoginOutcome::StoreFailed,
    }
}
