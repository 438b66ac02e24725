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
    /// A nailed-up agent's line (`leg` tells a replaced line's late events
    /// from the current one's).
    Line {
        user: String,
        leg: crate::sip::LegId,
        ev: LegEvent,
    },
    /// The reminder's extension on a line was written (the new end) or
    /// failed.
    LineExtended {
        user: String,
        leg: crate::sip::LegId,
        result: Result<chrono::DateTime<chrono::Utc>, String>,
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
    sip: mpsc::Receiver<SipEvent>,
    media: mpsc::Receiver<MediaEvent>,
    inbox: mpsc::Sender<Input>,
    done: oneshot::Sender<()>,
) {
    forward(sip, media, inbox, move |ev| {
        let _keep = &done;
        Input::Customer { call, ev }
    });
}

/// Forwards a leg's SIP and media events, each wrapped by `wrap`, until
/// the leg ends (or the queue task is gone). What `wrap` holds is dropped
/// then.
pub fn forward(
    mut sip: mpsc::Receiver<SipEvent>,
    mut media: mpsc::Receiver<MediaEvent>,
    inbox: mpsc::Sender<Input>,
    wrap: impl Fn(LegEvent) -> Input + Send + 'static,
) {
    tokio::spawn(async move {
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
            if inbox.send(wrap(ev)).await.is_err() || last {
                break;
            }
        }
    });
}
