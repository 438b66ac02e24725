//! The shell around each call: one tokio task per call feeds events from
//! sip/ and media/ into the call's flow and carries the flow's actions out.
//! This is the only place where the layers meet.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::{Config, Flow, E164};
use crate::media::ports::PortPool;
use crate::media::prompt::PromptLibrary;
use crate::sip::{sdp, IncomingCall, LegId, SipCommand, SipEvent};

/// What every call task shares.
pub struct CallContext {
    pub cfg: Arc<Config>,
    pub prompts: Arc<PromptLibrary>,
    pub ports: PortPool,
    pub commands: mpsc::Sender<SipCommand>,
    /// The address our SDP advertises.
    pub advertise: IpAddr,
}

/// Events for one call; bounded so a runaway peer cannot grow it.
const CALL_QUEUE: usize = 64;

/// Routes SIP events to call tasks and starts a task per new call.
pub struct CallManager {
    ctx: Arc<CallContext>,
    calls: HashMap<LegId, mpsc::Sender<SipEvent>>,
}

impl CallManager {
    pub fn new(ctx: Arc<CallContext>) -> Self {
        Self {
            ctx,
            calls: HashMap::new(),
        }
    }

    pub async fn run(mut self, mut events: mpsc::Receiver<SipEvent>, cancel: CancellationToken) {
        let (done_tx, mut done_rx) = mpsc::channel::<LegId>(1024);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(leg) = done_rx.recv() => {
                    self.calls.remove(&leg);
                }
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    self.dispatch(ev, &done_tx);
                }
            }
        }
        // Shutdown: end every call cleanly (BYE / 480).
        for leg in self.calls.keys() {
            let _ = self.ctx.commands.try_send(SipCommand::HangUp(*leg));
        }
    }

    fn dispatch(&mut self, ev: SipEvent, done: &mpsc::Sender<LegId>) {
        let leg = ev.leg();
        if let SipEvent::Incoming(call) = ev {
            let (tx, rx) = mpsc::channel(CALL_QUEUE);
            self.calls.insert(leg, tx);
            let ctx = self.ctx.clone();
            let done = done.clone();
            let flow = flow_name(&ctx.cfg, &call.called).unwrap_or_default();
            let span = info_span!(
                "call",
                call_id = %call.call_id,
                leg = %leg,
                flow = %flow,
                caller = %call.caller.asserted.as_deref().or(call.caller.from_user.as_deref()).unwrap_or("?"),
                agent = tracing::field::Empty,
            );
            tokio::spawn(
                async move {
                    run_call(ctx, *call, rx).await;
                    let _ = done.send(leg).await;
                }
                .instrument(span),
            );
            return;
        }
        let ended = matches!(ev, SipEvent::Ended { .. } | SipEvent::Cancelled(_));
        match self.calls.get(&leg) {
            Some(tx) => {
                if let Err(e) = tx.try_send(ev) {
                    warn!(leg = %leg, error = %e, "call task not keeping up; event dropped");
                }
            }
            None => debug!(leg = %leg, "event for a call that is gone"),
        }
        if ended {
            self.calls.remove(&leg);
        }
    }
}

/// The flow a called number maps to.
fn flow_name(cfg: &Config, called: &str) -> Option<String> {
    let n = E164::parse(called, &cfg.numbering.default_country_code).ok()?;
    let m = cfg.mapping_for(&n)?;
    cfg.flow(&m.flow).map(|f| f.name().to_owned())
}

/// One inbound call from answer to hang-up.
async fn run_call(ctx: Arc<CallContext>, call: IncomingCall, mut rx: mpsc::Receiver<SipEvent>) {
    let leg = call.leg;
    let flow = flow_name(&ctx.cfg, &call.called).and_then(|n| ctx.cfg.flow(&n).cloned());
    info!(called = %call.called, source = %call.source, "incoming call");
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
            return;
        }
    };
    let local = SocketAddr::new(ctx.advertise, ports.local.port());
    let session_id = u64::from(ports.local.port()) << 20 | (leg.0 & 0xFFFFF);
    let codecs = crate::app::codecs_of(&ctx.cfg);
    let body = match &call.media {
        Some(neg) => sdp::build_answer(neg, local, session_id, 1),
        // Offerless INVITE: we offer in the 200, the answer comes in the ACK.
        None => sdp::build_offer(
            local,
            &codecs,
            ctx.cfg.media.dtmf_payload_type,
            session_id,
            1,
            sdp::Direction::SendRecv,
        ),
    };
    let delay = ctx.cfg.sip.answer_delay;
    if !delay.is_zero() {
        // Ringback first; a CANCEL or BYE meanwhile ends the call.
        let _ = ctx.commands.send(SipCommand::Ringing(leg)).await;
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                ev = rx.recv() => match ev {
                    Some(SipEvent::Cancelled(_)) | Some(SipEvent::Ended { .. }) | None => {
                        info!("caller gave up before answer");
                        return;
                    }
                    Some(other) => debug!(event = ?other, "event before answer"),
                },
            }
        }
    }
    if ctx
        .commands
        .send(SipCommand::Answer { leg, sdp: body })
        .await
        .is_err()
    {
        return;
    }
    match flow {
        // The flows plug in here; until a flow drives the call, an answered
        // call stays up, silent, until either side hangs up.
        Some(Flow::TimedPresence(_)) | Some(Flow::Queue(_)) | None => {
            silent(&mut rx).await;
        }
    }
    drop(ports);
}

/// Holds the call until it ends.
async fn silent(rx: &mut mpsc::Receiver<SipEvent>) {
    while let Some(ev) = rx.recv().await {
        match ev {
            SipEvent::Ended { cause, .. } => {
                info!(?cause, "call ended");
                return;
            }
            SipEvent::Cancelled(_) => {
                info!("call cancelled");
                return;
            }
            other => debug!(event = ?other, "call event"),
        }
    }
}
