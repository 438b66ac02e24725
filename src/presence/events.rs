//! Presence changes onto the event bus: [`Translator`] turns the presence
//! service's [`PresenceEvent`]s into bus events (a pure step, tested
//! alone), [`forward`] runs it on the service's broadcast.
//!
//! The service announces a replaced window only as the new `Online`; the
//! translator remembers each agent's open window from the events it saw,
//! so an `Online` over an open one is told as `presence.replaced` (the old
//! window) followed by `presence.online` (the new), as the history records
//! it.

use std::collections::HashMap;

use chrono::Utc;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::service::PresenceEvent;
use super::Window;
use crate::events::{Body, EventBus, Span};

fn span(w: Window) -> Span {
    Span {
        start: w.start,
        end: w.end,
    }
}

/// Each agent's open window, as the events told it.
#[derive(Default)]
pub struct Translator {
    open: HashMap<String, Window>,
}

impl Translator {
    /// The bus events for `event`.
    pub fn translate(&mut self, event: PresenceEvent) -> Vec<Body> {
        match event {
            // A call to the agent, not a change of their presence.
            PresenceEvent::Remind { .. } => Vec::new(),
            // Another node's change: that node tells its own subscribers
            // and webhooks; here it only keeps "replaced" honest.
            PresenceEvent::Synced { user, window } => {
                match window {
                    Some(w) => self.open.insert(user, w),
                    None => self.open.remove(&user),
                };
                Vec::new()
            }
            PresenceEvent::Online {
                user,
                window,
                actor,
            } => {
                let mut out = Vec::with_capacity(2);
                if let Some(old) = self.open.insert(user.clone(), window) {
                    // Still open when the new one began: replaced, not ended.
                    if old.end > window.start {
                        out.push(Body::Replaced {
                            agent: user.clone(),
                            window: span(old),
                        });
                    }
                }
                out.push(Body::Online {
                    agent: user,
                    window: span(window),
                    actor: Some(actor),
                });
                out
            }
            PresenceEvent::Offline { user, window } => {
                self.open.remove(&user);
                vec![Body::Offline {
                    agent: user,
                    window: window.map(span),
                }]
            }
            PresenceEvent::ForcedOffline {
                user,
                window,
                reason,
                actor,
            } => {
                self.open.remove(&user);
                vec![Body::ForcedOffline {
                    agent: user,
                    window: window.map(span),
                    reason,
                    actor: Some(actor),
                }]
            }
            PresenceEvent::NotResponding {
                user,
                window,
                reason,
            } => {
                self.open.remove(&user);
                vec![Body::NotResponding {
                    agent: user,
                    window: window.map(span),
                    reason,
                }]
            }
            PresenceEvent::Responding { user, actor } => {
                vec![Body::Responding { agent: user, actor }]
            }
            PresenceEvent::Expired {
                user,
                end,
                while_down,
                deferred,
            } => {
                self.open.remove(&user);
                vec![Body::Expired {
                    agent: user,
                    end,
                    while_down,
                    deferred,
                }]
            }
        }
    }
}

/// Publishes every presence change on `bus` until the service stops.
/// Subscribe `events` before the service starts to carry the start-up
/// expiries too.
pub async fn forward(mut events: broadcast::Receiver<PresenceEvent>, bus: EventBus) {
    let mut translator = Translator::default();
    loop {
        match events.recv().await {
            Ok(e) => {
                let now = Utc::now();
                for body in translator.translate(e) {
                    bus.publish(body, now);
                }
            }
            Err(RecvError::Lagged(n)) => {
                // Readers of the bus cannot be told exactly which; the
                // floor view refetches on its own schedule.
                tracing::warn!(missed = n, "presence events lost before the event bus");
            }
            Err(RecvError::Closed) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone};

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap() + chrono::Duration::hours(h)
    }

    fn online(user: &str, from: i64, to: i64) -> PresenceEvent {
        PresenceEvent::Online {
            user: user.into(),
            window: Window::new(t(from), t(to)).unwrap(),
            actor: "agent".into(),
        }
    }

    fn kinds(b: &[Body]) -> Vec<&'static str> {
        b.iter().map(Body::kind).collect()
    }

    #[test]
    fn an_online_over_an_open_window_is_replaced_then_online() {
        let mut tr = Translator::default();
        assert_eq!(kinds(&tr.translate(online("a", 0, 2))), ["presence.online"]);
        let out = tr.translate(online("a", 1, 5));
        assert_eq!(kinds(&out), ["presence.replaced", "presence.online"]);
        assert_eq!(
            out[0],
            Body::Replaced {
                agent: "a".into(),
                window: Span {
                    start: t(0),
                    end: t(2)
                }
            }
        );
        // Another agent's window is not theirs.
        assert_eq!(kinds(&tr.translate(online("b", 1, 2))), ["presence.online"]);
    }

    #[test]
    fn after_an_end_the_next_online_is_only_online() {
        let mut tr = Translator::default();
        tr.translate(online("a", 0, 2));
        let out = tr.translate(PresenceEvent::Expired {
            user: "a".into(),
            end: t(2),
            while_down: false,
            deferred: false,
        });
        assert_eq!(kinds(&out), ["presence.expired"]);
        assert_eq!(kinds(&tr.translate(online("a", 3, 4))), ["presence.online"]);
        tr.translate(PresenceEvent::ForcedOffline {
            user: "a".into(),
            window: None,
            reason: "r".into(),
            actor: "switch".into(),
        });
        assert_eq!(kinds(&tr.translate(online("a", 3, 4))), ["presence.online"]);
        tr.translate(PresenceEvent::Offline {
            user: "a".into(),
            window: None,
        });
        assert_eq!(kinds(&tr.translate(online("a", 3, 4))), ["presence.online"]);
    }

    /// The bus tells who changed the presence, as the history does: the
    /// agent from the log-in line, a supervisor's token, the switch.
    #[test]
    fn online_and_forced_offline_carry_their_actor() {
        let mut tr = Translator::default();
        let out = tr.translate(PresenceEvent::Online {
            user: "a".into(),
            window: Window::new(t(0), t(2)).unwrap(),
            actor: "floor".into(),
        });
        assert!(
            matches!(&out[0], Body::Online { actor: Some(a), .. } if a == "floor"),
            "{out:?}"
        );
        let out = tr.translate(PresenceEvent::ForcedOffline {
            user: "a".into(),
            window: None,
            reason: "3 missed calls".into(),
            actor: crate::presence::ACTOR_SWITCH.into(),
        });
        assert!(
            matches!(&out[0], Body::ForcedOffline { actor: Some(a), .. } if a == "switch"),
            "{out:?}"
        );
    }
}
