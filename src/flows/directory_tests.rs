//! Directory tests against the shipped default configuration: jsmith on
//! +12345678910 (no PIN), mgarcia (PIN 2468, ext 201) and akim (ext 202)
//! sharing +12345678000; contact points +15550100000 (Timed Presence) and
//! +15550100001 (Billing).

use super::*;
use crate::config::{CountryCode, Extension, Flow, User};
use std::time::Duration;

fn cfg() -> Config {
    Config::embedded_default().unwrap()
}

fn from(user: &str) -> CallerInfo {
    CallerInfo {
        from_user: Some(user.to_owned()),
        ..CallerInfo::default()
    }
}

fn with_pai(pai: &str, from_user: &str) -> CallerInfo {
    CallerInfo {
        asserted: Some(pai.to_owned()),
        from_user: Some(from_user.to_owned()),
        ..CallerInfo::default()
    }
}

fn one(id: &str, pin: Option<&str>) -> CallerMatch {
    CallerMatch::One(AgentRef {
        user_id: id.to_owned(),
        pin: pin.map(Into::into),
        nailed_up: false,
    })
}

fn e(s: &str) -> E164 {
    E164::parse(s, &CountryCode::nanp()).unwrap()
}

/// A config in the UK (+44) with one London agent.
fn uk_cfg() -> Config {
    let mut c = cfg();
    c.numbering.default_country_code = CountryCode::parse("44").unwrap();
    c.users.push(london_user());
    c
}

fn london_user() -> User {
    User {
        id: "lon".into(),
        name: "London Agent".into(),
        skills: vec![],
        pin: None,
        time_zone: None,
        connection: Default::default(),
        extensions: vec![Extension::Pstn {
            value: e("+442079460000"),
            ext: String::new(),
            description: "London".into(),
        }],
    }
}

#[test]
fn every_written_form_of_a_nanp_number_finds_the_agent() {
    let c = cfg();
    for user in [
        "+12345678910",
        "12345678910",
        "2345678910",
        "+1-234-567-8910",
        "+1 (234) 567.8910",
        "(234) 567-8910",
        "+12345678910;user=phone",
        "2345678910;phone-context=+1",
        "tel:+1-234-567-8910",
        "sip:+12345678910@carrier.example;user=phone",
        "<sip:+12345678910@carrier.example>",
        "%2B12345678910",
        "01112345678910",
        "0012345678910",
        " +12345678910 ",
    ] {
        assert_eq!(identify(&c, &from(user)), one("jsmith", None), "{user:?}");
    }
}

#[test]
fn trusted_pai_wins_over_from() {
    let c = cfg();
    assert!(c.trunk.trust_pai);
    let caller = with_pai("+12345678910", "+19998887777");
    assert_eq!(identify(&c, &caller), one("jsmith", None));
    assert_eq!(
        caller_number(&c, &caller),
        CallerNumber::Number(e("+12345678910"))
    );
}

#[test]
fn untrusted_pai_is_ignored() {
    let mut c = cfg();
    c.trunk.trust_pai = false;
    let caller = with_pai("+12345678910", "+19998887777");
    assert_eq!(identify(&c, &caller), CallerMatch::Unknown);
    let caller = with_pai("+19998887777", "2345678910");
    assert_eq!(identify(&c, &caller), one("jsmith", None));
    // An anonymous PAI is not believed either: From still counts.
    let caller = with_pai("anonymous", "2345678910");
    assert_eq!(identify(&c, &caller), one("jsmith", None));
}

/// Issue 10: the rules of the trunk the call came through apply. A PAI
/// from a trunk that is not trusted with it is ignored even when the
/// first trunk trusts PAI.
#[test]
fn pai_trust_is_the_calls_own_trunks() {
    let mut c = cfg();
    assert!(c.trunk.trust_pai);
    let mut other = c.trunk.clone();
    other.name = "cheap-carrier".into();
    other.trust_pai = false;
    c.trunks.push(other);
    let mut caller = with_pai("+12345678910", "+19998887777");
    caller.trunk = "cheap-carrier".into();
    assert_eq!(identify(&c, &caller), CallerMatch::Unknown);
    caller.trunk = c.trunk.name.clone();
    assert_eq!(identify(&c, &caller), one("jsmith", None));
}

