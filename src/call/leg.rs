//! Bringing a leg up: answering an inbound call, or dialling out through the
//! trunk, and starting its media.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

use super::{CallContext, LegRouter};
use crate::config::E164;
use crate::flows::outbound;
use crate::media::engine::{DtmfFailure, MediaEvent, MediaSession, SessionOptions};
use crate::media::ports::RtpPorts;
use crate::media::stream::Direction;
use crate::sdp::{self, Negotiated};
use crate::sip::nat::Nat;
use crate::sip::{
    DialOutcome, DialRequest, IncomingCall, LegId, Presentation, SipCommand, SipEvent,
};

/// An answered leg with media running.
pub struct Answered {
    pub session: MediaSession,
    pub media: mpsc::Receiver<MediaEvent>,
}

/// The media options of a leg on the trunk named `trunk` (its
/// `inband_dtmf`; the first trunk's when the name is unknown).
pub fn session_options(ctx: &CallContext, trunk: &str) -> SessionOptions {
    let trunk = ctx.cfg.trunk_named(trunk).unwrap_or(&ctx.cfg.trunk);
    SessionOptions {
        silence_between_prompts: ctx.cfg.media.silence_between_prompts,
        rtp_timeout: ctx.cfg.media.rtp_timeout,
        latch_window: ctx.cfg.media.latch_window,
        inband_dtmf: trunk.inband_dtmf,
        // Legs are opened inside their call's span; the session logs its quality there.
        span: tracing::Span::current(),
    }
}

fn session_id(ports: &RtpPorts, leg: LegId) -> u64 {
    (u64::from(ports.local.port()) << 20) | (leg.0 & 0xF_FFFF)
}

/// Starts the media of a leg on `trunk` whose SDP is settled; `None`
/// (logged) when the engine refuses.
pub(crate) fn open(
    ctx: &CallContext,
    ports: RtpPorts,
    neg: &Negotiated,
    trunk: &str,
) -> Option<Answered> {
    match ctx
        .engine
        .open(ports, &neg.stream, session_options(ctx, trunk))
    {
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
    let mut ports = match ctx.ports.allocate() {
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
    // The rules of the trunk the call is attributed to: c= as the caller's
    // side of its NAT sees us, and its SRTP policy for an offer of ours.
    // Behind a front proxy the media still flows straight between the
    // carrier and us, so the side is judged by the carrier's address.
    let trunk = ctx
        .cfg
        .trunk_named(&call.caller.trunk)
        .unwrap_or(&ctx.cfg.trunk);
    let local = SocketAddr::new(
        ctx.media_ip_for(&trunk.name, call.carrier_source.unwrap_or(call.source).ip()),
        ports.local.port(),
    );
    ports.announced = local;
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
            &sdp::OfferCrypto::for_policy(trunk.srtp),
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
                    Some(other) => debug!(event = %other, "event before answer"),
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
                    Some(SipEvent::Confirmed { media: Some(n), .. }) => break *n,
                    Some(SipEvent::Confirmed { media: None, .. }) => {
                        warn!("offerless call confirmed without an answer: hanging up");
                        let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                        return None;
                    }
                    Some(SipEvent::Ended { .. }) | Some(SipEvent::Cancelled(_)) | None => {
                        return None
                    }
                    Some(other) => debug!(event = %other, "event before ACK"),
                }
            }
        }
    };
    let answered = open(ctx, ports, &neg, &call.caller.trunk);
    if answered.is_none() {
        let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
    }
    answered
}

/// Our SDP offers for an outbound leg on `ports`, one per trunk in
/// `cfg.trunks` order: each with that trunk's SRTP policy and the c= its
/// NAT plan gives, so a leg that fails over to another trunk offers as
/// that trunk needs. `ports.announced` is the first trunk's until the
/// leg is placed on another.
pub fn offers(ctx: &CallContext, ports: &mut RtpPorts, leg: LegId) -> Vec<Vec<u8>> {
    let port = ports.local.port();
    let offers = ctx
        .cfg
        .trunks
        .iter()
        .map(|t| {
            sdp::build_offer(
                SocketAddr::new(offer_ip_on(ctx, t), port),
                &ctx.cfg.media.codecs,
                ctx.cfg.media.dtmf_payload_type,
                session_id(ports, leg),
                1,
                Direction::SendRecv,
                &sdp::OfferCrypto::for_policy(t.srtp),
            )
        })
        .collect();
    ports.announced = SocketAddr::new(offer_ip_on(ctx, &ctx.cfg.trunk), port);
    offers
}

