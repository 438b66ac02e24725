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
use crate::flows::agent_status::AgentStatus;
use crate::flows::directory::{self, CallerNumber};
use crate::flows::timed_presence::{
    Action, CallerIdCheck, Event, LoginMenu, Outcome, PlayId, PresenceChange, PromptName,
};
use crate::media::engine::MediaEvent;
use crate::presence::{self, CallerIdRecord, LoginOutcome, NewLoginCall};
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
    // The rules of the trunk the call came through, as `identify` reads
    // them: how far its caller ID is believed, and whether the carrier
    // attested this one (ATIS-1000074 verstat).
    let trust = ctx
        .cfg
        .trunk_named(&call.caller.trunk)
        .unwrap_or(&ctx.cfg.trunk)
        .caller_id_trust;
    let attested = directory::caller_attested(&ctx.cfg, &call.caller);
    info!(
        caller = %caller,
        caller_id_trust = trust.as_str(),
        attested,
        "log-in call"
    );
    // The settings only build the menu: in a block, so they are gone
    // before the first await instead of taking room in the call's task
    // for the whole call (issue 15, memory per held call).
    let mut menu = {
        let settings = directory::menu_settings(flow);
        LoginMenu::new(&settings, caller, Instant::now()).with_caller_id(trust, attested)
    };
    let kept = drive(ctx, call, flow, &mut menu, answered, sip).await;
    if menu.outcome() == Some(Outcome::CallerIdRefused) {
        // Names the policy and the attestation, never anything of a PIN.
        info!(
            agent = menu.agent_id().unwrap_or("-"),
            caller_id_trust = trust.as_str(),
            attested,
            "caller ID refused: the trunk's caller_id_trust = {:?} wants a PIN for this \
             caller ID and the user has none",
            trust.as_str()
        );
    }
    let trust = CallerIdRecord {
        caller_id_trust: trust,
        attested,
        caller_id: menu
            .agent_id()
            .map(|_| stored_check(menu.caller_id_check())),
    };
    record(ctx, call, &menu, started_at, trust).await;
    let outcome = stored_outcome(menu.outcome().unwrap_or(Outcome::AbandonedByCaller));
    telemetry::call_ended(&flow.name, outcome.as_str());
    if let Some(line) = kept {
        // Boxed: only a kept line gets here, and inline its future was the
        // largest in every log-in call's task.
        Box::pin(super::line::hold(ctx, call, flow, line)).await;
    }
}

