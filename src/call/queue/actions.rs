//! Carrying out the queue engine's actions.

use std::sync::atomic::Ordering;

use tracing::{info, warn};

use super::legs::Input;
use super::writer::Write;
use super::{AgentLeg, Shell};
use crate::call::leg::{self, PlaceError, Placement};
use crate::config::{CallerIdMode, E164};
use crate::flows::directory::CallerNumber;
use crate::flows::queue::{Action, AttemptId, DialOutcome, Event, LegEvent, PromptName};
use crate::live::{LegInfo, LegKind};
use crate::routing::CallId;
use crate::sip::{Presentation, SipCommand};
use crate::telemetry;

impl Shell {
    pub(super) async fn perform(&mut self, action: Action) {
        match action {
            Action::PlayCustomer { call, once, looped } => {
                if let Some(c) = self.customers.get_mut(&call) {
                    c.looped = looped;
                    let clips = if once.is_empty() {
                        c.looped.clone()
                    } else {
                        once
                    };
                    self.play_customer(call, &clips);
                }
            }
            Action::ClaimAgent { attempt, user, .. } => {
                self.write(Write::Claim { attempt, user }).await
            }
            Action::DialAgent {
                call,
                attempt,
                user,
            } => {
                // Listed as in progress at once (`tpswitch calls`).
                self.write(Write::AttemptStarted {
                    call,
                    attempt,
                    user: user.clone(),
                    started: std::time::Instant::now(),
                })
                .await;
                self.dial(call, attempt, user)
            }
            Action::DialOverflow {
                call,
                attempt,
                number,
            } => self.dial_overflow(call, attempt, number),
            Action::CancelAgent { attempt, .. } | Action::HangUpAgent { attempt, .. } => {
                if let Some(a) = self.agents.get_mut(&attempt) {
                    if let Some(s) = a.session.take() {
                        s.close();
                    }
                    let leg = a.leg;
                    let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                }
            }
            Action::SendExt {
                attempt,
                digits,
                pause,
                ..
            } => {
                let sent = self
                    .agents
                    .get(&attempt)
                    .and_then(|a| a.session.as_ref())
                    .map(|s| s.send_dtmf(&digits, pause));
                if let Some(Err(e)) = sent {
                    warn!(attempt = attempt.0, error = %e, "cannot send extension digits");
                }
            }
            Action::OfferOnLine {
                call,
                attempt,
                user,
            } => self.offer_on_line(call, attempt, user).await,
            Action::LineIdle { user } => self.line_idle(&user),
            Action::HangUpLine { user, why } => self.hang_up_line(&user, why).await,
            Action::PlayAgent { attempt, clips, .. } if self.play_on_line(attempt, &clips) => {}
            Action::PlayAgent { attempt, clips, .. } => {
                let id = self.play_id();
                let prompts = self.prompts(&clips);
                if let Some(a) = self.agents.get_mut(&attempt) {
                    a.whisper = Some(id);
                    if let Some(s) = &a.session {
                        if let Err(e) = s.play(id, prompts) {
                            warn!(agent = %a.who, error = %e, "cannot play the whisper");
                        }
                    }
                }
            }
            Action::Bridge { call, attempt } => {
                self.stop_waiting(call);
                self.bridge(call, attempt).await
            }
            Action::HangUpCustomer { call } => {
                if let Some(c) = self.customers.get_mut(&call) {
                    c.gone = true;
                    let leg = c.end_media();
                    let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                }
            }
            Action::PlayOverflowAndHangUp { call, clips } => {
                self.ctx.live.ending(call.0, chrono::Utc::now());
                self.play_and_hang_up(call, &clips).await;
            }
            Action::SetAgentOffline { user, reason } => {
                let reason = reason.describe();
                info!(agent = %user, reason = %reason, "queue: setting the agent to not responding");
                // Counted as not responding from the board's change that
                // follows this action (`drain`).
                self.not_responding.insert(user.clone());
                self.write(Write::NotResponding { user, reason }).await;
            }
            Action::RecordAttempt(report) => {
                self.line_attempts.remove(&report.attempt);
                telemetry::attempt_ended(report.end.as_str(), report.ring, report.accept_latency);
                let sip_call_id = self.sip_call_ids.remove(&report.attempt).map(|(_, id)| id);
                self.write(Write::Attempt {
                    report,
                    sip_call_id,
                })
                .await
            }
            Action::RecordCall(r) => {
                self.stop_waiting(r.call);
                self.ctx.live.ending(r.call.0, chrono::Utc::now());
                telemetry::call_ended(&r.queue, r.outcome.as_str());
                if let Some(bridged) = r.bridged {
                    telemetry::queue_wait(&r.queue, bridged.saturating_duration_since(r.arrived));
                }
                self.sip_call_ids.retain(|_, (call, _)| *call != r.call);
                // Engine-wide relay count: a cheap sign, in the log, that
                // media crossed the bridge.
                let relayed = self.ctx.engine.stats().relayed.load(Ordering::Relaxed);
                let span = self.customers.get(&r.call).map(|c| c.span.clone());
                info!(
                    parent: span.as_ref().and_then(|s| s.id()),
                    outcome = r.outcome.as_str(),
                    agent = r.agent.as_deref().unwrap_or("none"),
                    relayed,
                    "customer call finished"
                );
                self.write(Write::CallEnded(r)).await;
            }
        }
    }

