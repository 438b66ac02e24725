//! `/readyz`: may a load balancer send this switch calls now? (issue 11)
//!
//! `/healthz` only says the process is up. Ready means every part a call
//! needs works: the SIP endpoint runs, the store takes writes (a window or a
//! call record that cannot be written is a lost log-in), the prompts are
//! loaded, the trunk's registrar holds our binding where `register` is set
//! (RFC 3261 §10: without it the carrier has nowhere to send calls), and
//! the switch is not draining after SIGTERM. [`report`] is the pure part;
//! the handler only gathers its inputs.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::sip::core::RegistrationStatus;
use crate::sip::register::State;

/// What the shell flips as the switch runs; the API only reads it.
#[derive(Debug)]
pub struct Liveness {
    /// True while the SIP endpoint's task runs.
    pub sip_running: AtomicBool,
    /// True from the first stop signal on.
    pub draining: AtomicBool,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            sip_running: AtomicBool::new(true),
            draining: AtomicBool::new(false),
        }
    }
}

impl Liveness {
    pub fn sip_running(&self) -> bool {
        self.sip_running.load(Ordering::Relaxed)
    }
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// Everything [`report`] decides from, gathered by the handler.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub sip_running: bool,
    pub draining: bool,
    /// The store's write probe: `Err` carries the reason, already safe to
    /// show (a path and an SQLite message, no secret).
    pub store: Result<(), String>,
    /// Configured prompt names the loaded library does not hold.
    pub prompts_missing: Vec<String>,
    pub prompts_loaded: usize,
    /// Trunks with `register = true`.
    pub register_trunks: Vec<String>,
    /// What the SIP endpoint last published.
    pub registrations: Vec<RegistrationStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ready: bool,
    pub checks: Vec<Check>,
}

impl Report {
    /// Names of the checks that failed, for the log line.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect()
    }
}

fn check(name: &'static str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check {
            name,
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name,
            ok: false,
            detail,
        },
    }
}

/// Every check, in a fixed order, each with its state in words.
pub fn report(i: &Inputs) -> Report {
    let mut checks = vec![
        check(
            "draining",
            if i.draining {
                Err("draining after a stop signal: new calls get 503".into())
            } else {
                Ok("not draining".into())
            },
        ),
        check(
            "sip",
            if i.sip_running {
                Ok("listening".into())
            } else {
                Err("the SIP endpoint has stopped".into())
            },
        ),
        check(
            "store",
            i.store
                .clone()
                .map(|()| "writable".into())
                .map_err(|e| format!("not writable: {e}")),
        ),
        check(
            "prompts",
            if !i.prompts_missing.is_empty() {
                Err(format!("missing: {}", i.prompts_missing.join(", ")))
            } else if i.prompts_loaded == 0 {
                Err("no prompt loaded".into())
            } else {
                Ok(format!("{} loaded", i.prompts_loaded))
            },
        ),
    ];
    for trunk in &i.register_trunks {
        let state = i
            .registrations
            .iter()
            .find(|r| &r.trunk == trunk)
            .map(|r| r.state);
        checks.push(check(
            "registration",
            match state {
                Some(State::Registered) => Ok(format!("trunk {trunk} registered")),
                Some(s) => Err(format!("trunk {trunk} {}", s.as_str())),
                // The endpoint publishes after its first turn.
                None => Err(format!("trunk {trunk} not started")),
            },
        ));
    }
    Report {
        ready: checks.iter().all(|c| c.ok),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Inputs {
        Inputs {
            sip_running: true,
            draining: false,
            store: Ok(()),
            prompts_missing: Vec::new(),
            prompts_loaded: 12,
            register_trunks: Vec::new(),
            registrations: Vec::new(),
        }
    }

    fn reg(trunk: &str, state: State) -> RegistrationStatus {
        RegistrationStatus {
            trunk: trunk.into(),
            state,
            expires_in: 0,
            registered_total: 0,
            failures_total: 0,
        }
    }

    #[test]
    fn a_healthy_switch_is_ready_and_lists_every_check() {
        let r = report(&healthy());
        assert!(r.ready, "{r:?}");
        let names: Vec<_> = r.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, ["draining", "sip", "store", "prompts"]);
        assert!(r.failed().is_empty());
    }

    #[test]
    fn each_failure_alone_makes_it_unready_and_is_named() {
        type Spoil = fn(&mut Inputs);
        let cases: [(&str, Spoil); 5] = [
            ("draining", |i| i.draining = true),
            ("sip", |i| i.sip_running = false),
            ("store", |i| {
                i.store = Err("database or disk is full".into())
            }),
            ("prompts", |i| i.prompts_missing = vec!["online".into()]),
            ("prompts", |i| i.prompts_loaded = 0),
        ];
        for (name, spoil) in cases {
            let mut i = healthy();
            spoil(&mut i);
            let r = report(&i);
            assert!(!r.ready, "{name}: {r:?}");
            assert_eq!(r.failed(), [name]);
        }
    }

    #[test]
    fn the_store_reason_and_missing_prompts_are_shown() {
        let mut i = healthy();
        i.store = Err("database or disk is full".into());
        i.prompts_missing = vec!["online".into(), "goodbye".into()];
        let r = report(&i);
        assert_eq!(r.checks[2].detail, "not writable: database or disk is full");
        assert_eq!(r.checks[3].detail, "missing: online, goodbye");
    }

    #[test]
    fn a_registering_trunk_is_unready_until_the_registrar_answers() {
        let mut i = healthy();
        i.register_trunks = vec!["carrier".into()];
        let r = report(&i);
        assert_eq!(r.failed(), ["registration"]);
        assert_eq!(r.checks[4].detail, "trunk carrier not started");
        for (state, word) in [
            (State::Registering, "registering"),
            (State::Failed, "failed"),
        ] {
            i.registrations = vec![reg("carrier", state)];
            let r = report(&i);
            assert!(!r.ready);
            assert_eq!(r.checks[4].detail, format!("trunk carrier {word}"));
        }
        i.registrations = vec![reg("carrier", State::Registered)];
        let r = report(&i);
        assert!(r.ready, "{r:?}");
        assert_eq!(r.checks[4].detail, "trunk carrier registered");
    }

    #[test]
    fn a_trunk_without_register_needs_no_binding() {
        let mut i = healthy();
        i.registrations = vec![reg("carrier", State::Failed)];
        assert!(report(&i).ready);
    }

    #[test]
    fn the_body_is_small_json() {
        let mut i = healthy();
        i.draining = true;
        let v = serde_json::to_value(report(&i)).unwrap();
        assert_eq!(v["ready"], false);
        assert_eq!(v["checks"][0]["name"], "draining");
        assert_eq!(v["checks"][0]["ok"], false);
    }
}
