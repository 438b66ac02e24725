//! The per-leg tasks of the queue: each owns its leg's event receivers and
//! forwards what happens, tagged with the call (and attempt), into the queue
//! task's one bounded inbox. The queue task owns the media sessions and
//! every decision; these tasks only translate. (Outbound legs are
//! translated by `call::leg::place`.)

use tokio::sync::{mpsc, oneshot};

use super::super::leg::LegNews;
use crate::flows::queue::AttemptId;
use crate::media::engine::MediaEvent;
use crate::routing::CallId;
use crate::sip::SipEvent;

/// What the queue task hears from the legs.
pub enum Input {
    Customer {
        call: CallId,
        ev: LegEvent,
    },
    /// An outbound leg of the engine (an agent's or the overflow number's).
    Leg {
        call: CallId,
        attempt: AttemptId,
        news: LegNews,
    },
}

pub enum LegEvent {
    Sip(SipEvent),
    Media(MediaEvent),
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