    pub(super) fn prompts(
        &self,
        clips: &[PromptName],
    ) -> Vec<std::sync::Arc<crate::media::prompt::Prompt>> {
        self.ctx.prompts.clips(clips.iter().map(PromptName::as_str))
    }

    pub(super) fn play_customer(&mut self, call: CallId, clips: &[PromptName]) {
        let id = self.play_id();
        let prompts = self.prompts(clips);
        if let Some(c) = self.customers.get_mut(&call) {
            if c.bridge.is_some() {
                return;
            }
            c.playing = Some(id);
            if let Err(e) = c.session.play(id, prompts) {
                warn!(parent: &c.span, error = %e, "cannot play to the customer");
            }
        }
    }

    async fn play_and_hang_up(&mut self, call: CallId, clips: &[PromptName]) {
        let id = self.play_id();
        let prompts = self.prompts(clips);
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        c.gone = true;
        c.looped.clear();
        c.hang_up_after_play = true;
        c.playing = Some(id);
        if prompts.is_empty() || c.session.play(id, prompts).is_err() {
            let leg = c.end_media();
            let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
        }
    }

    async fn bridge(&mut self, call: CallId, attempt: AttemptId) {
        // The agent's side: a dialled leg's session, or the nailed-up
        // line the attempt was offered on.
        let on_line = self.line_attempts.contains_key(&attempt);
        let agent = match self.line_attempts.get(&attempt) {
            Some(user) => self
                .line_session(attempt)
                .map(|(s, leg)| (user.clone(), Some(s), leg)),
            None => self
                .agents
                .get(&attempt)
                .map(|a| (a.who.clone(), a.session.as_ref(), a.leg)),
        };
        let (Some(c), Some((who, session, leg))) = (self.customers.get(&call), agent) else {
            warn!(%call, "queue: bridge for a leg that is gone");
            self.pending
                .push_back(leg_event(call, attempt, LegEvent::Ended));
            return;
        };
        let result = match session {
            Some(s) => self
                .ctx
                .engine
                .bridge(&c.session, s)
                .map(|h| (h, s.announced_addr())),
            None => Err(crate::media::engine::MediaError::Closed),
        };
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        match result {
            Ok((handle, agent_rtp)) => {
                c.looped.clear();
                c.playing = None;
                // Both local RTP addresses: what one-way audio is chased with,
                // and how bench/sipp_bridge.sh pairs the legs in its capture.
                info!(
                    parent: &c.span,
                    agent = %who,
                    customer_rtp = %c.session.announced_addr(),
                    %agent_rtp,
                    on = if on_line { "nailed-up line" } else { "agent leg" },
                    "bridged"
                );
                c.bridge = Some(handle);
                self.ctx.live.bridged(call.0, leg.0, chrono::Utc::now());
                self.write(Write::Bridged {
                    call,
                    attempt,
                    at: std::time::Instant::now(),
                })
                .await;
            }
            Err(e) => {
                warn!(parent: &c.span, error = %e, "cannot bridge: the offer ends");
                // A dialled leg is hung up; a line stays (it is the
                // agent's), and the offer ends as if not taken.
                if !on_line {
                    let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                }
                self.pending
                    .push_back(leg_event(call, attempt, LegEvent::Ended));
            }
        }
    }