/// The c= address of an offer to trunk `t` (its proxy's side of its NAT).
fn offer_ip_on(ctx: &CallContext, t: &crate::config::TrunkConfig) -> IpAddr {
    let proxy = match t.outbound_proxy.host {
        crate::config::Host::Ip(ip) => Some(ip),
        crate::config::Host::Name(_) => None,
    };
    offer_ip(ctx.nat_on(&t.name), ctx.advertise, proxy)
}

/// The c= address of an offer sent to the trunk at `trunk` (`None`: a
/// proxy written as a name, taken as outside every local network).
fn offer_ip(nat: &Nat, private: IpAddr, trunk: Option<IpAddr>) -> IpAddr {
    match trunk {
        Some(t) => nat.media_for(t, private),
        None => nat.external_media_ip().unwrap_or(private),
    }
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

/// What an outbound leg's translator reports to the leg's owner (which
/// holds the leg's [`outbound::OutboundLeg`] machine).
pub enum LegNews {
    /// The INVITE went out with this SIP Call-ID (also recorded in the
    /// leg's span as `sip_call_id`).
    CallId(String),
    /// An event for the leg's machine.
    Event(outbound::Event),
    /// Media opened for the answered leg; the owner keeps and closes it.
    Session(MediaSession),
    /// A re-INVITE/UPDATE changed the stream once media ran.
    Remote(Negotiated),
    /// A playback on the leg finished (the owner knows which id matters).
    PlaybackFinished(u64),
    /// The extension digits could not be sent (the machine's guard gives
    /// the leg up).
    DtmfFailed(DtmfFailure),
}

/// Why an outbound leg was not placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("not a user's number and not in trunk.allow_dial: not dialling it")]
    NotAllowed,
    #[error("the trunks' max_calls ({0} in all) legs are up or waiting")]
    AtCapacity(usize),
    #[error("no free RTP port")]
    NoPort,
}

/// An outbound call to place.
pub struct Placement {
    /// Whom to call; formatted for the trunk here.
    pub number: E164,
    /// Who we present as on each trunk (in `cfg.trunks` order; a shorter
    /// list repeats its last entry).
    pub from: Vec<Presentation>,
    /// The leg's span: its translator and media log inside it. Give it an
    /// empty `sip_call_id` field: the translator fills it in.
    pub span: tracing::Span,
    /// What the floor shows of the leg while it lasts.
    pub live: crate::live::LegInfo,
}

impl Placement {
    /// A call of the switch's own to `user`'s first PSTN number (the
    /// window-ended notice, the reminder), presented as `from` on every
    /// trunk and logged in the current span; `None` when the user has no
    /// number (any more: a reload may have changed them).
    pub fn to_agent(
        ctx: &CallContext,
        user: &str,
        from: String,
        kind: crate::live::LegKind,
    ) -> Option<Placement> {
        let number = ctx.cfg.user(user)?.pstn_numbers().next()?.clone();
        let target = number.as_str().to_owned();
        Some(Placement {
            number,
            from: vec![Presentation {
                from_user: from,
                diversion: None,
            }],
            span: tracing::Span::current(),
            live: crate::live::LegInfo {
                call: None,
                kind,
                agent: Some(user.to_owned()),
                target,
            },
        })
    }
}

