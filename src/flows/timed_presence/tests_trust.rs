//! The trunk's `caller_id_trust` in the log-in menu, on the simulated
//! clock: which callers are asked for the PIN, which are refused, and
//! what the log-in record is told let them in.

use super::*;
use crate::config::CallerIdTrust::{self, Any, Attested, PinAlways};

/// A confirmed call on a trunk with `trust`, whose caller ID the carrier
/// did (`attested`) or did not attest.
fn on_trunk(trust: CallerIdTrust, attested: bool, caller: CallerMatch) -> Call {
    let mut call = Call::unconfirmed(&settings(), caller.clone());
    call.menu = LoginMenu::new(&settings(), caller, call.now).with_caller_id(trust, attested);
    assert!(call.send(Event::Confirmed).is_empty());
    call
}

fn with_pin() -> CallerMatch {
    CallerMatch::One(agent("mgarcia", Some("2468")))
}

/// Refused at once with its own prompt, nothing written, no deadline.
fn refused(call: &mut Call, acts: &[Action]) {
    assert_eq!(play(acts), (vec!["caller_id_refused"], false));
    assert!(!acts.iter().any(|a| matches!(a, Action::WritePresence(_))));
    assert_eq!(call.menu.deadline(), None);
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert_eq!(call.menu.outcome(), Some(Outcome::CallerIdRefused));
    assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Unverified);
}

#[test]
fn any_is_the_menu_as_it_was() {
    for attested in [false, true] {
        let mut call = on_trunk(Any, attested, jsmith());
        assert_eq!(
            play(&call.send(Event::Started)),
            (vec!["welcome", "preset_hours"], true)
        );
        call.finish();
        assert_eq!(call.key('1'), vec![online("jsmith", 8)]);
        confirm(
            &mut call,
            &["online", "for", "num_8", "hours"],
            Outcome::Online(8),
        );
        let want = if attested {
            CallerIdCheck::Attested
        } else {
            CallerIdCheck::Unverified
        };
        assert_eq!(call.menu.caller_id_check(), want);
        // A PIN set is asked whether or not the number was attested.
        let mut call = on_trunk(Any, attested, with_pin());
        assert_eq!(
            play(&call.send(Event::Started)),
            (vec!["welcome", "enter_pin"], true)
        );
    }
    // Without `with_caller_id` the menu is `any`, unattested.
    let mut call = Call::new(&settings(), jsmith());
    assert_eq!(
        play(&call.send(Event::Started)),
        (vec!["welcome", "preset_hours"], true)
    );
    assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Unverified);
}

#[test]
fn attested_policy_asks_an_unattested_caller_for_the_pin() {
    let mut call = on_trunk(Attested, false, with_pin());
    assert_eq!(
        play(&call.send(Event::Started)),
        (vec!["welcome", "enter_pin"], true)
    );
    call.finish();
    assert!(call.menu.collecting_secret());
    call.advance(Duration::from_secs(2));
    assert!(call.keys("246").is_empty());
    assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Unverified);
    assert_eq!(play(&call.key('8')), (vec!["preset_hours"], true));
    assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Pin);
    call.finish();
    assert_eq!(call.key('2'), vec![online("mgarcia", 24)]);
    confirm(
        &mut call,
        &["online", "for", "num_20", "num_4", "hours"],
        Outcome::Online(24),
    );
    assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Pin);
}

#[test]
fn attested_policy_takes_the_attestation_instead_of_the_pin() {
    for caller in [with_pin(), CallerMatch::One(agent("mgarcia", None))] {
        let mut call = on_trunk(Attested, true, caller);
        assert_eq!(
            play(&call.send(Event::Started)),
            (vec!["welcome", "preset_hours"], true)
        );
        assert!(!call.menu.collecting_secret());
        call.finish();
        assert_eq!(call.key('0'), vec![offline("mgarcia")]);
        confirm(&mut call, &["offline"], Outcome::Offline);
        assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Attested);
    }
}

#[test]
fn attested_policy_refuses_an_unattested_caller_without_a_pin() {
    for caller in [jsmith(), CallerMatch::One(agent("jsmith", Some("")))] {
        let mut call = on_trunk(Attested, false, caller);
        let acts = call.send(Event::Started);
        refused(&mut call, &acts);
        // Keys after the refusal change nothing.
        assert!(call.keys("1").is_empty());
        assert_eq!(call.menu.outcome(), Some(Outcome::CallerIdRefused));
        assert_eq!(call.menu.agent_id(), Some("jsmith"));
    }
}