    /// Starts the outbound leg to `user`'s first PSTN number, or reports the
    /// attempt failed at once when it must not or cannot be placed.
    fn dial(&mut self, call: CallId, attempt: AttemptId, user: String) {
        let number = self
            .ctx
            .cfg
            .user(&user)
            .and_then(|u| u.pstn_numbers().next().cloned());
        let Some(number) = number else {
            warn!(agent = %user, "agent has no PSTN number");
            self.pending.push_back(failed(call, attempt, 404));
            return;
        };
        self.place(call, attempt, user, number, LegKind::Agent);
    }

    /// Starts the leg to the queue's overflow number.
    fn dial_overflow(&mut self, call: CallId, attempt: AttemptId, number: E164) {
        let who = number.as_str().to_owned();
        self.place(call, attempt, who, number, LegKind::Overflow);
    }

    /// Places an engine leg to `number`; its events come back through the
    /// inbox tagged with the attempt.
    fn place(
        &mut self,
        call: CallId,
        attempt: AttemptId,
        who: String,
        number: E164,
        kind: LegKind,
    ) {
        let cfg = self.ctx.cfg.clone();
        let Some(c) = self.customers.get(&call) else {
            self.pending.push_back(failed(call, attempt, 503));
            return;
        };
        // Each trunk's caller_id policy: the SIP core picks the trunk.
        let from = cfg
            .trunks
            .iter()
            .map(|t| presented(t.caller_id, c))
            .collect();
        // One child span per attempt: a call that moves on to a second agent
        // shows each agent once, under the customer's call.
        let span = tracing::info_span!(
            parent: &c.span,
            "outbound_leg",
            kind = match kind {
                LegKind::Overflow => "overflow_leg",
                _ => "agent_leg",
            },
            who = %who,
            attempt = attempt.0,
            sip_call_id = tracing::field::Empty
        );
        let live = LegInfo {
            call: Some(call.0),
            kind,
            agent: (kind == LegKind::Agent).then(|| who.clone()),
            target: number.as_str().to_owned(),
        };
        let placement = Placement {
            number: number.clone(),
            from,
            span,
            live,
        };
        let wrap = move |news| Input::Leg {
            call,
            attempt,
            news,
        };
        match leg::place(&self.ctx, placement, self.inbox.clone(), wrap) {
            Ok(leg) => {
                self.agents.insert(
                    attempt,
                    AgentLeg {
                        leg,
                        who,
                        session: None,
                        whisper: None,
                    },
                );
            }
            Err(e) => {
                warn!(parent: &c.span, %number, error = %e, "cannot place the outbound leg");
                let status = if e == PlaceError::NotAllowed {
                    404
                } else {
                    503
                };
                self.pending.push_back(failed(call, attempt, status));
            }
        }
    }
}

fn leg_event(call: CallId, attempt: AttemptId, event: LegEvent) -> Event {
    Event::Leg {
        call,
        attempt,
        event,
    }
}

/// A leg that could not be placed fails like a trunk failure: it is not
/// the agent's miss.
fn failed(call: CallId, attempt: AttemptId, status: u16) -> Event {
    leg_event(
        call,
        attempt,
        LegEvent::Failed(DialOutcome::Unavailable(status)),
    )
}

/// Our From user (and Diversion) toward an agent or the overflow number,
/// per a trunk's `caller_id`.
fn presented(mode: CallerIdMode, c: &super::Customer) -> Presentation {
    let (from_user, diversion) = match mode {
        CallerIdMode::ContactPoint => (c.contact_point.as_str().to_owned(), None),
        CallerIdMode::Customer => {
            let from = match &c.caller {
                CallerNumber::Number(n) => n.as_str().to_owned(),
                _ => "anonymous".to_owned(),
            };
            // RFC 5806 §3: who diverted the call, and why.
            let div = format!("<tel:{}>;reason=unconditional", c.contact_point.as_str());
            (from, Some(div))
        }
    };
    Presentation {
        from_user,
        diversion,
    }
}
