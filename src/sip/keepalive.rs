//! OPTIONS keepalive to a trunk's targets, sans-IO: which target to probe
//! when, and whether each one is up. The SIP core sends the OPTIONS (a
//! non-INVITE client transaction, RFC 3261 §11 and §17.1.2) and tells the
//! prober of each answer; the prober decides.
//!
//! A target is up from its first answer (any final response: a server that
//! answers at all is reachable, RFC 3261 §11.2) and down when a probe is
//! still unanswered when the next one is due; calls then skip it until it
//! answers again.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::dns::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet (or probing is off).
    Unknown,
    Up,
    Down,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// What one target looks like now (for `/metrics` and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetStatus {
    pub target: Target,
    pub health: Health,
    /// Round trip of the last answered probe.
    pub rtt: Option<Duration>,
}

/// A target's state with the trunk it serves, as `/metrics` shows it
/// (label `trunk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTargetStatus {
    pub trunk: String,
    pub status: TargetStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send OPTIONS to this target; report its answer with this id.
    Probe { target: Target, id: u64 },
    /// A target changed state (logged by the core, shown in `/metrics`).
    Changed(TargetStatus),
}

#[derive(Debug)]
struct Probe {
    status: TargetStatus,
    /// The probe in flight: its id and when it left.
    outstanding: Option<(u64, Instant)>,
    /// When the next probe is due; `None` until the first `handle_timer`.
    next: Option<Instant>,
}

#[derive(Debug)]
pub struct Prober {
    interval: Duration,
    probes: Vec<Probe>,
    next_id: u64,
    actions: VecDeque<Action>,
}

impl Prober {
    /// Probes every `interval`; a probe unanswered after `interval` is a
    /// miss and marks its target down.
    pub fn new(interval: Duration) -> Self {
        Prober {
            interval,
            probes: Vec::new(),
            next_id: 1,
            actions: VecDeque::new(),
        }
    }

    /// The targets to watch. Known ones keep their state; new ones are
    /// probed at the next `handle_timer`.
    pub fn set_targets(&mut self, targets: &[Target]) {
        let mut old = std::mem::take(&mut self.probes);
        for t in targets {
            if self.probes.iter().any(|p| p.status.target == *t) {
                continue;
            }
            let probe = match old.iter().position(|p| p.status.target == *t) {
                Some(i) => old.swap_remove(i),
                None => Probe {
                    status: TargetStatus {
                        target: *t,
                        health: Health::Unknown,
                        rtt: None,
                    },
                    outstanding: None,
                    next: None,
                },
            };
            self.probes.push(probe);
        }
    }

    pub fn handle_timer(&mut self, now: Instant) {
        for p in &mut self.probes {
            let due = p.next.is_none_or(|n| n <= now);
            if !due {
                continue;
            }
            if p.outstanding.take().is_some() && p.status.health != Health::Down {
                p.status.health = Health::Down;
                self.actions.push_back(Action::Changed(p.status));
            }
            let id = self.next_id;
            self.next_id += 1;
            p.outstanding = Some((id, now));
            p.next = Some(now + self.interval);
            self.actions.push_back(Action::Probe {
                target: p.status.target,
                id,
            });
        }
    }

