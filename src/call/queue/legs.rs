//! The per-leg tasks of the queue: each owns its leg's event receivers and
//! forwards what happens, tagged with the call (and attempt), into the queue
//! task's one bounded inbox. The queue task owns the media sessions and
//! every decision; these tasks only translate.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn, Instrument};

use super::super::leg::{self, Answered};
use super::super::{CallContext, LegRouter};
use crate::flows::queue::AttemptId;
use crate::media::engine::{MediaEvent, MediaSession};
use crate::media::ports::RtpPorts;
use crate::routing::CallId;
use crate::sdp::Negotiated;
use crate::sip::{DialOutcome, DialRequest, LegId, SipCommand, SipEvent};

/// A 200 without a usable answer gets this long for a re-INVITE/UPDATE to
/// bring one before the attempt counts as answered without media.
pub const MEDIA_GRACE: Duration = Duration::from_secs(5);

/// What the queue task hears from the legs.
pub enum Input {
    Customer {
        call: CallId,
        ev: LegEvent,
    },
    Agent {
        call: CallId,
        attempt: AttemptId,
        ev: AgentEvent,
    },
    /// The leg to a queue's overflow number.
    Overflow {
        call: CallId,
        ev: AgentEvent,
    },
}

/// Whom an outbound leg is for.
#[derive(Debug, Clone, Copy)]
pub enum Callee {
    Agent(AttemptId),
    Overflow,
}

pub enum LegEvent {
    Sip(SipEvent),
    Media(MediaEvent),
}

pub enum AgentEvent {
    /// 18x.
    Progress,
    /// 2xx with media running; the queue task takes the session.
    Answered(MediaSession),
    /// 2xx, but no media could be set up (no SDP, no port, engine refused);
    /// the leg has been hung up.
    NoMedia,
    /// Answered with SDP, but no RTP came within the grace time: a dead
    /// answer (issue 5: "a 200 without media within 5 s is failed").
    MediaTimeout,
    /// The attempt ended without a dialog.
    Failed(DialOutcome),
    /// The answered leg ended (BYE either way).
    Ended,
    Media(MediaEvent),
    /// A SIP INFO digit.
    Digit(char),
}

/// Forwards a customer leg's SIP and media events until the leg ends.
/// `done` is dropped when the leg is over, which lets the call task (and its
/// leg registration) go.
pub fn forward_customer(
    call: CallId,
    mut sip: mpsc::Receiver<SipEvent>,
    mut media: mpsc::Receiver<MediaEvent>,
    inbox: mpsc::Sender<Input>,
    done: oneshot::Sender<()>,
) {
    tokio::spawn(async move {
        let _done = done;
        let mut media_open = true;
        loop {
            let ev = tokio::select! {
                ev = sip.recv() => match ev {
                    Some(ev) => LegEvent::Sip(ev),
                    None => break,
                },
                ev = media.recv(), if media_open => match ev {
                    Some(ev) => LegEvent::Media(ev),
                    None => { media_open = false; continue; }
                },
            };
            let last = matches!(
                ev,
                LegEvent::Sip(SipEvent::Ended { .. }) | LegEvent::Sip(SipEvent::Cancelled(_))
            );
            if inbox.send(Input::Customer { call, ev }).await.is_err() || last {
                break;
            }
        }
    });
}

/// Places the call to an agent and reports its progress. The queue task has
/// already registered `leg` with the router (so a CANCEL it sends can never
/// overtake the registration) and passes the receiver in.
pub struct AgentDial {
    pub call: CallId,
    pub callee: Callee,
    /// Give up (CANCEL) after this long; None = the engine decides.
    pub ring: Option<std::time::Duration>,
    pub leg: LegId,
    pub ports: RtpPorts,
    pub request: DialRequest,
    pub sip: mpsc::Receiver<SipEvent>,
    /// The leg's span (a child of the customer's): its task and media log inside it.
    pub span: tracing::Span,
}

