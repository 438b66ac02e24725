//! The shell around each call: one tokio task per call feeds events from
//! sip/ and media/ into the call's flow and carries the flow's actions out.
//! This is the only place where the layers meet.

pub(crate) mod leg;
mod line;
mod login;
pub mod notify;
pub mod queue;
pub mod reminder;
mod router;

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::{Config, DispatchMapping, Flow};
use crate::flows::directory;
use crate::live::{CallInfo, Live};
use crate::media::engine::MediaEngine;
use crate::media::ports::PortPool;
use crate::media::prompt::PromptLibrary;
use crate::presence::service::PresenceHandle;
use crate::sip::nat::Nat;
use crate::sip::{IncomingCall, SipCommand, SipEvent};
use crate::telemetry;

pub use router::LegRouter;

/// What every call task shares. Each call holds the `Arc` it started with,
/// so a reload (a new context, see [`Current`]) never changes the rules
/// under a call in progress.
#[derive(Clone)]
pub struct CallContext {
    pub cfg: Arc<Config>,
    pub prompts: Arc<PromptLibrary>,
    pub ports: PortPool,
    pub commands: mpsc::Sender<SipCommand>,
    /// The address our SDP gives peers inside `sip.local_networks` (and
    /// every peer when no external address is configured).
    pub advertise: IpAddr,
    /// The external addresses and which peers get them.
    pub nat: Nat,
    /// The trunks with a NAT plan of their own, by name.
    pub trunk_nats: std::collections::HashMap<String, Nat>,
    pub engine: MediaEngine,
    pub presence: PresenceHandle,
    pub router: LegRouter,
    /// Answered calls for queue flows go to the one queue task.
    pub queue: queue::QueueSender,
    /// What the floor sees: every call and leg publishes its changes here.
    pub live: Live,
    /// Call and attempt events for `/api/v1/events` and webhooks.
    pub events: crate::events::EventBus,
}

impl CallContext {
    /// The NAT plan of the trunk named `trunk`: its own, else the switch's.
    pub fn nat_on(&self, trunk: &str) -> &Nat {
        self.trunk_nats.get(trunk).unwrap_or(&self.nat)
    }

    /// The RTP address our SDP gives a peer at `dest` on the trunk named
    /// `trunk` (RFC 4566 §5.7 c=).
    pub fn media_ip_for(&self, trunk: &str, dest: IpAddr) -> IpAddr {
        self.nat_on(trunk).media_for(dest, self.advertise)
    }

    /// The same switch (SIP, media, presence, router, queue) under other
    /// settings: what a reload installs.
    pub fn with_settings(&self, cfg: Arc<Config>, prompts: Arc<PromptLibrary>) -> CallContext {
        CallContext {
            cfg,
            prompts,
            ..self.clone()
        }
    }
}

/// The context new calls start with. Replaced whole by a reload; a reader
/// takes its `Arc` once (`borrow().clone()`) and holds no guard across an
/// await.
pub type Current = watch::Receiver<Arc<CallContext>>;

/// Routes SIP events to call tasks and starts a task per new call.
pub struct CallManager {
    current: Current,
    /// The router is the same in every context; kept here for shutdown.
    ctx: Arc<CallContext>,
}

impl CallManager {
    pub fn new(current: Current) -> Self {
        let ctx = current.borrow().clone();
        Self { current, ctx }
    }

    pub async fn run(self, mut events: mpsc::Receiver<SipEvent>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    self.dispatch(ev);
                }
            }
        }
        // Shutdown: end every call cleanly (BYE / 480 / CANCEL).
        for leg in self.ctx.router.legs() {
            let _ = self.ctx.commands.try_send(SipCommand::HangUp(leg));
        }
    }

    fn dispatch(&self, ev: SipEvent) {
        let SipEvent::Incoming(call) = ev else {
            self.ctx.router.route(ev);
            return;
        };
        let leg = call.leg;
        let rx = self.ctx.router.register(leg);
        let ctx = self.current.borrow().clone();
        // Read once, with the matcher the SIP core's 404 check uses. The
        // call keeps its mapping and flow as places in the configuration
        // its task holds anyway (`ctx.cfg`, the one in force now: a reload
        // does not change a call under way), not as copies: a flow is
        // 832 bytes, and a copy per call was the largest piece of a held
        // call's task after its future (issue 15).
        let route = CallRoute::of(&ctx.cfg, &call.called);
        let mapping = route.and_then(|r| r.mapping(&ctx.cfg));
        let flow = route.and_then(|r| r.flow(&ctx.cfg));
        let span = info_span!(
            "call",
            call_id = %call.call_id,
            leg = %leg,
            flow = %flow.map(|f| f.name()).unwrap_or("-"),
            trunk = %call.caller.trunk,
            // The carrier's address, also behind a front proxy that names
            // it (trunk.source_header).
            source = %call.carrier_source.unwrap_or(call.source),
            caller = %call.caller.asserted.as_deref().or(call.caller.from_user.as_deref()).unwrap_or("?"),
            agent = tracing::field::Empty,
        );
        let flow_name = flow.map(|f| f.name()).unwrap_or("-").to_owned();
        let info = CallInfo {
            call_id: call.call_id.clone(),
            flow: flow_name.clone(),
            caller: caller_words(&directory::caller_number(&ctx.cfg, &call.caller)),
            contact_point: mapping.map_or_else(
                || call.called.clone(),
                |m| m.phone_number.as_str().to_owned(),
            ),
        };
        tokio::spawn(
            async move {
                // Counted and listed for as long as the task holds the leg,
                // however it ends.
                let _call = telemetry::InProgress::call(&flow_name);
                let _leg = telemetry::InProgress::inbound_leg();
                let _live = ctx.live.call_started(leg.0, info, chrono::Utc::now());
                run_call(&ctx, call, route, rx).await;
                ctx.router.remove(leg);
            }
            .instrument(span),
        );
    }
}