#[test]
fn absent_pai_falls_back_to_from() {
    let c = cfg();
    assert_eq!(identify(&c, &from("2345678910")), one("jsmith", None));
}

#[test]
fn trusted_anonymous_pai_means_withheld() {
    let c = cfg();
    let caller = with_pai("anonymous", "+12345678910");
    assert_eq!(identify(&c, &caller), CallerMatch::Withheld);
    assert_eq!(caller_number(&c, &caller), CallerNumber::Withheld);
}

#[test]
fn pai_that_is_not_a_number_falls_back_to_from() {
    let c = cfg();
    let caller = with_pai("alice", "+12345678910");
    assert_eq!(identify(&c, &caller), one("jsmith", None));
}

fn verstat(pai: Option<&str>, pai_v: Verstat, from_user: &str, from_v: Verstat) -> CallerInfo {
    CallerInfo {
        asserted: pai.map(str::to_owned),
        from_user: Some(from_user.to_owned()),
        asserted_verstat: pai_v,
        from_verstat: from_v,
        ..CallerInfo::default()
    }
}

#[test]
fn attestation_is_read_from_the_header_that_identified_the_caller() {
    use Verstat::*;
    let c = cfg();
    let n = "+12345678910";
    // From alone.
    assert!(caller_attested(&c, &verstat(None, Absent, n, Passed)));
    for v in [Absent, Failed, NoValidation, Other] {
        assert!(!caller_attested(&c, &verstat(None, Absent, n, v)), "{v:?}");
    }
    // A trusted PAI decides when it carries a verstat.
    assert!(caller_attested(
        &c,
        &verstat(Some(n), Passed, n, NoValidation)
    ));
    assert!(!caller_attested(
        &c,
        &verstat(Some(n), NoValidation, n, Passed)
    ));
    assert!(!caller_attested(&c, &verstat(Some(n), Failed, n, Passed)));
    // Without one it borrows From's, only for the same number (in any form).
    assert!(caller_attested(
        &c,
        &verstat(Some(n), Absent, "2345678910", Passed)
    ));
    assert!(!caller_attested(
        &c,
        &verstat(Some(n), Absent, "+12345678000", Passed)
    ));
    // A PAI the trunk does not trust lends nothing; From decides.
    let mut untrusting = cfg();
    untrusting.trunk.trust_pai = false;
    assert!(!caller_attested(
        &untrusting,
        &verstat(Some(n), Passed, n, Absent)
    ));
    assert!(caller_attested(
        &untrusting,
        &verstat(Some(n), Failed, n, Passed)
    ));
    // A PAI that is not a number: From identifies, and attests.
    assert!(caller_attested(
        &c,
        &verstat(Some("alice"), Failed, n, Passed)
    ));
    // Withheld or not a number: nothing to attest.
    let withheld = CallerInfo {
        withheld: true,
        ..verstat(None, Absent, n, Passed)
    };
    assert!(!caller_attested(&c, &withheld));
    assert!(!caller_attested(
        &c,
        &verstat(None, Absent, "alice", Passed)
    ));
    assert!(!caller_attested(
        &c,
        &verstat(Some("anonymous"), Passed, n, Passed)
    ));
}

#[test]
fn withheld_flag_and_placeholders() {
    let c = cfg();
    let flagged = CallerInfo {
        withheld: true,
        ..from("+12345678910")
    };
    assert_eq!(identify(&c, &flagged), CallerMatch::Withheld);
    for user in [
        "anonymous",
        "Anonymous",
        "unknown",
        "RESTRICTED",
        "private",
        "withheld",
        "unavailable",
        "",
        "  ",
        "anonymous;user=phone",
        "sip:anonymous@anonymous.invalid",
    ] {
        assert_eq!(identify(&c, &from(user)), CallerMatch::Withheld, "{user:?}");
    }
    assert_eq!(
        identify(&c, &CallerInfo::default()),
        CallerMatch::Withheld,
        "no From user at all"
    );
}