#[test]
fn attested_policy_wrong_pins_and_silence_end_the_call() {
    let mut call = on_trunk(Attested, false, with_pin());
    call.send(Event::Started);
    call.finish();
    assert_eq!(
        play(&call.keys("1111")),
        (vec!["wrong_pin", "enter_pin"], true)
    );
    call.finish();
    // Silence after the prompt counts as a wrong entry, once the deadline
    // passes and not before.
    call.advance(DIGIT_TIMEOUT - Duration::from_millis(1));
    assert!(call.send(Event::Timer).is_empty());
    assert_eq!(
        play(&call.timeout()),
        (vec!["wrong_pin", "enter_pin"], true)
    );
    call.finish();
    assert_eq!(play(&call.keys("9#")), (vec!["wrong_pin"], false));
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert_eq!(call.menu.outcome(), Some(Outcome::WrongPin));
    assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Unverified);
}

#[test]
fn pin_always_asks_even_an_attested_caller_and_refuses_without_a_pin() {
    for attested in [false, true] {
        let mut call = on_trunk(PinAlways, attested, with_pin());
        assert_eq!(
            play(&call.send(Event::Started)),
            (vec!["welcome", "enter_pin"], true)
        );
        call.finish();
        assert_eq!(play(&call.keys("2468")), (vec!["preset_hours"], true));
        call.finish();
        assert_eq!(call.key('1'), vec![online("mgarcia", 8)]);
        confirm(
            &mut call,
            &["online", "for", "num_8", "hours"],
            Outcome::Online(8),
        );
        assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Pin);

        let mut call = on_trunk(PinAlways, attested, jsmith());
        let acts = call.send(Event::Started);
        refused(&mut call, &acts);
    }
}

#[test]
fn on_a_shared_line_the_policy_applies_to_the_extension_chosen() {
    // bob has no PIN: refused once his extension is known.
    let mut call = on_trunk(Attested, false, shared());
    assert_eq!(
        play(&call.send(Event::Started)),
        (vec!["welcome", "enter_extension"], true)
    );
    call.finish();
    let acts = call.keys("20#");
    refused(&mut call, &acts);
    assert_eq!(call.menu.agent_id(), Some("bob"));
    // carol has one: asked for it.
    let mut call = on_trunk(PinAlways, true, shared());
    call.send(Event::Started);
    call.finish();
    assert_eq!(play(&call.keys("21#")), (vec!["enter_pin"], true));
    call.finish();
    assert_eq!(play(&call.key('7')), (vec!["preset_hours"], true));
    // attested: bob goes straight to the menu.
    let mut call = on_trunk(Attested, true, shared());
    call.send(Event::Started);
    call.finish();
    assert_eq!(play(&call.keys("20#")), (vec!["preset_hours"], true));
    assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Attested);
}

#[test]
fn keys_before_the_ack_still_wait_under_a_policy() {
    let mut call = Call::unconfirmed(&settings(), with_pin());
    call.menu = LoginMenu::new(&settings(), with_pin(), call.now).with_caller_id(Attested, false);
    call.send(Event::Started);
    // The PIN keyed before the ACK counts only once it arrives.
    assert!(call.keys("2468").is_empty());
    let acts = call.send(Event::Confirmed);
    assert_eq!(acts[0], Action::StopPlayback);
    assert_eq!(play(&acts), (vec!["preset_hours"], true));
    assert_eq!(call.menu.caller_id_check(), CallerIdCheck::Pin);
}

#[test]
fn a_refusal_reads_as_words_and_a_keyword() {
    assert_eq!(Outcome::CallerIdRefused.as_str(), "caller-id-refused");
    assert_eq!(Outcome::CallerIdRefused.to_string(), "caller ID refused");
    assert_eq!(CallerIdCheck::Pin.as_str(), "pin");
    assert_eq!(CallerIdCheck::Attested.as_str(), "attested");
    assert_eq!(CallerIdCheck::Unverified.as_str(), "unverified");
}