/// The caller as the call log writes it: the number, "anonymous" when
/// withheld, or what was sent when it is not a number.
pub(crate) fn caller_words(c: &directory::CallerNumber) -> String {
    match c {
        directory::CallerNumber::Number(n) => n.as_str().to_owned(),
        directory::CallerNumber::Withheld => "anonymous".to_owned(),
        directory::CallerNumber::NotANumber(s) => s.clone(),
    }
}

/// Where a call goes: its dispatch mapping and that mapping's flow, as
/// indices into `CallContext::cfg` (the configuration the call's task holds).
#[derive(Clone, Copy)]
struct CallRoute {
    mapping: usize,
    flow: Option<usize>,
}

impl CallRoute {
    /// The route of a call to `called` in `cfg`: the mapping found with the
    /// matcher the SIP core's 404 check uses, and the flow it names.
    fn of(cfg: &Config, called: &str) -> Option<Self> {
        let m = directory::called_mapping(cfg, called)?;
        Some(CallRoute {
            mapping: index_in(&cfg.dispatch_mappings, m)?,
            flow: cfg.flow(&m.flow).and_then(|f| index_in(&cfg.flows, f)),
        })
    }

    /// Read from the configuration the route was made in.
    fn mapping<'a>(&self, cfg: &'a Config) -> Option<&'a DispatchMapping> {
        cfg.dispatch_mappings.get(self.mapping)
    }

    fn flow<'a>(&self, cfg: &'a Config) -> Option<&'a Flow> {
        cfg.flows.get(self.flow?)
    }
}

/// Where `item`, borrowed from `items`, stands in it (by address).
fn index_in<T>(items: &[T], item: &T) -> Option<usize> {
    items.iter().position(|x| std::ptr::eq(x, item))
}

/// One inbound call from answer to hang-up.
async fn run_call(
    ctx: &Arc<CallContext>,
    call: Box<IncomingCall>,
    route: Option<CallRoute>,
    mut rx: mpsc::Receiver<SipEvent>,
) {
    let mapping = route.and_then(|r| r.mapping(&ctx.cfg));
    let flow = route.and_then(|r| r.flow(&ctx.cfg));
    match call.carrier_source {
        Some(carrier) => {
            info!(called = %call.called, source = %carrier, proxy = %call.source, "incoming call")
        }
        None => info!(called = %call.called, source = %call.source, "incoming call"),
    }
    if mapping.is_none() {
        // The SIP core found a mapping a moment ago; a reload removed it
        // since. Answering would leave the caller in silence: 404, as the
        // core would now say.
        info!("no dispatch mapping any more (reloaded): 404");
        let _ = ctx
            .commands
            .send(SipCommand::Reject {
                leg: call.leg,
                status: 404,
            })
            .await;
        return;
    }
    let Some(answered) = leg::answer(ctx, &call, &mut rx).await else {
        return;
    };
    match (flow, mapping) {
        (Some(Flow::TimedPresence(tp)), _) => login::run(ctx, &call, tp, answered, rx).await,
        (Some(Flow::Queue(q)), Some(m)) => {
            let (flow, number) = (q.name.clone(), m.phone_number.clone());
            to_queue(ctx, &call, flow, number, answered, rx).await
        }
        _ => silent(&mut rx).await,
    }
}

/// Hands an answered customer call to the queue task and waits until the
/// queue is done with the leg (the leg stays registered until then).
async fn to_queue(
    ctx: &Arc<CallContext>,
    call: &IncomingCall,
    flow: String,
    contact_point: crate::config::E164,
    answered: leg::Answered,
    rx: mpsc::Receiver<SipEvent>,
) {
    let (done, finished) = tokio::sync::oneshot::channel();
    let handoff = queue::Handoff {
        leg: call.leg,
        call_id: call.call_id.clone(),
        flow,
        caller: directory::caller_number(&ctx.cfg, &call.caller),
        contact_point,
        answered,
        sip: rx,
        done,
    };
    if ctx
        .queue
        .send(queue::Arrival::Customer(handoff))
        .await
        .is_err()
    {
        warn!("the queue task has stopped: hanging up");
        let _ = ctx.commands.send(SipCommand::HangUp(call.leg)).await;
        return;
    }
    let _ = finished.await;
}

/// Holds the call until it ends.
async fn silent(rx: &mut mpsc::Receiver<SipEvent>) {
    while let Some(ev) = rx.recv().await {
        match ev {
            SipEvent::Ended { cause, .. } => {
                info!(cause = %cause, "call ended");
                return;
            }
            SipEvent::Cancelled(_) => {
                info!("call cancelled");
                return;
            }
            other => debug!(event = %other, "call event"),
        }
    }
}