#[test]
fn numbers_nobody_calls_from_are_unknown() {
    let c = cfg();
    for user in ["+19998887777", "alice", "+1-800-FLOWERS", "12+34", "123"] {
        assert_eq!(identify(&c, &from(user)), CallerMatch::Unknown, "{user:?}");
    }
    assert_eq!(
        caller_number(&c, &from("alice")),
        CallerNumber::NotANumber("alice".into())
    );
}

#[test]
fn shared_number_lists_every_user_with_their_ext() {
    let c = cfg();
    let expected = CallerMatch::Shared(vec![
        (
            "201".into(),
            AgentRef {
                user_id: "mgarcia".into(),
                pin: Some("2468".into()),
                nailed_up: false,
            },
        ),
        (
            "202".into(),
            AgentRef {
                user_id: "akim".into(),
                pin: None,
                nailed_up: false,
            },
        ),
    ]);
    assert_eq!(identify(&c, &from("2345678000")), expected);
    assert_eq!(identify(&c, &from("tel:+1-234-567-8000")), expected);
}

#[test]
fn pin_is_passed_and_an_empty_pin_is_no_pin() {
    let mut c = cfg();
    c.users.retain(|u| u.id != "akim");
    assert_eq!(
        identify(&c, &from("+12345678000")),
        one("mgarcia", Some("2468"))
    );
    if let Some(u) = c.users.iter_mut().find(|u| u.id == "mgarcia") {
        u.pin = Some("".into());
    }
    assert_eq!(identify(&c, &from("+12345678000")), one("mgarcia", None));
}

#[test]
fn national_and_international_forms_outside_the_nanp() {
    let c = uk_cfg();
    for user in [
        "02079460000",
        "020 7946 0000",
        "+44 20 7946 0000",
        "00442079460000",
        // International digits without '+': read nationally this would be
        // +44442079460000, so the international reading must be tried.
        "442079460000",
    ] {
        assert_eq!(identify(&c, &from(user)), one("lon", None), "{user:?}");
    }
    // The NANP agent calling a UK switch, in every international form.
    for user in ["+12345678910", "0012345678910", "12345678910"] {
        assert_eq!(identify(&c, &from(user)), one("jsmith", None), "{user:?}");
    }
    // 011 is a UK national prefix (Sheffield), not the international one.
    assert_eq!(identify(&c, &from("01112345678910")), CallerMatch::Unknown);
}

#[test]
fn international_digits_without_plus_in_the_nanp() {
    let mut c = cfg();
    c.users.push(london_user());
    assert_eq!(identify(&c, &from("442079460000")), one("lon", None));
    assert_eq!(identify(&c, &from("011442079460000")), one("lon", None));
    // A plain 10-digit NANP number is only read nationally.
    assert_eq!(identify(&c, &from("2079460000")), CallerMatch::Unknown);
}

#[test]
fn national_reading_wins_over_the_international_one() {
    // cc 44: "2079460000" nationally is +442079460000 (lon); read as
    // international it would be +2079460000. Give that number to someone
    // else: the national reading must still win.
    let mut c = uk_cfg();
    c.users.push(User {
        id: "cairo".into(),
        extensions: vec![Extension::Pstn {
            value: E164::parse("+2079460000", &CountryCode::nanp()).unwrap(),
            ext: String::new(),
            description: String::new(),
        }],
        ..london_user()
    });
    assert_eq!(identify(&c, &from("2079460000")), one("lon", None));
    assert_eq!(identify(&c, &from("+2079460000")), one("cairo", None));
}

