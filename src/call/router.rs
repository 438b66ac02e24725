//! Which task gets the SIP events of which leg, for inbound calls and for
//! the legs we dial.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::sip::{LegId, SipEvent};

/// Events for one leg; bounded so a runaway peer cannot grow it.
const LEG_QUEUE: usize = 64;

#[derive(Clone, Default)]
pub struct LegRouter {
    legs: Arc<Mutex<HashMap<LegId, mpsc::Sender<SipEvent>>>>,
}

impl LegRouter {
    fn lock(&self) -> MutexGuard<'_, HashMap<LegId, mpsc::Sender<SipEvent>>> {
        // Only inserts and removes happen under the lock: a panic cannot
        // leave the map half-changed.
        self.legs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a leg before anything can be said about it (before the
    /// Dial command goes out, for outbound legs).
    pub fn register(&self, leg: LegId) -> mpsc::Receiver<SipEvent> {
        let (tx, rx) = mpsc::channel(LEG_QUEUE);
        self.lock().insert(leg, tx);
        rx
    }

    pub fn remove(&self, leg: LegId) {
        self.lock().remove(&leg);
    }

    pub fn legs(&self) -> Vec<LegId> {
        self.lock().keys().copied().collect()
    }

    pub fn route(&self, ev: SipEvent) {
        let leg = ev.leg();
        let tx = self.lock().get(&leg).cloned();
        match tx {
            Some(tx) => {
                if let Err(e) = tx.try_send(ev) {
                    warn!(leg = %leg, error = %e, "call task not keeping up; event dropped");
                }
            }
            None => debug!(leg = %leg, "event for a leg that is gone"),
        }
    }
}
