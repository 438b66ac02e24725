//! The shell around the customer queues: ONE task per switch owns the
//! sans-IO [`QueueEngine`] (agents are shared between queues, so "who gets
//! the agent who just became free" is decided in one place), feeds it what
//! the legs and the presence service report, and carries out its actions.
//!
//! - Customer calls arrive answered (by `leg::answer`) as a [`Handoff`].
//! - Every leg has a small forwarding task (`legs.rs`) that tags its SIP and
//!   media events with the call/attempt and sends them into one bounded
//!   inbox; this task owns the media sessions and bridges.
//! - Store records and presence writes go through one ordered writer task
//!   (`writer.rs`), so a slow disk never stalls routing.

mod actions;
mod legs;
mod lines;
mod writer;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Span};

use self::legs::{Input, LegEvent};
pub use self::lines::{LineHandoff, LinePrompts, LineReminder};
use self::writer::Write;
pub use self::writer::{ClusterNews, NewsSender};
use super::leg::{Answered, LegNews};
use super::CallContext;
use crate::config::E164;
use crate::flows::directory::CallerNumber;
use crate::flows::queue::{
    queues_from_config, AgentState, AttemptId, EngineSettings, Event, LegEvent as OutboundEvent,
    PromptName, QueueEngine,
};
use crate::media::engine::{BridgeHandle, MediaEvent, MediaSession};
use crate::presence::agent_state::Activity;
use crate::presence::service::PresenceEvent;
use crate::presence::{NewCall, PresenceStore, Store};
use crate::routing::{AgentBoard, AgentProfile, CallId};
use crate::sip::{LegId, SipCommand, SipEvent};
use crate::telemetry;

/// Answered customer calls waiting to be taken by the queue task.
pub const HANDOFF_QUEUE: usize = 256;
/// The shortest hold after a refused claim before the agent is claimed again.
const CLAIM_RECHECK: Duration = Duration::from_millis(250);
/// Leg events waiting for the queue task (all legs together).
const INBOX: usize = 4096;

/// An answered customer call for a queue flow.
pub struct Handoff {
    pub leg: LegId,
    /// SIP Call-ID of the customer leg (for the record and the logs).
    pub call_id: String,
    /// The queue flow's name.
    pub flow: String,
    pub caller: CallerNumber,
    /// The number the customer dialled.
    pub contact_point: E164,
    pub answered: Answered,
    pub sip: mpsc::Receiver<SipEvent>,
    /// Dropped when the queue is done with the leg: the call task then
    /// unregisters it.
    pub done: oneshot::Sender<()>,
}

/// What comes to the queue task: a customer, or a nailed-up agent's line.
pub enum Arrival {
    Customer(Handoff),
    Line(LineHandoff),
}

pub type QueueSender = mpsc::Sender<Arrival>;

pub fn channel() -> (QueueSender, mpsc::Receiver<Arrival>) {
    mpsc::channel(HANDOFF_QUEUE)
}

struct Customer {
    leg: LegId,
    session: MediaSession,
    bridge: Option<BridgeHandle>,
    span: Span,
    caller: CallerNumber,
    contact_point: E164,
    /// The playback whose end matters (hold-music replay, or hang-up).
    playing: Option<u64>,
    /// Replayed whenever `playing` finishes.
    looped: Vec<PromptName>,
    hang_up_after_play: bool,
    /// The engine is done with the call; it only waits for the BYE to finish.
    gone: bool,
}

impl Customer {
    /// Ends the customer's media for a hang-up and gives the leg to send
    /// the BYE on: RFC 3261 §15.1.1 ends the session as the BYE goes out,
    /// not when its 200 comes back (seconds later on a lossy path).
    fn end_media(&mut self) -> LegId {
        self.bridge = None;
        self.session.close();
        self.leg
    }
}

/// An outbound leg of the engine: an agent's, or the overflow number's.
struct AgentLeg {
    leg: LegId,
    /// The agent's user id, or the overflow number (for the log).
    who: String,
    session: Option<MediaSession>,
    whisper: Option<u64>,
}