/// The call itself: menu in, actions out, until the call ends, or until
/// the menu hands it over as a nailed-up agent's line (returned).
async fn drive(
    ctx: &Arc<CallContext>,
    call: &IncomingCall,
    flow: &TimedPresenceFlow,
    menu: &mut LoginMenu,
    answered: Answered,
    mut sip: mpsc::Receiver<SipEvent>,
) -> Option<super::line::Kept> {
    let Answered { session, mut media } = answered;
    menu.handle(Event::Started, Instant::now());
    // An offerless INVITE is answered only once its ACK (which carries the
    // SDP answer) has arrived, so that dialog is confirmed already; for an
    // INVITE with an offer, `SipEvent::Confirmed` is still to come.
    if call.media.is_none() {
        menu.handle(Event::Confirmed, Instant::now());
    }
    let far = Duration::from_secs(3600);
    // The call span names the agent once: `record` on a field already
    // recorded appends a second `agent=` to every later line.
    let mut named = false;
    let mut name_agent = |user_id: &str| {
        if !std::mem::replace(&mut named, true) {
            tracing::Span::current().record("agent", user_id);
        }
    };
    loop {
        while let Some(action) = menu.poll_action() {
            match action {
                Action::Play { id, clips, .. } => {
                    // What the caller hears, in order: the sentence is built
                    // from clips, so this is the one place to see it.
                    debug!(clips = %clip_words(&clips), "playing");
                    let prompts = ctx.prompts.clips(clips.iter().map(PromptName::as_str));
                    if let Err(e) = session.play(id.get(), prompts) {
                        warn!(error = %e, "cannot play");
                    }
                }
                Action::StopPlayback => {
                    let _ = session.stop_playback();
                }
                Action::LookUpStatus { user_id } => {
                    name_agent(user_id.as_str());
                    let status = status_of(ctx, &user_id).await;
                    if let Some(s) = &status {
                        info!(agent = %user_id, minutes_left = s.left.as_secs() / 60, "already online: saying the status");
                    }
                    menu.handle(Event::Status(status), Instant::now());
                }
                Action::WritePresence(PresenceChange::Extend { user_id, hours }) => {
                    let result = extend(ctx, flow, &user_id, hours).await;
                    menu.handle(Event::Extended(result), Instant::now());
                }
                Action::Identified { user_id } => {
                    name_agent(user_id.as_str());
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
                            name_agent(user_id.as_str());
                            ctx.presence
                                .go_online(user_id, *hours, Some(&call.call_id))
                                .await
                                .map(|w| info!(agent = %user_id, hours, end = %w.end, "online"))
                        }
                        PresenceChange::Offline { user_id } => {
                            name_agent(user_id.as_str());
                            ctx.presence
                                .go_offline(user_id, Some(&call.call_id))
                                .await
                                .map(|_| info!(agent = %user_id, "offline"))
                        }
                        PresenceChange::Extend { .. } => Ok(()), // taken above
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
                    // RFC 3261 §15.1.1: the session ends as the BYE goes
                    // out, not when its 200 comes back (seconds later on a
                    // lossy path).
                    session.close();
                    super::leg::wait_for_end(&mut sip).await;
                    return None;
                }
                Action::HoldLine { user_id } => {
                    info!(
                        agent = %user_id,
                        outcome = %outcome_words(menu.outcome()),
                        "nailed-up: the call stays up as the agent's line"
                    );
                    return Some(super::line::Kept {
                        user: user_id,
                        answered: Answered { session, media },
                        sip,
                    });
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
                    return None;
                }
                Some(SipEvent::Cancelled(_)) | None => {
                    menu.handle(Event::HungUp, Instant::now());
                    session.close();
                    return None;
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
                    return None;
                }
                Some(_) => {}
                None => {
                    menu.handle(Event::HungUp, Instant::now());
                    let _ = ctx.commands.send(SipCommand::HangUp(call.leg)).await;
                    return None;
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
    trust: CallerIdRecord,
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
        trust,
    };
    match ctx.presence.record_login(row).await {
        Ok(()) => {}
        // Said by the store once per interval.
        Err(e) if e.cannot_write() => debug!(error = %e, "cannot record the log-in call"),
        Err(e) => warn!(error = %e, "cannot record the log-in call"),
    }
}

/// The menu's outcome in the store's terms.
/// Clip names separated by spaces, for the log.
fn clip_words(clips: &[PromptName]) -> String {
    let mut words = String::new();
    for c in clips {
        if !words.is_empty() {
            words.push(' ');
        }
        words.push_str(c.as_str());
    }
    words
}

/// The agent's open window as they should hear it, in their time zone;
/// `None` when offline or when it cannot be read (logged: the agent then
/// gets the offline menu, which still works).
async fn status_of(ctx: &Arc<CallContext>, user: &str) -> Option<AgentStatus> {
    match ctx.presence.current(user).await {
        Ok(window) => {
            window.map(|w| AgentStatus::at(w.end, ctx.presence.now(), time_zone_of(ctx, user)))
        }
        Err(e) => {
            warn!(agent = %user, error = %e, "cannot read the agent's window: offering the menu of an offline agent");
            None
        }
    }
}

/// Adds `hours` to the agent's window, durably; the bound is what this
/// flow's menu lets an agent choose at once.
async fn extend(
    ctx: &Arc<CallContext>,
    flow: &TimedPresenceFlow,
    user: &str,
    hours: u32,
) -> Result<AgentStatus, String> {
    let longest = flow_longest_hours(flow);
    match ctx
        .presence
        .extend(user, hours, chrono::Duration::hours(i64::from(longest)))
        .await
    {
        Ok(w) => {
            info!(agent = %user, hours, end = %w.end, "window extended");
            Ok(AgentStatus::at(
                w.end,
                ctx.presence.now(),
                time_zone_of(ctx, user),
            ))
        }
        Err(e) => {
            if e.cannot_write() {
                debug!(error = %e, "presence write failed");
            } else {
                warn!(error = %e, "presence write failed");
            }
            Err(e.to_string())
        }
    }
}

/// The longest window this flow's menu offers: its largest preset or the
/// largest custom entry.
pub(super) fn flow_longest_hours(flow: &TimedPresenceFlow) -> u32 {
    let custom = 10u32
        .checked_pow(u32::from(flow.custom_max_digits))
        .map_or(u32::MAX, |p| p - 1);
    flow.presets.iter().copied().max().unwrap_or(0).max(custom)
}

pub(super) fn time_zone_of(ctx: &Arc<CallContext>, user: &str) -> chrono_tz::Tz {
    let default = ctx.cfg.presence.time_zone;
    ctx.cfg
        .users
        .iter()
        .find(|u| u.id == user)
        .map_or(default, |u| u.time_zone_or(default))
}

fn stored_outcome(outcome: Outcome) -> LoginOutcome {
    match outcome {
        // An extension is stored as a log-in for the hours added; the
        // presence history has it as `extended`.
        // Rejoining the line keeps the window: a log-in with no hours.
        Outcome::Online(_) | Outcome::Extended(_) | Outcome::Rejoined => LoginOutcome::Online,
        Outcome::Offline => LoginOutcome::Offline,
        Outcome::UnknownCaller => LoginOutcome::UnknownCaller,
        Outcome::Withheld => LoginOutcome::Withheld,
        Outcome::TooManyAttempts => LoginOutcome::Invalid,
        Outcome::WrongPin => LoginOutcome::PinFailed,
        Outcome::AbandonedByCaller => LoginOutcome::HungUp,
        Outcome::StoreFailed => LoginOutcome::StoreFailed,
        Outcome::CallerIdRefused => LoginOutcome::CallerIdRefused,
    }
}

/// The menu's proof of identity in the store's terms.
fn stored_check(check: CallerIdCheck) -> presence::CallerIdCheck {
    match check {
        CallerIdCheck::Pin => presence::CallerIdCheck::Pin,
        CallerIdCheck::Attested => presence::CallerIdCheck::Attested,
        CallerIdCheck::Unverified => presence::CallerIdCheck::Unverified,
    }
}