/// Places an outbound call through the trunk and spawns the task that
/// translates its SIP and media events into [`LegNews`], sent to `inbox`
/// wrapped by `wrap`. Every outbound leg is placed here, so this is where
/// only diallable numbers ([`crate::config::Config::may_dial`]) are called and where
/// `trunk.max_outbound_calls` is enforced (through the router's count).
/// The leg's timers and rules are its owner's machine's business.
pub fn place<T: Send + 'static>(
    ctx: &Arc<CallContext>,
    p: Placement,
    inbox: mpsc::Sender<T>,
    wrap: impl Fn(LegNews) -> T + Send + 'static,
) -> Result<LegId, PlaceError> {
    if !ctx.cfg.may_dial(&p.number) {
        return Err(PlaceError::NotAllowed);
    }
    let mut ports = ctx.ports.allocate().map_err(|_| PlaceError::NoPort)?;
    let leg = LegId::next();
    // Each trunk's own max_calls is kept by the SIP core, which queues a
    // leg while every trunk is full; this total bounds what may wait.
    let cap = ctx
        .cfg
        .trunks
        .iter()
        .map(|t| t.max_outbound_calls as usize)
        .fold(0usize, usize::saturating_add);
    let sip = ctx
        .router
        .register_outbound(leg, cap)
        .ok_or(PlaceError::AtCapacity(cap))?;
    let cc = &ctx.cfg.numbering.default_country_code;
    // One user part per trunk (each has its number format and prefix); the
    // SIP core picks the trunk.
    let targets: Vec<String> = ctx
        .cfg
        .trunks
        .iter()
        .map(|t| t.dial_string(&p.number, cc))
        .collect();
    // The first trunk's form; `INVITE sent` names the trunk taken.
    let target = targets.first().map_or("", String::as_str);
    let sdp = offers(ctx, &mut ports, leg);
    info!(parent: &p.span, %target, rtp = %ports.announced, "placing an outbound call");
    let request = DialRequest {
        targets,
        from: p.from,
        sdp,
    };
    let ctx = ctx.clone();
    let send = move |news: LegNews| {
        let inbox = inbox.clone();
        let item = wrap(news);
        async move { inbox.send(item).await.is_ok() }
    };
    let listed = ctx.live.leg_started(leg.0, p.live, chrono::Utc::now());
    let task = translate(ctx, leg, ports, request, sip, send, listed);
    tokio::spawn(task.instrument(p.span));
    Ok(leg)
}