pub(super) struct Shell {
    ctx: Arc<CallContext>,
    engine: QueueEngine,
    customers: HashMap<CallId, Customer>,
    agents: HashMap<AttemptId, AgentLeg>,
    /// The SIP Call-ID of each leg, until its attempt (or, for an overflow
    /// leg, which has none, its customer's call) is recorded.
    sip_call_ids: HashMap<AttemptId, (CallId, String)>,
    inbox: mpsc::Sender<Input>,
    writes: mpsc::Sender<Write>,
    /// Events produced while carrying out actions, fed after the drain.
    pending: VecDeque<Event>,
    next_play: u64,
    /// Customers counted in `tpswitch_queue_waiting`, with their queue,
    /// until they are bridged or their call is recorded.
    waiting: HashMap<CallId, String>,
    /// Each agent's state as last counted in `tpswitch_agents`.
    agent_states: HashMap<String, &'static str>,
    /// Agents set not responding here (or found so at start): an offline
    /// board state counts as `not_responding` for them until the mark is
    /// cleared or they come online.
    not_responding: HashSet<String>,
    /// Nailed-up lines, by agent.
    lines: HashMap<String, lines::Line>,
    /// Offers on a line: attempt -> agent.
    line_attempts: HashMap<AttemptId, String>,
}

/// Runs the queues until `cancel`. `presence_events` should be subscribed
/// before the presence service starts, so no change is missed.
/// What the queue task needs when several nodes share the store: it
/// claims every agent before ringing them, and hears of other nodes'
/// releases on `news`.
pub struct Shared {
    pub store: crate::presence::PgStore,
    /// `store.claim_lease`.
    pub lease: Duration,
    pub news_tx: NewsSender,
    pub news: mpsc::UnboundedReceiver<ClusterNews>,
}

/// A channel for [`Shared::news`]: the cluster task sends other nodes'
/// releases on the sender.
pub fn news_channel() -> (NewsSender, mpsc::UnboundedReceiver<ClusterNews>) {
    mpsc::unbounded_channel()
}