#[test]
fn called_number_forms_find_the_contact_point() {
    let c = cfg();
    for called in [
        "+15550100000",
        "15550100000",
        "5550100000",
        "+1-555-010-0000",
        "tel:+1-555-010-0000",
        "+15550100000;user=phone",
        "%2B15550100000",
    ] {
        let m = called_mapping(&c, called);
        assert_eq!(
            m.map(|m| m.flow.as_str()),
            Some("Timed Presence"),
            "{called:?}"
        );
    }
    assert_eq!(
        called_mapping(&c, "5550100001").map(|m| m.flow.as_str()),
        Some("Billing")
    );
    for called in ["+15550109999", "", "support", "+1555"] {
        assert!(called_mapping(&c, called).is_none(), "{called:?}");
    }
}

#[test]
fn called_number_as_international_digits_outside_the_nanp() {
    let c = uk_cfg();
    assert_eq!(
        called_mapping(&c, "15550100000").map(|m| m.flow.as_str()),
        Some("Timed Presence")
    );
    assert_eq!(
        called_mapping(&c, "0015550100000").map(|m| m.flow.as_str()),
        Some("Timed Presence")
    );
}

#[test]
fn menu_settings_follow_the_flow() {
    let c = cfg();
    let Some(Flow::TimedPresence(flow)) = c.flow("Timed Presence") else {
        panic!("the default config has a timed-presence flow");
    };
    let s = menu_settings(flow);
    assert_eq!(s.presets, vec![8, 24, 48, 72]);
    assert_eq!(s.custom_max_digits, 2);
    assert_eq!(s.max_attempts, 3);
    assert_eq!(s.pin_attempts, 3);
    assert_eq!(s.digit_timeout, Duration::from_secs(5));
    assert_eq!(s.ext_timeout, Duration::from_secs(5));
    assert_eq!(s.prompts.welcome, "welcome");
    assert_eq!(s.prompts.wrong_pin, "wrong_pin");
    assert_eq!(s.prompts.enter_extension, "enter_extension");
    assert_eq!(s.validate(), Ok(()));

    let mut custom = flow.clone();
    custom.prompts.online.name = "online_es".into();
    custom.presets = vec![1];
    custom.ext_timeout = Duration::from_secs(9);
    let s = menu_settings(&custom);
    assert_eq!(s.prompts.online, "online_es");
    assert_eq!(s.presets, vec![1]);
    assert_eq!(s.ext_timeout, Duration::from_secs(9));
}

/// Issue 9: the SIP core read `442079460000` on a `+1` switch as a NANP
/// number and answered 404, while the directory (which also tries the
/// digits as international) found the UK contact point.
#[test]
fn the_sip_core_check_and_the_flow_lookup_agree_on_international_digits() {
    let mut c = cfg();
    let uk = e("+442079460000");
    c.dispatch_mappings.push(DispatchMapping {
        phone_number: uk.clone(),
        ..c.dispatch_mappings[1].clone()
    });
    let c = std::sync::Arc::new(c);
    let ours = dialplan(tokio::sync::watch::channel(c.clone()).1);
    for called in ["442079460000", "+442079460000", "tel:+44-20-7946-0000"] {
        let found = called_mapping(&c, called).map(|m| m.phone_number.clone());
        assert_eq!(found.as_ref(), Some(&uk), "{called:?}");
        assert!(ours(called), "{called:?} is found, so it must not 404");
    }
    for called in ["+15550109999", "support", ""] {
        assert_eq!(ours(called), called_mapping(&c, called).is_some());
        assert!(!ours(called), "{called:?}");
    }
}

/// A reload replaces the configuration the SIP core checks: a removed
/// mapping 404s and an added one answers from the next INVITE on.
#[test]
fn the_sip_core_check_follows_a_reloaded_configuration() {
    let before = std::sync::Arc::new(cfg());
    let old = before.dispatch_mappings[0].phone_number.clone();
    let new = e("+15550100077");
    let (tx, rx) = tokio::sync::watch::channel(before.clone());
    let ours = dialplan(rx);
    assert!(ours(old.as_str()));
    assert!(!ours(new.as_str()));
    let mut after = cfg();
    after.dispatch_mappings[0].phone_number = new.clone();
    tx.send_replace(std::sync::Arc::new(after));
    assert!(!ours(old.as_str()));
    assert!(ours(new.as_str()));
}
