//! Bringing a leg up: answering an inbound call, or dialling out through the
//! trunk, and starting its media.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::CallContext;
use crate::media::engine::{MediaEvent, MediaSession, SessionOptions};
use crate::media::ports::RtpPorts;
use crate::media::stream::Direction;
use crate::sdp::{self, Negotiated};
use crate::sip::{DialOutcome, DialRequest, IncomingCall, LegId, SipCommand, SipEvent};

/// An answered leg with media running.
pub struct Answered {
    pub session: MediaSession,
    pub media: mpsc::Receiver<MediaEvent>,
}

pub fn session_options(ctx: &CallContext) -> SessionOptions {
    SessionOptions {
        allow: ctx.cfg.trunk.allow.clone(),
        silence_between_prompts: ctx.cfg.media.silence_between_prompts,
        rtp_timeout: ctx.cfg.media.rtp_timeout,
        latch_window: ctx.cfg.media.latch_window,
        inband_dtmf: ctx.cfg.trunk.inband_dtmf,
        // Legs are opened inside their call's span; the session logs its quality there.
        span: tracing::Span::current(),
    }
}

fn session_id(ports: &RtpPorts, leg: LegId) -> u64 {
    (u64::from(ports.local.port()) << 20) | (leg.0 & 0xF_FFFF)
}

/// Starts the media of a leg whose SDP is settled; `None` (logged) when the engine refuses.
pub(crate) fn open(ctx: &CallContext, ports: RtpPorts, neg: &Negotiated) -> Option<Answered> {
    match ctx.engine.open(ports, &neg.stream, session_options(ctx)) {
        Ok((session, media)) => Some(Answered { session, media }),
        Err(e) => {
            warn!(error = %e, "cannot start media");
            None
        }
    }
}

/// Answers an inbound call (after `sip.answer_delay` of ringing) and starts
/// its media. `None` when the caller gave up first or nothing can carry the
/// call (the SIP side has been told).
pub async fn answer(
    ctx: &Arc<CallContext>,
    call: &IncomingCall,
    rx: &mut mpsc::Receiver<SipEvent>,
) -> Option<Answered> {
    let leg = call.leg;
    // RTP ports before we answer: none free is a clean 503 (the SIP core
    // adds Retry-After).
    let ports = match ctx.ports.allocate() {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "no RTP port: rejecting with 503");
            let _ = ctx
                .commands
                .send(SipCommand::Reject { leg, status: 503 })
                .await;
            return None;
        }
    };
    let local = SocketAddr::new(ctx.advertise, ports.local.port());
    let sid = session_id(&ports, leg);
    let body = match &call.media {
        Some(neg) => sdp::build_answer(neg, local, sid, 1),
        // Offerless INVITE: we offer in the 200, the answer comes in the ACK.
        None => sdp::build_offer(
            local,
            &ctx.cfg.media.codecs,
            ctx.cfg.media.dtmf_payload_type,
            sid,
            1,
            Direction::SendRecv,
        ),
    };
    let delay = ctx.cfg.sip.answer_delay;
    if !delay.is_zero() {
        // Ringback first; a CANCEL meanwhile ends the call.
        let _ = ctx.commands.send(SipCommand::Ringing(leg)).await;
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                ev = rx.recv() => match ev {
                    Some(SipEvent::Cancelled(_)) | Some(SipEvent::Ended { .. }) | None => {
                        info!("caller gave up before answer");
                        return None;
                    }
                    Some(other) => debug!(event = ?other, "event before answer"),
                },
            }
        }
    }
    ctx.commands
        .send(SipCommand::Answer { leg, sdp: body })
        .await
        .ok()?;
    let neg = match &call.media {
        Some(n) => n.clone(),
        None => {
            // The remote address is in the ACK's answer.
            loop {
                match rx.recv().await {
                    Some(SipEvent::Confirmed { media: Some(n), .. }) => break n,
                    Some(SipEvent::Confirmed { media: None, .. }) => {
                        warn!("offerless call confirmed without an answer: hanging up");
                        let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                        return None;
                    }
                    Some(SipEvent::Ended { .. }) | Some(SipEvent::Cancelled(_)) | None => {
                        return None
                    }
                    Some(other) => debug!(event = ?other, "event before ACK"),
                }
            }
        }
    };
    let answered = open(ctx, ports, &neg);
    if answered.is_none() {
        let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
    }
    answered
}