    /// A final response to probe `id` arrived.
    pub fn answered(&mut self, id: u64, now: Instant) {
        let Some(p) = self
            .probes
            .iter_mut()
            .find(|p| p.outstanding.is_some_and(|(i, _)| i == id))
        else {
            return;
        };
        let Some((_, sent)) = p.outstanding.take() else {
            return;
        };
        p.status.rtt = Some(now.saturating_duration_since(sent));
        if p.status.health != Health::Up {
            p.status.health = Health::Up;
            self.actions.push_back(Action::Changed(p.status));
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timer` must run next for targets already scheduled;
    /// see [`Prober::has_unscheduled`] for those never probed.
    pub fn deadline(&self) -> Option<Instant> {
        self.probes.iter().filter_map(|p| p.next).min()
    }

    /// Whether any target has never been scheduled (the core then calls
    /// `handle_timer` at once).
    pub fn has_unscheduled(&self) -> bool {
        self.probes.iter().any(|p| p.next.is_none())
    }

    pub fn is_down(&self, target: &Target) -> bool {
        self.probes
            .iter()
            .any(|p| p.status.target == *target && p.status.health == Health::Down)
    }

    pub fn status(&self) -> Vec<TargetStatus> {
        self.probes.iter().map(|p| p.status).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::dns::Transport;

    fn t(port: u16) -> Target {
        Target {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            transport: Transport::Udp,
        }
    }

    fn drain(p: &mut Prober) -> Vec<Action> {
        std::iter::from_fn(|| p.poll_action()).collect()
    }

    fn probe_id(actions: &[Action], target: Target) -> u64 {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Probe { target: t, id } if *t == target => Some(*id),
                _ => None,
            })
            .expect("a probe for the target")
    }

    #[test]
    fn answer_marks_up_with_rtt_then_silence_marks_down_then_answer_up_again() {
        let start = Instant::now();
        let iv = Duration::from_secs(10);
        let mut p = Prober::new(iv);
        p.set_targets(&[t(1), t(2)]);
        assert!(p.has_unscheduled());
        p.handle_timer(start);
        let a = drain(&mut p);
        let (id1, id2) = (probe_id(&a, t(1)), probe_id(&a, t(2)));
        assert_eq!(p.deadline(), Some(start + iv));

        p.answered(id1, start + Duration::from_millis(12));
        p.answered(id2, start + Duration::from_millis(30));
        let a = drain(&mut p);
        assert_eq!(
            a[0],
            Action::Changed(TargetStatus {
                target: t(1),
                health: Health::Up,
                rtt: Some(Duration::from_millis(12)),
            })
        );
        assert_eq!(a.len(), 2);
        assert!(!p.is_down(&t(1)));

        // Second round: only t(2) answers.
        p.handle_timer(start + iv);
        let a = drain(&mut p);
        let id2 = probe_id(&a, t(2));
        p.answered(id2, start + iv + Duration::from_millis(5));
        assert!(drain(&mut p).is_empty(), "no change for t(2)");

        // Third round: t(1)'s probe was never answered: down.
        p.handle_timer(start + iv * 2);
        let a = drain(&mut p);
        assert!(a.contains(&Action::Changed(TargetStatus {
            target: t(1),
            health: Health::Down,
            rtt: Some(Duration::from_millis(12)),
        })));
        assert!(p.is_down(&t(1)));
        assert!(!p.is_down(&t(2)));

        // It answers the new probe: up again.
        let id1 = probe_id(&a, t(1));
        p.answered(id1, start + iv * 2 + Duration::from_millis(3));
        assert!(!p.is_down(&t(1)));
        assert_eq!(p.status()[0].rtt, Some(Duration::from_millis(3)));
    }

    #[test]
    fn a_stale_answer_is_ignored_and_new_targets_keep_old_state() {
        let start = Instant::now();
        let iv = Duration::from_secs(5);
        let mut p = Prober::new(iv);
        p.set_targets(&[t(1)]);
        p.handle_timer(start);
        let old = probe_id(&drain(&mut p), t(1));
        p.handle_timer(start + iv);
        p.handle_timer(start + iv * 2);
        assert!(p.is_down(&t(1)));
        drain(&mut p);
        p.answered(old, start + iv * 2);
        assert!(p.is_down(&t(1)), "an answer to an old probe proves nothing");

        p.set_targets(&[t(1), t(3)]);
        assert!(p.is_down(&t(1)), "kept across a DNS refresh");
        assert!(p.has_unscheduled());
        p.set_targets(&[t(3)]);
        assert_eq!(p.status().len(), 1);
    }
}
