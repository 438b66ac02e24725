//! Which task gets the SIP events of which leg, for inbound calls and for
//! the legs we dial.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::sip::{LegId, SipEvent};

/// Events for one leg; bounded so a runaway peer cannot grow it.
const LEG_QUEUE: usize = 64;

#[derive(Default)]
struct Legs {
    senders: HashMap<LegId, mpsc::Sender<SipEvent>>,
    /// The legs we dialled: every one counts against
    /// `trunk.max_outbound_calls`, whoever placed it.
    outbound: HashSet<LegId>,
    /// Nailed-up agents' lines, with their agent: up for hours by design,
    /// so a draining switch does not wait for them (a customer bridged
    /// to one is a leg of its own, which it does wait for).
    lines: HashMap<LegId, String>,
}

impl Legs {
    /// Nothing but nailed-up lines is left.
    fn only_lines(&self) -> bool {
        self.senders.keys().all(|l| self.lines.contains_key(l))
    }
}

#[derive(Clone, Default)]
pub struct LegRouter {
    legs: Arc<Mutex<Legs>>,
    /// Woken when the last leg goes: a draining switch waits on it.
    emptied: Arc<tokio::sync::Notify>,
}

impl LegRouter {
    fn lock(&self) -> MutexGuard<'_, Legs> {
        // Only inserts and removes happen under the lock: a panic cannot
        // leave the map half-changed.
        self.legs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a leg before anything can be said about it (before the
    /// Dial command goes out, for outbound legs).
    pub fn register(&self, leg: LegId) -> mpsc::Receiver<SipEvent> {
        let (tx, rx) = mpsc::channel(LEG_QUEUE);
        self.lock().senders.insert(leg, tx);
        rx
    }

    /// Registers a leg we are about to dial, unless `cap` outbound legs
    /// are already up: the one place the outbound limit is counted (agent,
    /// overflow and notification legs alike).
    pub fn register_outbound(&self, leg: LegId, cap: usize) -> Option<mpsc::Receiver<SipEvent>> {
        let mut legs = self.lock();
        if legs.outbound.len() >= cap {
            return None;
        }
        let (tx, rx) = mpsc::channel(LEG_QUEUE);
        legs.senders.insert(leg, tx);
        legs.outbound.insert(leg);
        Some(rx)
    }

    pub fn remove(&self, leg: LegId) {
        let mut legs = self.lock();
        legs.senders.remove(&leg);
        legs.outbound.remove(&leg);
        legs.lines.remove(&leg);
        if legs.only_lines() {
            self.emptied.notify_waiters();
        }
    }

    /// `leg` is now `user`'s nailed-up line.
    pub fn mark_line(&self, leg: LegId, user: &str) {
        let mut legs = self.lock();
        legs.lines.insert(leg, user.to_owned());
        if legs.only_lines() {
            self.emptied.notify_waiters();
        }
    }

    /// Whether `user` has a nailed-up line up: calls to their phone (the
    /// expiry notice, the reminder) would only find it busy.
    pub fn has_line(&self, user: &str) -> bool {
        self.lock().lines.values().any(|u| u == user)
    }

    /// Returns once no call is left but nailed-up lines: every call,
    /// inbound or dialled, has ended.
    pub async fn idle(&self) {
        loop {
            // Registered before the check, so a removal between the check
            // and the wait still wakes us.
            let woken = self.emptied.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.lock().only_lines() {
                return;
            }
            woken.await;
        }
    }

    pub fn legs(&self) -> Vec<LegId> {
        self.lock().senders.keys().copied().collect()
    }

    /// Outbound legs up now.
    pub fn outbound(&self) -> usize {
        self.lock().outbound.len()
    }

    pub fn route(&self, ev: SipEvent) {
        let leg = ev.leg();
        let tx = self.lock().senders.get(&leg).cloned();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_legs_are_capped_and_freed() {
        let r = LegRouter::default();
        let (a, b, c) = (LegId::next(), LegId::next(), LegId::next());
        let _inbound = r.register(c);
        assert!(r.register_outbound(a, 2).is_some());
        assert!(r.register_outbound(b, 2).is_some());
        assert!(r.register_outbound(LegId::next(), 2).is_none());
        assert_eq!(r.outbound(), 2);
        r.remove(a);
        assert!(r.register_outbound(LegId::next(), 2).is_some());
    }

    #[tokio::test]
    async fn idle_returns_once_the_last_leg_is_gone() {
        let r = LegRouter::default();
        // Nothing registered: idle at once.
        r.idle().await;
        let (a, b) = (LegId::next(), LegId::next());
        let _ra = r.register(a);
        let _rb = r.register_outbound(b, 2);
        let waiter = tokio::spawn({
            let r = r.clone();
            async move { r.idle().await }
        });
        r.remove(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one leg is still up");
        r.remove(b);
        waiter.await.expect("idle once both legs are gone");
    }

    #[tokio::test]
    async fn a_draining_switch_does_not_wait_for_nailed_up_lines() {
        let r = LegRouter::default();
        let (line, call) = (LegId::next(), LegId::next());
        let _rl = r.register(line);
        let _rc = r.register(call);
        r.mark_line(line, "ann");
        assert!(r.has_line("ann"));
        let waiter = tokio::spawn({
            let r = r.clone();
            async move { r.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a call is still up");
        r.remove(call);
        waiter.await.expect("idle with only a line left");
        r.remove(line);
        assert!(!r.has_line("ann"));
    }
}
