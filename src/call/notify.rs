//! "Your presence window has ended": when a window ends (or an agent is set
//! offline for missed calls), call the agent's PSTN number through the trunk,
//! play Offline, hang up. One attempt, `presence.expiry_notification_ring`
//! of ringing, never while the agent is on a call (the presence service
//! defers the expiry until the call ends).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use super::leg::{self, DialFailure};
use super::CallContext;
use crate::config::{Extension, Flow};
use crate::media::engine::MediaEvent;
use crate::presence::service::PresenceEvent;
use crate::sip::{SipCommand, SipEvent};

/// The timed-presence flow whose settings govern notifications, with the
/// contact point agents call it on (our caller ID toward the agent).
fn notifying_flow(ctx: &CallContext) -> Option<(String, String)> {
    ctx.cfg.flows.iter().find_map(|f| match f {
        Flow::TimedPresence(tp) if tp.notify_on_expiry => {
            let number = ctx
                .cfg
                .dispatch_mappings
                .iter()
                .find(|m| m.flow == tp.name)
                .map(|m| m.phone_number.as_str().to_owned())?;
            Some((tp.prompts.offline.name.clone(), number))
        }
        _ => None,
    })
}

pub async fn run(
    ctx: Arc<CallContext>,
    mut events: broadcast::Receiver<PresenceEvent>,
    cancel: CancellationToken,
) {
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = events.recv() => ev,
        };
        let (user, why) = match ev {
            Ok(PresenceEvent::Expired {
                user,
                while_down: false,
                ..
            }) => (user, "window ended"),
            Ok(PresenceEvent::ForcedOffline { user, .. }) => (user, "set offline"),
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "presence notifications lagged");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some((prompt, from)) = notifying_flow(&ctx) else {
            continue;
        };
        let ctx = ctx.clone();
        let span = info_span!("notify", agent = %user, reason = why);
        tokio::spawn(async move { notify(&ctx, &user, &prompt, from).await }.instrument(span));
    }
}

async fn notify(ctx: &Arc<CallContext>, user: &str, prompt: &str, from: String) {
    let Some(number) = ctx.cfg.user(user).and_then(|u| {
        u.extensions
            .iter()
            .map(|e| match e {
                Extension::Pstn { value, .. } => value.clone(),
            })
            .next()
    }) else {
        return;
    };
    let target = ctx.cfg.dial_string(&number);
    info!(target = %target, "calling the agent to say the window ended");
    let ring = ctx.cfg.presence.expiry_notification_ring;
    let (leg, answered, mut sip) = match leg::dial(ctx, target, from, None, ring).await {
        Ok(x) => x,
        Err(DialFailure::Sip(outcome)) => {
            info!(outcome = %outcome, "notification call not answered");
            return;
        }
        Err(e) => {
            info!(failure = %e, "notification call failed");
            return;
        }
    };
    let mut media = answered.media;
    let clip = ctx.prompts.get(prompt).cloned();
    if let Some(p) = clip {
        let _ = answered.session.play(1, vec![p]);
    }
    // Until the prompt has played (or the agent hangs up), at most a minute.
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            tokio::select! {
                ev = media.recv() => match ev {
                    Some(MediaEvent::PlaybackFinished(_)) | None => break,
                    _ => {}
                },
                ev = sip.recv() => match ev {
                    Some(SipEvent::Ended { .. }) | None => return,
                    _ => {}
                },
            }
        }
    })
    .await;
    let _ = ctx.commands.send(SipCommand::HangUp(leg)).await;
    leg::wait_for_end(&mut sip).await;
    answered.session.close();
    ctx.router.remove(leg);
    info!("notification delivered");
}