async fn translate<F, Fut>(
    ctx: Arc<CallContext>,
    leg: LegId,
    ports: RtpPorts,
    request: DialRequest,
    mut sip: mpsc::Receiver<SipEvent>,
    send: F,
    // Listed on the floor until this task ends, however it ends.
    _listed: crate::live::LegGuard,
) where
    F: Fn(LegNews) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use outbound::Event as E;
    // However the task ends, the router forgets the leg (and its slot).
    let _registered = Unregister(ctx.router.clone(), leg);
    let _counted = crate::telemetry::InProgress::outbound_leg();
    let mut heard_from_trunk = false;
    if ctx
        .commands
        .send(SipCommand::Dial { leg, request })
        .await
        .is_err()
    {
        send(LegNews::Event(E::Failed(DialOutcome::Unavailable(503)))).await;
        return;
    }
    let mut ports = Some(ports);
    let mut media: Option<mpsc::Receiver<MediaEvent>> = None;
    // The trunk of the latest INVITE: its rules apply to the leg's media.
    let mut trunk = String::new();
    loop {
        let media_ev = async {
            match media.as_mut() {
                Some(m) => m.recv().await,
                None => std::future::pending().await,
            }
        };
        let (news, last) = tokio::select! {
            ev = sip.recv() => match ev {
                Some(SipEvent::Progress { status, early_media, .. }) => {
                    let early_media = early_media.is_some();
                    (vec![LegNews::Event(E::Progress { status, early_media })], false)
                }
                Some(SipEvent::Answered { media: Some(n), .. }) => {
                    match ports.take().and_then(|p| open(&ctx, p, &n, &trunk)) {
                        Some(a) => {
                            media = Some(a.media);
                            let news = vec![
                                LegNews::Session(a.session),
                                LegNews::Event(E::Answered { media: true }),
                            ];
                            (news, false)
                        }
                        None => (vec![
                            LegNews::Event(E::Answered { media: false }),
                            LegNews::Event(E::MediaFailed),
                        ], false),
                    }
                }
                Some(SipEvent::Answered { media: None, .. }) => {
                    (vec![LegNews::Event(E::Answered { media: false })], false)
                }
                Some(SipEvent::MediaChanged { media: n, .. }) => match ports.take() {
                    // The SDP a 2xx lacked (RFC 3261 §14, RFC 3311).
                    Some(p) => match open(&ctx, p, &n, &trunk) {
                        Some(a) => {
                            media = Some(a.media);
                            (vec![LegNews::Session(a.session), LegNews::Event(E::MediaReady)], false)
                        }
                        None => (vec![LegNews::Event(E::MediaFailed)], false),
                    },
                    None => (vec![LegNews::Remote(*n)], false),
                },
                Some(SipEvent::InfoDigit { digit, .. }) => (vec![LegNews::Event(E::Digit(digit))], false),
                Some(SipEvent::Dialling { to, .. }) => {
                    let crate::sip::api::Dialled { call_id, trunk: on } = *to;
                    // What a carrier's trace of this leg is matched against
                    // (a leg that fails over gets one per trunk).
                    tracing::Span::current().record("sip_call_id", call_id.as_str());
                    // The offer on this trunk named its side of its NAT.
                    if let (Some(p), Some(t)) = (ports.as_mut(), ctx.cfg.trunk_named(&on)) {
                        p.announced = SocketAddr::new(offer_ip_on(&ctx, t), p.local.port());
                    }
                    info!(sip_call_id = %call_id, trunk = %on, rtp = %ports.as_ref().map_or_else(|| "none".to_owned(), |p| p.announced.to_string()), "INVITE sent");
                    trunk = on;
                    (vec![LegNews::CallId(call_id), LegNews::Event(E::Dialled)], false)
                }
                Some(SipEvent::Queued { .. }) => {
                    info!("every trunk is busy: the leg waits for one");
                    (vec![LegNews::Event(E::Queued)], false)
                }
                Some(SipEvent::Failed { outcome, .. }) => (vec![LegNews::Event(E::Failed(outcome))], true),
                Some(SipEvent::Ended { .. }) | None => (vec![LegNews::Event(E::Ended)], true),
                Some(other) => {
                    debug!(event = %other, "outbound leg event");
                    (Vec::new(), false)
                }
            },
            ev = media_ev => match ev {
                None => {
                    media = None;
                    (Vec::new(), false)
                }
                Some(MediaEvent::RtpStarted) => (vec![LegNews::Event(E::RtpStarted)], false),
                Some(MediaEvent::RtpTimeout) => (vec![LegNews::Event(E::RtpTimeout)], false),
                Some(MediaEvent::DigitStarted(d)) => (vec![LegNews::Event(E::Digit(d))], false),
                Some(MediaEvent::DtmfSent) => (vec![LegNews::Event(E::ExtSent)], false),
                Some(MediaEvent::PlaybackFinished(id)) => (vec![LegNews::PlaybackFinished(id)], false),
                Some(MediaEvent::DtmfFailed(why)) => (vec![LegNews::DtmfFailed(why)], false),
                Some(_) => (Vec::new(), false),
            },
        };
        // The trunk the leg's INVITE went to last (a leg that failed over
        // reports on the trunk that answered or failed it), else the first.
        let on = if trunk.is_empty() {
            ctx.cfg.trunk.name.as_str()
        } else {
            trunk.as_str()
        };
        for n in &news {
            trunk_health(n, &mut heard_from_trunk, on);
            publish(&ctx.live, leg, n, &trunk);
        }
        for n in news {
            if !send(n).await {
                // The owner is gone (shutting down): end the leg ourselves.
                let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// The leg's progress as the floor shows it.
fn publish(live: &crate::live::Live, leg: LegId, news: &LegNews, trunk: &str) {
    use crate::live::LegState;
    use outbound::Event as E;
    let now = chrono::Utc::now();
    let state = match news {
        LegNews::CallId(id) => return live.leg_dialled(leg.0, trunk, id, now),
        LegNews::Event(E::Queued) => LegState::WaitingForTrunk,
        LegNews::Event(E::Progress { .. }) => LegState::Ringing,
        LegNews::Event(E::Answered { .. }) => LegState::Answered,
        _ => return,
    };
    live.leg_state(leg.0, state, now);
}

/// What an outbound leg tells about the trunk: a provisional response or an
/// answer shows it up; a 5xx or a timeout (408) with nothing heard before
/// shows it down (RFC 3261 §16.7: a proxy that cannot reach anyone answers
/// 5xx or times out). Other final responses are the called phone's answer
/// and say the trunk works.
fn trunk_health(news: &LegNews, heard: &mut bool, trunk: &str) {
    use outbound::Event as E;
    let LegNews::Event(ev) = news else {
        return;
    };
    match ev {
        E::Progress { .. } | E::Answered { .. } => {
            *heard = true;
            crate::telemetry::trunk_up(trunk, true);
        }
        E::Failed(DialOutcome::Unavailable(_) | DialOutcome::NoAnswer(408)) if !*heard => {
            crate::telemetry::trunk_up(trunk, false);
        }
        E::Failed(DialOutcome::Cancelled) => {}
        E::Failed(_) => crate::telemetry::trunk_up(trunk, true),
        _ => {}
    }
}

struct Unregister(LegRouter, LegId);

impl Drop for Unregister {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_to_the_trunk_names_the_address_its_side_of_the_nat_reaches() {
        let private: IpAddr = "10.0.0.5".parse().unwrap();
        let nat = Nat {
            external_signaling: Some("203.0.113.10:5060".parse().unwrap()),
            external_media: Some("203.0.113.20".parse().unwrap()),
            local_networks: vec!["10.0.0.0/8".parse().unwrap()],
        };
        let inside = Some("10.1.1.1".parse().unwrap());
        let outside = Some("198.51.100.7".parse().unwrap());
        assert_eq!(offer_ip(&nat, private, inside), private);
        assert_eq!(
            offer_ip(&nat, private, outside),
            "203.0.113.20".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            offer_ip(&nat, private, None),
            "203.0.113.20".parse::<IpAddr>().unwrap()
        );
        assert_eq!(offer_ip(&Nat::default(), private, outside), private);
    }

    use outbound::Event as E;

    /// `tpswitch_trunk_up` after feeding `events` to one leg, or None when
    /// nothing set it.
    fn trunk_up_after(events: &[E]) -> Option<String> {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let mut heard = false;
            for ev in events {
                trunk_health(&LegNews::Event(ev.clone()), &mut heard, "carrier");
            }
        });
        let text = handle.render();
        text.lines()
            .find_map(|l| l.strip_prefix(r#"tpswitch_trunk_up{trunk="carrier"} "#))
            .map(str::to_owned)
    }

    #[test]
    fn the_trunk_is_down_only_when_it_failed_without_a_word() {
        let ringing = E::Progress {
            status: 180,
            early_media: false,
        };
        assert_eq!(
            trunk_up_after(std::slice::from_ref(&ringing)).as_deref(),
            Some("1")
        );
        assert_eq!(
            trunk_up_after(&[E::Failed(DialOutcome::Unavailable(503))]).as_deref(),
            Some("0")
        );
        assert_eq!(
            trunk_up_after(&[E::Failed(DialOutcome::NoAnswer(408))]).as_deref(),
            Some("0")
        );
        // The phone rang, then the carrier gave up: the trunk worked.
        assert_eq!(
            trunk_up_after(&[ringing, E::Failed(DialOutcome::NoAnswer(408))]).as_deref(),
            Some("1")
        );
        // A busy phone is the trunk's answer too.
        assert_eq!(
            trunk_up_after(&[E::Failed(DialOutcome::Busy(486))]).as_deref(),
            Some("1")
        );
        assert_eq!(trunk_up_after(&[E::Failed(DialOutcome::Cancelled)]), None);
    }
}