pub async fn run(
    mut current: super::Current,
    store: Store,
    mut handoffs: mpsc::Receiver<Arrival>,
    mut presence_events: broadcast::Receiver<PresenceEvent>,
    shared: Option<Shared>,
    cancel: CancellationToken,
) {
    let ctx = current.borrow_and_update().clone();
    let cfg = ctx.cfg.clone();
    let engine = QueueEngine::new(
        queues_from_config(&cfg),
        AgentBoard::from_users(&cfg.users),
        EngineSettings {
            claims: shared.is_some(),
            ..EngineSettings::default()
        },
    );
    let (claims, mut news) = match shared {
        Some(s) => (
            Some(writer::Claims {
                store: s.store,
                lease: s.lease,
                news: s.news_tx,
            }),
            s.news,
        ),
        // Never sent on: the receiver only keeps the loop's shape.
        None => (None, mpsc::unbounded_channel().1),
    };
    let (inbox, mut inbox_rx) = mpsc::channel(INBOX);
    let (writes, writes_rx) = mpsc::channel(writer::WRITE_QUEUE);
    // Agents left not responding by an earlier run (or another node):
    // counted as such until they call in.
    let marked: HashSet<String> = match store.all_not_responding().await {
        Ok(all) => all.into_iter().map(|n| n.user).collect(),
        Err(e) => {
            warn!(error = %e, "queue: cannot read the not-responding agents");
            HashSet::new()
        }
    };
    let writer = tokio::spawn(writer::run(
        store,
        ctx.presence.clone(),
        ctx.events.clone(),
        writes_rx,
        claims,
    ));
    let mut shell = Shell {
        ctx,
        engine,
        customers: HashMap::new(),
        agents: HashMap::new(),
        sip_call_ids: HashMap::new(),
        inbox,
        writes,
        pending: VecDeque::new(),
        next_play: 1,
        waiting: HashMap::new(),
        agent_states: HashMap::new(),
        not_responding: HashSet::new(),
        lines: HashMap::new(),
        line_attempts: HashMap::new(),
    };
    // Every agent starts offline on the board, as in the engine.
    for u in &cfg.users {
        let label = if marked.contains(&u.id) {
            shell.not_responding.insert(u.id.clone());
            "not_responding"
        } else {
            "offline"
        };
        telemetry::agent_state(None, label);
        shell.agent_states.insert(u.id.clone(), label);
    }
    shell.seed(&cfg.users).await;
    let far = Duration::from_secs(3600);
    loop {
        shell.drain().await;
        let deadline = shell
            .engine
            .deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + far);
        tokio::select! {
            _ = cancel.cancelled() => break,
            h = handoffs.recv() => match h {
                Some(Arrival::Customer(h)) => shell.arrive(h).await,
                Some(Arrival::Line(h)) => shell.line_arrived(h).await,
                None => break,
            },
            Some(input) = inbox_rx.recv() => shell.input(input).await,
            Some(n) = news.recv() => shell.cluster_news(n),
            ev = presence_events.recv() => match ev {
                Ok(ev) => shell.presence(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "queue: presence events lagged; agent states may be stale");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tokio::time::sleep_until(deadline) => shell.feed(Event::Timer),
            // A reload: legs placed from now on dial, whisper and play
            // under the new settings (trunk.allow_dial, number format,
            // prompts), and the engine takes the new queue rules and agent
            // profiles for its next offer.
            Ok(()) = current.changed() => {
                let ctx = current.borrow_and_update().clone();
                shell.feed(Event::Reconfigure {
                    queues: queues_from_config(&ctx.cfg),
                    agents: ctx.cfg.users.iter().map(AgentProfile::from_user).collect(),
                });
                shell.ctx = ctx;
            }
        }
    }
    // Shutdown: end every call here, so each is recorded as ended by the
    // switch and its legs are hung up while SIP still runs; then let the
    // last records reach the store.
    if cancel.is_cancelled() {
        shell.feed(Event::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(1), shell.drain()).await;
        // Lines too get their BYE now: once dropped here their call tasks
        // end and unregister them, and the call manager's last round of
        // hang-ups would no longer see them.
        shell.shut_lines().await;
    }
    drop(shell);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

impl Shell {
    /// Agents online before the switch started (or before this task did).
    async fn seed(&mut self, users: &[crate::config::User]) {
        let now = chrono::Utc::now();
        for u in users {
            match self.ctx.presence.current(&u.id).await {
                Ok(Some(w)) if w.is_active(now) => self.feed(Event::AgentOnline {
                    user: u.id.clone(),
                    until: w.end,
                }),
                Ok(_) => {}
                Err(e) => warn!(agent = %u.id, error = %e, "queue: cannot read presence"),
            }
        }
    }

    fn feed(&mut self, ev: Event) {
        self.engine.handle(ev, Instant::now());
    }

    /// Carries out every action, including those caused by events the
    /// actions themselves produced (a dial refused at once, say).
    async fn drain(&mut self) {
        loop {
            while let Some(action) = self.engine.poll_action() {
                self.perform(action).await;
            }
            while let Some((user, state)) = self.engine.poll_agent_change() {
                let to = match state {
                    AgentState::Offline if self.not_responding.contains(&user) => "not_responding",
                    AgentState::Offline => "offline",
                    _ => {
                        self.not_responding.remove(&user);
                        state_label(&state)
                    }
                };
                let from = self.agent_states.insert(user.clone(), to);
                if from != Some(to) {
                    telemetry::agent_state(from, to);
                }
                let now = Instant::now();
                let (activity, wrap_up) = match state {
                    // Ringing counts as busy: a window must not close under
                    // an offer (the presence service defers it).
                    AgentState::Offered(_) | AgentState::Busy(_) => {
                        (Activity::Busy, Duration::ZERO)
                    }
                    AgentState::WrapUp { until } => {
                        (Activity::WrapUp, until.saturating_duration_since(now))
                    }
                    AgentState::Available | AgentState::Offline | AgentState::NoLine => {
                        (Activity::Idle, Duration::ZERO)
                    }
                    // Another node's: it writes the agent's activity.
                    AgentState::Elsewhere { .. } => continue,
                };
                debug!(agent = %user, activity = activity.as_str(), "queue: agent state");
                let misses = self.engine.board().misses(&user).unwrap_or(0);
                self.write(Write::Activity {
                    user,
                    activity,
                    wrap_up,
                    misses,
                })
                .await;
            }
            match self.pending.pop_front() {
                Some(ev) => self.feed(ev),
                None => break,
            }
        }
    }

    /// The customer no longer waits (bridged, or gone): one fewer in the gauge.
    fn stop_waiting(&mut self, call: CallId) {
        if let Some(queue) = self.waiting.remove(&call) {
            telemetry::queue_waiting(&queue, -1.0);
        }
    }

    async fn write(&self, w: Write) {
        if self.writes.send(w).await.is_err() {
            warn!("queue: the record writer has stopped");
        }
    }

    fn play_id(&mut self) -> u64 {
        self.next_play += 1;
        self.next_play
    }

    async fn arrive(&mut self, h: Handoff) {
        let call = CallId(h.leg.0);
        let caller = super::caller_words(&h.caller);
        let span = info_span!(
            "queue_call",
            call_id = %h.call_id,
            flow = %h.flow,
            caller = %caller,
        );
        let Some(queue) = self.engine.queue_id(&h.flow) else {
            warn!(parent: &span, "no queue for this flow: hanging up");
            let _ = self.ctx.commands.send(SipCommand::HangUp(h.leg)).await;
            return;
        };
        info!(parent: &span, "customer queued");
        self.ctx.live.queued(call.0, &h.flow, chrono::Utc::now());
        telemetry::queue_waiting(&h.flow, 1.0);
        self.waiting.insert(call, h.flow.clone());
        let Answered { session, media } = h.answered;
        legs::forward_customer(call, h.sip, media, self.inbox.clone(), h.done);
        self.customers.insert(
            call,
            Customer {
                leg: h.leg,
                session,
                bridge: None,
                span,
                caller: h.caller,
                contact_point: h.contact_point.clone(),
                playing: None,
                looped: Vec::new(),
                hang_up_after_play: false,
                gone: false,
            },
        );
        let started_at = chrono::Utc::now();
        let row = NewCall {
            call_id: h.call_id,
            flow: h.flow,
            customer_number: caller,
            contact_point: h.contact_point.as_str().to_owned(),
            started_at,
            // Queue calls are answered before they are queued.
            answered_at: Some(started_at),
        };
        self.write(Write::CallStarted { call, row }).await;
        self.feed(Event::CustomerArrived { call, queue });
    }

    async fn input(&mut self, input: Input) {
        match input {
            Input::Customer { call, ev } => self.customer_event(call, ev).await,
            Input::Leg {
                call,
                attempt,
                news,
            } => self.leg_news(call, attempt, news),
            Input::Line { user, leg, ev } => self.line_event(user, leg, ev).await,
            Input::LineExtended { user, leg, result } => self.line_extended(user, leg, result),
        }
    }

    async fn customer_event(&mut self, call: CallId, ev: LegEvent) {
        let Some(c) = self.customers.get_mut(&call) else {
            return;
        };
        match ev {
            LegEvent::Sip(SipEvent::Ended { cause, .. }) => {
                info!(parent: &c.span, cause = %cause, "customer leg ended");
                self.customer_gone(call).await;
            }
            LegEvent::Sip(SipEvent::Cancelled(_)) => self.customer_gone(call).await,
            LegEvent::Sip(SipEvent::MediaChanged { media, .. }) => {
                let _ = c.session.update_remote(&media.stream);
            }
            // Keys a waiting customer presses change nothing in a queue; they
            // are reported for the record (and for RFC 4733 interop checks).
            LegEvent::Sip(SipEvent::InfoDigit { digit, .. }) => {
                info!(parent: &c.span, digit = %digit, via = "info", "dtmf");
            }
            LegEvent::Media(MediaEvent::DigitStarted(digit)) => {
                info!(parent: &c.span, digit = %digit, "dtmf");
            }
            LegEvent::Sip(_) => {}
            LegEvent::Media(MediaEvent::PlaybackFinished(id)) if c.playing == Some(id) => {
                if c.hang_up_after_play {
                    c.playing = None;
                    let leg = c.end_media();
                    let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                } else if !c.looped.is_empty() {
                    let clips = c.looped.clone();
                    self.play_customer(call, &clips);
                }
            }
            LegEvent::Media(MediaEvent::RtpTimeout) => {
                warn!(parent: &c.span, "no RTP from the customer: hanging up");
                let leg = c.end_media();
                let _ = self.ctx.commands.send(SipCommand::HangUp(leg)).await;
                if !std::mem::replace(&mut c.gone, true) {
                    self.feed(Event::CustomerHungUp { call });
                }
            }
            LegEvent::Media(_) => {}
        }
    }

    /// The customer's leg is over: forget it (its media closes) and tell
    /// the engine unless the engine ended it.
    async fn customer_gone(&mut self, call: CallId) {
        if let Some(c) = self.customers.remove(&call) {
            if !c.gone {
                self.feed(Event::CustomerHungUp { call });
            }
        }
    }

    /// What an outbound leg's translator reports: media bookkeeping stays
    /// here, every event goes to the engine's leg machine.
    fn leg_news(&mut self, call: CallId, attempt: AttemptId, news: LegNews) {
        if let LegNews::CallId(id) = news {
            self.sip_call_ids.insert(attempt, (call, id));
            return;
        }
        let Some(a) = self.agents.get_mut(&attempt) else {
            if let LegNews::Session(s) = news {
                s.close();
            }
            return;
        };
        let event = match news {
            LegNews::Session(s) => {
                if let Some(old) = a.session.replace(s) {
                    old.close();
                }
                return;
            }
            LegNews::Remote(n) => {
                if let Some(s) = &a.session {
                    let _ = s.update_remote(&n.stream);
                }
                return;
            }
            LegNews::PlaybackFinished(id) => {
                if a.whisper != Some(id) {
                    return;
                }
                a.whisper = None;
                OutboundEvent::PlaybackFinished
            }
            LegNews::DtmfFailed(why) => {
                // The leg machine's guard gives the attempt up.
                warn!(agent = %a.who, %why, "cannot send the extension digits");
                return;
            }
            LegNews::Event(ev) => ev,
            LegNews::CallId(_) => return,
        };
        if let OutboundEvent::Digit(digit) = event {
            info!(agent = %a.who, %digit, "agent key");
        }
        if matches!(event, OutboundEvent::Failed(_) | OutboundEvent::Ended) {
            // The leg is over on the SIP side; its media goes with it.
            if let Some(s) = self.agents.remove(&attempt).and_then(|a| a.session) {
                s.close();
            }
        }
        self.feed(Event::Leg {
            call,
            attempt,
            event,
        });
    }

    fn cluster_news(&mut self, news: ClusterNews) {
        let ev = match news {
            ClusterNews::Claim {
                attempt,
                granted: Ok(misses),
            } => Event::ClaimGranted {
                attempt,
                misses: Some(misses),
            },
            ClusterNews::Claim {
                attempt,
                granted: Err(hold),
            } => Event::ClaimRefused {
                attempt,
                // Not sooner than this: a holder that renews is asked again
                // at most a few times a second.
                until: Instant::now() + hold.max(CLAIM_RECHECK),
            },
            ClusterNews::Freed { user } => Event::AgentFreedElsewhere { user },
        };
        self.feed(ev);
    }

    fn presence(&mut self, ev: PresenceEvent) {
        // A reminder changes nothing the queue knows; for an agent on a
        // nailed-up line here it is said on the line.
        if let PresenceEvent::Remind { user, end } = &ev {
            self.remind_on_line(user, *end);
            return;
        }
        // Another node's change is counted by that node.
        let counted = match &ev {
            PresenceEvent::Online { .. } => Some("online"),
            PresenceEvent::Offline { .. } => Some("offline"),
            PresenceEvent::ForcedOffline { .. } => Some("forced_offline"),
            PresenceEvent::NotResponding { .. } => Some("not_responding"),
            PresenceEvent::Responding { .. } => Some("responding"),
            PresenceEvent::Expired { .. } => Some("expired"),
            PresenceEvent::Synced { .. } | PresenceEvent::Remind { .. } => None,
        };
        if let Some(reason) = counted {
            telemetry::presence_changed(reason);
        }
        let ev = match ev {
            // Opened or moved through another node.
            PresenceEvent::Synced {
                user,
                window: Some(w),
            } if w.is_active(chrono::Utc::now()) => Event::AgentOnline { user, until: w.end },
            // Closed through another node (or not yet begun): as an end,
            // so a call here in progress finishes first.
            PresenceEvent::Synced { user, .. } => Event::WindowEnded { user },
            PresenceEvent::Online { user, window, .. } => Event::AgentOnline {
                user,
                until: window.end,
            },
            PresenceEvent::Offline { user, .. }
            | PresenceEvent::ForcedOffline { user, .. }
            | PresenceEvent::NotResponding { user, .. } => Event::AgentOffline { user },
            // The mark only: the agent is offline until they choose a window.
            PresenceEvent::Responding { user, .. } => {
                self.not_responding_cleared(&user);
                return;
            }
            PresenceEvent::Expired { user, .. } => Event::WindowEnded { user },
            PresenceEvent::Remind { .. } => return,
        };
        self.feed(ev);
    }

    /// The not-responding mark is cleared (the agent called in, or a
    /// supervisor acted): an offline agent counts as offline again.
    fn not_responding_cleared(&mut self, user: &str) {
        if self.not_responding.remove(user)
            && self.agent_states.get(user) == Some(&"not_responding")
        {
            self.agent_states.insert(user.to_owned(), "offline");
            telemetry::agent_state(Some("not_responding"), "offline");
        }
    }
}

/// The word `tpswitch_agents{state}` uses for an agent's queue state.
fn state_label(state: &AgentState) -> &'static str {
    match state {
        AgentState::Offline => "offline",
        AgentState::Available => "available",
        AgentState::Offered(_) => "ringing",
        AgentState::Busy(_) => "busy",
        AgentState::WrapUp { .. } => "wrap_up",
        AgentState::Elsewhere { .. } => "elsewhere",
        AgentState::NoLine => "no_line",
    }
}
