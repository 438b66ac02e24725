//! A nailed-up agent's line (issue 14): the log-in call, kept connected
//! once the menu has confirmed the agent online, handed to the queue task,
//! which offers customers on it. This task only keeps the leg registered
//! (its SIP events flow to the queue) until the queue is done with it.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::leg::Answered;
use super::queue::{Arrival, LineHandoff, LinePrompts, LineReminder};
use super::CallContext;
use crate::config::TimedPresenceFlow;
use crate::flows::prompt_plan::PromptName;
use crate::sip::{IncomingCall, SipCommand, SipEvent};

/// What the log-in menu leaves when it keeps the call as a line.
pub struct Kept {
    pub user: String,
    pub answered: Answered,
    pub sip: mpsc::Receiver<SipEvent>,
}

/// Hands the kept call to the queue task as `kept.user`'s line and waits
/// until the queue lets it go (the agent hung up, or went offline).
pub async fn hold(
    ctx: &Arc<CallContext>,
    call: &IncomingCall,
    flow: &TimedPresenceFlow,
    kept: Kept,
) {
    let Kept {
        user,
        answered,
        mut sip,
    } = kept;
    // The window the menu just confirmed; gone already (a supervisor, a
    // very short window) means there is nothing to stay on the line for.
    let window = match ctx.presence.current(&user).await {
        Ok(Some(w)) if w.is_active(ctx.presence.now()) => Some(w),
        Ok(_) => None,
        Err(e) => {
            warn!(agent = %user, error = %e, "cannot read the window for the nailed-up line");
            None
        }
    };
    let Some(window) = window else {
        info!(agent = %user, "not online any more: hanging up the line");
        let _ = ctx.commands.send(SipCommand::HangUp(call.leg)).await;
        // No media once the BYE is out (RFC 3261 §15.1.1).
        answered.session.close();
        super::leg::wait_for_end(&mut sip).await;
        return;
    };
    let name = |r: &crate::config::PromptRef| PromptName::new(r.name.as_str());
    let p = &flow.prompts;
    let prompts = LinePrompts {
        tone: name(&p.line_tone),
        hold: p.line_hold.as_ref().map(name),
        offline: name(&p.offline),
        not_responding: name(&p.not_responding),
    };
    let (done, finished) = oneshot::channel();
    ctx.router.mark_line(call.leg, &user);
    let line = LineHandoff {
        leg: call.leg,
        call_id: call.call_id.clone(),
        user,
        until: window.end,
        prompts,
        reminder: LineReminder {
            hours: flow.presets.first().copied().unwrap_or(8),
            longest_hours: super::login::flow_longest_hours(flow),
        },
        answered,
        sip,
        done,
    };
    if let Err(e) = ctx.queue.send(Arrival::Line(line)).await {
        warn!("the queue task has stopped: hanging up the line");
        let Arrival::Line(line) = e.0 else { return };
        let _ = ctx.commands.send(SipCommand::HangUp(line.leg)).await;
        line.answered.session.close();
        return;
    }
    let _ = finished.await;
}