pub fn dial_agent(ctx: Arc<CallContext>, d: AgentDial, inbox: mpsc::Sender<Input>) {
    let AgentDial {
        call,
        callee,
        ring,
        leg,
        ports,
        request,
        mut sip,
        span,
    } = d;
    let task = async move {
        // However the task ends, the router forgets the leg.
        let _registered = Unregister(ctx.router.clone(), leg);
        let send = |ev: AgentEvent| {
            let inbox = inbox.clone();
            let input = match callee {
                Callee::Agent(attempt) => Input::Agent { call, attempt, ev },
                Callee::Overflow => Input::Overflow { call, ev },
            };
            async move { inbox.send(input).await.is_ok() }
        };
        if ctx
            .commands
            .send(SipCommand::Dial { leg, request })
            .await
            .is_err()
        {
            send(AgentEvent::Failed(DialOutcome::Unavailable(503))).await;
            return;
        }
        let mut ports = Some(ports);
        let give_up = tokio::time::sleep(ring.unwrap_or(Duration::from_secs(86_400)));
        tokio::pin!(give_up);
        let mut cancelled = false;
        // Until answered: progress, failure, or the 2xx.
        let neg: Negotiated = loop {
            let ev = tokio::select! {
                ev = sip.recv() => ev,
                _ = &mut give_up, if ring.is_some() && !cancelled => {
                    // CANCEL (§9.1); the 487 (or a crossing 200) follows.
                    cancelled = true;
                    let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                    continue;
                }
            };
            if cancelled {
                if let Some(SipEvent::Answered { .. }) = ev {
                    let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                    send(AgentEvent::Failed(DialOutcome::NoAnswer(408))).await;
                    leg::wait_for_end(&mut sip).await;
                    return;
                }
            }
            match ev {
                Some(SipEvent::Progress { .. }) => {
                    send(AgentEvent::Progress).await;
                }
                Some(SipEvent::Answered { media: Some(n), .. }) => break n,
                Some(SipEvent::Answered { media: None, .. }) => {
                    match wait_for_media(&mut sip).await {
                        Some(n) => break n,
                        None => {
                            let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                            send(AgentEvent::NoMedia).await;
                            leg::wait_for_end(&mut sip).await;
                            return;
                        }
                    }
                }
                Some(SipEvent::Failed { outcome, .. }) => {
                    send(AgentEvent::Failed(outcome)).await;
                    return;
                }
                Some(SipEvent::Ended { .. }) | None => {
                    send(AgentEvent::Failed(DialOutcome::Failed(0))).await;
                    return;
                }
                Some(other) => debug!(event = ?other, "agent leg before answer"),
            }
        };
        let Some(ports) = ports.take() else { return };
        let Some(Answered { session, mut media }) = leg::open(&ctx, ports, &neg) else {
            let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
            send(AgentEvent::NoMedia).await;
            leg::wait_for_end(&mut sip).await;
            return;
        };
        if !send(AgentEvent::Answered(session)).await {
            return;
        }
        let mut media_open = true;
        // A real phone sends RTP (speech or silence) once it has answered.
        let dead_answer = tokio::time::sleep(DEAD_ANSWER);
        tokio::pin!(dead_answer);
        let mut rtp_seen = false;
        loop {
            tokio::select! {
                _ = &mut dead_answer, if !rtp_seen => {
                    rtp_seen = true; // report once
                    warn!(leg = %leg, "answered but no RTP within {:?}", DEAD_ANSWER);
                    if !send(AgentEvent::MediaTimeout).await { return; }
                }
                ev = sip.recv() => match ev {
                    Some(SipEvent::Ended { .. }) | None => {
                        send(AgentEvent::Ended).await;
                        return;
                    }
                    Some(SipEvent::InfoDigit { digit, .. }) => {
                        if !send(AgentEvent::Digit(digit)).await { return; }
                    }
                    Some(other) => debug!(event = ?other, "agent leg event"),
                },
                ev = media.recv(), if media_open => match ev {
                    Some(MediaEvent::RtpStarted) => rtp_seen = true,
                    Some(ev) => {
                        if !send(AgentEvent::Media(ev)).await { return; }
                    }
                    None => media_open = false,
                },
            }
        }
    };
    tokio::spawn(task.instrument(span));
}

/// How long an answered agent leg may stay without RTP.
const DEAD_ANSWER: Duration = Duration::from_secs(5);

struct Unregister(LegRouter, LegId);

impl Drop for Unregister {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// After a 2xx without SDP: a re-INVITE/UPDATE may still bring the answer.
async fn wait_for_media(sip: &mut mpsc::Receiver<SipEvent>) -> Option<Negotiated> {
    tokio::time::timeout(MEDIA_GRACE, async {
        while let Some(ev) = sip.recv().await {
            match ev {
                SipEvent::MediaChanged { media, .. } => return Some(media),
                SipEvent::Ended { .. } => return None,
                _ => {}
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
