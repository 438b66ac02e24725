//! `[sip.flood]`: defaults, the shipped block, and messages that name the
//! key and the fix.

use super::*;
use std::time::Duration;

const SHIPPED: &str = include_str!("../../config/tpswitch.toml");

fn with(keys: &str) -> String {
    edit(
        EXAMPLE,
        "[sip]\n",
        &format!("[sip.flood]\n{keys}\n\n[sip]\n"),
    )
}

#[test]
fn flood_defaults_and_the_shipped_block_agree() {
    let absent = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}")).sip.flood;
    let shipped = Config::from_toml(SHIPPED, std::path::Path::new(FILE))
        .unwrap_or_else(|e| panic!("{e}"))
        .sip
        .flood;
    assert_eq!(absent, shipped);
    assert!(absent.enabled && !absent.apply_to_trunks);
    assert_eq!(absent.window, Duration::from_secs(2));
    assert_eq!(absent.ban, Duration::from_secs(300));
    assert_eq!(absent.limits, [16; 4]);
    assert!(!absent.refuse_403 && !absent.drop_register);
    assert_eq!(
        absent.scanner_user_agents,
        [
            "friendly-scanner",
            "sipvicious",
            "sipcli",
            "vaxsipuseragent",
            "pplsip"
        ]
    );
}

#[test]
fn flood_keys_are_read() {
    let c = load(&with(
        "invite_limit = 100\noptions_limit = 0\nwindow = \"1s\"\nban = \"10m\"\napply_to_trunks = true\nrefuse = \"403\"\nregister = \"drop\"\nscanner_user_agents = [\"Evil\"]",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let f = c.sip.flood;
    assert_eq!(f.limits, [100, 0, 16, 16]);
    assert_eq!(
        (f.window, f.ban),
        (Duration::from_secs(1), Duration::from_secs(600))
    );
    assert!(f.apply_to_trunks && f.refuse_403 && f.drop_register);
    assert_eq!(f.scanner_user_agents, ["evil"]);
}

#[test]
fn flood_mistakes_name_the_key_and_the_fix() {
    let p = at(&with("refuse = \"reject\""), "sip.flood.refuse");
    assert_eq!(p.fix, "use \"drop\" or \"403\"");
    let p = at(&with("register = \"404\""), "sip.flood.register");
    assert_eq!(p.fix, "use \"405\" or \"drop\"");
    let p = at(&with("invite_limit = -1"), "sip.flood.invite_limit");
    assert_eq!(p.fix, "use a whole number from 0 to 1000000");
    let p = at(&with("window = \"10ms\""), "sip.flood.window");
    assert_eq!(p.problem, "\"10ms\" is too short");
    let p = at(&with("max_sources = 1"), "sip.flood.max_sources");
    assert_eq!(p.fix, "use a whole number from 16 to 1000000");
    let p = at(
        &with("scanner_user_agents = [\"ok\", \"\"]"),
        "sip.flood.scanner_user_agents[1]",
    );
    assert!(p.fix.contains("friendly-scanner"), "{}", p.fix);
    let all = problems(&with("bogus = 1"));
    assert!(
        all.iter().any(|p| p.path.contains("bogus")),
        "an unknown key is named: {all:#?}"
    );
}

#[test]
fn a_flood_change_is_live() {
    let old = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let new = load(&with("ban = \"1h\"")).unwrap_or_else(|e| panic!("{e}"));
    let c = changes(&old, &new);
    assert_eq!(c.live, ["sip.flood"]);
    assert!(c.restart.is_empty());
}
