//! Carrying out the queue engine's actions.

use std::sync::atomic::Ordering;

use tracing::{debug, info, warn};

use super::legs::{self, AgentDial, Callee};
use super::writer::Write;
use super::OverflowLeg;
use super::{dial_allowed, AgentLeg, Shell};
use crate::config::CallerIdMode;
use crate::flows::directory::CallerNumber;
use crate::flows::queue::{Action, AttemptId, DialOutcome, Event, OfflineReason, PromptName};
use crate::routing::CallId;
use crate::sip::{DialRequest, LegId, SipCommand};

impl Shell {
    pub(super) async fn perform(&mut self, action: Action) {
        match action {
            // `leg::answer` answered before the hand-over.
            Action::AnswerCustomer { call } => debug!(%call, "queue: customer already answered"),
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
                self.dial(call, attempt, user).await
            }
            Action::CancelAgent { attempt, .. } | Action::HangUpAgent { attempt, .. } => {
                if let Some(a) = self.agents.get_mut(&attempt) {
                    a.abandoned = true;
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
            Action::PlayAgent { attempt, clips, .. } => {
                let id = self.play_id();
                let prompts = self.prompts(&clips);
                if let Some(a) = self.agents.get_mut(&attempt) {
                    a.whisper = Some(id);
                    if let Some(s) = &a.session {
                        if let Err(e) = s.play(id, prompts) {
                            warn!(agent = %a.user, error = %e, "cannot play the whisper");
                        }
                    }
                }
            }
            Action::Bridge { call, attempt } => self.bridge(call, attempt).await,
            Action::HangUpCustomer { call } => {
                if let Some(c) = self.customers.get_mut(&call) {
                    c.gone = true;
                    c.bridge = None;
                    let leg = c.leg;
                    let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                }
            }
            Action::PlayOverflowAndHangUp { call, clips } => {
                self.play_and_hang_up(call, &clips).await;
            }
            Action::TransferToOverflow { call, number } => self.transfer(call, number).await,
            Action::SetAgentOffline { user, reason } => {
                let reason = match reason {
                    OfflineReason::MaxNoAnswer => "missed queue calls (max_no_answer)",
                };
                info!(agent = %user, reason, "queue: setting the agent offline");
                self.write(Write::ForceOffline {
                    user,
                    reason: reason.to_owned(),
                })
                .await;
            }
            // The presence service announces the forced offline and the
            // notifier (call/notify.rs) rings the agent on that.
            Action::NotifyAgent { user } => debug!(agent = %user, "queue: notifier will call"),
            Action::RecordAttempt(r) => self.write(Write::Attempt(r)).await,
            Action::RecordCall(r) => {
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
            let leg = c.leg;
            let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
        }
    }

    async fn bridge(&mut self, call: CallId, attempt: AttemptId) {
        let (Some(c), Some(a)) = (self.customers.get_mut(&call), self.agents.get(&attempt)) else {
            warn!(%call, "queue: bridge for a leg that is gone");
            self.pending.push_back(Event::AgentHungUp { call, attempt });
            return;
        };
        c.looped.clear();
        c.playing = None;
        let result = match &a.session {
            Some(s) => self
                .ctx
                .engine
                .bridge(&c.session, s)
                .map(|h| (h, s.local_addr())),
            None => Err(crate::media::engine::MediaError::Closed),
        };
        match result {
            Ok((handle, agent_rtp)) => {
                // Both local RTP addresses: what one-way audio is chased with,
                // and how bench/sipp_bridge.sh pairs the legs in its capture.
                info!(
                    parent: &c.span,
                    agent = %a.user,
                    customer_rtp = %c.session.local_addr(),
                    %agent_rtp,
                    "bridged"
                );
                c.bridge = Some(handle);
                self.write(Write::Bridged {
                    call,
                    at: std::time::Instant::now(),
                })
                .await;
            }
            Err(e) => {
                warn!(parent: &c.span, error = %e, "cannot bridge: ending the agent's leg");
                let leg = a.leg;
                let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                self.pending.push_back(Event::AgentHungUp { call, attempt });
            }
        }
    }

    /// Starts the outbound leg to `user`'s first PSTN number, or reports the
    /// attempt failed at once when it must not or cannot be placed.
    async fn dial(&mut self, call: CallId, attempt: AttemptId, user: String) {
        let fail = |status| Event::AgentLegFailed {
            call,
            attempt,
            outcome: DialOutcome::Unavailable(status),
        };
        let cfg = self.ctx.cfg.clone();
        let Some(c) = self.customers.get(&call) else {
            self.pending.push_back(fail(503));
            return;
        };
        let number = cfg
            .user(&user)
            .and_then(|u| u.pstn_numbers().next().cloned());
        let Some(number) = number.filter(|n| dial_allowed(&cfg, n)) else {
            warn!(parent: &c.span, agent = %user, "agent has no diallable PSTN number");
            self.pending.push_back(fail(404));
            return;
        };
        let cap = cfg.trunk.max_outbound_calls as usize;
        if self.agents.len() >= cap {
            warn!(parent: &c.span, agent = %user, cap, "trunk.max_outbound_calls reached: not dialling");
            self.pending.push_back(fail(503));
            return;
        }
        let ports = match self.ctx.ports.allocate() {
            Ok(p) => p,
            Err(e) => {
                warn!(parent: &c.span, error = %e, "no RTP port for the agent's leg");
                self.pending.push_back(fail(503));
                return;
            }
        };
        let (from_user, diversion) = presented(cfg.trunk.caller_id, c);
        let target = cfg.dial_string(&number);
        info!(parent: &c.span, agent = %user, %target, "ringing the agent");
        let request = (target, from_user, diversion);
        // One child span per attempt: a call that moves on to a second agent shows each
        // agent once, under the customer's call.
        let span = tracing::info_span!(parent: &c.span, "agent_leg", agent = %user);
        let leg = self.launch(call, Callee::Agent(attempt), None, ports, request, span);
        self.agents.insert(
            attempt,
            AgentLeg {
                leg,
                user,
                session: None,
                whisper: None,
                abandoned: false,
            },
        );
    }

    /// Registers a new outbound leg, offers media on `ports` and starts
    /// dialling; its events come back through the inbox tagged `callee`.
    /// (Callers record the leg before they next await, so no event can
    /// arrive for a leg they do not know.)
    fn launch(
        &self,
        call: CallId,
        callee: Callee,
        ring: Option<std::time::Duration>,
        ports: crate::media::ports::RtpPorts,
        (target, from_user, diversion): (String, String, Option<String>),
        span: tracing::Span,
    ) -> LegId {
        let leg = LegId::next();
        let sip = self.ctx.router.register(leg);
        let request = DialRequest {
            target,
            from_user,
            diversion,
            sdp: crate::call::leg::offer(&self.ctx, &ports, leg),
        };
        let dial = AgentDial {
            call,
            callee,
            ring,
            leg,
            ports,
            request,
            sip,
            span,
        };
        legs::dial_agent(self.ctx.clone(), dial, self.inbox.clone());
        leg
    }

    /// Hands a customer the engine gave up on to the queue's overflow
    /// number: dial it (only if `trunk.allow_dial` permits), bridge on
    /// answer; anything else plays the unavailable prompt and hangs up.
    async fn transfer(&mut self, call: CallId, number: crate::config::E164) {
        let cfg = self.ctx.cfg.clone();
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        c.gone = true;
        let fallback: Vec<PromptName> = c.unavailable.iter().cloned().collect();
        if !dial_allowed(&cfg, &number) {
            warn!(parent: &c.span, %number, "overflow_number is not in trunk.allow_dial: not dialling it");
            self.play_and_hang_up(call, &fallback).await;
            return;
        }
        let cap = cfg.trunk.max_outbound_calls as usize;
        let ports = match self.ctx.ports.allocate() {
            Ok(p) if self.agents.len() + self.overflows.len() < cap => p,
            _ => {
                warn!(parent: &c.span, "cannot place the overflow call (no port or trunk.max_outbound_calls)");
                self.play_and_hang_up(call, &fallback).await;
                return;
            }
        };
        let (from_user, diversion) = presented(cfg.trunk.caller_id, c);
        let target = cfg.dial_string(&number);
        info!(parent: &c.span, %target, "transferring to the overflow number");
        let ring = Some(c.ring_timeout);
        let request = (target, from_user, diversion);
        let span = tracing::info_span!(parent: &c.span, "overflow_leg", %number);
        let leg = self.launch(call, Callee::Overflow, ring, ports, request, span);
        self.overflows
            .insert(call, OverflowLeg { leg, session: None });
    }

    /// What the overflow leg reports.
    pub(super) async fn overflow_event(&mut self, call: CallId, ev: legs::AgentEvent) {
        use legs::AgentEvent as E;
        match ev {
            E::Answered(session) => {
                let Some(c) = self.customers.get_mut(&call) else {
                    // The customer left while it rang.
                    session.close();
                    if let Some(o) = self.overflows.get(&call) {
                        let _ = self.ctx.commands.send(SipCommand::HangUp(o.leg)).await;
                    }
                    return;
                };
                c.looped.clear();
                c.playing = None;
                match self.ctx.engine.bridge(&c.session, &session) {
                    Ok(h) => {
                        info!(parent: &c.span, "bridged to the overflow number");
                        c.bridge = Some(h);
                    }
                    Err(e) => {
                        warn!(parent: &c.span, error = %e, "cannot bridge to the overflow number");
                        let leg = c.leg;
                        let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                    }
                }
                if let Some(o) = self.overflows.get_mut(&call) {
                    o.session = Some(session);
                }
            }
            E::NoMedia | E::Failed(_) => {
                self.overflows.remove(&call);
                let fallback: Vec<PromptName> = self
                    .customers
                    .get(&call)
                    .map(|c| c.unavailable.iter().cloned().collect())
                    .unwrap_or_default();
                self.play_and_hang_up(call, &fallback).await;
            }
            E::Ended => {
                self.overflows.remove(&call);
                if let Some(c) = self.customers.get_mut(&call) {
                    c.bridge = None;
                    let leg = c.leg;
                    let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                }
            }
            // An overflow destination that answers without media is bridged
            // already; the customer's RTP timeout ends a dead call.
            E::Progress | E::Media(_) | E::Digit(_) | E::MediaTimeout => {}
        }
    }
}

/// Our From user (and Diversion) toward an agent or the overflow number,
/// per `trunk.caller_id`.
fn presented(mode: CallerIdMode, c: &super::Customer) -> (String, Option<String>) {
    match mode {
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
    }
}