/// Our SDP offer for an outbound leg on `ports`.
pub fn offer(ctx: &CallContext, ports: &RtpPorts, leg: LegId) -> Vec<u8> {
    sdp::build_offer(
        SocketAddr::new(ctx.advertise, ports.local.port()),
        &ctx.cfg.media.codecs,
        ctx.cfg.media.dtmf_payload_type,
        session_id(ports, leg),
        1,
        Direction::SendRecv,
    )
}

/// After we hung a leg up: wait (at most 5 s) until the SIP side says it
/// is over, so the BYE or CANCEL has its answer before the media closes.
pub async fn wait_for_end(rx: &mut mpsc::Receiver<SipEvent>) {
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = rx.recv().await {
            if matches!(ev, SipEvent::Ended { .. } | SipEvent::Failed { .. }) {
                break;
            }
        }
    })
    .await;
}

/// How an outbound attempt ended, when it did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialFailure {
    Sip(DialOutcome),
    /// No answer within the ring time; we cancelled.
    RingTimeout,
    /// No RTP port, or the media could not start.
    NoMedia,
}

/// Dials `target` (already formatted for the trunk) and starts media when it
/// answers. The leg's events keep arriving on the returned receiver.
pub async fn dial(
    ctx: &Arc<CallContext>,
    target: String,
    from_user: String,
    diversion: Option<String>,
    ring: Duration,
) -> Result<(LegId, Answered, mpsc::Receiver<SipEvent>), DialFailure> {
    let ports = ctx.ports.allocate().map_err(|_| DialFailure::NoMedia)?;
    let leg = LegId::next();
    let offer = offer(ctx, &ports, leg);
    let mut rx = ctx.router.register(leg);
    let request = DialRequest {
        target,
        from_user,
        diversion,
        sdp: offer,
    };
    if ctx
        .commands
        .send(SipCommand::Dial { leg, request })
        .await
        .is_err()
    {
        ctx.router.remove(leg);
        return Err(DialFailure::NoMedia);
    }
    let deadline = tokio::time::sleep(ring);
    tokio::pin!(deadline);
    let neg = loop {
        tokio::select! {
            _ = &mut deadline => {
                let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                // Wait for the CANCEL's outcome so a late 200 is hung up.
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(ev) = rx.recv().await {
                        if let SipEvent::Answered { .. } = ev {
                            let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                        }
                        if matches!(ev, SipEvent::Failed { .. } | SipEvent::Ended { .. }) {
                            break;
                        }
                    }
                })
                .await;
                ctx.router.remove(leg);
                return Err(DialFailure::RingTimeout);
            }
            ev = rx.recv() => match ev {
                Some(SipEvent::Answered { media: Some(n), .. }) => break n,
                Some(SipEvent::Answered { media: None, .. }) => {
                    // A 200 without usable SDP cannot carry the call.
                    let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                    ctx.router.remove(leg);
                    return Err(DialFailure::NoMedia);
                }
                Some(SipEvent::Failed { outcome, .. }) => {
                    ctx.router.remove(leg);
                    return Err(DialFailure::Sip(outcome));
                }
                Some(other) => debug!(event = ?other, "outbound progress"),
                None => return Err(DialFailure::NoMedia),
            },
        }
    };
    match open(ctx, ports, &neg) {
        Some(a) => Ok((leg, a, rx)),
        None => {
            let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
            ctx.router.remove(leg);
            Err(DialFailure::NoMedia)
        }
    }
}
